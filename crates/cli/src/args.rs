//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vgrad_record::{DataSource, DeviceChoice, RunConfig};

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
    #[arg(long, default_value_t = DeviceChoice::Cuda)]
    pub device: DeviceChoice,
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
    #[arg(long, default_value_t = DataSource::Auto)]
    pub data: DataSource,
}

/// Flags of `vgrad train`: every setting of the run configuration (defaults are the
/// reference experiment), and where and how to write the runs.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// The run's configuration.
    #[command(flatten)]
    pub config: RunConfig,
    /// Several seeds trained together as one ensemble, e.g. `0-9` or `0,3,7`; each is
    /// written to <out>/seed-<n>/.
    #[arg(long, value_parser = parse_seeds, conflicts_with = "seed")]
    pub seeds: Option<Seeds>,
    /// Output folder.
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
    /// With --seeds: the name of each seed's folder under --out, where `{seed}` stands
    /// for the seed and `{hash}` for the short hash of the run's configuration (as
    /// requested: with `--device auto`, before the device is picked).
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

    fn train(args: &[&str]) -> Result<TrainArgs, clap::Error> {
        let argv = ["vgrad", "train"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Train(args) => Ok(args),
            Command::Selftest(_) => panic!("not train"),
        }
    }

    #[test]
    fn train_flags_reproduce_the_config_exactly() {
        let cfg = RunConfig {
            activation: "leaky-relu:0.2".parse().unwrap(),
            init: "normal:0.3".parse().unwrap(),
            layers: 16,
            lr: 0.1 + 0.2,
            epsilon: 3e-9,
            data: "/some where/mnist".parse().unwrap(),
            seed: 4,
            ..RunConfig::default()
        };
        let mut argv: Vec<String> = cfg.train_flags();
        argv.push("--seed=4".into());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(train(&argv).unwrap().config, cfg);
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
        assert_eq!(train(&[]).unwrap().config, RunConfig::default());
        assert!(train(&["--seed", "1", "--seeds", "0-1"]).is_err());
        assert!(train(&["--run-name", "x"]).is_err());
        let err = train(&["--activation", "swish"]).unwrap_err();
        assert!(err.to_string().contains("leaky-relu:<slope>"), "{err}");
    }
}
