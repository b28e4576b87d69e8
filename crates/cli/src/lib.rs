//! The `vgrad` command line on top of the training engine (`vgrad-train`): the flags, the
//! device, candle's threads, `vgrad train` and `vgrad selftest`.
//!
//! `vgrad train` trains the reference experiment of `docs/experiment.md` (or any
//! variation of it) and writes, per run, `config.json`, `metrics.jsonl` (one line per
//! logged step, with every layer's gradient statistics) and `summary.json`.

#![forbid(unsafe_code)]

pub mod allocator;
pub mod args;
pub mod device;
pub mod peak;
pub mod selftest;
pub mod threads;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use vgrad_model::{Kernels, MlpConfig, RecurrentConfig};
use vgrad_record::layout::SUMMARY_FILE;
use vgrad_record::{RunConfig, RunSummary, StepRecord, Task, VALIDATION_EXAMPLES, run_name};
use vgrad_train::data::Splits;
use vgrad_train::memory::{self, MemoryEstimate};
use vgrad_train::{RecurrentTrainer, RunDir, RunLock, StepSink, TrainError, Trainer, data};

use args::{Cli, Command, TrainArgs};

/// `err` as it stopped training in `dirs`; a failed read or write also says that the runs
/// there are incomplete and how to finish them.
fn incomplete(err: TrainError, dirs: &[PathBuf]) -> anyhow::Error {
    if !err.is_io() {
        return err.into();
    }
    let (folders, them) = match dirs {
        [one] => (format!("the run in {} is", one.display()), "it"),
        _ => (
            format!(
                "the {} runs in {} are",
                dirs.len(),
                dirs[0].parent().unwrap_or(Path::new(".")).display()
            ),
            "them",
        ),
    };
    anyhow::anyhow!(
        "{err}\n{folders} incomplete (no {SUMMARY_FILE}); once the disk has room (or the \
         folder is writable), run the same command again to train {them} (a sweep trains \
         only its unfinished runs)"
    )
}

/// Refuses a CPU run that would need more memory than the machine has available, before
/// anything is allocated for it; the error gives both numbers and what to change. (A
/// CUDA run's weights live on the GPU, whose own allocator refuses what does not fit.)
fn check_memory(args: &TrainArgs, config: &RunConfig, members: usize) -> Result<()> {
    if config.device != vgrad_record::DeviceChoice::Cpu {
        return Ok(());
    }
    let estimate = MemoryEstimate::of(config, members);
    let Some(available) = memory::available() else {
        return Ok(());
    };
    if estimate.total() <= available {
        return Ok(());
    }
    let what = if members > 1 {
        format!(
            "{members} seeds (--seeds {}) train together, {} each",
            args.seeds
                .as_ref()
                .map_or(String::new(), ToString::to_string),
            memory::human(estimate.per_member)
        )
    } else {
        format!("{} for the network", memory::human(estimate.per_member))
    };
    bail!(
        "this run needs about {} of memory ({what}, plus {} of data), and this machine has \
         {} available; train fewer seeds per process (`cargo xtask sweep` splits a sweep's \
         seeds into processes, and --seeds takes any subset), or a smaller --width, \
         --layers or --batch-size (--width {} and --layers {} give {} parameters per seed)",
        memory::human(estimate.total()),
        memory::human(estimate.shared),
        memory::human(available),
        config.width,
        config.layers,
        memory::parameters(config)
    )
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => {
            train_command(&args)?;
            if !args.no_tensorboard {
                eprintln!("{}", vgrad_record::layout::tensorboard_line(&args.out));
            }
            Ok(())
        }
        Command::Selftest(args) => selftest::selftest(&args),
        Command::Peak(args) => peak::peak(&args),
    }
}

/// Writes each member's records to its run folder and shows progress.
struct Writers {
    dirs: Vec<RunDir>,
    bar: Option<ProgressBar>,
    /// The losses of the members logged at the current step.
    pending_loss: Vec<f64>,
}

impl StepSink for Writers {
    fn logged(&mut self, member: usize, record: &StepRecord) -> Result<(), TrainError> {
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

/// A progress bar on a terminal; `None` when stderr is a pipe or a file.
fn progress_bar(steps: usize) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} steps {per_sec} eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    })
}

/// `config`'s images (`--data`), split for validation and checked against its batch size.
fn load_images(config: &RunConfig) -> Result<Splits> {
    let loaded = Instant::now();
    let source = &config.data;
    let data = data::load(source)
        .with_context(|| format!("cannot load MNIST (--data {source})"))
        .and_then(|mnist| Ok(mnist.split(VALIDATION_EXAMPLES)?))
        .and_then(|data| Ok(config.validate_for(data.train.len()).map(|()| data)?))?;
    tracing::info!(
        train = data.train.len(),
        val = data.val.len(),
        test = data.test.len(),
        seconds = loaded.elapsed().as_secs_f64(),
        "loaded MNIST"
    );
    Ok(data)
}

/// `vgrad train`: trains one run, or one ensemble member per seed of `--seeds`, and
/// returns each run's folder and summary.
pub fn train_command(args: &TrainArgs) -> Result<Vec<(PathBuf, RunSummary)>> {
    let seeds = match &args.seeds {
        Some(seeds) => seeds.as_slice().to_vec(),
        None => vec![args.config.seed],
    };
    let requested: Vec<RunConfig> = seeds
        .iter()
        .map(|&seed| RunConfig {
            seed,
            ..args.config.clone()
        })
        .collect();
    // Folder names hash the configuration as requested (`--device auto`, say), so that a
    // sweep can name a run's folder before the run picks its device.
    let dirs: Vec<PathBuf> = match &args.seeds {
        Some(_) => requested
            .iter()
            .map(|c| args.out.join(run_name(&args.run_name, c)))
            .collect(),
        None => vec![args.out.clone()],
    };
    let (device, resolved) = device::select(args.config.device)?;
    let configs: Vec<RunConfig> = requested
        .into_iter()
        .map(|c| RunConfig {
            device: resolved,
            ..c
        })
        .collect();
    configs[0].validate()?;
    if configs[0].model.is_recurrent() {
        RecurrentConfig::for_run(&configs[0])?.validate()?;
    } else {
        MlpConfig::for_run(&configs[0])?.validate()?;
    }
    check_memory(args, &configs[0], seeds.len())?;

    // Lock every run folder first: from here on no other process writes them, and what
    // they hold cannot change under this one.
    let locks = dirs
        .iter()
        .map(|d| RunLock::acquire(d))
        .collect::<Result<Vec<_>, _>>()?;
    if !args.force
        && let Some(done) = dirs.iter().find(|d| d.join(SUMMARY_FILE).is_file())
    {
        bail!(
            "{} holds a finished run ({SUMMARY_FILE}); pass --force to replace it, or give \
             --out another folder",
            done.display()
        );
    }
    // The data after the locks, which find an unwritable output folder at once, and
    // before anything is written there: a run whose data fails to load leaves an existing
    // folder as it was and removes the folders and lock files its locks created.
    // The adding problem generates its sequences from each seed: no images to load.
    let data = match configs[0].task {
        Task::Mnist => match load_images(&configs[0]) {
            Ok(data) => Some(data),
            Err(err) => {
                vgrad_train::run_dir::abandon_all(locks);
                return Err(err);
            }
        },
        Task::Adding => None,
    };
    let run_dirs = locks
        .into_iter()
        .zip(&configs)
        .map(|(lock, cfg)| RunDir::create(lock, cfg, !args.no_tensorboard))
        .collect::<Result<Vec<_>, _>>()?;

    let started = Instant::now();
    let mut writers = Writers {
        dirs: run_dirs,
        bar: progress_bar(args.config.steps),
        pending_loss: Vec::new(),
    };
    let trained = match &data {
        Some(images) if !configs[0].model.is_recurrent() => {
            Trainer::new(&configs[0], &seeds, images, &device, Kernels::Fused)?.run(&mut writers)
        }
        _ => RecurrentTrainer::new(&configs[0], &seeds, data.as_ref(), &device, Kernels::Fused)?
            .run(&mut writers),
    };
    let outcomes = trained.map_err(|e| incomplete(e, &dirs))?;
    if let Some(bar) = &writers.bar {
        bar.finish_and_clear();
    }
    let wall_s = started.elapsed().as_secs_f64();

    let mut results = Vec::with_capacity(outcomes.len());
    for (outcome, dir) in outcomes.iter().zip(writers.dirs) {
        let summary = outcome.summary(&args.config, wall_s, seeds.len());
        let path = dir.path().to_path_buf();
        dir.finish(&summary).map_err(|e| incomplete(e, &dirs))?;
        if let vgrad_record::RunStatus::Diverged { step } = summary.status {
            tracing::warn!(run = %path.display(), step, "diverged: summary.json records the step");
        }
        tracing::info!(
            run = %path.display(),
            status = %summary.status,
            test_acc = summary.test_acc,
            test_mse = summary.test_mse,
            decay_ratio = summary.profile.decay_ratio,
            delta_decay_ratio = summary.profile.delta_decay_ratio,
            "finished"
        );
        results.push((path, summary));
    }
    Ok(results)
}
