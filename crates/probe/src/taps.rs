//! Zero-valued variables added to every pre-activation, whose gradients are the
//! back-propagated error dC/dz_l.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use vgrad_model::Mlp;

use crate::{ProbeError, Result};

/// One zero variable per layer, shaped like that layer's pre-activation `[K, B, out]` (a
/// convolution's `[K, B * positions, channels]`).
///
/// candle drops intermediate gradients during `backward()`; a variable added to z_l is
/// kept, and since d(z + t)/dt = 1 its gradient is exactly dC/dz_l. Adding zeros leaves
/// every value of the forward pass unchanged.
#[derive(Debug)]
pub struct DeltaTaps {
    vars: Vec<Var>,
    tensors: Vec<Tensor>,
}

impl DeltaTaps {
    /// Taps for a batch of `batch` examples per member through `model`.
    pub fn new(model: &Mlp, batch: usize, device: &Device) -> Result<Self> {
        let vars = (1..=model.depth())
            .map(|l| {
                let layer = model
                    .layer(l)
                    .ok_or_else(|| ProbeError::Shape(format!("no layer {l}")))?;
                let weight = layer.weight();
                let out = weight.dim(2)?;
                Ok(Var::zeros(
                    (model.members(), batch * model.positions(l), out),
                    weight.dtype(),
                    device,
                )?)
            })
            .collect::<Result<Vec<_>>>()?;
        let tensors = vars.iter().map(|v| v.as_tensor().clone()).collect();
        Ok(Self { vars, tensors })
    }

    /// The tap tensors, for `Mlp::forward_traced`.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// dC/dz_l of layer `l` (1-based) from a step's gradients.
    pub fn delta<'a>(&self, grads: &'a GradStore, l: usize) -> Result<&'a Tensor> {
        let var = l
            .checked_sub(1)
            .and_then(|i| self.vars.get(i))
            .ok_or_else(|| ProbeError::Shape(format!("no tap for layer {l}")))?;
        grads
            .get(var.as_tensor())
            .ok_or(ProbeError::MissingTapGradient { layer: l })
    }
}
