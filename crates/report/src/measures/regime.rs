//! The back-propagated error across the hidden layers: its per-layer factor
//! (`vgrad_record::class::error_factor`) and regime (vanishing, stable, exploding), at
//! initialisation over every run and over training over the trained runs.

use vgrad_record::Regime;
use vgrad_record::class::{error_factor, error_factor_over_training};

use crate::Scenario;
use crate::format::{and_list, geometric, sig};
use crate::measures::Analysis;
use crate::setting::{groups, without_depth};
use crate::stats::{Split, geo_mean};

/// A per-layer error factor over a scenario's runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Factor {
    /// The runs' factors: the geometric summary of the positive ones, and how many were
    /// 0 (no error reaches the first hidden layer) or undefined.
    pub split: Split,
    /// Each run's regime, counted in the order of [`Regime::ALL`].
    pub runs: [usize; 3],
}

impl Factor {
    /// The factor of runs whose factors are `values` (`None` where a run has none).
    pub fn of(values: &[Option<f64>]) -> Self {
        let defined: Vec<f64> = values.iter().flatten().copied().collect();
        let mut runs = [0; 3];
        for regime in defined.iter().filter_map(|&f| Regime::of(f)) {
            runs[regime as usize] += 1;
        }
        Self {
            split: Split::of(&defined),
            runs,
        }
    }

    /// The scenario's regime: that of the geometric mean of its positive factors, or
    /// vanishing where every run's factor is 0; `None` without any.
    pub fn regime(&self) -> Option<Regime> {
        match self.split.positive {
            Some(g) => Regime::of(g.geo_mean),
            None if self.split.zero > 0 => Some(Regime::Vanishing),
            None => None,
        }
    }

    /// Whether every run with a factor is in the scenario's regime.
    pub fn unanimous(&self) -> bool {
        self.regime()
            .is_some_and(|r| self.runs[r as usize] == self.runs.iter().sum::<usize>())
    }

    /// The geometric mean, `n/a` without one.
    pub fn value(&self) -> f64 {
        self.split.positive.map_or(f64::NAN, |g| g.geo_mean)
    }

    /// The factor as the results table shows it: `0.24 [0.23, 0.25] vanishing`, with the
    /// runs' regimes where they differ and the runs whose error never reaches layer 1.
    pub fn cell(&self) -> String {
        self.cell_reaching("layer 1")
    }

    /// [`Factor::cell`], naming what the error may fail to reach: `layer 1`, or `time
    /// step 1` through time.
    pub fn cell_reaching(&self, first: &str) -> String {
        let Some(regime) = self.regime() else {
            return "n/a".into();
        };
        let value = if self.split.positive.is_some() {
            geometric(self.split.positive)
        } else {
            "0".into()
        };
        let mut text = format!("{value} {regime}");
        if !self.unanimous() {
            let each: Vec<String> = Regime::ALL
                .iter()
                .filter(|r| self.runs[**r as usize] > 0)
                .map(|r| format!("{} {r}", self.runs[*r as usize]))
                .collect();
            text.push_str(&format!(" (runs: {})", each.join(", ")));
        }
        if self.split.zero > 0 {
            text.push_str(&format!(
                "; in {} of {} runs no error reaches {first} at a logged step",
                self.split.zero,
                self.split.n()
            ));
        }
        text
    }
}

/// A scenario's error factors and the error's size per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct RegimeStats {
    /// At step 0, over every finished run.
    pub start: Factor,
    /// Over training (the logged steps after step 0), over the trained runs.
    pub training: Factor,
    /// The geometric mean over the trained runs of each logged step's factor.
    pub curve: Vec<(usize, f64)>,
}

impl RegimeStats {
    /// The factors of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        let all = scenario.all_steps();
        let trained = scenario.trained_steps();
        let start: Vec<Option<f64>> = all
            .iter()
            .map(|s| s.first().and_then(error_factor))
            .collect();
        let training: Vec<Option<f64>> = trained
            .iter()
            .map(|s| error_factor_over_training(s))
            .collect();
        let curve = super::per_step(&trained, geo_mean, error_factor);
        Self {
            start: Factor::of(&start),
            training: Factor::of(&training),
            curve,
        }
    }
}

/// What the error does in `regime`, as a verb phrase.
pub fn verb(regime: Regime) -> &'static str {
    match regime {
        Regime::Vanishing => "vanishes",
        Regime::Stable => "keeps its size",
        Regime::Exploding => "explodes",
    }
}

/// The scenarios (of `members`) in each regime of `pick`, as a clause: `vanishes under
/// **sigmoid** (0.21 per layer [0.20, 0.22]) and keeps its size under **relu** (...)`,
/// or counts where there are too many to name.
fn clause(a: &Analysis, members: &[usize], pick: fn(&RegimeStats) -> &Factor) -> Option<String> {
    let with: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&i| pick(&a.stats[i].regime).regime().is_some())
        .collect();
    if with.is_empty() {
        return None;
    }
    let per: Vec<(Regime, Vec<usize>)> = Regime::ALL
        .iter()
        .map(|&r| {
            let of = with
                .iter()
                .copied()
                .filter(|&i| pick(&a.stats[i].regime).regime() == Some(r))
                .collect();
            (r, of)
        })
        .filter(|(_, of): &(Regime, Vec<usize>)| !of.is_empty())
        .collect();
    if with.len() > Analysis::NAMED_IN_A_SENTENCE {
        let counts: Vec<String> = per
            .iter()
            .map(|(r, of)| format!("{} in {}", verb(*r), of.len()))
            .collect();
        return Some(format!("{} of {} scenarios", and_list(&counts), with.len()));
    }
    let mut first = true;
    let parts: Vec<String> = per
        .iter()
        .map(|(r, of)| {
            let each: Vec<String> = of
                .iter()
                .map(|&i| {
                    let f = pick(&a.stats[i].regime);
                    let (unit, first_unit) = match a.unit() {
                        "layer" => ("layer", "layer 1"),
                        _ => ("time step", "time step 1"),
                    };
                    let value = match f.split.positive {
                        Some(_) => geometric(f.split.positive),
                        None => format!("no error reaches {first_unit}"),
                    };
                    let value = if std::mem::take(&mut first) && f.split.positive.is_some() {
                        format!("a factor of {value} per {unit}")
                    } else {
                        value
                    };
                    format!("{} ({value})", a.named(i))
                })
                .collect();
            format!("{} under {}", verb(*r), and_list(&each))
        })
        .collect();
    Some(and_list(&parts))
}

/// The sentence on the regimes at initialisation and over training.
pub fn answer(a: &Analysis) -> Option<String> {
    let all: Vec<usize> = (0..a.stats.len()).collect();
    let start = clause(a, &all, |r| &r.start)?;
    let error = match a.unit() {
        "layer" => "the back-propagated error",
        _ => "the error back-propagated through time",
    };
    let mut text = format!("At initialisation {error} {start}");
    if let Some(training) = clause(a, &all, |r| &r.training) {
        text.push_str(&format!("; over training (trained runs) it {training}"));
    }
    if all.len() > Analysis::NAMED_IN_A_SENTENCE {
        text.push_str(" (the results table gives each)");
    }
    text.push('.');
    Some(text)
}

/// Where training moves the error to another regime, and where it does not, grouped by
/// the change.
pub fn explanations(a: &Analysis) -> Vec<String> {
    let mut moved: Vec<((Regime, Regime), Vec<String>)> = Vec::new();
    let mut kept: Vec<(Regime, Vec<String>)> = Vec::new();
    let mut total = 0;
    for i in 0..a.stats.len() {
        let r = &a.stats[i].regime;
        let (Some(from), Some(to)) = (r.start.regime(), r.training.regime()) else {
            continue;
        };
        total += 1;
        if from == to {
            match kept.iter_mut().find(|(k, _)| *k == from) {
                Some((_, of)) => of.push(a.named(i)),
                None => kept.push((from, vec![a.named(i)])),
            }
        } else {
            let item = format!(
                "{} ({} to {})",
                a.named(i),
                sig(r.start.value(), 2),
                sig(r.training.value(), 2)
            );
            match moved.iter_mut().find(|(k, _)| *k == (from, to)) {
                Some((_, of)) => of.push(item),
                None => moved.push(((from, to), vec![item])),
            }
        }
    }
    let changed: usize = moved.iter().map(|(_, of)| of.len()).sum();
    if changed == 0 {
        return Vec::new();
    }
    if total > 2 * Analysis::NAMED_IN_A_SENTENCE {
        return vec![format!(
            "Training moves the error to another regime in {changed} of {total} scenarios (the results table gives each)."
        )];
    }
    let moves: Vec<String> = moved
        .iter()
        .map(|((from, to), of)| format!("from {from} to {to} under {}", and_list(of)))
        .collect();
    let mut text = format!("Training moves the error {}", moves.join("; "));
    if !kept.is_empty() {
        let stays: Vec<String> = kept
            .iter()
            .map(|(r, of)| format!("{r} under {}", and_list(of)))
            .collect();
        text.push_str(&format!("; it stays {}", stays.join(" and ")));
    }
    text.push('.');
    vec![text]
}

/// For sweeps over depth: how the per-layer factor at initialisation and the regime
/// change with depth, per setting of the other fields.
pub fn depth_trend(a: &Analysis) -> Option<String> {
    if !crate::setting::varies(a.scenarios, |c| c.layers) {
        return None;
    }
    let parts: Vec<String> = groups(a.scenarios, without_depth)
        .into_iter()
        .filter_map(|(_, members)| {
            let with: Vec<(usize, usize)> = members
                .iter()
                .map(|&i| (a.scenarios[i].point.config.layers, i))
                .filter(|&(_, i)| a.stats[i].regime.start.regime().is_some())
                .collect();
            let (shallow, deep) = (with.iter().min()?, with.iter().max()?);
            if shallow.0 == deep.0 {
                return None;
            }
            let regimes: Vec<Regime> = with
                .iter()
                .filter_map(|&(_, i)| a.stats[i].regime.start.regime())
                .collect();
            let name = a.scenarios[members[0]].point.label_without("layers");
            let name = crate::format::bold(&name);
            let values = with.iter().map(|&(_, i)| a.stats[i].regime.start.value());
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
            let span = if sig(lo, 2) == sig(hi, 2) {
                format!("{} per layer", sig(lo, 2))
            } else {
                format!("{} to {} per layer", sig(lo, 2), sig(hi, 2))
            };
            Some(if regimes.iter().all(|r| *r == regimes[0]) {
                format!(
                    "it {} at every depth under {name} ({span})",
                    verb(regimes[0])
                )
            } else {
                let at = |i: usize| {
                    let (l, s) = with[i];
                    format!(
                        "{} at {l} layers",
                        a.stats[s].regime.start.regime().map_or("n/a", |r| r.name())
                    )
                };
                format!(
                    "under {name} it goes from {} to {} ({span})",
                    at(0),
                    at(with.len() - 1)
                )
            })
        })
        .collect();
    (!parts.is_empty() && parts.len() <= Analysis::NAMED_IN_A_SENTENCE).then(|| {
        format!(
            "With depth, at initialisation, {}: the per-layer factor is a property of the activation and the weights, and the error's change over the whole network compounds it once per added layer.",
            and_list(&parts)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, over};

    /// The analysis of three networks whose error's per-layer factor is `factors[i]`
    /// at every step.
    fn three(factors: [f64; 3]) -> (String, Vec<String>) {
        let (sweep, scenarios) = over(&["sigmoid", "tanh", "relu"], |i, seed| Spec {
            factor_start: factors[i],
            factor_training: factors[i],
            ..Spec::new(seed)
        });
        let a = Analysis::new(&sweep, &scenarios);
        let cells = a.stats.iter().map(|s| s.regime.start.cell()).collect();
        (answer(&a).unwrap(), cells)
    }

    #[test]
    fn vanishing_stable_and_exploding_networks_are_named_as_the_table_classes_them() {
        let (text, cells) = three([0.5, 1.0, 2.0]);
        assert!(
            cells[0].ends_with(" vanishing") && cells[0].starts_with("0.5"),
            "{cells:?}"
        );
        assert!(
            cells[1].ends_with(" stable") && cells[2].ends_with(" exploding"),
            "{cells:?}"
        );
        assert!(
            text.starts_with(
                "At initialisation the back-propagated error vanishes under **sigmoid** (a factor of 0.500"
            ),
            "{text}"
        );
        assert!(text.contains("keeps its size under **tanh**"), "{text}");
        assert!(text.contains("explodes under **relu**"), "{text}");
        // Across the thresholds: each network changes class, in the table and the text.
        let (text, cells) = three([0.82, 1.3, 0.75]);
        assert!(
            cells[0].ends_with(" stable") && cells[1].ends_with(" exploding"),
            "{cells:?}"
        );
        assert!(cells[2].ends_with(" vanishing"), "{cells:?}");
        assert!(text.contains("keeps its size under **sigmoid**"), "{text}");
        assert!(text.contains("explodes under **tanh**"), "{text}");
        assert!(text.contains("vanishes under **relu**"), "{text}");
        assert!(!text.contains("ratio of"), "no threshold restated: {text}");
    }

    #[test]
    fn runs_that_disagree_are_counted_and_a_dead_first_layer_is_not_averaged_in() {
        let (sweep, scenarios) = over(&["relu"], |_, seed| Spec {
            factor_start: if seed == 0 { 0.5 } else { 1.0 },
            ..Spec::new(seed)
        });
        let a = Analysis::new(&sweep, &scenarios);
        let cell = a.stats[0].regime.start.cell();
        assert!(cell.contains("(runs: 1 vanishing, 1 stable)"), "{cell}");
        let (sweep, scenarios) = over(&["relu"], |_, seed| Spec {
            factor_start: if seed == 0 { 0.0 } else { 1.0 },
            ..Spec::new(seed)
        });
        let a = Analysis::new(&sweep, &scenarios);
        let f = a.stats[0].regime.start;
        assert_eq!((f.split.zero, f.split.positive.unwrap().n), (1, 1));
        assert!(
            f.cell()
                .ends_with("in 1 of 2 runs no error reaches layer 1 at a logged step"),
            "{}",
            f.cell()
        );
    }

    #[test]
    fn training_moves_or_keeps_the_regime() {
        let (sweep, scenarios) = over(&["sigmoid", "relu"], |i, seed| Spec {
            factor_start: 0.5,
            factor_training: if i == 0 { 0.6 } else { 1.0 },
            ..Spec::new(seed)
        });
        let a = Analysis::new(&sweep, &scenarios);
        let text = explanations(&a).join(" ");
        assert!(
            text.contains("from vanishing to stable under **relu** (0.50 to 1.0)"),
            "{text}"
        );
        assert!(
            text.contains("it stays vanishing under **sigmoid**"),
            "{text}"
        );
    }
}
