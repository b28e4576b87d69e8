//! `cargo xtask bench`: vgrad against a PyTorch baseline (`bench/pytorch_baseline.py`) in
//! one invocation, the two run alternately, medians of several repetitions, reported as
//! ratios (these machines are noisy; only ratios from one run are compared).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use vgrad_record::REFERENCE;
use vgrad_sweep::{Overrides, Sweep, SweepOptions};

use crate::workspace_root;

mod recurrent;
mod scaling;

/// vgrad's flags `args` for a run timed against the PyTorch baseline: ReLU, the
/// baseline's activation, and no Jacobian spectra, which the baseline does not measure.
fn like_baseline<'a>(args: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    args.into_iter()
        .chain(["--activation", "relu", "--probe", "basic"])
        .collect()
}

/// The baseline's flags for one model with the fused optimizer, then `args`.
fn baseline_single<'a>(args: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    ["single", "--fused"].into_iter().chain(args).collect()
}

/// One line of the benchmark's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured.
    pub what: String,
    /// vgrad's median, in `unit`.
    pub vgrad: f64,
    /// The baseline's median, in `unit` (NaN where there is none).
    pub baseline: f64,
    /// What the baseline is.
    pub baseline_name: String,
    /// Unit of both numbers.
    pub unit: &'static str,
    /// The target on vgrad / baseline, if any.
    pub target: Option<Target>,
}

/// A bound on a row's ratio vgrad / baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The ratio is at most this (a time against the baseline's).
    AtMost(f64),
    /// The ratio is at least this (a rate against a peak).
    AtLeast(f64),
}

impl Target {
    /// Whether `ratio` meets the bound.
    pub fn met_by(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(t) => ratio <= t,
            Target::AtLeast(t) => ratio >= t,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::AtMost(t) => write!(f, "<= {t}"),
            Target::AtLeast(t) => write!(f, ">= {t}"),
        }
    }
}

impl Row {
    /// vgrad / baseline.
    pub fn ratio(&self) -> f64 {
        self.vgrad / self.baseline
    }

    /// Whether the ratio meets the target (`None` without a target).
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| t.met_by(self.ratio()))
    }
}

/// The median of `values` (NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The smallest of `values` (NaN for none).
pub fn fastest(values: &[f64]) -> f64 {
    values
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .min_by(f64::total_cmp)
        .unwrap_or(f64::NAN)
}

/// Microseconds per member and step from a run's `summary.json`.
fn per_member_step(summary: &serde_json::Value, members: usize) -> Result<f64> {
    let steps_per_s = summary["steps_per_s"].as_f64().context("no steps_per_s")?;
    Ok(1e6 / steps_per_s / members as f64)
}

/// The test accuracy in a run's `summary.json`.
fn test_acc(summary: &serde_json::Value) -> Result<f64> {
    summary["test_acc"]
        .as_f64()
        .context("no test_acc in summary.json")
}

/// One run of the PyTorch baseline, as it prints it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineRun {
    /// Microseconds per member and step of the training loop.
    pub us_per_member_step: f64,
    /// Test accuracy, the mean over the run's members.
    pub test_acc: f64,
}

/// The baseline's runs from its JSON lines, one per run.
pub fn parse_baseline(stdout: &str) -> Result<Vec<BaselineRun>> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).with_context(|| format!("baseline printed {l:?}"))?;
            let field = |key: &str| {
                v[key]
                    .as_f64()
                    .with_context(|| format!("no {key} in {l:?}"))
            };
            Ok(BaselineRun {
                us_per_member_step: field("us_per_member_step")?,
                test_acc: field("test_acc")?,
            })
        })
        .collect()
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// The markdown table of `rows`.
pub fn render_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| measurement | vgrad | baseline | unit | vgrad / baseline | target | met |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let (ratio, target, met) = if r.baseline.is_nan() {
            ("-".to_string(), "-".to_string(), "-")
        } else {
            (
                format!("{:.2}", r.ratio()),
                r.target.map_or("-".into(), |t| t.to_string()),
                match r.met() {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "-",
                },
            )
        };
        out.push_str(&format!(
            "| {} | {} | {} ({}) | {} | {ratio} | {target} | {met} |\n",
            r.what,
            fmt(r.vgrad),
            fmt(r.baseline),
            r.baseline_name,
            r.unit
        ));
    }
    out
}

/// What runs the benchmark needs.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The `vgrad` binary.
    pub vgrad: PathBuf,
    /// A Python with PyTorch.
    pub python: PathBuf,
    /// Repetitions of each measurement.
    pub reps: usize,
    /// Scratch folder.
    pub scratch: PathBuf,
}

impl Bench {
    /// `vgrad train ARGS` (reference settings unless overridden, no TensorBoard); returns
    /// microseconds per member and step from its summaries.
    fn vgrad(&self, args: &[&str], members: usize) -> Result<f64> {
        let summary = self.vgrad_summary(args, members)?;
        per_member_step(&summary, members)
    }

    /// [`Bench::vgrad`]'s time, and the members' mean test accuracy.
    fn vgrad_timed(&self, args: &[&str], members: usize) -> Result<(f64, f64)> {
        let first = self.vgrad_summary(args, members)?;
        let mut sum = test_acc(&first)?;
        for member in 1..members {
            sum += test_acc(&self.read_summary(member, members)?)?;
        }
        Ok((per_member_step(&first, members)?, sum / members as f64))
    }

    /// `vgrad train ARGS` as [`Bench::vgrad`] runs it; the first member's `summary.json`.
    fn vgrad_summary(&self, args: &[&str], members: usize) -> Result<serde_json::Value> {
        let out = self.scratch.join("vgrad-run");
        let _ = std::fs::remove_dir_all(&out);
        let status = Command::new(&self.vgrad)
            .arg("train")
            .args(args)
            .args(["--no-tensorboard", "--out"])
            .arg(&out)
            .env("RUST_LOG", "error")
            .status()
            .context("running vgrad")?;
        if !status.success() {
            bail!("vgrad train {args:?} failed");
        }
        self.read_summary(0, members)
    }

    /// The `summary.json` of member `member` of the last run of `members` members (a run
    /// of several seeds writes one folder per seed).
    fn read_summary(&self, member: usize, members: usize) -> Result<serde_json::Value> {
        let out = self.scratch.join("vgrad-run");
        let folder = if members > 1 {
            out.join(format!("seed-{member}"))
        } else {
            out
        };
        let path = folder.join("summary.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The PyTorch baseline with ARGS; each run's time and accuracy.
    fn baseline(&self, args: &[&str]) -> Result<Vec<BaselineRun>> {
        let script = workspace_root().join("bench").join("pytorch_baseline.py");
        let output = Command::new(&self.python)
            .arg(&script)
            .args(args)
            .output()
            .context("running the PyTorch baseline")?;
        if !output.status.success() {
            bail!(
                "pytorch_baseline.py {args:?} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        parse_baseline(&String::from_utf8_lossy(&output.stdout))
    }

    /// Medians over `reps` alternating repetitions of vgrad and the baselines.
    fn alternate(
        &self,
        vgrad: &dyn Fn() -> Result<f64>,
        baselines: &[&dyn Fn() -> Result<f64>],
    ) -> Result<(f64, Vec<f64>)> {
        let (ours, theirs) = self.samples(vgrad, baselines)?;
        Ok((median(&ours), theirs.iter().map(|t| median(t)).collect()))
    }

    /// Every one of `reps` alternating repetitions of vgrad and the baselines.
    fn samples(
        &self,
        vgrad: &dyn Fn() -> Result<f64>,
        baselines: &[&dyn Fn() -> Result<f64>],
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let mut ours = Vec::new();
        let mut theirs = vec![Vec::new(); baselines.len()];
        for _ in 0..self.reps {
            ours.push(vgrad()?);
            for (b, t) in baselines.iter().zip(theirs.iter_mut()) {
                t.push(b()?);
            }
        }
        Ok((ours, theirs))
    }

    fn first(&self, args: &[&str]) -> Result<f64> {
        Ok(self.first_timed(args)?.0)
    }

    /// The baseline's first run: microseconds per member and step, and test accuracy.
    fn first_timed(&self, args: &[&str]) -> Result<(f64, f64)> {
        let run = self
            .baseline(args)?
            .into_iter()
            .next()
            .context("the baseline reported no run")?;
        Ok((run.us_per_member_step, run.test_acc))
    }
}

/// The CPU's model name as `/proc/cpuinfo` gives it.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The machine, for the report.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores, {}; {rustc}, candle 0.11.1", cpu_model())
}

fn torch_version(python: &Path) -> String {
    Command::new(python)
        .args(["-c", "import torch, sys; print(f'PyTorch {torch.__version__}, Python {sys.version.split()[0]}')"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The parts of the benchmark, each selectable with `cargo xtask bench --only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// The reference network: one run, ensembles of 10 and 40.
    Reference,
    /// The probe's cost at the reference logging and at every step.
    Probe,
    /// Batch norm, layer norm, residual, SGD and momentum, at widths 10 and 1000; an
    /// ensemble of 10 at width 100.
    Paths,
    /// Step time and GFLOP/s at widths 10-1000 and batches 10 and 128, against the GEMM
    /// peak.
    Scaling,
    /// A larger network: width 256, 16 layers, batch 256.
    Wide,
    /// The whole seed and remedies sweeps.
    Sweeps,
    /// Mean-field theory: the tanh phase diagram on a 100 x 100 grid.
    Theory,
    /// vgrad-watch on candle's MNIST ConvNet (`examples/mnist-conv`): logging every 200
    /// steps against the watch turned off.
    Watch,
    /// Recurrent networks on row-sequential MNIST: RNN (tanh), LSTM and GRU, hidden 128,
    /// batch 128, against PyTorch's `nn.RNN`, `nn.LSTM` and `nn.GRU`.
    Recurrent,
}

/// The ensembles' target per member-step against PyTorch's batched ensemble.
const ENSEMBLE_TARGET: f64 = 0.75;

/// Test accuracy of one kind of run in the reference section, vgrad's and PyTorch's.
#[derive(Debug, Clone, PartialEq)]
pub struct Accuracy {
    /// Which runs.
    pub what: String,
    /// vgrad's test accuracy, the mean over its members.
    pub vgrad: f64,
    /// PyTorch's test accuracy, the mean over its members.
    pub baseline: f64,
}

/// The markdown table of `accuracies`, with the sentence that says what it checks.
pub fn render_accuracies(accuracies: &[Accuracy]) -> String {
    let mut out = String::from(
        "Both sides train the same network: test accuracy after the timed runs (ReLU, \
         2,500 steps; the mean over an ensemble's members; each side draws its own \
         initial weights and data order from the same seeds):\n\n\
         | runs | vgrad | PyTorch |\n| --- | --- | --- |\n",
    );
    for a in accuracies {
        out.push_str(&format!(
            "| {} | {:.4} | {:.4} |\n",
            a.what, a.vgrad, a.baseline
        ));
    }
    out
}

/// The reference network's rows, and each kind of run's test accuracy on both sides.
pub fn reference(b: &Bench) -> Result<(Vec<Row>, Vec<Accuracy>)> {
    let mut rows = Vec::new();
    let mut accuracies = Vec::new();
    // Runs are deterministic, so every repetition gives the same accuracy: the last kept.
    let ours_acc = std::cell::Cell::new(f64::NAN);
    let theirs_acc = std::cell::Cell::new(f64::NAN);
    let vgrad = |args: &[&str], members: usize| -> Result<f64> {
        let (us, acc) = b.vgrad_timed(args, members)?;
        ours_acc.set(acc);
        Ok(us)
    };
    let fused = |args: &[&str]| -> Result<f64> {
        let (us, acc) = b.first_timed(args)?;
        theirs_acc.set(acc);
        Ok(us)
    };
    eprintln!("bench: single run, reference network (K = 1)");
    let (ours, theirs) = b.alternate(
        &|| vgrad(&["--activation", "relu"], 1),
        &[&|| b.first(&["single"]), &|| fused(&["single", "--fused"])],
    )?;
    accuracies.push(Accuracy {
        what: "one run".into(),
        vgrad: ours_acc.get(),
        baseline: theirs_acc.get(),
    });
    rows.push(Row {
        what: "reference step, one run (K = 1)".into(),
        vgrad: ours,
        baseline: theirs[1],
        baseline_name: "PyTorch, fused Adam".into(),
        unit: "us/step",
        target: Some(Target::AtMost(0.45)),
    });
    rows.push(Row {
        what: "reference step, one run (K = 1)".into(),
        vgrad: ours,
        baseline: theirs[0],
        baseline_name: "PyTorch, default Adam".into(),
        unit: "us/step",
        target: None,
    });

    for k in [10usize, 40] {
        eprintln!("bench: ensemble of {k}");
        let seeds = format!("0-{}", k - 1);
        let members = k.to_string();
        let (ours, theirs) = b.alternate(
            &|| vgrad(&["--activation", "relu", "--seeds", &seeds], k),
            &[&|| fused(&["ensemble", "--members", &members, "--fused"])],
        )?;
        accuracies.push(Accuracy {
            what: format!("ensemble of {k}"),
            vgrad: ours_acc.get(),
            baseline: theirs_acc.get(),
        });
        rows.push(Row {
            what: format!("reference step, ensemble of {k}"),
            vgrad: ours,
            baseline: theirs[0],
            baseline_name: "PyTorch baddbmm ensemble, fused Adam".into(),
            unit: "us/member-step",
            target: Some(Target::AtMost(ENSEMBLE_TARGET)),
        });
    }
    Ok((rows, accuracies))
}

/// The probe's rows.
pub fn probe(b: &Bench) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    eprintln!("bench: probe overhead");
    const EVERY: usize = 200;
    let every = |n: &'static str| move || b.vgrad(&["--activation", "relu", "--log-every", n], 1);
    // Each run at the reference logging also reports its median step and its median
    // logged step, whose difference is the probe's cost once every 200 steps.
    let step_times = std::cell::RefCell::new(Vec::new());
    let every_arg = EVERY.to_string();
    let at_reference = || -> Result<f64> {
        let args = ["--activation", "relu", "--log-every", &every_arg];
        let summary = b.vgrad_summary(&args, 1)?;
        let field = |key: &str| summary[key].as_f64().with_context(|| format!("no {key}"));
        step_times
            .borrow_mut()
            .push((field("step_us")?, field("logged_step_us")?));
        Ok(1e6 / field("steps_per_s")?)
    };
    // The probe's share at the reference logging is a couple of percent. On this shared
    // machine one run's step time varies by up to a third from run to run (other
    // machines' load only adds time), so two processes' times compare worse than one
    // run's own medians do: the row with the target reads each run's step times, the
    // rows after it compare whole runs, 25 each, alternating.
    let thorough = Bench {
        reps: 5 * b.reps,
        ..b.clone()
    };
    let (reference, others) = thorough.samples(&at_reference, &[&every("1000000")])?;
    let never = &others[0];
    let (plain, logged): (Vec<f64>, Vec<f64>) = step_times.into_inner().into_iter().unzip();
    let amortised: Vec<f64> = plain
        .iter()
        .zip(&logged)
        .map(|(p, l)| p + (l - p) / EVERY as f64)
        .collect();
    rows.push(Row {
        what: format!(
            "probe: logging every {EVERY} steps, from each run's median step and median logged \
             step (medians of {} runs)",
            thorough.reps
        ),
        vgrad: median(&amortised),
        baseline: median(&plain),
        baseline_name: "vgrad, the same runs' steps that log nothing".into(),
        unit: "us/step",
        target: Some(Target::AtMost(1.03)),
    });
    // The Jacobian spectra's share of a logged step (8 probe examples at width 10).
    let every_step = |probe: &'static str| {
        move || {
            b.vgrad(
                &["--activation", "relu", "--log-every", "1", "--probe", probe],
                1,
            )
        }
    };
    let (always, others) = b.alternate(&every_step("auto"), &[&every_step("basic")])?;
    let without_jacobian = others[0];
    rows.push(Row {
        what: format!(
            "probe: logging every 200 steps, against never (fastest of {} runs each)",
            thorough.reps
        ),
        vgrad: fastest(&reference),
        baseline: fastest(never),
        baseline_name: "vgrad, logging step 0 only".into(),
        unit: "us/step",
        target: None,
    });
    rows.push(Row {
        what: format!(
            "probe: logging every 200 steps, against never (medians of {} runs each)",
            thorough.reps
        ),
        vgrad: median(&reference),
        baseline: median(never),
        baseline_name: "vgrad, logging step 0 only".into(),
        unit: "us/step",
        target: None,
    });
    rows.push(Row {
        what: "probe: logging every step, against never".into(),
        vgrad: always,
        baseline: median(never),
        baseline_name: "vgrad, logging step 0 only".into(),
        unit: "us/step",
        target: None,
    });
    rows.push(Row {
        what: "probe: logging every step, with the Jacobian spectra against without".into(),
        vgrad: always,
        baseline: without_jacobian,
        baseline_name: "vgrad, logging every step with --probe basic".into(),
        unit: "us/step",
        target: None,
    });
    rows.push(hidden_chain(b)?);
    Ok(rows)
}

/// Builds `cargo build --release ARGS` and returns the executable at `path` (its last
/// part the file's name, without the platform's suffix) under the release folder.
fn release_build(args: &[&str], path: &[&str]) -> Result<PathBuf> {
    let mut cmd = crate::build::cargo();
    cmd.args(["build", "--release"]).args(args);
    crate::build::run(cmd)?;
    let mut exe = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("release");
    let (name, folders) = path.split_last().context("an executable's path")?;
    for folder in folders {
        exe.push(folder);
    }
    exe.push(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    Ok(exe)
}

/// The hidden chain's width and dense layers in its row: a chain of 128 Jacobians of
/// 400 x 400, the size the isometry question needs.
const CHAIN: (usize, usize) = (400, 130);

/// The hidden chain `d h_(L-1) / d h_1` and its SVD for one example, on one thread
/// (`crates/probe/examples/chain_cost.rs`), against its 1 s target: the median of the
/// repetitions after a first, which also pays for the allocations.
fn hidden_chain(b: &Bench) -> Result<Row> {
    let (width, layers) = CHAIN;
    eprintln!("bench: the hidden chain at width {width}, {layers} layers");
    let example = release_build(
        &["--package", "vgrad-probe", "--example", "chain_cost"],
        &["examples", "chain_cost"],
    )
    .context("building the probe's chain_cost example")?;
    let output = Command::new(&example)
        .env("RAYON_NUM_THREADS", "1")
        .args([width, layers, b.reps + 1].map(|n| n.to_string()))
        .output()
        .context("running chain_cost")?;
    if !output.status.success() {
        bail!(
            "chain_cost failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(last).with_context(|| format!("chain_cost printed {last:?}"))?;
    let seconds: Vec<f64> = v["seconds"]
        .as_array()
        .with_context(|| format!("no seconds in chain_cost's line {last}"))?
        .iter()
        .skip(1)
        .filter_map(serde_json::Value::as_f64)
        .collect();
    Ok(Row {
        what: format!(
            "probe: hidden chain d h_(L-1) / d h_1 and its singular values, width {width}, \
             {} Jacobians, one example, one thread (median of {} after a first)",
            layers - 2,
            seconds.len()
        ),
        vgrad: median(&seconds),
        baseline: 1.0,
        baseline_name: "the target, 1 s".into(),
        unit: "s",
        target: Some(Target::AtMost(1.0)),
    })
}

/// The larger network's row.
pub fn wide(b: &Bench) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    eprintln!("bench: larger network");
    let large = [
        "--width",
        "256",
        "--layers",
        "16",
        "--batch-size",
        "256",
        "--steps",
        "100",
        "--log-every",
        "50",
        "--activation",
        "relu",
    ];
    // The baseline measures no Jacobian, which at width 256 would dominate 100 steps.
    let ours_args: Vec<&str> = large.iter().copied().chain(["--probe", "basic"]).collect();
    let (ours, theirs) = b.alternate(
        &|| b.vgrad(&ours_args, 1),
        &[&|| {
            let mut args = vec!["single", "--fused"];
            args.extend(
                large
                    .iter()
                    .filter(|a| **a != "--activation" && **a != "relu"),
            );
            b.first(&args)
        }],
    )?;
    rows.push(Row {
        what: "width 256, 16 layers, batch 256".into(),
        vgrad: ours,
        baseline: theirs[0],
        baseline_name: "PyTorch, fused Adam".into(),
        unit: "us/step",
        target: Some(Target::AtMost(1.0)),
    });
    Ok(rows)
}

/// The remedies' and optimizers' paths: each against PyTorch with the same setting, and
/// against vgrad's plain step (Adam, no norm, no skips) at the same size; then an
/// ensemble of 10 at width 100 against PyTorch's batched ensemble.
pub fn paths(b: &Bench) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // The setting's flags (the same for vgrad and the baseline) and the target against
    // vgrad's plain step.
    let settings: [(&str, &[&str], Option<Target>); 5] = [
        (
            "batch norm",
            &["--norm", "batch"],
            Some(Target::AtMost(1.3)),
        ),
        (
            "layer norm",
            &["--norm", "layer"],
            Some(Target::AtMost(1.3)),
        ),
        ("residual", &["--residual"], Some(Target::AtMost(1.3))),
        ("SGD", &["--optimizer", "sgd", "--lr", "0.1"], None),
        (
            "momentum 0.9",
            &["--optimizer", "momentum:0.9", "--lr", "0.01"],
            None,
        ),
    ];
    // Width 1000: fewer steps, as many as the reference logs once in (a few seconds
    // each); no Jacobian on either side.
    let wide_steps = REFERENCE.log_every.to_string();
    for width in ["10", "1000"] {
        let size: Vec<&str> = if width == "10" {
            vec!["--width", "10"]
        } else {
            vec!["--width", "1000", "--steps", &wide_steps]
        };
        for (name, flags, vs_plain) in settings {
            eprintln!("bench: {name}, width {width}");
            let vgrad_args = like_baseline(size.iter().chain(flags).copied());
            let plain_args = like_baseline(size.iter().copied());
            let torch_args = baseline_single(size.iter().chain(flags).copied());
            // The plain step runs right after the setting's, before PyTorch's seconds, so
            // that the machine's drift between the two vgrad runs is least. At width 10 a
            // vgrad run takes a fraction of a second, less than PyTorch's, and the ratio of
            // the two vgrad steps (a few tens of percent) is within one run's variation
            // here: three times the repetitions for it.
            let with = || b.vgrad(&vgrad_args, 1);
            let plain = || b.vgrad(&plain_args, 1);
            let (ours, others) = b.alternate(&with, &[&plain, &|| b.first(&torch_args)])?;
            let (ours_again, plain_again) = if width == "10" {
                let thorough = Bench {
                    reps: 3 * b.reps,
                    ..b.clone()
                };
                let (ours, others) = thorough.alternate(&with, &[&plain])?;
                (ours, others[0])
            } else {
                (ours, others[0])
            };
            rows.push(Row {
                what: format!("{name}, width {width}"),
                vgrad: ours,
                baseline: others[1],
                baseline_name: format!("PyTorch, {name}, fused optimizer"),
                unit: "us/step",
                target: Some(Target::AtMost(1.0)),
            });
            rows.push(Row {
                what: format!("{name}, width {width}"),
                vgrad: ours_again,
                baseline: plain_again,
                baseline_name: "vgrad, plain step (Adam) at the same size".into(),
                unit: "us/step",
                target: vs_plain,
            });
        }
    }
    eprintln!("bench: ensemble of 10 at width 100");
    let (ours, theirs) = b.alternate(
        &|| b.vgrad(&like_baseline(["--width", "100", "--seeds", "0-9"]), 10),
        &[&|| b.first(&["ensemble", "--members", "10", "--width", "100", "--fused"])],
    )?;
    rows.push(Row {
        what: "ensemble of 10, width 100".into(),
        vgrad: ours,
        baseline: theirs[0],
        baseline_name: "PyTorch baddbmm ensemble, fused Adam".into(),
        unit: "us/member-step",
        target: Some(Target::AtMost(1.0)),
    });
    Ok(rows)
}

/// The whole seed sweep: `cargo xtask sweep` (40 runs and the report) against the
/// baseline's 40 runs, one after another and in one process per core.
pub fn measure_sweep(b: &Bench, vgrad_sweep: &dyn Fn() -> Result<()>) -> Result<Vec<Row>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs: Vec<String> = ["sigmoid", "relu", "leaky-relu:0.2", "leaky-relu:0.01"]
        .iter()
        .flat_map(|a| (0..10).map(move |s| format!("{a}:{s}")))
        .collect();
    let timed = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        let t = Instant::now();
        f()?;
        Ok(t.elapsed().as_secs_f64())
    };
    let script = workspace_root().join("bench").join("pytorch_baseline.py");
    let parallel = |procs: usize| -> Result<()> {
        let chunks: Vec<String> = (0..procs)
            .map(|p| {
                runs.iter()
                    .skip(p)
                    .step_by(procs)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let children = chunks
            .iter()
            .map(|c| {
                Command::new(&b.python)
                    .arg(&script)
                    .args(["runs", "--fused", "--runs", c])
                    .stdout(std::process::Stdio::null())
                    .spawn()
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        for mut c in children {
            if !c.wait()?.success() {
                bail!("the PyTorch baseline failed");
            }
        }
        Ok(())
    };
    eprintln!("bench: whole seed sweep");
    let reps = b.reps.min(3);
    let mut ours = Vec::new();
    let mut seq = Vec::new();
    let mut par = Vec::new();
    for _ in 0..reps {
        ours.push(timed(vgrad_sweep)?);
        seq.push(timed(&|| parallel(1))?);
        par.push(timed(&|| parallel(cores))?);
    }
    Ok(vec![
        Row {
            what: "whole seed sweep, 40 runs + report".into(),
            vgrad: median(&ours),
            baseline: median(&seq),
            baseline_name: "PyTorch, one process, runs in turn".into(),
            unit: "s",
            target: Some(Target::AtMost(0.2)),
        },
        Row {
            what: "whole seed sweep, 40 runs + report".into(),
            vgrad: median(&ours),
            baseline: median(&par),
            baseline_name: format!("PyTorch, {cores} processes"),
            unit: "s",
            target: None,
        },
    ])
}

/// Runs the benchmark's `sections` (all of them when empty) and prints its tables; a whole
/// run also writes this CPU's section of `reports/bench.md`, keeping the other CPUs'
/// sections, and this CPU's scaling figure beside it. Returns where the report is, when
/// it wrote one.
pub fn run(
    vgrad: PathBuf,
    python: PathBuf,
    reps: usize,
    sections: &[Section],
) -> Result<Option<PathBuf>> {
    let scratch = tempdir()?;
    let b = Bench {
        vgrad: vgrad.clone(),
        python: python.clone(),
        reps,
        scratch: scratch.clone(),
    };
    let wanted = |s: Section| sections.is_empty() || sections.contains(&s);
    let mut rows = Vec::new();
    let mut accuracies = Vec::new();
    if wanted(Section::Reference) {
        let (reference_rows, reference_accuracies) = reference(&b)?;
        rows.extend(reference_rows);
        accuracies = reference_accuracies;
    }
    if wanted(Section::Probe) {
        rows.extend(probe(&b)?);
    }
    if wanted(Section::Paths) {
        rows.extend(paths(&b)?);
    }
    if wanted(Section::Wide) {
        rows.extend(wide(&b)?);
    }
    if wanted(Section::Sweeps) {
        rows.extend(measure_sweeps(&b, &scratch)?);
    }
    if wanted(Section::Theory) {
        rows.push(theory(&b));
    }
    if wanted(Section::Watch) {
        rows.extend(watch(&b)?);
    }
    if wanted(Section::Recurrent) {
        rows.extend(recurrent::measure(&b)?);
    }
    let scaling = if wanted(Section::Scaling) {
        let (ours, theirs) = scaling::peak(&b)?;
        let points = scaling::measure(&b)?;
        rows.extend(scaling::target_rows(&points, ours));
        Some((points, ours, theirs))
    } else {
        None
    };
    let cpu = cpu_model();
    let figure_name = format!("bench-scaling-{}.svg", slug(&cpu));
    let mut text = format!(
        "## {cpu}: {}\n\nMachine: {}. Baseline: {} (`bench/pytorch_baseline.py`, one thread).\n\n\
         Medians of {reps} repetitions, vgrad and the baseline run alternately in one invocation of `cargo xtask bench`; \
         step times are the training loop's (data loading and evaluation excluded), with the reference logging (every \
         200 steps) unless the row says otherwise. Lower is better; a ratio below 1 means vgrad is faster, except \
         where the target reads `>=`.\n\n{}",
        today(),
        machine(),
        torch_version(&python),
        render_table(&rows)
    );
    if !accuracies.is_empty() {
        text.push('\n');
        text.push_str(&render_accuracies(&accuracies));
    }
    if let Some((points, ours, theirs)) = &scaling {
        let peak = ours.max(*theirs);
        text.push_str(&format!(
            "\n### Scaling: 6 dense layers, width and batch\n\n\
             ReLU, fused Adam, logging every 200 steps (vgrad without the Jacobian, which \
             PyTorch does not measure); about a second of steps per size, and at least 200, so \
             that step 0 is the only logged step in 200 as at the reference. FLOPs per step count \
             the forward and backward products, biases, activations, the loss and Adam \
             (`xtask/src/bench/scaling.rs`, `flops_per_step`). The peak is this machine's \
             single-thread f32 GEMM of 1024 x 1024 matrices: {ours:.0} GFLOP/s with candle's \
             kernels (`vgrad peak`), {theirs:.0} GFLOP/s with PyTorch's; the better, \
             {peak:.0} GFLOP/s, is the 100%.\n\n{}\n![scaling on {cpu}]({figure_name})\n",
            scaling::render(points, peak)
        ));
        if sections.is_empty() {
            let figure = workspace_root().join("reports").join(&figure_name);
            scaling::figure(points, peak, &figure)?;
        }
    }
    println!("{text}");
    let _ = std::fs::remove_dir_all(&scratch);
    if !sections.is_empty() {
        eprintln!("(--only: reports/bench.md is written by a whole run, not by a part)");
        return Ok(None);
    }
    let path = workspace_root().join("reports").join("bench.md");
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, merge_report(&existing, &cpu, &text))?;
    Ok(Some(path))
}

/// Steps of each timed run of the watch's example: two logged steps in 200 (0 and 200),
/// so that a logged step's cost weighs as it does in a long run.
const WATCH_STEPS: usize = 400;

/// The watch's rows: `examples/mnist-conv` (candle's ConvNet, AdamW, batch 64) for
/// [`WATCH_STEPS`] steps with the watch logging every 200 steps and with it turned off
/// (`--every 0`: a counter per step, otherwise candle's own `backward_step`), alternating.
pub fn watch(b: &Bench) -> Result<Vec<Row>> {
    eprintln!("bench: the watch on candle's MNIST ConvNet");
    let example = release_build(&["--package", "vgrad-example-mnist-conv"], &["mnist-conv"])
        .context("building examples/mnist-conv")?;
    // Each run's last line: the training loop's seconds (evaluation excluded) and the
    // medians of its logged and unlogged steps.
    let run = |every: &str| -> Result<serde_json::Value> {
        let out = b.scratch.join("mnist-conv");
        let _ = std::fs::remove_dir_all(&out);
        let steps = WATCH_STEPS.to_string();
        let output = Command::new(&example)
            .args(["--steps", &steps, "--every", every, "--out"])
            .arg(&out)
            .output()
            .context("running examples/mnist-conv")?;
        if !output.status.success() {
            bail!(
                "mnist-conv --every {every} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).with_context(|| format!("mnist-conv printed {last:?}"))
    };
    let field = |v: &serde_json::Value, key: &str| {
        v[key]
            .as_f64()
            .with_context(|| format!("no {key} in mnist-conv's summary {v}"))
    };
    let watched = std::cell::RefCell::new(Vec::new());
    let with_watch = || -> Result<f64> {
        let v = run("200")?;
        let plain = field(&v, "step_s_median")?;
        let logged = field(&v, "logged_step_s_median")?;
        watched.borrow_mut().push((plain, logged));
        field(&v, "train_s")
    };
    let off = || -> Result<f64> { field(&run("0")?, "train_s") };
    let (on, others) = b.samples(&with_watch, &[&off])?;
    let per_step = |s: &[f64]| median(s) / WATCH_STEPS as f64 * 1e3;
    let (plain, logged): (Vec<f64>, Vec<f64>) = watched.into_inner().into_iter().unzip();
    // A logged step's extra time spread over the 200 steps it covers, from each watched
    // run's own medians: immune to the drift between runs that the first row is exposed
    // to. Step 0, one of the two logged steps, is also the run's first (cold) step, so
    // this errs high.
    let amortised: Vec<f64> = plain
        .iter()
        .zip(&logged)
        .map(|(p, l)| (p + (l - p) / 200.0) * 1e3)
        .collect();
    Ok(vec![
        Row {
            what: format!(
                "watch: candle's MNIST ConvNet, {WATCH_STEPS} steps, logging every 200 steps \
                 (with 3 taps) against the watch off (medians of {} runs each, alternating)",
                b.reps
            ),
            vgrad: per_step(&on),
            baseline: per_step(&others[0]),
            baseline_name: "the same loop, `--every 0`".into(),
            unit: "ms/step",
            target: Some(Target::AtMost(1.03)),
        },
        Row {
            what: format!(
                "watch: the same, from each watched run's median step and median logged step \
                 (medians of {} runs)",
                b.reps
            ),
            vgrad: median(&amortised),
            baseline: median(&plain) * 1e3,
            baseline_name: "the same runs' steps that log nothing".into(),
            unit: "ms/step",
            // The same bound, read where the noise between runs cannot reach it: on this
            // shared 2-core machine whole runs drift by a tenth, the watch's cost is a
            // few tenths of a percent.
            target: Some(Target::AtMost(1.03)),
        },
    ])
}

/// The first line of `reports/bench.md`, and what follows it before the CPUs' sections.
const REPORT_HEADER: &str = "# Benchmark: vgrad against PyTorch\n\n\
    One section per CPU the benchmark has run on, each written by a whole `cargo xtask bench` \
    on that machine, with its date; a run replaces its own CPU's section and keeps the others. \
    Compare ratios within one section: times differ between machines, and between phases of \
    one machine, far more than ratios do.\n";

/// Marks the start of a CPU's section, followed by the CPU's model and ` -->`.
const SECTION_START: &str = "<!-- bench section: ";
/// Marks the end of a CPU's section.
const SECTION_END: &str = "<!-- end of bench section -->";

/// The report with `cpu`'s section set to `section`: the other CPUs' sections of
/// `existing` kept as they are, all of them in the order of their CPU's name. Text of
/// `existing` outside the marked sections (a report written before there were sections)
/// is dropped.
pub fn merge_report(existing: &str, cpu: &str, section: &str) -> String {
    let mut sections: Vec<(String, String)> = split_sections(existing)
        .into_iter()
        .filter(|(name, _)| name != cpu)
        .collect();
    sections.push((cpu.to_string(), section.trim_end().to_string()));
    sections.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from(REPORT_HEADER);
    for (name, body) in sections {
        out.push_str(&format!(
            "\n{SECTION_START}{name} -->\n{body}\n{SECTION_END}\n"
        ));
    }
    out
}

/// The marked sections of a report: each CPU's model and its text between the markers.
pub fn split_sections(report: &str) -> Vec<(String, String)> {
    let mut sections = Vec::new();
    let mut rest = report;
    while let Some(start) = rest.find(SECTION_START) {
        let after = &rest[start + SECTION_START.len()..];
        let Some(name_end) = after.find(" -->") else {
            break;
        };
        let name = after[..name_end].to_string();
        let body_start = &after[name_end + " -->".len()..];
        let Some(end) = body_start.find(SECTION_END) else {
            break;
        };
        sections.push((name, body_start[..end].trim().to_string()));
        rest = &body_start[end + SECTION_END.len()..];
    }
    sections
}

/// `name` lower-cased with every run of other characters than letters and digits as one
/// `-`: a file name for the CPU's figure.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    civil_date(days)
}

/// The proleptic Gregorian date `days` after 1970-01-01, as YYYY-MM-DD (Howard Hinnant's
/// days-to-civil algorithm).
pub fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The theory's phase diagram: depth scales of tanh at 100 x 100 points (sigma_w^2 from 1
/// to 4, sigma_b^2 from 0.005 to 0.505), against its 1 s target, in this process (the
/// theory is candle-free and single-threaded).
pub fn theory(b: &Bench) -> Row {
    eprintln!("bench: theory, 100 x 100 phase diagram");
    let sigma_w2s: Vec<f64> = (0..100).map(|i| 1.0 + 3.0 * f64::from(i) / 99.0).collect();
    let sigma_b2s: Vec<f64> = (0..100)
        .map(|j| 0.005 + 0.5 * f64::from(j) / 99.0)
        .collect();
    let times: Vec<f64> = (0..b.reps)
        .map(|_| {
            let t = Instant::now();
            let grid =
                vgrad_theory::phase_diagram(vgrad_record::Activation::Tanh, &sigma_w2s, &sigma_b2s);
            std::hint::black_box(grid);
            t.elapsed().as_secs_f64()
        })
        .collect();
    Row {
        what: "theory: tanh depth scales on a 100 x 100 grid of (sigma_w^2, sigma_b^2)".into(),
        vgrad: median(&times),
        baseline: 1.0,
        baseline_name: "the target, 1 s".into(),
        unit: "s",
        target: Some(Target::AtMost(1.0)),
    }
}

/// The whole seed sweep against PyTorch and against its 2.5 s target, and the whole
/// remedies sweep's wall time.
fn measure_sweeps(b: &Bench, scratch: &Path) -> Result<Vec<Row>> {
    let options = |name: &str| SweepOptions {
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        force: true,
        out: scratch.join(name),
        shard: None,
        vgrad: b.vgrad.clone(),
        quiet: true,
    };
    let whole = |name: &str| -> Result<Box<dyn Fn() -> Result<()>>> {
        let sweep = Sweep::load(&crate::experiment_path(name)?, &Overrides::default())?;
        let opts = options(name);
        Ok(Box::new(move || {
            vgrad_sweep::runner::run(std::slice::from_ref(&sweep), &opts)?;
            vgrad_report::write_report(&sweep, &opts.out)?;
            Ok(())
        }))
    };
    let mut rows = measure_sweep(b, &*whole("seed")?)?;
    rows.push(Row {
        what: "whole seed sweep, 40 runs + report".into(),
        vgrad: rows[0].vgrad,
        baseline: 2.5,
        baseline_name: "the target, 2.5 s".into(),
        unit: "s",
        target: Some(Target::AtMost(1.0)),
    });
    eprintln!("bench: whole remedies sweep");
    let remedies = whole("remedies")?;
    let mut times = Vec::new();
    for _ in 0..b.reps.min(2) {
        let t = Instant::now();
        remedies()?;
        times.push(t.elapsed().as_secs_f64());
    }
    rows.push(Row {
        what: "whole remedies sweep, 195 runs + report".into(),
        vgrad: median(&times),
        baseline: f64::NAN,
        baseline_name: "-".into(),
        unit: "s",
        target: None,
    });
    Ok(rows)
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("vgrad-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_baselines_json_lines() {
        let out = "noise\n{\"us_per_member_step\": 250.5, \"steps\": 10, \"test_acc\": 0.875}\n\
                   {\"us_per_member_step\": 70, \"test_acc\": 0.5}\n";
        let runs = parse_baseline(out).unwrap();
        let pairs: Vec<(f64, f64)> = runs
            .iter()
            .map(|r| (r.us_per_member_step, r.test_acc))
            .collect();
        assert_eq!(pairs, vec![(250.5, 0.875), (70.0, 0.5)]);
        assert!(parse_baseline("{\"steps\": 3}").is_err());
        let no_accuracy = parse_baseline("{\"us_per_member_step\": 70}").unwrap_err();
        assert!(
            no_accuracy.to_string().contains("no test_acc"),
            "{no_accuracy}"
        );
        assert!(parse_baseline("{broken").is_err());
    }

    #[test]
    fn a_run_replaces_its_own_cpus_section_and_keeps_the_others() {
        let first = merge_report(
            "# an old report without sections\n",
            "AMD EPYC",
            "## AMD\nrows a\n",
        );
        assert!(first.starts_with(REPORT_HEADER), "{first}");
        assert!(!first.contains("old report"), "{first}");
        assert_eq!(
            split_sections(&first),
            vec![("AMD EPYC".to_string(), "## AMD\nrows a".to_string())]
        );
        let both = merge_report(&first, "Intel(R) Xeon(R) Platinum", "## Xeon\nrows x");
        let again = merge_report(&both, "AMD EPYC", "## AMD\nrows b");
        assert_eq!(
            split_sections(&again),
            vec![
                ("AMD EPYC".to_string(), "## AMD\nrows b".to_string()),
                (
                    "Intel(R) Xeon(R) Platinum".to_string(),
                    "## Xeon\nrows x".to_string()
                ),
            ]
        );
        assert_eq!(merge_report(&again, "AMD EPYC", "## AMD\nrows b"), again);
    }

    #[test]
    fn figure_names_and_dates() {
        assert_eq!(
            slug("Intel(R) Xeon(R) Platinum 8480+"),
            "intel-r-xeon-r-platinum-8480"
        );
        assert_eq!(slug("AMD EPYC"), "amd-epyc");
        assert_eq!(civil_date(0), "1970-01-01");
        // 2026-12-06 is day 20,793 of the Unix epoch; 2024-02-29 a leap day.
        assert_eq!(civil_date(20_793), "2026-12-06");
        assert_eq!(civil_date(19_782), "2024-02-29");
        assert_eq!(civil_date(-1), "1969-12-31");
    }

    #[test]
    fn at_least_targets_read_the_other_way() {
        assert!(Target::AtLeast(0.75).met_by(0.8));
        assert!(!Target::AtLeast(0.75).met_by(0.7));
        assert!(Target::AtMost(1.0).met_by(1.0));
        assert_eq!(Target::AtLeast(0.75).to_string(), ">= 0.75");
        let accuracies = [Accuracy {
            what: "one run".into(),
            vgrad: 0.89451,
            baseline: 0.8767,
        }];
        assert!(
            render_accuracies(&accuracies).contains("| one run | 0.8945 | 0.8767 |"),
            "{}",
            render_accuracies(&accuracies)
        );
    }

    #[test]
    fn medians_and_table() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(fastest(&[3.0, f64::NAN, 1.5, 2.0]), 1.5);
        assert!(fastest(&[]).is_nan());
        let rows = [
            Row {
                what: "a".into(),
                vgrad: 100.0,
                baseline: 250.0,
                baseline_name: "torch".into(),
                unit: "us/step",
                target: Some(Target::AtMost(0.45)),
            },
            Row {
                what: "b".into(),
                vgrad: 60.0,
                baseline: 50.0,
                baseline_name: "torch".into(),
                unit: "us/step",
                target: Some(Target::AtMost(1.0)),
            },
            Row {
                what: "c".into(),
                vgrad: 3.25,
                baseline: f64::NAN,
                baseline_name: "-".into(),
                unit: "s",
                target: None,
            },
        ];
        let t = render_table(&rows);
        assert!(
            t.contains("| a | 100 | 250 (torch) | us/step | 0.40 | <= 0.45 | yes |"),
            "{t}"
        );
        assert!(
            t.contains("| b | 60.0 | 50.0 (torch) | us/step | 1.20 | <= 1 | **no** |"),
            "{t}"
        );
        assert!(t.contains("| c | 3.2 | - (-) | s | - | - | - |"), "{t}");
        assert_eq!(t.lines().count(), 5);
    }
}
