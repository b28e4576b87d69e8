//! How well networks of one kind fit their training data after the same number of steps,
//! against depth: He et al. 2016's question (Fig. 1: a deeper plain network reaches a
//! higher training error than a shallower one; its residual twin does not). A deeper
//! network that fits worse while its loss is still falling may only be slower: at one
//! budget that is not the degradation the paper describes, and the sentences say so.

use vgrad_record::{RunStatus, StepRecord};

use crate::document::{Section, Table};
use crate::format::{and_list, geometric};
use crate::measures::Analysis;
use crate::setting::{groups, without_depth};
use crate::stats::GeometricSummary;
use crate::{Scenario, format};

/// A depth of one kind of network.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    /// The scenario.
    pub scenario: usize,
    /// Its layers.
    pub layers: usize,
    /// The training loss after training (`train_loss` of `summary.json`) of the runs that
    /// did not diverge, collapsed ones included (not fitting is what is asked): geometric
    /// mean over seeds with its 95% interval.
    pub loss: Option<GeometricSummary>,
    /// The mean training error (1 - accuracy on the same images) of the same runs.
    pub error: Option<f64>,
    /// Whether the batch loss was still falling when training stopped.
    pub trend: Option<Trend>,
}

/// Whether a loss was still falling at the end of the budget: the mean batch loss of the
/// last two logged steps of the `--log-every` grid against the two before them, as a ratio
/// over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// The ratio's 95% interval lies below 1 (with one seed: the ratio is below 1).
    Falling,
    /// It does not: the loss had levelled off, within the seeds' spread.
    Level,
}

/// The deepest network of a kind against the shallowest, by training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Its loss's interval lies above the shallow network's.
    Worse,
    /// The two intervals overlap, or a single seed gives none.
    Same,
    /// Its loss's interval lies below.
    Better,
}

/// One kind of network (the scenario without its depth) over its depths.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The scenario's label without its depth.
    pub label: String,
    /// Whether its networks are residual.
    pub residual: bool,
    /// Its depths, shallowest first.
    pub rungs: Vec<Rung>,
    /// The deepest against the shallowest, and the deepest's trend; `None` where either
    /// has no training loss.
    pub verdict: Option<(Fit, Option<Trend>)>,
}

impl Group {
    fn shallowest(&self) -> &Rung {
        &self.rungs[0]
    }

    fn deepest(&self) -> &Rung {
        &self.rungs[self.rungs.len() - 1]
    }
}

/// The mean batch loss of `steps` (those of the log grid) at positions `from_end` counted
/// back from the last; `None` where there are not that many.
fn tail_loss(steps: &[&StepRecord], from_end: std::ops::Range<usize>) -> Option<f64> {
    let n = steps.len();
    let picked: Option<Vec<f64>> = from_end
        .map(|back| n.checked_sub(back + 1).map(|i| steps[i].loss))
        .collect();
    crate::stats::mean(picked?)
}

/// Whether `scenario`'s loss was still falling at the end of its budget: the ratio of the
/// last two logged losses to the two before them, over the runs that did not diverge.
pub fn trend(scenario: &Scenario) -> Option<Trend> {
    let cfg = &scenario.point.config;
    let ratios: Vec<f64> = scenario
        .finished()
        .filter(|(_, s)| s.status == RunStatus::Ok)
        .filter_map(|(run, _)| {
            let grid: Vec<&StepRecord> = run
                .steps
                .iter()
                .filter(|r| cfg.on_log_grid(r.step))
                .collect();
            if grid.len() < 4 {
                return None;
            }
            Some(tail_loss(&grid, 0..2)? / tail_loss(&grid, 2..4)?)
        })
        .collect();
    let g = GeometricSummary::of(&ratios)?;
    let high = if g.ci_high.is_nan() {
        g.geo_mean
    } else {
        g.ci_high
    };
    Some(if high < 1.0 {
        Trend::Falling
    } else {
        Trend::Level
    })
}

fn rung(a: &Analysis, i: usize) -> Rung {
    let s = &a.scenarios[i];
    let fits: Vec<(f64, f64)> = s
        .finished()
        .filter(|(_, sum)| sum.status == RunStatus::Ok)
        .filter_map(|(_, sum)| Some((sum.train_loss?, sum.train_acc?)))
        .collect();
    let losses: Vec<f64> = fits.iter().map(|(l, _)| *l).collect();
    Rung {
        scenario: i,
        layers: s.point.config.layers,
        loss: GeometricSummary::of(&losses),
        error: crate::stats::mean(fits.iter().map(|(_, acc)| 1.0 - acc)),
        trend: trend(s),
    }
}

fn verdict(shallow: &Rung, deep: &Rung) -> Option<(Fit, Option<Trend>)> {
    let (s, d) = (shallow.loss?, deep.loss?);
    let fit = if s.ci_low.is_nan() || d.ci_low.is_nan() || s.overlaps(&d) {
        Fit::Same
    } else if d.geo_mean > s.geo_mean {
        Fit::Worse
    } else {
        Fit::Better
    };
    Some((fit, deep.trend))
}

/// The kinds of network the sweep trains at two depths or more, with their training
/// losses; empty where no run recorded one (runs before it was measured).
pub fn of(a: &Analysis) -> Vec<Group> {
    groups(a.scenarios, without_depth)
        .into_iter()
        .filter(|(_, of)| of.len() >= 2)
        .map(|(_, of)| {
            let mut rungs: Vec<Rung> = of.iter().map(|&i| rung(a, i)).collect();
            rungs.sort_by_key(|r| r.layers);
            let first = &a.scenarios[of[0]];
            let label = first.point.label_without("layers");
            let mut g = Group {
                label: if label.is_empty() {
                    "all".into()
                } else {
                    label
                },
                residual: first.point.config.residual,
                rungs,
                verdict: None,
            };
            g.verdict = verdict(g.shallowest(), g.deepest());
            g
        })
        .filter(|g| g.rungs.iter().any(|r| r.loss.is_some()))
        .collect()
}

/// Of `groups` (plain or residual ones), how many have a verdict, and those whose deepest
/// network fits worse, by trend.
fn counts<'g>(groups: &[&'g Group]) -> (usize, Vec<&'g Group>, Vec<&'g Group>) {
    let judged = groups.iter().filter(|g| g.verdict.is_some()).count();
    let worse = |t: Option<Trend>| {
        groups
            .iter()
            .copied()
            .filter(|g| g.verdict == Some((Fit::Worse, t)))
            .collect::<Vec<_>>()
    };
    let mut level = worse(Some(Trend::Level));
    level.extend(worse(None));
    (judged, level, worse(Some(Trend::Falling)))
}

/// The training budget in words: `600 steps of batch 64`.
fn budget(a: &Analysis) -> String {
    let c = &a.scenarios[0].point.config;
    format!(
        "{} steps of batch {}",
        format::thousands(c.steps),
        c.batch_size
    )
}

/// The answer's sentence: how often the deepest network of each kind (plain, residual)
/// fits worse than the shallowest at equal steps, and how often that may be slowness.
pub fn answer(a: &Analysis) -> Option<String> {
    let all = &a.depth_fit;
    if all.iter().all(|g| g.verdict.is_none()) {
        return None;
    }
    let example = all.iter().find(|g| g.verdict.is_some())?;
    let (shallow, deep) = (example.shallowest().layers, example.deepest().layers);
    let mut parts = Vec::new();
    let mut still_falling = 0;
    for (residual, kind) in [(false, "plain"), (true, "residual")] {
        let of: Vec<&Group> = all.iter().filter(|g| g.residual == residual).collect();
        let (judged, level, falling) = counts(&of);
        if judged == 0 {
            continue;
        }
        still_falling += falling.len();
        parts.push(format!(
            "the {deep}-layer {kind} network fits its training data worse than the {shallow}-layer one in {} of {judged} settings",
            level.len() + falling.len()
        ));
    }
    let caveat = match still_falling {
        0 => String::new(),
        n => format!(
            "; in {} its loss was still falling when training stopped, which this budget cannot tell from slower training",
            if n == 1 {
                "one".to_string()
            } else {
                format!("{n} of them")
            }
        ),
    };
    Some(format!(
        "At equal steps ({}), {}{caveat}.",
        budget(a),
        and_list(&parts)
    ))
}

fn loss_cell(r: &Rung) -> String {
    geometric(r.loss)
}

fn trend_cell(t: Option<Trend>) -> &'static str {
    match t {
        Some(Trend::Falling) => "falling",
        Some(Trend::Level) => "level",
        None => "n/a",
    }
}

/// What a verdict says of the deepest network of a kind, as the report words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// It fits worse, but its loss was still falling.
    Slower,
    /// It fits worse, and its loss had levelled off (or no trend is known).
    Degraded,
    /// No clear difference.
    NoDifference,
    /// It fits better.
    Better,
}

impl Reading {
    const ALL: [Self; 4] = [
        Self::Slower,
        Self::Degraded,
        Self::NoDifference,
        Self::Better,
    ];

    fn of((fit, trend): (Fit, Option<Trend>)) -> Self {
        match (fit, trend) {
            (Fit::Worse, Some(Trend::Falling)) => Self::Slower,
            (Fit::Worse, _) => Self::Degraded,
            (Fit::Same, _) => Self::NoDifference,
            (Fit::Better, _) => Self::Better,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Slower => {
                "the deepest network fits worse than the shallowest, but its loss was still falling: slower training at this budget, not shown to be degradation"
            }
            Self::Degraded => {
                "the deepest network fits worse than the shallowest and its loss had levelled off: the degradation He et al. describe, at this budget"
            }
            Self::NoDifference => "depth makes no clear difference to the fit",
            Self::Better => "the deepest network fits better than the shallowest",
        }
    }
}

/// The verdicts in words, one sentence per reading that some kind of network has, naming
/// the kinds (their numbers are in the table).
fn sentences(a: &Analysis) -> Vec<String> {
    Reading::ALL
        .iter()
        .filter_map(|&reading| {
            let names: Vec<String> = a
                .depth_fit
                .iter()
                .filter(|g| g.verdict.map(Reading::of) == Some(reading))
                .map(|g| crate::format::bold(&g.label))
                .collect();
            (!names.is_empty()).then(|| format!("Under {}, {}.", and_list(&names), reading.words()))
        })
        .collect()
}

/// The section: a table of every kind over its depths, and a sentence per kind.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Depth and the fit to the training data");
    if a.depth_fit.is_empty() {
        return s;
    }
    s.text(format!(
        "He et al. 2016 (Fig. 1) compare networks by their training error: a deeper plain network that fits its training data worse than a shallower one cannot be blamed on overfitting. Here every network trained {}; the training loss is the mean cross-entropy on the first 10,000 training images after training, in evaluation mode, of the runs that did not diverge (collapsed ones included): geometric mean over seeds with a 95% interval. The trend compares the batch loss of the last two logged steps with the two before: falling where the ratio's interval lies below 1.",
        budget(a)
    ));
    let mut t = Table::new([
        "network",
        "layers",
        "training loss",
        "training error",
        "loss at the end",
    ]);
    for g in &a.depth_fit {
        for r in &g.rungs {
            t.row([
                g.label.clone(),
                r.layers.to_string(),
                loss_cell(r),
                r.error.map_or("n/a".into(), crate::format::percent),
                trend_cell(r.trend).into(),
            ]);
        }
    }
    s.table(t);
    let said = sentences(a);
    if !said.is_empty() {
        s.text(said.join(" "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, scenario, sweep};
    use vgrad_record::RunState;

    /// Gives every run of `s` the training loss `loss` (a few percent apart by seed), and
    /// batch losses at steps 0..=500 that end falling (by a third over the last four
    /// logged steps) or level.
    fn fit(s: &mut Scenario, loss: f64, falling: bool) {
        for (seed, run) in s.runs.iter_mut().enumerate() {
            let at = loss * (1.0 + 0.03 * seed as f64);
            if let RunState::Done(summary) = &mut run.state {
                summary.train_loss = Some(at);
                summary.train_acc = Some(1.0 - at / 10.0);
            }
            let template = run.steps[0].clone();
            run.steps = (0..6)
                .map(|k| {
                    let mut r = template.clone();
                    r.step = 100 * k;
                    let wobble = if k % 2 == 0 { 1.01 } else { 0.99 };
                    r.loss = if falling {
                        at * (1.5 - 0.1 * k as f64)
                    } else {
                        at * wobble
                    };
                    r
                })
                .collect();
        }
    }

    /// A plain and a residual network at 8 and 32 layers, 3 seeds, with training losses
    /// `[plain 8, plain 32, residual 8, residual 32]` and whether the 32-layer plain
    /// network's loss was still falling.
    fn groups_of(losses: [f64; 4], plain_deep_falling: bool) -> (Vec<Group>, Vec<String>) {
        let sweep = sweep(
            "seeds = 3\n[base]\nsteps = 600\nlog_every = 100\n[axes]\nlayers = [8, 32]\n\
             [[scenarios]]\nname = \"plain\"\n[[scenarios]]\nname = \"residual\"\n\
             residual = true\n",
        );
        let mut scenarios: Vec<Scenario> = sweep
            .points
            .iter()
            .map(|p| {
                let spec = |seed| Spec {
                    layers: p.config.layers,
                    ..Spec::new(seed)
                };
                scenario(p, &[spec(0), spec(1), spec(2)])
            })
            .collect();
        for (i, s) in scenarios.iter_mut().enumerate() {
            fit(s, losses[i], i == 1 && plain_deep_falling);
        }
        let a = Analysis::new(&sweep, &scenarios);
        let said: Vec<String> = answer(&a).into_iter().chain(sentences(&a)).collect();
        (a.depth_fit.clone(), said)
    }

    #[test]
    fn a_deeper_network_that_fits_worse_and_levelled_is_degradation_at_this_budget() {
        let (groups, said) = groups_of([0.1, 0.5, 0.1, 0.1], false);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].label, "plain");
        assert_eq!(groups[0].verdict, Some((Fit::Worse, Some(Trend::Level))));
        assert_eq!(groups[1].verdict, Some((Fit::Same, Some(Trend::Level))));
        let loss = groups[0].rungs[1].loss.unwrap();
        assert!(
            (loss.geo_mean - 0.5 * 1.03f64.powf(1.0)).abs() < 0.01,
            "{loss:?}"
        );
        let text = said.join(" ");
        assert!(
            text.contains("the 32-layer plain network fits its training data worse than the 8-layer one in 1 of 1 settings"),
            "{text}"
        );
        assert!(
            text.contains(
                "residual network fits its training data worse than the 8-layer one in 0 of 1"
            ),
            "{text}"
        );
        assert!(!text.contains("still falling"), "{text}");
        assert!(text.contains("Under **plain**, the deepest network fits worse than the shallowest and its loss had levelled off"), "{text}");
        assert!(
            text.contains("Under **residual**, depth makes no clear difference"),
            "{text}"
        );
    }

    #[test]
    fn a_deeper_network_still_improving_is_called_slower_not_degraded() {
        let (groups, said) = groups_of([0.1, 0.5, 0.2, 0.05], true);
        assert_eq!(groups[0].verdict, Some((Fit::Worse, Some(Trend::Falling))));
        assert_eq!(groups[1].verdict, Some((Fit::Better, Some(Trend::Level))));
        let text = said.join(" ");
        assert!(
            text.contains("in one its loss was still falling when training stopped"),
            "{text}"
        );
        assert!(
            text.contains("slower training at this budget, not shown to be degradation"),
            "{text}"
        );
        assert!(
            !text.contains("the degradation He et al. describe"),
            "{text}"
        );
        assert!(
            text.contains("Under **residual**, the deepest network fits better"),
            "{text}"
        );
    }

    #[test]
    fn runs_without_a_recorded_fit_make_no_groups() {
        let sweep =
            sweep("seeds = 2\n[base]\nsteps = 300\nlog_every = 100\n[axes]\nlayers = [4, 8]\n");
        let scenarios: Vec<Scenario> = sweep
            .points
            .iter()
            .map(|p| scenario(p, &[Spec::new(0), Spec::new(1)]))
            .collect();
        let a = Analysis::new(&sweep, &scenarios);
        assert!(a.depth_fit.is_empty());
        assert_eq!(answer(&a), None);
        assert!(section(&a).is_empty());
    }
}
