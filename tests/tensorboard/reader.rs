//! A run's TensorBoard event file, read by TensorBoard's own `EventAccumulator` (through
//! `read_events.py` in the Python environment `cargo xtask test` prepares) and by ours,
//! against the run's `metrics.jsonl` and `summary.json`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use vgrad_tests::{metrics, summary_json, sweep, sweep_options, vgrad_train};

/// The Python with the `tensorboard` package: `$VGRAD_TB_PYTHON` (set by `cargo xtask
/// test`), else the workspace's `.venv`.
fn tensorboard_python() -> Option<PathBuf> {
    let python = std::env::var_os("VGRAD_TB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    python.is_file().then_some(python)
}

fn close(a: f64, b: f64) -> bool {
    // TensorBoard keeps scalars as f32.
    (a - b).abs() <= 1e-6 * b.abs().max(1e-30)
}

fn train(dir: &Path) {
    vgrad_train(&[
        "--force",
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
}

/// What `tests/tensorboard/<script>` (TensorBoard's own readers, run by `python`) prints
/// as JSON for `path`; the script's errors fail the test.
fn read_with(python: &Path, script: &str, path: &Path) -> Value {
    let output = Command::new(python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tensorboard")
                .join(script),
        )
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
#[cfg_attr(
    not(tensorboard_python),
    ignore = "no Python with tensorboard: `cargo xtask test` prepares one in .venv"
)]
fn tensorboard_reads_every_scalar_and_histogram_we_logged() {
    let python = tensorboard_python().expect("the build script found a Python with tensorboard");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(&run);
    let tb = read_with(&python, "read_events.py", &run);
    assert_eq!(tb["file_version"], 2.0);

    let scalar = |tag: &str| -> Vec<(u64, f64)> {
        tb["scalars"][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no scalar {tag}"))
            .iter()
            .map(|e| (e[0].as_u64().unwrap(), e[1].as_f64().unwrap()))
            .collect()
    };
    let lines = metrics(&run).unwrap();
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 100, 200, 300]);
    let check = |tag: &str, want: &dyn Fn(&Value) -> Option<f64>| {
        let got = scalar(tag);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), steps, "{tag}");
        for ((_, value), line) in got.iter().zip(&lines) {
            let want = want(line).unwrap();
            assert!(
                close(*value, want),
                "{tag}: TensorBoard {value} vs metrics {want}"
            );
        }
    };
    check("loss", &|l| l["loss"].as_f64());
    check("train_acc", &|l| l["train_acc"].as_f64());
    for stat in ["mean", "min", "max"] {
        check(&format!("jacobian_net_{stat}"), &|l| {
            l["jacobian"][stat].as_f64()
        });
    }
    for k in 1..=6usize {
        // The reference measure, first in TensorBoard's order of tag groups.
        check(&format!("1_grad_mean_abs/layer{k}"), &|l| {
            l["layers"][k - 1]["grad_mean_abs"].as_f64()
        });
        assert!(tb["scalars"][format!("grad_mean_abs/layer{k}")].is_null());
        for stat in [
            "grad_l2",
            "grad_std",
            "grad_max_abs",
            "weight_mean_abs",
            "weight_l2",
            "delta_mean_abs",
            "delta_mean_sq",
            "update_ratio",
        ] {
            check(&format!("{stat}/layer{k}"), &|l| {
                l["layers"][k - 1][stat].as_f64()
            });
        }
        if k < 6 {
            for stat in ["dead_frac", "deriv_mean", "inactive_frac", "chi1"] {
                check(&format!("{stat}/layer{k}"), &|l| {
                    l["layers"][k - 1][stat].as_f64()
                });
            }
            for (prefix, key) in [
                ("preact", "preact"),
                ("act", "act"),
                ("jacobian", "jacobian"),
            ] {
                let stats: &[&str] = if key == "jacobian" {
                    &["mean", "min", "max"]
                } else {
                    &["mean", "std", "p15", "p50", "p85"]
                };
                for stat in stats {
                    check(&format!("{prefix}_{stat}/layer{k}"), &|l| {
                        l["layers"][k - 1][key][stat].as_f64()
                    });
                }
            }
        } else {
            assert!(
                tb["scalars"]["dead_frac/layer6"].is_null(),
                "the output layer has no dead units"
            );
        }
        let hists: &[(&str, &str)] = if k < 6 {
            &[
                ("grad_hist", "grad_hist"),
                ("weight_hist", "weight_hist"),
                ("delta_hist", "delta_hist"),
                ("preactivation_hist", "preact_hist"),
                ("activation_hist", "act_hist"),
            ]
        } else {
            &[
                ("grad_hist", "grad_hist"),
                ("weight_hist", "weight_hist"),
                ("delta_hist", "delta_hist"),
            ]
        };
        for &(tb_name, hist) in hists {
            let tag = format!("{tb_name}/layer{k}");
            let events = tb["histograms"][&tag]
                .as_array()
                .unwrap_or_else(|| panic!("no histogram {tag}"));
            assert_eq!(events.len(), steps.len(), "{tag}");
            for (event, line) in events.iter().zip(&lines) {
                let ours = &line["layers"][k - 1][hist];
                let theirs = &event[1];
                for key in ["min", "max", "num", "sum", "sum_squares"] {
                    assert_eq!(theirs[key].as_f64(), ours[key].as_f64(), "{tag} {key}");
                }
                let counts: Vec<f64> = theirs["bucket"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_f64().unwrap())
                    .collect();
                let nonzero_ours: Vec<f64> = ours["counts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_f64().unwrap())
                    .filter(|c| *c > 0.0)
                    .collect();
                let nonzero_theirs: Vec<f64> =
                    counts.iter().copied().filter(|c| *c > 0.0).collect();
                assert_eq!(nonzero_theirs, nonzero_ours, "{tag} buckets");
            }
        }
    }
    // Weights and gradients are different histograms.
    assert_ne!(
        tb["histograms"]["grad_hist/layer1"],
        tb["histograms"]["weight_hist/layer1"]
    );
    let summary = summary_json(&run).unwrap();
    for tag in [
        "test_acc",
        "decay_ratio",
        "delta_decay_ratio",
        "error_factor_start",
        "error_factor_training",
    ] {
        let got = scalar(tag);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 400, "{tag} is logged at the last step");
        assert!(close(got[0].1, summary[tag].as_f64().unwrap()), "{tag}");
    }
}

#[test]
fn our_reader_finds_one_event_per_logged_step_and_no_tensorboard_writes_none() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(&run);
    let files = vgrad_tensorboard::event_files(&run).unwrap();
    assert_eq!(files.len(), 1);
    let events = vgrad_tensorboard::read_events(&files[0]).unwrap();
    // The file version, the session's start (its settings), the custom-scalars layout,
    // four logged steps, the final scalars and the session's end.
    assert_eq!(
        events.iter().map(|e| e.step).collect::<Vec<_>>(),
        vec![0, 0, 0, 0, 100, 200, 300, 400, 400]
    );
    // A rerun into the same folder replaces the event file rather than adding a second.
    train(&run);
    assert_eq!(vgrad_tensorboard::event_files(&run).unwrap().len(), 1);

    let quiet = dir.path().join("quiet");
    vgrad_train(&[
        "--steps",
        "20",
        "--log-every",
        "10",
        "--no-tensorboard",
        "--out",
        quiet.to_str().unwrap(),
    ])
    .unwrap();
    assert!(vgrad_tensorboard::event_files(&quiet).unwrap().is_empty());
}

#[test]
#[cfg_attr(
    not(tensorboard_python),
    ignore = "no Python with tensorboard: `cargo xtask test` prepares one in .venv"
)]
fn tensorboards_hparams_plugin_lists_every_run_of_a_sweep_with_its_settings_and_results() {
    let python = tensorboard_python().expect("the build script found a Python with tensorboard");
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("tb.toml");
    std::fs::write(
        &experiment,
        "description = \"two activations\"\nseeds = 2\n[base]\nsteps = 20\nlog_every = 10\n\
         [axes]\nactivation = [\"sigmoid\", \"relu\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let outcome = sweep(&experiment, &sweep_options(&out, 2)).unwrap();
    assert_eq!((outcome.ran, outcome.failed), (4, 0));
    let runs = out.join("runs/tb");
    let tb = read_with(&python, "read_hparams.py", &runs);

    // The sweep's experiment: its varied settings and the runs' metrics.
    let e = &tb["experiment"];
    assert_eq!(e["name"], "tb");
    let hparams: Vec<&str> = e["hparamInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(hparams, ["activation", "seed"]);
    assert_eq!(
        e["hparamInfos"][0]["domainDiscrete"],
        serde_json::json!(["sigmoid", "relu"])
    );
    let metrics: Vec<&str> = e["metricInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"]["tag"].as_str().unwrap())
        .collect();
    assert_eq!(metrics, ["decay_ratio", "test_acc", "outcome"]);

    // One row per run, named by its folder, with its settings and results.
    let groups = tb["session_groups"]["sessionGroups"].as_array().unwrap();
    let mut names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    for (name, prefix) in names.iter().zip([
        "relu/seed-0_",
        "relu/seed-1_",
        "sigmoid/seed-0_",
        "sigmoid/seed-1_",
    ]) {
        assert!(name.starts_with(prefix), "{names:?}");
    }
    for group in groups {
        let name = group["name"].as_str().unwrap();
        let activation = name.split('/').next().unwrap();
        assert_eq!(group["hparams"]["activation"], activation, "{group}");
        let summary = summary_json(&runs.join(name)).unwrap();
        assert_eq!(
            group["hparams"]["seed"],
            summary["seed"].as_f64().unwrap(),
            "{group}"
        );
        let metric = |tag: &str| {
            group["metricValues"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"]["tag"] == tag)
                .unwrap_or_else(|| panic!("no {tag} in {group}"))["value"]
                .as_f64()
                // Protocol buffers' JSON leaves a field out at its default: 0.
                .unwrap_or(0.0)
        };
        assert!(close(
            metric("decay_ratio"),
            summary["decay_ratio"].as_f64().unwrap()
        ));
        assert!(close(
            metric("test_acc"),
            summary["test_acc"].as_f64().unwrap()
        ));
        assert!([1.0, 0.0].contains(&metric("outcome")), "{group}");
        assert_eq!(group["sessions"][0]["status"], "STATUS_SUCCESS", "{group}");
    }

    // Every run's custom-scalars layout, the reference measure's chart first.
    let layouts = tb["layouts"].as_object().unwrap();
    assert_eq!(layouts.len(), 4, "{layouts:?}");
    for layout in layouts.values() {
        let chart = &layout["category"][0]["chart"][0];
        assert_eq!(
            chart["multiline"]["tag"],
            serde_json::json!([r"^1_grad_mean_abs/(layer|t)\d+$"])
        );
    }
}
