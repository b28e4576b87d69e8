//! The training pass of batch norm and layer norm as one CPU op forward and one backward,
//! with candle's numbers bit for bit.
//!
//! Built from candle's ops ([`crate::norm`]), one normalised layer is eleven ops forward
//! and some thirty in the backward pass, each a fresh tensor and a graph node; at the
//! reference width of 10 that made a step with batch norm 2.4 times a plain one. This op
//! computes the same IEEE operations on the same values in the same order as those ops
//! and candle's autograd through them, so its output, batch statistics and gradients are
//! identical to the bit (tested against the composite, over signs of zero too):
//!
//! - a mean is candle's `sum_keepdim` then `* (1/n)` (an affine, so `x * m + 0`);
//! - a sum over the batch adds rows in order from 0, as candle's strided reduction; a sum
//!   over the units (layer norm) is candle's row sum, which on x86-64 with AVX2 keeps 32
//!   running lanes and adds them in a fixed tree ([`row_sum_f32`]);
//! - each gradient candle accumulates starts from a zero tensor, so the first
//!   contribution to a node is `0 + g` (or `0 - g`), which turns a -0 into +0.
//!
//! Where candle's row sum is not known (another architecture), on other devices and types,
//! [`crate::norm`] keeps the composite.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};
use vgrad_record::Norm;
use vgrad_record::norm::NORM_EPSILON;

use crate::affine::ParamGrads;
use crate::cpu::contiguous;

/// Whether [`norm_train`] computes `kind` on tensors like `z` exactly as candle's ops
/// would: on the CPU, in f32 or f64, and for layer norm only where candle's row sum is
/// reproduced.
pub fn supported(z: &Tensor, kind: Norm) -> bool {
    let reduction_known = match kind {
        Norm::Batch => true,
        Norm::Layer => cfg!(target_arch = "x86_64"),
        Norm::None => false,
    };
    reduction_known && z.device().is_cpu() && matches!(z.dtype(), DType::F32 | DType::F64)
}

/// The training pass of normalisation `kind` on `z: [K, B, units]`: standardised per unit
/// over the batch (batch norm) or per example over the units (layer norm), then
/// `* scale + shift` (`[K, 1, units]` each). Returns the output and, for batch norm, the
/// batch's mean and biased variance `[K, 1, units]`, detached. With `sink`, the backward
/// pass puts the gradients of `scale` and `shift` there (see [`ParamGrads`]).
pub fn norm_train(
    z: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    kind: Norm,
    sink: Option<&ParamGrads>,
) -> Result<(Tensor, Option<(Tensor, Tensor)>)> {
    if !supported(z, kind) {
        bail!("vgrad-norm: {kind} on {:?} {:?}", z.device(), z.dtype());
    }
    let (k, _, units) = z.dims3()?;
    let (z, scale, shift) = (z.contiguous()?, scale.contiguous()?, shift.contiguous()?);
    let stats = SidePair::default();
    let op = NormOp {
        kind,
        sink: sink.cloned(),
        stats: stats.clone(),
    };
    let out = z.apply_op3(&scale, &shift, op)?;
    let stats = match kind {
        Norm::Batch => Some(stats.take("vgrad-norm", (k, 1, units), z.device())?),
        _ => None,
    };
    Ok((out, stats))
}

/// Two per-statistic or per-unit buffers an op computes beside its result (batch norm's
/// mean and variance, the gradients of scale and shift), handed to its caller: candle's
/// custom ops return one tensor. Clones share one slot.
#[derive(Clone, Default)]
struct SidePair(Arc<Mutex<Option<(CpuStorage, CpuStorage)>>>);

impl SidePair {
    /// Leaves `pair` for [`SidePair::take`]; `op` names the op in errors.
    fn put(&self, pair: (CpuStorage, CpuStorage), op: &str) -> Result<()> {
        *self
            .0
            .lock()
            .map_err(|_| candle_core::Error::Msg(format!("{op}: poisoned")))? = Some(pair);
        Ok(())
    }

    /// The pair left by the op named `op`, as tensors of `shape` on `device`.
    fn take(
        &self,
        op: &str,
        shape: (usize, usize, usize),
        device: &candle_core::Device,
    ) -> Result<(Tensor, Tensor)> {
        let taken = self
            .0
            .lock()
            .map_err(|_| candle_core::Error::Msg(format!("{op}: poisoned")))?
            .take();
        let Some((a, b)) = taken else {
            bail!("{op}: the op left no side results")
        };
        let tensor = |storage| match storage {
            CpuStorage::F32(v) => Tensor::from_vec(v, shape, device),
            CpuStorage::F64(v) => Tensor::from_vec(v, shape, device),
            _ => bail!("{op}: expects f32 or f64"),
        };
        Ok((tensor(a)?, tensor(b)?))
    }
}

/// The float arithmetic the op needs, for f32 and f64.
trait Real:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    const ZERO: Self;
    /// `v` as candle converts an op's f64 parameter (`T::from_f64`).
    fn of(v: f64) -> Self;
    fn sqrt(self) -> Self;
    /// candle's `sum_keepdim` over the last dimension of one contiguous row.
    fn row_sum(xs: &[Self]) -> Self;
    fn storage(v: Vec<Self>) -> CpuStorage;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    fn of(v: f64) -> Self {
        v as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn row_sum(xs: &[Self]) -> Self {
        row_sum_f32(xs)
    }
    fn storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(v)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    fn of(v: f64) -> Self {
        v
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn row_sum(xs: &[Self]) -> Self {
        xs.iter().fold(0.0, |acc, &x| acc + x)
    }
    fn storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(v)
    }
}

/// candle's f32 row sum (`vec_sum`): with AVX2, 32 lanes each summing every 32nd value of
/// the whole blocks of 32, the lanes added pairwise in a fixed tree, then the remaining
/// values in order; without, all values in order from 0. Vector lanes add as scalars do,
/// so this scalar form gives the same bits.
pub fn row_sum_f32(xs: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let whole = xs.len() / 32 * 32;
        let mut lanes = [0f32; 32];
        for block in xs[..whole].chunks_exact(32) {
            for (lane, &x) in lanes.iter_mut().zip(block) {
                *lane += x;
            }
        }
        // x[0] + x[1] and x[2] + x[3] (eight lanes each), then their sum.
        let mut x0 = [0f32; 8];
        for l in 0..8 {
            let a = lanes[l] + lanes[8 + l];
            let c = lanes[16 + l] + lanes[24 + l];
            x0[l] = a + c;
        }
        // The low half plus the high half, then two horizontal adds.
        let t0: [f32; 4] = std::array::from_fn(|l| x0[l] + x0[l + 4]);
        let mut sum = (t0[0] + t0[1]) + (t0[2] + t0[3]);
        for &x in &xs[whole..] {
            sum += x;
        }
        return sum;
    }
    xs.iter().fold(0.0, |acc, &x| acc + x)
}

/// The shape of one normalisation: `k` members, `b` examples, `u` units, and which values
/// share a statistic.
#[derive(Debug, Clone, Copy)]
struct Dims {
    kind: Norm,
    k: usize,
    b: usize,
    u: usize,
}

impl Dims {
    /// Values per statistic.
    fn n(&self) -> usize {
        match self.kind {
            Norm::Batch => self.b,
            _ => self.u,
        }
    }

    /// Calls `f(i, group, unit)` for every flat index `i` of `[K, B, units]` in order, with
    /// the statistic `group` and the scale/shift entry `unit` it uses; nested loops rather
    /// than a division per value, which at these sizes costs more than the arithmetic.
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        let mut i = 0;
        for k in 0..self.k {
            for r in 0..self.b {
                for j in 0..self.u {
                    let unit = k * self.u + j;
                    let group = match self.kind {
                        Norm::Batch => unit,
                        _ => k * self.b + r,
                    };
                    f(i, group, unit);
                    i += 1;
                }
            }
        }
    }

    /// The sums of `xs: [K, B, units]` per statistic, as candle's `sum_keepdim` orders
    /// them: over the batch, row by row from 0; over the units, [`Real::row_sum`].
    fn sums<T: Real>(&self, xs: &[T]) -> Vec<T> {
        match self.kind {
            Norm::Batch => column_sums(xs, self.k, self.b, self.u),
            _ => xs.chunks(self.u.max(1)).map(T::row_sum).collect(),
        }
    }
}

/// `[K, B, units] -> [K, 1, units]`: per member, the sum of the rows in order from 0
/// (candle's reduction over a dimension that is not the last).
fn column_sums<T: Real>(xs: &[T], k: usize, b: usize, u: usize) -> Vec<T> {
    let mut sums = vec![T::ZERO; k * u];
    for (sum_k, xs_k) in sums.chunks_mut(u.max(1)).zip(xs.chunks((b * u).max(1))) {
        for row in xs_k.chunks(u.max(1)) {
            for (s, &x) in sum_k.iter_mut().zip(row) {
                *s = *s + x;
            }
        }
    }
    sums
}

/// What the forward pass computes, which the backward pass computes again.
struct Standardised<T> {
    /// Per statistic: the mean, the biased variance and sqrt(variance + eps).
    mean: Vec<T>,
    var: Vec<T>,
    sd: Vec<T>,
    /// Per value: z - mean.
    centred: Vec<T>,
}

/// `mean_keepdim`, the centring, `sqr`, `mean_keepdim`, `+ eps` and `sqrt` as candle
/// computes them.
fn standardise<T: Real>(z: &[T], d: Dims) -> Standardised<T> {
    let inv = T::of(1.0 / d.n() as f64);
    let (one, eps) = (T::of(1.0), T::of(NORM_EPSILON));
    let mean: Vec<T> = d.sums(z).iter().map(|&s| s * inv + T::ZERO).collect();
    let mut centred = vec![T::ZERO; z.len()];
    let mut squares = vec![T::ZERO; z.len()];
    d.for_each(|i, group, _| {
        let c = z[i] - mean[group];
        centred[i] = c;
        squares[i] = c * c;
    });
    let var: Vec<T> = d
        .sums(&squares)
        .iter()
        .map(|&s| s * inv + T::ZERO)
        .collect();
    let sd = var.iter().map(|&v| (v * one + eps).sqrt()).collect();
    Standardised {
        mean,
        var,
        sd,
        centred,
    }
}

/// `(c / sd) * scale + shift` per value.
fn forward<T: Real>(z: &[T], scale: &[T], shift: &[T], d: Dims) -> (Vec<T>, Standardised<T>) {
    let s = standardise(z, d);
    let mut out = vec![T::ZERO; z.len()];
    d.for_each(|i, group, unit| {
        out[i] = (s.centred[i] / s.sd[group]) * scale[unit] + shift[unit];
    });
    (out, s)
}

/// The gradients of `z`, `scale` and `shift` given `g`, that of the output: candle's
/// autograd through the composite, node by node (see the module's notes). Each value's
/// expression is candle's, literal `0 +` accumulations included (they turn -0 into +0);
/// the sums keep candle's order.
fn backward<T: Real>(z: &[T], scale: &[T], g: &[T], d: Dims) -> (Vec<T>, Vec<T>, Vec<T>) {
    let s = standardise(z, d);
    let n = z.len();
    let zero = T::ZERO;
    let inv = T::of(1.0 / d.n() as f64);
    let (one, half, two) = (T::of(1.0), T::of(0.5), T::of(2.0));
    // out = m + shift: both get 0 + g. m = normed * scale. normed = centred / sd: to
    // centred g / sd, to sd -(g centred) / sd².
    let mut g_m = vec![zero; n];
    let mut g_normed = vec![zero; n];
    let mut g_scale = vec![zero; n];
    let mut g_sd_each = vec![zero; n];
    d.for_each(|i, group, unit| {
        let gm = zero + g[i];
        let sd = s.sd[group];
        let c = s.centred[i];
        let gn = zero + gm * scale[unit];
        g_m[i] = gm;
        g_normed[i] = gn;
        g_scale[i] = zero + gm * (c / sd);
        g_sd_each[i] = zero - (gn * c) / (sd * sd);
    });
    let dshift = column_sums(&g_m, d.k, d.b, d.u);
    let dscale = column_sums(&g_scale, d.k, d.b, d.u);
    // sd = sqrt(v), v = var * 1 + eps, var = s2 * inv + 0, s2 = sum(c²).
    let g_squares: Vec<T> = d
        .sums(&g_sd_each)
        .iter()
        .zip(&s.sd)
        .map(|(&g_sd, &sd)| {
            let g_sd = zero + g_sd;
            let g_v = zero + ((g_sd / sd) * half + zero);
            let g_var = zero + (g_v * one + zero);
            let g_s2 = zero + (g_var * inv + zero);
            zero + g_s2
        })
        .collect();
    // centred = z - mean, mean = s1 * inv + 0, s1 = sum(z). The buffers are reused:
    // g_m holds dC/dcentred, g_normed its negation (to the mean).
    let (g_centred, g_mean_each) = (&mut g_m, &mut g_normed);
    d.for_each(|i, group, _| {
        let through_div = g_mean_each[i] / s.sd[group];
        let through_sqr = (s.centred[i] * g_squares[group]) * two + zero;
        let gc = (zero + through_div) + through_sqr;
        g_centred[i] = gc;
        g_mean_each[i] = zero - gc;
    });
    let g_s1: Vec<T> = d
        .sums(g_mean_each)
        .iter()
        .map(|&g| {
            let g_mean = zero + g;
            zero + (g_mean * inv + zero)
        })
        .collect();
    let mut dz = std::mem::take(g_centred);
    d.for_each(|i, group, _| dz[i] = (zero + dz[i]) + g_s1[group]);
    (dz, dscale, dshift)
}

/// The op: `(z, scale, shift) -> out`, leaving batch norm's statistics in `stats`.
struct NormOp {
    kind: Norm,
    sink: Option<ParamGrads>,
    stats: SidePair,
}

/// The two kernels, each run by one op on three operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// `(z, scale, shift) -> (out, (mean, var))`.
    Forward,
    /// `(z, scale, dC/dout) -> (dC/dz, (dC/dscale, dC/dshift))`.
    Backward,
}

/// `pass` on operands `[K, B, units]`, `[K, 1, units]` and (forward) `[K, 1, units]` or
/// (backward) `[K, B, units]` of one float type: the main result and two per-unit or
/// per-statistic side results. Errors name `op`.
fn run_pass(
    pass: Pass,
    kind: Norm,
    op: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> Result<(CpuStorage, (CpuStorage, CpuStorage))> {
    let (k, b, u) = l1.shape().dims3()?;
    let third_ok = match pass {
        Pass::Forward => l3.shape().dims() == [k, 1, u],
        Pass::Backward => l3.shape() == l1.shape(),
    };
    if l2.shape().dims() != [k, 1, u] || !third_ok {
        bail!(
            "{op}: incompatible shapes {:?}, {:?}, {:?}",
            l1.shape(),
            l2.shape(),
            l3.shape()
        );
    }
    let d = Dims { kind, k, b, u };
    fn run<T: Real>(
        pass: Pass,
        z: &[T],
        scale: &[T],
        third: &[T],
        d: Dims,
    ) -> (CpuStorage, (CpuStorage, CpuStorage)) {
        match pass {
            Pass::Forward => {
                let (out, s) = forward(z, scale, third, d);
                (T::storage(out), (T::storage(s.mean), T::storage(s.var)))
            }
            Pass::Backward => {
                let (dz, dscale, dshift) = backward(z, scale, third, d);
                (T::storage(dz), (T::storage(dscale), T::storage(dshift)))
            }
        }
    }
    Ok(match (s1, s2, s3) {
        (CpuStorage::F32(z), CpuStorage::F32(a), CpuStorage::F32(c)) => run(
            pass,
            contiguous(z, l1, op)?,
            contiguous(a, l2, op)?,
            contiguous(c, l3, op)?,
            d,
        ),
        (CpuStorage::F64(z), CpuStorage::F64(a), CpuStorage::F64(c)) => run(
            pass,
            contiguous(z, l1, op)?,
            contiguous(a, l2, op)?,
            contiguous(c, l3, op)?,
            d,
        ),
        _ => bail!("{op}: expects f32 or f64 operands of one type"),
    })
}

impl CustomOp3 for NormOp {
    fn name(&self) -> &'static str {
        "vgrad-norm"
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
        let op = self.name();
        let (out, stats) = run_pass(Pass::Forward, self.kind, op, (s1, l1), (s2, l2), (s3, l3))?;
        if self.kind == Norm::Batch {
            self.stats.put(stats, op)?;
        }
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        z: &Tensor,
        scale: &Tensor,
        shift: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let params = SidePair::default();
        let op = NormGrad {
            kind: self.kind,
            params: params.clone(),
        };
        let dz = z.apply_op3_no_bwd(scale, &grad, &op)?;
        let (k, _, u) = z.dims3()?;
        let (dscale, dshift) = params.take(op.name(), (k, 1, u), z.device())?;
        Ok((
            Some(dz),
            ParamGrads::route(self.sink.as_ref(), scale, dscale)?,
            ParamGrads::route(self.sink.as_ref(), shift, dshift)?,
        ))
    }
}

/// `(z, scale, dC/dout) -> dC/dz`, leaving dC/dscale and dC/dshift in `params`.
struct NormGrad {
    kind: Norm,
    params: SidePair,
}

impl CustomOp3 for NormGrad {
    fn name(&self) -> &'static str {
        "vgrad-norm-grad"
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
        let op = self.name();
        let (dz, params) = run_pass(Pass::Backward, self.kind, op, (s1, l1), (s2, l2), (s3, l3))?;
        self.params.put(params, op)?;
        Ok((dz, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kernels;
    use crate::norm::EnsembleNorm;
    use candle_core::backprop::GradStore;
    use candle_core::{Device, Var};

    /// `n` values from a fixed LCG in about [-2, 2], with exact zeros, repeats and a unit
    /// (the second) that is constant over the batch, whose variance is exactly 0.
    fn values(n: usize, seed: u32, u: usize) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let v = f64::from(state >> 8) / f64::from(1u32 << 24) * 4.0 - 2.0;
                match (i % u, state % 7) {
                    (1, _) => 0.75,
                    (_, 0) => 0.0,
                    (_, 1) => 1.5,
                    _ => v,
                }
            })
            .collect()
    }

    type Grads = Vec<Vec<u64>>;

    /// The output, batch statistics and gradients of z, scale and shift of one pass, as
    /// bit patterns; `fused` picks the op or candle's ops.
    fn pass(kind: Norm, dims: (usize, usize, usize), dtype: DType, fused: bool) -> Result<Grads> {
        let (k, b, u) = dims;
        let dev = Device::Cpu;
        let tensor = |v: Vec<f64>, shape: (usize, usize, usize)| {
            Tensor::from_vec(v, shape, &dev).and_then(|t| t.to_dtype(dtype))
        };
        let z = Var::from_tensor(&tensor(values(k * b * u, 7, u), (k, b, u))?)?;
        let scale = Var::from_tensor(&tensor(values(k * u, 11, u.max(2) + 1), (k, 1, u))?)?;
        let shift = Var::from_tensor(&tensor(values(k * u, 13, u.max(2) + 1), (k, 1, u))?)?;
        // Negative and zero upstream gradients, so that products of -0 occur.
        let upstream = tensor(values(k * b * u, 17, u + 1), (k, b, u))?;
        let kernels = if fused {
            Kernels::Fused
        } else {
            Kernels::Candle
        };
        let norm = EnsembleNorm::new(kind, scale.as_tensor().clone(), shift.as_tensor().clone())?
            .with_kernels(kernels);
        let sink = ParamGrads::new();
        let (out, stats) = norm.forward_train(z.as_tensor(), fused.then_some(&sink))?;
        let mut grads: GradStore = (&out * &upstream)?.sum_all()?.backward()?;
        sink.drain_into(&mut grads)?;
        let bits = |t: &Tensor| -> Result<Vec<u64>> {
            let t = t.flatten_all()?;
            Ok(match dtype {
                DType::F32 => t
                    .to_vec1::<f32>()?
                    .iter()
                    .map(|v| u64::from(v.to_bits()))
                    .collect(),
                _ => t.to_vec1::<f64>()?.iter().map(|v| v.to_bits()).collect(),
            })
        };
        let mut all = vec![bits(&out)?];
        if let Some(stats) = stats {
            all.push(bits(&stats.mean)?);
            all.push(bits(&stats.var)?);
        }
        for v in [&z, &scale, &shift] {
            let Some(g) = grads.get(v.as_tensor()) else {
                bail!("no gradient")
            };
            all.push(bits(g)?);
        }
        Ok(all)
    }

    #[test]
    fn the_op_is_candles_composite_bit_for_bit() -> Result<()> {
        // Widths below and above candle's 32-lane row sum, with and without a remainder.
        let shapes = [
            (1, 10, 10),
            (3, 7, 5),
            (2, 4, 33),
            (2, 3, 64),
            (1, 5, 300),
            (2, 1, 3),
        ];
        for kind in [Norm::Batch, Norm::Layer] {
            for dims in shapes {
                for dtype in [DType::F32, DType::F64] {
                    let fused = pass(kind, dims, dtype, true)?;
                    let candle = pass(kind, dims, dtype, false)?;
                    assert_eq!(fused.len(), candle.len());
                    for (i, (a, b)) in fused.iter().zip(&candle).enumerate() {
                        assert!(a == b, "{kind} {dims:?} {dtype:?}: output {i} differs");
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn the_row_sum_keeps_candles_order() -> Result<()> {
        let dev = Device::Cpu;
        for n in [1usize, 31, 32, 33, 64, 100, 1000] {
            let v: Vec<f32> = values(n, 3, 7).iter().map(|&x| (x * 1e3) as f32).collect();
            let candle = Tensor::from_slice(&v, (1, n), &dev)?.sum_keepdim(1)?;
            let candle = candle.flatten_all()?.to_vec1::<f32>()?[0];
            assert_eq!(row_sum_f32(&v).to_bits(), candle.to_bits(), "n = {n}");
        }
        Ok(())
    }
}
