//! What network to build: its shape and ingredients, and the names of its parameters.

use vgrad_record::{Activation, Architecture, BranchScale, CLASSES, INPUT, Init, Norm, RunConfig};

use crate::{ModelError, Result};

/// MNIST's images are this many pixels on a side; a convolutional network reads them as
/// one channel.
pub const IMAGE_SIDE: usize = 28;

/// Shape and ingredients of the network. `layers` counts dense layers, the output layer
/// included and the input not: the reference network (784 -> 5 x 10 -> 10) has 6. A
/// convolutional network counts its convolutions and the output layer the same way.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpConfig {
    /// Dense layers, or 3x3 convolutions (see [`LayerInput`]).
    pub model: Architecture,
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
    /// The network a run with configuration `cfg` trains on MNIST, with its sigma_b^2
    /// resolved (`--bias-variance critical` by the theory; an error says why it has none).
    pub fn for_run(cfg: &RunConfig) -> Result<Self> {
        let bias_variance =
            vgrad_theory::run_bias_variance(cfg).map_err(|e| ModelError::Config(e.to_string()))?;
        Ok(Self {
            model: cfg.model,
            input: INPUT,
            width: cfg.width,
            layers: cfg.layers,
            classes: CLASSES,
            activation: cfg.activation,
            init: cfg.init,
            bias_variance,
            norm: cfg.norm,
            residual: cfg.residual,
            branch_scale: cfg.branch_scale,
        })
    }

    /// Checks that the configuration describes a network that can be built.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: &str| Err(ModelError::Config(m.to_string()));
        if self.model.is_recurrent() {
            return fail("a recurrent network is built by vgrad_model::Recurrent, not Mlp");
        }
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
        if self.model.is_convolutional() && self.layers < 3 {
            return fail("a convolutional network needs at least 3 layers");
        }
        if self.model.is_convolutional() && self.input != IMAGE_SIDE * IMAGE_SIDE {
            return fail("a convolutional network reads 28x28 images (784 inputs)");
        }
        if !(self.bias_variance >= 0.0 && self.bias_variance.is_finite()) {
            return fail("the bias variance must be a finite number of at least 0");
        }
        Ok(())
    }

    /// `(fan_in, fan_out)` of layers 1..=L: of a convolution, 9 times its input channels
    /// and its output channels (its weight is the matrix the patches multiply).
    pub fn layer_dims(&self) -> Vec<(usize, usize)> {
        if self.model.is_convolutional() {
            return self
                .layer_inputs()
                .iter()
                .enumerate()
                .map(|(i, input)| match *input {
                    LayerInput::Conv { channels, .. } => (9 * channels, self.channels(i + 1)),
                    _ => (self.channels(i), self.classes),
                })
                .collect();
        }
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

    /// What each of layers 1..=L reads: every layer of an MLP its input rows as they are; a
    /// convolutional network's stem the 28x28 image (stride 2, to 14x14), its hidden
    /// layers 3x3 patches of the layer before (the first of the second stage with stride 2,
    /// to 7x7), its output layer the average over positions.
    pub fn layer_inputs(&self) -> Vec<LayerInput> {
        if !self.model.is_convolutional() {
            return vec![LayerInput::Dense; self.layers];
        }
        (1..=self.layers)
            .map(|l| {
                if l == self.layers {
                    LayerInput::Pool {
                        side: self.side(l - 1),
                    }
                } else {
                    let side = if l == 1 { IMAGE_SIDE } else { self.side(l - 1) };
                    LayerInput::Conv {
                        side,
                        channels: self.channels(l - 1),
                        stride: side / self.side(l),
                    }
                }
            })
            .collect()
    }

    /// The first layer of a convolutional network's second stage, if it has one: of the
    /// L - 2 convolutions after the stem, the first half (rounded up) form the first stage.
    fn second_stage(&self) -> Option<usize> {
        let hidden = self.layers.saturating_sub(2);
        let first = 2 + hidden.div_ceil(2);
        (hidden >= 2).then_some(first)
    }

    /// Channels of layer `l`'s output in a convolutional network (1 for l = 0, the
    /// image): the width in the first stage, twice it in the second.
    fn channels(&self, l: usize) -> usize {
        match (l, self.second_stage()) {
            (0, _) => 1,
            (l, Some(second)) if l >= second => 2 * self.width,
            _ => self.width,
        }
    }

    /// Side of layer `l`'s output maps in a convolutional network (28 for the image).
    fn side(&self, l: usize) -> usize {
        match (l, self.second_stage()) {
            (0, _) => IMAGE_SIDE,
            (l, Some(second)) if l >= second => IMAGE_SIDE / 4,
            _ => IMAGE_SIDE / 2,
        }
    }

    /// Positions per example of layer `l`'s (1-based) output: the rows its pre-activation
    /// has per example (1 for a dense layer).
    pub fn positions(&self, l: usize) -> usize {
        if self.model.is_convolutional() && l < self.layers {
            self.side(l) * self.side(l)
        } else {
            1
        }
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

/// What a layer multiplies by its weight matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerInput {
    /// The rows of its input as they are (`[K, B, in]`).
    Dense,
    /// The 3x3 patches, zero-padded by 1, of `side` x `side` maps of `channels` channels
    /// stored channels-last (`[K, B * side^2, channels]`), every `stride`-th position.
    Conv {
        /// Side of the input maps.
        side: usize,
        /// Channels of the input maps.
        channels: usize,
        /// 1, or 2 to halve the side.
        stride: usize,
    },
    /// The average over the positions of `side` x `side` maps.
    Pool {
        /// Side of the input maps.
        side: usize,
    },
}
