//! Where the records go: a TensorBoard event file and `metrics.jsonl` in the run folder.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vgrad_tensorboard::EventWriter;

use crate::{Result, StepRecord, WatchError};

/// The name of the file of one JSON object per logged step.
pub const METRICS: &str = "metrics.jsonl";

/// The least time between two flushes: a live TensorBoard or `tail -f` sees a step within
/// about a second, and a run logging every step does not pay a system call per step.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The open files of a run folder.
pub(crate) struct Sink {
    events: EventWriter,
    metrics: BufWriter<File>,
    metrics_path: PathBuf,
    last_flush: Option<Instant>,
}

impl Sink {
    /// Creates `dir` if needed and opens its files; refuses a folder that already holds a
    /// run's `metrics.jsonl` or event file, whose steps would mix with this run's.
    pub(crate) fn create(dir: &Path) -> Result<Self> {
        let io = |cause| WatchError::Io {
            path: dir.to_path_buf(),
            cause,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let name = entry
                .map_err(io)?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name == METRICS || name.starts_with(vgrad_tensorboard::writer::FILE_PREFIX) {
                return Err(WatchError::Occupied {
                    dir: dir.to_path_buf(),
                    file: name,
                });
            }
        }
        let metrics_path = dir.join(METRICS);
        let metrics = File::create(&metrics_path).map_err(|cause| WatchError::Io {
            path: metrics_path.clone(),
            cause,
        })?;
        Ok(Self {
            events: EventWriter::create(dir)?,
            metrics: BufWriter::new(metrics),
            metrics_path,
            last_flush: None,
        })
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> WatchError + '_ {
        |cause| WatchError::Io {
            path: self.metrics_path.clone(),
            cause,
        }
    }

    /// Appends `record` to both files; flushes them when the last flush is a second old
    /// (or there was none, so that step 0 shows at once).
    pub(crate) fn write(&mut self, record: &StepRecord) -> Result<()> {
        let step = i64::try_from(record.step).unwrap_or(i64::MAX);
        self.events
            .summary(step, &record.scalars(), record.histograms())?;
        let line = serde_json::to_vec(record).map_err(|e| WatchError::Io {
            path: self.metrics_path.clone(),
            cause: e.into(),
        })?;
        self.metrics.write_all(&line).map_err(self.io())?;
        self.metrics.write_all(b"\n").map_err(self.io())?;
        if self.last_flush.is_none_or(|t| t.elapsed() >= FLUSH_EVERY) {
            self.flush()?;
        }
        Ok(())
    }

    /// Pushes both files to the operating system.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.last_flush = Some(Instant::now());
        self.events.flush()?;
        self.metrics.flush().map_err(self.io())
    }
}
