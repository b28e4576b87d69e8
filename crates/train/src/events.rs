//! A run's records as TensorBoard summaries.

use vgrad_record::class::error_factor;
use vgrad_record::{
    Distribution, Histogram, LayerRecord, Regime, RunClass, RunSummary, Spectrum, StepRecord,
};
use vgrad_tensorboard::HistogramProto;

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

/// The per-layer statistics of a record under `<statistic>/layer<k>` tags.
fn layer_scalars(layer: &LayerRecord) -> Scalars {
    let k = layer.layer;
    let mut out: Vec<(String, f32)> = [
        ("grad_mean_abs", layer.grad_mean_abs),
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
    let mut histograms = Vec::new();
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
/// collapsed or diverged).
pub fn final_scalars(summary: &RunSummary) -> Scalars {
    let regime = |r: Option<Regime>| r.map_or(f64::NAN, Regime::code);
    let trained = f64::from(u8::from(summary.class() == RunClass::Trained));
    let measured = [
        ("test_acc", summary.test_acc),
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
    ];
    measured
        .into_iter()
        .chain(classes.into_iter().filter(|(_, v)| !v.is_nan()))
        .map(|(tag, v)| (tag.to_string(), v as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
