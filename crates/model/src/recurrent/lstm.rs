//! The LSTM cell, as PyTorch's `nn.LSTM`.

use candle_core::{D, Result, Tensor};
use candle_nn::ops::sigmoid;

use super::{CellParams, Gates};

/// One LSTM step (PyTorch's `nn.LSTM` documentation; Hochreiter & Schmidhuber 1997 with
/// the forget gate of Gers et al. 2000), with `a = x_t W_x + b_x + h_(t-1) W_h + b_h`
/// split into four blocks of `hidden` columns in PyTorch's order:
///
/// - i_t = sigmoid(a_i), f_t = sigmoid(a_f), g_t = tanh(a_g), o_t = sigmoid(a_o)
/// - c_t = f_t * c_(t-1) + i_t * g_t
/// - h_t = o_t * tanh(c_t)
///
/// Returns h_t, c_t and the gates.
pub(super) fn step(
    params: &CellParams,
    x: &Tensor,
    h: &Tensor,
    c: &Tensor,
) -> Result<(Tensor, Tensor, Gates)> {
    let hidden = h.dim(D::Minus1)?;
    let a = (params.input_projection(x)? + params.recurrent_projection(h)?)?;
    let block = |j: usize| a.narrow(D::Minus1, j * hidden, hidden);
    let input = sigmoid(&block(0)?)?;
    let forget = sigmoid(&block(1)?)?;
    let cell = block(2)?.tanh()?;
    let output = sigmoid(&block(3)?)?;
    let c = ((&forget * c)? + (&input * &cell)?)?;
    let h = (&output * c.tanh()?)?;
    let gates = Gates::Lstm {
        input,
        forget,
        cell,
        output,
    };
    Ok((h, c, gates))
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use candle_nn::rnn::{LSTMConfig, RNN, lstm};

    use super::super::tests::{bits, max_difference, pytorch_params, sequences};
    use super::super::{Recurrent, RecurrentConfig, RecurrentInit, RecurrentKind};
    use crate::Result;

    /// candle-nn's LSTM (PyTorch's layout and gate order i, f, g, o) over our member 0's
    /// parameters: bit for bit where it multiplies by the same matrices in memory, and
    /// within 1e-6 (h and c are O(1); a few f32 ulps) from PyTorch's contiguous layout,
    /// whose transposed product candle's matmul rounds differently.
    #[test]
    fn lstm_equals_candle_nns_lstm() -> Result<()> {
        let cfg = RecurrentConfig {
            kind: RecurrentKind::Lstm,
            input: 3,
            hidden: 5,
            outputs: 2,
            init: RecurrentInit::Uniform,
            forget_bias: Some(1.0),
        };
        let model = Recurrent::init(&cfg, &[11], &VarMap::new(), &Device::Cpu)?;
        let (batch, steps) = (4, 6);
        let xs = sequences(1, batch, steps, cfg.input, DType::F32)?;
        let trace = model.forward_traced(&xs, None)?;
        for contiguous in [false, true] {
            let vb = pytorch_params(&model, contiguous)?;
            let states =
                lstm(cfg.input, cfg.hidden, LSTMConfig::default(), vb)?.seq(&xs.get(0)?)?;
            assert_eq!(states.len(), steps);
            for (t, state) in states.iter().enumerate() {
                let (h, c) = (trace.hidden[t].get(0)?, trace.cells[t].get(0)?);
                if contiguous {
                    assert!(max_difference(&h, state.h())? <= 1e-6, "h_{}", t + 1);
                    assert!(max_difference(&c, state.c())? <= 1e-6, "c_{}", t + 1);
                } else {
                    assert_eq!(bits(&h)?, bits(state.h())?, "h_{}", t + 1);
                    assert_eq!(bits(&c)?, bits(state.c())?, "c_{}", t + 1);
                }
            }
        }
        Ok(())
    }
}
