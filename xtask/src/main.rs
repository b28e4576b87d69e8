//! `cargo xtask`: the workspace's chores (the cargo-xtask pattern: a plain binary,
//! aliased in `.cargo/config.toml`, that drives cargo, `vgrad` and files). One module
//! per command; the product's code lives in the library crates.

mod bench;
mod build;
mod fuzz;
mod python;
mod slurm;
mod sweep;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use vgrad_record::{DeviceChoice, Seeds};
use vgrad_sweep::{Overrides, RUNS_WITHOUT_CONFIRMATION, Shard, Sweep};

/// Workspace tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Xtask {
    #[command(subcommand)]
    command: Task,
}

/// Flags shared by `sweep` and `report`: which sweeps, changed how, and where.
#[derive(Debug, Args)]
struct Selection {
    /// Sweep names (`seed` for experiments/seed.toml) or paths to sweep files.
    #[arg(default_value = "seed")]
    experiments: Vec<String>,
    /// Train on the GPU, with a vgrad built with the `cuda` feature.
    #[arg(long)]
    cuda: bool,
    /// Train this many steps instead, for a quick look.
    #[arg(long)]
    steps: Option<usize>,
    /// Use these seeds instead: a count (`3`: seeds 0-2), a range (`3-7`) or a list
    /// (`0,3,7`), as `vgrad train --seeds`.
    #[arg(long)]
    seeds: Option<Seeds>,
    /// Folder for `runs/` and `reports/` (default: the workspace, or its `quick/` folder
    /// with --steps or --seeds, so that a quick look never replaces the reference runs and
    /// reports).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Selection {
    /// The command line's changes to the sweeps.
    fn overrides(&self) -> Overrides {
        Overrides {
            steps: self.steps,
            seeds: self.seeds.clone(),
            device: self.cuda.then_some(DeviceChoice::Cuda),
        }
    }

    /// The selected sweeps, read and expanded with the command line's overrides.
    fn sweeps(&self) -> Result<Vec<Sweep>> {
        let overrides = self.overrides();
        self.experiments
            .iter()
            .map(|e| Ok(Sweep::load(&experiment_path(e)?, &overrides)?))
            .collect()
    }

    /// What Slurm's jobs run for these sweeps: the same selection, with absolute paths,
    /// since the jobs start in the workspace.
    fn slurm_plan(&self, sweeps: &[Sweep], force: bool) -> Result<slurm::Plan> {
        let absolute =
            |p: &Path| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
        let mut selection = Vec::new();
        for e in &self.experiments {
            selection.push(absolute(&experiment_path(e)?)?.display().to_string());
        }
        if self.cuda {
            selection.push("--cuda".into());
        }
        if let Some(steps) = self.steps {
            selection.extend(["--steps".into(), steps.to_string()]);
        }
        if let Some(seeds) = &self.seeds {
            selection.extend(["--seeds".into(), seeds.to_string()]);
        }
        let out = absolute(&self.out())?;
        selection.extend(["--out".into(), out.display().to_string()]);
        Ok(slurm::Plan {
            xtask: std::env::current_exe().context("finding the xtask binary")?,
            workspace: workspace_root(),
            names: sweeps.iter().map(|s| s.name().to_string()).collect(),
            selection,
            out,
            cuda: self.cuda,
            force,
        })
    }

    fn out(&self) -> PathBuf {
        match &self.out {
            Some(out) => out.clone(),
            None => self.overrides().default_out(&workspace_root()),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run sweeps (default: experiments/seed.toml) and write their reports.
    Sweep {
        #[command(flatten)]
        selection: Selection,
        /// Training processes at once (default: the number of cores).
        #[arg(long, value_parser = at_least_one)]
        jobs: Option<usize>,
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
        slurm: slurm::SlurmArgs,
    },
    /// Rebuild reports from the runs on disk, without training.
    Report {
        #[command(flatten)]
        selection: Selection,
        /// Fail (after writing the reports) if a run is missing, unfinished or failed:
        /// the status of the report job of `sweep --slurm`.
        #[arg(long)]
        require_complete: bool,
    },
    /// Time vgrad against the PyTorch baseline and write reports/bench.md (creates
    /// .venv-bench with PyTorch on first use).
    Bench {
        /// Repetitions of each measurement (medians are reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Run only these parts (comma-separated) and print their tables; reports/bench.md
        /// is written by a whole run only.
        #[arg(long, value_delimiter = ',')]
        only: Vec<bench::Section>,
    },
    /// Prepare what the tests need, then run the whole workspace's tests (release build,
    /// since the tests train real networks).
    Test {
        /// Extra arguments for `cargo test`, e.g. a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Fuzz the parsers of outside bytes (IDX, sweep and TensorBoard event files) with
    /// libFuzzer through cargo-fuzz, one target after the other.
    Fuzz {
        /// The target (default: all three in turn).
        #[arg(value_parser = fuzz::TARGETS)]
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

/// The workspace root (the folder above this crate).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The sweep file an EXPERIMENT argument names: an existing path as it is, otherwise
/// `experiments/<name>.toml` in the workspace; an error lists the experiments there are.
fn experiment_path(arg: &str) -> Result<PathBuf> {
    let path = PathBuf::from(arg);
    if path.is_file() {
        return Ok(path);
    }
    let folder = workspace_root().join("experiments");
    let named = folder.join(format!("{arg}.toml"));
    if named.is_file() {
        return Ok(named);
    }
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(".toml").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    bail!(
        "no experiment `{arg}`: it is not a sweep file, and {} does not exist; the experiments \
         are: {}",
        named.display(),
        names.join(", ")
    )
}

/// A count of at least one, for `--jobs`, `--array` and `--cpus-per-task`.
fn at_least_one(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, got `{text}`"
        )),
    }
}

fn main() -> ExitCode {
    match run(Xtask::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<()> {
    match task {
        Task::Sweep {
            selection,
            jobs,
            force,
            shard,
            yes,
            no_build,
            slurm,
        } => {
            let sweeps = selection.sweeps()?;
            let runs: usize = sweeps.iter().map(Sweep::runs).sum();
            if runs > RUNS_WITHOUT_CONFIRMATION && !yes {
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
                    "this would start {runs} runs ({}), more than the \
                     {RUNS_WITHOUT_CONFIRMATION} a sweep starts without asking; check the \
                     sweep file's seeds and axes (or --seeds), or pass --yes to start them",
                    each.join("; ")
                );
            }
            if !slurm.slurm
                && let Some(flag) = slurm.stray_flags().first()
            {
                bail!("{flag} is a flag of --slurm: add --slurm to submit the sweep to Slurm");
            }
            if slurm.slurm && jobs.is_some() {
                bail!(
                    "--jobs is not for --slurm: each array task trains --cpus-per-task runs at once"
                );
            }
            let vgrad = if no_build {
                build::built_vgrad(selection.cuda)?
            } else {
                build::vgrad(selection.cuda)?
            };
            if slurm.slurm {
                return slurm::submit(&selection.slurm_plan(&sweeps, force)?, &slurm);
            }
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            sweep::run(&sweeps, vgrad, selection.out(), jobs, force, shard)
        }
        Task::Report {
            selection,
            require_complete,
        } => {
            let mut incomplete = Vec::new();
            for sweep in selection.sweeps()? {
                let missing = sweep::report(&sweep, &selection.out())?;
                if missing > 0 {
                    incomplete.push(format!("{}: {missing}", sweep.name()));
                }
            }
            if require_complete && !incomplete.is_empty() {
                bail!(
                    "runs missing, unfinished or failed ({}); the reports list them, and \
                     running the sweep again trains them",
                    incomplete.join(", ")
                );
            }
            Ok(())
        }
        Task::Bench { reps, only } => {
            let vgrad = build::vgrad(false)?;
            let python = python::torch_python()?;
            if let Some(path) = bench::run(vgrad, python, reps.max(1), &only)? {
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
        Task::Test { args } => test::run_tests(&args),
        Task::Fuzz { target, seconds } => fuzz::run(&workspace_root(), target.as_deref(), seconds),
    }
}
