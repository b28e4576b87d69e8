//! The fuzz targets' bodies (`fuzz/targets.rs`, the very code libFuzzer runs under
//! `cargo xtask fuzz`) on the stable toolchain: every committed input of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` (inputs that once found a
//! bug), then a few thousand seeded mutations of them (bit flips, truncations, splices,
//! length and dimension fields set to extremes), none of which may panic. A failing input
//! is written under the target's temporary folder, ready to be committed as a regression.

#![forbid(unsafe_code)]

#[path = "../fuzz/targets.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Mutated inputs per target.
const MUTATIONS: usize = 20_000;
/// A target stops mutating after this long, so that a slow (debug) build stays quick.
const TIME_PER_TARGET: Duration = Duration::from_secs(3);

/// The committed inputs of `target`: its seed corpus (which must not be empty) and its
/// regressions (which may not exist yet).
fn committed_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = Vec::new();
    for (folder, required) in [("corpus", true), ("regressions", false)] {
        let dir = fuzz.join(folder).join(target);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        assert!(
            !required || !paths.is_empty(),
            "{}: no seed inputs",
            dir.display()
        );
        for path in paths {
            let bytes = std::fs::read(&path).unwrap();
            inputs.push((path, bytes));
        }
    }
    inputs
}

/// Runs `input` through `body`; a panic is reported with the input, saved to a file.
fn check(target: &str, body: targets::Body, input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| body(input))).is_err() {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{target}-{:016x}", fnv1a(input)));
        std::fs::write(&file, input).unwrap();
        panic!(
            "fuzz target `{target}` panicked on {what}; the input is {} (copy it to \
             fuzz/regressions/{target}/ once fixed)",
            file.display()
        );
    }
}

/// A name for an input's bytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// xorshift64*: a seeded, dependency-free source of mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`), near enough.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values a length or dimension field is set to: the edges where parsers go wrong.
const EXTREMES: [u64; 9] = [
    0,
    1,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// Text a sweep file's mutations insert: its keys and the values that reach far.
const SWEEP_TOKENS: [&str; 16] = [
    "seeds = ",
    "99999999999",
    "\"0-18446744073709551615\"",
    "-1",
    "[base]\n",
    "[axes]\n",
    "[[scenarios]]\nname = \"x\"\n",
    "layers = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    "lr = [1e308, -0.0, nan, inf]\n",
    "steps = 18446744073709551615\n",
    "width = 0\n",
    "= [",
    "]]]]",
    "{ a = { b = { c = 1 } } }",
    "\"\\u0000\"",
    "\n",
];

/// One to four random edits of `input`; `others` are the target's other inputs, for
/// splicing.
fn mutate(rng: &mut Rng, input: &[u8], others: &[(PathBuf, Vec<u8>)], target: &str) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            // Flip a bit.
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            // Set a byte.
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            // Cut it short.
            2 => out.truncate(rng.below(out.len() + 1)),
            // Drop a range.
            3 if !out.is_empty() => {
                let a = rng.below(out.len());
                let b = (a + 1 + rng.below(64)).min(out.len());
                out.drain(a..b);
            }
            // Splice in a piece of another input.
            4 => {
                let other = &others[rng.below(others.len())].1;
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(256)).min(other.len());
                    let at = rng.below(out.len() + 1);
                    out.splice(at..at, other[a..b].iter().copied());
                }
            }
            // A 4- or 8-byte field, big- or little-endian, set to an extreme: IDX
            // dimensions are big-endian u32s from byte 4, a record's length a
            // little-endian u64 at its start.
            5 => {
                let value = EXTREMES[rng.below(EXTREMES.len())].wrapping_add(rng.below(3) as u64);
                let width = if rng.below(2) == 0 { 4 } else { 8 };
                let at = if rng.below(2) == 0 {
                    4 * rng.below(4)
                } else {
                    rng.below(out.len() + 1)
                };
                let bytes = match (width, rng.below(2)) {
                    (4, 0) => (value as u32).to_be_bytes().to_vec(),
                    (4, _) => (value as u32).to_le_bytes().to_vec(),
                    (_, 0) => value.to_be_bytes().to_vec(),
                    _ => value.to_le_bytes().to_vec(),
                };
                let end = (at + width).min(out.len());
                if at <= end {
                    out.splice(at..end, bytes);
                }
            }
            // Insert a sweep file's token.
            6 if target == "sweep_file" => {
                let token = SWEEP_TOKENS[rng.below(SWEEP_TOKENS.len())];
                // At a line start when there is one near, so that keys stay keys.
                let mut at = rng.below(out.len() + 1);
                if let Some(nl) = out[..at].iter().rposition(|&b| b == b'\n') {
                    at = nl + 1;
                }
                out.splice(at..at, token.bytes());
            }
            // Repeat a range, growing counts and nesting.
            _ if !out.is_empty() => {
                let a = rng.below(out.len());
                let b = (a + 1 + rng.below(32)).min(out.len());
                let piece = out[a..b].to_vec();
                for _ in 0..1 + rng.below(8) {
                    out.splice(b..b, piece.iter().copied());
                }
            }
            _ => {}
        }
    }
    out
}

/// The committed inputs of `target`, then seeded mutations of them, through its body.
fn run_target(target: &str) {
    let (_, body) = targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .copied()
        .unwrap();
    let inputs = committed_inputs(target);
    for (path, bytes) in &inputs {
        check(target, body, bytes, &path.display().to_string());
    }
    let mut rng = Rng(0x5eed_0000 ^ fnv1a(target.as_bytes()));
    let start = Instant::now();
    let mut done = 0;
    while done < MUTATIONS && start.elapsed() < TIME_PER_TARGET {
        let (path, bytes) = &inputs[rng.below(inputs.len())];
        let mut mutant = mutate(&mut rng, bytes, &inputs, target);
        if target == "tb_events" && rng.below(2) == 0 {
            // Past the checksums, into the protocol buffers.
            mutant = targets::with_checksums_fixed(&mutant);
        }
        check(
            target,
            body,
            &mutant,
            &format!("mutation {done} of {}", path.display()),
        );
        done += 1;
    }
    eprintln!(
        "{target}: {} committed inputs and {done} mutations in {:.1?}",
        inputs.len(),
        start.elapsed()
    );
    assert!(done >= MUTATIONS.min(200), "only {done} mutations ran");
}

#[test]
fn idx_files_never_panic() {
    run_target("idx");
}

#[test]
fn sweep_files_never_panic() {
    run_target("sweep_file");
}

#[test]
fn tensorboard_event_files_never_panic() {
    run_target("tb_events");
}

#[test]
fn fixing_the_checksums_of_a_real_event_file_changes_nothing() {
    for (path, bytes) in committed_inputs("tb_events") {
        assert_eq!(
            targets::with_checksums_fixed(&bytes),
            bytes,
            "{}",
            path.display()
        );
    }
}
