//! The run folder while a run trains: `config.json` first, `metrics.jsonl` and the
//! TensorBoard event file as steps are logged, `summary.json` last.

use std::fs::{File, TryLockError};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use vgrad_record::layout::{
    CONFIG_FILE, EVENTS_PREFIX, LOCK_FILE, METRICS_FILE, SUMMARY_FILE, write_json_atomic,
};
use vgrad_record::{ConfigFile, RecordError, RunConfig, RunSummary, StepRecord};
use vgrad_tensorboard::EventWriter;

use crate::{TrainError, events};

/// A run folder that this process holds the lock of ([`LOCK_FILE`]): no other `vgrad`
/// writes it until this value is dropped or the process ends.
pub struct RunLock {
    dir: PathBuf,
    /// Holding the open file holds the lock.
    _file: File,
}

impl RunLock {
    /// Creates `dir` if needed and takes its lock, without waiting: if another process
    /// holds it, [`TrainError::Locked`].
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(dir).map_err(|cause| TrainError::RunFolder {
            path: dir.to_path_buf(),
            cause,
        })?;
        let path = dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                dir: dir.to_path_buf(),
                _file: file,
            }),
            Err(TryLockError::WouldBlock) => Err(TrainError::Locked {
                path: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(cause)) => Err(io_error(&path)(cause)),
        }
    }
}

/// An open run folder.
pub struct RunDir {
    metrics: BufWriter<File>,
    events: Option<EventWriter>,
    /// Held while the folder is open; it also knows the folder.
    lock: RunLock,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |cause| {
        TrainError::Record(RecordError::Io {
            path: path.to_path_buf(),
            cause,
        })
    }
}

impl RunDir {
    /// In the locked folder, writes `config.json`, starts an empty `metrics.jsonl` (and,
    /// with `tensorboard`, a TensorBoard event file), and removes what an earlier run left:
    /// a stale `summary.json`, so the folder never claims a run that did not finish, and
    /// old event files, which TensorBoard would show beside the new one.
    pub fn create(lock: RunLock, cfg: &RunConfig, tensorboard: bool) -> Result<Self, TrainError> {
        let dir = lock.dir.as_path();
        for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == SUMMARY_FILE || name.starts_with(EVENTS_PREFIX) {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        write_json_atomic(&dir.join(CONFIG_FILE), &ConfigFile::of(cfg))?;
        let path = dir.join(METRICS_FILE);
        let file = File::create(&path).map_err(io_error(&path))?;
        let events = tensorboard.then(|| EventWriter::create(dir)).transpose()?;
        Ok(Self {
            metrics: BufWriter::new(file),
            events,
            lock,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.lock.dir
    }

    /// Appends one logged step as a complete line (and a TensorBoard summary) and flushes
    /// both.
    pub fn append(&mut self, record: &StepRecord) -> Result<(), TrainError> {
        let path = self.lock.dir.join(METRICS_FILE);
        let mut line = serde_json::to_vec(record).map_err(|cause| RecordError::Json {
            path: path.clone(),
            line: None,
            cause,
        })?;
        line.push(b'\n');
        self.metrics
            .write_all(&line)
            .and_then(|()| self.metrics.flush())
            .map_err(io_error(&path))?;
        if let Some(writer) = &mut self.events {
            let (scalars, histograms) = events::step_summary(record);
            writer.summary(record.step as i64, &scalars, histograms)?;
            writer.flush()?;
        }
        Ok(())
    }

    /// Writes the final scalars to TensorBoard and `summary.json`, marking the run
    /// finished.
    pub fn finish(mut self, summary: &RunSummary) -> Result<(), TrainError> {
        if let Some(writer) = &mut self.events {
            let scalars = events::final_scalars(summary);
            writer.summary(summary.steps as i64, &scalars, Vec::new())?;
            writer.flush()?;
        }
        Ok(write_json_atomic(
            &self.lock.dir.join(SUMMARY_FILE),
            summary,
        )?)
    }
}
