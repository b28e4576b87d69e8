//! The report's generated "Findings" paragraph.

use vgrad_record::{Norm, Optimizer};
use vgrad_sweep::SCENARIO;

use crate::collect::group_without;
use crate::compare::{Change, Comparison, comparisons, deepest_rankings};
use crate::format::{percent, sig};
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
    // A sweep of named scenarios asks what they change, one with learning curves how
    // fast each learns: those answers lead.
    out.extend(training_dynamics(scenarios, stats));
    out.extend(scenario_effects(scenarios, stats));
    out.extend(ranking_and_failures(scenarios, stats));
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
                (matches && sc.point.config.layers == 6 && trains_as_the_post(sc))
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
    // More scenarios than a sentence can name: counts, and the table names them.
    const MAX_NAMED: usize = 18;
    let classified = vanishing.len() + flat.len() + exploding.len();
    if classified > MAX_NAMED {
        out.push(format!(
            "Averaged over training, the back-propagated error dC/dz shrinks on its way to the input (error ratio of 2 or more) in {} of these {classified} scenarios, keeps its size (between 0.5 and 2) in {} and grows (0.5 or less, an exploding gradient) in {}; the error decay column of the first table gives each.",
            vanishing.len(),
            flat.len(),
            exploding.len()
        ));
        return out;
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
        .filter(|w| w.error_start_low >= 2.0 && (0.5..2.0).contains(&w.error_average))
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
    let mut grows = 0;
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
            if shallow.0 != deep.0 && deep.1 > shallow.1 {
                grows += 1;
            }
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
    // Beyond six settings a sentence turns into a list: the figure shows them.
    if parts.len() > 6 {
        return Some(format!(
            "With depth, the decay ratio grows from the shallowest to the deepest network under {} of {} settings (the figure of the decay ratio against depth shows each).",
            grows,
            parts.len()
        ));
    }
    (!parts.is_empty()).then(|| format!("With depth, the decay ratio goes {}.", parts.join("; ")))
}

/// Whether a scenario trains as the post did: Adam at 1e-3, no normalisation, no skips;
/// in a sweep of named scenarios also the post's initialisation and data. (The sweeps
/// from before named scenarios compare every init and data set of theirs with the post,
/// and their committed reports keep doing so.)
fn trains_as_the_post(s: &Scenario) -> bool {
    let (c, post) = (&s.point.config, &vgrad_record::REFERENCE);
    let remedies_as_the_post =
        c.optimizer == Optimizer::Adam && c.lr == post.lr && c.norm == Norm::None && !c.residual;
    let named = s.point.value(SCENARIO).is_some();
    remedies_as_the_post && (!named || (c.init == post.init && c.data == post.data))
}

/// The validation accuracy a learning curve is said to reach.
const LEARNT: f64 = 0.9;

/// For sweeps with learning curves (at most six scenarios): when each first reaches 90%
/// validation accuracy, where it ends, and how the last hidden layer's activation input
/// drifts over training (Ioffe & Szegedy 2015's Figure 1).
fn training_dynamics(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Vec<String> {
    let with: Vec<usize> = (0..stats.len())
        .filter(|&i| !stats[i].curves.val_acc.is_empty())
        .collect();
    if with.is_empty() || with.len() > 6 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let speed: Vec<String> = with
        .iter()
        .map(|&i| {
            let curve = &stats[i].curves.val_acc;
            let end = curve.last().map_or(f64::NAN, |p| p.1);
            let reached = curve
                .iter()
                .find(|p| p.1 >= LEARNT)
                .map_or("never".to_string(), |p| format!("at step {}", p.0));
            format!(
                "{} {reached}, ending at {}",
                label_of(&scenarios[i]),
                percent(end)
            )
        })
        .collect();
    out.push(format!(
        "The mean validation accuracy over seeds first reaches {} under {}.",
        percent(LEARNT),
        speed.join("; under ")
    ));
    let drift: Vec<String> = with
        .iter()
        .filter_map(|&i| {
            let inputs = &stats[i].curves.last_act_input;
            let (first, last) = (inputs.first()?, inputs.last()?);
            Some(format!(
                "under {} its median goes from {} to {} and its 15th-85th percentile range from [{}, {}] to [{}, {}]",
                label_of(&scenarios[i]),
                sig(first[1], 2),
                sig(last[1], 2),
                sig(first[0], 2),
                sig(first[2], 2),
                sig(last[0], 2),
                sig(last[2], 2),
            ))
        })
        .collect();
    if !drift.is_empty() {
        out.push(format!(
            "The last hidden layer's activation input, from the first logged step to the last: {}.",
            drift.join("; ")
        ));
    }
    out
}

/// The range of a change over settings, and in how many of them it is clear.
fn spread(changes: &[Change], points: bool) -> String {
    let (low, high) = changes
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), c| {
            (l.min(c.by), h.max(c.by))
        });
    let clear = changes.iter().filter(|c| c.clear).count();
    let range = if points {
        if (high - low).abs() < 0.05 {
            format!("{low:+.1} points")
        } else {
            format!("{low:+.1} to {high:+.1} points")
        }
    } else if sig(low, 2) == sig(high, 2) {
        format!("{}x", sig(low, 2))
    } else {
        format!("{}x to {}x", sig(low, 2), sig(high, 2))
    };
    format!("{range} (clearly in {clear} of {})", changes.len())
}

/// For each named scenario against its baseline, what it changes over the settings of
/// the axes: the decay ratio, the error decay ratio and the test accuracy (at most four
/// scenario pairs; beyond, the table says it better).
fn scenario_effects(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Vec<String> {
    let rows = comparisons(scenarios, stats);
    // A scenario, its baseline and their activation: one sentence each.
    let key = |c: &Comparison| {
        let name = |i: usize| {
            scenarios[i]
                .point
                .value(SCENARIO)
                .unwrap_or("?")
                .to_string()
        };
        let activation = scenarios[c.scenario].point.config.activation.to_string();
        (name(c.scenario), name(c.baseline), activation)
    };
    let mut pairs: Vec<(String, String, String)> = Vec::new();
    for c in &rows {
        if !pairs.contains(&key(c)) {
            pairs.push(key(c));
        }
    }
    if pairs.is_empty() || pairs.len() > 4 {
        return Vec::new();
    }
    let mut out: Vec<String> = pairs
        .iter()
        .map(|pair| {
            let of: Vec<&Comparison> = rows.iter().filter(|c| key(c) == *pair).collect();
            let pick = |f: fn(&Comparison) -> Option<Change>| -> Vec<Change> {
                of.iter().filter_map(|c| f(c)).collect()
            };
            let (scenario, baseline, activation) = pair;
            let with = if scenario.contains(activation.as_str()) {
                String::new()
            } else {
                format!("With {activation}, a")
            };
            format!(
                "{}gainst **{baseline}**, **{scenario}** changes the decay ratio by {}, the error decay ratio by {} and the test accuracy by {}.",
                if with.is_empty() { "A" } else { &with },
                spread(&pick(|c| c.decay), false),
                spread(&pick(|c| c.error), false),
                spread(&pick(|c| c.accuracy), true),
            )
        })
        .collect();
    out.push("\"Clearly\" means that the 95% intervals of scenario and baseline do not overlap; the table of each scenario against its baseline gives every setting.".into());
    out.extend(made_by_training(scenarios, stats, &rows));
    out
}

/// Where every scenario starts from its baseline's initial network (the same decay ratio
/// at step 0), the changes are made by training: the largest of them, start and average.
fn made_by_training(
    scenarios: &[Scenario],
    stats: &[ScenarioStats],
    rows: &[Comparison],
) -> Option<String> {
    let start = |i: usize| stats[i].decay_start.map(|d| d.geo_mean);
    let same_start = rows
        .iter()
        .all(|c| match (start(c.scenario), start(c.baseline)) {
            (Some(a), Some(b)) => (a / b - 1.0).abs() < 1e-9,
            _ => false,
        });
    if !same_start {
        return None;
    }
    let largest = rows
        .iter()
        .filter_map(|c| c.decay.map(|d| (c, d.by.ln().abs())))
        .filter(|(_, size)| size.is_finite())
        .max_by(|a, b| a.1.total_cmp(&b.1))?
        .0;
    let average = |i: usize| stats[i].decay.map_or(f64::NAN, |d| d.geo_mean);
    Some(format!(
        "Each scenario starts from its baseline's weights (the same seeds and initialisation: the decay ratios at step 0 are identical), so these changes are made by training. The largest: the decay ratio under {} is {}x at step 0 and {}x averaged over training, under its baseline {} it goes from the same {}x to {}x.",
        label_of(&scenarios[largest.scenario]),
        sig(start(largest.scenario).unwrap_or(f64::NAN), 3),
        sig(average(largest.scenario), 3),
        label_of(&scenarios[largest.baseline]),
        sig(start(largest.baseline).unwrap_or(f64::NAN), 3),
        sig(average(largest.baseline), 3),
    ))
}

/// For sweeps of named scenarios over depth: which keep the error's size and train best
/// at the greatest depth, and where a scenario trains worse than its baseline.
fn ranking_and_failures(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Vec<String> {
    let mut out = Vec::new();
    let named = scenarios.iter().any(|s| s.point.value(SCENARIO).is_some());
    let deep = scenarios.iter().any(|s| s.point.value("layers").is_some());
    if !(named && deep) {
        return out;
    }
    let Some((depth, by_error, by_accuracy)) = deepest_rankings(stats) else {
        return out;
    };
    let name = |i: usize| format!("**{}**", scenarios[i].point.label_without("layers"));
    let error = |i: usize| {
        stats[i].delta_decay.map_or("n/a".into(), |d| {
            crate::format::with_ci(d.geo_mean, d.ci_low, d.ci_high)
        })
    };
    let accuracy = |i: usize| {
        let (m, lo, hi) = stats[i].test_acc_ci();
        if lo.is_nan() {
            percent(m)
        } else {
            format!("{} [{}, {}]", percent(m), percent(lo), percent(hi))
        }
    };
    if let (Some(&best), Some(&worst), Some(&top), Some(&bottom)) = (
        by_error.first(),
        by_error.last(),
        by_accuracy.first(),
        by_accuracy.last(),
    ) {
        out.push(format!(
            "At {depth} layers the error keeps its size best under {} (error decay ratio {}) and worst under {} ({}); the best test accuracy is {}'s ({}), the worst {}'s ({}).",
            name(best),
            error(best),
            name(worst),
            error(worst),
            name(top),
            accuracy(top),
            name(bottom),
            accuracy(bottom),
        ));
    }
    // Chance is 10% on ten classes: below 20% a network has not learnt to classify.
    let untrained = |i: usize| stats[i].ok > 0 && stats[i].test_acc.0 < 0.2;
    let failures: Vec<String> = comparisons(scenarios, stats)
        .iter()
        .filter(|c| {
            c.accuracy.is_some_and(|a| a.clear && a.by < 0.0)
                || stats[c.scenario].failed > 0
                || untrained(c.scenario)
        })
        .map(|c| {
            let diverged = stats[c.scenario].failed;
            let why = if diverged > 0 {
                format!("{diverged} run(s) failed or diverged")
            } else if untrained(c.scenario) {
                format!(
                    "does not train: {}, baseline {}",
                    percent(stats[c.scenario].test_acc.0),
                    percent(stats[c.baseline].test_acc.0)
                )
            } else {
                format!(
                    "{} against {}",
                    percent(stats[c.scenario].test_acc.0),
                    percent(stats[c.baseline].test_acc.0)
                )
            };
            format!("**{}** ({why})", scenarios[c.scenario].point.label())
        })
        .collect();
    match failures.len() {
        0 => out.push("No scenario trains clearly worse than its baseline, and all train, at every depth.".into()),
        n if n <= 6 => out.push(format!(
            "A scenario fails where it does not train (test accuracy below 20%) or trains clearly worse than its baseline: {}.",
            failures.join(", ")
        )),
        n => out.push(format!(
            "{n} scenario settings fail (test accuracy below 20%, or clearly below their baseline's), among them {} (the table of each scenario against its baseline gives all).",
            failures[..4].join(", ")
        )),
    }
    out
}

/// Karpathy's rule of thumb for the update-to-weight ratio of a healthy layer.
const HEALTHY_UPDATE: f64 = 1e-3;

/// Within this factor, mean-field theory's chi_1 counts as agreeing with the measured
/// factor.
const AGREES_WITHIN: f64 = 1.5;

/// Sentences on the probe's diagnostics (update ratios, Jacobians, mean-field theory),
/// for a paragraph of their own; none for runs without them.
pub fn diagnostic_findings(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Vec<String> {
    let mut out = update_findings(scenarios, stats);
    out.extend(isometry(scenarios, stats));
    out.extend(against_glorot_2010(scenarios, stats));
    out.extend(theory_agreement(scenarios, stats));
    out
}

/// Glorot & Bengio 2010 (Section 4.2.2) report a mean singular value of the layer-to-layer
/// Jacobians at initialisation of about 0.5 under their standard init and 0.8 under their
/// normalized one, for tanh networks of 5 hidden layers of 1,000 units.
const GLOROT_2010: [(&str, f64); 2] = [("standard", 0.5), ("glorot-uniform", 0.8)];

/// Their numbers beside ours, for the scenarios that match their network: tanh, 6 dense
/// layers of 1,000 units, one of the two inits. The mean runs over the Jacobians between
/// hidden layers, whose shape (1,000 x 1,000) is theirs; the last maps to the 10 logits.
fn against_glorot_2010(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Option<String> {
    let parts: Vec<String> = GLOROT_2010
        .iter()
        .flat_map(|&(init, reported)| {
            scenarios.iter().zip(stats).filter_map(move |(sc, st)| {
                let c = &sc.point.config;
                let matches = c.activation == vgrad_record::Activation::Tanh
                    && c.layers == 6
                    && c.width == 1000
                    && c.init.to_string() == init;
                if !matches {
                    return None;
                }
                let hidden: Vec<f64> = st.diagnostics.layer_jacobian[..c.layers - 2]
                    .iter()
                    .copied()
                    .collect::<Option<_>>()?;
                let mean = hidden.iter().sum::<f64>() / hidden.len() as f64;
                Some(format!(
                    "{} gives {} (reported: about {reported})",
                    label_of(sc),
                    sig(mean, 2)
                ))
            })
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Against Glorot & Bengio 2010 (Section 4.2.2: the mean singular value of the Jacobians between hidden layers at initialisation, tanh, 5 hidden layers of 1,000 units, on their Shapeset-3x2 rather than MNIST): {}.",
            parts.join(", ")
        )
    })
}

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A factor with two significant figures: `4.2`, `13`, `1.3e4`.
fn factor(x: f64) -> String {
    if x >= 1000.0 {
        format!("{x:.1e}").replace("e0", "e").replace("e+", "e")
    } else {
        sig(x, 2)
    }
}

/// `x` against the rule of thumb: `4.2x above 1e-3` or `13x below 1e-3`.
fn above_or_below(x: f64) -> String {
    if x >= HEALTHY_UPDATE {
        format!("{}x above 1e-3", factor(x / HEALTHY_UPDATE))
    } else {
        format!("{}x below 1e-3", factor(HEALTHY_UPDATE / x))
    }
}

/// The layers that move least and most per step against the rule of thumb, and the first
/// layer's update ratio against the last layer's.
fn update_findings(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Vec<String> {
    let mut out = Vec::new();
    let all: Vec<(usize, usize, f64)> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.ok > 0)
        .flat_map(|(i, s)| {
            s.diagnostics
                .update_ratio
                .iter()
                .enumerate()
                .filter_map(move |(l, v)| {
                    v.filter(|v| v.is_finite() && *v >= 0.0)
                        .map(|v| (i, l + 1, v))
                })
        })
        .collect();
    // An update ratio of 0: at some logged step the layer's weights did not change at all.
    let zeros: Vec<&(usize, usize, f64)> = all.iter().filter(|p| p.2 == 0.0).collect();
    if !zeros.is_empty() {
        let mut frozen: Vec<(usize, usize)> = Vec::new();
        for p in &zeros {
            match frozen.iter_mut().find(|f| f.0 == p.0) {
                Some(f) => f.1 += 1,
                None => frozen.push((p.0, 1)),
            }
        }
        let named: Vec<String> = frozen
            .iter()
            .take(4)
            .map(|&(i, n)| {
                let layers = stats[i].diagnostics.update_ratio.len();
                if n == layers {
                    format!("every layer of {}", label_of(&scenarios[i]))
                } else {
                    format!("{n} of the {layers} layers of {}", label_of(&scenarios[i]))
                }
            })
            .collect();
        let among = if frozen.len() > named.len() {
            format!("among them {}", named.join(", "))
        } else {
            and_list(&named)
        };
        out.push(format!(
            "In {} of {} (scenario, layer) pairs the weights do not change at all at some logged step (update ratio 0: the step rounds to nothing in float32): {among}.",
            zeros.len(),
            all.len()
        ));
    }
    let moving: Vec<&(usize, usize, f64)> = all.iter().filter(|p| p.2 > 0.0).collect();
    let least = moving.iter().min_by(|a, b| a.2.total_cmp(&b.2));
    let most = moving.iter().max_by(|a, b| a.2.total_cmp(&b.2));
    if let (Some(&&(li, ll, lv)), Some(&&(mi, ml, mv))) = (least, most) {
        let others = if zeros.is_empty() {
            ""
        } else {
            " of the others"
        };
        out.push(format!(
            "Against Karpathy's rule of thumb of an update about 1e-3 of a layer's weights per step, layer {ll} under {} moves least{others} ({} of its norm per step, {}), and layer {ml} under {} moves most ({}, {}).",
            label_of(&scenarios[li]),
            sig(lv, 2),
            above_or_below(lv),
            label_of(&scenarios[mi]),
            sig(mv, 2),
            above_or_below(mv)
        ));
    }
    // Per scenario: the first layer's update ratio and mean |grad| over the last layer's.
    let pairs: Vec<(usize, f64, f64)> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.ok > 0 && s.layers >= 2)
        .filter_map(|(i, s)| {
            let u = &s.diagnostics.update_ratio;
            let (a, b) = ((*u.first()?)?, (*u.last()?)?);
            let g = s.grad_profile.first()? / s.grad_profile.last()?;
            let q = a / b;
            (q.is_finite() && q > 0.0 && g.is_finite()).then_some((i, q, g))
        })
        .collect();
    if pairs.is_empty() {
        return out;
    }
    let adam = pairs
        .iter()
        .all(|&(i, _, _)| scenarios[i].point.config.optimizer == Optimizer::Adam);
    let why = if adam {
        ": under Adam the step does not follow the gradient's size"
    } else {
        ""
    };
    if pairs.len() <= 4 {
        let each: Vec<String> = pairs
            .iter()
            .enumerate()
            .map(|(k, &(i, q, g))| {
                let (of_last, grad) = if k == 0 {
                    (" the last layer's", "its mean |grad| is ")
                } else {
                    ("", "")
                };
                format!(
                    "{}x{of_last} under {} ({grad}{}x the last layer's)",
                    sig(q, 2),
                    label_of(&scenarios[i]),
                    sig(g, 2)
                )
            })
            .collect();
        out.push(format!(
            "The first layer's update ratio is {}{why}.",
            each.join(", ")
        ));
    } else {
        let range = |f: fn(&(usize, f64, f64)) -> f64| {
            pairs
                .iter()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                })
        };
        let (qlo, qhi) = range(|p| p.1);
        let (glo, ghi) = range(|p| p.2);
        let below = pairs.iter().filter(|p| p.1 < 1.0).count();
        out.push(format!(
            "The first layer's update ratio is {}x to {}x the last layer's (below it in {below} of {} scenarios), while its mean |grad| is {}x to {}x the last layer's{why}.",
            sig(qlo, 2),
            sig(qhi, 2),
            pairs.len(),
            sig(glo, 2),
            sig(ghi, 2)
        ));
    }
    out
}

/// Below this share of the largest singular value, the smallest counts as 0: the
/// Jacobian is singular (a dead unit's zero derivative, say).
const SINGULAR: f64 = 1e-12;

/// The spread of a spectrum: `max / min 1.4e7`, or that it is singular.
fn spectrum_spread(j: &vgrad_record::Spectrum) -> String {
    if j.min <= j.max * SINGULAR {
        "singular: its smallest singular value is 0 to rounding".into()
    } else {
        format!("max / min {}", sig(j.max / j.min, 2))
    }
}

/// The scenarios whose whole network is closest to and farthest from an isometry at
/// step 0, by how far the mean singular value is from 1 (on a log scale), with the
/// spread that an isometry would also keep near 1.
fn isometry(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Option<String> {
    let with: Vec<(usize, vgrad_record::Spectrum, f64)> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.ok > 0)
        .filter_map(|(i, s)| {
            let j = s.diagnostics.jacobian_start?;
            let far = j.mean.ln().abs();
            far.is_finite().then_some((i, j, far))
        })
        .collect();
    let describe = |(i, j, _): &(usize, vgrad_record::Spectrum, f64)| {
        format!(
            "{} (mean singular value {}, {})",
            label_of(&scenarios[*i]),
            sig(j.mean, 2),
            spectrum_spread(j)
        )
    };
    let closest = with.iter().min_by(|a, b| a.2.total_cmp(&b.2))?;
    let farthest = with.iter().max_by(|a, b| a.2.total_cmp(&b.2))?;
    let mut text = if with.len() == 1 {
        format!(
            "At step 0 the network's Jacobian d logits / d z_1 under {}",
            describe(closest)
        )
    } else {
        format!(
            "At step 0 the network's Jacobian d logits / d z_1 comes closest to an isometry (all singular values 1) under {} and is farthest from it under {}",
            describe(closest),
            describe(farthest)
        )
    };
    let spread_out = with
        .iter()
        .filter(|(_, j, _)| j.min <= 0.0 || j.max / j.min >= 100.0)
        .count();
    if spread_out == with.len() && with.len() > 1 {
        text.push_str(": in every scenario its largest singular value is 100 or more times its smallest, far from an isometry");
    }
    text.push('.');
    Some(text)
}

/// In how many (scenario, hidden layer) pairs chi_1 predicts the measured factor within
/// [`AGREES_WITHIN`], at step 0 and over training, and where the two part most.
fn theory_agreement(scenarios: &[Scenario], stats: &[ScenarioStats]) -> Option<String> {
    let pairs = |pick: fn(&crate::diagnostics::LayerTheory) -> (Option<f64>, Option<f64>)| {
        let mut out: Vec<(usize, usize, f64, f64)> = Vec::new();
        for (i, s) in stats.iter().enumerate().filter(|(_, s)| s.ok > 0) {
            for (l, t) in s.diagnostics.theory.iter().enumerate() {
                if let (Some(p), Some(m)) = pick(t)
                    && p.is_finite()
                    && m.is_finite()
                    && p > 0.0
                    && m > 0.0
                {
                    out.push((i, l + 1, p, m));
                }
            }
        }
        out
    };
    let start = pairs(|t| (t.chi1_start, t.measured_start));
    let average = pairs(|t| (t.chi1_mean, t.measured_mean));
    if start.is_empty() && average.is_empty() {
        return None;
    }
    let gap = |p: &(usize, usize, f64, f64)| (p.3 / p.2).ln().abs();
    let agree =
        |v: &[(usize, usize, f64, f64)]| v.iter().filter(|p| gap(p) <= AGREES_WITHIN.ln()).count();
    let worst = |v: &[(usize, usize, f64, f64)], when: &str| {
        v.iter().max_by(|a, b| gap(a).total_cmp(&gap(b))).map(|p| {
            format!(
                "{when} under {} at layer {}, where chi_1 is {} and the factor measured {} ({}x the prediction)",
                label_of(&scenarios[p.0]),
                p.1,
                sig(p.2, 2),
                sig(p.3, 2),
                sig(p.3 / p.2, 2)
            )
        })
    };
    let mut text = format!(
        "Mean-field theory's chi_1 predicts the measured factor by which the error's mean square changes per layer within a factor of {AGREES_WITHIN} in {} of {} (scenario, hidden layer) pairs at step 0 and in {} of {} averaged over training",
        agree(&start),
        start.len(),
        agree(&average),
        average.len()
    );
    let parts: Vec<String> = [worst(&start, "at step 0"), worst(&average, "over training")]
        .into_iter()
        .flatten()
        .collect();
    if !parts.is_empty() {
        text.push_str(&format!("; they part most {}", parts.join(", and ")));
    }
    text.push('.');
    Some(text)
}

fn label_of(s: &Scenario) -> String {
    format!("**{}**", s.point.label())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The diagnostic findings of the synthetic sweep of sigmoid and ReLU, after `edit`.
    fn diagnostics_of(with: bool, edit: impl Fn(&mut [Scenario])) -> String {
        let (_, mut scenarios) = crate::synthetic::sweep(&["sigmoid", "relu"], with);
        edit(&mut scenarios);
        let stats: Vec<ScenarioStats> = scenarios.iter().map(ScenarioStats::of).collect();
        diagnostic_findings(&scenarios, &stats).join(" ")
    }

    #[test]
    fn diagnostic_findings_need_the_diagnostics() {
        assert_eq!(diagnostics_of(false, |_| {}), "");
        let text = diagnostics_of(true, |_| {});
        // Measured 1/4 and 4/9 against chi_1 = 0.5 f: only sigmoid's layer 2 agrees at
        // step 0 (0.444 against 0.524), none over training.
        assert!(
            text.contains("within a factor of 1.5 in 1 of 4 (scenario, hidden layer) pairs at step 0 and in 0 of 4 averaged over training"),
            "{text}"
        );
        assert!(text.contains("layer 3 under **sigmoid** moves least (5.0e-4 of its norm per step, 2.0x below 1e-3)"), "{text}");
        assert!(
            text.contains("under Adam the step does not follow"),
            "{text}"
        );
        assert!(!text.contains("do not change at all"), "{text}");
    }

    #[test]
    fn a_layer_that_does_not_move_is_named_apart() {
        let text = diagnostics_of(true, |scenarios| {
            for run in &mut scenarios[0].runs {
                run.steps[2].layers[1].update_ratio = Some(0.0);
            }
        });
        assert!(
            text.contains("In 1 of 6 (scenario, layer) pairs the weights do not change at all at some logged step (update ratio 0: the step rounds to nothing in float32): 1 of the 3 layers of **sigmoid**."),
            "{text}"
        );
        assert!(text.contains("moves least of the others"), "{text}");
    }

    #[test]
    fn factors_and_lists_read_as_text() {
        assert_eq!(factor(13118.0), "1.3e4");
        assert_eq!(factor(13.1), "13");
        assert_eq!(above_or_below(7.6e-8), "1.3e4x below 1e-3");
        assert_eq!(above_or_below(3.5e-3), "3.5x above 1e-3");
        let list = |v: &[&str]| and_list(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&["a", "b", "c"]), "a, b and c");
        assert_eq!(list(&["a"]), "a");
    }

    #[test]
    fn a_spread_gives_the_range_and_how_often_it_is_clear() {
        let change = |by: f64, clear: bool| Change { by, clear };
        assert_eq!(
            spread(&[change(0.6, false), change(12924.0, true)], false),
            "0.60x to 12924x (clearly in 1 of 2)"
        );
        assert_eq!(
            spread(&[change(2.0, true), change(2.0, true)], false),
            "2.0x (clearly in 2 of 2)"
        );
        assert_eq!(
            spread(&[change(-23.94, true), change(0.6, false)], true),
            "-23.9 to +0.6 points (clearly in 1 of 2)"
        );
    }
}
