//! Synthetic records for the tests: runs that were never trained.

use std::path::PathBuf;

use vgrad_record::{Histogram, LayerRecord, Outcome, RunState, RunStatus, RunSummary, StepRecord};
use vgrad_sweep::{GridPoint, Overrides, Sweep, SweepDefinition};

use crate::{RunRecord, Scenario};

/// Layer `layer` with the fields every record has, and none of the optional ones.
pub fn layer(layer: usize) -> LayerRecord {
    LayerRecord {
        layer,
        grad_mean_abs: 1e-3,
        grad_l2: 1.0,
        grad_std: 1e-3,
        grad_max_abs: 1e-2,
        weight_mean_abs: 0.1,
        weight_l2: 3.0,
        dead_frac: None,
        deriv_mean: None,
        inactive_frac: None,
        preact: None,
        act: None,
        preact_hist: None,
        act_hist: None,
        chi1: None,
        jacobian: None,
        update_ratio: None,
        bias_update_ratio: None,
        delta_mean_sq: None,
        delta_hist: None,
        delta_mean_abs: 1e-3,
        grad_hist: Histogram::of(&[]),
        weight_hist: Histogram::of(&[]),
    }
}

/// A logged step with `layers`.
pub fn step(step: usize, layers: Vec<LayerRecord>) -> StepRecord {
    StepRecord {
        step,
        loss: 1.0,
        train_acc: 0.5,
        val_acc: None,
        jacobian: None,
        layers,
    }
}

/// The scenario of `point` whose runs, one per element of `runs`, finished with those
/// logged steps.
pub fn scenario(point: &GridPoint, runs: Vec<Vec<StepRecord>>) -> Scenario {
    let label = point.slug();
    let runs = runs
        .into_iter()
        .enumerate()
        .map(|(seed, steps)| {
            let summary = RunSummary::new(&Outcome {
                seed: seed as u64,
                status: RunStatus::Ok,
                records: &steps,
                test_acc: 0.9,
                val_acc: 0.9,
                steps: point.config.steps,
                wall_s: 1.0,
                train_s: 1.0,
                step_us: f64::NAN,
                logged_step_us: f64::NAN,
                ensemble_size: 1,
            });
            RunRecord {
                seed: seed as u64,
                dir: PathBuf::from(format!("runs/{label}_seed-{seed}")),
                state: RunState::Done(Box::new(summary)),
                steps,
            }
        })
        .collect();
    Scenario {
        point: point.clone(),
        runs,
    }
}

/// Logged steps 0, 100 and 200 of a network of `layers` dense layers, with numbers that
/// differ by `seed`, `scale` and step; with the probe's diagnostics when `diagnostics`.
pub fn run(layers: usize, seed: usize, scale: f64, diagnostics: bool) -> Vec<StepRecord> {
    use vgrad_record::{Distribution, Spectrum};
    (0..3)
        .map(|k| {
            let f = scale * (1.0 + 0.1 * seed as f64) * (1.0 + 0.5 * k as f64);
            let layer_records = (1..=layers)
                .map(|l| {
                    let mut x = layer(l);
                    x.grad_mean_abs = 1e-3 * f * l as f64;
                    x.delta_mean_abs = 2e-3 * f * l as f64;
                    x.weight_l2 = 3.0 + 0.1 * l as f64;
                    let hidden = l < layers;
                    if hidden {
                        x.dead_frac = Some(0.1);
                        x.deriv_mean = Some(0.2);
                        x.inactive_frac = Some(0.3);
                    }
                    if diagnostics {
                        let dist = |mean: f64, std: f64| Distribution {
                            mean,
                            std,
                            p15: mean - std,
                            p50: mean,
                            p85: mean + std,
                        };
                        x.update_ratio = Some(1e-3 * f / l as f64);
                        x.bias_update_ratio = (k > 0).then_some(2e-3);
                        x.delta_mean_sq = Some(1e-6 * (f * l as f64).powi(2));
                        let d = [-1e-3 * f, 2e-4, 5e-3 * l as f64, 0.0];
                        x.delta_hist = Some(Histogram::of(&d.map(|v| v as f32)));
                        if hidden {
                            x.preact = Some(dist(0.1 * l as f64, f));
                            x.act = Some(dist(0.5 - 0.01 * l as f64, 0.2));
                            let a = [0.5, 0.25 * l as f32, -0.3];
                            let edges = vgrad_record::step::activation_edges();
                            x.act_hist = Some(Histogram::over(&a, edges.clone()));
                            x.preact_hist = Some(Histogram::over(&a, edges));
                            x.chi1 = Some(0.5 * f);
                            x.jacobian = (k != 1).then_some(Spectrum {
                                mean: 0.8 * f,
                                min: 0.1,
                                max: 2.0 * f,
                            });
                        }
                    }
                    x
                })
                .collect();
            let mut s = step(100 * k, layer_records);
            if diagnostics && k != 1 {
                s.jacobian = Some(Spectrum {
                    mean: 0.5 * f,
                    min: 0.01 * f,
                    max: 3.0 * f,
                });
            }
            s
        })
        .collect()
}

/// A synthetic sweep of `activations` networks of 3 dense layers, two seeds each, with its
/// scenarios (the i-th with numbers `1 + i` times the first's); with the probe's
/// diagnostics when `diagnostics`.
pub fn sweep(activations: &[&str], diagnostics: bool) -> (Sweep, Vec<Scenario>) {
    let list: Vec<String> = activations.iter().map(|a| format!("\"{a}\"")).collect();
    let text = format!(
        "seeds = 2\n[base]\nlayers = 3\nsteps = 300\nlog_every = 100\n\
         [axes]\nactivation = [{}]\n",
        list.join(", ")
    );
    let definition =
        SweepDefinition::parse(&text, std::path::Path::new("experiments/syn.toml")).unwrap();
    let sweep = Sweep::new(definition, &Overrides::default()).unwrap();
    let scenarios = sweep
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let scale = 1.0 + i as f64;
            scenario(
                p,
                (0..2)
                    .map(|seed| run(3, seed, scale, diagnostics))
                    .collect(),
            )
        })
        .collect();
    (sweep, scenarios)
}
