//! Tells the tests which optional parts of the machine are there, so that a test that
//! cannot run here is reported as ignored, with the reason, rather than passing: the
//! Fashion-MNIST package and a Python with TensorBoard. Under CI, which installs both,
//! a missing one fails the build instead.

use std::path::Path;

/// Where Debian's `dataset-fashion-mnist` installs the data set (as `vgrad --data fashion`).
const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fashion_mnist)");
    println!("cargo::rustc-check-cfg=cfg(tensorboard_python)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=VGRAD_TB_PYTHON");
    println!("cargo::rerun-if-changed={FASHION_DIR}");
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    println!("cargo::rerun-if-changed={}", venv.display());

    let ci = std::env::var_os("CI").is_some();
    if Path::new(FASHION_DIR).is_dir() {
        println!("cargo::rustc-cfg=fashion_mnist");
    } else if ci {
        panic!(
            "CI must install Fashion-MNIST ({FASHION_DIR}): apt-get install dataset-fashion-mnist"
        );
    }
    let python = std::env::var_os("VGRAD_TB_PYTHON").is_some() || venv.is_file();
    if python {
        println!("cargo::rustc-cfg=tensorboard_python");
    } else if ci {
        panic!("CI must run the TensorBoard test: run the tests with `cargo xtask test`");
    }
}
