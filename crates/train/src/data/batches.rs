//! The order in which a run sees its training examples.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Draws batches without replacement and reshuffles at every epoch, as TensorFlow's
/// MNIST helper (`DataSet.next_batch`) did: a batch that crosses the end of an epoch takes
/// the rest of that epoch and tops up from the start of the freshly shuffled next one.
#[derive(Debug, Clone)]
pub struct BatchSampler {
    order: Vec<u32>,
    next: usize,
    rng: ChaCha8Rng,
}

impl BatchSampler {
    /// A sampler over `0..n`, shuffled by `rng` (the run's data stream).
    pub fn new(n: usize, mut rng: ChaCha8Rng) -> Self {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut rng);
        Self {
            order,
            next: 0,
            rng,
        }
    }

    /// Fills `batch` with the next `batch.len()` example indices.
    pub fn fill(&mut self, batch: &mut [u32]) {
        let mut filled = 0;
        while filled < batch.len() {
            if self.next == self.order.len() {
                self.order.shuffle(&mut self.rng);
                self.next = 0;
            }
            let take = (batch.len() - filled).min(self.order.len() - self.next);
            batch[filled..filled + take].copy_from_slice(&self.order[self.next..self.next + take]);
            filled += take;
            self.next += take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vgrad_model::seeding::{Stream, rng};

    #[test]
    fn every_epoch_is_a_permutation_and_epochs_differ() {
        let mut s = BatchSampler::new(10, rng(0, Stream::Data));
        let mut seen = [0u32; 30];
        for chunk in seen.chunks_mut(3) {
            s.fill(chunk);
        }
        let epochs: Vec<Vec<u32>> = seen.chunks(10).map(<[u32]>::to_vec).collect();
        for e in &epochs {
            let mut sorted = e.clone();
            sorted.sort();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1]);
        let mut again = BatchSampler::new(10, rng(0, Stream::Data));
        let mut first = [0u32; 3];
        again.fill(&mut first);
        assert_eq!(&first, &seen[..3]);
    }
}
