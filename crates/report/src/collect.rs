//! Finding a sweep's runs on disk and reading them.

use std::path::{Path, PathBuf};

use vgrad_record::layout::read_metrics;
use vgrad_record::{RunClass, RunState, RunSummary, StepRecord, run_state};
use vgrad_sweep::{GridPoint, Sweep};

use crate::Result;

/// One run of a grid point.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Its seed.
    pub seed: u64,
    /// Its folder.
    pub dir: PathBuf,
    /// Its folder relative to the sweep's runs folder: `<grid point>/seed-<n>_<hash>`, or
    /// `<grid point>_seed-<n>_<hash>` for a run of the older flat layout.
    pub name: PathBuf,
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
    /// Runs that finished, with their summaries: trained, collapsed or diverged.
    pub fn finished(&self) -> impl Iterator<Item = (&RunRecord, &RunSummary)> {
        self.runs.iter().filter_map(|r| r.summary().map(|s| (r, s)))
    }

    /// Finished runs of `class`.
    pub fn of_class(&self, class: RunClass) -> impl Iterator<Item = (&RunRecord, &RunSummary)> {
        self.finished().filter(move |(_, s)| s.class() == class)
    }

    /// Runs that trained: what measures over training and accuracies read. A regression
    /// run (the adding problem) has no accuracy to collapse to a guess's: it counts as
    /// trained when it did not diverge, solved or not ([`vgrad_record::RegressionClass`]).
    pub fn trained(&self) -> impl Iterator<Item = (&RunRecord, &RunSummary)> {
        self.finished().filter(|(_, s)| match s.regression_outcome {
            Some(class) => class != vgrad_record::RegressionClass::Diverged,
            None => s.class() == RunClass::Trained,
        })
    }

    /// Finished runs per class, in the order of [`RunClass::ALL`].
    pub fn class_counts(&self) -> [usize; 3] {
        RunClass::ALL.map(|c| self.of_class(c).count())
    }

    /// Runs whose process failed before a summary (an error, not a diverged loss).
    pub fn failed(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| matches!(r.state, RunState::Failed(_)))
            .count()
    }

    /// Runs not (or not completely) on disk.
    pub fn missing(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| matches!(r.state, RunState::Missing | RunState::Incomplete))
            .count()
    }

    /// The logged steps of every finished run: what measures of the initial network
    /// read (a network that never trains is the vanishing case itself).
    pub fn all_steps(&self) -> Vec<&[StepRecord]> {
        self.finished().map(|(r, _)| r.steps.as_slice()).collect()
    }

    /// The logged steps of every trained run.
    pub fn trained_steps(&self) -> Vec<&[StepRecord]> {
        self.trained().map(|(r, _)| r.steps.as_slice()).collect()
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
                    // The runs trained before the layout gained a folder per grid
                    // point keep their flat folders, and are read from there.
                    let dir = point.find_run_dir(runs_dir, seed);
                    let name = dir.strip_prefix(runs_dir).unwrap_or(&dir).to_path_buf();
                    let state = run_state(&dir);
                    // Only the steps of the --log-every grid: the extra early steps of
                    // --log-first would weigh the start of training over the rest.
                    let steps = match &state {
                        RunState::Done(_) => read_metrics(&dir)?
                            .into_iter()
                            .filter(|r| point.config.on_log_grid(r.step))
                            .collect(),
                        _ => Vec::new(),
                    };
                    Ok(RunRecord {
                        seed,
                        dir,
                        name,
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
