//! The remedies and optimizers of issue 11, and the signal-propagation settings of the
//! edge-of-chaos issue (variance init, bias variance, clipping, warm-up, early logging),
//! in `vgrad train`, and the convolutional network: each setting trains, is recorded, and keeps ensemble members
//! bit-identical to solo runs.

#![forbid(unsafe_code)]

use vgrad_tests::{metrics, vgrad_train};

/// Each setting under test, as the flags that turn it on.
const SETTINGS: [&[&str]; 17] = [
    &["--norm", "batch"],
    &["--norm", "layer", "--activation", "relu"],
    &["--residual", "--activation", "tanh"],
    &["--residual", "--norm", "batch", "--activation", "relu"],
    &["--optimizer", "sgd", "--lr", "0.1"],
    &[
        "--optimizer",
        "momentum:0.9",
        "--lr",
        "0.01",
        "--activation",
        "relu",
    ],
    &["--init", "orthogonal:1.4142", "--activation", "relu"],
    &["--init", "orthogonal"],
    &["--init", "standard"],
    &["--activation", "softsign"],
    &["--activation", "selu", "--init", "lecun-normal"],
    &[
        "--bias-variance",
        "0.05",
        "--init",
        "variance:1.75",
        "--activation",
        "tanh",
    ],
    &[
        "--clip-norm",
        "1",
        "--activation",
        "relu",
        "--init",
        "variance:8",
    ],
    &["--warmup-steps", "30", "--activation", "relu"],
    &[
        "--branch-scale",
        "skipinit",
        "--residual",
        "--activation",
        "relu",
    ],
    &[
        "--branch-scale",
        "inverse-sqrt-depth",
        "--residual",
        "--norm",
        "layer",
    ],
    &[
        "--model",
        "cnn",
        "--layers",
        "5",
        "--width",
        "3",
        "--activation",
        "relu",
        "--init",
        "he-normal",
        "--norm",
        "batch",
        "--residual",
    ],
];

#[test]
fn every_setting_trains_in_an_ensemble_bit_identical_to_solo_runs() {
    let out = tempfile::tempdir().unwrap();
    for (i, setting) in SETTINGS.iter().enumerate() {
        let base = [
            "--steps",
            "60",
            "--log-every",
            "20",
            "--eval-every",
            "40",
            "--no-tensorboard",
        ];
        let both = out.path().join(format!("{i}-both"));
        let alone = out.path().join(format!("{i}-alone"));
        let run = |extra: &[&str], dir: &std::path::Path| {
            let mut args: Vec<&str> = setting.to_vec();
            args.extend(base);
            args.extend(extra);
            args.extend(["--out", dir.to_str().unwrap()]);
            vgrad_train(&args).unwrap()
        };
        let ensemble = run(&["--seeds", "2,5"], &both);
        let solo = run(&["--seed", "5"], &alone);
        let read = |p: &std::path::Path, f: &str| std::fs::read(p.join(f)).unwrap();
        let member = &ensemble[1].0;
        assert_eq!(
            read(member, "metrics.jsonl"),
            read(&alone, "metrics.jsonl"),
            "{setting:?}"
        );
        assert_eq!(
            ensemble[1].1.test_acc.to_bits(),
            solo[0].1.test_acc.to_bits()
        );
        // Every setting is recorded in config.json under its name.
        let config: serde_json::Value =
            serde_json::from_slice(&read(&alone, "config.json")).unwrap();
        let field = setting[0].trim_start_matches("--").replace('-', "_");
        assert!(config.get(&field).is_some(), "{setting:?}: {config}");
        // Validation accuracy at steps 0 and 40, not at 20.
        let lines = metrics(&alone).unwrap();
        let val: Vec<bool> = lines.iter().map(|l| l.get("val_acc").is_some()).collect();
        assert_eq!(val, [true, false, true], "{setting:?}");
        assert!(solo[0].1.status.is_ok(), "{setting:?}");
    }
}

#[test]
fn batch_norm_evaluates_with_its_running_statistics_and_learns() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("bn");
    let runs = vgrad_train(&[
        "--norm",
        "batch",
        "--layers",
        "16",
        "--steps",
        "600",
        "--eval-every",
        "200",
        "--no-tensorboard",
        "--out",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    let summary = &runs[0].1;
    // A 16-layer sigmoid network does not learn in 600 steps without a remedy (about
    // 11%); with batch norm it does, and validation through the running averages agrees.
    assert!(summary.test_acc > 0.5, "{}", summary.test_acc);
    let lines = metrics(&dir).unwrap();
    let last = lines.last().unwrap()["val_acc"].as_f64().unwrap();
    assert!(last > 0.4 && (summary.val_acc - last).abs() < 0.3, "{last}");
    // What the sigmoid reads is standardised (then scaled and shifted): its median sits
    // near 0 at step 0, where scale and shift are 1 and 0.
    let p = &lines[0]["layers"][14]["preact"];
    assert!(p["p50"].as_f64().unwrap().abs() < 0.5, "{p}");
    assert!(
        p["p15"].as_f64().unwrap() < -0.5 && p["p85"].as_f64().unwrap() > 0.5,
        "{p}"
    );
}

/// `vgrad train` with `args` and the short schedule of these tests, into `dir`.
fn short_run(
    args: &[&str],
    dir: &std::path::Path,
) -> Vec<(std::path::PathBuf, vgrad_record::RunSummary)> {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--steps", "60", "--log-every", "20", "--no-tensorboard"]);
    all.extend(["--out", dir.to_str().unwrap()]);
    vgrad_train(&all).unwrap()
}

#[test]
fn a_network_built_to_explode_is_clipped_at_every_step_and_a_loose_bound_changes_nothing() {
    let out = tempfile::tempdir().unwrap();
    // ReLU at sigma_w^2 = 8: chi_1 = 4, the error's rms doubles at every layer toward the
    // input, and the gradient's norm is far above 1 all through 60 steps.
    let exploding = ["--activation", "relu", "--init", "variance:8"];
    let clipped = short_run(
        &[&exploding[..], &["--clip-norm", "1"]].concat(),
        &out.path().join("clipped"),
    );
    assert_eq!(clipped[0].1.clipped_frac, Some(1.0));
    let summary = vgrad_tests::summary_json(&out.path().join("clipped")).unwrap();
    assert_eq!(summary["clipped_frac"], 1.0);
    // A bound no step reaches clips nothing, and the run is the unclipped one, bit for bit.
    let loose = out.path().join("loose");
    let plain = out.path().join("plain");
    let never = short_run(&[&exploding[..], &["--clip-norm", "1e30"]].concat(), &loose);
    assert_eq!(never[0].1.clipped_frac, Some(0.0));
    let unclipped = short_run(&exploding, &plain);
    assert_eq!(unclipped[0].1.clipped_frac, None);
    assert_eq!(
        std::fs::read(loose.join("metrics.jsonl")).unwrap(),
        std::fs::read(plain.join("metrics.jsonl")).unwrap()
    );
    // Clipping changes the steps taken: the clipped run's loss after training differs.
    assert_ne!(
        clipped[0].1.final_loss.to_bits(),
        unclipped[0].1.final_loss.to_bits()
    );
}

#[test]
fn early_steps_are_logged_without_changing_the_run_or_its_summary() {
    let out = tempfile::tempdir().unwrap();
    let early = out.path().join("early");
    let grid = out.path().join("grid");
    let with = short_run(&["--activation", "relu", "--log-first", "5"], &early);
    let without = short_run(&["--activation", "relu"], &grid);
    let steps: Vec<u64> = metrics(&early)
        .unwrap()
        .iter()
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![0, 1, 2, 3, 4, 20, 40]);
    let (a, b) = (&with[0].1, &without[0].1);
    assert_eq!(a.test_acc.to_bits(), b.test_acc.to_bits());
    assert_eq!(a.final_loss.to_bits(), b.final_loss.to_bits());
    assert_eq!(
        a.profile, b.profile,
        "the summary reads the --log-every grid only"
    );
    assert_eq!(
        a.error_factor_training.to_bits(),
        b.error_factor_training.to_bits()
    );
}

#[test]
fn each_plain_run_records_the_phase_theory_puts_it_in() {
    let out = tempfile::tempdir().unwrap();
    let cases: [(&[&str], Option<&str>); 5] = [
        // Sigmoid at Glorot's variance: chi_1 about 0.06.
        (&["--activation", "sigmoid"], Some("ordered")),
        // tanh on the critical line's neighbourhood at sigma_b^2 = 0.05 (chi_1 0.998).
        (
            &[
                "--activation",
                "tanh",
                "--init",
                "variance:1.75",
                "--bias-variance",
                "0.05",
            ],
            Some("critical"),
        ),
        // ReLU at sigma_w^2 = 8: chi_1 = 4.
        (
            &[
                "--activation",
                "relu",
                "--init",
                "variance:8",
                "--clip-norm",
                "1",
            ],
            Some("chaotic"),
        ),
        // Skips add terms the theory leaves out: no phase.
        (&["--activation", "relu", "--residual"], None),
        // Orthogonal weights of sigma_w^2 = 1.05 with the theory's critical sigma_b^2.
        (
            &[
                "--activation",
                "tanh",
                "--init",
                "orthogonal:1.0246950766",
                "--bias-variance",
                "critical",
            ],
            Some("critical"),
        ),
    ];
    for (i, (flags, phase)) in cases.iter().enumerate() {
        let dir = out.path().join(i.to_string());
        short_run(flags, &dir);
        let summary = vgrad_tests::summary_json(&dir).unwrap();
        assert_eq!(summary["phase_start"].as_str(), *phase, "{flags:?}");
        assert_eq!(
            summary["chi1_theory"].is_number(),
            phase.is_some(),
            "{flags:?}"
        );
    }
    // `critical` is recorded as asked, and resolved to chi_1 = 1.
    let critical = vgrad_tests::summary_json(&out.path().join("4")).unwrap();
    let chi1 = critical["chi1_theory"].as_f64().unwrap();
    assert!((chi1 - 1.0).abs() < 1e-6, "{chi1}");
    let config = std::fs::read_to_string(out.path().join("4").join("config.json")).unwrap();
    assert!(
        config.contains("\"bias_variance\": \"critical\""),
        "{config}"
    );
}
