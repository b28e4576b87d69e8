//! How the runs ended (trained, collapsed or diverged) and how well the trained ones
//! classify. Every other measure over training reads the trained runs alone, so this is
//! what a reader needs first.

use vgrad_record::{Regime, RunClass};

use crate::Scenario;
use crate::format::{accuracy, and_list, count, percent, sig};
use crate::measures::Analysis;
use crate::stats::{AccuracySummary, geo_mean, mean};
use vgrad_record::StepRecord;
use vgrad_record::class::{error_factor, error_factor_over_training};

/// A scenario's runs by how they ended, and the trained runs' accuracies.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcomes {
    /// Finished runs per class, in the order of [`RunClass::ALL`].
    pub counts: [usize; 3],
    /// Runs whose process failed (no summary).
    pub failed: usize,
    /// Runs not on disk (yet).
    pub missing: usize,
    /// Test accuracy of the trained runs.
    pub accuracy: Option<AccuracySummary>,
    /// Mean test accuracy of the collapsed runs.
    pub collapsed_accuracy: Option<f64>,
    /// The collapsed runs' error factor at step 0 and over training (geometric means
    /// over those runs whose factor is positive).
    pub collapsed_factors: (Option<f64>, Option<f64>),
    /// The collapsed runs' post's decay ratio at step 0 and at the last logged step
    /// (geometric means).
    pub collapsed_ratios: (Option<f64>, Option<f64>),
    /// Mean training-batch accuracy of the trained runs at each logged step.
    pub train_curve: Vec<(usize, f64)>,
    /// The geometric mean over the trained runs of the loss on each logged batch.
    pub loss_curve: Vec<(usize, f64)>,
    /// Mean validation accuracy of the trained runs at the steps it was measured, then
    /// at the end; empty where it was measured at the end only.
    pub val_curve: Vec<(usize, f64)>,
}

impl Outcomes {
    /// The outcomes of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        let trained: Vec<_> = scenario.trained().collect();
        let accs: Vec<f64> = trained.iter().map(|(_, s)| s.test_acc).collect();
        let steps = scenario.trained_steps();
        let train_curve = super::per_step(&steps, mean, |r| Some(r.train_acc));
        let loss_curve = super::per_step(&steps, crate::stats::geo_mean, |r| Some(r.loss));
        let mut val_curve = super::per_step(&steps, mean, |r| r.val_acc);
        if !val_curve.is_empty()
            && let Some(end) = mean(trained.iter().map(|(_, s)| s.val_acc))
        {
            val_curve.push((scenario.point.config.steps, end));
        }
        Self {
            counts: scenario.class_counts(),
            failed: scenario.failed(),
            missing: scenario.missing(),
            accuracy: AccuracySummary::of(&accs),
            collapsed_accuracy: mean(
                scenario
                    .of_class(RunClass::Collapsed)
                    .map(|(_, s)| s.test_acc),
            ),
            collapsed_factors: {
                let collapsed: Vec<&[StepRecord]> = scenario
                    .of_class(RunClass::Collapsed)
                    .map(|(r, _)| r.steps.as_slice())
                    .collect();
                (
                    geo_mean(collapsed.iter().filter_map(|s| error_factor(s.first()?))),
                    geo_mean(
                        collapsed
                            .iter()
                            .filter_map(|s| error_factor_over_training(s)),
                    ),
                )
            },
            collapsed_ratios: {
                let collapsed: Vec<&[StepRecord]> = scenario
                    .of_class(RunClass::Collapsed)
                    .map(|(r, _)| r.steps.as_slice())
                    .collect();
                let at = |pick: fn(&[StepRecord]) -> Option<&StepRecord>| {
                    geo_mean(
                        collapsed
                            .iter()
                            .filter_map(|s| pick(s))
                            .map(super::decay::step_ratio),
                    )
                };
                (at(<[StepRecord]>::first), at(<[StepRecord]>::last))
            },
            train_curve,
            loss_curve,
            val_curve,
        }
    }

    /// Runs of `class`.
    pub fn count(&self, class: RunClass) -> usize {
        self.counts[class as usize]
    }

    /// Runs that trained.
    pub fn trained(&self) -> usize {
        self.count(RunClass::Trained)
    }

    /// Runs that finished, whatever their class.
    pub fn finished(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The runs as the results table shows them: `10 trained`, `3 trained, 2 collapsed`.
    pub fn cell(&self) -> String {
        let mut parts: Vec<String> = RunClass::ALL
            .iter()
            .filter(|&&c| self.count(c) > 0 || c == RunClass::Trained)
            .map(|&c| format!("{} {c}", self.count(c)))
            .collect();
        if self.failed > 0 {
            parts.push(format!("{} failed", self.failed));
        }
        if self.missing > 0 {
            parts.push(format!("{} not run", self.missing));
        }
        parts.join(", ")
    }
}

/// The runs of `class` by scenario: `all 5 of **relu, layers 24**`, `3 of 5 of ...`.
fn who(a: &Analysis, class: RunClass) -> Vec<String> {
    (0..a.stats.len())
        .filter_map(|i| {
            let o = &a.stats[i].outcome;
            let n = o.count(class);
            let of = o.finished();
            (n > 0).then(|| {
                if n == of && n > 1 {
                    format!("all {n} of {}", a.named(i))
                } else {
                    format!("{n} of {of} of {}", a.named(i))
                }
            })
        })
        .collect()
}

/// The first sentence of a report: how many runs trained, which collapsed or diverged, and
/// the range of the trained runs' test accuracy.
pub fn answer(a: &Analysis) -> Option<String> {
    let total: usize = a.stats.iter().map(|s| s.outcome.finished()).sum();
    if total == 0 {
        return None;
    }
    let trained: usize = a.stats.iter().map(|s| s.outcome.trained()).sum();
    let mut text = if trained == total {
        format!("All {total} runs trained")
    } else {
        let mut parts = Vec::new();
        for class in [RunClass::Collapsed, RunClass::Diverged] {
            let named = who(a, class);
            if named.is_empty() {
                continue;
            }
            let n: usize = a.stats.iter().map(|s| s.outcome.count(class)).sum();
            let list = if named.len() <= Analysis::NAMED_IN_A_SENTENCE {
                and_list(&named)
            } else {
                format!(
                    "in {} scenarios, among them {}",
                    named.len(),
                    and_list(&named[..3])
                )
            };
            parts.push(format!("{} {class}: {list}", count(n, "run", "runs")));
        }
        format!("{trained} of {total} runs trained; {}", parts.join("; "))
    };
    let ranked = ranked_by_accuracy(a);
    match ranked.as_slice() {
        [] => {}
        [only] => text.push_str(&format!(
            "; the trained runs' test accuracy is {}",
            accuracy(a.stats[*only].outcome.accuracy)
        )),
        [low, .., high] => text.push_str(&format!(
            "; the trained runs' test accuracy ranges from {} under {} to {} under {}",
            accuracy(a.stats[*low].outcome.accuracy),
            a.named(*low),
            accuracy(a.stats[*high].outcome.accuracy),
            a.named(*high),
        )),
    }
    text.push('.');
    Some(text)
}

/// The scenarios with trained runs, by mean test accuracy, lowest first.
pub fn ranked_by_accuracy(a: &Analysis) -> Vec<usize> {
    let mut with: Vec<usize> = a.with_trained();
    let acc = |i: &usize| a.stats[*i].outcome.accuracy.map_or(f64::NAN, |x| x.mean);
    with.sort_by(|x, y| acc(x).total_cmp(&acc(y)));
    with
}

/// Where runs collapsed: what their accuracy says (for the explanations).
pub fn explanations(a: &Analysis) -> Vec<String> {
    let collapsed: Vec<f64> = a
        .stats
        .iter()
        .filter_map(|s| {
            let n = s.outcome.count(RunClass::Collapsed);
            s.outcome.collapsed_accuracy.map(|m| m * n as f64)
        })
        .collect();
    let n: usize = a
        .stats
        .iter()
        .map(|s| s.outcome.count(RunClass::Collapsed))
        .sum();
    if n == 0 {
        return Vec::new();
    }
    let mean_acc = collapsed.iter().sum::<f64>() / n as f64;
    let mut out = vec![format!(
        "The {} that collapsed end at a mean test accuracy of {} (a guess gets {}): they are averaged into no measure over training and no accuracy, and are counted apart in the results table.",
        count(n, "run", "runs"),
        percent(mean_acc),
        percent(vgrad_record::class::chance_accuracy()),
    )];
    let frozen: Vec<String> = a
        .stats
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let (start, training) = s.outcome.collapsed_factors;
            let (start, training) = (start?, training?);
            let (from, to) = (Regime::of(start)?, Regime::of(training)?);
            let ratios = match s.outcome.collapsed_ratios {
                (Some(first), Some(last)) => format!(
                    "; the post's decay ratio {} at step 0 and {} at the last step",
                    sig(first, 3),
                    sig(last, 3)
                ),
                _ => String::new(),
            };
            Some(if from == to {
                format!(
                    "{} ({from} throughout: {} per layer at step 0, {} over training{ratios})",
                    a.named(i),
                    sig(start, 2),
                    sig(training, 2)
                )
            } else {
                format!(
                    "{} (from {from} at {} to {to} at {}{ratios})",
                    a.named(i),
                    sig(start, 2),
                    sig(training, 2)
                )
            })
        })
        .collect();
    if !frozen.is_empty() && frozen.len() <= Analysis::NAMED_IN_A_SENTENCE {
        out.push(format!(
            "The collapsed runs' own error, over the training they did not learn from: {}.",
            and_list(&frozen)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, over};

    #[test]
    fn a_collapsed_seed_is_counted_apart_and_left_out_of_the_accuracy() {
        // Scenario 1, seed 1 ends at 12%: collapsed. Its scenario's accuracy is seed 0's.
        let (sweep, scenarios) = over(&["sigmoid", "relu"], |i, seed| Spec {
            test_acc: if i == 1 && seed == 1 {
                0.12
            } else {
                0.6 + 0.1 * i as f64
            },
            ..Spec::new(seed)
        });
        let a = Analysis::new(&sweep, &scenarios);
        let relu = &a.stats[1].outcome;
        assert_eq!(relu.cell(), "1 trained, 1 collapsed");
        assert_eq!(relu.accuracy.unwrap().n, 1);
        assert!((relu.accuracy.unwrap().mean - 0.7).abs() < 1e-12);
        let text = answer(&a).unwrap();
        assert_eq!(
            text,
            "3 of 4 runs trained; 1 run collapsed: 1 of 2 of **relu**; the trained runs' \
             test accuracy ranges from 60.0% [60.0%, 60.0%] under **sigmoid** to 70.0% under \
             **relu**."
        );
        assert!(explanations(&a)[0].contains("mean test accuracy of 12.0%"));
        // The same seed at 16% trained: the sentence and the table change together.
        let (sweep, scenarios) = over(&["sigmoid", "relu"], |i, seed| Spec {
            test_acc: if i == 1 && seed == 1 {
                0.16
            } else {
                0.6 + 0.1 * i as f64
            },
            ..Spec::new(seed)
        });
        let a = Analysis::new(&sweep, &scenarios);
        assert_eq!(a.stats[1].outcome.cell(), "2 trained");
        assert!(answer(&a).unwrap().starts_with("All 4 runs trained;"));
        assert!(explanations(&a).is_empty());
    }

    #[test]
    fn diverged_runs_are_named() {
        let (sweep, scenarios) = over(&["sigmoid"], |_, seed| Spec {
            status: if seed == 0 {
                vgrad_record::RunStatus::Diverged { step: 5 }
            } else {
                vgrad_record::RunStatus::Ok
            },
            test_acc: if seed == 0 { f64::NAN } else { 0.8 },
            ..Spec::new(seed)
        });
        let a = Analysis::new(&sweep, &scenarios);
        assert_eq!(a.stats[0].outcome.cell(), "1 trained, 1 diverged");
        assert_eq!(
            answer(&a).unwrap(),
            "1 of 2 runs trained; 1 run diverged: 1 of 2 of **sigmoid**; the trained runs' \
             test accuracy is 80.0%."
        );
    }
}
