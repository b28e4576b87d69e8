//! `vgrad selftest`: a device against the CPU, from the same seed.

use std::time::Instant;

use anyhow::{Result, bail};
use candle_core::Device;
use vgrad_model::Kernels;
use vgrad_record::{RunConfig, StepRecord, VALIDATION_EXAMPLES};
use vgrad_train::{Discard, MemberOutcome, Trainer, data};

use crate::args::SelftestArgs;
use crate::device;

/// Relative difference, safe around zero.
fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

/// The largest relative difference between two records of the same step.
fn worst_difference(a: &StepRecord, b: &StepRecord) -> (f64, String) {
    let mut worst = (relative(a.loss, b.loss), "loss".to_string());
    for (la, lb) in a.layers.iter().zip(&b.layers) {
        for (name, x, y) in [
            ("grad_mean_abs", la.grad_mean_abs, lb.grad_mean_abs),
            ("weight_mean_abs", la.weight_mean_abs, lb.weight_mean_abs),
            ("delta_mean_abs", la.delta_mean_abs, lb.delta_mean_abs),
        ] {
            let d = relative(x, y);
            if d > worst.0 || d.is_nan() {
                worst = (d, format!("{name}/layer{}", la.layer));
            }
        }
    }
    worst
}

/// Trains the reference network a few steps from one seed on the CPU and on `--device`,
/// for sigmoid, ReLU and leaky ReLU, and compares every logged statistic. Both start from
/// the same weights (drawn on the CPU) and see the same batches, so the first logged step
/// must agree to float precision and later ones closely. Prints a markdown table and fails
/// if a difference is beyond tolerance.
pub fn selftest(args: &SelftestArgs) -> Result<()> {
    let (device, name) = device::select(args.device)?;
    let data = data::load(&args.data)?.split(VALIDATION_EXAMPLES)?;
    let train = |cfg: &RunConfig, device: &Device| -> Result<Vec<MemberOutcome>> {
        Ok(Trainer::new(cfg, &[args.seed], &data, device, Kernels::Fused)?.run(&mut Discard)?)
    };
    let (first_tol, later_tol) = (1e-4, 1e-2);
    println!("| activation | step | largest relative difference | in | verdict |");
    println!("| --- | --- | --- | --- | --- |");
    let mut failures = 0;
    let mut times = (0.0, 0.0);
    for activation in ["sigmoid", "relu", "leaky-relu:0.2"] {
        let cfg = RunConfig {
            activation: activation.parse()?,
            steps: args.steps,
            log_every: args.log_every,
            seed: args.seed,
            ..RunConfig::default()
        };
        let started = Instant::now();
        let cpu = train(&cfg, &Device::Cpu)?;
        times.0 += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let other = train(&cfg, &device)?;
        times.1 += started.elapsed().as_secs_f64();
        for (i, (a, b)) in cpu[0].records.iter().zip(&other[0].records).enumerate() {
            let (diff, what) = worst_difference(a, b);
            let tol = if i == 0 { first_tol } else { later_tol };
            let ok = diff <= tol;
            failures += usize::from(!ok);
            println!(
                "| {activation} | {} | {diff:.2e} | {what} | {} (tolerance {tol:.0e}) |",
                a.step,
                if ok { "ok" } else { "MISMATCH" }
            );
        }
        if cpu[0].records.len() != other[0].records.len() {
            failures += 1;
            println!(
                "| {activation} | | logged {} steps on the CPU, {} on {name} | | MISMATCH |",
                cpu[0].records.len(),
                other[0].records.len()
            );
        }
    }
    println!(
        "\nwall time for 3 x {} steps: cpu {:.2} s, {name} {:.2} s",
        args.steps, times.0, times.1
    );
    if failures > 0 {
        bail!("{failures} comparisons of {name} against the CPU are beyond tolerance");
    }
    println!("{name} agrees with the CPU");
    Ok(())
}
