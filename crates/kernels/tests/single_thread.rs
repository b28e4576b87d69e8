//! The environment is set while the process has one thread: without the test harness,
//! `main` is the only thread.

use vgrad_kernels::platform::{PlatformError, set_env_while_single_threaded};

fn main() {
    let set = set_env_while_single_threaded("VGRAD_KERNELS_SINGLE", "7");
    if cfg!(target_os = "linux") {
        assert!(set.is_ok(), "{set:?}");
        assert_eq!(std::env::var("VGRAD_KERNELS_SINGLE").as_deref(), Ok("7"));
        // A second thread, alive while the call is made, makes it refuse.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        let refused = set_env_while_single_threaded("VGRAD_KERNELS_SINGLE", "8");
        assert!(
            matches!(refused, Err(PlatformError::Threads(2))),
            "{refused:?}"
        );
        drop(tx);
        let _ = other.join();
        assert_eq!(std::env::var("VGRAD_KERNELS_SINGLE").as_deref(), Ok("7"));
    } else {
        assert!(matches!(set, Err(PlatformError::Unsupported(_))));
    }
    println!("single_thread: ok");
}
