//! The sweep's configuration as tables: every recorded field with its value (or the values
//! an axis or the scenarios give it), the seeds, and each named scenario's settings.

use vgrad_record::config::text;
use vgrad_sweep::{SCENARIO, Sweep};

use crate::document::{Section, Table};

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

/// The configuration section of `sweep`'s report.
pub fn section(sweep: &Sweep) -> Section {
    let mut s = Section::new("Configuration");
    let mut t = Table::new(["field", "value"]);
    let points = &sweep.points;
    if let Some(base) = points.first().map(|p| &p.config) {
        // A field `config.json` leaves out at its default in every run (one added after
        // the first reports) gets no row.
        let recorded: Vec<String> = points
            .iter()
            .flat_map(|p| p.config.recorded_fields())
            .map(|(f, _)| f)
            .collect();
        // A recurrent network reads --recurrent-init (shown at its default too) and not
        // --init; the adding problem reads no --data.
        let recurrent = points.iter().all(|p| p.config.model.is_recurrent());
        let regression = points.iter().all(|p| p.config.task.is_regression());
        let unread = |f: &str| (recurrent && f == "init") || (regression && f == "data");
        let shown =
            |f: &str| recorded.iter().any(|r| r == f) || (recurrent && f == "recurrent_init");
        let listed = base
            .fields()
            .into_iter()
            .filter(|(f, _)| f != "seed" && shown(f) && !unread(f));
        for (field, value) in listed {
            let value = if sweep.varies(&field) {
                let mut seen: Vec<String> = Vec::new();
                for p in points {
                    let v = p.config.field_text(&field).unwrap_or_default();
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                format!("**axis**: {}", seen.join(", "))
            } else if sweep.differs(&field) {
                // Not an axis: the scenarios set it, each to one value.
                let per_scenario: Vec<String> = sweep
                    .definition
                    .scenarios
                    .iter()
                    .filter_map(|sc| {
                        let p = points
                            .iter()
                            .find(|p| p.value(SCENARIO) == Some(&sc.name))?;
                        let v = p.config.field_text(&field).unwrap_or_default();
                        Some(format!("{v} ({})", sc.name))
                    })
                    .collect();
                format!("**scenario**: {}", per_scenario.join(", "))
            } else {
                text(&value)
            };
            t.row([field, value]);
        }
    }
    t.row([
        "seeds".to_string(),
        format!(
            "{} ({} per grid point)",
            seed_list(&sweep.seeds),
            sweep.seeds.len()
        ),
    ]);
    s.table(t);
    scenarios(&mut s, sweep);
    s
}

/// The named scenarios, each with the fields it sets over the base configuration.
fn scenarios(s: &mut Section, sweep: &Sweep) {
    let named = &sweep.definition.scenarios;
    if named.is_empty() {
        return;
    }
    s.text(
        "Each scenario sets these fields over the base configuration; the axes vary within each.",
    );
    let mut t = Table::new(["scenario", "settings"]);
    for sc in named {
        let point = sweep
            .points
            .iter()
            .find(|p| p.value(SCENARIO) == Some(&sc.name));
        // The resolved value's canonical text (`leaky-relu:0.01`), as the table above
        // shows it; the file's text where there is no point to read it from.
        let settings: Vec<String> = sc
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
        t.row([sc.name.clone(), settings]);
    }
    s.table(t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_shows_what_each_scenario_sets() {
        // `reference` sets nothing: the base, whose lr differs from `adam`'s.
        let sweep = crate::synthetic::sweep(
            "seeds = 5\n[base]\nsteps = 2500\nlr = 0.01\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\n\
             layers = [6, 10]\n[[scenarios]]\nname = \"adam\"\noptimizer = \"adam\"\n\
             lr = 0.001\n[[scenarios]]\nname = \"sgd\"\noptimizer = \"sgd\"\nlr = 0.1\n\
             [[scenarios]]\nname = \"reference\"\n",
        );
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
        assert_eq!(section(&sweep).markdown(2, ""), want);
    }
}
