//! The `cargo xtask` commands as a library, so end-to-end tests can drive them: build
//! `vgrad`, run sweeps as parallel `vgrad train` processes, write reports.

pub mod bench;
pub mod build;
pub mod python;
pub mod report;
pub mod sweep;

use std::path::{Path, PathBuf};

/// The workspace root (the folder above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The sweep file an EXPERIMENT argument names: an existing path as it is, otherwise
/// `experiments/<name>.toml` in the workspace.
pub fn experiment_path(arg: &str) -> PathBuf {
    let path = PathBuf::from(arg);
    if path.is_file() {
        path
    } else {
        workspace_root()
            .join("experiments")
            .join(format!("{arg}.toml"))
    }
}
