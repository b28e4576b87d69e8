//! The diagnostics of `vgrad train` on the real MNIST: each is recorded where it should
//! be, and the update ratio is the optimizer's step exactly.

#![forbid(unsafe_code)]

use vgrad_tests::{metrics, vgrad_train};

#[test]
fn under_sgd_the_update_ratio_is_the_learning_rate_times_the_gradient_over_the_weights() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sgd");
    vgrad_train(&[
        "--optimizer",
        "sgd",
        "--lr",
        "0.5",
        "--activation",
        "tanh",
        "--steps",
        "300",
        "--log-every",
        "100",
        "--no-tensorboard",
        "--out",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    for line in metrics(&dir).unwrap() {
        for layer in line["layers"].as_array().unwrap() {
            // W_after - W_before = -lr * dC/dW, and both norms were taken before the step.
            let f = |k: &str| layer[k].as_f64().unwrap();
            let want = 0.5 * f("grad_l2") / f("weight_l2");
            let got = f("update_ratio");
            assert!((got - want).abs() <= 1e-5 * want, "{got} vs {want}");
        }
        // Biases start at zero: no ratio at step 0, one afterwards.
        let bias = &line["layers"][0]["bias_update_ratio"];
        assert_eq!(bias.is_null(), line["step"] == 0, "{bias}");
    }
}

#[test]
fn every_diagnostic_is_recorded_where_it_belongs() {
    let out = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let dir = out.path().join(name);
        let mut args = vec!["--steps", "250", "--log-every", "100", "--no-tensorboard"];
        args.extend(extra);
        args.extend(["--out", dir.to_str().unwrap()]);
        vgrad_train(&args).unwrap();
        metrics(&dir).unwrap()
    };
    let lines = run("reference", &[]);
    for line in &lines {
        let net = &line["jacobian"];
        let (min, mean, max) = (
            net["min"].as_f64().unwrap(),
            net["mean"].as_f64().unwrap(),
            net["max"].as_f64().unwrap(),
        );
        assert!(0.0 <= min && min <= mean && mean <= max, "{net}");
        let layers = line["layers"].as_array().unwrap();
        for (i, layer) in layers.iter().enumerate() {
            let hidden = i + 1 < layers.len();
            for key in [
                "preact",
                "act",
                "preact_hist",
                "act_hist",
                "chi1",
                "jacobian",
            ] {
                assert_eq!(layer.get(key).is_some(), hidden, "layer {} {key}", i + 1);
            }
            assert!(layer["delta_mean_sq"].as_f64().unwrap() > 0.0);
            assert_eq!(layer["delta_hist"]["num"].as_u64().unwrap(), 300);
            if hidden {
                let p = &layer["preact"];
                let q = |k: &str| p[k].as_f64().unwrap();
                assert!(q("p15") <= q("p50") && q("p50") <= q("p85"), "{p}");
                // 30 examples x 10 units.
                assert_eq!(layer["act_hist"]["num"].as_u64().unwrap(), 300);
                // Sigmoid outputs lie in (0, 1).
                let a = &layer["act"];
                assert!(a["p15"].as_f64().unwrap() > 0.0 && a["p85"].as_f64().unwrap() < 1.0);
                assert!(layer["chi1"].as_f64().unwrap() > 0.0);
            }
        }
    }
    // --probe basic measures no Jacobian; a wide network measures it at step 0 only.
    let basic = run("basic", &["--probe", "basic"]);
    assert!(basic.iter().all(|l| l.get("jacobian").is_none()));
    let wide = run("wide", &["--width", "200", "--layers", "3"]);
    let probed: Vec<bool> = wide.iter().map(|l| l.get("jacobian").is_some()).collect();
    assert_eq!(probed, [true, false, false]);
}

#[test]
fn a_jacobian_the_fast_svd_gives_up_on_is_measured_the_slower_way_and_the_run_goes_on() {
    // Sigmoid under Adam at rate 1: by step 200 the weights make a Jacobian whose
    // bidiagonal the probe's own QR iteration does not converge on (the run used to stop
    // there with "the SVD of a Jacobian of member 0 did not converge").
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("wild");
    let runs = vgrad_train(&[
        "--optimizer",
        "adam",
        "--lr",
        "1",
        "--steps",
        "201",
        "--log-every",
        "200",
        "--no-tensorboard",
        "--out",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    assert!(runs[0].1.status.is_ok());
    let lines = metrics(&dir).unwrap();
    let net = &lines[1]["jacobian"];
    let (min, max) = (net["min"].as_f64().unwrap(), net["max"].as_f64().unwrap());
    assert!(0.0 <= min && min <= max && max > 0.0, "{net}");
}
