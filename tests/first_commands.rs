//! The first commands a newcomer runs leave the committed reports as they are: a report
//! of a sweep without runs is refused, and a quick look writes to `quick/`.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

use vgrad_tests::{workspace, xtask_bin};

/// Every committed report (markdown and figures) as bytes, by path.
fn committed_reports() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let reports = workspace().join("reports");
    let mut stack = vec![reports.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(&reports).unwrap().display().to_string();
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn xtask(args: &[&str], out: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(xtask_bin());
    cmd.args(args).env("RUST_LOG", "error");
    if let Some(out) = out {
        cmd.arg("--out").arg(out);
    }
    cmd.output().unwrap()
}

#[test]
fn a_report_without_runs_is_refused_and_a_quick_look_goes_to_its_own_folder() {
    let before = committed_reports();
    assert!(before.iter().any(|(name, _)| name == "seed.md"));

    // `cargo xtask report fashion` where no run of it exists: refused, nothing written.
    let empty = tempfile::tempdir().unwrap();
    let output = xtask(&["report", "fashion"], Some(empty.path()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("no run of `fashion` has a result")
            && stderr.contains("run `cargo xtask sweep fashion` first"),
        "{stderr}"
    );
    assert!(!empty.path().join("reports").exists());

    // A quick look of the reference sweep, with the workspace as the default folder.
    let quick = workspace().join("quick");
    let output = xtask(&["sweep", "seed", "--steps", "20", "--seeds", "1"], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report = std::fs::read_to_string(quick.join("reports/seed.md")).unwrap();
    assert!(
        report.contains("cargo xtask sweep seed --steps 20 --seeds 1"),
        "{report}"
    );
    assert!(report.contains("All 4 runs finished."), "{report}");
    assert_eq!(committed_reports(), before, "a committed report changed");
    // Only this test's quick look of `seed` is removed; quick/ is not committed.
    let _ = std::fs::remove_dir_all(quick.join("runs/seed"));
    let _ = std::fs::remove_file(quick.join("reports/seed.md"));
    let _ = std::fs::remove_file(quick.join("reports/seed.json"));
    let _ = std::fs::remove_dir_all(quick.join("reports/seed"));
}
