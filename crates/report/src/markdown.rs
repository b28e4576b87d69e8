//! The report as markdown that reads well as plain text and on a git forge: one function
//! per section, in reading order.

use std::fmt::Write;
use std::path::Path;

use vgrad_record::config::text;
use vgrad_record::{OffKind, RunState};
use vgrad_sweep::Sweep;

use crate::figures::Figure;
use crate::findings::findings;
use crate::format::{percent, sig, with_ci};
use crate::seeds::GeometricSummary;
use crate::{Scenario, ScenarioStats};

fn ci(g: Option<GeometricSummary>) -> String {
    g.map_or("n/a".into(), |g| with_ci(g.geo_mean, g.ci_low, g.ci_high))
}

fn geo(g: Option<GeometricSummary>) -> String {
    g.map_or("n/a".into(), |g| sig(g.geo_mean, 3))
}

/// `0-9` for consecutive seeds, else a list.
fn seed_list(seeds: &[u64]) -> String {
    let consecutive = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if consecutive && seeds.len() > 2 => format!("{a}-{b}"),
        _ => seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The head of a table with a scenario column, one more named column, and one column per
/// layer 1..=layers.
fn layer_table_head(second: &str, layers: usize) -> String {
    let numbers: Vec<String> = (1..=layers).map(|l| l.to_string()).collect();
    format!(
        "| scenario | {second} | {} |\n| --- | --- |{}",
        numbers.join(" | "),
        " --- |".repeat(layers)
    )
}

/// A row of such a table.
fn layer_table_row(scenario: &str, second: &str, cells: &[String]) -> String {
    format!("| {scenario} | {second} | {} |", cells.join(" | "))
}

/// Everything the sections of a report read.
pub struct Inputs<'a> {
    /// The sweep.
    pub sweep: &'a Sweep,
    /// Its grid points with their runs.
    pub scenarios: &'a [Scenario],
    /// The statistics of each scenario.
    pub stats: &'a [ScenarioStats],
    /// The figures drawn beside the report.
    pub figures: &'a [Figure],
    /// Where the runs are, as the report shows it.
    pub runs_dir: &'a Path,
}

/// The whole report.
pub fn render(r: &Inputs) -> String {
    let mut md = String::new();
    header(&mut md, r);
    configuration(&mut md, r);
    decay_table(&mut md, r);
    start_and_end(&mut md, r);
    let _ = writeln!(
        md,
        "\n## Findings\n\n{}\n",
        findings(r.scenarios, r.stats).join(" ")
    );
    profiles(&mut md, r);
    chain_of_derivatives(&mut md, r);
    dead_units(&mut md, r);
    figures(&mut md, r);
    runs(&mut md, r);
    md
}

/// Title, description, and the command that reproduces the sweep.
fn header(md: &mut String, r: &Inputs) {
    let _ = writeln!(md, "# Sweep `{}`\n", r.sweep.name());
    if !r.sweep.definition.description.is_empty() {
        let _ = writeln!(md, "{}\n", r.sweep.definition.description.trim());
    }
    let _ = writeln!(
        md,
        "Generated from the runs in `{}` by `cargo xtask report`. Reproduce with:\n\n```sh\n{}\n```\n",
        r.runs_dir.display(),
        r.sweep.command()
    );
}

/// Every field of the run configuration, the axes with the values they take; the seeds
/// last, in a row of their own.
fn configuration(md: &mut String, r: &Inputs) {
    let _ = writeln!(md, "## Configuration\n\n| field | value |\n| --- | --- |");
    if let Some(base) = r.sweep.points.first().map(|p| &p.config) {
        for (field, value) in base.fields().into_iter().filter(|(f, _)| f != "seed") {
            let value = if r.sweep.varies(&field) {
                let mut seen: Vec<String> = Vec::new();
                for p in &r.sweep.points {
                    let v = p.config.field_text(&field).unwrap_or_default();
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                format!("**axis**: {}", seen.join(", "))
            } else {
                text(&value)
            };
            let _ = writeln!(md, "| {field} | {value} |");
        }
    }
    let _ = writeln!(
        md,
        "| seeds | {} ({} per grid point) |\n",
        seed_list(&r.sweep.seeds),
        r.sweep.seeds.len()
    );
}

/// The decay ratios per scenario, with their intervals, and the test accuracy.
fn decay_table(md: &mut String, r: &Inputs) {
    let _ = writeln!(
        md,
        "## Decay of the gradient\n\n\
         Decay ratio: the last layer's mean |dC/dW| over the first layer's, each averaged over the \
         logged steps of a run; geometric mean over seeds with its 95% confidence interval (Student t \
         on log ratio). Per-layer factor: ratio^(1/(L-1)). Error: the same for the back-propagated \
         error mean |dC/dz| at each layer's pre-activation. Last / layer 2 leaves out the first \
         layer, whose input is raw pixels, and its per-layer factor (layers 2..L) is \
         (last / layer 2)^(1/(L-2)): where one jump between layers 1 and 2 makes most of the decay, \
         the factor over 1..L spreads it over every layer and this one does not.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | runs ok | decay ratio [95% CI] | per-layer factor | per-layer factor, layers 2..L | error decay ratio [95% CI] | error per-layer factor | last / layer 2 | test accuracy |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (sc, st) in r.scenarios.iter().zip(r.stats) {
        let mut runs = format!("{}/{}", st.ok, sc.runs.len());
        if st.failed > 0 {
            let _ = write!(runs, " ({} failed or diverged)", st.failed);
        }
        let acc = if st.ok == 0 {
            "n/a".into()
        } else if st.ok == 1 {
            percent(st.test_acc.0)
        } else {
            format!("{} ± {}", percent(st.test_acc.0), percent(st.test_acc.1))
        };
        let _ = writeln!(
            md,
            "| {} | {runs} | {} | {} | {} | {} | {} | {} | {acc} |",
            sc.point.label(),
            ci(st.decay),
            geo(st.layer_factor),
            geo(st.layer_factor_from_2),
            ci(st.delta_decay),
            geo(st.delta_layer_factor),
            geo(st.last_over_second),
        );
    }
}

/// The decay ratios at the first and the last logged step beside their average: the
/// average over training hides how much larger the decay is at initialisation.
fn start_and_end(md: &mut String, r: &Inputs) {
    let _ = writeln!(
        md,
        "\n### At the start and at the end of training\n\n\
         The same ratios at the first logged step (step 0: the initial weights, before any update) \
         and at the last logged step, beside the average over all logged steps of the table above; \
         geometric mean over seeds with its 95% confidence interval. The figure \
         `decay_over_training.svg` shows every logged step.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | decay ratio, first step | decay ratio, average | decay ratio, last step | error ratio, first step | error ratio, average | error ratio, last step |\n\
         | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (sc, st) in r.scenarios.iter().zip(r.stats).filter(|(_, s)| s.ok > 0) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            sc.point.label(),
            ci(st.decay_start),
            ci(st.decay),
            ci(st.decay_end),
            ci(st.delta_decay_start),
            ci(st.delta_decay),
            ci(st.delta_decay_end),
        );
    }
}

/// Each layer's gradient and error, one table per depth.
fn profiles(md: &mut String, r: &Inputs) {
    let _ = writeln!(
        md,
        "## Per-layer profile\n\n\
         Each layer's mean |dC/dW| (grad) and mean |dC/dz| (error), averaged over the logged steps, \
         geometric mean over seeds; the mean derivative f'(z) of its activation over units and \
         examples, and its weight gain ||W|| / sqrt(fan-in), each averaged over the logged steps and \
         the seeds. Layer 1 is the first hidden layer, L the output layer.\n"
    );
    let mut depths: Vec<usize> = r
        .stats
        .iter()
        .filter(|s| s.ok > 0)
        .map(|s| s.layers)
        .collect();
    depths.sort_unstable();
    depths.dedup();
    for depth in depths {
        let _ = writeln!(md, "{}", layer_table_head("measure", depth));
        for (sc, st) in r
            .scenarios
            .iter()
            .zip(r.stats)
            .filter(|(_, s)| s.ok > 0 && s.layers == depth)
        {
            for (measure, values) in [("grad", &st.grad_profile), ("error", &st.delta_profile)] {
                let cells: Vec<String> = values.iter().map(|v| sig(*v, 3)).collect();
                let row = layer_table_row(&sc.point.label(), measure, &cells);
                let _ = writeln!(md, "{row}");
            }
            if st.deriv_profile.iter().any(Option::is_some) {
                let cells: Vec<String> = st
                    .deriv_profile
                    .iter()
                    .map(|v| v.map_or(String::new(), |v| sig(v, 3)))
                    .collect();
                let row = layer_table_row(&sc.point.label(), "f'(z)", &cells);
                let _ = writeln!(md, "{row}");
            }
            if !st.weight_gain.is_empty() {
                let cells: Vec<String> = st.weight_gain.iter().map(|v| sig(*v, 3)).collect();
                let row = layer_table_row(&sc.point.label(), "weight gain", &cells);
                let _ = writeln!(md, "{row}");
            }
        }
        md.push('\n');
    }
}

/// Why the error shrinks or keeps its size: the derivative, the weights, and the input of
/// the first layer.
fn chain_of_derivatives(md: &mut String, r: &Inputs) {
    let rows: Vec<_> = r
        .scenarios
        .iter()
        .zip(r.stats)
        .filter_map(|(sc, st)| st.mechanism.map(|m| (sc, m)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## The chain of derivatives\n\n\
         Back-propagation multiplies the error, layer by layer, by the activation's derivative and by \
         the next layer's weights: dC/dz_l = f'(z_l) * (dC/dz_(l+1) W_(l+1)^T). Per scenario: the mean \
         derivative f'(z) over the hidden layers (and the most it can be), the weight gain \
         ||W|| / sqrt(fan-in) of layers 2..L (about 1 for Glorot's initialisation at equal widths), \
         their product per layer (geometric mean over the layers: the factor by which a layer would \
         multiply the error if derivatives, weights and errors were independent, which training \
         need not keep them), and the factor measured, \
         mean |dC/dz_l| / mean |dC/dz_(l+1)|; below 1 the error shrinks on its way to the input. The \
         last column is the weight gradient per unit of error, mean |dC/dW| / mean |dC/dz|, of layer 1 \
         over layer 2: below 1 where layer 1's input, raw pixels that are mostly zero, shrinks its \
         gradient for the same error. All averaged over the logged steps and the seeds.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | mean f'(z) (at most) | weight gain | f'(z) x gain per layer | error factor per layer, measured | gradient per unit error, layer 1 / layer 2 |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    for (sc, m) in rows {
        let _ = writeln!(
            md,
            "| {} | {} ({}) | {} | {} | {} | {} |",
            sc.point.label(),
            sig(m.deriv_mean, 3),
            sig(sc.point.config.activation.max_derivative(), 3),
            sig(m.gain, 3),
            sig(m.expected_factor, 3),
            sig(m.measured_factor, 3),
            sig(m.input_effect, 3),
        );
    }
    md.push('\n');
}

/// The fraction of dead or saturated units per hidden layer.
fn dead_units(md: &mut String, r: &Inputs) {
    let _ = writeln!(
        md,
        "## Dead and saturated units\n\n\
         Fraction of a hidden layer's units that are off for every example of a logged batch, \
         averaged over the logged steps and the seeds: dead (pre-activation <= 0) for the ReLU family, \
         ELU, GELU and SiLU; saturated (derivative below 1% of its maximum) for sigmoid and tanh.\n"
    );
    let max_hidden = r
        .stats
        .iter()
        .filter(|s| s.ok > 0)
        .map(|s| s.layers - 1)
        .max()
        .unwrap_or(0);
    if max_hidden == 0 {
        return;
    }
    let _ = writeln!(md, "{}", layer_table_head("kind", max_hidden));
    for (sc, st) in r.scenarios.iter().zip(r.stats).filter(|(_, s)| s.ok > 0) {
        let kind = match sc.point.config.activation.off_kind() {
            OffKind::Dead => "dead",
            OffKind::Saturated => "saturated",
        };
        let cells: Vec<String> = (0..max_hidden)
            .map(|l| {
                st.dead_frac
                    .get(l)
                    .copied()
                    .flatten()
                    .map_or(String::new(), percent)
            })
            .collect();
        let _ = writeln!(md, "{}", layer_table_row(&sc.point.label(), kind, &cells));
    }
    md.push('\n');
    inactive_share(md, r, max_hidden);
}

/// The share of (unit, example) pairs that are off: a unit counts above only when it is off
/// for every example of the batch, which a saturating sigmoid unit almost never is.
fn inactive_share(md: &mut String, r: &Inputs, max_hidden: usize) {
    let with: Vec<_> = r
        .scenarios
        .iter()
        .zip(r.stats)
        .filter(|(_, s)| s.ok > 0 && s.inactive_profile.iter().any(Option::is_some))
        .collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "A unit counts above only when it is off for every example of the batch: a dead ReLU unit, \
         which never learns again. A sigmoid unit is almost never saturated for every example at \
         once, so that table shows about 0% for sigmoid even where a share of its (unit, example) \
         pairs is saturated. The \
         table below counts each example instead: the share of the (unit, example) pairs of a logged \
         batch that are off by the same test, averaged over the logged steps and the seeds, which \
         is how much of a layer passes no error on for a typical example. Both are kept: the first \
         says whether units die, the second how much of the signal each layer stops.\n"
    );
    let _ = writeln!(md, "{}", layer_table_head("off when", max_hidden));
    for (sc, st) in with {
        let cells: Vec<String> = (0..max_hidden)
            .map(|l| {
                st.inactive_profile
                    .get(l)
                    .copied()
                    .flatten()
                    .map_or(String::new(), percent)
            })
            .collect();
        let kind = match sc.point.config.activation.off_kind() {
            OffKind::Dead => "z <= 0",
            OffKind::Saturated => "f' < 1% of max",
        };
        let _ = writeln!(md, "{}", layer_table_row(&sc.point.label(), kind, &cells));
    }
    md.push('\n');
}

/// The figures with their captions.
fn figures(md: &mut String, r: &Inputs) {
    let _ = writeln!(md, "## Figures\n");
    for f in r.figures {
        let _ = writeln!(
            md,
            "![{}]({}/{})\n\n*{}*\n",
            f.caption,
            r.sweep.name(),
            f.file,
            f.caption
        );
    }
}

/// Where the runs are, how to browse them, and which ones have no result.
fn runs(md: &mut String, r: &Inputs) {
    let _ = writeln!(
        md,
        "## Runs\n\n\
         Each run has its folder `{runs}/<scenario>_seed-<n>_<config hash>/` with `config.json`, \
         `metrics.jsonl` (every logged step, per layer), `summary.json` and a TensorBoard event file \
         (`events.out.tfevents.*`: every scalar of `metrics.jsonl` under `<statistic>/layer<k>`, \
         histograms `grad_hist/layer<k>` and `weight_hist/layer<k>`, and the final `test_acc` and \
         `decay_ratio`). To browse all runs of this sweep:\n\n```sh\ntensorboard --logdir {runs}\n```",
        runs = r.runs_dir.display()
    );
    let problems: Vec<String> = r
        .scenarios
        .iter()
        .flat_map(|sc| sc.runs.iter())
        .filter_map(|run| {
            // Relative to the output folder, as the rest of the report: no path of the
            // machine that wrote it.
            let name = run.dir.file_name().unwrap_or_default();
            let dir = r.runs_dir.join(name);
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
    if problems.is_empty() {
        let _ = writeln!(
            md,
            "\nAll {} runs finished.",
            r.scenarios.iter().map(|s| s.runs.len()).sum::<usize>()
        );
    } else {
        let _ = writeln!(md, "\nRuns without a result:\n\n{}", problems.join("\n"));
    }
}
