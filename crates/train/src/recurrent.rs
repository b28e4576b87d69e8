//! The training loop of a recurrent network (`--model rnn | lstm | gru`): K seeds trained
//! together as an ensemble, on row-sequential MNIST or the adding problem, probed
//! through time at the logged steps.

use candle_core::{D, Device, Tensor, Var};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use vgrad_model::recurrent::{Recurrent, RecurrentConfig};
use vgrad_model::seeding::{self, Stream};
use vgrad_model::{Kernels, ensemble_cross_entropy, ensemble_mse};
use vgrad_probe::through_time::{probe_through_time, time_jacobians};
use vgrad_record::probe::jacobian_examples;
use vgrad_record::summary::FIT_EXAMPLES;
use vgrad_record::{Probe, RunConfig, StepRecord, Task};

use crate::TrainError;
use crate::data::adding::{AddingProblem, SequenceSet};
use crate::data::{BatchSampler, Splits};
use crate::evaluation::{accuracy, fit, regression_mse};
use crate::optimizer::EnsembleOptimizer;
use crate::step_times::StepTimes;
use crate::trainer::{
    MemberOutcome, StepSink, mark_diverged, named_vars, train_loop, update_members,
};

/// Test sequences of the adding problem per seed: Le et al. 2015's 10,000.
pub const ADDING_TEST_EXAMPLES: usize = 10_000;

/// Where a recurrent network's batches come from.
enum Batches<'a> {
    /// MNIST images read row by row: each member samples its own batches from its seed.
    Images {
        data: &'a Splits,
        samplers: Vec<BatchSampler>,
        indices: Vec<u32>,
        labels: Vec<u32>,
    },
    /// The adding problem: fresh sequences every step from each member's own generator
    /// (an unlimited training set), and a fixed test set per member.
    Adding {
        problem: AddingProblem,
        generators: Vec<ChaCha8Rng>,
        test: Vec<SequenceSet>,
    },
}

/// A step's batch: inputs `[K, B, T, features]` and targets (labels `[K, B, 1]` or sums
/// `[K, B, 1]`).
struct Batch {
    xs: Tensor,
    targets: Tensor,
}

/// A step's loss, with what the records and the divergence check read per member.
struct StepLoss {
    /// The scalar to back-propagate.
    loss: Tensor,
    /// Each member's mean loss on its batch.
    member_loss: Vec<f64>,
    /// Each member's batch accuracy (NaN for the adding problem).
    member_acc: Vec<f64>,
}

/// K members of one recurrent configuration (whose own `seed` is ignored), each
/// bit-identical to training its seed alone, as [`crate::Trainer`]'s; a member whose loss
/// or gradient stops being finite is frozen at that step.
pub struct RecurrentTrainer<'a> {
    cfg: RunConfig,
    device: Device,
    model: Recurrent,
    optimizer: EnsembleOptimizer,
    batches: Batches<'a>,
    outcomes: Vec<MemberOutcome>,
}

impl<'a> RecurrentTrainer<'a> {
    /// A trainer of one member per seed on `data` (MNIST, for `--task mnist`; `None`
    /// serves the adding problem, which generates its sequences from each seed).
    pub fn new(
        cfg: &RunConfig,
        seeds: &[u64],
        data: Option<&'a Splits>,
        device: &Device,
        kernels: Kernels,
    ) -> Result<Self, TrainError> {
        let model_cfg = RecurrentConfig::for_run(cfg)?;
        model_cfg.validate()?;
        let varmap = VarMap::new();
        let model = Recurrent::init(&model_cfg, seeds, &varmap, device)?.with_kernels(kernels);
        let names = RecurrentConfig::param_names().map(String::from);
        let vars = named_vars(&varmap, names)?;
        let optimizer = EnsembleOptimizer::new(vars, cfg, seeds.len(), kernels)?;
        let batches = match (cfg.task, data) {
            (Task::Mnist, Some(data)) => Batches::Images {
                data,
                samplers: seeds
                    .iter()
                    .map(|&s| BatchSampler::new(data.train.len(), seeding::rng(s, Stream::Data)))
                    .collect(),
                indices: vec![0; seeds.len() * cfg.batch_size],
                labels: Vec::new(),
            },
            (Task::Mnist, None) => {
                return Err(TrainError::Internal(
                    "row-sequential MNIST needs the MNIST images".into(),
                ));
            }
            (Task::Adding, _) => {
                let problem = AddingProblem::new(cfg.sequence_length)?;
                Batches::Adding {
                    problem,
                    generators: seeds
                        .iter()
                        .map(|&s| seeding::rng(s, Stream::TaskTrain))
                        .collect(),
                    test: seeds
                        .iter()
                        .map(|&s| problem.sets(s, 0, ADDING_TEST_EXAMPLES).test)
                        .collect(),
                }
            }
        };
        Ok(Self {
            cfg: cfg.clone(),
            device: device.clone(),
            model,
            optimizer,
            batches,
            outcomes: seeds.iter().map(|&s| MemberOutcome::start(s)).collect(),
        })
    }

    /// Trains every configured step (or until every member diverged), hands each logged
    /// record to `sink`, then evaluates every member.
    pub fn run(mut self, sink: &mut dyn StepSink) -> Result<Vec<MemberOutcome>, TrainError> {
        let cfg = self.cfg.clone();
        let (train_s, times) = train_loop(&cfg, sink, |step, sink| self.step(step, sink))?;
        self.evaluate(train_s, &times)
    }

    /// One optimizer step of every member that has not diverged, probed through time and
    /// logged when `step` is a logged step. Returns false once every member has diverged.
    pub fn step(&mut self, step: usize, sink: &mut dyn StepSink) -> Result<bool, TrainError> {
        let batch = self.next_batch()?;
        let logged = self.cfg.logs_at(step);
        let steps = batch.xs.dim(2)?;
        let taps: Vec<Var> = if logged {
            self.model.zero_taps(self.cfg.batch_size, steps)?
        } else {
            Vec::new()
        };
        let tap_tensors: Vec<Tensor> = taps.iter().map(|v| v.as_tensor().clone()).collect();
        let trace = self
            .model
            .forward_traced(&batch.xs, logged.then_some(tap_tensors.as_slice()))?;
        let loss = self.loss(&trace.outputs, &batch.targets)?;
        let grads = loss.loss.backward()?;
        let param_grads = self.optimizer.gradients(&grads)?;
        let bad_grads = crate::finite::nonfinite_members(
            self.optimizer.variables(),
            &param_grads,
            self.optimizer.members(),
            |_| Ok(None),
        )?;
        let bad: Vec<bool> = loss
            .member_loss
            .iter()
            .zip(bad_grads)
            .map(|(l, g)| !l.is_finite() || g)
            .collect();
        let frozen = mark_diverged(&mut self.outcomes, step, &bad);
        if frozen.iter().all(|&f| f) {
            return Ok(false);
        }
        if logged {
            let mut times = probe_through_time(&self.model, &trace, &taps, &grads)?;
            if self.measures_time_jacobians_at(step) {
                let examples = jacobian_examples(self.cfg.width);
                for (time, jacobians) in
                    times
                        .iter_mut()
                        .zip(time_jacobians(&self.model, &trace, examples)?)
                {
                    time.jacobians = jacobians;
                }
            }
            let val_acc = self.validation_accuracy(step)?;
            for (m, time) in times.into_iter().enumerate() {
                if frozen[m] {
                    continue;
                }
                let record = StepRecord {
                    step,
                    loss: loss.member_loss[m],
                    train_acc: loss.member_acc[m],
                    val_acc: val_acc.as_ref().map(|v| v[m]),
                    jacobian: None,
                    chain: None,
                    layers: Vec::new(),
                    time: Some(time),
                };
                sink.logged(m, &record)?;
                self.outcomes[m].records.push(record);
            }
        }
        update_members(
            &mut self.optimizer,
            &mut self.outcomes,
            &self.cfg,
            step,
            &param_grads,
            &frozen,
        )?;
        Ok(true)
    }

    /// Every member's validation accuracy at logged step `step` where `--eval-every` asks
    /// for it (MNIST only: the configuration refuses it for the adding problem).
    fn validation_accuracy(&self, step: usize) -> Result<Option<Vec<f64>>, TrainError> {
        let every = self.cfg.eval_every;
        match &self.batches {
            Batches::Images { data, .. } if every > 0 && step.is_multiple_of(every) => {
                Ok(Some(accuracy(&self.model, &data.val, &self.device)?))
            }
            _ => Ok(None),
        }
    }

    /// Whether the vanilla RNN's Jacobians through time are measured at logged step
    /// `step`: at the first and the last step of the `--log-every` grid, unless `--probe
    /// basic`. One SVD per example and time step costs seconds at hidden 128, so not at
    /// every logged step; the first shows the initial network, the last the trained one.
    fn measures_time_jacobians_at(&self, step: usize) -> bool {
        let last_logged = (self.cfg.steps - 1) / self.cfg.log_every * self.cfg.log_every;
        self.cfg.probe != Probe::Basic && (step == 0 || step == last_logged)
    }

    /// The task's loss of `outputs` against `targets`, with each member's mean loss and
    /// batch accuracy.
    fn loss(&self, outputs: &Tensor, targets: &Tensor) -> Result<StepLoss, TrainError> {
        let (k, b) = (self.outcomes.len(), self.cfg.batch_size);
        let per_member = |per_example: &Tensor| -> Result<Vec<f64>, TrainError> {
            Ok(per_example
                .to_dtype(candle_core::DType::F64)?
                .sum((1, 2))?
                .to_vec1::<f64>()?
                .into_iter()
                .map(|s| s / b as f64)
                .collect())
        };
        match self.cfg.task {
            Task::Mnist => {
                let ce = ensemble_cross_entropy(outputs, targets)?;
                let member_loss = per_member(&ce.picked)?.into_iter().map(|v| -v).collect();
                let predicted = outputs.argmax(D::Minus1)?.flatten_all()?.to_vec1::<u32>()?;
                let labels = targets.flatten_all()?.to_vec1::<u32>()?;
                let member_acc = predicted
                    .chunks(b)
                    .zip(labels.chunks(b))
                    .map(|(p, y)| p.iter().zip(y).filter(|(p, y)| p == y).count() as f64 / b as f64)
                    .collect();
                Ok(StepLoss {
                    loss: ce.loss,
                    member_loss,
                    member_acc,
                })
            }
            Task::Adding => {
                let mse = ensemble_mse(outputs, targets)?;
                Ok(StepLoss {
                    loss: mse.loss,
                    member_loss: per_member(&mse.squared)?,
                    member_acc: vec![f64::NAN; k],
                })
            }
        }
    }

    /// Every member's next batch.
    fn next_batch(&mut self) -> Result<Batch, TrainError> {
        let b = self.cfg.batch_size;
        let k = self.outcomes.len();
        match &mut self.batches {
            Batches::Images {
                data,
                samplers,
                indices,
                labels,
            } => {
                for (sampler, batch) in samplers.iter_mut().zip(indices.chunks_mut(b)) {
                    sampler.fill(batch);
                }
                let mut x = Vec::with_capacity(k * b * data.train.pixels());
                labels.clear();
                data.train.gather(indices, &mut x, labels);
                let features = self.cfg.task.features();
                let rows = data.train.pixels() / features;
                Ok(Batch {
                    xs: Tensor::from_vec(x, (k, b, rows, features), &self.device)?,
                    targets: Tensor::from_slice(labels, (k, b, 1), &self.device)?,
                })
            }
            Batches::Adding {
                problem,
                generators,
                ..
            } => {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                for rng in generators.iter_mut() {
                    let set = problem.generate(b, rng);
                    x.extend(set.inputs);
                    y.extend(set.targets);
                }
                let t = problem.steps();
                Ok(Batch {
                    xs: Tensor::from_vec(x, (k, b, t, self.cfg.task.features()), &self.device)?,
                    targets: Tensor::from_vec(y, (k, b, 1), &self.device)?,
                })
            }
        }
    }

    /// Every member's score after training, and the loop's times: the accuracies and the
    /// fit on MNIST, the test mean squared error on the adding problem.
    fn evaluate(
        mut self,
        train_s: f64,
        times: &StepTimes,
    ) -> Result<Vec<MemberOutcome>, TrainError> {
        let (step_us, logged_step_us) = (times.step_us(), times.logged_step_us());
        for outcome in &mut self.outcomes {
            outcome.train_s = train_s;
            outcome.step_us = step_us;
            outcome.logged_step_us = logged_step_us;
        }
        match &self.batches {
            Batches::Images { data, .. } => {
                let val = accuracy(&self.model, &data.val, &self.device)?;
                let test = accuracy(&self.model, &data.test, &self.device)?;
                let train = fit(&self.model, &data.train, FIT_EXAMPLES, &self.device)?;
                for (((outcome, val), test), train) in
                    self.outcomes.iter_mut().zip(val).zip(test).zip(train)
                {
                    if outcome.status.is_ok() {
                        outcome.val_acc = val;
                        outcome.test_acc = test;
                        outcome.train_fit = train;
                    }
                }
            }
            Batches::Adding { test, .. } => {
                let mse = regression_mse(&self.model, test, &self.device)?;
                for (outcome, mse) in self.outcomes.iter_mut().zip(mse) {
                    if outcome.status.is_ok() {
                        outcome.test_mse = mse;
                    }
                }
            }
        }
        Ok(self.outcomes)
    }
}
