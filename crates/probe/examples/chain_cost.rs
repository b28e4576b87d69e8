//! What the hidden chain costs: `d h_(L-1) / d h_1` and its singular values for one
//! example of a tanh network at criticality with orthogonal weights, timed. `cargo xtask
//! bench --only probe` runs it on one thread and reads its last line:
//!
//! ```sh
//! RAYON_NUM_THREADS=1 cargo run --release -p vgrad-probe --example chain_cost -- 400 130 5
//! ```
//!
//! Arguments: the width, the dense layers (the chain has two fewer Jacobians) and the
//! repetitions. The last line is JSON: `{"width", "layers", "seconds": [one per rep]}`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use vgrad_model::{Mlp, MlpConfig};
use vgrad_probe::jacobian::chain_singular_values;
use vgrad_record::{Architecture, BranchScale, INPUT, Init, Norm};

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().with_context(|| format!("`{a}` is not a count")))
        .collect::<Result<_>>()?;
    let &[width, layers, reps] = args.as_slice() else {
        bail!("usage: chain_cost WIDTH LAYERS REPS (e.g. 400 130 5)");
    };
    if layers < 3 || width == 0 || reps == 0 {
        bail!("a chain needs at least 3 layers, a width and a repetition");
    }
    let sigma_w2 = 1.05;
    let cfg = MlpConfig {
        model: Architecture::Mlp,
        input: INPUT,
        width,
        layers,
        classes: 10,
        activation: vgrad_record::Activation::Tanh,
        init: Init::Orthogonal {
            gain: f64::sqrt(sigma_w2),
        },
        bias_variance: vgrad_theory::critical_bias_variance(
            vgrad_record::Activation::Tanh,
            sigma_w2,
        )
        .context("tanh has a critical sigma_b^2 at sigma_w^2 = 1.05")?,
        norm: Norm::None,
        residual: false,
        branch_scale: BranchScale::One,
    };
    let mlp = Mlp::init(&cfg, &[0], &VarMap::new(), &Device::Cpu)?;
    // One image-like example: pixels in [0, 1).
    let pixels: Vec<f32> = (0..INPUT)
        .map(|i| ((i * 37) % 101) as f32 / 101.0)
        .collect();
    let x = Tensor::from_vec(pixels, (1, 1, INPUT), &Device::Cpu)?;
    let mut seconds = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let values = chain_singular_values(&mlp, &x)?;
        std::hint::black_box(&values);
        seconds.push(t.elapsed().as_secs_f64());
        if values[0][0].len() != width {
            bail!(
                "expected {width} singular values, got {}",
                values[0][0].len()
            );
        }
    }
    println!(
        "{}",
        serde_json::json!({ "width": width, "layers": layers, "seconds": seconds })
    );
    Ok(())
}
