//! candle's thread count, which must be fixed before its first operation.

use std::sync::Once;

/// Sets the number of threads candle's CPU kernels use, once per process, before any
/// candle op runs. Left at its default, candle reads `/proc/cpuinfo` on every matmul and
/// its element-wise pool spins on larger tensors: the small steps of this study got 5-16x
/// slower. A `RAYON_NUM_THREADS` already set by the user wins.
pub fn configure(threads: usize) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            // SAFETY: called at start-up, before candle or rayon start threads that read the
            // environment; Rust's own environment accesses are serialised by std.
            unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.max(1).to_string()) };
        }
    });
}
