//! `cargo xtask sweep`: trains the sweeps' missing runs and writes their reports.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use vgrad_record::RunState;
use vgrad_sweep::{Shard, Sweep, SweepOptions};

/// Runs `sweeps` with the `vgrad` binary at `vgrad`, into `out`, then writes each report
/// (unless this is one shard of several, whose report waits for the others).
pub fn run(
    sweeps: &[Sweep],
    vgrad: PathBuf,
    out: PathBuf,
    jobs: usize,
    force: bool,
    shard: Option<Shard>,
) -> Result<()> {
    let opts = SweepOptions {
        jobs,
        force,
        out: out.clone(),
        shard,
        vgrad,
        quiet: false,
    };
    let outcome = vgrad_sweep::runner::run(sweeps, &opts).context("running the sweep")?;
    for sweep in sweeps {
        if let Some(shard) = shard {
            // Other shards may be writing now; the report is merged once they are done.
            eprintln!(
                "shard {shard} of {} done; once every shard is, write the report with `cargo xtask report {}` and the same --steps, --seeds, --cuda and --out",
                sweep.name(),
                sweep.name()
            );
            continue;
        }
        let report = vgrad_report::write_report(sweep, &out)
            .with_context(|| format!("writing the report of {}", sweep.name()))?;
        eprintln!("wrote {}", report.display());
    }
    eprintln!(
        "{} runs trained in {:.1} s, {} already done, {} failed",
        outcome.ran, outcome.seconds, outcome.resumed, outcome.failed
    );
    if outcome.failed > 0 {
        bail!(
            "{} runs failed; the report lists them, and their folders hold error.txt",
            outcome.failed
        );
    }
    Ok(())
}

/// Writes the report of `sweep` from the runs in `out` and returns how many of those runs
/// are missing, unfinished or failed (diverged runs are results, not missing); the runs
/// are read once for both.
pub fn report(sweep: &Sweep, out: &std::path::Path) -> Result<usize> {
    let scenarios = vgrad_report::collect(sweep, &sweep.runs_dir(out))
        .with_context(|| format!("writing the report of {}", sweep.name()))?;
    let path = vgrad_report::write_collected(sweep, &scenarios, out)
        .with_context(|| format!("writing the report of {}", sweep.name()))?;
    eprintln!("wrote {}", path.display());
    Ok(scenarios
        .iter()
        .flat_map(|s| &s.runs)
        .filter(|r| !matches!(r.state, RunState::Done(_)))
        .count())
}
