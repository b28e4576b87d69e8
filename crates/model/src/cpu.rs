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
