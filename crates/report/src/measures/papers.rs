//! The published numbers a sweep can be set against: the reference post's decay ratios,
//! Glorot & Bengio 2010's Jacobian singular values, Ioffe & Szegedy 2015's learning curves,
//! He et al. 2015's deep ReLU networks, Schoenholz et al. 2017's trainable depth (in
//! [`crate::measures::phase`]), Yang et al. 2019's gradient explosion under batch norm and
//! Hanin & Rolnick 2018's growth of residual networks' signal. A sweep names the papers it reproduces in its
//! `[papers]` table, each with its setup beside the sweep's and which numbers are
//! comparable; the report compares with those alone, on the scenarios whose typed
//! settings match the paper's.

use vgrad_record::{Activation, Init, Norm, Optimizer, REFERENCE, RunConfig};

use vgrad_sweep::Paper;

use crate::document::Section;
use crate::format::{accuracy, and_list, geometric, percent, sig};
use crate::measures::Analysis;

/// Whether an activation is one the post reports on.
type Matches = fn(&Activation) -> bool;

/// The post's decay ratios, read off its figures: sigmoid about 30x, leaky ReLU about 6x
/// (and ReLU about the same as leaky ReLU).
const POST: [(Matches, f64); 3] = [
    (|a| *a == Activation::Sigmoid, 30.0),
    (|a| matches!(a, Activation::LeakyRelu { .. }), 6.0),
    (|a| *a == Activation::Relu, 6.0),
];

/// Whether `c` is the post's network and training: only the activation may differ.
fn as_the_post(c: &RunConfig) -> bool {
    let post = RunConfig {
        activation: c.activation,
        seed: c.seed,
        ..REFERENCE
    };
    RunConfig {
        log_every: post.log_every,
        eval_every: post.eval_every,
        probe: post.probe,
        device: post.device,
        ..c.clone()
    } == post
}

/// The post's decay ratios beside ours.
fn post(a: &Analysis) -> Option<String> {
    let parts: Vec<String> = a
        .with_trained()
        .into_iter()
        .filter(|&i| as_the_post(&a.scenarios[i].point.config))
        .filter_map(|i| {
            let c = &a.scenarios[i].point.config;
            let reported = POST.iter().find(|(m, _)| m(&c.activation))?.1;
            Some(format!(
                "{} under {} (the post: about {reported})",
                geometric(a.stats[i].decay.ratio.positive),
                a.named(i)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Against the reference post, which shows one run per scenario and whose ratios are read off its figures (comparable in size, not in their decimals), the decay ratio is {}.",
            and_list(&parts)
        )
    })
}

/// Glorot & Bengio 2010 (Section 4.2.2): the mean singular value of the Jacobians between
/// hidden layers at initialisation, tanh, 5 hidden layers of 1,000 units: about 0.5 under
/// their standard init, 0.8 under their normalized one.
fn glorot_2010(a: &Analysis) -> Option<String> {
    let parts: Vec<String> = a
        .with_finished()
        .into_iter()
        .filter_map(|i| {
            let c = &a.scenarios[i].point.config;
            let reported = match c.init {
                Init::Standard => 0.5,
                Init::GlorotUniform => 0.8,
                _ => return None,
            };
            if !(c.activation == Activation::Tanh
                && c.layers == 6
                && c.width == 1000
                && c.norm == Norm::None
                && !c.residual)
            {
                return None;
            }
            let layers = &a.stats[i].jacobian.layer_mean;
            // The Jacobians between hidden layers (1,000 x 1,000, as theirs); the last maps
            // to the 10 logits.
            let hidden: Vec<f64> = layers
                .get(..c.layers - 2)?
                .iter()
                .copied()
                .collect::<Option<_>>()?;
            let mean = hidden.iter().sum::<f64>() / hidden.len() as f64;
            Some(format!(
                "{} gives {} (reported: about {reported})",
                a.named(i),
                sig(mean, 2)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Against Glorot & Bengio 2010 (Section 4.2.2: the mean singular value of the Jacobians between hidden layers at initialisation, on Shapeset-3x2 rather than MNIST; comparable, since at initialisation the data enter only through the pre-activations' spread), {}.",
            and_list(&parts)
        )
    })
}

/// The validation accuracy a learning curve is said to reach.
const LEARNT: f64 = 0.9;

/// Ioffe & Szegedy 2015 (Section 4.1): with batch norm their MNIST network trains faster
/// and ends more accurate.
fn ioffe_szegedy_2015(a: &Analysis) -> Option<String> {
    if !crate::setting::varies(a.scenarios, |c| c.norm) {
        return None;
    }
    let with: Vec<usize> = a
        .with_trained()
        .into_iter()
        .filter(|&i| !a.stats[i].outcome.val_curve.is_empty())
        .collect();
    if with.is_empty() || with.len() > Analysis::NAMED_IN_A_SENTENCE {
        return None;
    }
    let parts: Vec<String> = with
        .iter()
        .map(|&i| {
            let o = &a.stats[i].outcome;
            let reached = o
                .val_curve
                .iter()
                .find(|p| p.1 >= LEARNT)
                .map_or("never reaches".to_string(), |p| {
                    format!("reaches it at step {}", p.0)
                });
            format!(
                "{} {reached} and ends at {} test accuracy",
                a.named(i),
                accuracy(o.accuracy)
            )
        })
        .collect();
    Some(format!(
        "Against Ioffe & Szegedy 2015 (Section 4.1: with batch norm their MNIST network trains faster and ends more accurate), the mean validation accuracy of the trained runs first reaches {}: {}.",
        percent(LEARNT),
        parts.join("; ")
    ))
}

/// Yang et al. 2019's per-layer growth of the gradient's squared norm under batch norm,
/// for ReLU at infinite width and batch: pi / (pi - 1).
pub const YANG_RELU_FACTOR: f64 = std::f64::consts::PI / (std::f64::consts::PI - 1.0);

/// Yang et al. 2019: batch norm makes the error grow toward the input, for ReLU by
/// pi / (pi - 1) per layer in mean square. Ours: the ReLU networks with batch norm (and no
/// skips), each depth's measured error factor at step 0, squared (geometric mean over
/// runs, with its interval).
fn yang_2019(a: &Analysis) -> Option<String> {
    let with: Vec<usize> = a
        .with_finished()
        .into_iter()
        .filter(|&i| {
            let c = &a.scenarios[i].point.config;
            c.activation == Activation::Relu && c.norm == Norm::Batch && !c.residual
        })
        .collect();
    let parts: Vec<String> = with
        .iter()
        .filter_map(|&i| {
            let g = a.stats[i].regime.start.split.positive?;
            let layers = a.scenarios[i].point.config.layers;
            Some(format!(
                "{} at {layers} layers ({}-{})",
                sig(g.geo_mean * g.geo_mean, 3),
                sig(g.ci_low * g.ci_low, 3),
                sig(g.ci_high * g.ci_high, 3)
            ))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "Against Yang et al. 2019 (with batch norm the gradient's squared norm grows by pi / (pi - 1) = {} per layer toward the input for ReLU, at infinite width and batch): the measured factor of the error's mean square per layer at step 0, geometric mean over runs with its 95% interval, is {}.",
        sig(YANG_RELU_FACTOR, 3),
        and_list(&parts)
    ))
}

/// The mean square of the pre-activations of hidden layer `l` (1-based) at `step`.
pub(crate) fn mean_square(step: &vgrad_record::StepRecord, l: usize) -> Option<f64> {
    let z = step.layers.get(l - 1)?.preact?;
    Some(z.mean * z.mean + z.std * z.std)
}

/// Hanin & Rolnick 2018 (with Fixup and SkipInit): unscaled residual branches make the
/// signal grow geometrically with depth. Ours: the ReLU residual networks with He-normal
/// weights, each one's measured growth per block at step 0, (ms(z_(L-1)) /
/// ms(z_2))^(1 / (L - 3)) over the skip layers 2..L-1 (geometric mean over runs), against
/// the wide-limit recursion of `vgrad_theory::residual`.
fn hanin_2018(a: &Analysis) -> Option<String> {
    let parts: Vec<String> = a
        .with_finished()
        .into_iter()
        .filter_map(|i| {
            let c = &a.scenarios[i].point.config;
            let he_relu = c.activation == Activation::Relu
                && c.init == Init::HeNormal
                && c.residual
                && c.norm == Norm::None
                && c.layers >= 4;
            if !he_relu {
                return None;
            }
            let branches = c.layers - 2;
            let alpha = c.branch_scale.fixed(branches).unwrap_or(0.0);
            let predicted = vgrad_theory::residual::relu_growth_per_block(alpha, c.layers - 3);
            let blocks = (c.layers - 3) as f64;
            let growth: Vec<f64> = a.scenarios[i]
                .finished()
                .filter_map(|(r, _)| {
                    let first = r.steps.first()?;
                    let ratio = mean_square(first, c.layers - 1)? / mean_square(first, 2)?;
                    (ratio > 0.0 && ratio.is_finite()).then(|| ratio.powf(1.0 / blocks))
                })
                .collect();
            let measured = crate::stats::geo_mean(growth)?;
            Some(format!(
                "{} {} (predicted {})",
                a.named(i),
                sig(measured, 3),
                sig(predicted, 3)
            ))
        })
        .collect();
    if parts.is_empty() || parts.len() > Analysis::NAMED_IN_A_SENTENCE {
        return None;
    }
    Some(format!(
        "Against Hanin & Rolnick 2018 (unscaled residual branches make the signal grow geometrically with depth; alpha = 1/sqrt(blocks) as in Fixup keeps it bounded, SkipInit's alpha = 0 makes each block the identity; the prediction here is the wide-limit growth per block of a ReLU network at He's variance, whose residual stream has a positive mean, `vgrad_theory::residual`): the measured growth per block of the pre-activations' mean square at step 0, geometric mean over runs, is {}.",
        and_list(&parts)
    ))
}

/// He et al. 2015: with their init, deep ReLU networks train where Glorot's stalls (their
/// 30-layer convolutional network on ImageNet). Ours: the deepest ReLU networks of the
/// sweep under both inits.
fn he_2015(a: &Analysis) -> Option<String> {
    let relu = |c: &RunConfig| {
        c.activation == Activation::Relu
            && c.norm == Norm::None
            && !c.residual
            && c.optimizer == Optimizer::Adam
    };
    let deep = a
        .scenarios
        .iter()
        .filter(|s| relu(&s.point.config))
        .map(|s| s.point.config.layers)
        .max()?;
    let find = |init: Init| {
        (0..a.scenarios.len()).find(|&i| {
            let c = &a.scenarios[i].point.config;
            relu(c) && c.layers == deep && c.init == init
        })
    };
    let (he, glorot) = (find(Init::HeNormal)?, find(Init::GlorotUniform)?);
    let describe = |i: usize| {
        let o = &a.stats[i].outcome;
        format!(
            "{} ({}; test accuracy {})",
            a.named(i),
            o.cell(),
            accuracy(o.accuracy)
        )
    };
    Some(format!(
        "Against He et al. 2015 (their 30-layer ReLU network on ImageNet trains with their init and stalls with Glorot's; a qualitative claim, no number of theirs is comparable here): at {deep} layers, {} against {}.",
        describe(he),
        describe(glorot)
    ))
}

/// He et al. 2016 (Fig. 1, Table 2): with batch norm after every convolution, their
/// 34-layer plain network reaches a higher training error than the 18-layer one, and the
/// residual twins reverse that. Ours: the kinds of network with batch norm, the deepest
/// against the shallowest by training loss (`depth_fit`), plain and residual.
fn he_2016(a: &Analysis) -> Option<String> {
    use crate::measures::depth_fit::Fit;
    let ratio = |g: &crate::measures::depth_fit::Group| {
        let (s, d) = (g.rungs.first()?.loss?, g.rungs.last()?.loss?);
        let word = match g.verdict?.0 {
            Fit::Worse => "higher",
            Fit::Same => "no clear difference",
            Fit::Better => "lower",
        };
        Some(format!(
            "{} times the {}-layer one's under {} ({word})",
            sig(d.geo_mean / s.geo_mean, 3),
            g.rungs.first()?.layers,
            crate::format::bold(&g.label),
        ))
    };
    let with_norm: Vec<String> = a
        .depth_fit
        .iter()
        .filter(|g| {
            g.rungs
                .first()
                .is_some_and(|r| a.scenarios[r.scenario].point.config.norm == Norm::Batch)
        })
        .filter_map(ratio)
        .collect();
    if with_norm.is_empty() {
        return None;
    }
    let deep = a.depth_fit.first()?.rungs.last()?.layers;
    Some(format!(
        "Against He et al. 2016 (with batch norm, their 34-layer plain network ends with a higher training error than the 18-layer one on ImageNet, and their residual twin with a lower one; qualitative, after far longer training): with batch norm, the {deep}-layer network's training loss here is {}.",
        and_list(&with_norm)
    ))
}

/// The sentence comparing the sweep with `paper`, where its scenarios allow one.
fn comparison(a: &Analysis, paper: Paper) -> Option<String> {
    match paper {
        Paper::Post => post(a),
        Paper::Glorot2010 => glorot_2010(a),
        Paper::Ioffe2015 => ioffe_szegedy_2015(a),
        Paper::He2015 => he_2015(a),
        Paper::Schoenholz2017 => crate::measures::phase::against_the_paper(a),
        Paper::Yang2019 => yang_2019(a),
        Paper::Hanin2018 => hanin_2018(a),
        Paper::He2016 => he_2016(a),
        Paper::Pennington2017 => crate::measures::isometry::against_the_paper(a),
        Paper::Pascanu2013 | Paper::Jozefowicz2015 | Paper::Le2015 | Paper::Hochreiter1997 => {
            crate::measures::through_time::against_the_paper(a, paper)
        }
    }
}

/// Every comparison with a paper the sweep names.
fn comparisons(a: &Analysis) -> Vec<String> {
    a.sweep
        .definition
        .papers
        .iter()
        .filter_map(|(paper, _)| comparison(a, *paper))
        .collect()
}

/// The first comparison, for the report's opening.
pub fn answer(a: &Analysis) -> Option<String> {
    comparisons(a).into_iter().next()
}

/// The section: each paper the sweep names, its setup beside ours, then the comparison.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Against the papers");
    for (paper, setup) in &a.sweep.definition.papers {
        s.text(setup.trim());
        if let Some(sentence) = comparison(a, *paper) {
            s.text(sentence);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, scenario, sweep};

    /// The paper sentences of the reference network over sigmoid and ReLU, on `data`.
    fn reference_on(data: &str) -> Vec<String> {
        let sweep = sweep(&format!(
            "seeds = 2\n[base]\ndata = \"{data}\"\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\n\
             [papers]\npost = \"| | the post | here |\"\n"
        ));
        let scenarios: Vec<_> = sweep
            .points
            .iter()
            .map(|p| scenario(p, &[Spec::new(0), Spec::new(1)]))
            .collect();
        comparisons(&Analysis::new(&sweep, &scenarios))
    }

    #[test]
    fn the_post_is_compared_only_with_its_own_network_and_data() {
        let text = reference_on("auto").join(" ");
        assert!(
            text.contains("under **sigmoid** (the post: about 30)"),
            "{text}"
        );
        assert!(
            text.contains("under **relu** (the post: about 6)"),
            "{text}"
        );
        assert!(reference_on("fashion").is_empty());
    }

    #[test]
    fn yang_2019_is_set_against_the_relu_networks_with_batch_norm_alone() {
        let sweep = sweep(
            "seeds = 2\n[base]\nnorm = \"batch\"\nsteps = 300\nlog_every = 100\n[axes]\n\
             activation = [\"relu\", \"tanh\"]\nlayers = [8, 16]\n\
             [papers]\nyang2019 = \"| | Yang et al. 2019 | here |\"\n",
        );
        // The error's rms grows by sqrt(pi / (pi - 1)) per layer, so its mean square by
        // pi / (pi - 1); tanh's networks grow less and are left out.
        let scenarios: Vec<_> = sweep
            .points
            .iter()
            .map(|p| {
                let relu = p.config.activation == Activation::Relu;
                let spec = |seed| Spec {
                    layers: p.config.layers,
                    factor_start: if relu { YANG_RELU_FACTOR.sqrt() } else { 1.1 },
                    ..Spec::new(seed)
                };
                scenario(p, &[spec(0), spec(1)])
            })
            .collect();
        let text = comparisons(&Analysis::new(&sweep, &scenarios)).join(" ");
        assert!(text.contains("pi / (pi - 1) = 1.47 per layer"), "{text}");
        assert!(text.contains("is 1.47 at 8 layers"), "{text}");
        assert!(text.contains("and 1.47 at 16 layers"), "{text}");
        assert!(
            !text.contains("1.21"),
            "tanh's factor squared is not set against it: {text}"
        );
    }

    #[test]
    fn hanin_2018_sets_each_he_relu_residual_network_against_the_recursion() {
        let sweep = sweep(
            "seeds = 2\n[base]\nactivation = \"relu\"\nresidual = true\nsteps = 300\n\
             log_every = 100\n[axes]\ninit = [\"he-normal\", \"glorot-uniform\"]\n\
             branch_scale = [\"one\", \"skipinit\"]\n\
             [papers]\nhanin2018 = \"| | Hanin & Rolnick 2018 | here |\"\n",
        );
        let scenarios: Vec<_> = sweep
            .points
            .iter()
            .map(|p| scenario(p, &[Spec::new(0), Spec::new(1)]))
            .collect();
        let text = comparisons(&Analysis::new(&sweep, &scenarios)).join(" ");
        // The synthetic pre-activations at step 0 have mean 0.1 l and sd 1 at layer l: over
        // layers 2..5 of 6, (1.25 / 1.04)^(1/3) = 1.06 a block.
        let one = vgrad_theory::residual::relu_growth_per_block(1.0, 3);
        assert!(
            text.contains(&format!("1.06 (predicted {})", sig(one, 3))),
            "{text}"
        );
        assert!(text.contains("1.06 (predicted 1.00)"), "{text}");
        assert!(
            !text.contains("glorot-uniform"),
            "only He's variance: {text}"
        );
    }
}
