//! Questions the sections ask of the scenarios' settings, answered from their typed
//! configurations (never from axis names or the text of a value).

use vgrad_record::{Init, Norm, RunConfig};
use vgrad_sweep::SCENARIO;
use vgrad_theory::weight_variance;

use crate::Scenario;

/// Whether `key` takes more than one value over the scenarios.
pub fn varies<T: PartialEq>(scenarios: &[Scenario], key: impl Fn(&RunConfig) -> T) -> bool {
    let mut values = scenarios.iter().map(|s| key(&s.point.config));
    match values.next() {
        Some(first) => values.any(|v| v != first),
        None => false,
    }
}

/// The scenarios grouped by `key`, in order of first appearance: each key with the indices
/// of its scenarios, in grid order.
pub fn groups<K: PartialEq>(
    scenarios: &[Scenario],
    key: impl Fn(&Scenario) -> K,
) -> Vec<(K, Vec<usize>)> {
    let mut out: Vec<(K, Vec<usize>)> = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        let k = key(s);
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(i),
            None => out.push((k, vec![i])),
        }
    }
    out
}

/// A scenario's settings with `clear` applied, and its name as a named scenario: the key
/// of the scenarios that differ only in what `clear` resets.
pub fn all_but(s: &Scenario, clear: impl Fn(&mut RunConfig)) -> (RunConfig, Option<String>) {
    let mut c = s.point.config.clone();
    clear(&mut c);
    (c, s.point.value(SCENARIO).map(str::to_string))
}

/// The key of the scenarios that differ only in their depth.
pub fn without_depth(s: &Scenario) -> (RunConfig, Option<String>) {
    all_but(s, |c| c.layers = 0)
}

/// Whether back-propagation through the network is the plain chain of mean-field theory:
/// dense layers, no normalisation and no skip connections, which add terms of their own.
pub fn is_plain_chain(c: &RunConfig) -> bool {
    c.norm == Norm::None && !c.residual && !c.model.is_convolutional()
}

/// sigma_w^2 of the hidden-to-hidden layers: the weight variance times the fan-in
/// (`vgrad_theory::weight_variance`); sigma_b^2 is the run's `bias_variance`.
pub fn hidden_sigma_w2(c: &RunConfig) -> f64 {
    weight_variance(c.init, c.width, c.width)
}

/// Whether `c` is a network a remedy is measured against: no normalisation, no skips,
/// and Gaussian or uniform weights rather than orthogonal ones.
fn is_baseline_kind(c: &RunConfig) -> bool {
    is_plain_chain(c) && !matches!(c.init, Init::Orthogonal { .. })
}

/// The scenario that named scenario `i` is compared with: the first named scenario, at
/// the same setting of the axes, with the same activation and the same hidden weight
/// variance, that is a plain network with Gaussian or uniform weights (an orthogonal init
/// is thus compared with the Gaussian init of its gain: sqrt(2) with He-normal for ReLU).
/// `None` without named scenarios, or where that is `i` itself or there is none.
pub fn baseline_of(scenarios: &[Scenario], i: usize) -> Option<usize> {
    let point = &scenarios[i].point;
    point.value(SCENARIO)?;
    let axes = point.label_without(SCENARIO);
    let c = &point.config;
    let same_variance = |o: &RunConfig| {
        (hidden_sigma_w2(o) - hidden_sigma_w2(c)).abs() <= 1e-9 * hidden_sigma_w2(c)
    };
    let first = scenarios.iter().position(|s| {
        let o = &s.point.config;
        s.point.label_without(SCENARIO) == axes
            && o.activation == c.activation
            && same_variance(o)
            && is_baseline_kind(o)
    })?;
    (first != i).then_some(first)
}

/// The deepest network of the scenarios.
pub fn deepest(scenarios: &[Scenario]) -> Option<usize> {
    scenarios.iter().map(|s| s.point.config.layers).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn orthogonal_weights_are_compared_with_the_gaussian_init_of_their_gain() {
        let (_, scenarios) = synthetic::named(&[
            ("relu", "activation = \"relu\""),
            (
                "relu, he-normal",
                "activation = \"relu\"\ninit = \"he-normal\"",
            ),
            (
                "relu, batch norm",
                "activation = \"relu\"\nnorm = \"batch\"",
            ),
            (
                "relu, orthogonal",
                "activation = \"relu\"\ninit = \"orthogonal:1.4142135623730951\"",
            ),
            ("sigmoid", "activation = \"sigmoid\""),
            (
                "sigmoid, orthogonal",
                "activation = \"sigmoid\"\ninit = \"orthogonal:1\"",
            ),
        ]);
        let base = |i| baseline_of(&scenarios, i);
        assert_eq!(base(0), None, "the first is its own baseline");
        assert_eq!(base(1), None, "He-normal has no plain twin of its variance");
        assert_eq!(base(2), Some(0));
        assert_eq!(base(3), Some(1), "gain sqrt(2) against He-normal");
        assert_eq!(base(5), Some(4), "gain 1 against Glorot");
        assert!(varies(&scenarios, |c| c.activation) && !varies(&scenarios, |c| c.layers));
    }
}
