//! `cargo xtask report`: the report of a sweep from the runs on disk.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vgrad_sweep::{Overrides, Sweep, SweepDefinition};

/// The command that reproduces a sweep, for the report.
pub fn reproduce_command(sweep: &Sweep, overrides: &Overrides) -> String {
    let mut cmd = format!("cargo xtask sweep {}", sweep.name());
    if overrides.device.as_deref() == Some("cuda") {
        cmd.push_str(" --cuda");
    }
    if let Some(steps) = overrides.steps {
        cmd.push_str(&format!(" --steps {steps}"));
    }
    if let Some(seeds) = overrides.seeds {
        cmd.push_str(&format!(" --seeds {seeds}"));
    }
    cmd
}

/// Loads the sweep at `path` with `overrides`.
pub fn load_sweep(path: &Path, overrides: &Overrides) -> Result<Sweep> {
    let definition = SweepDefinition::load(path)?;
    Ok(Sweep::new(definition, overrides)?)
}

/// Writes `<out>/reports/<experiment>.md` from `<out>/runs/<experiment>/`.
pub fn write_report(sweep: &Sweep, overrides: &Overrides, out: &Path) -> Result<PathBuf> {
    let runs_dir = out.join("runs").join(sweep.name());
    let reports_dir = out.join("reports");
    let scenarios = vgrad_report::collect(sweep, &runs_dir)
        .with_context(|| format!("reading the runs of {}", sweep.name()))?;
    let shown_runs_dir = runs_dir.strip_prefix(out).unwrap_or(&runs_dir);
    let path = vgrad_report::write(
        sweep,
        &scenarios,
        &reports_dir,
        shown_runs_dir,
        &reproduce_command(sweep, overrides),
    )
    .with_context(|| format!("writing the report of {}", sweep.name()))?;
    Ok(path)
}
