//! The multi-layer perceptron of the experiment, as an ensemble of K seeds.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use vgrad_kernels::affine::ParamGrads;
use vgrad_kernels::im2col;
use vgrad_record::Activation;

use crate::activation::ActivationLayer;
use crate::norm::{BatchStats, EnsembleNorm};
use crate::seeding::{self, Stream};
use crate::{EnsembleLinear, Kernels, LayerInput, MlpConfig, ModelError, Result, conv};

/// The values a forward pass produced on the way to the logits.
#[derive(Debug, Clone)]
pub struct ForwardTrace {
    /// `[K, B, classes]`.
    pub logits: Tensor,
    /// Pre-activation `z_l = h_(l-1) W_l + b_l` of layers 1..=L, each `[K, B, fan_out]`;
    /// the last one is the logits.
    pub pre_activations: Vec<Tensor>,
    /// What the activation of layers 1..L-1 reads: z_l normalised where there is a norm,
    /// z_l itself otherwise.
    pub activation_inputs: Vec<Tensor>,
    /// The activation's output f(a_l) of layers 1..L-1 (before a skip adds the layer's
    /// input).
    pub activations: Vec<Tensor>,
    /// Batch norm's statistics of this batch, per layer (`None` without batch norm).
    pub batch_stats: Vec<Option<BatchStats>>,
    /// The layers' weight and bias gradients, which a training pass's fused layers leave
    /// here during `backward()`; [`ForwardTrace::backward`] collects them.
    param_grads: ParamGrads,
}

impl ForwardTrace {
    /// The gradients of `loss`, a function of this trace's outputs, with respect to every
    /// variable: what `loss.backward()` gives, plus the weights, biases, scales and shifts
    /// whose gradients a training pass's fused layers keep out of candle's accumulation
    /// (which would cost each a zero tensor and an addition: see the crate's doc). Call
    /// this rather than `loss.backward()` on a training pass, once per trace.
    pub fn backward(&self, loss: &Tensor) -> candle_core::Result<GradStore> {
        let mut grads = loss.backward()?;
        self.param_grads.drain_into(&mut grads)?;
        Ok(grads)
    }

    /// Per member, whether the gradient of `param` that [`ForwardTrace::backward`]
    /// returned is known to be finite without reading it (the layers prove it from their
    /// operands where that is cheaper); `None` where nothing is known.
    pub fn known_finite(&self, param: &Tensor) -> candle_core::Result<Option<Vec<bool>>> {
        self.param_grads.finite_members(param)
    }
}

/// Which forward pass: batch norm reads the batch's statistics while training and its
/// running averages at evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Train,
    Eval,
}

/// K independent MLPs of one configuration as batched tensors.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<EnsembleLinear>,
    /// What each layer multiplies by its weights: its input, or a convolution's patches.
    inputs: Vec<LayerInput>,
    /// Per layer, its output's positions per example (1 for a dense layer).
    positions: Vec<usize>,
    /// One per hidden layer, `None` where it is not normalised.
    norms: Vec<Option<EnsembleNorm>>,
    /// Per layer, whether it adds its input to its output, and how its branch is scaled.
    skips: Vec<Skip>,
    activation: ActivationLayer,
    members: usize,
}

/// A layer's skip connection: none, or one whose branch is scaled by a fixed alpha or by
/// a learnable one per member (`[K, 1, 1]`).
#[derive(Debug, Clone)]
enum Skip {
    None,
    Fixed(f64),
    Learned(Tensor),
}

impl Mlp {
    /// Draws the initial parameters of one member per seed (each from its own seeded
    /// generator, on the CPU), registers them in `varmap` under
    /// [`MlpConfig::param_names`], and builds the model over them on `device`.
    pub fn init(cfg: &MlpConfig, seeds: &[u64], varmap: &VarMap, device: &Device) -> Result<Self> {
        Self::init_with_dtype(cfg, seeds, varmap, device, DType::F32)
    }

    /// [`Mlp::init`] with parameters of another float type (the same f32 draws,
    /// converted): f64 serves finite-difference checks of the gradients.
    pub fn init_with_dtype(
        cfg: &MlpConfig,
        seeds: &[u64],
        varmap: &VarMap,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        cfg.validate()?;
        if seeds.is_empty() {
            return Err(ModelError::Config("at least one seed is needed".into()));
        }
        let k = seeds.len();
        let mut rngs: Vec<_> = seeds
            .iter()
            .map(|&s| seeding::rng(s, Stream::Init))
            .collect();
        let mut bias_rngs: Vec<_> = seeds
            .iter()
            .map(|&s| seeding::rng(s, Stream::Bias))
            .collect();
        {
            let mut vars = varmap
                .data()
                .lock()
                .map_err(|_| ModelError::Config("the VarMap lock is poisoned".into()))?;
            for (i, (fan_in, fan_out)) in cfg.layer_dims().into_iter().enumerate() {
                let l = i + 1;
                let mut weights = Vec::with_capacity(k * fan_in * fan_out);
                for rng in rngs.iter_mut() {
                    weights.extend(crate::init::sample(cfg.init, fan_in, fan_out, rng)?);
                }
                let weight =
                    Tensor::from_vec(weights, (k, fan_in, fan_out), device)?.to_dtype(dtype)?;
                let bias = if cfg.bias_variance > 0.0 {
                    let mut biases = Vec::with_capacity(k * fan_out);
                    for rng in bias_rngs.iter_mut() {
                        biases.extend(crate::init::sample_biases(cfg.bias_variance, fan_out, rng)?);
                    }
                    Tensor::from_vec(biases, (k, 1, fan_out), device)?.to_dtype(dtype)?
                } else {
                    Tensor::zeros((k, 1, fan_out), dtype, device)?
                };
                vars.insert(MlpConfig::weight_name(l), Var::from_tensor(&weight)?);
                vars.insert(MlpConfig::bias_name(l), Var::from_tensor(&bias)?);
                if cfg.is_normalised(l) {
                    let scale = Var::ones((k, 1, fan_out), dtype, device)?;
                    let shift = Var::zeros((k, 1, fan_out), dtype, device)?;
                    vars.insert(MlpConfig::scale_name(l), scale);
                    vars.insert(MlpConfig::shift_name(l), shift);
                }
                if cfg.has_learned_branch(l) {
                    // SkipInit: every block starts as the identity.
                    let gain = Var::zeros((k, 1, 1), dtype, device)?;
                    vars.insert(MlpConfig::branch_gain_name(l), gain);
                }
            }
        }
        Self::load(cfg, k, VarBuilder::from_varmap(varmap, dtype, device))
    }

    /// Builds a K-member model over the parameters `vb` holds (for example a `VarMap`
    /// filled by [`Mlp::init`], or a saved safetensors file).
    pub fn load(cfg: &MlpConfig, members: usize, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let layers = cfg
            .layer_dims()
            .into_iter()
            .enumerate()
            .map(|(i, (fan_in, fan_out))| {
                let l = i + 1;
                let weight = vb.get((members, fan_in, fan_out), &MlpConfig::weight_name(l))?;
                let bias = vb.get((members, 1, fan_out), &MlpConfig::bias_name(l))?;
                let reads_data = l == 1 && !cfg.model.is_convolutional();
                Ok(EnsembleLinear::new(weight, bias, reads_data))
            })
            .collect::<Result<_>>()?;
        let norms = cfg
            .layer_dims()
            .into_iter()
            .enumerate()
            .map(|(i, (_, units))| {
                let l = i + 1;
                if !cfg.is_normalised(l) {
                    return Ok(None);
                }
                let scale = vb.get((members, 1, units), &MlpConfig::scale_name(l))?;
                let shift = vb.get((members, 1, units), &MlpConfig::shift_name(l))?;
                Ok(Some(EnsembleNorm::new(cfg.norm, scale, shift)?))
            })
            .collect::<Result<_>>()?;
        let skips = (1..=cfg.layers)
            .map(|l| {
                if !cfg.has_skip(l) {
                    return Ok(Skip::None);
                }
                Ok(match cfg.branch_scale.fixed(cfg.branches()) {
                    Some(alpha) => Skip::Fixed(alpha),
                    None => {
                        Skip::Learned(vb.get((members, 1, 1), &MlpConfig::branch_gain_name(l))?)
                    }
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            layers,
            inputs: cfg.layer_inputs(),
            positions: (1..=cfg.layers).map(|l| cfg.positions(l)).collect(),
            norms,
            skips,
            activation: ActivationLayer::new(cfg.activation),
            members,
        })
    }

    /// The same model computed with `kernels` (see [`Kernels`]): every layer, norm and
    /// activation keeps the choice, so no forward call takes it again.
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self {
            layers: self
                .layers
                .into_iter()
                .map(|l| l.with_kernels(kernels))
                .collect(),
            norms: self
                .norms
                .into_iter()
                .map(|n| n.map(|n| n.with_kernels(kernels)))
                .collect(),
            activation: self.activation.with_kernels(kernels),
            ..self
        }
    }

    /// Number of ensemble members K.
    pub fn members(&self) -> usize {
        self.members
    }

    /// Number of dense layers L.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The activation of the hidden layers.
    pub fn activation(&self) -> Activation {
        self.activation.kind()
    }

    /// The kernels this model computes with.
    pub fn kernels(&self) -> Kernels {
        self.activation.kernels()
    }

    /// Whether the hidden layers are convolutions.
    pub fn is_convolutional(&self) -> bool {
        self.inputs
            .iter()
            .any(|input| matches!(input, LayerInput::Conv { .. }))
    }

    /// Positions per example of layer `l`'s (1-based) output: the rows its pre-activation
    /// has per example (1 for a dense layer; 0 for no such layer).
    pub fn positions(&self, l: usize) -> usize {
        l.checked_sub(1)
            .and_then(|i| self.positions.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// What layer `i` (0-based) multiplies by its weights, from its input `h`.
    fn layer_input(&self, i: usize, h: &Tensor) -> candle_core::Result<Tensor> {
        match self.inputs[i] {
            LayerInput::Dense => Ok(h.clone()),
            LayerInput::Conv {
                side,
                channels,
                stride,
            } => {
                if self.kernels() == Kernels::Fused && h.device().is_cpu() {
                    let h = h.contiguous()?;
                    if im2col::supported(&h) {
                        let geometry = im2col::Geometry {
                            side,
                            channels,
                            stride,
                        };
                        return im2col::patches(&h, geometry);
                    }
                }
                conv::patches(h, side, channels, stride)
            }
            LayerInput::Pool { side } => conv::global_pool(h, side),
        }
    }

    /// Dense layer `l`, counted from 1 (first hidden layer) to L (output layer).
    pub fn layer(&self, l: usize) -> Option<&EnsembleLinear> {
        l.checked_sub(1).and_then(|i| self.layers.get(i))
    }

    /// The training forward pass, keeping every pre-activation; differentiate it with
    /// [`ForwardTrace::backward`]. With `taps` (one tensor
    /// per layer, shaped like that layer's pre-activation), each tap is added to its
    /// pre-activation: a zero-valued variable there leaves the numbers unchanged and
    /// receives dC/dz_l as its gradient, which candle would otherwise drop during
    /// `backward()`.
    pub fn forward_traced(&self, xs: &Tensor, taps: Option<&[Tensor]>) -> Result<ForwardTrace> {
        self.forward_pass(xs, taps, Pass::Train)
    }

    /// The evaluation forward pass (batch norm with its running statistics), traced like
    /// [`Mlp::forward_traced`]: what the network computes at test time, for measuring it.
    pub fn forward_eval_traced(
        &self,
        xs: &Tensor,
        taps: Option<&[Tensor]>,
    ) -> Result<ForwardTrace> {
        self.forward_pass(xs, taps, Pass::Eval)
    }

    fn forward_pass(
        &self,
        xs: &Tensor,
        taps: Option<&[Tensor]>,
        pass: Pass,
    ) -> Result<ForwardTrace> {
        if let Some(taps) = taps
            && taps.len() != self.layers.len()
        {
            return Err(ModelError::Config(format!(
                "{} taps given for {} layers",
                taps.len(),
                self.layers.len()
            )));
        }
        let depth = self.layers.len();
        let mut pre_activations = Vec::with_capacity(depth);
        let mut activation_inputs = Vec::with_capacity(depth.saturating_sub(1));
        let mut activations = Vec::with_capacity(depth.saturating_sub(1));
        let mut batch_stats = Vec::with_capacity(depth.saturating_sub(1));
        let param_grads = ParamGrads::new();
        let sink = (pass == Pass::Train).then_some(&param_grads);
        let mut h = xs.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let mut z = layer.forward_into(&self.layer_input(i, &h)?, sink)?;
            if let Some(taps) = taps {
                z = z.add(&taps[i])?;
            }
            if i + 1 < depth {
                let (a, out, stats) = match (&self.norms[i], pass) {
                    (Some(norm), Pass::Train) => {
                        norm.forward_train_activated(&z, &self.activation, sink)?
                    }
                    (norm, _) => {
                        let a = match norm {
                            Some(norm) => norm.forward_eval(&z)?,
                            None => z.clone(),
                        };
                        let out = self.activation.forward(&a)?;
                        (a, out, None)
                    }
                };
                h = self.with_skip(i, &h, out.clone())?;
                activation_inputs.push(a);
                activations.push(out);
                batch_stats.push(stats);
            } else {
                h = z.clone();
            }
            pre_activations.push(z);
        }
        Ok(ForwardTrace {
            logits: h,
            pre_activations,
            activation_inputs,
            activations,
            batch_stats,
            param_grads,
        })
    }

    /// Hidden layer `i`'s (0-based) output from its input `h` and its activation's output
    /// `out`: `out`, plus `h` where the layer has a skip, the branch scaled by its alpha
    /// (an alpha of exactly 1 multiplies nothing, which keeps the plain residual
    /// network's bits).
    /// A convolution that halves the side or adds channels adds the shortcut of its
    /// input instead (see [`conv::shortcut`]).
    fn with_skip(&self, i: usize, h: &Tensor, out: Tensor) -> candle_core::Result<Tensor> {
        if matches!(self.skips[i], Skip::None) {
            return Ok(out);
        }
        let reshaped;
        let h = match self.inputs[i] {
            LayerInput::Conv {
                side,
                channels,
                stride,
            } if stride != 1 || channels != out.dim(2)? => {
                reshaped = conv::shortcut(h, side, channels, stride, out.dim(2)?)?;
                &reshaped
            }
            _ => h,
        };
        match &self.skips[i] {
            Skip::None => Ok(out),
            Skip::Fixed(alpha) if *alpha == 1.0 => h + out,
            Skip::Fixed(alpha) => h + (out * *alpha)?,
            Skip::Learned(gain) => h + out.broadcast_mul(gain)?,
        }
    }

    /// Each member's branch scale alpha at layer `l` (1-based); `None` where the layer has
    /// no skip.
    pub fn branch_scale(&self, l: usize) -> candle_core::Result<Option<Vec<f64>>> {
        let Some(skip) = l.checked_sub(1).and_then(|i| self.skips.get(i)) else {
            return Ok(None);
        };
        Ok(match skip {
            Skip::None => None,
            Skip::Fixed(alpha) => Some(vec![*alpha; self.members]),
            Skip::Learned(gain) => {
                Some(gain.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
            }
        })
    }

    /// Averages the batch statistics of a training forward pass into batch norm's running
    /// statistics (nothing without batch norm).
    pub fn update_running_stats(&mut self, trace: &ForwardTrace) -> Result<()> {
        for (norm, stats) in self.norms.iter_mut().zip(&trace.batch_stats) {
            if let (Some(norm), Some(stats)) = (norm, stats) {
                norm.update_running(stats)?;
            }
        }
        Ok(())
    }

    /// Whether layer `l` (1-based) adds its input to its output.
    pub fn has_skip(&self, l: usize) -> bool {
        l.checked_sub(1)
            .and_then(|i| self.skips.get(i))
            .is_some_and(|s| !matches!(s, Skip::None))
    }

    /// The normalisation of layer `l` (1-based), if it has one.
    pub fn norm(&self, l: usize) -> Option<&EnsembleNorm> {
        l.checked_sub(1)
            .and_then(|i| self.norms.get(i))
            .and_then(Option::as_ref)
    }
}

/// The evaluation forward pass: batch norm uses its running statistics.
impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = xs.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let z = layer.forward(&self.layer_input(i, &h)?)?;
            h = if i + 1 < self.layers.len() {
                let a = match &self.norms[i] {
                    Some(norm) => norm.forward_eval(&z)?,
                    None => z,
                };
                let out = self.activation.forward(&a)?;
                self.with_skip(i, &h, out)?
            } else {
                z
            };
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LayerInput;
    use vgrad_record::{Init, Norm};

    fn config(activation: Activation) -> MlpConfig {
        MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            input: 4,
            width: 3,
            layers: 3,
            classes: 2,
            activation,
            init: Init::GlorotUniform,
            bias_variance: 0.0,
            norm: Norm::None,
            residual: false,
            branch_scale: vgrad_record::BranchScale::One,
        }
    }

    #[test]
    fn ensemble_members_equal_single_models() -> Result<()> {
        let cfg = config(Activation::Tanh);
        let dev = Device::Cpu;
        let ensemble = Mlp::init(&cfg, &[5, 9], &VarMap::new(), &dev)?;
        let single = Mlp::init(&cfg, &[9], &VarMap::new(), &dev)?;
        let x = Tensor::arange(0f32, 24., &dev)?
            .reshape((2, 3, 4))?
            .affine(0.1, -1.)?;
        let both = ensemble.forward(&x)?;
        let alone = single.forward(&x.narrow(0, 1, 1)?)?;
        assert_eq!(
            both.narrow(0, 1, 1)?.to_vec3::<f32>()?,
            alone.to_vec3::<f32>()?
        );
        assert_eq!(ensemble.layer(1).unwrap().weight().dims(), &[2, 4, 3]);
        assert_eq!(ensemble.layer(3).unwrap().bias().dims(), &[2, 1, 2]);
        assert!(ensemble.layer(0).is_none() && ensemble.layer(4).is_none());
        Ok(())
    }

    #[test]
    fn a_bias_variance_draws_the_biases_from_their_own_stream() -> Result<()> {
        let dev = Device::Cpu;
        let plain = Mlp::init(&config(Activation::Tanh), &[5, 9], &VarMap::new(), &dev)?;
        let cfg = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            bias_variance: 0.25,
            ..config(Activation::Tanh)
        };
        let biased = Mlp::init(&cfg, &[5, 9], &VarMap::new(), &dev)?;
        let alone = Mlp::init(&cfg, &[9], &VarMap::new(), &dev)?;
        for l in 1..=3 {
            let (p, b) = (plain.layer(l).unwrap(), biased.layer(l).unwrap());
            // The weights are those of a run without bias variance.
            assert_eq!(
                p.weight().flatten_all()?.to_vec1::<f32>()?,
                b.weight().flatten_all()?.to_vec1::<f32>()?
            );
            assert!(
                p.bias()
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .all(|&x| x == 0.0)
            );
            let biases = b.bias().flatten_all()?.to_vec1::<f32>()?;
            assert!(
                biases.iter().all(|&x| x != 0.0 && x.abs() < 5.0 * 0.5),
                "{biases:?}"
            );
            // Member 9's biases are those of seed 9 alone.
            assert_eq!(
                b.bias().narrow(0, 1, 1)?.flatten_all()?.to_vec1::<f32>()?,
                alone
                    .layer(l)
                    .unwrap()
                    .bias()
                    .flatten_all()?
                    .to_vec1::<f32>()?
            );
        }
        let bad = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            bias_variance: f64::NAN,
            ..config(Activation::Tanh)
        };
        assert!(Mlp::init(&bad, &[1], &VarMap::new(), &dev).is_err());
        Ok(())
    }

    #[test]
    fn normalised_residual_members_equal_single_models() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::arange(0f32, 24., &dev)?
            .reshape((2, 3, 4))?
            .affine(0.1, -1.)?;
        for norm in [Norm::Batch, Norm::Layer] {
            let cfg = MlpConfig {
                model: vgrad_record::Architecture::Mlp,
                norm,
                residual: true,
                layers: 4,
                ..config(Activation::Selu)
            };
            let mut ensemble = Mlp::init(&cfg, &[5, 9], &VarMap::new(), &dev)?;
            let mut single = Mlp::init(&cfg, &[9], &VarMap::new(), &dev)?;
            let both = ensemble.forward_traced(&x, None)?;
            let alone = single.forward_traced(&x.narrow(0, 1, 1)?, None)?;
            assert_eq!(
                both.logits.narrow(0, 1, 1)?.to_vec3::<f32>()?,
                alone.logits.to_vec3::<f32>()?,
                "{norm} training pass"
            );
            ensemble.update_running_stats(&both)?;
            single.update_running_stats(&alone)?;
            assert_eq!(
                ensemble.forward(&x)?.narrow(0, 1, 1)?.to_vec3::<f32>()?,
                single.forward(&x.narrow(0, 1, 1)?)?.to_vec3::<f32>()?,
                "{norm} evaluation pass"
            );
            assert!(ensemble.norm(1).is_some());
            assert!(
                ensemble.norm(4).is_none(),
                "the output layer is not normalised"
            );
        }
        Ok(())
    }

    /// A convolutional network of `layers` on 28 x 28 images, 2 channels then 4.
    fn cnn(layers: usize, norm: Norm, residual: bool) -> MlpConfig {
        MlpConfig {
            model: vgrad_record::Architecture::Cnn,
            input: crate::IMAGE_SIDE * crate::IMAGE_SIDE,
            width: 2,
            layers,
            classes: 3,
            norm,
            residual,
            init: Init::HeNormal,
            ..config(Activation::Relu)
        }
    }

    /// Three images per member for `members` members, in [-1, 1].
    fn images(members: usize) -> Result<Tensor> {
        let n = members * 3 * 784;
        Ok(Tensor::arange(0f32, n as f32, &Device::Cpu)?
            .affine(0.173, 0.0)?
            .sin()?
            .reshape((members, 3, 784))?)
    }

    #[test]
    fn a_convolutional_network_has_a_stem_two_stages_and_a_pooled_output() {
        let cfg = cnn(8, Norm::None, false);
        let conv = |side, channels, stride| LayerInput::Conv {
            side,
            channels,
            stride,
        };
        // 6 convolutions after the stem: 3 at 14 x 14 of 2 channels, then 3 at 7 x 7 of 4,
        // the first of them halving the side.
        assert_eq!(
            cfg.layer_inputs(),
            vec![
                conv(28, 1, 2),
                conv(14, 2, 1),
                conv(14, 2, 1),
                conv(14, 2, 1),
                conv(14, 2, 2),
                conv(7, 4, 1),
                conv(7, 4, 1),
                LayerInput::Pool { side: 7 },
            ]
        );
        assert_eq!(
            cfg.layer_dims(),
            vec![
                (9, 2),
                (18, 2),
                (18, 2),
                (18, 2),
                (18, 4),
                (36, 4),
                (36, 4),
                (4, 3)
            ]
        );
        let positions: Vec<usize> = (1..=8).map(|l| cfg.positions(l)).collect();
        assert_eq!(positions, [196, 196, 196, 196, 49, 49, 49, 1]);
        // Three layers: the stem, one convolution, the output; no second stage.
        let short = cnn(3, Norm::None, false);
        assert_eq!(short.layer_inputs()[1], conv(14, 2, 1));
        assert_eq!(short.layer_dims()[2], (2, 3));
    }

    #[test]
    fn convolutional_members_equal_single_models_with_either_kernels() -> Result<()> {
        let x = images(2)?;
        for (norm, residual) in [(Norm::None, false), (Norm::Batch, true)] {
            let cfg = cnn(6, norm, residual);
            let dev = Device::Cpu;
            let ensemble = Mlp::init(&cfg, &[5, 9], &VarMap::new(), &dev)?;
            let single = Mlp::init(&cfg, &[9], &VarMap::new(), &dev)?;
            let plain = ensemble.clone().with_kernels(Kernels::Candle);
            let both = ensemble.forward_traced(&x, None)?.logits;
            let alone = single.forward_traced(&x.narrow(0, 1, 1)?, None)?.logits;
            let bits = |t: &Tensor| -> Result<Vec<u32>> {
                Ok(t.flatten_all()?
                    .to_vec1::<f32>()?
                    .into_iter()
                    .map(f32::to_bits)
                    .collect())
            };
            assert_eq!(bits(&both.narrow(0, 1, 1)?)?, bits(&alone)?, "{norm}");
            let candle = plain.forward_traced(&x, None)?.logits;
            assert_eq!(
                bits(&both)?,
                bits(&candle)?,
                "{norm}: fused against candle's ops"
            );
            assert_eq!(both.dims3()?, (2, 3, 3));
            // The evaluation pass of a fresh batch norm reads running statistics of 0 and
            // 1: not the training pass's numbers, but the same shape.
            assert_eq!(ensemble.forward(&x)?.dims3()?, (2, 3, 3));
        }
        Ok(())
    }

    #[test]
    fn skips_join_hidden_layers_two_to_l_minus_one() -> Result<()> {
        let cfg = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            residual: true,
            layers: 4,
            ..config(Activation::Relu)
        };
        assert_eq!(
            (1..=4).map(|l| cfg.has_skip(l)).collect::<Vec<_>>(),
            [false, true, true, false]
        );
        // With zero weights in layers 2 and 3, their outputs are f(0) = 0, so the skips
        // carry layer 1's output to layer 4 unchanged.
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let mlp = Mlp::init(&cfg, &[1], &varmap, &dev)?;
        for l in [2, 3] {
            let w = &varmap.data().lock().unwrap()[&MlpConfig::weight_name(l)];
            w.set(&w.zeros_like()?)?;
        }
        let x = Tensor::arange(0f32, 8., &dev)?.reshape((1, 2, 4))?;
        let trace = mlp.forward_traced(&x, None)?;
        let h1 = trace.activation_inputs[0].relu()?;
        let want = mlp.layer(4).unwrap().forward(&h1)?;
        assert_eq!(trace.logits.to_vec3::<f32>()?, want.to_vec3::<f32>()?);
        Ok(())
    }

    #[test]
    fn traced_forward_matches_plain_forward() -> Result<()> {
        let cfg = config(Activation::LeakyRelu { slope: 0.2 });
        let dev = Device::Cpu;
        let mlp = Mlp::init(&cfg, &[1], &VarMap::new(), &dev)?;
        let x = Tensor::arange(0f32, 8., &dev)?.reshape((1, 2, 4))?;
        let taps: Vec<Tensor> = cfg
            .layer_dims()
            .iter()
            .map(|&(_, out)| Tensor::zeros((1, 2, out), DType::F32, &dev))
            .collect::<candle_core::Result<_>>()?;
        let trace = mlp.forward_traced(&x, Some(&taps))?;
        assert_eq!(trace.pre_activations.len(), 3);
        assert_eq!(
            trace.logits.to_vec3::<f32>()?,
            mlp.forward(&x)?.to_vec3::<f32>()?
        );
        Ok(())
    }

    #[test]
    fn rejects_unbuildable_configs() {
        let mut cfg = config(Activation::Relu);
        cfg.layers = 0;
        assert!(cfg.validate().is_err());
        let cfg = config(Activation::Relu);
        assert!(Mlp::init(&cfg, &[], &VarMap::new(), &Device::Cpu).is_err());
    }

    #[test]
    fn a_training_pass_hands_its_layer_gradients_to_the_trace() -> Result<()> {
        let cfg = config(Activation::Relu);
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let mlp = Mlp::init(&cfg, &[1], &varmap, &dev)?;
        let weight = varmap
            .data()
            .lock()
            .unwrap()
            .get(&MlpConfig::weight_name(1))
            .unwrap()
            .as_tensor()
            .clone();
        let x = Tensor::arange(0f32, 8., &dev)?.reshape((1, 2, 4))?;
        let loss = |mlp: &Mlp| -> Result<(ForwardTrace, Tensor)> {
            let trace = mlp.forward_traced(&x, None)?;
            let loss = trace.logits.sqr()?.sum_all()?;
            Ok((trace, loss))
        };
        let (_, fused) = loss(&mlp)?;
        assert!(
            fused.backward()?.get(&weight).is_none(),
            "candle's store lacks it"
        );
        let (trace, fused) = loss(&mlp)?;
        let ours = trace.backward(&fused)?;
        let (_, plain) = loss(&mlp.clone().with_kernels(Kernels::Candle))?;
        let theirs = plain.backward()?;
        let bits = |g: &GradStore| -> Result<Vec<u32>> {
            let g = g.get(&weight).unwrap().flatten_all()?.to_vec1::<f32>()?;
            Ok(g.iter().map(|v| v.to_bits()).collect())
        };
        assert_eq!(bits(&ours)?, bits(&theirs)?);
        Ok(())
    }
}
