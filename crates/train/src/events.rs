//! A run's records as TensorBoard summaries: its steps' scalars and histograms, its
//! settings and results for the HParams dashboard, and a custom-scalars layout.

use std::collections::BTreeMap;

use vgrad_record::class::error_factor;
use vgrad_record::time::TimeRecord;
use vgrad_record::{
    Distribution, Histogram, LayerRecord, Regime, RunClass, RunConfig, RunSummary, Spectrum,
    StepRecord, VALIDATION_EXAMPLES,
};
use vgrad_tensorboard::HistogramProto;
use vgrad_tensorboard::proto::{Category, Chart, Layout, MultilineChartContent, ProtoValue};

/// Tagged scalar values of one TensorBoard summary.
pub type Scalars = Vec<(String, f32)>;
/// Tagged histograms of one TensorBoard summary.
pub type Histograms = Vec<(String, HistogramProto)>;

/// TensorBoard's form of a histogram. Empty buckets at either end are left out, since
/// TensorBoard draws the first bucket from `min` and the last one up to `max`.
pub fn histogram_proto(h: &Histogram) -> HistogramProto {
    let first = h.counts.iter().position(|&c| c > 0).unwrap_or(0);
    let last = h.counts.iter().rposition(|&c| c > 0).unwrap_or(0);
    let limit = |i: usize| h.edges.get(i).copied().unwrap_or(f64::MAX);
    HistogramProto {
        min: h.min,
        max: h.max,
        num: h.num as f64,
        sum: h.sum,
        sum_squares: h.sum_squares,
        bucket_limit: (first..=last).map(limit).collect(),
        bucket: h.counts[first..=last].iter().map(|&c| c as f64).collect(),
    }
}

/// The tag group of the reference measure, the post's mean |dC/dW| per layer (the
/// `grad_mean_abs` of `metrics.jsonl`). TensorBoard orders tag groups (what comes before
/// the first `/`) by comparing their characters, a digit before any letter (its
/// `compareTagNames`), so the leading `1_` puts this group first; layers need no zero
/// padding, since the same comparison reads `layer10` as the number 10, after `layer9`.
pub const REFERENCE_GROUP: &str = "1_grad_mean_abs";

/// The per-layer statistics of a record under `<statistic>/layer<k>` tags, the
/// reference measure under [`REFERENCE_GROUP`].
fn layer_scalars(layer: &LayerRecord) -> Scalars {
    let k = layer.layer;
    let mut out: Vec<(String, f32)> = [
        (REFERENCE_GROUP, layer.grad_mean_abs),
        ("grad_l2", layer.grad_l2),
        ("grad_std", layer.grad_std),
        ("grad_max_abs", layer.grad_max_abs),
        ("weight_mean_abs", layer.weight_mean_abs),
        ("weight_l2", layer.weight_l2),
        ("delta_mean_abs", layer.delta_mean_abs),
    ]
    .into_iter()
    .map(|(name, v)| (format!("{name}/layer{k}"), v as f32))
    .collect();
    let optional = [
        ("dead_frac", layer.dead_frac),
        ("deriv_mean", layer.deriv_mean),
        ("inactive_frac", layer.inactive_frac),
        ("chi1", layer.chi1),
        ("delta_mean_sq", layer.delta_mean_sq),
        ("update_ratio", layer.update_ratio),
        ("bias_update_ratio", layer.bias_update_ratio),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            out.push((format!("{name}/layer{k}"), v as f32));
        }
    }
    for (prefix, d) in [("preact", &layer.preact), ("act", &layer.act)] {
        if let Some(d) = d {
            out.extend(distribution_scalars(prefix, d, &format!("/layer{k}")));
        }
    }
    if let Some(j) = &layer.jacobian {
        out.extend(spectrum_scalars("jacobian", j, &format!("/layer{k}")));
    }
    out
}

/// `<prefix>_mean`, `_std`, `_p15`, `_p50`, `_p85` of a distribution, tagged with `suffix`.
fn distribution_scalars(prefix: &str, d: &Distribution, suffix: &str) -> Scalars {
    [
        ("mean", d.mean),
        ("std", d.std),
        ("p15", d.p15),
        ("p50", d.p50),
        ("p85", d.p85),
    ]
    .into_iter()
    .map(|(name, v)| (format!("{prefix}_{name}{suffix}"), v as f32))
    .collect()
}

/// `<prefix>_mean`, `_min`, `_max` of a spectrum of singular values, tagged with `suffix`.
fn spectrum_scalars(prefix: &str, s: &Spectrum, suffix: &str) -> Scalars {
    [("mean", s.mean), ("min", s.min), ("max", s.max)]
        .into_iter()
        .map(|(name, v)| (format!("{prefix}_{name}{suffix}"), v as f32))
        .collect()
}

/// The tag group of the probe through time's first measure, ||dC/dh_t|| per time step
/// (`1_grad_through_time/t<k>`): the recurrent twin of [`REFERENCE_GROUP`], first for
/// the same reason.
pub const TIME_GROUP: &str = "1_grad_through_time";

/// A recurrent network's probe through time: per time step `<statistic>/t<k>` (the
/// error's norm first, its mean |.|, the carrying gate's mean), then the ratio and
/// factor over the sequence, the recurrent weight's blocks and gradient, the gates, and
/// the Jacobians beside Pascanu et al.'s bound where measured.
fn time_scalars(time: &TimeRecord) -> Scalars {
    let mut out: Scalars = Vec::new();
    for s in &time.steps {
        out.push((format!("{TIME_GROUP}/t{}", s.t), s.delta_l2 as f32));
        out.push((format!("delta_mean_abs/t{}", s.t), s.delta_mean_abs as f32));
        if let Some(carry) = s.carry_gate_mean {
            out.push((format!("carry_gate_mean/t{}", s.t), carry as f32));
        }
    }
    let w = &time.recurrent;
    let overall = [
        ("time_delta_ratio", time.delta_ratio),
        ("time_step_factor", time.step_factor),
        ("recurrent/grad_mean_abs", w.grad_mean_abs),
        ("recurrent/grad_l2", w.grad_l2),
        ("recurrent/weight_mean_abs", w.weight_mean_abs),
        ("recurrent/weight_l2", w.weight_l2),
    ];
    out.extend(overall.map(|(tag, v)| (tag.to_string(), v as f32)));
    for b in &w.blocks {
        out.push((
            format!("spectral_radius/{}", b.gate),
            b.spectral_radius as f32,
        ));
        out.push((format!("max_singular/{}", b.gate), b.max_singular as f32));
    }
    for g in &time.gates {
        out.push((format!("gate_mean/{}", g.gate), g.mean as f32));
        out.push((
            format!("gate_saturated_frac/{}", g.gate),
            g.saturated_frac as f32,
        ));
    }
    if let Some(j) = &time.jacobians {
        out.push(("jacobian_norm_per_step".into(), j.norm_per_step as f32));
        out.push(("pascanu_bound_per_step".into(), j.bound_per_step as f32));
    }
    out
}

/// Scalars and histograms of one logged step.
pub fn step_summary(record: &StepRecord) -> (Scalars, Histograms) {
    let mut scalars = vec![
        ("loss".to_string(), record.loss as f32),
        ("train_acc".to_string(), record.train_acc as f32),
    ];
    if let Some(v) = record.val_acc {
        scalars.push(("val_acc".to_string(), v as f32));
    }
    if let Some(j) = &record.jacobian {
        scalars.extend(spectrum_scalars("jacobian_net", j, ""));
    }
    if let Some(factor) = error_factor(record) {
        scalars.push(("error_factor".to_string(), factor as f32));
    }
    if let Some(time) = &record.time {
        scalars.extend(time_scalars(time));
    }
    let mut histograms = Vec::new();
    if let Some(chain) = &record.chain {
        let measured = [
            ("chain/near_one", chain.near_one),
            ("chain/zero_frac", chain.zero_frac),
            ("chain/unresolved", chain.unresolved),
            ("chain/log_spread", chain.log_spread),
            ("chain/median", chain.median),
            ("chain/max", chain.max),
        ];
        // The log spread is undefined where a singular value is 0 (a dead ReLU unit):
        // left out rather than logged as NaN.
        scalars.extend(
            measured
                .into_iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(tag, v)| (tag.to_string(), v as f32)),
        );
        histograms.push((
            "chain_singular_values".to_string(),
            histogram_proto(&chain.hist),
        ));
    }
    for layer in &record.layers {
        scalars.extend(layer_scalars(layer));
        histograms.push((
            format!("grad_hist/layer{}", layer.layer),
            histogram_proto(&layer.grad_hist),
        ));
        histograms.push((
            format!("weight_hist/layer{}", layer.layer),
            histogram_proto(&layer.weight_hist),
        ));
        let optional = [
            ("preactivation_hist", &layer.preact_hist),
            ("activation_hist", &layer.act_hist),
            ("delta_hist", &layer.delta_hist),
        ];
        for (name, hist) in optional {
            if let Some(h) = hist {
                histograms.push((format!("{name}/layer{}", layer.layer), histogram_proto(h)));
            }
        }
    }
    (scalars, histograms)
}

/// Scalars of a finished run, logged at its last step: its accuracies, ratios, error
/// factors, and its classes as numbers (`regime_start` and `regime_training`: -1
/// vanishing, 0 stable, 1 exploding; `trained`: 1 for a run that trained, 0 for one that
/// collapsed or diverged; `outcome`: 1 trained, 0 collapsed, -1 diverged, as
/// [`RunClass::code`]).
pub fn final_scalars(summary: &RunSummary) -> Scalars {
    let regime = |r: Option<Regime>| r.map_or(f64::NAN, Regime::code);
    let trained = f64::from(u8::from(summary.class() == RunClass::Trained));
    let outcome = summary.outcome_code();
    let measured = [
        ("test_acc", summary.test_acc),
        ("test_mse", summary.test_mse.unwrap_or(f64::NAN)),
        ("val_acc", summary.val_acc),
        ("decay_ratio", summary.profile.decay_ratio),
        ("layer_factor", summary.profile.layer_factor),
        ("delta_decay_ratio", summary.profile.delta_decay_ratio),
    ];
    // The factors and regimes are left out where undefined (one hidden layer, say).
    let classes = [
        ("error_factor_start", summary.error_factor_start),
        ("error_factor_training", summary.error_factor_training),
        ("regime_start", regime(summary.regime_start)),
        ("regime_training", regime(summary.regime_training)),
        ("trained", trained),
        ("outcome", outcome),
    ];
    let regression = summary.regression_outcome.is_some();
    measured
        .into_iter()
        // A classifier has no mean squared error; a regression run no accuracy.
        .filter(|(tag, v)| !(v.is_nan() && (*tag == "test_mse" || regression)))
        .chain(classes.into_iter().filter(|(_, v)| !v.is_nan()))
        .map(|(tag, v)| (tag.to_string(), v as f32))
        .collect()
}

/// A run's settings for the HParams dashboard: every field of its `config.json`, with
/// the fields that `config.json` leaves out while they hold their default (so that a
/// sweep that varies one, `norm` say, has its value in every run), as
/// [`ProtoValue::from_json`] converts them.
pub fn session_hparams(cfg: &RunConfig) -> BTreeMap<String, ProtoValue> {
    let mut fields = cfg.fields();
    fields.push(("validation_examples".into(), VALIDATION_EXAMPLES.into()));
    fields
        .into_iter()
        .filter_map(|(name, value)| Some((name, ProtoValue::from_json(&value)?)))
        .collect()
}

/// What `unit` numbers, where it names a layer (`layer<k>`) or a time step (`t<k>`).
fn numbered_unit(unit: &str) -> Option<&'static str> {
    let numbered = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_digit());
    match (unit.strip_prefix("layer"), unit.strip_prefix('t')) {
        (Some(k), _) if numbered(k) => Some("layer"),
        (_, Some(k)) if numbered(k) => Some("time step"),
        _ => None,
    }
}

/// The custom-scalars layout of a run whose first logged step gave `scalars`: one chart
/// per per-layer or per-time-step statistic (`<statistic>/layer<k>`, `<statistic>/t<k>`)
/// with every layer or step as a line, in the
/// order the steps log them, the reference measure first. Each chart names its tags by a
/// regular expression, so every run of a sweep writes the same layout whatever its
/// depth, and TensorBoard, which merges the layouts of all runs, shows each chart once.
pub fn layout(scalars: &Scalars) -> Layout {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for (tag, _) in scalars {
        if let Some((group, unit)) = tag.split_once('/')
            && let Some(unit) = numbered_unit(unit)
            && !groups.iter().any(|(g, _)| *g == group)
        {
            groups.push((group, unit));
        }
    }
    let chart = groups
        .into_iter()
        .map(|(group, unit)| Chart {
            title: match group {
                REFERENCE_GROUP => "mean |dC/dW| per layer (the post's measure)".to_string(),
                TIME_GROUP => "||dC/dh_t|| per time step".to_string(),
                _ => format!("{group} per {unit}"),
            },
            multiline: Some(MultilineChartContent {
                // Tag groups are made of letters, digits and `_`: nothing to escape.
                tag: vec![format!(r"^{group}/(layer|t)\d+$")],
            }),
        })
        .collect();
    Layout {
        version: 0,
        category: vec![Category {
            title: "every layer (or time step) of one measure".to_string(),
            chart,
            closed: false,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_measure_comes_first_and_each_chart_holds_every_layer() {
        let record = StepRecord {
            step: 0,
            loss: 2.3,
            train_acc: 0.1,
            val_acc: None,
            jacobian: None,
            chain: None,
            layers: (1..=2)
                .map(|layer| LayerRecord {
                    dead_frac: Some(0.5),
                    ..LayerRecord::empty(layer)
                })
                .collect(),
            time: None,
        };
        let (scalars, _) = step_summary(&record);
        assert!(scalars.iter().any(|(t, _)| t == "1_grad_mean_abs/layer2"));
        let l = layout(&scalars);
        let charts = &l.category[0].chart;
        let tags: Vec<&str> = charts
            .iter()
            .map(|c| c.multiline.as_ref().unwrap().tag[0].as_str())
            .collect();
        assert_eq!(tags[0], r"^1_grad_mean_abs/(layer|t)\d+$");
        assert!(tags.contains(&r"^dead_frac/(layer|t)\d+$"), "{tags:?}");
        // One chart per statistic, not per layer; no run-level scalar.
        assert_eq!(charts.len(), 8, "{tags:?}");
        assert!(charts[0].title.contains("dC/dW"));
        // TensorBoard's group order: by character, a digit before any letter.
        let mut groups: Vec<&str> = scalars
            .iter()
            .map(|(t, _)| t.split('/').next().unwrap())
            .collect();
        groups.sort();
        assert_eq!(groups[0], REFERENCE_GROUP);
    }

    #[test]
    fn a_recurrent_record_is_tagged_per_time_step_with_the_error_first() {
        use vgrad_record::time::{RecurrentBlock, RecurrentWeight, TimeRecord, TimeStep};
        let time = TimeRecord {
            steps: (1..=3)
                .map(|t| TimeStep {
                    t,
                    delta_l2: 0.1 * t as f64,
                    delta_mean_abs: 0.01,
                    carry_gate_mean: Some(0.7),
                })
                .collect(),
            delta_ratio: 3.0,
            step_factor: 0.577,
            recurrent: RecurrentWeight {
                blocks: vec![RecurrentBlock {
                    gate: "h".into(),
                    spectral_radius: 0.9,
                    max_singular: 1.1,
                }],
                grad_mean_abs: 1e-3,
                grad_l2: 0.1,
                weight_mean_abs: 0.05,
                weight_l2: 2.0,
            },
            gates: Vec::new(),
            jacobians: None,
        };
        let record = StepRecord {
            step: 0,
            loss: 0.2,
            train_acc: f64::NAN,
            val_acc: None,
            jacobian: None,
            chain: None,
            layers: Vec::new(),
            time: Some(time),
        };
        let (scalars, histograms) = step_summary(&record);
        assert!(histograms.is_empty());
        let value = |tag: &str| scalars.iter().find(|(t, _)| t == tag).map(|(_, v)| *v);
        assert_eq!(value("1_grad_through_time/t3"), Some(0.3));
        assert_eq!(value("carry_gate_mean/t1"), Some(0.7));
        assert_eq!(value("max_singular/h"), Some(1.1));
        // The error factor is the one per time step.
        assert_eq!(value("error_factor"), Some(0.577));
        let l = layout(&scalars);
        let charts = &l.category[0].chart;
        assert_eq!(charts[0].title, "||dC/dh_t|| per time step");
        assert!(
            charts
                .iter()
                .any(|c| c.title == "delta_mean_abs per time step")
        );
        // Tags that are not numbered units make no chart.
        assert!(!charts.iter().any(|c| c.title.contains("max_singular")));
    }

    #[test]
    fn session_hparams_hold_every_setting_with_its_kind() {
        let cfg = RunConfig::default();
        let h = session_hparams(&cfg);
        assert_eq!(h.len(), cfg.fields().len() + 1);
        assert_eq!(h["activation"], ProtoValue::string("sigmoid"));
        assert_eq!(h["layers"], ProtoValue::number(6.0));
        assert_eq!(h["lr"], ProtoValue::number(1e-3));
        assert_eq!(h["residual"], ProtoValue::bool(false));
        // Left out of config.json at its default, present here.
        assert_eq!(h["norm"], ProtoValue::string("none"));
        assert_eq!(
            h["validation_examples"],
            ProtoValue::number(VALIDATION_EXAMPLES as f64)
        );
    }

    #[test]
    fn histograms_drop_empty_end_buckets_and_keep_counts() {
        let h = Histogram::of(&[0.3, 0.4, -0.03, 20.0]);
        let p = histogram_proto(&h);
        assert_eq!(p.bucket.iter().sum::<f64>(), 4.0);
        assert_eq!(p.bucket.first(), Some(&1.0));
        assert_eq!(p.bucket.last(), Some(&1.0));
        // -0.03 falls in (-0.05, -0.02]; 20 in the unbounded last bucket.
        assert_eq!(p.bucket_limit.first(), Some(&-0.02));
        assert_eq!(p.bucket_limit.last(), Some(&f64::MAX));
        assert_eq!(p.bucket_limit.len(), p.bucket.len());
        assert_eq!((p.min, p.max, p.num), (-0.03f32 as f64, 20.0, 4.0));
    }
}
