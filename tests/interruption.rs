//! Nothing computed is lost: a sweep killed with SIGKILL partway resumes with exactly the
//! missing runs, and its report and every run's numbers come out identical to an
//! uninterrupted sweep's, whatever the number of parallel jobs.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vgrad_record::RunSummary;
use vgrad_record::layout::write_json_atomic;
use vgrad_tests::{sweep, sweep_options, xtask_bin};

/// The folders in `dir`, sorted (none if it does not exist yet).
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    dirs
}

/// The run folders of a sweep's runs folder: `<grid point>/seed-<n>_<hash>`.
fn run_dirs(runs: &Path) -> Vec<PathBuf> {
    subfolders(runs)
        .iter()
        .flat_map(|p| subfolders(p))
        .collect()
}

fn finished(runs: &Path) -> usize {
    run_dirs(runs)
        .iter()
        .filter(|d| d.join("summary.json").is_file())
        .count()
}

/// A summary without the fields that measure time or how runs were grouped.
fn numbers(dir: &Path) -> serde_json::Value {
    let s: RunSummary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let mut v = serde_json::to_value(s).unwrap();
    for key in [
        "wall_s",
        "steps_per_s",
        "step_us",
        "logged_step_us",
        "ensemble_size",
    ] {
        v.as_object_mut().unwrap().remove(key);
    }
    v
}

#[test]
fn a_sweep_killed_partway_resumes_only_the_missing_runs_and_reports_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("kill.toml");
    std::fs::write(
        &experiment,
        "seeds = 3\n[base]\nsteps = 1500\nlog_every = 100\n[axes]\nactivation = [\"sigmoid\", \"relu\", \"tanh\"]\n",
    )
    .unwrap();

    let whole = dir.path().join("whole");
    let first = sweep(&experiment, &sweep_options(&whole, 1)).unwrap();
    assert_eq!(first.ran, 9);

    let killed = dir.path().join("killed");
    let runs = killed.join("runs/kill");
    let mut child = Command::new(xtask_bin())
        .arg("sweep")
        .arg(&experiment)
        .args(["--jobs", "1", "--out"])
        .arg(&killed)
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Kill once some runs have finished and others are halfway. A grid point's 3 seeds
    // train as one process that writes their summaries one after another, so wait for
    // whole grid points: a count between them is that process finishing, which the kill
    // could miss.
    let halfway = |runs: &Path| {
        let done = finished(runs);
        done > 0 && done.is_multiple_of(3) && run_dirs(runs).len() > done
    };
    while !halfway(&runs) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sweep made no progress"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = finished(&runs);
    assert!(done > 0 && done < 9, "{done} runs had finished");
    // The training processes died with the sweep: nothing finishes behind our back.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(finished(&runs), done);
    assert!(run_dirs(&runs).len() > done, "a run was cut off partway");

    let resumed = sweep(&experiment, &sweep_options(&killed, 2)).unwrap();
    assert_eq!(
        (resumed.ran, resumed.resumed, resumed.failed),
        (9 - done, done, 0)
    );
    let report = |out: &Path| std::fs::read_to_string(out.join("reports/kill.md")).unwrap();
    assert_eq!(report(&killed), report(&whole));
    // Every run's numbers are byte-identical, though they were trained in other groups.
    let (a, b) = (run_dirs(&whole.join("runs/kill")), run_dirs(&runs));
    let whole_runs = whole.join("runs/kill");
    assert_eq!(
        a.iter()
            .map(|d| d.strip_prefix(&whole_runs).unwrap())
            .collect::<Vec<_>>(),
        b.iter()
            .map(|d| d.strip_prefix(&runs).unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(a.len(), 9);
    for (x, y) in a.iter().zip(&b) {
        let metrics = |d: &Path| std::fs::read(d.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics(x), metrics(y), "{}", x.display());
        assert_eq!(numbers(x), numbers(y), "{}", x.display());
        assert_eq!(
            std::fs::read(x.join("config.json")).unwrap(),
            std::fs::read(y.join("config.json")).unwrap()
        );
    }
}

#[test]
fn the_same_seed_gives_byte_identical_numbers_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let train = |name: &str| {
        let out = dir.path().join(name);
        vgrad_tests::vgrad_train(&[
            "--activation",
            "tanh",
            "--steps",
            "300",
            "--log-every",
            "50",
            "--seed",
            "7",
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        out
    };
    let (a, b) = (train("a"), train("b"));
    assert_eq!(
        std::fs::read(a.join("metrics.jsonl")).unwrap(),
        std::fs::read(b.join("metrics.jsonl")).unwrap()
    );
    assert_eq!(numbers(&a), numbers(&b));
}

#[test]
fn json_files_are_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    write_json_atomic(&path, &serde_json::json!({"old": true})).unwrap();
    // A reader that opened the old file keeps seeing it whole: the new one was written
    // beside it and renamed over it, never truncated in place.
    let mut reader = std::fs::File::open(&path).unwrap();
    write_json_atomic(&path, &serde_json::json!({"new": [1, 2, 3]})).unwrap();
    let mut old = String::new();
    std::io::Read::read_to_string(&mut reader, &mut old).unwrap();
    assert!(old.contains("\"old\": true"), "{old}");
    assert!(std::fs::read_to_string(&path).unwrap().contains("\"new\""));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}
