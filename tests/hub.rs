//! `--data hf` offline: a Hugging Face cache seeded with small parquet files in the layout
//! `candle_datasets::vision::mnist::load()` reads, and an empty cache with no network.
//! One test in its own binary, since it points hf-hub's environment variables elsewhere.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, Fields};
use parquet::arrow::ArrowWriter;
use vgrad_record::{DataSource, RunStatus};
use vgrad_tests::vgrad_train;
use vgrad_train::data::{ImageSet, load};

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

/// Points hf-hub at `cache` and at a hub address where nothing listens.
fn use_cache(cache: &Path) {
    // SAFETY: this binary runs this one test; no other thread reads the environment.
    unsafe {
        std::env::set_var("HF_HUB_CACHE", cache);
        std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9");
    }
}

#[test]
fn the_hub_loader_reads_a_seeded_cache_and_fails_fast_without_one() {
    let mnist = load(&DataSource::Auto).unwrap();
    let (train_n, test_n) = (5_300, 200);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let repo = cache.join("datasets--ylecun--mnist");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs/refs/convert")).unwrap();
    std::fs::write(repo.join("refs/refs/convert/parquet"), commit).unwrap();
    let snapshot = repo.join("snapshots").join(commit).join("mnist");
    write_parquet(&snapshot.join("train/0000.parquet"), &mnist.train, train_n);
    write_parquet(&snapshot.join("test/0000.parquet"), &mnist.test, test_n);

    use_cache(&cache);
    let hub = load(&DataSource::Hf).unwrap();
    assert_eq!(hub.train.len(), train_n);
    assert_eq!(hub.test.len(), test_n);
    assert_eq!(hub.train.images, mnist.train.images[..train_n * 784]);
    assert_eq!(hub.train.labels, mnist.train.labels[..train_n]);
    assert_eq!(hub.test.images, mnist.test.images[..test_n * 784]);
    let out = dir.path().join("run");
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

    let empty = dir.path().join("empty-cache");
    std::fs::create_dir_all(&empty).unwrap();
    use_cache(&empty);
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
