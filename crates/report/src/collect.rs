//! Finding a sweep's runs on disk and reading them.

use std::path::{Path, PathBuf};

use vgrad_record::layout::read_metrics;
use vgrad_record::{RunState, RunSummary, StepRecord, run_state};
use vgrad_sweep::{GridPoint, Sweep};

use crate::Result;

/// One run of a grid point.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Its seed.
    pub seed: u64,
    /// Its folder.
    pub dir: PathBuf,
    /// Where it stands.
    pub state: RunState,
    /// Its logged steps (finished runs only).
    pub steps: Vec<StepRecord>,
}

impl RunRecord {
    /// The summary of a finished run.
    pub fn summary(&self) -> Option<&RunSummary> {
        match &self.state {
            RunState::Done(s) => Some(s),
            _ => None,
        }
    }
}

/// A grid point with its runs, one per seed.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The grid point.
    pub point: GridPoint,
    /// Its runs in seed order.
    pub runs: Vec<RunRecord>,
}

impl Scenario {
    /// Runs that finished with status `ok`.
    pub fn ok_runs(&self) -> impl Iterator<Item = (&RunRecord, &RunSummary)> {
        self.runs
            .iter()
            .filter_map(|r| r.summary().map(|s| (r, s)))
            .filter(|(_, s)| s.status.is_ok())
    }

    /// Runs that failed or diverged.
    pub fn failed(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| match &r.state {
                RunState::Failed(_) => true,
                RunState::Done(s) => !s.status.is_ok(),
                _ => false,
            })
            .count()
    }

    /// Runs not (or not completely) on disk.
    pub fn missing(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| matches!(r.state, RunState::Missing | RunState::Incomplete))
            .count()
    }
}

/// Every run of `sweep` (all grid points, all seeds) as found under `runs_dir`.
pub fn collect(sweep: &Sweep, runs_dir: &Path) -> Result<Vec<Scenario>> {
    sweep
        .points
        .iter()
        .map(|point| {
            let runs = sweep
                .seeds
                .iter()
                .map(|&seed| {
                    let dir = runs_dir.join(point.run_dir_name(seed));
                    let state = run_state(&dir);
                    let steps = match &state {
                        RunState::Done(_) => read_metrics(&dir)?,
                        _ => Vec::new(),
                    };
                    Ok(RunRecord {
                        seed,
                        dir,
                        state,
                        steps,
                    })
                })
                .collect::<Result<_>>()?;
            Ok(Scenario {
                point: point.clone(),
                runs,
            })
        })
        .collect()
}

/// The scenarios grouped by the values of every axis but `axis`: each group's label (see
/// `GridPoint::label_without`) and its members' indices, in grid order.
pub fn group_without(scenarios: &[Scenario], axis: &str) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        let key = s.point.label_without(axis);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    groups
}
