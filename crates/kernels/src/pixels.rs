//! Turning a batch's MNIST bytes into the f32 pixels the first layer reads.

/// Asks the processor to bring every cache line of `bytes` towards its caches; a hint
/// that reads and changes nothing.
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint that never faults, to any address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

crate::with_cpu_feature! {
    /// Appends `pixels / 255` to `out`. Each step converts every image of its batch (an
    /// ensemble of 10 at the reference size: 235,000 pixels a step). For each of the 256
    /// byte values, the f32 quotient x / 255 is the f64 product x * (1/255) rounded to f32
    /// (checked for every value by a test; an f32 product differs for 126 of them), and a
    /// product is several times cheaper than a division. Where the CPU has AVX-512 the
    /// same loop is compiled for it, sixteen values at a time.
    pub fn scale_pixels(pixels: &[u8], out: &mut Vec<f32>) = scale_pixels_loop if "avx512f";
}

#[inline(always)]
fn scale_pixels_loop(pixels: &[u8], out: &mut Vec<f32>) {
    const INVERSE: f64 = 1.0 / 255.0;
    out.extend(pixels.iter().map(|&p| (f64::from(p) * INVERSE) as f32));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pixel_value_scales_to_the_bits_of_one_division() {
        // Every byte value, at every position of a 16-wide vector and in the tail.
        let pixels: Vec<u8> = (0..=255u8).cycle().take(256 * 17 + 5).collect();
        let mut out = vec![f32::NAN; 3];
        scale_pixels(&pixels, &mut out);
        assert_eq!(out.len(), 3 + pixels.len(), "appended");
        for (&p, &x) in pixels.iter().zip(&out[3..]) {
            assert_eq!(x.to_bits(), (f32::from(p) / 255.0).to_bits(), "{p}");
        }
        let mut portable = Vec::new();
        scale_pixels_loop(&pixels, &mut portable);
        assert_eq!(
            &out[3..],
            &portable[..],
            "the AVX-512 copy gives the same bits"
        );
    }

    #[test]
    fn a_prefetch_changes_nothing() {
        let bytes: Vec<u8> = (0..200).collect();
        prefetch(&bytes);
        prefetch(&[]);
        assert_eq!(bytes, (0..200).collect::<Vec<u8>>());
    }
}
