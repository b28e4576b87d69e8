//! `--data hf` offline: a Hugging Face cache seeded with small parquet files in the layout
//! `candle_datasets::vision::mnist::load()` reads, and an empty cache with no network.
//! hf-hub finds its cache and the hub through environment variables, which a process must
//! not change once it runs threads (a test harness does); so the test starts itself again
//! as a child process, with the variables set in the child's environment from its start.
//! Needs the `hub` feature: `cargo test --release -p vgrad-tests --features hub --test hub`.

#![forbid(unsafe_code)]

use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, Fields};
use parquet::arrow::ArrowWriter;
use vgrad_record::{DataSource, RunStatus};
use vgrad_tests::vgrad_train;
use vgrad_train::data::{ImageSet, load};

/// Set in the child's environment: what the child checks (`seeded` or `empty`); the
/// child's other variables point hf-hub at the cache.
const CHILD_VAR: &str = "VGRAD_HUB_TEST_CHILD";
/// The size of the seeded cache's sets: enough training images for the 5,000 held out
/// for validation and a few hundred to train on.
const TRAIN_N: usize = 5_300;
const TEST_N: usize = 200;
/// This test's name, which the child is asked to run alone.
const TEST_NAME: &str = "the_hub_loader_reads_a_seeded_cache_and_fails_fast_without_one";

/// The parquet columns of the hub's MNIST: `image` {`bytes`: PNG, `path`} and `label`.
fn write_parquet(path: &Path, set: &ImageSet, count: usize) {
    let pngs: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let pixels = set.images[i * 784..(i + 1) * 784].to_vec();
            let img = image::GrayImage::from_raw(28, 28, pixels).unwrap();
            let mut png = Cursor::new(Vec::new());
            img.write_to(&mut png, image::ImageFormat::Png).unwrap();
            png.into_inner()
        })
        .collect();
    let bytes: ArrayRef = Arc::new(BinaryArray::from_iter_values(pngs.iter()));
    let paths: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..count).map(|i| format!("{i}.png")),
    ));
    let fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    let image: ArrayRef = Arc::new(StructArray::new(fields, vec![bytes, paths], None));
    let label: ArrayRef = Arc::new(Int64Array::from_iter_values(
        set.labels[..count].iter().map(|&l| i64::from(l)),
    ));
    let batch = RecordBatch::try_from_iter(vec![("image", image), ("label", label)]).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Runs this test again in a child process whose hf-hub reads `cache` and a hub address
/// where nothing listens, checking `what`; fails with the child's output unless it passes.
fn run_child(what: &str, cache: &Path, out: &Path) {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(&exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, what)
        .env("HF_HUB_CACHE", cache)
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("VGRAD_HUB_TEST_OUT", out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the {what} child failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// In the child with the seeded cache: the hub loader gives exactly the images and labels
/// seeded, and `vgrad train --data hf` trains on them.
fn seeded(out: &Path) {
    let mnist = load(&DataSource::Auto).unwrap();
    let hub = load(&DataSource::Hf).unwrap();
    assert_eq!(hub.train.len(), TRAIN_N);
    assert_eq!(hub.test.len(), TEST_N);
    assert_eq!(hub.train.images, mnist.train.images[..TRAIN_N * 784]);
    assert_eq!(hub.train.labels, mnist.train.labels[..TRAIN_N]);
    assert_eq!(hub.test.images, mnist.test.images[..TEST_N * 784]);
    let runs = vgrad_train(&[
        "--data",
        "hf",
        "--steps",
        "30",
        "--log-every",
        "10",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(runs[0].1.status, RunStatus::Ok);
}

/// In the child with an empty cache and no hub: a prompt error that names the offline
/// sources.
fn empty() {
    let started = Instant::now();
    let err = format!("{:#}", load(&DataSource::Hf).unwrap_err());
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("--data auto") && err.contains("--data PATH"),
        "{err}"
    );
}

#[test]
fn the_hub_loader_reads_a_seeded_cache_and_fails_fast_without_one() {
    if let Some(what) = std::env::var_os(CHILD_VAR) {
        let out = std::env::var_os("VGRAD_HUB_TEST_OUT").unwrap();
        match what.to_str() {
            Some("seeded") => seeded(Path::new(&out)),
            Some("empty") => empty(),
            _ => panic!("{CHILD_VAR}={what:?}: expected seeded or empty"),
        }
        return;
    }
    let mnist = load(&DataSource::Auto).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let repo = cache.join("datasets--ylecun--mnist");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs/refs/convert")).unwrap();
    std::fs::write(repo.join("refs/refs/convert/parquet"), commit).unwrap();
    let snapshot = repo.join("snapshots").join(commit).join("mnist");
    write_parquet(&snapshot.join("train/0000.parquet"), &mnist.train, TRAIN_N);
    write_parquet(&snapshot.join("test/0000.parquet"), &mnist.test, TEST_N);
    let out = dir.path().join("run");
    run_child("seeded", &cache, &out);
    assert!(
        out.join("summary.json").is_file(),
        "the child's run finished"
    );

    let empty = dir.path().join("empty-cache");
    std::fs::create_dir_all(&empty).unwrap();
    run_child("empty", &empty, &dir.path().join("unused"));
}
