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

/// Ratio of the last two logged losses to the two before them, per run.
fn trend(scenario: &Scenario) -> Option<Trend> {
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

/// The verdicts in words, one sentence per verdict that some kind of network has, naming
/// the kinds (their numbers are in the table).
fn sentences(a: &Analysis) -> Vec<String> {
    let named = |pick: &dyn Fn(&(Fit, Option<Trend>)) -> bool| -> Vec<String> {
        a.depth_fit
            .iter()
            .filter(|g| g.verdict.as_ref().is_some_and(pick))
            .map(|g| crate::format::bold(&g.label))
            .collect()
    };
    let classes: [(&dyn Fn(&(Fit, Option<Trend>)) -> bool, &str); 4] = [
        (
            &|v| *v == (Fit::Worse, Some(Trend::Falling)),
            "the deepest network fits worse than the shallowest, but its loss was still falling: slower training at this budget, not shown to be degradation",
        ),
        (
            &|v| v.0 == Fit::Worse && v.1 != Some(Trend::Falling),
            "the deepest network fits worse than the shallowest and its loss had levelled off: the degradation He et al. describe, at this budget",
        ),
        (
            &|v| v.0 == Fit::Same,
            "depth makes no clear difference to the fit",
        ),
        (
            &|v| v.0 == Fit::Better,
            "the deepest network fits better than the shallowest",
        ),
    ];
    classes
        .iter()
        .filter_map(|(pick, what)| {
            let names = named(*pick);
            (!names.is_empty()).then(|| format!("Under {}, {what}.", and_list(&names)))
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
