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
    /// The target on vgrad / baseline, if any, e.g. "<= 0.45".
    pub target: Option<f64>,
}

impl Row {
    /// vgrad / baseline.
    pub fn ratio(&self) -> f64 {
        self.vgrad / self.baseline
    }

    /// Whether the ratio meets the target (`None` without a target).
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| self.ratio() <= t)
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

/// Microseconds per member and step from the baseline's JSON lines, one per run.
pub fn parse_baseline(stdout: &str) -> Result<Vec<f64>> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).with_context(|| format!("baseline printed {l:?}"))?;
            v["us_per_member_step"]
                .as_f64()
                .with_context(|| format!("no us_per_member_step in {l:?}"))
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
                r.target.map_or("-".into(), |t| format!("<= {t}")),
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
        let steps_per_s = summary["steps_per_s"].as_f64().context("no steps_per_s")?;
        Ok(1e6 / steps_per_s / members as f64)
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
        let summary = if members > 1 {
            out.join("seed-0")
        } else {
            out.clone()
        };
        let text = std::fs::read_to_string(summary.join("summary.json"))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The PyTorch baseline with ARGS; microseconds per member and step of each run.
    fn baseline(&self, args: &[&str]) -> Result<Vec<f64>> {
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
        self.baseline(args)?
            .first()
            .copied()
            .context("the baseline reported no run")
    }
}

/// The machine, for the report.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores, {cpu}; {rustc}, candle 0.11.1")
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
}

/// The reference network's rows.
pub fn reference(b: &Bench) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    eprintln!("bench: single run, reference network (K = 1)");
    let (ours, theirs) = b.alternate(
        &|| b.vgrad(&["--activation", "relu"], 1),
        &[&|| b.first(&["single"]), &|| {
            b.first(&["single", "--fused"])
        }],
    )?;
    rows.push(Row {
        what: "reference step, one run (K = 1)".into(),
        vgrad: ours,
        baseline: theirs[1],
        baseline_name: "PyTorch, fused Adam".into(),
        unit: "us/step",
        target: Some(0.45),
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
            &|| b.vgrad(&["--activation", "relu", "--seeds", &seeds], k),
            &[&|| b.first(&["ensemble", "--members", &members, "--fused"])],
        )?;
        rows.push(Row {
            what: format!("reference step, ensemble of {k}"),
            vgrad: ours,
            baseline: theirs[0],
            baseline_name: "PyTorch baddbmm ensemble, fused Adam".into(),
            unit: "us/member-step",
            target: Some(0.6),
        });
    }
    Ok(rows)
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
        target: Some(1.03),
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
    Ok(rows)
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
        target: Some(1.0),
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
    let settings: [(&str, &[&str], Option<f64>); 5] = [
        ("batch norm", &["--norm", "batch"], Some(1.3)),
        ("layer norm", &["--norm", "layer"], Some(1.3)),
        ("residual", &["--residual"], Some(1.3)),
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
                target: Some(1.0),
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
        target: Some(1.0),
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
            target: Some(0.2),
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
/// run also writes `reports/bench.md` and the scaling figure beside it. Returns where the
/// report is, when it wrote one.
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
    if wanted(Section::Reference) {
        rows.extend(reference(&b)?);
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
    let scaling = if wanted(Section::Scaling) {
        let (ours, theirs) = scaling::peak(&b)?;
        Some((scaling::measure(&b)?, ours, theirs))
    } else {
        None
    };
    let mut text = format!(
        "# Benchmark: vgrad against PyTorch\n\nMachine: {}. Baseline: {} (`bench/pytorch_baseline.py`, one thread).\n\n\
         Medians of {reps} repetitions, vgrad and the baseline run alternately in one invocation of `cargo xtask bench`; \
         step times are the training loop's (data loading and evaluation excluded), with the reference logging (every \
         200 steps) unless the row says otherwise. Lower is better; a ratio below 1 means vgrad is faster.\n\n{}",
        machine(),
        torch_version(&python),
        render_table(&rows)
    );
    let figure = workspace_root().join("reports").join("bench-scaling.svg");
    if let Some((points, ours, theirs)) = &scaling {
        let peak = ours.max(*theirs);
        text.push_str(&format!(
            "\n## Scaling: 6 dense layers, width and batch\n\n\
             ReLU, fused Adam, logging every 200 steps (vgrad without the Jacobian, which \
             PyTorch does not measure); about a second of steps per size, and at least 200, so \
             that step 0 is the only logged step in 200 as at the reference. FLOPs per step count \
             the forward and backward products, biases, activations, the loss and Adam \
             (`xtask/src/bench/scaling.rs`, `flops_per_step`). The peak is this machine's \
             single-thread f32 GEMM of 1024 x 1024 matrices: {ours:.0} GFLOP/s with candle's \
             kernels (`vgrad peak`), {theirs:.0} GFLOP/s with PyTorch's; the better, \
             {peak:.0} GFLOP/s, is the 100%.\n\n{}\n![scaling](bench-scaling.svg)\n",
            scaling::render(points, peak)
        ));
        if sections.is_empty() {
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
    std::fs::write(&path, &text)?;
    Ok(Some(path))
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
        target: Some(1.0),
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
        let out =
            "noise\n{\"us_per_member_step\": 250.5, \"steps\": 10}\n{\"us_per_member_step\": 70}\n";
        assert_eq!(parse_baseline(out).unwrap(), vec![250.5, 70.0]);
        assert!(parse_baseline("{\"steps\": 3}").is_err());
        assert!(parse_baseline("{broken").is_err());
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
                target: Some(0.45),
            },
            Row {
                what: "b".into(),
                vgrad: 60.0,
                baseline: 50.0,
                baseline_name: "torch".into(),
                unit: "us/step",
                target: Some(1.0),
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
