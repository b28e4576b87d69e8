//! `cargo xtask`: the workspace's chores (the cargo-xtask pattern: a plain binary,
//! aliased in `.cargo/config.toml`, that drives cargo, `vgrad` and files): a thin
//! dispatcher that parses each command's flags and hands the work to the crate that owns
//! it. `sweep` runs sweeps through `vgrad-sweep`'s executor (here, or on Slurm) and
//! `report` writes reports with `vgrad-report`; `test`, `bench` and `fuzz` are chores of
//! this workspace alone. One module per command, with `build` to build `vgrad`.

#![forbid(unsafe_code)]

mod bench;
mod build;
mod fuzz;
mod python;
mod sweep;
mod test;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use vgrad_record::{DeviceChoice, Seeds};
use vgrad_sweep::{Overrides, Sweep};

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

    /// Where the runs and reports go.
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
        #[command(flatten)]
        flags: sweep::SweepFlags,
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
fn at_least_one(text: &str) -> std::result::Result<NonZeroUsize, String> {
    text.parse()
        .map_err(|_| format!("expected a whole number of at least 1, got `{text}`"))
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
        Task::Sweep { selection, flags } => sweep::run(&selection, &flags),
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
