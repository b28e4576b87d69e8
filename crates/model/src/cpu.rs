//! Helpers shared by the custom CPU ops of this crate.

use candle_core::{Layout, Result, bail};

/// The part of a CPU buffer that a contiguous `layout` covers; `op` names the op in the
/// error for a non-contiguous operand.
pub fn contiguous<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: expects contiguous operands"),
    }
}

/// The bits of an f32 infinity's magnitude: a magnitude's bits at or above them are an
/// infinity or a NaN.
pub const INFINITY_BITS: u32 = 0x7f80_0000;

crate::with_cpu_feature! {
    /// The largest `|v|` of `values` as the bits of an f32 magnitude (0 when empty): below
    /// [`INFINITY_BITS`] exactly when every value is finite, and then `f32::from_bits` of it
    /// is the largest magnitude. Branch-free over lanes of 16, so it vectorises;
    /// `any(!is_finite)` stops early but scans one value at a time, which cost a sixth of a
    /// step at width 1000.
    pub fn largest_magnitude(values: &[f32]) -> u32 = largest_magnitude_scan if "avx512f";
}

#[inline(always)]
fn largest_magnitude_scan(values: &[f32]) -> u32 {
    const MAGNITUDE: u32 = 0x7fff_ffff;
    let mut lanes = [0u32; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = (*lane).max(v.to_bits() & MAGNITUDE);
        }
    }
    let tail = chunks.remainder().iter().map(|v| v.to_bits() & MAGNITUDE);
    lanes.into_iter().chain(tail).max().unwrap_or(0)
}

/// Whether every value is finite (see [`largest_magnitude`]).
pub fn all_finite(values: &[f32]) -> bool {
    largest_magnitude(values) < INFINITY_BITS
}

/// Defines `fn $name(args) -> ret` that runs `$portable(args)` compiled for the x86-64
/// target feature `$feature` (e.g. `"avx512f"`) where the CPU has it, and as built
/// elsewhere. The build targets baseline x86-64, whose 128-bit vectors halve or quarter
/// what wide loops could do per instruction; the feature is detected at run time, once per
/// call (a cached check).
///
/// `$portable` must be `#[inline(always)]`, so that its body is compiled again inside the
/// feature-enabled copy. The numbers are the same either way as long as its loops apply
/// the same IEEE operations to each value, which wider vectors do (Rust never fuses a
/// multiply and an add on its own); each use has a test comparing the two bit for bit.
#[macro_export]
macro_rules! with_cpu_feature {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
            = $portable:ident if $feature:tt;
    ) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!($feature) {
                #[target_feature(enable = $feature)]
                fn with_feature($($arg: $ty),*) $(-> $ret)? {
                    $portable($($arg),*)
                }
                // SAFETY: this CPU has the feature, checked just above.
                return unsafe { with_feature($($arg),*) };
            }
            $portable($($arg),*)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lane_scan_finds_the_largest_magnitude_and_any_non_finite_value() {
        let specials = [
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            -f32::MAX,
            f32::MIN_POSITIVE,
            -0.0,
            1e-45,
            -7.0,
        ];
        for len in [0, 1, 15, 16, 17, 33, 100] {
            for at in 0..len {
                for &special in &specials {
                    let mut values = vec![0.5f32; len];
                    values[at] = special;
                    let expected = values.iter().all(|v| v.is_finite());
                    assert_eq!(all_finite(&values), expected, "{special} at {at} of {len}");
                    let portable = largest_magnitude_scan(&values);
                    assert_eq!(largest_magnitude(&values), portable, "{special} at {at}");
                    if expected {
                        let largest = values.iter().fold(0f32, |m, v| m.max(v.abs()));
                        assert_eq!(f32::from_bits(portable), largest, "{special} at {at}");
                    }
                }
            }
            assert!(all_finite(&vec![-3.0f32; len]));
        }
        assert_eq!(largest_magnitude(&[]), 0);
    }
}
