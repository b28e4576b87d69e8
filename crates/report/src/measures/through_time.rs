//! Gradients through time: what a recurrent network's back-propagated error does across
//! the time steps of its sequence (the probe through time's `time` records), the vanilla
//! RNN's Jacobians beside Pascanu et al. 2013's bound, the gates that carry the state, and
//! for the adding problem which sequence lengths each model solves.

use vgrad_record::class::{CONSTANT_PREDICTOR_MSE, SOLVED_MSE};
use vgrad_record::time::TimeRecord;
use vgrad_record::{RegressionClass, StepRecord};
use vgrad_sweep::Paper;

use crate::Scenario;
use crate::document::{Section, Table};
use crate::format::{accuracy, and_list, bold, geometric, percent, sig};
use crate::measures::Analysis;
use crate::stats::{AccuracySummary, GeometricSummary, Split, geo_mean, mean};

/// Whether the sweep trains recurrent networks only: its report follows the error
/// through time instead of through layers.
pub fn applies(a: &Analysis) -> bool {
    !a.scenarios.is_empty()
        && a.scenarios
            .iter()
            .all(|s| s.point.config.model.is_recurrent())
}

/// Whether the sweep's task is a regression (the adding problem), scored by solved /
/// unsolved / diverged instead of trained / collapsed / diverged.
pub fn is_regression(a: &Analysis) -> bool {
    a.scenarios
        .iter()
        .any(|s| s.point.config.task.is_regression())
}

/// The vanilla RNN's Jacobians through time at one logged step, over a scenario's runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pascanu {
    /// The training step.
    pub step: usize,
    /// sigma_max(W_h), geometric mean over the runs.
    pub max_singular: f64,
    /// The bound sigma_max(W_h) gamma on every step Jacobian's norm.
    pub bound: f64,
    /// The step Jacobians' norms, geometric mean per step.
    pub norm_per_step: f64,
    /// The measured error factor per time step at that step.
    pub factor: f64,
}

/// What the bound, the Jacobians' own norms and the measured factor say at a step,
/// in the order Pascanu et al.'s argument reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundReading {
    /// The bound is below 1: every step Jacobian shrinks the error, so it must vanish
    /// (their sufficient condition).
    ForcesVanishing,
    /// The bound allows growth, but the units' derivatives bring the step Jacobians' own
    /// norms below 1, and the error vanishes.
    NormsShrink,
    /// The bound and the Jacobians' norms allow growth, yet the error vanishes: the
    /// product of the Jacobians is far smaller than the product of their norms.
    ProductShrinks,
    /// The bound allows growth, and the error does not vanish.
    NotVanishing,
    /// No error factor was measured (every run's error was zero or undefined).
    Unmeasured,
}

impl Pascanu {
    /// How the step reads.
    pub fn reading(&self) -> BoundReading {
        let vanishing =
            vgrad_record::Regime::of(self.factor) == Some(vgrad_record::Regime::Vanishing);
        if self.factor.is_nan() {
            BoundReading::Unmeasured
        } else if self.bound < 1.0 {
            BoundReading::ForcesVanishing
        } else if !vanishing {
            BoundReading::NotVanishing
        } else if self.norm_per_step < 1.0 {
            BoundReading::NormsShrink
        } else {
            BoundReading::ProductShrinks
        }
    }
}

/// One sigmoid gate over a scenario's runs at one logged step.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// PyTorch's name (`f`, `z`, ...).
    pub gate: String,
    /// The mean value.
    pub mean: f64,
    /// The saturated fraction.
    pub saturated: f64,
}

/// How a regression scenario's runs ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regression {
    /// Runs per class, in the order of [`RegressionClass::ALL`].
    pub counts: [usize; 3],
    /// The test mean squared error of the runs that did not diverge, over seeds.
    pub mse: Option<GeometricSummary>,
}

impl Regression {
    /// The scenario's class: solved where every finished run solved, diverged where every
    /// one diverged, else unsolved.
    pub fn class(&self) -> Option<RegressionClass> {
        let total: usize = self.counts.iter().sum();
        if total == 0 {
            None
        } else if self.counts[0] == total {
            Some(RegressionClass::Solved)
        } else if self.counts[2] == total {
            Some(RegressionClass::Diverged)
        } else {
            Some(RegressionClass::Unsolved)
        }
    }

    /// The runs' classes as the results table shows them: `3 solved`, `2 unsolved, 1
    /// diverged`.
    pub fn cell(&self) -> String {
        let parts: Vec<String> = RegressionClass::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{n} {c}"))
            .collect();
        if parts.is_empty() {
            "none finished".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A recurrent scenario's measures through time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeStats {
    /// T, the sequence's time steps.
    pub steps: usize,
    /// ||dC/dh_1|| / ||dC/dh_T|| at step 0, over every finished run: how much of the
    /// error at the last step reaches the first.
    pub across_start: Split,
    /// The same at the last logged step, over the trained runs.
    pub across_end: Split,
    /// The last logged step.
    pub last_step: Option<usize>,
    /// ||dC/dh_t|| / ||dC/dh_T|| per t at step 0, geometric mean over every finished run.
    pub profile_start: Vec<f64>,
    /// The same at the last logged step, over the trained runs.
    pub profile_end: Vec<f64>,
    /// The vanilla RNN's Jacobians at step 0 and at the last logged step.
    pub pascanu: Vec<Pascanu>,
    /// The sigmoid gates at step 0 and at the last logged step.
    pub gates: [Vec<Gate>; 2],
    /// The fraction of trained steps clipped, mean over the trained runs (clipping on).
    pub clipped: Option<f64>,
    /// How the runs of a regression task ended.
    pub regression: Option<Regression>,
}

/// ||dC/dh_1|| / ||dC/dh_T|| of a record: the share of the last step's error that
/// reaches the first (0 where none does; `None` where undefined).
fn across(time: &TimeRecord) -> Option<f64> {
    let (first, last) = (time.steps.first()?.delta_l2, time.steps.last()?.delta_l2);
    let ratio = first / last;
    (time.steps.len() > 1 && ratio.is_finite()).then_some(ratio)
}

/// The record's time profile, normalised by the last step's norm.
fn profile(time: &TimeRecord) -> Option<Vec<f64>> {
    let last = time.steps.last()?.delta_l2;
    (last > 0.0 && last.is_finite()).then(|| time.steps.iter().map(|s| s.delta_l2 / last).collect())
}

/// Per t, the geometric mean over `records` of their normalised profiles (NaN where a
/// step has no positive value).
fn mean_profile(records: &[&TimeRecord]) -> Vec<f64> {
    let profiles: Vec<Vec<f64>> = records.iter().filter_map(|r| profile(r)).collect();
    let steps = profiles.iter().map(Vec::len).max().unwrap_or(0);
    (0..steps)
        .map(|t| geo_mean(profiles.iter().filter_map(|p| p.get(t).copied())).unwrap_or(f64::NAN))
        .collect()
}

/// The time record of each run's step `pick` chooses.
fn at<'r>(
    runs: &[&'r [StepRecord]],
    pick: impl Fn(&'r [StepRecord]) -> Option<&'r StepRecord>,
) -> Vec<&'r TimeRecord> {
    runs.iter().filter_map(|r| pick(r)?.time.as_ref()).collect()
}

/// The vanilla RNN's Jacobians over `records` (those that have them).
fn pascanu(step: usize, records: &[&TimeRecord]) -> Option<Pascanu> {
    let with: Vec<&TimeRecord> = records
        .iter()
        .copied()
        .filter(|r| r.jacobians.is_some())
        .collect();
    if with.is_empty() {
        return None;
    }
    let jac = |f: fn(&vgrad_record::time::TimeJacobians) -> f64| {
        geo_mean(with.iter().filter_map(|r| r.jacobians.as_ref().map(f))).unwrap_or(f64::NAN)
    };
    let sigma = geo_mean(
        with.iter()
            .filter_map(|r| r.recurrent.blocks.first().map(|b| b.max_singular)),
    )
    .unwrap_or(f64::NAN);
    Some(Pascanu {
        step,
        max_singular: sigma,
        bound: jac(|j| j.bound_per_step),
        norm_per_step: jac(|j| j.norm_per_step),
        factor: factor_over(&with),
    })
}

/// The geometric mean of `records`' error factors per time step: 0 where an error that
/// reached the last step never reached the first (it fell below f32's smallest number on
/// the way back), NaN where none is defined.
fn factor_over(records: &[&TimeRecord]) -> f64 {
    let factors: Vec<f64> = records
        .iter()
        .map(|r| r.step_factor)
        .filter(|f| f.is_finite())
        .collect();
    if factors.contains(&0.0) {
        0.0
    } else {
        geo_mean(factors).unwrap_or(f64::NAN)
    }
}

/// Each sigmoid gate's mean and saturated fraction over `records`.
fn gates(records: &[&TimeRecord]) -> Vec<Gate> {
    let Some(first) = records.first() else {
        return Vec::new();
    };
    first
        .gates
        .iter()
        .enumerate()
        .map(|(g, stats)| Gate {
            gate: stats.gate.clone(),
            mean: mean(
                records
                    .iter()
                    .filter_map(|r| r.gates.get(g).map(|s| s.mean)),
            )
            .unwrap_or(f64::NAN),
            saturated: mean(
                records
                    .iter()
                    .filter_map(|r| r.gates.get(g).map(|s| s.saturated_frac)),
            )
            .unwrap_or(f64::NAN),
        })
        .collect()
}

impl TimeStats {
    /// The measures of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        let all = scenario.all_steps();
        let trained = scenario.trained_steps();
        let start = at(&all, <[StepRecord]>::first);
        let end = at(&trained, <[StepRecord]>::last);
        let last_step = trained
            .iter()
            .filter_map(|r| r.last())
            .map(|r| r.step)
            .max();
        let pascanu = [pascanu(0, &start), last_step.and_then(|s| pascanu(s, &end))]
            .into_iter()
            .flatten()
            .collect();
        let clipped = mean(scenario.trained().filter_map(|(_, s)| s.clipped_frac));
        let regression = scenario.point.config.task.is_regression().then(|| {
            let mut counts = [0; 3];
            let mut mse = Vec::new();
            for (_, s) in scenario.finished() {
                let class = s.regression_outcome.unwrap_or(RegressionClass::Diverged);
                counts[class as usize] += 1;
                mse.extend(s.test_mse);
            }
            Regression {
                counts,
                mse: GeometricSummary::of(&mse),
            }
        });
        Self {
            steps: scenario.point.config.time_steps().unwrap_or(0),
            across_start: Split::of(&start.iter().filter_map(|r| across(r)).collect::<Vec<_>>()),
            across_end: Split::of(&end.iter().filter_map(|r| across(r)).collect::<Vec<_>>()),
            last_step,
            profile_start: mean_profile(&start),
            profile_end: mean_profile(&end),
            pascanu,
            gates: [gates(&start), gates(&end)],
            clipped,
            regression,
        }
    }
}

/// The share of the error reaching the first step, as a cell: `1.2e-7 [9.8e-8, 1.5e-7]`.
fn across_cell(split: &Split) -> String {
    match split.positive {
        Some(_) => geometric(split.positive),
        None if split.zero > 0 => "0".into(),
        None => "n/a".into(),
    }
}

/// Scenario `i`'s test score as the results table shows it: accuracy, or the test mean
/// squared error of a regression.
fn score_cell(a: &Analysis, i: usize) -> String {
    match &a.time[i].regression {
        Some(r) => geometric(r.mse),
        None => accuracy(a.stats[i].outcome.accuracy),
    }
}

/// The results table of a recurrent sweep: one row per scenario.
pub fn results(a: &Analysis) -> Section {
    let mut s = Section::new("Results");
    let regression = is_regression(a);
    let classes = if regression {
        format!(
            "Runs are solved (a test mean squared error below {SOLVED_MSE}; predicting the \
             mean, 1, scores {}), unsolved or diverged; the test mean squared error is the \
             geometric mean over the runs that did not diverge, with a 95% interval over \
             seeds.",
            sig(CONSTANT_PREDICTOR_MSE, 3)
        )
    } else {
        "Runs are trained, collapsed (they end near a guess's accuracy) or diverged; test \
         accuracy is the trained runs' mean with a 95% interval over seeds (Student t on the \
         logit scale)."
            .to_string()
    };
    s.text(format!(
        "{classes} The error through time is ||dC/dh_t||, the norm over the batch and the \
         hidden units of the loss's gradient with respect to the hidden state after the t-th \
         input. Across the sequence is ||dC/dh_1|| / ||dC/dh_T||, the share of the last \
         step's error that reaches the first (at step 0 over every run, at the last logged \
         step over the trained runs); the factor per time step is its (T - 1)-th root \
         inverted, the error's change per step back in time (below 1 it shrinks), with its \
         regime, at step 0 and over training (the logged steps after step 0); geometric \
         means over seeds with 95% intervals.{} `docs/experiment.md` defines each measure \
         and class.",
        if regression {
            " The loss at the end is falling where the mean batch loss of the last two \
             logged steps over the two before has a 95% interval below 1 (then the step \
             budget, not the model, stopped it), else level."
        } else {
            ""
        }
    ));
    let score = if regression {
        "test MSE"
    } else {
        "test accuracy"
    };
    let mut columns = vec![
        "scenario",
        "runs",
        score,
        "across the sequence, step 0",
        "across the sequence, end",
        "factor per time step, step 0",
        "factor per time step, training",
    ];
    if regression {
        columns.push("loss at the end");
    }
    let clipping = a.time.iter().any(|t| t.clipped.is_some());
    if clipping {
        columns.push("steps clipped");
    }
    let mut t = Table::new(columns);
    for i in 0..a.scenarios.len() {
        let (st, time) = (&a.stats[i], &a.time[i]);
        let runs = match &time.regression {
            Some(r) => r.cell(),
            None => st.outcome.cell(),
        };
        let mut row = vec![
            a.label(i),
            runs,
            score_cell(a, i),
            across_cell(&time.across_start),
            across_cell(&time.across_end),
            st.regime.start.cell_reaching("time step 1"),
            st.regime.training.cell_reaching("time step 1"),
        ];
        if regression {
            let trend = match super::depth_fit::trend(&a.scenarios[i]) {
                Some(super::depth_fit::Trend::Falling) => "falling",
                Some(super::depth_fit::Trend::Level) => "level",
                None => "n/a",
            };
            row.push(trend.to_string());
        }
        if clipping {
            let on = a.scenarios[i].point.config.clip_norm > 0.0;
            let cell = match (on, time.clipped) {
                (false, _) => "off".to_string(),
                (true, Some(f)) => percent(f),
                (true, None) => "n/a".to_string(),
            };
            row.push(cell);
        }
        t.row(row);
    }
    s.table(t);
    s
}

/// The model a scenario trains, without the sequence length and the clipping: the
/// adding sweep's rows of one model over T, the rows of one model with and without
/// clipping (which leaves step 0 as it is).
fn model_label(a: &Analysis, i: usize) -> String {
    let label = a.scenarios[i]
        .point
        .label_without_any(&["sequence_length", "clip_norm"]);
    if label.is_empty() { a.label(i) } else { label }
}

/// The scenarios grouped by model ([`model_label`]), each group's scenarios in order of
/// T (file order among equal T).
fn by_model(a: &Analysis) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for i in 0..a.scenarios.len() {
        let label = model_label(a, i);
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, of)) => of.push(i),
            None => out.push((label, vec![i])),
        }
    }
    for (_, of) in &mut out {
        of.sort_by_key(|&i| a.time[i].steps);
    }
    out
}

/// Per model, the scenario of its longest sequence, the first in file order there.
fn longest_per_model(a: &Analysis) -> Vec<usize> {
    by_model(a)
        .into_iter()
        .filter_map(|(_, of)| {
            let longest = a.time[*of.last()?].steps;
            of.into_iter().find(|&i| a.time[i].steps == longest)
        })
        .collect()
}

/// The regression answer: up to which T each model solves the task in every seed.
fn solved_up_to(a: &Analysis) -> Option<String> {
    let parts: Vec<String> = by_model(a)
        .into_iter()
        .filter_map(|(label, of)| {
            let class = |i: usize| a.time[i].regression.and_then(|r| r.class());
            let solved: Vec<usize> = of
                .iter()
                .copied()
                .take_while(|&i| class(i) == Some(RegressionClass::Solved))
                .collect();
            let first_fail = of.get(solved.len()).copied();
            let fail = first_fail.map(|i| {
                let r = a.time[i].regression?;
                Some(format!(
                    "at T = {} it is {} ({}, test MSE {}){}",
                    a.time[i].steps,
                    r.class()?,
                    r.cell(),
                    geometric(r.mse),
                    budget_clause(a, i)
                ))
            });
            let fail = fail.flatten();
            Some(match (solved.last(), fail) {
                (Some(&last), Some(fail)) => format!(
                    "{} solves it in every seed up to T = {} (test MSE {}); {fail}",
                    bold(&label),
                    a.time[last].steps,
                    geometric(a.time[last].regression?.mse)
                ),
                (Some(&last), None) => format!(
                    "{} solves it in every seed at every T up to {} (test MSE {} there)",
                    bold(&label),
                    a.time[last].steps,
                    geometric(a.time[last].regression?.mse)
                ),
                (None, Some(fail)) => format!("{} solves no length: {fail}", bold(&label)),
                (None, None) => return None,
            })
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!("On the adding problem, {}.", parts.join("; ")))
}

/// Whether the step budget or the model decided an unsolved scenario: its loss still
/// falling at the end, or level.
fn budget_clause(a: &Analysis, i: usize) -> &'static str {
    use super::depth_fit::{Trend, trend};
    match (
        a.time[i].regression.and_then(|r| r.class()),
        trend(&a.scenarios[i]),
    ) {
        (Some(RegressionClass::Unsolved), Some(Trend::Falling)) => {
            ", its loss still falling at the end: the step budget, not the model, decides"
        }
        (Some(RegressionClass::Unsolved), Some(Trend::Level)) => {
            ", its loss level at the end of the budget"
        }
        _ => "",
    }
}

/// The first sentence: how the runs ended.
fn outcome_answer(a: &Analysis) -> Option<String> {
    if is_regression(a) {
        solved_up_to(a)
    } else {
        super::outcome::answer(a)
    }
}

/// How much of the error crosses the sequence under each model (its longest sequence),
/// at step 0 and at the end of training.
fn across_answer(a: &Analysis) -> Option<String> {
    let named: Vec<String> = longest_per_model(a)
        .into_iter()
        .filter(|&i| a.time[i].across_start.n() > 0)
        .map(|i| {
            let t = &a.time[i];
            let end = match t.last_step {
                Some(step) if step > 0 && t.across_end.n() > 0 => {
                    format!("; {} at step {step}", across_cell(&t.across_end))
                }
                _ => String::new(),
            };
            format!(
                "{} under {} (T = {}{end})",
                across_cell(&t.across_start),
                bold(&model_label(a, i)),
                t.steps
            )
        })
        .collect();
    if named.is_empty() {
        return None;
    }
    let shown = named.len().min(Analysis::NAMED_IN_A_SENTENCE);
    let rest = if named.len() > shown {
        " (the results table gives the others)"
    } else {
        ""
    };
    Some(format!(
        "Of the error at the last time step, the share that reaches the first, \
         ||dC/dh_1|| / ||dC/dh_T||, is at step 0 {}{rest}.",
        and_list(&named[..shown])
    ))
}

/// What the step's numbers say, as a clause after "the bound sigma_max(W_h) gamma = ...".
fn reading_clause(p: &Pascanu) -> String {
    let factor = sig(p.factor, 3);
    let norms = sig(p.norm_per_step, 3);
    match p.reading() {
        BoundReading::ForcesVanishing => {
            format!(
                "lies below 1 and by itself forces the error to vanish (factor {factor} per step)"
            )
        }
        BoundReading::NormsShrink => format!(
            "allows growth, but the units' derivatives bring the step Jacobians' own norms to \
             {norms} per step, and the error vanishes (factor {factor})"
        ),
        BoundReading::ProductShrinks => format!(
            "allows growth, and so do the step Jacobians' own norms ({norms} per step); the \
             error still vanishes (factor {factor}): their product is far smaller than the \
             product of their norms, the error not following their largest singular directions"
        ),
        BoundReading::Unmeasured => {
            format!("(the Jacobians' norms {norms} per step) has no measured factor beside it")
        }
        BoundReading::NotVanishing => format!(
            "allows growth (the Jacobians' norms {norms} per step), and the error does not \
             vanish (factor {factor})"
        ),
    }
}

/// The vanilla RNN's Jacobians against the bound, at step 0 and at the end of training.
fn pascanu_answer(a: &Analysis) -> Option<String> {
    let i = longest_per_model(a)
        .into_iter()
        .find(|&i| !a.time[i].pascanu.is_empty())?;
    let all = &a.time[i].pascanu;
    let first = all.first()?;
    let mut text = format!(
        "Under {} at step 0 Pascanu et al.'s bound sigma_max(W_h) gamma = {} {}",
        a.named(i),
        sig(first.bound, 3),
        reading_clause(first)
    );
    if let Some(last) = all.last().filter(|l| l.step > 0) {
        text.push_str(&format!(
            "; at step {} the bound, {}, {}",
            last.step,
            sig(last.bound, 3),
            reading_clause(last)
        ));
    }
    text.push('.');
    Some(text)
}

/// The report's opening sentences for a recurrent sweep.
pub fn answer(a: &Analysis) -> Vec<String> {
    [
        outcome_answer(a),
        across_answer(a),
        super::regime::answer(a),
        super::papers::answer(a),
        pascanu_answer(a),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The vanilla RNN's Jacobians against the bound, and the gates, as tables.
pub fn sections(a: &Analysis) -> Vec<Section> {
    let mut theory = Section::new("Theory beside measurement");
    let with: Vec<usize> = (0..a.scenarios.len())
        .filter(|&i| !a.time[i].pascanu.is_empty())
        .collect();
    if !with.is_empty() {
        theory.text(
            "Pascanu et al. 2013, section 2.1: the step Jacobian of the vanilla RNN, \
             dh_t/dh_(t-1) = W_h^T diag(f'(a_t)), has a norm of at most sigma_max(W_h) gamma \
             (gamma = 1 for tanh and ReLU); below 1 the error must vanish. The table sets \
             beside it the Jacobians' norms measured on the probe's examples (geometric mean \
             over examples, steps and seeds) and the measured factor per step, which can lie \
             below the norms (the norm of a product is at most the product of the norms).",
        );
        let mut t = Table::new([
            "scenario",
            "step",
            "sigma_max(W_h)",
            "bound per step",
            "Jacobian norm per step",
            "measured factor per step",
        ]);
        for &i in &with {
            for p in &a.time[i].pascanu {
                t.row([
                    a.label(i),
                    p.step.to_string(),
                    sig(p.max_singular, 3),
                    sig(p.bound, 3),
                    sig(p.norm_per_step, 3),
                    sig(p.factor, 3),
                ]);
            }
        }
        theory.table(t);
    }
    let mut gates_section = Section::new("Gates");
    let gated: Vec<usize> = (0..a.scenarios.len())
        .filter(|&i| !a.time[i].gates[0].is_empty())
        .collect();
    if !gated.is_empty() {
        gates_section.text(
            "The sigmoid gates' mean value and saturated fraction (within 0.05 of 0 or 1, \
             where a gate passes almost no gradient to what computed it) over every time step, \
             example and unit, at step 0 and at the last logged step, mean over seeds. The \
             LSTM's forget gate f multiplies the cell state's error at every step back \
             (dc_t/dc_(t-1) = f_t); the GRU's update gate z is the share of h_(t-1) that h_t \
             keeps.",
        );
        let mut t = Table::new([
            "scenario",
            "gate",
            "mean, step 0",
            "mean, end",
            "saturated, step 0",
            "saturated, end",
        ]);
        for &i in &gated {
            let [start, end] = &a.time[i].gates;
            for g in start {
                let later = end.iter().find(|e| e.gate == g.gate);
                t.row([
                    a.label(i),
                    g.gate.clone(),
                    sig(g.mean, 3),
                    later.map_or("n/a".into(), |e| sig(e.mean, 3)),
                    percent(g.saturated),
                    later.map_or("n/a".into(), |e| percent(e.saturated)),
                ]);
            }
        }
        gates_section.table(t);
    }
    vec![theory, gates_section, clipping(a)]
}

/// How often clipping acted: on a majority of steps (a bounded step rather than a guard)
/// or on a minority (the guard against rare explosions Pascanu et al. meant it as).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipShare {
    /// At most half of the steps were clipped.
    Few,
    /// More than half were.
    Most,
}

impl ClipShare {
    /// The share of a fraction of clipped steps.
    pub fn of(fraction: f64) -> Self {
        if fraction > 0.5 {
            Self::Most
        } else {
            Self::Few
        }
    }
}

/// The clipping section: for each share, the scenarios in it with their fractions.
fn clipping(a: &Analysis) -> Section {
    let mut s = Section::new("Clipping");
    let clipped: Vec<(usize, f64)> = (0..a.scenarios.len())
        .filter(|&i| a.scenarios[i].point.config.clip_norm > 0.0)
        .filter_map(|i| Some((i, a.time[i].clipped?)))
        .collect();
    for share in [ClipShare::Most, ClipShare::Few] {
        let named: Vec<String> = clipped
            .iter()
            .filter(|(_, f)| ClipShare::of(*f) == share)
            .map(|&(i, f)| format!("{} under {}", percent(f), a.named(i)))
            .collect();
        if named.is_empty() {
            continue;
        }
        s.text(match share {
            ClipShare::Most => format!(
                "Clipping rescaled the gradients of a majority of steps ({}): at its threshold \
                 it bounds the length of most steps rather than guarding against rare \
                 explosions, as Pascanu et al. 2013 proposed it.",
                and_list(&named)
            ),
            ClipShare::Few => format!(
                "Clipping rescaled the gradients of a minority of steps ({}): a guard against \
                 occasional large gradients, as Pascanu et al. 2013 proposed it.",
                and_list(&named)
            ),
        });
    }
    s
}

/// The sentence comparing the sweep with a recurrent `paper`, where its scenarios allow.
pub fn against_the_paper(a: &Analysis, paper: Paper) -> Option<String> {
    match paper {
        Paper::Jozefowicz2015 => forget_bias(a),
        Paper::Le2015 if is_regression(a) => tanh_rnn_on_adding(a),
        _ => None,
    }
}

/// The scenarios whose model is an LSTM with forget bias `bias`, as (index, accuracy).
fn lstm_with_bias(a: &Analysis, bias: f64) -> Vec<(usize, AccuracySummary)> {
    (0..a.scenarios.len())
        .filter(|&i| {
            let c = &a.scenarios[i].point.config;
            c.model == vgrad_record::Architecture::Lstm && c.forget_bias.value() == Some(bias)
        })
        .filter_map(|i| Some((i, a.stats[i].outcome.accuracy?)))
        .collect()
}

/// Jozefowicz et al. 2015: the forget bias of 1 against 0, pair by pair.
fn forget_bias(a: &Analysis) -> Option<String> {
    let (zero, one) = (lstm_with_bias(a, 0.0), lstm_with_bias(a, 1.0));
    let pairs: Vec<String> = zero
        .iter()
        .zip(&one)
        .map(|((i0, acc0), (i1, acc1))| {
            let word = if !acc1.apart_from(acc0) {
                "no clear difference"
            } else if acc1.mean > acc0.mean {
                "higher"
            } else {
                "lower"
            };
            format!(
                "{} under {} against {} under {} ({word})",
                accuracy(Some(*acc1)),
                a.named(*i1),
                accuracy(Some(*acc0)),
                a.named(*i0)
            )
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    Some(format!(
        "Against Jozefowicz et al. 2015 (a forget-gate bias of 1 helps the LSTM; their tasks \
         and search, not ours): the test accuracy with bias 1 is {}.",
        and_list(&pairs)
    ))
}

/// Le et al. 2015: the tanh RNN at the longest T here.
fn tanh_rnn_on_adding(a: &Analysis) -> Option<String> {
    let rnn = (0..a.scenarios.len())
        .filter(|&i| a.scenarios[i].point.config.model == vgrad_record::Architecture::Rnn)
        .max_by_key(|&i| a.time[i].steps)?;
    let r = a.time[rnn].regression?;
    Some(format!(
        "Against Le et al. 2015 (the same task at T = 150 to 400, after far more steps, \
         their setup above): under {} at T = {} the runs are {} (test MSE {}).",
        bold(&model_label(a, rnn)),
        a.time[rnn].steps,
        r.cell(),
        geometric(r.mse)
    ))
}

/// The time steps the appendix's profile table shows: 1, 2, 5, 10, 20, 50, ... up to T,
/// and T.
fn shown_steps(steps: usize) -> Vec<usize> {
    let mut out: Vec<usize> = [1, 2, 5]
        .iter()
        .flat_map(|&m| (0..6).map(move |e| m * 10usize.pow(e)))
        .filter(|&t| t < steps)
        .collect();
    out.push(steps);
    out.sort_unstable();
    out.dedup();
    out
}

/// The appendix: each scenario's error through time at chosen steps, at step 0 and at the
/// last logged step.
pub fn details(a: &Analysis) -> Section {
    let mut s = Section::new("The error through time");
    s.text(
        "||dC/dh_t|| / ||dC/dh_T|| at chosen time steps t (columns), geometric mean over \
         seeds: at step 0 over every run, at the last logged step over the trained runs. \
         The figure beside the report draws every step.",
    );
    let mut lengths: Vec<usize> = a.time.iter().map(|t| t.steps).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for steps in lengths {
        let shown = shown_steps(steps);
        let mut columns = vec!["scenario".to_string(), "step".to_string()];
        columns.extend(shown.iter().map(|t| format!("t = {t}")));
        let mut t = Table::new(columns);
        for i in (0..a.scenarios.len()).filter(|&i| a.time[i].steps == steps) {
            let time = &a.time[i];
            let rows = [
                ("0".to_string(), &time.profile_start),
                (
                    time.last_step.map_or("end".into(), |s| s.to_string()),
                    &time.profile_end,
                ),
            ];
            for (step, profile) in rows {
                if profile.is_empty() {
                    continue;
                }
                let mut row = vec![a.label(i), step];
                row.extend(
                    shown
                        .iter()
                        .map(|&t| profile.get(t - 1).map_or("n/a".into(), |&v| sig(v, 3))),
                );
                t.row(row);
            }
        }
        s.table(t);
    }
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use vgrad_record::{Regime, RunStatus};

    use super::*;
    use crate::figures::Figures;
    use crate::measures::regime::verb;
    use crate::synthetic::{TimeSpec, recurrent};

    /// The rows of the results table of `text`: cells by column.
    fn rows(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .skip_while(|l| !l.starts_with("| scenario | runs |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                l.trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect()
    }

    /// The regime word of a factor cell.
    fn regime_of(cell: &str) -> Regime {
        let head = cell.split(" (").next().unwrap_or(cell);
        head.split_whitespace()
            .last()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{cell}"))
    }

    /// The report of three models whose errors through time change by `factors` per step
    /// at step 0 and `training` after it.
    fn classification(factors: [f64; 3], training: [f64; 3]) -> (Vec<String>, String) {
        let (sweep, scenarios) = recurrent(
            "",
            &[
                ("rnn", "model = \"rnn\""),
                ("lstm", "model = \"lstm\""),
                ("gru", "model = \"gru\""),
            ],
            |i, seed| TimeSpec {
                factor_start: factors[i],
                factor_training: training[i],
                ..TimeSpec::new(28, seed)
            },
        );
        let a = Analysis::new(&sweep, &scenarios);
        assert!(applies(&a) && !is_regression(&a));
        let text = crate::report::main(&a, &Figures::default(), Path::new("runs/syn"));
        (crate::report::answer(&a), text)
    }

    #[test]
    fn the_regimes_through_time_in_the_answer_are_those_of_the_table() {
        // Each model on both sides of the stable band, at step 0 and over training.
        for (start, training) in [
            ([0.5, 1.0, 2.0], [1.6, 0.6, 1.0]),
            ([1.0, 2.0, 0.5], [0.5, 1.0, 1.6]),
        ] {
            let (answer, text) = classification(start, training);
            let sentence = answer
                .iter()
                .find(|s| s.starts_with("At initialisation the error back-propagated through time"))
                .unwrap_or_else(|| panic!("{answer:?}"));
            let (at_start, over_training) = sentence.split_once("; over training").unwrap();
            let rows = rows(&text);
            assert_eq!(rows.len(), 3, "{text}");
            for row in &rows {
                for (cell, part) in [(&row[5], at_start), (&row[6], over_training)] {
                    let want = format!("{} under **{}**", verb(regime_of(cell)), row[0]);
                    assert!(part.contains(&want), "{want}: {part}");
                }
            }
            assert!(sentence.contains("per time step"), "{sentence}");
            assert!(!text.contains("per layer"), "{text}");
        }
    }

    #[test]
    fn the_share_across_the_sequence_is_the_factor_to_the_power_t_minus_one() {
        let (answer, text) = classification([0.5, 1.0, 2.0], [1.0, 1.0, 1.0]);
        let rows = rows(&text);
        // 0.5^27 = 7.45e-9 of the last step's error reaches the first under the rnn.
        assert!(rows[0][3].starts_with("7.45e-9"), "{:?}", rows[0]);
        assert!(rows[1][3].starts_with("1.00"), "{:?}", rows[1]);
        let across = answer
            .iter()
            .find(|s| s.starts_with("Of the error at the last time step"))
            .unwrap();
        assert!(across.contains("7.45e-9"), "{across}");
        assert!(
            across.contains("under **rnn** (T = 28; 1.00 [1.00, 1.00] at step 200)"),
            "{across}"
        );
    }

    /// The report of the adding problem at T = 4 and 8 for three models, each run's test
    /// MSE given by `mse(model, T index)` (NaN: diverged).
    fn adding(mse: impl Fn(usize, usize) -> f64) -> (Vec<String>, String) {
        let (sweep, scenarios) = recurrent(
            "task = \"adding\"\n[axes]\nsequence_length = [4, 8]",
            &[
                ("rnn", "model = \"rnn\""),
                ("lstm", "model = \"lstm\""),
                ("gru", "model = \"gru\""),
            ],
            |i, seed| {
                let (model, length) = (i / 2, i % 2);
                let m = mse(model, length);
                TimeSpec {
                    test_acc: f64::NAN,
                    test_mse: Some(m),
                    status: if m.is_nan() {
                        RunStatus::Diverged { step: 50 }
                    } else {
                        RunStatus::Ok
                    },
                    ..TimeSpec::new([4, 8][length], seed)
                }
            },
        );
        let a = Analysis::new(&sweep, &scenarios);
        assert!(is_regression(&a));
        let text = crate::report::main(&a, &Figures::default(), Path::new("runs/syn"));
        (crate::report::answer(&a), text)
    }

    #[test]
    fn the_bound_reads_on_both_sides_of_each_of_its_classes() {
        let p = |bound: f64, norm_per_step: f64, factor: f64| Pascanu {
            step: 0,
            max_singular: bound,
            bound,
            norm_per_step,
            factor,
        };
        let below = 1.0 / vgrad_record::class::STABLE_BAND * 0.99;
        let cases = [
            (p(0.99, 0.9, 0.5), BoundReading::ForcesVanishing),
            (p(1.0, 0.99, below), BoundReading::NormsShrink),
            (p(1.0, 1.0, below), BoundReading::ProductShrinks),
            (
                p(1.2, 1.1, 1.0 / vgrad_record::class::STABLE_BAND),
                BoundReading::NotVanishing,
            ),
            (p(1.2, 0.9, 1.0), BoundReading::NotVanishing),
            (p(1.2, 0.9, f64::NAN), BoundReading::Unmeasured),
            (p(1.2, 1.1, 0.0), BoundReading::ProductShrinks),
        ];
        for (pascanu, want) in cases {
            assert_eq!(pascanu.reading(), want, "{pascanu:?}");
        }
        assert!(reading_clause(&cases[2].0).contains("far smaller than the product"));
        assert!(reading_clause(&cases[0].0).contains("by itself forces"));
        assert_eq!(ClipShare::of(0.5), ClipShare::Few);
        assert_eq!(ClipShare::of(0.51), ClipShare::Most);
    }

    #[test]
    fn solved_lengths_in_the_answer_are_those_of_the_table_on_both_sides_of_the_threshold() {
        let below = SOLVED_MSE * 0.999;
        let (answer, text) = adding(|model, length| match (model, length) {
            (0, 0) => below,
            (0, _) => SOLVED_MSE,
            (1, _) => f64::NAN,
            _ => below,
        });
        let rows = rows(&text);
        let runs: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(
            runs,
            [
                "2 solved",
                "2 unsolved",
                "2 diverged",
                "2 diverged",
                "2 solved",
                "2 solved"
            ],
            "{text}"
        );
        let opening = &answer[0];
        assert!(
            opening.contains("**rnn** solves it in every seed up to T = 4")
                && opening.contains("at T = 8 it is unsolved"),
            "{opening}"
        );
        assert!(
            opening.contains("**lstm** solves no length: at T = 4 it is diverged"),
            "{opening}"
        );
        assert!(
            opening.contains("**gru** solves it in every seed at every T up to 8"),
            "{opening}"
        );
        assert!(!text.contains("collapsed"), "{text}");
        // The other side: every rnn run solves at 8, and the lstm's unsolved ones count.
        let (answer, _) = adding(|model, length| match (model, length) {
            (1, _) => SOLVED_MSE * 2.0,
            _ => below,
        });
        assert!(answer[0].contains("**rnn** solves it in every seed at every T up to 8"));
        assert!(answer[0].contains("**lstm** solves no length: at T = 4 it is unsolved"));
    }
}
