//! Helpers of the workspace's end-to-end tests: run `vgrad` as a user would (through its
//! command-line parser) and read back the files it wrote.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use vgrad_cli::args::{Cli, Command};
use vgrad_record::RunSummary;
use vgrad_sweep::{Overrides, Sweep, SweepOptions, SweepOutcome};

/// Runs `vgrad train ARGS...` in this process and returns each run's folder and summary.
pub fn vgrad_train(args: &[&str]) -> Result<Vec<(PathBuf, RunSummary)>> {
    let cli = Cli::try_parse_from(["vgrad", "train"].iter().chain(args))?;
    let Command::Train(args) = cli.command else {
        anyhow::bail!("not a train command");
    };
    vgrad_cli::train_command(&args)
}

/// The lines of a run's `metrics.jsonl`, parsed.
pub fn metrics(run: &Path) -> Result<Vec<serde_json::Value>> {
    let path = run.join("metrics.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(|l| serde_json::from_str(l).context("a metrics line is not JSON"))
        .collect()
}

/// A run's `summary.json`, parsed.
pub fn summary_json(run: &Path) -> Result<serde_json::Value> {
    let path = run.join("summary.json");
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )?)
}

/// A binary of the workspace that `cargo xtask test` builds and names in `$env`, else
/// its release build `name`.
fn built_binary(env: &str, name: &str) -> PathBuf {
    let bin = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release").join(name));
    assert!(
        bin.is_file(),
        "{} does not exist: run the tests with `cargo xtask test`, which builds it",
        bin.display()
    );
    bin
}

/// The `vgrad` binary the sweep tests run.
pub fn vgrad_bin() -> PathBuf {
    built_binary("VGRAD_BIN", "vgrad")
}

/// The `xtask` binary.
pub fn xtask_bin() -> PathBuf {
    built_binary("VGRAD_XTASK_BIN", "xtask")
}

/// Options for a quiet sweep into `out` with the real `vgrad` binary.
pub fn sweep_options(out: &Path, jobs: usize) -> SweepOptions {
    SweepOptions {
        jobs,
        force: false,
        out: out.to_path_buf(),
        shard: None,
        vgrad: vgrad_bin(),
        quiet: true,
    }
}

/// What `cargo xtask sweep EXPERIMENT` does: trains the sweep file's missing runs, then
/// writes its report.
pub fn sweep(experiment: &Path, opts: &SweepOptions) -> Result<SweepOutcome> {
    let sweep = Sweep::load(experiment, &Overrides::default())?;
    let outcome = vgrad_sweep::runner::run(std::slice::from_ref(&sweep), opts)?;
    vgrad_report::write_report(&sweep, &opts.out)?;
    Ok(outcome)
}

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The geometric mean of positive numbers.
pub fn geometric_mean(values: &[f64]) -> f64 {
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}
