//! The reference post's measure: the decay ratio of the mean absolute weight gradient, last
//! layer over first (each averaged over a run's logged steps first, as the post's figures
//! are read). Its numbers are the contract of the reference experiment.

use vgrad_record::profile::decay_ratio;
use vgrad_record::{Regime, StepRecord};

use crate::Scenario;
use crate::document::{Section, Table};
use crate::format::{and_list, geometric, sig};
use crate::measures::{Analysis, per_step};
use crate::stats::{Split, geo_mean};

/// The weight-gradient decay ratio of one logged step.
pub fn step_ratio(s: &StepRecord) -> f64 {
    decay_ratio(&s.layers.iter().map(|l| l.grad_mean_abs).collect::<Vec<_>>())
}

/// A scenario's decay ratios.
#[derive(Debug, Clone, PartialEq)]
pub struct Decay {
    /// The post's ratio, over the logged steps of each trained run.
    pub ratio: Split,
    /// The ratio at step 0, over every finished run.
    pub start: Split,
    /// The ratio at the last logged step, over the trained runs.
    pub end: Split,
    /// The geometric mean over the trained runs of each logged step's first layer's
    /// mean |dC/dW|: the first of the post's two figures.
    pub grad_first: Vec<(usize, f64)>,
    /// The same of the last layer: the post's second figure.
    pub grad_last: Vec<(usize, f64)>,
}

impl Decay {
    /// The decay ratios of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        let trained = scenario.trained_steps();
        let at = |steps: &[&[StepRecord]], pick: fn(&[StepRecord]) -> Option<&StepRecord>| {
            let values: Vec<f64> = steps
                .iter()
                .filter_map(|s| pick(s))
                .map(step_ratio)
                .collect();
            Split::of(&values)
        };
        Self {
            ratio: Split::of(
                &scenario
                    .trained()
                    .map(|(_, s)| s.profile.decay_ratio)
                    .collect::<Vec<_>>(),
            ),
            start: at(&scenario.all_steps(), <[StepRecord]>::first),
            end: at(&trained, <[StepRecord]>::last),
            grad_first: per_step(&trained, geo_mean, |s| {
                Some(s.layers.first()?.grad_mean_abs)
            }),
            grad_last: per_step(&trained, geo_mean, |s| Some(s.layers.last()?.grad_mean_abs)),
        }
    }
}

/// The ratio as a cell, with the runs a geometric mean cannot take.
pub fn cell(s: &Split) -> String {
    let mut text = geometric(s.positive);
    if s.zero + s.undefined > 0 {
        text.push_str(&format!(
            " ({} of {} runs without a ratio: a layer's gradient is 0)",
            s.zero + s.undefined,
            s.n()
        ));
    }
    text
}

/// The appendix's table of the ratio at the start, averaged, and at the end.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("The post's decay ratio at the start and the end of training");
    s.text(
        "The reference post's measure, mean |dC/dW| of the last layer over the first: at step 0 \
         (every run), averaged over the logged steps as the post does (trained runs) and at the \
         last logged step (trained runs); geometric mean over seeds with its 95% interval. It \
         sees the weights' gradients, which the layers' inputs scale as much as the error does, \
         so it can read flat where the error vanishes (Glorot & Bengio 2010, Section 4.2.1).",
    );
    let mut t = Table::new(["scenario", "step 0", "averaged (the post's)", "last step"]);
    for i in a.with_finished() {
        let d = &a.stats[i].decay;
        t.row([a.label(i), cell(&d.start), cell(&d.ratio), cell(&d.end)]);
    }
    s.table(t);
    s
}

/// The decay ratio of a network of `layers` dense layers read per layer, in the error
/// factor's sense (toward the input): ratio^(-1 / (L - 1)); `None` for one layer.
pub fn per_layer_factor(ratio: f64, layers: usize) -> Option<f64> {
    let hops = layers.checked_sub(1).filter(|&h| h > 0)?;
    Some(ratio.powf(-1.0 / hops as f64))
}

/// Where the weight-gradient ratio misses what the error does at initialisation: the
/// error vanishes or explodes, while the ratio, read per layer, looks stable.
pub fn explanations(a: &Analysis) -> Vec<String> {
    let blind: Vec<String> = a
        .with_finished()
        .into_iter()
        .filter_map(|i| {
            let st = &a.stats[i];
            let error = st.regime.start.regime()?;
            let ratio = st.decay.start.positive?.geo_mean;
            let per_layer = per_layer_factor(ratio, a.scenarios[i].point.config.layers)?;
            (error != Regime::Stable && Regime::of(per_layer) == Some(Regime::Stable)).then(|| {
                format!(
                    "{} (the error {}, a factor of {} per layer; the ratio {})",
                    a.named(i),
                    super::regime::verb(error),
                    sig(st.regime.start.value(), 2),
                    sig(ratio, 3)
                )
            })
        })
        .collect();
    if blind.is_empty() || blind.len() > Analysis::NAMED_IN_A_SENTENCE {
        return Vec::new();
    }
    vec![format!(
        "At initialisation the post's ratio does not see the error's regime under {}. A layer's weight gradient is its input times its error, and where the forward signal shrinks or grows layer by layer as the error does the other way, the two cancel (Glorot & Bengio 2010, Section 4.2.1).",
        and_list(&blind)
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, over};

    #[test]
    fn the_ratio_is_called_blind_only_where_it_reads_flat_while_the_error_is_not() {
        let (sweep, mut scenarios) = over(&["relu"], |_, seed| Spec {
            factor_start: 0.5,
            ..Spec::new(seed)
        });
        // As synthesised, the weight gradients follow the error: the ratio sees it.
        let a = Analysis::new(&sweep, &scenarios);
        assert!(explanations(&a).is_empty());
        // Flat weight gradients at step 0 with the same vanishing error.
        for run in &mut scenarios[0].runs {
            for layer in &mut run.steps[0].layers {
                layer.grad_mean_abs = 1e-3;
            }
        }
        let a = Analysis::new(&sweep, &scenarios);
        let text = explanations(&a).join(" ");
        assert!(
            text.contains(
                "under **relu** (the error vanishes, a factor of 0.50 per layer; the ratio 1.00)"
            ),
            "{text}"
        );
        // The table gives the same ratio at step 0.
        assert!(
            section(&a)
                .markdown(2, "")
                .contains("| relu | 1.00 [1.00, 1.00] |")
        );
    }
}
