//! Adam (Kingma & Ba, Algorithm 1; PyTorch's `torch.optim.Adam` without weight decay):
//! first and second moments per parameter, w -= lr * m_hat / (sqrt(v_hat) + eps).

use std::cell::RefCell;

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, Var, bail};
use vgrad_model::Kernels;
use vgrad_record::RunConfig;

use super::{Build, Optimizer, check_gradients, fuses, host_slices, member_mask, set_moving};
use vgrad_kernels::adam::{AdamScalars, adam_member};

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the bias-corrected root of the second moment.
    pub epsilon: f64,
}

impl AdamParams {
    /// The scalars of step `t` (from 1).
    fn scalars(&self, t: i32) -> AdamScalars {
        AdamScalars::new(self.lr, self.beta1, self.beta2, self.epsilon, t)
    }

    /// The values a run's configuration sets.
    pub fn of(cfg: &RunConfig) -> Self {
        Self {
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            epsilon: cfg.epsilon,
        }
    }
}

/// One variable's moments.
enum State {
    /// Interleaved as `[m, v]` per parameter in host memory, for the fused update.
    Host(Vec<f32>),
    /// As tensors on the parameter's device.
    Tensors { m: Tensor, v: Tensor },
}

/// Adam over ensemble variables.
pub struct Adam {
    slots: Vec<(Var, State)>,
    params: AdamParams,
    /// Steps taken (the bias correction's).
    t: i32,
}

impl Build for Adam {
    type Config = AdamParams;

    const STATE_PER_PARAMETER: usize = 2;

    fn new(vars: Vec<Var>, params: AdamParams, _members: usize, kernels: Kernels) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|var| {
                let state = if fuses(&var, kernels) {
                    State::Host(vec![0f32; 2 * var.elem_count()])
                } else {
                    State::Tensors {
                        m: var.zeros_like()?,
                        v: var.zeros_like()?,
                    }
                };
                Ok((var, state))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slots,
            params,
            t: 0,
        })
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &[&Tensor], frozen: &[bool]) -> Result<()> {
        check_gradients(self.slots.len(), grads)?;
        self.t += 1;
        let s = self.params.scalars(self.t);
        let any_frozen = frozen.iter().any(|&f| f);
        let moving: Vec<bool> = frozen.iter().map(|&f| !f).collect();
        for ((var, state), &grad) in self.slots.iter_mut().zip(grads) {
            match state {
                State::Host(mv) => {
                    let grad = grad.contiguous()?;
                    let op = FusedAdam {
                        s,
                        frozen,
                        moments: RefCell::new(mv),
                    };
                    var.inplace_op2(&grad, &op)?;
                }
                State::Tensors { m, v } => {
                    let new_m =
                        ((&*m * f64::from(s.beta1))? + (grad * (1.0 - f64::from(s.beta1)))?)?;
                    let new_v = ((&*v * f64::from(s.beta2))?
                        + (grad.sqr()? * (1.0 - f64::from(s.beta2)))?)?;
                    let denom = ((new_v.sqrt()? / f64::from(s.bias_correction2_sqrt))?
                        + f64::from(s.epsilon))?;
                    let update = ((&new_m / denom)? * f64::from(s.step_size))?;
                    let new_p = var.sub(&update)?;
                    if any_frozen {
                        let active = member_mask(var, &moving)?;
                        *m = active.where_cond(&new_m, m)?;
                        *v = active.where_cond(&new_v, v)?;
                        set_moving(var, &new_p, Some(&active))?;
                    } else {
                        (*m, *v) = (new_m, new_v);
                        set_moving(var, &new_p, None)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    #[cfg(test)]
    fn member_state(&self, var: usize, member: usize) -> Result<Vec<f32>> {
        let (var, state) = &self.slots[var];
        let per = var.elem_count() / var.dims()[0];
        Ok(match state {
            State::Host(mv) => super::member_chunk(mv, member, 2 * per),
            State::Tensors { m, v } => [
                super::member_slice(m, member)?,
                super::member_slice(v, member)?,
            ]
            .concat(),
        })
    }
}

/// One parameter's Adam update in a single pass over parameter, gradient and moments,
/// skipping the slices of frozen members.
struct FusedAdam<'a> {
    s: AdamScalars,
    frozen: &'a [bool],
    moments: RefCell<&'a mut Vec<f32>>,
}

impl InplaceOp2 for FusedAdam<'_> {
    fn name(&self) -> &'static str {
        "vgrad-fused-adam"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dl: &Layout,
        src: &CpuStorage,
        sl: &Layout,
    ) -> Result<()> {
        let (params, grads, per) = host_slices(self.name(), dst, dl, src, sl, self.frozen.len())?;
        let mut moments = self.moments.borrow_mut();
        if moments.len() != 2 * params.len() {
            bail!("{}: parameter and moments differ in size", self.name());
        }
        let s = self.s;
        let members = params
            .chunks_mut(per)
            .zip(grads.chunks(per))
            .zip(moments.chunks_mut(2 * per))
            .zip(self.frozen);
        for (((params, grads), moments), &frozen) in members {
            if frozen {
                continue;
            }
            adam_member(s, params, grads, moments);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::tests::{
        C, W0, adam, assert_follows_the_algorithm, config, reference, run,
    };
    use vgrad_record::Optimizer as OptimizerKind;

    /// Adam on sum(c * w^2) by hand, in f64.
    fn by_hand(cfg: &RunConfig) -> Vec<f64> {
        let (mut m, mut v) = (vec![0.0; W0.len()], vec![0.0; W0.len()]);
        reference(&W0, &C, 50, |t, i, g| {
            m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
            v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
            let m_hat = m[i] / (1.0 - cfg.beta1.powi(t));
            let v_hat = v[i] / (1.0 - cfg.beta2.powi(t));
            cfg.lr * m_hat / (v_hat.sqrt() + cfg.epsilon)
        })
    }

    #[test]
    fn adam_fused_and_tensor_paths_follow_the_algorithm() -> Result<()> {
        assert_follows_the_algorithm(&adam(), &by_hand(&adam()))
    }

    /// Adam's numbers as they were before SGD and momentum joined it (the committed
    /// reports depend on them), bit for bit.
    #[test]
    fn adam_numbers_are_unchanged() -> Result<()> {
        let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let fused = [0xbd1b281c, 0xbdeb71db, 0xbb1df700, 0x3f5a16d6];
        let tensors = [0xbd1b281c, 0xbdeb71dd, 0xbb1df700, 0x3f5a16d6];
        assert_eq!(bits(run(true, &adam(), false)?), fused);
        assert_eq!(bits(run(false, &adam(), false)?), tensors);
        let reference = config(OptimizerKind::Adam, 1e-3);
        let both = [0x3f734739, 0xbff99e8a, 0x3ee6b820, 0x403cce73];
        assert_eq!(bits(run(true, &reference, false)?), both);
        assert_eq!(bits(run(false, &reference, false)?), both);
        Ok(())
    }
}
