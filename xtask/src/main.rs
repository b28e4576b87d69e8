//! `cargo xtask`: the workspace's chores (the cargo-xtask pattern: a plain binary,
//! aliased in `.cargo/config.toml`, that drives cargo, `vgrad` and files). One module
//! per command; the product's code lives in the library crates.

mod bench;
mod build;
mod python;
mod sweep;
mod test;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use vgrad_record::DeviceChoice;
use vgrad_sweep::{Overrides, Shard, Sweep};

/// Workspace tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
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
    /// Use seeds 0..N instead.
    #[arg(long)]
    seeds: Option<usize>,
    /// Folder for `runs/` and `reports/` (default: the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Selection {
    /// The selected sweeps, read and expanded with the command line's overrides.
    fn sweeps(&self) -> Result<Vec<Sweep>> {
        let overrides = Overrides {
            steps: self.steps,
            seeds: self.seeds,
            device: self.cuda.then_some(DeviceChoice::Cuda),
        };
        self.experiments
            .iter()
            .map(|e| Ok(Sweep::load(&experiment_path(e), &overrides)?))
            .collect()
    }

    fn out(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(workspace_root)
    }
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run sweeps (default: experiments/seed.toml) and write their reports.
    Sweep {
        #[command(flatten)]
        selection: Selection,
        /// Training processes at once (default: the number of cores).
        #[arg(long)]
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
/// `experiments/<name>.toml` in the workspace.
fn experiment_path(arg: &str) -> PathBuf {
    let path = PathBuf::from(arg);
    if path.is_file() {
        path
    } else {
        workspace_root()
            .join("experiments")
            .join(format!("{arg}.toml"))
    }
}

fn main() -> Result<()> {
    match Xtask::parse().command {
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
