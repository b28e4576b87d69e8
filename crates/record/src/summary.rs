//! `summary.json`: the outcome of a finished run.

use crate::class::{error_factor, error_factor_over_training};
use crate::{DecayProfile, Regime, RunClass, StepRecord};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "StatusFields", from = "StatusFields")]
pub enum RunStatus {
    /// Trained all its steps.
    Ok,
    /// Its loss or a gradient stopped being finite at `step`; it was frozen there.
    Diverged {
        /// The first step whose loss or gradient was not finite.
        step: usize,
    },
}

impl RunStatus {
    /// Whether the run trained all its steps.
    pub fn is_ok(&self) -> bool {
        *self == Self::Ok
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Diverged { step } => write!(f, "diverged at step {step}"),
        }
    }
}

/// The name of a status in `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum StatusName {
    Ok,
    Diverged,
}

/// How `summary.json` spells a status: `"status"` and `"diverged_at_step"`, which
/// readers of the first runs' files already know.
#[derive(serde::Serialize, serde::Deserialize)]
struct StatusFields {
    status: StatusName,
    diverged_at_step: Option<usize>,
}

impl From<RunStatus> for StatusFields {
    fn from(s: RunStatus) -> Self {
        match s {
            RunStatus::Ok => Self {
                status: StatusName::Ok,
                diverged_at_step: None,
            },
            RunStatus::Diverged { step } => Self {
                status: StatusName::Diverged,
                diverged_at_step: Some(step),
            },
        }
    }
}

impl From<StatusFields> for RunStatus {
    fn from(f: StatusFields) -> Self {
        match (f.status, f.diverged_at_step) {
            (StatusName::Diverged, Some(step)) => Self::Diverged { step },
            // A diverged run whose step was lost still did not finish cleanly.
            (StatusName::Diverged, None) => Self::Diverged { step: 0 },
            (StatusName::Ok, _) => Self::Ok,
        }
    }
}

/// The outcome of a finished run, as written to `summary.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// `ok`, or `diverged` with the step (`status` and `diverged_at_step` in the file).
    #[serde(flatten)]
    pub status: RunStatus,
    /// The run's seed.
    pub seed: u64,
    /// Accuracy on the 10,000 test images after training (null if diverged).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub test_acc: f64,
    /// Accuracy on the held-out validation images after training (null if diverged).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub val_acc: f64,
    /// Batch loss at the last logged step (null if none was logged).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub final_loss: f64,
    /// Per-layer averages over the logged steps (before a divergence) and the decay
    /// ratios derived from them.
    #[serde(flatten)]
    pub profile: DecayProfile,
    /// Per layer, the mean over logged steps of the fraction of dead (or saturated)
    /// units; `null` for the output layer.
    pub dead_frac: Vec<Option<f64>>,
    /// Per layer, the mean over logged steps of the mean derivative f'(z); `null` for the
    /// output layer.
    #[serde(default)]
    pub deriv_mean: Vec<Option<f64>>,
    /// Per layer, the mean over logged steps of the fraction of (unit, example) pairs
    /// that are off; `null` for the output layer.
    #[serde(default)]
    pub inactive_frac: Vec<Option<f64>>,
    /// Optimizer steps trained.
    pub steps: usize,
    /// Seconds from the first step to the end of the final evaluation.
    pub wall_s: f64,
    /// Training steps per second of the training loop (of the whole ensemble this run
    /// trained in; data loading and evaluation excluded).
    pub steps_per_s: f64,
    /// The median microseconds of a training step that was not logged (of the whole
    /// ensemble; null if every step after step 0 was logged). Absent from the files of
    /// runs before it was measured.
    #[serde(default = "crate::nan::missing", deserialize_with = "crate::nan::f64")]
    pub step_us: f64,
    /// The median microseconds of a logged step after step 0 (of the whole ensemble; null
    /// if none was): the probe's measurements and the writing of the records cost the
    /// difference to `step_us` once every `log_every` steps.
    #[serde(default = "crate::nan::missing", deserialize_with = "crate::nan::f64")]
    pub logged_step_us: f64,
    /// Number of seeds trained together with this one (1 for a single run).
    pub ensemble_size: usize,
    /// How the run ended: trained, collapsed or diverged ([`RunClass`]). Absent from the
    /// files of runs before it was recorded; [`RunSummary::class`] derives it for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunClass>,
    /// The per-layer error factor of the initial network (step 0; see
    /// [`crate::class::error_factor`]); null where it is not defined.
    #[serde(default = "crate::nan::missing", deserialize_with = "crate::nan::f64")]
    pub error_factor_start: f64,
    /// Its regime; null where the factor is not defined.
    #[serde(default)]
    pub regime_start: Option<Regime>,
    /// The per-layer error factor over training (the geometric mean over the logged
    /// steps after step 0); null where it is not defined.
    #[serde(default = "crate::nan::missing", deserialize_with = "crate::nan::f64")]
    pub error_factor_training: f64,
    /// Its regime; null where the factor is not defined.
    #[serde(default)]
    pub regime_training: Option<Regime>,
    /// The fraction of its trained steps whose gradients were clipped (`--clip-norm`);
    /// absent where clipping was off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_frac: Option<f64>,
    /// chi_1 of mean-field theory for its network at initialisation (from the activation,
    /// sigma_w^2 and sigma_b^2 alone); absent where the theory leaves the network out (a
    /// normalisation, skips, fewer than two hidden layers) or has no fixed point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi1_theory: Option<f64>,
    /// The phase that chi_1 puts the network in at initialisation: ordered, critical or
    /// chaotic ([`crate::class::Phase`]); absent with `chi1_theory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_start: Option<crate::class::Phase>,
    /// The mean cross-entropy on the first [`FIT_EXAMPLES`] training images after
    /// training, in evaluation mode: how well the network fits what it trained on (He et
    /// al. 2016 compare depths by training error); absent for a diverged run and in the
    /// files of runs before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    /// The accuracy on the same training images; absent with `train_loss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_acc: Option<f64>,
    /// A regression task's (the adding problem's) mean squared error on its test
    /// sequences after training; absent for a classification and a diverged run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mse: Option<f64>,
    /// How a regression run ended: solved, unsolved or diverged ([`RegressionClass`]);
    /// `outcome` then describes the accuracy it does not have, and readers use this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression_outcome: Option<crate::RegressionClass>,
}

/// Training images the fit after training is measured on (`train_loss`, `train_acc`).
pub const FIT_EXAMPLES: usize = 10_000;

/// What a finished run measured, from which its summary is derived.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    /// The run's seed.
    pub seed: u64,
    /// How it ended.
    pub status: RunStatus,
    /// Its logged steps.
    pub records: &'a [StepRecord],
    /// Final test accuracy (NaN if diverged).
    pub test_acc: f64,
    /// Final validation accuracy (NaN if diverged).
    pub val_acc: f64,
    /// Optimizer steps configured.
    pub steps: usize,
    /// Seconds from the first step to the end of the final evaluation.
    pub wall_s: f64,
    /// Seconds the training loop took.
    pub train_s: f64,
    /// The median microseconds of a training step that was not logged (NaN for none).
    pub step_us: f64,
    /// The median microseconds of a logged step after step 0 (NaN for none).
    pub logged_step_us: f64,
    /// Members of the ensemble it trained in.
    pub ensemble_size: usize,
}

impl RunSummary {
    /// The summary of a run's outcome: profiles and dead fractions averaged over its
    /// logged steps.
    pub fn new(o: &Outcome) -> Self {
        let profile = DecayProfile::from_steps(o.records).unwrap_or_else(DecayProfile::empty);
        let depth = profile.grad_mean_abs.len();
        let n = o.records.len() as f64;
        let factor_start = o.records.first().and_then(error_factor);
        let factor_training = error_factor_over_training(o.records);
        // Per layer, the mean over logged steps of a per-layer statistic that only hidden
        // layers have.
        let hidden_mean = |pick: fn(&crate::LayerRecord) -> Option<f64>| -> Vec<Option<f64>> {
            (0..depth)
                .map(|i| {
                    let values: Option<Vec<f64>> =
                        o.records.iter().map(|r| pick(&r.layers[i])).collect();
                    values.map(|v| v.iter().sum::<f64>() / n)
                })
                .collect()
        };
        Self {
            status: o.status,
            seed: o.seed,
            test_acc: o.test_acc,
            val_acc: o.val_acc,
            final_loss: o.records.last().map_or(f64::NAN, |r| r.loss),
            profile,
            dead_frac: hidden_mean(|l| l.dead_frac),
            deriv_mean: hidden_mean(|l| l.deriv_mean),
            inactive_frac: hidden_mean(|l| l.inactive_frac),
            steps: o.steps,
            wall_s: o.wall_s,
            steps_per_s: o.steps as f64 / o.train_s,
            step_us: o.step_us,
            logged_step_us: o.logged_step_us,
            ensemble_size: o.ensemble_size,
            outcome: Some(RunClass::of(o.status, o.test_acc)),
            error_factor_start: factor_start.unwrap_or(f64::NAN),
            regime_start: factor_start.and_then(Regime::of),
            error_factor_training: factor_training.unwrap_or(f64::NAN),
            regime_training: factor_training.and_then(Regime::of),
            clipped_frac: None,
            chi1_theory: None,
            phase_start: None,
            train_loss: None,
            train_acc: None,
            test_mse: None,
            regression_outcome: None,
        }
    }

    /// How the run ended, from its status and test accuracy (the same as `outcome`
    /// where the file has it).
    pub fn class(&self) -> RunClass {
        RunClass::of(self.status, self.test_acc)
    }

    /// How the run ended as a number for TensorBoard's HParams: its regression class's
    /// code for a regression task, else its class's ([`RunClass::code`]).
    pub fn outcome_code(&self) -> f64 {
        self.regression_outcome
            .map_or_else(|| self.class().code(), crate::RegressionClass::code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary of a run of seed 4 that diverged at step 7, with a median step of 61.5
    /// us and no logged step after step 0.
    fn diverged_run() -> RunSummary {
        RunSummary::new(&Outcome {
            seed: 4,
            status: RunStatus::Diverged { step: 7 },
            records: &[],
            test_acc: f64::NAN,
            val_acc: f64::NAN,
            steps: 10,
            wall_s: 1.0,
            train_s: 0.5,
            step_us: 61.5,
            logged_step_us: f64::NAN,
            ensemble_size: 1,
        })
    }

    #[test]
    fn the_status_keeps_the_file_format_of_the_first_runs() {
        let summary = diverged_run();
        let json = serde_json::to_string(&summary).unwrap();
        assert!(
            json.starts_with("{\"status\":\"diverged\",\"diverged_at_step\":7,\"seed\":4,"),
            "{json}"
        );
        let back: RunSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back.status, RunStatus::Diverged { step: 7 });
        assert!(back.test_acc.is_nan() && back.steps_per_s == 20.0);
        let ok: RunStatus =
            serde_json::from_str("{\"status\":\"ok\",\"diverged_at_step\":null}").unwrap();
        assert!(ok.is_ok());
        assert!(serde_json::from_str::<RunStatus>("{\"status\":\"fine\"}").is_err());
    }

    #[test]
    fn step_times_are_null_where_unmeasured_and_absent_from_older_files() {
        let mut json = serde_json::to_value(diverged_run()).unwrap();
        assert_eq!(json["step_us"], 61.5);
        assert!(json["logged_step_us"].is_null());
        let back: RunSummary = serde_json::from_value(json.clone()).unwrap();
        assert!(back.step_us == 61.5 && back.logged_step_us.is_nan());
        let fields = json.as_object_mut().unwrap();
        fields.remove("step_us");
        fields.remove("logged_step_us");
        let older: RunSummary = serde_json::from_value(json).unwrap();
        assert!(older.step_us.is_nan() && older.logged_step_us.is_nan());
    }
}
