//! Named scenarios against their baselines, and ranked at the greatest depth: what a
//! remedy or an optimizer changes, with the intervals that back it.

use vgrad_sweep::SCENARIO;

use crate::seeds::GeometricSummary;
use crate::{Scenario, ScenarioStats};

/// One scenario against its baseline at the same setting of the axes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The scenario (index into the sweep's scenarios).
    pub scenario: usize,
    /// Its baseline.
    pub baseline: usize,
    /// Decay ratio over the baseline's (geometric means) and whether the 95% intervals
    /// are apart.
    pub decay: Option<Change>,
    /// The same for the error decay ratio.
    pub error: Option<Change>,
    /// Test accuracy minus the baseline's, in percentage points, and whether the 95%
    /// intervals are apart.
    pub accuracy: Option<Change>,
}

/// A difference between a scenario and its baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// A factor (ratios) or a difference in points (accuracy).
    pub by: f64,
    /// The two 95% intervals do not overlap.
    pub clear: bool,
}

fn ratio_change(a: Option<GeometricSummary>, b: Option<GeometricSummary>) -> Option<Change> {
    let (a, b) = (a?, b?);
    let by = a.geo_mean / b.geo_mean;
    by.is_finite().then(|| Change {
        by,
        clear: !a.ci_low.is_nan() && !b.ci_low.is_nan() && !a.overlaps(&b),
    })
}

fn accuracy_change(a: &ScenarioStats, b: &ScenarioStats) -> Option<Change> {
    if a.ok == 0 || b.ok == 0 {
        return None;
    }
    let ((am, alo, ahi), (bm, blo, bhi)) = (a.test_acc_ci(), b.test_acc_ci());
    let apart = ahi < blo || bhi < alo;
    Some(Change {
        by: 100.0 * (am - bm),
        clear: apart && !alo.is_nan() && !blo.is_nan(),
    })
}

/// The baseline of scenario `i`: the first grid point at the same setting of the axes
/// whose scenario has the same activation (`None` when that is `i` itself, or without
/// named scenarios).
pub fn baseline_of(scenarios: &[Scenario], i: usize) -> Option<usize> {
    let point = &scenarios[i].point;
    point.value(SCENARIO)?;
    let setting = point.label_without(SCENARIO);
    let first = scenarios.iter().position(|s| {
        s.point.label_without(SCENARIO) == setting
            && s.point.config.activation == point.config.activation
    })?;
    (first != i).then_some(first)
}

/// Every scenario that has a baseline, against it, in grid order.
pub fn comparisons(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Vec<Comparison> {
    (0..scenarios.len())
        .filter_map(|i| {
            let b = baseline_of(scenarios, i)?;
            Some(Comparison {
                scenario: i,
                baseline: b,
                decay: ratio_change(stats[i].decay, stats[b].decay),
                error: ratio_change(stats[i].delta_decay, stats[b].delta_decay),
                accuracy: accuracy_change(&stats[i], &stats[b]),
            })
        })
        .collect()
}

/// The scenarios with finished runs at the greatest depth of the sweep, ranked by how
/// well the error keeps its size (|log of the error decay ratio|, smallest first) and by
/// test accuracy (highest first); `None` when no run finished.
pub fn deepest_rankings(stats: &[ScenarioStats]) -> Option<(usize, Vec<usize>, Vec<usize>)> {
    let deepest = stats.iter().filter(|s| s.ok > 0).map(|s| s.layers).max()?;
    let at: Vec<usize> = (0..stats.len())
        .filter(|&i| stats[i].layers == deepest && stats[i].ok > 0)
        .collect();
    let distance = |i: &usize| {
        stats[*i]
            .delta_decay
            .map_or(f64::INFINITY, |d| d.geo_mean.ln().abs())
    };
    let mut by_error = at.clone();
    by_error.sort_by(|a, b| distance(a).total_cmp(&distance(b)));
    let mut by_accuracy = at;
    by_accuracy.sort_by(|a, b| stats[*b].test_acc.0.total_cmp(&stats[*a].test_acc.0));
    Some((deepest, by_error, by_accuracy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(geo_mean: f64, ci_low: f64, ci_high: f64) -> Option<GeometricSummary> {
        Some(GeometricSummary {
            n: 5,
            geo_mean,
            ci_low,
            ci_high,
        })
    }

    #[test]
    fn a_change_is_clear_only_when_the_intervals_are_apart() {
        let c = ratio_change(summary(4.0, 3.0, 5.0), summary(2.0, 1.5, 2.5)).unwrap();
        assert_eq!((c.by, c.clear), (2.0, true));
        let c = ratio_change(summary(4.0, 2.0, 5.0), summary(2.0, 1.5, 2.5)).unwrap();
        assert!(!c.clear);
        // One seed: no intervals, nothing is clear.
        let c = ratio_change(summary(4.0, f64::NAN, f64::NAN), summary(2.0, 1.5, 2.5)).unwrap();
        assert!(!c.clear);
        assert!(ratio_change(None, summary(2.0, 1.5, 2.5)).is_none());
    }
}
