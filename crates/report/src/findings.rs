//! The report's generated "Findings" paragraph.

use crate::collect::group_without;
use crate::format::sig;
use crate::{Scenario, ScenarioStats};

/// The reference post's decay ratios (6 dense layers): sigmoid about 30x, leaky ReLU
/// about 6x.
const REFERENCE: [(&str, f64); 2] = [("sigmoid", 30.0), ("leaky-relu", 6.0)];

/// Sentences on what the sweep shows, from its statistics.
pub fn findings(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ranked: Vec<(usize, crate::seeds::GeometricSummary)> = stats
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.decay.map(|d| (i, d)))
        .collect();
    if ranked.is_empty() {
        out.push("No run has finished yet, so there is nothing to report.".into());
        return out;
    }
    ranked.sort_by(|a, b| b.1.geo_mean.total_cmp(&a.1.geo_mean));
    let label = |i: usize| format!("**{}**", scenarios[i].point.label());
    let (top, top_d) = ranked[0];
    let factor = |i: usize| stats[i].layer_factor.map_or(f64::NAN, |f| f.geo_mean);
    out.push(format!(
        "The gradient decays most under {}: the last layer's mean |grad| is {}x the first layer's (geometric mean over {} seeds), a factor of {} per layer.",
        label(top),
        sig(top_d.geo_mean, 3),
        top_d.n,
        sig(factor(top), 3)
    ));
    if ranked.len() > 1 {
        let (bottom, bottom_d) = ranked[ranked.len() - 1];
        out.push(format!(
            "It decays least under {}: {}x ({} per layer).",
            label(bottom),
            sig(bottom_d.geo_mean, 3),
            sig(factor(bottom), 3)
        ));
        let pairs = ranked.len() - 1;
        let overlapping: Vec<String> = ranked
            .windows(2)
            .filter(|w| w[0].1.overlaps(&w[1].1))
            .map(|w| format!("{} and {}", label(w[0].0), label(w[1].0)))
            .collect();
        if top_d.ci_low.is_nan() {
            out.push("With a single seed there are no confidence intervals; run more seeds to compare scenarios.".into());
        } else if overlapping.is_empty() {
            out.push("The 95% confidence intervals of neighbouring scenarios in this ranking do not overlap: every difference is clear at this number of seeds.".into());
        } else if overlapping.len() <= 3 {
            out.push(format!(
                "The 95% confidence intervals overlap for {}: those differences are not clear at this number of seeds.",
                overlapping.join("; ")
            ));
        } else {
            out.push(format!(
                "Ranked by decay ratio, {} of {pairs} neighbouring pairs have overlapping 95% confidence intervals: many differences are not clear at this number of seeds.",
                overlapping.len()
            ));
        }
    }
    if let Some(start) = start_versus_average(scenarios, stats) {
        out.push(start);
    }
    out.extend(mechanism(scenarios, stats, top));
    if let Some(depth) = depth_trend(scenarios, stats) {
        out.push(depth);
    }
    let reference: Vec<String> = REFERENCE
        .iter()
        .flat_map(|(activation, reported)| {
            scenarios.iter().zip(stats).filter_map(move |(sc, st)| {
                let a = sc.point.config.activation.to_string();
                let matches = a == *activation || a.starts_with(&format!("{activation}:"));
                (matches && sc.point.config.layers == 6)
                    .then_some(st.decay)
                    .flatten()
                    .map(|d| {
                        format!(
                            "{} gives {}x (reported: about {}x)",
                            label_of(sc),
                            sig(d.geo_mean, 3),
                            reported
                        )
                    })
            })
        })
        .collect();
    if !reference.is_empty() {
        out.push(format!(
            "Against the reference post (6 dense layers, one run each): {}.",
            reference.join(", ")
        ));
    }
    // Where along the network does the decay happen? The error dC/dz answers that.
    let (mut vanishing, mut flat, mut exploding) = (Vec::new(), Vec::new(), Vec::new());
    let detailed = stats.iter().filter(|s| s.decay.is_some()).count() <= 4;
    for (i, s) in stats.iter().enumerate() {
        let (Some(d), Some(delta)) = (s.decay, s.delta_decay) else {
            continue;
        };
        let text = if detailed {
            let without_input = s.last_over_second.map_or(String::new(), |g| {
                format!(", {}x without layer 1", sig(g.geo_mean, 3))
            });
            format!(
                "{} (weights {}x, error {}x{without_input})",
                label(i),
                sig(d.geo_mean, 3),
                sig(delta.geo_mean, 3)
            )
        } else {
            label(i)
        };
        if delta.geo_mean >= 2.0 {
            vanishing.push(text);
        } else if delta.geo_mean <= 0.5 {
            exploding.push(text);
        } else {
            flat.push(text);
        }
    }
    if !vanishing.is_empty() {
        out.push(format!(
            "The back-propagated error dC/dz itself shrinks on its way to the input (error ratio of 2 or more) under {}: there the signal vanishes in the chain of derivatives.",
            vanishing.join(", ")
        ));
    }
    if !flat.is_empty() {
        out.push(format!(
            "Averaged over training, under {} the error keeps its size across the layers (ratio between 0.5 and 2): the weight-gradient decay there comes from the first layer's input, raw pixels that are mostly zero, not from a vanishing signal.",
            flat.join(", ")
        ));
    }
    if !exploding.is_empty() {
        out.push(format!(
            "Under {} the error grows on its way to the input (ratio of 0.5 or less): an exploding rather than a vanishing gradient.",
            exploding.join(", ")
        ));
    }
    out
}

/// Why, measured: for the scenario whose gradient decays most, the derivative and the
/// weight gain that multiply the error at every layer; for the one whose first layer's
/// input shrinks its gradient most, that effect.
fn mechanism(scenarios: &[Scenario], stats: &[ScenarioStats], top: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = stats[top].mechanism {
        let activation = scenarios[top].point.config.activation;
        out.push(format!(
            "Why, measured: under {} the hidden layers' mean derivative f'(z) is {} (it is at most {}) and the weights pass the error on with a gain of {}, so each layer should multiply the error by about {}; measured, it multiplies it by {} per layer (the chain-of-derivatives table).",
            label_of(&scenarios[top]),
            sig(m.deriv_mean, 3),
            sig(activation.max_derivative(), 3),
            sig(m.gain, 3),
            sig(m.expected_factor, 3),
            sig(m.measured_factor, 3),
        ));
    }
    let input = stats
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.mechanism.map(|m| (i, m)))
        .filter(|(_, m)| m.input_effect.is_finite() && m.input_effect < 0.5)
        .min_by(|a, b| a.1.input_effect.total_cmp(&b.1.input_effect));
    if let Some((i, m)) = input {
        out.push(format!(
            "Under {} the weight gradient per unit of error is {}x smaller at layer 1 than at layer 2, while the error itself changes by a factor of {} per layer: layer 1's input, raw pixels that are mostly zero, not a vanishing error, makes most of the gap between its gradient and the others'.",
            label_of(&scenarios[i]),
            sig(1.0 / m.input_effect, 3),
            sig(m.measured_factor, 3),
        ));
    }
    out
}

/// A scenario's decay ratios at the first logged step beside their averages.
struct StartAndAverage {
    scenario: usize,
    weights_start: f64,
    weights_average: f64,
    error_start: f64,
    /// The low end of the error ratio's interval at the start (the ratio itself for a
    /// single seed).
    error_start_low: f64,
    error_average: f64,
}

impl StartAndAverage {
    fn of(scenario: usize, s: &ScenarioStats) -> Option<Self> {
        let (start, avg) = (s.decay_start?, s.decay?);
        let (dstart, davg) = (s.delta_decay_start?, s.delta_decay?);
        let all = [start.geo_mean, avg.geo_mean, dstart.geo_mean, davg.geo_mean];
        // A seed with a dead first layer makes a ratio infinite or undefined.
        all.iter()
            .all(|v| v.is_finite() && *v > 0.0)
            .then_some(Self {
                scenario,
                weights_start: start.geo_mean,
                weights_average: avg.geo_mean,
                error_start: dstart.geo_mean,
                error_start_low: if dstart.ci_low.is_nan() {
                    dstart.geo_mean
                } else {
                    dstart.ci_low
                },
                error_average: davg.geo_mean,
            })
    }
}

/// How far the ratios at initialisation (the first logged step) are from their average
/// over training: the scenario where they differ most, and the one whose error clearly
/// shrinks at initialisation but not on average.
fn start_versus_average(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Option<String> {
    let with: Vec<StartAndAverage> = stats
        .iter()
        .enumerate()
        .filter_map(|(i, s)| StartAndAverage::of(i, s))
        .collect();
    let gap = |w: &StartAndAverage| (w.weights_start / w.weights_average).ln().abs();
    let widest = with.iter().max_by(|a, b| gap(a).total_cmp(&gap(b)))?;
    let mut text = format!(
        "The averages over training hide how the network starts: at step 0, before any update, the decay ratio under {} is {}x, against {}x averaged over the logged steps",
        label_of(&scenarios[widest.scenario]),
        sig(widest.weights_start, 3),
        sig(widest.weights_average, 3)
    );
    let flip = |w: &StartAndAverage| w.error_start / w.error_average;
    let at_start_only = with
        .iter()
        .filter(|w| w.error_start_low >= 2.0 && w.error_average < 2.0)
        .max_by(|a, b| flip(a).total_cmp(&flip(b)));
    if let Some(w) = at_start_only {
        text.push_str(&format!(
            "; under {} the error shrinks {}x on its way to the input at step 0, though it keeps its size on average ({}x): there the vanishing is a property of the initial network that training removes",
            label_of(&scenarios[w.scenario]),
            sig(w.error_start, 3),
            sig(w.error_average, 3)
        ));
    }
    text.push_str(" (the table of the start and the end gives every scenario).");
    Some(text)
}

/// For sweeps over depth: how the decay ratio grows from the shallowest to the deepest
/// network, per setting of the other axes.
fn depth_trend(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Option<String> {
    let varies = scenarios.iter().any(|s| s.point.value("layers").is_some());
    if !varies {
        return None;
    }
    let groups = group_without(scenarios, "layers");
    let parts: Vec<String> = groups
        .iter()
        .filter_map(|(key, members)| {
            let with: Vec<(usize, f64)> = members
                .iter()
                .filter_map(|&i| stats[i].decay.map(|d| (stats[i].layers, d.geo_mean)))
                .collect();
            let (shallow, deep) = (
                with.iter().min_by_key(|p| p.0)?,
                with.iter().max_by_key(|p| p.0)?,
            );
            (shallow.0 != deep.0).then(|| {
                let who = if key.is_empty() {
                    String::new()
                } else {
                    format!("under **{key}** ")
                };
                format!(
                    "{who}from {}x at {} layers to {}x at {}",
                    sig(shallow.1, 3),
                    shallow.0,
                    sig(deep.1, 3),
                    deep.0
                )
            })
        })
        .collect();
    (!parts.is_empty()).then(|| format!("With depth, the decay ratio goes {}.", parts.join("; ")))
}

fn label_of(s: &Scenario) -> String {
    format!("**{}**", s.point.label())
}
