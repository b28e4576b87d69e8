//! `vgrad train --model rnn | lstm | gru`: recurrent networks train on MNIST rows and on
//! the adding problem, their records follow the error through time, ensemble members are
//! their solo runs bit for bit, and settings that do not fit say so.

#![forbid(unsafe_code)]

use vgrad_tests::{metrics, summary_json, vgrad_train};

/// The flags of a small recurrent run of `model` into `out`, then `more`.
fn flags<'a>(model: &'a str, out: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--model",
        model,
        "--activation",
        "tanh",
        "--layers",
        "2",
        "--out",
        out,
    ];
    args.extend(more);
    args
}

#[test]
fn an_lstm_learns_mnist_rows_and_its_error_is_followed_through_28_steps() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("lstm");
    let more = [
        "--width",
        "16",
        "--batch-size",
        "32",
        "--steps",
        "120",
        "--lr",
        "0.01",
        "--log-every",
        "40",
        "--eval-every",
        "80",
        "--forget-bias",
        "1",
    ];
    let runs = vgrad_train(&flags("lstm", dir.to_str().unwrap(), &more)).unwrap();
    let summary = &runs[0].1;
    // A guess gets 10%; 120 steps of a small LSTM get past it (66% with seed 0 on
    // 2026-12-06).
    assert!(summary.test_acc > 0.2, "{}", summary.test_acc);
    assert!(summary.train_loss.is_some() && summary.test_mse.is_none());
    // The error factor is per time step: defined, with its regime.
    assert!(summary.error_factor_start > 0.0 && summary.regime_start.is_some());
    let lines = metrics(&dir).unwrap();
    assert_eq!(lines.len(), 3);
    // The validation accuracy at the steps --eval-every names.
    let evaluated: Vec<bool> = lines.iter().map(|l| l["val_acc"].is_number()).collect();
    assert_eq!(evaluated, [true, false, true]);
    for line in &lines {
        assert_eq!(line["layers"].as_array().unwrap().len(), 0);
        let time = &line["time"];
        let steps = time["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 28);
        for (t, s) in steps.iter().enumerate() {
            assert_eq!(s["t"].as_u64(), Some(t as u64 + 1));
            assert!(s["delta_l2"].as_f64().unwrap() > 0.0, "{s}");
            assert!(s["carry_gate_mean"].as_f64().is_some(), "{s}");
        }
        let gates: Vec<&str> = time["gates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["gate"].as_str().unwrap())
            .collect();
        assert_eq!(gates, ["i", "f", "o"]);
        assert_eq!(time["recurrent"]["blocks"].as_array().unwrap().len(), 4);
        // Only the vanilla RNN has Pascanu et al.'s Jacobians.
        assert!(time.get("jacobians").is_none());
    }
    // The forget bias of 1 opens the forget gate at step 0: sigmoid(1) = 0.731.
    let forget = lines[0]["time"]["gates"][1]["mean"].as_f64().unwrap();
    assert!((forget - 0.731).abs() < 0.02, "{forget}");
}

#[test]
fn the_adding_problem_is_scored_by_its_error_and_members_are_their_solo_runs() {
    let out = tempfile::tempdir().unwrap();
    let base = [
        "--task",
        "adding",
        "--sequence-length",
        "6",
        "--width",
        "8",
        "--batch-size",
        "16",
        "--steps",
        "40",
        "--log-every",
        "20",
        "--clip-norm",
        "1",
    ];
    let ensemble_dir = out.path().join("ensemble");
    let mut args = flags("gru", ensemble_dir.to_str().unwrap(), &base);
    args.extend(["--seeds", "2,5"]);
    let ensemble = vgrad_train(&args).unwrap();
    for (seed, (path, summary)) in [2u64, 5].iter().zip(&ensemble) {
        let alone_dir = out.path().join(format!("alone-{seed}"));
        let seed_arg = seed.to_string();
        let mut args = flags("gru", alone_dir.to_str().unwrap(), &base);
        args.extend(["--seed", &seed_arg]);
        let alone = vgrad_train(&args).unwrap();
        let read = |p: &std::path::Path| std::fs::read(p.join("metrics.jsonl")).unwrap();
        assert_eq!(read(path), read(&alone_dir), "seed {seed}");
        let mse = summary.test_mse.unwrap();
        assert_eq!(mse.to_bits(), alone[0].1.test_mse.unwrap().to_bits());
        // Scored as a regression: its class, no accuracy class.
        assert!(mse > 0.0 && mse < 1.0, "{mse}");
        assert!(summary.regression_outcome.is_some() && summary.outcome.is_none());
        assert!(summary.clipped_frac.is_some());
        let file = summary_json(path).unwrap();
        assert!(file["test_acc"].is_null(), "{file}");
        let lines = metrics(path).unwrap();
        assert_eq!(lines[0]["time"]["steps"].as_array().unwrap().len(), 6);
        assert!(lines[0]["train_acc"].is_null());
    }
}

#[test]
fn the_vanilla_rnn_measures_its_jacobians_at_the_first_and_last_logged_step() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("rnn");
    let more = [
        "--task",
        "adding",
        "--sequence-length",
        "10",
        "--width",
        "8",
        "--batch-size",
        "8",
        "--steps",
        "50",
        "--log-every",
        "20",
        "--recurrent-init",
        "orthogonal:1.2",
    ];
    vgrad_train(&flags("rnn", dir.to_str().unwrap(), &more)).unwrap();
    let lines = metrics(&dir).unwrap();
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 20, 40]);
    let jacobians: Vec<bool> = lines
        .iter()
        .map(|l| l["time"].get("jacobians").is_some())
        .collect();
    assert_eq!(jacobians, [true, false, true]);
    let j = &lines[0]["time"]["jacobians"];
    let (norm, bound) = (
        j["norm_per_step"].as_f64().unwrap(),
        j["bound_per_step"].as_f64().unwrap(),
    );
    // Orthogonal blocks times 1.2: sigma_max(W_h) = 1.2 bounds every step's norm.
    assert!((bound - 1.2).abs() < 1e-5, "{bound}");
    assert!(norm > 0.0 && norm <= bound, "{norm} {bound}");
}

#[test]
fn settings_that_do_not_fit_a_recurrent_network_are_refused_by_name() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("x");
    let dir = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--model", "lstm", "--out", dir],
            "--model lstm needs --activation tanh (the cell's nonlinearity; the gates are \
             sigmoids), got sigmoid",
        ),
        (
            &["--model", "gru", "--activation", "tanh", "--out", dir],
            "--model gru needs --layers 2 (one recurrent layer of --width units and the \
             readout), got 6",
        ),
        (
            &["--task", "adding", "--sequence-length", "5", "--out", dir],
            "--task adding needs a recurrent --model (rnn, lstm or gru), got mlp",
        ),
        (
            &[
                "--model",
                "rnn",
                "--activation",
                "tanh",
                "--layers",
                "2",
                "--forget-bias",
                "1",
                "--out",
                dir,
            ],
            "--forget-bias is the LSTM's; --model rnn has no forget gate",
        ),
    ];
    for (args, want) in cases {
        let err = vgrad_train(args).unwrap_err().to_string();
        assert_eq!(err, want, "{args:?}");
    }
    assert!(!std::path::Path::new(dir).exists(), "nothing written");
}
