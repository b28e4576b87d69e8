//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vgrad_model::{Activation, Init};

use crate::data::DataSource;

/// Trains deep MLPs on MNIST and measures how the gradient vanishes layer by layer.
#[derive(Debug, Parser)]
#[command(name = "vgrad", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train one run (or one run per seed) and write its config, metrics and summary.
    Train(TrainArgs),
    /// Check a device against the CPU: a few steps from the same seed on both, compared.
    Selftest(SelftestArgs),
}

/// Flags of `vgrad selftest`.
#[derive(Debug, Clone, Args)]
pub struct SelftestArgs {
    /// The device to check against the CPU: `cuda`, `auto` or `cpu`.
    #[arg(long, default_value = "cuda")]
    pub device: String,
    /// Steps to train on each device.
    #[arg(long, default_value_t = 40)]
    pub steps: usize,
    /// Steps between compared steps.
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    /// Seed of both runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// MNIST source, as for `vgrad train`.
    #[arg(long, default_value = "auto")]
    pub data: DataSource,
}

/// Flags of `vgrad train`; defaults are the reference experiment.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Hidden-layer activation: sigmoid, tanh, relu, leaky-relu (slope 0.01),
    /// leaky-relu:<slope>, elu, gelu, silu.
    #[arg(long, default_value = "sigmoid")]
    pub activation: Activation,
    /// Dense layers, output layer included (the reference: 5 hidden + 1 output).
    #[arg(long, default_value_t = 6)]
    pub layers: usize,
    /// Units per hidden layer.
    #[arg(long, default_value_t = 10)]
    pub width: usize,
    /// Weight init: glorot-uniform, glorot-normal, he-uniform, he-normal, lecun-normal,
    /// normal:<std>, uniform:<limit>. Biases start at zero.
    #[arg(long, default_value = "glorot-uniform")]
    pub init: Init,
    /// Optimizer steps.
    #[arg(long, default_value_t = 2_500)]
    pub steps: usize,
    /// Examples per batch.
    #[arg(long, default_value_t = 30)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Adam's beta1.
    #[arg(long, default_value_t = 0.9)]
    pub beta1: f64,
    /// Adam's beta2.
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f64,
    /// Adam's epsilon.
    #[arg(long, default_value_t = 1e-8)]
    pub epsilon: f64,
    /// Log (and probe the gradients) every this many steps, starting at step 0.
    #[arg(long, default_value_t = 200)]
    pub log_every: usize,
    /// Seed of the initial weights and the data order; the run is written to --out.
    #[arg(long, default_value_t = 0, conflicts_with = "seeds")]
    pub seed: u64,
    /// Several seeds trained together as one ensemble, e.g. `0-9` or `0,3,7`; each is
    /// written to <out>/seed-<n>/.
    #[arg(long, value_parser = parse_seeds)]
    pub seeds: Option<Seeds>,
    /// MNIST: `auto` (the vendored copy in data/mnist, checksummed), `hf` (Hugging Face
    /// cache, then hub), `fashion` (Fashion-MNIST from Debian's dataset-fashion-mnist), or
    /// a folder holding the four IDX files.
    #[arg(long, default_value = "auto")]
    pub data: DataSource,
    /// `cpu`, `cuda`, or `auto` (CUDA when compiled in and a GPU answers, else CPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output folder.
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
    /// With --seeds: the name of each seed's folder under --out, where `{seed}` stands
    /// for the seed and `{hash}` for the short hash of the run's resolved configuration.
    #[arg(long, default_value = "seed-{seed}", requires = "seeds")]
    pub run_name: String,
    /// Write no TensorBoard event file.
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Threads for candle's kernels. These steps are so small that one thread per process
    /// is fastest; run several processes for parallelism.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// A list of distinct seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeds(pub Vec<u64>);

/// Parses `0-9`, `0,3,7` or a mix such as `0-4,9`.
pub fn parse_seeds(spec: &str) -> Result<Seeds, String> {
    let mut seeds = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let bad = || format!("`{part}` in `{spec}` is not a seed or a range like 0-9");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(format!("the range `{part}` is empty (start after end)"));
                }
                seeds.extend(a..=b);
            }
            None => seeds.push(part.parse().map_err(|_| bad())?),
        }
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("seed {} appears twice in `{spec}`", w[0]));
    }
    Ok(Seeds(seeds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;

    #[test]
    fn train_flags_reproduce_the_config_exactly() {
        let cfg = RunConfig {
            activation: "leaky-relu:0.2".parse().unwrap(),
            init: "normal:0.3".parse().unwrap(),
            layers: 16,
            seed: 4,
            adam: crate::adam::AdamParams {
                lr: 0.1 + 0.2,
                ..Default::default()
            },
            ..RunConfig::default()
        };
        let mut argv = vec!["vgrad".to_string(), "train".into()];
        argv.extend(cfg.train_flags());
        argv.extend(["--seed".into(), "4".into()]);
        let Command::Train(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not train")
        };
        let back = crate::run_config(&args, 4, &cfg.device);
        assert_eq!(back, cfg);
        assert_eq!(back.hash(), cfg.hash());
        assert_ne!(
            RunConfig {
                seed: 5,
                ..cfg.clone()
            }
            .hash(),
            cfg.hash()
        );
    }

    #[test]
    fn seed_lists_and_ranges() {
        assert_eq!(parse_seeds("0-3").unwrap().0, vec![0, 1, 2, 3]);
        assert_eq!(parse_seeds("0,3,7").unwrap().0, vec![0, 3, 7]);
        assert_eq!(parse_seeds("5, 0-1").unwrap().0, vec![5, 0, 1]);
        assert!(parse_seeds("3-1").unwrap_err().contains("empty"));
        assert!(parse_seeds("1,1").unwrap_err().contains("twice"));
        assert!(parse_seeds("a").unwrap_err().contains("`a`"));
    }

    #[test]
    fn defaults_are_the_reference_experiment() {
        let cli = Cli::try_parse_from(["vgrad", "train"]).unwrap();
        let Command::Train(a) = cli.command else {
            panic!("not train")
        };
        assert_eq!(
            (a.layers, a.width, a.steps, a.batch_size, a.log_every),
            (6, 10, 2500, 30, 200)
        );
        assert_eq!(
            (a.lr, a.beta1, a.beta2, a.epsilon),
            (1e-3, 0.9, 0.999, 1e-8)
        );
        assert_eq!(a.init, Init::GlorotUniform);
        assert!(Cli::try_parse_from(["vgrad", "train", "--seed", "1", "--seeds", "0-1"]).is_err());
        assert!(Cli::try_parse_from(["vgrad", "train", "--run-name", "x"]).is_err());
        let err = Cli::try_parse_from(["vgrad", "train", "--activation", "swish"]).unwrap_err();
        assert!(err.to_string().contains("leaky-relu:<slope>"), "{err}");
    }
}
