//! candle's thread count, which must be fixed before its first operation.

use vgrad_kernels::platform::{PlatformError, set_env_while_single_threaded};

/// Sets the number of threads candle's CPU kernels use. Left at its default, candle reads
/// `/proc/cpuinfo` on every matmul and its element-wise pool spins on larger tensors: the
/// small steps of this study got 5-16x slower. A `RAYON_NUM_THREADS` already set by the
/// user wins. Child processes get it through `Command::env` instead.
///
/// The variable can only be set while the process has one thread (candle reads the
/// environment on every op), so call this first thing in `main`; otherwise, and on
/// systems where the threads cannot be counted, it is refused with an error.
pub fn configure(threads: usize) -> Result<(), PlatformError> {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return Ok(());
    }
    set_env_while_single_threaded("RAYON_NUM_THREADS", &threads.max(1).to_string())
}
