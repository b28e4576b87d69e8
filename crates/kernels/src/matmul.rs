//! candle's CPU matrix product, without zeroing the destination first.
//!
//! candle's `MatMul` allocates its output as `vec![0; b * m * n]` and then has gemm
//! overwrite every value (`read_dst` false). At width 1000 and batch 128, zeroing the
//! weight gradients (4 MB each) and the activations was a twentieth of a training step
//! (`perf`). [`matmul`] and [`matmul_storage`] make candle 0.11.1's gemm calls (the same
//! operands, strides, fold of a batch into rows, and parallelism) into memory that gemm
//! writes without reading, so the products are candle's bit for bit (tested). Results of
//! at most 16 columns whose summation gemm fixes without reference to the caches are
//! computed by `narrow_product` instead, to the same bits.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType, bail};
use gemm::Parallelism;

use std::any::TypeId;

use crate::narrow_product::{self, Strides};
use crate::transpose::transpose_into;

/// `a.matmul(b)` for `a: [batch, m, k]` and `b: [batch, k, n]`, any strides, without a
/// gradient: for use inside backward passes. On the CPU in f32 and f64 it skips candle's
/// zeroing of the result; elsewhere it is candle's `matmul`.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let direct = a.device().is_cpu()
        && a.rank() == 3
        && b.rank() == 3
        && matches!(a.dtype(), candle_core::DType::F32 | candle_core::DType::F64);
    if direct {
        a.apply_op2_no_bwd(b, &MatMul)
    } else {
        a.matmul(b)
    }
}

/// [`CpuStorage::matmul`] with `bmnk = (batch, m, n, k)`, as candle's tensor `matmul` calls
/// it: f32 and f64 without zeroing the result first, other types through candle.
pub fn matmul_storage(
    lhs: &CpuStorage,
    lhs_l: &Layout,
    rhs: &CpuStorage,
    rhs_l: &Layout,
    bmnk: (usize, usize, usize, usize),
) -> Result<CpuStorage> {
    match (lhs, rhs) {
        (CpuStorage::F32(l), CpuStorage::F32(r)) => {
            Ok(CpuStorage::F32(products(l, lhs_l, r, rhs_l, bmnk)?))
        }
        (CpuStorage::F64(l), CpuStorage::F64(r)) => {
            Ok(CpuStorage::F64(products(l, lhs_l, r, rhs_l, bmnk)?))
        }
        _ => lhs.matmul(rhs, bmnk, lhs_l, rhs_l),
    }
}

/// The products as a new buffer: a batch's gemm calls into uninitialised memory that they
/// fill completely.
fn products<T: WithDType>(
    lhs: &[T],
    lhs_l: &Layout,
    rhs: &[T],
    rhs_l: &Layout,
    bmnk: (usize, usize, usize, usize),
) -> Result<Vec<T>> {
    let calls = GemmCalls::new(lhs, lhs_l, rhs, rhs_l, bmnk)?;
    let len = calls.dst_len();
    let mut dst = Vec::with_capacity(len);
    // SAFETY: `dst` has room for `len` values, which `run` writes every one of.
    unsafe {
        calls.run(dst.as_mut_ptr());
        dst.set_len(len);
    }
    Ok(dst)
}

/// The gemm calls of candle 0.11.1's CPU `MatMul` for one product, their operands checked
/// to lie inside their buffers.
struct GemmCalls<'a, T> {
    lhs: &'a [T],
    rhs: &'a [T],
    /// Products, and per product (m, n, k).
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    /// Distance between the operands of consecutive products.
    a_skip: usize,
    b_skip: usize,
    /// Row and column strides of each operand.
    lhs_rs: usize,
    lhs_cs: usize,
    rhs_rs: usize,
    rhs_cs: usize,
}

impl<'a, T: WithDType> GemmCalls<'a, T> {
    fn new(
        lhs: &'a [T],
        lhs_l: &Layout,
        rhs: &'a [T],
        rhs_l: &Layout,
        (batch, m, n, k): (usize, usize, usize, usize),
    ) -> Result<Self> {
        let (ls, rs) = (lhs_l.stride(), rhs_l.stride());
        let (&[a_skip, lhs_rs, lhs_cs], &[b_skip, rhs_rs, rhs_cs]) = (ls, rs) else {
            bail!("matmul: expects two operands of rank 3, got strides {ls:?} and {rs:?}");
        };
        let lhs = lhs.get(lhs_l.start_offset()..).unwrap_or_default();
        let rhs = rhs.get(rhs_l.start_offset()..).unwrap_or_default();
        // candle's fold: with one right operand for every product and the left operands
        // one after another, the batch is the rows of a single product.
        let (batch, m) = if b_skip == 0 && a_skip == m * k {
            (1, batch * m)
        } else {
            (batch, m)
        };
        let calls = Self {
            lhs,
            rhs,
            batch,
            m,
            n,
            k,
            a_skip,
            b_skip,
            lhs_rs,
            lhs_cs,
            rhs_rs,
            rhs_cs,
        };
        let reach = |len: usize, skip: usize, rows: usize, rs: usize, cols: usize, cs: usize| {
            let last = (calls.batch - 1) * skip + (rows - 1) * rs + (cols - 1) * cs;
            last < len
        };
        let inside = calls.batch == 0
            || m == 0
            || n == 0
            || k == 0
            || (reach(lhs.len(), a_skip, m, lhs_rs, k, lhs_cs)
                && reach(rhs.len(), b_skip, k, rhs_rs, n, rhs_cs));
        if !inside {
            bail!("matmul: an operand's layout reaches past its buffer");
        }
        Ok(calls)
    }

    /// Values in the result: `batch` row-major m x n matrices, one after another.
    fn dst_len(&self) -> usize {
        self.batch * self.m * self.n
    }

    /// Runs the calls, each product into its m x n block of `dst`.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of [`Self::dst_len`] values; it need not be
    /// initialised. Every value is written (gemm with `read_dst` false sets its alpha to
    /// zero, and then stores `beta * product`, or zero where `k` is 0) and none is read.
    unsafe fn run(&self, dst: *mut T) {
        let parallelism = match candle_core::utils::get_num_threads() {
            threads if threads > 1 => Parallelism::Rayon(threads),
            _ => Parallelism::None,
        };
        let (m, n) = (self.m, self.n);
        // SAFETY: the caller's promise, passed on.
        if unsafe { self.narrow_products(dst) } {
            return;
        }
        let by_columns = self.by_columns();
        let mut columns = Vec::with_capacity(if by_columns { m * n } else { 0 });
        for step in 0..self.batch {
            let block = dst.wrapping_add(step * m * n);
            // SAFETY: the operands were checked to lie inside their buffers (`new`); each
            // product's block lies inside `dst` (the caller's promise), and `columns` has
            // room for one product, which the gemm call writes every value of.
            unsafe {
                if by_columns {
                    self.gemm(step, columns.as_mut_ptr(), (m as isize, 1), parallelism);
                    columns.set_len(m * n);
                    transpose_into(&columns, m, n, block);
                    columns.set_len(0);
                } else {
                    self.gemm(step, block, (1, n as isize), parallelism);
                }
            }
        }
    }

    /// Computes every product with [`narrow_product`] where it applies (f32 results of at
    /// most 16 columns, on a CPU with AVX-512), returning false, having written nothing,
    /// where it does not.
    ///
    /// # Safety
    ///
    /// As [`Self::run`].
    unsafe fn narrow_products(&self, dst: *mut T) -> bool {
        if TypeId::of::<T>() != TypeId::of::<f32>() {
            return false;
        }
        let (lhs, rhs) = (
            self.lhs.as_ptr().cast::<f32>(),
            self.rhs.as_ptr().cast::<f32>(),
        );
        let lhs_strides = Strides {
            rows: self.lhs_rs,
            columns: self.lhs_cs,
        };
        let rhs_strides = Strides {
            rows: self.rhs_rs,
            columns: self.rhs_cs,
        };
        let (m, n, k) = (self.m, self.n, self.k);
        for step in 0..self.batch {
            // SAFETY: T is f32 (checked above), so the casts keep the type; the operands
            // were checked to lie inside their buffers (`new`), and each product's block
            // lies inside `dst` (the caller's promise).
            let done = unsafe {
                narrow_product::product_f32(
                    (m, n, k),
                    lhs.wrapping_add(step * self.a_skip),
                    lhs_strides,
                    rhs.wrapping_add(step * self.b_skip),
                    rhs_strides,
                    dst.cast::<f32>().wrapping_add(step * m * n),
                )
            };
            if !done {
                // The first product's answer is every product's: the same shape and CPU.
                return false;
            }
        }
        true
    }

    /// Whether the products are better written column-major and then transposed.
    ///
    /// gemm computes a row-major result as its transpose, `rhs^T lhs^T`, so a right operand
    /// that is itself a transposed view (the input gradient's `grad x ws^T`) becomes a
    /// left operand stored by rows, which gemm repacks into columns for every product: at
    /// width 1000 that is the whole weight matrix, for a result of only batch x 1000.
    /// Written column-major, the product reads the weight matrix in place and packs only
    /// the batch-sized left operand, and the result's transpose is the smaller copy. Both
    /// ways run the same kernel over the same depth blocks (gemm's block depth depends
    /// only on `k`), one fused multiply-add per term in the same order, so the bits are
    /// the same (tested); the shapes where gemm would take another path (a row or column
    /// of one, `k` of 1 or 2, at most 256 values) are left as they are. The bounds are where the column-major way was faster
    /// on a 2-core AMD EPYC (`perf`, widths 10 to 1000, batches 10 to 256).
    ///
    /// A result narrower than one register of 16 lanes (the reference network's 10 units
    /// and 10 classes) goes column-major too: gemm's registers run along the result's
    /// columns, so row-major a 10-wide result fills 10 of 16 lanes, and column-major its
    /// rows (the batch, or a weight gradient's inputs) fill them. The reference ensemble
    /// of 10 took 4-8% less per step, one run 2%; width 1000 moved within noise. Where the
    /// CPU has AVX-512, `narrow_product` now computes most such results (every
    /// product of the reference network's training step); this remains for the others (a
    /// depth above 512 with more than 64 rows: an evaluation chunk's first layer) and for
    /// other CPUs.
    fn by_columns(&self) -> bool {
        let (m, n, k) = (self.m, self.n, self.k);
        let gemm_kernel = m > 1 && k > 2 && m * n > 256;
        let repacks_weights = self.rhs_cs != 1 && n >= 2 * m && n * k >= 1 << 16;
        let narrow = n < 16 && m >= 2 * n;
        gemm_kernel && (repacks_weights || narrow)
    }

    /// One product's gemm call into `dst` with strides `(column, row)`.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of an m x n matrix at those strides.
    unsafe fn gemm(
        &self,
        step: usize,
        dst: *mut T,
        (dst_cs, dst_rs): (isize, isize),
        parallelism: Parallelism,
    ) {
        // SAFETY: the operands were checked to lie inside their buffers (`new`); `dst` is
        // the caller's promise. gemm with `read_dst` false reads none of it.
        unsafe {
            gemm::gemm(
                self.m,
                self.n,
                self.k,
                dst,
                dst_cs,
                dst_rs,
                false,
                self.lhs.as_ptr().wrapping_add(step * self.a_skip),
                self.lhs_cs as isize,
                self.lhs_rs as isize,
                self.rhs.as_ptr().wrapping_add(step * self.b_skip),
                self.rhs_cs as isize,
                self.rhs_rs as isize,
                T::from_f64(0.0),
                T::from_f64(1.0),
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// [`matmul`]'s op: `[batch, m, k] x [batch, k, n] -> [batch, m, n]`.
struct MatMul;

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        "vgrad-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (bmnk, shape) = product_dims(self.name(), l1, l2)?;
        Ok((matmul_storage(s1, l1, s2, l2, bmnk)?, shape))
    }
}

/// For `[batch, m, k] x [batch, k, n]`: `(batch, m, n, k)` as candle's
/// `BackendStorage::matmul` takes it, and the product's shape; errors name `op`.
pub(crate) fn product_dims(
    op: &str,
    l1: &Layout,
    l2: &Layout,
) -> Result<((usize, usize, usize, usize), Shape)> {
    let (batch, m, k) = l1.shape().dims3()?;
    let (batch2, k2, n) = l2.shape().dims3()?;
    if batch != batch2 || k != k2 {
        bail!(
            "{op}: incompatible shapes {:?} and {:?}",
            l1.shape(),
            l2.shape()
        );
    }
    Ok(((batch, m, n, k), Shape::from((batch, m, n))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn random(shape: &[usize], seed: u64, dtype: DType) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        // A fixed pseudo-random sequence with varied magnitudes and signs.
        let values: Vec<f64> = (0..n as u64)
            .map(|i| {
                let x = (i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(seed * 1442695040888963407)
                    >> 33) as f64;
                (x / (1u64 << 31) as f64 - 0.5) * (1.0 + (i % 7) as f64)
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)
    }

    fn assert_same_bits(ours: &Tensor, theirs: &Tensor) -> Result<()> {
        assert_eq!(ours.dims(), theirs.dims());
        let (a, b) = (ours.flatten_all()?, theirs.flatten_all()?);
        let (a, b) = (a.to_dtype(DType::F64)?, b.to_dtype(DType::F64)?);
        let (a, b) = (a.to_vec1::<f64>()?, b.to_vec1::<f64>()?);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "value {i}: {x} vs {y}");
        }
        Ok(())
    }

    #[test]
    fn candles_products_bit_for_bit_at_every_layout_the_layers_use() -> Result<()> {
        // (batch, m, k, n): the gemm kernel's edge cases (one row or column, k of 1 and 2,
        // at most 16 x 16 values), odd sizes, and a width-1000-like product.
        let sizes = [
            (1, 1, 5, 1),
            (2, 1, 7, 9),
            (3, 9, 7, 1),
            (2, 4, 1, 5),
            (2, 4, 2, 5),
            (3, 16, 33, 16),
            (2, 30, 784, 10),
            (1, 128, 300, 200),
            (3, 7, 65, 130),
            // Input gradients written column-major (`by_columns`): width 1000 at batch
            // 10, and odd sizes over two depth blocks with partial tiles.
            (1, 10, 1000, 1000),
            (2, 37, 517, 203),
            (1, 130, 260, 262),
            // Narrow results written column-major: the reference network's weight
            // gradient of the first layer and its hidden products over an ensemble, and
            // odd sizes with partial tiles.
            (1, 784, 30, 10),
            (10, 30, 10, 10),
            (3, 45, 17, 7),
            // Computed in `narrow_product` (at most 16 columns): hidden weight gradients
            // (or, with both operands along the depth, gemm's dot products), depths over
            // one block of 512 and at its edge, a batch over 64 rows, 16 columns.
            (10, 10, 30, 10),
            (2, 12, 600, 9),
            (1, 64, 1025, 16),
            (2, 40, 512, 3),
            (1, 100, 300, 16),
            (3, 17, 3, 16),
        ];
        for dtype in [DType::F32, DType::F64] {
            for (i, &(batch, m, k, n)) in sizes.iter().enumerate() {
                let seed = i as u64;
                let a = random(&[batch, m, k], seed, dtype)?;
                let b = random(&[batch, k, n], seed + 100, dtype)?;
                // The forward product, the weight gradient (a transposed left operand) and
                // the input gradient (a transposed right operand).
                assert_same_bits(&matmul(&a, &b)?, &a.matmul(&b)?)?;
                let at = random(&[batch, k, m], seed + 200, dtype)?.t()?;
                assert_same_bits(&matmul(&at, &b)?, &at.matmul(&b)?)?;
                let bt = random(&[batch, n, k], seed + 300, dtype)?.t()?;
                assert_same_bits(&matmul(&a, &bt)?, &a.matmul(&bt)?)?;
                // One right operand for the whole batch (candle folds the batch into rows)
                // and one left operand broadcast over it (evaluation's input).
                let shared = random(&[1, k, n], seed + 400, dtype)?.broadcast_as((batch, k, n))?;
                assert_same_bits(&matmul(&a, &shared)?, &a.matmul(&shared)?)?;
                let one = random(&[1, m, k], seed + 500, dtype)?.broadcast_as((batch, m, k))?;
                assert_same_bits(&matmul(&one, &b)?, &one.matmul(&b)?)?;
            }
        }
        Ok(())
    }

    /// f32 operands `[batch, m, k]` and `[batch, k, n]`, the right one a transposed view of
    /// a `[batch, n, k]` tensor (an input gradient's `ws^T`) where `transposed`.
    fn operands(
        (batch, m, k, n): (usize, usize, usize, usize),
        transposed: bool,
    ) -> Result<(Tensor, Tensor)> {
        let a = random(&[batch, m, k], 1, DType::F32)?;
        let b = if transposed {
            random(&[batch, n, k], 2, DType::F32)?.t()?
        } else {
            random(&[batch, k, n], 2, DType::F32)?
        };
        Ok((a, b))
    }

    /// `f` on the gemm calls of `a x b`, two f32 CPU tensors.
    fn with_calls<R>(
        a: &Tensor,
        b: &Tensor,
        bmnk: (usize, usize, usize, usize),
        f: impl FnOnce(&GemmCalls<'_, f32>) -> R,
    ) -> Result<R> {
        let (sa, la) = a.storage_and_layout();
        let (sb, lb) = b.storage_and_layout();
        let (candle_core::Storage::Cpu(sa), candle_core::Storage::Cpu(sb)) = (&*sa, &*sb) else {
            unreachable!("CPU tensors");
        };
        let (l, r) = (sa.as_slice::<f32>()?, sb.as_slice::<f32>()?);
        Ok(f(&GemmCalls::new(l, la, r, lb, bmnk)?))
    }

    #[test]
    fn large_input_gradients_and_narrow_results_are_written_column_major() -> Result<()> {
        let takes = |(m, k, n): (usize, usize, usize), transposed: bool| -> Result<bool> {
            let (a, b) = operands((1, m, k, n), transposed)?;
            with_calls(&a, &b, (1, m, n, k), |calls| calls.by_columns())
        };
        // The shapes of the bit-for-bit test above that go column-major.
        assert!(takes((10, 1000, 1000), true)?);
        assert!(takes((37, 517, 203), true)?);
        assert!(takes((130, 260, 262), true)?);
        assert!(takes((30, 784, 10), false)?);
        assert!(takes((784, 30, 10), false)?);
        assert!(takes((45, 17, 7), true)?);
        // Forward products, small ones, and kernels gemm runs another way.
        assert!(!takes((10, 1000, 1000), false)?);
        assert!(!takes((128, 100, 100), true)?);
        assert!(!takes((1, 1000, 1000), true)?);
        assert!(!takes((10, 2, 100_000), true)?);
        assert!(!takes((2, 1000, 100), true)?);
        // Results of 16 columns fill gemm's registers; a batch under twice the width, and
        // a result of at most 256 values, stay row-major.
        assert!(!takes((30, 784, 16), false)?);
        assert!(!takes((10, 784, 10), false)?);
        assert!(!takes((25, 784, 10), false)?);
        Ok(())
    }

    #[test]
    fn every_value_of_the_destination_is_written_and_none_is_read() -> Result<()> {
        // The last two written column-major and then transposed: an input gradient (a
        // transposed right operand) and a narrow forward product.
        let sizes = [
            ((2, 9, 7, 1), false),
            ((1, 1, 5, 1), false),
            ((2, 4, 2, 5), false),
            ((3, 70, 40, 90), false),
            ((2, 20, 300, 400), true),
            ((2, 40, 30, 10), false),
        ];
        for &((batch, m, k, n), transposed) in &sizes {
            let (a, b) = operands((batch, m, k, n), transposed)?;
            let dst = with_calls(&a, &b, (batch, m, n, k), |calls| {
                // A destination of NaNs: one read of an old value would leave a NaN behind.
                let mut dst = vec![f32::NAN; calls.dst_len()];
                // SAFETY: `dst` holds `dst_len` values.
                unsafe { calls.run(dst.as_mut_ptr()) };
                dst
            })?;
            let theirs = a.matmul(&b)?.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(
                dst.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                theirs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "({batch}, {m}, {k}, {n})"
            );
        }
        Ok(())
    }

    #[test]
    fn a_layout_past_its_buffer_is_an_error() -> Result<()> {
        let a = random(&[2, 3, 4], 1, DType::F32)?;
        let b = random(&[2, 4, 5], 2, DType::F32)?;
        let (sa, la) = a.storage_and_layout();
        let candle_core::Storage::Cpu(sa) = &*sa else {
            unreachable!("a CPU tensor");
        };
        let (sb, lb) = b.storage_and_layout();
        let candle_core::Storage::Cpu(sb) = &*sb else {
            unreachable!("a CPU tensor");
        };
        // The left operand claimed as three products of [3, 4] in a buffer of two.
        let err = matmul_storage(sa, &Layout::contiguous((3, 3, 4)), sb, lb, (3, 3, 5, 4));
        assert!(err.is_err());
        let fine = matmul_storage(sa, la, sb, lb, (2, 3, 5, 4));
        assert!(fine.is_ok());
        Ok(())
    }
}
