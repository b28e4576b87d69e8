//! The report as markdown that reads well as plain text and on a git forge.

use std::fmt::Write;
use std::path::Path;

use vgrad_model::activation::OffKind;
use vgrad_probe::GeometricSummary;
use vgrad_sweep::Sweep;
use vgrad_sweep::definition::{FIELDS, field_display};

use crate::figures::Figure;
use crate::findings::findings;
use crate::format::{percent, sig, with_ci};
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

/// The whole report.
pub fn render(
    sweep: &Sweep,
    scenarios: &[Scenario],
    stats: &[ScenarioStats],
    figures: &[Figure],
    runs_dir: &Path,
    command: &str,
) -> String {
    let name = sweep.name();
    let mut md = String::new();
    let _ = writeln!(md, "# Sweep `{name}`\n");
    if !sweep.definition.description.is_empty() {
        let _ = writeln!(md, "{}\n", sweep.definition.description.trim());
    }
    let _ = writeln!(
        md,
        "Generated from the runs in `{}` by `cargo xtask report`. Reproduce with:\n\n```sh\n{command}\n```\n",
        runs_dir.display()
    );

    let _ = writeln!(md, "## Configuration\n\n| field | value |\n| --- | --- |");
    let base = sweep.points.first().map(|p| &p.config);
    for field in FIELDS {
        let value = match sweep.definition.axes.iter().find(|(k, _)| k == field) {
            Some(_) => {
                let mut seen: Vec<String> = Vec::new();
                for p in &sweep.points {
                    let v = field_display(&p.config, field);
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                format!("**axis**: {}", seen.join(", "))
            }
            None => base.map_or(String::new(), |c| field_display(c, field)),
        };
        let _ = writeln!(md, "| {field} | {value} |");
    }
    if let Some(c) = base {
        let _ = writeln!(md, "| device | {} |", c.device);
    }
    let _ = writeln!(
        md,
        "| seeds | {} ({} per grid point) |\n",
        seed_list(&sweep.seeds),
        sweep.seeds.len()
    );

    let _ = writeln!(
        md,
        "## Decay of the gradient\n\n\
         Decay ratio: the last layer's mean |dC/dW| over the first layer's, each averaged over the \
         logged steps of a run; geometric mean over seeds with its 95% confidence interval (Student t \
         on log ratio). Per-layer factor: ratio^(1/(L-1)). Error: the same for the back-propagated \
         error mean |dC/dz| at each layer's pre-activation. Last / layer 2 leaves out the first \
         layer, whose input is raw pixels.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | runs ok | decay ratio [95% CI] | per-layer factor | error decay ratio [95% CI] | error per-layer factor | last / layer 2 | test accuracy |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (sc, st) in scenarios.iter().zip(stats) {
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
            "| {} | {runs} | {} | {} | {} | {} | {} | {acc} |",
            sc.point.label(),
            ci(st.decay),
            geo(st.layer_factor),
            ci(st.delta_decay),
            geo(st.delta_layer_factor),
            geo(st.last_over_second),
        );
    }

    let _ = writeln!(
        md,
        "\n## Findings\n\n{}\n",
        findings(scenarios, stats).join(" ")
    );

    let _ = writeln!(
        md,
        "## Per-layer profile\n\n\
         Each layer's mean |dC/dW| (grad) and mean |dC/dz| (error), averaged over the logged steps, \
         geometric mean over seeds; layer 1 is the first hidden layer, L the output layer.\n"
    );
    let mut depths: Vec<usize> = stats
        .iter()
        .filter(|s| s.ok > 0)
        .map(|s| s.layers)
        .collect();
    depths.sort_unstable();
    depths.dedup();
    for depth in depths {
        let _ = writeln!(md, "{}", layer_table_head("measure", depth));
        for (sc, st) in scenarios
            .iter()
            .zip(stats)
            .filter(|(_, s)| s.ok > 0 && s.layers == depth)
        {
            for (measure, values) in [("grad", &st.grad_profile), ("error", &st.delta_profile)] {
                let cells: Vec<String> = values.iter().map(|v| sig(*v, 3)).collect();
                let _ = writeln!(
                    md,
                    "| {} | {measure} | {} |",
                    sc.point.label(),
                    cells.join(" | ")
                );
            }
        }
        md.push('\n');
    }

    let _ = writeln!(
        md,
        "## Dead and saturated units\n\n\
         Fraction of a hidden layer's units that are off for every example of a logged batch, \
         averaged over the logged steps and the seeds: dead (pre-activation <= 0) for the ReLU family, \
         ELU, GELU and SiLU; saturated (derivative below 1% of its maximum) for sigmoid and tanh.\n"
    );
    let max_hidden = stats
        .iter()
        .filter(|s| s.ok > 0)
        .map(|s| s.layers - 1)
        .max()
        .unwrap_or(0);
    if max_hidden > 0 {
        let _ = writeln!(md, "{}", layer_table_head("kind", max_hidden));
        for (sc, st) in scenarios.iter().zip(stats).filter(|(_, s)| s.ok > 0) {
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
            let _ = writeln!(
                md,
                "| {} | {kind} | {} |",
                sc.point.label(),
                cells.join(" | ")
            );
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Figures\n");
    for f in figures {
        let _ = writeln!(
            md,
            "![{}]({name}/{})\n\n*{}*\n",
            f.caption, f.file, f.caption
        );
    }

    let _ = writeln!(
        md,
        "## Runs\n\n\
         Each run has its folder `{runs}/<scenario>_seed-<n>_<config hash>/` with `config.json`, \
         `metrics.jsonl` (every logged step, per layer), `summary.json` and a TensorBoard event file \
         (`events.out.tfevents.*`: every scalar of `metrics.jsonl` under `<statistic>/layer<k>`, \
         histograms `grad_hist/layer<k>` and `weight_hist/layer<k>`, and the final `test_acc` and \
         `decay_ratio`). To browse all runs of this sweep:\n\n```sh\ntensorboard --logdir {runs}\n```",
        runs = runs_dir.display()
    );
    let problems: Vec<String> = scenarios
        .iter()
        .flat_map(|sc| sc.runs.iter())
        .filter_map(|r| match &r.state {
            vgrad_sweep::RunState::Done(s) if s.status == "ok" => None,
            vgrad_sweep::RunState::Done(s) => Some(match s.diverged_at_step {
                Some(step) => format!("- `{}`: {} at step {step}", r.dir.display(), s.status),
                None => format!("- `{}`: {}", r.dir.display(), s.status),
            }),
            vgrad_sweep::RunState::Failed(e) => Some(format!(
                "- `{}`: failed: {}",
                r.dir.display(),
                e.lines().last().unwrap_or("").trim()
            )),
            vgrad_sweep::RunState::Incomplete => Some(format!(
                "- `{}`: incomplete (interrupted or running)",
                r.dir.display()
            )),
            vgrad_sweep::RunState::Missing => Some(format!("- `{}`: not run yet", r.dir.display())),
        })
        .collect();
    if problems.is_empty() {
        let _ = writeln!(
            md,
            "\nAll {} runs finished.",
            scenarios.iter().map(|s| s.runs.len()).sum::<usize>()
        );
    } else {
        let _ = writeln!(md, "\nRuns without a result:\n\n{}", problems.join("\n"));
    }
    md
}
