//! Errors of the training engine.

use std::path::PathBuf;

/// What can stop a run; each variant says which file, flag or step it concerns.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration that cannot be trained.
    #[error(transparent)]
    Config(#[from] vgrad_record::ConfigError),
    /// The data set could not be loaded.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The run folder cannot be created.
    #[error("cannot create the run folder {}: {cause}", path.display())]
    RunFolder {
        /// The folder.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// Another process trains this run now (it holds the folder's lock).
    #[error(
        "another process is training the run in {} (it holds {}); wait for it to finish, or \
         give --out another folder",
        path.display(),
        vgrad_record::layout::LOCK_FILE
    )]
    Locked {
        /// The run folder.
        path: PathBuf,
    },
    /// A run file could not be written.
    #[error(transparent)]
    Record(#[from] vgrad_record::RecordError),
    /// The TensorBoard event file could not be written.
    #[error(transparent)]
    Events(#[from] vgrad_tensorboard::EventError),
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] vgrad_model::ModelError),
    /// The probe could not read a step.
    #[error(transparent)]
    Probe(#[from] vgrad_probe::ProbeError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A broken invariant of the engine itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl TrainError {
    /// Whether reading or writing a file failed (a full disk, a lost mount): the run
    /// itself was fine, and running it again where there is room succeeds.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            Self::RunFolder { .. }
                | Self::Record(vgrad_record::RecordError::Io { .. })
                | Self::Events(vgrad_tensorboard::EventError::Io { .. })
        )
    }
}
