//! The training pass of batch norm and layer norm as one CPU op forward and one backward,
//! with candle's numbers bit for bit.
//!
//! Built from candle's ops (the model's `EnsembleNorm`), one normalised layer is eleven ops forward
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
//! the model keeps the composite.
//!
//! What makes it fast at the reference width (10 units, batch 30):
//!
//! - the forward pass keeps the centred and standardised values and the standard
//!   deviations, which the backward pass reads instead of computing them again;
//! - every loop over values runs along a row's units over plain slices, so that the
//!   compiler vectorises it;
//! - layer norm's row sums are computed eight rows side by side (`sums_in_order`);
//! - a ReLU or leaky ReLU after the norm runs inside the op ([`norm_train`]), which saves
//!   the graph a node, a tensor and a gradient accumulation per layer.

use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};

use crate::affine::ParamGrads;
use crate::cpu::{contiguous, with_f32_values};
use crate::rectifier;

/// Which values share a statistic. The kernels' own copy of the two normalisations they
/// compute, so that this crate depends on no record of the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// Batch norm: each unit over the batch.
    Batch,
    /// Layer norm: each example over the units.
    Layer,
}

/// Whether [`norm_train`] computes `kind` on tensors like `z` exactly as candle's ops
/// would: on the CPU, in f32 or f64, and for layer norm only where candle's row sum is
/// reproduced.
pub fn supported(z: &Tensor, kind: NormKind) -> bool {
    let reduction_known = match kind {
        NormKind::Batch => true,
        NormKind::Layer => cfg!(target_arch = "x86_64"),
    };
    reduction_known && z.device().is_cpu() && matches!(z.dtype(), DType::F32 | DType::F64)
}

/// What [`norm_train`] computes.
#[derive(Debug, Clone)]
pub struct NormTrain {
    /// What the activation reads: the standardised values `* scale + shift`,
    /// `[K, B, units]`. Where a rectifier was fused in, a tensor outside the graph.
    pub normalised: Tensor,
    /// The rectifier's output, where one was fused in: the node to differentiate.
    pub rectified: Option<Tensor>,
    /// Batch norm's batch mean and biased variance `[K, 1, units]`, detached.
    pub stats: Option<(Tensor, Tensor)>,
}

/// The training pass of normalisation `kind` on `z: [K, B, units]`: standardised per unit
/// over the batch (batch norm) or per example over the units (layer norm), then
/// `* scale + shift` (`[K, 1, units]` each), then, with `rectifier` (a slope), leaky ReLU
/// (ReLU at 0) as [`crate::rectifier`] computes it. One op forward and one backward, which
/// saves the graph a node per layer; the gradients are those of the two ops in turn
/// (candle would add the rectifier's gradient to a zero first, `0 + g`, which the norm's
/// backward pass does as its first step anyway). With `sink`, the backward pass puts the
/// gradients of `scale` and `shift` there (see [`ParamGrads`]).
pub fn norm_train(
    z: &Tensor,
    (scale, shift): (&Tensor, &Tensor),
    (kind, epsilon): (NormKind, f64),
    rectifier: Option<f64>,
    sink: Option<&ParamGrads>,
) -> Result<NormTrain> {
    const OP: &str = "vgrad-norm";
    if !supported(z, kind) {
        bail!("{OP}: {kind:?} on {:?} {:?}", z.device(), z.dtype());
    }
    let (k, b, units) = z.dims3()?;
    let (z, scale, shift) = (z.contiguous()?, scale.contiguous()?, shift.contiguous()?);
    let op = NormOp {
        kind,
        epsilon,
        rectifier,
        sink: sink.cloned(),
        side: Slot::default(),
        saved: Arc::default(),
    };
    let side = op.side.clone();
    let out = z.apply_op3(&scale, &shift, op)?;
    let (stats, normalised) = side.take(OP)?;
    let device = z.device();
    let stats = match stats {
        Some((mean, var)) => Some((
            tensor(mean, (k, 1, units), device, OP)?,
            tensor(var, (k, 1, units), device, OP)?,
        )),
        None => None,
    };
    Ok(match normalised {
        Some(normalised) => NormTrain {
            normalised: tensor(normalised, (k, b, units), device, OP)?,
            rectified: Some(out),
            stats,
        },
        None => NormTrain {
            normalised: out,
            rectified: None,
            stats,
        },
    })
}

/// A buffer of `shape` on `device` as a tensor; `op` names the op in errors.
fn tensor(
    storage: CpuStorage,
    shape: (usize, usize, usize),
    device: &candle_core::Device,
    op: &str,
) -> Result<Tensor> {
    match storage {
        CpuStorage::F32(v) => Tensor::from_vec(v, shape, device),
        CpuStorage::F64(v) => Tensor::from_vec(v, shape, device),
        _ => bail!("{op}: expects f32 or f64"),
    }
}

/// What an op computes beside its result (batch norm's statistics, the gradients of scale
/// and shift), handed to its caller: candle's custom ops return one tensor. Clones share
/// one slot.
struct Slot<T>(Arc<Mutex<Option<T>>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Slot<T> {
    /// Leaves `value` for [`Slot::take`]; `op` names the op in errors.
    fn put(&self, value: T, op: &str) -> Result<()> {
        *self
            .0
            .lock()
            .map_err(|_| candle_core::Error::Msg(format!("{op}: poisoned")))? = Some(value);
        Ok(())
    }

    /// What the op named `op` left.
    fn take(&self, op: &str) -> Result<T> {
        let taken = self
            .0
            .lock()
            .map_err(|_| candle_core::Error::Msg(format!("{op}: poisoned")))?
            .take();
        match taken {
            Some(value) => Ok(value),
            None => bail!("{op}: the op left no side results"),
        }
    }
}

/// The forward pass's side results: batch norm's mean and variance, and the normalised
/// values where a rectifier follows them in the op.
type ForwardSide = (Option<(CpuStorage, CpuStorage)>, Option<CpuStorage>);

/// The float arithmetic the op needs, for f32 and f64.
trait Real:
    rectifier::Float
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    /// `v` as candle converts an op's f64 parameter (`T::from_f64`).
    fn of(v: f64) -> Self;
    fn sqrt(self) -> Self;
    /// candle's `sum_keepdim` over the last dimension of `xs`, rows of `u` values, into
    /// `out` (one per row).
    fn row_sums(xs: &[Self], u: usize, out: &mut [Self]);
    fn storage(v: Vec<Self>) -> CpuStorage;
    /// Kept between the passes as either type.
    fn pack(s: Saved<Self>) -> SavedAny;
    /// What [`Real::pack`] kept, if it was of this type.
    fn unpack(s: &SavedAny) -> Option<&Saved<Self>>;
    /// [`crate::rectifier`]'s forward pass with `slope`.
    fn rectify(xs: &[Self], slope: f64) -> Vec<Self>;
    /// [`crate::rectifier`]'s backward pass with `slope`.
    fn rectify_grad(xs: &[Self], grads: &[Self], slope: f64) -> Vec<Self>;
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn row_sums(xs: &[Self], u: usize, out: &mut [Self]) {
        if sums_in_lanes(u) {
            for (o, row) in out.iter_mut().zip(xs.chunks_exact(u)) {
                *o = row_sum_f32(row);
            }
        } else {
            sums_in_order(xs, u, out);
        }
    }
    fn storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(v)
    }
    fn pack(s: Saved<Self>) -> SavedAny {
        SavedAny::F32(s)
    }
    fn unpack(s: &SavedAny) -> Option<&Saved<Self>> {
        match s {
            SavedAny::F32(s) => Some(s),
            _ => None,
        }
    }
    fn rectify(xs: &[Self], slope: f64) -> Vec<Self> {
        rectifier::rectify_f32(xs, slope as f32)
    }
    fn rectify_grad(xs: &[Self], grads: &[Self], slope: f64) -> Vec<Self> {
        rectifier::rectify_grad_f32(xs, grads, slope as f32)
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn row_sums(xs: &[Self], u: usize, out: &mut [Self]) {
        sums_in_order(xs, u, out);
    }
    fn storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(v)
    }
    fn pack(s: Saved<Self>) -> SavedAny {
        SavedAny::F64(s)
    }
    fn unpack(s: &SavedAny) -> Option<&Saved<Self>> {
        match s {
            SavedAny::F64(s) => Some(s),
            _ => None,
        }
    }
    fn rectify(xs: &[Self], slope: f64) -> Vec<Self> {
        rectifier::rectify(xs, slope)
    }
    fn rectify_grad(xs: &[Self], grads: &[Self], slope: f64) -> Vec<Self> {
        rectifier::rectify_grad(xs, grads, slope)
    }
}

/// candle's f32 row sum (`vec_sum`): with AVX2, 32 lanes each summing every 32nd value of
/// the whole blocks of 32, the lanes added pairwise in a fixed tree, then the remaining
/// values in order; without, all values in order from 0. Vector lanes add as scalars do,
/// so this scalar form gives the same bits. A row shorter than 32 leaves every lane at 0,
/// whose tree adds to +0: the sum in order from 0, which is all this does then.
pub fn row_sum_f32(xs: &[f32]) -> f32 {
    if sums_in_lanes(xs.len()) {
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

/// Whether candle's f32 row sum of `len` values adds them in its AVX2 lanes, not in order
/// from 0 (see [`row_sum_f32`]).
fn sums_in_lanes(len: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if len >= 32 && std::arch::is_x86_feature_detected!("avx2") {
        return true;
    }
    false
}

/// The sum of each row of `u` values of `xs`, in order from 0, into `out`. Eight rows are
/// summed side by side: each row's additions depend on each other, different rows'
/// don't, and a short row summed alone waits on every addition in turn.
fn sums_in_order<T: Real>(xs: &[T], u: usize, out: &mut [T]) {
    const SIDE: usize = 8;
    if u == 0 {
        out.fill(T::ZERO);
        return;
    }
    let mut sum_blocks = out.chunks_exact_mut(SIDE);
    let value_blocks = xs.chunks_exact(u * SIDE);
    let rest = value_blocks.remainder();
    for (sums, values) in (&mut sum_blocks).zip(value_blocks) {
        let mut acc = [T::ZERO; SIDE];
        for j in 0..u {
            for (l, a) in acc.iter_mut().enumerate() {
                *a = *a + values[l * u + j];
            }
        }
        sums.copy_from_slice(&acc);
    }
    for (sum, row) in sum_blocks
        .into_remainder()
        .iter_mut()
        .zip(rest.chunks_exact(u))
    {
        *sum = row.iter().fold(T::ZERO, |acc, &x| acc + x);
    }
}

/// The shape of one normalisation: `k` members, `b` examples, `u` units, and which values
/// share a statistic.
#[derive(Debug, Clone, Copy)]
struct Dims {
    kind: NormKind,
    /// Added to the variance before its root.
    epsilon: f64,
    k: usize,
    b: usize,
    u: usize,
}

impl Dims {
    /// Reads the dimensions of `[K, B, units]` and checks that `per_unit` is `[K, 1, units]`
    /// for each layout there; errors name `op`.
    fn of(
        (kind, epsilon): (NormKind, f64),
        op: &str,
        values: &Layout,
        per_unit: &[&Layout],
    ) -> Result<Self> {
        let (k, b, u) = values.shape().dims3()?;
        if let Some(bad) = per_unit.iter().find(|l| l.shape().dims() != [k, 1, u]) {
            bail!(
                "{op}: expects [K, 1, units] = [{k}, 1, {u}] beside {:?}, got {:?}",
                values.shape(),
                bad.shape()
            );
        }
        Ok(Self {
            kind,
            epsilon,
            k,
            b,
            u,
        })
    }

    /// Values per statistic.
    fn n(&self) -> usize {
        match self.kind {
            NormKind::Batch => self.b,
            _ => self.u,
        }
    }

    /// Statistics per member: one per unit (batch norm) or per example (layer norm).
    fn stats_per_member(&self) -> usize {
        match self.kind {
            NormKind::Batch => self.u,
            _ => self.b,
        }
    }

    /// Member `k`'s part of a `[K, B, units]` buffer.
    fn member<'a, T>(&self, xs: &'a [T], k: usize) -> &'a [T] {
        let block = self.b * self.u;
        &xs[k * block..(k + 1) * block]
    }

    /// Member `k`'s part of a `[K, B, units]` buffer, to write.
    fn member_mut<'a, T>(&self, xs: &'a mut [T], k: usize) -> &'a mut [T] {
        let block = self.b * self.u;
        &mut xs[k * block..(k + 1) * block]
    }

    /// Member `k`'s part of a buffer of `per` values a member.
    fn part<T>(per: usize, xs: &[T], k: usize) -> &[T] {
        &xs[k * per..(k + 1) * per]
    }

    /// Member `k`'s part of a buffer of `per` values a member, to write.
    fn part_mut<T>(per: usize, xs: &mut [T], k: usize) -> &mut [T] {
        &mut xs[k * per..(k + 1) * per]
    }

    /// The rows (examples) of one member's `[B, units]` block.
    fn rows<'a, T>(&self, block: &'a [T]) -> std::slice::ChunksExact<'a, T> {
        block.chunks_exact(self.u.max(1))
    }

    /// The rows of one member's `[B, units]` block, to write.
    fn rows_mut<'a, T>(&self, block: &'a mut [T]) -> std::slice::ChunksExactMut<'a, T> {
        block.chunks_exact_mut(self.u.max(1))
    }
}

/// What the forward pass computes that the backward pass needs.
struct Saved<T> {
    /// Per value: z - mean.
    centred: Vec<T>,
    /// Per value: centred / sd.
    normed: Vec<T>,
    /// Per statistic: sqrt(var + eps).
    sd: Vec<T>,
}

/// [`Saved`] of either float type, kept by the op between its forward and backward pass.
enum SavedAny {
    F32(Saved<f32>),
    F64(Saved<f64>),
}

/// The forward pass's results: the output, the statistics (`[K, 1, units]` for batch
/// norm, `[K, B, 1]` for layer norm) and what the backward pass reuses.
struct Forward<T> {
    out: Vec<T>,
    mean: Vec<T>,
    var: Vec<T>,
    saved: Saved<T>,
}

/// `mean_keepdim`, the centring, `sqr`, `mean_keepdim`, `+ eps`, `sqrt`, the division and
/// `* scale + shift` as candle computes them; a sum over the batch adds the rows in
/// order from 0 (one running sum per unit), a sum over the units is [`Real::row_sum`].
/// Loops run along the units, the contiguous dimension, so that they vectorise.
fn forward<T: Real>(z: &[T], scale: &[T], shift: &[T], d: Dims) -> Forward<T> {
    let zero = T::ZERO;
    let inv = T::of(1.0 / d.n() as f64);
    let (one, eps) = (T::of(1.0), T::of(d.epsilon));
    let (n, per) = (z.len(), d.stats_per_member());
    let mut f = Forward {
        out: vec![zero; n],
        mean: vec![zero; d.k * per],
        var: vec![zero; d.k * per],
        saved: Saved {
            centred: vec![zero; n],
            normed: vec![zero; n],
            sd: vec![zero; d.k * per],
        },
    };
    for k in 0..d.k {
        let zk = d.member(z, k);
        let ck = d.member_mut(&mut f.saved.centred, k);
        let mean = Dims::part_mut(per, &mut f.mean, k);
        let var = Dims::part_mut(per, &mut f.var, k);
        let sd = Dims::part_mut(per, &mut f.saved.sd, k);
        match d.kind {
            NormKind::Batch => {
                for row in d.rows(zk) {
                    for (s, &x) in mean.iter_mut().zip(row) {
                        *s = *s + x;
                    }
                }
                for m in mean.iter_mut() {
                    *m = *m * inv + zero;
                }
                for (row, crow) in d.rows(zk).zip(d.rows_mut(ck)) {
                    for (((c, &x), &m), s) in crow.iter_mut().zip(row).zip(&*mean).zip(&mut *var) {
                        *c = x - m;
                        *s = *s + *c * *c;
                    }
                }
                for (v, s) in var.iter_mut().zip(sd.iter_mut()) {
                    *v = *v * inv + zero;
                    *s = (*v * one + eps).sqrt();
                }
            }
            _ => {
                T::row_sums(zk, d.u, mean);
                for m in mean.iter_mut() {
                    *m = *m * inv + zero;
                }
                // The squares go where the normed values will.
                let squares = d.member_mut(&mut f.saved.normed, k);
                let rows = d.rows(zk).zip(d.rows_mut(ck)).zip(d.rows_mut(squares));
                for (((row, crow), sqrow), &m) in rows.zip(&*mean) {
                    for ((c, &x), sq) in crow.iter_mut().zip(row).zip(sqrow.iter_mut()) {
                        *c = x - m;
                        *sq = *c * *c;
                    }
                }
                T::row_sums(d.member(&f.saved.normed, k), d.u, var);
                for (v, s) in var.iter_mut().zip(sd.iter_mut()) {
                    *v = *v * inv + zero;
                    *s = (*v * one + eps).sqrt();
                }
            }
        }
        let nk = d.member_mut(&mut f.saved.normed, k);
        for (r, (crow, nrow)) in d.rows(ck).zip(d.rows_mut(nk)).enumerate() {
            match d.kind {
                NormKind::Batch => {
                    for ((&c, nv), &s) in crow.iter().zip(nrow.iter_mut()).zip(&*sd) {
                        *nv = c / s;
                    }
                }
                _ => {
                    let s = sd[r];
                    for (&c, nv) in crow.iter().zip(nrow.iter_mut()) {
                        *nv = c / s;
                    }
                }
            }
        }
    }
    scale_and_shift(&f.saved.normed, scale, shift, d, &mut f.out);
    f
}

/// `normed * scale + shift` of every value into `out`: the forward pass's output, and
/// what the backward pass recomputes for a fused rectifier, with the same bits.
fn scale_and_shift<T: Real>(normed: &[T], scale: &[T], shift: &[T], d: Dims, out: &mut [T]) {
    for k in 0..d.k {
        let (sc, sh) = (Dims::part(d.u, scale, k), Dims::part(d.u, shift, k));
        for (nrow, orow) in d
            .rows(d.member(normed, k))
            .zip(d.rows_mut(d.member_mut(out, k)))
        {
            for ((o, &nv), (&a, &b)) in orow.iter_mut().zip(nrow).zip(sc.iter().zip(sh)) {
                *o = nv * a + b;
            }
        }
    }
}

/// The gradients of `z`, `scale` and `shift` given `g`, that of the output: candle's
/// autograd through the composite, node by node (see the module's notes), from what the
/// forward pass saved. Each value's expression is candle's, literal `0 +` accumulations
/// included (they turn -0 into +0); the sums keep candle's order. Every inner loop runs
/// along a row's units over plain slices, so that it vectorises; layer norm's per-row
/// statistics are repeated along a row for it.
fn backward<T: Real>(scale: &[T], g: &[T], s: &Saved<T>, d: Dims) -> (Vec<T>, Vec<T>, Vec<T>) {
    let zero = T::ZERO;
    let inv = T::of(1.0 / d.n() as f64);
    let (one, half) = (T::of(1.0), T::of(0.5));
    // sd = sqrt(v), v = var * 1 + eps, var = s2 * inv + 0, s2 = sum(c²): from dC/dsd,
    // summed over the statistic's values, to dC/d(c²) of each.
    let to_squares = |g_sd: T, sd: T| {
        let g_sd = zero + g_sd;
        let g_v = zero + ((g_sd / sd) * half + zero);
        let g_var = zero + (g_v * one + zero);
        let g_s2 = zero + (g_var * inv + zero);
        zero + g_s2
    };
    // mean = s1 * inv + 0, s1 = sum(z): from dC/dmean, summed, to dC/dz of each.
    let to_values = |g_mean: T| zero + ((zero + g_mean) * inv + zero);
    let (per, u) = (d.stats_per_member(), d.u);
    let mut dz = vec![zero; g.len()];
    let mut dscale = vec![zero; d.k * u];
    let mut dshift = vec![zero; d.k * u];
    // Per unit: batch norm's sums over the batch.
    let mut acc = vec![zero; u];
    // Layer norm's terms of each value and their sums per row.
    let (mut terms, mut per_row) = match d.kind {
        NormKind::Batch => (Vec::new(), Vec::new()),
        _ => (vec![zero; d.b * u], vec![zero; d.b]),
    };
    // Per unit: sd, sd² and dC/d(c²) of the unit's statistic.
    let (mut sd_row, mut sd2_row, mut g_squares_row) =
        (vec![zero; u], vec![zero; u], vec![zero; u]);
    for k in 0..d.k {
        let (gk, ck, nk) = (
            d.member(g, k),
            d.member(&s.centred, k),
            d.member(&s.normed, k),
        );
        let sd = Dims::part(per, &s.sd, k);
        let mut params = UnitParams {
            scale: Dims::part(u, scale, k),
            dscale: Dims::part_mut(u, &mut dscale, k),
            dshift: Dims::part_mut(u, &mut dshift, k),
        };
        let dzk = d.member_mut(&mut dz, k);
        let rows = d
            .rows(gk)
            .zip(d.rows(ck))
            .zip(d.rows(nk))
            .zip(d.rows_mut(dzk));
        if d.kind == NormKind::Batch {
            for (s2, &s) in sd2_row.iter_mut().zip(sd) {
                *s2 = s * s;
            }
            acc.fill(zero);
            for (((grow, crow), nrow), gnrow) in rows {
                through_scale::<T, true>(grow, crow, nrow, &mut params, &sd2_row, gnrow, &mut acc);
            }
            for ((gq, &a), &s) in g_squares_row.iter_mut().zip(&acc).zip(sd) {
                *gq = to_squares(a, s);
            }
            acc.fill(zero);
            for (gnrow, crow) in d.rows_mut(dzk).zip(d.rows(ck)) {
                to_centred::<T, true>(gnrow, crow, sd, &g_squares_row, &mut acc);
            }
            for a in acc.iter_mut() {
                *a = to_values(*a);
            }
            for gcrow in d.rows_mut(dzk) {
                through_mean(gcrow, &acc);
            }
        } else {
            let rows = rows.zip(d.rows_mut(&mut terms));
            for (r, ((((grow, crow), nrow), gnrow), trow)) in rows.enumerate() {
                sd2_row.fill(sd[r] * sd[r]);
                through_scale::<T, false>(grow, crow, nrow, &mut params, &sd2_row, gnrow, trow);
            }
            T::row_sums(&terms, u, &mut per_row);
            let rows = d.rows_mut(dzk).zip(d.rows(ck)).zip(d.rows_mut(&mut terms));
            for (r, ((gnrow, crow), trow)) in rows.enumerate() {
                sd_row.fill(sd[r]);
                g_squares_row.fill(to_squares(per_row[r], sd[r]));
                to_centred::<T, false>(gnrow, crow, &sd_row, &g_squares_row, trow);
            }
            T::row_sums(&terms, u, &mut per_row);
            for (gcrow, &g_s1) in d.rows_mut(dzk).zip(&per_row) {
                acc.fill(to_values(g_s1));
                through_mean(gcrow, &acc);
            }
        }
    }
    (dz, dscale, dshift)
}

/// One member's per-unit scale and the sums of its gradient and the shift's.
struct UnitParams<'a, T> {
    scale: &'a [T],
    dscale: &'a mut [T],
    dshift: &'a mut [T],
}

/// Puts a value's term in its slot of `acc`: added to the running sum over the batch
/// (`SUM`, batch norm: candle's column sum from 0), or kept as it is for
/// [`Real::row_sum`] to add up (layer norm).
#[inline(always)]
fn collect<T: Real, const SUM: bool>(acc: &mut T, term: T) {
    *acc = if SUM { *acc + term } else { term };
}

/// One row from dC/dout (`g`) back through `+ shift`, `* scale` and `/ sd`: dC/dnormed
/// to `gn`, the row's terms of dC/dscale and dC/dshift to their sums, and its terms of
/// dC/dsd, `-(gn c) / sd²`, to `acc`.
#[inline(always)]
fn through_scale<T: Real, const SUM: bool>(
    g: &[T],
    c: &[T],
    normed: &[T],
    p: &mut UnitParams<'_, T>,
    sd2: &[T],
    gn: &mut [T],
    acc: &mut [T],
) {
    let zero = T::ZERO;
    let n = g.len();
    let (c, normed, scale, sd2) = (&c[..n], &normed[..n], &p.scale[..n], &sd2[..n]);
    let (dscale, dshift) = (&mut p.dscale[..n], &mut p.dshift[..n]);
    let (gn, acc) = (&mut gn[..n], &mut acc[..n]);
    for j in 0..n {
        let gm = zero + g[j];
        gn[j] = zero + gm * scale[j];
        dshift[j] = dshift[j] + gm;
        dscale[j] = dscale[j] + (zero + gm * normed[j]);
        collect::<T, SUM>(&mut acc[j], zero - (gn[j] * c[j]) / sd2[j]);
    }
}

/// One row from dC/dnormed (`g`, replaced) to dC/dcentred: through the division
/// `gn / sd` and through the square `(c * dC/d(c²)) * 2`; each value's `0 - dC/dcentred`
/// (its part of dC/dmean) goes to `acc`.
#[inline(always)]
fn to_centred<T: Real, const SUM: bool>(
    g: &mut [T],
    c: &[T],
    sd: &[T],
    g_squares: &[T],
    acc: &mut [T],
) {
    let (zero, two) = (T::ZERO, T::of(2.0));
    let n = g.len();
    let (c, sd, g_squares, acc) = (&c[..n], &sd[..n], &g_squares[..n], &mut acc[..n]);
    for j in 0..n {
        let gc = (zero + g[j] / sd[j]) + ((c[j] * g_squares[j]) * two + zero);
        g[j] = gc;
        collect::<T, SUM>(&mut acc[j], zero - gc);
    }
}

/// One row from dC/dcentred (`g`, replaced) to dC/dz: plus dC/ds1 of each value's
/// statistic through the mean.
#[inline(always)]
fn through_mean<T: Real>(g: &mut [T], g_s1: &[T]) {
    let g_s1 = &g_s1[..g.len()];
    for (gv, &s) in g.iter_mut().zip(g_s1) {
        *gv = (T::ZERO + *gv) + s;
    }
}

/// The op: `(z, scale, shift) -> out`, then the rectifier of slope `rectifier` where
/// there is one; leaves its side results in `side` and what its backward pass reuses in
/// `saved`.
struct NormOp {
    kind: NormKind,
    epsilon: f64,
    rectifier: Option<f64>,
    sink: Option<ParamGrads>,
    side: Slot<ForwardSide>,
    saved: Arc<OnceLock<SavedAny>>,
}

/// The forward pass on CPU operands `z: [K, B, units]`, `scale` and `shift`
/// (`[K, 1, units]`) of one float type: the result, the side results and what the backward
/// pass reuses. Errors name `op`.
fn forward_storage(
    kind: (NormKind, f64),
    rectifier: Option<f64>,
    op: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> Result<(CpuStorage, ForwardSide, SavedAny)> {
    let d = Dims::of(kind, op, l1, &[l2, l3])?;
    fn run<T: Real>(
        (z, a, b): (&[T], &[T], &[T]),
        d: Dims,
        rectifier: Option<f64>,
    ) -> (CpuStorage, ForwardSide, SavedAny) {
        let f = forward(z, a, b, d);
        let stats = (d.kind == NormKind::Batch).then(|| (T::storage(f.mean), T::storage(f.var)));
        let (out, normalised) = match rectifier {
            Some(slope) => (T::rectify(&f.out, slope), Some(T::storage(f.out))),
            None => (f.out, None),
        };
        (T::storage(out), (stats, normalised), T::pack(f.saved))
    }
    Ok(match (s1, s2, s3) {
        (CpuStorage::F32(z), CpuStorage::F32(a), CpuStorage::F32(b)) => run(
            (
                contiguous(z, l1, op)?,
                contiguous(a, l2, op)?,
                contiguous(b, l3, op)?,
            ),
            d,
            rectifier,
        ),
        (CpuStorage::F64(z), CpuStorage::F64(a), CpuStorage::F64(b)) => run(
            (
                contiguous(z, l1, op)?,
                contiguous(a, l2, op)?,
                contiguous(b, l3, op)?,
            ),
            d,
            rectifier,
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
        let (out, side, saved) = forward_storage(
            (self.kind, self.epsilon),
            self.rectifier,
            op,
            (s1, l1),
            (s2, l2),
            (s3, l3),
        )?;
        self.side.put(side, op)?;
        if self.saved.set(saved).is_err() {
            bail!("{op}: one op ran its forward pass twice");
        }
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _z: &Tensor,
        scale: &Tensor,
        shift: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let op = NormGrad {
            kind: self.kind,
            epsilon: self.epsilon,
            rectifier: self.rectifier,
            params: Slot::default(),
            saved: self.saved.clone(),
        };
        let dz = scale.apply_op3_no_bwd(shift, &grad, &op)?;
        let (k, _, u) = grad.dims3()?;
        let (dscale, dshift) = op.params.take(op.name())?;
        let device = grad.device();
        let dscale = tensor(dscale, (k, 1, u), device, op.name())?;
        let dshift = tensor(dshift, (k, 1, u), device, op.name())?;
        Ok((
            Some(dz),
            ParamGrads::route(self.sink.as_ref(), scale, dscale)?,
            ParamGrads::route(self.sink.as_ref(), shift, dshift)?,
        ))
    }
}

/// `(scale, shift, dC/dout) -> dC/dz` from what the forward pass saved (through the
/// rectifier first, where there is one), leaving dC/dscale and dC/dshift in `params`.
struct NormGrad {
    kind: NormKind,
    epsilon: f64,
    rectifier: Option<f64>,
    params: Slot<(CpuStorage, CpuStorage)>,
    saved: Arc<OnceLock<SavedAny>>,
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
        let d = Dims::of((self.kind, self.epsilon), op, l3, &[l1, l2])?;
        let Some(saved) = self.saved.get() else {
            bail!("{op}: the forward pass saved nothing")
        };
        fn run<T: Real>(
            op: &str,
            (scale, shift): (&[T], &[T]),
            g: &[T],
            saved: Option<&Saved<T>>,
            rectifier: Option<f64>,
            d: Dims,
        ) -> Result<(CpuStorage, (CpuStorage, CpuStorage))> {
            let Some(saved) = saved.filter(|s| s.centred.len() == g.len()) else {
                bail!("{op}: the forward pass saved values of another type or size")
            };
            let (dz, dscale, dshift) = match rectifier {
                Some(slope) => {
                    let mut normalised = vec![T::ZERO; g.len()];
                    scale_and_shift(&saved.normed, scale, shift, d, &mut normalised);
                    let g = T::rectify_grad(&normalised, g, slope);
                    backward(scale, &g, saved, d)
                }
                None => backward(scale, g, saved, d),
            };
            Ok((T::storage(dz), (T::storage(dscale), T::storage(dshift))))
        }
        let (dz, params) = match (s1, s2, s3) {
            (CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(g)) => run(
                op,
                (contiguous(a, l1, op)?, contiguous(b, l2, op)?),
                contiguous(g, l3, op)?,
                f32::unpack(saved),
                self.rectifier,
                d,
            )?,
            (CpuStorage::F64(a), CpuStorage::F64(b), CpuStorage::F64(g)) => run(
                op,
                (contiguous(a, l1, op)?, contiguous(b, l2, op)?),
                contiguous(g, l3, op)?,
                f64::unpack(saved),
                self.rectifier,
                d,
            )?,
            _ => bail!("{op}: expects f32 or f64 operands of one type"),
        };
        self.params.put(params, op)?;
        Ok((dz, l3.shape().clone()))
    }
}

/// Batch norm's running average `running * keep + batch * take` as candle's ops compute
/// it (`x * c` is candle's affine op, `x * c + 0`, which turns a -0 into +0), in one loop
/// over the values instead of four candle ops: a tenth of batch norm's cost at width 10.
/// `None` where the two are not contiguous f32 tensors of one shape on the CPU; the
/// caller then uses candle's ops.
pub fn running_average(
    running: &Tensor,
    batch: &Tensor,
    keep: f64,
    take: f64,
) -> Result<Option<Tensor>> {
    if running.shape() != batch.shape() {
        return Ok(None);
    }
    let (keep, take) = (keep as f32, take as f32);
    let average = |r: &[f32], b: &[f32]| -> Vec<f32> {
        r.iter()
            .zip(b)
            .map(|(&r, &b)| (r * keep + 0.0) + (b * take + 0.0))
            .collect()
    };
    let Some(averaged) = with_f32_values(running, batch, average) else {
        return Ok(None);
    };
    Ok(Some(Tensor::from_vec(
        averaged,
        running.shape(),
        running.device(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rectifier;
    use candle_core::backprop::GradStore;
    use candle_core::{Device, Var};

    /// The experiment's epsilon, as the model passes it.
    const EPSILON: f64 = 1e-5;

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

    /// The reference: normalisation `kind` of `z` from candle's own ops, as the model's
    /// plain path computes it, with batch norm's detached statistics.
    fn composite(
        z: &Tensor,
        (scale, shift): (&Tensor, &Tensor),
        kind: NormKind,
    ) -> Result<(Tensor, Option<(Tensor, Tensor)>)> {
        let axis = match kind {
            NormKind::Batch => 1,
            NormKind::Layer => 2,
        };
        let mean = z.mean_keepdim(axis)?;
        let centred = z.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(axis)?;
        let normed = centred.broadcast_div(&(&var + EPSILON)?.sqrt()?)?;
        let out = normed.broadcast_mul(scale)?.broadcast_add(shift)?;
        let stats = (kind == NormKind::Batch).then(|| (mean.detach(), var.detach()));
        Ok((out, stats))
    }

    /// The output, what the activation read, batch statistics and gradients of z, scale and
    /// shift of one pass, as bit patterns; `fused` picks the op (with the rectifier of
    /// slope `rectifier` inside, where there is one) or candle's ops (followed by the
    /// rectifier's own op).
    fn pass(
        kind: NormKind,
        dims: (usize, usize, usize),
        dtype: DType,
        rectifier: Option<f64>,
        fused: bool,
    ) -> Result<Grads> {
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
        let params = (scale.as_tensor(), shift.as_tensor());
        let sink = ParamGrads::new();
        let (a, out, stats) = if fused {
            let pass = norm_train(
                z.as_tensor(),
                params,
                (kind, EPSILON),
                rectifier,
                Some(&sink),
            )?;
            let out = pass.rectified.unwrap_or_else(|| pass.normalised.clone());
            (pass.normalised, out, pass.stats)
        } else {
            let (a, stats) = composite(z.as_tensor(), params, kind)?;
            let out = match rectifier {
                Some(0.0) => rectifier::relu(&a)?,
                Some(slope) => rectifier::leaky_relu(&a, slope)?,
                None => a.clone(),
            };
            (a, out, stats)
        };
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
        let mut all = vec![bits(&out)?, bits(&a)?];
        if let Some((mean, var)) = stats {
            all.push(bits(&mean)?);
            all.push(bits(&var)?);
        }
        for v in [&z, &scale, &shift] {
            let Some(g) = grads.get(v.as_tensor()) else {
                bail!("no gradient")
            };
            all.push(bits(g)?);
        }
        Ok(all)
    }

    /// Every pair of an `a` and a `b`.
    fn iproduct<A: Copy, B: Copy>(
        a: impl IntoIterator<Item = A>,
        b: impl IntoIterator<Item = B> + Clone,
    ) -> impl Iterator<Item = (A, B)> {
        a.into_iter()
            .flat_map(move |x| b.clone().into_iter().map(move |y| (x, y)))
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
            (2, 30, 10),
        ];
        for kind in [NormKind::Batch, NormKind::Layer] {
            for dims in shapes {
                for (dtype, rectifier) in
                    iproduct([DType::F32, DType::F64], [None, Some(0.0), Some(0.2)])
                {
                    let fused = pass(kind, dims, dtype, rectifier, true)?;
                    let candle = pass(kind, dims, dtype, rectifier, false)?;
                    assert_eq!(fused.len(), candle.len());
                    for (i, (a, b)) in fused.iter().zip(&candle).enumerate() {
                        assert!(
                            a == b,
                            "{kind:?} {rectifier:?} {dims:?} {dtype:?}: output {i} differs"
                        );
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

    #[test]
    fn the_running_average_gives_candles_bits() -> Result<()> {
        let dev = Device::Cpu;
        // Signed zeros (x * c + 0 turns -0 into +0), subnormals and ordinary values.
        let running = Tensor::new(&[[[-0.0f32, 1e-40, 0.3, -7.5, 1.0]]], &dev)?;
        let batch = Tensor::new(&[[[-0.0f32, -0.0, 2.5e-3, 1e30, -1e-42]]], &dev)?;
        let bits = |t: &Tensor| -> Result<Vec<u32>> {
            Ok(t.flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .map(|v| v.to_bits())
                .collect())
        };
        for (keep, take) in [(0.9, 0.1), (0.9, 0.1 * 30.0 / 29.0), (1.0, 0.0)] {
            let ours = running_average(&running, &batch, keep, take)?.expect("f32 on the CPU");
            let candle = ((&running * keep)? + (&batch * take)?)?;
            assert_eq!(bits(&ours)?, bits(&candle)?, "{keep} {take}");
        }
        let f64s = running.to_dtype(DType::F64)?;
        assert!(running_average(&f64s, &f64s, 0.9, 0.1)?.is_none());
        Ok(())
    }
}
