//! How vgrad's memory is held: mimalloc keeps what a run frees, in small pages.

use std::ffi::c_long;

use vgrad_kernels::platform::{
    MimallocOption, disable_transparent_huge_pages, mimalloc_option, set_mimalloc_option,
};

/// Has mimalloc keep the memory a process frees for its own later allocations instead of
/// purging it (giving it back to the system) a second after it was freed.
///
/// A training step frees and allocates the same large buffers again and again. Purged,
/// they were faulted in and zeroed by the kernel again every second or so: at width 1000
/// and batch 128 a 200-step run took 7,000-13,000 page faults instead of about 500, and
/// some runs 5-10x the system time (their steps up to a fifth slower); the median step
/// moved within the machine's noise. Purging with a reset instead
/// (`MIMALLOC_PURGE_DECOMMITS=0`) avoided the faults but its steps were slower. A process
/// keeps at most its peak, which a run reaches in its first steps and its evaluation
/// anyway. A `MIMALLOC_PURGE_DELAY` already set by the user wins.
pub fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_mimalloc_option(MimallocOption::PurgeDelay, -1);
    }
}

/// Has the kernel back vgrad's memory with 4 KiB pages, not transparent huge pages.
///
/// mimalloc asks for huge pages (`madvise(MADV_HUGEPAGE)`) on its arenas. On the 2-core
/// VM each fresh 2 MiB page cost about 30 ms of system time when the run started (the
/// kernel's `clear_page` on memory the hypervisor had taken back), 0.5-0.9 s of a
/// 1.3 s reference ensemble run and about 0.9 s of the first 100 steps at width 1000;
/// in 4 KiB pages the same memory faults in for under 0.1 s. Steps after the first did
/// not get slower (width 1000 at batch 128: 22.2 ms a step against 22.9 ms; the
/// reference step: 70.8 against 70.3 us). `MIMALLOC_ALLOW_THP` set by the user wins.
pub fn small_pages_only() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // mimalloc stops advising huge pages on the memory it maps from now on.
    set_mimalloc_option(MimallocOption::AllowThp, 0);
    // The memory mimalloc mapped before main (its first arena) is advised already; this
    // process-wide flag overrides that advice. A kernel older than 3.15 (or another
    // system) refuses it, and the run merely keeps huge pages.
    let _ = disable_transparent_huge_pages();
}

/// mimalloc's delay before it purges freed memory, in milliseconds; negative for never.
pub fn purge_delay_ms() -> c_long {
    mimalloc_option(MimallocOption::PurgeDelay)
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

    #[test]
    fn huge_pages_are_turned_off() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        use vgrad_kernels::platform::transparent_huge_pages_allowed;
        // mimalloc 3's default on Linux.
        assert_eq!(mimalloc_option(MimallocOption::AllowThp), 1);
        #[cfg(target_os = "linux")]
        assert_eq!(transparent_huge_pages_allowed(), Some(true));
        small_pages_only();
        assert_eq!(mimalloc_option(MimallocOption::AllowThp), 0);
        #[cfg(target_os = "linux")]
        assert_eq!(transparent_huge_pages_allowed(), Some(false));
    }
}
