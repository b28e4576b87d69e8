//! Tells the tests which optional parts of the machine are there, so that a test that
//! cannot run here is reported as ignored, with the reason, rather than passing: the
//! Fashion-MNIST package, a Python with TensorBoard, Slurm's daemons, and Chromium with its
//! WebDriver. Under CI, which installs all four, a missing one fails the build instead.

use std::path::Path;

/// Where Debian's `dataset-fashion-mnist` installs the data set (as `vgrad --data fashion`).
const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// What `scripts/local-slurm.sh` starts and the Slurm test submits with (Debian's
/// `slurmctld`, `slurmd`, `slurm-client` and `munge`).
const SLURM_PROGRAMS: [&str; 5] = [
    "/usr/sbin/slurmctld",
    "/usr/sbin/slurmd",
    "/usr/sbin/munged",
    "/usr/bin/sbatch",
    "/usr/bin/squeue",
];

/// What the browser test drives (Debian's `chromium` and `chromium-driver`).
const CHROMIUM_PROGRAMS: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromedriver"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fashion_mnist)");
    println!("cargo::rustc-check-cfg=cfg(tensorboard_python)");
    println!("cargo::rustc-check-cfg=cfg(slurm)");
    println!("cargo::rustc-check-cfg=cfg(chromium)");
    for program in SLURM_PROGRAMS.iter().chain(&CHROMIUM_PROGRAMS) {
        println!("cargo::rerun-if-changed={program}");
    }
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
    if SLURM_PROGRAMS.iter().all(|p| Path::new(p).is_file()) {
        println!("cargo::rustc-cfg=slurm");
    } else if ci {
        panic!("CI must run the Slurm test: apt-get install slurmctld slurmd slurm-client munge");
    }
    if CHROMIUM_PROGRAMS.iter().all(|p| Path::new(p).is_file()) {
        println!("cargo::rustc-cfg=chromium");
    } else if ci {
        panic!("CI must run the browser test: apt-get install chromium chromium-driver");
    }
}
