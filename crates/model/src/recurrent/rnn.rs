//! The vanilla (Elman) RNN cell, as PyTorch's `nn.RNN`.

use candle_core::{Module, Result, Tensor};

use super::CellParams;
use crate::activation::ActivationLayer;

/// h_t = f(x_t W_x + b_x + h_(t-1) W_h + b_h), f tanh or ReLU (PyTorch's `nn.RNN`
/// documentation, with its weights transposed). Its Jacobian through time,
/// dh_t/dh_(t-1) = W_h diag(f'(a_t)) in this row-vector layout, is what Pascanu et al.
/// 2013 bound by the largest singular value of W_h times the bound of f'.
pub(super) fn step(
    params: &CellParams,
    activation: &ActivationLayer,
    x: &Tensor,
    h: &Tensor,
) -> Result<Tensor> {
    // The same order of additions as PyTorch's and candle-nn's cells: (x W_x + b_x) +
    // (h W_h + b_h).
    let a = (params.input_projection(x)? + params.recurrent_projection(h)?)?;
    activation.forward(&a)
}
