//! `vgrad train --model cnn`: a convolutional network trains on MNIST, its records have
//! every convolution's statistics (without the dense chain's chi_1 and Jacobians), and its
//! summary the fit after training.

#![forbid(unsafe_code)]

use vgrad_tests::{metrics, summary_json, vgrad_train};

#[test]
fn a_convolutional_network_learns_and_is_probed_layer_by_layer() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cnn");
    let runs = vgrad_train(&[
        "--model",
        "cnn",
        "--layers",
        "6",
        "--width",
        "8",
        "--activation",
        "relu",
        "--init",
        "he-normal",
        "--norm",
        "batch",
        "--batch-size",
        "32",
        "--steps",
        "200",
        "--lr",
        "0.003",
        "--log-every",
        "50",
        "--out",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    let summary = &runs[0].1;
    // A guess gets 10%; 200 steps of a small convolutional network get well past it (86%
    // with seed 0 on 2026-12-06).
    assert!(summary.test_acc > 0.5, "{}", summary.test_acc);
    let (loss, acc) = (summary.train_loss.unwrap(), summary.train_acc.unwrap());
    assert!(loss > 0.0 && loss < 2.3 && acc > 0.5, "{loss} {acc}");
    assert_eq!(summary.chi1_theory, None);
    let file = summary_json(&dir).unwrap();
    assert_eq!(file["train_loss"].as_f64(), Some(loss));
    let lines = metrics(&dir).unwrap();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        let layers = line["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 6);
        for (l, layer) in layers.iter().enumerate() {
            assert!(layer["grad_mean_abs"].as_f64().unwrap() > 0.0, "{layer}");
            assert!(layer["delta_mean_abs"].as_f64().unwrap() > 0.0, "{layer}");
            assert!(layer.get("chi1").is_none_or(|c| c.is_null()), "{layer}");
            assert!(layer.get("jacobian").is_none_or(|j| j.is_null()));
            // Hidden layers: what the activation reads, per channel.
            assert_eq!(layer.get("dead_frac").is_some_and(|d| !d.is_null()), l < 5);
        }
        // The weight histograms count every entry of the [9 x in, out] matrices: the stem
        // reads 1 channel, then 8 channels at 14 x 14, 16 at 7 x 7 (layers 4 and 5), the
        // output 16 pooled channels.
        let counts: Vec<u64> = layers
            .iter()
            .map(|l| l["grad_hist"]["num"].as_u64().unwrap())
            .collect();
        assert_eq!(counts, [9 * 8, 72 * 8, 72 * 8, 72 * 16, 144 * 16, 16 * 10]);
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"], "cnn");
}

#[test]
fn a_convolutional_network_refuses_the_jacobian_probe_and_too_few_layers() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cnn");
    for (args, wording) in [
        (
            &["--probe", "jacobian"][..],
            "--probe jacobian is not available with --model cnn",
        ),
        (
            &["--layers", "2"][..],
            "--model cnn needs --layers of at least 3",
        ),
    ] {
        let mut all = vec!["--model", "cnn", "--out", dir.to_str().unwrap()];
        all.extend(args);
        let err = vgrad_train(&all).unwrap_err().to_string();
        assert!(err.contains(wording), "{err}");
    }
}
