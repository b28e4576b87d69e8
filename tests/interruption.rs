//! Nothing computed is lost: a sweep killed with SIGKILL partway resumes with exactly the
//! missing runs, and its report and every run's numbers come out identical to an
//! uninterrupted sweep's, whatever the number of parallel jobs.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

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

/// Every file of the folder `dir`, sorted: its path, bytes and modification time.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let modified = p.metadata().unwrap().modified().unwrap();
            (p.clone(), std::fs::read(&p).unwrap(), modified)
        })
        .collect();
    files.sort();
    files
}

/// Every file under `dir`, its path relative to `dir` and its bytes, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(folder) = todo.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
            }
        }
    }
    files.sort();
    files
}

/// Trains the sweep `experiment` (`total` runs, `seeds` of each grid point) whole, then
/// again in another folder, killed with SIGKILL partway and resumed with 2 jobs; checks
/// that the resumed sweep trained exactly the missing runs, left the finished ones as they
/// were, and came out as the whole one: its report, and every run's numbers.
fn kill_and_resume(experiment: &Path, seeds: usize, total: usize) {
    let dir = experiment.parent().unwrap();
    let name = experiment.file_stem().unwrap().to_str().unwrap();

    let whole = dir.join("whole");
    let first = sweep(experiment, &sweep_options(&whole, 1)).unwrap();
    assert_eq!(first.ran, total);

    let killed = dir.join("killed");
    let runs = killed.join("runs").join(name);
    let mut child = Command::new(xtask_bin())
        .arg("sweep")
        .arg(experiment)
        .args(["--jobs", "1", "--out"])
        .arg(&killed)
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Kill once some runs have finished and others are halfway. A grid point's seeds
    // train as one process that writes their summaries one after another, so wait for
    // whole grid points: a count between them is that process finishing, which the kill
    // could miss.
    let halfway = |runs: &Path| {
        let done = finished(runs);
        done > 0 && done.is_multiple_of(seeds) && run_dirs(runs).len() > done
    };
    while !halfway(&runs) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sweep made no progress"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the sweep ended ({status}) before it could be killed partway");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = finished(&runs);
    assert!(done > 0 && done < total, "{done} runs had finished");
    // The training processes died with the sweep: nothing finishes behind our back.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(finished(&runs), done);
    assert!(run_dirs(&runs).len() > done, "a run was cut off partway");
    let kept: Vec<_> = run_dirs(&runs)
        .into_iter()
        .filter(|d| d.join("summary.json").is_file())
        .map(|d| (files(&d), d))
        .collect();

    let resumed = sweep(experiment, &sweep_options(&killed, 2)).unwrap();
    assert_eq!(
        (resumed.ran, resumed.resumed, resumed.failed),
        (total - done, done, 0)
    );
    // The finished runs were not trained again, nor written to.
    for (before, d) in &kept {
        assert!(files(d) == *before, "{} changed", d.display());
    }
    let reports = |out: &Path| tree(&out.join("reports"));
    let (a, b) = (reports(&killed), reports(&whole));
    assert_eq!(
        a.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        b.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(
        a.iter().any(|(p, _)| p == Path::new(&format!("{name}.md"))),
        "{a:?}"
    );
    for ((path, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "reports/{} differs", path.display());
    }
    // Every run's numbers are byte-identical, though they were trained in other groups.
    let whole_runs = whole.join("runs").join(name);
    let (a, b) = (run_dirs(&whole_runs), run_dirs(&runs));
    assert_eq!(
        a.iter()
            .map(|d| d.strip_prefix(&whole_runs).unwrap())
            .collect::<Vec<_>>(),
        b.iter()
            .map(|d| d.strip_prefix(&runs).unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(a.len(), total);
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
fn a_sweep_killed_partway_resumes_only_the_missing_runs_and_reports_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("kill.toml");
    std::fs::write(
        &experiment,
        "seeds = 3\n[base]\nsteps = 1500\nlog_every = 100\n[axes]\nactivation = [\"sigmoid\", \"relu\", \"tanh\"]\n",
    )
    .unwrap();
    kill_and_resume(&experiment, 3, 9);
}

#[test]
fn a_recurrent_sweep_killed_partway_resumes_only_the_missing_runs_and_reports_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("recurrent.toml");
    // The adding problem, which needs no data set: 2 models at 2 sequence lengths, each
    // grid point's process training for a fraction of a second.
    std::fs::write(
        &experiment,
        r#"seeds = 2
[base]
task = "adding"
activation = "tanh"
layers = 2
width = 8
batch_size = 8
steps = 1500
log_every = 100
clip_norm = 1

[axes]
sequence_length = [4, 8]

[[scenarios]]
name = "rnn"
model = "rnn"

[[scenarios]]
name = "lstm, forget bias 1"
model = "lstm"
forget_bias = 1
"#,
    )
    .unwrap();
    kill_and_resume(&experiment, 2, 8);
    // The runs were the recurrent ones: probed through time, scored on the adding problem.
    let runs = dir.path().join("whole/runs/recurrent");
    for run in run_dirs(&runs) {
        let lines = vgrad_tests::metrics(&run).unwrap();
        assert_eq!(lines.len(), 15, "{}", run.display());
        assert!(
            lines
                .iter()
                .all(|l| l["layers"] == serde_json::json!([]) && l["time"].is_object()),
            "{}",
            run.display()
        );
        let summary = vgrad_tests::summary_json(&run).unwrap();
        assert!(summary["test_mse"].is_f64(), "{}", run.display());
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
