//! Plain gradient descent: w -= lr * g, no state.

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, Var};
use vgrad_model::Kernels;

use super::{Build, Optimizer, check_gradients, fuses, host_slices, member_mask, set_moving};

/// SGD over ensemble variables.
pub struct Sgd {
    /// Each variable, and whether the fused op updates it.
    slots: Vec<(Var, bool)>,
    lr: f64,
}

impl Build for Sgd {
    /// The learning rate.
    type Config = f64;

    const STATE_PER_PARAMETER: usize = 0;

    fn new(vars: Vec<Var>, lr: f64, _members: usize, kernels: Kernels) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|var| {
                let fused = fuses(&var, kernels);
                (var, fused)
            })
            .collect();
        Ok(Self { slots, lr })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &[&Tensor], frozen: &[bool]) -> Result<()> {
        check_gradients(self.slots.len(), grads)?;
        // In f32 on both paths, as the fused op computes.
        let lr = self.lr as f32;
        let any_frozen = frozen.iter().any(|&f| f);
        let moving: Vec<bool> = frozen.iter().map(|&f| !f).collect();
        for ((var, fused), &grad) in self.slots.iter().zip(grads) {
            if *fused {
                let grad = grad.contiguous()?;
                var.inplace_op2(&grad, &FusedSgd { lr, frozen })?;
            } else {
                let new_p = var.sub(&(grad * f64::from(lr))?)?;
                let active = any_frozen.then(|| member_mask(var, &moving)).transpose()?;
                set_moving(var, &new_p, active.as_ref())?;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    #[cfg(test)]
    fn member_state(&self, _var: usize, _member: usize) -> Result<Vec<f32>> {
        Ok(Vec::new())
    }
}

/// One parameter's SGD update in place, skipping the slices of frozen members.
struct FusedSgd<'a> {
    lr: f32,
    frozen: &'a [bool],
}

impl InplaceOp2 for FusedSgd<'_> {
    fn name(&self) -> &'static str {
        "vgrad-fused-sgd"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dl: &Layout,
        src: &CpuStorage,
        sl: &Layout,
    ) -> Result<()> {
        let (params, grads, per) = host_slices(self.name(), dst, dl, src, sl, self.frozen.len())?;
        let lr = self.lr;
        let members = params
            .chunks_mut(per)
            .zip(grads.chunks(per))
            .zip(self.frozen);
        for ((params, grads), &frozen) in members {
            if frozen {
                continue;
            }
            for (p, &g) in params.iter_mut().zip(grads) {
                *p -= lr * g;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::tests::{C, W0, assert_follows_the_algorithm, reference, sgd};

    #[test]
    fn sgd_fused_and_tensor_paths_follow_the_algorithm() -> Result<()> {
        let lr = sgd().lr;
        let by_hand = reference(&W0, &C, 50, |_, _, g| lr * g);
        assert_follows_the_algorithm(&sgd(), &by_hand)
    }
}
