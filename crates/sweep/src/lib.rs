//! Sweeps: a base run configuration, axes whose cartesian product is the grid, optional
//! named scenarios (the grid is repeated for each), and a number of seeds, read from
//! `experiments/*.toml`; and running them, wherever they run.
//!
//! This crate owns how a sweep runs: [`Executor`] runs it here ([`runner`]: parallel
//! `vgrad train` processes that resume from the run folders on disk) or submits it to a
//! Slurm cluster ([`slurm`]: a job array of shards, each of which runs the local runner on
//! its node, and a report job), and both give an [`Outcome`]. `cargo xtask sweep` only
//! parses the command line, builds `vgrad`, picks the executor and writes the reports
//! (which belong to `vgrad-report`). The runner also writes the sweep's experiment for
//! TensorBoard's HParams dashboard at the root of its runs folder ([`hparams`]) once its
//! runs are trained.
//!
//! ```toml
//! description = "The reference experiment, four scenarios"
//! seeds = 10
//!
//! [base]            # any field of the run configuration (`vgrad train`'s flags)
//! steps = 2500
//!
//! [axes]            # one list per varied field
//! activation = ["sigmoid", "relu"]
//!
//! [[scenarios]]     # optional: settings that go together, under a name
//! name = "sgd"
//! optimizer = "sgd"
//! lr = 0.1
//! ```

#![forbid(unsafe_code)]

pub mod definition;
pub mod executor;
pub mod grid;
pub mod hparams;
pub mod runner;
pub mod slurm;

pub use definition::{NamedScenario, Paper, SweepDefinition, SweepError};
pub use executor::{Executor, Outcome, RunError};
pub use grid::{GridPoint, MAX_RUNS, Overrides, RUNS_WITHOUT_CONFIRMATION, SCENARIO, Shard, Sweep};
pub use runner::{SweepOptions, SweepOutcome};
