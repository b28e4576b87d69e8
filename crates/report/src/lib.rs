//! The report of a sweep, rebuilt from the run folders on disk: `reports/<sweep>.md`, which
//! opens with its answer, its appendix `reports/<sweep>/details.md` with the figures beside
//! it, and `reports/<sweep>.json` with the results table's numbers.
//!
//! Every sentence is generated from typed classes (`vgrad_record::class`: how a run ended,
//! what the error does) and the measures in [`measures`], one module per measure.

#![forbid(unsafe_code)]

pub mod collect;
pub mod configuration;
pub mod document;
pub mod figures;
pub mod format;
pub mod json;
pub mod measures;
pub mod plot;
pub mod report;
pub mod setting;
pub mod stats;
#[cfg(test)]
mod synthetic;

use std::path::{Path, PathBuf};

pub use collect::{RunRecord, Scenario, collect};
pub use measures::{Analysis, ScenarioStats};

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

/// Writes `reports_dir/<experiment>.md`, its appendix and figures in
/// `reports_dir/<experiment>/` and `reports_dir/<experiment>.json` from `scenarios`;
/// `runs_dir` is where its runs are, as the report shows it. Returns the path of the
/// markdown file.
pub fn write(
    sweep: &vgrad_sweep::Sweep,
    scenarios: &[Scenario],
    reports_dir: &Path,
    runs_dir: &Path,
) -> Result<PathBuf> {
    let name = sweep.name();
    let figure_dir = reports_dir.join(name);
    std::fs::create_dir_all(&figure_dir).map_err(io(&figure_dir))?;
    let analysis = Analysis::new(sweep, scenarios);
    let figures = figures::draw_all(&analysis, &figure_dir)?;
    remove_stale_figures(&figure_dir, &figures)?;
    let json = serde_json::to_string_pretty(&json::companion(&analysis))
        .expect("numbers and strings serialise");
    write_file(&reports_dir.join(format!("{name}.json")), &(json + "\n"))?;
    write_file(
        &figure_dir.join("details.md"),
        &report::details(&analysis, &figures),
    )?;
    let path = reports_dir.join(format!("{name}.md"));
    write_file(&path, &report::main(&analysis, &figures, runs_dir))?;
    Ok(path)
}

/// Removes the SVG files of `dir` that `figures` does not hold: figures an earlier report
/// drew and this one does not (the folder is the report's own).
fn remove_stale_figures(dir: &Path, figures: &figures::Figures) -> Result<()> {
    let drawn: Vec<&str> = figures
        .main
        .iter()
        .chain(&figures.details)
        .map(|f| f.file.as_str())
        .collect();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".svg") && !drawn.contains(&name) {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// The error of an I/O operation on `path`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + use<> {
    let path = path.to_path_buf();
    move |cause| ReportError::Io { path, cause }
}

/// Writes `text` to `path` whole: into a hidden file beside it, then renamed over it.
fn write_file(path: &Path, text: &str) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}
