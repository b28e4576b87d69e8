//! Singular values of many small f64 matrices, computed together: Golub & Reinsch (1970)
//! without singular vectors, as EISPACK's `svd` — Householder bidiagonalisation of each
//! matrix, then implicit-shift QR on the bidiagonals.
//!
//! The method is backward stable: the singular values are those of a matrix within a few
//! `f64::EPSILON` of the one given, so each is accurate to about `f64::EPSILON` times the
//! largest (small ones lose relative accuracy, as with every such SVD). The tests check
//! them against matrices built as `U diag(s) Vᵀ` from known `s`, and against nalgebra's
//! SVD.
//!
//! Why it is written out rather than taken from nalgebra: the probe decomposes about a
//! hundred 10 x 10 Jacobians per member at every logged step, and nalgebra's SVD, at
//! about 5.5-8 µs per 10 x 10 matrix (most of it the overhead of small matrices and
//! waiting on chains of dependent divisions), more than doubled the Jacobian's cost per
//! logged step (97 µs to 212 µs) and put the probe over its cost target at the reference
//! logging (1.037 against at most 1.03 of a plain step; 1.029 with this code). Here four
//! matrices of one shape are bidiagonalised at once, lane by lane (with AVX2 where the CPU
//! has it), and [`SvdBatch::solve`] advances four bidiagonals' QR iterations in turn, one
//! rotation each, so that the processor overlaps their dependency chains. Every lane
//! computes exactly what it would compute alone: the values do not depend on what else is
//! queued, nor on whether AVX2 is used. Beyond about [`FASTEST_UP_TO`] singular values
//! nalgebra's SVD is the faster one.

use std::fmt;

/// Up to this many singular values (`min(rows, cols)`) per matrix, [`SvdBatch`] is faster
/// than nalgebra's SVD on one core (measured up to about 64 x 64); callers hand larger
/// matrices to nalgebra.
pub const FASTEST_UP_TO: usize = 48;

/// How many matrices are reduced, and diagonalised, at once.
const LANES: usize = 4;

/// One value per matrix of a group.
type Lanes = [f64; LANES];

/// The QR iteration's limit of sweeps per singular value (EISPACK allows 30).
const MAX_SWEEPS: usize = 75;

/// A queue of matrices whose singular values are computed together by
/// [`SvdBatch::solve`]. Consecutive matrices of one shape are reduced four at a time; the
/// values are the same however the matrices are queued.
#[derive(Debug, Default)]
pub struct SvdBatch {
    /// The group being filled: entry (i, j) of the tall copy of matrix `lane` (scaled to
    /// a largest entry of 1) at `a[i + j * m][lane]`.
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
    /// The group being filled, reduced when full, at a matrix of another shape, or at
    /// `solve`.
    group: Option<Group>,
    /// Whether `w` holds the singular values of every queued matrix.
    solved: bool,
}

/// One queued matrix.
#[derive(Debug, Clone, Copy)]
struct Problem {
    /// Where its bidiagonal starts in `w` and `rv1`.
    off: usize,
    /// How many singular values it has: min(rows, cols).
    n: usize,
    /// The largest absolute entry it was divided by; 0 for a zero matrix, NaN for a
    /// matrix with a non-finite entry (neither is decomposed).
    scale: f64,
}

/// The matrices of one shape being gathered into lanes.
#[derive(Debug, Clone, Copy)]
struct Group {
    /// The tall shape reduced: `m = max(rows, cols)`, `n = min(rows, cols)`.
    m: usize,
    n: usize,
    /// Lanes taken, and where each lane's bidiagonal goes (`None`: a matrix left out,
    /// whose lane stays zero).
    taken: usize,
    offs: [Option<usize>; LANES],
}

/// [`SvdBatch::solve`] gave up: the QR iteration of queued matrix `matrix` (counting from
/// 0 since the batch was last cleared) took more than 75 sweeps for one singular value.
/// Golub-Reinsch converges in about two per value on any matrix in exact arithmetic; this
/// is a guard against rounding cycling forever, and callers fall back to another SVD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotConverged {
    /// The index of the matrix, in the order it was queued.
    pub matrix: usize,
}

impl fmt::Display for NotConverged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the SVD of queued matrix {} took more than {MAX_SWEEPS} QR sweeps for one \
             singular value",
            self.matrix
        )
    }
}

impl std::error::Error for NotConverged {}

impl SvdBatch {
    /// An empty batch; its buffers grow to the largest group queued and are kept.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every queued matrix (keeping the buffers).
    pub fn clear(&mut self) {
        self.w.clear();
        self.rv1.clear();
        self.problems.clear();
        self.group = None;
        self.solved = false;
    }

    /// How many matrices are queued.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Whether no matrix is queued.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Queues the `rows x cols` matrix whose entry (i, j) is `values[i + j * rows]`. A
    /// batch already solved is cleared first.
    ///
    /// # Panics
    ///
    /// If `values` does not hold `rows * cols` entries.
    pub fn push_column_major(&mut self, rows: usize, cols: usize, values: &[f64]) {
        self.push(rows, cols, values, false);
    }

    /// Queues the `rows x cols` matrix whose entry (i, j) is `values[i * cols + j]`. Its
    /// singular values are those [`SvdBatch::push_column_major`] gives it, bit for bit.
    ///
    /// # Panics
    ///
    /// If `values` does not hold `rows * cols` entries.
    pub fn push_row_major(&mut self, rows: usize, cols: usize, values: &[f64]) {
        self.push(rows, cols, values, true);
    }

    /// Queues a matrix stored column- or row-major.
    fn push(&mut self, rows: usize, cols: usize, values: &[f64], row_major: bool) {
        assert_eq!(
            values.len(),
            rows * cols,
            "a {rows} x {cols} matrix has {} entries",
            rows * cols
        );
        if self.solved {
            self.clear();
        }
        // Work on a tall m x n copy (m >= n): the transpose has the same singular values.
        let (m, n) = (rows.max(cols), rows.min(cols));
        if self
            .group
            .is_some_and(|g| (g.m, g.n) != (m, n) || g.taken == LANES)
        {
            self.reduce_group();
        }
        let group = self.group.get_or_insert_with(|| {
            self.a.clear();
            self.a.resize(m * n, [0.0; LANES]);
            Group {
                m,
                n,
                taken: 0,
                offs: [None; LANES],
            }
        });
        let lane = group.taken;
        group.taken += 1;
        let off = self.w.len();
        self.w.resize(off + n, 0.0);
        self.rv1.resize(off + n, 0.0);
        // The largest absolute entry, NaN if some entry is not finite.
        let (largest, finite) = values.iter().fold((0f64, true), |(m, f), v| {
            let v = v.abs();
            (if v > m { v } else { m }, f & (v <= f64::MAX))
        });
        let scale = if finite { largest } else { f64::NAN };
        self.problems.push(Problem { off, n, scale });
        if n == 0 || scale == 0.0 || scale.is_nan() {
            // Left out: its lane stays zero, which the reduction leaves zero.
            return;
        }
        group.offs[lane] = Some(off);
        // Scaled to a largest entry of 1, so that `pythag` needs no guard against
        // overflow or underflow.
        let inv = 1.0 / scale;
        // The tall copy is the matrix where it has no more columns than rows (so a square
        // one gets the same copy however it is stored), its transpose otherwise: a plain
        // copy where that is the storage order, a transposing one elsewhere.
        let (in_order, stride) = if row_major {
            (rows < cols, cols)
        } else {
            (rows >= cols, rows)
        };
        if in_order {
            for (a, v) in self.a.iter_mut().zip(values) {
                a[lane] = v * inv;
            }
        } else {
            for (c, col) in values.chunks_exact(stride).enumerate() {
                for (r, &v) in col.iter().enumerate() {
                    self.a[c + r * m][lane] = v * inv;
                }
            }
        }
    }

    /// Reduces the group being filled to bidiagonals.
    fn reduce_group(&mut self) {
        let Some(Group { m, n, offs, .. }) = self.group.take() else {
            return;
        };
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

    /// The singular values of every queued matrix, in the order queued; a second call
    /// returns the same without computing again, and the next push starts a new batch.
    pub fn solve(&mut self) -> Result<Solved<'_>, NotConverged> {
        if !self.solved {
            self.reduce_group();
            let problems = self
                .problems
                .iter()
                .enumerate()
                .filter(|(_, p)| p.n > 0 && p.scale > 0.0)
                .map(|(i, p)| (i, p.off, p.n));
            diagonalise_interleaved(&mut self.w, &mut self.rv1, problems)
                .map_err(|matrix| NotConverged { matrix })?;
            for p in &self.problems {
                // A zero matrix's values stay 0 (0 * 0); a non-finite one's are not read.
                for v in &mut self.w[p.off..p.off + p.n] {
                    *v = v.abs() * p.scale;
                }
            }
            self.solved = true;
        }
        Ok(Solved { batch: self })
    }
}

/// The singular values of a solved [`SvdBatch`]'s matrices.
#[derive(Debug, Clone, Copy)]
pub struct Solved<'a> {
    batch: &'a SvdBatch,
}

impl<'a> Solved<'a> {
    /// How many matrices were queued.
    pub fn len(&self) -> usize {
        self.batch.problems.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.batch.problems.is_empty()
    }

    /// The `min(rows, cols)` singular values of queued matrix `i`, non-negative and in no
    /// particular order; `None` for a matrix with a non-finite entry (not decomposed).
    ///
    /// # Panics
    ///
    /// If `i` is not below [`Solved::len`].
    pub fn get(&self, i: usize) -> Option<&'a [f64]> {
        let p = self.batch.problems[i];
        (!p.scale.is_nan()).then(|| &self.batch.w[p.off..p.off + p.n])
    }

    /// Every queued matrix's singular values, in the order queued (see [`Solved::get`]).
    pub fn iter(self) -> impl ExactSizeIterator<Item = Option<&'a [f64]>> + 'a {
        (0..self.len()).map(move |i| self.get(i))
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

crate::with_cpu_feature! {
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
    /// Which queued matrix it is (for the error), and where its bidiagonal starts in `w`
    /// and `rv1`.
    matrix: usize,
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
    fn new((matrix, off, n): (usize, usize, usize), w: &[f64], rv1: &[f64]) -> Self {
        let anorm = w[off..off + n]
            .iter()
            .zip(&rv1[off..off + n])
            .fold(0f64, |s, (a, b)| s.max(a.abs() + b.abs()));
        Self {
            matrix,
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
            self.its += 1;
            if self.its > MAX_SWEEPS {
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

/// Diagonalises the bidiagonals `(matrix, off, n)` of `w` (diagonals) and `rv1`
/// (superdiagonals) in place, [`LANES`] at a time, one rotation of each in turn; `w` ends
/// holding the singular values up to sign. `Err(matrix)` for the first that needed more
/// than [`MAX_SWEEPS`] sweeps for a singular value.
fn diagonalise_interleaved(
    w: &mut [f64],
    rv1: &mut [f64],
    mut problems: impl Iterator<Item = (usize, usize, usize)>,
) -> Result<(), usize> {
    let mut lanes = [Lane::default(); LANES];
    let mut live = 0;
    for lane in lanes.iter_mut() {
        if let Some(problem) = problems.next() {
            *lane = Lane::new(problem, w, rv1);
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
                    Some(problem) => *lane = Lane::new(problem, w, rv1),
                    None => {
                        lane.active = false;
                        live -= 1;
                    }
                },
                None => return Err(lane.matrix),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};

    /// A xorshift generator: uniform entries in [-1, 1).
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }

    /// An orthogonal `n x n` matrix: the product of three Householder reflections
    /// `I - 2 v vᵀ / vᵀv` of random `v`, each orthogonal in closed form.
    fn orthogonal(n: usize, uniform: &mut impl FnMut() -> f64) -> DMatrix<f64> {
        let mut q = DMatrix::identity(n, n);
        for _ in 0..3 {
            let v = DVector::from_fn(n, |_, _| uniform());
            let norm2 = v.norm_squared();
            if norm2 > 0.0 {
                q -= (&q * &v) * (v.transpose() * (2.0 / norm2));
            }
        }
        q
    }

    /// The singular values of every matrix, queued in one batch (column-major).
    fn solve_all(matrices: &[DMatrix<f64>]) -> Vec<Option<Vec<f64>>> {
        let mut batch = SvdBatch::new();
        for m in matrices {
            batch.push_column_major(m.nrows(), m.ncols(), m.as_slice());
        }
        let solved = batch.solve().expect("converges");
        solved.iter().map(|s| s.map(<[f64]>::to_vec)).collect()
    }

    fn sorted(values: &[f64]) -> Vec<f64> {
        let mut v = values.to_vec();
        v.sort_by(|a, b| b.total_cmp(a));
        v
    }

    #[test]
    fn singular_values_are_those_the_matrices_were_built_from() {
        let mut uniform = uniform(0x9e37_79b9_7f4a_7c15);
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
            (48, 48),
            (60, 50),
            (12, 120),
        ];
        let (mut matrices, mut wanted) = (Vec::new(), Vec::new());
        for (rows, cols) in shapes {
            let k = rows.min(cols);
            for kind in 0..7 {
                // U diag(s) Vᵀ with U, V orthogonal has singular values |s|.
                let s: Vec<f64> = (0..k)
                    .map(|i| match kind {
                        // Graded, from 2 down to 2e-12.
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
                matrices.push(u * sigma * v.transpose());
                wanted.push(sorted(&s.iter().map(|x| x.abs()).collect::<Vec<_>>()));
            }
        }
        for ((m, got), want) in matrices.iter().zip(solve_all(&matrices)).zip(wanted) {
            let got = sorted(&got.expect("finite"));
            // The construction's own rounding is a few eps of the largest value.
            let tol = 1e-13 * want[0];
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol,
                    "{}x{} value {i}: {g} vs {w}",
                    m.nrows(),
                    m.ncols()
                );
            }
        }
    }

    #[test]
    fn singular_values_match_nalgebras_svd_however_they_are_queued() {
        let mut uniform = uniform(0x2545_f491_4f6c_dd1d);
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
                        _ => {}
                    }
                    matrices.push(m);
                }
            }
        }
        for (rows, cols) in [(48, 48), (49, 49), (60, 50), (50, 60), (100, 12)] {
            for _ in 0..5 {
                matrices.push(DMatrix::from_fn(rows, cols, |_, _| uniform()));
            }
        }
        let together = solve_all(&matrices);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut batch = SvdBatch::new();
        for (m, got) in matrices.iter().zip(&together) {
            let got = got.as_ref().expect("finite");
            let want = m.singular_values();
            let tol = 1e-13 * want[0];
            for (i, (g, w)) in sorted(got).iter().zip(want.iter()).enumerate() {
                assert!(
                    (g - w).abs() <= tol,
                    "{}x{} value {i}: {g} vs {w}\n{m}",
                    m.nrows(),
                    m.ncols()
                );
            }
            // Alone, and as the row-major transpose: the same bits as among the others.
            batch.push_column_major(m.nrows(), m.ncols(), m.as_slice());
            let alone = batch.solve().unwrap().get(0).unwrap().to_vec();
            assert_eq!(bits(&alone), bits(got), "{}x{}", m.nrows(), m.ncols());
            let t = m.transpose();
            batch.push_row_major(m.nrows(), m.ncols(), t.as_slice());
            assert_eq!(batch.len(), 1, "a push after solve starts a new batch");
            let row_major = batch.solve().unwrap().get(0).unwrap().to_vec();
            assert_eq!(bits(&row_major), bits(got), "{}x{}", m.nrows(), m.ncols());
        }
    }

    #[test]
    fn a_non_finite_matrix_is_left_out_without_disturbing_its_neighbours() {
        let mut uniform = uniform(7);
        let good = DMatrix::from_fn(4, 3, |_, _| uniform());
        let mut bad = good.clone();
        bad[(0, 0)] = f64::INFINITY;
        let mut nan = good.clone();
        nan[(3, 2)] = f64::NAN;
        let zero = DMatrix::zeros(4, 3);
        let empty = DMatrix::zeros(0, 3);
        let got = solve_all(&[
            good.clone(),
            bad,
            good.clone(),
            nan,
            zero,
            empty,
            good.clone(),
        ]);
        let alone = solve_all(std::slice::from_ref(&good))[0].clone().unwrap();
        for i in [0, 2, 6] {
            assert_eq!(got[i].as_deref(), Some(alone.as_slice()), "matrix {i}");
        }
        assert_eq!(got[1], None);
        assert_eq!(got[3], None);
        assert_eq!(got[4], Some(vec![0.0; 3]));
        assert_eq!(got[5], Some(vec![]));
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
            if !std::arch::is_x86_feature_detected!("avx2") {
                eprintln!("no AVX2 on this CPU: both runs take the portable path");
            }
            assert_eq!(run(true), run(false), "{m} x {n}");
        }
    }

    #[test]
    fn the_error_names_the_matrix() {
        let error = NotConverged { matrix: 3 };
        assert_eq!(
            error.to_string(),
            "the SVD of queued matrix 3 took more than 75 QR sweeps for one singular value"
        );
    }
}
