//! Batch norm and layer norm of a hidden layer's pre-activation, for all K ensemble
//! members at once, differentiated by candle's autograd.
//!
//! Every member has its own scale, shift and (for batch norm) running statistics, and its
//! statistics are reduced over its own slice only, so a member computes exactly the
//! numbers it would compute alone. With [`Kernels::Fused`], the training pass on the CPU
//! is one op forward and one backward (`vgrad_kernels::fused_norm`), with the same bits.

use candle_core::{Module, Result, Tensor};
use vgrad_kernels::affine::ParamGrads;
use vgrad_kernels::fused_norm::{self, NormKind};
use vgrad_record::Norm;
use vgrad_record::norm::{BATCH_NORM_MOMENTUM, NORM_EPSILON};

use crate::Kernels;
use crate::activation::ActivationLayer;

/// One layer's normalisation: `z: [K, B, units]` standardised (per unit over the batch,
/// or per example over the units), then `* scale + shift`, both `[K, 1, units]`.
#[derive(Debug, Clone)]
pub struct EnsembleNorm {
    kind: Norm,
    scale: Tensor,
    shift: Tensor,
    /// Batch norm's running mean and (unbiased) variance, `[K, 1, units]`; they start at
    /// 0 and 1 as PyTorch's.
    running: Option<(Tensor, Tensor)>,
    kernels: Kernels,
}

/// The batch statistics one training forward pass of batch norm used, `[K, 1, units]`
/// each, detached from the graph: what [`EnsembleNorm::update_running`] averages in.
#[derive(Debug, Clone)]
pub struct BatchStats {
    pub(crate) mean: Tensor,
    /// Biased variance (divided by B), as the normalisation used it.
    pub(crate) var: Tensor,
    batch: usize,
}

impl EnsembleNorm {
    /// A normalisation of `kind` (not [`Norm::None`]) over these parameters.
    pub fn new(kind: Norm, scale: Tensor, shift: Tensor) -> Result<Self> {
        let running = match kind {
            Norm::Batch => Some((shift.zeros_like()?, scale.ones_like()?)),
            _ => None,
        };
        Ok(Self {
            kind,
            scale,
            shift,
            running,
            kernels: Kernels::Fused,
        })
    }

    /// The same normalisation computed with `kernels` (see [`Kernels`]).
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self { kernels, ..self }
    }

    /// Which normalisation this is.
    pub fn kind(&self) -> Norm {
        self.kind
    }

    /// The learnable scale `[K, 1, units]`.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }

    /// The learnable shift `[K, 1, units]`.
    pub fn shift(&self) -> &Tensor {
        &self.shift
    }

    /// Batch norm's running mean and variance, `None` for layer norm.
    pub fn running(&self) -> Option<&(Tensor, Tensor)> {
        self.running.as_ref()
    }

    /// The training forward pass: batch norm with the batch's statistics (returned, for
    /// the running averages), layer norm as always.
    pub fn forward_train(&self, z: &Tensor) -> Result<(Tensor, Option<BatchStats>)> {
        self.forward_train_into(z, None)
    }

    /// [`EnsembleNorm::forward_train`]; where the fused op computes it, its backward pass
    /// leaves the gradients of the scale and shift in `sink` (see
    /// `vgrad_kernels::affine::affine`).
    pub(crate) fn forward_train_into(
        &self,
        z: &Tensor,
        sink: Option<&ParamGrads>,
    ) -> Result<(Tensor, Option<BatchStats>)> {
        if self.fused(z) {
            let pass = self.fused_pass(z, None, sink)?;
            return Ok((pass.normalised, pass.stats));
        }
        match self.kind {
            Norm::Batch => {
                let (normed, mean, var) = standardise(z, 1)?;
                let stats = BatchStats {
                    mean: mean.detach(),
                    var: var.detach(),
                    batch: z.dim(1)?,
                };
                Ok((self.scale_and_shift(&normed)?, Some(stats)))
            }
            _ => Ok((self.forward_eval(z)?, None)),
        }
    }

    /// [`EnsembleNorm::forward_train_into`] followed by `activation`: what the activation
    /// read, its output and the batch statistics. Where the fused op runs and the
    /// activation is vgrad's ReLU or leaky ReLU, one op computes both, with the same bits
    /// (see `vgrad_kernels::fused_norm::norm_train`); what the activation read is then a
    /// tensor outside the graph.
    pub(crate) fn forward_train_activated(
        &self,
        z: &Tensor,
        activation: &ActivationLayer,
        sink: Option<&ParamGrads>,
    ) -> Result<(Tensor, Tensor, Option<BatchStats>)> {
        let rectifier = activation.fused_rectifier();
        if rectifier.is_some() && self.fused(z) {
            let pass = self.fused_pass(z, rectifier, sink)?;
            if let Some(out) = pass.rectified {
                return Ok((pass.normalised, out, pass.stats));
            }
        }
        let (a, stats) = self.forward_train_into(z, sink)?;
        let out = activation.forward(&a)?;
        Ok((a, out, stats))
    }

    /// Whether the fused op computes the training pass on `z`.
    fn fused(&self, z: &Tensor) -> bool {
        self.kernels == Kernels::Fused
            && self
                .kernel_kind()
                .is_some_and(|kind| fused_norm::supported(z, kind))
    }

    /// This normalisation as the kernels name it.
    fn kernel_kind(&self) -> Option<NormKind> {
        match self.kind {
            Norm::Batch => Some(NormKind::Batch),
            Norm::Layer => Some(NormKind::Layer),
            Norm::None => None,
        }
    }

    /// The fused op's training pass, then `rectifier` (a slope) where there is one.
    fn fused_pass(
        &self,
        z: &Tensor,
        rectifier: Option<f64>,
        sink: Option<&ParamGrads>,
    ) -> Result<FusedPass> {
        let Some(kind) = self.kernel_kind() else {
            candle_core::bail!("vgrad-norm: no normalisation to compute");
        };
        let params = (&self.scale, &self.shift);
        let pass = fused_norm::norm_train(z, params, (kind, NORM_EPSILON), rectifier, sink)?;
        let batch = z.dims().get(1).copied().unwrap_or(0);
        Ok(FusedPass {
            normalised: pass.normalised,
            rectified: pass.rectified,
            stats: pass
                .stats
                .map(|(mean, var)| BatchStats { mean, var, batch }),
        })
    }

    /// The evaluation forward pass: batch norm with the running statistics.
    pub fn forward_eval(&self, z: &Tensor) -> Result<Tensor> {
        let normed = match &self.running {
            Some((mean, var)) => z
                .broadcast_sub(mean)?
                .broadcast_div(&(var + NORM_EPSILON)?.sqrt()?)?,
            None => standardise(z, 2)?.0,
        };
        self.scale_and_shift(&normed)
    }

    /// Averages a training pass's batch statistics into the running ones, as PyTorch:
    /// `running = (1 - momentum) * running + momentum * batch`, with the batch's unbiased
    /// variance.
    pub fn update_running(&mut self, stats: &BatchStats) -> Result<()> {
        let Some((mean, var)) = &self.running else {
            return Ok(());
        };
        let m = BATCH_NORM_MOMENTUM;
        let unbiased = stats.batch as f64 / (stats.batch as f64 - 1.0);
        let host = self.kernels == Kernels::Fused;
        let mean = average_in(mean, &stats.mean, 1.0 - m, m, host)?;
        let var = average_in(var, &stats.var, 1.0 - m, m * unbiased, host)?;
        self.running = Some((mean, var));
        Ok(())
    }

    fn scale_and_shift(&self, normed: &Tensor) -> Result<Tensor> {
        normed
            .broadcast_mul(&self.scale)?
            .broadcast_add(&self.shift)
    }
}

/// [`fused_norm::NormTrain`] with batch norm's statistics as [`BatchStats`].
struct FusedPass {
    normalised: Tensor,
    rectified: Option<Tensor>,
    stats: Option<BatchStats>,
}

/// `running * keep + batch * take`, as candle's ops compute it (`x * c` is its affine op,
/// `x * c + 0`). With `host`, an f32 pair on the CPU is computed in one loop by
/// `vgrad_kernels::fused_norm::running_average`, with the same bits.
fn average_in(
    running: &Tensor,
    batch: &Tensor,
    keep: f64,
    take: f64,
    host: bool,
) -> Result<Tensor> {
    if host && let Some(averaged) = fused_norm::running_average(running, batch, keep, take)? {
        return Ok(averaged);
    }
    (running * keep)? + (batch * take)?
}

/// `(z - mean) / sqrt(var + eps)` along `axis`, with the mean and the biased variance.
fn standardise(z: &Tensor, axis: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let mean = z.mean_keepdim(axis)?;
    let centred = z.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(axis)?;
    let normed = centred.broadcast_div(&(&var + NORM_EPSILON)?.sqrt()?)?;
    Ok((normed, mean, var))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// `[2, 3, 2]`: two members, three examples, two units.
    fn z() -> Result<Tensor> {
        Tensor::new(
            &[
                [[1.0f64, -2.0], [3.0, 0.5], [-1.0, 4.0]],
                [[0.2, 0.1], [0.4, -0.3], [0.9, 0.0]],
            ],
            &Device::Cpu,
        )
    }

    fn norm(kind: Norm) -> Result<EnsembleNorm> {
        let scale = Tensor::new(&[[[2.0f64, 0.5]], [[1.0, 1.0]]], &Device::Cpu)?;
        let shift = Tensor::new(&[[[0.1f64, 0.0]], [[0.0, -1.0]]], &Device::Cpu)?;
        EnsembleNorm::new(kind, scale, shift)
    }

    #[test]
    fn batch_norm_standardises_each_unit_over_each_members_batch() -> Result<()> {
        let (out, stats) = norm(Norm::Batch)?.forward_train(&z()?)?;
        let out = out.to_vec3::<f64>()?;
        // Member 0, unit 0: values 1, 3, -1; mean 1, biased variance 8/3.
        let sd = (8.0f64 / 3.0 + 1e-5).sqrt();
        for (b, x) in [1.0, 3.0, -1.0].iter().enumerate() {
            let want = 2.0 * (x - 1.0) / sd + 0.1;
            assert!((out[0][b][0] - want).abs() < 1e-12);
        }
        let stats = stats.unwrap();
        assert_eq!(stats.mean.to_vec3::<f64>()?[0][0][0], 1.0);
        assert!((stats.var.to_vec3::<f64>()?[0][0][0] - 8.0 / 3.0).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn running_statistics_follow_pytorch_and_serve_evaluation() -> Result<()> {
        let mut bn = norm(Norm::Batch)?;
        let (_, stats) = bn.forward_train(&z()?)?;
        bn.update_running(&stats.unwrap())?;
        let (mean, var) = bn.running().unwrap();
        // 0.9 * 0 + 0.1 * 1 and 0.9 * 1 + 0.1 * (8/3 * 3/2): unbiased, as PyTorch.
        assert!((mean.to_vec3::<f64>()?[0][0][0] - 0.1).abs() < 1e-12);
        assert!((var.to_vec3::<f64>()?[0][0][0] - 1.3).abs() < 1e-12);
        let out = bn.forward_eval(&z()?)?.to_vec3::<f64>()?;
        let want = 2.0 * (1.0 - 0.1) / (1.3f64 + 1e-5).sqrt() + 0.1;
        assert!((out[0][0][0] - want).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn layer_norm_standardises_each_example_over_the_units() -> Result<()> {
        let ln = norm(Norm::Layer)?;
        let (train, stats) = ln.forward_train(&z()?)?;
        assert!(stats.is_none());
        assert_eq!(
            train.to_vec3::<f64>()?,
            ln.forward_eval(&z()?)?.to_vec3::<f64>()?
        );
        // Member 1, example 1: values 0.4, -0.3; mean 0.05, biased variance 0.1225.
        let out = train.to_vec3::<f64>()?;
        let sd = (0.1225f64 + 1e-5).sqrt();
        assert!((out[1][1][0] - 0.35 / sd).abs() < 1e-9);
        assert!((out[1][1][1] - (-0.35 / sd - 1.0)).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn members_do_not_see_each_other() -> Result<()> {
        let z = z()?.to_dtype(DType::F32)?;
        let f32s = |t: &Tensor| t.to_dtype(DType::F32);
        let both = norm(Norm::Batch)?;
        let both = EnsembleNorm::new(Norm::Batch, f32s(both.scale())?, f32s(both.shift())?)?;
        let alone = EnsembleNorm::new(
            Norm::Batch,
            both.scale().narrow(0, 1, 1)?,
            both.shift().narrow(0, 1, 1)?,
        )?;
        let (out_both, _) = both.forward_train(&z)?;
        let (out_alone, _) = alone.forward_train(&z.narrow(0, 1, 1)?)?;
        assert_eq!(
            out_both.narrow(0, 1, 1)?.to_vec3::<f32>()?,
            out_alone.to_vec3::<f32>()?
        );
        Ok(())
    }

    #[test]
    fn the_host_average_gives_candles_bits() -> Result<()> {
        let dev = Device::Cpu;
        // Signed zeros (x * c + 0 turns -0 into +0), subnormals and ordinary values.
        let running = Tensor::new(&[[[-0.0f32, 1e-40, 0.3, -7.5, 1.0]]], &dev)?;
        let batch = Tensor::new(&[[[-0.0f32, -0.0, 2.5e-3, 1e30, -1e-42]]], &dev)?;
        for (keep, take) in [(0.9, 0.1), (0.9, 0.1 * 30.0 / 29.0), (1.0, 0.0)] {
            let host = average_in(&running, &batch, keep, take, true)?;
            let candle = average_in(&running, &batch, keep, take, false)?;
            let bits = |t: &Tensor| -> Result<Vec<u32>> {
                Ok(t.flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .map(|v| v.to_bits())
                    .collect())
            };
            assert_eq!(bits(&host)?, bits(&candle)?, "{keep} {take}");
        }
        Ok(())
    }

    #[test]
    fn the_fused_training_pass_gives_candles_bits() -> Result<()> {
        let z = z()?.to_dtype(DType::F32)?;
        let f32s = |t: &Tensor| t.to_dtype(DType::F32);
        for kind in [Norm::Batch, Norm::Layer] {
            let plain = norm(kind)?;
            let plain = EnsembleNorm::new(kind, f32s(plain.scale())?, f32s(plain.shift())?)?;
            let fused = plain.clone().with_kernels(Kernels::Fused);
            let plain = plain.with_kernels(Kernels::Candle);
            let relu = ActivationLayer::new(vgrad_record::Activation::Relu);
            let bits = |n: &EnsembleNorm| -> Result<Vec<u32>> {
                let (a, out, _) = n.forward_train_activated(&z, &relu, None)?;
                let values = Tensor::cat(&[a, out], 0)?.flatten_all()?.to_vec1::<f32>()?;
                Ok(values.iter().map(|v| v.to_bits()).collect())
            };
            assert_eq!(bits(&fused)?, bits(&plain)?, "{kind}");
        }
        Ok(())
    }
}
