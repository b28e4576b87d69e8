//! The records of a vgrad run, as serde types with no tensor library behind them: the
//! run's configuration (the flags of `vgrad train`, a sweep file's keys and `config.json`
//! at once), the activation and init names, one `metrics.jsonl` line per logged step,
//! `summary.json`, and the run folder's file names and state on disk. The trainer writes
//! these; the sweep, the report and xtask read them.

#![forbid(unsafe_code)]

pub mod activation;
pub mod architecture;
pub mod bias;
pub mod branch;
pub mod class;
pub mod config;
pub mod error;
pub mod histogram;
pub mod init;
pub mod layout;
pub mod nan;
pub mod norm;
pub mod optimizer;
pub mod probe;
pub mod profile;
pub mod recurrent;
pub mod seeds;
pub mod step;
pub mod summary;
pub mod time;

pub use activation::{Activation, OffKind};
pub use architecture::Architecture;
pub use bias::BiasVariance;
pub use branch::BranchScale;
pub use class::{Phase, Regime, RegressionClass, RunClass};
pub use config::{
    CLASSES, DataSource, DeviceChoice, INPUT, REFERENCE, RunConfig, VALIDATION_EXAMPLES,
};
pub use error::{ConfigError, ParseError, RecordError};
pub use histogram::Histogram;
pub use init::Init;
pub use layout::{ConfigFile, RunState, run_name, run_state};
pub use norm::Norm;
pub use optimizer::Optimizer;
pub use probe::Probe;
pub use profile::DecayProfile;
pub use recurrent::{ForgetBias, RecurrentInit, Task};
pub use seeds::Seeds;
pub use step::{ChainSpectrum, Distribution, LayerRecord, Spectrum, StepRecord};
pub use summary::{Outcome, RunStatus, RunSummary};
