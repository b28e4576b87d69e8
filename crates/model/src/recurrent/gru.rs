//! The GRU cell, as PyTorch's `nn.GRU`.

use candle_core::{D, Result, Tensor};
use candle_nn::ops::sigmoid;

use super::{CellParams, Gates};

/// One GRU step (Cho et al. 2014, in PyTorch's `nn.GRU` form, whose reset gate multiplies
/// `h_(t-1) W_hn + b_hn` rather than h_(t-1) itself), with the input and recurrent
/// projections split into blocks r, z, n of `hidden` columns:
///
/// - r_t = sigmoid(x W_ir + b_ir + h W_hr + b_hr)
/// - z_t = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
/// - n_t = tanh(x W_in + b_in + r_t * (h W_hn + b_hn))
/// - h_t = (1 - z_t) * n_t + z_t * h_(t-1)
///
/// Returns h_t and the gates.
pub(super) fn step(params: &CellParams, x: &Tensor, h: &Tensor) -> Result<(Tensor, Gates)> {
    let hidden = h.dim(D::Minus1)?;
    let from_x = params.input_projection(x)?;
    let from_h = params.recurrent_projection(h)?;
    let block = |t: &Tensor, j: usize| t.narrow(D::Minus1, j * hidden, hidden);
    let reset = sigmoid(&(block(&from_x, 0)? + block(&from_h, 0)?)?)?;
    let update = sigmoid(&(block(&from_x, 1)? + block(&from_h, 1)?)?)?;
    let candidate = (block(&from_x, 2)? + (&reset * block(&from_h, 2)?)?)?.tanh()?;
    // 1 - z as -z + 1, one rounding, the negation of candle-nn's z - 1: the same bits.
    let keep_new = update.affine(-1.0, 1.0)?;
    let h = ((&keep_new * &candidate)? + (&update * h)?)?;
    let gates = Gates::Gru {
        reset,
        update,
        candidate,
    };
    Ok((h, gates))
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use candle_nn::rnn::{GRUConfig, RNN, gru};

    use super::super::tests::{bits, max_difference, pytorch_params, sequences};
    use super::super::{Recurrent, RecurrentConfig, RecurrentInit, RecurrentKind};
    use crate::Result;

    /// candle-nn's GRU (PyTorch's layout and gate order r, z, n) over our member 0's
    /// parameters: bit for bit where it multiplies by the same matrices in memory (its
    /// h = z * h - (z - 1) * n rounds as our (1 - z) * n + z * h), and within 1e-6 from
    /// PyTorch's contiguous layout, whose transposed product candle's matmul rounds
    /// differently.
    #[test]
    fn gru_equals_candle_nns_gru() -> Result<()> {
        let cfg = RecurrentConfig {
            kind: RecurrentKind::Gru,
            input: 3,
            hidden: 5,
            outputs: 2,
            init: RecurrentInit::Orthogonal { gain: 1.0 },
            forget_bias: None,
        };
        let model = Recurrent::init(&cfg, &[12], &VarMap::new(), &Device::Cpu)?;
        let (batch, steps) = (4, 6);
        let xs = sequences(1, batch, steps, cfg.input, DType::F32)?;
        let trace = model.forward_traced(&xs, None)?;
        for contiguous in [false, true] {
            let vb = pytorch_params(&model, contiguous)?;
            let states = gru(cfg.input, cfg.hidden, GRUConfig::default(), vb)?.seq(&xs.get(0)?)?;
            assert_eq!(states.len(), steps);
            for (t, state) in states.iter().enumerate() {
                let h = trace.hidden[t].get(0)?;
                if contiguous {
                    assert!(max_difference(&h, state.h())? <= 1e-6, "h_{}", t + 1);
                } else {
                    assert_eq!(bits(&h)?, bits(state.h())?, "h_{}", t + 1);
                }
            }
        }
        Ok(())
    }
}
