//! Recurrent networks on row-sequential MNIST (28 time steps of 28 pixels, the last hidden
//! state read out by a dense layer, cross-entropy, Adam 1e-3): `vgrad train --model
//! rnn|lstm|gru` against PyTorch's `nn.RNN`, `nn.LSTM` and `nn.GRU` with `nn.Linear`
//! (`bench/pytorch_recurrent.py`), one thread each, alternating.

use std::cell::Cell;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Bench, Row, Target, median};
use crate::workspace_root;

/// Units of the recurrent layer.
pub const HIDDEN: usize = 128;
/// Examples per batch.
pub const BATCH: usize = 128;
/// Training steps of each timed run: the median is over all of them but step 0 (vgrad's
/// only logged step, and the first touch of every buffer on both sides).
pub const STEPS: usize = 300;

/// One recurrent model of the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// vgrad's `--model` and the PyTorch script's `--model`.
    pub flag: &'static str,
    /// The PyTorch module it is timed against.
    pub module: &'static str,
    /// The row's name.
    pub name: &'static str,
}

/// The part's models, one row each.
pub const MODELS: [Model; 3] = [
    Model {
        flag: "rnn",
        module: "nn.RNN",
        name: "RNN (tanh)",
    },
    Model {
        flag: "lstm",
        module: "nn.LSTM",
        name: "LSTM",
    },
    Model {
        flag: "gru",
        module: "nn.GRU",
        name: "GRU",
    },
];

/// One run of `bench/pytorch_recurrent.py`, as it prints it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecurrentRun {
    /// The median microseconds of a training step after step 0.
    pub step_us: f64,
    /// Test accuracy after training.
    pub test_acc: f64,
}

/// The run in the script's output: its last JSON line.
pub fn parse_recurrent(stdout: &str) -> Result<RecurrentRun> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("pytorch_recurrent.py printed no JSON line: {stdout:?}"))?;
    let v: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("pytorch_recurrent.py printed {line:?}"))?;
    let field = |key: &str| {
        v[key]
            .as_f64()
            .with_context(|| format!("no {key} in {line:?}"))
    };
    Ok(RecurrentRun {
        step_us: field("step_us")?,
        test_acc: field("test_acc")?,
    })
}

/// vgrad's flags for `model`: one seed, logging (and probing) step 0 only, no Jacobians
/// through time.
fn vgrad_args(model: &Model, steps: &str, hidden: &str, batch: &str) -> Vec<String> {
    [
        "--model",
        model.flag,
        "--activation",
        "tanh",
        "--layers",
        "2",
        "--width",
        hidden,
        "--batch-size",
        batch,
        "--steps",
        steps,
        "--log-every",
        steps,
        "--probe",
        "basic",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// `bench/pytorch_recurrent.py` for `model` with fused Adam, as the other rows' baselines.
fn pytorch(
    b: &Bench,
    model: &Model,
    steps: &str,
    hidden: &str,
    batch: &str,
) -> Result<RecurrentRun> {
    let script = workspace_root().join("bench").join("pytorch_recurrent.py");
    let args = [
        "--model",
        model.flag,
        "--hidden",
        hidden,
        "--batch-size",
        batch,
        "--steps",
        steps,
        "--fused",
    ];
    let output = Command::new(&b.python)
        .arg(&script)
        .args(args)
        .output()
        .context("running bench/pytorch_recurrent.py")?;
    if !output.status.success() {
        bail!(
            "pytorch_recurrent.py {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_recurrent(&String::from_utf8_lossy(&output.stdout))
}

/// The part's rows: each model's median training step, vgrad's (`step_us` of `vgrad
/// train`'s summary) against PyTorch's, medians over `b.reps` alternating runs of
/// [`STEPS`] steps each.
pub fn measure(b: &Bench) -> Result<Vec<Row>> {
    let (steps, hidden, batch) = (STEPS.to_string(), HIDDEN.to_string(), BATCH.to_string());
    let mut rows = Vec::new();
    for model in &MODELS {
        eprintln!("bench: recurrent, {}", model.name);
        let args = vgrad_args(model, &steps, &hidden, &batch);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Runs are deterministic on both sides: every repetition's accuracy is the same.
        let ours_acc = Cell::new(f64::NAN);
        let theirs_acc = Cell::new(f64::NAN);
        let ours = || -> Result<f64> {
            let summary = b.vgrad_summary(&args, 1)?;
            ours_acc.set(super::test_acc(&summary)?);
            summary["step_us"]
                .as_f64()
                .context("no step_us in vgrad's summary.json")
        };
        let theirs = || -> Result<f64> {
            let run = pytorch(b, model, &steps, &hidden, &batch)?;
            theirs_acc.set(run.test_acc);
            Ok(run.step_us)
        };
        let (ours, theirs) = b.samples(&ours, &[&theirs])?;
        eprintln!(
            "bench: {} test accuracy after {STEPS} steps: vgrad {:.4}, PyTorch {:.4}",
            model.name,
            ours_acc.get(),
            theirs_acc.get()
        );
        rows.push(Row {
            what: format!(
                "{}: hidden {HIDDEN}, batch {BATCH}, 28 steps of 28 features (row-sequential \
                 MNIST), median step of {STEPS}, logging step 0 only (medians of {} runs)",
                model.name, b.reps
            ),
            vgrad: median(&ours) / 1e3,
            baseline: median(&theirs[0]) / 1e3,
            baseline_name: format!(
                "PyTorch {} + nn.Linear, fused Adam, `bench/pytorch_recurrent.py`",
                model.module
            ),
            unit: "ms/step",
            target: Some(Target::AtMost(1.0)),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_recurrent_baselines_last_json_line() {
        let out = "warning: noise\n{\"step_us\": 1.0, \"test_acc\": 0.1}\n\
                   {\"model\": \"lstm\", \"step_us\": 23463.5, \"train_s\": 7.1, \"test_acc\": 0.875}\n";
        assert_eq!(
            parse_recurrent(out).unwrap(),
            RecurrentRun {
                step_us: 23463.5,
                test_acc: 0.875
            }
        );
        let no_time = parse_recurrent("{\"test_acc\": 0.5}").unwrap_err();
        assert!(no_time.to_string().contains("no step_us"), "{no_time}");
        // One step leaves nothing after step 0: the script prints NaN, which is no number.
        assert!(parse_recurrent("{\"step_us\": NaN, \"test_acc\": 0.5}").is_err());
        assert!(parse_recurrent("nothing").is_err());
        assert!(parse_recurrent("{broken").is_err());
    }

    #[test]
    fn vgrad_logs_step_0_only_and_measures_no_jacobian() {
        let args = vgrad_args(&MODELS[1], "300", "128", "128");
        let flag = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .map(|i| args[i + 1].as_str())
        };
        assert_eq!(flag("--model"), Some("lstm"));
        assert_eq!(flag("--log-every"), flag("--steps"));
        assert_eq!(flag("--probe"), Some("basic"));
        assert_eq!(flag("--layers"), Some("2"));
    }
}
