//! `cargo xtask test`: prepares what the tests need, then runs the workspace's tests.

use anyhow::Result;

use crate::build::{cargo, run};

/// Builds `vgrad` (the sweep tests run the real binary) and `.venv` (the TensorBoard test
/// reads event files with TensorBoard's own reader), then `cargo test --workspace` in
/// release mode with `args`, since the tests train real networks. The `--data hf` test
/// needs the tests crate's `hub` feature, which this leaves off (it would double the
/// build for one test); CI runs it in a step of its own (`.ci/run`).
pub fn run_tests(args: &[String]) -> Result<()> {
    let vgrad = crate::build::vgrad(false)?;
    let python = crate::python::tensorboard_python()?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--release"])
        .args(args)
        .env("VGRAD_BIN", vgrad)
        .env("VGRAD_TB_PYTHON", python)
        .env("VGRAD_XTASK_BIN", std::env::current_exe()?)
        // One candle thread per test process, as `vgrad` sets for itself: the tests train
        // in-process, where nothing else may set the environment once threads run.
        .env("RAYON_NUM_THREADS", "1");
    run(cmd)
}
