//! The example run briefly: its run folder carries a gradient histogram for every
//! parameter of candle's ConvNet, by its VarMap name, at every logged step.

use std::process::Command;

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

    let files = vgrad_tensorboard::event_files(&run).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    let summaries =
        vgrad_tensorboard::histogram_tags(&vgrad_tensorboard::read_events(&files[0]).unwrap());
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
