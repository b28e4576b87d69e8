//! `cargo xtask`: the workspace's chores (the cargo-xtask pattern: a plain binary,
//! aliased in `.cargo/config.toml`, that drives cargo, `vgrad` and files). One module
//! per command; the product's code lives in the library crates.

mod bench;
mod build;
mod python;
mod sweep;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use vgrad_record::{DeviceChoice, Seeds};
use vgrad_sweep::{Overrides, Shard, Sweep};

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
        #[arg(long)]
        shard: Option<Shard>,
    },
    /// Rebuild reports from the runs on disk, without training.
    Report {
        #[command(flatten)]
        selection: Selection,
    },
    /// Time vgrad against the PyTorch baseline and write reports/bench.md (creates
    /// .venv-bench with PyTorch on first use).
    Bench {
        /// Repetitions of each measurement (medians are reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Prepare what the tests need, then run the whole workspace's tests (release build,
    /// since the tests train real networks).
    Test {
        /// Extra arguments for `cargo test`, e.g. a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
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

/// A count of at least one, for `--jobs`.
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
        } => {
            let sweeps = selection.sweeps()?;
            let vgrad = build::vgrad(selection.cuda)?;
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            sweep::run(&sweeps, vgrad, selection.out(), jobs, force, shard)
        }
        Task::Report { selection } => {
            for sweep in selection.sweeps()? {
                let path = vgrad_report::write_report(&sweep, &selection.out())
                    .with_context(|| format!("writing the report of {}", sweep.name()))?;
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
        Task::Bench { reps } => {
            let vgrad = build::vgrad(false)?;
            let python = python::torch_python()?;
            let path = bench::run(vgrad, python, reps.max(1))?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
        Task::Test { args } => test::run_tests(&args),
    }
}
