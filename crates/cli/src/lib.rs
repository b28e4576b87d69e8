//! The `vgrad` command line: MNIST, the training loop, and the files every run writes.
//!
//! `vgrad train` trains the reference experiment of `shared/docs/experiment.md` (or any
//! variation of it) and writes, per run, `config.json`, `metrics.jsonl` (one line per
//! logged step, with every layer's gradient statistics) and `summary.json`.

pub mod adam;
pub mod args;
pub mod config;
pub mod data;
pub mod device;
pub mod events;
pub mod output;
pub mod selftest;
pub mod threads;
pub mod train;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use vgrad_probe::StepRecord;

use args::{Cli, Command, TrainArgs};
use config::RunConfig;
use output::{RunDir, RunSummary};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => train_command(&args).map(|_| ()),
        Command::Selftest(args) => selftest::selftest(&args),
    }
}

/// The configuration `args` describe, for `seed`.
pub fn run_config(args: &TrainArgs, seed: u64, device: &str) -> RunConfig {
    RunConfig {
        activation: args.activation,
        layers: args.layers,
        width: args.width,
        init: args.init,
        steps: args.steps,
        batch_size: args.batch_size,
        adam: adam::AdamParams {
            lr: args.lr,
            beta1: args.beta1,
            beta2: args.beta2,
            epsilon: args.epsilon,
        },
        log_every: args.log_every,
        seed,
        data: args.data.to_string(),
        device: device.to_string(),
        validation_examples: config::VALIDATION_EXAMPLES,
    }
}

/// A run folder's name from a `--run-name` template: `{seed}` and `{hash}` are replaced.
pub fn run_name(template: &str, cfg: &RunConfig) -> String {
    template
        .replace("{seed}", &cfg.seed.to_string())
        .replace("{hash}", &cfg.hash())
}

/// Writes each member's records to its run folder and shows progress.
struct Writers {
    dirs: Vec<RunDir>,
    bar: Option<ProgressBar>,
    /// The losses of the members logged at the current step.
    pending_loss: Vec<f64>,
}

impl train::StepSink for Writers {
    fn logged(&mut self, member: usize, record: &StepRecord) -> Result<()> {
        self.dirs[member].append(record)?;
        self.pending_loss.push(record.loss);
        Ok(())
    }

    fn progress(&mut self, done: usize) {
        if !self.pending_loss.is_empty() {
            let mean = self.pending_loss.iter().sum::<f64>() / self.pending_loss.len() as f64;
            match &self.bar {
                Some(bar) => bar.set_message(format!("loss {mean:.4}")),
                None => tracing::info!(step = done - 1, loss = mean, "logged step"),
            }
            self.pending_loss.clear();
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
    }
}

/// `vgrad train`: trains one run, or one ensemble member per seed of `--seeds`, and
/// returns each run's folder and summary.
pub fn train_command(args: &TrainArgs) -> Result<Vec<(PathBuf, RunSummary)>> {
    threads::configure(args.threads);
    let seeds = match &args.seeds {
        Some(seeds) => seeds.0.clone(),
        None => vec![args.seed],
    };
    let (device, device_name) = device::select(&args.device)?;
    let configs: Vec<RunConfig> = seeds
        .iter()
        .map(|&s| run_config(args, s, device_name))
        .collect();
    let dirs: Vec<PathBuf> = match &args.seeds {
        Some(_) => configs
            .iter()
            .map(|c| args.out.join(run_name(&args.run_name, c)))
            .collect(),
        None => vec![args.out.clone()],
    };
    configs[0].validate()?;
    configs[0].model().validate()?;

    // Fail on an unwritable output folder before spending time on data or training.
    let mut run_dirs = dirs
        .iter()
        .zip(&configs)
        .map(|(dir, cfg)| RunDir::create(dir, cfg, !args.no_tensorboard))
        .collect::<Result<Vec<_>>>()?;

    let loaded = Instant::now();
    let data = args
        .data
        .load()
        .with_context(|| format!("cannot load MNIST (--data {})", args.data))?
        .split(config::VALIDATION_EXAMPLES)?;
    configs[0].validate_for(data.train.len())?;
    tracing::info!(
        train = data.train.len(),
        val = data.val.len(),
        test = data.test.len(),
        seconds = loaded.elapsed().as_secs_f64(),
        "loaded MNIST"
    );

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(args.steps as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} steps {per_sec} eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let started = Instant::now();
    let mut writers = Writers {
        dirs: std::mem::take(&mut run_dirs),
        bar,
        pending_loss: Vec::new(),
    };
    let outcomes = train::train_ensemble(
        &configs[0],
        &seeds,
        &data,
        &device,
        vgrad_model::Kernels::Fused,
        &mut writers,
    )?;
    if let Some(bar) = &writers.bar {
        bar.finish_and_clear();
    }
    let wall_s = started.elapsed().as_secs_f64();

    let mut results = Vec::with_capacity(outcomes.len());
    for ((outcome, dir), cfg) in outcomes.iter().zip(writers.dirs).zip(&configs) {
        let summary = RunSummary::new(outcome, cfg, wall_s, seeds.len())?;
        let path = dir.path().to_path_buf();
        dir.finish(&summary)?;
        if let Some(step) = summary.diverged_at_step {
            tracing::warn!(run = %path.display(), step, "diverged: summary.json records the step");
        }
        tracing::info!(
            run = %path.display(),
            status = %summary.status,
            test_acc = summary.test_acc,
            decay_ratio = summary.profile.decay_ratio,
            delta_decay_ratio = summary.profile.delta_decay_ratio,
            "finished"
        );
        results.push((path, summary));
    }
    Ok(results)
}
