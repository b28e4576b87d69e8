//! What a run folder on disk says about its run.

use std::path::Path;

use vgrad_cli::output::{RunSummary, SUMMARY_FILE};

/// The file the sweep writes into a run folder whose process failed.
pub const ERROR_FILE: &str = "error.txt";

/// Where a run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Finished: its `summary.json`.
    Done(Box<RunSummary>),
    /// Its process failed: what it printed last.
    Failed(String),
    /// Started but not finished (interrupted, or running now).
    Incomplete,
    /// Never started.
    Missing,
}

/// Reads the state of the run folder `dir`.
pub fn run_state(dir: &Path) -> RunState {
    let summary = dir.join(SUMMARY_FILE);
    if let Ok(text) = std::fs::read_to_string(&summary) {
        return match serde_json::from_str::<RunSummary>(&text) {
            Ok(s) => RunState::Done(Box::new(s)),
            Err(e) => RunState::Failed(format!("{}: unreadable: {e}", summary.display())),
        };
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(ERROR_FILE)) {
        return RunState::Failed(text);
    }
    if dir.is_dir() {
        RunState::Incomplete
    } else {
        RunState::Missing
    }
}
