//! The multi-layer perceptron of the experiment, as an ensemble of K seeds.

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use vgrad_record::{Activation, CLASSES, INPUT, Init, RunConfig};

use crate::seeding::{self, Stream};
use crate::{EnsembleLinear, Kernels, ModelError, Result, activation};

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
    /// Weight initialisation; biases start at zero.
    pub init: Init,
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

    /// Name of layer `l`'s (1-based) weight in a [`VarMap`].
    pub fn weight_name(l: usize) -> String {
        format!("layer{l}.weight")
    }

    /// Name of layer `l`'s (1-based) bias in a [`VarMap`].
    pub fn bias_name(l: usize) -> String {
        format!("layer{l}.bias")
    }

    /// Names of all parameters in a fixed order: layer 1 weight, layer 1 bias, layer 2 ...
    /// (`VarMap::all_vars` returns them in arbitrary order).
    pub fn param_names(&self) -> Vec<String> {
        (1..=self.layers)
            .flat_map(|l| [Self::weight_name(l), Self::bias_name(l)])
            .collect()
    }
}

/// The values a forward pass produced on the way to the logits.
#[derive(Debug, Clone)]
pub struct ForwardTrace {
    /// `[K, B, classes]`.
    pub logits: Tensor,
    /// Pre-activation `z_l = h_(l-1) W_l + b_l` of layers 1..=L, each `[K, B, fan_out]`;
    /// the last one is the logits.
    pub pre_activations: Vec<Tensor>,
}

/// K independent MLPs of one configuration as batched tensors.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<EnsembleLinear>,
    activation: Activation,
    members: usize,
    kernels: Kernels,
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
                let bias = Tensor::zeros((k, 1, fan_out), dtype, device)?;
                vars.insert(MlpConfig::weight_name(l), Var::from_tensor(&weight)?);
                vars.insert(MlpConfig::bias_name(l), Var::from_tensor(&bias)?);
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
                Ok(EnsembleLinear::new(weight, bias, l == 1))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            layers,
            activation: cfg.activation,
            members,
            kernels: Kernels::Fused,
        })
    }

    /// The same model computed with `kernels` (see [`Kernels`]).
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self {
            layers: self
                .layers
                .into_iter()
                .map(|l| l.with_kernels(kernels))
                .collect(),
            kernels,
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
        self.activation
    }

    /// Dense layer `l`, counted from 1 (first hidden layer) to L (output layer).
    pub fn layer(&self, l: usize) -> Option<&EnsembleLinear> {
        l.checked_sub(1).and_then(|i| self.layers.get(i))
    }

    /// The forward pass, keeping every pre-activation. With `taps` (one tensor per layer,
    /// shaped like that layer's pre-activation), each tap is added to its pre-activation:
    /// a zero-valued variable there leaves the numbers unchanged and receives dC/dz_l as
    /// its gradient, which candle would otherwise drop during `backward()`.
    pub fn forward_traced(&self, xs: &Tensor, taps: Option<&[Tensor]>) -> Result<ForwardTrace> {
        if let Some(taps) = taps
            && taps.len() != self.layers.len()
        {
            return Err(ModelError::Config(format!(
                "{} taps given for {} layers",
                taps.len(),
                self.layers.len()
            )));
        }
        let mut pre_activations = Vec::with_capacity(self.layers.len());
        let mut h = xs.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let mut z = layer.forward(&h)?;
            if let Some(taps) = taps {
                z = z.add(&taps[i])?;
            }
            h = if i + 1 < self.layers.len() {
                activation::forward(self.activation, &z, self.kernels)?
            } else {
                z.clone()
            };
            pre_activations.push(z);
        }
        Ok(ForwardTrace {
            logits: h,
            pre_activations,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = xs.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = activation::forward(self.activation, &h, self.kernels)?;
            }
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(activation: Activation) -> MlpConfig {
        MlpConfig {
            input: 4,
            width: 3,
            layers: 3,
            classes: 2,
            activation,
            init: Init::GlorotUniform,
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
}
