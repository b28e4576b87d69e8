//! Helpers shared by the custom CPU ops of this crate.

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, bail};

/// The part of a CPU buffer that a contiguous `layout` covers; `op` names the op in the
/// error for a non-contiguous operand.
pub fn contiguous<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: expects contiguous operands"),
    }
}

/// `f` on the values of two f32 tensors held contiguously on the CPU, read in place;
/// `None` (without calling `f`) where either is not.
pub fn with_f32_values<R>(
    a: &Tensor,
    b: &Tensor,
    f: impl FnOnce(&[f32], &[f32]) -> R,
) -> Option<R> {
    let (a_storage, a_layout) = a.storage_and_layout();
    let (b_storage, b_layout) = b.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(a)), Storage::Cpu(CpuStorage::F32(b))) =
        (&*a_storage, &*b_storage)
    else {
        return None;
    };
    let ((a0, a1), (b0, b1)) = (
        a_layout.contiguous_offsets()?,
        b_layout.contiguous_offsets()?,
    );
    Some(f(&a[a0..a1], &b[b0..b1]))
}

/// The bits of an f32 infinity's magnitude: a magnitude's bits at or above them are an
/// infinity or a NaN.
pub const INFINITY_BITS: u32 = 0x7f80_0000;

crate::with_cpu_feature! {
    /// The largest `|v|` of `values` as the bits of an f32 magnitude (0 when empty): below
    /// [`INFINITY_BITS`] exactly when every value is finite, and then `f32::from_bits` of it
    /// is the largest magnitude. A branch-free integer max over the values' bits, which
    /// LLVM vectorises with plain loads (a max over an array of 16 lanes became gathers,
    /// 3% of a step at width 1000); `any(!is_finite)` stops early but scans one value at a
    /// time, which cost a sixth of a step at width 1000.
    pub fn largest_magnitude(values: &[f32]) -> u32 = largest_magnitude_scan if "avx512f";
}

#[inline(always)]
fn largest_magnitude_scan(values: &[f32]) -> u32 {
    const MAGNITUDE: u32 = 0x7fff_ffff;
    values
        .iter()
        .fold(0, |largest, v| largest.max(v.to_bits() & MAGNITUDE))
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
    use candle_core::{DType, Device};

    #[test]
    fn values_are_read_in_place_only_from_contiguous_f32_on_the_cpu() -> Result<()> {
        let t = Tensor::arange(0f32, 6.0, &Device::Cpu)?.reshape((2, 3))?;
        let row = t.narrow(0, 1, 1)?;
        let sums = with_f32_values(&row, &t, |a, b| (a.to_vec(), b.len()));
        assert_eq!(sums, Some((vec![3.0, 4.0, 5.0], 6)));
        assert_eq!(with_f32_values(&t.t()?, &t, |_, _| ()), None);
        assert_eq!(
            with_f32_values(&t, &t.to_dtype(DType::F64)?, |_, _| ()),
            None
        );
        Ok(())
    }

    #[test]
    fn the_scan_finds_the_largest_magnitude_and_any_non_finite_value() {
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
