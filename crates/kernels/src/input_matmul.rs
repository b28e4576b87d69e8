//! The first layer's matmul, without the gradient for its input.
//!
//! candle's backward pass of `matmul` always computes both operand gradients. For the
//! first layer the left operand is the data batch `[K, B, 784]`, whose gradient nobody
//! reads, and it is the largest matmul of the step: skipping it saved about 20% of a
//! training step of the reference network.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CudaStorage, CustomOp2, Layout, Result, Shape, Tensor};

use crate::matmul::product_dims;

/// `xs.matmul(ws)` for `xs: [K, B, in]` and `ws: [K, in, out]`, differentiable in `ws`
/// only: use it where `xs` is data, never for a tensor that needs a gradient.
pub fn input_matmul(xs: &Tensor, ws: &Tensor) -> Result<Tensor> {
    let xs = xs.contiguous()?;
    let ws = ws.contiguous()?;
    xs.apply_op2(&ws, InputMatmul)
}

struct InputMatmul;

impl CustomOp2 for InputMatmul {
    fn name(&self) -> &'static str {
        "vgrad-input-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (bmnk, shape) = product_dims(self.name(), l1, l2)?;
        Ok((s1.matmul(s2, bmnk, l1, l2)?, shape))
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (bmnk, shape) = product_dims(self.name(), l1, l2)?;
        Ok((s1.matmul(s2, bmnk, l1, l2)?, shape))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        _ws: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((None, Some(xs.t()?.matmul(grad_res)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn same_values_and_weight_gradient_as_matmul() -> Result<()> {
        let dev = Device::Cpu;
        let xs = Tensor::arange(0f32, 24., &dev)?
            .reshape((2, 3, 4))?
            .affine(0.1, -1.0)?;
        let ws = Var::from_tensor(&Tensor::arange(0f32, 16., &dev)?.reshape((2, 4, 2))?.sin()?)?;
        let ours = input_matmul(&xs, &ws)?;
        let theirs = xs.matmul(&ws)?;
        assert_eq!(ours.to_vec3::<f32>()?, theirs.to_vec3::<f32>()?);
        let g_ours = ours.sqr()?.sum_all()?.backward()?;
        let g_theirs = theirs.sqr()?.sum_all()?.backward()?;
        assert_eq!(
            g_ours.get(&ws).unwrap().to_vec3::<f32>()?,
            g_theirs.get(&ws).unwrap().to_vec3::<f32>()?
        );
        Ok(())
    }
}
