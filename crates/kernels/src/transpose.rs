//! Copying a column-major matrix into row-major order, for the products [`crate::matmul`]
//! writes column-major.
//!
//! The products of the reference network are narrow (10 columns) and many: an ensemble
//! of 10 transposes about 110,000 values a step. One value at a time, through a strided
//! read, that was a seventh of the step (`perf`); in tiles of 16 x 16 held in AVX-512
//! registers it is a few instructions per row of a tile.

use std::any::TypeId;

/// Writes the `rows x cols` matrix stored column-major in `src` row-major into `dst`.
/// A copy: every value keeps its bits, NaN payloads included.
///
/// # Safety
///
/// `dst` must be valid for writes of `rows * cols` values, and must not overlap `src`;
/// `src` holds `rows * cols` values.
pub unsafe fn transpose_into<T: Copy + 'static>(src: &[T], rows: usize, cols: usize, dst: *mut T) {
    assert_eq!(src.len(), rows * cols, "transpose_into: the source's size");
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && std::arch::is_x86_feature_detected!("avx512f") {
        let src = src.as_ptr().cast::<f32>();
        // SAFETY: T is f32 (checked above), so the casts keep the type; the CPU has
        // AVX-512F (checked above); the sizes are the caller's promise.
        unsafe { avx512::transpose_f32(src, rows, cols, dst.cast::<f32>()) };
        return;
    }
    // SAFETY: the caller's promise.
    unsafe { transpose_scalar(src, rows, cols, dst) }
}

/// The `rows x cols` matrix stored column-major in `src`, as a new row-major vector
/// ([`transpose_into`] into memory it owns).
pub fn transposed<T: Copy + 'static>(src: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut dst = Vec::with_capacity(src.len());
    // SAFETY: transpose_into checks that `src` holds rows * cols values before it writes,
    // `dst` has room for that many, and every one of them is written.
    unsafe {
        transpose_into(src, rows, cols, dst.as_mut_ptr());
        dst.set_len(src.len());
    }
    dst
}

/// [`transpose_into`] one value at a time, sixteen columns at a time, so that each write
/// of a row segment fills a cache line while the sixteen columns are read in order.
///
/// # Safety
///
/// As [`transpose_into`].
unsafe fn transpose_scalar<T: Copy>(src: &[T], rows: usize, cols: usize, dst: *mut T) {
    const COLUMNS: usize = 16;
    for first in (0..cols).step_by(COLUMNS) {
        let width = COLUMNS.min(cols - first);
        let block = &src[first * rows..(first + width) * rows];
        for r in 0..rows {
            for c in 0..width {
                // SAFETY: r * cols + first + c < rows * cols, inside `dst`.
                unsafe { dst.add(r * cols + first + c).write(block[c * rows + r]) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, __mmask16, _mm512_castpd_ps, _mm512_castps_pd, _mm512_mask_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_setzero_ps, _mm512_shuffle_f32x4, _mm512_unpackhi_pd,
        _mm512_unpackhi_ps, _mm512_unpacklo_pd, _mm512_unpacklo_ps,
    };

    /// Tiles of up to 16 x 16: up to 16 source columns of up to 16 rows each are loaded
    /// (masked where the tile is partial), transposed in registers, and stored as up to 16
    /// row segments (masked to the tile's columns). Masked-off lanes are neither read nor
    /// written, so partial tiles touch nothing outside the matrices.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX-512F; `src` must hold `rows * cols` values and `dst` be
    /// valid for writes of as many, not overlapping `src`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose_f32(src: *const f32, rows: usize, cols: usize, dst: *mut f32) {
        const TILE: usize = 16;
        let mask = |n: usize| -> __mmask16 { ((1u32 << n) - 1) as __mmask16 };
        for c0 in (0..cols).step_by(TILE) {
            let width = TILE.min(cols - c0);
            for r0 in (0..rows).step_by(TILE) {
                let height = TILE.min(rows - r0);
                let mut tile = [_mm512_setzero_ps(); TILE];
                for (c, column) in tile.iter_mut().enumerate().take(width) {
                    // SAFETY: rows r0..r0 + height of column c0 + c, inside `src`; the
                    // masked-off lanes are not read.
                    *column = unsafe {
                        _mm512_maskz_loadu_ps(mask(height), src.add((c0 + c) * rows + r0))
                    };
                }
                let tile = transpose_16x16(tile);
                for (r, row) in tile.iter().enumerate().take(height) {
                    // SAFETY: columns c0..c0 + width of row r0 + r, inside `dst`; the
                    // masked-off lanes are not written.
                    unsafe {
                        _mm512_mask_storeu_ps(dst.add((r0 + r) * cols + c0), mask(width), *row)
                    };
                }
            }
        }
    }

    /// The transpose of the 16 x 16 matrix whose rows are `a`: lane j of row i of the
    /// result is lane i of `a[j]`. Pairs of rows are interleaved by values, then by pairs
    /// of values, then 128-bit quarters are gathered across four rows twice.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose_16x16(a: [__m512; 16]) -> [__m512; 16] {
        let mut b = a;
        for i in 0..8 {
            b[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
            b[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
        }
        // c[4i + j], quarter q: lanes 4q + j of rows 4i..4i + 4.
        let mut c = b;
        for i in 0..4 {
            let pairs = |x: __m512, y: __m512, high: bool| {
                let (x, y) = (_mm512_castps_pd(x), _mm512_castps_pd(y));
                _mm512_castpd_ps(if high {
                    _mm512_unpackhi_pd(x, y)
                } else {
                    _mm512_unpacklo_pd(x, y)
                })
            };
            c[4 * i] = pairs(b[4 * i], b[4 * i + 2], false);
            c[4 * i + 1] = pairs(b[4 * i], b[4 * i + 2], true);
            c[4 * i + 2] = pairs(b[4 * i + 1], b[4 * i + 3], false);
            c[4 * i + 3] = pairs(b[4 * i + 1], b[4 * i + 3], true);
        }
        // Row 4q + j of the result: quarter q of c[j], c[4 + j], c[8 + j], c[12 + j].
        let mut out = c;
        for j in 0..4 {
            let low0 = _mm512_shuffle_f32x4::<0x44>(c[j], c[4 + j]);
            let high0 = _mm512_shuffle_f32x4::<0xee>(c[j], c[4 + j]);
            let low1 = _mm512_shuffle_f32x4::<0x44>(c[8 + j], c[12 + j]);
            let high1 = _mm512_shuffle_f32x4::<0xee>(c[8 + j], c[12 + j]);
            out[j] = _mm512_shuffle_f32x4::<0x88>(low0, low1);
            out[4 + j] = _mm512_shuffle_f32x4::<0xdd>(low0, low1);
            out[8 + j] = _mm512_shuffle_f32x4::<0x88>(high0, high1);
            out[12 + j] = _mm512_shuffle_f32x4::<0xdd>(high0, high1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows x cols` values stored column-major, with bit patterns of every kind (NaNs
    /// with payloads, signalling NaNs, subnormals, negative zero) from a small generator.
    fn columns(rows: usize, cols: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                f32::from_bits(state)
            })
            .collect()
    }

    /// The transpose by its definition: value (r, c) at c * rows + r goes to r * cols + c.
    fn by_definition(src: &[f32], rows: usize, cols: usize) -> Vec<u32> {
        let mut out = vec![0; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                out[r * cols + c] = src[c * rows + r].to_bits();
            }
        }
        out
    }

    #[test]
    fn every_value_lands_in_its_place_with_its_bits() {
        // Full and partial tiles on both sides, one row or column, the reference
        // network's shapes and the input gradients' at width.
        let mut shapes: Vec<(usize, usize)> =
            (1..=33).flat_map(|r| [(r, 10), (10, r), (r, r)]).collect();
        shapes.extend([
            (784, 10),
            (30, 10),
            (1, 1000),
            (10, 1000),
            (128, 1000),
            (130, 262),
            (37, 203),
        ]);
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            let src = columns(rows, cols, i as u32);
            // A destination with a guard value past the end: nothing may be written there.
            let guard = f32::from_bits(0x7fc0_1234);
            let mut dst = vec![guard; rows * cols + 17];
            // SAFETY: `dst` holds rows * cols values (and the guard values after them).
            unsafe { transpose_into(&src, rows, cols, dst.as_mut_ptr()) };
            let ours: Vec<u32> = dst[..rows * cols].iter().map(|v| v.to_bits()).collect();
            assert_eq!(ours, by_definition(&src, rows, cols), "{rows} x {cols}");
            assert!(
                dst[rows * cols..]
                    .iter()
                    .all(|v| v.to_bits() == guard.to_bits())
            );
            // The portable path agrees (and is what f64 and CPUs without AVX-512 get).
            let mut portable = vec![0f32; rows * cols];
            // SAFETY: as above.
            unsafe { transpose_scalar(&src, rows, cols, portable.as_mut_ptr()) };
            assert_eq!(
                portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                ours
            );
        }
    }

    #[test]
    fn f64_takes_the_portable_path() {
        let src: Vec<f64> = (0..6).map(f64::from).collect();
        let mut dst = vec![0f64; 6];
        // SAFETY: `dst` holds 6 values.
        unsafe { transpose_into(&src, 2, 3, dst.as_mut_ptr()) };
        assert_eq!(dst, [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        assert_eq!(transposed(&src, 2, 3), dst);
    }
}
