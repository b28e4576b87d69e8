//! The training loop: K seeds of one configuration trained together as an ensemble.

use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{D, Device, Tensor};
use candle_nn::VarMap;
use vgrad_model::seeding::{self, Stream};
use vgrad_model::{EnsembleLoss, ForwardTrace, Kernels, Mlp, MlpConfig, ensemble_cross_entropy};
use vgrad_probe::jacobian::jacobian_spectra;
use vgrad_probe::{DeltaTaps, probe_step};
use vgrad_record::probe::jacobian_examples;
use vgrad_record::summary::FIT_EXAMPLES;
use vgrad_record::{
    ChainSpectrum, Outcome, Phase, RegressionClass, RunConfig, RunStatus, RunSummary, StepRecord,
};

use crate::TrainError;
use crate::clipping::clip_by_global_norm;
use crate::data::{BatchSampler, Splits};
use crate::evaluation::{accuracy, fit};
use crate::optimizer::EnsembleOptimizer;
use crate::step_times::StepTimes;
use crate::updates::Snapshot;

/// Receives what training produces while it runs.
pub trait StepSink {
    /// A logged step of member `member` (index into the seeds).
    fn logged(&mut self, member: usize, record: &StepRecord) -> Result<(), TrainError>;
    /// `done` of the configured steps are finished.
    fn progress(&mut self, done: usize);
}

/// A sink that keeps nothing: the records come back in the outcomes anyway.
pub struct Discard;

impl StepSink for Discard {
    fn logged(&mut self, _member: usize, _record: &StepRecord) -> Result<(), TrainError> {
        Ok(())
    }

    fn progress(&mut self, _done: usize) {}
}

/// What one member's training produced.
#[derive(Debug, Clone)]
pub struct MemberOutcome {
    /// The member's seed.
    pub seed: u64,
    /// Its logged steps.
    pub records: Vec<StepRecord>,
    /// Accuracy on the validation images at the end (NaN for a diverged member).
    pub val_acc: f64,
    /// Accuracy on the test images at the end (NaN for a diverged member).
    pub test_acc: f64,
    /// Mean cross-entropy and accuracy on the first [`FIT_EXAMPLES`] training images at
    /// the end (NaN for a diverged member).
    pub train_fit: (f64, f64),
    /// A regression task's mean squared error on its test sequences at the end (NaN for
    /// a classification and a diverged member).
    pub test_mse: f64,
    /// How it ended: a member whose loss or gradient stopped being finite was frozen at
    /// that step.
    pub status: RunStatus,
    /// Seconds the training loop took (for the whole ensemble; evaluation excluded).
    pub train_s: f64,
    /// The median microseconds of a step that was not logged, and of a logged step after
    /// step 0 (for the whole ensemble; NaN for none).
    pub step_us: f64,
    /// See `step_us`.
    pub logged_step_us: f64,
    /// Steps whose gradients were clipped (`--clip-norm`), among the steps it trained.
    pub clipped_steps: usize,
    /// Steps it trained (up to its divergence).
    pub steps_trained: usize,
}

impl MemberOutcome {
    /// A member of seed `seed` before its first step.
    pub fn start(seed: u64) -> Self {
        Self {
            seed,
            records: Vec::new(),
            val_acc: f64::NAN,
            test_acc: f64::NAN,
            train_fit: (f64::NAN, f64::NAN),
            test_mse: f64::NAN,
            status: RunStatus::Ok,
            train_s: f64::NAN,
            step_us: f64::NAN,
            logged_step_us: f64::NAN,
            clipped_steps: 0,
            steps_trained: 0,
        }
    }

    /// The member's `summary.json` for configuration `cfg`: `wall_s` from the first step
    /// to the end of the evaluation, in an ensemble of `ensemble_size`. Its averages over
    /// steps read the steps of the `--log-every` grid only.
    pub fn summary(&self, cfg: &RunConfig, wall_s: f64, ensemble_size: usize) -> RunSummary {
        let on_grid: Vec<StepRecord> = self
            .records
            .iter()
            .filter(|r| cfg.on_log_grid(r.step))
            .cloned()
            .collect();
        let mut summary = RunSummary::new(&Outcome {
            seed: self.seed,
            status: self.status,
            records: &on_grid,
            test_acc: self.test_acc,
            val_acc: self.val_acc,
            steps: cfg.steps,
            wall_s,
            train_s: self.train_s,
            step_us: self.step_us,
            logged_step_us: self.logged_step_us,
            ensemble_size,
        });
        if cfg.clip_norm > 0.0 {
            summary.clipped_frac =
                Some(self.clipped_steps as f64 / self.steps_trained.max(1) as f64);
        }
        let (train_loss, train_acc) = self.train_fit;
        if self.status.is_ok() && train_loss.is_finite() {
            summary.train_loss = Some(train_loss);
            summary.train_acc = Some(train_acc);
        }
        if cfg.task.is_regression() {
            let ok = self.status.is_ok() && self.test_mse.is_finite();
            summary.test_mse = ok.then_some(self.test_mse);
            summary.regression_outcome = Some(RegressionClass::of(self.status, self.test_mse));
            // Accuracy classes describe a classifier; the regression class replaces them.
            summary.outcome = None;
        }
        summary.chi1_theory = vgrad_theory::run_chi1(cfg);
        summary.phase_start = summary
            .chi1_theory
            .and_then(|chi1| Phase::of(chi1, cfg.layers.saturating_sub(2)));
        summary
    }
}

/// Each member's batch sampler, and reused buffers for the indices and the labels of the
/// step's batches (the labels read again by the logged measurements).
struct Batches {
    samplers: Vec<BatchSampler>,
    indices: Vec<u32>,
    y: Vec<u32>,
}

/// K members of one configuration (whose own `seed` is ignored): each member draws its
/// own initial weights and its own batches from its seed, and its numbers are
/// bit-identical to training that seed alone. A member whose loss or gradient stops
/// being finite is recorded as diverged at that step and frozen; the others go on
/// exactly as they would alone.
pub struct Trainer<'a> {
    cfg: RunConfig,
    data: &'a Splits,
    device: Device,
    model: Mlp,
    optimizer: EnsembleOptimizer,
    batches: Batches,
    outcomes: Vec<MemberOutcome>,
    /// The test images the Jacobian is measured on, `[K, E, pixels]`, the same for every
    /// member and step.
    probe_examples: Tensor,
}

impl<'a> Trainer<'a> {
    /// A trainer of one member per seed. `kernels` picks vgrad's fused CPU ops (and the
    /// in-place optimizer step) or candle's plain ops (and an optimizer step of tensor ops): the
    /// reference the fast path is tested against.
    pub fn new(
        cfg: &RunConfig,
        seeds: &[u64],
        data: &'a Splits,
        device: &Device,
        kernels: Kernels,
    ) -> Result<Self, TrainError> {
        let model_cfg = MlpConfig::for_run(cfg)?;
        let varmap = VarMap::new();
        let model = Mlp::init(&model_cfg, seeds, &varmap, device)?.with_kernels(kernels);
        let vars = named_vars(&varmap, model_cfg.param_names())?;
        let optimizer = EnsembleOptimizer::new(vars, cfg, seeds.len(), kernels)?;
        let (k, b) = (seeds.len(), cfg.batch_size);
        let batches = Batches {
            samplers: seeds
                .iter()
                .map(|&s| BatchSampler::new(data.train.len(), seeding::rng(s, Stream::Data)))
                .collect(),
            indices: vec![0; k * b],
            y: Vec::with_capacity(k * b),
        };
        let probe_examples = probe_examples(data, cfg, seeds.len(), device)?;
        let outcomes = seeds
            .iter()
            .map(|&seed| MemberOutcome::start(seed))
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            data,
            device: device.clone(),
            model,
            optimizer,
            batches,
            outcomes,
            probe_examples,
        })
    }

    /// Trains every configured step (or until every member diverged), hands each logged
    /// record to `sink`, then evaluates every member.
    pub fn run(mut self, sink: &mut dyn StepSink) -> Result<Vec<MemberOutcome>, TrainError> {
        let cfg = self.cfg.clone();
        let (train_s, times) = train_loop(&cfg, sink, |step, sink| self.step(step, sink))?;
        self.evaluate(train_s, &times)
    }

    /// One optimizer step of every member that has not diverged, probed and logged when
    /// `step` is a logged step. Returns false once every member has diverged.
    pub fn step(&mut self, step: usize, sink: &mut dyn StepSink) -> Result<bool, TrainError> {
        let (xs, ys) = self.next_batch()?;
        let taps = if self.cfg.logs_at(step) {
            Some(DeltaTaps::new(
                &self.model,
                self.cfg.batch_size,
                &self.device,
            )?)
        } else {
            None
        };
        let trace = self
            .model
            .forward_traced(&xs, taps.as_ref().map(DeltaTaps::tensors))?;
        let loss = ensemble_cross_entropy(&trace.logits, &ys)?;
        let grads = trace.backward(&loss.loss)?;
        // Every variable's gradient, gathered once for the finiteness check and the step.
        let param_grads = self.optimizer.gradients(&grads)?;
        let frozen = self.mark_diverged(step, &loss, &param_grads, &trace)?;
        if frozen.iter().all(|&f| f) {
            return Ok(false);
        }
        let records = match &taps {
            Some(taps) => Some(self.step_records(step, &trace, &loss, &grads, taps, &frozen)?),
            None => None,
        };
        // After the logged measurements, which see the running statistics of the steps
        // before this one, as the weights are those before this step's update.
        self.model.update_running_stats(&trace)?;
        let before = match records {
            Some(_) => Some(Snapshot::of(&self.model)?),
            None => None,
        };
        self.update(step, &param_grads, &frozen)?;
        if let (Some(records), Some(before)) = (records, before) {
            self.log(records, &before, sink)?;
        }
        Ok(true)
    }

    /// The optimizer's step for every member `frozen` does not mark: at step `step`'s
    /// learning rate (the warm-up's), each member's gradients clipped by their own global
    /// norm where `--clip-norm` is set, with the counts its summary reports.
    fn update(
        &mut self,
        step: usize,
        param_grads: &[&Tensor],
        frozen: &[bool],
    ) -> Result<(), TrainError> {
        update_members(
            &mut self.optimizer,
            &mut self.outcomes,
            &self.cfg,
            step,
            param_grads,
            frozen,
        )
    }

    /// Completes a logged step's records with the update ratios of the step just taken
    /// and hands them to `sink`.
    fn log(
        &mut self,
        records: Vec<Option<StepRecord>>,
        before: &Snapshot,
        sink: &mut dyn StepSink,
    ) -> Result<(), TrainError> {
        let ratios = before.ratios_to(&self.model)?;
        for (m, (record, ratios)) in records.into_iter().zip(ratios).enumerate() {
            let Some(mut record) = record else {
                continue;
            };
            for (layer, (weight, bias)) in record.layers.iter_mut().zip(ratios) {
                layer.update_ratio = weight;
                layer.bias_update_ratio = bias;
            }
            sink.logged(m, &record)?;
            self.outcomes[m].records.push(record);
        }
        Ok(())
    }

    /// The next batch of every member, as `[K, B, pixels]` images and `[K, B, 1]` labels.
    fn next_batch(&mut self) -> Result<(Tensor, Tensor), TrainError> {
        let (b, pixels) = (self.cfg.batch_size, self.data.train.pixels());
        let Batches {
            samplers,
            indices,
            y,
        } = &mut self.batches;
        let k = samplers.len();
        let mut x = Vec::with_capacity(k * b * pixels);
        y.clear();
        for (sampler, batch) in samplers.iter_mut().zip(indices.chunks_mut(b)) {
            sampler.fill(batch);
        }
        // One gather over every member's images, so that its prefetching runs ahead
        // across members' batches too.
        self.data.train.gather(indices, &mut x, y);
        let xs = Tensor::from_vec(x, (k, b, pixels), &self.device)?;
        let ys = Tensor::from_slice(y, (k, b, 1), &self.device)?;
        Ok((xs, ys))
    }

    /// Records the members whose loss or gradient stopped being finite at `step`, and
    /// returns which members are frozen. Members are independent, so one member's NaN
    /// reaches no other member's numbers.
    fn mark_diverged(
        &mut self,
        step: usize,
        loss: &EnsembleLoss,
        param_grads: &[&Tensor],
        trace: &ForwardTrace,
    ) -> Result<Vec<bool>, TrainError> {
        let sums = loss.picked.sum(1)?.flatten_all()?.to_vec1::<f32>()?;
        let optimizer = &self.optimizer;
        let bad_grads = crate::finite::nonfinite_members(
            optimizer.variables(),
            param_grads,
            optimizer.members(),
            |param| trace.known_finite(param),
        )?;
        let bad: Vec<bool> = sums
            .iter()
            .zip(bad_grads)
            .map(|(sum, grad)| !sum.is_finite() || grad)
            .collect();
        Ok(mark_diverged(&mut self.outcomes, step, &bad))
    }

    /// A logged step's records, one per member (`None` for a frozen one): loss, batch
    /// accuracy and the per-layer probe, the validation accuracy when `--eval-every`
    /// asks for it, and the Jacobian spectra when `--probe` does.
    fn step_records(
        &mut self,
        step: usize,
        trace: &ForwardTrace,
        loss: &EnsembleLoss,
        grads: &GradStore,
        taps: &DeltaTaps,
        frozen: &[bool],
    ) -> Result<Vec<Option<StepRecord>>, TrainError> {
        let b = self.cfg.batch_size;
        let layers = probe_step(&self.model, grads, trace, taps)?;
        let every = self.cfg.eval_every;
        let val_acc = if every > 0 && step.is_multiple_of(every) {
            Some(accuracy(&self.model, &self.data.val, &self.device)?)
        } else {
            None
        };
        let spectra = if self.cfg.probes_jacobian_at(step) {
            Some(jacobian_spectra(&self.model, &self.probe_examples)?)
        } else {
            None
        };
        let picked = loss.picked.flatten_all()?.to_vec1::<f32>()?;
        let predicted = trace
            .logits
            .argmax(D::Minus1)?
            .flatten_all()?
            .to_vec1::<u32>()?;
        let mut records = Vec::with_capacity(layers.len());
        for (m, mut layers) in layers.into_iter().enumerate() {
            if frozen[m] {
                records.push(None);
                continue;
            }
            let rows = m * b..(m + 1) * b;
            let member_loss = -picked[rows.clone()]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / b as f64;
            let correct = predicted[rows.clone()]
                .iter()
                .zip(&self.batches.y[rows])
                .filter(|(p, t)| p == t)
                .count();
            let spectrum = spectra.as_ref().map(|s| &s[m]);
            if let Some(spectrum) = spectrum {
                for (layer, jacobian) in layers.iter_mut().zip(&spectrum.layers) {
                    layer.jacobian = Some(*jacobian);
                }
            }
            let examples = self.probe_examples.dim(1)?;
            records.push(Some(StepRecord {
                step,
                loss: member_loss,
                train_acc: correct as f64 / b as f64,
                val_acc: val_acc.as_ref().map(|v| v[m]),
                jacobian: spectrum.and_then(|s| s.network),
                chain: spectrum
                    .filter(|s| !s.chain.is_empty())
                    .map(|s| ChainSpectrum::of(&s.chain, examples)),
                layers,
                time: None,
            }));
        }
        Ok(records)
    }

    /// Every member's validation and test accuracy after training, and the loop's times.
    fn evaluate(
        mut self,
        train_s: f64,
        times: &StepTimes,
    ) -> Result<Vec<MemberOutcome>, TrainError> {
        let val = accuracy(&self.model, &self.data.val, &self.device)?;
        let test = accuracy(&self.model, &self.data.test, &self.device)?;
        let train = fit(&self.model, &self.data.train, FIT_EXAMPLES, &self.device)?;
        let (step_us, logged_step_us) = (times.step_us(), times.logged_step_us());
        for (((outcome, val), test), train) in
            self.outcomes.iter_mut().zip(val).zip(test).zip(train)
        {
            outcome.train_s = train_s;
            outcome.step_us = step_us;
            outcome.logged_step_us = logged_step_us;
            if outcome.status.is_ok() {
                outcome.val_acc = val;
                outcome.test_acc = test;
                outcome.train_fit = train;
            }
        }
        Ok(self.outcomes)
    }
}

/// The first test images, as many as the Jacobian is measured on for this width, for
/// each of `members` members: `[members, E, pixels]`.
fn probe_examples(
    data: &Splits,
    cfg: &RunConfig,
    members: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let n = jacobian_examples(cfg.width).min(data.test.len());
    let indices: Vec<u32> = (0..n as u32).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    data.test.gather(&indices, &mut x, &mut y);
    Tensor::from_vec(x, (1, n, data.test.pixels()), device)?.repeat((members, 1, 1))
}

/// The variables of `varmap` named `names`, in that order, for the optimizer.
pub(crate) fn named_vars(
    varmap: &VarMap,
    names: impl IntoIterator<Item = String>,
) -> Result<Vec<(String, candle_core::Var)>, TrainError> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| TrainError::Internal("the VarMap lock is poisoned".into()))?;
    names
        .into_iter()
        .map(|name| match vars.get(&name).cloned() {
            Some(var) => Ok((name, var)),
            None => Err(TrainError::Internal(format!("no variable {name}"))),
        })
        .collect()
}

/// Records as diverged at `step` the members still training that `bad` marks (a loss or
/// gradient that is not finite), and returns which members are frozen. Members are
/// independent, so one member's NaN reaches no other member's numbers.
pub(crate) fn mark_diverged(
    outcomes: &mut [MemberOutcome],
    step: usize,
    bad: &[bool],
) -> Vec<bool> {
    for (outcome, &bad) in outcomes.iter_mut().zip(bad) {
        if outcome.status.is_ok() && bad {
            outcome.status = RunStatus::Diverged { step };
            tracing::warn!(
                seed = outcome.seed,
                step,
                "diverged: the loss or a gradient is not finite; this run stops here"
            );
        }
    }
    outcomes.iter().map(|o| !o.status.is_ok()).collect()
}

/// The optimizer's step for every member `frozen` does not mark: at step `step`'s
/// learning rate (the warm-up's), each member's gradients clipped by their own global
/// norm where `--clip-norm` is set, with the counts its summary reports.
pub(crate) fn update_members(
    optimizer: &mut EnsembleOptimizer,
    outcomes: &mut [MemberOutcome],
    cfg: &RunConfig,
    step: usize,
    param_grads: &[&Tensor],
    frozen: &[bool],
) -> Result<(), TrainError> {
    for (outcome, _) in outcomes.iter_mut().zip(frozen).filter(|(_, f)| !**f) {
        outcome.steps_trained += 1;
    }
    if cfg.warmup_steps > 0 {
        optimizer.set_learning_rate(cfg.lr_at(step));
    }
    if cfg.clip_norm <= 0.0 {
        optimizer.step_with(param_grads, frozen)?;
        return Ok(());
    }
    let clipped = clip_by_global_norm(param_grads, frozen.len(), cfg.clip_norm)?;
    for ((outcome, &was), &f) in outcomes.iter_mut().zip(&clipped.clipped).zip(frozen) {
        if was && !f {
            outcome.clipped_steps += 1;
        }
    }
    let grads: Vec<&Tensor> = clipped.grads.iter().collect();
    optimizer.step_with(&grads, frozen)?;
    Ok(())
}

/// Runs `step` for each of `cfg`'s steps until it returns false (every member diverged),
/// timing each and reporting progress to `sink`: the seconds the loop took and the step
/// times, logged steps apart.
pub(crate) fn train_loop(
    cfg: &RunConfig,
    sink: &mut dyn StepSink,
    mut step: impl FnMut(usize, &mut dyn StepSink) -> Result<bool, TrainError>,
) -> Result<(f64, StepTimes), TrainError> {
    let started = Instant::now();
    let mut times = StepTimes::with_capacity(cfg.steps);
    for s in 0..cfg.steps {
        let step_started = Instant::now();
        if !step(s, sink)? {
            break;
        }
        times.add(
            s,
            cfg.logs_at(s),
            step_started.elapsed().as_secs_f64() * 1e6,
        );
        sink.progress(s + 1);
    }
    Ok((started.elapsed().as_secs_f64(), times))
}
