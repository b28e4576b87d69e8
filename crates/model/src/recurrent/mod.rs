//! Recurrent networks as ensembles of K seeds: a vanilla RNN (tanh or ReLU), an LSTM and a
//! GRU, each a single recurrent layer read out by a dense layer from its last hidden
//! state.
//!
//! # Why not candle-nn's `rnn` module
//!
//! candle-nn's cells take no ensemble axis, keep their gates and intermediate states to
//! themselves, and draw their initial weights from candle's unseeded generator. The cells
//! here are written in plain candle ops (matmul, broadcast add, `candle_nn::ops::sigmoid`,
//! `tanh`, `narrow`), so that candle's backward pass differentiates them and every hidden
//! state h_t, cell state c_t and gate activation of every step is a tensor a probe can
//! reach ([`RecurrentTrace`]). candle-nn's LSTM and GRU serve as references in the tests.
//!
//! # Layout
//!
//! Parameters follow PyTorch's `nn.RNN`, `nn.LSTM` and `nn.GRU` (two biases per cell,
//! the same gate order), transposed so that a row vector multiplies them and with the
//! ensemble axis in front, as the MLP's [`EnsembleLinear`]:
//!
//! | parameter | shape | PyTorch's |
//! | --- | --- | --- |
//! | input weight `W_x` | `[K, input, G * hidden]` | `weight_ih_l0`, `[G * hidden, input]` |
//! | recurrent weight `W_h` | `[K, hidden, G * hidden]` | `weight_hh_l0`, `[G * hidden, hidden]` |
//! | input bias `b_x` | `[K, 1, G * hidden]` | `bias_ih_l0` |
//! | recurrent bias `b_h` | `[K, 1, G * hidden]` | `bias_hh_l0` |
//! | readout weight | `[K, hidden, outputs]` | `nn.Linear`'s weight, transposed |
//! | readout bias | `[K, 1, outputs]` | `nn.Linear`'s bias |
//!
//! with G = 1 (RNN), 4 (LSTM: gates i, f, g, o) or 3 (GRU: gates r, z, n), gate `j`
//! in columns `j * hidden..(j + 1) * hidden`. Two biases where one would do for the RNN
//! and the LSTM: the GRU needs `b_hn` apart from `b_in` (it sits inside the reset gate's
//! product), and keeping PyTorch's parameters everywhere keeps its default initial
//! distribution (the effective bias is the sum of two uniform draws) and its parameter
//! count, against which the models are benchmarked.
//!
//! Inputs are `[K, B, T, features]` (member, example, time step, feature) for a whole
//! sequence, or `[K, B, features]` for one step ([`Recurrent::step`]); hidden states are
//! `[K, B, hidden]`, outputs `[K, B, outputs]`. Members share nothing but the
//! configuration: each computes exactly (bit for bit) what it computes alone.

mod gru;
mod lstm;
mod rnn;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;
use vgrad_record::{Activation, Init};

use crate::activation::ActivationLayer;
use crate::init::sample;
use crate::seeding::{self, Stream};
use crate::{EnsembleLinear, Kernels, ModelError, Result};

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecurrentKind {
    /// Elman's vanilla RNN with tanh: h_t = tanh(x_t W_x + b_x + h_(t-1) W_h + b_h)
    /// (PyTorch's `nn.RNN`, its default nonlinearity).
    RnnTanh,
    /// The vanilla RNN with ReLU: h_t = max(0, x_t W_x + b_x + h_(t-1) W_h + b_h)
    /// (`nn.RNN(nonlinearity="relu")`; with [`RecurrentInit::Identity`], Le et al. 2015's
    /// IRNN).
    RnnRelu,
    /// Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of
    /// Gers et al. 2000), as PyTorch's `nn.LSTM`.
    Lstm,
    /// Gated recurrent unit (Cho et al. 2014), as PyTorch's `nn.GRU`.
    Gru,
}

impl RecurrentKind {
    /// Every kind, in the order of the docs.
    pub const ALL: [Self; 4] = [Self::RnnTanh, Self::RnnRelu, Self::Lstm, Self::Gru];

    /// G, the number of blocks of `hidden` columns in the weights: one per gate, or one
    /// for the RNN's single pre-activation.
    pub fn gates(self) -> usize {
        match self {
            Self::RnnTanh | Self::RnnRelu => 1,
            Self::Lstm => 4,
            Self::Gru => 3,
        }
    }

    /// Whether the cell is a vanilla RNN (no gates).
    pub fn is_vanilla(self) -> bool {
        matches!(self, Self::RnnTanh | Self::RnnRelu)
    }

    /// The vanilla RNN's nonlinearity; `None` for the gated cells.
    pub fn activation(self) -> Option<Activation> {
        match self {
            Self::RnnTanh => Some(Activation::Tanh),
            Self::RnnRelu => Some(Activation::Relu),
            Self::Lstm | Self::Gru => None,
        }
    }
}

impl fmt::Display for RecurrentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RnnTanh => "rnn-tanh",
            Self::RnnRelu => "rnn-relu",
            Self::Lstm => "lstm",
            Self::Gru => "gru",
        })
    }
}

impl FromStr for RecurrentKind {
    type Err = ModelError;

    /// `rnn-tanh` (or `rnn`), `rnn-relu`, `lstm` or `gru`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rnn" | "rnn-tanh" => Ok(Self::RnnTanh),
            "rnn-relu" => Ok(Self::RnnRelu),
            "lstm" => Ok(Self::Lstm),
            "gru" => Ok(Self::Gru),
            other => Err(ModelError::Config(format!(
                "unknown recurrent model {other:?}; expected rnn-tanh (or rnn), rnn-relu, lstm or gru"
            ))),
        }
    }
}

/// The standard deviation of the IRNN's input weights, N(0, 0.001^2): Le et al. 2015's
/// non-recurrent weights, as Keras' reproduction of the paper (`examples/mnist_irnn.py`)
/// draws its recurrent layer's input weights; its readout keeps the dense layer's
/// default, as the readout here keeps [`RecurrentInit::Uniform`]'s.
pub const IRNN_INPUT_STD: f64 = 0.001;

/// How the recurrent weight `W_h` starts: a run setting (`--recurrent-init`), defined with
/// the others in the record crate.
pub use vgrad_record::RecurrentInit;

/// Checks what the setting's parser checks, for an init built in code.
fn validate_init(init: RecurrentInit) -> Result<()> {
    match init {
        RecurrentInit::Uniform => Ok(()),
        RecurrentInit::Orthogonal { gain } | RecurrentInit::Identity { gain } => {
            if gain > 0.0 && gain.is_finite() {
                Ok(())
            } else {
                Err(ModelError::Config(format!(
                    "recurrent init {init}: the gain must be a finite number above 0"
                )))
            }
        }
    }
}

/// Shape and ingredients of a recurrent network: one recurrent layer of `hidden` units
/// over `input` features per step, and a dense readout of `outputs` units from the last
/// hidden state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecurrentConfig {
    /// The cell.
    pub kind: RecurrentKind,
    /// Features per time step (28 for row-sequential MNIST, 2 for the adding problem).
    pub input: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Readout units: classes for a classification, 1 for the adding problem.
    pub outputs: usize,
    /// How the weights start.
    pub init: RecurrentInit,
    /// The LSTM's forget-gate bias, where set: `b_x`'s forget block set to it and `b_h`'s
    /// to 0, so that the gate's effective bias is exactly this value (Gers et al. 2000;
    /// Jozefowicz et al. 2015 recommend 1, so that the gate starts open at
    /// sigmoid(1) = 0.73); `None` keeps what the init drew. The other parameters are drawn
    /// as without it.
    pub forget_bias: Option<f64>,
}

impl RecurrentConfig {
    /// Name of the input weight `W_x` in a [`VarMap`].
    pub const INPUT_WEIGHT: &'static str = "cell.input_weight";
    /// Name of the recurrent weight `W_h` in a [`VarMap`].
    pub const RECURRENT_WEIGHT: &'static str = "cell.recurrent_weight";
    /// Name of the input bias `b_x` in a [`VarMap`].
    pub const INPUT_BIAS: &'static str = "cell.input_bias";
    /// Name of the recurrent bias `b_h` in a [`VarMap`].
    pub const RECURRENT_BIAS: &'static str = "cell.recurrent_bias";
    /// Name of the readout's weight in a [`VarMap`].
    pub const READOUT_WEIGHT: &'static str = "readout.weight";
    /// Name of the readout's bias in a [`VarMap`].
    pub const READOUT_BIAS: &'static str = "readout.bias";

    /// Every parameter's name, the cell's first.
    pub fn param_names() -> [&'static str; 6] {
        [
            Self::INPUT_WEIGHT,
            Self::RECURRENT_WEIGHT,
            Self::INPUT_BIAS,
            Self::RECURRENT_BIAS,
            Self::READOUT_WEIGHT,
            Self::READOUT_BIAS,
        ]
    }

    /// The network of a run's settings (`--model rnn`, `lstm` or `gru`, `--activation`,
    /// `--width`, `--task`, `--recurrent-init`, `--forget-bias`); fails for a network that
    /// is not recurrent or an activation the cell does not take.
    pub fn for_run(cfg: &vgrad_record::RunConfig) -> Result<Self> {
        use vgrad_record::Architecture;
        let kind = match (cfg.model, cfg.activation) {
            (Architecture::Rnn, Activation::Tanh) => RecurrentKind::RnnTanh,
            (Architecture::Rnn, Activation::Relu) => RecurrentKind::RnnRelu,
            (Architecture::Lstm, Activation::Tanh) => RecurrentKind::Lstm,
            (Architecture::Gru, Activation::Tanh) => RecurrentKind::Gru,
            (model, activation) => {
                return Err(ModelError::Config(format!(
                    "no recurrent network is --model {model} with --activation {activation}"
                )));
            }
        };
        Ok(Self {
            kind,
            input: cfg.task.features(),
            hidden: cfg.width,
            outputs: cfg.task.outputs(),
            init: cfg.recurrent_init,
            forget_bias: cfg.forget_bias.value(),
        })
    }

    /// G * hidden: the columns of the cell's weights and biases.
    pub fn gate_width(&self) -> usize {
        self.kind.gates() * self.hidden
    }

    /// Checks that the configuration describes a network that can be built.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(ModelError::Config(m));
        if self.input == 0 {
            return fail("a recurrent network needs at least 1 input feature".into());
        }
        if self.hidden == 0 {
            return fail("a recurrent network needs at least 1 hidden unit".into());
        }
        if self.outputs == 0 {
            return fail("a recurrent network needs at least 1 output".into());
        }
        validate_init(self.init)?;
        if matches!(self.init, RecurrentInit::Identity { .. }) && !self.kind.is_vanilla() {
            return fail(format!(
                "the identity init (IRNN) is for the vanilla RNN, not the {}",
                self.kind
            ));
        }
        if let Some(bias) = self.forget_bias {
            if self.kind != RecurrentKind::Lstm {
                return fail(format!(
                    "a forget-gate bias is for the LSTM; the {} has no forget gate",
                    self.kind
                ));
            }
            if !bias.is_finite() {
                return fail(format!("the forget-gate bias must be finite, not {bias}"));
            }
        }
        Ok(())
    }
}

/// The cell's parameters, all K members' at once (shapes in the module's doc).
#[derive(Debug, Clone)]
pub struct CellParams {
    /// `W_x`, `[K, input, G * hidden]`.
    pub input_weight: Tensor,
    /// `W_h`, `[K, hidden, G * hidden]`.
    pub recurrent_weight: Tensor,
    /// `b_x`, `[K, 1, G * hidden]`.
    pub input_bias: Tensor,
    /// `b_h`, `[K, 1, G * hidden]`.
    pub recurrent_bias: Tensor,
}

impl CellParams {
    /// `x W_x + b_x`: `x: [K, B, input]` to `[K, B, G * hidden]`.
    fn input_projection(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.input_weight)?
            .broadcast_add(&self.input_bias)
    }

    /// `h W_h + b_h`: `h: [K, B, hidden]` to `[K, B, G * hidden]`.
    fn recurrent_projection(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        h.matmul(&self.recurrent_weight)?
            .broadcast_add(&self.recurrent_bias)
    }
}

/// What a cell carries from one step to the next.
#[derive(Debug, Clone)]
pub struct State {
    /// The hidden state h_t, `[K, B, hidden]`.
    pub h: Tensor,
    /// The LSTM's cell state c_t, `[K, B, hidden]`; `None` for the other cells.
    pub c: Option<Tensor>,
}

/// The gate activations of one step, each `[K, B, hidden]` (views into the step's
/// pre-activation, so keeping them costs no copy).
#[derive(Debug, Clone)]
pub enum Gates {
    /// The LSTM's gates (PyTorch's names and order).
    Lstm {
        /// i_t = sigmoid(.): how much of the candidate enters the cell.
        input: Tensor,
        /// f_t = sigmoid(.): how much of c_(t-1) the cell keeps; dc_t/dc_(t-1) = f_t
        /// along the cell, the path that carries the gradient through time.
        forget: Tensor,
        /// g_t = tanh(.): the candidate cell value.
        cell: Tensor,
        /// o_t = sigmoid(.): how much of tanh(c_t) is shown as h_t.
        output: Tensor,
    },
    /// The GRU's gates (PyTorch's names and order).
    Gru {
        /// r_t = sigmoid(.): how much of h_(t-1) W_hn + b_hn enters the candidate.
        reset: Tensor,
        /// z_t = sigmoid(.): how much of h_(t-1) the new state keeps.
        update: Tensor,
        /// n_t = tanh(.): the candidate state.
        candidate: Tensor,
    },
}

impl Gates {
    /// The LSTM's forget gate f_t; `None` for the GRU.
    pub fn forget(&self) -> Option<&Tensor> {
        match self {
            Self::Lstm { forget, .. } => Some(forget),
            Self::Gru { .. } => None,
        }
    }
}

/// One step of a cell: its new state and, for the gated cells, its gates.
#[derive(Debug, Clone)]
pub struct Step {
    /// The state after the step (h_t with the step's tap added, where there is one).
    pub state: State,
    /// The gate activations; `None` for the vanilla RNN.
    pub gates: Option<Gates>,
}

/// The values a forward pass over a whole sequence produced.
#[derive(Debug, Clone)]
pub struct RecurrentTrace {
    /// The readout of the last hidden state, `[K, B, outputs]`.
    pub outputs: Tensor,
    /// h_1..h_T, each `[K, B, hidden]` (h_0 is zero), with each step's tap added: what
    /// the next step and the readout read.
    pub hidden: Vec<Tensor>,
    /// The LSTM's c_1..c_T, each `[K, B, hidden]`; empty for the other cells.
    pub cells: Vec<Tensor>,
    /// Each step's gates; empty for the vanilla RNN.
    pub gates: Vec<Gates>,
}

impl RecurrentTrace {
    /// T, the number of steps.
    pub fn steps(&self) -> usize {
        self.hidden.len()
    }

    /// The LSTM's forget gate f_1..f_T; empty for the other cells.
    pub fn forget_gates(&self) -> Vec<&Tensor> {
        self.gates.iter().filter_map(Gates::forget).collect()
    }
}

/// K recurrent networks of one configuration as batched tensors.
#[derive(Debug, Clone)]
pub struct Recurrent {
    kind: RecurrentKind,
    params: CellParams,
    /// The vanilla RNN's nonlinearity (unused by the gated cells, whose nonlinearities
    /// are fixed).
    activation: ActivationLayer,
    readout: EnsembleLinear,
    members: usize,
    hidden: usize,
    input: usize,
}

/// One member's initial parameters, row-major, shapes as in the module's doc without K.
struct MemberDraw {
    input_weight: Vec<f32>,
    recurrent_weight: Vec<f32>,
    input_bias: Vec<f32>,
    recurrent_bias: Vec<f32>,
    readout_weight: Vec<f32>,
    readout_bias: Vec<f32>,
}

/// Draws one member's parameters from `rng` (its seed's init stream).
///
/// The order is fixed: the input weight, the two biases, the readout, and the recurrent
/// weight last, so that the uniform and orthogonal inits of one seed share every draw but
/// `W_h`, and a comparison between them varies only the recurrent weight.
fn draw_member<R: Rng>(cfg: &RecurrentConfig, rng: &mut R) -> Result<MemberDraw> {
    let (input, hidden, outputs) = (cfg.input, cfg.hidden, cfg.outputs);
    let width = cfg.gate_width();
    let uniform = Init::Uniform {
        limit: 1.0 / (hidden as f64).sqrt(),
    };
    let irnn = matches!(cfg.init, RecurrentInit::Identity { .. });
    let input_weight = if irnn {
        sample(
            Init::Normal {
                std: IRNN_INPUT_STD,
            },
            input,
            width,
            rng,
        )?
    } else {
        sample(uniform, input, width, rng)?
    };
    let (mut input_bias, mut recurrent_bias) = if irnn {
        (vec![0.0; width], vec![0.0; width])
    } else {
        (
            sample(uniform, 1, width, rng)?,
            sample(uniform, 1, width, rng)?,
        )
    };
    let readout_weight = sample(uniform, hidden, outputs, rng)?;
    let readout_bias = sample(uniform, 1, outputs, rng)?;
    let recurrent_weight = match cfg.init {
        RecurrentInit::Uniform => sample(uniform, hidden, width, rng)?,
        RecurrentInit::Orthogonal { gain } => {
            let mut w = vec![0.0; hidden * width];
            for gate in 0..cfg.kind.gates() {
                let block = sample(Init::Orthogonal { gain }, hidden, hidden, rng)?;
                for (r, row) in block.chunks_exact(hidden).enumerate() {
                    let start = r * width + gate * hidden;
                    w[start..start + hidden].copy_from_slice(row);
                }
            }
            w
        }
        RecurrentInit::Identity { gain } => {
            let mut w = vec![0.0; hidden * width];
            for r in 0..hidden {
                w[r * width + r] = gain as f32;
            }
            w
        }
    };
    if let Some(bias) = cfg.forget_bias {
        // The forget gate is the LSTM's second block (i, f, g, o).
        input_bias[hidden..2 * hidden].fill(bias as f32);
        recurrent_bias[hidden..2 * hidden].fill(0.0);
    }
    Ok(MemberDraw {
        input_weight,
        recurrent_weight,
        input_bias,
        recurrent_bias,
        readout_weight,
        readout_bias,
    })
}

impl Recurrent {
    /// Draws the initial parameters of one member per seed (each from its own seed's
    /// [`Stream::Init`] generator, on the CPU), registers them in `varmap` under
    /// [`RecurrentConfig::param_names`], and builds the model over them on `device`.
    pub fn init(
        cfg: &RecurrentConfig,
        seeds: &[u64],
        varmap: &VarMap,
        device: &Device,
    ) -> Result<Self> {
        Self::init_with_dtype(cfg, seeds, varmap, device, DType::F32)
    }

    /// [`Recurrent::init`] with parameters of another float type (the same f32 draws,
    /// converted): f64 serves finite-difference checks of the gradients.
    pub fn init_with_dtype(
        cfg: &RecurrentConfig,
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
        let draws = seeds
            .iter()
            .map(|&seed| draw_member(cfg, &mut seeding::rng(seed, Stream::Init)))
            .collect::<Result<Vec<_>>>()?;
        let (input, hidden, outputs, width) =
            (cfg.input, cfg.hidden, cfg.outputs, cfg.gate_width());
        type Field = fn(&MemberDraw) -> &[f32];
        let fields: [(&str, Field, (usize, usize)); 6] = [
            (
                RecurrentConfig::INPUT_WEIGHT,
                |d| d.input_weight.as_slice(),
                (input, width),
            ),
            (
                RecurrentConfig::RECURRENT_WEIGHT,
                |d| d.recurrent_weight.as_slice(),
                (hidden, width),
            ),
            (
                RecurrentConfig::INPUT_BIAS,
                |d| d.input_bias.as_slice(),
                (1, width),
            ),
            (
                RecurrentConfig::RECURRENT_BIAS,
                |d| d.recurrent_bias.as_slice(),
                (1, width),
            ),
            (
                RecurrentConfig::READOUT_WEIGHT,
                |d| d.readout_weight.as_slice(),
                (hidden, outputs),
            ),
            (
                RecurrentConfig::READOUT_BIAS,
                |d| d.readout_bias.as_slice(),
                (1, outputs),
            ),
        ];
        {
            let mut vars = varmap
                .data()
                .lock()
                .map_err(|_| ModelError::Config("the VarMap lock is poisoned".into()))?;
            for (name, field, (rows, cols)) in fields {
                let values: Vec<f32> = draws
                    .iter()
                    .flat_map(|d| field(d).iter().copied())
                    .collect();
                let tensor = Tensor::from_vec(values, (k, rows, cols), device)?.to_dtype(dtype)?;
                vars.insert(name.to_string(), Var::from_tensor(&tensor)?);
            }
        }
        Self::load(cfg, k, VarBuilder::from_varmap(varmap, dtype, device))
    }

    /// Builds a K-member model over the parameters `vb` holds (for example a `VarMap`
    /// filled by [`Recurrent::init`], or a saved safetensors file).
    pub fn load(cfg: &RecurrentConfig, members: usize, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let (input, hidden, outputs, width) =
            (cfg.input, cfg.hidden, cfg.outputs, cfg.gate_width());
        let params = CellParams {
            input_weight: vb.get((members, input, width), RecurrentConfig::INPUT_WEIGHT)?,
            recurrent_weight: vb
                .get((members, hidden, width), RecurrentConfig::RECURRENT_WEIGHT)?,
            input_bias: vb.get((members, 1, width), RecurrentConfig::INPUT_BIAS)?,
            recurrent_bias: vb.get((members, 1, width), RecurrentConfig::RECURRENT_BIAS)?,
        };
        let readout = EnsembleLinear::new(
            vb.get((members, hidden, outputs), RecurrentConfig::READOUT_WEIGHT)?,
            vb.get((members, 1, outputs), RecurrentConfig::READOUT_BIAS)?,
            false,
        );
        Ok(Self {
            kind: cfg.kind,
            params,
            // Only the vanilla RNN reads it; tanh stands in for the gated cells.
            activation: ActivationLayer::new(cfg.kind.activation().unwrap_or(Activation::Tanh)),
            readout,
            members,
            hidden,
            input,
        })
    }

    /// The same model computed with `kernels` (see [`Kernels`]): the readout and the
    /// vanilla RNN's nonlinearity. With [`Kernels::Fused`] (the default) the ReLU RNN's
    /// derivative at 0 is 0, as PyTorch's (and candle's `relu` takes 1 there): it matters
    /// where a pre-activation is exactly 0, as the IRNN's is on a blank input with zero
    /// biases.
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self {
            activation: self.activation.with_kernels(kernels),
            readout: self.readout.with_kernels(kernels),
            ..self
        }
    }

    /// The cell.
    pub fn kind(&self) -> RecurrentKind {
        self.kind
    }

    /// Number of ensemble members K.
    pub fn members(&self) -> usize {
        self.members
    }

    /// Hidden units.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Features per time step.
    pub fn input(&self) -> usize {
        self.input
    }

    /// The cell's parameters.
    pub fn params(&self) -> &CellParams {
        &self.params
    }

    /// The readout from the last hidden state.
    pub fn readout(&self) -> &EnsembleLinear {
        &self.readout
    }

    /// The state before the first step: h_0 (and the LSTM's c_0) zero, `[K, batch,
    /// hidden]`, of the parameters' type and device.
    pub fn zero_state(&self, batch: usize) -> Result<State> {
        let w = &self.params.recurrent_weight;
        let zeros = Tensor::zeros((self.members, batch, self.hidden), w.dtype(), w.device())?;
        let c = (self.kind == RecurrentKind::Lstm).then(|| zeros.clone());
        Ok(State { h: zeros, c })
    }

    /// One zero variable per step, `[K, batch, hidden]`, of the parameters' type and
    /// device: passed to [`Recurrent::forward_traced`] as taps, each receives dC/dh_t as
    /// its gradient (candle keeps the gradients of variables only).
    pub fn zero_taps(&self, batch: usize, steps: usize) -> Result<Vec<Var>> {
        let w = &self.params.recurrent_weight;
        (0..steps)
            .map(|_| {
                Ok(Var::zeros(
                    (self.members, batch, self.hidden),
                    w.dtype(),
                    w.device(),
                )?)
            })
            .collect()
    }

    /// One step: the new state from the input `x: [K, B, input]` and the previous
    /// state. With a `tap` (`[K, B, hidden]`), the tap is added to h_t: a zero variable
    /// there leaves every value unchanged and receives dC/dh_t, the gradient through every
    /// later step and the readout, during `backward()`.
    pub fn step(&self, x: &Tensor, state: &State, tap: Option<&Tensor>) -> Result<Step> {
        let mut step = match self.kind {
            RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => Step {
                state: State {
                    h: rnn::step(&self.params, &self.activation, x, &state.h)?,
                    c: None,
                },
                gates: None,
            },
            RecurrentKind::Lstm => {
                let c = state.c.as_ref().ok_or_else(|| {
                    ModelError::Config("an LSTM step needs a cell state (see zero_state)".into())
                })?;
                let (h, c, gates) = lstm::step(&self.params, x, &state.h, c)?;
                Step {
                    state: State { h, c: Some(c) },
                    gates: Some(gates),
                }
            }
            RecurrentKind::Gru => {
                let (h, gates) = gru::step(&self.params, x, &state.h)?;
                Step {
                    state: State { h, c: None },
                    gates: Some(gates),
                }
            }
        };
        if let Some(tap) = tap {
            step.state.h = step.state.h.add(tap)?;
        }
        Ok(step)
    }

    /// The forward pass over sequences `xs: [K, B, T, input]`, keeping every step's
    /// states and gates; the outputs read the last hidden state h_T. With `taps` (T
    /// tensors `[K, B, hidden]`, e.g. [`Recurrent::zero_taps`]), tap t is added to h_t
    /// (see [`Recurrent::step`]). Differentiate it with `loss.backward()`: every gradient
    /// stays with candle.
    ///
    /// Each step reads its slice of `xs` as a fresh contiguous tensor: the input is data,
    /// and a gradient through the slices (were `xs` a variable) would cost a full-size
    /// tensor per step in candle's backward pass.
    pub fn forward_traced(&self, xs: &Tensor, taps: Option<&[Tensor]>) -> Result<RecurrentTrace> {
        let (members, batch, steps, features) = xs.dims4()?;
        if members != self.members || features != self.input {
            return Err(ModelError::Config(format!(
                "input of shape {:?}: expected [{}, batch, steps, {}]",
                xs.dims(),
                self.members,
                self.input
            )));
        }
        if steps == 0 {
            return Err(ModelError::Config(
                "a sequence needs at least 1 step".into(),
            ));
        }
        if let Some(taps) = taps
            && taps.len() != steps
        {
            return Err(ModelError::Config(format!(
                "{} taps given for {steps} steps",
                taps.len()
            )));
        }
        let mut state = self.zero_state(batch)?;
        let mut hidden = Vec::with_capacity(steps);
        let mut cells = Vec::new();
        let mut gates = Vec::new();
        for t in 0..steps {
            let x = xs.narrow(2, t, 1)?.squeeze(2)?.contiguous()?;
            let step = self.step(&x, &state, taps.map(|taps| &taps[t]))?;
            hidden.push(step.state.h.clone());
            if let Some(c) = &step.state.c {
                cells.push(c.clone());
            }
            gates.extend(step.gates);
            state = step.state;
        }
        let outputs = self.readout.forward(&state.h)?;
        Ok(RecurrentTrace {
            outputs,
            hidden,
            cells,
            gates,
        })
    }
}

/// The forward pass's outputs, `[K, B, outputs]` from `[K, B, T, input]`.
impl Module for Recurrent {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self.forward_traced(xs, None) {
            Ok(trace) => Ok(trace.outputs),
            Err(ModelError::Candle(e)) => Err(e),
            Err(e) => Err(candle_core::Error::Msg(e.to_string())),
        }
    }
}
