//! Safe wrappers of the process-level calls vgrad makes: the environment while the
//! process has one thread, mimalloc's options, and Linux's `prctl` flags.
//!
//! Each wrapper checks what its call needs or needs nothing, so that the crates above
//! hold no `unsafe`. Where an OS lacks the call, the wrapper says so in its result
//! ([`set_env_while_single_threaded`], [`disable_transparent_huge_pages`]) or does
//! nothing ([`die_with_parent`]), as each function's doc tells.

use std::ffi::{c_int, c_long};
use std::process::Command;

// The crate that builds and links the mimalloc library these functions come from.
use mimalloc as _;

unsafe extern "C" {
    // From the mimalloc library that the `mimalloc` crate links (`mimalloc.h`).
    fn mi_option_set(option: c_int, value: c_long);
    fn mi_option_get(option: c_int) -> c_long;
}

/// The mimalloc options vgrad sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MimallocOption {
    /// `mi_option_purge_delay`: milliseconds before freed memory is given back to the
    /// system; negative for never.
    PurgeDelay,
    /// `mi_option_allow_thp`: whether mimalloc advises transparent huge pages.
    AllowThp,
}

impl MimallocOption {
    /// The option's place in `mi_option_e` (mimalloc.h of mimalloc 3.3, which
    /// libmimalloc-sys 0.1.49 builds).
    fn index(self) -> c_int {
        match self {
            Self::PurgeDelay => 15,
            Self::AllowThp => 43,
        }
    }
}

/// Sets one of mimalloc's options, which it reads from then on.
pub fn set_mimalloc_option(option: MimallocOption, value: i64) {
    let value =
        c_long::try_from(value).unwrap_or(if value < 0 { c_long::MIN } else { c_long::MAX });
    // SAFETY: `mi_option_set` stores one value into mimalloc's option table (the index is
    // one of the enum's, in range); it may be called at any time, from any thread.
    unsafe { mi_option_set(option.index(), value) };
}

/// The current value of one of mimalloc's options.
pub fn mimalloc_option(option: MimallocOption) -> c_long {
    // SAFETY: `mi_option_get` reads mimalloc's option table (initialising it on first
    // use), at an index in range; any thread may call it.
    unsafe { mi_option_get(option.index()) }
}

/// Why a process-level call was refused.
#[derive(Debug)]
pub enum PlatformError {
    /// The environment can be changed safely only while the process has one thread.
    Threads(usize),
    /// Counting the process's threads or the call itself failed.
    Io(std::io::Error),
    /// This OS offers no way to check or make the call.
    Unsupported(&'static str),
}

// By hand rather than with `thiserror`: this crate keeps to candle, gemm and the
// platform's own libraries.
impl std::error::Error for PlatformError {}

impl std::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Threads(n) => write!(
                f,
                "the environment can only be changed while the process has one thread; it has {n}"
            ),
            Self::Io(err) => write!(f, "{err}"),
            Self::Unsupported(what) => write!(f, "{what} is not supported on this system"),
        }
    }
}

/// How many threads this process has (the entries of `/proc/self/task`).
#[cfg(target_os = "linux")]
fn thread_count() -> Result<usize, PlatformError> {
    let entries = std::fs::read_dir("/proc/self/task").map_err(PlatformError::Io)?;
    let mut n = 0;
    for entry in entries {
        entry.map_err(PlatformError::Io)?;
        n += 1;
    }
    Ok(n)
}

/// Sets the environment variable `key` to `value`, provided the process has exactly one
/// thread: `std::env::set_var` races with any read of the environment on another thread
/// (candle reads it on every op), and with one thread there is none, nor can one start
/// before this returns, since only this thread could start it.
///
/// On Linux the threads are counted in `/proc/self/task`; a process with more threads
/// gets [`PlatformError::Threads`]. Elsewhere there is no count to trust, and the call is
/// refused with [`PlatformError::Unsupported`]: callers pass such settings to child
/// processes through `Command::env` instead, or go without.
pub fn set_env_while_single_threaded(key: &str, value: &str) -> Result<(), PlatformError> {
    #[cfg(target_os = "linux")]
    {
        let threads = thread_count()?;
        if threads != 1 {
            return Err(PlatformError::Threads(threads));
        }
        // SAFETY: this is the process's only thread (counted just above), so nothing reads
        // or writes the environment concurrently, and no thread can start meanwhile.
        unsafe { std::env::set_var(key, value) };
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (key, value);
        Err(PlatformError::Unsupported("counting a process's threads"))
    }
}

/// Has the kernel back this process's memory with 4 KiB pages only
/// (`PR_SET_THP_DISABLE`); a kernel older than 3.15 refuses, with an error. On other
/// systems, [`PlatformError::Unsupported`].
pub fn disable_transparent_huge_pages() -> Result<(), PlatformError> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE with arguments (1, 0, 0, 0) sets one flag of this
        // process's memory map and touches no memory of ours.
        let done = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if done == -1 {
            return Err(PlatformError::Io(std::io::Error::last_os_error()));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    Err(PlatformError::Unsupported("PR_SET_THP_DISABLE"))
}

/// Whether the kernel may back this process's memory with transparent huge pages (the
/// flag [`disable_transparent_huge_pages`] clears); `None` where it cannot be read.
pub fn transparent_huge_pages_allowed() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_GET_THP_DISABLE only reads the flag; it takes no pointer.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        (disabled >= 0).then_some(disabled == 0)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Makes the child `cmd` starts receive SIGKILL when the thread that started it exits
/// (`PR_SET_PDEATHSIG`, set in the child between fork and exec): a parent killed with
/// SIGKILL leaves no children behind. A child whose parent died before the flag was set
/// is not covered. Elsewhere than on Linux, nothing is done.
pub fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe calls are allowed: it calls prctl, which is one, and reads
        // errno; it allocates nothing and touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mimalloc_options_are_read_back() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // mimalloc 3's default, read from the place `MimallocOption` names.
        assert_eq!(mimalloc_option(MimallocOption::PurgeDelay), 1000);
        set_mimalloc_option(MimallocOption::PurgeDelay, -1);
        assert_eq!(mimalloc_option(MimallocOption::PurgeDelay), -1);
    }

    #[test]
    fn huge_pages_are_turned_off() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        // mimalloc 3's default on Linux.
        assert_eq!(mimalloc_option(MimallocOption::AllowThp), 1);
        set_mimalloc_option(MimallocOption::AllowThp, 0);
        assert_eq!(mimalloc_option(MimallocOption::AllowThp), 0);
        if cfg!(target_os = "linux") {
            assert_eq!(transparent_huge_pages_allowed(), Some(true));
            disable_transparent_huge_pages().expect("Linux 3.15 or later");
            assert_eq!(transparent_huge_pages_allowed(), Some(false));
        }
    }

    #[test]
    fn the_environment_is_left_alone_while_other_threads_run() {
        // The test harness runs this on a thread of its own, beside the main thread.
        let refused = set_env_while_single_threaded("VGRAD_KERNELS_TEST", "1");
        if cfg!(target_os = "linux") {
            assert!(
                matches!(refused, Err(PlatformError::Threads(n)) if n > 1),
                "{refused:?}"
            );
        } else {
            assert!(matches!(refused, Err(PlatformError::Unsupported(_))));
        }
        assert!(std::env::var_os("VGRAD_KERNELS_TEST").is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_dies_with_the_thread_that_started_it() -> std::io::Result<()> {
        use std::os::unix::process::ExitStatusExt;
        let parent = std::thread::spawn(|| {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            die_with_parent(&mut cmd);
            cmd.spawn()
        });
        let mut child = parent
            .join()
            .map_err(|_| std::io::Error::other("the spawning thread panicked"))??;
        // Its parent thread is gone: the kernel sends SIGKILL at once, long before 30 s.
        let status = child.wait()?;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        Ok(())
    }
}
