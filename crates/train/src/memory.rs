//! What a training process will need in memory, estimated from its configuration before
//! anything is allocated, and what the machine has: so that a typo (a width or a seed
//! count with a zero too many) is an error with numbers, not a machine that swaps and
//! freezes.

use vgrad_record::probe::jacobian_examples;
use vgrad_record::{CLASSES, INPUT, Norm, RunConfig};

/// Bytes of one f32.
const F32: f64 = 4.0;

/// MNIST in memory: 70,000 images of 784 bytes, read through a decompression buffer and
/// split into train, validation and test copies (measured peak below this).
pub const DATA_BYTES: f64 = 200e6;

/// Images evaluated at once per member (the accuracy's chunks): a multiple of gemm's 16
/// lanes, so that a chunk stored by pixels is read without a copy (see
/// [`crate::evaluation::accuracy`]).
pub const EVAL_CHUNK: usize = 1_024;

/// The estimate of a process training `members` seeds of one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// Bytes of one ensemble member: weights, gradients, optimizer state, the update
    /// snapshot, a training batch's activations, an evaluation chunk, the Jacobians.
    pub per_member: f64,
    /// Members trained together.
    pub members: usize,
    /// Bytes the process needs whatever the members: the data set.
    pub shared: f64,
}

impl MemoryEstimate {
    /// The estimate for `config` trained as an ensemble of `members`.
    pub fn of(config: &RunConfig, members: usize) -> Self {
        let w = config.width as f64;
        let hidden = config.layers.saturating_sub(1) as f64;
        let params = parameters(config) as f64;
        // Weights, gradients, the update-ratio snapshot and one temporary of the
        // optimizer's step, plus its state (Adam: two moments, momentum: a velocity).
        let state = crate::optimizer::state_per_parameter(config.optimizer) as f64;
        let weights = params * (4.0 + state) * F32;
        // Per layer the autograd graph keeps z, the normalised z, f(z) and their
        // gradients: six batch-by-width tensors, and the input batch once.
        let norm = if config.norm == Norm::None { 1.0 } else { 2.0 };
        let batch = config.batch_size as f64;
        let activations = batch * (INPUT as f64 + hidden * w * (4.0 + 2.0 * norm)) * F32;
        // An evaluation chunk of images per member, and two layers' outputs at a time.
        let chunk = EVAL_CHUNK as f64;
        let evaluation = chunk * (INPUT as f64 + 2.0 * w.max(CLASSES as f64)) * F32;
        // The probe examples' Jacobians, width by width per example and layer, in f64,
        // with the SVD's working copies.
        let examples = jacobian_examples(config.width) as f64;
        let jacobians = examples * (INPUT as f64 * F32 + 3.0 * w * w * 8.0);
        Self {
            per_member: weights + activations + evaluation + jacobians,
            members,
            shared: DATA_BYTES,
        }
    }

    /// All of it, in bytes.
    pub fn total(&self) -> f64 {
        self.shared + self.per_member * self.members as f64
    }
}

/// Trainable parameters of one member: every layer's weights and biases, and the scale
/// and shift of each normalised hidden layer.
pub fn parameters(config: &RunConfig) -> u128 {
    let (w, layers) = (config.width as u128, config.layers as u128);
    let dense = if layers <= 1 {
        INPUT as u128 * CLASSES as u128 + CLASSES as u128
    } else {
        (INPUT as u128 * w + w)
            + (layers - 2) * (w * w + w)
            + (w * CLASSES as u128 + CLASSES as u128)
    };
    let norm = if config.norm == Norm::None || layers <= 1 {
        0
    } else {
        2 * w * (layers - 1)
    };
    dense + norm
}

/// Bytes this process may still allocate: the kernel's `MemAvailable`, or the cgroup's
/// limit less its usage where that is lower (a Slurm job, a container). `None` where
/// neither can be read (not Linux).
pub fn available() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .ok()?;
    let mut bytes = kib * 1024.0;
    let read = |p: &str| std::fs::read_to_string(p).ok()?.trim().parse::<f64>().ok();
    if let (Some(max), Some(used)) = (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        bytes = bytes.min((max - used).max(0.0));
    }
    Some(bytes)
}

/// `bytes` for people: `3.2 GB`, `410 MB`, `12 kB`.
pub fn human(bytes: f64) -> String {
    let units = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    for (size, unit) in units {
        if bytes >= size {
            let value = bytes / size;
            return if value >= 100.0 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes:.0} B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vgrad_record::REFERENCE;

    #[test]
    fn the_parameter_count_is_the_reference_networks() {
        // 784*10+10, four times 10*10+10, 10*10+10.
        assert_eq!(parameters(&REFERENCE), 7850 + 4 * 110 + 110);
        let normed = RunConfig {
            norm: Norm::Batch,
            ..REFERENCE
        };
        assert_eq!(parameters(&normed), 8400 + 2 * 10 * 5);
        let one = RunConfig {
            layers: 1,
            ..REFERENCE
        };
        assert_eq!(parameters(&one), 7850);
    }

    #[test]
    fn members_scale_the_estimate_and_the_data_does_not() {
        let one = MemoryEstimate::of(&REFERENCE, 1);
        let forty = MemoryEstimate::of(&REFERENCE, 40);
        assert_eq!(forty.per_member, one.per_member);
        assert!(
            (forty.total() - one.shared - 40.0 * (one.total() - one.shared)).abs() < 1.0,
            "{forty:?}"
        );
        // The evaluation chunk's images dominate a reference member: about 3.2 MB.
        assert!(
            (3.0e6..4.0e6).contains(&one.per_member),
            "{}",
            human(one.per_member)
        );
    }

    #[test]
    fn a_width_of_ten_million_needs_petabytes() {
        let wide = RunConfig {
            width: 10_000_000,
            ..REFERENCE
        };
        assert!(MemoryEstimate::of(&wide, 1).total() > 1e15);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(3.25e9), "3.2 GB");
        assert_eq!(human(410e6), "410 MB");
        assert_eq!(human(12_345.0), "12.3 kB");
        assert_eq!(human(512.0), "512 B");
    }
}
