//! Errors of the probe crate.

/// What can go wrong while reading a step's gradients.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The `GradStore` holds no gradient for a tensor the probe needs.
    #[error("no gradient for {what} of layer {layer} in the GradStore")]
    MissingGradient {
        /// "weight" or "delta tap".
        what: &'static str,
        /// 1-based layer index.
        layer: usize,
    },
    /// Tensors whose shapes disagree with the model.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An error raised by the model, for example by its forward pass.
    #[error(transparent)]
    Model(#[from] vgrad_model::ModelError),
    /// An error raised by candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result type of the probe crate.
pub type Result<T> = std::result::Result<T, ProbeError>;
