//! The input-output Jacobians of the network at its evaluation pass, and their singular
//! values: per hidden layer, how a perturbation of one pre-activation reaches the next
//! one, and for the whole network, how a perturbation of the first pre-activation reaches
//! the logits. Singular values far below 1 shrink the back-propagated error (vanishing
//! gradients), far above 1 amplify it; dynamical isometry (Saxe et al. 2014, Pennington
//! et al. 2017) is all of them near 1.
//!
//! Row-vector convention, as the model's `z_l = h_(l-1) W_l + b_l`: a Jacobian `J` maps
//! `dz_in` (a row) to `dz_out = dz_in · J`, so `J` is `[n_in x n_out]` and
//! `J[i][j] = d out_j / d in_i`. For one member and one example, with
//! `D_l = diag(f'(a_l))` and `N_l = da_l/dz_l` the normalisation's Jacobian at evaluation:
//!
//! - no normalisation: `N_l = I`;
//! - batch norm (evaluation, running statistics): `N_l = diag(scale_j / sqrt(var_j + eps))`;
//! - layer norm over `n` units, `x̂ = (z - mean z) / sigma`, `sigma = sqrt(var z + eps)`
//!   (biased variance): `N_l[i][j] = (scale_j / sigma) (δ_ij - 1/n - x̂_i x̂_j / n)`.
//!
//! Hidden layer `l = 1..L-1` has `J_l = dz_(l+1)/dz_l = N_l D_l W_(l+1)`. A skip connection
//! does not pass through `z_l` (it carries `h_(l-1)` around the layer), so for a residual
//! layer `J_l` is the Jacobian of the residual branch alone. The whole network has
//! `M = d logits / d z_1 = N_1 D_1 · Π_{l=2}^{L-1} (S_l + W_l N_l D_l) · W_L`, with
//! `S_l = I` where layer `l` has a skip and `0` elsewhere; a network of one layer has no
//! hidden layer and no such Jacobian.
//!
//! Everything is computed on the host in f64, from one evaluation forward pass of candle:
//! the weights, scales and running statistics are read once per call, every example's
//! Jacobians are assembled with nalgebra from the pass's activation inputs, and their
//! singular values come from `SvdBatch`, a batched Golub-Reinsch SVD checked against
//! nalgebra's (which it hands matrices larger than 48 x 48).

use candle_core::{DType, Tensor};
use nalgebra::{DMatrix, SVD};
use vgrad_model::{ForwardTrace, Mlp};
use vgrad_record::norm::NORM_EPSILON;
use vgrad_record::{Activation, Spectrum};

use crate::{ProbeError, Result};

/// One member's Jacobian spectra, each averaged over the probe examples (for every
/// example the mean, smallest and largest singular value, then each averaged).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSpectra {
    /// The spectrum of `J_l = dz_(l+1)/dz_l` of hidden layers `l = 1..L-1`, at index
    /// `l - 1` (the residual branch's alone where layer `l` has a skip).
    pub layers: Vec<Spectrum>,
    /// The spectrum of `M = d logits / d z_1`; `None` for a network of one layer.
    pub network: Option<Spectrum>,
}

/// One member's Jacobians at one example, in f64, in the row convention of the module.
#[derive(Debug, Clone, PartialEq)]
pub struct Jacobians {
    /// `J_l = dz_(l+1)/dz_l`, `[n_l x n_(l+1)]`, of hidden layers `l = 1..L-1`, at index
    /// `l - 1`.
    pub layers: Vec<DMatrix<f64>>,
    /// `M = d logits / d z_1`, `[n_1 x classes]`; `None` for a network of one layer.
    pub network: Option<DMatrix<f64>>,
}

/// Runs `mlp.forward_eval_traced(xs, None)` on `xs` `[K, E, input]` (E examples per
/// member, normally the same for every member) and returns every member's spectra, each
/// averaged over the E examples.
///
/// A Jacobian with a non-finite entry (a diverged member) gets a spectrum of NaNs.
pub fn jacobian_spectra(mlp: &Mlp, xs: &Tensor) -> Result<Vec<MemberSpectra>> {
    let host = Host::read(mlp, xs)?;
    // One workspace per lane: the Jacobians of LANES examples, decomposed together
    // (large ones one by one, by nalgebra).
    let large = host
        .weights
        .iter()
        .any(|w| w.rows.min(w.cols) > LARGEST_SMALL);
    let lanes = if large { 1 } else { LANES };
    let mut ws: Vec<Workspace> = (0..lanes).map(|_| Workspace::new(&host)).collect();
    let mut batch = SvdBatch::default();
    let hidden = host.hidden.len();
    // J_1..J_(L-1), then M.
    let per_example = hidden + usize::from(hidden > 0);
    let examples = host.examples as f64;
    let mut slots = Vec::new();
    (0..host.members)
        .map(|m| {
            batch.clear();
            slots.clear();
            let weights = host.member_weights(m);
            for first in (0..host.examples).step_by(lanes) {
                let group = lanes.min(host.examples - first);
                for (lane, ws) in ws.iter_mut().take(group).enumerate() {
                    host.fill(m, first + lane, &weights, ws);
                }
                for slot in 0..per_example {
                    let matrices: Vec<&DMatrix<f64>> = ws[..group]
                        .iter()
                        .map(|ws| ws.layers.get(slot).unwrap_or(&ws.network))
                        .collect();
                    batch.push_group(&matrices);
                    slots.extend(std::iter::repeat_n(slot, group));
                }
            }
            let mut sums = vec![Sum::default(); per_example];
            if batch.solve() {
                for (&slot, spectrum) in slots.iter().zip(batch.spectra()) {
                    sums[slot].add(spectrum);
                }
            } else {
                // The fast iteration gave up on some matrix (extreme weights far into
                // training, say): this member's matrices again, by nalgebra's SVD.
                for e in 0..host.examples {
                    host.fill(m, e, &weights, &mut ws[0]);
                    for (slot, sum) in sums.iter_mut().enumerate() {
                        let j = ws[0].layers.get(slot).unwrap_or(&ws[0].network);
                        sum.add(spectrum_by_nalgebra(j));
                    }
                }
            }
            let mut spectra = sums.iter().map(|s| s.mean(examples));
            Ok(MemberSpectra {
                layers: spectra.by_ref().take(hidden).collect(),
                network: spectra.next(),
            })
        })
        .collect()
}

/// The mean, smallest and largest singular value of `j` by nalgebra's SVD, the slower
/// path for a matrix [`SvdBatch`] did not converge on; NaNs where nalgebra does not
/// converge either (a probe that cannot measure one step's spectrum does not stop the
/// run: its record says NaN, which readers skip).
fn spectrum_by_nalgebra(j: &DMatrix<f64>) -> Spectrum {
    let n = j.nrows().min(j.ncols());
    let unmeasured = Spectrum {
        mean: f64::NAN,
        min: f64::NAN,
        max: f64::NAN,
    };
    if n == 0 || !j.iter().all(|v| v.is_finite()) {
        return unmeasured;
    }
    match SVD::try_new_unordered(j.clone(), false, false, 5.0 * f64::EPSILON, 1000 * n) {
        Some(svd) => {
            let s = &svd.singular_values;
            Spectrum {
                mean: s.mean(),
                min: s.min(),
                max: s.max(),
            }
        }
        None => unmeasured,
    }
}

/// Every member's Jacobians at every example of `xs` `[K, E, input]`, indexed
/// `[member][example]`: the matrices whose singular values [`jacobian_spectra`]
/// summarises, for inspection and tests.
pub fn jacobians(mlp: &Mlp, xs: &Tensor) -> Result<Vec<Vec<Jacobians>>> {
    let host = Host::read(mlp, xs)?;
    let mut ws = Workspace::new(&host);
    let hidden = !host.hidden.is_empty();
    (0..host.members)
        .map(|m| {
            let weights = host.member_weights(m);
            (0..host.examples)
                .map(|e| {
                    host.fill(m, e, &weights, &mut ws);
                    Ok(Jacobians {
                        layers: ws.layers.clone(),
                        network: hidden.then(|| ws.network.clone()),
                    })
                })
                .collect()
        })
        .collect()
}

/// Sums of the per-example mean, smallest and largest singular value.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    mean: f64,
    min: f64,
    max: f64,
}

impl Sum {
    fn add(&mut self, s: Spectrum) {
        self.mean += s.mean;
        self.min += s.min;
        self.max += s.max;
    }

    fn mean(&self, n: f64) -> Spectrum {
        Spectrum {
            mean: self.mean / n,
            min: self.min / n,
            max: self.max / n,
        }
    }
}

/// What the Jacobians need, on the host in f64: the weights of layers 2..=L per member and
/// the evaluation pass's values of every hidden layer.
struct Host {
    members: usize,
    examples: usize,
    activation: Activation,
    /// Hidden layers 1..L-1.
    hidden: Vec<Hidden>,
    /// W_l of layers l = 2..=L, at index l - 2.
    weights: Vec<Weight>,
}

/// One layer's weights, all members'.
struct Weight {
    /// `n_(l-1)` and `n_l`.
    rows: usize,
    cols: usize,
    /// `[K, rows, cols]` flattened.
    values: Vec<f64>,
}

/// One hidden layer's values at the evaluation pass.
struct Hidden {
    units: usize,
    /// The activation's input a_l, `[K, E, units]` flattened.
    a: Vec<f64>,
    norm: HiddenNorm,
    /// Whether the layer adds its input to its output.
    skip: bool,
}

/// The normalisation of a hidden layer at evaluation.
enum HiddenNorm {
    None,
    /// Batch norm with running statistics: `N = diag(gain)`, gain `[K, units]` flattened.
    Diagonal(Vec<f64>),
    /// Layer norm: scale `[K, units]` and the pre-activation z_l `[K, E, units]`, flattened.
    Layer {
        scale: Vec<f64>,
        z: Vec<f64>,
    },
}

/// Scratch for one example at a time: its diagonal factors and Jacobians.
struct Workspace {
    /// Per hidden layer, `diag(scale / sigma) D` of the example (the diagonal part of
    /// `N_l D_l`, whose centring, for layer norm, is applied afterwards).
    d: Vec<Vec<f64>>,
    /// Per hidden layer, x̂ of the example for layer norm (empty otherwise).
    xhat: Vec<Vec<f64>>,
    /// J_l of the example, hidden layers 1..L-1.
    layers: Vec<DMatrix<f64>>,
    /// M of the example (0 x 0 without hidden layers).
    network: DMatrix<f64>,
    /// `Π (S_l + W_l N_l D_l) W_L` built from the right, and scratch beside it.
    p: DMatrix<f64>,
    q: DMatrix<f64>,
    p_next: DMatrix<f64>,
}

/// A tensor's entries on the host, in f64, in row-major order.
fn to_host(t: &Tensor) -> Result<Vec<f64>> {
    let flat = t.flatten_all()?;
    Ok(match flat.dtype() {
        DType::F64 => flat.to_vec1::<f64>()?,
        DType::F32 => flat.to_vec1::<f32>()?.into_iter().map(f64::from).collect(),
        _ => flat.to_dtype(DType::F64)?.to_vec1::<f64>()?,
    })
}

/// Checks that `t` is `[dims]`.
fn expect_dims(t: &Tensor, dims: &[usize], what: impl FnOnce() -> String) -> Result<()> {
    if t.dims() != dims {
        return Err(ProbeError::Shape(format!(
            "{} is {:?}, expected {dims:?}",
            what(),
            t.dims()
        )));
    }
    Ok(())
}

impl Host {
    /// Runs the evaluation pass of `mlp` on `xs` `[K, E, input]` and reads what the
    /// Jacobians need, checking the shapes.
    fn read(mlp: &Mlp, xs: &Tensor) -> Result<Self> {
        let (members, examples, _) = xs.dims3()?;
        if members != mlp.members() {
            return Err(ProbeError::Shape(format!(
                "{members} members of examples for a model of {}",
                mlp.members()
            )));
        }
        if examples == 0 {
            return Err(ProbeError::Shape("no probe examples".into()));
        }
        let trace: ForwardTrace = mlp.forward_eval_traced(xs, None)?;
        let depth = mlp.depth();
        let layer = |l: usize| {
            mlp.layer(l)
                .ok_or_else(|| ProbeError::Shape(format!("no layer {l}")))
        };
        let units = |l: usize| -> Result<usize> { Ok(layer(l)?.weight().dim(2)?) };
        let mut weights = Vec::with_capacity(depth.saturating_sub(1));
        for l in 2..=depth {
            let w = layer(l)?.weight();
            let (_, fan_in, fan_out) = w.dims3()?;
            expect_dims(w, &[members, fan_in, fan_out], || format!("W_{l}"))?;
            if fan_in != units(l - 1)? {
                return Err(ProbeError::Shape(format!(
                    "W_{l} reads {fan_in} units, layer {} has {}",
                    l - 1,
                    units(l - 1)?
                )));
            }
            weights.push(Weight {
                rows: fan_in,
                cols: fan_out,
                values: to_host(w)?,
            });
        }
        let mut hidden = Vec::with_capacity(depth.saturating_sub(1));
        for l in 1..depth {
            let n = units(l)?;
            let a = trace
                .activation_inputs
                .get(l - 1)
                .ok_or_else(|| ProbeError::Shape(format!("no activation input for layer {l}")))?;
            expect_dims(a, &[members, examples, n], || format!("a_{l}"))?;
            let norm = match mlp.norm(l) {
                None => HiddenNorm::None,
                Some(norm) => {
                    let scale = norm.scale();
                    expect_dims(scale, &[members, 1, n], || {
                        format!("the scale of layer {l}")
                    })?;
                    let scale = to_host(scale)?;
                    // As `EnsembleNorm::forward_eval`: running statistics where it keeps
                    // them (batch norm), the example's own over the units otherwise.
                    match norm.running() {
                        Some((_, var)) => {
                            expect_dims(var, &[members, 1, n], || {
                                format!("the running variance of layer {l}")
                            })?;
                            let gain = scale
                                .iter()
                                .zip(to_host(var)?)
                                .map(|(s, v)| s / (v + NORM_EPSILON).sqrt())
                                .collect();
                            HiddenNorm::Diagonal(gain)
                        }
                        None => {
                            let z = &trace.pre_activations[l - 1];
                            expect_dims(z, &[members, examples, n], || format!("z_{l}"))?;
                            HiddenNorm::Layer {
                                scale,
                                z: to_host(z)?,
                            }
                        }
                    }
                }
            };
            hidden.push(Hidden {
                units: n,
                a: to_host(a)?,
                norm,
                skip: mlp.has_skip(l),
            });
        }
        Ok(Self {
            members,
            examples,
            activation: mlp.activation(),
            hidden,
            weights,
        })
    }

    /// Member `m`'s W_2..=W_L.
    fn member_weights(&self, m: usize) -> Vec<DMatrix<f64>> {
        self.weights
            .iter()
            .map(|w| {
                let size = w.rows * w.cols;
                DMatrix::from_row_slice(w.rows, w.cols, &w.values[m * size..(m + 1) * size])
            })
            .collect()
    }

    /// Fills `ws` with member `m`'s Jacobians at example `e`, given its
    /// [`Host::member_weights`].
    fn fill(&self, m: usize, e: usize, weights: &[DMatrix<f64>], ws: &mut Workspace) {
        for (i, h) in self.hidden.iter().enumerate() {
            let n = h.units;
            let row = (m * self.examples + e) * n;
            let a = &h.a[row..row + n];
            let d = &mut ws.d[i];
            for (d, &a) in d.iter_mut().zip(a) {
                *d = self.activation.derivative(a);
            }
            match &h.norm {
                HiddenNorm::None => {}
                HiddenNorm::Diagonal(gain) => {
                    for (d, g) in d.iter_mut().zip(&gain[m * n..(m + 1) * n]) {
                        *d *= g;
                    }
                }
                HiddenNorm::Layer { scale, z } => {
                    let z = &z[row..row + n];
                    let mean = z.iter().sum::<f64>() / n as f64;
                    let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
                    let sigma = (var + NORM_EPSILON).sqrt();
                    for (x, v) in ws.xhat[i].iter_mut().zip(z) {
                        *x = (v - mean) / sigma;
                    }
                    for (d, s) in d.iter_mut().zip(&scale[m * n..(m + 1) * n]) {
                        *d *= s / sigma;
                    }
                }
            }
        }
        // J_l = N_l D_l W_(l+1).
        for (i, j) in ws.layers.iter_mut().enumerate() {
            apply_nd(&ws.d[i], &ws.xhat[i], &weights[i], j);
        }
        if self.hidden.is_empty() {
            return;
        }
        // M from the right: P = W_L, then P <- S_l P + W_l N_l D_l P for l = L-1 .. 2,
        // then M = N_1 D_1 P.
        let last = weights.len() - 1;
        ws.p.copy_from(&weights[last]);
        for i in (1..self.hidden.len()).rev() {
            // Hidden layer l = i + 1, whose weight is weights[i - 1].
            apply_nd(&ws.d[i], &ws.xhat[i], &ws.p, &mut ws.q);
            // A skip joins layers of one width: P has P_next's shape.
            let skip = self.hidden[i].skip.then_some(&ws.p);
            multiply(&weights[i - 1], &ws.q, skip, &mut ws.p_next);
            std::mem::swap(&mut ws.p, &mut ws.p_next);
        }
        apply_nd(&ws.d[0], &ws.xhat[0], &ws.p, &mut ws.network);
    }
}

/// `out = w q (+ add)`, column by column: for the small matrices of the probe, faster than
/// a general matrix product's packing.
fn multiply(
    w: &DMatrix<f64>,
    q: &DMatrix<f64>,
    add: Option<&DMatrix<f64>>,
    out: &mut DMatrix<f64>,
) {
    let (rows, inner) = w.shape();
    if out.shape() != (rows, q.ncols()) {
        *out = DMatrix::zeros(rows, q.ncols());
    }
    let w = w.as_slice();
    for (j, column) in out.as_mut_slice().chunks_exact_mut(rows).enumerate() {
        match add {
            Some(add) => column.copy_from_slice(&add.as_slice()[j * rows..(j + 1) * rows]),
            None => column.fill(0.0),
        }
        for (&x, w) in q.as_slice()[j * inner..(j + 1) * inner]
            .iter()
            .zip(w.chunks_exact(rows))
        {
            for (o, &w) in column.iter_mut().zip(w) {
                *o += w * x;
            }
        }
    }
}

/// `out = N D y` for one hidden layer: the rows of `y` scaled by `d`, then, for layer norm
/// (`xhat` not empty), centred by `C = I - 1 1ᵀ / n - x̂ x̂ᵀ / n`, since
/// `N_l = C diag(scale / sigma)`. Resizes `out` to `y`'s shape where it differs.
fn apply_nd(d: &[f64], xhat: &[f64], y: &DMatrix<f64>, out: &mut DMatrix<f64>) {
    let n = d.len();
    if out.shape() != y.shape() {
        *out = DMatrix::zeros(y.nrows(), y.ncols());
    }
    // Column-major storage: each chunk of n is one column.
    for (col_in, col_out) in y
        .as_slice()
        .chunks_exact(n)
        .zip(out.as_mut_slice().chunks_exact_mut(n))
    {
        for ((o, &v), &s) in col_out.iter_mut().zip(col_in).zip(d) {
            *o = s * v;
        }
        if !xhat.is_empty() {
            let (mut sum, mut dot) = (0.0, 0.0);
            for (&o, &x) in col_out.iter().zip(xhat) {
                sum += o;
                dot += o * x;
            }
            let (sum, dot) = (sum / n as f64, dot / n as f64);
            for (o, &x) in col_out.iter_mut().zip(xhat) {
                *o -= sum + x * dot;
            }
        }
    }
}

impl Workspace {
    fn new(host: &Host) -> Self {
        let layers = host
            .weights
            .iter()
            .map(|w| DMatrix::zeros(w.rows, w.cols))
            .collect();
        let (rows, classes) = host.weights.last().map_or((0, 0), |w| (w.rows, w.cols));
        let first = host.hidden.first().map_or(0, |h| h.units);
        Self {
            d: host.hidden.iter().map(|h| vec![0.0; h.units]).collect(),
            xhat: host
                .hidden
                .iter()
                .map(|h| match h.norm {
                    HiddenNorm::Layer { .. } => vec![0.0; h.units],
                    _ => Vec::new(),
                })
                .collect(),
            layers,
            network: DMatrix::zeros(first, classes),
            p: DMatrix::zeros(rows, classes),
            q: DMatrix::zeros(rows, classes),
            p_next: DMatrix::zeros(rows, classes),
        }
    }
}

/// Singular values of many small matrices, computed together: Golub & Reinsch (1970)
/// without singular vectors, that is Householder bidiagonalisation of each matrix, then
/// implicit-shift QR on the bidiagonals (EISPACK's `svd`), in the same backward-stable
/// family as nalgebra's `SVD` (singular values accurate to about `f64::EPSILON` times the
/// largest), which the tests use as the reference.
///
/// Written out here for speed: the probe decomposes about a hundred 10 x 10 matrices per
/// member at every logged step, where nalgebra's `SVD::new(m, false, false)` spends most
/// of its time on the overhead of small matrices and on waiting for results. Here four
/// matrices of one shape are bidiagonalised at once, lane by lane
/// ([`SvdBatch::push_group`]), and [`SvdBatch::solve`] advances four bidiagonals' QR
/// iterations in turn, one rotation each, so that the processor overlaps their chains
/// of dependent square roots and divisions. Every lane computes exactly what it would
/// compute alone.
#[derive(Debug, Default)]
struct SvdBatch {
    /// The group being bidiagonalised: entry (i, j) of the tall copy of matrix `lane`
    /// (scaled to a largest entry of 1) at `a[i + j * m][lane]`.
    a: Vec<Lanes>,
    /// Scratch of the bidiagonalisation, and its diagonal and superdiagonal.
    scratch: Vec<Lanes>,
    d: Vec<Lanes>,
    e: Vec<Lanes>,
    /// Every queued bidiagonal's diagonal, end to end; singular values after `solve`.
    w: Vec<f64>,
    /// Every queued bidiagonal's superdiagonal: `rv1[off + k] = B[k - 1][k]`,
    /// `rv1[off] = 0`.
    rv1: Vec<f64>,
    problems: Vec<Problem>,
    /// Whether a large matrix's SVD did not converge.
    failed: bool,
}

/// Four values, one per matrix of a group.
type Lanes = [f64; LANES];

/// How many matrices [`SvdBatch`] reduces, and diagonalises, at once.
const LANES: usize = 4;

/// One queued matrix of an [`SvdBatch`].
#[derive(Debug, Clone, Copy)]
struct Problem {
    /// Where its bidiagonal starts in `w` and `rv1`.
    off: usize,
    /// How many singular values it has: min(rows, cols).
    n: usize,
    /// The largest absolute entry it was divided by; 0 for a zero matrix, NaN for a
    /// matrix with a non-finite entry (neither is decomposed).
    scale: f64,
    /// Whether its singular values are already in `w` (a large matrix, given to
    /// nalgebra).
    solved: bool,
}

/// Matrices with more singular values than this go to nalgebra's SVD: on one core, the
/// code here is faster up to about 64 x 64.
const LARGEST_SMALL: usize = 48;

impl SvdBatch {
    /// Forgets every queued matrix.
    fn clear(&mut self) {
        self.w.clear();
        self.rv1.clear();
        self.problems.clear();
        self.failed = false;
    }

    /// Queues up to [`LANES`] matrices of one shape, in order, and reduces them to
    /// bidiagonals.
    fn push_group(&mut self, group: &[&DMatrix<f64>]) {
        let Some(first) = group.first() else {
            return;
        };
        assert!(group.len() <= LANES, "at most {LANES} matrices at once");
        let (rows, cols) = first.shape();
        assert!(
            group.iter().all(|j| j.shape() == (rows, cols)),
            "matrices of one shape"
        );
        // Work on a tall m x n copy (m >= n): the transpose has the same singular values.
        let (m, n) = (rows.max(cols), rows.min(cols));
        let large = n > LARGEST_SMALL;
        self.a.clear();
        if !large {
            self.a.resize(m * n, [0.0; LANES]);
        }
        let mut offs = [None; LANES];
        for (lane, j) in group.iter().enumerate() {
            let off = self.w.len();
            self.w.resize(off + n, 0.0);
            self.rv1.resize(off + n, 0.0);
            // The largest absolute entry, NaN if some entry is not finite.
            let (largest, finite) = j.as_slice().iter().fold((0f64, true), |(m, f), v| {
                let v = v.abs();
                (if v > m { v } else { m }, f & (v <= f64::MAX))
            });
            let scale = if finite { largest } else { f64::NAN };
            self.problems.push(Problem {
                off,
                n,
                scale,
                solved: false,
            });
            if n == 0 || scale == 0.0 || scale.is_nan() {
                // Left out: its lane stays zero, which the reduction leaves zero.
                continue;
            }
            let inv = 1.0 / scale;
            if large {
                // Large: nalgebra's SVD, faster there (the bound on its sweeps only
                // guards against looping forever).
                let sweeps = 100 * n;
                match SVD::try_new_unordered(j.scale(inv), false, false, 5.0 * f64::EPSILON, sweeps)
                {
                    Some(svd) => {
                        self.w[off..off + n].copy_from_slice(svd.singular_values.as_slice())
                    }
                    None => self.failed = true,
                }
                self.problems.last_mut().expect("just pushed").solved = true;
                continue;
            }
            offs[lane] = Some(off);
            if rows >= cols {
                for (a, v) in self.a.iter_mut().zip(j.as_slice()) {
                    a[lane] = v * inv;
                }
            } else {
                for (c, col) in j.as_slice().chunks_exact(rows).enumerate() {
                    for (r, &v) in col.iter().enumerate() {
                        self.a[c + r * m][lane] = v * inv;
                    }
                }
            }
        }
        if offs.iter().all(Option::is_none) {
            return;
        }
        for buffer in [&mut self.d, &mut self.e] {
            buffer.clear();
            buffer.resize(n, [0.0; LANES]);
        }
        self.scratch.clear();
        self.scratch.resize(m, [0.0; LANES]);
        bidiagonalise(
            &mut self.a,
            m,
            n,
            &mut self.d,
            &mut self.e,
            &mut self.scratch,
        );
        for (lane, off) in offs.iter().enumerate() {
            if let Some(off) = *off {
                for k in 0..n {
                    self.w[off + k] = self.d[k][lane];
                    self.rv1[off + k] = self.e[k][lane];
                }
            }
        }
    }

    /// Diagonalises every queued bidiagonal; `false` if one did not converge.
    fn solve(&mut self) -> bool {
        let problems = self
            .problems
            .iter()
            .filter(|p| p.n > 0 && p.scale > 0.0 && !p.solved)
            .map(|p| (p.off, p.n));
        !self.failed && diagonalise_interleaved(&mut self.w, &mut self.rv1, problems)
    }

    /// The mean, smallest and largest singular value of every queued matrix, in order,
    /// after [`SvdBatch::solve`] (NaNs for a non-finite matrix).
    fn spectra(&self) -> impl Iterator<Item = Spectrum> + '_ {
        self.problems.iter().map(|p| {
            let (sum, min, max) = self.w[p.off..p.off + p.n].iter().fold(
                (0.0, f64::INFINITY, 0f64),
                |(sum, min, max), &v| {
                    let v = v.abs() * p.scale;
                    (sum + v, min.min(v), max.max(v))
                },
            );
            let (mean, min, max) = if p.scale.is_nan() {
                (f64::NAN, f64::NAN, f64::NAN)
            } else if p.scale == 0.0 {
                (0.0, 0.0, 0.0)
            } else {
                (sum / p.n as f64, min, max)
            };
            Spectrum { mean, min, max }
        })
    }
}

/// A Householder reflector's `alpha` (the entry it leaves) and `beta = 2 / v.v`, per lane,
/// for a vector of squared norm `norm2` and first entry `x0`; where nothing is left to
/// zero (`norm2 == x0²`), no reflection: `alpha = x0`, `beta = 0`.
#[inline(always)]
fn reflector(norm2: &Lanes, x0: &Lanes) -> (Lanes, Lanes) {
    let mut alpha = [0.0; LANES];
    let mut beta = [0.0; LANES];
    for l in 0..LANES {
        if norm2[l] - x0[l] * x0[l] == 0.0 {
            alpha[l] = x0[l];
        } else {
            alpha[l] = -norm2[l].sqrt().copysign(x0[l]);
            // v = x with v[0] = x0 - alpha, and v.v = 2 (norm2 - x0 alpha).
            beta[l] = 1.0 / (norm2[l] - x0[l] * alpha[l]);
        }
    }
    (alpha, beta)
}

vgrad_kernels::with_cpu_feature! {
    /// [`bidiagonalise_lanes`], compiled for AVX2 where the CPU has it: the four lanes of
    /// each step are then one 256-bit instruction rather than two 128-bit ones.
    fn bidiagonalise(
        a: &mut [Lanes],
        m: usize,
        n: usize,
        d: &mut [Lanes],
        e: &mut [Lanes],
        w: &mut [Lanes],
    ) = bidiagonalise_lanes if "avx2";
}

/// Householder reduction of [`LANES`] m x n (m >= n) column-major matrices `a` (entry
/// (i, j) of every lane at `a[i + j * m]`, destroyed) to upper bidiagonal form:
/// diagonals `d[..n]`, superdiagonals `e[k] = B[k-1][k]` for k = 1..n and `e[0] = 0`;
/// `w` is scratch of m entries.
#[inline(always)]
fn bidiagonalise_lanes(
    a: &mut [Lanes],
    m: usize,
    n: usize,
    d: &mut [Lanes],
    e: &mut [Lanes],
    w: &mut [Lanes],
) {
    e[0] = [0.0; LANES];
    for k in 0..n {
        // Left reflector: zero column k below the diagonal.
        let (left, right) = a.split_at_mut((k + 1) * m);
        let v = &mut left[k * m + k..];
        let mut norm2 = [0.0; LANES];
        for x in v.iter() {
            for l in 0..LANES {
                norm2[l] += x[l] * x[l];
            }
        }
        let x0 = v[0];
        let (alpha, beta) = reflector(&norm2, &x0);
        for l in 0..LANES {
            v[0][l] = x0[l] - alpha[l];
        }
        for column in right.chunks_exact_mut(m).take(n - k - 1) {
            let c = &mut column[k..];
            let mut dot = [0.0; LANES];
            for (x, y) in v.iter().zip(c.iter()) {
                for l in 0..LANES {
                    dot[l] += x[l] * y[l];
                }
            }
            for l in 0..LANES {
                dot[l] *= beta[l];
            }
            for (y, x) in c.iter_mut().zip(v.iter()) {
                for l in 0..LANES {
                    y[l] -= dot[l] * x[l];
                }
            }
        }
        d[k] = alpha;
        if k + 1 >= n {
            break;
        }
        // Right reflector: zero row k right of the superdiagonal, v = a[k][k+1..].
        let mut norm2 = [0.0; LANES];
        for j in k + 1..n {
            let x = a[j * m + k];
            for l in 0..LANES {
                norm2[l] += x[l] * x[l];
            }
        }
        let x0 = a[(k + 1) * m + k];
        let (alpha, beta) = reflector(&norm2, &x0);
        for l in 0..LANES {
            a[(k + 1) * m + k][l] = x0[l] - alpha[l];
        }
        // w = A[k+1.., k+1..] v, then A -= beta w vᵀ.
        let w = &mut w[k + 1..m];
        w.fill([0.0; LANES]);
        for column in a[(k + 1) * m..n * m].chunks_exact(m) {
            let vj = column[k];
            for (x, y) in w.iter_mut().zip(&column[k + 1..]) {
                for l in 0..LANES {
                    x[l] += y[l] * vj[l];
                }
            }
        }
        for column in a[(k + 1) * m..n * m].chunks_exact_mut(m) {
            let (head, tail) = column.split_at_mut(k + 1);
            let mut f = head[k];
            for l in 0..LANES {
                f[l] *= beta[l];
            }
            for (y, x) in tail.iter_mut().zip(w.iter()) {
                for l in 0..LANES {
                    y[l] -= f[l] * x[l];
                }
            }
        }
        e[k + 1] = alpha;
    }
}

/// `sqrt(a² + b²)`, without `hypot`'s guards: the matrices are scaled to a largest entry
/// of 1 beforehand.
fn pythag(a: f64, b: f64) -> f64 {
    (a * a + b * b).sqrt()
}

/// One bidiagonal's implicit-shift QR iteration, as a state machine that advances one
/// rotation at a time.
#[derive(Debug, Clone, Copy, Default)]
struct Lane {
    /// Where the bidiagonal starts in `w` and `rv1`.
    off: usize,
    /// Entries below this are negligible: `f64::EPSILON` times the bidiagonal's norm.
    tiny: f64,
    /// The singular value being converged (counting down from n - 1), and the QR
    /// sweeps spent on it.
    k: usize,
    its: usize,
    /// The sweep under way chases the bulge over j = l..k.
    l: usize,
    j: usize,
    c: f64,
    s: f64,
    f: f64,
    x: f64,
    in_sweep: bool,
    active: bool,
}

impl Lane {
    fn new(off: usize, n: usize, w: &[f64], rv1: &[f64]) -> Self {
        let anorm = w[off..off + n]
            .iter()
            .zip(&rv1[off..off + n])
            .fold(0f64, |s, (a, b)| s.max(a.abs() + b.abs()));
        Self {
            off,
            tiny: f64::EPSILON * anorm,
            k: n - 1,
            active: true,
            ..Self::default()
        }
    }

    /// One rotation pair of the sweep under way (Golub & Reinsch's chase of the bulge).
    fn step(&mut self, w: &mut [f64], rv1: &mut [f64]) {
        let o = self.off;
        let (j, i) = (o + self.j, o + self.j + 1);
        let (mut c, mut s, mut f, mut x) = (self.c, self.s, self.f, self.x);
        let mut g = rv1[i];
        let mut y = w[i];
        let mut h = s * g;
        g *= c;
        let mut z = pythag(f, h);
        rv1[j] = z;
        let zi = 1.0 / z;
        c = f * zi;
        s = h * zi;
        f = x * c + g * s;
        g = g * c - x * s;
        h = y * s;
        y *= c;
        z = pythag(f, h);
        w[j] = z;
        if z != 0.0 {
            let zi = 1.0 / z;
            c = f * zi;
            s = h * zi;
        }
        f = c * g + s * y;
        x = c * y - s * g;
        (self.c, self.s, self.f, self.x) = (c, s, f, x);
        self.j += 1;
        if self.j == self.k {
            rv1[o + self.l] = 0.0;
            rv1[o + self.k] = f;
            w[o + self.k] = x;
            self.in_sweep = false;
        }
    }

    /// Between sweeps: splits off negligible entries and records the singular values
    /// that converged, then starts the next sweep (`Some(false)`), or reports that all
    /// have converged (`Some(true)`) or that one did not (`None`).
    fn next_sweep(&mut self, w: &mut [f64], rv1: &mut [f64]) -> Option<bool> {
        let (o, tiny) = (self.off, self.tiny);
        loop {
            let k = self.k;
            // The unreduced block l..=k: rv1[l] negligible, or w[l - 1] negligible (then
            // rotate rv1[l..=k] away).
            let mut l = k;
            let mut cancel = true;
            loop {
                if l == 0 || rv1[o + l].abs() <= tiny {
                    cancel = false;
                    break;
                }
                if w[o + l - 1].abs() <= tiny {
                    break;
                }
                l -= 1;
            }
            if cancel {
                let (mut c, mut s) = (0.0, 1.0);
                for i in o + l..=o + k {
                    let f = s * rv1[i];
                    rv1[i] *= c;
                    if f.abs() <= tiny {
                        break;
                    }
                    let g = w[i];
                    let h = pythag(f, g);
                    w[i] = h;
                    let h = 1.0 / h;
                    c = g * h;
                    s = -f * h;
                }
            }
            if l == k {
                // Singular value k has converged.
                if k == 0 {
                    return Some(true);
                }
                self.k -= 1;
                self.its = 0;
                continue;
            }
            // EISPACK allows 30 sweeps per singular value.
            self.its += 1;
            if self.its > 75 {
                return None;
            }
            // The shift, from the bottom 2 x 2 minor.
            let z = w[o + k];
            let x = w[o + l];
            let y = w[o + k - 1];
            let g = rv1[o + k - 1];
            let h = rv1[o + k];
            let f = ((y - z) * (y + z) + (g - h) * (g + h)) / (2.0 * h * y);
            let g = pythag(f, 1.0);
            let f = ((x - z) * (x + z) + h * ((y / (f + g.copysign(f))) - h)) / x;
            (self.l, self.j, self.c, self.s, self.f, self.x) = (l, l, 1.0, 1.0, f, x);
            self.in_sweep = true;
            return Some(false);
        }
    }
}

/// Diagonalises the bidiagonals `(off, n)` of `w` (diagonals) and `rv1`
/// (superdiagonals) in place, [`LANES`] at a time, one rotation of each in turn; `w` ends
/// holding the singular values up to sign. `false` if one needed more than 75 sweeps
/// for a singular value.
fn diagonalise_interleaved(
    w: &mut [f64],
    rv1: &mut [f64],
    mut problems: impl Iterator<Item = (usize, usize)>,
) -> bool {
    let mut lanes = [Lane::default(); LANES];
    let mut live = 0;
    for lane in lanes.iter_mut() {
        if let Some((off, n)) = problems.next() {
            *lane = Lane::new(off, n, w, rv1);
            live += 1;
        }
    }
    while live > 0 {
        for lane in lanes.iter_mut().filter(|lane| lane.active) {
            if lane.in_sweep {
                lane.step(w, rv1);
                continue;
            }
            match lane.next_sweep(w, rv1) {
                Some(false) => {}
                Some(true) => match problems.next() {
                    Some((off, n)) => *lane = Lane::new(off, n, w, rv1),
                    None => {
                        lane.active = false;
                        live -= 1;
                    }
                },
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use candle_nn::VarMap;
    use vgrad_model::MlpConfig;
    use vgrad_record::{Init, Norm};

    const INPUT: usize = 6;

    fn config(activation: Activation, norm: Norm, residual: bool) -> MlpConfig {
        MlpConfig {
            input: INPUT,
            width: 4,
            layers: 4,
            classes: 3,
            activation,
            init: Init::GlorotNormal,
            norm,
            residual,
        }
    }

    /// Deterministic values `offset + scale * cos(0.7 i + phase)` over one member's
    /// entries of `var` `[K, ...]`, the same for every member.
    fn wavy(var: &Var, scale: f64, offset: f64, phase: f64) -> Tensor {
        let k = var.dim(0).unwrap();
        let n = var.elem_count() / k;
        let t = Tensor::arange(0f64, n as f64, &Device::Cpu)
            .unwrap()
            .affine(0.7, phase)
            .unwrap()
            .cos()
            .unwrap();
        ((t * scale).unwrap() + offset)
            .unwrap()
            .repeat(k)
            .unwrap()
            .reshape(var.shape())
            .unwrap()
    }

    /// An f64 model with non-zero biases (with zero biases a unit whose inputs are all zero
    /// sits on the ReLU kink) and, where normalised, scales and shifts away from 1 and 0.
    fn model(cfg: &MlpConfig, seeds: &[u64]) -> Mlp {
        let varmap = VarMap::new();
        let mlp = Mlp::init_with_dtype(cfg, seeds, &varmap, &Device::Cpu, DType::F64).unwrap();
        let vars = varmap.data().lock().unwrap();
        for l in 1..=cfg.layers {
            let bias = &vars[&MlpConfig::bias_name(l)];
            bias.set(&wavy(bias, 0.1, 0.0, 0.3)).unwrap();
            if cfg.is_normalised(l) {
                let scale = &vars[&MlpConfig::scale_name(l)];
                scale.set(&wavy(scale, 0.3, 1.1, 1.0)).unwrap();
                let shift = &vars[&MlpConfig::shift_name(l)];
                shift.set(&wavy(shift, 0.2, 0.0, 2.0)).unwrap();
            }
        }
        mlp
    }

    /// Deterministic inputs `[k, e, INPUT]` spread over [-2, 2].
    fn inputs(k: usize, e: usize, phase: f64) -> Tensor {
        (Tensor::arange(0f64, (k * e * INPUT) as f64, &Device::Cpu)
            .unwrap()
            .affine(0.37, phase)
            .unwrap()
            .sin()
            .unwrap()
            * 2.0)
            .unwrap()
            .reshape((k, e, INPUT))
            .unwrap()
    }

    /// Member `m`'s weight of layer `l` as a matrix.
    fn weight(mlp: &Mlp, l: usize, m: usize) -> DMatrix<f64> {
        let w = mlp.layer(l).unwrap().weight().to_vec3::<f64>().unwrap();
        let rows: Vec<f64> = w[m].iter().flatten().copied().collect();
        DMatrix::from_row_slice(w[m].len(), w[m][0].len(), &rows)
    }

    /// Singular values' mean, min and max of `j` by nalgebra's sorted SVD.
    fn reference(j: &DMatrix<f64>) -> Spectrum {
        let s = j.singular_values();
        Spectrum {
            mean: s.mean(),
            min: s[s.len() - 1],
            max: s[0],
        }
    }

    fn assert_spectrum(what: &str, got: Spectrum, want: Spectrum, tol: f64) {
        for (name, g, w) in [
            ("mean", got.mean, want.mean),
            ("min", got.min, want.min),
            ("max", got.max, want.max),
        ] {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{what} {name}: {g} vs {w}"
            );
        }
    }

    fn assert_matrix(what: &str, got: &DMatrix<f64>, want: &DMatrix<f64>, tol: f64) {
        assert_eq!(got.shape(), want.shape(), "{what}");
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{what}: {g} vs {w}\n{got}\n{want}"
            );
        }
    }

    #[test]
    fn deep_linear_orthogonal_network_has_the_gains_as_singular_values() {
        let gain = 1.3;
        let cfg = MlpConfig {
            width: 4,
            layers: 5,
            classes: 4,
            init: Init::Orthogonal { gain },
            ..config(Activation::Linear, Norm::None, false)
        };
        let mlp = model(&cfg, &[3, 4]);
        let spectra = jacobian_spectra(&mlp, &inputs(2, 3, 0.1)).unwrap();
        let flat = |s: f64| Spectrum {
            mean: s,
            min: s,
            max: s,
        };
        for (m, member) in spectra.iter().enumerate() {
            assert_eq!(member.layers.len(), 4);
            for (l, s) in member.layers.iter().enumerate() {
                // The orthogonal draws are f32: orthogonal to about 1e-7.
                assert_spectrum(&format!("member {m} J_{}", l + 1), *s, flat(gain), 1e-6);
            }
            let network = member.network.unwrap();
            assert_spectrum(&format!("member {m} M"), network, flat(gain.powi(4)), 1e-6);
        }
    }

    #[test]
    fn deep_linear_network_jacobians_are_the_weights_and_their_product() {
        for (width, layers) in [(5, 5), (1, 3), (7, 2)] {
            let cfg = MlpConfig {
                width,
                layers,
                ..config(Activation::Linear, Norm::None, false)
            };
            let mlp = model(&cfg, &[21, 22]);
            let x = inputs(2, 3, 0.4);
            let spectra = jacobian_spectra(&mlp, &x).unwrap();
            let all = jacobians(&mlp, &x).unwrap();
            for m in 0..2 {
                let mut product = weight(&mlp, 2, m);
                for l in 3..=layers {
                    product *= weight(&mlp, l, m);
                }
                for l in 1..layers {
                    let w = weight(&mlp, l + 1, m);
                    let tag = format!("width {width}, L {layers}, member {m}, J_{l}");
                    assert_spectrum(&tag, spectra[m].layers[l - 1], reference(&w), 1e-12);
                    for j in &all[m] {
                        assert_matrix(&tag, &j.layers[l - 1], &w, 1e-12);
                    }
                }
                let tag = format!("width {width}, L {layers}, member {m}, M");
                assert_spectrum(
                    &tag,
                    spectra[m].network.unwrap(),
                    reference(&product),
                    1e-12,
                );
                for j in &all[m] {
                    assert_matrix(&tag, j.network.as_ref().unwrap(), &product, 1e-12);
                }
            }
        }
    }

    #[test]
    fn the_avx2_bidiagonalisation_is_the_portable_one_bit_for_bit() {
        // Four lanes of tall matrices, entries spread over magnitudes and signs.
        for (m, n) in [(1, 1), (3, 2), (10, 10), (13, 7), (48, 48)] {
            let lanes = |seed: f64| -> Vec<Lanes> {
                (0..m * n)
                    .map(|i| {
                        std::array::from_fn(|l| {
                            let x = (i as f64 * 0.61 + l as f64 * 1.7 + seed).sin();
                            x * 10f64.powi((i % 7) as i32 - 3)
                        })
                    })
                    .collect()
            };
            let run = |avx2: bool| {
                let (mut a, mut d, mut e, mut w) = (
                    lanes(0.3),
                    vec![[0.0; LANES]; n],
                    vec![[0.0; LANES]; n],
                    vec![[0.0; LANES]; m],
                );
                if avx2 {
                    bidiagonalise(&mut a, m, n, &mut d, &mut e, &mut w);
                } else {
                    bidiagonalise_lanes(&mut a, m, n, &mut d, &mut e, &mut w);
                }
                let bits =
                    |v: &[Lanes]| -> Vec<u64> { v.iter().flatten().map(|x| x.to_bits()).collect() };
                (bits(&a), bits(&d), bits(&e))
            };
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                assert_eq!(run(true), run(false), "{m} x {n}");
            }
        }
    }

    #[test]
    fn the_slower_path_gives_the_closed_form_and_nans_for_what_it_cannot_measure() {
        // A rotation times diag(3, 1, 0.5): singular values 3, 1 and 0.5.
        let (c, s) = (0.6, 0.8);
        let rotation = DMatrix::from_row_slice(3, 3, &[c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]);
        let j =
            rotation * DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![3.0, 1.0, 0.5]));
        let got = spectrum_by_nalgebra(&j);
        assert!((got.mean - 1.5).abs() < 1e-12 && (got.min - 0.5).abs() < 1e-12);
        assert!((got.max - 3.0).abs() < 1e-12, "{got:?}");
        let mut broken = j.clone();
        broken[(1, 2)] = f64::NAN;
        let none = spectrum_by_nalgebra(&broken);
        assert!(none.mean.is_nan() && none.min.is_nan() && none.max.is_nan());
        assert!(spectrum_by_nalgebra(&DMatrix::zeros(0, 3)).mean.is_nan());
    }

    #[test]
    fn singular_values_match_nalgebras_svd() {
        // A xorshift generator: uniform entries in [-1, 1).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let mut matrices = Vec::new();
        for rows in 1..=13 {
            for cols in 1..=13 {
                for kind in 0..8 {
                    let mut m = DMatrix::from_fn(rows, cols, |_, _| uniform());
                    match kind {
                        // A dead unit: a zero row.
                        1 => m.row_mut(rows / 2).fill(0.0),
                        // Rank-deficient: two equal columns.
                        2 if cols > 1 => {
                            let first = m.column(0).clone_owned();
                            m.set_column(cols - 1, &first);
                        }
                        // Graded rows, from 1 down to 1e-36.
                        3 => {
                            for i in 0..rows {
                                m.row_mut(i).scale_mut(10f64.powi(-3 * i as i32));
                            }
                        }
                        4 => m.fill(0.0),
                        5 => m *= 1e-200,
                        6 => m *= 1e200,
                        // Orthogonal columns or rows, times 2: equal singular values.
                        7 => {
                            let q = m.clone().qr().q();
                            m = if rows >= cols {
                                q * 2.0
                            } else {
                                m.transpose().qr().q().transpose() * 2.0
                            };
                        }
                        _ => {}
                    }
                    matrices.push(m);
                }
            }
        }
        // Beside and beyond the largest size decomposed here (given to nalgebra).
        for (rows, cols) in [(48, 48), (49, 49), (60, 50), (50, 60), (200, 12), (12, 200)] {
            for kind in 0..8 {
                let mut m = DMatrix::from_fn(rows, cols, |_, _| uniform());
                if kind == 1 {
                    m.row_mut(0).fill(0.0);
                }
                matrices.push(m);
            }
        }
        // Every matrix alone, then in groups of four (eight per shape) in one batch.
        let mut batch = SvdBatch::default();
        let mut each = Vec::new();
        for m in &matrices {
            batch.clear();
            batch.push_group(&[m]);
            assert!(batch.solve());
            each.extend(batch.spectra());
        }
        batch.clear();
        for group in matrices.chunks(LANES) {
            batch.push_group(&group.iter().collect::<Vec<_>>());
        }
        assert!(batch.solve());
        let together: Vec<Spectrum> = batch.spectra().collect();
        assert_eq!(each, together);
        for (m, got) in matrices.iter().zip(together) {
            let want = reference(m);
            for (name, g, w) in [
                ("mean", got.mean, want.mean),
                ("min", got.min, want.min),
                ("max", got.max, want.max),
            ] {
                assert!(
                    (g - w).abs() <= 1e-13 * want.max,
                    "{}x{} {name}: {g} vs {w}\n{m}",
                    m.nrows(),
                    m.ncols()
                );
            }
        }
        // A matrix with one non-finite entry: NaNs, without disturbing its neighbours.
        let mut bad = matrices[1].clone();
        bad[(0, 0)] = f64::INFINITY;
        batch.clear();
        batch.push_group(&[&matrices[0], &bad, &matrices[0]]);
        assert!(batch.solve());
        let spectra: Vec<Spectrum> = batch.spectra().collect();
        assert!(spectra[1].mean.is_nan() && spectra[1].min.is_nan() && spectra[1].max.is_nan());
        assert_eq!(spectra[0], each[0]);
        assert_eq!(spectra[2], each[0]);
    }

    #[test]
    fn a_single_layer_network_has_no_spectrum() {
        let cfg = MlpConfig {
            layers: 1,
            ..config(Activation::Tanh, Norm::None, false)
        };
        let mlp = model(&cfg, &[1]);
        let spectra = jacobian_spectra(&mlp, &inputs(1, 2, 0.0)).unwrap();
        assert_eq!(
            spectra,
            vec![MemberSpectra {
                layers: vec![],
                network: None
            }]
        );
    }

    #[test]
    fn rejects_inputs_of_another_ensemble() {
        let mlp = model(&config(Activation::Tanh, Norm::None, false), &[1, 2]);
        assert!(matches!(
            jacobian_spectra(&mlp, &inputs(1, 2, 0.0)),
            Err(ProbeError::Shape(_))
        ));
        assert!(jacobian_spectra(&mlp, &inputs(2, 0, 0.0)).is_err());
    }

    /// Every member's Jacobians at every example of `x` by central differences through
    /// the taps of the evaluation pass: perturbing entry `i` of the tap of layer `l` (in
    /// every member and example at once, which the evaluation pass keeps apart) moves
    /// z_(l+1) by row `i` of J_l and the logits (for l = 1) by row `i` of M.
    fn finite_difference(mlp: &Mlp, x: &Tensor) -> Vec<Vec<Jacobians>> {
        const H: f64 = 1e-6;
        let (k, e, _) = x.dims3().unwrap();
        let depth = mlp.depth();
        let units: Vec<usize> = (1..=depth)
            .map(|l| mlp.layer(l).unwrap().weight().dim(2).unwrap())
            .collect();
        let taps: Vec<Var> = units
            .iter()
            .map(|&n| Var::zeros((k, e, n), DType::F64, &Device::Cpu).unwrap())
            .collect();
        let tensors: Vec<Tensor> = taps.iter().map(|v| v.as_tensor().clone()).collect();
        let mut out: Vec<Vec<Jacobians>> = (0..k)
            .map(|_| {
                (0..e)
                    .map(|_| Jacobians {
                        layers: (1..depth)
                            .map(|l| DMatrix::zeros(units[l - 1], units[l]))
                            .collect(),
                        network: Some(DMatrix::zeros(units[0], units[depth - 1])),
                    })
                    .collect()
            })
            .collect();
        let at = |l: usize, i: usize, delta: f64| {
            let n = units[l - 1];
            let values: Vec<f64> = (0..k * e * n)
                .map(|idx| if idx % n == i { delta } else { 0.0 })
                .collect();
            taps[l - 1]
                .set(&Tensor::from_vec(values, (k, e, n), &Device::Cpu).unwrap())
                .unwrap();
            let trace = mlp.forward_eval_traced(x, Some(&tensors)).unwrap();
            taps[l - 1].set(&taps[l - 1].zeros_like().unwrap()).unwrap();
            (
                trace.pre_activations[l].to_vec3::<f64>().unwrap(),
                trace.logits.to_vec3::<f64>().unwrap(),
            )
        };
        for l in 1..depth {
            for i in 0..units[l - 1] {
                let (next_up, logits_up) = at(l, i, H);
                let (next_down, logits_down) = at(l, i, -H);
                for m in 0..k {
                    for b in 0..e {
                        let j = &mut out[m][b];
                        for c in 0..units[l] {
                            j.layers[l - 1][(i, c)] =
                                (next_up[m][b][c] - next_down[m][b][c]) / (2.0 * H);
                        }
                        if l == 1 {
                            let net = j.network.as_mut().unwrap();
                            for c in 0..units[depth - 1] {
                                net[(i, c)] =
                                    (logits_up[m][b][c] - logits_down[m][b][c]) / (2.0 * H);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn check_against_finite_differences(mut mlp: Mlp) {
        // Five examples: a group of four decomposed together, and one alone.
        let (k, e) = (mlp.members(), 5);
        // Running statistics away from their initial 0 and 1 (nothing without batch norm).
        for step in 0..5 {
            let trace = mlp
                .forward_traced(&inputs(k, 8, 1.0 + step as f64), None)
                .unwrap();
            mlp.update_running_stats(&trace).unwrap();
        }
        let x = inputs(k, e, 0.2);
        let numeric = finite_difference(&mlp, &x);
        let analytic = jacobians(&mlp, &x).unwrap();
        let spectra = jacobian_spectra(&mlp, &x).unwrap();
        for m in 0..k {
            let mut layers = vec![Sum::default(); mlp.depth() - 1];
            let mut network = Sum::default();
            for b in 0..e {
                let (num, ana) = (&numeric[m][b], &analytic[m][b]);
                for (l, (nj, aj)) in num.layers.iter().zip(&ana.layers).enumerate() {
                    assert_matrix(&format!("member {m} example {b} J_{}", l + 1), aj, nj, 1e-6);
                    layers[l].add(reference(nj));
                }
                let nm = num.network.as_ref().unwrap();
                assert_matrix(
                    &format!("member {m} example {b} M"),
                    ana.network.as_ref().unwrap(),
                    nm,
                    1e-6,
                );
                network.add(reference(nm));
            }
            for (l, s) in layers.iter().enumerate() {
                let tag = format!("member {m} J_{} spectrum", l + 1);
                assert_spectrum(&tag, spectra[m].layers[l], s.mean(e as f64), 1e-6);
            }
            let tag = format!("member {m} M spectrum");
            assert_spectrum(
                &tag,
                spectra[m].network.unwrap(),
                network.mean(e as f64),
                1e-6,
            );
        }
    }

    #[test]
    fn tanh_matches_finite_differences() {
        let cfg = config(Activation::Tanh, Norm::None, false);
        check_against_finite_differences(model(&cfg, &[11, 12]));
    }

    #[test]
    fn relu_layer_norm_matches_finite_differences() {
        let cfg = config(Activation::Relu, Norm::Layer, false);
        check_against_finite_differences(model(&cfg, &[11, 12]));
    }

    #[test]
    fn sigmoid_batch_norm_matches_finite_differences() {
        let cfg = config(Activation::Sigmoid, Norm::Batch, false);
        check_against_finite_differences(model(&cfg, &[11, 12]));
    }

    #[test]
    fn residual_tanh_matches_finite_differences() {
        let cfg = MlpConfig {
            layers: 5,
            ..config(Activation::Tanh, Norm::None, true)
        };
        check_against_finite_differences(model(&cfg, &[11, 12]));
    }

    #[test]
    fn residual_gelu_layer_norm_matches_finite_differences() {
        let cfg = MlpConfig {
            layers: 5,
            ..config(Activation::Gelu, Norm::Layer, true)
        };
        check_against_finite_differences(model(&cfg, &[11, 12]));
    }

    #[test]
    fn residual_relu_batch_norm_matches_finite_differences() {
        let cfg = config(Activation::Relu, Norm::Batch, true);
        check_against_finite_differences(model(&cfg, &[11, 12]));
    }

    #[test]
    fn members_are_independent() {
        for (activation, norm) in [
            (Activation::Tanh, Norm::Layer),
            (Activation::Relu, Norm::Batch),
        ] {
            let cfg = MlpConfig {
                width: 5,
                layers: 5,
                ..config(activation, norm, true)
            };
            let mut both = model(&cfg, &[5, 9]);
            let mut alone = model(&cfg, &[9]);
            for step in 0..3 {
                let x = inputs(1, 8, step as f64);
                let trace = alone.forward_traced(&x, None).unwrap();
                alone.update_running_stats(&trace).unwrap();
                let x = Tensor::cat(&[&inputs(1, 8, 5.0 + step as f64), &x], 0).unwrap();
                let trace = both.forward_traced(&x, None).unwrap();
                both.update_running_stats(&trace).unwrap();
            }
            let x = inputs(1, 6, 0.5);
            let pair = Tensor::cat(&[&x, &x], 0).unwrap();
            let from_both = jacobian_spectra(&both, &pair).unwrap();
            let from_alone = jacobian_spectra(&alone, &x).unwrap();
            assert_eq!(from_both[1], from_alone[0], "{activation} {norm}");
            assert_ne!(from_both[0], from_alone[0], "{activation} {norm}");
        }
    }
}
