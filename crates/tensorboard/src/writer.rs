//! Writing an event file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::proto::{Event, HistogramProto, Summary, SummaryValue, Value, What};
use crate::record::frame;
use crate::{EventError, Result};

/// How the name of every event file starts (TensorBoard reads only such files).
pub const FILE_PREFIX: &str = "events.out.tfevents.";

/// The `file_version` of the first record, as TensorFlow 2 writes it.
pub const FILE_VERSION: &str = "brain.Event:2";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Room for the records written between two flushes, which the caller spaces out: a
/// logged step of the reference network is some 30 kB of records.
const BUFFER: usize = 256 << 10;

/// An open event file in a run folder; what is written reaches the file when it is
/// flushed, when the buffer fills, or when the writer is dropped.
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl EventWriter {
    /// Creates `events.out.tfevents.<secs>.<host>.<pid>` in `dir` and writes its first
    /// record.
    pub fn create(dir: &Path) -> Result<Self> {
        let wall_time = now();
        let host = gethostname::gethostname()
            .to_string_lossy()
            .replace(['/', '\\'], "_");
        let name = format!(
            "{FILE_PREFIX}{}.{host}.{}",
            wall_time as u64,
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(|cause| EventError::Io {
            path: path.clone(),
            cause,
        })?;
        let mut writer = Self {
            path,
            file: BufWriter::with_capacity(BUFFER, file),
        };
        writer.write(&Event {
            wall_time,
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.into())),
        })?;
        writer.flush()?;
        Ok(writer)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> EventError + '_ {
        |cause| EventError::Io {
            path: self.path.clone(),
            cause,
        }
    }

    /// Appends one event.
    pub fn write(&mut self, event: &Event) -> Result<()> {
        let record = frame(&event.encode_to_vec());
        self.file.write_all(&record).map_err(self.io())
    }

    /// Appends one summary event at `step` holding `scalars` and `histograms`.
    pub fn summary(
        &mut self,
        step: i64,
        scalars: &[(String, f32)],
        histograms: Vec<(String, HistogramProto)>,
    ) -> Result<()> {
        let value = scalars
            .iter()
            .map(|(tag, v)| SummaryValue {
                tag: tag.clone(),
                metadata: None,
                value: Some(Value::SimpleValue(*v)),
            })
            .chain(histograms.into_iter().map(|(tag, h)| SummaryValue {
                tag,
                metadata: None,
                value: Some(Value::Histo(h)),
            }))
            .collect();
        self.values(step, value)
    }

    /// Appends one summary event at `step` holding `values` (a plugin's summaries, say).
    pub fn values(&mut self, step: i64, value: Vec<SummaryValue>) -> Result<()> {
        self.write(&Event {
            wall_time: now(),
            step,
            what: Some(What::Summary(Summary { value })),
        })
    }

    /// Pushes what was written to the operating system, so a live TensorBoard sees it and
    /// a killed run leaves a readable file.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(self.io())
    }
}

/// Writes the event file `path` whole: its first record, then one summary event at step
/// 0 holding `values`. Written to a temporary file beside it and renamed, so that a
/// reader never sees half a file and several processes writing the same file (a sweep's
/// Slurm shards) leave one complete copy.
pub fn write_event_file(path: &Path, values: Vec<SummaryValue>) -> Result<()> {
    let wall_time = now();
    let mut bytes = frame(
        &Event {
            wall_time,
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.into())),
        }
        .encode_to_vec(),
    );
    bytes.extend(frame(
        &Event {
            wall_time,
            step: 0,
            what: Some(What::Summary(Summary { value: values })),
        }
        .encode_to_vec(),
    ));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Hidden and without `tfevents` in its name, so TensorBoard never reads it half written.
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.replace("tfevents", "tmp"),
        std::process::id()
    ));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| EventError::Io { path, cause }
    };
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_events;

    #[test]
    fn a_whole_file_reads_back_with_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.out.tfevents.x");
        let value = crate::plugins::session_end(crate::proto::status::SUCCESS, 1.0);
        write_event_file(&path, vec![value.clone()]).unwrap();
        // Written again: replaced, and no temporary file left.
        write_event_file(&path, vec![value.clone()]).unwrap();
        let events = read_events(&path).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].what, Some(What::FileVersion(FILE_VERSION.into())));
        assert_eq!(
            events[1].what,
            Some(What::Summary(Summary { value: vec![value] }))
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
