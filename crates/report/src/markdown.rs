//! The report as markdown that reads well as plain text and on a git forge: one function
//! per section, in reading order.

use std::fmt::Write;
use std::path::Path;

use vgrad_record::config::text;
use vgrad_record::probe::jacobian_examples;
use vgrad_record::{OffKind, RunState};
use vgrad_sweep::{SCENARIO, Sweep};

use crate::compare::{Change, comparisons, deepest_rankings};
use crate::figures::Figure;
use crate::findings::{diagnostic_findings, findings};
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
    against_baselines(&mut md, r);
    deepest_ranking(&mut md, r);
    let _ = writeln!(
        md,
        "\n## Findings\n\n{}\n",
        findings(r.scenarios, r.stats).join(" ")
    );
    let diagnostics = diagnostic_findings(r.scenarios, r.stats);
    if !diagnostics.is_empty() {
        let _ = writeln!(md, "### Diagnostics\n\n{}\n", diagnostics.join(" "));
    }
    profiles(&mut md, r);
    chain_of_derivatives(&mut md, r);
    dead_units(&mut md, r);
    update_ratios(&mut md, r);
    activations(&mut md, r);
    jacobians(&mut md, r);
    theory_against_measurement(&mut md, r);
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

/// Every field of the run configuration that a grid point records, the axes with the values
/// they take, the fields the scenarios set differently with each scenario's value; the
/// seeds last, in a row of their own. Then the scenarios' own table, if there are any.
fn configuration(md: &mut String, r: &Inputs) {
    let _ = writeln!(md, "## Configuration\n\n| field | value |\n| --- | --- |");
    let points = &r.sweep.points;
    if let Some(base) = points.first().map(|p| &p.config) {
        // A field `config.json` leaves out at its default in every run (one added after
        // the first reports) gets no row, so those reports stay as they are.
        let recorded: Vec<String> = points
            .iter()
            .flat_map(|p| p.config.recorded_fields())
            .map(|(f, _)| f)
            .collect();
        let listed = base
            .fields()
            .into_iter()
            .filter(|(f, _)| f != "seed" && recorded.contains(f));
        for (field, value) in listed {
            let value = if r.sweep.varies(&field) {
                let mut seen: Vec<String> = Vec::new();
                for p in points {
                    let v = p.config.field_text(&field).unwrap_or_default();
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                format!("**axis**: {}", seen.join(", "))
            } else if r.sweep.differs(&field) {
                // Not an axis, and overrides are the same for all points: the scenarios
                // set it, each to one value.
                let per_scenario: Vec<String> = r
                    .sweep
                    .definition
                    .scenarios
                    .iter()
                    .filter_map(|s| {
                        let p = points.iter().find(|p| p.value(SCENARIO) == Some(&s.name))?;
                        let v = p.config.field_text(&field).unwrap_or_default();
                        Some(format!("{v} ({})", s.name))
                    })
                    .collect();
                format!("**scenario**: {}", per_scenario.join(", "))
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
    scenario_table(md, r);
}

/// The named scenarios, each with the fields it sets over the base configuration; nothing
/// for a sweep without scenarios.
fn scenario_table(md: &mut String, r: &Inputs) {
    let scenarios = &r.sweep.definition.scenarios;
    if scenarios.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "Each scenario sets these fields over the base configuration; the axes vary within \
         each.\n\n| scenario | settings |\n| --- | --- |"
    );
    for s in scenarios {
        let point = r
            .sweep
            .points
            .iter()
            .find(|p| p.value(SCENARIO) == Some(&s.name));
        // The resolved value's canonical text (`leaky-relu:0.01`), as the table above
        // shows it; the file's text where there is no point to read it from.
        let settings: Vec<String> = s
            .fields
            .iter()
            .map(|(field, value)| {
                let v = point
                    .and_then(|p| p.config.field_text(field))
                    .unwrap_or_else(|| value.to_string());
                format!("{field} {v}")
            })
            .collect();
        let settings = if settings.is_empty() {
            "none: the base configuration".to_string()
        } else {
            settings.join(", ")
        };
        let _ = writeln!(md, "| {} | {settings} |", s.name);
    }
    md.push('\n');
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

/// A test accuracy with its 95% interval over seeds.
fn accuracy_ci(st: &ScenarioStats) -> String {
    if st.ok == 0 {
        return "n/a".into();
    }
    let (mean, low, high) = st.test_acc_ci();
    if low.is_nan() {
        percent(mean)
    } else {
        format!("{} [{}, {}]", percent(mean), percent(low), percent(high))
    }
}

/// A change against a baseline: a factor (`2.1x`) or points (`-3.2 pts`), in bold when
/// the intervals are apart.
fn change(c: Option<Change>, points: bool) -> String {
    let Some(c) = c else {
        return "n/a".into();
    };
    let text = if points {
        format!("{:+.1} pts", c.by)
    } else {
        format!("{}x", sig(c.by, 3))
    };
    if c.clear { format!("**{text}**") } else { text }
}

/// Each named scenario against its baseline at the same setting of the axes.
fn against_baselines(md: &mut String, r: &Inputs) {
    let rows = comparisons(r.scenarios, r.stats);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n### Each scenario against its baseline\n\n\
         A scenario's baseline is the first scenario of the sweep file with the same activation, at \
         the same setting of the axes. Ratios are the scenario's geometric mean over the \
         baseline's; accuracy differences are in percentage points. A change is in **bold** when \
         the two 95% intervals do not overlap.\n\n\
         | scenario | baseline | decay ratio [95% CI] | vs baseline | error decay ratio [95% CI] | vs baseline | test accuracy [95% CI] | vs baseline |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for c in rows {
        let (st, sc) = (&r.stats[c.scenario], &r.scenarios[c.scenario]);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            sc.point.label(),
            r.scenarios[c.baseline].point.label(),
            ci(st.decay),
            change(c.decay, false),
            ci(st.delta_decay),
            change(c.error, false),
            accuracy_ci(st),
            change(c.accuracy, true),
        );
    }
}

/// The scenarios at the greatest depth, ranked by how well the error keeps its size and
/// by test accuracy (sweeps of named scenarios over depth).
fn deepest_ranking(md: &mut String, r: &Inputs) {
    if !(r.sweep.varies(SCENARIO) && r.sweep.varies("layers")) {
        return;
    }
    let Some((depth, by_error, by_accuracy)) = deepest_rankings(r.stats) else {
        return;
    };
    let _ = writeln!(
        md,
        "\n### Ranked at {depth} layers\n\n\
         Left, by how well the back-propagated error keeps its size from the last layer to the \
         first (error decay ratio closest to 1, on a log scale: a shrinking and a growing error \
         count alike); right, by test accuracy.\n\n\
         | rank | scenario | error decay ratio [95% CI] | scenario | test accuracy [95% CI] |\n\
         | --- | --- | --- | --- | --- |"
    );
    for (rank, (&e, &a)) in by_error.iter().zip(&by_accuracy).enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            rank + 1,
            r.scenarios[e].point.label_without("layers"),
            ci(r.stats[e].delta_decay),
            r.scenarios[a].point.label_without("layers"),
            accuracy_ci(&r.stats[a]),
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

/// A cell: the value with three significant figures, empty for none.
fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| sig(v, 3))
}

/// One table per depth of the scenarios `with` picks: the head `layer_table_head(second,
/// columns(depth))`, then each scenario's `rows` (a second column and its cells).
fn per_depth_tables(
    md: &mut String,
    r: &Inputs,
    second: &str,
    with: impl Fn(&ScenarioStats) -> bool,
    columns: impl Fn(usize) -> usize,
    rows: impl Fn(&ScenarioStats) -> Vec<(String, Vec<String>)>,
) {
    let mut depths: Vec<usize> = r
        .stats
        .iter()
        .filter(|s| s.ok > 0 && with(s))
        .map(|s| s.layers)
        .collect();
    depths.sort_unstable();
    depths.dedup();
    for depth in depths {
        let _ = writeln!(md, "{}", layer_table_head(second, columns(depth)));
        for (sc, st) in r
            .scenarios
            .iter()
            .zip(r.stats)
            .filter(|(_, s)| s.ok > 0 && s.layers == depth && with(s))
        {
            for (second, cells) in rows(st) {
                let _ = writeln!(
                    md,
                    "{}",
                    layer_table_row(&sc.point.label(), &second, &cells)
                );
            }
        }
        md.push('\n');
    }
}

/// How far each layer's weights move per step, relative to their size.
fn update_ratios(md: &mut String, r: &Inputs) {
    if !r.stats.iter().any(|s| s.diagnostics.has_update()) {
        return;
    }
    let _ = writeln!(
        md,
        "## Update-to-weight ratio\n\n\
         How far each layer's weights move in one optimizer step relative to their size: \
         ||W_after - W_before|| / ||W_before|| (Frobenius norms) of the step's update, per run the \
         geometric mean over the logged steps, then the geometric mean over seeds. Karpathy's rule \
         of thumb puts a healthy layer near 1e-3: far below, the layer hardly changes; far above, \
         it changes too fast to settle. Under Adam a small gradient still gets a step of normal \
         size, since each weight's step is its gradient divided by the gradient's own running \
         scale: there this ratio, not the size of the gradient, tells whether a layer learns. \
         A ratio of 0 means that at some logged step the layer's weights did not change at all: \
         its gradient was 0, or so small that the step rounds to nothing in float32. Layer 1 is \
         the first hidden layer, L the output layer; the column layer 1 / L is layer 1's ratio over \
         layer L's.\n"
    );
    per_depth_tables(
        md,
        r,
        "layer 1 / L",
        |s| s.diagnostics.has_update(),
        |depth| depth,
        |st| {
            let u = &st.diagnostics.update_ratio;
            let first_over_last = match (u.first(), u.last()) {
                (Some(Some(a)), Some(Some(b))) => sig(a / b, 3),
                _ => "n/a".into(),
            };
            vec![(first_over_last, u.iter().map(|v| cell(*v)).collect())]
        },
    );
}

/// Whether the report draws `file`.
fn drawn(r: &Inputs, file: &str) -> bool {
    r.figures.iter().any(|f| f.file == file)
}

/// Each hidden layer's pre-activation spread and activation mean, at the start and the
/// end of training.
fn activations(md: &mut String, r: &Inputs) {
    if !r.stats.iter().any(|s| s.diagnostics.has_activations()) {
        return;
    }
    let hist = if drawn(r, "activation_hist.svg") {
        " The figure `activation_hist.svg` shows the whole distribution of each hidden layer's activation at step 0, `delta_hist.svg` that of the error dC/dz."
    } else {
        ""
    };
    let _ = writeln!(
        md,
        "## Activations\n\n\
         What each hidden layer's activation reads and what it gives, over the layer's units and \
         a logged batch's examples, at step 0 (the initial network) and at the last logged step: \
         the standard deviation of the pre-activation (after the normalisation, where there is \
         one; geometric mean over seeds) and the mean of the activation's output (mean over \
         seeds). Glorot & Bengio 2010 read the same (their Figure 6: the activations' \
         distribution per layer). A spread that shrinks from layer to layer means weights that \
         pass on less than they get, and they shrink the back-propagated error the same way; a \
         spread that grows until a sigmoid or tanh saturates, or a layer pushed into its \
         activation's saturated region (a sigmoid output mean near 0 or 1), means derivatives \
         near 0, which shrink it too.{hist} Columns are the hidden layers.\n"
    );
    per_depth_tables(
        md,
        r,
        "measure",
        |s| s.diagnostics.has_activations(),
        |depth| depth - 1,
        |st| {
            let a = &st.diagnostics.activations;
            let row = |name: &str, f: fn(&crate::diagnostics::LayerActivations) -> Option<f64>| {
                (name.to_string(), a.iter().map(|x| cell(f(x))).collect())
            };
            vec![
                row("pre-activation std, step 0", |x| x.preact_std_start),
                row("pre-activation std, last step", |x| x.preact_std_end),
                row("activation mean, step 0", |x| x.act_mean_start),
                row("activation mean, last step", |x| x.act_mean_end),
            ]
        },
    );
}

/// The singular values of the layer-to-layer and of the whole network's Jacobians.
fn jacobians(md: &mut String, r: &Inputs) {
    if !r.stats.iter().any(|s| s.diagnostics.has_jacobian()) {
        return;
    }
    // The probe examples depend on the width: one count, or the counts of the sweep.
    let mut counts: Vec<usize> = r
        .sweep
        .points
        .iter()
        .map(|p| jacobian_examples(p.config.width))
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let counts = counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    let _ = writeln!(
        md,
        "## Jacobian singular values\n\n\
         The singular values of the Jacobian of one layer's pre-activation with respect to the \
         previous one's, dz_(l+1)/dz_l, and of the whole network's, d logits / d z_1, on the first \
         {counts} test images, the same for every run (each singular value averaged over the \
         images, then a geometric mean over seeds). Back-propagation multiplies the error by the transposed Jacobians, so their \
         singular values are the factors by which it shrinks or grows in each direction. Dynamical \
         isometry (Saxe et al. 2013; Pennington et al. 2017) asks for all of them near 1 at \
         initialisation: then the error keeps its size on its way to the input, whatever its \
         direction. Glorot & Bengio 2010 (Section 4.2.2) measured the mean singular value of the \
         layer-to-layer Jacobians at initialisation the same way (about 0.8 with their normalised \
         initialisation, 0.5 with the standard one, in tanh networks).\n\n\
         Mean singular value of dz_(l+1)/dz_l at step 0; column l is the Jacobian from hidden \
         layer l to layer l + 1 (L is the output layer's logits).\n"
    );
    per_depth_tables(
        md,
        r,
        "measure",
        |s| !s.diagnostics.layer_jacobian.is_empty(),
        |depth| depth - 1,
        |st| {
            let cells = st
                .diagnostics
                .layer_jacobian
                .iter()
                .map(|v| cell(*v))
                .collect();
            vec![("mean singular value, step 0".into(), cells)]
        },
    );
    let rows: Vec<_> = r
        .scenarios
        .iter()
        .zip(r.stats)
        .filter(|(_, s)| s.ok > 0)
        .filter_map(|(sc, s)| s.diagnostics.jacobian_start.map(|j| (sc, s, j)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "The whole network's Jacobian d logits / d z_1: its mean, smallest and largest singular \
         value at step 0 and at the last logged step it was probed at (wide networks are probed at \
         step 0 only). Where the activation's derivative is 0 (a ReLU unit that is off for an \
         image), the Jacobian loses that unit's direction, and its smallest singular value is 0 to \
         rounding: for the ReLU family max / min then says little, the mean more.\n\n\
         | scenario | mean, step 0 | min | max | max / min | last probed step | mean | min | max |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (sc, st, j) in rows {
        let end = match st.diagnostics.jacobian_end {
            Some((step, e)) if step > 0 => format!(
                "{step} | {} | {} | {}",
                sig(e.mean, 3),
                sig(e.min, 3),
                sig(e.max, 3)
            ),
            _ => "step 0 only | | |".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {end} |",
            sc.point.label(),
            sig(j.mean, 3),
            sig(j.min, 3),
            sig(j.max, 3),
            sig(j.max / j.min, 3),
        );
    }
    md.push('\n');
}

/// Mean-field theory's chi_1 beside the factor measured, per hidden layer.
fn theory_against_measurement(md: &mut String, r: &Inputs) {
    if !r.stats.iter().any(|s| s.diagnostics.has_theory()) {
        return;
    }
    let scatter = if drawn(r, "theory_vs_measurement.svg") {
        " The figure `theory_vs_measurement.svg` sets each measured factor against its prediction."
    } else {
        ""
    };
    let _ = writeln!(
        md,
        "## Mean-field theory against measurement\n\n\
         Mean-field theory (Poole et al. 2016; Schoenholz et al. 2017) predicts the factor by which \
         the mean square of the back-propagated error dC/dz changes from layer l + 1 to layer l: \
         chi_1 = n_(l+1) Var(W_(l+1)) E[f'(z_l)^2], from the next layer's width and weights and the \
         activation's derivative on the logged batch. Measured, the factor is \
         mean((dC/dz_l)^2) / mean((dC/dz_(l+1))^2); below 1 the error shrinks on its way to the \
         input. Both at step 0 (geometric mean over seeds) and averaged over training (geometric \
         mean over the logged steps, then over seeds). The theory assumes wide layers and weights \
         independent of the errors they carry: at width 10, and late in training, when the weights \
         have learnt from those errors, neither holds, so the two may part. The formula ignores a \
         normalisation and skip connections, which add terms to the chain: with them chi_1 is not \
         the whole story.{scatter} Columns are the hidden layers.\n"
    );
    per_depth_tables(
        md,
        r,
        "measure",
        |s| s.diagnostics.has_theory(),
        |depth| depth - 1,
        |st| {
            let t = &st.diagnostics.theory;
            let row = |name: &str, f: fn(&crate::diagnostics::LayerTheory) -> Option<f64>| {
                (name.to_string(), t.iter().map(|x| cell(f(x))).collect())
            };
            vec![
                row("chi_1, step 0", |x| x.chi1_start),
                row("measured, step 0", |x| x.measured_start),
                row("chi_1, average", |x| x.chi1_mean),
                row("measured, average", |x| x.measured_mean),
            ]
        },
    );
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use vgrad_sweep::{Overrides, SweepDefinition};

    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The configuration section of the report of `sweep`.
    fn configuration_of(sweep: &Sweep) -> String {
        let mut md = String::new();
        configuration(
            &mut md,
            &Inputs {
                sweep,
                scenarios: &[],
                stats: &[],
                figures: &[],
                runs_dir: Path::new("runs"),
            },
        );
        md
    }

    #[test]
    fn configuration_of_the_committed_sweeps_is_unchanged() {
        for name in ["seed", "depth", "init", "fashion"] {
            let ws = workspace();
            let path = ws.join(format!("experiments/{name}.toml"));
            let sweep = Sweep::load(&path, &Overrides::default()).unwrap();
            let report = std::fs::read_to_string(ws.join(format!("reports/{name}.md"))).unwrap();
            let start = report.find("## Configuration").unwrap();
            let end = report.find("## Decay of the gradient").unwrap();
            assert_eq!(configuration_of(&sweep), report[start..end], "{name}");
        }
    }

    /// The report of a synthetic sweep of sigmoid and ReLU networks of 3 layers, two
    /// seeds each, with or without the probe's diagnostics.
    fn synthetic_report(diagnostics: bool) -> String {
        let (sweep, scenarios) = crate::synthetic::sweep(&["sigmoid", "relu"], diagnostics);
        let stats: Vec<ScenarioStats> = scenarios.iter().map(ScenarioStats::of).collect();
        render(&Inputs {
            sweep: &sweep,
            scenarios: &scenarios,
            stats: &stats,
            figures: &[],
            runs_dir: Path::new("runs/syn"),
        })
    }

    /// `text` without the part from `start` up to (not including) `end`.
    fn without(text: &str, start: &str, end: &str) -> String {
        let (a, b) = (text.find(start).unwrap(), text.find(end).unwrap());
        format!("{}{}", &text[..a], &text[b..])
    }

    const NEW_HEADINGS: [&str; 5] = [
        "### Diagnostics",
        "## Update-to-weight ratio",
        "## Activations",
        "## Jacobian singular values",
        "## Mean-field theory against measurement",
    ];

    #[test]
    fn records_without_the_diagnostics_give_no_new_section() {
        let old = synthetic_report(false);
        for heading in NEW_HEADINGS {
            assert!(!old.contains(heading), "{heading}");
        }
        assert!(old.contains("## Findings") && old.contains("## Dead and saturated units"));
    }

    #[test]
    fn the_diagnostics_add_sections_and_leave_the_others_as_they_are() {
        let (old, new) = (synthetic_report(false), synthetic_report(true));
        for heading in NEW_HEADINGS {
            assert!(new.contains(heading), "{heading}");
        }
        let stripped = without(&new, "### Diagnostics", "## Per-layer profile");
        let stripped = without(&stripped, "## Update-to-weight ratio", "## Figures");
        assert_eq!(stripped, old);
        // After the dead units, in this order, before the figures.
        let at = |h: &str| new.find(h).unwrap();
        assert!(at("## Findings") < at("### Diagnostics"));
        assert!(at("### Diagnostics") < at("## Per-layer profile"));
        assert!(at("## Dead and saturated units") < at("## Update-to-weight ratio"));
        assert!(at("## Update-to-weight ratio") < at("## Activations"));
        assert!(at("## Activations") < at("## Jacobian singular values"));
        assert!(at("## Jacobian singular values") < at("## Mean-field theory against measurement"));
        assert!(at("## Mean-field theory against measurement") < at("## Figures"));
    }

    #[test]
    fn the_diagnostic_tables_give_the_statistics() {
        let new = synthetic_report(true);
        // Update ratio of layer l: 1e-3 (1 + 0.1 seed) (1 + 0.5 k) / l at step 100 k, so
        // over the steps k = 0, 1, 2 and the seeds 0, 1: 1e-3 sqrt(1.1) 3^(1/3) / l.
        let layer1 = 1e-3 * 1.1f64.sqrt() * 3f64.cbrt();
        let row = format!(
            "| sigmoid | 3.00 | {} | {} | {} |",
            sig(layer1, 3),
            sig(layer1 / 2.0, 3),
            sig(layer1 / 3.0, 3)
        );
        assert!(new.contains(&row), "{row}\n{new}");
        // The measured factor is (f l)^2 / (f (l + 1))^2 at every step: 1/4 and 4/9.
        assert!(
            new.contains("| sigmoid | measured, step 0 | 0.250 | 0.444 |"),
            "{new}"
        );
        assert!(
            new.contains("| relu | measured, average | 0.250 | 0.444 |"),
            "{new}"
        );
        // chi_1 = 0.5 f at step 0: sigmoid's f over seeds is sqrt(1.1), relu's twice that.
        let chi = |scale: f64| sig(0.5 * scale * 1.1f64.sqrt(), 3);
        assert!(new.contains(&format!(
            "| sigmoid | chi_1, step 0 | {} | {} |",
            chi(1.0),
            chi(1.0)
        )));
        assert!(new.contains(&format!(
            "| relu | chi_1, step 0 | {} | {} |",
            chi(2.0),
            chi(2.0)
        )));
        // The activations' mean is 0.5 - 0.01 l at every step.
        assert!(
            new.contains("| sigmoid | activation mean, last step | 0.490 | 0.480 |"),
            "{new}"
        );
        // The whole network's Jacobian was last probed at step 200.
        assert!(new.contains("| 200 |"), "{new}");
        assert!(
            new.contains("agree") || new.contains("within a factor of 1.5"),
            "{new}"
        );
    }

    #[test]
    fn configuration_shows_what_each_scenario_sets() {
        // `reference` sets nothing: the base, whose lr differs from `adam`'s.
        let text = "seeds = 5\n[base]\nsteps = 2500\nlr = 0.01\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\n\
                    layers = [6, 10]\n[[scenarios]]\nname = \"adam\"\noptimizer = \"adam\"\n\
                    lr = 0.001\n[[scenarios]]\nname = \"sgd\"\noptimizer = \"sgd\"\nlr = 0.1\n\
                    [[scenarios]]\nname = \"reference\"\n";
        let definition = SweepDefinition::parse(text, Path::new("experiments/opt.toml")).unwrap();
        let sweep = Sweep::new(definition, &Overrides::default()).unwrap();
        let want = "## Configuration

| field | value |
| --- | --- |
| activation | **axis**: sigmoid, relu |
| layers | **axis**: 6, 10 |
| width | 10 |
| init | glorot-uniform |
| steps | 2500 |
| batch_size | 30 |
| optimizer | **scenario**: adam (adam), sgd (sgd), adam (reference) |
| lr | **scenario**: 0.001 (adam), 0.1 (sgd), 0.01 (reference) |
| beta1 | 0.9 |
| beta2 | 0.999 |
| epsilon | 1e-8 |
| log_every | 200 |
| data | auto |
| device | cpu |
| seeds | 0-4 (5 per grid point) |

Each scenario sets these fields over the base configuration; the axes vary within each.

| scenario | settings |
| --- | --- |
| adam | optimizer adam, lr 0.001 |
| sgd | optimizer sgd, lr 0.1 |
| reference | none: the base configuration |

";
        assert_eq!(configuration_of(&sweep), want);
    }
}
