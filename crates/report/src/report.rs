//! The report's text: `reports/<sweep>.md`, which opens with its answer, and the appendix
//! `reports/<sweep>/details.md` with the long tables.

use std::path::Path;

use vgrad_record::RunState;

use crate::document::{Section, Table, markdown};
use crate::figures::Figures;
use crate::format::accuracy;
use crate::measures::{
    Analysis, activations, comparison, decay, depth_fit, isometry, jacobian, learning_rate,
    mean_field, outcome, papers, phase, profile, regime, saturation, through_time, updates, width,
};

/// The most sentences the answer opens a report with.
pub const ANSWER_SENTENCES: usize = 5;

/// The report's opening: at most [`ANSWER_SENTENCES`] sentences, each from a measure's
/// classes, in the order a reader asks: did it train, what did the error do, what does
/// this sweep's question (a remedy, depth, the learning rate) answer, how does it compare
/// with the paper, what does theory say.
pub fn answer(a: &Analysis) -> Vec<String> {
    if through_time::applies(a) {
        return through_time::answer(a)
            .into_iter()
            .take(ANSWER_SENTENCES)
            .collect();
    }
    // A width sweep asks which findings of its narrowest network hold when wider: that is
    // its answer, by width, in place of one sentence per measure over every scenario.
    if width::applies(a) {
        return width::answer(a)
            .into_iter()
            .take(ANSWER_SENTENCES)
            .collect();
    }
    // Pennington et al.'s question: how much of each spectrum is near 1, and what follows.
    if isometry::applies(a) {
        return isometry::answer(a)
            .into_iter()
            .chain(papers::answer(a))
            .take(ANSWER_SENTENCES)
            .collect();
    }
    // A phase diagram's sweep asks where networks train against the theory's depth
    // scale: that answer leads, and takes the place of the sweep's question.
    let phase = phase::answer(a);
    let question = if phase.is_some() {
        None
    } else {
        depth_fit::answer(a)
            .or_else(|| comparison::answer(a))
            .or_else(|| learning_rate::answer(a))
            .or_else(|| regime::depth_trend(a))
    };
    [
        phase,
        outcome::answer(a),
        regime::answer(a),
        question,
        papers::answer(a),
        mean_field::answer(a),
    ]
    .into_iter()
    .flatten()
    .take(ANSWER_SENTENCES)
    .collect()
}

/// The explanations, measure by measure, from the measured quantities.
pub fn explanations(a: &Analysis) -> Vec<String> {
    [
        outcome::explanations(a),
        mean_field::explanations(a),
        regime::explanations(a),
        decay::explanations(a),
        profile::explanations(a),
        saturation::explanations(a),
        updates::explanations(a),
        comparison::explanations(a),
        jacobian::explanations(a),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The results table: one row per scenario.
pub fn results(a: &Analysis) -> Section {
    let mut s = Section::new("Results");
    s.text(
        "Runs are trained, collapsed (they end near a guess's accuracy) or diverged; test \
         accuracy is the trained runs' mean with a 95% interval over seeds (Student t on the \
         logit scale). The error factor is how much the back-propagated error's rms changes per \
         hidden layer toward the input (below 1 it shrinks), with its regime: at step 0 over \
         every run, over training (the logged steps after step 0) over the trained runs; \
         geometric mean over seeds with a 95% interval. The decay ratio is the reference post's \
         (last layer's mean |dC/dW| over the first's, trained runs). `docs/experiment.md` \
         defines each measure and class.",
    );
    let mut t = Table::new([
        "scenario",
        "runs",
        "test accuracy",
        "error factor, step 0",
        "error factor, training",
        "decay ratio (post)",
    ]);
    for i in 0..a.scenarios.len() {
        let st = &a.stats[i];
        t.row([
            a.label(i),
            st.outcome.cell(),
            accuracy(st.outcome.accuracy),
            st.regime.start.cell(),
            st.regime.training.cell(),
            decay::cell(&st.decay.ratio),
        ]);
    }
    s.table(t);
    s
}

/// Where the runs are, how to browse them, and which have no result.
fn runs(a: &Analysis, runs_dir: &Path) -> Section {
    let mut s = Section::new("Runs");
    // Runs trained before the layout gained a folder per grid point sit flat in the runs
    // folder, with the event files of their time: their report describes them as they are.
    let on_disk: Vec<&Path> = a
        .scenarios
        .iter()
        .flat_map(|sc| &sc.runs)
        .filter(|run| run.state != RunState::Missing)
        .map(|run| run.name.as_path())
        .collect();
    let flat = !on_disk.is_empty() && on_disk.iter().all(|n| n.components().count() == 1);
    if flat {
        s.text(format!(
            "Each run has its folder `{runs}/<scenario>_seed-<n>_<config hash>/` with \
             `config.json`, `metrics.jsonl` (every logged step, per layer), `summary.json` \
             (with the run's class and error factors) and a TensorBoard event file (every \
             scalar of `metrics.jsonl` under `<statistic>/layer<k>`, the error factor per \
             step, histograms, and the final classes as numbers). To browse them:\n\n```sh\n\
             tensorboard --logdir {runs}\n```",
            runs = runs_dir.display()
        ));
    } else if through_time::applies(a) {
        s.text(format!(
            "Each run has its folder `{runs}/<scenario>/seed-<n>_<config hash>/` with \
             `config.json`, `metrics.jsonl` (every logged step, with the error at every time \
             step, the recurrent weight and the gates), `summary.json` (with the run's class \
             and error factors) and a TensorBoard event file (every scalar of \
             `metrics.jsonl`, per time step under `<statistic>/t<k>`, the error's norm first \
             as `1_grad_through_time/t<k>`, the final classes as numbers, and the run's \
             settings and results for the HParams dashboard). To browse them:\n\n```sh\n\
             tensorboard --logdir {runs}\n```",
            runs = runs_dir.display()
        ));
    } else {
        s.text(format!(
            "Each run has its folder `{runs}/<scenario>/seed-<n>_<config hash>/` with \
             `config.json`, `metrics.jsonl` (every logged step, per layer), `summary.json` \
             (with the run's class and error factors) and a TensorBoard event file (every \
             scalar of `metrics.jsonl` under `<statistic>/layer<k>`, the post's measure first \
             as `1_grad_mean_abs/layer<k>`, the error factor per step, histograms, the final \
             classes as numbers, and the run's settings and results for the HParams \
             dashboard). To browse them:\n\n```sh\ntensorboard --logdir {runs}\n```",
            runs = runs_dir.display()
        ));
    }
    let problems: Vec<String> = a
        .scenarios
        .iter()
        .flat_map(|sc| sc.runs.iter())
        .filter_map(|run| {
            // Relative to the output folder, as the rest of the report.
            let dir = runs_dir.join(&run.name);
            let dir = dir.display();
            match &run.state {
                RunState::Done(s) if s.status.is_ok() => None,
                RunState::Done(s) => Some(format!("- `{dir}`: {}", s.status)),
                RunState::Failed(e) => Some(format!(
                    "- `{dir}`: failed: {}",
                    e.lines().last().unwrap_or("").trim()
                )),
                RunState::Incomplete => {
                    Some(format!("- `{dir}`: incomplete (interrupted or running)"))
                }
                RunState::Missing => Some(format!("- `{dir}`: not run yet")),
            }
        })
        .collect();
    let total: usize = a.scenarios.iter().map(|s| s.runs.len()).sum();
    if problems.is_empty() {
        s.text(format!("All {total} runs finished."));
    } else {
        s.text(format!(
            "Runs that diverged or have no result:\n\n{}",
            problems.join("\n")
        ));
    }
    s
}

/// The main report's markdown.
pub fn main(a: &Analysis, figures: &Figures, runs_dir: &Path) -> String {
    let name = a.sweep.name();
    let mut md = format!("# Sweep `{name}`\n\n");
    if !a.sweep.definition.description.trim().is_empty() {
        md.push_str(a.sweep.definition.description.trim());
        md.push_str("\n\n");
    }
    let mut sections = Vec::new();
    let mut opening = Section::new("Answer");
    let sentences = answer(a);
    if sentences.is_empty() {
        opening.text("No run has finished yet, so there is nothing to report.");
    } else {
        opening.text(sentences.join(" "));
    }
    sections.push(opening);
    if through_time::applies(a) {
        sections.push(through_time::results(a));
        sections.extend(through_time::sections(a));
        sections.push(papers::section(a));
    } else {
        sections.push(results(a));
        sections.push(width::section(a));
        sections.push(isometry::section(a));
        let mut why = Section::new("Why");
        for sentence in explanations(a) {
            why.text(sentence);
        }
        sections.push(why);
        sections.push(phase::section(a));
        sections.push(depth_fit::section(a));
        sections.push(comparison::section(a));
        sections.push(learning_rate::section(a));
        sections.push(papers::section(a));
        sections.push(mean_field::section(a));
    }
    let mut shown = Section::new("Figures");
    for f in &figures.main {
        shown.figure(f.clone());
    }
    sections.push(shown);
    let mut more = Section::new("More");
    let tables = if through_time::applies(a) {
        "the error through time at chosen time steps"
    } else {
        "per-layer profiles, dead and saturated units, activations, update ratios, Jacobian \
         spectra, the post's ratio at the start and the end"
    };
    more.text(format!(
        "The long tables ({tables}) are in [`{name}/details.md`]({name}/details.md); the \
         numbers of the results table, per scenario, in [`{name}.json`]({name}.json). \
         Reproduce with:\n\n```sh\n{}\n```",
        a.sweep.command()
    ));
    sections.push(more);
    sections.push(crate::configuration::section(a.sweep));
    sections.push(runs(a, runs_dir));
    md.push_str(&markdown(&sections, 2, &format!("{name}/")));
    md
}

/// The appendix's markdown (its figures sit beside it).
pub fn details(a: &Analysis, figures: &Figures) -> String {
    let name = a.sweep.name();
    let mut md = format!(
        "# Sweep `{name}`: details\n\nThe tables behind [the report](../{name}.md), measure by measure.\n\n"
    );
    let mut sections = if through_time::applies(a) {
        vec![through_time::details(a)]
    } else {
        vec![
            decay::section(a),
            profile::section(a),
            saturation::section(a),
            activations::section(a),
            updates::section(a),
            jacobian::section(a),
        ]
    };
    let mut shown = Section::new("Figures");
    for f in &figures.details {
        shown.figure(f.clone());
    }
    sections.push(shown);
    md.push_str(&markdown(&sections, 2, ""));
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, over};
    use vgrad_record::Regime;

    /// The regime word of a results-table cell: its last word before any parenthesis.
    fn regime_of(cell: &str) -> Option<Regime> {
        let head = cell.split(" (").next()?.split(';').next()?;
        head.split_whitespace().last()?.parse().ok()
    }

    /// The report of a vanishing, a stable and an exploding network whose factors over
    /// training are `training`, with one collapsed seed in the second.
    fn report(training: [f64; 3]) -> (Vec<String>, String) {
        let (sweep, scenarios) = over(&["sigmoid", "tanh", "relu"], |i, seed| Spec {
            factor_start: [0.5, 1.0, 2.0][i],
            factor_training: training[i],
            test_acc: if i == 1 && seed == 1 { 0.1 } else { 0.8 },
            ..Spec::new(seed)
        });
        let a = Analysis::new(&sweep, &scenarios);
        let text = main(&a, &Figures::default(), Path::new("runs/syn"));
        (answer(&a), text)
    }

    /// Checks that every row's regime, at step 0 and over training, is the one the answer
    /// names the scenario under.
    fn answer_agrees_with_table(answer: &[String], text: &str) {
        let clause = answer
            .iter()
            .find(|s| s.starts_with("At initialisation"))
            .unwrap();
        let (start, training) = clause.split_once("; over training").unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip_while(|l| !l.starts_with("| scenario | runs |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        assert_eq!(rows.len(), 3, "{text}");
        for row in rows {
            for (cell, part) in [(row[3], start), (row[4], training)] {
                let regime = regime_of(cell).unwrap_or_else(|| panic!("{cell}"));
                let verb = crate::measures::regime::verb(regime);
                // The scenario is named after its regime's verb and before the next verb.
                let after = &part[part.find(verb).unwrap_or_else(|| panic!("{verb}: {part}"))..];
                let end = ["vanishes", "keeps its size", "explodes"]
                    .iter()
                    .filter(|v| **v != verb)
                    .filter_map(|v| after.find(v))
                    .min()
                    .unwrap_or(after.len());
                assert!(
                    after[..end].contains(&format!("**{}**", row[0])),
                    "{} {regime}: {part}",
                    row[0]
                );
            }
        }
    }

    #[test]
    fn the_answer_opens_the_report_and_agrees_with_its_table_on_both_sides_of_each_class() {
        let (answer, text) = report([0.5, 1.0, 2.0]);
        assert!(answer.len() <= ANSWER_SENTENCES);
        let at = |h: &str| text.find(h).unwrap_or_else(|| panic!("{h}"));
        assert!(at("## Answer") < at("## Results") && at("## Results") < at("## Why"));
        assert!(
            answer[0].starts_with("5 of 6 runs trained; 1 run collapsed: 1 of 2 of **tanh**"),
            "{answer:?}"
        );
        assert!(text.contains("| tanh | 1 trained, 1 collapsed |"), "{text}");
        answer_agrees_with_table(&answer, &text);
        // Every network crosses into another class over training: the text follows.
        let (answer, text) = report([1.5, 0.7, 1.0]);
        answer_agrees_with_table(&answer, &text);
        assert!(
            answer[1].contains("explodes under **sigmoid**"),
            "{answer:?}"
        );
        assert!(answer[1].contains("vanishes under **tanh**"), "{answer:?}");
        assert!(!text.contains("(ratio of"), "a threshold restated: {text}");
    }
}
