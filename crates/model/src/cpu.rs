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
