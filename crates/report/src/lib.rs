//! The report of a sweep, rebuilt from the run folders on disk: `reports/<experiment>.md`
//! with its figures as SVG in `reports/<experiment>/`.

pub mod collect;
pub mod compare;
pub mod diagnostics;
pub mod figures;
pub mod findings;
pub mod format;
pub mod markdown;
pub mod seeds;
pub mod stats;
#[cfg(test)]
mod synthetic;

use std::path::{Path, PathBuf};

pub use collect::{RunRecord, Scenario, collect};
pub use stats::ScenarioStats;

/// What can go wrong while building a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A run's file could not be read.
    #[error(transparent)]
    Record(#[from] vgrad_record::RecordError),
    /// No run of the sweep has a result yet: a report would replace one (a committed one,
    /// say) with empty tables.
    #[error(
        "no run of `{name}` has a result under {}: run `{command}` first; no report was written",
        runs_dir.display()
    )]
    NoResults {
        /// The experiment.
        name: String,
        /// Where its runs were looked for.
        runs_dir: PathBuf,
        /// The command that trains them.
        command: String,
    },
    /// A figure could not be drawn.
    #[error("figure {path}: {message}")]
    Figure {
        /// The SVG file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Result type of the report crate.
pub type Result<T> = std::result::Result<T, ReportError>;

/// Writes `<out>/reports/<experiment>.md` and its figures from the runs in
/// `<out>/runs/<experiment>/`; returns the path of the markdown file.
///
/// A sweep none of whose runs has a result (finished, diverged or failed) gets no report:
/// the call fails and leaves any report already there as it is.
pub fn write_report(sweep: &vgrad_sweep::Sweep, out: &Path) -> Result<PathBuf> {
    write_collected(sweep, &collect(sweep, &sweep.runs_dir(out))?, out)
}

/// [`write_report`] from `scenarios` already collected from `<out>/runs/<experiment>/`.
pub fn write_collected(
    sweep: &vgrad_sweep::Sweep,
    scenarios: &[Scenario],
    out: &Path,
) -> Result<PathBuf> {
    let runs_dir = sweep.runs_dir(out);
    let no_results = scenarios.iter().flat_map(|s| &s.runs).all(|r| {
        matches!(
            r.state,
            vgrad_record::RunState::Missing | vgrad_record::RunState::Incomplete
        )
    });
    if no_results {
        return Err(ReportError::NoResults {
            name: sweep.name().to_string(),
            runs_dir,
            command: sweep.command(),
        });
    }
    let shown_runs_dir = runs_dir.strip_prefix(out).unwrap_or(&runs_dir);
    write(sweep, scenarios, &out.join("reports"), shown_runs_dir)
}

/// Writes `reports_dir/<experiment>.md` and its figures from `scenarios`; `runs_dir` is
/// where its runs are, as the report shows it. Returns the path of the markdown file.
pub fn write(
    sweep: &vgrad_sweep::Sweep,
    scenarios: &[Scenario],
    reports_dir: &Path,
    runs_dir: &Path,
) -> Result<PathBuf> {
    let name = sweep.name();
    let figure_dir = reports_dir.join(name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| ReportError::Io { path, cause }
    };
    std::fs::create_dir_all(&figure_dir).map_err(io(&figure_dir))?;
    let stats: Vec<ScenarioStats> = scenarios.iter().map(ScenarioStats::of).collect();
    let figures = figures::draw_all(sweep, scenarios, &stats, &figure_dir)?;
    let text = markdown::render(&markdown::Inputs {
        sweep,
        scenarios,
        stats: &stats,
        figures: &figures,
        runs_dir,
    });
    let path = reports_dir.join(format!("{name}.md"));
    let tmp = reports_dir.join(format!(".{name}.md.tmp"));
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}
