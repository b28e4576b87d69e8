//! Which implementation of the layer operations a model runs.

/// vgrad's own single-pass CPU ops, or candle's composite ops.
///
/// Both compute the same numbers up to the order of float additions (the bias gradient's
/// sum), and the first logged step of a training run is bit-identical; `Candle` is the
/// plain reference that tests check the fast path against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kernels {
    /// The fused dense layer, single-op ReLU and leaky ReLU, and the first layer's matmul
    /// without an input gradient, where the device and type allow (the CPU, f32 or f64);
    /// candle's ops elsewhere.
    #[default]
    Fused,
    /// candle's ops everywhere: matmul, broadcast add, `candle_nn`'s activations.
    Candle,
}
