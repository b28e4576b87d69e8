//! Building the `vgrad` binary.

use std::path::{Path, PathBuf};
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
    let target = target_dir(cuda);
    if cuda {
        cmd.args(["--features", "cuda", "--target-dir"])
            .arg(&target);
    }
    run(cmd).context(if cuda {
        "building vgrad with CUDA (it needs nvcc and the CUDA libraries: \
         eval \"$(scripts/cuda-toolchain.sh --link)\" provides them)"
    } else {
        "building vgrad"
    })?;
    let bin = binary(&target);
    if !bin.is_file() {
        bail!("cargo built vgrad, but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// The `vgrad` that [`vgrad`] built before, without building it: what a cluster's jobs
/// run, since the submitting command built it once for all of them.
pub fn built_vgrad(cuda: bool) -> Result<PathBuf> {
    let bin = binary(&target_dir(cuda));
    if !bin.is_file() {
        bail!(
            "--no-build: {} does not exist; build it with `cargo xtask sweep` (or `cargo \
             xtask sweep --slurm`, which builds it before submitting)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Cargo's target folder for the CPU build, or for the CUDA build when `cuda`.
fn target_dir(cuda: bool) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    if cuda { target.join("cuda") } else { target }
}

fn binary(target: &Path) -> PathBuf {
    target
        .join("release")
        .join(format!("vgrad{}", std::env::consts::EXE_SUFFIX))
}
