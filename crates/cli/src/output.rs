//! The files of a run folder: `config.json`, `metrics.jsonl`, `summary.json`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vgrad_probe::{DecayProfile, StepRecord};
use vgrad_tensorboard::EventWriter;

use crate::config::RunConfig;
use crate::train::MemberOutcome;

/// File names inside a run folder.
pub const CONFIG_FILE: &str = "config.json";
/// One JSON object per logged step.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Written last: its presence means the run finished.
pub const SUMMARY_FILE: &str = "summary.json";

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename, so a
/// reader (or a run killed mid-write) never sees half a file.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The outcome of a finished run, as written to `summary.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// `"ok"` for a run that trained all its steps, `"diverged"` for one whose loss or
    /// gradient stopped being finite.
    pub status: String,
    /// The step at which a diverged run stopped.
    pub diverged_at_step: Option<usize>,
    /// The run's seed.
    pub seed: u64,
    /// Accuracy on the 10,000 test images after training (null if diverged).
    #[serde(deserialize_with = "vgrad_probe::nan::f64")]
    pub test_acc: f64,
    /// Accuracy on the held-out validation images after training (null if diverged).
    #[serde(deserialize_with = "vgrad_probe::nan::f64")]
    pub val_acc: f64,
    /// Batch loss at the last logged step (null if none was logged).
    #[serde(deserialize_with = "vgrad_probe::nan::f64")]
    pub final_loss: f64,
    /// Per-layer averages over the logged steps (before a divergence) and the decay
    /// ratios derived from them.
    #[serde(flatten)]
    pub profile: DecayProfile,
    /// Per layer, the mean over logged steps of the fraction of dead (or saturated)
    /// units; `null` for the output layer.
    pub dead_frac: Vec<Option<f64>>,
    /// Optimizer steps trained.
    pub steps: usize,
    /// Seconds from the first step to the end of the final evaluation.
    pub wall_s: f64,
    /// Training steps per second of the training loop (of the whole ensemble this run
    /// trained in; data loading and evaluation excluded).
    pub steps_per_s: f64,
    /// Number of seeds trained together with this one (1 for a single run).
    pub ensemble_size: usize,
}

impl RunSummary {
    /// The summary of one member's outcome; `wall_s` is the time from the first step to
    /// the end of the final evaluation.
    pub fn new(
        outcome: &MemberOutcome,
        cfg: &RunConfig,
        wall_s: f64,
        ensemble_size: usize,
    ) -> Result<Self> {
        let profile =
            DecayProfile::from_steps(&outcome.records).unwrap_or_else(DecayProfile::empty);
        let depth = profile.grad_mean_abs.len();
        let n = outcome.records.len() as f64;
        let dead_frac = (0..depth)
            .map(|i| {
                let values: Option<Vec<f64>> = outcome
                    .records
                    .iter()
                    .map(|r| r.layers[i].dead_frac)
                    .collect();
                values.map(|v| v.iter().sum::<f64>() / n)
            })
            .collect();

        Ok(Self {
            status: if outcome.diverged_at.is_some() {
                "diverged"
            } else {
                "ok"
            }
            .into(),
            diverged_at_step: outcome.diverged_at,
            seed: outcome.seed,
            test_acc: outcome.test_acc,
            val_acc: outcome.val_acc,
            final_loss: outcome.records.last().map_or(f64::NAN, |r| r.loss),
            profile,
            dead_frac,
            steps: cfg.steps,
            wall_s,
            steps_per_s: cfg.steps as f64 / outcome.train_s,
            ensemble_size,
        })
    }
}

/// Start of the names of TensorBoard event files.
pub const EVENTS_PREFIX: &str = "events.out.tfevents.";

/// An open run folder.
pub struct RunDir {
    dir: PathBuf,
    metrics: BufWriter<File>,
    events: Option<EventWriter>,
}

impl RunDir {
    /// Creates `dir`, writes `config.json`, starts an empty `metrics.jsonl` (and, with
    /// `tensorboard`, a TensorBoard event file), and removes what an earlier run left: a
    /// stale `summary.json`, so the folder never claims a run that did not finish, and old
    /// event files, which TensorBoard would show beside the new one.
    pub fn create(dir: &Path, cfg: &RunConfig, tensorboard: bool) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the run folder {}", dir.display()))?;
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == SUMMARY_FILE || name.starts_with(EVENTS_PREFIX) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove the stale {}", path.display()))?;
            }
        }
        write_json_atomic(&dir.join(CONFIG_FILE), cfg)?;
        let path = dir.join(METRICS_FILE);
        let file =
            File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        let events = tensorboard.then(|| EventWriter::create(dir)).transpose()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            metrics: BufWriter::new(file),
            events,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Appends one logged step as a complete line (and a TensorBoard summary) and flushes
    /// both.
    pub fn append(&mut self, record: &StepRecord) -> Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.metrics.write_all(&line)?;
        self.metrics
            .flush()
            .with_context(|| format!("cannot write {}", self.dir.join(METRICS_FILE).display()))?;
        if let Some(events) = &mut self.events {
            let (scalars, histograms) = crate::events::step_summary(record);
            events.summary(record.step as i64, &scalars, histograms)?;
            events.flush()?;
        }
        Ok(())
    }

    /// Writes the final scalars to TensorBoard and `summary.json`, marking the run
    /// finished.
    pub fn finish(mut self, summary: &RunSummary) -> Result<()> {
        if let Some(events) = &mut self.events {
            events.summary(
                summary.steps as i64,
                &crate::events::final_scalars(summary),
                Vec::new(),
            )?;
            events.flush()?;
        }
        write_json_atomic(&self.dir.join(SUMMARY_FILE), summary)
    }
}
