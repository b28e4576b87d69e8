//! `cargo xtask sweep`: its flags, checked and handed to the sweep crate's [`Executor`],
//! which trains the sweeps' missing runs here or submits them to Slurm; then, after a
//! run here, their reports.

use std::num::NonZeroUsize;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use vgrad_record::RunState;
use vgrad_sweep::slurm::{self, SlurmOptions};
use vgrad_sweep::{
    Executor, Outcome, RUNS_WITHOUT_CONFIRMATION, Shard, Sweep, SweepOptions, SweepOutcome,
};

use crate::{Selection, build, experiment_path, workspace_root};

/// The flags of `cargo xtask sweep` beside the selection of sweeps.
#[derive(Debug, Args)]
pub struct SweepFlags {
    /// Training processes at once (default: the number of cores).
    #[arg(long, value_parser = crate::at_least_one)]
    jobs: Option<NonZeroUsize>,
    /// Rerun runs that already finished.
    #[arg(long)]
    force: bool,
    /// Run only the K-th of N disjoint slices of each grid (K from 0), e.g. 0/4.
    #[arg(long, conflicts_with = "slurm")]
    shard: Option<Shard>,
    /// Start a sweep of more runs than RUNS_WITHOUT_CONFIRMATION (5,000) too.
    #[arg(long)]
    yes: bool,
    /// Use the vgrad binary already built instead of building it (Slurm's jobs do:
    /// the submitting command built it once for all of them).
    #[arg(long)]
    no_build: bool,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// The flags of `cargo xtask sweep --slurm`, named as `sbatch` names them.
#[derive(Debug, Args)]
struct SlurmArgs {
    /// Submit the sweep to Slurm (a job array of shards and a report job that waits for
    /// it) instead of training here.
    #[arg(long)]
    slurm: bool,
    /// Array tasks: the grid is split into this many disjoint shards, one per task.
    #[arg(long, value_name = "N", default_value_t = SlurmOptions::DEFAULT_ARRAY,
          value_parser = crate::at_least_one)]
    array: NonZeroUsize,
    /// The partition (queue) of every job; `sinfo -s` lists a cluster's partitions.
    #[arg(long)]
    partition: Option<String>,
    /// Time limit of each job, as sbatch takes it (minutes, `H:MM:SS`, `D-HH`).
    #[arg(long)]
    time: Option<String>,
    /// CPUs per array task; each shard trains that many runs at once.
    #[arg(long, value_name = "N", default_value_t = SlurmOptions::DEFAULT_CPUS_PER_TASK,
          value_parser = crate::at_least_one)]
    cpus_per_task: NonZeroUsize,
    /// Another sbatch flag for every job, e.g. `--sbatch-arg=--mem=4G` or
    /// `--sbatch-arg=--account=lab` (repeatable).
    #[arg(long = "sbatch-arg", value_name = "FLAG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Follow the jobs until the report job ends, and exit with its status.
    #[arg(long)]
    wait: bool,
}

impl SlurmArgs {
    /// The Slurm flags given without `--slurm`, which would otherwise be ignored.
    fn stray_flags(&self) -> Vec<&'static str> {
        let mut stray = Vec::new();
        if self.partition.is_some() {
            stray.push("--partition");
        }
        if self.time.is_some() {
            stray.push("--time");
        }
        if !self.sbatch_args.is_empty() {
            stray.push("--sbatch-arg");
        }
        if self.wait {
            stray.push("--wait");
        }
        stray
    }

    /// The submission's options, for the sweep crate.
    fn options(&self) -> SlurmOptions {
        SlurmOptions {
            array: self.array,
            partition: self.partition.clone(),
            time: self.time.clone(),
            cpus_per_task: self.cpus_per_task,
            sbatch_args: self.sbatch_args.clone(),
            wait: self.wait,
        }
    }
}

/// Checks the flags, builds `vgrad`, then trains the selected sweeps here and writes their
/// reports (unless this is one shard of several, whose report waits for the others), or
/// submits them to Slurm.
pub fn run(selection: &Selection, flags: &SweepFlags) -> Result<()> {
    let sweeps = selection.sweeps()?;
    confirm_size(&sweeps, flags.yes)?;
    if !flags.slurm.slurm
        && let Some(flag) = flags.slurm.stray_flags().first()
    {
        bail!("{flag} is a flag of --slurm: add --slurm to submit the sweep to Slurm");
    }
    if flags.slurm.slurm && flags.jobs.is_some() {
        bail!("--jobs is not for --slurm: each array task trains --cpus-per-task runs at once");
    }
    let vgrad = if flags.no_build {
        build::built_vgrad(selection.cuda)?
    } else {
        build::vgrad(selection.cuda)?
    };
    let executor = if flags.slurm.slurm {
        Executor::Slurm {
            plan: slurm_plan(selection, flags.force)?,
            options: flags.slurm.options(),
        }
    } else {
        Executor::Local(SweepOptions {
            jobs: flags.jobs.map_or_else(
                || std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
                NonZeroUsize::get,
            ),
            force: flags.force,
            out: selection.out(),
            shard: flags.shard,
            vgrad,
            quiet: false,
        })
    };
    match executor.run(&sweeps)? {
        // Slurm's report job writes the reports, and the submission printed how to follow it.
        Outcome::Submitted(_) => Ok(()),
        Outcome::Trained(outcome) => finish_here(&sweeps, &selection.out(), flags.shard, &outcome),
    }
}

/// Refuses a sweep of more runs than a sweep starts without asking, unless `yes`.
fn confirm_size(sweeps: &[Sweep], yes: bool) -> Result<()> {
    let runs: usize = sweeps.iter().map(Sweep::runs).sum();
    if runs <= RUNS_WITHOUT_CONFIRMATION || yes {
        return Ok(());
    }
    let each: Vec<String> = sweeps
        .iter()
        .map(|s| {
            format!(
                "{}: {} grid points x {} seeds",
                s.name(),
                s.points.len(),
                s.seeds.len()
            )
        })
        .collect();
    bail!(
        "this would start {runs} runs ({}), more than the {RUNS_WITHOUT_CONFIRMATION} a sweep \
         starts without asking; check the sweep file's seeds and axes (or --seeds), or pass \
         --yes to start them",
        each.join("; ")
    )
}

/// After a run here: writes each report into `out` (or, for one shard of several, says
/// how to once every shard is done), then sums up, failing if a run failed.
fn finish_here(
    sweeps: &[Sweep],
    out: &Path,
    shard: Option<Shard>,
    outcome: &SweepOutcome,
) -> Result<()> {
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
        let report = vgrad_report::write_report(sweep, out)
            .with_context(|| format!("writing the report of {}", sweep.name()))?;
        eprintln!("wrote {}", report.display());
    }
    eprintln!(
        "{} runs trained in {:.1} s, {} already done, {} failed",
        outcome.ran, outcome.seconds, outcome.resumed, outcome.failed
    );
    if shard.is_none() {
        // One sweep's folder, or the folder of them all.
        let logdir = match sweeps {
            [one] => one.runs_dir(out),
            _ => out.join("runs"),
        };
        eprintln!("{}", vgrad_record::layout::tensorboard_line(&logdir));
    }
    if outcome.failed > 0 {
        bail!(
            "{} runs failed; the report lists them, and their folders hold error.txt",
            outcome.failed
        );
    }
    Ok(())
}

/// What Slurm's jobs run for the selected sweeps: this xtask binary with the same
/// selection, with absolute paths, since the jobs start in the workspace.
fn slurm_plan(selection: &Selection, force: bool) -> Result<slurm::Plan> {
    let absolute =
        |p: &Path| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
    let mut words = Vec::new();
    for e in &selection.experiments {
        words.push(absolute(&experiment_path(e)?)?.display().to_string());
    }
    if selection.cuda {
        words.push("--cuda".into());
    }
    if let Some(steps) = selection.steps {
        words.extend(["--steps".into(), steps.to_string()]);
    }
    if let Some(seeds) = &selection.seeds {
        words.extend(["--seeds".into(), seeds.to_string()]);
    }
    let out = absolute(&selection.out())?;
    words.extend(["--out".into(), out.display().to_string()]);
    Ok(slurm::Plan {
        program: std::env::current_exe().context("finding the xtask binary")?,
        workspace: workspace_root(),
        selection: words,
        out,
        cuda: selection.cuda,
        force,
    })
}

/// Writes the report of `sweep` from the runs in `out` and returns how many of those runs
/// are missing, unfinished or failed (diverged runs are results, not missing); the runs
/// are read once for both.
pub fn report(sweep: &Sweep, out: &Path) -> Result<usize> {
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
