//! The run folder while a run trains: `config.json` first, `metrics.jsonl` and the
//! TensorBoard event file as steps are logged, `summary.json` last.

use std::fs::{File, TryLockError};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vgrad_record::layout::{
    CONFIG_FILE, EVENTS_PREFIX, LOCK_FILE, METRICS_FILE, SUMMARY_FILE, write_json_atomic,
};
use vgrad_record::{ConfigFile, RecordError, RunClass, RunConfig, RunSummary, StepRecord};
use vgrad_tensorboard::proto::status;
use vgrad_tensorboard::{EventWriter, plugins};

use crate::{TrainError, events};

/// A run folder that this process holds the lock of ([`LOCK_FILE`]): no other `vgrad`
/// writes it until this value is dropped or the process ends.
pub struct RunLock {
    dir: PathBuf,
    /// Holding the open file holds the lock.
    _file: File,
    /// The folders [`RunLock::acquire`] created, `dir` first, then its parents.
    new_dirs: Vec<PathBuf>,
    /// Whether [`RunLock::acquire`] created the lock file.
    new_lock_file: bool,
}

impl RunLock {
    /// Creates `dir` if needed and takes its lock, without waiting: if another process
    /// holds it, [`TrainError::Locked`].
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        let new_dirs: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(dir).map_err(|cause| TrainError::RunFolder {
            path: dir.to_path_buf(),
            cause,
        })?;
        let path = dir.join(LOCK_FILE);
        let new_lock_file = !path.exists();
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
                new_dirs,
                new_lock_file,
            }),
            Err(TryLockError::WouldBlock) => Err(TrainError::Locked {
                path: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(cause)) => Err(io_error(&path)(cause)),
        }
    }

    /// Gives the lock up for a run that stopped before writing anything (its data did
    /// not load), leaving the place as it was found: the lock file and the folders that
    /// [`RunLock::acquire`] created are removed, and nothing else, so an existing run's
    /// files stay for a rerun to resume. Removal is best effort (a folder that something
    /// else has since written to stays): the error that stopped the run is the one to
    /// report.
    pub fn abandon(self) {
        if self.new_lock_file {
            // While the lock is held, so that no other process takes the file's lock.
            let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
        }
        drop(self._file);
        for dir in &self.new_dirs {
            // Only an empty folder is removed.
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// [`RunLock::abandon`] for each of `locks`, last acquired first, so that a folder an
/// earlier lock created (the `--out` of several seeds' folders) is empty when its turn
/// comes.
pub fn abandon_all(locks: Vec<RunLock>) {
    locks.into_iter().rev().for_each(RunLock::abandon);
}

/// How long logged steps may wait in memory before they are written to the files: a
/// live TensorBoard rereads them every 5 s. Each write of a line on its own cost about as
/// much as the rest of writing it (some 50 us once every 200 steps, with cold caches),
/// and a few hundred kilobytes at once cost little more than one line.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Room for the lines written between two flushes (a line of the reference network is
/// about 23 kB).
const METRICS_BUFFER: usize = 256 << 10;

/// An open run folder.
pub struct RunDir {
    metrics: BufWriter<File>,
    /// The line being serialised, kept between steps.
    line: Vec<u8>,
    /// When the files were last flushed.
    flushed: Instant,
    events: Option<EventWriter>,
    /// Whether the custom-scalars layout is written yet (with the first logged step,
    /// whose scalars say which per-layer measures the run logs).
    layout_written: bool,
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

/// Seconds since the Unix epoch (0 on a clock set before it), for the session's times.
fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl RunDir {
    /// In the locked folder, writes `config.json`, starts an empty `metrics.jsonl` (and,
    /// with `tensorboard`, a TensorBoard event file that opens with the run's settings as
    /// the HParams dashboard's session start), and removes what an earlier run left:
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
        let mut events = tensorboard.then(|| EventWriter::create(dir)).transpose()?;
        if let Some(writer) = &mut events {
            let start = plugins::session_start(events::session_hparams(cfg), unix_time());
            writer.values(0, vec![start])?;
        }
        Ok(Self {
            metrics: BufWriter::with_capacity(METRICS_BUFFER, file),
            line: Vec::new(),
            flushed: Instant::now(),
            events,
            layout_written: false,
            lock,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.lock.dir
    }

    /// Appends one logged step as a complete line (and a TensorBoard summary); both files
    /// are flushed when [`FLUSH_INTERVAL`] has passed since they last were, and at the end.
    pub fn append(&mut self, record: &StepRecord) -> Result<(), TrainError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(|cause| RecordError::Json {
            path: self.metrics_path(),
            line: None,
            cause,
        })?;
        self.line.push(b'\n');
        self.metrics
            .write_all(&self.line)
            .map_err(|cause| io_error(&self.metrics_path())(cause))?;
        if let Some(writer) = &mut self.events {
            let (scalars, histograms) = events::step_summary(record);
            if !self.layout_written {
                let layout = plugins::layout(&events::layout(&scalars));
                writer.values(record.step as i64, vec![layout])?;
                self.layout_written = true;
            }
            writer.summary(record.step as i64, &scalars, histograms)?;
        }
        if self.flushed.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    /// `metrics.jsonl`'s path, for errors (built only when one happens).
    fn metrics_path(&self) -> PathBuf {
        self.lock.dir.join(METRICS_FILE)
    }

    /// Pushes both files' buffered lines to the operating system.
    fn flush(&mut self) -> Result<(), TrainError> {
        self.metrics
            .flush()
            .map_err(|cause| io_error(&self.metrics_path())(cause))?;
        if let Some(writer) = &mut self.events {
            writer.flush()?;
        }
        self.flushed = Instant::now();
        Ok(())
    }

    /// Writes the final scalars and the session's end to TensorBoard (a diverged run's
    /// session failed; the others succeeded, their `outcome` says how) and
    /// `summary.json`, marking the run finished.
    pub fn finish(mut self, summary: &RunSummary) -> Result<(), TrainError> {
        if let Some(writer) = &mut self.events {
            let step = summary.steps as i64;
            writer.summary(step, &events::final_scalars(summary), Vec::new())?;
            let ended = match summary.class() {
                RunClass::Diverged => status::FAILURE,
                RunClass::Trained | RunClass::Collapsed => status::SUCCESS,
            };
            writer.values(step, vec![plugins::session_end(ended, unix_time())])?;
        }
        self.flush()?;
        Ok(write_json_atomic(
            &self.lock.dir.join(SUMMARY_FILE),
            summary,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use vgrad_record::layout::read_metrics;

    use super::*;

    fn record(step: usize) -> StepRecord {
        StepRecord {
            step,
            loss: 2.0 / (step + 1) as f64,
            train_acc: 0.5,
            val_acc: None,
            jacobian: None,
            chain: None,
            layers: Vec::new(),
            time: None,
        }
    }

    fn open(dir: &Path) -> RunDir {
        let lock = RunLock::acquire(dir).unwrap();
        RunDir::create(lock, &RunConfig::default(), true).unwrap()
    }

    /// The paths under `dir` with each file's contents.
    fn listing(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                all.push((path.clone(), Vec::new()));
                all.extend(listing(&path));
            } else {
                all.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
        all.sort();
        all
    }

    #[test]
    fn an_abandoned_lock_leaves_the_place_as_it_found_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("other"), "kept").unwrap();
        // New folders, three deep: all removed, the existing one kept.
        let lock = RunLock::acquire(&tmp.path().join("runs/sweep/seed-0")).unwrap();
        lock.abandon();
        assert_eq!(
            listing(tmp.path()),
            [(tmp.path().join("other"), b"kept".to_vec())]
        );
        // Several seeds' folders in a new --out: all removed, with it.
        let locks = ["seed-0", "seed-1"]
            .map(|seed| RunLock::acquire(&tmp.path().join("sweep").join(seed)).unwrap());
        abandon_all(locks.into());
        assert_eq!(
            listing(tmp.path()),
            [(tmp.path().join("other"), b"kept".to_vec())]
        );
        // An interrupted run's folder: its files untouched, no lock file added.
        let run = tmp.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join(CONFIG_FILE), "{}").unwrap();
        std::fs::write(run.join(METRICS_FILE), "{\"step\":0}\n").unwrap();
        let before = listing(tmp.path());
        RunLock::acquire(&run).unwrap().abandon();
        assert_eq!(listing(tmp.path()), before);
        // A lock file that was there stays; and the folder is free to lock again.
        std::fs::write(run.join(LOCK_FILE), "").unwrap();
        let before = listing(tmp.path());
        RunLock::acquire(&run).unwrap().abandon();
        assert_eq!(listing(tmp.path()), before);
        drop(RunLock::acquire(&run).unwrap());
    }

    #[test]
    fn the_event_file_opens_a_session_with_the_settings_and_closes_it_with_the_results() {
        use vgrad_record::layout::HPARAMS_METRICS;
        use vgrad_record::{LayerRecord, Outcome, RunStatus};
        use vgrad_tensorboard::proto::{HParamsData, Value, What};
        use vgrad_tensorboard::read_events;

        let tmp = tempfile::tempdir().unwrap();
        let mut run = open(tmp.path());
        let steps: Vec<StepRecord> = [0, 200]
            .map(|step| StepRecord {
                layers: (1..=2).map(LayerRecord::empty).collect(),
                ..record(step)
            })
            .into();
        for r in &steps {
            run.append(r).unwrap();
        }
        let summary = RunSummary::new(&Outcome {
            seed: 0,
            status: RunStatus::Ok,
            records: &steps,
            test_acc: 0.9,
            val_acc: 0.9,
            steps: 400,
            wall_s: 1.0,
            train_s: 1.0,
            step_us: f64::NAN,
            logged_step_us: f64::NAN,
            ensemble_size: 1,
        });
        run.finish(&summary).unwrap();
        let file = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains("tfevents"))
            .unwrap();
        // (step, tag) of every value, and the hparams plugin's data by tag.
        let mut tags = Vec::new();
        let mut hparams = Vec::new();
        for event in read_events(&file).unwrap() {
            let Some(What::Summary(s)) = event.what else {
                continue;
            };
            for v in s.value {
                tags.push((event.step, v.tag.clone()));
                if let Some(data) = plugins::hparams_data(&v) {
                    assert!(matches!(v.value, Some(Value::Tensor(_))));
                    hparams.push((v.tag, data));
                }
            }
        }
        assert_eq!(tags[0], (0, "_hparams_/session_start_info".to_string()));
        assert_eq!(tags[1], (0, "custom_scalars__config__".to_string()));
        assert_eq!(
            tags.last().unwrap(),
            &(400, "_hparams_/session_end_info".to_string())
        );
        let HParamsData::SessionStartInfo(start) = &hparams[0].1 else {
            panic!("{hparams:?}");
        };
        assert_eq!(
            start.hparams,
            events::session_hparams(&RunConfig::default())
        );
        let HParamsData::SessionEndInfo(end) = &hparams[1].1 else {
            panic!("{hparams:?}");
        };
        assert_eq!(end.status, status::SUCCESS);
        // Every metric the HParams dashboard reads is a final scalar, logged once.
        for (tag, _, _) in HPARAMS_METRICS {
            let at: Vec<i64> = tags
                .iter()
                .filter(|(_, t)| t == tag)
                .map(|(s, _)| *s)
                .collect();
            assert_eq!(at, [400], "{tag}");
        }
        // The layout is written once, with the first step.
        assert_eq!(
            tags.iter()
                .filter(|(_, t)| t.starts_with("custom_scalars"))
                .count(),
            1
        );
    }

    #[test]
    fn lines_wait_for_the_flush_interval_and_reach_the_file_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let mut run = open(tmp.path());
        run.append(&record(0)).unwrap();
        // Within the interval the line waits in memory.
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(METRICS_FILE)).unwrap(),
            ""
        );
        // Once the interval has passed, the next append writes both lines.
        run.flushed -= FLUSH_INTERVAL;
        run.append(&record(200)).unwrap();
        let steps = |dir: &Path| -> Vec<usize> {
            read_metrics(dir).unwrap().iter().map(|r| r.step).collect()
        };
        assert_eq!(steps(tmp.path()), [0, 200]);
        run.append(&record(400)).unwrap();
        assert_eq!(steps(tmp.path()), [0, 200]);
        // A run that stops with an error drops its folder: what was logged is written.
        drop(run);
        assert_eq!(steps(tmp.path()), [0, 200, 400]);
    }
}
