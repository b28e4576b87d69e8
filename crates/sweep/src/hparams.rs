//! A sweep as an experiment of TensorBoard's HParams dashboard: every setting the sweep
//! varies is a column (a hyperparameter with the values it takes), and so are the
//! metrics each run writes at its end. Each run's event file holds its own settings and
//! metrics (`vgrad train` writes them); this experiment, at the root of the sweep's runs
//! folder, tells the dashboard which of those settings to show and what values to offer
//! in its filters.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use vgrad_record::layout::HPARAMS_METRICS;
use vgrad_tensorboard::proto::{
    Domain, Experiment, HParamInfo, ListValue, MetricInfo, MetricName, ProtoValue,
};
use vgrad_tensorboard::{EventError, plugins, write_event_file};

use crate::{Sweep, SweepError};

/// The experiment's event file in the sweep's runs folder: a fixed name, so that a rerun
/// (or every Slurm shard) replaces it rather than adding another, with `tfevents` in it,
/// which is how TensorBoard finds event files.
pub const EXPERIMENT_FILE: &str = "events.out.tfevents.vgrad-sweep";

/// The settings a sweep varies, in the order of a run's configuration, each with the
/// values it takes over the grid: its axes, the fields its scenarios set that differ
/// between them, and the seed.
pub fn varied_settings(sweep: &Sweep) -> Vec<(String, Vec<ProtoValue>)> {
    let Some(first) = sweep.points.first() else {
        return Vec::new();
    };
    let mut settings = Vec::new();
    for (name, _) in first.config.fields() {
        let mut values: Vec<ProtoValue> = Vec::new();
        if name == "seed" {
            values.extend(sweep.seeds.iter().map(|&s| ProtoValue::number(s as f64)));
        } else if sweep.varies(&name) || sweep.differs(&name) {
            for point in &sweep.points {
                let value = point
                    .config
                    .fields()
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| ProtoValue::from_json(&v));
                if let Some(value) = value
                    && !values.contains(&value)
                {
                    values.push(value);
                }
            }
        }
        if !values.is_empty() {
            settings.push((name, values));
        }
    }
    settings
}

/// The runs' final metrics the dashboard shows for `sweep`: [`HPARAMS_METRICS`], or for a
/// sweep of recurrent networks the error factor per time step at step 0 in place of the
/// post's ratio (which needs layers), and for the adding problem the test mean squared
/// error and the regression classes.
fn metrics(sweep: &Sweep) -> Vec<(&'static str, &'static str, &'static str)> {
    let recurrent = sweep.points.iter().all(|p| p.config.model.is_recurrent());
    let regression = sweep.points.iter().any(|p| p.config.task.is_regression());
    if !recurrent {
        return HPARAMS_METRICS.to_vec();
    }
    let factor = (
        "error_factor_start",
        "error factor per time step, step 0",
        "(||dC/dh_1|| / ||dC/dh_T||)^(1/(T-1)) at step 0: below 1 the error shrinks going \
         back in time",
    );
    if regression {
        vec![
            factor,
            (
                "test_mse",
                "test MSE",
                "mean squared error on the test sequences after the last step",
            ),
            ("outcome", "outcome", "1 solved, 0 unsolved, -1 diverged"),
        ]
    } else {
        vec![factor, HPARAMS_METRICS[1], HPARAMS_METRICS[2]]
    }
}

/// The sweep's experiment: its varied settings as hyperparameters (discrete, with every
/// value they take, so the dashboard offers each as a filter's checkbox) and the runs'
/// final metrics ([`HPARAMS_METRICS`]).
pub fn experiment(sweep: &Sweep) -> Experiment {
    let hparam_infos = varied_settings(sweep)
        .into_iter()
        .map(|(name, values)| HParamInfo {
            r#type: values.first().map_or(0, ProtoValue::data_type),
            differs: values.len() > 1,
            domain: Some(Domain::DomainDiscrete(ListValue { values })),
            name,
            ..HParamInfo::default()
        })
        .collect();
    let metric_infos = metrics(sweep)
        .iter()
        .map(|(tag, title, description)| MetricInfo {
            name: Some(MetricName {
                group: String::new(),
                tag: tag.to_string(),
            }),
            display_name: title.to_string(),
            description: description.to_string(),
        })
        .collect();
    Experiment {
        name: sweep.name().to_string(),
        description: sweep.definition.description.trim().to_string(),
        time_created_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        hparam_infos,
        metric_infos,
    }
}

/// Writes the sweep's experiment into its runs folder `runs_dir` (created if need be),
/// replacing an earlier one, and returns the file's path.
pub fn write_experiment(sweep: &Sweep, runs_dir: &Path) -> Result<PathBuf, SweepError> {
    std::fs::create_dir_all(runs_dir).map_err(|cause| SweepError::Io {
        path: runs_dir.to_path_buf(),
        cause,
    })?;
    let path = runs_dir.join(EXPERIMENT_FILE);
    write_event_file(&path, vec![plugins::experiment(experiment(sweep))]).map_err(|e| match e {
        EventError::Io { path, cause } => SweepError::Io { path, cause },
        other => SweepError::Io {
            path: path.clone(),
            cause: std::io::Error::other(other.to_string()),
        },
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Overrides, SweepDefinition};
    use vgrad_tensorboard::proto::{HParamsData, What, data_type};

    fn sweep(text: &str) -> Sweep {
        let d = SweepDefinition::parse(text, Path::new("experiments/g.toml")).unwrap();
        Sweep::new(d, &Overrides::default()).unwrap()
    }

    fn names(e: &Experiment) -> Vec<&str> {
        e.hparam_infos.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn the_axes_the_scenarios_settings_and_the_seed_are_the_columns() {
        let s = sweep(
            "seeds = 3\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\nlayers = [6]\n\
             [[scenarios]]\nname = \"adam\"\noptimizer = \"adam\"\nlr = 0.001\n\
             [[scenarios]]\nname = \"sgd\"\noptimizer = \"sgd\"\nlr = 0.1\n",
        );
        let e = experiment(&s);
        // In the configuration's order; `layers`, an axis of one value, too.
        assert_eq!(
            names(&e),
            ["activation", "layers", "optimizer", "lr", "seed"]
        );
        let activation = &e.hparam_infos[0];
        assert_eq!(
            (activation.r#type, activation.differs),
            (data_type::STRING, true)
        );
        assert_eq!(
            activation.domain,
            Some(Domain::DomainDiscrete(ListValue {
                values: vec![ProtoValue::string("sigmoid"), ProtoValue::string("relu")]
            }))
        );
        let layers = &e.hparam_infos[1];
        assert_eq!((layers.r#type, layers.differs), (data_type::FLOAT64, false));
        let seed = &e.hparam_infos[4];
        assert_eq!(
            seed.domain,
            Some(Domain::DomainDiscrete(ListValue {
                values: (0..3).map(|s| ProtoValue::number(s as f64)).collect()
            }))
        );
        let metrics: Vec<&str> = e
            .metric_infos
            .iter()
            .map(|m| m.name.as_ref().unwrap().tag.as_str())
            .collect();
        assert_eq!(metrics, ["decay_ratio", "test_acc", "outcome"]);
        assert_eq!(e.name, "g");
    }

    #[test]
    fn the_experiment_file_is_replaced_not_added() {
        let s = sweep("seeds = 2\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\n");
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs/g");
        let path = write_experiment(&s, &runs).unwrap();
        write_experiment(&s, &runs).unwrap();
        assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 1);
        let events = vgrad_tensorboard::read_events(&path).unwrap();
        let Some(What::Summary(summary)) = &events[1].what else {
            panic!("{events:?}");
        };
        assert_eq!(summary.value[0].tag, plugins::EXPERIMENT_TAG);
        let Some(HParamsData::Experiment(e)) = plugins::hparams_data(&summary.value[0]) else {
            panic!("{summary:?}");
        };
        assert_eq!(names(&e), ["activation", "seed"]);
    }
}
