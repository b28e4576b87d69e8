//! The remedies and optimizers of issue 11 in `vgrad train`: each setting trains, is
//! recorded, and keeps ensemble members bit-identical to solo runs.

#![forbid(unsafe_code)]

use vgrad_tests::{metrics, vgrad_train};

/// Each setting under test, as the flags that turn it on.
const SETTINGS: [&[&str]; 11] = [
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
