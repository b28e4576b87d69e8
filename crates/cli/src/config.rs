//! The resolved configuration of one run, as written to `config.json`.

use anyhow::{Result, ensure};
use sha2::{Digest, Sha256};
use vgrad_model::{Activation, Init, MlpConfig};

use crate::adam::AdamParams;

/// Pixels per MNIST image: the network's input size.
pub const INPUT: usize = 28 * 28;
/// MNIST classes: the network's output size.
pub const CLASSES: usize = 10;
/// Training images held out for validation, as TensorFlow's MNIST helper did.
pub const VALIDATION_EXAMPLES: usize = 5_000;

/// Everything that determines a run's numbers. Defaults are the reference experiment of
/// `shared/docs/experiment.md`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    /// Activation of the hidden layers.
    pub activation: Activation,
    /// Dense layers, output layer included.
    pub layers: usize,
    /// Units per hidden layer.
    pub width: usize,
    /// Weight initialisation (biases start at zero).
    pub init: Init,
    /// Optimizer steps.
    pub steps: usize,
    /// Examples per batch and member.
    pub batch_size: usize,
    /// Adam's hyper-parameters (no weight decay).
    #[serde(flatten)]
    pub adam: AdamParams,
    /// Steps between two logged steps (step 0 is always logged).
    pub log_every: usize,
    /// Seed of the initial weights and of the data order.
    pub seed: u64,
    /// The `--data` source.
    pub data: String,
    /// The device the run trained on: `cpu` or `cuda`.
    pub device: String,
    /// Training images held out for validation.
    pub validation_examples: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            activation: Activation::Sigmoid,
            layers: 6,
            width: 10,
            init: Init::GlorotUniform,
            steps: 2_500,
            batch_size: 30,
            adam: AdamParams::default(),
            log_every: 200,
            seed: 0,
            data: "auto".into(),
            device: "cpu".into(),
            validation_examples: VALIDATION_EXAMPLES,
        }
    }
}

impl RunConfig {
    /// The network this run trains.
    pub fn model(&self) -> MlpConfig {
        MlpConfig {
            input: INPUT,
            width: self.width,
            layers: self.layers,
            classes: CLASSES,
            activation: self.activation,
            init: self.init,
        }
    }

    /// Checks the settings that need no data.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.layers >= 1,
            "--layers must be at least 1 (the output layer), got {}",
            self.layers
        );
        ensure!(
            self.width >= 1,
            "--width must be at least 1, got {}",
            self.width
        );
        ensure!(
            self.steps >= 1,
            "--steps must be at least 1, got {}",
            self.steps
        );
        ensure!(
            self.batch_size >= 1,
            "--batch-size must be at least 1, got {}",
            self.batch_size
        );
        ensure!(
            self.log_every >= 1,
            "--log-every must be at least 1, got {}",
            self.log_every
        );
        let AdamParams {
            lr,
            beta1,
            beta2,
            epsilon,
        } = self.adam;
        ensure!(
            lr > 0.0 && lr.is_finite(),
            "--lr must be a positive number, got {lr}"
        );
        ensure!(
            (0.0..1.0).contains(&beta1),
            "--beta1 must lie in [0, 1), got {beta1}"
        );
        ensure!(
            (0.0..1.0).contains(&beta2),
            "--beta2 must lie in [0, 1), got {beta2}"
        );
        ensure!(epsilon > 0.0, "--epsilon must be positive, got {epsilon}");
        Ok(())
    }

    /// A short hash of the whole configuration (the first 8 hex digits of the SHA-256 of
    /// its JSON): two runs with the same hash computed the same thing.
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{:x}", Sha256::digest(json.as_bytes()))[..8].to_string()
    }

    /// The `vgrad train` flags that reproduce this configuration (all but the seed and
    /// the output), each value written so that it parses back to the same number.
    pub fn train_flags(&self) -> Vec<String> {
        let flags = [
            ("--activation", self.activation.to_string()),
            ("--layers", self.layers.to_string()),
            ("--width", self.width.to_string()),
            ("--init", self.init.to_string()),
            ("--steps", self.steps.to_string()),
            ("--batch-size", self.batch_size.to_string()),
            ("--lr", self.adam.lr.to_string()),
            ("--beta1", self.adam.beta1.to_string()),
            ("--beta2", self.adam.beta2.to_string()),
            ("--epsilon", self.adam.epsilon.to_string()),
            ("--log-every", self.log_every.to_string()),
            ("--data", self.data.clone()),
            ("--device", self.device.clone()),
        ];
        flags
            .into_iter()
            .flat_map(|(flag, value)| [flag.to_string(), value])
            .collect()
    }

    /// Checks the settings against the training set's size.
    pub fn validate_for(&self, train_examples: usize) -> Result<()> {
        ensure!(
            self.batch_size <= train_examples,
            "--batch-size {} is larger than the training set ({train_examples} examples)",
            self.batch_size
        );
        Ok(())
    }
}
