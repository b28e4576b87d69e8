//! A scenario's numbers across its seeds.

use vgrad_record::profile::{decay_ratio, layer_factor};
use vgrad_record::{Norm, RunSummary, StepRecord};

use crate::Scenario;
use crate::diagnostics::Diagnostics;
use crate::seeds::{GeometricSummary, mean_std, t_975};

/// Per logged step, averaged over the seeds of a scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    /// The logged steps.
    pub steps: Vec<usize>,
    /// Mean batch accuracy.
    pub train_acc: Vec<f64>,
    /// Geometric mean of the first layer's mean |grad|.
    pub grad_first: Vec<f64>,
    /// Geometric mean of the last layer's mean |grad|.
    pub grad_last: Vec<f64>,
    /// Geometric mean of that step's weight-gradient decay ratio (last over first layer).
    pub decay: Vec<f64>,
    /// Geometric mean of that step's error decay ratio.
    pub delta_decay: Vec<f64>,
    /// Mean validation accuracy at the steps `--eval-every` picked, then at the end
    /// (`steps`, from the summaries); empty without `--eval-every`.
    pub val_acc: Vec<(usize, f64)>,
    /// Per logged step, the mean over seeds of the 15th, 50th and 85th percentiles of the
    /// last hidden layer's activation input; empty where they were not recorded.
    pub last_act_input: Vec<[f64; 3]>,
}

/// The weight-gradient decay ratio of one logged step: last layer over first.
fn step_decay(s: &StepRecord) -> f64 {
    decay_ratio(&s.layers.iter().map(|l| l.grad_mean_abs).collect::<Vec<_>>())
}

/// The error decay ratio of one logged step.
fn step_delta_decay(s: &StepRecord) -> f64 {
    decay_ratio(
        &s.layers
            .iter()
            .map(|l| l.delta_mean_abs)
            .collect::<Vec<_>>(),
    )
}

/// What the report says about one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioStats {
    /// Dense layers.
    pub layers: usize,
    /// Runs finished with status ok.
    pub ok: usize,
    /// Runs failed or diverged.
    pub failed: usize,
    /// Runs not on disk (yet).
    pub missing: usize,
    /// Weight-gradient decay ratio across seeds.
    pub decay: Option<GeometricSummary>,
    /// Its per-layer factor across seeds.
    pub layer_factor: Option<GeometricSummary>,
    /// Back-propagated error decay ratio across seeds.
    pub delta_decay: Option<GeometricSummary>,
    /// Its per-layer factor across seeds.
    pub delta_layer_factor: Option<GeometricSummary>,
    /// grad_mean_abs[L] / grad_mean_abs[2] across seeds: the decay without the raw-pixel
    /// input layer (None for networks of fewer than 3 layers).
    pub last_over_second: Option<GeometricSummary>,
    /// Its per-layer factor, `(grad[L] / grad[2])^(1/(L-2))`, across seeds.
    pub layer_factor_from_2: Option<GeometricSummary>,
    /// The weight-gradient decay ratio at the first logged step (at initialisation).
    pub decay_start: Option<GeometricSummary>,
    /// The weight-gradient decay ratio at the last logged step.
    pub decay_end: Option<GeometricSummary>,
    /// The error decay ratio at the first logged step.
    pub delta_decay_start: Option<GeometricSummary>,
    /// The error decay ratio at the last logged step.
    pub delta_decay_end: Option<GeometricSummary>,
    /// Test accuracy: mean and sample standard deviation over seeds.
    pub test_acc: (f64, f64),
    /// Per layer, the mean over seeds of the dead (or saturated) fraction.
    pub dead_frac: Vec<Option<f64>>,
    /// Per layer, the geometric mean over seeds of mean |grad|.
    pub grad_profile: Vec<f64>,
    /// Per layer, the geometric mean over seeds of mean |delta|.
    pub delta_profile: Vec<f64>,
    /// Training curves.
    pub curves: Curves,
    /// Per hidden layer, the mean over seeds of the mean derivative f'(z).
    pub deriv_profile: Vec<Option<f64>>,
    /// Per hidden layer, the mean over seeds of the fraction of (unit, example) pairs off.
    pub inactive_profile: Vec<Option<f64>>,
    /// Per layer, ||W_l|| / sqrt(fan_in_l) (the factor by which the weights pass a random
    /// error back, on average), averaged over the logged steps, mean over seeds.
    pub weight_gain: Vec<f64>,
    /// How back-propagation shrinks or keeps the error here.
    pub mechanism: Option<Mechanism>,
    /// The probe's diagnostics (update ratios, activations, Jacobians, chi_1), empty for
    /// runs from before it recorded them.
    pub diagnostics: Diagnostics,
}

/// How back-propagation shrinks or keeps the error, from a scenario's per-layer numbers:
/// dC/dz_l = f'(z_l) * (dC/dz_(l+1) W_(l+1)^T), layer by layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mechanism {
    /// Mean derivative f'(z) over the hidden layers.
    pub deriv_mean: f64,
    /// Geometric mean over layers 2..L of the weight gain ||W_l|| / sqrt(fan_in_l).
    pub gain: f64,
    /// Geometric mean over layers l = 1..L-1 of f'(z_l) times the gain of W_(l+1): the
    /// factor by which a layer would multiply the error were derivatives and weights
    /// independent.
    pub expected_factor: f64,
    /// Geometric mean over layers of mean |dC/dz_l| / mean |dC/dz_(l+1)|: the factor the
    /// error is multiplied by per layer on its way to the input, measured.
    pub measured_factor: f64,
    /// The weight gradient per unit of error, mean |dC/dW| / mean |dC/dz|, of layer 1 over
    /// layer 2: below 1 where layer 1's input (raw pixels) shrinks its gradient.
    pub input_effect: f64,
}

impl Mechanism {
    /// The mechanism of a scenario's statistics; `None` without finished runs, without a
    /// hidden layer, without the derivative (runs from before it was recorded), or where
    /// a normalisation or skips add terms to the chain.
    fn of(st: &ScenarioStats, plain_chain: bool) -> Option<Self> {
        let l = st.layers;
        if !plain_chain || l < 2 || st.delta_profile.len() != l || st.weight_gain.len() != l {
            return None;
        }
        let deriv: Vec<f64> = st.deriv_profile[..l - 1]
            .iter()
            .copied()
            .collect::<Option<_>>()?;
        let expected: Vec<f64> = (0..l - 1)
            .map(|i| deriv[i] * st.weight_gain[i + 1])
            .collect();
        let measured: Vec<f64> = (0..l - 1)
            .map(|i| st.delta_profile[i] / st.delta_profile[i + 1])
            .collect();
        let per_error = |i: usize| st.grad_profile[i] / st.delta_profile[i];
        Some(Self {
            deriv_mean: deriv.iter().sum::<f64>() / deriv.len() as f64,
            gain: geo_mean(st.weight_gain[1..].iter().copied()),
            expected_factor: geo_mean(expected.into_iter()),
            measured_factor: geo_mean(measured.into_iter()),
            input_effect: per_error(0) / per_error(1),
        })
    }
}

/// The mean over seeds of a per-layer statistic that only hidden layers have.
fn hidden_mean(
    summaries: &[&RunSummary],
    layers: usize,
    pick: fn(&RunSummary) -> &Vec<Option<f64>>,
) -> Vec<Option<f64>> {
    (0..layers)
        .map(|l| {
            let values: Option<Vec<f64>> = summaries
                .iter()
                .map(|s| pick(s).get(l).copied().flatten())
                .collect();
            values
                .filter(|v| !v.is_empty())
                .map(|v| v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect()
}

/// Per layer, the weight gain ||W_l|| / sqrt(fan_in_l) averaged over `steps`.
fn weight_gain(steps: &[StepRecord], fan_in: impl Fn(usize) -> usize) -> Vec<f64> {
    let Some(first) = steps.first() else {
        return Vec::new();
    };
    (0..first.layers.len())
        .map(|l| {
            let sum: f64 = steps.iter().map(|s| s.layers[l].weight_l2).sum();
            sum / steps.len() as f64 / (fan_in(l) as f64).sqrt()
        })
        .collect()
}

fn geo_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    (sum / n as f64).exp()
}

impl ScenarioStats {
    /// The statistics of `scenario`'s finished runs.
    pub fn of(scenario: &Scenario) -> Self {
        let layers = scenario.point.config.layers;
        let runs: Vec<_> = scenario.ok_runs().collect();
        let summaries: Vec<_> = runs.iter().map(|(_, s)| *s).collect();
        let across = |f: &dyn Fn(&RunSummary) -> f64| {
            GeometricSummary::of(&summaries.iter().map(|s| f(s)).collect::<Vec<_>>())
        };
        let per_layer = |f: &dyn Fn(&RunSummary, usize) -> f64| -> Vec<f64> {
            if summaries.is_empty() {
                return Vec::new();
            }
            (0..layers)
                .map(|l| geo_mean(summaries.iter().map(|s| f(s, l))))
                .collect()
        };
        let dead_frac = hidden_mean(&summaries, layers, |s| &s.dead_frac);
        let width = scenario.point.config.width;
        let fan_in = |l: usize| if l == 0 { vgrad_record::INPUT } else { width };
        let gains: Vec<Vec<f64>> = runs
            .iter()
            .map(|(r, _)| weight_gain(&r.steps, fan_in))
            .filter(|g| g.len() == layers)
            .collect();
        let weight_gain = if gains.is_empty() {
            Vec::new()
        } else {
            (0..layers)
                .map(|l| gains.iter().map(|g| g[l]).sum::<f64>() / gains.len() as f64)
                .collect()
        };
        let accs: Vec<f64> = summaries.iter().map(|s| s.test_acc).collect();
        let test_acc = if accs.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            mean_std(&accs)
        };

        let mut curves = Curves::default();
        if let Some((first, _)) = runs.first() {
            curves.steps = first.steps.iter().map(|s| s.step).collect();
            for i in 0..curves.steps.len() {
                let at: Vec<_> = runs.iter().filter_map(|(r, _)| r.steps.get(i)).collect();
                curves
                    .train_acc
                    .push(at.iter().map(|s| s.train_acc).sum::<f64>() / at.len() as f64);
                curves
                    .grad_first
                    .push(geo_mean(at.iter().map(|s| s.layers[0].grad_mean_abs)));
                curves.grad_last.push(geo_mean(
                    at.iter().map(|s| s.layers[layers - 1].grad_mean_abs),
                ));
                curves
                    .decay
                    .push(geo_mean(at.iter().map(|s| step_decay(s))));
                curves
                    .delta_decay
                    .push(geo_mean(at.iter().map(|s| step_delta_decay(s))));
                let vals: Vec<f64> = at.iter().filter_map(|s| s.val_acc).collect();
                if !vals.is_empty() {
                    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                    curves.val_acc.push((curves.steps[i], mean));
                }
                let inputs: Option<Vec<_>> = at
                    .iter()
                    .map(|s| s.layers.get(layers.wrapping_sub(2)).and_then(|l| l.preact))
                    .collect();
                if let Some(inputs) = inputs.filter(|v| !v.is_empty()) {
                    let mean = |f: fn(&vgrad_record::Distribution) -> f64| {
                        inputs.iter().map(f).sum::<f64>() / inputs.len() as f64
                    };
                    curves
                        .last_act_input
                        .push([mean(|p| p.p15), mean(|p| p.p50), mean(|p| p.p85)]);
                }
            }
            if !curves.val_acc.is_empty() {
                let end: Vec<f64> = summaries.iter().map(|s| s.val_acc).collect();
                let steps = scenario.point.config.steps;
                curves
                    .val_acc
                    .push((steps, end.iter().sum::<f64>() / end.len() as f64));
            }
        }
        let at_step = |pick: &dyn Fn(&[StepRecord]) -> Option<&StepRecord>,
                       f: fn(&StepRecord) -> f64| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|(r, _)| pick(&r.steps).map(f))
                .collect();
            GeometricSummary::of(&values)
        };
        Self {
            layers,
            ok: summaries.len(),
            failed: scenario.failed(),
            missing: scenario.missing(),
            decay: across(&|s| s.profile.decay_ratio),
            layer_factor: across(&|s| s.profile.layer_factor),
            delta_decay: across(&|s| s.profile.delta_decay_ratio),
            delta_layer_factor: across(&|s| s.profile.delta_layer_factor),
            last_over_second: if layers >= 3 {
                across(&|s| s.profile.grad_mean_abs[layers - 1] / s.profile.grad_mean_abs[1])
            } else {
                None
            },
            layer_factor_from_2: if layers >= 3 {
                // The chain from layer 2 to L has L - 1 layers.
                across(&|s| layer_factor(decay_ratio(&s.profile.grad_mean_abs[1..]), layers - 1))
            } else {
                None
            },
            decay_start: at_step(&|s| s.first(), step_decay),
            decay_end: at_step(&|s| s.last(), step_decay),
            delta_decay_start: at_step(&|s| s.first(), step_delta_decay),
            delta_decay_end: at_step(&|s| s.last(), step_delta_decay),
            test_acc,
            dead_frac,
            grad_profile: per_layer(&|s, l| s.profile.grad_mean_abs[l]),
            delta_profile: per_layer(&|s, l| s.profile.delta_mean_abs[l]),
            curves,
            deriv_profile: hidden_mean(&summaries, layers, |s| &s.deriv_mean),
            inactive_profile: hidden_mean(&summaries, layers, |s| &s.inactive_frac),
            weight_gain,
            mechanism: None,
            diagnostics: Diagnostics::of(
                &runs
                    .iter()
                    .map(|(r, _)| r.steps.as_slice())
                    .collect::<Vec<_>>(),
                layers,
            ),
        }
        .with_mechanism(scenario.point.config.norm == Norm::None && !scenario.point.config.residual)
    }

    fn with_mechanism(self, plain_chain: bool) -> Self {
        Self {
            mechanism: Mechanism::of(&self, plain_chain),
            ..self
        }
    }

    /// Test accuracy with its 95% interval over seeds (mean +- t * sd / sqrt(n)); the
    /// interval is NaN for fewer than two seeds.
    pub fn test_acc_ci(&self) -> (f64, f64, f64) {
        let (mean, sd) = self.test_acc;
        let half = t_975(self.ok.saturating_sub(1)) * sd / (self.ok as f64).sqrt();
        (mean, mean - half, mean + half)
    }
}
