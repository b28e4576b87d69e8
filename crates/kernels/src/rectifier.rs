//! ReLU and leaky ReLU as one candle op each, with their own backward.
//!
//! `candle_nn::ops::leaky_relu` composes five ops (and more in the backward pass), which
//! made a whole training step about 35% slower than with ReLU. candle's own `relu` takes
//! the derivative at exactly 0 to be 1, where TensorFlow (the reference) and PyTorch take
//! 0; a unit with z = 0 (all its inputs zero and a zero bias) then passed gradient while
//! the probe counted it as dead. On the CPU these ops do one pass forward and one
//! backward, with the derivative 1 for x > 0 and the slope for x <= 0; elsewhere
//! ([`supported`] false) the model uses candle's ops.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};

use crate::cpu::contiguous;

/// Whether [`relu`] and [`leaky_relu`] run on tensors like `xs`: on the CPU, f32 or f64.
pub fn supported(xs: &Tensor) -> bool {
    xs.device().is_cpu() && matches!(xs.dtype(), DType::F32 | DType::F64)
}

/// max(slope * x, x) element-wise, differentiable; an error where not [`supported`].
pub fn leaky_relu(xs: &Tensor, slope: f64) -> Result<Tensor> {
    if !supported(xs) {
        bail!("vgrad-leaky-relu: {:?} {:?}", xs.device(), xs.dtype());
    }
    xs.apply_op1(LeakyRelu { slope })
}

/// max(0, x) element-wise, differentiable, with derivative 0 at x = 0; an error where not
/// [`supported`].
pub fn relu(xs: &Tensor) -> Result<Tensor> {
    leaky_relu(xs, 0.0)
}

/// A float type the rectifier runs on: f32 in training, f64 in the finite-difference tests.
pub(crate) trait Float: Copy + PartialOrd + std::ops::Mul<Output = Self> {
    const ZERO: Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
}

impl Float for f64 {
    const ZERO: Self = 0.0;
}

/// `max(slope * x, x)` of every value, `x * 0` never computed: it would give -0 for a
/// negative x.
#[inline(always)]
pub(crate) fn rectify<T: Float>(xs: &[T], slope: T) -> Vec<T> {
    // Two loops, so that each compiles to a compare and a blend over whole vectors.
    if slope == T::ZERO {
        xs.iter()
            .map(|&x| if x > T::ZERO { x } else { T::ZERO })
            .collect()
    } else {
        xs.iter()
            .map(|&x| if x > T::ZERO { x } else { x * slope })
            .collect()
    }
}

/// `dC/dx` from `x` and `dC/dy`: the gradient where x > 0, the gradient times the slope
/// elsewhere (for ReLU a product with 0, which keeps a NaN or infinite gradient NaN).
#[inline(always)]
pub(crate) fn rectify_grad<T: Float>(xs: &[T], grads: &[T], slope: T) -> Vec<T> {
    xs.iter()
        .zip(grads)
        .map(|(&x, &g)| if x > T::ZERO { g } else { g * slope })
        .collect()
}

crate::with_cpu_feature! {
    /// [`rectify`] in f32, 16 values at a time where the CPU has AVX-512: the compare,
    /// product and blend of each value are the same at any width.
    pub(crate) fn rectify_f32(xs: &[f32], slope: f32) -> Vec<f32> = rectify if "avx512f";
}

crate::with_cpu_feature! {
    /// [`rectify_grad`] in f32, 16 values at a time where the CPU has AVX-512.
    pub(crate) fn rectify_grad_f32(xs: &[f32], grads: &[f32], slope: f32) -> Vec<f32> = rectify_grad if "avx512f";
}

struct LeakyRelu {
    slope: f64,
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "vgrad-rectifier"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let op = self.name();
        let ys = match storage {
            CpuStorage::F32(v) => {
                CpuStorage::F32(rectify_f32(contiguous(v, layout, op)?, self.slope as f32))
            }
            CpuStorage::F64(v) => CpuStorage::F64(rectify(contiguous(v, layout, op)?, self.slope)),
            _ => bail!("{op}: expects f32 or f64"),
        };
        Ok((ys, layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad_res = grad_res.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(
            &grad_res,
            &LeakyReluGrad { slope: self.slope },
        )?))
    }
}

/// (x, dC/dy) -> dC/dx for leaky ReLU.
struct LeakyReluGrad {
    slope: f64,
}

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "vgrad-rectifier-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let op = self.name();
        if l1.shape() != l2.shape() {
            bail!("{op}: shapes differ: {:?} vs {:?}", l1.shape(), l2.shape());
        }
        let dx = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(g)) => {
                let (x, g) = (contiguous(x, l1, op)?, contiguous(g, l2, op)?);
                CpuStorage::F32(rectify_grad_f32(x, g, self.slope as f32))
            }
            (CpuStorage::F64(x), CpuStorage::F64(g)) => {
                let (x, g) = (contiguous(x, l1, op)?, contiguous(g, l2, op)?);
                CpuStorage::F64(rectify_grad(x, g, self.slope))
            }
            _ => bail!("{op}: expects two tensors of dtype f32 or f64"),
        };
        Ok((dx, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_nn_forward_and_backward() -> Result<()> {
        let values = [-3.0f32, -0.25, 0.5, 2.0, -1.0, 4.0];
        let x = Var::new(&values[..], &Device::Cpu)?;
        let w = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &Device::Cpu)?;
        let ours = leaky_relu(x.as_tensor(), 0.2)?;
        let theirs = candle_nn::ops::leaky_relu(x.as_tensor(), 0.2)?;
        assert_eq!(ours.to_vec1::<f32>()?, theirs.to_vec1::<f32>()?);
        let g_ours = (ours * &w)?.sum_all()?.backward()?;
        let g_theirs = (theirs * &w)?.sum_all()?.backward()?;
        let a = g_ours.get(x.as_tensor()).unwrap().to_vec1::<f32>()?;
        let b = g_theirs.get(x.as_tensor()).unwrap().to_vec1::<f32>()?;
        assert_eq!(a, b);
        assert_eq!(a, vec![0.2, 0.4, 3.0, 4.0, 1.0, 6.0]);
        Ok(())
    }

    #[test]
    fn relu_has_zero_derivative_at_zero() -> Result<()> {
        let x = Var::new(&[-1.0f32, 0.0, 2.0], &Device::Cpu)?;
        let y = relu(x.as_tensor())?;
        assert_eq!(y.to_vec1::<f32>()?, vec![0.0, 0.0, 2.0]);
        assert!(y.to_vec1::<f32>()?.iter().all(|v| v.is_sign_positive()));
        let g = y.sum_all()?.backward()?;
        assert_eq!(
            g.get(x.as_tensor()).unwrap().to_vec1::<f32>()?,
            vec![0.0, 0.0, 1.0]
        );
        Ok(())
    }

    #[test]
    fn the_wide_kernels_give_the_portable_bits() {
        let specials = [
            0.0f32,
            -0.0,
            1.5,
            -2.5,
            f32::MIN_POSITIVE / 8.0,
            -f32::MIN_POSITIVE / 8.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            -f32::MAX,
        ];
        // Every pair of specials, at lengths that leave a remainder after 16-wide vectors.
        let xs: Vec<f32> = (0..specials.len() * specials.len() + 5)
            .map(|i| specials[i % specials.len()])
            .collect();
        let gs: Vec<f32> = (0..xs.len())
            .map(|i| specials[(i / specials.len()) % specials.len()])
            .collect();
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        for slope in [0.0f32, 0.2, 0.01] {
            for len in [0, 3, 16, 17, xs.len()] {
                let (x, g) = (&xs[..len], &gs[..len]);
                assert_eq!(bits(rectify_f32(x, slope)), bits(rectify(x, slope)));
                assert_eq!(
                    bits(rectify_grad_f32(x, g, slope)),
                    bits(rectify_grad(x, g, slope))
                );
            }
        }
    }
}
