//! The training engine of vgrad: MNIST and its kin in memory, the optimizers, the ensemble
//! [`Trainer`], and the run folder it writes (`config.json`, `metrics.jsonl`, a
//! TensorBoard event file, `summary.json`). The `vgrad` binary is a thin layer on top.

#![forbid(unsafe_code)]

pub mod clipping;
pub mod data;
pub mod error;
pub mod evaluation;
pub mod events;
pub mod finite;
pub mod memory;
pub mod optimizer;
pub mod recurrent;
pub mod run_dir;
pub mod step_times;
pub mod trainer;
pub mod updates;

pub use error::TrainError;
pub use optimizer::EnsembleOptimizer;
pub use recurrent::RecurrentTrainer;
pub use run_dir::{RunDir, RunLock};
pub use trainer::{Discard, MemberOutcome, StepSink, Trainer};
