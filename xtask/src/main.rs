//! `cargo xtask`: the workspace's orchestration commands (the cargo-xtask pattern: a plain
//! binary, aliased in `.cargo/config.toml`, that drives cargo and files).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use vgrad_sweep::{Overrides, Shard};
use xtask::build::{cargo, run};
use xtask::sweep::SweepOptions;
use xtask::{experiment_path, workspace_root};

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
    fn overrides(&self) -> Overrides {
        Overrides {
            steps: self.steps,
            seeds: self.seeds,
            device: self.cuda.then(|| "cuda".to_string()),
        }
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

fn main() -> Result<()> {
    match Xtask::parse().command {
        Task::Sweep {
            selection,
            jobs,
            force,
            shard,
        } => {
            let vgrad = xtask::build::vgrad(selection.cuda)?;
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let opts = SweepOptions {
                experiments: selection
                    .experiments
                    .iter()
                    .map(|e| experiment_path(e))
                    .collect(),
                jobs,
                force,
                overrides: selection.overrides(),
                out: selection.out(),
                shard,
                vgrad,
                quiet: false,
            };
            xtask::sweep::run(&opts).map(|_| ())
        }
        Task::Report { selection } => {
            for experiment in &selection.experiments {
                let sweep = xtask::report::load_sweep(
                    &experiment_path(experiment),
                    &selection.overrides(),
                )?;
                let path =
                    xtask::report::write_report(&sweep, &selection.overrides(), &selection.out())?;
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
        Task::Bench { reps } => {
            let vgrad = xtask::build::vgrad(false)?;
            let python = xtask::python::torch_python()?;
            let path = xtask::bench::run(vgrad, python, reps.max(1))?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
        Task::Test { args } => {
            // The sweep's end-to-end test runs the real binary; the TensorBoard test reads
            // event files with TensorBoard's own reader.
            let vgrad = xtask::build::vgrad(false)?;
            let python = xtask::python::tensorboard_python()?;
            let mut cmd = cargo();
            cmd.args(["test", "--workspace", "--release"])
                .args(args)
                .env("VGRAD_BIN", vgrad)
                .env("VGRAD_TB_PYTHON", python)
                .env("VGRAD_XTASK_BIN", std::env::current_exe()?);
            run(cmd)
        }
    }
}
