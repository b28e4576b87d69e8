//! TensorBoard event files: the few protocol buffer messages TensorBoard reads for scalars,
//! histograms, hyperparameters (the HParams dashboard) and custom-scalars layouts, derived
//! by hand with `prost` (no `protoc` at build time), in TFRecord framing with masked
//! CRC-32C checksums. A writer for training runs and a reader that checks every checksum.

#![forbid(unsafe_code)]

pub mod plugins;
pub mod proto;
pub mod reader;
pub mod record;
pub mod writer;

pub use proto::{Event, HistogramProto, Summary};
pub use reader::{event_files, histogram_tags, read_events};
pub use writer::{EventWriter, write_event_file};

/// What can go wrong with an event file.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Reading or writing failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A record whose checksum or framing is wrong.
    #[error("{path}: record {index} at byte {offset}: {message}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// 0-based record number.
        index: usize,
        /// Where the record starts.
        offset: u64,
        /// What is wrong.
        message: String,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, EventError>;
