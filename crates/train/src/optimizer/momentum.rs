//! Heavy-ball momentum (PyTorch's `torch.optim.SGD(momentum=beta)`, dampening 0, no
//! Nesterov): one velocity b per parameter, b = g at the first step and b = beta * b + g
//! afterwards; w -= lr * b.

use std::cell::RefCell;

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, Var, bail};
use vgrad_model::Kernels;

use super::{Build, Optimizer, check_gradients, fuses, host_slices, member_mask, set_moving};

/// Momentum's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MomentumParams {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the velocity.
    pub beta: f64,
}

/// One variable's velocity.
enum Velocity {
    /// In host memory, for the fused update.
    Host(Vec<f32>),
    /// As a tensor on the parameter's device.
    Tensor(Tensor),
}

/// One variable and its state.
struct Slot {
    var: Var,
    velocity: Velocity,
    /// Per member, whether its velocity has been set (PyTorch's first step sets it to the
    /// gradient itself).
    started: Vec<bool>,
}

/// Heavy-ball momentum over ensemble variables.
pub struct Momentum {
    slots: Vec<Slot>,
    params: MomentumParams,
}

impl Build for Momentum {
    type Config = MomentumParams;

    const STATE_PER_PARAMETER: usize = 1;

    fn new(
        vars: Vec<Var>,
        params: MomentumParams,
        members: usize,
        kernels: Kernels,
    ) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|var| {
                let velocity = if fuses(&var, kernels) {
                    Velocity::Host(vec![0f32; var.elem_count()])
                } else {
                    Velocity::Tensor(var.zeros_like()?)
                };
                Ok(Slot {
                    var,
                    velocity,
                    started: vec![false; members],
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { slots, params })
    }
}

impl Optimizer for Momentum {
    fn step(&mut self, grads: &[&Tensor], frozen: &[bool]) -> Result<()> {
        check_gradients(self.slots.len(), grads)?;
        // In f32 on both paths, as the fused op computes.
        let (lr, beta) = (self.params.lr as f32, self.params.beta as f32);
        let any_frozen = frozen.iter().any(|&f| f);
        let moving: Vec<bool> = frozen.iter().map(|&f| !f).collect();
        for (slot, &grad) in self.slots.iter_mut().zip(grads) {
            let Slot {
                var,
                velocity,
                started,
            } = slot;
            match velocity {
                Velocity::Host(velocity) => {
                    let grad = grad.contiguous()?;
                    let op = FusedMomentum {
                        lr,
                        beta,
                        frozen,
                        state: RefCell::new((velocity, started)),
                    };
                    var.inplace_op2(&grad, &op)?;
                }
                Velocity::Tensor(velocity) => {
                    // b = g where a member's velocity is not set yet (a copy, as PyTorch's
                    // `clone(grad)`), b = beta * b + g elsewhere.
                    let new_b = if started.iter().all(|&s| !s) {
                        grad.copy()?
                    } else {
                        let decayed = ((&*velocity * f64::from(beta))? + grad)?;
                        if started.iter().all(|&s| s) {
                            decayed
                        } else {
                            member_mask(var, started)?.where_cond(&decayed, grad)?
                        }
                    };
                    let new_p = var.sub(&(&new_b * f64::from(lr))?)?;
                    if any_frozen {
                        let active = member_mask(var, &moving)?;
                        *velocity = active.where_cond(&new_b, velocity)?;
                        set_moving(var, &new_p, Some(&active))?;
                    } else {
                        *velocity = new_b;
                        set_moving(var, &new_p, None)?;
                    }
                    for (s, &f) in started.iter_mut().zip(frozen) {
                        *s |= !f;
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
        let slot = &self.slots[var];
        let per = slot.var.elem_count() / slot.started.len();
        let velocity = match &slot.velocity {
            Velocity::Host(v) => super::member_chunk(v, member, per),
            Velocity::Tensor(v) => super::member_slice(v, member)?,
        };
        let flag = f32::from(u8::from(slot.started[member]));
        Ok([velocity, vec![flag]].concat())
    }
}

/// One parameter's momentum update in a single pass over parameter, gradient and
/// velocity, skipping the slices (and the flags) of frozen members.
struct FusedMomentum<'a> {
    lr: f32,
    beta: f32,
    frozen: &'a [bool],
    /// The velocity, and per member whether it has been set.
    state: RefCell<(&'a mut Vec<f32>, &'a mut Vec<bool>)>,
}

impl InplaceOp2 for FusedMomentum<'_> {
    fn name(&self) -> &'static str {
        "vgrad-fused-momentum"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dl: &Layout,
        src: &CpuStorage,
        sl: &Layout,
    ) -> Result<()> {
        let (params, grads, per) = host_slices(self.name(), dst, dl, src, sl, self.frozen.len())?;
        let mut state = self.state.borrow_mut();
        let (velocity, started) = &mut *state;
        if velocity.len() != params.len() || started.len() != self.frozen.len() {
            bail!("{}: parameter and velocity differ in size", self.name());
        }
        let (lr, beta) = (self.lr, self.beta);
        let members = params
            .chunks_mut(per)
            .zip(grads.chunks(per))
            .zip(velocity.chunks_mut(per))
            .zip(started.iter_mut())
            .zip(self.frozen);
        for ((((params, grads), velocity), started), &frozen) in members {
            if frozen {
                continue;
            }
            if *started {
                for ((p, &g), b) in params.iter_mut().zip(grads).zip(velocity) {
                    *b = beta * *b + g;
                    *p -= lr * *b;
                }
            } else {
                // PyTorch's first step: the velocity is the gradient itself.
                for ((p, &g), b) in params.iter_mut().zip(grads).zip(velocity) {
                    *b = g;
                    *p -= lr * g;
                }
                *started = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::tests::{
        C, W0, assert_follows_the_algorithm, config, member_state, momentum, reference, run_with,
        sgd,
    };
    use vgrad_record::Optimizer as OptimizerKind;

    #[test]
    fn momentum_fused_and_tensor_paths_follow_the_algorithm() -> Result<()> {
        let beta = 0.9;
        let cfg = config(OptimizerKind::Momentum { beta }, 0.05);
        let mut b: Vec<Option<f64>> = vec![None; W0.len()];
        let by_hand = reference(&W0, &C, 50, |_, i, g| {
            let buf = match b[i] {
                None => g,
                Some(buf) => beta * buf + g,
            };
            b[i] = Some(buf);
            cfg.lr * buf
        });
        assert_follows_the_algorithm(&cfg, &by_hand)
    }

    #[test]
    fn momentum_first_step_is_sgd_first_step() -> Result<()> {
        for fused in [true, false] {
            let (sgd_w, _) = run_with(fused, &sgd(), &W0, &C, 1, |_| vec![false, false])?;
            let (mom_w, opt) = run_with(fused, &momentum(), &W0, &C, 1, |_| vec![false, false])?;
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&mom_w), bits(&sgd_w), "fused={fused}");
            // The velocity is the gradient 2 c w itself.
            let g: Vec<f32> = W0[..2].iter().zip(&C).map(|(w, c)| w * 2.0 * c).collect();
            assert_eq!(member_state(&opt, 0)?, [g, vec![1.0]].concat());
        }
        Ok(())
    }
}
