//! The example run briefly: its run folder carries a gradient histogram for every
//! parameter of candle's ConvNet, by its VarMap name, at every logged step.

use std::process::Command;

use vgrad_tensorboard::proto::{Value, What};

/// The VarMap names of candle's ConvNet.
const PARAMS: [&str; 8] = [
    "c1.bias",
    "c1.weight",
    "c2.bias",
    "c2.weight",
    "fc1.bias",
    "fc1.weight",
    "fc2.bias",
    "fc2.weight",
];

#[test]
fn three_steps_write_every_parameters_histograms() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mnist-conv"))
        .args(["--steps", "3", "--every", "2", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("tensorboard --logdir {}", out.path().display())),
        "{stdout}"
    );
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["steps"], 3);

    let run = out.path().join("run-1");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [0, 2]);

    let events = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("events.out.tfevents."))
        .unwrap();
    let summaries: Vec<(i64, Vec<String>)> = vgrad_tensorboard::read_events(&events)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.what {
            Some(What::Summary(s)) => Some((
                e.step,
                s.value
                    .into_iter()
                    .filter(|v| matches!(v.value, Some(Value::Histo(_))))
                    .map(|v| v.tag)
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        summaries.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [0, 2]
    );
    for (step, tags) in &summaries {
        for name in PARAMS {
            assert!(
                tags.contains(&format!("grad_hist/{name}")),
                "step {step}: {tags:?}"
            );
        }
        for tap in ["c1", "c2", "fc1"] {
            assert!(
                tags.contains(&format!("error_hist/{tap}")),
                "step {step}: {tags:?}"
            );
        }
    }
}
