//! candle's thread count, which must be fixed before its first operation.

/// Sets the number of threads candle's CPU kernels use. Left at its default, candle reads
/// `/proc/cpuinfo` on every matmul and its element-wise pool spins on larger tensors: the
/// small steps of this study got 5-16x slower. A `RAYON_NUM_THREADS` already set by the
/// user wins. Child processes get it through `Command::env` instead.
///
/// # Safety
///
/// No other thread may be running: the variable is set with `std::env::set_var`, which
/// races with any concurrent read of the environment (candle reads it on every op). Call
/// it first thing in `main`.
pub unsafe fn configure(threads: usize) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: the caller guarantees that this is the only thread.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.max(1).to_string()) };
    }
}
