//! The Python environment the tests need: TensorBoard's own event reader.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::build::run;
use crate::workspace_root;

/// The TensorBoard release the real-reader test runs against.
pub const TENSORBOARD: &str = "tensorboard==2.21.0";

/// The Python of `.venv` in the workspace, created with TensorBoard on first use.
pub fn tensorboard_python() -> Result<PathBuf> {
    let venv = workspace_root().join(".venv");
    let python = venv.join("bin").join("python");
    let ready = |python: &PathBuf| {
        Command::new(python)
            .args([
                "-c",
                "import tensorboard.backend.event_processing.event_accumulator",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.is_file() && ready(&python) {
        return Ok(python);
    }
    eprintln!(
        "preparing {} with {TENSORBOARD} (first run only)",
        venv.display()
    );
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    run(create)
        .context("creating the Python virtual environment (is python3 with venv installed?)")?;
    let mut install = Command::new(&python);
    install.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        TENSORBOARD,
    ]);
    run(install).with_context(|| format!("installing {TENSORBOARD} from PyPI"))?;
    anyhow::ensure!(
        ready(&python),
        "{} cannot import tensorboard after installing it",
        python.display()
    );
    Ok(python)
}

/// The PyTorch release the benchmark's baseline runs on.
pub const TORCH: &str = "torch";

/// The Python of `.venv-bench` in the workspace, created with PyTorch and numpy on first
/// use. PyPI's default PyTorch wheel brings its CUDA libraries: about 5 GB.
pub fn torch_python() -> Result<PathBuf> {
    let venv = workspace_root().join(".venv-bench");
    let python = venv.join("bin").join("python");
    let ready = |python: &PathBuf| {
        Command::new(python)
            .args(["-c", "import torch, numpy"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.is_file() && ready(&python) {
        return Ok(python);
    }
    eprintln!(
        "creating {} with PyTorch and numpy for the baseline (first run only; PyPI's wheel is about 5 GB)",
        venv.display()
    );
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    run(create).context("creating the Python virtual environment")?;
    let mut install = Command::new(&python);
    install.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        TORCH,
        "numpy",
    ]);
    run(install).context("installing PyTorch from PyPI")?;
    anyhow::ensure!(
        ready(&python),
        "{} cannot import torch after installing it",
        python.display()
    );
    Ok(python)
}
