//! `vgrad train` end to end on the real, vendored MNIST.

#![forbid(unsafe_code)]

use vgrad_record::RunStatus;
use vgrad_tests::{geometric_mean, metrics, summary_json, vgrad_train};

#[test]
fn a_short_run_learns_and_writes_its_three_files() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("relu");
    let runs = vgrad_train(&[
        "--activation",
        "relu",
        "--steps",
        "400",
        "--log-every",
        "100",
        "--out",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(runs.len(), 1);
    let (path, summary) = &runs[0];
    assert_eq!(path, &dir);

    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["activation"], "relu");
    assert_eq!(config["layers"], 6);
    assert_eq!(config["batch_size"], 30);
    assert_eq!(config["lr"], 1e-3);

    let lines = metrics(&dir).unwrap();
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 100, 200, 300]);
    for line in &lines {
        let layers = line["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 6);
        for (i, layer) in layers.iter().enumerate() {
            assert_eq!(layer["layer"], i + 1);
            for key in [
                "grad_mean_abs",
                "grad_l2",
                "grad_std",
                "grad_max_abs",
                "weight_mean_abs",
                "weight_l2",
                "delta_mean_abs",
            ] {
                assert!(
                    layer[key].as_f64().unwrap() > 0.0,
                    "{key} of layer {}",
                    i + 1
                );
            }
            assert_eq!(layer["grad_hist"]["num"], layer["weight_hist"]["num"]);
            assert_eq!(layer["dead_frac"].is_null(), i == 5);
            if i < 5 {
                let d = layer["deriv_mean"].as_f64().unwrap();
                let off = layer["inactive_frac"].as_f64().unwrap();
                // ReLU: the derivative is 1 where a unit is on and 0 where it is off.
                assert!((d + off - 1.0).abs() < 1e-9, "layer {}: {d} + {off}", i + 1);
            } else {
                assert!(layer["deriv_mean"].is_null() && layer["inactive_frac"].is_null());
            }
        }
    }
    let first = lines[0]["loss"].as_f64().unwrap();
    let last = lines[3]["loss"].as_f64().unwrap();
    // ln(10) = 2.30 is the loss of a uniform guess.
    assert!(first > 2.0 && last < 1.5, "loss {first} -> {last}");

    let s = summary_json(&dir).unwrap();
    assert_eq!(s["status"], "ok");
    assert!(summary.test_acc > 0.6, "test accuracy {}", summary.test_acc);
    // The classes every reader uses are recorded with the numbers they come from.
    assert_eq!(s["outcome"], "trained");
    let factor = s["error_factor_start"].as_f64().unwrap();
    let regime = vgrad_record::Regime::of(factor).unwrap();
    assert_eq!(s["regime_start"], regime.name());
    let first: vgrad_record::StepRecord = serde_json::from_value(lines[0].clone()).unwrap();
    assert_eq!(vgrad_record::class::error_factor(&first), Some(factor));
    assert_eq!(s["test_acc"].as_f64().unwrap(), summary.test_acc);
    for key in [
        "val_acc",
        "decay_ratio",
        "layer_factor",
        "delta_decay_ratio",
        "wall_s",
        "steps_per_s",
    ] {
        assert!(s[key].as_f64().unwrap() > 0.0, "{key}");
    }
    // A logged step also runs the probe and writes the records.
    let (plain, logged) = (
        s["step_us"].as_f64().unwrap(),
        s["logged_step_us"].as_f64().unwrap(),
    );
    assert!(
        plain > 0.0 && logged > plain,
        "steps {plain} us, logged {logged} us"
    );
    assert_eq!(s["grad_mean_abs"].as_array().unwrap().len(), 6);
    assert_eq!(s["delta_mean_abs"].as_array().unwrap().len(), 6);
    let ratio = s["grad_mean_abs"][5].as_f64().unwrap() / s["grad_mean_abs"][0].as_f64().unwrap();
    assert!((ratio - summary.profile.decay_ratio).abs() < 1e-12 * ratio);
}

#[test]
fn ensemble_members_are_bit_identical_to_single_runs() {
    let out = tempfile::tempdir().unwrap();
    let base = [
        "--activation",
        "leaky-relu:0.2",
        "--steps",
        "120",
        "--log-every",
        "40",
    ];
    let ensemble_dir = out.path().join("ensemble");
    let mut args = base.to_vec();
    args.extend(["--seeds", "3,1,4", "--out", ensemble_dir.to_str().unwrap()]);
    let ensemble = vgrad_train(&args).unwrap();
    assert_eq!(ensemble.len(), 3);
    for (seed, (path, summary)) in [3u64, 1, 4].iter().zip(&ensemble) {
        assert_eq!(path, &ensemble_dir.join(format!("seed-{seed}")));
        let alone_dir = out.path().join(format!("alone-{seed}"));
        let mut args = base.to_vec();
        let seed_arg = seed.to_string();
        args.extend(["--seed", &seed_arg, "--out", alone_dir.to_str().unwrap()]);
        let alone = vgrad_train(&args).unwrap();
        let read = |p: &std::path::Path, f: &str| std::fs::read(p.join(f)).unwrap();
        assert_eq!(
            read(path, "metrics.jsonl"),
            read(&alone_dir, "metrics.jsonl"),
            "seed {seed}"
        );
        assert_eq!(
            read(path, "config.json"),
            read(&alone_dir, "config.json"),
            "seed {seed}"
        );
        let alone = &alone[0].1;
        assert_eq!(summary.ensemble_size, 3);
        assert_eq!(alone.ensemble_size, 1);
        assert_eq!(summary.test_acc.to_bits(), alone.test_acc.to_bits());
        assert_eq!(summary.val_acc.to_bits(), alone.val_acc.to_bits());
        assert_eq!(summary.profile, alone.profile);
    }
    // Different seeds really are different runs.
    assert_ne!(ensemble[0].1.profile, ensemble[1].1.profile);
}

#[test]
fn sigmoid_gradients_decay_more_than_relu_gradients() {
    let out = tempfile::tempdir().unwrap();
    let ratios = |activation: &str| -> Vec<f64> {
        let dir = out.path().join(activation);
        vgrad_train(&[
            "--activation",
            activation,
            "--seeds",
            "0-3",
            "--steps",
            "600",
            "--log-every",
            "100",
            "--out",
            dir.to_str().unwrap(),
        ])
        .unwrap()
        .iter()
        .map(|(_, s)| s.profile.decay_ratio)
        .collect()
    };
    let sigmoid = ratios("sigmoid");
    let relu = ratios("relu");
    let (gs, gr) = (geometric_mean(&sigmoid), geometric_mean(&relu));
    assert!(
        gs > 2.0 * gr,
        "sigmoid {sigmoid:?} (geometric mean {gs}) vs relu {relu:?} ({gr})"
    );
    assert!(
        sigmoid.iter().all(|s| relu.iter().all(|r| s > r)),
        "sigmoid {sigmoid:?} vs relu {relu:?}"
    );
}

#[test]
fn a_diverged_member_is_recorded_and_frozen_and_the_others_are_unaffected() {
    let out = tempfile::tempdir().unwrap();
    // Learning rate 4e5: seed 4 blows up at step 4, seed 11 at step 3, seed 3 survives.
    let base = [
        "--activation",
        "relu",
        "--lr",
        "4e5",
        "--steps",
        "60",
        "--log-every",
        "2",
    ];
    let ensemble_dir = out.path().join("ensemble");
    let mut args = base.to_vec();
    args.extend(["--seeds", "3,4,11", "--out", ensemble_dir.to_str().unwrap()]);
    let ensemble = vgrad_train(&args).unwrap();
    let status: Vec<RunStatus> = ensemble.iter().map(|(_, s)| s.status).collect();
    assert_eq!(
        status,
        vec![
            RunStatus::Ok,
            RunStatus::Diverged { step: 4 },
            RunStatus::Diverged { step: 3 }
        ]
    );

    let diverged = summary_json(&ensemble_dir.join("seed-4")).unwrap();
    assert_eq!(diverged["status"], "diverged");
    assert_eq!(diverged["diverged_at_step"], 4);
    assert!(diverged["test_acc"].is_null(), "{diverged}");
    let steps: Vec<u64> = metrics(&ensemble_dir.join("seed-4"))
        .unwrap()
        .iter()
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        vec![0, 2],
        "no step is logged from the divergence on"
    );

    for (seed, (path, summary)) in [3u64, 4].iter().zip(&ensemble) {
        let alone_dir = out.path().join(format!("alone-{seed}"));
        let mut args = base.to_vec();
        let seed_arg = seed.to_string();
        args.extend(["--seed", &seed_arg, "--out", alone_dir.to_str().unwrap()]);
        let alone = &vgrad_train(&args).unwrap()[0].1;
        let read = |p: &std::path::Path| std::fs::read(p.join("metrics.jsonl")).unwrap();
        assert_eq!(read(path), read(&alone_dir), "seed {seed}");
        assert_eq!(alone.status, summary.status);
        assert_eq!(
            alone.test_acc.to_bits(),
            summary.test_acc.to_bits(),
            "seed {seed}"
        );
        assert_eq!(alone.profile, summary.profile);
    }
}

#[test]
fn the_device_selftest_passes_on_the_cpu_and_reports_a_missing_gpu_clearly() {
    use clap::Parser;
    let cli = |device: &str| {
        vgrad_cli::args::Cli::try_parse_from([
            "vgrad", "selftest", "--device", device, "--steps", "20",
        ])
        .unwrap()
    };
    vgrad_cli::run(cli("cpu")).unwrap();
    if !candle_core::utils::cuda_is_available() {
        let err = format!("{:#}", vgrad_cli::run(cli("cuda")).unwrap_err());
        assert!(err.contains("built without CUDA"), "{err}");
    }
}

#[test]
fn the_fused_cpu_ops_train_like_candles_plain_ops() {
    use candle_core::Device;
    use vgrad_model::Kernels;
    use vgrad_record::{DataSource, RunConfig, VALIDATION_EXAMPLES};
    use vgrad_train::{Discard, Trainer};
    let data = vgrad_train::data::load(&DataSource::Auto)
        .unwrap()
        .split(VALIDATION_EXAMPLES)
        .unwrap();
    let settings = [
        ("relu", "adam", "none", false),
        ("leaky-relu:0.2", "adam", "none", false),
        ("sigmoid", "adam", "none", false),
        ("relu", "sgd", "none", false),
        ("sigmoid", "momentum:0.9", "batch", false),
        ("selu", "momentum:0.5", "layer", true),
    ];
    for (activation, optimizer, norm, residual) in settings {
        let cfg = RunConfig {
            activation: activation.parse().unwrap(),
            optimizer: optimizer.parse().unwrap(),
            lr: if optimizer == "adam" { 1e-3 } else { 0.05 },
            norm: norm.parse().unwrap(),
            residual,
            steps: 200,
            log_every: 50,
            ..RunConfig::default()
        };
        let activation = format!("{activation} {optimizer} {norm} residual={residual}");
        let run = |kernels| {
            Trainer::new(&cfg, &[0, 1], &data, &Device::Cpu, kernels)
                .unwrap()
                .run(&mut Discard)
                .unwrap()
        };
        let (fused, plain) = (run(Kernels::Fused), run(Kernels::Candle));
        for (f, p) in fused.iter().zip(&plain) {
            // The same weights and batch: the first step's statistics are bit-identical,
            // all but the update ratios, which the two optimizer paths round differently.
            let before_update = |r: &vgrad_record::StepRecord| {
                let mut r = r.clone();
                for layer in &mut r.layers {
                    layer.update_ratio = None;
                    layer.bias_update_ratio = None;
                }
                r
            };
            assert_eq!(
                before_update(&f.records[0]),
                before_update(&p.records[0]),
                "{activation}"
            );
            // Later the bias gradient's summation order and the optimizer's float ops
            // differ.
            for (a, b) in f.records.iter().zip(&p.records).skip(1) {
                let close =
                    |x: f64, y: f64| (x - y).abs() <= 1e-3 * x.abs().max(y.abs()).max(1e-12);
                assert!(
                    close(a.loss, b.loss),
                    "{activation} step {}: loss {} vs {}",
                    a.step,
                    a.loss,
                    b.loss
                );
                for (la, lb) in a.layers.iter().zip(&b.layers) {
                    assert!(
                        close(la.grad_mean_abs, lb.grad_mean_abs),
                        "{activation} step {} layer {}",
                        a.step,
                        la.layer
                    );
                    assert!(
                        close(la.delta_mean_abs, lb.delta_mean_abs),
                        "{activation} step {} layer {}",
                        a.step,
                        la.layer
                    );
                }
            }
            assert!(
                (f.test_acc - p.test_acc).abs() < 0.01,
                "{activation}: {} vs {}",
                f.test_acc,
                p.test_acc
            );
        }
    }
}

#[test]
fn runs_share_the_decompressed_data_in_the_cache_folder_vgrad_cache_names() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // Where the cache would be without VGRAD_CACHE: never written here.
    let xdg = cache.path().join("xdg");
    let train = |name: &str, cache: &str| {
        let dir = out.path().join(name);
        let status = std::process::Command::new(vgrad_tests::vgrad_bin())
            .args(["train", "--steps", "2", "--no-tensorboard", "--out"])
            .arg(&dir)
            .env("VGRAD_CACHE", cache)
            .env("XDG_CACHE_HOME", &xdg)
            .status()
            .unwrap();
        assert!(status.success());
        // What the data decides: accuracies on the held-out and test images, the loss
        // and the gradients of the batches drawn.
        let summary = summary_json(&dir).unwrap();
        let numbers =
            ["val_acc", "test_acc", "final_loss", "grad_mean_abs"].map(|key| summary[key].clone());
        assert!(numbers.iter().all(|v| !v.is_null()), "{summary}");
        numbers
    };
    let folder = cache.path().join("mnist");
    let first = train("first", folder.to_str().unwrap());
    // The four files, decompressed: 60,000 + 10,000 images and their labels.
    let mut sizes: Vec<u64> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    sizes.sort();
    assert_eq!(sizes, [10_008, 60_008, 7_840_016, 47_040_016]);
    // Read back from there, the same numbers.
    assert_eq!(train("second", folder.to_str().unwrap()), first);
    // Set but empty: no cache at all, not even the default one.
    assert_eq!(train("off", ""), first);
    assert!(!xdg.exists());
}

#[test]
fn the_hidden_chains_spectrum_is_recorded_where_the_jacobian_is_probed() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("chain");
    vgrad_train(&[
        "--activation",
        "tanh",
        "--width",
        "16",
        "--init",
        "orthogonal",
        "--steps",
        "20",
        "--log-every",
        "10",
        "--out",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    let lines = metrics(&dir).unwrap();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let chain = &line["chain"];
        // The probe's 8 examples, 16 singular values each.
        assert_eq!(chain["examples"].as_u64(), Some(8), "{chain}");
        assert_eq!(chain["units"].as_u64(), Some(16), "{chain}");
        assert_eq!(chain["hist"]["num"].as_u64(), Some(128), "{chain}");
        let near = chain["near_one"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&near), "{chain}");
        assert!(chain["max"].as_f64().unwrap() >= chain["median"].as_f64().unwrap());
    }
}
