//! Expectations over a normal distribution, which every mean-field map is: Gauss–Hermite
//! quadrature for smooth integrands at unit scale, and [`expect_normal`], on panels, for
//! an activation's kink at 0 and for any variance.

use std::sync::LazyLock;

/// The node count of [`GaussHermite::standard`].
///
/// Even, so that no node sits at 0, where the ReLU family has its kink: the nodes pair up
/// as +-x, and E[1{Z > 0}] is exactly half the weight, which makes ReLU's expectations
/// exact. Smooth integrands at unit scale are exact to rounding by 200: against a fine
/// Simpson integration, E[tanh(Z)^2] and E[tanh'(Z)^2] are off by 1e-12 (relative) with
/// 150 nodes and by 4e-14 with 200. The other kinks at 0 are not: with 200 nodes ELU's
/// E[phi(Z)^2] and E[phi'(Z)^2] still err by 2e-3, SELU's by 5e-3 and softsign's by 3e-2,
/// and the error shrinks only as 1/n. Nor is a feature narrower than the node spacing:
/// E[tanh'(sqrt(q) Z)^2] errs by 1e-3 at q = 10 and by 60% at q = 100. Hence
/// [`expect_normal`] for the mean-field maps.
pub const DEFAULT_NODES: usize = 200;

/// The n-point rule for E[f(Z)], Z ~ N(0, 1): E[f(Z)] ≈ Σ w_i f(x_i), exact for
/// polynomials of degree below 2n. The weights sum to 1 (the probabilists' form).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussHermite {
    /// Ascending, symmetric about 0.
    nodes: Vec<f64>,
    /// `weights[i]` belongs to `nodes[i]`.
    weights: Vec<f64>,
}

static STANDARD: LazyLock<GaussHermite> = LazyLock::new(|| GaussHermite::new(DEFAULT_NODES));

impl GaussHermite {
    /// The rule with `n` nodes (at least 1: `n = 0` gives the 1-node rule, f(0)).
    ///
    /// The nodes are the zeros of the n-th Hermite polynomial: Newton's method on the
    /// orthonormal recurrence (which stays in range where the monic one overflows) from
    /// the first guesses of Numerical Recipes' `gauher`, kept on the wanted zero by a
    /// Sturm-sequence bisection, since from those guesses alone Newton lands on the wrong
    /// zero from n = 200 or so on.
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        // Physicists' nodes t (weight e^{-t^2}); x = sqrt(2) t and w / sqrt(pi) turn them
        // into the probabilists' rule.
        let mut t = vec![0.0; n];
        let mut w = vec![0.0; n];
        let half = n.div_ceil(2);
        let nf = n as f64;
        let mut z = 0.0;
        for i in 0..half {
            // The i-th largest zero. First guesses from the asymptotics (the largest) and
            // by extrapolating the zeros found; good, but for large n not good enough for
            // bare Newton, which can jump to a neighbouring zero.
            z = match i {
                0 => (2.0 * nf + 1.0).sqrt() - 1.855_75 * (2.0 * nf + 1.0).powf(-0.166_67),
                1 => z - 1.14 * nf.powf(0.426) / z,
                2 => 1.86 * z - 0.86 * t[0],
                3 => 1.91 * z - 0.91 * t[1],
                _ => 2.0 * z - t[i - 2],
            };
            if n % 2 == 1 && i == half - 1 {
                // An odd rule's middle zero is exactly 0: H_n is odd.
                z = 0.0;
            } else {
                let hi = if i == 0 {
                    // Every zero lies below sqrt(2n + 1).
                    (2.0 * nf + 1.0).sqrt() + 1.0
                } else {
                    t[i - 1]
                };
                z = zero(n, i, z, hi);
            }
            let (_, p_prev, log_scale, _) = hermite(n, z);
            // w = 1 / (n p_{n-1}(t)^2), assembled in logarithms: p_{n-1} overflows at
            // the outer nodes of large rules.
            let log_w = -(nf.ln() + 2.0 * (p_prev.abs().ln() + log_scale));
            let weight = (log_w - 0.5 * std::f64::consts::PI.ln()).exp();
            // In this order an odd rule's middle node is +0, not -0.
            t[n - 1 - i] = -z;
            t[i] = z;
            w[i] = weight;
            w[n - 1 - i] = weight;
        }
        let nodes = t
            .iter()
            .rev()
            .map(|t| t * std::f64::consts::SQRT_2)
            .collect();
        w.reverse();
        Self { nodes, weights: w }
    }

    /// The shared rule of [`DEFAULT_NODES`] nodes, computed once.
    pub fn standard() -> &'static Self {
        &STANDARD
    }

    /// E[f(Z)] for Z ~ N(0, 1).
    ///
    /// Summed in mirror pairs from the tails inward: the small terms first, for accuracy,
    /// and f and its mirror image f(-z) give bit-identical sums.
    pub fn expect(&self, f: impl Fn(f64) -> f64) -> f64 {
        let n = self.nodes.len();
        let pairs: f64 = (0..n / 2)
            .map(|i| self.weights[i] * (f(self.nodes[i]) + f(self.nodes[n - 1 - i])))
            .sum();
        if n % 2 == 1 {
            pairs + self.weights[n / 2] * f(self.nodes[n / 2])
        } else {
            pairs
        }
    }

    /// The nodes, ascending and symmetric about 0.
    pub fn nodes(&self) -> &[f64] {
        &self.nodes
    }

    /// The weights, in the order of [`GaussHermite::nodes`]; they sum to 1.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true (a rule has at least one node); here because `len` is.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl Default for GaussHermite {
    fn default() -> Self {
        Self::standard().clone()
    }
}

/// The order of the Gauss–Legendre rule on each panel of [`expect_normal`].
const PANEL_ORDER: usize = 16;

/// [`expect_normal`]'s Gaussian cut-off, in standard deviations: the mass beyond is below
/// 1e-32.
const TAIL_SDS: i32 = 12;

static PANEL_RULE: LazyLock<(Vec<f64>, Vec<f64>)> = LazyLock::new(|| gauss_legendre(PANEL_ORDER));

/// E[g(X)] for X ~ N(mean, variance), at any variance, for a `g` that is smooth except
/// at 0, varies on a scale of about 1 near 0 and ever more slowly away from it (on a scale
/// of about |x| at x): an activation or its derivative, squared or times another.
///
/// Gauss–Hermite cannot do this: its error decays only algebraically for an integrand
/// with a kink (ELU's and softsign's derivative, SELU's, are kinked at 0) and it misses a
/// feature narrower than its node spacing, as tanh' is in units of a large standard
/// deviation. Here 16-point Gauss–Legendre runs on panels that meet at 0, that are half
/// a standard deviation wide out to 12 of them, and that double in width away from 0
/// from 1/16, so that both scales are resolved; the mass beyond 12 standard deviations
/// is left out. A `variance` of 0 gives g(mean); a negative or non-finite one NaN.
pub fn expect_normal(mean: f64, variance: f64, g: impl Fn(f64) -> f64) -> f64 {
    if !(mean.is_finite() && variance.is_finite() && variance >= 0.0) {
        return f64::NAN;
    }
    if variance == 0.0 {
        return g(mean);
    }
    let sd = variance.sqrt();
    let mut edges: Vec<f64> = (-2 * TAIL_SDS..=2 * TAIL_SDS)
        .map(|k| mean + sd * f64::from(k) / 2.0)
        .collect();
    let (lo, hi) = (edges[0], edges[edges.len() - 1]);
    let reach = lo.abs().max(hi.abs());
    let inside = |x: f64| lo < x && x < hi;
    if inside(0.0) {
        edges.push(0.0);
    }
    let mut power = 1.0 / 16.0;
    while power < reach {
        edges.extend([power, -power].into_iter().filter(|&x| inside(x)));
        power *= 2.0;
    }
    edges.sort_by(f64::total_cmp);
    edges.dedup();
    let (nodes, weights) = &*PANEL_RULE;
    let normaliser = 1.0 / (sd * (2.0 * std::f64::consts::PI).sqrt());
    edges
        .windows(2)
        .map(|panel| {
            let (centre, half) = ((panel[0] + panel[1]) / 2.0, (panel[1] - panel[0]) / 2.0);
            let sum: f64 = nodes
                .iter()
                .zip(weights)
                .map(|(t, w)| {
                    let x = centre + half * t;
                    let z = (x - mean) / sd;
                    w * g(x) * (-0.5 * z * z).exp()
                })
                .sum();
            half * sum
        })
        .sum::<f64>()
        * normaliser
}

/// E[f(U) g(V)] for U, V jointly normal with mean 0, variance `q` each and correlation
/// `c` (in [-1, 1]), for integrands as [`expect_normal`] takes them.
///
/// Nested [`expect_normal`]: given U = u, V is normal with mean c u and variance
/// q (1 - c^2), so the inner expectation is over V and the outer over U, each on panels
/// that meet at 0. Accurate where an activation has a kink, and slow: about a million
/// evaluations of `g`. A `q` of 0 gives f(0) g(0); a negative or non-finite `q`, or a
/// `c` outside [-1, 1], NaN.
pub fn expect_normal_pair(q: f64, c: f64, f: impl Fn(f64) -> f64, g: impl Fn(f64) -> f64) -> f64 {
    if !(q.is_finite() && q >= 0.0 && (-1.0..=1.0).contains(&c)) {
        return f64::NAN;
    }
    // 1 - c^2 as (1 - c)(1 + c), which keeps its digits near c = 1.
    let conditional = q * (1.0 - c) * (1.0 + c);
    expect_normal(0.0, q, |u| {
        let fu = f(u);
        if fu == 0.0 {
            0.0
        } else {
            fu * expect_normal(c * u, conditional, &g)
        }
    })
}

impl GaussHermite {
    /// E[f(U) g(V)] for U, V jointly normal with mean 0, variance `q` each and correlation
    /// `c`, by the tensor product of this rule: U = sqrt(q) Z1 and V = sqrt(q) (c Z1 +
    /// sqrt(1 - c^2) Z2) at every pair of nodes. n^2 evaluations, and as accurate as the
    /// one-dimensional rule: exponentially so for integrands analytic near the real line
    /// at the scale sqrt(q) (tanh, sigmoid, erf), poorly across a kink. `q` and `c` as
    /// [`expect_normal_pair`] takes them.
    pub fn expect_pair(
        &self,
        q: f64,
        c: f64,
        f: impl Fn(f64) -> f64,
        g: impl Fn(f64) -> f64,
    ) -> f64 {
        if !(q.is_finite() && q >= 0.0 && (-1.0..=1.0).contains(&c)) {
            return f64::NAN;
        }
        let sd = q.sqrt();
        let across = ((1.0 - c) * (1.0 + c)).sqrt();
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(&z1, &w1)| {
                let u = sd * z1;
                let fu = f(u);
                if fu == 0.0 {
                    return 0.0;
                }
                let inner = self.expect(|z2| g(sd * (c * z1 + across * z2)));
                w1 * fu * inner
            })
            .sum()
    }
}

/// The Hermite expansion of f(sqrt(q) Z), Z ~ N(0, 1): the coefficients a_n = E[f(sqrt(q)
/// Z) h_n(Z)] on the orthonormal Hermite polynomials h_n = He_n / sqrt(n!), from n = 0.
///
/// Mehler's formula turns every pair expectation of f into a power series: for U, V with
/// variance q each and correlation c, E[f(U) f(V)] = sum_n a_n^2 c^n. Computed once per q,
/// the series gives the correlation map and its slope at any c for a few hundred
/// operations, where a two-dimensional rule takes n^2 evaluations of f.
#[derive(Debug, Clone, PartialEq)]
pub struct HermiteSeries {
    coefficients: Vec<f64>,
    /// E[f(sqrt(q) Z)^2] - sum_n a_n^2: the mass beyond the last order (Parseval).
    tail: f64,
}

impl HermiteSeries {
    /// The first `orders` coefficients of `f` at variance `q`, by `rule`.
    pub fn of(f: impl Fn(f64) -> f64, q: f64, orders: usize, rule: &GaussHermite) -> Self {
        let sd = q.max(0.0).sqrt();
        let values: Vec<f64> = rule.nodes().iter().map(|&z| f(sd * z)).collect();
        // Each node's weight times f there: a_n is its dot product with h_n at the nodes.
        let weighted: Vec<f64> = values
            .iter()
            .zip(rule.weights())
            .map(|(v, w)| v * w)
            .collect();
        let square: f64 = weighted.iter().zip(&values).map(|(a, b)| a * b).sum();
        // h_0 = 1, h_1 = z, h_(n+1) = (z h_n - sqrt(n) h_(n-1)) / sqrt(n + 1), one order at a
        // time over all the nodes (which the compiler vectorises).
        let mut previous = vec![0.0; values.len()];
        let mut current = vec![1.0; values.len()];
        let mut coefficients = Vec::with_capacity(orders);
        for n in 0..orders {
            coefficients.push(weighted.iter().zip(&current).map(|(a, h)| a * h).sum());
            let (root, inverse) = ((n as f64).sqrt(), 1.0 / ((n + 1) as f64).sqrt());
            for ((p, c), &z) in previous
                .iter_mut()
                .zip(current.iter_mut())
                .zip(rule.nodes())
            {
                let next = (z * *c - root * *p) * inverse;
                (*p, *c) = (*c, next);
            }
        }
        let tail = square - coefficients.iter().map(|a| a * a).sum::<f64>();
        Self { coefficients, tail }
    }

    /// The coefficients a_0, a_1, ...
    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    /// What the orders kept leave out of E[f(U)^2]: a bound on what they leave out of
    /// E[f(U) f(V)] at |c| < 1, times |c| to the number of orders.
    pub fn tail(&self) -> f64 {
        self.tail
    }

    /// A bound on what the orders kept leave out of [`HermiteSeries::pair`] at `c`: the
    /// tail times |c| to the number of orders.
    pub fn truncation_bound(&self, c: f64) -> f64 {
        self.tail.abs() * c.abs().powi(self.coefficients.len() as i32)
    }

    /// E[f(U) f(V)] at correlation `c`: sum_n a_n^2 c^n (Horner's rule).
    pub fn pair(&self, c: f64) -> f64 {
        self.coefficients
            .iter()
            .rev()
            .fold(0.0, |sum, a| sum * c + a * a)
    }

    /// d/dc E[f(U) f(V)] at `c`: sum_n n a_n^2 c^(n-1), which is q E[f'(U) f'(V)] (Price's
    /// theorem).
    pub fn pair_slope(&self, c: f64) -> f64 {
        self.coefficients
            .iter()
            .enumerate()
            .skip(1)
            .rev()
            .fold(0.0, |sum, (n, a)| sum * c + n as f64 * a * a)
    }
}

/// The `m`-point Gauss–Legendre rule on [-1, 1], nodes ascending: Newton's method on the
/// Legendre recurrence from the first guesses cos(pi (i + 3/4) / (m + 1/2)), which lie
/// close enough to their zeros for any m (Numerical Recipes' `gauleg`).
fn gauss_legendre(m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; m];
    let mut weights = vec![0.0; m];
    let mf = m as f64;
    for i in 0..m.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (mf + 0.5)).cos();
        let mut derivative = 0.0;
        for _ in 0..100 {
            let (mut p, mut p_prev) = (1.0, 0.0);
            for j in 1..=m {
                let j = j as f64;
                (p, p_prev) = (((2.0 * j - 1.0) * z * p - (j - 1.0) * p_prev) / j, p);
            }
            derivative = mf * (z * p - p_prev) / (z * z - 1.0);
            let step = p / derivative;
            z -= step;
            if step.abs() <= 4.0 * f64::EPSILON {
                break;
            }
        }
        if m % 2 == 1 && i == m / 2 {
            z = 0.0;
        }
        let weight = 2.0 / ((1.0 - z * z) * derivative * derivative);
        nodes[i] = -z;
        nodes[m - 1 - i] = z;
        weights[i] = weight;
        weights[m - 1 - i] = weight;
    }
    (nodes, weights)
}

/// The `i`-th largest positive zero of the n-th Hermite polynomial, below `hi` (a bound
/// or the (i-1)-th zero), from the first guess `guess`.
///
/// Newton's method once a bracket holds this zero alone, bisection until then: the sign
/// changes of p_0(t), ..., p_n(t) count the zeros above t (a Sturm sequence), which says
/// on which side of the wanted zero any t lies.
fn zero(n: usize, i: usize, guess: f64, mut hi: f64) -> f64 {
    let scale = (2.0 * n as f64).sqrt();
    let mut lo = 0.0;
    let mut lo_isolates = false;
    let mut z = if guess > lo && guess < hi {
        guess
    } else {
        0.5 * (lo + hi)
    };
    for _ in 0..400 {
        let (p, p_prev, _, above) = hermite(n, z);
        if above > i {
            lo = z;
            lo_isolates = above == i + 1;
        } else {
            hi = z;
        }
        // p_n' = sqrt(2n) p_{n-1} for the orthonormal polynomials; the common scale
        // cancels.
        let newton = z - p / (scale * p_prev);
        let tolerance = 4.0 * f64::EPSILON * z.abs().max(1.0);
        if lo_isolates && newton > lo && newton < hi {
            if (newton - z).abs() <= tolerance {
                return newton;
            }
            z = newton;
        } else {
            z = 0.5 * (lo + hi);
            if hi - lo <= tolerance {
                return z;
            }
        }
    }
    z
}

/// The orthonormal Hermite polynomials p_n(t) and p_{n-1}(t) (weight e^{-t^2}) by the
/// three-term recurrence, the natural log of the factor both were divided by to stay in
/// range, and the number of sign changes along p_0(t), ..., p_n(t).
fn hermite(n: usize, t: f64) -> (f64, f64, f64, usize) {
    const BIG: f64 = 1e150;
    let mut p = std::f64::consts::PI.powf(-0.25);
    let mut p_prev = 0.0;
    let mut log_scale = 0.0;
    let mut changes = 0;
    for k in 0..n {
        let k = k as f64;
        let next = (2.0 / (k + 1.0)).sqrt() * t * p - (k / (k + 1.0)).sqrt() * p_prev;
        changes += usize::from(next * p < 0.0);
        p_prev = p;
        p = next;
        if p.abs() > BIG {
            p /= BIG;
            p_prev /= BIG;
            log_scale += BIG.ln();
        }
    }
    (p, p_prev, log_scale, changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_the_nodes_are_symmetric_and_distinct() {
        for n in [1, 2, 3, 10, 51, 100, DEFAULT_NODES, 201, 400, 1000] {
            let rule = GaussHermite::new(n);
            assert_eq!(rule.len(), n);
            let total: f64 = rule.weights().iter().sum();
            assert!((total - 1.0).abs() < 1e-13, "n = {n}: {total}");
            assert!(rule.weights().iter().all(|&w| w >= 0.0));
            assert!(
                rule.nodes().windows(2).all(|p| p[0] < p[1]),
                "n = {n}: nodes not strictly ascending"
            );
            for (a, b) in rule.nodes().iter().zip(rule.nodes().iter().rev()) {
                assert_eq!(*a, -*b);
            }
        }
        // The zeros of He_2 = x^2 - 1 and He_3 = x^3 - 3x, with weights 1/2 and 1/6, 2/3.
        let two = GaussHermite::new(2);
        assert!((two.nodes()[1] - 1.0).abs() < 1e-15 && (two.weights()[0] - 0.5).abs() < 1e-15);
        let three = GaussHermite::new(3);
        assert!((three.nodes()[2] - 3f64.sqrt()).abs() < 1e-15);
        assert_eq!(three.nodes()[1], 0.0);
        assert!((three.weights()[0] - 1.0 / 6.0).abs() < 1e-15);
        assert!((three.weights()[1] - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(GaussHermite::new(0).len(), 1);
    }

    #[test]
    fn even_moments_are_the_double_factorials() {
        for n in [4, 20, DEFAULT_NODES, 201, 1000] {
            let rule = GaussHermite::new(n);
            assert!((rule.expect(|_| 1.0) - 1.0).abs() < 1e-13);
            assert!(rule.expect(|z| z).abs() < 1e-15);
            assert!((rule.expect(|z| z * z) - 1.0).abs() < 1e-12, "n = {n}");
            assert!((rule.expect(|z| z.powi(4)) - 3.0).abs() < 1e-12, "n = {n}");
            if n >= 4 {
                // Degree 6 < 2n: exact.
                assert!((rule.expect(|z| z.powi(6)) - 15.0).abs() < 1e-11, "n = {n}");
            }
        }
        let rule = GaussHermite::standard();
        assert!((rule.expect(|z| z.powi(10)) - 945.0).abs() < 1e-9);
    }

    #[test]
    fn the_characteristic_function_at_one() {
        // E[cos Z] = e^{-1/2}, E[e^Z] = e^{1/2}: not polynomials, so a real test of the rule.
        let rule = GaussHermite::standard();
        assert!((rule.expect(f64::cos) - (-0.5f64).exp()).abs() < 1e-14);
        assert!((rule.expect(f64::exp) - 0.5f64.exp()).abs() < 1e-14);
        let small = GaussHermite::new(30);
        assert!((small.expect(f64::cos) - (-0.5f64).exp()).abs() < 1e-14);
    }

    fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, intervals: usize) -> f64 {
        let h = (b - a) / intervals as f64;
        let inner: f64 = (1..intervals)
            .map(|i| f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
            .sum();
        (f(a) + inner + f(b)) * h / 3.0
    }

    #[test]
    fn the_panel_rule_integrates_polynomials_of_degree_below_32() {
        let (nodes, weights) = gauss_legendre(PANEL_ORDER);
        assert!((weights.iter().sum::<f64>() - 2.0).abs() < 1e-14);
        assert!(nodes.windows(2).all(|p| p[0] < p[1]));
        for degree in [2, 10, 30] {
            let integral: f64 = nodes
                .iter()
                .zip(&weights)
                .map(|(x, w)| w * x.powi(degree))
                .sum();
            assert!(
                (integral - 2.0 / f64::from(degree + 1)).abs() < 1e-14,
                "x^{degree}"
            );
        }
        let (three, w3) = gauss_legendre(3);
        assert_eq!(three[1], 0.0);
        assert!((three[2] - 0.6f64.sqrt()).abs() < 1e-15 && (w3[1] - 8.0 / 9.0).abs() < 1e-15);
    }

    #[test]
    fn normal_expectations_in_closed_form() {
        for (mean, variance) in [
            (0.0, 1.0),
            (0.3, 0.01),
            (-2.0, 7.0),
            (0.0, 1e-14),
            (1.0, 1e6),
        ] {
            let sd: f64 = f64::sqrt(variance);
            let close = |got: f64, want: f64| (got - want).abs() <= 1e-13 * want.abs().max(1.0);
            assert!(close(expect_normal(mean, variance, |_| 1.0), 1.0));
            assert!(close(expect_normal(mean, variance, |x| x), mean));
            let square = expect_normal(mean, variance, |x| x * x);
            assert!(
                close(square, mean * mean + variance),
                "{mean} {variance}: {square}"
            );
            if variance < 10.0 {
                // E[cos X] = cos(m) e^{-v/2}: not a polynomial. (At a larger variance cos
                // oscillates faster than the panels far from 0 can follow.)
                let cos = expect_normal(mean, variance, f64::cos);
                assert!((cos - mean.cos() * (-variance / 2.0).exp()).abs() < 1e-14);
            }
            if mean == 0.0 {
                // E[max(X, 0)] = sd / sqrt(2 pi), kinked at 0.
                let relu = expect_normal(0.0, variance, |x| x.max(0.0));
                assert!(close(relu, sd / (2.0 * std::f64::consts::PI).sqrt()));
            }
        }
        assert_eq!(expect_normal(2.0, 0.0, |x| x * x), 4.0);
        assert!(expect_normal(0.0, -1.0, |x| x).is_nan());
        assert!(expect_normal(f64::NAN, 1.0, |x| x).is_nan());
    }

    #[test]
    fn normal_expectations_of_activations_match_simpson_and_gauss_hermite() {
        use vgrad_record::Activation;
        let density = |z: f64| (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let hermite = GaussHermite::standard();
        for activation in [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Elu,
            Activation::Gelu,
            Activation::Silu,
            Activation::Softsign,
            Activation::Selu,
        ] {
            for q in [0.01, 1.0, 100.0] {
                let s = f64::sqrt(q);
                let square = move |x: f64| activation.value(x).powi(2);
                let slope = move |x: f64| activation.derivative(x).powi(2);
                for (name, g) in [
                    ("phi^2", &square as &dyn Fn(f64) -> f64),
                    ("phi'^2", &slope),
                ] {
                    // Simpson on each side of the kink, in z, over 12 standard deviations;
                    // the right half starts just above 0 to see phi'(0+), not phi'(0-).
                    let reference = simpson(|z| g(s * z) * density(z), -12.0, -0.0, 40_000)
                        + simpson(|z| g(s * z) * density(z), f64::MIN_POSITIVE, 12.0, 40_000);
                    let got = expect_normal(0.0, q, g);
                    assert!(
                        (got - reference).abs() <= 1e-9 * reference,
                        "{activation} {name} at q = {q}: {got} vs {reference}"
                    );
                    if matches!(
                        activation,
                        Activation::Sigmoid | Activation::Tanh | Activation::Silu
                    ) && q <= 1.0
                    {
                        let gh = hermite.expect(|z| g(s * z));
                        assert!((got - gh).abs() <= 1e-12 * gh, "{activation} {name}: {gh}");
                    }
                }
            }
        }
    }

    #[test]
    fn an_even_rule_splits_the_mass_at_zero_exactly() {
        let rule = GaussHermite::standard();
        let positive = rule.expect(|z| f64::from(u8::from(z > 0.0)));
        let negative = rule.expect(|z| f64::from(u8::from(z < 0.0)));
        assert_eq!(positive, negative);
        assert!((positive - 0.5).abs() < 1e-14);
    }

    /// erf, accurate to about 1e-15 (statrs), for closed forms of Gaussian pairs.
    fn erf(x: f64) -> f64 {
        statrs::function::erf::erf(x)
    }

    #[test]
    fn pair_expectations_of_erf_match_their_closed_forms() {
        // For U, V with variance q and correlation c: E[erf(U) erf(V)] =
        // (2 / pi) asin(2 q c / (1 + 2 q)), and with erf'(x) = 2 / sqrt(pi) e^{-x^2},
        // E[erf'(U) erf'(V)] = (4 / pi) / sqrt((1 + 2 q)^2 - 4 q^2 c^2).
        let pi = std::f64::consts::PI;
        let derivative = |x: f64| 2.0 / pi.sqrt() * (-x * x).exp();
        let rule = GaussHermite::standard();
        for q in [0.3_f64, 1.0, 2.5, 4.0] {
            for c in [-0.6_f64, 0.0, 0.3, 0.9, 1.0] {
                let values = 2.0 / pi * (2.0 * q * c / (1.0 + 2.0 * q)).asin();
                let slopes = 4.0 / pi / ((1.0 + 2.0 * q).powi(2) - 4.0 * q * q * c * c).sqrt();
                // The rule's error grows with q as erf's features narrow; the panels stay
                // at rounding.
                for (name, tolerance, got_values, got_slopes) in [
                    (
                        "hermite",
                        1e-9,
                        rule.expect_pair(q, c, erf, erf),
                        rule.expect_pair(q, c, derivative, derivative),
                    ),
                    (
                        "panels",
                        1e-10,
                        expect_normal_pair(q, c, erf, erf),
                        expect_normal_pair(q, c, derivative, derivative),
                    ),
                ] {
                    assert!(
                        (got_values - values).abs() < tolerance,
                        "{name} q {q} c {c}: {got_values} against {values}"
                    );
                    assert!(
                        (got_slopes - slopes).abs() < tolerance * slopes,
                        "{name} q {q} c {c}: {got_slopes} against {slopes}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_panel_pair_rule_gives_relus_arc_cosine_kernel() {
        // E[relu(U) relu(V)] = q / (2 pi) (sqrt(1 - c^2) + (pi - acos c) c) and
        // P(U > 0, V > 0) = (pi - acos c) / (2 pi) (Cho & Saul 2009).
        let pi = std::f64::consts::PI;
        let relu = |x: f64| x.max(0.0);
        let step = |x: f64| f64::from(u8::from(x > 0.0));
        for q in [0.5_f64, 4.0] {
            for c in [-0.9_f64, 0.0, 0.5, 0.99] {
                let angle = pi - c.acos();
                let values = q / (2.0 * pi) * ((1.0 - c * c).sqrt() + angle * c);
                let both_on = angle / (2.0 * pi);
                let got = expect_normal_pair(q, c, relu, relu);
                assert!(
                    (got - values).abs() < 1e-9 * q,
                    "q {q} c {c}: {got} against {values}"
                );
                let got = expect_normal_pair(q, c, step, step);
                assert!(
                    (got - both_on).abs() < 1e-9,
                    "q {q} c {c}: {got} against {both_on}"
                );
            }
        }
        assert!(expect_normal_pair(1.0, 1.5, relu, relu).is_nan());
        assert!(
            GaussHermite::new(8)
                .expect_pair(-1.0, 0.5, relu, relu)
                .is_nan()
        );
        assert_eq!(expect_normal_pair(0.0, 0.5, |x| x + 2.0, |x| x + 3.0), 6.0);
    }

    #[test]
    fn the_hermite_series_of_erf_gives_its_pair_expectations() {
        // Mehler's formula against the closed forms of
        // pair_expectations_of_erf_match_their_closed_forms, with q E[erf'(U) erf'(V)] as
        // the series' slope (Price's theorem).
        let pi = std::f64::consts::PI;
        for q in [0.5_f64, 2.0, 4.0] {
            let series = HermiteSeries::of(erf, q, 160, GaussHermite::standard());
            assert!(
                series.tail() >= -1e-12 && series.tail() < 1e-8,
                "q {q}: {}",
                series.tail()
            );
            for c in [0.0_f64, 0.3, 0.7, 0.9] {
                let values = 2.0 / pi * (2.0 * q * c / (1.0 + 2.0 * q)).asin();
                let slopes = q * 4.0 / pi / ((1.0 + 2.0 * q).powi(2) - 4.0 * q * q * c * c).sqrt();
                let (got, slope) = (series.pair(c), series.pair_slope(c));
                assert!(
                    (got - values).abs() < 1e-9,
                    "q {q} c {c}: {got} against {values}"
                );
                assert!(
                    (slope - slopes).abs() < 1e-8 * slopes,
                    "q {q} c {c}: {slope} against {slopes}"
                );
                assert!(series.truncation_bound(c) < 1e-9, "q {q} c {c}");
            }
        }
        // Parseval at c = 1: the coefficients' squares sum to E[f^2] less the tail.
        let series = HermiteSeries::of(|z| z * z, 1.0, 4, GaussHermite::standard());
        assert!((series.coefficients()[2] - 2f64.sqrt()).abs() < 1e-13);
        assert!((series.coefficients()[0] - 1.0).abs() < 1e-13);
        assert!(series.tail().abs() < 1e-12);
    }
}
