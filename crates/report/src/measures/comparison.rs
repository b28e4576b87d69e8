//! Named scenarios against their baselines (`setting::baseline_of`: the plain network of
//! the same activation and weight variance), and ranked at the greatest depth: what a
//! remedy or an optimizer changes, with the intervals that back it.

use vgrad_sweep::SCENARIO;

use crate::document::{Section, Table};
use crate::format::{accuracy, and_list, sig};
use crate::measures::Analysis;
use crate::setting::{baseline_of, deepest, varies};

/// One scenario against its baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The scenario.
    pub scenario: usize,
    /// Its baseline.
    pub baseline: usize,
    /// Test accuracy (trained runs) minus the baseline's, in points, and whether the two
    /// 95% intervals are apart; `None` where either has no trained run.
    pub accuracy: Option<(f64, bool)>,
    /// The error factor over training over the baseline's, and whether the intervals are
    /// apart.
    pub factor: Option<(f64, bool)>,
    /// Whether one of the two has trained runs and the other none.
    pub trains: Option<Trains>,
}

/// Which of a scenario and its baseline trains, where only one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trains {
    /// The scenario trains, its baseline does not.
    Scenario,
    /// The baseline trains, the scenario does not.
    Baseline,
}

/// Every named scenario that has a baseline, against it, in grid order.
pub fn comparisons(a: &Analysis) -> Vec<Comparison> {
    (0..a.scenarios.len())
        .filter_map(|i| {
            let b = baseline_of(a.scenarios, i)?;
            let (si, sb) = (&a.stats[i], &a.stats[b]);
            let accuracy = match (si.outcome.accuracy, sb.outcome.accuracy) {
                (Some(x), Some(y)) => Some((100.0 * (x.mean - y.mean), x.apart_from(&y))),
                _ => None,
            };
            let factor = match (
                si.regime.training.split.positive,
                sb.regime.training.split.positive,
            ) {
                (Some(x), Some(y)) => Some((
                    x.geo_mean / y.geo_mean,
                    !x.overlaps(&y) && !x.ci_low.is_nan(),
                )),
                _ => None,
            };
            let (ti, tb) = (si.outcome.trained() > 0, sb.outcome.trained() > 0);
            let finished = si.outcome.finished() > 0 && sb.outcome.finished() > 0;
            let trains = match (ti, tb) {
                (true, false) if finished => Some(Trains::Scenario),
                (false, true) if finished => Some(Trains::Baseline),
                _ => None,
            };
            Some(Comparison {
                scenario: i,
                baseline: b,
                accuracy,
                factor,
                trains,
            })
        })
        .collect()
}

/// A change as a cell: `+12.3 points` or `1.4x`, in bold where the intervals are apart.
fn change(c: Option<(f64, bool)>, points: bool) -> String {
    let Some((by, clear)) = c else {
        return "n/a".into();
    };
    let text = if points {
        format!("{by:+.1} points")
    } else {
        format!("{}x", sig(by, 3))
    };
    if clear { format!("**{text}**") } else { text }
}

/// The table of each scenario against its baseline.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Each scenario against its baseline");
    let rows = comparisons(a);
    if rows.is_empty() {
        return s;
    }
    s.text(
        "A scenario's baseline is the first plain network of the sweep file (no normalisation, \
         no skips, Gaussian or uniform weights) with the same activation and the same weight \
         variance sigma_w^2 of the hidden layers, at the same setting of the axes: an \
         orthogonal init is thus measured against the Gaussian init of its gain. Accuracies \
         and factors over training are the trained runs'; a change is in **bold** where the two \
         95% intervals are apart.",
    );
    let mut t = Table::new([
        "scenario",
        "baseline",
        "runs",
        "test accuracy",
        "vs baseline",
        "error factor, training",
        "vs baseline",
    ]);
    for c in rows {
        let st = &a.stats[c.scenario];
        t.row([
            a.label(c.scenario),
            a.label(c.baseline),
            st.outcome.cell(),
            accuracy(st.outcome.accuracy),
            match c.trains {
                Some(Trains::Scenario) => "**trains; the baseline does not**".into(),
                Some(Trains::Baseline) => "**does not train; the baseline does**".into(),
                None => change(c.accuracy, true),
            },
            st.regime.training.cell(),
            change(c.factor, false),
        ]);
    }
    s.table(t);
    s
}

/// For sweeps of named scenarios: at the greatest depth, which trains best, and which
/// scenarios clearly beat or trail their baselines there.
pub fn answer(a: &Analysis) -> Option<String> {
    if !a.sweep.varies(SCENARIO) {
        return None;
    }
    let depth = deepest(a.scenarios)?;
    let at: Vec<usize> = (0..a.scenarios.len())
        .filter(|&i| a.scenarios[i].point.config.layers == depth)
        .collect();
    let by_acc = |i: &usize| {
        a.stats[*i]
            .outcome
            .accuracy
            .map_or(f64::NEG_INFINITY, |x| x.mean)
    };
    let best = at
        .iter()
        .copied()
        .filter(|i| a.stats[*i].outcome.accuracy.is_some())
        .max_by(|x, y| by_acc(x).total_cmp(&by_acc(y)));
    let name = |i: usize| {
        if varies(a.scenarios, |c| c.layers) {
            crate::format::bold(&a.scenarios[i].point.label_without("layers"))
        } else {
            a.named(i)
        }
    };
    let at_depth = if varies(a.scenarios, |c| c.layers) {
        format!("At {depth} layers")
    } else {
        "Here".to_string()
    };
    let mut text = match best {
        Some(b) => format!(
            "{at_depth} {} trains best ({})",
            name(b),
            accuracy(a.stats[b].outcome.accuracy)
        ),
        None => format!("{at_depth} no scenario has a trained run"),
    };
    let rows: Vec<Comparison> = comparisons(a)
        .into_iter()
        .filter(|c| at.contains(&c.scenario))
        .collect();
    let clearly = |better: bool| -> Vec<String> {
        rows.iter()
            .filter_map(|c| {
                let (by, clear) = c.accuracy?;
                (clear && (by > 0.0) == better)
                    .then(|| format!("{} ({by:+.1} points)", name(c.scenario)))
            })
            .collect()
    };
    let (up, down) = (clearly(true), clearly(false));
    let rescued: Vec<String> = rows
        .iter()
        .filter(|c| c.trains == Some(Trains::Scenario))
        .map(|c| name(c.scenario))
        .collect();
    let untrained: Vec<String> = at
        .iter()
        .filter(|&&i| a.stats[i].outcome.finished() > 0 && a.stats[i].outcome.trained() == 0)
        .map(|&i| name(i))
        .collect();
    let listed = |v: &[String]| {
        if v.is_empty() || v.len() > 4 {
            String::new()
        } else {
            format!(" ({})", and_list(v))
        }
    };
    match (up.len(), down.len()) {
        _ if rows.is_empty() => {}
        (0, 0) => text.push_str("; where a scenario and its baseline both train, none is clearly more or less accurate"),
        (u, d) => text.push_str(&format!(
            "; where a scenario and its baseline both train, {u} clearly raise the test accuracy{} and {d} clearly lower it{}",
            listed(&up),
            listed(&down)
        )),
    }
    if !rescued.is_empty() {
        text.push_str(&format!(
            "; {} train{} where {} baseline does not{}",
            rescued.len(),
            if rescued.len() == 1 { "s" } else { "" },
            if rescued.len() == 1 { "its" } else { "their" },
            listed(&rescued)
        ));
    }
    if !untrained.is_empty() && untrained.len() <= 4 {
        text.push_str(&format!("; no run trains under {}", and_list(&untrained)));
    }
    text.push('.');
    Some(text)
}

/// Where the optimizer varies: what training does to the post's ratio under each, for
/// networks that start from the same weights.
pub fn explanations(a: &Analysis) -> Vec<String> {
    if !varies(a.scenarios, |c| c.optimizer) {
        return Vec::new();
    }
    let parts: Vec<String> = a
        .with_trained()
        .into_iter()
        .filter_map(|i| {
            let d = &a.stats[i].decay;
            let (start, avg) = (d.start.positive?.geo_mean, d.ratio.positive?.geo_mean);
            Some(format!(
                "{} from {} at step 0 to {} averaged ({}x)",
                a.named(i),
                sig(start, 3),
                sig(avg, 3),
                sig(avg / start, 2)
            ))
        })
        .collect();
    if parts.is_empty() || parts.len() > 2 * Analysis::NAMED_IN_A_SENTENCE {
        return Vec::new();
    }
    vec![format!(
        "What training does to the post's decay ratio, from the initial weights to its average over training: under {}.",
        and_list(&parts)
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, named_with};

    /// Plain ReLU, He-normal and batch norm; the plain network's runs end at `plain`.
    fn remedies(plain: f64) -> String {
        let (sweep, scenarios) = named_with(
            &[
                ("relu", "activation = \"relu\""),
                (
                    "relu, batch norm",
                    "activation = \"relu\"\nnorm = \"batch\"",
                ),
            ],
            |i, seed| Spec {
                test_acc: if i == 0 {
                    plain
                } else {
                    0.9 + 0.01 * seed as f64
                },
                ..Spec::new(seed)
            },
        );
        let a = Analysis::new(&sweep, &scenarios);
        format!("{}\n{}", answer(&a).unwrap(), section(&a).markdown(2, ""))
    }

    #[test]
    fn a_remedy_that_trains_where_its_baseline_collapses_is_named_so() {
        let text = remedies(0.1);
        assert!(
            text.contains("1 trains where its baseline does not (**relu, batch norm**)"),
            "{text}"
        );
        assert!(
            text.contains("| **trains; the baseline does not** |"),
            "{text}"
        );
        // The baseline trains at 50%: now a clear gain in points, in the text and the table.
        let text = remedies(0.5);
        assert!(!text.contains("where its baseline does not"), "{text}");
        assert!(
            text.contains(
                "1 clearly raise the test accuracy (**relu, batch norm** (+40.5 points))"
            ),
            "{text}"
        );
        assert!(text.contains("| **+40.5 points** |"), "{text}");
    }
}
