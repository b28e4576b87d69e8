//! A dense layer holding the weights of all K ensemble members.

use candle_core::{Module, Result, Tensor};

use vgrad_kernels::affine::{ParamGrads, affine, supported};
use vgrad_kernels::input_matmul::input_matmul;

use crate::Kernels;

/// `y = x W + b` for every member at once: `x: [K, B, in]`, `W: [K, in, out]`,
/// `b: [K, 1, out]`, `y: [K, B, out]`.
#[derive(Debug, Clone)]
pub struct EnsembleLinear {
    weight: Tensor,
    bias: Tensor,
    reads_data: bool,
    kernels: Kernels,
}

impl EnsembleLinear {
    /// A layer over these parameters. `reads_data` marks the first layer, whose input is a
    /// data batch: its backward pass then skips the gradient with respect to that input.
    pub fn new(weight: Tensor, bias: Tensor, reads_data: bool) -> Self {
        Self {
            weight,
            bias,
            reads_data,
            kernels: Kernels::Fused,
        }
    }

    /// The same layer computed with `kernels` (see [`Kernels`]).
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self { kernels, ..self }
    }

    /// The weight tensor `[K, in, out]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias tensor `[K, 1, out]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }
}

impl EnsembleLinear {
    /// The layer's output; where the fused CPU op computes it, its backward pass leaves
    /// the weight and bias gradients in `sink` (see `vgrad_kernels::affine::affine`).
    pub(crate) fn forward_into(&self, xs: &Tensor, sink: Option<&ParamGrads>) -> Result<Tensor> {
        if self.kernels == Kernels::Candle {
            return xs.matmul(&self.weight)?.broadcast_add(&self.bias);
        }
        if supported(&self.weight) {
            return affine(xs, &self.weight, &self.bias, !self.reads_data, sink);
        }
        let z = if self.reads_data {
            input_matmul(xs, &self.weight)?
        } else {
            xs.matmul(&self.weight)?
        };
        z.broadcast_add(&self.bias)
    }
}

impl Module for EnsembleLinear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_into(xs, None)
    }
}
