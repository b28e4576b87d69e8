//! Synthetic runs for the tests: records of networks that were never trained, built so
//! that each measure lands where a test wants it (on either side of a class's threshold).

use std::path::Path;

use vgrad_record::time::{GateStats, RecurrentBlock, RecurrentWeight, TimeRecord, TimeStep};
use vgrad_record::{
    Distribution, Histogram, LayerRecord, Outcome, RegressionClass, RunState, RunStatus,
    RunSummary, Spectrum, StepRecord,
};
use vgrad_sweep::{GridPoint, Overrides, Sweep, SweepDefinition};

use crate::{RunRecord, Scenario};

/// Layer `layer` with the fields every record has, and none of the optional ones.
pub fn layer(layer: usize) -> LayerRecord {
    LayerRecord {
        grad_mean_abs: 1e-3,
        grad_l2: 1.0,
        grad_std: 1e-3,
        grad_max_abs: 1e-2,
        weight_mean_abs: 0.1,
        weight_l2: 3.0,
        delta_mean_abs: 1e-3,
        ..LayerRecord::empty(layer)
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
        chain: None,
        layers,
        time: None,
    }
}

/// What a synthetic run measures.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Dense layers.
    pub layers: usize,
    /// The per-layer error factor of the initial network (step 0): the error's rms is
    /// multiplied by it at every hidden layer on its way to the input.
    pub factor_start: f64,
    /// The same at every logged step after step 0.
    pub factor_training: f64,
    /// Final test accuracy.
    pub test_acc: f64,
    /// The output layer's error rms (the hidden layers' are set by the factors): what
    /// moves the post's decay ratio without moving the error factor.
    pub output_rms: f64,
    /// How it ended.
    pub status: RunStatus,
    /// A number that makes its values differ from another seed's (a few percent).
    pub seed: usize,
}

impl Spec {
    /// A 6-layer run that trains to 90% with a stable error.
    pub fn new(seed: usize) -> Self {
        Self {
            layers: 6,
            factor_start: 1.0,
            factor_training: 1.0,
            test_acc: 0.9,
            output_rms: 1e-2,
            status: RunStatus::Ok,
            seed,
        }
    }
}

/// Logged steps 0, 100 and 200 of a run as `spec` says, with every diagnostic the probe
/// records (on layers whose numbers follow simple rules the tests can recompute).
pub fn run(spec: &Spec) -> Vec<StepRecord> {
    let jitter = 1.0 + 0.02 * spec.seed as f64;
    (0..3)
        .map(|k| {
            let factor = if k == 0 {
                spec.factor_start
            } else {
                spec.factor_training
            };
            let hidden = spec.layers - 1;
            let layers = (1..=spec.layers)
                .map(|l| {
                    let mut x = layer(l);
                    // rms at hidden layer l: factor^(l - 1) relative to layer 1, times the
                    // last hidden layer's 1e-3 scale; the output's own 1e-2.
                    let rms = if l <= hidden {
                        1e-3 * jitter * factor.powi(-(l as i32 - hidden as i32))
                    } else {
                        spec.output_rms * jitter
                    };
                    x.delta_mean_sq = Some(rms * rms);
                    x.delta_mean_abs = 0.8 * rms;
                    x.grad_mean_abs = 0.5 * rms * (1.0 + 0.1 * k as f64);
                    x.grad_l2 = 10.0 * rms;
                    x.weight_l2 = 3.0 + 0.1 * l as f64;
                    x.update_ratio = Some(1e-3 * jitter / l as f64);
                    x.delta_hist = Some(Histogram::of(&[-1e-3, 2e-4, 5e-3, 0.0]));
                    if l <= hidden {
                        let dist = |mean: f64, std: f64| Distribution {
                            mean,
                            std,
                            p15: mean - std,
                            p50: mean,
                            p85: mean + std,
                        };
                        x.dead_frac = Some(0.0);
                        x.inactive_frac = Some(0.1);
                        x.deriv_mean = Some(0.2);
                        x.deriv_mean_sq = Some(0.05);
                        x.preact = Some(dist(0.1 * l as f64, 1.0 + k as f64));
                        x.act = Some(dist(0.5, 0.2));
                        let a = [0.5, 0.25 * l as f32, -0.3];
                        let edges = vgrad_record::step::activation_edges();
                        x.act_hist = Some(Histogram::over(&a, edges.clone()));
                        x.preact_hist = Some(Histogram::over(&a, edges));
                        x.chi1 = Some(factor * factor);
                        x.jacobian = Some(Spectrum {
                            mean: factor,
                            min: 0.5 * factor,
                            max: 2.0 * factor,
                        });
                    }
                    x
                })
                .collect();
            let mut s = step(100 * k, layers);
            s.train_acc = 0.3 + 0.2 * k as f64;
            s.jacobian = Some(Spectrum {
                mean: 0.5,
                min: 0.01,
                max: 3.0,
            });
            s
        })
        .collect()
}

/// The finished run of `point` with seed `seed`, its logged steps `steps`, as `spec` says.
fn finished(point: &GridPoint, seed: u64, spec: &Spec, steps: Vec<StepRecord>) -> RunRecord {
    let summary = RunSummary::new(&Outcome {
        seed,
        status: spec.status,
        records: &steps,
        test_acc: spec.test_acc,
        val_acc: spec.test_acc,
        steps: point.config.steps,
        wall_s: 1.0,
        train_s: 1.0,
        step_us: f64::NAN,
        logged_step_us: f64::NAN,
        ensemble_size: 1,
    });
    RunRecord {
        seed,
        dir: Path::new("runs").join(point.run_dir(seed)),
        name: point.run_dir(seed),
        state: RunState::Done(Box::new(summary)),
        steps,
    }
}

/// The scenario of `point` whose runs, one per spec, finished as the specs say.
pub fn scenario(point: &GridPoint, specs: &[Spec]) -> Scenario {
    Scenario {
        point: point.clone(),
        runs: specs
            .iter()
            .enumerate()
            .map(|(seed, spec)| finished(point, seed as u64, spec, run(spec)))
            .collect(),
    }
}

/// The sweep of the sweep file `text` (read as `experiments/syn.toml`).
pub fn sweep(text: &str) -> Sweep {
    let definition = SweepDefinition::parse(text, Path::new("experiments/syn.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    Sweep::new(definition, &Overrides::default()).unwrap()
}

/// A sweep of 6-layer networks over `activations` (two seeds), each scenario's runs made
/// by `spec` from the scenario's index and the seed.
pub fn over(activations: &[&str], spec: impl Fn(usize, usize) -> Spec) -> (Sweep, Vec<Scenario>) {
    let list: Vec<String> = activations.iter().map(|a| format!("\"{a}\"")).collect();
    over_axes(&format!("activation = [{}]", list.join(", ")), spec)
}

/// A sweep of 6-layer networks over the `[axes]` table `axes` (two seeds), each grid
/// point's runs made by `spec` from the point's index and the seed.
pub fn over_axes(axes: &str, spec: impl Fn(usize, usize) -> Spec) -> (Sweep, Vec<Scenario>) {
    let sweep = sweep(&format!(
        "seeds = 2\n[base]\nlayers = 6\nsteps = 300\nlog_every = 100\n[axes]\n{axes}\n"
    ));
    let scenarios = sweep
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| scenario(p, &[spec(i, 0), spec(i, 1)]))
        .collect();
    (sweep, scenarios)
}

/// A sweep of the named scenarios `named` (name, fields), two seeds of stable 6-layer
/// networks each.
pub fn named(named: &[(&str, &str)]) -> (Sweep, Vec<Scenario>) {
    named_with(named, |_, seed| Spec::new(seed))
}

/// A sweep of the named scenarios `named` (name, fields), two seeds each, whose runs
/// `spec` makes from the scenario's index and the seed.
pub fn named_with(
    named: &[(&str, &str)],
    spec: impl Fn(usize, usize) -> Spec,
) -> (Sweep, Vec<Scenario>) {
    let mut text = String::from("seeds = 2\n[base]\nlayers = 6\nsteps = 300\nlog_every = 100\n");
    for (name, fields) in named {
        text.push_str(&format!("[[scenarios]]\nname = \"{name}\"\n{fields}\n"));
    }
    let sweep = sweep(&text);
    let scenarios = sweep
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| scenario(p, &[spec(i, 0), spec(i, 1)]))
        .collect();
    (sweep, scenarios)
}

/// What a synthetic recurrent run measures.
#[derive(Debug, Clone, Copy)]
pub struct TimeSpec {
    /// Time steps T.
    pub steps: usize,
    /// The error's factor per time step back at step 0: ||dC/dh_t|| is multiplied by it
    /// at every step from T back to 1.
    pub factor_start: f64,
    /// The same at the logged steps after step 0.
    pub factor_training: f64,
    /// Final test accuracy (NaN for a regression).
    pub test_acc: f64,
    /// Final test mean squared error of a regression (`None` for a classification).
    pub test_mse: Option<f64>,
    /// How it ended.
    pub status: RunStatus,
    /// A number that makes its values differ from another seed's.
    pub seed: usize,
}

impl TimeSpec {
    /// A classification run of `steps` time steps that trains to 90% with a stable error.
    pub fn new(steps: usize, seed: usize) -> Self {
        Self {
            steps,
            factor_start: 1.0,
            factor_training: 1.0,
            test_acc: 0.9,
            test_mse: None,
            status: RunStatus::Ok,
            seed,
        }
    }
}

/// Logged steps 0, 100 and 200 of a recurrent run as `spec` says.
pub fn recurrent_run(spec: &TimeSpec) -> Vec<StepRecord> {
    let jitter = 1.0 + 0.02 * spec.seed as f64;
    (0..3)
        .map(|k| {
            let factor = if k == 0 {
                spec.factor_start
            } else {
                spec.factor_training
            };
            let t_last = spec.steps as i32;
            let norms: Vec<f64> = (1..=t_last)
                .map(|t| 1e-3 * jitter * factor.powi(t_last - t))
                .collect();
            let time = TimeRecord {
                steps: norms
                    .iter()
                    .enumerate()
                    .map(|(t, &n)| TimeStep {
                        t: t + 1,
                        delta_l2: n,
                        delta_mean_abs: 0.1 * n,
                        carry_gate_mean: Some(0.6),
                    })
                    .collect(),
                delta_ratio: vgrad_record::time::delta_ratio(&norms),
                step_factor: vgrad_record::time::step_factor(&norms),
                recurrent: RecurrentWeight {
                    blocks: vec![RecurrentBlock {
                        gate: "f".into(),
                        spectral_radius: 0.9,
                        max_singular: 1.1,
                    }],
                    grad_mean_abs: 1e-4,
                    grad_l2: 1e-2,
                    weight_mean_abs: 0.05,
                    weight_l2: 3.0,
                },
                gates: vec![GateStats {
                    gate: "f".into(),
                    mean: 0.6,
                    low_frac: 0.0,
                    high_frac: 0.1,
                    saturated_frac: 0.1,
                }],
                jacobians: None,
            };
            StepRecord {
                time: Some(time),
                loss: 0.5 / (1.0 + k as f64),
                ..step(100 * k, Vec::new())
            }
        })
        .collect()
}

/// The scenario of `point` whose recurrent runs, one per spec, finished as the specs say.
pub fn recurrent_scenario(point: &GridPoint, specs: &[TimeSpec]) -> Scenario {
    Scenario {
        point: point.clone(),
        runs: specs
            .iter()
            .enumerate()
            .map(|(seed, spec)| {
                let steps = recurrent_run(spec);
                let as_mlp = Spec {
                    test_acc: spec.test_acc,
                    status: spec.status,
                    ..Spec::new(spec.seed)
                };
                let mut run = finished(point, seed as u64, &as_mlp, steps);
                if let (RunState::Done(summary), Some(mse)) = (&mut run.state, spec.test_mse) {
                    let ok = spec.status.is_ok();
                    summary.test_mse = ok.then_some(mse);
                    summary.regression_outcome = Some(RegressionClass::of(spec.status, mse));
                    summary.outcome = None;
                }
                run
            })
            .collect(),
    }
}

/// A sweep of recurrent networks over the named scenarios `named` (name, fields) and
/// `[base]` lines `base`, two seeds each, whose runs `spec` makes from the scenario's
/// index and the seed.
pub fn recurrent(
    base: &str,
    named: &[(&str, &str)],
    spec: impl Fn(usize, usize) -> TimeSpec,
) -> (Sweep, Vec<Scenario>) {
    let mut text = format!(
        "seeds = 2\n[base]\nactivation = \"tanh\"\nlayers = 2\nsteps = 300\nlog_every = 100\n{base}\n"
    );
    for (name, fields) in named {
        text.push_str(&format!("[[scenarios]]\nname = \"{name}\"\n{fields}\n"));
    }
    let sweep = sweep(&text);
    let scenarios = sweep
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| recurrent_scenario(p, &[spec(i, 0), spec(i, 1)]))
        .collect();
    (sweep, scenarios)
}
