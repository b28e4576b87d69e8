//! The configuration of one run, declared once: its fields are the flags of `vgrad train`
//! (with the `clap` feature), the keys a sweep file's `[base]` and `[axes]` may set, and
//! the fields of `config.json`. Adding a setting is one field here plus its use.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::{
    Activation, Architecture, BiasVariance, BranchScale, ConfigError, ForgetBias, Init, Norm,
    Optimizer, ParseError, Probe, RecurrentInit, Task,
};

/// Pixels per MNIST image: the network's input size.
pub const INPUT: usize = 28 * 28;
/// MNIST classes: the network's output size.
pub const CLASSES: usize = 10;
/// Training images held out for validation (the first ones), as TensorFlow's MNIST helper
/// did; recorded in `config.json`, not a setting.
pub const VALIDATION_EXAMPLES: usize = 5_000;

/// Everything that determines a run's numbers. Defaults are the reference experiment of
/// `docs/experiment.md`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// The network: mlp (dense layers), cnn (3x3 convolutions of --width channels in two
    /// stages, 14x14 then 7x7 with twice the channels, global average pooling, a dense
    /// output layer; --layers counts the convolutions and the output layer), or a
    /// recurrent layer of --width units read out from its last hidden state (--layers 2):
    /// rnn (--activation tanh or relu), lstm or gru (--activation tanh).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.model))]
    pub model: Architecture,
    /// What the network learns: mnist (the images of --data; a recurrent network reads
    /// each image's 28 rows as 28 time steps), or adding (the adding problem of
    /// --sequence-length steps, generated from the seed; recurrent models only).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.task))]
    pub task: Task,
    /// The adding problem's sequence length T (at least 2); 0 for mnist, whose sequences
    /// are an image's 28 rows.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.sequence_length))]
    pub sequence_length: usize,
    /// A recurrent network's weights: uniform (every weight and bias U(+-1/sqrt(width)),
    /// PyTorch's default), orthogonal[:<gain>] (each gate's recurrent block orthogonal
    /// times the gain), identity[:<gain>] (rnn only: Le et al. 2015's IRNN).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.recurrent_init))]
    pub recurrent_init: RecurrentInit,
    /// The LSTM's forget-gate bias: init (as --recurrent-init draws it) or a number (its
    /// effective bias set to it; Jozefowicz et al. 2015 recommend 1).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.forget_bias))]
    pub forget_bias: ForgetBias,
    /// Hidden-layer activation: sigmoid, tanh, relu, leaky-relu (slope 0.01),
    /// leaky-relu:<slope>, elu, gelu, silu, softsign, selu, linear.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.activation))]
    pub activation: Activation,
    /// Dense layers, output layer included (the reference: 5 hidden + 1 output).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.layers))]
    pub layers: usize,
    /// Units per hidden layer.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.width))]
    pub width: usize,
    /// Weight init: glorot-uniform, glorot-normal, he-uniform, he-normal, lecun-normal,
    /// standard, orthogonal[:<gain>], normal:<std>, uniform:<limit>, variance:<sigma_w^2>
    /// (N(0, sigma_w^2 / fan_in), the mean-field papers' convention).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.init))]
    pub init: Init,
    /// sigma_b^2: every bias starts at N(0, sigma_b^2), drawn from the run's seed; 0 starts
    /// them at zero; critical: the sigma_b^2 that puts the activation and the hidden
    /// layers' sigma_w^2 on the critical line chi_1 = 1 (a smooth activation such as tanh).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.bias_variance))]
    pub bias_variance: BiasVariance,
    /// Normalisation of every hidden layer's pre-activation, before the activation, with
    /// a learnable scale and shift: none, batch, layer.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.norm))]
    pub norm: Norm,
    /// Skip connections: hidden layers 2..L-1 add their input to their output,
    /// h_l = h_(l-1) + f(z_l). Layer 1 (784 inputs to the width) and the output layer
    /// have none.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            default_value_t = REFERENCE.residual,
            num_args = 0..=1,
            default_missing_value = "true",
            action = clap::ArgAction::Set
        )
    )]
    pub residual: bool,
    /// With --residual: the scale alpha of each residual branch, h_l = h_(l-1) + alpha
    /// f(z_l): one, inverse-sqrt-depth (1/sqrt(L - 2), over the L - 2 branches),
    /// skipinit (a learnable scalar per branch starting at 0; De & Smith 2020).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.branch_scale))]
    pub branch_scale: BranchScale,
    /// Optimizer steps.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.steps))]
    pub steps: usize,
    /// Examples per batch (and ensemble member).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.batch_size))]
    pub batch_size: usize,
    /// Optimizer: adam, sgd, momentum:<beta> (PyTorch's SGD with momentum, no dampening,
    /// no Nesterov).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.optimizer))]
    pub optimizer: Optimizer,
    /// The optimizer's learning rate.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.lr))]
    pub lr: f64,
    /// Adam's decay of the first moment.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.beta1))]
    pub beta1: f64,
    /// Adam's decay of the second moment.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.beta2))]
    pub beta2: f64,
    /// Adam's epsilon, added to the bias-corrected root of the second moment.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.epsilon))]
    pub epsilon: f64,
    /// Clip each member's gradients by their global norm (Pascanu et al. 2013): where the
    /// norm over all its parameters exceeds this, they are scaled down to it. 0 never clips.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.clip_norm))]
    pub clip_norm: f64,
    /// Linear learning-rate warm-up: step t trains at lr * min(1, (t + 1) / this). 0 trains
    /// at lr from the first step.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.warmup_steps))]
    pub warmup_steps: usize,
    /// Log (and probe the gradients) every this many steps, starting at step 0.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.log_every))]
    pub log_every: usize,
    /// Also log every one of the first this many steps, where explosions happen. Reports
    /// read only the steps of the --log-every grid; TensorBoard and metrics.jsonl have all.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.log_first))]
    pub log_first: usize,
    /// Also measure the validation accuracy at every logged step that is a multiple of
    /// this (0: only at the end); a multiple of --log-every.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.eval_every))]
    pub eval_every: usize,
    /// The Jacobian spectrum on the probe examples: auto (at every logged step up to 128
    /// units per layer, at step 0 only beyond), jacobian (at every logged step), basic
    /// (never). A vanilla RNN's Jacobians through time: at the first and last logged
    /// step, unless basic.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.probe))]
    pub probe: Probe,
    /// Seed of the initial weights and the data order; the run is written to --out.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.seed))]
    pub seed: u64,
    /// MNIST: `auto` (the vendored copy in data/mnist, checksummed), `hf` (Hugging Face
    /// cache, then hub), `fashion` (Fashion-MNIST from Debian's dataset-fashion-mnist), or
    /// a folder holding the four IDX files.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.data))]
    pub data: DataSource,
    /// `cpu`, `cuda`, or `auto` (CUDA when compiled in and a GPU answers, else CPU);
    /// `config.json` records the device the run trained on.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = REFERENCE.device))]
    pub device: DeviceChoice,
}

/// The reference experiment of `docs/experiment.md`: every setting's default.
pub const REFERENCE: RunConfig = RunConfig {
    model: Architecture::Mlp,
    task: Task::Mnist,
    sequence_length: 0,
    recurrent_init: RecurrentInit::Uniform,
    forget_bias: ForgetBias::Init,
    activation: Activation::Sigmoid,
    layers: 6,
    width: 10,
    init: Init::GlorotUniform,
    bias_variance: BiasVariance::ZERO,
    norm: Norm::None,
    residual: false,
    branch_scale: BranchScale::One,
    steps: 2_500,
    batch_size: 30,
    optimizer: Optimizer::Adam,
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    clip_norm: 0.0,
    warmup_steps: 0,
    log_every: 200,
    log_first: 0,
    eval_every: 0,
    probe: Probe::Auto,
    seed: 0,
    data: DataSource::Auto,
    device: DeviceChoice::Cpu,
};

/// Fields added after the first reports were committed. `config.json` (and so the hash in
/// every run folder's name, and a report's configuration table) leaves each out while it
/// holds its default, so that the runs of those reports keep their names and numbers.
pub const OMITTED_AT_DEFAULT: [&str; 15] = [
    "model",
    "task",
    "sequence_length",
    "recurrent_init",
    "forget_bias",
    "bias_variance",
    "norm",
    "residual",
    "branch_scale",
    "optimizer",
    "clip_norm",
    "warmup_steps",
    "log_first",
    "eval_every",
    "probe",
];

impl Default for RunConfig {
    fn default() -> Self {
        REFERENCE
    }
}

impl RunConfig {
    /// Checks the settings that need no data; the message names the flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = [
            ("--layers", self.layers, " (the output layer)"),
            ("--width", self.width, ""),
            ("--steps", self.steps, ""),
            ("--batch-size", self.batch_size, ""),
            ("--log-every", self.log_every, ""),
        ];
        for (flag, value, why) in at_least_one {
            if value < 1 {
                return Err(ConfigError(format!(
                    "{flag} must be at least 1{why}, got {value}"
                )));
            }
        }
        let lr = self.lr;
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(ConfigError(format!(
                "--lr must be a positive number, got {lr}"
            )));
        }
        for (flag, beta) in [("--beta1", self.beta1), ("--beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(ConfigError(format!(
                    "{flag} must lie in [0, 1), got {beta}"
                )));
            }
        }
        if let Some(sigma_b2) = self.bias_variance.value()
            && !(sigma_b2 >= 0.0 && sigma_b2.is_finite())
        {
            return Err(ConfigError(format!(
                "--bias-variance must be a finite number of at least 0 (sigma_b^2; 0 starts \
                 the biases at zero), got {sigma_b2}"
            )));
        }
        let clip = self.clip_norm;
        if !(clip >= 0.0 && clip.is_finite()) {
            return Err(ConfigError(format!(
                "--clip-norm must be a finite number of at least 0 (0 never clips), got {clip}"
            )));
        }
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return Err(ConfigError(format!(
                "--epsilon must be positive, got {}",
                self.epsilon
            )));
        }
        if self.eval_every > 0 && !self.eval_every.is_multiple_of(self.log_every) {
            return Err(ConfigError(format!(
                "--eval-every must be 0 or a multiple of --log-every ({}), got {}",
                self.log_every, self.eval_every
            )));
        }
        self.validate_architecture()
    }

    /// Whether step `step` is logged: every `log_every` steps from step 0, and every one of
    /// the first `log_first`.
    pub fn logs_at(&self, step: usize) -> bool {
        step.is_multiple_of(self.log_every) || step < self.log_first
    }

    /// Whether logged step `step` lies on the `log_every` grid, the steps a report reads
    /// (the extra early steps of `log_first` would weigh the start of training over the
    /// rest).
    pub fn on_log_grid(&self, step: usize) -> bool {
        step.is_multiple_of(self.log_every)
    }

    /// The learning rate of step `step` (from 0): `lr`, ramped up linearly over the first
    /// `warmup_steps`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step >= self.warmup_steps {
            self.lr
        } else {
            self.lr * (step + 1) as f64 / self.warmup_steps as f64
        }
    }

    /// Whether the probe measures the Jacobian spectra at logged step `step`: as `--probe`
    /// says, but never under batch norm. The probe's Jacobians are those of the
    /// evaluation pass, where batch norm reads its running statistics; the errors it
    /// measures come from the training pass, which normalises by the batch's own: the two
    /// would describe different networks (at step 0, the evaluation-mode Jacobian is the
    /// plain network's). Nor for a convolutional network, whose layers' Jacobians the
    /// probe does not build.
    pub fn probes_jacobian_at(&self, step: usize) -> bool {
        self.norm != Norm::Batch
            && self.model == Architecture::Mlp
            && self.probe.jacobian_at(step, self.width)
    }

    /// Checks that the normalisation and the skips have something to work on.
    fn validate_architecture(&self) -> Result<(), ConfigError> {
        self.validate_task()?;
        if self.model.is_recurrent() {
            return self.validate_recurrent();
        }
        if self.norm == Norm::Batch && self.probe == Probe::Jacobian {
            return Err(ConfigError(
                "--probe jacobian is not available with --norm batch: the probe's Jacobians \
                 are taken at evaluation, where batch norm reads its running statistics, \
                 not the batch's own that training (and the errors measured) use; use \
                 --probe auto or basic"
                    .into(),
            ));
        }
        if self.norm == Norm::Batch && self.batch_size < 2 {
            return Err(ConfigError(format!(
                "--norm batch needs --batch-size of at least 2 (one example has no batch \
                 statistics to normalise by), got {}",
                self.batch_size
            )));
        }
        if self.norm == Norm::Layer && self.layers > 1 && self.width < 2 {
            return Err(ConfigError(format!(
                "--norm layer needs --width of at least 2 (one unit has no layer statistics \
                 to normalise by), got {}",
                self.width
            )));
        }
        if self.branch_scale != BranchScale::One && !self.residual {
            return Err(ConfigError(format!(
                "--branch-scale {} scales residual branches: it needs --residual",
                self.branch_scale
            )));
        }
        if self.model.is_convolutional() && self.layers < 3 {
            return Err(ConfigError(format!(
                "--model cnn needs --layers of at least 3 (the stem convolution, at least one \
                 3x3 convolution, the output layer), got {}",
                self.layers
            )));
        }
        if self.model.is_convolutional() && self.probe == Probe::Jacobian {
            return Err(ConfigError(
                "--probe jacobian is not available with --model cnn: the probe builds the \
                 Jacobians of dense layers only; use --probe auto or basic"
                    .into(),
            ));
        }
        self.validate_not_recurrent()?;
        if self.residual && self.layers < 3 {
            return Err(ConfigError(format!(
                "--residual needs --layers of at least 3: the skips join hidden layers 2..L-1 \
                 (layer 1 maps the {INPUT} inputs to the width without one), got {}",
                self.layers
            )));
        }
        Ok(())
    }

    /// Checks that the task suits the network, and the settings only one task reads.
    fn validate_task(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        match self.task {
            Task::Adding if !self.model.is_recurrent() => fail(format!(
                "--task adding needs a recurrent --model (rnn, lstm or gru), got {}",
                self.model
            )),
            Task::Adding if self.sequence_length < 2 => fail(format!(
                "--task adding needs --sequence-length of at least 2 (one marked step in \
                 each half), got {}",
                self.sequence_length
            )),
            Task::Adding if self.data != DataSource::Auto => fail(format!(
                "--data {} does not apply to --task adding, whose sequences are generated \
                 from the seed; leave --data out",
                self.data
            )),
            Task::Adding if self.eval_every > 0 => fail(
                "--eval-every needs a validation set, and the adding problem has a training \
                 and a test set only; leave it at 0"
                    .into(),
            ),
            Task::Mnist if self.sequence_length != 0 => fail(format!(
                "--sequence-length sets the adding problem's T; --task mnist reads an \
                 image's 28 rows, so leave it at 0, got {}",
                self.sequence_length
            )),
            _ => Ok(()),
        }
    }

    /// Checks a recurrent network's settings: one recurrent layer and a readout, its own
    /// init, and none of the dense layers' settings.
    fn validate_recurrent(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        let model = self.model;
        let activations = match model {
            Architecture::Rnn => "tanh or relu",
            _ => "tanh",
        };
        let allowed = match model {
            Architecture::Rnn => matches!(self.activation, Activation::Tanh | Activation::Relu),
            _ => self.activation == Activation::Tanh,
        };
        if !allowed {
            return fail(format!(
                "--model {model} needs --activation {activations} (the cell's nonlinearity; \
                 the gates are sigmoids), got {}",
                self.activation
            ));
        }
        if self.layers != 2 {
            return fail(format!(
                "--model {model} needs --layers 2 (one recurrent layer of --width units and \
                 the readout), got {}",
                self.layers
            ));
        }
        let dense_only = [
            (
                "--init",
                self.init != REFERENCE.init,
                "use --recurrent-init",
            ),
            (
                "--bias-variance",
                self.bias_variance != BiasVariance::ZERO,
                "use --recurrent-init",
            ),
            ("--norm", self.norm != Norm::None, "leave it at none"),
            ("--residual", self.residual, "leave it out"),
        ];
        if let Some((flag, _, instead)) = dense_only.iter().find(|(_, set, _)| *set) {
            return fail(format!(
                "{flag} sets the dense networks' layers, not --model {model}'s; {instead}"
            ));
        }
        if self.probe == Probe::Jacobian {
            return fail(format!(
                "--probe jacobian is not available with --model {model}: the probe builds the \
                 Jacobians of dense layers only (the recurrent probe measures the error at \
                 every time step); use --probe auto or basic"
            ));
        }
        if matches!(self.recurrent_init, RecurrentInit::Identity { .. })
            && model != Architecture::Rnn
        {
            return fail(format!(
                "--recurrent-init {} (the IRNN) is for --model rnn, not {model}",
                self.recurrent_init
            ));
        }
        if self.forget_bias != ForgetBias::Init && model != Architecture::Lstm {
            return fail(format!(
                "--forget-bias is the LSTM's; --model {model} has no forget gate"
            ));
        }
        Ok(())
    }

    /// Checks that the recurrent settings are left alone by a network that is not
    /// recurrent.
    fn validate_not_recurrent(&self) -> Result<(), ConfigError> {
        if self.recurrent_init != RecurrentInit::Uniform {
            return Err(ConfigError(format!(
                "--recurrent-init sets a recurrent network's weights; --model {} reads --init",
                self.model
            )));
        }
        if self.forget_bias != ForgetBias::Init {
            return Err(ConfigError(format!(
                "--forget-bias is the LSTM's; --model {} has no forget gate",
                self.model
            )));
        }
        Ok(())
    }

    /// The number of time steps a recurrent network reads: an image's rows, or the adding
    /// problem's T; `None` for the other networks.
    pub fn time_steps(&self) -> Option<usize> {
        match (self.model.is_recurrent(), self.task) {
            (false, _) => None,
            (true, Task::Mnist) => Some(crate::recurrent::IMAGE_ROWS),
            (true, Task::Adding) => Some(self.sequence_length),
        }
    }

    /// Checks the settings against the training set's size.
    pub fn validate_for(&self, train_examples: usize) -> Result<(), ConfigError> {
        if self.batch_size > train_examples {
            return Err(ConfigError(format!(
                "--batch-size {} is larger than the training set ({train_examples} examples)",
                self.batch_size
            )));
        }
        Ok(())
    }

    /// Every field with its value, in declaration order.
    pub fn fields(&self) -> Vec<(String, serde_json::Value)> {
        // Numbers, strings and enums written as text: serialising them cannot fail.
        match serde_json::to_value(self).expect("a RunConfig serialises") {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The fields `config.json` records, in its order: every field but those of
    /// [`OMITTED_AT_DEFAULT`] that hold their default.
    pub fn recorded_fields(&self) -> Vec<(String, serde_json::Value)> {
        let reference = REFERENCE.fields();
        self.fields()
            .into_iter()
            .filter(|(name, value)| {
                !OMITTED_AT_DEFAULT.contains(&name.as_str())
                    || reference.iter().all(|(n, v)| n != name || v != value)
            })
            .collect()
    }

    /// The canonical text of `field` (`leaky-relu:0.01` for `leaky-relu`, `1e-8` for
    /// epsilon); `None` for a name that is not a field.
    pub fn field_text(&self, field: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| text(&value))
    }

    /// The `vgrad train` flags that reproduce this configuration, all but the seed, each
    /// value written so that it parses back to the same number.
    pub fn train_flags(&self) -> Vec<String> {
        self.fields()
            .into_iter()
            .filter(|(name, _)| name != "seed")
            .map(|(name, value)| format!("--{}={}", name.replace('_', "-"), text(&value)))
            .collect()
    }

    /// A short hash of the whole configuration (the first 8 hex digits of the SHA-256 of
    /// `config.json`'s compact form): two runs with the same hash computed the same thing.
    pub fn hash(&self) -> String {
        let file = crate::layout::ConfigFile::of(self);
        // As in `fields`: these values always serialise.
        let json = serde_json::to_string(&file).expect("a RunConfig serialises");
        format!("{:x}", Sha256::digest(json.as_bytes()))[..8].to_string()
    }
}

/// A field's value as text: strings as they are, whole numbers as integers, other numbers
/// in their shortest exact form, scientific when very small or large (`1e-8`).
pub fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && x != 0.0 && !(1e-3..1e6).contains(&x.abs()) => {
                format!("{x:e}")
            }
            Some(x) if n.is_f64() => x.to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Where a run's MNIST comes from (`--data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The copy vendored in this repository (`data/mnist`), checked against its SHA-256.
    Auto,
    /// `candle_datasets::vision::mnist::load()`: the Hugging Face cache, then the hub.
    Hf,
    /// Fashion-MNIST as Debian's `dataset-fashion-mnist` package installs it.
    Fashion,
    /// Any folder holding the four IDX files.
    Dir(PathBuf),
}

impl FromStr for DataSource {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Self::Auto,
            "hf" => Self::Hf,
            "fashion" => Self::Fashion,
            path => Self::Dir(PathBuf::from(path)),
        })
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Hf => f.write_str("hf"),
            Self::Fashion => f.write_str("fashion"),
            Self::Dir(path) => write!(f, "{}", path.display()),
        }
    }
}

crate::serde_as_text!(DataSource);

/// The device of `--device`: a choice before the run, the device used in `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU.
    Cpu,
    /// CUDA GPU 0 (needs a build with the `cuda` feature).
    Cuda,
    /// CUDA when compiled in and a GPU answers, else the CPU.
    Auto,
}

impl FromStr for DeviceChoice {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            other => Err(ParseError {
                what: "device",
                value: other.to_string(),
                expected: "expected one of cpu, cuda, auto".into(),
            }),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Auto => "auto",
        })
    }
}

crate::serde_as_text!(DeviceChoice);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_and_its_hash_are_those_of_the_first_reports() {
        // The hash names every run folder on disk: the committed sweeps' runs keep their
        // names only while config.json keeps its exact form.
        let json =
            serde_json::to_string(&crate::layout::ConfigFile::of(&RunConfig::default())).unwrap();
        assert_eq!(
            json,
            "{\"activation\":\"sigmoid\",\"layers\":6,\"width\":10,\"init\":\"glorot-uniform\",\
             \"steps\":2500,\"batch_size\":30,\"lr\":0.001,\"beta1\":0.9,\"beta2\":0.999,\
             \"epsilon\":1e-8,\"log_every\":200,\"seed\":0,\"data\":\"auto\",\"device\":\"cpu\",\
             \"validation_examples\":5000}"
        );
        let relu = RunConfig {
            activation: Activation::Relu,
            seed: 3,
            ..RunConfig::default()
        };
        assert_ne!(relu.hash(), REFERENCE.hash());
        assert_eq!(relu.hash().len(), 8);
        // A field added later is recorded once it differs from its default.
        let sgd = RunConfig {
            optimizer: Optimizer::Sgd,
            ..RunConfig::default()
        };
        let json = serde_json::to_string(&crate::layout::ConfigFile::of(&sgd)).unwrap();
        assert!(json.contains("\"optimizer\":\"sgd\",\"lr\""), "{json}");
        assert!(
            !json.contains("norm") && !json.contains("eval_every"),
            "{json}"
        );
        assert_ne!(sgd.hash(), REFERENCE.hash());
    }

    #[test]
    fn the_signal_propagation_settings_are_recorded_only_when_set() {
        let set = RunConfig {
            init: "variance:1.75".parse().unwrap(),
            bias_variance: BiasVariance::Value(0.05),
            clip_norm: 1.0,
            warmup_steps: 100,
            log_first: 20,
            ..RunConfig::default()
        };
        let json = serde_json::to_string(&crate::layout::ConfigFile::of(&set)).unwrap();
        assert!(
            json.contains("\"init\":\"variance:1.75\",\"bias_variance\":0.05,"),
            "{json}"
        );
        assert!(
            json.contains("\"clip_norm\":1.0,\"warmup_steps\":100,"),
            "{json}"
        );
        assert!(
            json.contains("\"log_every\":200,\"log_first\":20,"),
            "{json}"
        );
        assert_ne!(set.hash(), REFERENCE.hash());
        // Logged steps: the grid and the first ones; the learning rate ramps up.
        assert!(set.logs_at(0) && set.logs_at(19) && !set.logs_at(20) && set.logs_at(400));
        assert!(set.on_log_grid(400) && !set.on_log_grid(19));
        assert_eq!(set.lr_at(0), 1e-3 / 100.0);
        assert_eq!(set.lr_at(49), 1e-3 * 50.0 / 100.0);
        assert_eq!(set.lr_at(99), 1e-3);
        assert_eq!(set.lr_at(5000), 1e-3);
        assert_eq!(REFERENCE.lr_at(0), REFERENCE.lr);
        assert!(!REFERENCE.logs_at(1));
    }

    #[test]
    fn field_texts_are_canonical_and_exact() {
        let cfg = RunConfig {
            activation: "leaky-relu".parse().unwrap(),
            init: "normal:1.0".parse().unwrap(),
            lr: 0.1 + 0.2,
            ..RunConfig::default()
        };
        assert_eq!(cfg.field_text("activation").unwrap(), "leaky-relu:0.01");
        assert_eq!(cfg.field_text("init").unwrap(), "normal:1");
        assert_eq!(cfg.field_text("epsilon").unwrap(), "1e-8");
        assert_eq!(cfg.field_text("lr").unwrap(), "0.30000000000000004");
        assert_eq!(cfg.field_text("layers").unwrap(), "6");
        assert_eq!(cfg.field_text("nope"), None);
        let lr: f64 = "4e5".parse().unwrap();
        assert_eq!(text(&serde_json::json!(lr)), "400000");
        assert!(cfg.train_flags().contains(&"--batch-size=30".to_string()));
        assert!(!cfg.train_flags().iter().any(|f| f.starts_with("--seed")));
    }

    #[test]
    fn validation_names_the_flag() {
        let bad = |cfg: RunConfig| cfg.validate().unwrap_err().to_string();
        let d = RunConfig::default;
        assert_eq!(
            bad(RunConfig { layers: 0, ..d() }),
            "--layers must be at least 1 (the output layer), got 0"
        );
        assert_eq!(
            bad(RunConfig {
                bias_variance: BiasVariance::Value(-0.1),
                ..d()
            }),
            "--bias-variance must be a finite number of at least 0 (sigma_b^2; 0 starts the \
             biases at zero), got -0.1"
        );
        assert_eq!(
            bad(RunConfig {
                branch_scale: BranchScale::SkipInit,
                ..d()
            }),
            "--branch-scale skipinit scales residual branches: it needs --residual"
        );
        assert_eq!(
            bad(RunConfig {
                clip_norm: f64::NAN,
                ..d()
            }),
            "--clip-norm must be a finite number of at least 0 (0 never clips), got NaN"
        );
        assert_eq!(
            bad(RunConfig { lr: -1.0, ..d() }),
            "--lr must be a positive number, got -1"
        );
        assert_eq!(
            bad(RunConfig { beta2: 1.0, ..d() }),
            "--beta2 must lie in [0, 1), got 1"
        );
        assert!(d().validate_for(30).is_ok() && d().validate_for(29).is_err());
        assert_eq!(
            bad(RunConfig {
                norm: Norm::Batch,
                batch_size: 1,
                ..d()
            }),
            "--norm batch needs --batch-size of at least 2 (one example has no batch \
             statistics to normalise by), got 1"
        );
        assert!(
            bad(RunConfig {
                residual: true,
                layers: 2,
                ..d()
            })
            .starts_with("--residual needs --layers of at least 3")
        );
        assert_eq!(
            bad(RunConfig {
                eval_every: 300,
                ..d()
            }),
            "--eval-every must be 0 or a multiple of --log-every (200), got 300"
        );
        assert_eq!(
            "tpu".parse::<DeviceChoice>().unwrap_err().to_string(),
            "invalid device `tpu`: expected one of cpu, cuda, auto"
        );
        assert_eq!(
            bad(RunConfig {
                norm: Norm::Batch,
                probe: Probe::Jacobian,
                ..d()
            }),
            "--probe jacobian is not available with --norm batch: the probe's Jacobians are \
             taken at evaluation, where batch norm reads its running statistics, not the \
             batch's own that training (and the errors measured) use; use --probe auto or basic"
        );
    }

    #[test]
    fn batch_norm_networks_are_never_probed_for_jacobians() {
        let bn = RunConfig {
            norm: Norm::Batch,
            ..REFERENCE
        };
        assert!(REFERENCE.probes_jacobian_at(0) && REFERENCE.probes_jacobian_at(200));
        assert!(!bn.probes_jacobian_at(0) && !bn.probes_jacobian_at(200));
        let layer = RunConfig {
            norm: Norm::Layer,
            ..REFERENCE
        };
        assert!(layer.probes_jacobian_at(0));
    }
}
