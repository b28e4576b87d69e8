//! How far each layer's weights move in one optimizer step, relative to their size:
//! ||W_after - W_before|| / ||W_before||, over the trained runs' logged steps.

use vgrad_record::StepRecord;

use crate::Scenario;
use crate::document::Section;
use crate::format::{accuracy, and_list, sig};
use crate::measures::{Analysis, per_depth_tables, per_step};
use crate::stats::geo_mean;

/// A scenario's update-to-weight ratios.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Updates {
    /// Per layer 1..=L: per trained run the geometric mean over the logged steps where the
    /// weights moved, then the geometric mean over the runs; empty without them.
    pub ratio: Vec<Option<f64>>,
    /// Per layer, the (run, logged step) pairs where the weights did not move at all.
    pub frozen: Vec<usize>,
    /// Per layer, how many of those had an exactly zero gradient.
    pub frozen_zero_gradient: Vec<usize>,
    /// The first layer's ratio per logged step, geometric mean over the trained runs
    /// (steps where it did not move left out).
    pub curve_first: Vec<(usize, f64)>,
    /// The same for the last layer.
    pub curve_last: Vec<(usize, f64)>,
}

impl Updates {
    /// The update ratios of `scenario`'s trained runs.
    pub fn of(scenario: &Scenario) -> Self {
        let runs = scenario.trained_steps();
        let layers = scenario.point.config.layers;
        let ratio_at = |s: &StepRecord, l: usize| s.layers.get(l)?.update_ratio;
        let ratio: Vec<Option<f64>> = (0..layers)
            .map(|l| {
                geo_mean(runs.iter().filter_map(|s| {
                    geo_mean(s.iter().filter_map(|r| ratio_at(r, l)).filter(|v| *v > 0.0))
                }))
            })
            .collect();
        if ratio.iter().all(Option::is_none) {
            return Self::default();
        }
        let frozen_at = |l: usize| {
            runs.iter()
                .flat_map(|s| s.iter())
                .filter(move |r| ratio_at(r, l) == Some(0.0))
        };
        let moved = |l: usize| move |r: &StepRecord| ratio_at(r, l).filter(|v| *v > 0.0);
        Self {
            ratio,
            frozen: (0..layers).map(|l| frozen_at(l).count()).collect(),
            frozen_zero_gradient: (0..layers)
                .map(|l| frozen_at(l).filter(|r| r.layers[l].grad_l2 == 0.0).count())
                .collect(),
            curve_first: per_step(&runs, geo_mean, moved(0)),
            curve_last: per_step(&runs, geo_mean, moved(layers - 1)),
        }
    }

    /// Layer 1's ratio over layer L's.
    pub fn first_over_last(&self) -> Option<f64> {
        Some((*self.ratio.first()?)? / (*self.ratio.last()?)?)
    }
}

/// The appendix's table of the ratios, one per depth.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Update-to-weight ratio");
    let with: Vec<usize> = a
        .with_trained()
        .into_iter()
        .filter(|&i| !a.stats[i].updates.ratio.is_empty())
        .collect();
    if with.is_empty() {
        return s;
    }
    s.text(
        "How far each layer's weights move in one optimizer step relative to their size, \
         ||W_after - W_before|| / ||W_before|| (Frobenius norms): per trained run the geometric \
         mean over the logged steps where they moved, then the geometric mean over the runs. \
         Karpathy's rule of thumb puts a healthy layer near 1e-3. Under Adam a small gradient \
         still gets a step of normal size (each weight's step is its gradient over the \
         gradient's own running scale): there this ratio, not the gradient's size, says how \
         fast a layer changes.",
    );
    let tables = per_depth_tables(
        a,
        &with,
        &["layer 1 / L"],
        |d| d,
        |i| {
            let u = &a.stats[i].updates;
            let mut row = vec![u.first_over_last().map_or("n/a".into(), |v| sig(v, 3))];
            row.extend(
                u.ratio
                    .iter()
                    .map(|v| v.map_or(String::new(), |v| sig(v, 3))),
            );
            vec![row]
        },
    );
    for t in tables {
        s.table(t);
    }
    s
}

/// Under Adam (any optimizer whose `Spec::rescales_steps`): every layer's steps are of one
/// size whatever its gradient, so they do not explain differences in accuracy; and where a
/// layer of a trained run did not move.
pub fn explanations(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let adam: Vec<usize> = a
        .with_trained()
        .into_iter()
        .filter(|&i| a.scenarios[i].point.config.optimizer.spec().rescales_steps)
        .filter(|&i| a.stats[i].updates.first_over_last().is_some())
        .collect();
    let range = |values: &mut dyn Iterator<Item = f64>| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        })
    };
    if adam.len() >= 2 {
        let (ulo, uhi) = range(
            &mut adam
                .iter()
                .flat_map(|&i| a.stats[i].updates.ratio.iter().flatten().copied()),
        );
        let (glo, ghi) = range(&mut adam.iter().filter_map(|&i| {
            let g = &a.stats[i].profile.grad_mean_abs;
            Some((*g.first()?)? / (*g.last()?)?)
        }));
        let mut titles: Vec<&str> = Vec::new();
        for &i in &adam {
            let title = a.scenarios[i].point.config.optimizer.spec().title;
            if !titles.contains(&title) {
                titles.push(title);
            }
        }
        let mut text = format!(
            "Under {} every layer of every scenario moves by {} to {} of its weights per logged step, while layer 1's mean |dC/dW| is {} to {} times layer L's: each weight's step is its gradient over the gradient's own running scale",
            titles.join(" and "),
            sig(ulo, 2),
            sig(uhi, 2),
            sig(glo, 2),
            sig(ghi, 2)
        );
        let by_acc = |i: &usize| a.stats[*i].outcome.accuracy.map_or(f64::NAN, |x| x.mean);
        let worst = adam.iter().min_by(|x, y| by_acc(x).total_cmp(&by_acc(y)));
        let best = adam.iter().max_by(|x, y| by_acc(x).total_cmp(&by_acc(y)));
        if let (Some(&w), Some(&b)) = (worst, best)
            && let (Some(wa), Some(ba)) = (a.stats[w].outcome.accuracy, a.stats[b].outcome.accuracy)
            && wa.apart_from(&ba)
        {
            text.push_str(&format!(
                ". Equal steps do not make equal learning: {} reaches {} and {} {}",
                a.named(w),
                accuracy(Some(wa)),
                a.named(b),
                accuracy(Some(ba))
            ));
        }
        text.push('.');
        out.push(text);
    }
    let frozen: Vec<String> = a
        .with_trained()
        .into_iter()
        .filter_map(|i| {
            let u = &a.stats[i].updates;
            let n: usize = u.frozen.iter().sum();
            let zero: usize = u.frozen_zero_gradient.iter().sum();
            (n > 0).then(|| {
                let why = if zero == n {
                    "its gradient was exactly 0".to_string()
                } else {
                    format!("{zero} with an exactly zero gradient, {} with a step too small for float32", n - zero)
                };
                format!("{} ({}: {why})", a.named(i), crate::format::count(n, "logged step", "logged steps"))
            })
        })
        .collect();
    if !frozen.is_empty() && frozen.len() <= Analysis::NAMED_IN_A_SENTENCE {
        out.push(format!(
            "Layers of trained runs that did not move at some logged step (left out of the ratios above): {}.",
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
    fn a_layer_that_did_not_move_is_named_with_its_cause() {
        let (sweep, mut scenarios) = over(&["relu"], |_, seed| Spec::new(seed));
        let a = Analysis::new(&sweep, &scenarios);
        assert!(!explanations(&a).join(" ").contains("did not move"));
        // Layer 2 of seed 0 stood still at step 100: its gradient was exactly 0.
        let layer = &mut scenarios[0].runs[0].steps[1].layers[1];
        layer.update_ratio = Some(0.0);
        layer.grad_l2 = 0.0;
        let a = Analysis::new(&sweep, &scenarios);
        let text = explanations(&a).join(" ");
        assert!(
            text.contains("**relu** (1 logged step: its gradient was exactly 0)"),
            "{text}"
        );
        // Left out of the ratio, not averaged in as a zero.
        assert!(a.stats[0].updates.ratio[1].is_some_and(|r| r > 0.0));
        scenarios[0].runs[0].steps[1].layers[1].grad_l2 = 1e-3;
        let a = Analysis::new(&sweep, &scenarios);
        let text = explanations(&a).join(" ");
        assert!(
            text.contains("1 with a step too small for float32"),
            "{text}"
        );
    }
}
