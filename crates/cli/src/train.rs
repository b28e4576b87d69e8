//! The training loop: K seeds of one configuration trained together as an ensemble.

use anyhow::{Context, Result};
use candle_core::{D, Device, Module, Tensor};
use candle_nn::VarMap;
use vgrad_model::seeding::{self, Stream};
use vgrad_model::{Kernels, Mlp};
use vgrad_probe::{DeltaTaps, StepRecord, probe_step};

use crate::adam::Adam;
use crate::config::RunConfig;
use crate::data::{BatchSampler, ImageSet, Splits};

/// Receives what training produces while it runs.
pub trait StepSink {
    /// A logged step of member `member` (index into the seeds).
    fn logged(&mut self, member: usize, record: &StepRecord) -> Result<()>;
    /// `done` of the configured steps are finished.
    fn progress(&mut self, done: usize);
}

/// What one member's training produced.
#[derive(Debug, Clone)]
pub struct MemberOutcome {
    /// The member's seed.
    pub seed: u64,
    /// Its logged steps.
    pub records: Vec<StepRecord>,
    /// Accuracy on the validation images at the end.
    pub val_acc: f64,
    /// Accuracy on the test images at the end (NaN for a diverged member).
    pub test_acc: f64,
    /// The step at which the loss or a gradient stopped being finite; the member was
    /// frozen there.
    pub diverged_at: Option<usize>,
    /// Seconds the training loop took (for the whole ensemble; evaluation excluded).
    pub train_s: f64,
}

/// Trains one member per seed with the configuration `cfg` (whose own `seed` is ignored):
/// each member draws its own initial weights and its own batches from its seed, and its
/// numbers are bit-identical to training that seed alone. A member whose loss or gradient
/// stops being finite is recorded as diverged at that step and frozen; the others go on
/// exactly as they would alone.
///
/// `kernels` picks vgrad's fused CPU ops (and the in-place Adam step) or candle's plain
/// ops (and an Adam step of tensor ops): the reference the fast path is tested against.
pub fn train_ensemble(
    cfg: &RunConfig,
    seeds: &[u64],
    data: &Splits,
    device: &Device,
    kernels: Kernels,
    sink: &mut dyn StepSink,
) -> Result<Vec<MemberOutcome>> {
    let k = seeds.len();
    let b = cfg.batch_size;
    let pixels = data.train.pixels();
    let model_cfg = cfg.model();
    let varmap = VarMap::new();
    let model = Mlp::init(&model_cfg, seeds, &varmap, device)?.with_kernels(kernels);
    let vars = {
        let vars = varmap
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("the VarMap lock is poisoned"))?;
        model_cfg
            .param_names()
            .iter()
            .map(|name| {
                vars.get(name)
                    .cloned()
                    .with_context(|| format!("no variable {name}"))
            })
            .collect::<Result<Vec<_>>>()?
    };
    let mut adam = match kernels {
        Kernels::Fused => Adam::new(vars, cfg.adam, k)?,
        Kernels::Candle => Adam::with_tensor_ops(vars, cfg.adam, k)?,
    };
    let mut samplers: Vec<BatchSampler> = seeds
        .iter()
        .map(|&s| BatchSampler::new(data.train.len(), seeding::rng(s, Stream::Data)))
        .collect();
    let mut outcomes: Vec<MemberOutcome> = seeds
        .iter()
        .map(|&seed| MemberOutcome {
            seed,
            records: Vec::new(),
            val_acc: f64::NAN,
            test_acc: f64::NAN,
            diverged_at: None,
            train_s: f64::NAN,
        })
        .collect();

    let mut indices = vec![0u32; b];
    let mut x = vec![0f32; k * b * pixels];
    let mut y = vec![0u32; k * b];
    let started = std::time::Instant::now();
    for step in 0..cfg.steps {
        for (m, sampler) in samplers.iter_mut().enumerate() {
            sampler.fill(&mut indices);
            data.train.gather(
                &indices,
                &mut x[m * b * pixels..(m + 1) * b * pixels],
                &mut y[m * b..(m + 1) * b],
            );
        }
        let xs = Tensor::from_slice(&x, (k, b, pixels), device)?;
        let ys = Tensor::from_slice(&y, (k, b, 1), device)?;
        let taps = if step % cfg.log_every == 0 {
            Some(DeltaTaps::new(&model, b, device)?)
        } else {
            None
        };
        let trace = model.forward_traced(&xs, taps.as_ref().map(DeltaTaps::tensors))?;
        // Each member's mean cross-entropy, summed over members: every member gets exactly
        // the gradient it would get alone (a mean over all K*B rows would scale it by 1/K).
        let picked =
            candle_nn::ops::log_softmax(&trace.logits, D::Minus1)?.gather(&ys, D::Minus1)?;
        let member_sums = picked.sum(1)?;
        let loss = (member_sums.sum_all()? * (-1.0 / b as f64))?;
        let grads = loss.backward()?;

        // Divergence shows as a non-finite loss or gradient; members are independent, so
        // one member's NaN reaches no other member's numbers.
        let sums = member_sums.flatten_all()?.to_vec1::<f32>()?;
        let bad_grads = adam.nonfinite_members(&grads)?;
        for (m, outcome) in outcomes.iter_mut().enumerate() {
            if outcome.diverged_at.is_none() && (!sums[m].is_finite() || bad_grads[m]) {
                outcome.diverged_at = Some(step);
                tracing::warn!(
                    seed = outcome.seed,
                    step,
                    "diverged: the loss or a gradient is not finite; this run stops here"
                );
            }
        }
        let frozen: Vec<bool> = outcomes.iter().map(|o| o.diverged_at.is_some()).collect();
        if frozen.iter().all(|&f| f) {
            break;
        }

        if let Some(taps) = &taps {
            let layers = probe_step(&model, &grads, &trace, taps)?;
            let picked = picked.flatten_all()?.to_vec1::<f32>()?;
            let predicted = trace
                .logits
                .argmax(D::Minus1)?
                .flatten_all()?
                .to_vec1::<u32>()?;
            for (m, layers) in layers.into_iter().enumerate() {
                if frozen[m] {
                    continue;
                }
                let rows = m * b..(m + 1) * b;
                let loss = -picked[rows.clone()]
                    .iter()
                    .map(|&v| f64::from(v))
                    .sum::<f64>()
                    / b as f64;
                let correct = predicted[rows.clone()]
                    .iter()
                    .zip(&y[rows])
                    .filter(|(p, t)| p == t)
                    .count();
                let record = StepRecord {
                    step,
                    loss,
                    train_acc: correct as f64 / b as f64,
                    layers,
                };
                sink.logged(m, &record)?;
                outcomes[m].records.push(record);
            }
        }
        adam.step(&grads, &frozen)?;
        sink.progress(step + 1);
    }

    let train_s = started.elapsed().as_secs_f64();
    outcomes.iter_mut().for_each(|o| o.train_s = train_s);

    let val = accuracy(&model, &data.val, device)?;
    let test = accuracy(&model, &data.test, device)?;
    for ((outcome, val), test) in outcomes.iter_mut().zip(val).zip(test) {
        if outcome.diverged_at.is_none() {
            outcome.val_acc = val;
            outcome.test_acc = test;
        }
    }
    Ok(outcomes)
}

/// Each member's accuracy on `set`, evaluated in chunks to bound memory.
pub fn accuracy(model: &Mlp, set: &ImageSet, device: &Device) -> Result<Vec<f64>> {
    const CHUNK: usize = 1_000;
    let k = model.members();
    let pixels = set.pixels();
    let mut correct = vec![0usize; k];
    let all: Vec<u32> = (0..set.len() as u32).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for chunk in all.chunks(CHUNK) {
        let n = chunk.len();
        x.resize(n * pixels, 0f32);
        y.resize(n, 0u32);
        set.gather(chunk, &mut x, &mut y);
        let xs = Tensor::from_slice(&x, (1, n, pixels), device)?.repeat((k, 1, 1))?;
        let predicted = model.forward(&xs)?.argmax(D::Minus1)?.to_vec2::<u32>()?;
        for (c, row) in correct.iter_mut().zip(&predicted) {
            *c += row.iter().zip(&y).filter(|(p, t)| p == t).count();
        }
    }
    Ok(correct
        .into_iter()
        .map(|c| c as f64 / set.len().max(1) as f64)
        .collect())
}
