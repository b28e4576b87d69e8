//! Whether mimalloc gives freed memory back to the system during training.

use std::ffi::{c_int, c_long};

// The crate that builds and links the mimalloc library these functions come from.
use mimalloc as _;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e` (mimalloc.h of
/// mimalloc 3.3, which libmimalloc-sys 0.1.49 builds).
const PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    // From the mimalloc library that the `mimalloc` crate links (`mimalloc.h`).
    fn mi_option_set(option: c_int, value: c_long);
    fn mi_option_get(option: c_int) -> c_long;
}

/// Has mimalloc keep the memory a process frees for its own later allocations instead of
/// purging it (giving it back to the system) a second after it was freed.
///
/// A training step frees and allocates the same large buffers again and again. Purged,
/// they were faulted in and zeroed by the kernel again every second or so: at width 1000
/// and batch 128 a 200-step run took 7,000-13,000 page faults instead of about 500, and
/// some runs 5-10x the system time (their steps up to a fifth slower); the median step
/// moved within the machine's noise. Purging with a reset instead
/// (`MIMALLOC_PURGE_DECOMMITS=0`) avoided the faults but split the huge pages gemm reads,
/// and its steps were slower. A process keeps at most its peak, which a run reaches in
/// its first steps and its evaluation anyway. A `MIMALLOC_PURGE_DELAY` already set by the
/// user wins.
pub fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores one value into mimalloc's option table, which
        // mimalloc reads on each purge; it may be called at any time, from any thread.
        unsafe { mi_option_set(PURGE_DELAY, -1) };
    }
}

/// mimalloc's delay before it purges freed memory, in milliseconds; negative for never.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: `mi_option_get` reads mimalloc's option table (initialising it on first use).
    unsafe { mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_pages_are_kept() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // mimalloc 3's default, read from the place this module names.
        assert_eq!(purge_delay_ms(), 1000);
        keep_freed_pages();
        assert_eq!(purge_delay_ms(), -1);
    }
}
