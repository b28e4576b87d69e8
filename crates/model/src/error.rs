//! Errors of the model crate.

/// What can go wrong while configuring or running the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A textual setting (activation, init, ...) that could not be parsed.
    #[error("invalid {what} `{value}`: {expected}")]
    Parse {
        /// Which setting, e.g. "activation".
        what: &'static str,
        /// The value as given.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A configuration that is well-formed but unusable (zero layers, no seeds, ...).
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// An error raised by candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result type of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;
