//! The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), in the form of Le et
//! al. 2015 and Arjovsky et al. 2016, generated from a run's seed.
//!
//! Each example is a sequence of T steps of two features: a value drawn uniformly from
//! [0, 1), and a marker that is 1 at exactly two steps, one in each half of the sequence
//! (the first in steps `0..T/2`, the second in `T/2..T`, T/2 rounded down), and 0
//! elsewhere. The target is the sum of the two marked values. A network must carry the
//! first marked value across at least T/2 steps of noise: a test of memory over time
//! whose length is a setting.
//!
//! The sum of two independent U(0, 1) has mean 1 and variance 1/6, so predicting the
//! constant 1 scores a mean squared error of 1/6 = 0.167 ([`CONSTANT_MSE`]); the papers
//! call the problem solved well below that (the threshold is 0.01).

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use vgrad_model::seeding::{self, Stream};

use super::DataError;

/// Features per step: the value and the marker.
pub use vgrad_record::recurrent::ADDING_FEATURES as FEATURES;

/// The mean squared error of the best constant predictor, defined once with the classes
/// it sets the solved threshold against.
pub use vgrad_record::class::CONSTANT_PREDICTOR_MSE as CONSTANT_MSE;

/// Sequences with one regression target each.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceSet {
    /// `len() * steps * FEATURES` values, row-major `[example, step, feature]`.
    pub inputs: Vec<f32>,
    /// One target per example.
    pub targets: Vec<f32>,
    /// T, the steps of every sequence.
    pub steps: usize,
}

impl SequenceSet {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Values per example: `steps * FEATURES`.
    pub fn example_len(&self) -> usize {
        self.steps * FEATURES
    }

    /// Example `i`'s sequence (`[step, feature]`, row-major) and target; `None` past the
    /// end.
    pub fn example(&self, i: usize) -> Option<(&[f32], f32)> {
        let n = self.example_len();
        let target = *self.targets.get(i)?;
        Some((self.inputs.get(i * n..(i + 1) * n)?, target))
    }

    /// Appends the examples `indices` to `x` and their targets to `y` (a batch built in
    /// the buffers its tensors then own, as `ImageSet::gather`). An index past the end is
    /// an error, not a panic: indices come from the caller.
    pub fn gather(
        &self,
        indices: &[u32],
        x: &mut Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<(), DataError> {
        x.reserve(indices.len() * self.example_len());
        y.reserve(indices.len());
        for &i in indices {
            let (sequence, target) = self.example(i as usize).ok_or_else(|| {
                DataError::Invalid(format!("example {i} of a set of {}", self.len()))
            })?;
            x.extend_from_slice(sequence);
            y.push(target);
        }
        Ok(())
    }

    /// The whole set as tensors on `device`: inputs `[N, T, FEATURES]`, targets `[N, 1]`.
    pub fn to_tensors(&self, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        let n = self.len();
        let inputs = Tensor::from_slice(&self.inputs, (n, self.steps, FEATURES), device)?;
        let targets = Tensor::from_slice(&self.targets, (n, 1), device)?;
        Ok((inputs, targets))
    }

    /// The mean squared error of predicting `constant` for every example, in f64.
    pub fn constant_mse(&self, constant: f64) -> f64 {
        let sum: f64 = self
            .targets
            .iter()
            .map(|&y| (f64::from(y) - constant).powi(2))
            .sum();
        sum / self.len().max(1) as f64
    }

    /// The mean of the targets, in f64 (0 for an empty set).
    pub fn mean_target(&self) -> f64 {
        self.targets.iter().map(|&y| f64::from(y)).sum::<f64>() / self.len().max(1) as f64
    }
}

/// The adding problem at one sequence length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddingProblem {
    steps: usize,
}

/// A training set and a test set of one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct AddingSets {
    /// Drawn from the seed's [`Stream::TaskTrain`].
    pub train: SequenceSet,
    /// Drawn from the seed's [`Stream::TaskTest`].
    pub test: SequenceSet,
}

impl AddingProblem {
    /// Sequences of `steps` steps; at least 2, one per half.
    pub fn new(steps: usize) -> Result<Self, DataError> {
        if steps < 2 {
            return Err(DataError::Invalid(format!(
                "the adding problem needs sequences of at least 2 steps (one marker in each half), not {steps}"
            )));
        }
        Ok(Self { steps })
    }

    /// T, the sequence length.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// `n` examples drawn from `rng`. Per example, in this order: the T values, then the
    /// first marker's step (uniform over the first half), then the second's (uniform over
    /// the second half).
    pub fn generate<R: Rng>(&self, n: usize, rng: &mut R) -> SequenceSet {
        let t = self.steps;
        let half = t / 2;
        let mut inputs = vec![0f32; n * t * FEATURES];
        let mut targets = Vec::with_capacity(n);
        for sequence in inputs.chunks_exact_mut(t * FEATURES) {
            for step in sequence.chunks_exact_mut(FEATURES) {
                step[0] = rng.random::<f32>();
            }
            let first = rng.random_range(0..half);
            let second = rng.random_range(half..t);
            sequence[first * FEATURES + 1] = 1.0;
            sequence[second * FEATURES + 1] = 1.0;
            targets.push(sequence[first * FEATURES] + sequence[second * FEATURES]);
        }
        SequenceSet {
            inputs,
            targets,
            steps: t,
        }
    }

    /// `train` training and `test` test examples of the run with this `seed`, each set
    /// from its own stream ([`Stream::TaskTrain`], [`Stream::TaskTest`]), so that the
    /// test set of a seed does not depend on the training set's size.
    pub fn sets(&self, seed: u64, train: usize, test: usize) -> AddingSets {
        let draw = |stream, n| -> SequenceSet {
            let mut rng: ChaCha8Rng = seeding::rng(seed, stream);
            self.generate(n, &mut rng)
        };
        AddingSets {
            train: draw(Stream::TaskTrain, train),
            test: draw(Stream::TaskTest, test),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps of example `i` whose marker is set.
    fn markers(set: &SequenceSet, i: usize) -> Vec<usize> {
        let (sequence, _) = set.example(i).expect("in range");
        sequence
            .chunks_exact(FEATURES)
            .enumerate()
            .filter(|(_, step)| step[1] != 0.0)
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn two_markers_one_per_half_and_the_target_is_their_sum() -> Result<(), DataError> {
        for steps in [2, 3, 25, 50, 101] {
            let problem = AddingProblem::new(steps)?;
            let set = problem.sets(3, 500, 10).train;
            assert_eq!(set.len(), 500);
            assert_eq!(set.inputs.len(), 500 * steps * FEATURES);
            let mut first_seen = vec![false; steps];
            for i in 0..set.len() {
                let (sequence, target) = set.example(i).expect("in range");
                let marked = markers(&set, i);
                assert_eq!(marked.len(), 2, "T = {steps}, example {i}");
                assert!(
                    marked[0] < steps / 2 && marked[1] >= steps / 2,
                    "{marked:?}"
                );
                assert!(
                    sequence
                        .chunks_exact(FEATURES)
                        .all(|s| s[1] == 0.0 || s[1] == 1.0)
                );
                assert!(
                    sequence
                        .chunks_exact(FEATURES)
                        .all(|s| (0.0..1.0).contains(&s[0]))
                );
                // Exactly the f32 sum of the two marked values.
                let sum = sequence[marked[0] * FEATURES] + sequence[marked[1] * FEATURES];
                assert_eq!(target.to_bits(), sum.to_bits());
                first_seen[marked[0]] = true;
            }
            // Every step of the first half is drawn for the first marker.
            assert!(first_seen[..steps / 2].iter().all(|&s| s), "T = {steps}");
        }
        assert!(AddingProblem::new(1).is_err());
        assert!(AddingProblem::new(0).is_err());
        Ok(())
    }

    #[test]
    fn the_same_seed_gives_the_same_data_and_another_seed_other_data() -> Result<(), DataError> {
        let problem = AddingProblem::new(20)?;
        let a = problem.sets(7, 100, 50);
        assert_eq!(a, problem.sets(7, 100, 50));
        let b = problem.sets(8, 100, 50);
        assert_ne!(a.train.inputs, b.train.inputs);
        assert_ne!(a.test.inputs, b.test.inputs);
        assert_ne!(a.train.inputs[..1000], a.test.inputs[..1000]);
        // The test set of a seed whatever the training set's size, and the training set's
        // examples a prefix of a larger one's.
        let c = problem.sets(7, 30, 50);
        assert_eq!(c.test, a.test);
        assert_eq!(c.train.inputs[..], a.train.inputs[..c.train.inputs.len()]);
        Ok(())
    }

    /// 100,000 sums: the standard error of their mean squared deviation is
    /// sqrt(Var((S - 1)^2) / n) = sqrt((1/15 - 1/36) / 1e5) = 0.00062, so the tolerance of
    /// 0.003 is nearly 5 standard errors.
    #[test]
    fn the_constant_predictors_error_is_a_sixth() -> Result<(), DataError> {
        let sets = AddingProblem::new(10)?.sets(0, 100_000, 100_000);
        let mean = sets.train.mean_target();
        assert!((mean - 1.0).abs() < 0.01, "mean target {mean}");
        let mse = sets.test.constant_mse(mean);
        assert!(
            (mse - CONSTANT_MSE).abs() < 0.003,
            "constant predictor's MSE {mse}"
        );
        Ok(())
    }

    #[test]
    fn batches_and_tensors_hold_the_examples() -> Result<(), Box<dyn std::error::Error>> {
        let set = AddingProblem::new(6)?.sets(1, 5, 0).train;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        set.gather(&[4, 0], &mut x, &mut y)?;
        let (four, t4) = set.example(4).ok_or("example 4")?;
        let (zero, t0) = set.example(0).ok_or("example 0")?;
        assert_eq!(x, [four, zero].concat());
        assert_eq!(y, [t4, t0]);
        assert!(set.gather(&[5], &mut x, &mut y).is_err());
        let (inputs, targets) = set.to_tensors(&Device::Cpu)?;
        assert_eq!(inputs.dims3()?, (5, 6, FEATURES));
        assert_eq!(targets.dims2()?, (5, 1));
        assert_eq!(inputs.get(4)?.flatten_all()?.to_vec1::<f32>()?, four);
        assert_eq!(targets.get(4)?.to_vec1::<f32>()?, [t4]);
        assert_eq!(set.example(5), None);
        Ok(())
    }
}
