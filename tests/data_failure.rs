//! A run whose data fails to load leaves no run folder behind (it left a lock file,
//! config.json and an empty metrics.jsonl), and an existing run's folder as it was; and
//! `--data auto` that finds no MNIST says in one line where it looked and how to point at
//! it. Through the `vgrad` binary, whose environment the test sets.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use vgrad_tests::vgrad_bin;

/// `vgrad train ARGS` with `VGRAD_DATA` set to `data`: it must fail; returns its stderr.
fn fails(args: &[&str], data: Option<&Path>) -> String {
    let mut cmd = Command::new(vgrad_bin());
    cmd.arg("train").args(args).env_remove("VGRAD_DATA");
    if let Some(data) = data {
        cmd.env("VGRAD_DATA", data);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    stderr
}

/// The paths under `dir`, with each file's contents.
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
fn a_run_whose_data_fails_to_load_leaves_no_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let out = runs.join("new/run");
    let missing = tmp.path().join("no-such-mnist");
    let err = fails(
        &[
            "--data",
            missing.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        err.contains(&format!("--data {}: no such folder", missing.display())),
        "{err}"
    );
    // With --seeds, one folder per seed under --out: none of them, nor --out.
    let sweep = runs.join("sweep");
    let sweep_arg = sweep.to_str().unwrap();
    let err = fails(&["--seeds", "3", "--out", sweep_arg], Some(&missing));
    assert!(
        err.contains(&format!("VGRAD_DATA={}: no such folder", missing.display())),
        "{err}"
    );
    assert_eq!(listing(&runs), [], "nothing left in {}", runs.display());
}

#[test]
fn a_rerun_whose_data_fails_leaves_the_existing_run_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    // An interrupted run: its config and the steps it logged, no summary.
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("config.json"), "{\"kept\": true}\n").unwrap();
    std::fs::write(run.join("metrics.jsonl"), "{\"step\": 0}\n").unwrap();
    let before = listing(tmp.path());
    let missing = tmp.path().join("no-such-mnist");
    fails(
        &[
            "--data",
            missing.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(listing(tmp.path()), before);
}

#[test]
fn auto_with_a_wrong_vgrad_data_says_so_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let out = tmp.path().join("run");
    let err = fails(&["--out", out.to_str().unwrap()], Some(&missing));
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {err}"));
    assert_eq!(
        line,
        format!(
            "error: cannot load MNIST (--data auto): VGRAD_DATA={}: no such folder; expected \
             a folder holding the four MNIST files (--data auto reads them from it)",
            missing.display()
        )
    );
    assert!(!out.exists());
}
