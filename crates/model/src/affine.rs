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

use candle_core::backend::BackendStorage;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};

use crate::cpu::contiguous;

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

/// `xs` as the op's matmul reads it: contiguous, or left as it is where it is one
/// contiguous `[B, in]` broadcast over the members (batch stride 0: evaluation, where every
/// member reads the same images), which candle's matmul reads in place, one member at a
/// time with the same gemm call as for a copy.
fn readable_input(xs: &Tensor) -> Result<Tensor> {
    match (xs.dims(), xs.stride()) {
        (&[_, _, input], &[0, row, 1]) if row == input => Ok(xs.clone()),
        _ => xs.contiguous(),
    }
}

/// Parameter gradients that affine ops' backward passes computed, waiting to join the
/// `GradStore` of that backward pass. Clones share one store.
#[derive(Debug, Clone, Default)]
pub struct ParamGrads(Arc<Mutex<Vec<(Tensor, Tensor)>>>);

impl ParamGrads {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    fn collected(&self) -> Result<std::sync::MutexGuard<'_, Vec<(Tensor, Tensor)>>> {
        self.0
            .lock()
            .map_err(|_| candle_core::Error::Msg("a parameter-gradient sink was poisoned".into()))
    }

    fn push(&self, param: &Tensor, grad: Tensor) -> Result<()> {
        self.collected()?.push((param.clone(), grad));
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

    /// Moves every gradient collected so far into `grads`, summed with what `grads`
    /// already holds for the same tensor (a parameter used twice).
    pub fn drain_into(&self, grads: &mut GradStore) -> Result<()> {
        let collected = std::mem::take(&mut *self.collected()?);
        for (param, grad) in collected {
            let total = match grads.remove(&param) {
                Some(earlier) => (earlier + grad)?,
                None => grad,
            };
            grads.insert(&param, total);
        }
        Ok(())
    }
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
        let (k, b, input) = l1.shape().dims3()?;
        let (k2, input2, out) = l2.shape().dims3()?;
        if k != k2 || input != input2 || l3.shape().dims() != [k, 1, out] {
            bail!(
                "{}: incompatible shapes {:?}, {:?}, {:?}",
                self.name(),
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let mut z = s1.matmul(s2, (k, b, out, input), l1, l2)?;
        match (&mut z, s3) {
            (CpuStorage::F32(z), CpuStorage::F32(bias)) => {
                add_rows(z, contiguous(bias, l3, self.name())?, k)
            }
            (CpuStorage::F64(z), CpuStorage::F64(bias)) => {
                add_rows(z, contiguous(bias, l3, self.name())?, k)
            }
            _ => bail!("{}: expects f32 or f64 operands of one type", self.name()),
        }
        Ok((z, Shape::from((k, b, out))))
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
        let dw = xs.t()?.matmul(&grad)?;
        let db = grad.apply_op1_no_bwd(&SumRows)?;
        let dx = if self.input_grad {
            Some(grad.matmul(&ws.t()?)?)
        } else {
            None
        };
        let sink = self.sink.as_ref();
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
}
