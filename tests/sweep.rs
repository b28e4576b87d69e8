//! `cargo xtask sweep` end to end: a tiny sweep through the xtask code, with the real
//! `vgrad` binary on the real MNIST, its resume, its failures and its report.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use vgrad_record::{RunStatus, RunSummary};
use vgrad_report::format::{percent, with_ci};
use vgrad_sweep::SweepOptions;
use vgrad_tests::{sweep, sweep_options};

fn options(out: &Path) -> SweepOptions {
    sweep_options(out, 2)
}

/// The summaries of the runs whose folder name starts with `prefix`.
fn summaries(runs: &Path, prefix: &str) -> Vec<RunSummary> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|d| {
            serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap()
        })
        .collect()
}

/// The cells of the results table's row for `scenario`.
fn row(report: &str, scenario: &str) -> Vec<String> {
    let results = &report[report.find("## Results").expect("a results table")..];
    let line = results
        .lines()
        .find(|l| l.starts_with(&format!("| {scenario} | ")))
        .unwrap_or_else(|| panic!("no row for {scenario} in:\n{report}"));
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// Geometric mean and 95% interval of two values, by hand (t with 1 degree of freedom).
fn expected_ci(a: f64, b: f64) -> String {
    let (la, lb) = (a.ln(), b.ln());
    let mean = (la + lb) / 2.0;
    let sd = ((la - mean).powi(2) + (lb - mean).powi(2)).sqrt();
    let half = 12.706204736 * sd / 2f64.sqrt();
    with_ci(mean.exp(), (mean - half).exp(), (mean + half).exp())
}

/// The mean of two accuracies with the 95% interval of their logits, by hand.
fn expected_accuracy(a: f64, b: f64) -> String {
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let expit = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (la, lb) = (logit(a), logit(b));
    let half = 12.706204736 * (la - lb).abs() / 2.0;
    let centre = (la + lb) / 2.0;
    format!(
        "{} [{}, {}]",
        percent((a + b) / 2.0),
        percent(expit(centre - half)),
        percent(expit(centre + half))
    )
}

#[test]
fn a_tiny_sweep_runs_resumes_and_reports_what_its_runs_say() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("tiny.toml");
    std::fs::write(
        &experiment,
        "seeds = 2\n[base]\nsteps = 300\nlog_every = 100\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let opts = options(&out);
    let run = |opts: &SweepOptions| sweep(&experiment, opts);

    let first = run(&opts).unwrap();
    assert_eq!((first.ran, first.resumed, first.failed), (4, 0, 0));
    let report_path = out.join("reports/tiny.md");
    let report = std::fs::read_to_string(&report_path).unwrap();
    let runs = out.join("runs/tiny");
    for scenario in ["sigmoid", "relu"] {
        // One folder per grid point, the seeds' runs in it.
        let s = summaries(&runs.join(scenario), "seed-");
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().map(|s| s.seed).collect::<Vec<_>>(), vec![0, 1]);
        assert!(
            s.iter()
                .all(|s| s.steps == 300 && s.status == RunStatus::Ok)
        );
        let cells = row(&report, scenario);
        // The classes by hand: trained above chance plus 5 points, collapsed at or below.
        let trained: Vec<&RunSummary> = s.iter().filter(|s| s.test_acc > 0.15).collect();
        let collapsed = 2 - trained.len();
        let runs_cell = match collapsed {
            0 => "2 trained".to_string(),
            n => format!("{} trained, {n} collapsed", 2 - n),
        };
        assert_eq!(cells[1], runs_cell, "{report}");
        // The error factor at step 0 is every run's; the others the trained runs'.
        let start = expected_ci(s[0].error_factor_start, s[1].error_factor_start);
        assert!(cells[3].starts_with(&start), "{} vs {start}", cells[3]);
        if let [a, b] = trained.as_slice() {
            assert_eq!(cells[2], expected_accuracy(a.test_acc, b.test_acc));
            assert_eq!(
                cells[5],
                expected_ci(a.profile.decay_ratio, b.profile.decay_ratio)
            );
        }
        if trained.is_empty() {
            assert_eq!((cells[2].as_str(), cells[5].as_str()), ("n/a", "n/a"));
        }
    }
    assert!(report.contains("## Answer") && report.find("## Answer") < report.find("## Results"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("reports/tiny.json")).unwrap())
            .unwrap();
    assert_eq!(json["scenarios"].as_array().unwrap().len(), 2);
    assert!(out.join("reports/tiny/details.md").is_file());
    for figure in ["error_factor.svg", "error_profile.svg", "gradients.svg"] {
        let svg = std::fs::read_to_string(out.join("reports/tiny").join(figure)).unwrap();
        assert!(svg.contains("<svg") && svg.contains("sigmoid"), "{figure}");
    }

    // Nothing to do on a rerun.
    let again = run(&opts).unwrap();
    assert_eq!((again.ran, again.resumed), (0, 4));

    // An interrupted sweep: one run lost its summary (and so never finished).
    let victim = std::fs::read_dir(runs.join("relu"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-1_")
        })
        .unwrap();
    std::fs::remove_file(victim.join("summary.json")).unwrap();
    assert!(
        std::fs::read_to_string(&report_path)
            .unwrap()
            .contains("All 4 runs finished")
    );
    let resumed = run(&opts).unwrap();
    assert_eq!((resumed.ran, resumed.resumed), (1, 3));
    assert_eq!(
        std::fs::read_to_string(&report_path).unwrap(),
        report,
        "the resumed sweep's report differs"
    );

    // --force reruns everything, with the same numbers.
    let forced = run(&SweepOptions {
        force: true,
        ..opts.clone()
    })
    .unwrap();
    assert_eq!((forced.ran, forced.resumed), (4, 0));
    assert_eq!(std::fs::read_to_string(&report_path).unwrap(), report);

    // The sweep's experiment for TensorBoard's HParams dashboard, at the runs' root.
    assert!(runs.join(vgrad_sweep::hparams::EXPERIMENT_FILE).is_file());

    // Runs of the older flat layout (`<point>_seed-<n>_<hash>`, as the committed runs
    // are): resumed, not retrained, and reported with the same numbers.
    for scenario in ["sigmoid", "relu"] {
        for run in std::fs::read_dir(runs.join(scenario)).unwrap() {
            let run = run.unwrap().path();
            let name = run.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::rename(&run, runs.join(format!("{scenario}_{name}"))).unwrap();
        }
        std::fs::remove_dir(runs.join(scenario)).unwrap();
    }
    let flat = run(&opts).unwrap();
    assert_eq!((flat.ran, flat.resumed), (0, 4));
    let flat_report = std::fs::read_to_string(&report_path).unwrap();
    for scenario in ["sigmoid", "relu"] {
        assert_eq!(row(&flat_report, scenario), row(&report, scenario));
    }
    assert!(
        flat_report.contains("`runs/tiny/<scenario>_seed-<n>_<config hash>/`")
            && report.contains("`runs/tiny/<scenario>/seed-<n>_<config hash>/`"),
        "{flat_report}"
    );
    assert!(!runs.join("sigmoid").exists());
}

#[test]
fn failed_runs_are_recorded_reported_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("broken.toml");
    std::fs::write(
        &experiment,
        "seeds = 2\n[base]\nsteps = 20\nlog_every = 10\n[axes]\ndata = [\"auto\", \"/no/such/mnist\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let opts = options(&out);
    assert_eq!(sweep(&experiment, &opts).unwrap().failed, 2);
    let report = std::fs::read_to_string(out.join("reports/broken.md")).unwrap();
    // 20 steps are too few to train: the runs finished, and collapsed or trained.
    let finished = row(&report, "data auto")[1].clone();
    assert!(!finished.contains("failed"), "{report}");
    assert!(
        report.contains("| data /no/such/mnist | 0 trained, 2 failed |"),
        "{report}"
    );
    assert!(
        report.contains("failed: ") && report.contains("/no/such/mnist: no such folder"),
        "{report}"
    );
    // Folders are named relative to the output folder, not with this machine's paths.
    assert!(
        report.contains("- `runs/broken/data--no-such-mnist/seed-0_"),
        "{report}"
    );
    assert!(!report.contains(dir.path().to_str().unwrap()), "{report}");
    let failed = std::fs::read_dir(out.join("runs/broken/data--no-such-mnist"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("error.txt").is_file())
        .count();
    assert_eq!(failed, 2);
    // A rerun retries the failed runs (and only those).
    let again = sweep(&experiment, &opts).unwrap();
    assert_eq!((again.failed, again.ran, again.resumed), (2, 0, 2));
}

#[test]
fn a_diverged_run_is_listed_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("wild.toml");
    // At learning rate 4e5, seed 4 diverges at step 4 and seed 3 does not.
    std::fs::write(
        &experiment,
        "seeds = [3, 4]\n[base]\nactivation = \"relu\"\nsteps = 40\nlog_every = 10\n[axes]\nlr = [0.001, 4e5]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let outcome = sweep(&experiment, &options(&out)).unwrap();
    assert_eq!((outcome.ran, outcome.failed), (4, 0));
    let report = std::fs::read_to_string(out.join("reports/wild.md")).unwrap();
    let calm = row(&report, "lr 0.001");
    assert!(
        !calm[1].contains("diverged") && !calm[1].contains("failed"),
        "{report}"
    );
    assert!(
        row(&report, "lr 400000")[1].ends_with(", 1 diverged"),
        "{report}"
    );
    assert!(
        report.contains("1 run diverged: 1 of 2 of **lr 400000**"),
        "{report}"
    );
    assert!(
        report.contains("lr-400000/seed-4_") && report.contains(": diverged at step 4"),
        "{report}"
    );
}

#[test]
fn a_sweep_on_device_auto_finds_its_runs_again() {
    // The run records the device it used, but its folder is named from the configuration
    // the sweep asked for: a rerun must find it.
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("auto.toml");
    std::fs::write(
        &experiment,
        "seeds = 1\n[base]\nsteps = 20\nlog_every = 10\ndevice = \"auto\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let first = sweep(&experiment, &options(&out)).unwrap();
    assert_eq!((first.ran, first.failed), (1, 0));
    let again = sweep(&experiment, &options(&out)).unwrap();
    assert_eq!((again.ran, again.resumed), (0, 1));
    let report = std::fs::read_to_string(out.join("reports/auto.md")).unwrap();
    assert!(report.contains("| device | auto |"), "{report}");
    assert!(report.contains("All 1 runs finished."), "{report}");
}

#[test]
fn a_report_of_a_sweep_without_results_is_refused_and_the_old_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("empty.toml");
    std::fs::write(&experiment, "seeds = 2\n[axes]\nlayers = [3, 4]\n").unwrap();
    let out = dir.path().join("out");
    let committed = out.join("reports/empty.md");
    std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
    std::fs::write(&committed, "a committed report\n").unwrap();
    let sweep = vgrad_sweep::Sweep::load(&experiment, &Default::default()).unwrap();
    let err = vgrad_report::write_report(&sweep, &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no run of `empty` has a result")
            && err.contains("run `cargo xtask sweep empty` first"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&committed).unwrap(),
        "a committed report\n"
    );
}
