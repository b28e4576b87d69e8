//! `vgrad peak`: the f32 matrix-multiply rate of this machine with candle's CPU kernels.

use std::time::Instant;

use anyhow::{Result, bail};
use candle_core::{Device, Tensor};

/// Repetitions of the product; the fastest counts.
const REPS: usize = 5;

/// Times an n x n by n x n product (2 n^3 flops) on the CPU, the fastest of [`REPS`]
/// after one warm-up, and prints `{"size": n, "gflops": ...}`.
pub fn peak(args: &crate::args::PeakArgs) -> Result<()> {
    let n = args.size;
    if !(16..=8192).contains(&n) {
        bail!("--size {n}: expected a side between 16 and 8192");
    }
    let a = Tensor::rand(0f32, 1f32, (n, n), &Device::Cpu)?;
    let b = Tensor::rand(0f32, 1f32, (n, n), &Device::Cpu)?;
    a.matmul(&b)?;
    let mut best = f64::INFINITY;
    for _ in 0..REPS {
        let start = Instant::now();
        let c = a.matmul(&b)?;
        best = best.min(start.elapsed().as_secs_f64());
        drop(c);
    }
    let gflops = 2.0 * (n as f64).powi(3) / best / 1e9;
    println!("{{\"size\": {n}, \"gflops\": {gflops:.3}}}");
    Ok(())
}
