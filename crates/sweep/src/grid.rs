//! The grid of a sweep: every combination of the axes' values (repeated for each named
//! scenario, when the sweep has some), each trained with every seed.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use toml::Table;
use vgrad_record::{DeviceChoice, RunConfig, Seeds};

use crate::definition::{NamedScenario, config_from};
use crate::{SweepDefinition, SweepError};

/// Changes to a sweep given on the command line, for a quick look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Train this many steps instead.
    pub steps: Option<usize>,
    /// Use these seeds instead.
    pub seeds: Option<Seeds>,
    /// Train on this device instead.
    pub device: Option<DeviceChoice>,
}

impl Overrides {
    /// The `cargo xtask sweep` command that runs the sweep `name` with these overrides.
    pub fn command(&self, name: &str) -> String {
        let mut cmd = format!("cargo xtask sweep {name}");
        if self.device == Some(DeviceChoice::Cuda) {
            cmd.push_str(" --cuda");
        }
        if let Some(steps) = self.steps {
            cmd.push_str(&format!(" --steps {steps}"));
        }
        if let Some(seeds) = &self.seeds {
            cmd.push_str(&format!(" --seeds {seeds}"));
        }
        cmd
    }

    /// Whether the sweep is changed for a quick look (fewer steps or other seeds).
    pub fn is_quick_look(&self) -> bool {
        self.steps.is_some() || self.seeds.is_some()
    }

    /// Where runs and reports go when no folder is given: the workspace, or for a quick
    /// look its `quick/` folder, so that a quick look never replaces the reference runs
    /// and the committed reports.
    pub fn default_out(&self, workspace: &Path) -> PathBuf {
        if self.is_quick_look() {
            workspace.join("quick")
        } else {
            workspace.to_path_buf()
        }
    }
}

/// The pseudo-axis of a sweep's named scenarios, first in a grid point's `values`.
pub const SCENARIO: &str = "scenario";

/// One combination of axis values.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPoint {
    /// Position in the grid (scenario outermost, then the first axis).
    pub index: usize,
    /// Each axis with its value here, in canonical text; with scenarios, first
    /// `("scenario", name)`.
    pub values: Vec<(String, String)>,
    /// The resolved configuration (its `seed` is set per run).
    pub config: RunConfig,
}

/// File-name-safe form of a value: `leaky-relu:0.2` becomes `leaky-relu-0.2`, the scenario
/// name `relu, residual + batch norm` becomes `relu-residual-batch-norm` (one dash for a
/// run of other characters).
fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out
}

/// Whether labels show the value of axis `k` without its name: a scenario's name and an
/// activation say what they are.
fn is_bare(k: &str) -> bool {
    k == SCENARIO || k == "activation"
}

impl GridPoint {
    /// A readable name: the scenario's name and the activation as they are, other axes as
    /// `name value`.
    pub fn label(&self) -> String {
        if self.values.is_empty() {
            return "base".into();
        }
        self.label_without("")
    }

    /// The label with `axis` left out (empty when no other axis is left), which names the
    /// group of points that differ only in `axis`.
    pub fn label_without(&self, axis: &str) -> String {
        self.label_without_any(&[axis])
    }

    /// The label without the values of any of `axes`.
    pub fn label_without_any(&self, axes: &[&str]) -> String {
        self.values
            .iter()
            .filter(|(k, _)| !axes.contains(&k.as_str()))
            .map(|(k, v)| {
                if is_bare(k) {
                    v.clone()
                } else {
                    format!("{k} {v}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The label in a form fit for file names.
    pub fn slug(&self) -> String {
        if self.values.is_empty() {
            return "base".into();
        }
        self.values
            .iter()
            .map(|(k, v)| {
                if is_bare(k) {
                    slug(v)
                } else {
                    format!("{}-{}", slug(k), slug(v))
                }
            })
            .collect::<Vec<_>>()
            .join("_")
    }

    /// The configuration of this point's run with `seed`.
    pub fn run_config(&self, seed: u64) -> RunConfig {
        RunConfig {
            seed,
            ..self.config.clone()
        }
    }

    /// The folder of this point's runs in the sweep's runs folder, one level that
    /// TensorBoard's run selector shows as a group: the slug, or `point-<index>` for a slug
    /// without a letter or digit (a scenario named `.` or `_`), which could not be a folder
    /// of its own.
    pub fn dir_name(&self) -> String {
        let slug = self.slug();
        if slug.chars().any(|c| c.is_ascii_alphanumeric()) {
            slug
        } else {
            format!("point-{}", self.index)
        }
    }

    /// `vgrad train --run-name` template of this point's runs, inside [`Self::dir_name`]:
    /// the seed, then the short hash of the resolved configuration, which tells apart the
    /// runs of the same point under other settings (a quick look's `--steps`, say).
    pub fn run_name_template(&self) -> String {
        "seed-{seed}_{hash}".to_string()
    }

    /// The folder of this point's run with `seed`, relative to the sweep's runs folder:
    /// `<point>/seed-<seed>_<hash>`.
    pub fn run_dir(&self, seed: u64) -> PathBuf {
        let name = vgrad_record::run_name(&self.run_name_template(), &self.run_config(seed));
        Path::new(&self.dir_name()).join(name)
    }

    /// The folder the same run had in the older, flat layout, which the committed runs
    /// still use: `<slug>_seed-<seed>_<hash>`.
    pub fn legacy_run_dir(&self, seed: u64) -> PathBuf {
        let template = format!("{}_seed-{{seed}}_{{hash}}", self.slug());
        PathBuf::from(vgrad_record::run_name(&template, &self.run_config(seed)))
    }

    /// Where the run with `seed` is in `runs_dir`: its folder in the current layout
    /// ([`Self::run_dir`]), or, where only the older flat layout's folder exists, that
    /// one, so that runs trained before the layout changed are read and resumed rather
    /// than trained again.
    pub fn find_run_dir(&self, runs_dir: &Path, seed: u64) -> PathBuf {
        let current = runs_dir.join(self.run_dir(seed));
        if current.exists() {
            return current;
        }
        let legacy = runs_dir.join(self.legacy_run_dir(seed));
        if legacy.exists() { legacy } else { current }
    }

    /// The value of `axis` at this point, if it is an axis.
    pub fn value(&self, axis: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == axis)
            .map(|(_, v)| v.as_str())
    }
}

/// The most runs (grid points times seeds) a sweep may have: beyond it, a sweep file is
/// refused before its grid is built (each run is a folder and a process's share of
/// memory, and building 100,000 grid points already takes about a second and 300 MB). `cargo xtask sweep` asks for `--yes` far below this, at
/// [`RUNS_WITHOUT_CONFIRMATION`].
pub const MAX_RUNS: usize = 100_000;

/// Runs a sweep starts without `--yes`: a grid larger than this is more likely a typo
/// (`seeds = 1000000`) than a plan.
pub const RUNS_WITHOUT_CONFIRMATION: usize = 5_000;

/// A sweep ready to run: its definition with the command line's overrides, expanded.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The definition as read.
    pub definition: SweepDefinition,
    /// The command line's changes to it.
    pub overrides: Overrides,
    /// The seeds every grid point is trained with (after overrides).
    pub seeds: Vec<u64>,
    /// All grid points, scenario outermost, then the first axis.
    pub points: Vec<GridPoint>,
}

impl Sweep {
    /// Expands `definition` with `overrides`; every grid point is checked.
    pub fn new(definition: SweepDefinition, overrides: &Overrides) -> Result<Self, SweepError> {
        let key_error = |key: &str, message: String| SweepError::Key {
            path: definition.path.clone(),
            key: key.to_string(),
            message,
        };
        let seeds = match &overrides.seeds {
            Some(seeds) => seeds.as_slice().to_vec(),
            None => definition.seeds.clone(),
        };
        let runs = definition
            .axes
            .iter()
            .map(|(_, values)| values.len())
            .chain([definition.scenarios.len().max(1), seeds.len()])
            .try_fold(1usize, usize::checked_mul)
            .filter(|&runs| runs <= MAX_RUNS);
        if runs.is_none() {
            let sizes: Vec<String> = definition
                .axes
                .iter()
                .map(|(field, values)| format!("{} {field}", values.len()))
                .chain(
                    (!definition.scenarios.is_empty())
                        .then(|| format!("{} scenarios", definition.scenarios.len())),
                )
                .chain([format!("{} seeds", seeds.len())])
                .collect();
            return Err(key_error(
                "axes",
                format!(
                    "the grid ({}) has more than {MAX_RUNS} runs, the most a sweep may have",
                    sizes.join(" x ")
                ),
            ));
        }
        let mut combos: Vec<Vec<usize>> = vec![vec![]];
        for (_, values) in &definition.axes {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    (0..values.len()).map(move |i| {
                        let mut c = c.clone();
                        c.push(i);
                        c
                    })
                })
                .collect();
        }
        // Without scenarios, one pass over the axes with `[base]` alone, as before there
        // were scenarios.
        let scenarios: Vec<Option<(usize, &NamedScenario)>> = if definition.scenarios.is_empty() {
            vec![None]
        } else {
            definition.scenarios.iter().enumerate().map(Some).collect()
        };
        let resolve = |table: &Table| -> Result<RunConfig, SweepError> {
            let mut config = config_from(table).map_err(|e| key_error("axes", e.message))?;
            if let Some(steps) = overrides.steps {
                config.steps = steps;
            }
            if let Some(device) = overrides.device {
                config.device = device;
            }
            Ok(config)
        };
        let mut points: Vec<GridPoint> = Vec::with_capacity(scenarios.len() * combos.len());
        // Each configuration's flags, to find a twin without comparing every pair.
        let mut seen: HashMap<Vec<String>, usize> = HashMap::new();
        for scenario in scenarios {
            let mut scenario_table = definition.base.clone();
            if let Some((_, s)) = scenario {
                scenario_table.extend(s.fields.clone());
            }
            for combo in &combos {
                let mut table = scenario_table.clone();
                for ((field, values), &i) in definition.axes.iter().zip(combo) {
                    table.insert(field.clone(), values[i].clone());
                }
                let config = resolve(&table)?;
                let values = scenario
                    .map(|(_, s)| (SCENARIO.to_string(), s.name.clone()))
                    .into_iter()
                    .chain(definition.axes.iter().map(|(field, _)| {
                        let text = config.field_text(field).unwrap_or_default();
                        (field.clone(), text)
                    }))
                    .collect();
                let point = GridPoint {
                    index: points.len(),
                    values,
                    config,
                };
                let invalid =
                    |m: String| key_error("axes", format!("grid point `{}`: {m}", point.label()));
                if let Err(e) = point.config.validate() {
                    // The scenario is at fault when it is invalid over `[base]` alone;
                    // otherwise an axis value is.
                    return Err(match scenario {
                        Some((i, _))
                            if resolve(&scenario_table).is_ok_and(|c| c.validate().is_err()) =>
                        {
                            key_error(
                                &format!("scenarios[{i}]"),
                                format!("grid point `{}`: {e}", point.label()),
                            )
                        }
                        _ => invalid(e.to_string()),
                    });
                }
                let twin = match seen.entry(point.config.train_flags()) {
                    Entry::Occupied(first) => Some(&points[*first.get()]),
                    Entry::Vacant(slot) => {
                        slot.insert(points.len());
                        None
                    }
                };
                if let Some(twin) = twin {
                    let (this, other) = (point.value(SCENARIO), twin.value(SCENARIO));
                    return Err(match (scenario, this, other) {
                        (Some((i, _)), Some(this), Some(other)) if this != other => key_error(
                            &format!("scenarios[{i}]"),
                            format!(
                                "scenarios `{other}` and `{this}` resolve to the same \
                                 configuration{} (grid points `{}` and `{}`)",
                                if overrides.steps.is_some() || overrides.device.is_some() {
                                    " with the command line's overrides"
                                } else {
                                    ""
                                },
                                twin.label(),
                                point.label()
                            ),
                        ),
                        _ => invalid(format!(
                            "same configuration as `{}`: an axis lists a value twice",
                            twin.label()
                        )),
                    });
                }
                points.push(point);
            }
        }
        Ok(Self {
            definition,
            overrides: overrides.clone(),
            seeds,
            points,
        })
    }

    /// Runs of the whole grid: points times seeds.
    pub fn runs(&self) -> usize {
        self.points.len() * self.seeds.len()
    }

    /// Reads the sweep file at `path` and expands it with `overrides`.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, SweepError> {
        Self::new(SweepDefinition::load(path)?, overrides)
    }

    /// The experiment's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// Where its runs live under the output folder `out`: `out/runs/<name>`.
    pub fn runs_dir(&self, out: &Path) -> PathBuf {
        out.join("runs").join(self.name())
    }

    /// The command that reproduces it, for its report.
    pub fn command(&self) -> String {
        self.overrides.command(self.name())
    }

    /// Whether `field` is one of its axes, or `"scenario"` when it has named scenarios.
    pub fn varies(&self, field: &str) -> bool {
        (field == SCENARIO && !self.definition.scenarios.is_empty())
            || self.definition.axes.iter().any(|(k, _)| k == field)
    }

    /// Whether `field` (or `"scenario"`) takes more than one value over the grid, be it
    /// an axis or set by the scenarios: what a report must show per point.
    pub fn differs(&self, field: &str) -> bool {
        let value = |p: &GridPoint| {
            p.value(field)
                .map(str::to_string)
                .or_else(|| p.config.field_text(field))
        };
        let mut values = self.points.iter().map(value);
        let first = values.next();
        values.any(|v| Some(v) != first)
    }

    /// The grid points of `shard` (all of them without one).
    pub fn points_in(&self, shard: Option<Shard>) -> Vec<&GridPoint> {
        self.points
            .iter()
            .filter(|p| shard.is_none_or(|s| p.index % s.count == s.index))
            .collect()
    }
}

/// The K-th of N disjoint, deterministic slices of a grid (`--shard K/N`, K from 0):
/// grid point i belongs to shard i mod N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, from 0 to N - 1.
    pub index: usize,
    /// N.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard `{s}`: expected K/N with 0 <= K < N, e.g. 0/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sweep(text: &str, overrides: &Overrides) -> Result<Sweep, String> {
        let d = SweepDefinition::parse(text, Path::new("experiments/g.toml"))
            .map_err(|e| e.to_string())?;
        Sweep::new(d, overrides).map_err(|e| e.to_string())
    }

    #[test]
    fn expands_the_cartesian_product_in_file_order() {
        let s = sweep(
            "seeds = 2\n[axes]\nactivation = [\"sigmoid\", \"leaky-relu\"]\nlayers = [3, 6, 10]\n",
            &Overrides {
                steps: Some(50),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.points.len(), 6);
        let labels: Vec<String> = s.points.iter().map(GridPoint::label).collect();
        assert_eq!(labels[0], "sigmoid, layers 3");
        assert_eq!(labels[5], "leaky-relu:0.01, layers 10");
        assert_eq!(s.points[5].slug(), "leaky-relu-0.01_layers-10");
        assert!(s.points.iter().all(|p| p.config.steps == 50));
        let dir = s.points[1].run_dir(1);
        let name = dir.to_str().unwrap();
        assert!(
            name.starts_with("sigmoid_layers-6/seed-1_")
                && name.len() == "sigmoid_layers-6/seed-1_".len() + 8,
            "{name}"
        );
        assert_ne!(s.points[1].run_dir(0), dir);
        // The older flat layout: the same hash, one level.
        let legacy = s.points[1].legacy_run_dir(1);
        assert_eq!(
            legacy.to_str().unwrap(),
            name.replace("layers-6/seed", "layers-6_seed")
        );
    }

    #[test]
    fn runs_are_found_in_either_layout_the_current_one_first() {
        let s = sweep(
            "seeds = 1\n[axes]\nactivation = [\"relu\"]\n",
            &Overrides::default(),
        )
        .unwrap();
        let p = &s.points[0];
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path();
        // Nothing on disk: where a new run goes.
        assert_eq!(p.find_run_dir(runs, 0), runs.join(p.run_dir(0)));
        // Only the flat layout's folder: that one.
        std::fs::create_dir_all(runs.join(p.legacy_run_dir(0))).unwrap();
        assert_eq!(p.find_run_dir(runs, 0), runs.join(p.legacy_run_dir(0)));
        // Both (a run retrained with --force since): the current one.
        std::fs::create_dir_all(runs.join(p.run_dir(0))).unwrap();
        assert_eq!(p.find_run_dir(runs, 0), runs.join(p.run_dir(0)));
        assert!(p.run_dir(0).starts_with("relu"));
    }

    #[test]
    fn a_point_whose_slug_names_no_folder_goes_by_its_index() {
        let s = sweep(
            "seeds = 1\n[[scenarios]]\nname = \"a\"\n[[scenarios]]\nname = \"_\"\nlr = 0.1\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.points[0].dir_name(), "a");
        assert_eq!(
            (s.points[1].slug(), s.points[1].dir_name()),
            ("-".into(), "point-1".into())
        );
    }

    #[test]
    fn quick_looks_go_to_their_own_folder_and_say_so_in_their_command() {
        let ws = Path::new("/w");
        let full = Overrides::default();
        assert_eq!(full.default_out(ws), Path::new("/w"));
        let quick = Overrides {
            steps: Some(10),
            seeds: Some("0-2".parse().unwrap()),
            device: None,
        };
        assert_eq!(quick.default_out(ws), Path::new("/w/quick"));
        assert_eq!(
            quick.command("seed"),
            "cargo xtask sweep seed --steps 10 --seeds 3"
        );
        let only_seeds = Overrides {
            seeds: Some(Seeds::count(1).unwrap()),
            ..Overrides::default()
        };
        assert!(only_seeds.is_quick_look());
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_grid() {
        let s = sweep(
            "seeds = 1\n[axes]\nlayers = [2, 3, 4, 5, 6]\n",
            &Overrides::default(),
        )
        .unwrap();
        let mut all: Vec<usize> = (0..3)
            .flat_map(|k| {
                s.points_in(Some(Shard { index: k, count: 3 }))
                    .into_iter()
                    .map(|p| p.index)
            })
            .collect();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert!(
            "3/3".parse::<Shard>().is_err()
                && "a/3".parse::<Shard>().is_err()
                && "1/0".parse::<Shard>().is_err()
        );
    }

    #[test]
    fn rejects_bad_and_duplicate_grid_points() {
        let err = sweep(
            "seeds = 1\n[axes]\nactivation = [\"leaky-relu\", \"leaky-relu:0.01\"]\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.contains("same configuration"), "{err}");
        let err = sweep(
            "seeds = 1\n[axes]\nwidth = [10, 0]\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            err.contains("experiments/g.toml")
                && err.contains("width 0")
                && err.contains("--width"),
            "{err}"
        );
    }

    /// The example of the README: two axes and two scenarios.
    const SCENARIOS: &str = "seeds = 5\n[base]\nsteps = 2500\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\nlayers = [6, 10]\n[[scenarios]]\nname = \"adam\"\noptimizer = \"adam\"\nlr = 0.001\n[[scenarios]]\nname = \"sgd\"\noptimizer = \"sgd\"\nlr = 0.1\n";

    #[test]
    fn slugs_keep_one_dash_for_a_run_of_other_characters() {
        assert_eq!(slug("leaky-relu:0.2"), "leaky-relu-0.2");
        assert_eq!(
            slug("relu, residual + batch norm"),
            "relu-residual-batch-norm"
        );
        assert_eq!(slug("normal:1.0"), "normal-1.0");
    }

    #[test]
    fn scenarios_are_outermost_and_named_bare_in_labels_and_slugs() {
        let s = sweep(SCENARIOS, &Overrides::default()).unwrap();
        let labels: Vec<String> = s.points.iter().map(GridPoint::label).collect();
        assert_eq!(
            labels,
            vec![
                "adam, sigmoid, layers 6",
                "adam, sigmoid, layers 10",
                "adam, relu, layers 6",
                "adam, relu, layers 10",
                "sgd, sigmoid, layers 6",
                "sgd, sigmoid, layers 10",
                "sgd, relu, layers 6",
                "sgd, relu, layers 10",
            ]
        );
        let p = &s.points[6];
        assert_eq!(p.index, 6);
        assert_eq!(p.values[0], ("scenario".to_string(), "sgd".to_string()));
        assert_eq!(p.value("scenario"), Some("sgd"));
        assert_eq!(p.slug(), "sgd_relu_layers-6");
        assert_eq!(p.label_without("layers"), "sgd, relu");
        assert_eq!(p.label_without("scenario"), "relu, layers 6");
        assert!(p.run_dir(0).starts_with("sgd_relu_layers-6"));
        assert!((p.run_dir(0).file_name().unwrap().to_str().unwrap()).starts_with("seed-0_"));
        let c = &p.config;
        assert_eq!((c.lr, c.steps, c.layers), (0.1, 2500, 6));
        assert_eq!(c.field_text("optimizer").as_deref(), Some("sgd"));
        assert_eq!(s.points[0].config.lr, 0.001);
        assert!(s.varies("scenario") && s.varies("layers") && !s.varies("lr"));
        assert!(s.differs("scenario") && s.differs("layers") && s.differs("lr"));
        assert!(s.differs("optimizer") && !s.differs("steps") && !s.differs("width"));

        // Scenarios alone: a point's label is its scenario's name, slugged for folders.
        let s = sweep(
            "seeds = 1\n[[scenarios]]\nname = \"SGD, momentum 0.9\"\noptimizer = \"momentum:0.9\"\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.points.len(), 1);
        assert_eq!(s.points[0].label(), "SGD, momentum 0.9");
        assert_eq!(s.points[0].slug(), "SGD-momentum-0.9");
        assert!(s.varies("scenario") && !s.differs("scenario"));
    }

    #[test]
    fn without_scenarios_nothing_changes() {
        let s = sweep(
            "seeds = 1\n[axes]\nactivation = [\"relu\"]\nlayers = [3]\n",
            &Overrides::default(),
        )
        .unwrap();
        let p = &s.points[0];
        assert_eq!(
            p.values,
            vec![
                ("activation".to_string(), "relu".to_string()),
                ("layers".to_string(), "3".to_string())
            ]
        );
        assert_eq!(
            (p.label().as_str(), p.slug().as_str()),
            ("relu, layers 3", "relu_layers-3")
        );
        assert!(!s.varies("scenario") && !s.differs("scenario"));
        let base = sweep("seeds = 1\n", &Overrides::default()).unwrap();
        assert_eq!(
            (base.points[0].label(), base.points[0].slug()),
            ("base".into(), "base".into())
        );
    }

    #[test]
    fn rejects_scenarios_that_coincide_or_are_invalid() {
        let two = "seeds = 1\n[base]\nlr = 0.1\n[axes]\nlayers = [3, 6]\n[[scenarios]]\nname = \"a\"\n[[scenarios]]\nname = \"b\"\nlr = 0.1\n";
        assert_eq!(
            sweep(two, &Overrides::default()).unwrap_err(),
            "experiments/g.toml: `scenarios[1]`: scenarios `a` and `b` resolve to the same \
             configuration (grid points `a, layers 3` and `b, layers 3`)"
        );
        let steps = "seeds = 1\n[[scenarios]]\nname = \"short\"\nsteps = 100\n[[scenarios]]\nname = \"long\"\nsteps = 200\n";
        assert!(sweep(steps, &Overrides::default()).is_ok());
        let quick = Overrides {
            steps: Some(10),
            ..Default::default()
        };
        assert_eq!(
            sweep(steps, &quick).unwrap_err(),
            "experiments/g.toml: `scenarios[1]`: scenarios `short` and `long` resolve to the same \
             configuration with the command line's overrides (grid points `short` and `long`)"
        );
        let bad_lr = "seeds = 1\n[axes]\nlayers = [3, 6]\n[[scenarios]]\nname = \"a\"\n[[scenarios]]\nname = \"b\"\nlr = -1\n";
        assert_eq!(
            sweep(bad_lr, &Overrides::default()).unwrap_err(),
            "experiments/g.toml: `scenarios[1]`: grid point `b, layers 3`: --lr must be a \
             positive number, got -1"
        );
        let bad_width = "seeds = 1\n[axes]\nwidth = [10, 0]\n[[scenarios]]\nname = \"a\"\n";
        assert_eq!(
            sweep(bad_width, &Overrides::default()).unwrap_err(),
            "experiments/g.toml: `axes`: grid point `a, width 0`: --width must be at least 1, got 0"
        );
        let twice = "seeds = 1\n[axes]\nlayers = [3, 3]\n[[scenarios]]\nname = \"a\"\n";
        assert_eq!(
            sweep(twice, &Overrides::default()).unwrap_err(),
            "experiments/g.toml: `axes`: grid point `a, layers 3`: same configuration as \
             `a, layers 3`: an axis lists a value twice"
        );
    }

    #[test]
    fn a_grid_beyond_the_cap_is_refused_before_it_is_built() {
        // 100 x 100 x 100 points of 10 seeds: ten million runs, never expanded.
        let values: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
        let list = values.join(", ");
        let text =
            format!("seeds = 10\n[axes]\nlayers = [{list}]\nwidth = [{list}]\nsteps = [{list}]\n");
        let err = sweep(&text, &Overrides::default()).unwrap_err();
        assert_eq!(
            err,
            "experiments/g.toml: `axes`: the grid (100 layers x 100 width x 100 steps x 10 \
             seeds) has more than 100000 runs, the most a sweep may have"
        );
        let s = sweep(
            "seeds = 3\n[axes]\nlayers = [2, 3]\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.runs(), 6);
    }
}
