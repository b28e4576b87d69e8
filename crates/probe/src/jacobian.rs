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
//! singular values come from [`vgrad_kernels::svd::SvdBatch`] (Golub-Reinsch, several
//! matrices at once) up to [`FASTEST_UP_TO`] singular values, and from nalgebra's SVD
//! beyond (both backward stable: accurate to about `f64::EPSILON` times the largest
//! singular value). nalgebra's alone more than doubled the Jacobian's cost per logged
//! step at the reference size (97 µs to 212 µs), over the probe's cost target.

use candle_core::{DType, Tensor};
use nalgebra::{DMatrix, SVD};
use vgrad_kernels::svd::{FASTEST_UP_TO, SvdBatch};
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
    /// The singular values of the hidden chain `d h_(L-1) / d h_1` ([`hidden_chains`]) of
    /// every example, pooled, largest first within each example; empty for a network of
    /// one layer.
    pub chain: Vec<f64>,
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
    // The Jacobians of GROUP examples at a time, so that the batch reduces matrices of one
    // shape together; one at a time where some are large (nalgebra's, one by one, and
    // the workspaces large too).
    let large = host
        .weights
        .iter()
        .any(|w| w.rows.min(w.cols) > FASTEST_UP_TO);
    let lanes = if large { 1 } else { GROUP };
    let mut ws: Vec<Workspace> = (0..lanes).map(|_| Workspace::new(&host)).collect();
    let mut spectra = Spectra::default();
    let mut chains = ChainSpectra::default();
    let hidden = host.hidden.len();
    // J_1..J_(L-1), then M.
    let per_example = hidden + usize::from(hidden > 0);
    let examples = host.examples as f64;
    let mut slots = Vec::new();
    (0..host.members)
        .map(|m| {
            spectra.clear();
            slots.clear();
            let weights = host.member_weights(m);
            chains.clear();
            for first in (0..host.examples).step_by(lanes) {
                let group = lanes.min(host.examples - first);
                for (lane, ws) in ws.iter_mut().take(group).enumerate() {
                    host.fill(m, first + lane, &weights, ws);
                    if let Some(chain) = host.chain(&weights, ws) {
                        chains.push(chain);
                    }
                }
                for slot in 0..per_example {
                    for ws in &ws[..group] {
                        spectra.push(ws.slot(slot));
                        slots.push(slot);
                    }
                }
            }
            let mut sums = vec![Sum::default(); per_example];
            match spectra.solve() {
                Some(all) => {
                    for (&slot, spectrum) in slots.iter().zip(all) {
                        sums[slot].add(spectrum);
                    }
                }
                None => {
                    // The batch gave up on some matrix (extreme weights far into
                    // training, say): this member's matrices again, by nalgebra's SVD.
                    for e in 0..host.examples {
                        host.fill(m, e, &weights, &mut ws[0]);
                        for (slot, sum) in sums.iter_mut().enumerate() {
                            sum.add(spectrum(ws[0].slot(slot)));
                        }
                    }
                }
            }
            let mut spectra = sums.iter().map(|s| s.mean(examples));
            Ok(MemberSpectra {
                layers: spectra.by_ref().take(hidden).collect(),
                network: spectra.next(),
                chain: chains.solve(),
            })
        })
        .collect()
}

/// How many examples' Jacobians are assembled before they are queued: the
/// [`SvdBatch`] reduces four matrices of one shape at once.
const GROUP: usize = 4;

/// The spectra of a sequence of Jacobians: those of at most [`FASTEST_UP_TO`] singular
/// values queued in an [`SvdBatch`], larger ones by nalgebra's SVD as they come.
#[derive(Debug, Default)]
struct Spectra {
    batch: SvdBatch,
    /// Per matrix in order: `None` where it is in the batch, its spectrum otherwise.
    done: Vec<Option<Spectrum>>,
}

impl Spectra {
    fn clear(&mut self) {
        self.batch.clear();
        self.done.clear();
    }

    fn push(&mut self, j: &DMatrix<f64>) {
        let (rows, cols) = j.shape();
        if rows.min(cols) <= FASTEST_UP_TO {
            self.batch.push_column_major(rows, cols, j.as_slice());
            self.done.push(None);
        } else {
            self.done.push(Some(spectrum(j)));
        }
    }

    /// Every pushed matrix's spectrum, in order; `None` if the batch did not converge on
    /// one of its matrices.
    fn solve(&mut self) -> Option<impl Iterator<Item = Spectrum> + '_> {
        let mut batched = self.batch.solve().ok()?.iter();
        Some(self.done.iter().map(move |done| match done {
            Some(s) => *s,
            None => match batched.next().expect("one batch entry per None") {
                Some(values) => summarise(values),
                None => UNMEASURED,
            },
        }))
    }
}

/// Every singular value of a sequence of hidden chains, as [`Spectra`] measures the
/// layers': chains of at most [`FASTEST_UP_TO`] singular values (the reference network's
/// 10 x 10, every logged step) queued in an [`SvdBatch`], larger ones by nalgebra's SVD as
/// they come.
#[derive(Debug, Default)]
struct ChainSpectra {
    batch: SvdBatch,
    /// Per chain in order.
    done: Vec<Chain>,
}

/// A chain in [`ChainSpectra`]: queued in the batch (the matrix kept for nalgebra should
/// the batch not converge), or already solved.
#[derive(Debug)]
enum Chain {
    Queued(DMatrix<f64>),
    Solved(Vec<f64>),
}

impl ChainSpectra {
    fn clear(&mut self) {
        self.batch.clear();
        self.done.clear();
    }

    fn push(&mut self, chain: DMatrix<f64>) {
        let (rows, cols) = chain.shape();
        if rows.min(cols) <= FASTEST_UP_TO {
            self.batch.push_column_major(rows, cols, chain.as_slice());
            self.done.push(Chain::Queued(chain));
        } else {
            self.done.push(Chain::Solved(singular_values(chain)));
        }
    }

    /// Every chain's singular values, largest first within each, end to end.
    fn solve(&mut self) -> Vec<f64> {
        let batched: Option<Vec<Option<Vec<f64>>>> = self
            .batch
            .solve()
            .ok()
            .map(|solved| solved.iter().map(|v| v.map(<[f64]>::to_vec)).collect());
        let mut batched = batched.map(Vec::into_iter);
        let mut out = Vec::new();
        for done in self.done.drain(..) {
            let values = match (done, batched.as_mut()) {
                (Chain::Solved(values), _) => values,
                (Chain::Queued(chain), Some(batch)) => {
                    let n = chain.nrows().min(chain.ncols());
                    match batch.next().flatten() {
                        Some(mut values) => {
                            values.sort_by(|a, b| b.total_cmp(a));
                            values
                        }
                        None => vec![f64::NAN; n],
                    }
                }
                // The batch gave up on some chain: all of them again, by nalgebra's SVD.
                (Chain::Queued(chain), None) => singular_values(chain),
            };
            out.extend(values);
        }
        out
    }
}

/// The spectrum of a matrix that could not be measured.
const UNMEASURED: Spectrum = Spectrum {
    mean: f64::NAN,
    min: f64::NAN,
    max: f64::NAN,
};

/// The mean, smallest and largest of non-negative singular values, summed in the order
/// given (NaNs for none).
fn summarise(values: &[f64]) -> Spectrum {
    if values.is_empty() {
        return UNMEASURED;
    }
    let (sum, min, max) = values
        .iter()
        .fold((0.0, f64::INFINITY, 0f64), |(sum, min, max), &v| {
            (sum + v, min.min(v), max.max(v))
        });
    Spectrum {
        mean: sum / values.len() as f64,
        min,
        max,
    }
}

/// The most implicit-shift QR sweeps nalgebra's SVD may take per singular value before
/// [`spectrum`] gives up: it takes about two on random 10 x 10 matrices, and without a
/// cap (`SVD::new`'s `max_niter = 0`) a matrix it does not converge on would hang the run.
const SWEEPS_PER_VALUE: usize = 1000;

/// The mean, smallest and largest singular value of `j`, by nalgebra's SVD without
/// singular vectors, of `j` scaled to a largest entry of 1 (as the batch does; the
/// reports' spectra of wide layers were computed so); NaNs for a matrix with a non-finite
/// entry (a diverged member), an empty one, or one the SVD does not converge on within
/// its cap (a probe that cannot measure one step's spectrum does not stop the run: its
/// record says NaN, which readers skip).
fn spectrum(j: &DMatrix<f64>) -> Spectrum {
    let n = j.nrows().min(j.ncols());
    let scale = j.iter().fold(0f64, |m, v| m.max(v.abs()));
    // nalgebra panics on an empty matrix, and a NaN would only spend the whole cap.
    if n == 0 || !j.iter().all(|v| v.is_finite()) {
        return UNMEASURED;
    }
    if scale == 0.0 {
        return summarise(&vec![0.0; n]);
    }
    // The unordered SVD skips the sort, since only the extremes and the mean are read.
    // Tolerance 5 eps is `SVD::new`'s.
    match SVD::try_new_unordered(
        j.scale(1.0 / scale),
        false,
        false,
        5.0 * f64::EPSILON,
        SWEEPS_PER_VALUE * n,
    ) {
        Some(svd) => {
            let values: Vec<f64> = svd
                .singular_values
                .iter()
                .map(|v| v.abs() * scale)
                .collect();
            summarise(&values)
        }
        None => UNMEASURED,
    }
}

/// Every member's Jacobians at every example of `xs` `[K, E, input]`, indexed
/// `[member][example]`: the matrices whose singular values [`jacobian_spectra`]
/// summarises, for inspection and tests.
pub fn jacobians(mlp: &Mlp, xs: &Tensor) -> Result<Vec<Vec<Jacobians>>> {
    each_example(mlp, xs, |host, _, ws| Jacobians {
        layers: ws.layers.clone(),
        network: (!host.hidden.is_empty()).then(|| ws.network.clone()),
    })
}

/// `read` of every member at every example of `xs` `[K, E, input]` after the evaluation
/// pass has filled the workspace, indexed `[member][example]`.
fn each_example<T>(
    mlp: &Mlp,
    xs: &Tensor,
    mut read: impl FnMut(&Host, &[DMatrix<f64>], &Workspace) -> T,
) -> Result<Vec<Vec<T>>> {
    let host = Host::read(mlp, xs)?;
    let mut ws = Workspace::new(&host);
    Ok((0..host.members)
        .map(|m| {
            let weights = host.member_weights(m);
            (0..host.examples)
                .map(|e| {
                    host.fill(m, e, &weights, &mut ws);
                    read(&host, &weights, &ws)
                })
                .collect()
        })
        .collect())
}

/// Every member's square Jacobian of the last hidden layer's output with respect to the
/// first's, `C = d h_(L-1) / d h_1` (`[n_1 x n_(L-1)]` in the row convention), at every
/// example of `xs` `[K, E, input]`, indexed `[member][example]`: the chain of the hidden
/// layers `Π_{l=2}^{L-1} (S_l + W_l N_l D_l)` that dynamical isometry asks to keep near an
/// isometry (Pennington et al. 2017). The identity for a network of one hidden layer;
/// `None` for a network of none.
///
/// Built from the right as `M` is, with nalgebra's matrix products: this measure has no
/// reports whose bits to keep, and at width 400 and depth 128 the chain is about 16 GFLOP
/// per example.
pub fn hidden_chains(mlp: &Mlp, xs: &Tensor) -> Result<Vec<Vec<Option<DMatrix<f64>>>>> {
    each_example(mlp, xs, |host, weights, ws| host.chain(weights, ws))
}

/// The singular values of [`hidden_chains`]' matrices, largest first, indexed
/// `[member][example]` (empty for a network without hidden layers; NaNs for a chain with
/// a non-finite entry or an SVD that does not converge).
pub fn chain_singular_values(mlp: &Mlp, xs: &Tensor) -> Result<Vec<Vec<Vec<f64>>>> {
    Ok(hidden_chains(mlp, xs)?
        .into_iter()
        .map(|member| {
            member
                .into_iter()
                .map(|chain| chain.map(singular_values).unwrap_or_default())
                .collect()
        })
        .collect())
}

/// The singular values of `m`, largest first (NaNs where they cannot be measured).
fn singular_values(m: DMatrix<f64>) -> Vec<f64> {
    let n = m.nrows().min(m.ncols());
    if m.iter().any(|v| !v.is_finite()) {
        return vec![f64::NAN; n];
    }
    match SVD::try_new(m, false, false, f64::EPSILON, 10_000) {
        Some(svd) => {
            let mut values: Vec<f64> = svd.singular_values.iter().map(|v| v.abs()).collect();
            values.sort_by(|a, b| b.total_cmp(a));
            values
        }
        None => vec![f64::NAN; n],
    }
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
    /// Each member's branch scale alpha where it has a skip (h_l = h_(l-1) + alpha f):
    /// the branch's Jacobian is alpha times the plain layer's.
    branch: Option<Vec<f64>>,
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
                branch: mlp
                    .branch_scale(l)?
                    .filter(|alpha| alpha.iter().any(|&a| a != 1.0)),
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
        // A scaled branch: alpha N_l D_l, folded into D_l.
        for (i, h) in self.hidden.iter().enumerate() {
            if let Some(alpha) = &h.branch {
                ws.d[i].iter_mut().for_each(|d| *d *= alpha[m]);
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

impl Host {
    /// `d h_(L-1) / d h_1` of the example [`Host::fill`] left in `ws`: `P = I`, then
    /// `P <- S_l P + W_l N_l D_l P` for l = L-1 .. 2 (`ws.d` holds a scaled branch's
    /// alpha already).
    fn chain(&self, weights: &[DMatrix<f64>], ws: &Workspace) -> Option<DMatrix<f64>> {
        let last = self.hidden.last()?;
        let mut p = DMatrix::<f64>::identity(last.units, last.units);
        let mut q = DMatrix::zeros(0, 0);
        for i in (1..self.hidden.len()).rev() {
            apply_nd(&ws.d[i], &ws.xhat[i], &p, &mut q);
            let mut next = &weights[i - 1] * &q;
            if self.hidden[i].skip {
                next += &p;
            }
            p = next;
        }
        Some(p)
    }
}

/// `out = w q (+ add)`, column by column, each entry summed in the order of `w`'s
/// columns with one rounding per product and per sum: the arithmetic the reports' network
/// spectra were computed with (nalgebra's `gemm` rounds differently in the last bits,
/// which moved a tenth of the logged spectra by up to 4e-16 of the largest value).
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
    /// Jacobian `slot` of the example: J_(slot+1) for a hidden layer, M after them.
    fn slot(&self, slot: usize) -> &DMatrix<f64> {
        self.layers.get(slot).unwrap_or(&self.network)
    }

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
            model: vgrad_record::Architecture::Mlp,
            input: INPUT,
            width: 4,
            layers: 4,
            classes: 3,
            activation,
            init: Init::GlorotNormal,
            bias_variance: 0.0,
            norm,
            residual,
            branch_scale: vgrad_record::BranchScale::One,
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
            if cfg.has_learned_branch(l) {
                // Away from SkipInit's 0, and different per member.
                let gain = &vars[&MlpConfig::branch_gain_name(l)];
                gain.set(&wavy(gain, 0.4, 0.5, 1.0 + l as f64)).unwrap();
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

    /// Singular values of `j` by one-sided Jacobi (Hestenes 1958), an oracle independent
    /// of nalgebra's bidiagonalisation and QR: rotating pairs of columns of the taller of
    /// `j` and `jᵀ` until every pair is orthogonal leaves the singular values as the
    /// columns' norms, each accurate to a few eps of the largest.
    fn jacobi_singular_values(j: &DMatrix<f64>) -> Vec<f64> {
        let a = if j.nrows() >= j.ncols() {
            j.clone()
        } else {
            j.transpose()
        };
        // Scaled to a largest entry of 1, so that no square overflows or underflows.
        let scale = a.amax();
        if scale == 0.0 {
            return vec![0.0; a.ncols()];
        }
        let mut cols: Vec<Vec<f64>> = a
            .column_iter()
            .map(|c| c.iter().map(|x| x / scale).collect())
            .collect();
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
        for _ in 0..100 {
            let mut rotated = false;
            for p in 0..cols.len() {
                for q in p + 1..cols.len() {
                    let (alpha, beta) = (dot(&cols[p], &cols[p]), dot(&cols[q], &cols[q]));
                    let gamma = dot(&cols[p], &cols[q]);
                    if gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                        continue;
                    }
                    rotated = true;
                    let zeta = (beta - alpha) / (2.0 * gamma);
                    let t = zeta.signum() / (zeta.abs() + zeta.hypot(1.0));
                    let c = 1.0 / t.hypot(1.0);
                    let s = c * t;
                    let (left, right) = cols.split_at_mut(q);
                    for (x, y) in left[p].iter_mut().zip(right[0].iter_mut()) {
                        (*x, *y) = (c * *x - s * *y, s * *x + c * *y);
                    }
                }
            }
            if !rotated {
                break;
            }
        }
        cols.iter().map(|c| dot(c, c).sqrt() * scale).collect()
    }

    /// The mean, smallest and largest of `values`.
    fn summary(values: &[f64]) -> Spectrum {
        Spectrum {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// Singular values' mean, min and max of `j` by the Jacobi oracle.
    fn reference(j: &DMatrix<f64>) -> Spectrum {
        summary(&jacobi_singular_values(j))
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
            model: vgrad_record::Architecture::Mlp,
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

    /// Every layer's units, and a zero f64 tap `[k, e, units]` per layer, as variables and
    /// as the tensors the evaluation pass takes.
    fn zero_taps(mlp: &Mlp, k: usize, e: usize) -> (Vec<usize>, Vec<Var>, Vec<Tensor>) {
        let units: Vec<usize> = (1..=mlp.depth())
            .map(|l| mlp.layer(l).unwrap().weight().dim(2).unwrap())
            .collect();
        let taps: Vec<Var> = units
            .iter()
            .map(|&n| Var::zeros((k, e, n), DType::F64, &Device::Cpu).unwrap())
            .collect();
        let tensors = taps.iter().map(|v| v.as_tensor().clone()).collect();
        (units, taps, tensors)
    }

    /// `d h_(L-1) / d h_1` by central differences: h_1 moved by ±H along unit i is z_2
    /// moved by ±H times row i of W_2 (a plain network), added through z_2's tap.
    fn chain_by_finite_differences(mlp: &Mlp, x: &Tensor) -> Vec<Vec<DMatrix<f64>>> {
        const H: f64 = 1e-6;
        let (k, e, _) = x.dims3().unwrap();
        let depth = mlp.depth();
        let (units, taps, tensors) = zero_taps(mlp, k, e);
        let (first, last) = (units[0], units[depth - 2]);
        let mut out = vec![vec![DMatrix::zeros(first, last); e]; k];
        let moved = |i: usize, delta: f64| {
            let n2 = units[1];
            let mut values = vec![0.0; k * e * n2];
            for m in 0..k {
                let w2 = weight(mlp, 2, m);
                for b in 0..e {
                    for c in 0..n2 {
                        values[(m * e + b) * n2 + c] = delta * w2[(i, c)];
                    }
                }
            }
            taps[1]
                .set(&Tensor::from_vec(values, (k, e, n2), &Device::Cpu).unwrap())
                .unwrap();
            let trace = mlp.forward_eval_traced(x, Some(&tensors)).unwrap();
            taps[1].set(&taps[1].zeros_like().unwrap()).unwrap();
            trace.activations[depth - 2].to_vec3::<f64>().unwrap()
        };
        for i in 0..first {
            let (up, down) = (moved(i, H), moved(i, -H));
            for m in 0..k {
                for b in 0..e {
                    for c in 0..last {
                        out[m][b][(i, c)] = (up[m][b][c] - down[m][b][c]) / (2.0 * H);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_hidden_chain_matches_finite_differences_and_its_svd_the_jacobi_oracle() {
        for norm in [Norm::None, Norm::Layer] {
            let cfg = MlpConfig {
                width: 5,
                layers: 6,
                ..config(Activation::Tanh, norm, false)
            };
            let mlp = model(&cfg, &[5, 6]);
            let x = inputs(2, 3, 0.4);
            let numeric = chain_by_finite_differences(&mlp, &x);
            let chains = hidden_chains(&mlp, &x).unwrap();
            let values = chain_singular_values(&mlp, &x).unwrap();
            // The probe's spectra pool the same values, example after example, from the
            // batched SVD (these chains are 5 x 5): equal to rounding.
            let spectra = jacobian_spectra(&mlp, &x).unwrap();
            for (m, member) in spectra.iter().enumerate() {
                let nalgebra = values[m].concat();
                assert_eq!(member.chain.len(), nalgebra.len(), "{norm:?} member {m}");
                for (batched, reference) in member.chain.iter().zip(&nalgebra) {
                    let tolerance = 1e-12 * nalgebra[0];
                    assert!(
                        (batched - reference).abs() <= tolerance,
                        "{norm:?} member {m}: {batched} against {reference}"
                    );
                }
            }
            for m in 0..2 {
                for b in 0..3 {
                    let chain = chains[m][b].as_ref().unwrap();
                    let what = format!("{norm:?} member {m} example {b}");
                    assert_matrix(&what, chain, &numeric[m][b], 1e-6);
                    let mut oracle = jacobi_singular_values(chain);
                    oracle.sort_by(|a, b| b.total_cmp(a));
                    assert_eq!(values[m][b].len(), 5);
                    for (got, want) in values[m][b].iter().zip(&oracle) {
                        assert!((got - want).abs() < 1e-12, "{what}: {got} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_deep_linear_orthogonal_chain_is_an_isometry_times_the_gains() {
        let gain = 1.1;
        let cfg = MlpConfig {
            width: 6,
            layers: 8,
            init: Init::Orthogonal { gain },
            ..config(Activation::Linear, Norm::None, false)
        };
        let mlp = model(&cfg, &[2]);
        let values = chain_singular_values(&mlp, &inputs(1, 2, 0.3)).unwrap();
        // Hidden layers 2..=7 each multiply by gain times an orthogonal matrix.
        for v in values[0].iter().flatten() {
            assert!((v - gain.powi(6)).abs() < 1e-6, "{v}");
        }
        // One hidden layer: the identity; none: no chain.
        let one = MlpConfig {
            layers: 2,
            ..config(Activation::Tanh, Norm::None, false)
        };
        let values = chain_singular_values(&model(&one, &[1]), &inputs(1, 1, 0.0)).unwrap();
        assert_eq!(values[0][0], vec![1.0; 4]);
        let none = MlpConfig {
            layers: 1,
            ..config(Activation::Tanh, Norm::None, false)
        };
        let values = chain_singular_values(&model(&none, &[1]), &inputs(1, 1, 0.0)).unwrap();
        assert!(values[0][0].is_empty());
    }

    #[test]
    fn deep_linear_network_jacobians_are_the_weights_and_their_product() {
        for (width, layers) in [(5, 5), (1, 3), (7, 2)] {
            let cfg = MlpConfig {
                model: vgrad_record::Architecture::Mlp,
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
    fn a_rotated_diagonal_gives_its_diagonal_and_nans_for_what_cannot_be_measured() {
        // A rotation times diag(3, 1, 0.5): singular values 3, 1 and 0.5.
        let (c, s) = (0.6, 0.8);
        let rotation = DMatrix::from_row_slice(3, 3, &[c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]);
        let j =
            rotation * DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![3.0, 1.0, 0.5]));
        let got = spectrum(&j);
        assert!((got.mean - 1.5).abs() < 1e-12 && (got.min - 0.5).abs() < 1e-12);
        assert!((got.max - 3.0).abs() < 1e-12, "{got:?}");
        let mut broken = j.clone();
        broken[(1, 2)] = f64::NAN;
        let none = spectrum(&broken);
        assert!(none.mean.is_nan() && none.min.is_nan() && none.max.is_nan());
        assert!(spectrum(&DMatrix::zeros(0, 3)).mean.is_nan());
    }

    /// An orthogonal `n x n` matrix: the product of three Householder reflections
    /// `I - 2 v vᵀ / vᵀv` of random `v`, each orthogonal in closed form.
    fn orthogonal(n: usize, uniform: &mut impl FnMut() -> f64) -> DMatrix<f64> {
        let mut q = DMatrix::identity(n, n);
        for _ in 0..3 {
            let v = nalgebra::DVector::from_fn(n, |_, _| uniform());
            let norm2 = v.norm_squared();
            if norm2 > 0.0 {
                q -= (&q * &v) * (v.transpose() * (2.0 / norm2));
            }
        }
        q
    }

    #[test]
    fn singular_values_match_matrices_built_from_them() {
        // A xorshift generator: uniform entries in [-1, 1).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let shapes = [
            (1, 1),
            (1, 5),
            (5, 1),
            (3, 2),
            (2, 3),
            (4, 4),
            (10, 10),
            (13, 7),
            (7, 13),
            (49, 49),
            (60, 50),
            (12, 120),
        ];
        let mut checked = 0;
        for (rows, cols) in shapes {
            let k = rows.min(cols);
            for kind in 0..7 {
                // U diag(s) Vᵀ with U, V orthogonal has singular values |s|.
                let s: Vec<f64> = (0..k)
                    .map(|i| match kind {
                        // Graded, from 2 down to 2e-12 (in steps of 10 at k = 13).
                        1 => 2.0 * 10f64.powf(-12.0 * i as f64 / (k.max(2) - 1) as f64),
                        // Rank-deficient: every other one zero (a dead unit's row).
                        2 => (i % 2) as f64 * (1.0 + uniform().abs()),
                        // All equal, signs mixed.
                        3 => 2.0 * if i % 3 == 0 { -1.0 } else { 1.0 },
                        // Zero.
                        4 => 0.0,
                        5 => (0.1 + uniform().abs()) * 1e-200,
                        6 => (0.1 + uniform().abs()) * 1e200,
                        _ => 0.1 + 2.0 * uniform().abs(),
                    })
                    .collect();
                let u = orthogonal(rows, &mut uniform);
                let v = orthogonal(cols, &mut uniform);
                let sigma = DMatrix::from_fn(rows, cols, |i, j| if i == j { s[i] } else { 0.0 });
                let m = u * sigma * v.transpose();
                let want = summary(&s.iter().map(|x| x.abs()).collect::<Vec<_>>());
                // The construction's own rounding is a few eps of the largest value.
                let tol = 1e-13 * want.max;
                let mut spectra = Spectra::default();
                spectra.push(&m);
                let batched = spectra.solve().unwrap().next().unwrap();
                for (how, got) in [
                    ("batch", batched),
                    ("nalgebra", spectrum(&m)),
                    ("Jacobi", reference(&m)),
                ] {
                    for (name, g, w) in [
                        ("mean", got.mean, want.mean),
                        ("min", got.min, want.min),
                        ("max", got.max, want.max),
                    ] {
                        assert!(
                            (g - w).abs() <= tol,
                            "{how}, {rows}x{cols} kind {kind} {name}: {g} vs {w}"
                        );
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, shapes.len() * 7);
    }

    #[test]
    fn a_single_layer_network_has_no_spectrum() {
        let cfg = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            layers: 1,
            ..config(Activation::Tanh, Norm::None, false)
        };
        let mlp = model(&cfg, &[1]);
        let spectra = jacobian_spectra(&mlp, &inputs(1, 2, 0.0)).unwrap();
        assert_eq!(
            spectra,
            vec![MemberSpectra {
                layers: vec![],
                network: None,
                chain: vec![],
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
        let (units, taps, tensors) = zero_taps(mlp, k, e);
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
            model: vgrad_record::Architecture::Mlp,
            layers: 5,
            ..config(Activation::Tanh, Norm::None, true)
        };
        check_against_finite_differences(model(&cfg, &[11, 12]));
    }

    #[test]
    fn residual_gelu_layer_norm_matches_finite_differences() {
        let cfg = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            layers: 5,
            ..config(Activation::Gelu, Norm::Layer, true)
        };
        check_against_finite_differences(model(&cfg, &[11, 12]));
    }

    #[test]
    fn scaled_and_learned_branches_match_finite_differences() {
        let scaled = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            layers: 5,
            branch_scale: vgrad_record::BranchScale::InverseSqrtDepth,
            ..config(Activation::Tanh, Norm::None, true)
        };
        check_against_finite_differences(model(&scaled, &[11, 12]));
        let learned = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            layers: 5,
            branch_scale: vgrad_record::BranchScale::SkipInit,
            ..config(Activation::Gelu, Norm::Layer, true)
        };
        check_against_finite_differences(model(&learned, &[11, 12]));
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
                model: vgrad_record::Architecture::Mlp,
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
