//! Reading an event file back, checking every checksum.
//!
//! The bytes come from outside, so nothing is sized from a record's length field: a
//! record is a slice of the bytes already read, and decoding it allocates in proportion
//! to its length. `fuzz/` fuzzes [`parse_events`].

use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::{Event, Value, What};
use crate::record::masked_crc32c;
use crate::writer::FILE_PREFIX;
use crate::{EventError, Result};

/// The events of the file at `path`. A record cut short at the end of the file (a writer
/// killed mid-record) ends the list; a wrong checksum is an error.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).map_err(|cause| EventError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    parse_events(&bytes, path)
}

/// The event files in the folder `dir` (names starting with [`FILE_PREFIX`]), sorted by
/// name.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |cause| EventError::Io {
        path: dir.to_path_buf(),
        cause,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name().to_string_lossy().starts_with(FILE_PREFIX) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Per summary event of `events`, its step and the tags of its histograms, in order.
pub fn histogram_tags(events: &[Event]) -> Vec<(i64, Vec<String>)> {
    events
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(s)) => Some((
                e.step,
                s.value
                    .iter()
                    .filter(|v| matches!(v.value, Some(Value::Histo(_))))
                    .map(|v| v.tag.clone())
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

/// The events of an event file's bytes, as [`read_events`] reads them; `path` only names
/// the file in errors.
pub fn parse_events(bytes: &[u8], path: &Path) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let corrupt = |message: String| EventError::Corrupt {
            path: path.to_path_buf(),
            index: events.len(),
            offset: at as u64,
            message,
        };
        let Some(header) = bytes.get(at..at + 12) else {
            break;
        };
        let (len_bytes, len_crc) = header.split_at(8);
        let len_crc = u32::from_le_bytes([len_crc[0], len_crc[1], len_crc[2], len_crc[3]]);
        if masked_crc32c(len_bytes) != len_crc {
            return Err(corrupt("the length's checksum is wrong".into()));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8]));
        let start = at + 12;
        let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
            return Err(corrupt(format!("impossible length {len}")));
        };
        let Some(payload) = bytes.get(start..end) else {
            break;
        };
        let Some(crc) = bytes.get(end..end + 4) else {
            break;
        };
        if masked_crc32c(payload) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(corrupt("the payload's checksum is wrong".into()));
        }
        let event = Event::decode(payload).map_err(|e| corrupt(format!("not an Event: {e}")))?;
        events.push(event);
        at = end + 4;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{HistogramProto, Value, What};
    use crate::writer::{EventWriter, FILE_VERSION};

    #[test]
    fn round_trips_scalars_and_histograms() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        let histo = HistogramProto {
            min: -1.0,
            max: 2.0,
            num: 3.0,
            sum: 1.5,
            sum_squares: 5.25,
            bucket_limit: vec![-0.5, 1.0, f64::MAX],
            bucket: vec![1.0, 1.0, 1.0],
        };
        w.summary(
            200,
            &[("loss".into(), 0.25), ("grad_mean_abs/layer1".into(), 1e-4)],
            vec![("grad_hist/layer1".into(), histo.clone())],
        )
        .unwrap();
        w.flush().unwrap();
        let name = w.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("events.out.tfevents.")
                && name.ends_with(&std::process::id().to_string())
        );

        let events = read_events(w.path()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].what, Some(What::FileVersion(FILE_VERSION.into())));
        assert_eq!(events[1].step, 200);
        let Some(What::Summary(s)) = &events[1].what else {
            panic!("no summary")
        };
        assert_eq!(s.value.len(), 3);
        assert_eq!(s.value[0].tag, "loss");
        assert_eq!(s.value[0].value, Some(Value::SimpleValue(0.25)));
        assert_eq!(s.value[1].value, Some(Value::SimpleValue(1e-4)));
        assert_eq!(s.value[2].value, Some(Value::Histo(histo)));
        // The folder's event files (another file beside it is not one), and the summary's
        // histogram tags at its step.
        std::fs::write(dir.path().join("metrics.jsonl"), "").unwrap();
        assert_eq!(
            event_files(dir.path()).unwrap(),
            vec![w.path().to_path_buf()]
        );
        assert_eq!(
            histogram_tags(&events),
            vec![(200, vec!["grad_hist/layer1".to_string()])]
        );
    }

    #[test]
    fn a_cut_off_record_ends_the_file_and_a_bad_checksum_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.summary(1, &[("loss".into(), 1.0)], vec![]).unwrap();
        w.flush().unwrap();
        let path = w.path().to_path_buf();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(read_events(&path).unwrap().len(), 1);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 6;
        flipped[last] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        let err = read_events(&path).unwrap_err().to_string();
        assert!(
            err.contains("record 1") && err.contains("checksum"),
            "{err}"
        );
    }
}
