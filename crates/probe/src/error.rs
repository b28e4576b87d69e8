//! Errors of the probe crate.

/// What can go wrong while reading a step's gradients.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The `GradStore` holds no gradient for a layer's weight: it came from
    /// `loss.backward()`, which leaves out the weights of the model's fused layers (they
    /// hand their gradients to the forward trace instead).
    #[error(
        "the GradStore holds no gradient for the weight of layer {layer}: compute the \
         step's gradients with `ForwardTrace::backward(&loss)` on the trace of the training \
         pass, not with `loss.backward()`, which leaves out the fused layers' weights"
    )]
    MissingWeightGradient {
        /// 1-based layer index.
        layer: usize,
    },
    /// The `GradStore` holds no gradient for a layer's delta tap: the loss was not
    /// computed from a forward pass through these taps.
    #[error(
        "the GradStore holds no gradient for the delta tap of layer {layer}: run the \
         training pass through these taps (`Mlp::forward_traced(xs, Some(taps.tensors()))`) \
         and differentiate a loss computed from that pass"
    )]
    MissingTapGradient {
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
