//! The dense layer's `x W + b` as one candle op on the CPU.
//!
//! Built from candle's ops, a layer is a matmul, a broadcast and an add, and its backward
//! pass sums the bias gradient over the batch with a strided reduction and accumulates each
//! of those nodes' gradients separately; on the larger networks of this study that
//! bookkeeping cost about a fifth of a step. This op does the matmul, adds the bias in the
//! same buffer, and in its backward pass computes dW = xᵀg, db = Σ_rows g (one contiguous
//! pass) and, unless the input is data, dx = g Wᵀ.
//!
//! With a [`ParamGrads`] sink, the backward pass leaves dW and db there instead of
//! returning them: candle's backward pass accumulates every gradient it is handed into a
//! zero tensor of its own (`zeros_like`, then `add`), which at width 1000 is three extra
//! passes over every weight matrix and fresh memory to fault in at every step.

use std::sync::{Arc, Mutex};

use candle_core::backprop::GradStore;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor, TensorId, bail,
};

use crate::cpu::{INFINITY_BITS, contiguous, largest_magnitude, with_f32_values};
use crate::matmul::{matmul, matmul_storage, product_dims};

/// `xs.matmul(ws) + bs` for `xs: [K, B, in]`, `ws: [K, in, out]`, `bs: [K, 1, out]` on the
/// CPU (f32 or f64), differentiable in all three, or only in `ws` and `bs` when
/// `input_grad` is false (the input is data).
///
/// With `sink`, the backward pass puts the gradients of `ws` and `bs`, each where it is a
/// variable, in `sink` rather than in the `GradStore` that `backward()` returns;
/// [`ParamGrads::drain_into`] moves them there.
pub fn affine(
    xs: &Tensor,
    ws: &Tensor,
    bs: &Tensor,
    input_grad: bool,
    sink: Option<&ParamGrads>,
) -> Result<Tensor> {
    let (xs, ws, bs) = (readable_input(xs)?, ws.contiguous()?, bs.contiguous()?);
    let op = Affine {
        input_grad,
        sink: sink.cloned(),
    };
    xs.apply_op3(&ws, &bs, op)
}

/// `xs` as the op's matmul reads it: contiguous, or left as it is where it is one `[B, in]`
/// matrix broadcast over the members (batch stride 0: evaluation, where every member reads
/// the same images), stored by rows or by columns, which the matmul reads in place, one
/// member at a time with the same gemm call as for a copy.
fn readable_input(xs: &Tensor) -> Result<Tensor> {
    match (xs.dims(), xs.stride()) {
        (&[_, _, input], &[0, row, 1]) if row == input => Ok(xs.clone()),
        (&[_, batch, _], &[0, 1, column]) if column == batch => Ok(xs.clone()),
        _ => xs.contiguous(),
    }
}

/// Parameter gradients that affine ops' backward passes computed, waiting to join the
/// `GradStore` of that backward pass, and which members' gradients are known to be
/// finite without reading them. Clones share one store.
#[derive(Debug, Clone, Default)]
pub struct ParamGrads(Arc<Mutex<Collected>>);

#[derive(Debug, Default)]
struct Collected {
    grads: Vec<(Tensor, Tensor)>,
    /// Per parameter, the members whose gradient is finite for certain.
    finite: Vec<(TensorId, Vec<bool>)>,
}

impl ParamGrads {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    fn collected(&self) -> Result<std::sync::MutexGuard<'_, Collected>> {
        self.0
            .lock()
            .map_err(|_| candle_core::Error::Msg("a parameter-gradient sink was poisoned".into()))
    }

    fn push(&self, param: &Tensor, grad: Tensor) -> Result<()> {
        self.collected()?.grads.push((param.clone(), grad));
        Ok(())
    }

    /// Where a backward pass puts `grad`, the gradient of `param`: in `sink` when there is
    /// one and `param` is a variable (returning `None`), else back to candle. Only a
    /// variable's gradient may skip candle: any other tensor's must flow on through the
    /// ops that made it.
    pub fn route(sink: Option<&Self>, param: &Tensor, grad: Tensor) -> Result<Option<Tensor>> {
        match sink {
            Some(sink) if param.is_variable() => sink.push(param, grad).map(|()| None),
            _ => Ok(Some(grad)),
        }
    }

    /// Records that the gradient of `param` given to this sink is finite in the members
    /// `finite` marks (a proof from its operands, see [`finite_weight_grads`]).
    fn vouch(&self, param: &Tensor, finite: Vec<bool>) -> Result<()> {
        self.collected()?.finite.push((param.id(), finite));
        Ok(())
    }

    /// Per member, whether the gradient of `param` that [`ParamGrads::drain_into`] gave
    /// its `GradStore` is known to be finite without reading it; `None` where nothing is
    /// known.
    pub fn finite_members(&self, param: &Tensor) -> Result<Option<Vec<bool>>> {
        let collected = self.collected()?;
        let known = collected.finite.iter().find(|(id, _)| *id == param.id());
        Ok(known.map(|(_, members)| members.clone()))
    }

    /// Moves every gradient collected so far into `grads`, summed with what `grads`
    /// already holds for the same tensor (a parameter used twice; a sum may overflow, so
    /// what was known of the part is forgotten).
    pub fn drain_into(&self, grads: &mut GradStore) -> Result<()> {
        let mut collected = self.collected()?;
        let Collected {
            grads: parts,
            finite,
        } = &mut *collected;
        for (param, grad) in std::mem::take(parts) {
            let total = match grads.remove(&param) {
                Some(earlier) => {
                    finite.retain(|(id, _)| *id != param.id());
                    (earlier + grad)?
                }
                None => grad,
            };
            grads.insert(&param, total);
        }
        Ok(())
    }
}

/// Per member of `xs: [K, B, in]` and `grad: [K, B, out]`, whether the weight gradient
/// `xsᵀ grad` is finite for certain, from the operands alone: where every x and g is
/// finite, each of the B products in a sum is at most X·G in magnitude (the largest |x|
/// and |g|), and the rounding of B < 2²² additions, in any order, grows a sum by less
/// than a factor of 2, so B·X·G ≤ f32::MAX / 4 rules out an overflow. Reading x and g
/// instead of the gradient is cheaper where B (in + out) < in · out (width 1000: an
/// eighth). `None` where it is not, or where the operands are not contiguous f32 on the
/// CPU: the optimizer then scans the gradient itself.
fn finite_weight_grads(xs: &Tensor, grad: &Tensor) -> Result<Option<Vec<bool>>> {
    let (members, b, input) = xs.dims3()?;
    let out = grad.dim(2)?;
    let cheaper = b * (input + out) < input * out;
    if !cheaper || b >= 1 << 22 {
        return Ok(None);
    }
    let per_member = |values: &[f32], width: usize| -> Vec<u32> {
        values
            .chunks((b * width).max(1))
            .map(largest_magnitude)
            .collect()
    };
    let maxima = with_f32_values(xs, grad, |x, g| (per_member(x, input), per_member(g, out)));
    let Some((x_max, g_max)) = maxima else {
        return Ok(None);
    };
    if x_max.len() != members || g_max.len() != members {
        return Ok(None);
    }
    Ok(Some(
        x_max
            .into_iter()
            .zip(g_max)
            .map(|(x, g)| {
                let finite = x < INFINITY_BITS && g < INFINITY_BITS;
                let bound = b as f64 * f64::from(f32::from_bits(x)) * f64::from(f32::from_bits(g));
                finite && bound <= f64::from(f32::MAX) / 4.0
            })
            .collect(),
    ))
}

/// Whether [`affine`] runs on tensors of this device and type.
pub fn supported(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

struct Affine {
    input_grad: bool,
    sink: Option<ParamGrads>,
}

/// `out[k, r, :] += bias[k, 0, :]` for every row r of every member k.
fn add_rows<T: Copy + std::ops::AddAssign>(out: &mut [T], bias: &[T], members: usize) {
    let width = bias.len() / members.max(1);
    let per_member = out.len() / members.max(1);
    for (out_k, bias_k) in out
        .chunks_mut(per_member.max(1))
        .zip(bias.chunks(width.max(1)))
    {
        for row in out_k.chunks_mut(width.max(1)) {
            for (o, &b) in row.iter_mut().zip(bias_k) {
                *o += b;
            }
        }
    }
}

impl CustomOp3 for Affine {
    fn name(&self) -> &'static str {
        "vgrad-affine"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (bmnk, shape) = product_dims(self.name(), l1, l2)?;
        let (k, _, out, _) = bmnk;
        if l3.shape().dims() != [k, 1, out] {
            bail!(
                "{}: incompatible shapes {:?}, {:?}, {:?}",
                self.name(),
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let mut z = matmul_storage(s1, l1, s2, l2, bmnk)?;
        match (&mut z, s3) {
            (CpuStorage::F32(z), CpuStorage::F32(bias)) => {
                add_rows(z, contiguous(bias, l3, self.name())?, k)
            }
            (CpuStorage::F64(z), CpuStorage::F64(bias)) => {
                add_rows(z, contiguous(bias, l3, self.name())?, k)
            }
            _ => bail!("{}: expects f32 or f64 operands of one type", self.name()),
        }
        Ok((z, shape))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        ws: &Tensor,
        bs: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dw = matmul(&xs.t()?, &grad)?;
        let sink = self.sink.as_ref();
        // Right after the product that read them, while `xs` and `grad` are still in the
        // cache (the input gradient reads the whole weight matrix).
        if let Some(sink) = sink
            && ws.is_variable()
            && let Some(finite) = finite_weight_grads(xs, &grad)?
        {
            sink.vouch(ws, finite)?;
        }
        let db = grad.apply_op1_no_bwd(&SumRows)?;
        let dx = if self.input_grad {
            Some(matmul(&grad, &ws.t()?)?)
        } else {
            None
        };
        Ok((
            dx,
            ParamGrads::route(sink, ws, dw)?,
            ParamGrads::route(sink, bs, db)?,
        ))
    }
}

/// `[K, B, out] -> [K, 1, out]`: the sum over the rows of each member, in row order.
struct SumRows;

fn sum_rows<T: Copy + Default + std::ops::AddAssign>(
    g: &[T],
    k: usize,
    b: usize,
    out: usize,
) -> Vec<T> {
    let mut sums = vec![T::default(); k * out];
    for (sum_k, g_k) in sums.chunks_mut(out.max(1)).zip(g.chunks((b * out).max(1))) {
        for row in g_k.chunks(out.max(1)) {
            for (s, &v) in sum_k.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
    sums
}

impl CustomOp1 for SumRows {
    fn name(&self) -> &'static str {
        "vgrad-sum-rows"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (k, b, out) = layout.shape().dims3()?;
        let sums = match storage {
            CpuStorage::F32(g) => {
                CpuStorage::F32(sum_rows(contiguous(g, layout, self.name())?, k, b, out))
            }
            CpuStorage::F64(g) => {
                CpuStorage::F64(sum_rows(contiguous(g, layout, self.name())?, k, b, out))
            }
            _ => bail!("{}: expects f32 or f64", self.name()),
        };
        Ok((sums, Shape::from((k, 1, out))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candles_ops_forward_and_backward() -> Result<()> {
        let dev = Device::Cpu;
        let xs = Var::from_tensor(
            &Tensor::arange(0f32, 24., &dev)?
                .reshape((2, 3, 4))?
                .affine(0.1, -1.0)?,
        )?;
        let ws = Var::from_tensor(&Tensor::arange(0f32, 16., &dev)?.reshape((2, 4, 2))?.sin()?)?;
        let bs = Var::from_tensor(&Tensor::new(&[[[0.5f32, -0.25]], [[1.0, 2.0]]], &dev)?)?;
        let ours = affine(&xs, &ws, &bs, true, None)?;
        let theirs = xs.matmul(&ws)?.broadcast_add(&bs)?;
        assert_eq!(ours.to_vec3::<f32>()?, theirs.to_vec3::<f32>()?);
        let weights = Tensor::arange(0f32, 12., &dev)?.reshape((2, 3, 2))?.cos()?;
        let g_ours = (ours * &weights)?.sum_all()?.backward()?;
        let g_theirs = (theirs * &weights)?.sum_all()?.backward()?;
        for v in [&xs, &ws, &bs] {
            let a = g_ours.get(v).unwrap().flatten_all()?.to_vec1::<f32>()?;
            let b = g_theirs.get(v).unwrap().flatten_all()?.to_vec1::<f32>()?;
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
        // On data, no gradient for the input.
        let g = affine(&xs, &ws, &bs, false, None)?.sum_all()?.backward()?;
        assert!(g.get(&xs).is_none() && g.get(&ws).is_some() && g.get(&bs).is_some());
        Ok(())
    }

    #[test]
    fn a_sink_gives_candles_gradients_bit_for_bit() -> Result<()> {
        let dev = Device::Cpu;
        // Zero inputs against negative upstream gradients: products of -0, where adding
        // to candle's zero tensor would turn a -0 into +0.
        let xs = Var::from_tensor(
            &Tensor::arange(0f32, 40., &dev)?
                .reshape((2, 5, 4))?
                .affine(0.37, -9.0)?
                .sin()?
                .relu()?,
        )?;
        let ws = Var::from_tensor(&Tensor::arange(0f32, 32., &dev)?.reshape((2, 4, 4))?.cos()?)?;
        let bs = Var::from_tensor(&Tensor::new(
            &[[[0.5f32, -0.25, 0., 1.]], [[1.0, 2.0, -3., 0.]]],
            &dev,
        )?)?;
        let upstream = Tensor::arange(0f32, 40., &dev)?
            .reshape((2, 5, 4))?
            .affine(-0.1, 0.5)?;
        // The parameters used twice, and once more through a tensor that is not a
        // variable (whose gradient candle must carry on to the variable).
        let loss = |sink: Option<&ParamGrads>| -> Result<Tensor> {
            let once = affine(&xs, &ws, &bs, true, sink)?;
            let twice = affine(&once.tanh()?, &ws, &bs, true, sink)?;
            let scaled = affine(&twice, &ws.affine(2.0, 0.0)?, &bs, true, sink)?;
            ((once + twice + scaled)? * &upstream)?.sum_all()
        };
        let theirs = loss(None)?.backward()?;
        let sink = ParamGrads::new();
        let mut ours = loss(Some(&sink))?.backward()?;
        assert!(ours.get(&bs).is_none(), "the sink keeps them until drained");
        sink.drain_into(&mut ours)?;
        for v in [&xs, &ws, &bs] {
            let bits = |g: &GradStore| -> Result<Vec<u32>> {
                let t = g
                    .get(v)
                    .expect("a gradient")
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                Ok(t.iter().map(|x| x.to_bits()).collect())
            };
            assert_eq!(bits(&ours)?, bits(&theirs)?);
        }
        Ok(())
    }

    #[test]
    fn one_input_broadcast_over_the_members_gives_the_bits_of_copies() -> Result<()> {
        let dev = Device::Cpu;
        // 3 members, 7 rows, 33 inputs: wide enough for the gemm kernel's vector lanes.
        let x = Tensor::arange(0f32, 231., &dev)?
            .reshape((1, 7, 33))?
            .affine(0.21, -3.0)?
            .sin()?;
        let ws = Tensor::arange(0f32, 3. * 33. * 5., &dev)?
            .reshape((3, 33, 5))?
            .affine(0.7, 0.0)?
            .cos()?;
        let bs = Tensor::arange(0f32, 15., &dev)?
            .reshape((3, 1, 5))?
            .affine(0.1, -0.5)?;
        let broadcast = x.broadcast_as((3, 7, 33))?;
        assert_eq!(broadcast.stride(), [0, 33, 1], "read in place, not copied");
        let bits = |t: Tensor| -> Result<Vec<u32>> {
            Ok(t.flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .map(|v| v.to_bits())
                .collect())
        };
        let ours = bits(affine(&broadcast, &ws, &bs, false, None)?)?;
        let copies = bits(affine(&x.repeat((3, 1, 1))?, &ws, &bs, false, None)?)?;
        assert_eq!(ours, copies);
        Ok(())
    }

    /// `xs: [members, b, input]` and `grad: [members, b, out]` filled with `x` and `g`.
    fn operands(
        members: usize,
        b: usize,
        input: usize,
        out: usize,
        x: f32,
        g: f32,
    ) -> Result<(Tensor, Tensor)> {
        let dev = Device::Cpu;
        let xs = Tensor::full(x, (members, b, input), &dev)?;
        let grad = Tensor::full(g, (members, b, out), &dev)?;
        Ok((xs, grad))
    }

    #[test]
    fn weight_gradients_are_vouched_for_only_where_no_sum_can_overflow() -> Result<()> {
        let (b, input, out) = (4, 40, 30);
        let member = |x: f32, g: f32| operands(1, b, input, out, x, g);
        let vouched = |(xs, grad): (Tensor, Tensor)| -> Result<bool> {
            let finite = finite_weight_grads(&xs, &grad)?.expect("a cheaper check");
            let product = matmul(&xs.t()?, &grad)?.flatten_all()?.to_vec1::<f32>()?;
            // Never a false promise: whatever is vouched for is finite.
            if finite[0] {
                assert!(product.iter().all(|v| v.is_finite()));
            }
            Ok(finite[0])
        };
        assert!(vouched(member(-0.5, 3.0)?)?);
        // Each product 1e19 * 1e19 is finite, four of them overflow: B X G = 4e38.
        assert!(!vouched(member(1e19, 1e19)?)?);
        // Within the bound: 4 * 1e18 * 1e19 = 4e37 <= f32::MAX / 4.
        assert!(vouched(member(1e18, 1e19)?)?);
        assert!(!vouched(member(1.0, f32::NAN)?)?);
        assert!(!vouched(member(f32::INFINITY, 0.0)?)?);
        // Per member: a NaN in the second member's gradient leaves the first vouched for.
        let (xs, grad) = operands(2, b, input, out, 0.5, 0.25)?;
        let nan_in_second = Tensor::cat(
            &[
                grad.narrow(0, 0, 1)?,
                Tensor::full(f32::NAN, (1, b, out), &Device::Cpu)?,
            ],
            0,
        )?;
        assert_eq!(
            finite_weight_grads(&xs, &nan_in_second)?,
            Some(vec![true, false])
        );
        // Where reading the operands costs more than the gradient (B (in + out) >= in out).
        let (xs, grad) = operands(1, 30, 10, 10, 0.5, 0.25)?;
        assert_eq!(finite_weight_grads(&xs, &grad)?, None);
        Ok(())
    }

    #[test]
    fn what_is_known_finite_is_forgotten_for_a_parameter_used_twice() -> Result<()> {
        let dev = Device::Cpu;
        let ws = Var::zeros((1, 40, 30), DType::F32, &dev)?;
        let bs = Var::zeros((1, 1, 30), DType::F32, &dev)?;
        let (xs, _) = operands(1, 4, 40, 30, 0.5, 0.0)?;
        for uses in [1, 2] {
            let sink = ParamGrads::new();
            let mut z = xs.clone();
            for _ in 0..uses {
                z = affine(
                    &z.narrow(2, 0, 40.min(z.dim(2)?))?,
                    &ws,
                    &bs,
                    true,
                    Some(&sink),
                )?;
                z = Tensor::cat(&[&z, &z.narrow(2, 0, 10)?], 2)?;
            }
            let mut grads = z.sum_all()?.backward()?;
            sink.drain_into(&mut grads)?;
            let known = sink.finite_members(&ws)?;
            assert_eq!(known, (uses == 1).then(|| vec![true]), "{uses} use(s)");
            assert!(grads.get(&ws).is_some());
        }
        Ok(())
    }
}
