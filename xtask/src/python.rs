//! The Python environments of the workspace: TensorBoard's own event reader for the
//! tests, PyTorch for the benchmark's baseline. Each is a virtual environment in the
//! workspace, created on first use.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::build::run;
use crate::workspace_root;

/// The TensorBoard release the real-reader test runs against.
pub const TENSORBOARD: &str = "tensorboard==2.21.0";

/// The Python of the virtual environment `name` in the workspace, created with `packages`
/// unless it can already run `import_check`; `what` says what it is for, when it is made.
fn venv_python(name: &str, packages: &[&str], import_check: &str, what: &str) -> Result<PathBuf> {
    let venv = workspace_root().join(name);
    let python = venv.join("bin").join("python");
    let ready = |python: &PathBuf| {
        Command::new(python)
            .args(["-c", import_check])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.is_file() && ready(&python) {
        return Ok(python);
    }
    eprintln!(
        "preparing {} with {} for {what} (first run only)",
        venv.display(),
        packages.join(" ")
    );
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    run(create)
        .context("creating a Python virtual environment (is python3 with venv installed?)")?;
    let mut install = Command::new(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages);
    run(install).with_context(|| format!("installing {} from PyPI", packages.join(" ")))?;
    anyhow::ensure!(
        ready(&python),
        "{} cannot run `{import_check}` after the install",
        python.display()
    );
    Ok(python)
}

/// The Python of `.venv`, with TensorBoard.
pub fn tensorboard_python() -> Result<PathBuf> {
    venv_python(
        ".venv",
        &[TENSORBOARD],
        "import tensorboard.backend.event_processing.event_accumulator",
        "the TensorBoard reader test",
    )
}

/// The Python of `.venv-bench`, with PyTorch and numpy. PyPI's default PyTorch wheel
/// brings its CUDA libraries: about 5 GB.
pub fn torch_python() -> Result<PathBuf> {
    venv_python(
        ".venv-bench",
        &["torch", "numpy"],
        "import torch, numpy",
        "the benchmark's PyTorch baseline (PyPI's wheel is about 5 GB)",
    )
}
