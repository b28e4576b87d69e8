//! The vanilla RNN's Jacobians through time and their bound (Pascanu, Mikolov & Bengio
//! 2013, "On the difficulty of training recurrent neural networks", section 2.1), as plain
//! f64 functions over row-major matrices, for the report to set beside the measured
//! per-step factor of the probe through time.
//!
//! # The Jacobian in vgrad's row-vector layout
//!
//! vgrad's RNN reads a row vector: h_t = f(a_t), a_t = x_t W_x + b_x + h_(t-1) W_h + b_h,
//! with W_h `[hidden, hidden]` (PyTorch's `weight_hh` transposed). Entry by entry,
//! d h_(t,j) / d h_(t-1,i) = `W_h[i][j]` f'(a_(t,j)), so
//!
//! - a perturbation of h_(t-1), a row vector, moves h_t by
//!   dh_t = dh_(t-1) W_h diag(f'(a_t)): the matrix acting on row vectors from the right is
//!   **J_t = W_h diag(f'(a_t))** ([`rnn_step_jacobian`]);
//! - the Jacobian of the usual column convention, [d h_(t,j) / d h_(t-1,i)] indexed
//!   (j, i), is its transpose diag(f'(a_t)) W_h^T: the paper's W_rec^T diag(sigma'(x_k))
//!   up to the transposition of the weight, which PyTorch's and the paper's column layout
//!   carry and vgrad's row layout does not;
//! - the back-propagated error, a row vector too, goes back as
//!   dC/dh_(t-1) = dC/dh_t J_t^T = dC/dh_t diag(f'(a_t)) W_h^T (plus what the loss reads
//!   of h_(t-1) directly, nothing where only the last state is read out).
//!
//! A matrix and its transpose share their singular values, so every norm below is the
//! same in either convention.
//!
//! # The bound
//!
//! ||J_t|| <= ||W_h|| ||diag(f'(a_t))|| <= sigma_max(W_h) gamma, with gamma the largest
//! |f'| ([`Activation::max_derivative`]: 1 for tanh and ReLU). Where the loss reads only
//! h_T, ||dC/dh_1|| <= ||dC/dh_T|| prod_(t=2..T) ||J_t|| <= ||dC/dh_T|| (sigma_max gamma)^(T-1)
//! for each example, so the measured per-step factor (||dC/dh_1|| / ||dC/dh_T||)^(1/(T-1))
//! is at most the geometric mean of the actual per-step norms, which is at most
//! sigma_max gamma: sigma_max < 1 / gamma suffices for the error to vanish (the paper's
//! sufficient condition), and sigma_max > 1 / gamma is necessary for it to explode.
//!
//! Norms are spectral (the largest singular value), computed by the cyclic Jacobi method
//! on the Gram matrix (Golub & Van Loan, "Matrix Computations", section 8.5), which
//! needs no linear-algebra library and is accurate to a few ulps of the largest
//! eigenvalue.

use vgrad_record::Activation;

/// What the functions of this module refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecurrentTheoryError {
    /// Slices whose lengths disagree with the shapes given.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A matrix or derivative with a NaN or an infinity, whose norm is not defined.
    #[error("{0} holds a value that is not finite")]
    NotFinite(&'static str),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, RecurrentTheoryError>;

/// Sweeps of the cyclic Jacobi method before it gives up converging: it converges
/// quadratically, in well under 20 sweeps for the matrices of this study; the cap only
/// bounds the work on pathological input.
const MAX_SWEEPS: usize = 100;

fn check_len(what: &str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(RecurrentTheoryError::Shape(format!(
            "{what} has {len} values, expected {expected}"
        )))
    }
}

fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(RecurrentTheoryError::NotFinite(what))
    }
}

/// J_t = W_h diag(f'(a_t)), `[hidden, hidden]` row-major, the matrix by which a
/// perturbation of h_(t-1), as a row vector, multiplies to give that of h_t:
/// `J[i][j] = W_h[i][j]` f'(a_(t,j)) = d h_(t,j) / d h_(t-1,i) (see the module's doc for
/// the column convention, its transpose).
///
/// `w_h` is `[hidden, hidden]` row-major, `deriv` the `hidden` values f'(a_(t,j)) of one
/// example at step t.
pub fn rnn_step_jacobian(w_h: &[f64], hidden: usize, deriv: &[f64]) -> Result<Vec<f64>> {
    check_len("W_h", w_h.len(), hidden * hidden)?;
    check_len("f'(a_t)", deriv.len(), hidden)?;
    Ok(w_h
        .chunks_exact(hidden.max(1))
        .flat_map(|row| row.iter().zip(deriv).map(|(w, d)| w * d))
        .collect())
}

/// The eigenvalues of the symmetric `n x n` row-major matrix `a`, in no particular order,
/// by the cyclic Jacobi method: rotations in every (p, q) plane in turn, each zeroing the
/// entry (p, q), until the off-diagonal mass is below f64's resolution of the diagonal.
fn symmetric_eigenvalues(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    let norm_sq: f64 = a.iter().map(|v| v * v).sum();
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..n)
            .flat_map(|p| (p + 1..n).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q].powi(2))
            .sum();
        if off <= f64::EPSILON.powi(2) * norm_sq * 1e-2 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation (c, s) that zeroes B = R^T A R at (p, q), with the smaller
                // of the two angles that do (Golub & Van Loan, section 8.5.2).
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + theta.hypot(1.0));
                let c = 1.0 / t.hypot(1.0);
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| a[i * n + i]).collect()
}

/// sigma_max(M), the largest singular value (the spectral norm) of the `rows x cols`
/// row-major matrix `m`: the root of the largest eigenvalue of the smaller of M^T M and
/// M M^T. 0 for an empty matrix. Costs O(n^3) for n = min(rows, cols).
pub fn max_singular_value(m: &[f64], rows: usize, cols: usize) -> Result<f64> {
    check_len("the matrix", m.len(), rows * cols)?;
    check_finite("the matrix", m)?;
    if rows == 0 || cols == 0 {
        return Ok(0.0);
    }
    // The Gram matrix of the smaller side: G = M^T M (cols x cols) or M M^T (rows x rows).
    let (n, entry): (usize, Box<dyn Fn(usize, usize) -> f64>) = if cols <= rows {
        (
            cols,
            Box::new(|i, j| (0..rows).map(|r| m[r * cols + i] * m[r * cols + j]).sum()),
        )
    } else {
        (
            rows,
            Box::new(|i, j| (0..cols).map(|c| m[i * cols + c] * m[j * cols + c]).sum()),
        )
    };
    let mut gram = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let v = entry(i, j);
            gram[i * n + j] = v;
            gram[j * n + i] = v;
        }
    }
    let largest = symmetric_eigenvalues(gram, n)
        .into_iter()
        .fold(0.0f64, f64::max);
    Ok(largest.sqrt())
}

/// gamma, the bound of |f'| in Pascanu et al. 2013's ||J_t|| <= sigma_max(W_h) gamma: 1
/// for tanh and ReLU (the paper's 1 for tanh, 1/4 for sigmoid).
pub fn derivative_bound(activation: Activation) -> f64 {
    activation.max_derivative()
}

/// The bound on the norm of one step's Jacobian, sigma_max(W_h) gamma, for `w_h`
/// `[hidden, hidden]` row-major.
pub fn step_norm_bound(w_h: &[f64], hidden: usize, gamma: f64) -> Result<f64> {
    Ok(max_singular_value(w_h, hidden, hidden)? * gamma)
}

/// The product of per-step norms, and its geometric mean per step, computed in logs so
/// that a product below f64's smallest number still has its per-step mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormProduct {
    /// prod_t ||J_t|| (0 where it underflows, or where some step's norm is 0).
    pub product: f64,
    /// (prod_t ||J_t||)^(1/n) over the n factors: comparable with the measured per-step
    /// factor (NaN for no factor).
    pub per_step: f64,
}

impl NormProduct {
    /// The product of `norms` (each at least 0).
    pub fn of(norms: &[f64]) -> Self {
        if norms.is_empty() {
            return Self {
                product: 1.0,
                per_step: f64::NAN,
            };
        }
        let log: f64 = norms.iter().map(|n| n.ln()).sum();
        Self {
            product: log.exp(),
            per_step: (log / norms.len() as f64).exp(),
        }
    }
}

/// The vanilla RNN's Jacobian norms over a sequence, against Pascanu et al. 2013's bound.
#[derive(Debug, Clone, PartialEq)]
pub struct JacobianProducts {
    /// T, the steps of the sequence; the products run over the T - 1 Jacobians
    /// dh_t/dh_(t-1), t = 2..=T, that carry the error from h_T back to h_1, the same span
    /// as the measured ratio ||dC/dh_T|| / ||dC/dh_1||.
    pub steps: usize,
    /// `norms[b][t - 2]` = ||J_t|| of example b, t = 2..=T.
    pub norms: Vec<Vec<f64>>,
    /// The product over the sequence of each example's norms.
    pub products: Vec<NormProduct>,
    /// The geometric mean of every example's and step's norm: the typical actual per-step
    /// norm (NaN for a single step).
    pub mean_per_step: f64,
    /// The largest per-step geometric mean over the examples: the batch's measured
    /// per-step factor is at most this (see the module's doc).
    pub max_per_step: f64,
    /// The bound per step, sigma_max(W_h) gamma.
    pub bound_per_step: f64,
    /// The bound over the sequence, (sigma_max(W_h) gamma)^(T-1).
    pub bound_product: f64,
}

/// The actual Jacobian norms ||W_h diag(f'(a_t))|| of every example and step of a
/// sequence, and the bound (sigma_max(W_h) gamma)^(T-1), from a trace's derivatives.
///
/// `w_h` is `[hidden, hidden]` row-major; `derivs[t - 1]` holds f'(a_t) of step t as
/// `[batch, hidden]` row-major (one member's), for t = 1..=T (step 1's is not used: the
/// Jacobian of h_1 with respect to the fixed h_0 carries no error back); `gamma` is
/// [`derivative_bound`] of the activation. Costs one O(hidden^3) norm per example and
/// step: pass a subset of the batch where that is too many.
pub fn jacobian_products(
    w_h: &[f64],
    hidden: usize,
    derivs: &[Vec<f64>],
    gamma: f64,
) -> Result<JacobianProducts> {
    check_len("W_h", w_h.len(), hidden * hidden)?;
    check_finite("W_h", w_h)?;
    let steps = derivs.len();
    if steps == 0 {
        return Err(RecurrentTheoryError::Shape(
            "a sequence needs at least 1 step".into(),
        ));
    }
    let width = hidden.max(1);
    let batch = derivs[0].len() / width;
    for (t, d) in derivs.iter().enumerate() {
        check_len(&format!("f'(a_{})", t + 1), d.len(), batch * hidden)?;
        check_finite("f'(a_t)", d)?;
    }
    let mut norms = vec![Vec::with_capacity(steps.saturating_sub(1)); batch];
    for d in &derivs[1..] {
        for (b, example) in d.chunks_exact(width).enumerate() {
            let j = rnn_step_jacobian(w_h, hidden, example)?;
            norms[b].push(max_singular_value(&j, hidden, hidden)?);
        }
    }
    let products: Vec<NormProduct> = norms.iter().map(|n| NormProduct::of(n)).collect();
    let all: Vec<f64> = norms.iter().flatten().copied().collect();
    let bound_per_step = step_norm_bound(w_h, hidden, gamma)?;
    Ok(JacobianProducts {
        steps,
        mean_per_step: NormProduct::of(&all).per_step,
        max_per_step: products.iter().map(|p| p.per_step).fold(f64::NAN, f64::max),
        bound_per_step,
        bound_product: bound_per_step.powi((steps - 1) as i32),
        products,
        norms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f64> {
        (0..n)
            .map(|_| std * Distribution::<f64>::sample(&StandardNormal, &mut *rng))
            .collect()
    }

    /// C = A B for `n x n` row-major matrices.
    fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                for j in 0..n {
                    c[i * n + j] += a[i * n + k] * b[k * n + j];
                }
            }
        }
        c
    }

    /// A random orthogonal matrix: the product of two Householder reflections
    /// I - 2 v v^T / (v^T v) (each orthogonal and symmetric; their product is not
    /// symmetric).
    fn orthogonal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
        let reflection = |v: &[f64]| {
            let vv: f64 = v.iter().map(|x| x * x).sum();
            let mut h = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] = f64::from(u8::from(i == j)) - 2.0 * v[i] * v[j] / vv;
                }
            }
            h
        };
        let (u, v) = (gaussian(rng, n, 1.0), gaussian(rng, n, 1.0));
        matmul(&reflection(&u), &reflection(&v), n)
    }

    #[test]
    fn singular_values_of_known_matrices() -> Result<()> {
        // A diagonal matrix: the largest |entry|.
        let d = [0.3, 0.0, 0.0, 0.0, -2.5, 0.0, 0.0, 0.0, 1.0];
        assert!((max_singular_value(&d, 3, 3)? - 2.5).abs() < 1e-14);
        // A rotation by 0.7 rad times 0.9: every singular value is 0.9.
        let (c, s) = (0.7f64.cos(), 0.7f64.sin());
        let r = [0.9 * c, -0.9 * s, 0.9 * s, 0.9 * c];
        assert!((max_singular_value(&r, 2, 2)? - 0.9).abs() < 1e-14);
        // A rank-one matrix u v^T: |u| |v|; wide and tall shapes.
        let (u, v) = ([1.0, 2.0], [3.0, 0.0, 4.0]);
        let outer: Vec<f64> = u.iter().flat_map(|a| v.map(|b| a * b)).collect();
        let want = 5f64.sqrt() * 5.0;
        assert!((max_singular_value(&outer, 2, 3)? - want).abs() < 1e-13);
        let outer_t: Vec<f64> = v.iter().flat_map(|b| u.map(|a| a * b)).collect();
        assert!((max_singular_value(&outer_t, 3, 2)? - want).abs() < 1e-13);
        assert_eq!(max_singular_value(&[], 0, 4)?, 0.0);
        assert!(matches!(
            max_singular_value(&[1.0, 2.0], 2, 2),
            Err(RecurrentTheoryError::Shape(_))
        ));
        assert!(matches!(
            max_singular_value(&[f64::NAN], 1, 1),
            Err(RecurrentTheoryError::NotFinite(_))
        ));
        Ok(())
    }

    /// sigma_max is the largest ||x M|| over unit x: no random direction exceeds it, and
    /// power iteration reaches it.
    #[test]
    fn the_largest_singular_value_is_the_largest_stretch() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [1, 2, 5, 16] {
            let m = gaussian(&mut rng, n * n, 1.0 / (n as f64).sqrt());
            let sigma = max_singular_value(&m, n, n)?;
            let stretch = |x: &[f64]| -> (f64, Vec<f64>) {
                let y: Vec<f64> = (0..n)
                    .map(|j| (0..n).map(|i| x[i] * m[i * n + j]).sum())
                    .collect();
                let len = x.iter().map(|v| v * v).sum::<f64>().sqrt();
                (y.iter().map(|v| v * v).sum::<f64>().sqrt() / len, y)
            };
            // Power iteration on M M^T from a random start.
            let mut x = gaussian(&mut rng, n, 1.0);
            let mut best = 0.0f64;
            for _ in 0..2000 {
                let (s, y) = stretch(&x);
                assert!(s <= sigma * (1.0 + 1e-12), "n {n}: {s} > {sigma}");
                best = best.max(s);
                // x <- M y (the row vector y M^T).
                x = (0..n)
                    .map(|i| (0..n).map(|j| m[i * n + j] * y[j]).sum())
                    .collect();
                let len = x.iter().map(|v| v * v).sum::<f64>().sqrt();
                x.iter_mut().for_each(|v| *v /= len);
            }
            assert!(
                (best - sigma).abs() <= 1e-9 * sigma,
                "n {n}: {best} vs {sigma}"
            );
        }
        Ok(())
    }

    /// The row-layout Jacobian moves h_t as the cell does: h_t(h + e) - h_t(h) = e J_t to
    /// first order, checked by central differences of tanh(h W_h + b).
    #[test]
    fn the_jacobian_acts_on_row_vectors_as_the_cell() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 4;
        let w = gaussian(&mut rng, n * n, 0.6);
        let b = gaussian(&mut rng, n, 0.3);
        let h = gaussian(&mut rng, n, 0.5);
        let cell = |h: &[f64]| -> Vec<f64> {
            (0..n)
                .map(|j| ((0..n).map(|i| h[i] * w[i * n + j]).sum::<f64>() + b[j]).tanh())
                .collect()
        };
        let deriv: Vec<f64> = cell(&h).iter().map(|y| 1.0 - y * y).collect();
        let jac = rnn_step_jacobian(&w, n, &deriv)?;
        let eps = 1e-6;
        for i in 0..n {
            let (mut up, mut down) = (h.clone(), h.clone());
            up[i] += eps;
            down[i] -= eps;
            let (yu, yd) = (cell(&up), cell(&down));
            for j in 0..n {
                let fd = (yu[j] - yd[j]) / (2.0 * eps);
                assert!((jac[i * n + j] - fd).abs() < 1e-9, "J[{i}][{j}]");
            }
        }
        Ok(())
    }

    /// ||W_h diag(f')|| <= sigma_max(W_h) gamma for random weights and derivatives of
    /// tanh (in (0, 1]) and ReLU (0 or 1), and the products over a sequence below the
    /// bound's.
    #[test]
    fn the_bound_holds_on_random_matrices() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for trial in 0..50 {
            let n = 1 + trial % 9;
            let w = gaussian(&mut rng, n * n, 1.5 / (n as f64).sqrt());
            let relu = trial % 2 == 0;
            let (batch, steps) = (3, 6);
            let derivs: Vec<Vec<f64>> = (0..steps)
                .map(|_| {
                    (0..batch * n)
                        .map(|_| {
                            let u: f64 = rng.random();
                            if relu {
                                f64::from(u8::from(u > 0.4))
                            } else {
                                u
                            }
                        })
                        .collect()
                })
                .collect();
            let gamma = derivative_bound(if relu {
                Activation::Relu
            } else {
                Activation::Tanh
            });
            assert_eq!(gamma, 1.0);
            let p = jacobian_products(&w, n, &derivs, gamma)?;
            let bound = p.bound_per_step * (1.0 + 1e-12);
            assert!(
                p.norms.iter().flatten().all(|&s| s <= bound),
                "trial {trial}"
            );
            assert_eq!(p.norms.len(), batch);
            assert!(p.norms.iter().all(|e| e.len() == steps - 1));
            assert!(p.max_per_step <= bound && p.mean_per_step <= p.max_per_step);
            assert!(
                p.products
                    .iter()
                    .all(|q| q.product <= p.bound_product * (1.0 + 1e-10))
            );
        }
        Ok(())
    }

    /// An orthogonal W_h with f' = 1 (linear, or ReLU where every unit is active) attains
    /// the bound at every step: every norm, the product and the per-step mean are 1 (the
    /// gain, for gain times an orthogonal matrix).
    #[test]
    fn an_orthogonal_weight_with_unit_derivatives_attains_the_bound() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (n, gain) in [(3, 1.0), (8, 1.0), (8, 0.5), (17, 1.2)] {
            let w: Vec<f64> = orthogonal(&mut rng, n).iter().map(|v| gain * v).collect();
            let steps = 30;
            let derivs = vec![vec![1.0; 2 * n]; steps];
            let p = jacobian_products(&w, n, &derivs, 1.0)?;
            assert!((p.bound_per_step - gain).abs() < 1e-12 * gain.max(1.0));
            for s in p.norms.iter().flatten() {
                assert!((s - p.bound_per_step).abs() < 1e-12, "n {n}: {s}");
            }
            let product = p.products[0].product;
            assert!((product / p.bound_product - 1.0).abs() < 1e-10, "n {n}");
            assert!((p.mean_per_step - gain).abs() < 1e-12, "n {n}");
        }
        Ok(())
    }

    #[test]
    fn per_step_means_survive_products_that_underflow() {
        let p = NormProduct::of(&vec![1e-5; 100]);
        assert_eq!(p.product, 0.0);
        assert!((p.per_step - 1e-5).abs() < 1e-18);
        assert!(NormProduct::of(&[]).per_step.is_nan());
        assert_eq!(NormProduct::of(&[0.5, 0.0]).per_step, 0.0);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let w = [1.0; 4];
        assert!(matches!(
            jacobian_products(&w, 2, &[], 1.0),
            Err(RecurrentTheoryError::Shape(_))
        ));
        assert!(matches!(
            jacobian_products(&w, 2, &[vec![1.0; 4], vec![1.0; 3]], 1.0),
            Err(RecurrentTheoryError::Shape(_))
        ));
        assert!(matches!(
            jacobian_products(&w, 2, &[vec![1.0; 4], vec![f64::NAN; 4]], 1.0),
            Err(RecurrentTheoryError::NotFinite(_))
        ));
        assert!(matches!(
            rnn_step_jacobian(&w, 3, &[1.0; 3]),
            Err(RecurrentTheoryError::Shape(_))
        ));
    }
}
