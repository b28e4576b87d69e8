//! Dynamical isometry (Pennington, Schoenholz & Ganguli 2017): the singular values of the
//! hidden chain d h_(L-1) / d h_1 at initialisation, orthogonal weights against Gaussian
//! ones of the same variance, and how fast each network then learns.

use vgrad_record::step::{CHAIN_RESOLUTION, ISOMETRY_BAND};
use vgrad_record::{ChainSpectrum, Histogram, Init};
use vgrad_sweep::Paper;
use vgrad_theory::{FixedPoint, MeanField, run_bias_variance};

use crate::Scenario;
use crate::document::{Section, Table};
use crate::format::{accuracy, and_list, bold, geometric, percent, sig};
use crate::measures::Analysis;
use crate::setting::{baseline_of, hidden_sigma_w2};
use crate::stats::{AccuracySummary, GeometricSummary, geo_mean, mean};

/// The hidden chain's spectrum at step 0 over a scenario's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainStats {
    /// Hidden-to-hidden Jacobians in the chain: the dense layers less the first and the
    /// output layer.
    pub depth: usize,
    /// The share of singular values within [`ISOMETRY_BAND`], per run, with an interval
    /// over runs (Student t on the logit scale, as accuracies).
    pub near_one: AccuracySummary,
    /// The mean share below [`CHAIN_RESOLUTION`] times the largest, 0 included (the SVD
    /// rounds some such values to 0; a ReLU's inactive units give exact zeros).
    pub unresolved: f64,
    /// The mean over runs of the standard deviation of the resolved values' logarithms.
    pub log_spread: Option<f64>,
    /// The geometric mean over runs of the median singular value.
    pub median: Option<f64>,
    /// The geometric mean over runs of the largest.
    pub max: Option<f64>,
    /// The runs' histograms, summed.
    pub hist: Histogram,
}

impl ChainStats {
    /// The spectra at step 0 of `scenario`'s runs; `None` where none was measured.
    pub fn of(scenario: &Scenario) -> Option<Self> {
        let spectra: Vec<&ChainSpectrum> = scenario
            .all_steps()
            .into_iter()
            .filter_map(|s| s.first()?.chain.as_ref())
            .collect();
        let first = spectra.first()?;
        let mut hist = first.hist.clone();
        for s in &spectra[1..] {
            if s.hist.edges != hist.edges {
                continue;
            }
            for (total, c) in hist.counts.iter_mut().zip(&s.hist.counts) {
                *total += c;
            }
            hist.num += s.hist.num;
        }
        let shares: Vec<f64> = spectra.iter().map(|s| s.near_one).collect();
        Some(Self {
            depth: scenario.point.config.layers.saturating_sub(2),
            near_one: AccuracySummary::of(&shares)?,
            unresolved: mean(spectra.iter().map(|s| s.unresolved)).unwrap_or(f64::NAN),
            log_spread: mean(
                spectra
                    .iter()
                    .map(|s| s.log_spread)
                    .filter(|v| v.is_finite()),
            ),
            median: geo_mean(spectra.iter().map(|s| s.median)),
            max: geo_mean(spectra.iter().map(|s| s.max)),
            hist,
        })
    }

    /// The density of the singular values per decade, at each bucket's geometric centre
    /// (buckets bounded on both sides and above 0 only).
    pub fn density(&self) -> Vec<(f64, f64)> {
        let total = self.hist.counts.iter().sum::<u64>() as f64;
        self.hist
            .edges
            .windows(2)
            .zip(&self.hist.counts[1..])
            .filter(|(e, _)| e[0] > 0.0)
            .map(|(e, &c)| {
                let decades = (e[1] / e[0]).log10();
                ((e[0] * e[1]).sqrt(), c as f64 / total / decades)
            })
            .collect()
    }
}

/// A scenario's measures for the isometry question, computed once per report.
#[derive(Debug, Clone, PartialEq)]
pub struct IsometryStats {
    /// The hidden chain's spectrum at step 0.
    pub chain: Option<ChainStats>,
    /// The training loss early in the run ([`early_loss`]).
    pub early_loss: Option<(usize, GeometricSummary)>,
}

impl IsometryStats {
    /// The measures of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        Self {
            chain: ChainStats::of(scenario),
            early_loss: early_loss(scenario),
        }
    }
}

/// Scenario `i`'s chain spectrum, where it has one.
fn chain<'a>(a: &'a Analysis, i: usize) -> Option<&'a ChainStats> {
    a.stats[i].isometry.chain.as_ref()
}

/// Whether the sweep asks Pennington et al.'s question: it names the paper and measured
/// a hidden chain.
pub fn applies(a: &Analysis) -> bool {
    a.sweep
        .definition
        .papers
        .iter()
        .any(|(p, _)| *p == Paper::Pennington2017)
        && (0..a.scenarios.len()).any(|i| chain(a, i).is_some())
}

/// The orthogonal scenarios with their Gaussian twin (same activation, sigma_w^2 and axes).
fn pairs(a: &Analysis) -> Vec<(usize, usize)> {
    (0..a.scenarios.len())
        .filter(|&i| matches!(a.scenarios[i].point.config.init, Init::Orthogonal { .. }))
        .filter_map(|i| Some((i, baseline_of(a.scenarios, i)?)))
        .collect()
}

/// A scenario's kind without its depth: `tanh-orthogonal-1.05`.
fn kind(a: &Analysis, i: usize) -> String {
    a.scenarios[i].point.label_without("layers")
}

/// An orthogonal kind of network and its Gaussian twin, at every depth of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct KindPair {
    /// The orthogonal kind's label without its depth.
    pub orthogonal: String,
    /// The Gaussian kind's.
    pub gaussian: String,
    /// `(orthogonal, gaussian)` scenario indices, shallowest first.
    pub members: Vec<(usize, usize)>,
}

/// The orthogonal kinds with their Gaussian kinds, one per pair of kinds, in grid order.
fn kind_pairs(a: &Analysis) -> Vec<KindPair> {
    let mut out: Vec<KindPair> = Vec::new();
    for (o, g) in pairs(a) {
        let (ko, kg) = (kind(a, o), kind(a, g));
        match out
            .iter_mut()
            .find(|p| p.orthogonal == ko && p.gaussian == kg)
        {
            Some(p) => p.members.push((o, g)),
            None => out.push(KindPair {
                orthogonal: ko,
                gaussian: kg,
                members: vec![(o, g)],
            }),
        }
    }
    for p in &mut out {
        p.members
            .sort_by_key(|&(o, _)| a.scenarios[o].point.config.layers);
    }
    out
}

/// How two intervals compare: the first's above, below, or the two overlapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The first interval lies above the second.
    Above,
    /// They overlap.
    Overlapping,
    /// The first lies below.
    Below,
}

impl Order {
    /// The order of two summaries by their 95% intervals (none without one).
    pub fn of(first: &AccuracySummary, second: &AccuracySummary) -> Self {
        Self::of_intervals(bounds(first), bounds(second))
    }

    /// The order of two intervals `(low, high)`.
    pub fn of_intervals((lo1, hi1): (f64, f64), (lo2, hi2): (f64, f64)) -> Self {
        if lo1 > hi2 {
            Self::Above
        } else if hi1 < lo2 {
            Self::Below
        } else {
            Self::Overlapping
        }
    }

    /// How the first compares with the second, in words.
    fn words(self) -> &'static str {
        match self {
            Self::Above => "higher",
            Self::Overlapping => "within each other's intervals",
            Self::Below => "lower",
        }
    }
}

fn bounds(s: &AccuracySummary) -> (f64, f64) {
    bounds_of(s.ci_low, s.ci_high)
}

/// A summary's 95% interval; the whole line where it has none (one seed), so that no
/// order is claimed without an interval, as `AccuracySummary::apart_from` and
/// `GeometricSummary`'s readers do.
fn bounds_of(low: f64, high: f64) -> (f64, f64) {
    if low.is_nan() || high.is_nan() {
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        (low, high)
    }
}

/// The answer: the share of each pair's spectrum within the band at each depth, what the
/// deepest chains leave unresolved, and the accuracy that follows (the paper's sentence
/// follows it in the report's answer).
pub fn answer(a: &Analysis) -> Vec<String> {
    let kinds = kind_pairs(a);
    let (low, high) = ISOMETRY_BAND;
    let mut out = Vec::new();
    let clauses: Vec<String> = kinds
        .iter()
        .filter_map(|pair| {
            let (ko, kg, members) = (&pair.orthogonal, &pair.gaussian, &pair.members);
            let depths: Vec<String> = members
                .iter()
                .map(|&(o, _)| a.scenarios[o].point.config.layers - 2)
                .map(|d| d.to_string())
                .collect();
            let shares = |pick: fn(&(usize, usize)) -> usize| -> Option<Vec<String>> {
                members
                    .iter()
                    .map(|m| Some(share(&chain(a, pick(m))?.near_one)))
                    .collect()
            };
            let (so, sg) = (shares(|m| m.0)?, shares(|m| m.1)?);
            Some(format!(
                "{} at chain depths {}: {} against {} for {}",
                bold(ko),
                and_list(&depths),
                so.join(", "),
                sg.join(", "),
                bold(kg)
            ))
        })
        .collect();
    if !clauses.is_empty() {
        out.push(format!(
            "At initialisation, the share of the hidden chain's singular values within \
             [{low}, {high}] (d h_(L-1) / d h_1, pooled over the probe's examples; 95% \
             intervals over seeds) is, for {}.",
            clauses.join("; ")
        ));
    }
    out.extend(unresolved_sentence(a));
    out.extend(learning_sentence(a, &kinds));
    out
}

/// A share as a percentage with its interval.
fn share(s: &AccuracySummary) -> String {
    accuracy(Some(*s))
}

/// The deepest chains whose spectra spread beyond what the product resolves.
fn unresolved_sentence(a: &Analysis) -> Option<String> {
    let deepest = crate::setting::deepest(a.scenarios)?;
    let spread: Vec<String> = (0..a.scenarios.len())
        .filter(|&i| a.scenarios[i].point.config.layers == deepest)
        .filter_map(|i| {
            let st = chain(a, i)?;
            (st.unresolved > 0.0)
                .then(|| format!("{} of {}'s", percent(st.unresolved), bold(&kind(a, i))))
        })
        .collect();
    (!spread.is_empty()).then(|| {
        format!(
            "At chain depth {}, {} singular values lie below {} times the largest, beyond \
             what a product of f64 matrices resolves (0 included: a ReLU's inactive units \
             make some exactly 0): those spectra span more than {} decades.",
            deepest - 2,
            and_list(&spread),
            sig(CHAIN_RESOLUTION, 1),
            -CHAIN_RESOLUTION.log10()
        )
    })
}

/// The training loss on the logged batch at the first logged step at or after a tenth of
/// the run, over every finished run with a finite loss there (collapsed ones included):
/// how far each network got early. The step, and the geometric summary over seeds.
pub fn early_loss(scenario: &Scenario) -> Option<(usize, GeometricSummary)> {
    let at = (scenario.point.config.steps / 10).max(1);
    let runs = scenario.all_steps();
    let step = runs.first()?.iter().map(|r| r.step).find(|&s| s >= at)?;
    let losses: Vec<f64> = runs
        .iter()
        .filter_map(|s| s.iter().find(|r| r.step == step))
        .map(|r| r.loss)
        .filter(|l| l.is_finite() && *l > 0.0)
        .collect();
    Some((step, GeometricSummary::of(&losses)?))
}

/// For each pair of kinds, how the orthogonal network's `value` compares with its Gaussian
/// twin's at each depth, by their intervals: `**a** against **b**: lower at chain depths
/// 32 and 128 and within each other's intervals at chain depth 8`.
fn compared(
    a: &Analysis,
    kinds: &[KindPair],
    value: impl Fn(usize) -> Option<(f64, f64)>,
) -> Vec<String> {
    let depth = |i: usize| a.scenarios[i].point.config.layers - 2;
    kinds
        .iter()
        .filter_map(|pair| {
            let mut by_order: Vec<(Order, Vec<String>)> = Vec::new();
            for &(o, g) in &pair.members {
                let (Some(vo), Some(vg)) = (value(o), value(g)) else {
                    continue;
                };
                let order = Order::of_intervals(vo, vg);
                match by_order.iter_mut().find(|(x, _)| *x == order) {
                    Some((_, ds)) => ds.push(depth(o).to_string()),
                    None => by_order.push((order, vec![depth(o).to_string()])),
                }
            }
            let parts: Vec<String> = by_order
                .into_iter()
                .map(|(order, ds)| {
                    let at = if ds.len() == 1 { "depth" } else { "depths" };
                    format!("{} at chain {at} {}", order.words(), and_list(&ds))
                })
                .collect();
            (!parts.is_empty()).then(|| {
                format!(
                    "{} against {}: {}",
                    bold(&pair.orthogonal),
                    bold(&pair.gaussian),
                    and_list(&parts)
                )
            })
        })
        .collect()
}

/// How each orthogonal network learns against its Gaussian twin at each depth: its
/// training loss early (every run) and its test accuracy at the end (trained runs); and
/// which runs did not train.
fn learning_sentence(a: &Analysis, kinds: &[KindPair]) -> Option<String> {
    let first = kinds.first()?.members.first()?.0;
    let c = &a.scenarios[first].point.config;
    let early = compared(a, kinds, |i| {
        let (_, g) = a.stats[i].isometry.early_loss?;
        Some(bounds_of(g.ci_low, g.ci_high))
    });
    let end = compared(a, kinds, |i| {
        let s = a.stats[i].outcome.accuracy?;
        Some(bounds_of(s.ci_low, s.ci_high))
    });
    if early.is_empty() && end.is_empty() {
        return None;
    }
    let mut text = format!(
        "Trained by `{}` at learning rate {} (batch {}), orthogonal networks against their \
         Gaussian twins",
        c.optimizer, c.lr, c.batch_size
    );
    if let Some((step, _)) = a.stats[first].isometry.early_loss {
        text.push_str(&format!(
            ": the training loss on the logged batch at step {step} (every run; lower is \
             faster) is, for {}",
            early.join("; ")
        ));
    }
    text.push_str(&format!(
        "; the test accuracy after {} steps (trained runs) is, for {}.",
        c.steps,
        end.join("; ")
    ));
    let depth = |i: usize| a.scenarios[i].point.config.layers - 2;
    let untrained: Vec<String> = kinds
        .iter()
        .flat_map(|p| p.members.iter().flat_map(|&(o, g)| [o, g]))
        .filter(|&i| a.stats[i].outcome.trained() < a.scenarios[i].runs.len())
        .map(|i| {
            format!(
                "{} at chain depth {} ({})",
                bold(&kind(a, i)),
                depth(i),
                a.stats[i].outcome.cell()
            )
        })
        .collect();
    if !untrained.is_empty() {
        text.push_str(&format!(
            " Not every run trained under {}.",
            and_list(&untrained)
        ));
    }
    Some(text)
}

/// q*, the variance theory's critical networks settle at, beside the first layer's
/// measured q, which the MNIST pixels set.
fn input_sentence(a: &Analysis) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    let parts: Vec<String> = (0..a.scenarios.len())
        .filter_map(|i| {
            let c = &a.scenarios[i].point.config;
            let sigma_w2 = hidden_sigma_w2(c);
            let sigma_b2 = run_bias_variance(c).ok()?;
            let FixedPoint::Finite(q) = MeanField::new(c.activation, sigma_w2, sigma_b2)
                .ok()?
                .fixed_point()
            else {
                return None;
            };
            let key = format!("{} {}", c.activation, sig(sigma_w2, 3));
            if seen.contains(&key) {
                return None;
            }
            seen.push(key);
            let q1 = first_layer_q(a, i)?;
            Some(format!(
                "{} at sigma_w^2 = {} (sigma_b^2 = {}): q* = {}, q_1 = {}",
                c.activation,
                sig(sigma_w2, 3),
                sig(sigma_b2, 3),
                sig(q, 3),
                sig(q1, 2)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "The theory's critical networks have their pre-activations' variance at q* in \
             every layer; here the first layer's, q_1 (mean square at step 0), is set by the \
             pixels, and the layers after it approach q* ({}).",
            parts.join("; ")
        )
    })
}

/// The first hidden layer's mean squared pre-activation at step 0 (mean over runs).
fn first_layer_q(a: &Analysis, i: usize) -> Option<f64> {
    mean(
        a.scenarios[i]
            .all_steps()
            .into_iter()
            .filter_map(|s| super::papers::mean_square(s.first()?, 1)),
    )
}

/// The sentence against Pennington et al. 2017: whether orthogonal weights keep more of
/// the spectrum near 1 than Gaussian ones at every depth, for each pair of kinds.
pub fn against_the_paper(a: &Analysis) -> Option<String> {
    let kinds = kind_pairs(a);
    let clauses: Vec<String> = kinds
        .iter()
        .filter_map(|pair| {
            let (ko, kg, members) = (&pair.orthogonal, &pair.gaussian, &pair.members);
            let orders: Vec<Order> = members
                .iter()
                .map(|&(o, g)| Some(Order::of(&chain(a, o)?.near_one, &chain(a, g)?.near_one)))
                .collect::<Option<_>>()?;
            let above = orders.iter().filter(|o| **o == Order::Above).count();
            Some(format!(
                "{} keeps more of its spectrum within the band than {} at {above} of {} depths",
                bold(ko),
                bold(kg),
                orders.len()
            ))
        })
        .collect();
    (!clauses.is_empty()).then(|| {
        format!(
            "Against Pennington et al. 2017, who find in the wide limit that at criticality \
             orthogonal tanh weights at small q* keep the spectrum concentrated near 1 at any \
             depth while Gaussian weights spread it as depth grows, and that ReLU reaches \
             isometry with neither (qualitative: their networks and training differ, as the \
             table under Against the papers says): {}.",
            and_list(&clauses)
        )
    })
}

/// The section: each scenario's chain spectrum at step 0 and its test accuracy.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Dynamical isometry");
    if !applies(a) {
        return s;
    }
    let (low, high) = ISOMETRY_BAND;
    s.text(format!(
        "The hidden chain is d h_(L-1) / d h_1, the product of the hidden-to-hidden layers' \
         Jacobians (chain depth = dense layers - 2), measured at step 0 on the probe's test \
         images; its singular values are pooled over those images. Within [{low}, {high}] is \
         the share near an isometry (95% interval over seeds); unresolved, the share below {} \
         times the largest, which the f64 product cannot tell from 0 (0 included); the log \
         spread is the standard deviation \
         of ln s over the resolved values (0 for an isometry up to scale); the median and the \
         largest are geometric means over seeds. The early training loss is the loss on the \
         logged batch at the first logged step at or after a tenth of the run, every run that \
         did not diverge (geometric mean, 95% interval); test accuracy is after training, \
         trained runs.",
        sig(CHAIN_RESOLUTION, 1)
    ));
    let mut t = Table::new([
        "scenario",
        "chain depth",
        "within the band",
        "unresolved",
        "log spread",
        "median",
        "largest",
        "early training loss",
        "test accuracy",
    ]);
    for i in 0..a.scenarios.len() {
        let Some(st) = chain(a, i) else {
            continue;
        };
        let opt = |v: Option<f64>| v.map_or("n/a".into(), |v| sig(v, 3));
        let median = match (st.median, st.max) {
            (Some(m), Some(x)) if m <= x * CHAIN_RESOLUTION => "unresolved".into(),
            (m, _) => opt(m),
        };
        t.row([
            kind(a, i),
            st.depth.to_string(),
            share(&st.near_one),
            percent(st.unresolved),
            opt(st.log_spread),
            median,
            opt(st.max),
            a.stats[i]
                .isometry
                .early_loss
                .map_or("n/a".into(), |(step, g)| {
                    format!("{} (step {step})", geometric(Some(g)))
                }),
            accuracy(a.stats[i].outcome.accuracy),
        ]);
    }
    s.table(t);
    if let Some(sentence) = input_sentence(a) {
        s.text(sentence);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, scenario, sweep};

    /// Two depths of tanh orthogonal weights (a chain near 1) against Gaussian ones (a
    /// chain spread over decades, some of it unresolved at the deeper), the orthogonal
    /// network training to 90%, the Gaussian to 30%.
    fn report() -> (Vec<String>, String) {
        let sweep = sweep(
            "seeds = 2\n[base]\nactivation = \"tanh\"\nwidth = 4\nsteps = 300\n\
             bias_variance = \"critical\"\n[axes]\nlayers = [6, 10]\n\
             [[scenarios]]\nname = \"gaussian\"\ninit = \"variance:1.05\"\n\
             [[scenarios]]\nname = \"orthogonal\"\ninit = \"orthogonal:1.0246950766\"\n\
             [papers]\npennington2017 = \"| | the paper | here |\"\n",
        );
        let scenarios: Vec<_> = sweep
            .points
            .iter()
            .map(|p| {
                let orthogonal = p.label().starts_with("orthogonal");
                let deep = p.config.layers == 10;
                let spec = |seed| Spec {
                    test_acc: if orthogonal { 0.9 } else { 0.3 } + 0.01 * seed as f64,
                    ..Spec::new(seed)
                };
                let mut sc = scenario(p, &[spec(0), spec(1)]);
                for (seed, run) in sc.runs.iter_mut().enumerate() {
                    let jitter = 0.01 * seed as f64;
                    let values: Vec<f64> = match (orthogonal, deep) {
                        (true, false) => vec![1.0, 1.1, 0.9, 1.2 + jitter],
                        (true, true) => vec![1.0, 1.5, 0.6, 0.3 + jitter],
                        (false, false) => vec![1.0, 0.3, 3.0, 1e-3 + jitter],
                        (false, true) => vec![4.0 + jitter, 1e-3, 1e-14, 0.0],
                    };
                    run.steps[0].chain = Some(ChainSpectrum::of(&values, 1));
                    // Step 100, the first at or after a tenth of 300: the orthogonal
                    // network's loss lower at the deeper chain only.
                    run.steps[1].loss = if orthogonal && deep { 0.5 } else { 2.0 } + jitter;
                }
                sc
            })
            .collect();
        let a = Analysis::new(&sweep, &scenarios);
        assert!(applies(&a));
        (answer(&a), section(&a).markdown(2, ""))
    }

    #[test]
    fn the_answer_gives_the_tables_shares_and_orders_the_accuracies_by_their_intervals() {
        let (answer, table) = report();
        let all = answer.join(" ");
        // Shares: orthogonal 100%, 75%; Gaussian 25%, 0%: the table's cells.
        assert!(
            all.contains("**orthogonal** at chain depths 4 and 8: 100.0%"),
            "{all}"
        );
        for row in table
            .lines()
            .filter(|l| l.starts_with("| orthogonal") || l.starts_with("| gaussian"))
        {
            let cell = row.split(" | ").nth(2).unwrap();
            assert!(all.contains(cell), "{cell} not in {all}");
        }
        assert!(table.contains("| gaussian | 8 | 0.0%"), "{table}");
        // Half of the deep Gaussian chain is below 1e-12 of its largest, 0 included.
        assert!(
            all.contains(
                "50.0% of **gaussian**'s singular values lie below 1e-12 times the largest"
            ),
            "{all}"
        );
        assert!(
            table.contains("| gaussian | 8 | 0.0% [0.0%, 0.0%] | 50.0% |"),
            "{table}"
        );
        assert!(
            all.contains(
                "the test accuracy after 300 steps (trained runs) is, for **orthogonal** \
                 against **gaussian**: higher at chain depths 4 and 8."
            ),
            "{all}"
        );
        assert!(
            all.contains(
                "at step 100 (every run; lower is faster) is, for **orthogonal** against \
                 **gaussian**: within each other's intervals at chain depth 4 and lower at \
                 chain depth 8;"
            ),
            "{all}"
        );
        assert!(
            table.contains("| 0.505 [0.445, 0.573] (step 100) |"),
            "{table}"
        );
        assert!(!all.contains("Not every run trained"), "{all}");
    }

    fn summary(mean: f64, low: f64, high: f64) -> AccuracySummary {
        AccuracySummary {
            n: 3,
            mean,
            sd: 0.01,
            ci_low: low,
            ci_high: high,
        }
    }

    #[test]
    fn intervals_order_only_when_apart() {
        let high = summary(0.9, 0.85, 0.95);
        let low = summary(0.3, 0.2, 0.4);
        let near = summary(0.83, 0.8, 0.86);
        assert_eq!(Order::of(&high, &low), Order::Above);
        assert_eq!(Order::of(&low, &high), Order::Below);
        assert_eq!(Order::of(&high, &near), Order::Overlapping);
        // One seed has no interval: no order, however far apart the values.
        let one = AccuracySummary {
            n: 1,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            ..summary(0.99, 0.0, 0.0)
        };
        assert_eq!(Order::of(&one, &low), Order::Overlapping);
    }
}
