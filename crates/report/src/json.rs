//! `reports/<sweep>.json`: per scenario, the numbers of the report's results table, for
//! readers who plot in their own tools.

use serde_json::{Value, json};
use vgrad_record::RunClass;
use vgrad_record::class::{COLLAPSE_MARGIN, STABLE_BAND, TRAINABLE_ACCURACY, chance_accuracy};

use crate::measures::Analysis;
use crate::measures::learning_rate::searches;
use crate::measures::phase::{PhaseMap, XI_C_MULTIPLE};
use crate::measures::regime::Factor;
use crate::stats::{AccuracySummary, GeometricSummary, Split};

/// A number, or null for NaN.
fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

fn geometric(g: Option<GeometricSummary>) -> Value {
    match g {
        None => Value::Null,
        Some(g) => {
            json!({"geo_mean": num(g.geo_mean), "ci_low": num(g.ci_low), "ci_high": num(g.ci_high), "runs": g.n})
        }
    }
}

fn split(s: &Split) -> Value {
    json!({"summary": geometric(s.positive), "zero_runs": s.zero, "undefined_runs": s.undefined})
}

fn factor(f: &Factor) -> Value {
    let runs: serde_json::Map<String, Value> = vgrad_record::Regime::ALL
        .iter()
        .map(|r| (r.name().to_string(), json!(f.runs[*r as usize])))
        .collect();
    json!({
        "factor": geometric(f.split.positive),
        "zero_runs": f.split.zero,
        "regime": f.regime().map(|r| r.name()),
        "runs_per_regime": runs,
    })
}

fn accuracy(a: Option<AccuracySummary>) -> Value {
    match a {
        None => Value::Null,
        Some(a) => {
            json!({"mean": num(a.mean), "sd": num(a.sd), "ci_low": num(a.ci_low), "ci_high": num(a.ci_high), "runs": a.n})
        }
    }
}

/// The companion of the report of `a`.
pub fn companion(a: &Analysis) -> Value {
    let scenarios: Vec<Value> = (0..a.scenarios.len())
        .map(|i| {
            let st = &a.stats[i];
            let config: serde_json::Map<String, Value> = a.scenarios[i]
                .point
                .config
                .recorded_fields()
                .into_iter()
                .filter(|(k, _)| k != "seed")
                .collect();
            let counts: serde_json::Map<String, Value> = RunClass::ALL
                .iter()
                .map(|c| (c.name().to_string(), json!(st.outcome.count(*c))))
                .collect();
            let theory = st.mean_field.chain.map_or(Value::Null, |c| {
                json!({
                    "sigma_w2": num(c.sigma_w2),
                    "sigma_b2": c.sigma_b2,
                    "chi1": c.chi1.map_or(Value::Null, num),
                    "predicted_factor": c.predicted_factor().map_or(Value::Null, num),
                    "predicted_regime": c.predicted_regime().map(|r| r.name()),
                    "phase": c.phase().map(|p| p.name()),
                    "chi1_measured_start": c.start.chi1.map_or(Value::Null, num),
                })
            });
            json!({
                "scenario": a.label(i),
                "config": config,
                "outcomes": counts,
                "failed_runs": st.outcome.failed,
                "missing_runs": st.outcome.missing,
                "test_accuracy_trained": accuracy(st.outcome.accuracy),
                "error_factor_start": factor(&st.regime.start),
                "error_factor_training": factor(&st.regime.training),
                "decay_ratio": split(&st.decay.ratio),
                "decay_ratio_start": split(&st.decay.start),
                "mean_field": theory,
            })
        })
        .collect();
    let rates: Vec<Value> = searches(a)
        .iter()
        .map(|s| {
            json!({
                "setting": a.scenarios[s.example].point.label_without("lr"),
                "best_lr": s.best_rate(),
                "some_rate_trains": s.best.is_some(),
                "interior": s.interior(),
                "validation_accuracy": s.rates.iter().map(|(r, v, trained)| json!({"lr": r, "mean": num(*v), "a_run_trained": trained})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut out = json!({
        "sweep": a.sweep.name(),
        "command": a.sweep.command(),
        "seeds": a.sweep.seeds,
        "classes": {
            "collapsed": format!("test accuracy at most {} + {COLLAPSE_MARGIN}", chance_accuracy()),
            "regime": format!("vanishing below a per-layer error factor of 1/{STABLE_BAND}, exploding above {STABLE_BAND}"),
        },
        "scenarios": scenarios,
    });
    if !rates.is_empty() {
        out["learning_rates"] = json!(rates);
    }
    if let Some(map) = &a.phase {
        out["phase_diagram"] = phase(map);
    }
    out
}

/// The phase diagram's numbers: per sigma_w^2 the theory and each depth's test accuracy.
fn phase(map: &PhaseMap) -> Value {
    let rows: Vec<Value> = map
        .sigma_w2s
        .iter()
        .enumerate()
        .map(|(w, &sigma_w2)| {
            let theory = map.theory[w];
            let depths: Vec<Value> = map
                .depths
                .iter()
                .zip(&map.cells[w])
                .map(|(&layers, c)| {
                    json!({
                        "layers": layers,
                        "test_acc": c.map_or(Value::Null, |c| num(c.test_acc)),
                        "train_acc": c.map_or(Value::Null, |c| num(c.train_acc)),
                        "trainable": c.map(|c| c.trainable),
                    })
                })
                .collect();
            json!({
                "sigma_w2": sigma_w2,
                "chi1": theory.map_or(Value::Null, |t| num(t.chi_1)),
                "xi_c": theory.map_or(Value::Null, |t| num(t.xi_c)),
                "depth_bound": map.depth_bound(w).map_or(Value::Null, num),
                "deepest_trainable": map.deepest_trainable(w),
                "depths": depths,
            })
        })
        .collect();
    json!({
        "activation": map.activation.to_string(),
        "sigma_b2": map.sigma_b2,
        "critical_sigma_w2": map.critical.map_or(Value::Null, num),
        "trainable": format!("every run's test accuracy at least {TRAINABLE_ACCURACY}"),
        "depth_bound": format!("{XI_C_MULTIPLE} xi_c"),
        "rows": rows,
    })
}
