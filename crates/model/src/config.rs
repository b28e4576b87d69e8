//! What network to build: its shape and ingredients, and the names of its parameters.

use vgrad_record::{Activation, BranchScale, CLASSES, INPUT, Init, Norm, RunConfig};

use crate::{ModelError, Result};

/// Shape and ingredients of the network. `layers` counts dense layers, the output layer
/// included and the input not: the reference network (784 -> 5 x 10 -> 10) has 6.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpConfig {
    /// Features per example (784 for MNIST).
    pub input: usize,
    /// Units of every hidden layer.
    pub width: usize,
    /// Dense layers, output layer included.
    pub layers: usize,
    /// Output units (logits).
    pub classes: usize,
    /// Activation after every hidden layer; the output layer has none.
    pub activation: Activation,
    /// Weight initialisation.
    pub init: Init,
    /// sigma_b^2: biases start at N(0, sigma_b^2), or at zero where it is 0.
    pub bias_variance: f64,
    /// Normalisation of every hidden layer's pre-activation, before the activation.
    pub norm: Norm,
    /// Whether hidden layers 2..L-1 add their input to their output.
    pub residual: bool,
    /// The scale of each residual branch where it joins the skip.
    pub branch_scale: BranchScale,
}

impl MlpConfig {
    /// The network a run with configuration `cfg` trains on MNIST.
    pub fn for_run(cfg: &RunConfig) -> Self {
        Self {
            input: INPUT,
            width: cfg.width,
            layers: cfg.layers,
            classes: CLASSES,
            activation: cfg.activation,
            init: cfg.init,
            bias_variance: cfg.bias_variance,
            norm: cfg.norm,
            residual: cfg.residual,
            branch_scale: cfg.branch_scale,
        }
    }

    /// Checks that the configuration describes a network that can be built.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: &str| Err(ModelError::Config(m.to_string()));
        if self.layers == 0 {
            return fail("layers must be at least 1 (the output layer)");
        }
        if self.layers > 1 && self.width == 0 {
            return fail("width must be at least 1");
        }
        if self.input == 0 {
            return fail("input size must be at least 1");
        }
        if self.classes < 2 {
            return fail("classes must be at least 2");
        }
        if self.residual && self.layers < 3 {
            return fail("a residual network needs at least 3 layers");
        }
        if !(self.bias_variance >= 0.0 && self.bias_variance.is_finite()) {
            return fail("the bias variance must be a finite number of at least 0");
        }
        Ok(())
    }

    /// `(fan_in, fan_out)` of layers 1..=L.
    pub fn layer_dims(&self) -> Vec<(usize, usize)> {
        (1..=self.layers)
            .map(|l| {
                let fan_in = if l == 1 { self.input } else { self.width };
                let fan_out = if l == self.layers {
                    self.classes
                } else {
                    self.width
                };
                (fan_in, fan_out)
            })
            .collect()
    }

    /// Name of layer `l`'s (1-based) weight in a [`VarMap`](candle_nn::VarMap).
    pub fn weight_name(l: usize) -> String {
        format!("layer{l}.weight")
    }

    /// Name of layer `l`'s (1-based) bias in a [`VarMap`](candle_nn::VarMap).
    pub fn bias_name(l: usize) -> String {
        format!("layer{l}.bias")
    }

    /// Name of layer `l`'s (1-based) learnable branch scale (`skipinit`) in a
    /// [`VarMap`](candle_nn::VarMap).
    pub fn branch_gain_name(l: usize) -> String {
        format!("layer{l}.branch.gain")
    }

    /// Whether layer `l` (1-based) has a learnable branch scale: a skip layer under
    /// `skipinit`.
    pub fn has_learned_branch(&self, l: usize) -> bool {
        self.has_skip(l) && self.branch_scale == BranchScale::SkipInit
    }

    /// The residual branches: hidden layers 2..L-1 of a residual network.
    pub fn branches(&self) -> usize {
        (1..=self.layers).filter(|&l| self.has_skip(l)).count()
    }

    /// Name of the normalisation's scale of layer `l` (1-based) in a [`VarMap`](candle_nn::VarMap).
    pub fn scale_name(l: usize) -> String {
        format!("layer{l}.norm.scale")
    }

    /// Name of the normalisation's shift of layer `l` (1-based) in a [`VarMap`](candle_nn::VarMap).
    pub fn shift_name(l: usize) -> String {
        format!("layer{l}.norm.shift")
    }

    /// Whether layer `l` (1-based) is normalised: every hidden layer, when a norm is set.
    pub fn is_normalised(&self, l: usize) -> bool {
        self.norm != Norm::None && l < self.layers
    }

    /// Whether layer `l` (1-based) adds its input to its output: hidden layers 2..L-1 of
    /// a residual network (layer 1's input is the image, of another size).
    pub fn has_skip(&self, l: usize) -> bool {
        self.residual && l >= 2 && l < self.layers
    }

    /// Names of all parameters in a fixed order: layer 1 weight, bias (scale, shift), layer
    /// 2 ... (`VarMap::all_vars` returns them in arbitrary order).
    pub fn param_names(&self) -> Vec<String> {
        (1..=self.layers)
            .flat_map(|l| {
                let mut names = vec![Self::weight_name(l), Self::bias_name(l)];
                if self.is_normalised(l) {
                    names.extend([Self::scale_name(l), Self::shift_name(l)]);
                }
                if self.has_learned_branch(l) {
                    names.push(Self::branch_gain_name(l));
                }
                names
            })
            .collect()
    }
}
