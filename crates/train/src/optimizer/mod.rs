//! The optimizers a run trains with ([`vgrad_record::Optimizer`], the setting), one file
//! each behind the [`Optimizer`] trait, applied to the ensemble's variables by
//! [`EnsembleOptimizer`]:
//!
//! - [`adam`]: Adam (Kingma & Ba, Algorithm 1; PyTorch's `torch.optim.Adam` without
//!   weight decay).
//! - [`sgd`]: w -= lr * g, no state.
//! - [`momentum`]: heavy-ball momentum (PyTorch's `torch.optim.SGD(momentum=beta)`).
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
//! other devices, and as the reference that pass is tested against ([`Kernels::Candle`]),
//! the same update runs as candle tensor ops. The choice is made once, at construction.
//!
//! Adding an optimizer: its variant in `vgrad_record::Optimizer` (with its entry in
//! `Optimizer::ALL` and its arm in `Optimizer::spec`, its name), one file here
//! implementing [`Optimizer`] and [`Build`] (its state, its fused CPU op, its tensor ops,
//! its reference test), and its arms in [`EnsembleOptimizer::new`] and
//! [`state_per_parameter`], which the compiler asks for.

pub mod adam;
pub mod momentum;
pub mod sgd;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Layout, Result, Tensor, Var, bail};
use vgrad_model::Kernels;
use vgrad_record::{Optimizer as OptimizerKind, RunConfig};

use adam::{Adam, AdamParams};
use momentum::{Momentum, MomentumParams};
use sgd::Sgd;

/// An update rule over the variables of an ensemble, each `[K, ...]` with one slice per
/// member: candle-nn's `Optimizer` with members that can be frozen, and with the
/// gradients handed over in the variables' order (found and checked by
/// [`EnsembleOptimizer`]).
pub trait Optimizer {
    /// One update of every member that `frozen` does not mark, from `grads`: one gradient
    /// per variable, in the order of the variables it was built with. A frozen member's
    /// slices and state are left exactly as they are.
    fn step(&mut self, grads: &[&Tensor], frozen: &[bool]) -> Result<()>;

    /// The learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate of the steps to come.
    fn set_learning_rate(&mut self, lr: f64);

    /// Member `member`'s state in variable `var`, as numbers (a flag counts as 1).
    #[cfg(test)]
    fn member_state(&self, var: usize, member: usize) -> Result<Vec<f32>>;
}

/// How an [`Optimizer`] is built: candle-nn's `Optimizer::new`, with the members and the
/// kernels.
pub trait Build: Optimizer + Sized {
    /// Its hyper-parameters.
    type Config;

    /// Values of state it keeps per parameter (the memory estimate's).
    const STATE_PER_PARAMETER: usize;

    /// The optimizer over `vars` of `members` members each. With [`Kernels::Fused`] a
    /// contiguous f32 CPU variable is updated in place by one fused op; every other
    /// variable, and every variable with [`Kernels::Candle`], by candle tensor ops.
    fn new(vars: Vec<Var>, config: Self::Config, members: usize, kernels: Kernels) -> Result<Self>;
}

/// Values of optimizer state per parameter under `kind`: Adam's two moments, momentum's
/// velocity.
pub fn state_per_parameter(kind: OptimizerKind) -> usize {
    match kind {
        OptimizerKind::Adam => Adam::STATE_PER_PARAMETER,
        OptimizerKind::Sgd => Sgd::STATE_PER_PARAMETER,
        OptimizerKind::Momentum { .. } => Momentum::STATE_PER_PARAMETER,
    }
}

/// The optimizer of a run ([`vgrad_record::Optimizer`]) over a fixed list of named
/// ensemble variables, each `[K, ...]` with one slice per member. Named apart from the
/// setting it applies.
pub struct EnsembleOptimizer {
    names: Vec<String>,
    vars: Vec<Var>,
    members: usize,
    rule: Box<dyn Optimizer>,
}

impl EnsembleOptimizer {
    /// `cfg`'s optimizer over `vars` (named for error messages) of `members` members,
    /// fused or as tensor ops as `kernels` says (see [`Build::new`]).
    pub fn new(
        vars: Vec<(String, Var)>,
        cfg: &RunConfig,
        members: usize,
        kernels: Kernels,
    ) -> Result<Self> {
        if members == 0 || vars.iter().any(|(_, v)| v.dims().first() != Some(&members)) {
            bail!("optimizer: every variable must have {members} members along its first axis");
        }
        let (names, vars): (Vec<String>, Vec<Var>) = vars.into_iter().unzip();
        let given = vars.clone();
        let rule: Box<dyn Optimizer> = match cfg.optimizer {
            OptimizerKind::Adam => {
                Box::new(Adam::new(given, AdamParams::of(cfg), members, kernels)?)
            }
            OptimizerKind::Sgd => Box::new(Sgd::new(given, cfg.lr, members, kernels)?),
            OptimizerKind::Momentum { beta } => {
                let params = MomentumParams { lr: cfg.lr, beta };
                Box::new(Momentum::new(given, params, members, kernels)?)
            }
        };
        Ok(Self {
            names,
            vars,
            members,
            rule,
        })
    }

    /// The variables, in the order they were given.
    pub fn variables(&self) -> &[Var] {
        &self.vars
    }

    /// Members along every variable's first axis.
    pub fn members(&self) -> usize {
        self.members
    }

    /// Sets the learning rate of the steps to come (a warm-up's schedule).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.rule.set_learning_rate(lr);
    }

    /// Every variable's gradient in `grads`, in the variables' order. A variable without
    /// one is an error naming it: left alone, it would silently stop training.
    pub fn gradients<'g>(&self, grads: &'g GradStore) -> Result<Vec<&'g Tensor>> {
        self.names
            .iter()
            .zip(&self.vars)
            .map(|(name, var)| match grads.get(var) {
                Some(grad) => Ok(grad),
                None => bail!(
                    "optimizer: no gradient for {name} in the GradStore: the model's fast \
                     layers hand their weight gradients to ForwardTrace::backward; use it \
                     rather than loss.backward()"
                ),
            })
            .collect()
    }

    /// Applies one update from `grads`, which must hold every variable's gradient, to
    /// every member not `frozen`.
    pub fn step(&mut self, grads: &GradStore, frozen: &[bool]) -> Result<()> {
        let grads = self.gradients(grads)?;
        self.step_with(&grads, frozen)
    }

    /// [`EnsembleOptimizer::step`] from the gradients [`EnsembleOptimizer::gradients`]
    /// gathered, for a caller that read them already.
    pub fn step_with(&mut self, grads: &[&Tensor], frozen: &[bool]) -> Result<()> {
        if frozen.len() != self.members {
            bail!(
                "optimizer: {} frozen flags for {} members",
                frozen.len(),
                self.members
            );
        }
        self.rule.step(grads, frozen)
    }
}

/// Refuses a step with other than one gradient per variable: `zip` would silently leave
/// the variables past the shorter list alone.
fn check_gradients(vars: usize, grads: &[&Tensor]) -> Result<()> {
    if grads.len() != vars {
        bail!("optimizer: {} gradients for {vars} variables", grads.len());
    }
    Ok(())
}

/// Whether `var` is updated by a fused op under `kernels`: a contiguous f32 CPU tensor.
fn fuses(var: &Var, kernels: Kernels) -> bool {
    kernels == Kernels::Fused
        && var.device().is_cpu()
        && var.dtype() == DType::F32
        && var.is_contiguous()
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

/// A member's slice of `values`, `per` values a member, as the tests read a state.
#[cfg(test)]
fn member_chunk(values: &[f32], member: usize, per: usize) -> Vec<f32> {
    values[member * per..(member + 1) * per].to_vec()
}

/// A member's slice of `t` along its first axis, flattened.
#[cfg(test)]
fn member_slice(t: &Tensor, member: usize) -> Result<Vec<f32>> {
    t.get(member)?.flatten_all()?.to_vec1::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    pub(super) const W0: [f32; 4] = [1.0, -2.0, 0.5, 3.0];
    pub(super) const C: [f32; 4] = [1.0, 0.5, 4.0, 0.1];

    pub(super) fn config(optimizer: OptimizerKind, lr: f64) -> RunConfig {
        RunConfig {
            optimizer,
            lr,
            ..RunConfig::default()
        }
    }

    pub(super) fn adam() -> RunConfig {
        config(OptimizerKind::Adam, 0.05)
    }

    pub(super) fn sgd() -> RunConfig {
        config(OptimizerKind::Sgd, 0.05)
    }

    pub(super) fn momentum() -> RunConfig {
        config(OptimizerKind::Momentum { beta: 0.9 }, 0.05)
    }

    /// `steps` steps of an update rule on f(w) = sum(c * w^2) by hand, in f64:
    /// `delta(t, i, g)` is what parameter `i` loses at step `t` (from 1) given its
    /// gradient `g`.
    pub(super) fn reference(
        w0: &[f32],
        c: &[f32],
        steps: i32,
        mut delta: impl FnMut(i32, usize, f64) -> f64,
    ) -> Vec<f64> {
        let mut w: Vec<f64> = w0.iter().map(|&v| f64::from(v)).collect();
        for t in 1..=steps {
            for i in 0..w.len() {
                let g = 2.0 * f64::from(c[i]) * w[i];
                w[i] -= delta(t, i, g);
            }
        }
        w
    }

    /// `steps` steps on sum(c * w^2) for the members `[K, 2]` of `w0` and `c`, member `m`
    /// frozen at a step when `frozen(step)[m]`; the final values and the optimizer.
    pub(super) fn run_with(
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
        let kernels = if fused {
            Kernels::Fused
        } else {
            Kernels::Candle
        };
        let mut opt = EnsembleOptimizer::new(vec![("w".into(), w.clone())], cfg, k, kernels)?;
        for step in 0..steps {
            let loss = (w.as_tensor().sqr()? * &c)?.sum_all()?;
            opt.step(&loss.backward()?, &frozen(step))?;
        }
        Ok((w.as_tensor().flatten_all()?.to_vec1::<f32>()?, opt))
    }

    /// 50 steps of the two members of `W0` and `C`, member 1 frozen with `freeze`.
    pub(super) fn run(fused: bool, cfg: &RunConfig, freeze: bool) -> Result<Vec<f32>> {
        Ok(run_with(fused, cfg, &W0, &C, 50, |_| vec![false, freeze])?.0)
    }

    /// Member `member`'s optimizer state in the first variable.
    pub(super) fn member_state(opt: &EnsembleOptimizer, member: usize) -> Result<Vec<f32>> {
        opt.rule.member_state(0, member)
    }

    /// Both paths of `cfg`'s optimizer over 50 steps against `want`, its algorithm in f64,
    /// and against each other.
    pub(super) fn assert_follows_the_algorithm(cfg: &RunConfig, want: &[f64]) -> Result<()> {
        let fused = run(true, cfg, false)?;
        let tensors = run(false, cfg, false)?;
        // f32 against f64 over 50 steps: agreement to about 1e-5 relative.
        for ((a, b), w) in fused.iter().zip(&tensors).zip(want) {
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
    fn a_grad_store_without_a_variables_gradient_is_refused_by_name() -> Result<()> {
        for cfg in [adam(), sgd(), momentum()] {
            for kernels in [Kernels::Fused, Kernels::Candle] {
                let dev = Device::Cpu;
                let w = Var::new(&[[1.0f32], [2.0]], &dev)?;
                let unused = Var::new(&[[3.0f32], [4.0]], &dev)?;
                let vars = vec![
                    ("layer1.weight".to_string(), w.clone()),
                    ("layer1.bias".to_string(), unused.clone()),
                ];
                let mut opt = EnsembleOptimizer::new(vars, &cfg, 2, kernels)?;
                let loss = w.as_tensor().sqr()?.sum_all()?;
                let err = opt
                    .step(&loss.backward()?, &[false, false])
                    .unwrap_err()
                    .to_string();
                assert!(
                    err.contains("no gradient for layer1.bias in the GradStore")
                        && err.contains("ForwardTrace::backward"),
                    "{err}"
                );
                // Refused before anything moved.
                assert_eq!(w.as_tensor().flatten_all()?.to_vec1::<f32>()?, [1.0, 2.0]);
                assert_eq!(
                    unused.as_tensor().flatten_all()?.to_vec1::<f32>()?,
                    [3.0, 4.0]
                );
            }
        }
        Ok(())
    }

    #[test]
    fn variables_must_hold_the_members_and_frozen_flags_must_match() -> Result<()> {
        let w = Var::new(&[[1.0f32], [2.0]], &Device::Cpu)?;
        let vars = || vec![("w".to_string(), w.clone())];
        assert!(EnsembleOptimizer::new(vars(), &sgd(), 3, Kernels::Fused).is_err());
        let mut opt = EnsembleOptimizer::new(vars(), &sgd(), 2, Kernels::Fused)?;
        let loss = w.as_tensor().sqr()?.sum_all()?;
        assert!(opt.step(&loss.backward()?, &[false]).is_err());
        Ok(())
    }

    #[test]
    fn state_per_parameter_is_what_the_optimizers_keep() {
        assert_eq!(state_per_parameter(OptimizerKind::Adam), 2);
        assert_eq!(state_per_parameter(OptimizerKind::Sgd), 0);
        assert_eq!(
            state_per_parameter(OptimizerKind::Momentum { beta: 0.9 }),
            1
        );
    }
}
