//! Applying a hidden-layer activation to a tensor.

use candle_core::{Result, Tensor};
use vgrad_record::Activation;
use vgrad_record::activation::{SELU_ALPHA, SELU_LAMBDA};

use crate::Kernels;

/// Applies `activation` element-wise, with vgrad's single-op ReLU and leaky ReLU (whose
/// derivative at 0 is 0, as in TensorFlow and PyTorch) or candle's plain ops.
pub fn forward(activation: Activation, xs: &Tensor, kernels: Kernels) -> Result<Tensor> {
    let fused = kernels == Kernels::Fused;
    match activation {
        Activation::Sigmoid => candle_nn::ops::sigmoid(xs),
        Activation::Tanh => xs.tanh(),
        Activation::Relu if fused => crate::rectifier::relu(xs),
        Activation::Relu => xs.relu(),
        Activation::LeakyRelu { slope } if fused => crate::rectifier::leaky_relu(xs, slope),
        Activation::LeakyRelu { slope } => candle_nn::ops::leaky_relu(xs, slope),
        Activation::Elu => xs.elu(1.0),
        Activation::Gelu => xs.gelu_erf(),
        Activation::Silu => xs.silu(),
        Activation::Softsign => xs.div(&(xs.abs()? + 1.0)?),
        Activation::Selu => xs.elu(SELU_ALPHA)? * SELU_LAMBDA,
        Activation::Linear => Ok(xs.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn forward_matches_the_formulas() -> Result<()> {
        let xs = [-2.0f32, -0.5, 0.0, 0.7, 3.0];
        let t = Tensor::new(&xs[..], &Device::Cpu)?;
        // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): independent of candle's erf.
        let erf = |x: f64| {
            let t = 1.0 / (1.0 + 0.3275911 * x.abs());
            let poly = t
                * (0.254829592
                    + t * (-0.284496736
                        + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
            (1.0 - poly * (-x * x).exp()).copysign(x)
        };
        type Formula = fn(f64, &dyn Fn(f64) -> f64) -> f64;
        let cases: [(Activation, Formula); 10] = [
            (Activation::Linear, |x, _| x),
            (Activation::Softsign, |x, _| x / (1.0 + x.abs())),
            (Activation::Selu, |x, _| {
                SELU_LAMBDA
                    * if x > 0.0 {
                        x
                    } else {
                        SELU_ALPHA * (x.exp() - 1.0)
                    }
            }),
            (Activation::Sigmoid, |x, _| 1.0 / (1.0 + (-x).exp())),
            (Activation::Tanh, |x, _| x.tanh()),
            (Activation::Relu, |x, _| x.max(0.0)),
            (Activation::LeakyRelu { slope: 0.2 }, |x, _| x.max(0.2 * x)),
            (
                Activation::Elu,
                |x, _| if x > 0.0 { x } else { x.exp() - 1.0 },
            ),
            (Activation::Gelu, |x, erf| {
                0.5 * x * (1.0 + erf(x / 2f64.sqrt()))
            }),
            (Activation::Silu, |x, _| x / (1.0 + (-x).exp())),
        ];
        for (activation, formula) in cases {
            let ys = forward(activation, &t, Kernels::Fused)?.to_vec1::<f32>()?;
            for (x, y) in xs.iter().zip(ys) {
                let want = formula(f64::from(*x), &erf);
                assert!(
                    (f64::from(y) - want).abs() < 1e-5,
                    "{activation} at {x}: {y} vs {want}"
                );
            }
        }
        Ok(())
    }
}
