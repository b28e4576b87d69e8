//! Building the `vgrad` binary.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// `cargo`, as the one running this xtask.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd` and fails unless it succeeds.
pub fn run(mut cmd: Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Builds `vgrad` in release (with CUDA when `cuda`) and returns the binary's path. The
/// CUDA build goes to `target/cuda`, so it never replaces the CPU build that tests and
/// CPU sweeps run (it needs the CUDA libraries just to start).
pub fn vgrad(cuda: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--package",
        "vgrad-cli",
        "--bin",
        "vgrad",
    ]);
    let mut target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    if cuda {
        target = target.join("cuda");
        cmd.args(["--features", "cuda", "--target-dir"])
            .arg(&target);
    }
    run(cmd).context(if cuda {
        "building vgrad with CUDA (it needs nvcc and the CUDA libraries: \
         eval \"$(scripts/cuda-toolchain.sh --link)\" provides them)"
    } else {
        "building vgrad"
    })?;
    let bin = target
        .join("release")
        .join(format!("vgrad{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!("cargo built vgrad, but {} does not exist", bin.display());
    }
    Ok(bin)
}
