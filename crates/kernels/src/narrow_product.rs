//! Products with at most 16 result columns, computed directly in AVX-512 registers instead
//! of through gemm.
//!
//! The reference network's products are tiny (30 x 10 results, depths of 10 to 784), and an
//! ensemble of 10 makes 170 gemm calls a step. gemm copies the left operand into its own
//! order on every call (for a batch of 30, a panel of 64 rows, 34 of them zeros) and sets
//! up its blocking each time: about a sixth of an ensemble's step went to that copying
//! alone (`perf`). Here each result row is one register of 16 lanes, and the right
//! operand's rows are read in place.
//!
//! The bits are gemm's (tested against candle's matmul): gemm's kernels compute every
//! result value in one accumulator, starting from +0, with one fused multiply-add per term
//! in the order of the depth, over blocks of the depth whose sums are then added to the
//! result in order. Its block depth is the whole depth up to 512, and exactly 512 where
//! both result dimensions are at most 64; elsewhere it depends on the caches, and
//! [`applies`] leaves such products to gemm, with those gemm computes another way (a
//! result of at most 256 values computed as dot products, a depth of 1 or 2, a single row
//! or column).

/// gemm's depth block for a product whose result has at most 64 rows and columns, or
/// whose depth is at most this: `depth.min(DEPTH_BLOCK)`.
const DEPTH_BLOCK: usize = 512;

/// The widest result this computes: one register of 16 f32 lanes per result row.
const LANES: usize = 16;

/// Whether an `m x n` result of depth `k`, its left operand's columns `lhs_columns` apart
/// and its right operand's rows `rhs_rows` apart, is computed here (given an f32 product on
/// a CPU with AVX-512): at most 16 columns, a depth block that does not depend on the
/// caches, and a product gemm runs through its kernels. gemm takes another way for a
/// depth of 1 or 2, a single row or column, and a result of at most 256 values whose
/// operands both run along the depth (dot products reduced across lanes).
pub fn applies(m: usize, n: usize, k: usize, lhs_columns: usize, rhs_rows: usize) -> bool {
    let dot_products = m * n <= 256 && lhs_columns == 1 && rhs_rows == 1;
    let gemm_kernel = m > 1 && n > 1 && k > 2 && !dot_products;
    let fixed_blocks = k <= DEPTH_BLOCK || (m <= 64 && n <= 64);
    gemm_kernel && fixed_blocks && n <= LANES
}

/// The strides of a matrix operand: `at(i, j) = i * rows + j * columns` values from its
/// start.
#[derive(Debug, Clone, Copy)]
pub struct Strides {
    /// Distance between consecutive rows.
    pub rows: usize,
    /// Distance between consecutive columns.
    pub columns: usize,
}

/// Writes the row-major `m x n` product of `lhs` (`m x k`) and `rhs` (`k x n`) into `dst`,
/// with gemm's bits. Returns false, writing nothing, where it does not apply: the CPU lacks
/// AVX-512F, or [`applies`] is false.
///
/// # Safety
///
/// `lhs` must hold an `m x k` matrix at strides `lhs_strides`, `rhs` a `k x n` one at
/// `rhs_strides`, and `dst` be valid for writes of `m * n` values, not overlapping either.
pub unsafe fn product_f32(
    (m, n, k): (usize, usize, usize),
    lhs: *const f32,
    lhs_strides: Strides,
    rhs: *const f32,
    rhs_strides: Strides,
    dst: *mut f32,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let applies = applies(m, n, k, lhs_strides.columns, rhs_strides.rows);
        if applies && std::arch::is_x86_feature_detected!("avx512f") {
            // The right operand's rows are loaded as vectors: copied first where its columns
            // are not adjacent (an input gradient's transposed weights, at most 16 x k).
            let copy;
            let (rhs, rhs_rows) = if rhs_strides.columns == 1 {
                (rhs, rhs_strides.rows)
            } else {
                copy = (0..k * n)
                    .map(|at| {
                        let (row, column) = (at / n, at % n);
                        // SAFETY: (row, column) lies inside the k x n right operand.
                        unsafe { *rhs.add(row * rhs_strides.rows + column * rhs_strides.columns) }
                    })
                    .collect::<Vec<f32>>();
                (copy.as_ptr(), n)
            };
            // SAFETY: the CPU has AVX-512F (checked above); the operands are the caller's
            // promise, the right one possibly replaced by its row-major copy.
            unsafe { avx512::product(m, n, k, lhs, lhs_strides, rhs, rhs_rows, dst) };
            return true;
        }
    }
    false
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_mask_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
    };

    use super::{DEPTH_BLOCK, Strides};

    /// Result rows computed together: eight independent chains of fused multiply-adds keep
    /// both FMA units busy.
    const ROWS: usize = 8;

    /// [`super::product_f32`] once it applies, the right operand's rows `rhs_rows` apart
    /// and its columns adjacent.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX-512F; the operands as [`super::product_f32`] requires, with
    /// `n <= 16`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn product(
        m: usize,
        n: usize,
        k: usize,
        lhs: *const f32,
        lhs_strides: Strides,
        rhs: *const f32,
        rhs_rows: usize,
        dst: *mut f32,
    ) {
        // Where a result dimension is above 64, `applies` has the depth at most 512: one
        // block of the whole depth, as gemm's cache-sized block is then.
        let block = DEPTH_BLOCK.min(k);
        let columns = ((1u32 << n) - 1) as __mmask16;
        let rows = Rows {
            n,
            lhs,
            lhs_strides,
            rhs,
            rhs_rows,
            dst,
            columns,
        };
        let mut first = 0;
        while first + ROWS <= m {
            // SAFETY: rows first..first + ROWS lie inside the result (the caller's promise).
            unsafe { rows.compute::<ROWS>(first, k, block) };
            first += ROWS;
        }
        // SAFETY: the last m - first rows, fewer than ROWS, inside the result.
        unsafe {
            match m - first {
                1 => rows.compute::<1>(first, k, block),
                2 => rows.compute::<2>(first, k, block),
                3 => rows.compute::<3>(first, k, block),
                4 => rows.compute::<4>(first, k, block),
                5 => rows.compute::<5>(first, k, block),
                6 => rows.compute::<6>(first, k, block),
                7 => rows.compute::<7>(first, k, block),
                _ => {}
            }
        }
    }

    /// The operands and the result of one product.
    struct Rows {
        n: usize,
        lhs: *const f32,
        lhs_strides: Strides,
        rhs: *const f32,
        rhs_rows: usize,
        dst: *mut f32,
        /// The lanes of a register that hold result columns.
        columns: __mmask16,
    }

    impl Rows {
        /// Result rows `first..first + R`, depth block by depth block: each block's sums
        /// start from +0, the first is stored and the later ones are added to it.
        ///
        /// # Safety
        ///
        /// The CPU must have AVX-512F; rows `first..first + R` lie inside the result.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn compute<const R: usize>(&self, first: usize, k: usize, block: usize) {
            let mut start = 0;
            while start < k {
                let end = (start + block).min(k);
                let mut sums = [_mm512_setzero_ps(); R];
                for depth in start..end {
                    // SAFETY: row `depth` of the right operand, its n columns adjacent;
                    // the masked-off lanes are not read.
                    let rhs_row = unsafe {
                        _mm512_maskz_loadu_ps(self.columns, self.rhs.add(depth * self.rhs_rows))
                    };
                    for (r, sum) in sums.iter_mut().enumerate() {
                        let at =
                            (first + r) * self.lhs_strides.rows + depth * self.lhs_strides.columns;
                        // SAFETY: (first + r, depth) lies inside the left operand.
                        let value = unsafe { *self.lhs.add(at) };
                        *sum = _mm512_fmadd_ps(_mm512_set1_ps(value), rhs_row, *sum);
                    }
                }
                for (r, sum) in sums.iter().enumerate() {
                    // SAFETY: result row first + r, its n values; masked-off lanes are
                    // neither read nor written.
                    unsafe {
                        let out = self.dst.add((first + r) * self.n);
                        let total: __m512 = if start == 0 {
                            *sum
                        } else {
                            _mm512_add_ps(_mm512_maskz_loadu_ps(self.columns, out), *sum)
                        };
                        _mm512_mask_storeu_ps(out, self.columns, total);
                    }
                }
                start = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::applies;

    #[test]
    fn every_product_of_the_reference_step_applies_and_cache_dependent_ones_do_not() {
        // (m, n, k, the left operand's column stride, the right operand's row stride) of
        // the reference network's products (batch 30, width 10); the bits are tested
        // against candle's matmul in `matmul.rs`.
        let reference = [
            (30, 10, 784, 1, 10),   // first layer forward
            (30, 10, 10, 1, 10),    // hidden and output layers forward
            (784, 10, 30, 784, 10), // first layer weight gradient, xᵀg
            (10, 10, 30, 10, 10),   // hidden weight gradients
            (30, 10, 10, 1, 1),     // input gradients, g Wᵀ
        ];
        for (m, n, k, lhs_columns, rhs_rows) in reference {
            assert!(
                applies(m, n, k, lhs_columns, rhs_rows),
                "{m} x {n}, depth {k}"
            );
        }
        // An evaluation chunk's first layer (the depth block depends on the caches), wide
        // results, gemm's dot products, depths of 1 and 2, a single row or column.
        let gemm = [
            (1024, 10, 784, 1024, 10),
            (30, 100, 784, 1, 100),
            (10, 10, 30, 1, 1),
            (30, 10, 2, 1, 10),
            (1, 10, 784, 1, 10),
            (30, 1, 784, 1, 1),
        ];
        for (m, n, k, lhs_columns, rhs_rows) in gemm {
            assert!(
                !applies(m, n, k, lhs_columns, rhs_rows),
                "{m} x {n}, depth {k}"
            );
        }
    }
}
