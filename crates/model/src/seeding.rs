//! Every random choice of a run flows from its seed through these generators.
//!
//! candle's own CPU generator cannot be seeded (and `candle_nn::Init` draws from it), so
//! initial weights and the data order are drawn here, on the CPU, and only then moved to
//! the device: a CUDA run starts from the same point as a CPU run.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The independent random streams a run draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Initial weights.
    Init = 0,
    /// Shuffling of the training examples.
    Data = 1,
    /// Initial biases, where the run gives them a variance (a stream of their own, so
    /// that the weights of a run without one are drawn as before).
    Bias = 2,
    /// The training examples of a task generated from the seed (the adding problem), a
    /// stream of its own so that the weights and the order are drawn as before.
    TaskTrain = 3,
    /// The test examples of a generated task: apart from the training stream, so that
    /// the test set of a seed is the same whatever the training set's size.
    TaskTest = 4,
}

/// The generator of `stream` for the run with this `seed`: portable and reproducible
/// across platforms, and independent of the other streams of the same seed.
pub fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = rng(7, Stream::Init).random();
        let b: u64 = rng(7, Stream::Init).random();
        let c: u64 = rng(7, Stream::Data).random();
        let d: u64 = rng(8, Stream::Init).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        let streams = [
            Stream::Init,
            Stream::Data,
            Stream::Bias,
            Stream::TaskTrain,
            Stream::TaskTest,
        ];
        let first: Vec<u64> = streams.iter().map(|&s| rng(7, s).random()).collect();
        for (i, a) in first.iter().enumerate() {
            assert!(first[i + 1..].iter().all(|b| a != b), "{:?}", streams[i]);
        }
    }
}
