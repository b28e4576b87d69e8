//! The bodies of the fuzz targets: each feeds one input to a parser of outside bytes
//! exactly as reading a file would, and panics only where a parser broke its contract
//! (a panic inside it, or a result that contradicts itself). libFuzzer's targets in
//! `fuzz_targets/` call these; so does `tests/fuzz_corpus.rs`, which runs the corpus and
//! mutations of it under plain `cargo test`.

use std::path::Path;

use vgrad_sweep::{Overrides, Sweep, SweepDefinition};
use vgrad_tensorboard::reader::parse_events;
use vgrad_tensorboard::record::{frame, masked_crc32c};
use vgrad_train::data::idx;

/// A target's body: one input, and a panic when a parser breaks its contract.
pub type Body = fn(&[u8]);

/// The targets by name (the names of `fuzz_targets/*.rs` and of the corpus folders).
pub const TARGETS: [(&str, Body); 3] = [
    ("idx", idx),
    ("sweep_file", sweep_file),
    ("tb_events", tb_events),
];

/// An IDX file, plain or gzipped, as `idx::read` takes it once in memory.
pub fn idx(data: &[u8]) {
    if let Ok(array) = idx::decode(data.to_vec(), Path::new("data/fuzz-idx3-ubyte")) {
        // A zero dimension makes the others free (and their product may overflow).
        let declared = if array.dims.contains(&0) {
            Some(0)
        } else {
            array
                .dims
                .iter()
                .try_fold(1u128, |product, &d| product.checked_mul(d as u128))
        };
        assert_eq!(Some(array.data.len() as u128), declared, "{:?}", array.dims);
    }
}

/// Grid points (the product of the axes' lengths, times the scenarios) past which the
/// target skips a sweep: `Sweep::new` compares every grid point with those before it, so
/// a grid at the cap on runs (`vgrad_sweep::MAX_RUNS`) takes far longer than libFuzzer's
/// timeout without anything being wrong with the input's parsing.
pub const MAX_FUZZED_GRID: usize = 4096;

/// A sweep file's text, read and expanded as `Sweep::load` does.
pub fn sweep_file(data: &[u8]) {
    // `SweepDefinition::load` reads the file as UTF-8; other bytes stop there.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(definition) = SweepDefinition::parse(text, Path::new("experiments/fuzz.toml")) else {
        return;
    };
    let points = definition
        .axes
        .iter()
        .map(|(_, values)| values.len())
        .chain([definition.scenarios.len().max(1)])
        .try_fold(1usize, usize::checked_mul);
    if points.is_none_or(|p| p > MAX_FUZZED_GRID) {
        return;
    }
    if let Ok(sweep) = Sweep::new(definition, &Overrides::default()) {
        assert!(!sweep.points.is_empty() && !sweep.seeds.is_empty());
    }
}

/// A TensorBoard event file, as `read_events` takes it once in memory; then the same
/// bytes with their checksums made right, and the bytes framed as one record, since a
/// random change almost never keeps a CRC right and would stop at the framing.
pub fn tb_events(data: &[u8]) {
    let path = Path::new("runs/fuzz/events.out.tfevents.0.fuzz.1");
    let _ = parse_events(data, path);
    let _ = parse_events(&with_checksums_fixed(data), path);
    let _ = parse_events(&frame(data), path);
}

/// `data` read as TFRecord framing with both checksums of every record rewritten to
/// match, up to the first record that does not fit.
pub fn with_checksums_fixed(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut at = 0usize;
    while let Some(len_bytes) = out.get(at..at + 8) {
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap_or_default());
        let crc = masked_crc32c(len_bytes).to_le_bytes();
        let Some(slot) = out.get_mut(at + 8..at + 12) else {
            break;
        };
        slot.copy_from_slice(&crc);
        let start = at + 12;
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&end| end <= out.len())
        else {
            break;
        };
        let crc = masked_crc32c(&out[start..end]).to_le_bytes();
        let Some(slot) = out.get_mut(end..end + 4) else {
            break;
        };
        slot.copy_from_slice(&crc);
        at = end + 4;
    }
    out
}
