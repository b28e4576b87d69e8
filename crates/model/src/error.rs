//! Errors of the model crate.

/// What can go wrong while building or running the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration that is well-formed but unusable (zero layers, no seeds, ...).
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A setting written as text that does not parse.
    #[error(transparent)]
    Parse(#[from] vgrad_record::ParseError),
    /// An error raised by candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result type of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;
