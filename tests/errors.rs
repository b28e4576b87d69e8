//! Bad input gets a clear error that names the file, flag or value and what was expected.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::Path;

use vgrad_record::DataSource;
use vgrad_tests::vgrad_train;
use vgrad_train::data::idx;
use vgrad_train::data::mnist::{MNIST_FILES, load_dir};
use vgrad_train::data::source::load_fashion;

/// `vgrad train ARGS` fails with a message containing every one of `want`.
fn fails(args: &[&str], want: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let mut all = args.to_vec();
    let dir = out.path().join("run");
    if !args.contains(&"--out") {
        all.extend(["--out", dir.to_str().unwrap()]);
    }
    let err = match vgrad_train(&all) {
        Ok(_) => panic!("{args:?} succeeded"),
        Err(e) => format!("{e:#}"),
    };
    for w in want {
        assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
    }
}

#[test]
fn bad_flags_name_the_flag_and_what_is_allowed() {
    fails(&["--layers", "0"], &["--layers must be at least 1"]);
    fails(&["--width", "0"], &["--width must be at least 1"]);
    fails(&["--steps", "0"], &["--steps must be at least 1"]);
    fails(&["--log-every", "0"], &["--log-every must be at least 1"]);
    fails(&["--lr", "0"], &["--lr must be a positive number, got 0"]);
    fails(&["--lr=-0.1"], &["--lr must be a positive number"]);
    fails(&["--lr", "-1"], &["--lr must be a positive number, got -1"]);
    fails(
        &["--beta1", "-0.5"],
        &["--beta1 must lie in [0, 1), got -0.5"],
    );
    fails(
        &["--activation", "swish"],
        &[
            "swish",
            "sigmoid, tanh, relu, leaky-relu, leaky-relu:<slope>, elu, gelu, silu",
        ],
    );
    fails(
        &["--activation", "leaky-relu:1.5"],
        &["leaky-relu:1.5", "strictly between 0 and 1"],
    );
    fails(
        &["--init", "xavier"],
        &[
            "xavier",
            "glorot-uniform, glorot-normal, he-uniform, he-normal, lecun-normal",
        ],
    );
    fails(&["--init", "normal:-2"], &["normal:-2", "positive number"]);
    fails(
        &["--init", "orthogonal:-1"],
        &["invalid init `orthogonal:-1`: the value after `orthogonal:` must be a positive number"],
    );
    fails(
        &["--optimizer", "momentum:1.5"],
        &[
            "invalid optimizer `momentum:1.5`: the momentum after `momentum:` must be a number in [0, 1)",
        ],
    );
    fails(
        &["--optimizer", "rmsprop"],
        &["expected one of adam, sgd, momentum:<beta>"],
    );
    fails(
        &["--norm", "batch", "--batch-size", "1"],
        &["--norm batch needs --batch-size of at least 2", "got 1"],
    );
    fails(
        &["--norm", "layer", "--width", "1"],
        &["--norm layer needs --width of at least 2"],
    );
    fails(
        &["--norm", "group"],
        &["invalid norm `group`: expected one of none, batch, layer"],
    );
    fails(
        &["--residual", "--layers", "2"],
        &[
            "--residual needs --layers of at least 3",
            "layer 1 maps the 784 inputs to the width without one",
        ],
    );
    fails(
        &["--eval-every", "300"],
        &["--eval-every must be 0 or a multiple of --log-every (200), got 300"],
    );
    fails(
        &["--batch-size", "60000"],
        &["--batch-size 60000 is larger than the training set (55000 examples)"],
    );
    fails(
        &["--bias-variance", "chaotic"],
        &["invalid bias variance `chaotic`", "or critical"],
    );
    fails(
        &["--bias-variance", "critical", "--activation", "relu"],
        &[
            "--bias-variance critical: chi_1 of relu is sigma_w^2 times a constant",
            "--init variance:<sigma_w^2>",
        ],
    );
    fails(
        &[
            "--bias-variance",
            "critical",
            "--activation",
            "tanh",
            "--width",
            "100",
        ],
        &["--bias-variance critical: no sigma_b^2 in [0, 100] puts tanh with sigma_w^2 = 1.0000"],
    );
    fails(&["--seeds", "3-1"], &["empty"]);
    fails(
        &["--device", "tpu"],
        &[
            "--device",
            "invalid device `tpu`: expected one of cpu, cuda, auto",
        ],
    );
    if !candle_core::utils::cuda_is_available() {
        fails(
            &["--device", "cuda"],
            &["built without CUDA", "--features cuda"],
        );
    }
}

#[test]
fn an_unwritable_output_folder_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = file.join("run");
    let started = std::time::Instant::now();
    // A missing data folder would be reported later: the output folder is checked first.
    fails(
        &["--out", out.to_str().unwrap(), "--data", "/no/such/data"],
        &["cannot create the run folder", "a-file/run"],
    );
    assert!(started.elapsed().as_secs_f64() < 5.0);
}

fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    std::fs::write(path, idx::encode(dims, data)).unwrap();
}

/// A data folder of small, valid IDX files (6,000 training and 10 test images).
fn small_set(dir: &Path) {
    let (n, t) = (6_000u32, 10u32);
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    write_idx(
        &dir.join("train-images-idx3-ubyte"),
        &[n, 28, 28],
        &vec![3u8; n as usize * 784],
    );
    write_idx(&dir.join("train-labels-idx1-ubyte"), &[n], &labels);
    write_idx(
        &dir.join("t10k-images-idx3-ubyte"),
        &[t, 28, 28],
        &vec![3u8; t as usize * 784],
    );
    write_idx(
        &dir.join("t10k-labels-idx1-ubyte"),
        &[t],
        &labels[..t as usize],
    );
}

/// `vgrad train --data DIR` on a small set that `damage` spoiled fails naming `want`.
fn bad_data(damage: impl Fn(&Path), want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path());
    damage(dir.path());
    fails(
        &["--data", dir.path().to_str().unwrap(), "--steps", "5"],
        want,
    );
}

#[test]
fn a_valid_small_set_trains() {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path());
    let out = dir.path().join("out");
    vgrad_train(&[
        "--data",
        dir.path().to_str().unwrap(),
        "--steps",
        "5",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
}

#[test]
fn bad_data_files_name_the_file_and_the_problem() {
    bad_data(
        |d| std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap(),
        &[
            "no t10k-labels file",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-labels.idx1-ubyte",
        ],
    );
    bad_data(
        |d| std::fs::write(d.join("train-labels-idx1-ubyte"), b"PK\x03\x04 a zip file").unwrap(),
        &["train-labels-idx1-ubyte", "magic number"],
    );
    bad_data(
        |d| {
            let p = d.join("train-images-idx3-ubyte");
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        },
        &[
            "train-images-idx3-ubyte",
            "declares 4704000 data bytes",
            "holds 2351992",
        ],
    );
    // A header that claims four billion images, in a file of a few bytes.
    bad_data(
        |d| {
            write_idx(
                &d.join("t10k-images-idx3-ubyte"),
                &[u32::MAX, 28, 28],
                &[0; 100],
            )
        },
        &["t10k-images-idx3-ubyte", "holds 100"],
    );
    bad_data(
        |d| write_idx(&d.join("t10k-labels-idx1-ubyte"), &[9], &[1; 9]),
        &["test: 10 images but 9 labels"],
    );
    bad_data(
        |d| {
            write_idx(
                &d.join("train-images-idx3-ubyte"),
                &[6_000, 14, 14],
                &vec![0; 6_000 * 196],
            )
        },
        &["training images: expected 28x28 pixels, found 14x14"],
    );
    bad_data(
        |d| {
            write_idx(
                &d.join("t10k-labels-idx1-ubyte"),
                &[10],
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 200],
            )
        },
        &["test labels: label 200 at index 9 is outside 0-9"],
    );
    bad_data(
        |d| {
            std::fs::remove_file(d.join("train-labels-idx1-ubyte")).unwrap();
            std::fs::write(
                d.join("train-labels-idx1-ubyte.gz"),
                [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xfe],
            )
            .unwrap();
        },
        &["train-labels-idx1-ubyte.gz", "corrupt gzip"],
    );
    fails(
        &["--data", "/no/such/folder"],
        &["--data /no/such/folder: no such folder"],
    );
}

#[test]
fn a_vendored_file_that_changed_is_caught_by_its_checksum() {
    let vendored = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let dir = tempfile::tempdir().unwrap();
    for f in MNIST_FILES {
        let name = format!("{}-{}.gz", f.stem, f.kind);
        std::fs::copy(vendored.join(&name), dir.path().join(&name)).unwrap();
    }
    load_dir(dir.path(), true).unwrap();
    // Flip one label and compress again: a valid file, but not the genuine MNIST.
    let path = dir.path().join("t10k-labels-idx1-ubyte.gz");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes[100] = (bytes[100] + 1) % 10;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let err = format!("{:#}", load_dir(dir.path(), true).unwrap_err());
    assert!(
        err.contains("t10k-labels-idx1-ubyte.gz")
            && err.contains("SHA-256")
            && err.contains("ff7bcfd4"),
        "{err}"
    );
}

#[test]
fn a_missing_fashion_mnist_says_how_to_install_it() {
    let err = format!(
        "{:#}",
        load_fashion(Path::new("/no/fashion/here")).unwrap_err()
    );
    assert!(
        err.contains("apt-get install dataset-fashion-mnist") && err.contains("--data PATH"),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(fashion_mnist),
    ignore = "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"
)]
fn fashion_mnist_trains() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fashion");
    let runs = vgrad_train(&[
        "--data",
        "fashion",
        "--activation",
        "relu",
        "--steps",
        "300",
        "--log-every",
        "100",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let summary = &runs[0].1;
    assert!(summary.test_acc > 0.5, "{}", summary.test_acc);
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("\"data\": \"fashion\""), "{config}");
    // It is not MNIST.
    let mnist = vgrad_train::data::load(&DataSource::Auto).unwrap();
    let fashion = vgrad_train::data::load(&DataSource::Fashion).unwrap();
    assert_eq!(fashion.train.len(), 60_000);
    assert_ne!(fashion.train.images[..784], mnist.train.images[..784]);
}

#[test]
fn a_finished_run_is_not_replaced_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "--steps",
        "20",
        "--log-every",
        "10",
        "--out",
        out.to_str().unwrap(),
    ];
    vgrad_train(&args).unwrap();
    let summary = std::fs::read(out.join("summary.json")).unwrap();
    let err = format!("{:#}", vgrad_train(&args).unwrap_err());
    assert!(
        err.contains("holds a finished run (summary.json)") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), summary);
    let mut forced = args.to_vec();
    forced.push("--force");
    vgrad_train(&forced).unwrap();
}

/// The `vgrad` that `cargo xtask sweep` builds leaves the hub out (half the build); asked
/// for it, it says how to get it.
#[test]
fn the_default_build_says_how_to_get_the_hub_loader() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(vgrad_tests::vgrad_bin())
        .args(["train", "--data", "hf", "--steps", "1", "--out"])
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains(
            "this vgrad was built without the `hub` feature; build it with `cargo build \
             --release -p vgrad-cli --features hub`"
        ),
        "{text}"
    );
}
