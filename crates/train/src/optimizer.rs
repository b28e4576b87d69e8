//! The optimizers a run trains with ([`vgrad_record::Optimizer`], the setting), applied
//! to the ensemble's variables by [`EnsembleOptimizer`]:
//!
//! - Adam (Kingma & Ba, Algorithm 1; PyTorch's `torch.optim.Adam` without weight
//!   decay): first and second moments per parameter, w -= lr * m_hat / (sqrt(v_hat) + eps).
//! - SGD: w -= lr * g, no state.
//! - Heavy-ball momentum (PyTorch's `torch.optim.SGD(momentum=beta)`, dampening 0, no
//!   Nesterov): one velocity b per parameter, b = g at the first step and
//!   b = beta * b + g afterwards; w -= lr * b.
//!
//! Every variable is `[K, ...]` with one slice per ensemble member, and members never
//! see each other: a member trains bit-identically to a run of its own, and a frozen
//! member keeps its parameters and its optimizer state exactly as they are.
//!
//! Why fused: candle-nn's optimizers cost about 15 allocating tensor ops per parameter
//! and step (and its `AdamW` defaults to weight decay 0.01, which the reference has
//! not), and the reference network is small enough for that overhead to dominate. On
//! the CPU each contiguous f32 variable is therefore updated in one in-place pass over
//! parameter, gradient and state (for Adam the whole training step got 19% faster); on
//! other devices, and as the reference that pass is tested against, the same update
//! runs as candle tensor ops ([`EnsembleOptimizer::with_tensor_ops`]).

mod adam_kernel;

use std::cell::RefCell;

use adam_kernel::adam_member;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Storage, Tensor, Var, bail};
use vgrad_kernels::cpu::all_finite;
use vgrad_record::{Optimizer as OptimizerKind, RunConfig};

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AdamParams {
    /// Learning rate.
    lr: f64,
    /// Decay of the first moment.
    beta1: f64,
    /// Decay of the second moment.
    beta2: f64,
    /// Added to the bias-corrected root of the second moment.
    epsilon: f64,
}

/// The update rule of a run, with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Adam(AdamParams),
    Sgd { lr: f32 },
    Momentum { lr: f32, beta: f32 },
}

impl Rule {
    /// The rule and the values a run's configuration sets.
    fn of(cfg: &RunConfig) -> Self {
        match cfg.optimizer {
            OptimizerKind::Adam => Self::Adam(AdamParams {
                lr: cfg.lr,
                beta1: cfg.beta1,
                beta2: cfg.beta2,
                epsilon: cfg.epsilon,
            }),
            OptimizerKind::Sgd => Self::Sgd { lr: cfg.lr as f32 },
            OptimizerKind::Momentum { beta } => Self::Momentum {
                lr: cfg.lr as f32,
                beta: beta as f32,
            },
        }
    }
}

/// Adam's per-step scalars, computed in f64 once per step like PyTorch does.
#[derive(Debug, Clone, Copy)]
struct StepScalars {
    beta1: f32,
    beta2: f32,
    step_size: f32,
    bias_correction2_sqrt: f32,
    epsilon: f32,
}

impl StepScalars {
    fn new(p: &AdamParams, t: i32) -> Self {
        let bc1 = 1.0 - p.beta1.powi(t);
        let bc2 = 1.0 - p.beta2.powi(t);
        Self {
            beta1: p.beta1 as f32,
            beta2: p.beta2 as f32,
            step_size: (p.lr / bc1) as f32,
            bias_correction2_sqrt: bc2.sqrt() as f32,
            epsilon: p.epsilon as f32,
        }
    }
}

/// One variable's optimizer state, on the host for the fused update or as tensors.
enum State {
    /// SGD updated in place; it keeps nothing.
    HostSgd,
    /// Adam's first and second moments interleaved in host memory.
    HostAdam(Vec<f32>),
    /// Momentum's velocity in host memory, and per member whether it has been set.
    HostMomentum {
        velocity: Vec<f32>,
        started: Vec<bool>,
    },
    /// SGD as tensor ops.
    TensorSgd,
    /// Adam's moments as tensors on the parameter's device.
    TensorAdam { m: Tensor, v: Tensor },
    /// Momentum's velocity as a tensor, and per member whether it has been set.
    TensorMomentum {
        velocity: Tensor,
        started: Vec<bool>,
    },
}

struct Slot {
    var: Var,
    state: State,
}

/// The optimizer of a run ([`vgrad_record::Optimizer`]) over a fixed list of ensemble
/// variables, each `[K, ...]` with one slice per member; a frozen member's slices and
/// state are left as they are. Named apart from the setting it applies.
pub struct EnsembleOptimizer {
    slots: Vec<Slot>,
    rule: Rule,
    members: usize,
    /// Steps taken (Adam's bias correction).
    t: i32,
}

impl EnsembleOptimizer {
    /// `cfg`'s optimizer over `vars` of `members` members: fused in place where a
    /// variable is a contiguous f32 CPU tensor, candle tensor ops elsewhere.
    pub fn new(vars: Vec<Var>, cfg: &RunConfig, members: usize) -> Result<Self> {
        Self::build(vars, Rule::of(cfg), members, true)
    }

    /// `cfg`'s optimizer always as candle tensor ops (the path other devices take).
    pub fn with_tensor_ops(vars: Vec<Var>, cfg: &RunConfig, members: usize) -> Result<Self> {
        Self::build(vars, Rule::of(cfg), members, false)
    }

    fn build(vars: Vec<Var>, rule: Rule, members: usize, fuse: bool) -> Result<Self> {
        if members == 0 || vars.iter().any(|v| v.dims().first() != Some(&members)) {
            bail!("optimizer: every variable must have {members} members along its first axis");
        }
        let slots = vars
            .into_iter()
            .map(|var| {
                let fused = fuse
                    && var.device().is_cpu()
                    && var.dtype() == DType::F32
                    && var.is_contiguous();
                let state = match (rule, fused) {
                    (Rule::Sgd { .. }, true) => State::HostSgd,
                    (Rule::Sgd { .. }, false) => State::TensorSgd,
                    (Rule::Adam(_), true) => State::HostAdam(vec![0f32; 2 * var.elem_count()]),
                    (Rule::Adam(_), false) => State::TensorAdam {
                        m: var.zeros_like()?,
                        v: var.zeros_like()?,
                    },
                    (Rule::Momentum { .. }, true) => State::HostMomentum {
                        velocity: vec![0f32; var.elem_count()],
                        started: vec![false; members],
                    },
                    (Rule::Momentum { .. }, false) => State::TensorMomentum {
                        velocity: var.zeros_like()?,
                        started: vec![false; members],
                    },
                };
                Ok(Slot { var, state })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slots,
            rule,
            members,
            t: 0,
        })
    }

    /// The members whose gradient in `grads` holds a NaN or an infinity somewhere.
    /// `known_finite` tells, per variable, the members whose gradient is known to be finite
    /// already (`None`: none is); those are not read.
    pub fn nonfinite_members(
        &self,
        grads: &GradStore,
        known_finite: impl Fn(&Tensor) -> Result<Option<Vec<bool>>>,
    ) -> Result<Vec<bool>> {
        let mut bad = vec![false; self.members];
        for slot in &self.slots {
            if let Some(grad) = grads.get(&slot.var) {
                let known = known_finite(slot.var.as_tensor())?;
                let nonfinite = nonfinite_per_member(grad, self.members, known.as_deref())?;
                for (b, nonfinite) in bad.iter_mut().zip(nonfinite) {
                    *b |= nonfinite;
                }
            }
        }
        Ok(bad)
    }

    /// Applies one update from `grads` to every member not `frozen`; variables without
    /// a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore, frozen: &[bool]) -> Result<()> {
        if frozen.len() != self.members {
            bail!(
                "optimizer: {} frozen flags for {} members",
                frozen.len(),
                self.members
            );
        }
        self.t += 1;
        let adam = match &self.rule {
            Rule::Adam(p) => Some(StepScalars::new(p, self.t)),
            _ => None,
        };
        let any_frozen = frozen.iter().any(|&f| f);
        let moving: Vec<bool> = frozen.iter().map(|&f| !f).collect();
        for slot in &mut self.slots {
            let Some(grad) = grads.get(&slot.var) else {
                continue;
            };
            match (&mut slot.state, self.rule, adam) {
                (State::HostAdam(mv), Rule::Adam(_), Some(s)) => {
                    let grad = grad.contiguous()?;
                    let op = FusedAdam {
                        s,
                        frozen,
                        moments: RefCell::new(mv),
                    };
                    slot.var.inplace_op2(&grad, &op)?;
                }
                (State::TensorAdam { m, v }, Rule::Adam(_), Some(s)) => {
                    let new_m =
                        ((&*m * f64::from(s.beta1))? + (grad * (1.0 - f64::from(s.beta1)))?)?;
                    let new_v = ((&*v * f64::from(s.beta2))?
                        + (grad.sqr()? * (1.0 - f64::from(s.beta2)))?)?;
                    let denom = ((new_v.sqrt()? / f64::from(s.bias_correction2_sqrt))?
                        + f64::from(s.epsilon))?;
                    let update = ((&new_m / denom)? * f64::from(s.step_size))?;
                    let new_p = slot.var.sub(&update)?;
                    if any_frozen {
                        let active = member_mask(&slot.var, &moving)?;
                        *m = active.where_cond(&new_m, m)?;
                        *v = active.where_cond(&new_v, v)?;
                        set_moving(&slot.var, &new_p, Some(&active))?;
                    } else {
                        (*m, *v) = (new_m, new_v);
                        set_moving(&slot.var, &new_p, None)?;
                    }
                }
                (State::HostSgd, Rule::Sgd { lr }, _) => {
                    let grad = grad.contiguous()?;
                    slot.var.inplace_op2(&grad, &FusedSgd { lr, frozen })?;
                }
                (State::TensorSgd, Rule::Sgd { lr }, _) => {
                    let new_p = slot.var.sub(&(grad * f64::from(lr))?)?;
                    let active = any_frozen
                        .then(|| member_mask(&slot.var, &moving))
                        .transpose()?;
                    set_moving(&slot.var, &new_p, active.as_ref())?;
                }
                (State::HostMomentum { velocity, started }, Rule::Momentum { lr, beta }, _) => {
                    let grad = grad.contiguous()?;
                    let op = FusedMomentum {
                        lr,
                        beta,
                        frozen,
                        state: RefCell::new((velocity, started)),
                    };
                    slot.var.inplace_op2(&grad, &op)?;
                }
                (State::TensorMomentum { velocity, started }, Rule::Momentum { lr, beta }, _) => {
                    // b = g where a member's velocity is not set yet (a copy, as PyTorch's
                    // `clone(grad)`), b = beta * b + g elsewhere.
                    let new_b = if started.iter().all(|&s| !s) {
                        grad.copy()?
                    } else {
                        let decayed = ((&*velocity * f64::from(beta))? + grad)?;
                        if started.iter().all(|&s| s) {
                            decayed
                        } else {
                            member_mask(&slot.var, started)?.where_cond(&decayed, grad)?
                        }
                    };
                    let new_p = slot.var.sub(&(&new_b * f64::from(lr))?)?;
                    if any_frozen {
                        let active = member_mask(&slot.var, &moving)?;
                        *velocity = active.where_cond(&new_b, velocity)?;
                        set_moving(&slot.var, &new_p, Some(&active))?;
                    } else {
                        *velocity = new_b;
                        set_moving(&slot.var, &new_p, None)?;
                    }
                    for (s, &f) in started.iter_mut().zip(frozen) {
                        *s |= !f;
                    }
                }
                _ => bail!("optimizer: the state of a variable does not fit the update rule"),
            }
        }
        Ok(())
    }
}

/// A `u8` mask of `var`'s shape: 1 in the slices of the members `on` marks, 0 elsewhere.
fn member_mask(var: &Var, on: &[bool]) -> Result<Tensor> {
    let mask: Vec<u8> = on.iter().map(|&f| u8::from(f)).collect();
    let mut shape = vec![1usize; var.rank()];
    shape[0] = on.len();
    Tensor::from_vec(mask, shape, var.device())?.broadcast_as(var.shape())
}

/// Sets `var` to `new` for the members `active` marks (all without a mask). Frozen
/// members keep their values through `where_cond`: a mask product would turn a NaN
/// update into NaN.
fn set_moving(var: &Var, new: &Tensor, active: Option<&Tensor>) -> Result<()> {
    match active {
        Some(active) => var.set(&active.where_cond(new, var.as_tensor())?),
        None => var.set(new),
    }
}

/// For each of the `members` slices of `t` (along its first axis), whether it holds a NaN
/// or an infinity; a member `known_finite` marks is taken to hold none and not read. On
/// the CPU the values are scanned in place; elsewhere `t - t`, which is NaN exactly where
/// `t` is not finite, is summed per member.
pub fn nonfinite_per_member(
    t: &Tensor,
    members: usize,
    known_finite: Option<&[bool]>,
) -> Result<Vec<bool>> {
    let known = |m: usize| known_finite.is_some_and(|k| k.get(m) == Some(&true));
    if (0..members).all(known) {
        return Ok(vec![false; members]);
    }
    if t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous() {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            let values = &cpu.as_slice::<f32>()?[start..end];
            let per = values.len() / members.max(1);
            return Ok(values
                .chunks(per.max(1))
                .take(members)
                .enumerate()
                .map(|(m, c)| !known(m) && !all_finite(c))
                .collect());
        }
    }
    // `t - t` on purpose: 0 where t is finite, NaN where it is NaN or infinite.
    #[allow(clippy::eq_op)]
    let zeros_or_nan = (t - t)?;
    let sums = zeros_or_nan
        .flatten_from(1)?
        .sum(1)?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?;
    Ok(sums
        .iter()
        .enumerate()
        .map(|(m, v)| !known(m) && !v.is_finite())
        .collect())
}

/// The parameter and gradient slices of a fused op, checked to be f32, contiguous and
/// of one size; plus the number of values per member.
fn host_slices<'d>(
    name: &str,
    dst: &'d mut CpuStorage,
    dl: &Layout,
    src: &'d CpuStorage,
    sl: &Layout,
    members: usize,
) -> Result<(&'d mut [f32], &'d [f32], usize)> {
    let (CpuStorage::F32(params), CpuStorage::F32(grads)) = (dst, src) else {
        bail!("{name}: expects f32 tensors");
    };
    let (Some((p0, p1)), Some((g0, g1))) = (dl.contiguous_offsets(), sl.contiguous_offsets())
    else {
        bail!("{name}: expects contiguous tensors");
    };
    let (params, grads) = (&mut params[p0..p1], &grads[g0..g1]);
    if grads.len() != params.len() {
        bail!("{name}: parameter and gradient differ in size");
    }
    let per = (params.len() / members.max(1)).max(1);
    Ok((params, grads, per))
}

/// One parameter's Adam update in a single pass over parameter, gradient and moments,
/// skipping the slices of frozen members.
struct FusedAdam<'a> {
    s: StepScalars,
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

/// One member's Adam update, the reference every kernel matches bit for bit: `params` and
/// `grads` side by side, `moments` interleaved as `[m, v]` per parameter, each value's
/// IEEE operations in this order (Rust never fuses a multiply and an add on its own).
#[inline(always)]
fn adam_loop(s: StepScalars, params: &mut [f32], grads: &[f32], moments: &mut [f32]) {
    for ((p, &g), mv) in params
        .iter_mut()
        .zip(grads)
        .zip(moments.chunks_exact_mut(2))
    {
        let m = s.beta1 * mv[0] + (1.0 - s.beta1) * g;
        let v = s.beta2 * mv[1] + (1.0 - s.beta2) * g * g;
        mv[0] = m;
        mv[1] = v;
        *p -= s.step_size * m / (v.sqrt() / s.bias_correction2_sqrt + s.epsilon);
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
    use candle_core::Device;

    const W0: [f32; 4] = [1.0, -2.0, 0.5, 3.0];
    const C: [f32; 4] = [1.0, 0.5, 4.0, 0.1];

    fn config(optimizer: OptimizerKind, lr: f64) -> RunConfig {
        RunConfig {
            optimizer,
            lr,
            ..RunConfig::default()
        }
    }

    fn adam() -> RunConfig {
        config(OptimizerKind::Adam, 0.05)
    }

    fn sgd() -> RunConfig {
        config(OptimizerKind::Sgd, 0.05)
    }

    fn momentum() -> RunConfig {
        config(OptimizerKind::Momentum { beta: 0.9 }, 0.05)
    }

    /// The optimizer of `cfg` on f(w) = sum(c * w^2) by hand, in f64.
    fn reference(cfg: &RunConfig, w0: &[f32], c: &[f32], steps: i32) -> Vec<f64> {
        let mut w: Vec<f64> = w0.iter().map(|&v| f64::from(v)).collect();
        let (mut m, mut v) = (vec![0.0; w.len()], vec![0.0; w.len()]);
        let mut b: Vec<Option<f64>> = vec![None; w.len()];
        for t in 1..=steps {
            for i in 0..w.len() {
                let g = 2.0 * f64::from(c[i]) * w[i];
                match cfg.optimizer {
                    OptimizerKind::Adam => {
                        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
                        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
                        let m_hat = m[i] / (1.0 - cfg.beta1.powi(t));
                        let v_hat = v[i] / (1.0 - cfg.beta2.powi(t));
                        w[i] -= cfg.lr * m_hat / (v_hat.sqrt() + cfg.epsilon);
                    }
                    OptimizerKind::Sgd => w[i] -= cfg.lr * g,
                    OptimizerKind::Momentum { beta } => {
                        let buf = match b[i] {
                            None => g,
                            Some(buf) => beta * buf + g,
                        };
                        b[i] = Some(buf);
                        w[i] -= cfg.lr * buf;
                    }
                }
            }
        }
        w
    }

    /// `steps` steps on sum(c * w^2) for the members `[K, 2]` of `w0` and `c`, member `m`
    /// frozen at a step when `frozen(step)[m]`; the final values and the optimizer.
    fn run_with(
        fused: bool,
        cfg: &RunConfig,
        w0: &[f32],
        c: &[f32],
        steps: usize,
        frozen: impl Fn(usize) -> Vec<bool>,
    ) -> Result<(Vec<f32>, EnsembleOptimizer)> {
        let dev = Device::Cpu;
        let k = w0.len() / 2;
        let w = Var::from_vec(w0.to_vec(), (k, 2), &dev)?;
        let c = Tensor::from_vec(c.to_vec(), (k, 2), &dev)?;
        let mut opt = if fused {
            EnsembleOptimizer::new(vec![w.clone()], cfg, k)?
        } else {
            EnsembleOptimizer::with_tensor_ops(vec![w.clone()], cfg, k)?
        };
        for step in 0..steps {
            let loss = (w.as_tensor().sqr()? * &c)?.sum_all()?;
            opt.step(&loss.backward()?, &frozen(step))?;
        }
        Ok((w.as_tensor().flatten_all()?.to_vec1::<f32>()?, opt))
    }

    /// 50 steps of the two members of `W0` and `C`, member 1 frozen with `freeze`.
    fn run(fused: bool, cfg: &RunConfig, freeze: bool) -> Result<Vec<f32>> {
        Ok(run_with(fused, cfg, &W0, &C, 50, |_| vec![false, freeze])?.0)
    }

    /// Member `member`'s optimizer state in the first variable, as numbers (a set
    /// momentum flag counts as 1).
    fn member_state(opt: &EnsembleOptimizer, member: usize) -> Result<Vec<f32>> {
        let members = opt.members;
        let slice = |t: &Tensor| t.get(member)?.flatten_all()?.to_vec1::<f32>();
        let chunk = |values: &[f32], per: usize| values[member * per..(member + 1) * per].to_vec();
        let flag = |started: &[bool]| f32::from(u8::from(started[member]));
        let per = opt.slots[0].var.elem_count() / members;
        Ok(match &opt.slots[0].state {
            State::HostSgd | State::TensorSgd => Vec::new(),
            State::HostAdam(mv) => chunk(mv, 2 * per),
            State::TensorAdam { m, v } => [slice(m)?, slice(v)?].concat(),
            State::HostMomentum { velocity, started } => {
                [chunk(velocity, per), vec![flag(started)]].concat()
            }
            State::TensorMomentum { velocity, started } => {
                [slice(velocity)?, vec![flag(started)]].concat()
            }
        })
    }

    fn assert_follows_the_algorithm(cfg: &RunConfig) -> Result<()> {
        let want = reference(cfg, &W0, &C, 50);
        let fused = run(true, cfg, false)?;
        let tensors = run(false, cfg, false)?;
        // f32 against f64 over 50 steps: agreement to about 1e-5 relative.
        for ((a, b), w) in fused.iter().zip(&tensors).zip(&want) {
            assert!((f64::from(*a) - w).abs() < 1e-4, "fused {a} vs {w}");
            assert!((f64::from(*b) - w).abs() < 1e-4, "tensor ops {b} vs {w}");
            assert!(
                (a - b).abs() <= 1e-6 * a.abs().max(1.0),
                "fused {a} vs tensor ops {b}"
            );
        }
        Ok(())
    }

    #[test]
    fn adam_fused_and_tensor_paths_follow_the_algorithm() -> Result<()> {
        assert_follows_the_algorithm(&adam())
    }

    #[test]
    fn sgd_fused_and_tensor_paths_follow_the_algorithm() -> Result<()> {
        assert_follows_the_algorithm(&sgd())
    }

    #[test]
    fn momentum_fused_and_tensor_paths_follow_the_algorithm() -> Result<()> {
        assert_follows_the_algorithm(&momentum())
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

    #[test]
    fn frozen_members_keep_their_values_and_state_and_others_do_not_notice() -> Result<()> {
        // Member 1 frozen with a finite gradient, and with a NaN in it (a diverged member).
        let with_nan = [C[0], C[1], f32::NAN, C[3]];
        for (c, gradient) in [(C, "finite"), (with_nan, "NaN")] {
            for cfg in [adam(), sgd(), momentum()] {
                for fused in [true, false] {
                    let what = format!("{} fused={fused}, {gradient} gradient", cfg.optimizer);
                    let (free, _) = run_with(fused, &cfg, &W0, &C, 50, |_| vec![false, false])?;
                    let (w, opt) = run_with(fused, &cfg, &W0, &c, 50, |_| vec![false, true])?;
                    assert_eq!(&w[..2], &free[..2], "{what}: member 0 is unaffected");
                    assert_eq!(&w[2..], &W0[2..], "{what}: member 1 never moved");
                    assert!(
                        member_state(&opt, 1)?.iter().all(|&s| s == 0.0),
                        "{what}: member 1's state is untouched"
                    );
                }
            }
        }
        Ok(())
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

    #[test]
    fn ensemble_members_are_bit_identical_to_solo_runs() -> Result<()> {
        for cfg in [sgd(), momentum(), adam()] {
            for fused in [true, false] {
                let (ensemble, _) = run_with(fused, &cfg, &W0, &C, 50, |_| vec![false; 2])?;
                let (solo, _) = run_with(fused, &cfg, &W0[2..], &C[2..], 50, |_| vec![false])?;
                assert_eq!(&ensemble[2..], &solo[..], "{} fused={fused}", cfg.optimizer);
            }
        }
        Ok(())
    }

    /// A member frozen for its first steps and then let go starts its velocity at its
    /// gradient, as a run of its own would (the tensor path's mixed case).
    #[test]
    fn a_member_let_go_later_starts_like_a_solo_run() -> Result<()> {
        for cfg in [sgd(), momentum()] {
            for fused in [true, false] {
                let (late, _) = run_with(fused, &cfg, &W0, &C, 50, |s| vec![false, s < 5])?;
                let (solo, _) = run_with(fused, &cfg, &W0[2..], &C[2..], 45, |_| vec![false])?;
                assert_eq!(&late[2..], &solo[..], "{} fused={fused}", cfg.optimizer);
                let free = run(fused, &cfg, false)?;
                assert_eq!(&late[..2], &free[..2], "member 0 is unaffected");
            }
        }
        Ok(())
    }

    #[test]
    fn variables_without_a_gradient_are_left_alone() -> Result<()> {
        for cfg in [adam(), sgd(), momentum()] {
            for fused in [true, false] {
                let dev = Device::Cpu;
                let w = Var::new(&[[1.0f32], [2.0]], &dev)?;
                let unused = Var::new(&[[3.0f32], [4.0]], &dev)?;
                let mut opt = if fused {
                    EnsembleOptimizer::new(vec![w.clone(), unused.clone()], &cfg, 2)?
                } else {
                    EnsembleOptimizer::with_tensor_ops(vec![w.clone(), unused.clone()], &cfg, 2)?
                };
                let loss = w.as_tensor().sqr()?.sum_all()?;
                opt.step(&loss.backward()?, &[false, false])?;
                assert_eq!(
                    unused.as_tensor().flatten_all()?.to_vec1::<f32>()?,
                    [3.0, 4.0]
                );
                assert_ne!(w.as_tensor().flatten_all()?.to_vec1::<f32>()?, [1.0, 2.0]);
            }
        }
        Ok(())
    }

    #[test]
    fn finds_members_with_nan_or_infinite_values() -> Result<()> {
        let t = Tensor::new(
            &[[1.0f32, 2.0], [f32::NAN, 0.0], [3.0, f32::INFINITY]],
            &Device::Cpu,
        )?;
        assert_eq!(nonfinite_per_member(&t, 3, None)?, vec![false, true, true]);
        // Members known to be finite are not read (here, a false claim shows it); the
        // others still are.
        let known = [false, true, false];
        assert_eq!(
            nonfinite_per_member(&t, 3, Some(&known))?,
            vec![false, false, true]
        );
        assert_eq!(
            nonfinite_per_member(&t, 3, Some(&[true; 3]))?,
            vec![false; 3]
        );
        // The tensor-ops path (taken off the CPU), here through f64.
        let t64 = t.to_dtype(DType::F64)?;
        assert_eq!(
            nonfinite_per_member(&t64, 3, None)?,
            vec![false, true, true]
        );
        assert_eq!(
            nonfinite_per_member(&t64, 3, Some(&known))?,
            vec![false, false, true]
        );
        Ok(())
    }

    #[test]
    fn adam_gives_the_same_bits_at_every_vector_width() {
        let s = StepScalars::new(
            &AdamParams {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            3,
        );
        // Values over many magnitudes, from a fixed LCG, and a length off every width.
        let mut state = 7u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5) as f32
                * 10f32.powi((state % 9) as i32 - 6)
        };
        let n = 1003;
        let grads: Vec<f32> = (0..n).map(|_| next()).collect();
        let params: Vec<f32> = (0..n).map(|_| next()).collect();
        let moments: Vec<f32> = (0..2 * n).map(|_| next().abs()).collect();
        let (mut p1, mut m1) = (params.clone(), moments.clone());
        let (mut p2, mut m2) = (params, moments);
        adam_member(s, &mut p1, &grads, &mut m1);
        adam_loop(s, &mut p2, &grads, &mut m2);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p1), bits(&p2));
        assert_eq!(bits(&m1), bits(&m2));
    }
}
