//! The length (variance) map of a wide network's pre-activations, its fixed point q*, and
//! chi_1, the per-layer gain of the back-propagated error's mean square at q*
//! (Poole et al. 2016; Schoenholz et al. 2017).

use vgrad_record::init::{Init, Resolved};
use vgrad_record::{Activation, Architecture, Norm, RunConfig};

use crate::quadrature::expect_normal;

/// A fixed point below this is reported as 0.
///
/// Near the order-to-chaos edge with no bias (tanh at sigma_w^2 = 1) q shrinks only as a
/// power of the depth (q_l ~ 1 / (2l)), and a variance of 1e-12 is zero for an f32
/// network anyway.
pub const VANISHED_Q: f64 = 1e-12;

/// A fixed point above this is reported as [`FixedPoint::Unbounded`]: pre-activations
/// with a variance of 1e12 overflow nothing yet, but no trained network sits there, and
/// the quadrature's rounding grows with q.
pub const UNBOUNDED_Q: f64 = 1e12;

/// How close to 1 the slope of a positively homogeneous activation's (linear) length map
/// counts as exactly 1: the quadrature's rounding, not a physical tolerance.
const CRITICAL_SLOPE: f64 = 1e-12;

/// Where the length map q_{l+1} = sigma_w^2 E[phi(sqrt(q_l) Z)^2] + sigma_b^2 leads from
/// q = 1 (a unit-variance pre-activation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FixedPoint {
    /// It converges to this q* (0 included: the signal's variance dies out).
    Finite(f64),
    /// It grows without bound, layer after layer.
    Unbounded,
    /// Every q is fixed, so the variance that enters the network stays: ReLU at
    /// sigma_w^2 = 2 or a linear network at sigma_w^2 = 1, both without bias.
    NotUnique,
}

impl FixedPoint {
    /// q* when it is finite.
    pub fn q(&self) -> Option<f64> {
        match *self {
            Self::Finite(q) => Some(q),
            Self::Unbounded | Self::NotUnique => None,
        }
    }
}

/// A weight or bias variance that is negative, infinite or NaN.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{name} must be a finite number at least 0, not {value}")]
pub struct InvalidVariance {
    /// "sigma_w^2" or "sigma_b^2".
    pub name: &'static str,
    /// The value given.
    pub value: f64,
}

/// An infinitely wide fully connected network at initialisation, with W_ij ~ N(0,
/// sigma_w^2 / fan_in) and b_i ~ N(0, sigma_b^2) in every layer.
///
/// Only the variances enter the length map and chi_1 in the wide limit (a uniform or
/// orthogonal draw of the same variance gives the same ones, though not the same spread
/// of the Jacobian's singular values), so [`weight_variance`] turns any [`Init`] into
/// sigma_w^2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanField {
    activation: Activation,
    sigma_w2: f64,
    sigma_b2: f64,
}

impl MeanField {
    /// The network with this activation, sigma_w^2 (fan-in times a weight's variance) and
    /// sigma_b^2 (a bias's variance); both must be finite and at least 0.
    pub fn new(
        activation: Activation,
        sigma_w2: f64,
        sigma_b2: f64,
    ) -> Result<Self, InvalidVariance> {
        for (name, value) in [("sigma_w^2", sigma_w2), ("sigma_b^2", sigma_b2)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(InvalidVariance { name, value });
            }
        }
        Ok(Self {
            activation,
            sigma_w2,
            sigma_b2,
        })
    }

    /// The activation phi.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// sigma_w^2: fan-in times the variance of a weight.
    pub fn sigma_w2(&self) -> f64 {
        self.sigma_w2
    }

    /// sigma_b^2: the variance of a bias.
    pub fn sigma_b2(&self) -> f64 {
        self.sigma_b2
    }

    /// The length map: the variance of the next layer's pre-activations when this layer's
    /// have variance `q` (>= 0; a negative or NaN `q` gives NaN),
    /// sigma_w^2 E[phi(sqrt(q) Z)^2] + sigma_b^2.
    pub fn length_map(&self, q: f64) -> f64 {
        let phi = self.activation;
        self.sigma_w2 * expect_normal(0.0, q, |x| phi.value(x).powi(2)) + self.sigma_b2
    }

    /// Where the length map leads from q = 1.
    ///
    /// For ReLU, leaky ReLU and the identity the map is linear, q -> s q + sigma_b^2, and
    /// the answer is read off its slope s. For the others it is the zero of
    /// q -> length_map(q) - q that iterating from 1 would approach, found by scanning
    /// powers of 2 away from 1 for a sign change and bisecting: iterating converges only
    /// as a power of the depth at the order-to-chaos edge. That the iteration ends at
    /// this zero relies on the map increasing with q, as it does for every activation in
    /// vgrad (a test checks it); a fixed point below [`VANISHED_Q`] is reported as 0 and
    /// one above [`UNBOUNDED_Q`] as unbounded.
    pub fn fixed_point(&self) -> FixedPoint {
        if is_positively_homogeneous(self.activation) {
            let slope = self.length_map(1.0) - self.sigma_b2;
            return if (slope - 1.0).abs() <= CRITICAL_SLOPE {
                if self.sigma_b2 == 0.0 {
                    FixedPoint::NotUnique
                } else {
                    FixedPoint::Unbounded
                }
            } else if slope > 1.0 {
                FixedPoint::Unbounded
            } else {
                FixedPoint::Finite(self.sigma_b2 / (1.0 - slope))
            };
        }
        let gap = |q: f64| self.length_map(q) - q;
        let at_one = gap(1.0);
        if at_one == 0.0 {
            return FixedPoint::Finite(1.0);
        }
        if at_one < 0.0 {
            // q shrinks: the largest zero below 1, between the first pair of powers of 2
            // where the gap turns positive, or between 0 and the last one scanned.
            let mut hi = 1.0;
            loop {
                let lo = hi / 2.0;
                if lo < VANISHED_Q {
                    return if gap(0.0) > 0.0 {
                        FixedPoint::Finite(bisect(gap, 0.0, hi))
                    } else {
                        FixedPoint::Finite(0.0)
                    };
                }
                let at_lo = gap(lo);
                if at_lo == 0.0 {
                    return FixedPoint::Finite(lo);
                }
                if at_lo > 0.0 {
                    return FixedPoint::Finite(bisect(gap, lo, hi));
                }
                hi = lo;
            }
        }
        // q grows: the smallest zero above 1, if there is one before UNBOUNDED_Q.
        let mut lo = 1.0;
        loop {
            let hi = 2.0 * lo;
            if hi > UNBOUNDED_Q {
                return FixedPoint::Unbounded;
            }
            let at_hi = gap(hi);
            if at_hi == 0.0 {
                return FixedPoint::Finite(hi);
            }
            if at_hi < 0.0 {
                return FixedPoint::Finite(bisect(gap, lo, hi));
            }
            lo = hi;
        }
    }

    /// chi_1 at pre-activation variance `q` (>= 0; a negative or NaN `q` gives NaN):
    /// sigma_w^2 E[phi'(sqrt(q) Z)^2].
    ///
    /// At q = 0 it is the limit from above, sigma_w^2 (phi'(0-)^2 + phi'(0+)^2) / 2:
    /// sigma_w^2 phi'(0)^2 where phi is smooth, and for the ReLU family the same value as
    /// at every other q.
    pub fn chi1_at(&self, q: f64) -> f64 {
        let phi = self.activation;
        if q == 0.0 {
            let left = phi.derivative(-0.0);
            let right = phi.derivative(f64::MIN_POSITIVE);
            return self.sigma_w2 * (left * left + right * right) / 2.0;
        }
        self.sigma_w2 * expect_normal(0.0, q, |x| phi.derivative(x).powi(2))
    }

    /// chi_1 at the fixed point: the factor by which the mean square of the
    /// back-propagated error changes from one layer to the one below, deep in the network
    /// (below 1 it vanishes, above 1 it explodes).
    ///
    /// `None` where q* is unbounded or not unique, except for ReLU, leaky ReLU and the
    /// identity: they are positively homogeneous, so chi_1 does not depend on q and is
    /// returned whatever the fixed point.
    pub fn chi1(&self) -> Option<f64> {
        match self.fixed_point() {
            FixedPoint::Finite(q) => Some(self.chi1_at(q)),
            FixedPoint::Unbounded | FixedPoint::NotUnique
                if is_positively_homogeneous(self.activation) =>
            {
                Some(self.chi1_at(1.0))
            }
            FixedPoint::Unbounded | FixedPoint::NotUnique => None,
        }
    }
}

/// Whether phi(c z) = c phi(z) for every c > 0 (ReLU, leaky ReLU, the identity): then the
/// length map is linear in q and chi_1 does not depend on q.
pub fn is_positively_homogeneous(activation: Activation) -> bool {
    matches!(
        activation,
        Activation::Relu | Activation::LeakyRelu { .. } | Activation::Linear
    )
}

/// sigma_w^2 = fan_in Var(W_ij) of a `fan_in x fan_out` layer drawn by `init`.
///
/// Uniform(-l, l) has variance l^2 / 3 and N(0, s^2) s^2; a `gain` times orthogonal
/// matrix has squared Frobenius norm gain^2 min(fan_in, fan_out), spread evenly over its
/// entries, so sigma_w^2 = gain^2 for a square layer; `variance:<s>` is s by definition.
/// sigma_b^2 is a run's `bias_variance`, not the init's. Both fans must be positive (a zero gives NaN or
/// infinity). The theory assumes the same sigma_w^2 in every layer: in vgrad that is
/// the hidden-to-hidden layers, not the input or output layer.
pub fn weight_variance(init: Init, fan_in: usize, fan_out: usize) -> f64 {
    let (fan_in_f, fan_out_f) = (fan_in as f64, fan_out as f64);
    let variance = match init.resolve(fan_in, fan_out) {
        Resolved::Uniform(limit) => limit * limit / 3.0,
        Resolved::Normal(std) => std * std,
        Resolved::Orthogonal(gain) => {
            gain * gain * fan_in_f.min(fan_out_f) / (fan_in_f * fan_out_f)
        }
    };
    fan_in_f * variance
}

/// chi_1 of the network a run configures: its activation, its hidden-to-hidden layers'
/// sigma_w^2 ([`weight_variance`] at width x width) and its sigma_b^2 (`bias_variance`).
/// `None` where the theory leaves the network out: a normalisation or skip connections
/// add terms to the chain, and fewer than two hidden layers (3 dense layers) have no
/// chain; a convolutional network is not the dense chain the theory describes; and
/// where the variance map has no fixed point.
pub fn run_chi1(cfg: &RunConfig) -> Option<f64> {
    if cfg.norm != Norm::None || cfg.residual || cfg.layers < 3 || cfg.model.is_convolutional() {
        return None;
    }
    let sigma_w2 = weight_variance(cfg.init, cfg.width, cfg.width);
    MeanField::new(cfg.activation, sigma_w2, run_bias_variance(cfg).ok()?)
        .ok()?
        .chi1()
}

/// Why `--bias-variance critical` has no value for a run; the message names the flags.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--bias-variance critical: {0}")]
pub struct NoCriticalBias(String);

/// The sigma_b^2 a run's biases are drawn with: its `--bias-variance`, or for `critical`
/// the one that puts its activation and hidden-to-hidden sigma_w^2 ([`weight_variance`]
/// at width x width) on the critical line chi_1 = 1 ([`critical_bias_variance`]).
///
/// [`critical_bias_variance`]: crate::critical_bias_variance
pub fn run_bias_variance(cfg: &RunConfig) -> Result<f64, NoCriticalBias> {
    if let Some(sigma_b2) = cfg.bias_variance.value() {
        return Ok(sigma_b2);
    }
    let fail = |why: String| Err(NoCriticalBias(why));
    if cfg.norm != Norm::None || cfg.residual || cfg.model != Architecture::Mlp {
        return fail(
            "the critical line is mean-field theory's for a plain dense network; leave out \
             --norm and --residual and use --model mlp"
                .into(),
        );
    }
    let activation = cfg.activation;
    if is_positively_homogeneous(activation) {
        return fail(format!(
            "chi_1 of {activation} is sigma_w^2 times a constant whatever sigma_b^2; its \
             critical point is a weight variance (--init variance:<sigma_w^2>) with \
             --bias-variance 0"
        ));
    }
    let sigma_w2 = weight_variance(cfg.init, cfg.width, cfg.width);
    match crate::critical_bias_variance(activation, sigma_w2) {
        Some(sigma_b2) => Ok(sigma_b2),
        None => {
            let at_zero = crate::critical_weight_variance(activation, 0.0)
                .map(|w| format!(" (above {w:.4} for {activation})"))
                .unwrap_or_default();
            fail(format!(
                "no sigma_b^2 in [0, 100] puts {activation} with sigma_w^2 = {sigma_w2:.4} \
                 (--init {} at --width {}) on chi_1 = 1; sigma_w^2 must be large enough \
                 that the network is chaotic at sigma_b^2 = 0{at_zero}",
                cfg.init, cfg.width
            ))
        }
    }
}

/// A zero of `f` in (lo, hi), where f(lo) > 0 > f(hi), to the last bit or the first
/// exact zero.
fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    // 1100 halvings reach the adjacent floats even from [0, 1e-12] down to subnormals.
    for _ in 0..1100 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        let at_mid = f(mid);
        if at_mid > 0.0 {
            lo = mid;
        } else if at_mid < 0.0 {
            hi = mid;
        } else {
            return mid;
        }
    }
    lo + (hi - lo) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;
    use std::sync::LazyLock;

    fn field(activation: Activation, sigma_w2: f64, sigma_b2: f64) -> MeanField {
        MeanField::new(activation, sigma_w2, sigma_b2).expect("valid variances")
    }

    fn relative(got: f64, want: f64) -> f64 {
        (got - want).abs() / want.abs().max(f64::MIN_POSITIVE)
    }

    /// E[f(Z)] by the trapezoid rule on [-12, 12] with step 1e-3: for a smooth integrand
    /// that vanishes at both ends it is exact to rounding, and it shares nothing with the
    /// crate's quadrature.
    fn trapezoid(f: impl Fn(f64) -> f64) -> f64 {
        let h = 1e-3;
        let density = |z: f64| (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (-12_000..=12_000)
            .map(|i| {
                let z = f64::from(i) * h;
                f(z) * density(z)
            })
            .sum::<f64>()
            * h
    }

    #[test]
    fn relu_chi1_is_half_sigma_w2_at_every_q() {
        for sigma_w2 in [0.5, 1.0, 2.0, 3.7] {
            for q in [0.0, 1e-8, 0.3, 1.0, 7.0, 1e4] {
                let chi1 = field(Activation::Relu, sigma_w2, 0.0).chi1_at(q);
                assert!(
                    relative(chi1, sigma_w2 / 2.0) < 1e-13,
                    "{sigma_w2} at {q}: {chi1}"
                );
            }
            for sigma_b2 in [0.0, 0.1] {
                let chi1 = field(Activation::Relu, sigma_w2, sigma_b2).chi1();
                let chi1 = chi1.expect("homogeneous: defined whatever q*");
                assert!(
                    relative(chi1, sigma_w2 / 2.0) < 1e-13,
                    "{sigma_w2} {sigma_b2}"
                );
            }
        }
    }

    #[test]
    fn leaky_relu_chi1_is_sigma_w2_times_the_mean_square_slope() {
        for slope in [0.01, 0.2] {
            let activation = Activation::LeakyRelu { slope };
            for sigma_w2 in [0.5, 1.9, 4.0] {
                let want = sigma_w2 * (1.0 + slope * slope) / 2.0;
                let mean_field = field(activation, sigma_w2, 0.05);
                for q in [0.0, 0.01, 1.0, 50.0] {
                    assert!(relative(mean_field.chi1_at(q), want) < 1e-13, "{slope} {q}");
                }
                let chi1 = mean_field.chi1().expect("homogeneous");
                assert!(relative(chi1, want) < 1e-13);
            }
        }
    }

    #[test]
    fn linear_fixed_points_and_chi1() {
        for (sigma_w2, sigma_b2) in [(0.5, 0.1), (0.9, 0.3), (0.0, 0.2), (0.7, 0.0)] {
            let mean_field = field(Activation::Linear, sigma_w2, sigma_b2);
            let q = mean_field
                .fixed_point()
                .q()
                .expect("finite below sigma_w^2 = 1");
            let want = sigma_b2 / (1.0 - sigma_w2);
            assert!(
                (q - want).abs() <= 1e-13 * want.max(1.0),
                "{sigma_w2}: {q} vs {want}"
            );
            assert!(relative(mean_field.chi1().unwrap_or(f64::NAN), sigma_w2) < 1e-13);
        }
        let fixed = |w, b| field(Activation::Linear, w, b).fixed_point();
        assert_eq!(fixed(1.0, 0.0), FixedPoint::NotUnique);
        assert_eq!(fixed(1.0, 0.1), FixedPoint::Unbounded);
        assert_eq!(fixed(1.2, 0.0), FixedPoint::Unbounded);
        for (sigma_w2, sigma_b2) in [(1.2, 0.0), (1.0, 0.0), (1.0, 0.3)] {
            let chi1 = field(Activation::Linear, sigma_w2, sigma_b2).chi1();
            let chi1 = chi1.expect("homogeneous: defined whatever q*");
            assert!(relative(chi1, sigma_w2) < 1e-13, "{sigma_w2}: {chi1}");
        }
    }

    #[test]
    fn relu_fixed_points() {
        for (sigma_w2, sigma_b2) in [(1.0, 0.1), (1.5, 0.05), (1.9, 0.01), (0.5, 0.0)] {
            let q = field(Activation::Relu, sigma_w2, sigma_b2)
                .fixed_point()
                .q();
            let want = sigma_b2 / (1.0 - sigma_w2 / 2.0);
            let q = q.expect("finite below sigma_w^2 = 2");
            assert!(
                (q - want).abs() <= 1e-12 * want.max(1e-3),
                "{sigma_w2}: {q} vs {want}"
            );
        }
        let fixed = |w, b| field(Activation::Relu, w, b).fixed_point();
        assert_eq!(fixed(2.5, 0.0), FixedPoint::Unbounded);
        assert_eq!(fixed(2.5, 0.3), FixedPoint::Unbounded);
        assert_eq!(fixed(2.0, 0.1), FixedPoint::Unbounded);
        assert_eq!(fixed(2.0, 0.0), FixedPoint::NotUnique);
        let he = field(Activation::Relu, 2.0, 0.0)
            .chi1()
            .expect("homogeneous");
        assert!(
            (he - 1.0).abs() < 1e-13,
            "He init is critical for ReLU: {he}"
        );
    }

    #[test]
    fn an_activation_that_grows_like_relu_can_be_unbounded_and_then_has_no_chi1() {
        let elu = field(Activation::Elu, 3.0, 0.1);
        assert_eq!(elu.fixed_point(), FixedPoint::Unbounded);
        assert_eq!(elu.chi1(), None);
        assert_eq!(field(Activation::Selu, 3.0, 0.0).chi1(), None);
    }

    #[test]
    fn tanh_is_critical_at_sigma_w2_one_without_bias() {
        // phi'(0) = 1 and q* = 0 for sigma_w^2 <= 1: chi_1 = sigma_w^2 (Poole et al.).
        let critical = field(Activation::Tanh, 1.0, 0.0);
        assert_eq!(critical.fixed_point(), FixedPoint::Finite(0.0));
        assert_eq!(critical.chi1(), Some(1.0));
        for sigma_w2 in [0.5, 0.9, 0.99] {
            let ordered = field(Activation::Tanh, sigma_w2, 0.0);
            assert_eq!(ordered.fixed_point(), FixedPoint::Finite(0.0));
            assert_eq!(ordered.chi1(), Some(sigma_w2));
        }
        // Above 1 the zero fixed point is unstable, and the stable one is chaotic.
        let chaotic = field(Activation::Tanh, 1.5, 0.0);
        let q = chaotic.fixed_point().q().unwrap_or(f64::NAN);
        assert!(q > 0.1, "{q}");
        let by_trapezoid = 1.5 * trapezoid(|z| (q.sqrt() * z).tanh().powi(2));
        assert!(
            (by_trapezoid - q).abs() < 1e-12,
            "q* = {q} maps to {by_trapezoid}"
        );
        let chi1 = chaotic.chi1().unwrap_or(f64::NAN);
        let by_trapezoid = 1.5 * trapezoid(|z| (1.0 - (q.sqrt() * z).tanh().powi(2)).powi(2));
        assert!(chi1 > 1.0 && (chi1 - by_trapezoid).abs() < 1e-12, "{chi1}");
    }

    #[test]
    fn sigmoid_at_the_glorot_variance_loses_most_of_the_error_per_layer() {
        // q* by iterating the trapezoid map: it contracts by about 0.06 a step.
        let mut q: f64 = 1.0;
        for _ in 0..100 {
            q = trapezoid(|z| sigmoid(q.sqrt() * z).powi(2));
        }
        let chi1 = trapezoid(|z| {
            let s = sigmoid(q.sqrt() * z);
            (s * (1.0 - s)).powi(2)
        });
        let glorot = field(Activation::Sigmoid, 1.0, 0.0);
        let got_q = glorot.fixed_point().q().unwrap_or(f64::NAN);
        let got_chi1 = glorot.chi1().unwrap_or(f64::NAN);
        assert!((got_q - q).abs() < 1e-12, "{got_q} vs {q}");
        assert!((got_chi1 - chi1).abs() < 1e-12, "{got_chi1} vs {chi1}");
        assert!(
            (0.26..0.28).contains(&q) && (0.055..0.06).contains(&chi1),
            "{q} {chi1}"
        );
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// A seeded sample of standard normals.
    fn normals(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.sample(StandardNormal)).collect()
    }

    /// Mean and standard error of `f` over the sample.
    fn mean_and_error(sample: &[f64], f: impl Fn(f64) -> f64) -> (f64, f64) {
        let n = sample.len() as f64;
        let (sum, sum_sq) = sample.iter().fold((0.0, 0.0), |(s, ss), &z| {
            let v = f(z);
            (s + v, ss + v * v)
        });
        let mean = sum / n;
        (mean, ((sum_sq / n - mean * mean) / n).sqrt())
    }

    /// Checks q* and chi_1 against Monte Carlo: the length map iterated from q = 1 with
    /// sample means for the expectations, and chi_1's sample mean at q*; each within five
    /// standard errors (a map error of e moves the fixed point by e / (1 - slope)).
    fn check_against_monte_carlo(
        activation: Activation,
        phi: fn(f64) -> f64,
        dphi: fn(f64) -> f64,
        sigma_w2: f64,
        sigma_b2: f64,
        sample: &[f64],
    ) {
        let map = |q: f64| sigma_w2 * mean_and_error(sample, |z| phi(q.sqrt() * z).powi(2)).0;
        let mut q_mc = 1.0;
        for _ in 0..500 {
            let next = map(q_mc) + sigma_b2;
            // Far below the standard error (about 1e-3 here), which is what counts.
            let done = (next - q_mc).abs() < 1e-7;
            q_mc = next;
            if done {
                break;
            }
        }
        let error = sigma_w2 * mean_and_error(sample, |z| phi(q_mc.sqrt() * z).powi(2)).1;
        let slope = (map(q_mc * 1.001) - map(q_mc * 0.999)) / (0.002 * q_mc);
        assert!(slope < 0.9, "{activation}: the map must contract ({slope})");
        let mean_field = field(activation, sigma_w2, sigma_b2);
        let q = mean_field.fixed_point().q().unwrap_or(f64::NAN);
        assert!(
            (q - q_mc).abs() < 5.0 * error / (1.0 - slope),
            "{activation} ({sigma_w2}, {sigma_b2}): q* {q} vs {q_mc} +- {error}"
        );
        let (chi1_mc, error) = mean_and_error(sample, |z| dphi(q.sqrt() * z).powi(2));
        let chi1 = mean_field.chi1().unwrap_or(f64::NAN);
        assert!(
            (chi1 - sigma_w2 * chi1_mc).abs() < 5.0 * sigma_w2 * error,
            "{activation} ({sigma_w2}, {sigma_b2}): chi_1 {chi1} vs {} +- {}",
            sigma_w2 * chi1_mc,
            sigma_w2 * error
        );
    }

    /// One sample for the Monte Carlo tests, drawn once.
    static SAMPLE: LazyLock<Vec<f64>> = LazyLock::new(|| normals(2016, 1_000_000));

    fn tanh(x: f64) -> f64 {
        x.tanh()
    }

    fn tanh_slope(x: f64) -> f64 {
        1.0 - x.tanh().powi(2)
    }

    #[test]
    fn tanh_matches_monte_carlo_near_the_edge_of_chaos() {
        check_against_monte_carlo(Activation::Tanh, tanh, tanh_slope, 1.5, 0.05, &SAMPLE);
    }

    #[test]
    fn tanh_matches_monte_carlo_deep_in_chaos() {
        check_against_monte_carlo(Activation::Tanh, tanh, tanh_slope, 4.0, 0.05, &SAMPLE);
    }

    #[test]
    fn sigmoid_matches_monte_carlo() {
        let slope = |x: f64| sigmoid(x) * (1.0 - sigmoid(x));
        check_against_monte_carlo(Activation::Sigmoid, sigmoid, slope, 1.0, 0.0, &SAMPLE);
    }

    #[test]
    fn every_fixed_point_found_is_one_and_every_length_map_increases() {
        let activations = [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
            Activation::LeakyRelu { slope: 0.2 },
            Activation::Elu,
            Activation::Gelu,
            Activation::Silu,
            Activation::Softsign,
            Activation::Selu,
            Activation::Linear,
        ];
        for activation in activations {
            // fixed_point's scan relies on this.
            let unit = field(activation, 1.0, 0.0);
            let mut q = 1e-6;
            let mut previous = unit.length_map(q);
            while q < 1e6 {
                q *= 1.25;
                let next = unit.length_map(q);
                assert!(next > previous, "{activation}: not increasing at {q}");
                previous = next;
            }
            for (sigma_w2, sigma_b2) in [(0.5, 0.0), (1.0, 0.01), (1.7, 0.1), (3.0, 0.5)] {
                let mean_field = field(activation, sigma_w2, sigma_b2);
                if let FixedPoint::Finite(q) = mean_field.fixed_point() {
                    let gap = mean_field.length_map(q) - q;
                    assert!(
                        gap.abs() <= 1e-12 * q.max(1.0) || q == 0.0 && gap <= 0.0,
                        "{activation} ({sigma_w2}, {sigma_b2}): q* {q} maps {gap} away"
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_negative_and_non_finite_variances() {
        for (w, b) in [
            (-1.0, 0.0),
            (1.0, -0.1),
            (f64::NAN, 0.0),
            (1.0, f64::INFINITY),
        ] {
            assert!(MeanField::new(Activation::Tanh, w, b).is_err(), "{w} {b}");
        }
        let err = MeanField::new(Activation::Tanh, 1.0, -0.5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sigma_b^2 must be a finite number at least 0, not -0.5"
        );
    }

    #[test]
    fn a_runs_chi1_is_its_plain_networks_and_none_elsewhere() {
        let reference = vgrad_record::REFERENCE;
        let hidden = weight_variance(reference.init, reference.width, reference.width);
        let direct = field(Activation::Sigmoid, hidden, 0.0).chi1();
        assert!(direct.is_some());
        assert_eq!(run_chi1(&reference), direct);
        for other in [
            RunConfig {
                residual: true,
                ..reference.clone()
            },
            RunConfig {
                norm: Norm::Batch,
                ..reference.clone()
            },
            RunConfig {
                model: vgrad_record::Architecture::Cnn,
                ..reference.clone()
            },
            RunConfig {
                layers: 2,
                ..reference.clone()
            },
        ] {
            assert_eq!(run_chi1(&other), None, "{other:?}");
        }
    }

    #[test]
    fn weight_variances_of_the_inits() {
        let close = |got: f64, want: f64| (got - want).abs() < 1e-12 * want;
        for n in [10, 100, 784] {
            assert!(close(weight_variance(Init::GlorotUniform, n, n), 1.0));
            assert!(close(weight_variance(Init::GlorotNormal, n, n), 1.0));
            assert!(close(weight_variance(Init::HeNormal, n, n), 2.0));
            assert!(close(weight_variance(Init::HeUniform, n, n), 2.0));
            assert!(close(weight_variance(Init::LecunNormal, n, n), 1.0));
            assert!(close(weight_variance(Init::Standard, n, n), 1.0 / 3.0));
            assert!(close(
                weight_variance(Init::Variance { sigma_w2: 1.75 }, n, 10),
                1.75
            ));
            assert!(close(
                weight_variance(Init::Orthogonal { gain: 1.0 }, n, n),
                1.0
            ));
        }
        assert!(close(
            weight_variance(Init::Normal { std: 1.0 }, 10, 10),
            10.0
        ));
        assert!(close(
            weight_variance(Init::Uniform { limit: 0.3 }, 100, 5),
            3.0
        ));
        // Glorot: 2 fan_in / (fan_in + fan_out).
        assert!(close(weight_variance(Init::GlorotNormal, 300, 100), 1.5));
        // Orthonormal columns of length 400 (fan_in 400 >= fan_out 100): entries of
        // variance 1 / 400, so gain^2; orthonormal rows of length 400 when fan_out is
        // the larger: 100 / 400 of it.
        let orthogonal = Init::Orthogonal { gain: 2.0 };
        assert!(close(weight_variance(orthogonal, 400, 100), 4.0));
        assert!(close(weight_variance(orthogonal, 100, 400), 1.0));
    }
    #[test]
    fn a_critical_bias_variance_puts_the_run_on_chi_1_equal_1_or_says_why_not() {
        let critical = |activation: &str, init: &str| RunConfig {
            activation: activation.parse().unwrap(),
            init: init.parse().unwrap(),
            bias_variance: "critical".parse().unwrap(),
            width: 200,
            ..RunConfig::default()
        };
        // Orthogonal weights of gain sqrt(1.05) and Gaussian ones of variance 1.05 share
        // sigma_w^2, so their critical sigma_b^2: Pennington et al. 2017's point.
        for init in ["orthogonal:1.0246950766", "variance:1.05"] {
            let cfg = critical("tanh", init);
            let sigma_b2 = run_bias_variance(&cfg).unwrap();
            assert!((sigma_b2 - 2.0105e-5).abs() < 1e-8, "{init}: {sigma_b2}");
            assert!((run_chi1(&cfg).unwrap() - 1.0).abs() < 1e-6, "{init}");
        }
        let number = RunConfig {
            bias_variance: "0.05".parse().unwrap(),
            ..RunConfig::default()
        };
        assert_eq!(run_bias_variance(&number), Ok(0.05));
        let error = |cfg: RunConfig| run_bias_variance(&cfg).unwrap_err().to_string();
        assert_eq!(
            error(critical("relu", "variance:2")),
            "--bias-variance critical: chi_1 of relu is sigma_w^2 times a constant whatever \
             sigma_b^2; its critical point is a weight variance (--init variance:<sigma_w^2>) \
             with --bias-variance 0"
        );
        assert_eq!(
            error(critical("tanh", "variance:0.9")),
            "--bias-variance critical: no sigma_b^2 in [0, 100] puts tanh with sigma_w^2 = \
             0.9000 (--init variance:0.9 at --width 200) on chi_1 = 1; sigma_w^2 must be large \
             enough that the network is chaotic at sigma_b^2 = 0 (above 1.0000 for tanh)"
        );
        assert!(
            error(RunConfig {
                norm: Norm::Layer,
                ..critical("tanh", "variance:1.05")
            })
            .contains("leave out --norm and --residual"),
        );
    }
}
