//! The activation after every hidden layer, as a layer built once.

use candle_core::{Module, Result, Tensor};
use vgrad_kernels::rectifier;
use vgrad_record::Activation;
use vgrad_record::activation::{SELU_ALPHA, SELU_LAMBDA};

use crate::Kernels;

/// A hidden layer's activation, applied element-wise: `f(a)` for the
/// [`Activation`] it was built with. With [`Kernels::Fused`] (the default) ReLU and leaky
/// ReLU are vgrad's single-op rectifiers, whose derivative at 0 is 0 (as in TensorFlow
/// and PyTorch; candle's `relu` takes 1); with [`Kernels::Candle`], candle's ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationLayer {
    kind: Activation,
    kernels: Kernels,
}

impl ActivationLayer {
    /// The activation `kind`, with vgrad's kernels.
    pub fn new(kind: Activation) -> Self {
        Self {
            kind,
            kernels: Kernels::Fused,
        }
    }

    /// The same activation computed with `kernels`.
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self { kernels, ..self }
    }

    /// Which activation this is.
    pub fn kind(&self) -> Activation {
        self.kind
    }

    /// The kernels it computes with.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The slope of a rectifier (0 for ReLU) that vgrad's kernels compute, which a fused
    /// norm can apply in its own op; `None` for other activations or candle's kernels.
    pub(crate) fn fused_rectifier(&self) -> Option<f64> {
        match (self.kind, self.kernels) {
            (Activation::Relu, Kernels::Fused) => Some(0.0),
            (Activation::LeakyRelu { slope }, Kernels::Fused) => Some(slope),
            _ => None,
        }
    }
}

impl Module for ActivationLayer {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let Some(slope) = self.fused_rectifier()
            && rectifier::supported(xs)
        {
            return rectifier::leaky_relu(xs, slope);
        }
        match self.kind {
            Activation::Sigmoid => candle_nn::ops::sigmoid(xs),
            Activation::Tanh => xs.tanh(),
            Activation::Relu => xs.relu(),
            Activation::LeakyRelu { slope } => candle_nn::ops::leaky_relu(xs, slope),
            Activation::Elu => xs.elu(1.0),
            Activation::Gelu => xs.gelu_erf(),
            Activation::Silu => xs.silu(),
            Activation::Softsign => xs.div(&(xs.abs()? + 1.0)?),
            Activation::Selu => xs.elu(SELU_ALPHA)? * SELU_LAMBDA,
            Activation::Linear => Ok(xs.clone()),
        }
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
            for kernels in [Kernels::Fused, Kernels::Candle] {
                let layer = ActivationLayer::new(activation).with_kernels(kernels);
                let ys = layer.forward(&t)?.to_vec1::<f32>()?;
                for (x, y) in xs.iter().zip(ys) {
                    let want = formula(f64::from(*x), &erf);
                    assert!(
                        (f64::from(y) - want).abs() < 1e-5,
                        "{activation} {kernels:?} at {x}: {y} vs {want}"
                    );
                }
            }
        }
        Ok(())
    }
}
