//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vgrad_record::layout::check_folder_name;
use vgrad_record::{DataSource, DeviceChoice, RunConfig, Seeds};

/// A `--run-name` template whose names, once `{seed}` and `{hash}` are filled in, are
/// folder names inside `--out`.
fn run_name_template(template: &str) -> Result<String, String> {
    let example = template
        .replace("{seed}", "0")
        .replace("{hash}", "0a1b2c3d");
    check_folder_name(&example)?;
    Ok(template.to_string())
}

/// Trains deep MLPs on MNIST and measures how the gradient vanishes layer by layer.
#[derive(Debug, Parser)]
#[command(name = "vgrad", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process, so the size of the largest variant (a whole run configuration)
// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train one run (or one run per seed) and write its config, metrics and summary.
    Train(TrainArgs),
    /// Check a device against the CPU: a few steps from the same seed on both, compared.
    Selftest(SelftestArgs),
    /// Measure this machine's f32 matrix-multiply rate on one thread with the kernels
    /// training uses (candle's): the limit `cargo xtask bench` compares steps against.
    Peak(PeakArgs),
}

/// Flags of `vgrad peak`.
#[derive(Debug, Clone, Args)]
pub struct PeakArgs {
    /// Side of the square matrices.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
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
/// reference experiment), and where and how to write the runs. A value may be negative
/// (`--lr -1`), so that it reaches the check that says what the flag allows.
#[derive(Debug, Clone, Args)]
#[command(mut_args = |arg: clap::Arg| arg.allow_negative_numbers(true))]
pub struct TrainArgs {
    /// The run's configuration.
    #[command(flatten)]
    pub config: RunConfig,
    /// Several seeds trained together as one ensemble: a count (`10`: seeds 0-9), a
    /// range (`3-7`) or a list (`0,3,7`, `0-4,9`); each is written to <out>/seed-<n>/.
    #[arg(long, conflicts_with = "seed")]
    pub seeds: Option<Seeds>,
    /// Output folder.
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
    /// With --seeds: the name of each seed's folder under --out, where `{seed}` stands
    /// for the seed and `{hash}` for the short hash of the run's configuration (as
    /// requested: with `--device auto`, before the device is picked).
    #[arg(long, default_value = "seed-{seed}", requires = "seeds", value_parser = run_name_template)]
    pub run_name: String,
    /// Replace a finished run (a folder that holds summary.json) instead of refusing to.
    #[arg(long)]
    pub force: bool,
    /// Write no TensorBoard event file.
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Threads for candle's kernels. These steps are so small that one thread per process
    /// is fastest; run several processes for parallelism.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(args: &[&str]) -> Result<TrainArgs, clap::Error> {
        let argv = ["vgrad", "train"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Train(args) => Ok(args),
            Command::Selftest(_) | Command::Peak(_) => panic!("not train"),
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
    fn seeds_take_the_one_grammar() {
        let seeds = |spec: &str| train(&["--seeds", spec]).map(|a| a.seeds);
        assert_eq!(seeds("3").unwrap(), Some(Seeds::count(3).unwrap()));
        assert_eq!(seeds("0,3,7").unwrap(), "0,3,7".parse().ok());
        assert!(seeds("3-1").unwrap_err().to_string().contains("empty"));
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
