//! Scoring every member after training, in chunks that bound memory: the accuracy on a
//! set of images and the fit on the training images for classifiers (dense,
//! convolutional and recurrent networks alike, through [`Classifier`]), and the mean
//! squared error on the adding problem's test sequences.

use candle_core::{D, Device, Module, Tensor};
use vgrad_kernels::transpose::transposed;
use vgrad_model::{Mlp, Recurrent, ensemble_cross_entropy};

use crate::data::ImageSet;
use crate::data::adding::SequenceSet;
use crate::memory::EVAL_CHUNK;

/// A K-member network that classifies images: its logits for a chunk of them.
pub trait Classifier {
    /// K, the ensemble's members.
    fn members(&self) -> usize;

    /// Every member's `[K, n, classes]` logits for the `n` images of `x` (row-major
    /// `[n, pixels]`), the same images for every member.
    fn logits(
        &self,
        x: &[f32],
        n: usize,
        pixels: usize,
        device: &Device,
    ) -> candle_core::Result<Tensor>;
}

/// On the CPU a chunk's images are stored column-major, one pixel's values for every image
/// after another, and every member reads them in place (a broadcast, not K copies). gemm
/// then reads them as they are, where row-major it copied the whole chunk into its own
/// order for every member's layer-1 product: about 40% of an ensemble of 10's evaluation
/// (`perf`). A chunk of [`EVAL_CHUNK`] images, a multiple of gemm's 16 lanes, is read
/// without any copy. Every logit keeps its bits (tested): each is the same sum in the same
/// order.
impl Classifier for Mlp {
    fn members(&self) -> usize {
        Mlp::members(self)
    }

    fn logits(
        &self,
        x: &[f32],
        n: usize,
        pixels: usize,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let k = Mlp::members(self);
        let xs = if device.is_cpu() {
            images_by_pixel(x, n, pixels)?.broadcast_as((k, n, pixels))?
        } else {
            Tensor::from_slice(x, (1, n, pixels), device)?
                .broadcast_as((k, n, pixels))?
                .contiguous()?
        };
        self.forward(&xs)
    }
}

/// A recurrent network reads each image as a sequence of its rows: `[K, n, rows,
/// pixels / rows]`, one row of pixels per time step.
impl Classifier for Recurrent {
    fn members(&self) -> usize {
        Recurrent::members(self)
    }

    fn logits(
        &self,
        x: &[f32],
        n: usize,
        pixels: usize,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let k = Recurrent::members(self);
        let features = self.input();
        let xs = Tensor::from_slice(x, (1, n, pixels / features, features), device)?
            .broadcast_as((k, n, pixels / features, features))?
            .contiguous()?;
        self.forward(&xs)
    }
}

/// The logits of every member for the first `n` images of `set` (all of them where it has
/// fewer), evaluated in chunks to bound memory: `each` receives a chunk's `[K, chunk,
/// classes]` logits and its labels.
fn for_each_chunk(
    model: &dyn Classifier,
    set: &ImageSet,
    n: usize,
    device: &Device,
    mut each: impl FnMut(&Tensor, &[u32]) -> candle_core::Result<()>,
) -> candle_core::Result<()> {
    let pixels = set.pixels();
    let all: Vec<u32> = (0..n.min(set.len()) as u32).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for chunk in all.chunks(EVAL_CHUNK) {
        let b = chunk.len();
        x.clear();
        y.clear();
        set.gather(chunk, &mut x, &mut y);
        each(&model.logits(&x, b, pixels, device)?, &y)?;
    }
    Ok(())
}

/// How many of each member's predictions in `logits` (`[K, B, classes]`) are `labels`.
fn correct(logits: &Tensor, labels: &[u32]) -> candle_core::Result<Vec<usize>> {
    let predicted = logits.argmax(D::Minus1)?.to_vec2::<u32>()?;
    Ok(predicted
        .iter()
        .map(|row| row.iter().zip(labels).filter(|(p, t)| p == t).count())
        .collect())
}

/// Each member's accuracy on `set`.
pub fn accuracy(
    model: &dyn Classifier,
    set: &ImageSet,
    device: &Device,
) -> candle_core::Result<Vec<f64>> {
    let mut right = vec![0usize; model.members()];
    for_each_chunk(model, set, set.len(), device, |logits, labels| {
        for (r, c) in right.iter_mut().zip(correct(logits, labels)?) {
            *r += c;
        }
        Ok(())
    })?;
    Ok(right
        .into_iter()
        .map(|c| c as f64 / set.len().max(1) as f64)
        .collect())
}

/// Each member's mean cross-entropy and accuracy on the first `n` images of `set` (all
/// of them where it has fewer), in evaluation mode, read as [`accuracy`] reads them.
pub fn fit(
    model: &dyn Classifier,
    set: &ImageSet,
    n: usize,
    device: &Device,
) -> candle_core::Result<Vec<(f64, f64)>> {
    let k = model.members();
    let (mut loss, mut right) = (vec![0f64; k], vec![0usize; k]);
    for_each_chunk(model, set, n, device, |logits, labels| {
        let b = labels.len();
        let ys = Tensor::from_slice(labels, (1, b, 1), logits.device())?
            .broadcast_as((k, b, 1))?
            .contiguous()?;
        let picked = ensemble_cross_entropy(logits, &ys)?.picked.squeeze(2)?;
        let picked = picked.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
        for (m, c) in correct(logits, labels)?.into_iter().enumerate() {
            loss[m] -= picked[m].iter().sum::<f64>();
            right[m] += c;
        }
        Ok(())
    })?;
    let n = n.min(set.len()).max(1) as f64;
    Ok(loss
        .into_iter()
        .zip(right)
        .map(|(l, c)| (l / n, c as f64 / n))
        .collect())
}

/// The `n` images of `x` (row-major `[n, pixels]`) as a `[1, n, pixels]` CPU tensor stored
/// column-major: strides `(_, 1, n)`.
fn images_by_pixel(x: &[f32], n: usize, pixels: usize) -> candle_core::Result<Tensor> {
    Tensor::from_vec(transposed(x, pixels, n), (1, pixels, n), &Device::Cpu)?.transpose(1, 2)
}

/// Each member's mean squared error on its own test sequences (`sets[m]` for member `m`:
/// the adding problem draws each seed's), in chunks of [`EVAL_CHUNK`] sequences.
pub fn regression_mse(
    model: &Recurrent,
    sets: &[SequenceSet],
    device: &Device,
) -> candle_core::Result<Vec<f64>> {
    let k = sets.len();
    let n = sets.iter().map(SequenceSet::len).min().unwrap_or(0);
    let (steps, features) = (sets.first().map_or(0, |s| s.steps), model.input());
    let mut sums = vec![0f64; k];
    let mut start = 0;
    while start < n {
        let b = EVAL_CHUNK.min(n - start);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for set in sets {
            let per = set.example_len();
            x.extend_from_slice(&set.inputs[start * per..(start + b) * per]);
            y.extend_from_slice(&set.targets[start..start + b]);
        }
        let xs = Tensor::from_vec(x, (k, b, steps, features), device)?;
        let ys = Tensor::from_vec(y, (k, b, 1), device)?;
        let squared = (model.forward(&xs)? - ys)?
            .sqr()?
            .to_dtype(candle_core::DType::F64)?
            .sum((1, 2))?
            .to_vec1::<f64>()?;
        for (s, v) in sums.iter_mut().zip(squared) {
            *s += v;
        }
        start += b;
    }
    Ok(sums.into_iter().map(|s| s / n.max(1) as f64).collect())
}
#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;
    use vgrad_model::{Kernels, MlpConfig};
    use vgrad_record::{Activation, Init, Norm};

    type TrainError = crate::TrainError;

    /// `n` images of `pixels` pseudo-random values in [0, 1], half of them 0 as in MNIST.
    fn images(n: usize, pixels: usize) -> Vec<f32> {
        (0..n * pixels)
            .map(|i| {
                let byte = (i as u64).wrapping_mul(2_654_435_761) >> 11 & 0x1ff;
                byte.saturating_sub(256) as f32 / 255.0
            })
            .collect()
    }

    fn logit_bits(t: &Tensor) -> candle_core::Result<Vec<u32>> {
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        Ok(values.into_iter().map(f32::to_bits).collect())
    }

    #[test]
    fn column_major_images_give_the_logits_of_row_major_ones_bit_for_bit() -> Result<(), TrainError>
    {
        let cpu = Device::Cpu;
        let seeds = [3, 4, 5];
        let k = seeds.len();
        // Whole chunks, the last chunks of the validation and test sets, an odd size, a
        // wider network, a sigmoid one.
        let cases = [
            (10, 1024, Activation::Relu),
            (10, 904, Activation::Sigmoid),
            (10, 784, Activation::Relu),
            (100, 1000, Activation::Relu),
            (10, 7, Activation::Tanh),
        ];
        for (width, n, activation) in cases {
            let cfg = MlpConfig {
                model: vgrad_record::Architecture::Mlp,
                input: 784,
                width,
                layers: 6,
                classes: 10,
                activation,
                init: Init::GlorotUniform,
                bias_variance: 0.0,
                norm: Norm::None,
                residual: false,
                branch_scale: vgrad_record::BranchScale::One,
            };
            let model = |kernels| -> Result<Mlp, TrainError> {
                Ok(Mlp::init(&cfg, &seeds, &VarMap::new(), &cpu)?.with_kernels(kernels))
            };
            let x = images(n, 784);
            let by_pixel = images_by_pixel(&x, n, 784)?.broadcast_as((k, n, 784))?;
            assert_eq!(by_pixel.stride(), [0, 1, n]);
            let by_image = Tensor::from_slice(&x, (1, n, 784), &cpu)?.broadcast_as((k, n, 784))?;
            let ours = model(Kernels::Fused)?.forward(&by_pixel)?;
            let rows = model(Kernels::Fused)?.forward(&by_image)?;
            let candle = model(Kernels::Candle)?.forward(&by_image.contiguous()?)?;
            assert_eq!(
                logit_bits(&ours)?,
                logit_bits(&rows)?,
                "width {width}, {n} images"
            );
            assert_eq!(
                logit_bits(&ours)?,
                logit_bits(&candle)?,
                "width {width}, {n} images"
            );
        }
        Ok(())
    }

    #[test]
    fn the_fit_after_training_is_the_cross_entropy_and_accuracy_of_each_member()
    -> Result<(), TrainError> {
        let cpu = Device::Cpu;
        let (n, pixels) = (1_300, 784);
        let set = ImageSet {
            images: (0..n * pixels).map(|i| ((i * 7919) % 256) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: 28,
            cols: 28,
        };
        let cfg = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            input: pixels,
            width: 10,
            layers: 3,
            classes: 10,
            activation: Activation::Tanh,
            init: Init::GlorotUniform,
            bias_variance: 0.0,
            norm: Norm::None,
            residual: false,
            branch_scale: vgrad_record::BranchScale::One,
        };
        let model = Mlp::init(&cfg, &[1, 2], &VarMap::new(), &cpu)?;
        // More images than a chunk, fewer than the set: the first 1,100, in two chunks.
        let fits = fit(&model, &set, 1_100, &cpu)?;
        let first = set.slice(0, 1_100);
        let accuracies = accuracy(&model, &first, &cpu)?;
        let all: Vec<u32> = (0..1_100).collect();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        first.gather(&all, &mut x, &mut y);
        for (m, (loss, acc)) in fits.iter().enumerate() {
            assert_eq!(*acc, accuracies[m]);
            // The cross-entropy of member m's logits, summed in f64 by hand.
            let single = Mlp::init(&cfg, &[m as u64 + 1], &VarMap::new(), &cpu)?;
            let logits = single
                .forward(&Tensor::from_slice(&x, (1, 1_100, pixels), &cpu)?)?
                .squeeze(0)?
                .to_dtype(candle_core::DType::F64)?
                .to_vec2::<f64>()?;
            let want = logits
                .iter()
                .zip(&y)
                .map(|(row, &label)| {
                    let top = row.iter().cloned().fold(f64::MIN, f64::max);
                    let log_sum = row.iter().map(|v| (v - top).exp()).sum::<f64>().ln() + top;
                    log_sum - row[label as usize]
                })
                .sum::<f64>()
                / 1_100.0;
            assert!(
                (loss - want).abs() < 1e-5,
                "member {m}: {loss} against {want}"
            );
        }
        Ok(())
    }
}
