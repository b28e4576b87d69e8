//! How deep a signal survives in a network at initialisation: the correlation map, its
//! fixed point c* and slope chi_c, and the depth scales xi_q and xi_c (Schoenholz et al.
//! 2017, "Deep information propagation", section 3), with the critical line where
//! chi_1 = 1 (Poole et al. 2016).
//!
//! Two inputs enter the network; deep in it each pre-activation has variance q*, and the
//! correlation c between the two follows the correlation map
//! c_{l+1} = (sigma_w^2 E[phi(U) phi(V)] + sigma_b^2) / q*, for U, V jointly normal with
//! variance q* each and correlation c_l. c = 1 is always fixed. Where chi_1 < 1 (the
//! ordered phase) it is the stable fixed point: every pair of inputs ends up alike. Where
//! chi_1 > 1 (the chaotic phase) a fixed point c* < 1 takes over: nearby inputs are driven
//! apart. The slope of the map there, chi_c = sigma_w^2 E[phi'(U) phi'(V)], sets how fast
//! the correlation approaches c*: |c_l - c*| ~ e^{-l / xi_c} with xi_c = -1 / ln chi_c. In
//! the same way q_l approaches q* as e^{-l / xi_q}, with xi_q = -1 / ln chi_q and chi_q the
//! slope of the length map at q*. The paper finds networks trainable to a depth of about
//! 6 xi_c; at chi_1 = 1, chi_c = 1 and xi_c diverges.

use vgrad_record::Activation;

use crate::mean_field::{FixedPoint, MeanField, is_positively_homogeneous};
use crate::quadrature::{GaussHermite, HermiteSeries, expect_normal, expect_normal_pair};

/// The largest pre-activation variance at which a smooth activation's pair expectations
/// take the [`GaussHermite::standard`] rule (200 nodes a side) rather than nested panels.
/// tanh, the least smooth of them, has poles at +-i pi / 2, which lie pi / (2 sqrt(q))
/// from the real line in units of sqrt(q): the closer, the slower the rule converges.
/// Against a 250-node rule, E[tanh'(U) tanh'(V)] errs by 7e-5 with 128 nodes at q = 6 and
/// by 2e-6 at q = 4; 200 nodes bring that below 1e-7 up to q = 4 (2e-6 at q = 6). Above,
/// the panels.
pub const HERMITE_MAX_Q: f64 = 4.0;

/// The orders of the Hermite series of a smooth activation ([`HermiteSeries`]). Its terms
/// shrink like c^n times the coefficients', so 160 orders leave less than 1e-12 at the c*
/// of a phase diagram's chaotic side (checked per point: see [`SERIES_TOLERANCE`]).
pub const SERIES_ORDERS: usize = 160;

/// The largest truncation bound ([`HermiteSeries::truncation_bound`]) at c* that the series
/// may leave; beyond it (c* close to 1, near the edge) the pair rule takes over.
const SERIES_TOLERANCE: f64 = 1e-12;

/// How close to 1 a slope counts as 1, where a depth scale is then infinite: the
/// quadrature's rounding, not a physical tolerance.
const UNIT_SLOPE: f64 = 1e-12;

/// The correlation map's fixed point and the depth scales at one (activation, sigma_w^2,
/// sigma_b^2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthScales {
    /// The length map's fixed point q*.
    pub q_star: f64,
    /// The slope of the correlation map at c = 1: the factor by which the mean square of
    /// the back-propagated error changes per layer.
    pub chi_1: f64,
    /// The slope of the length map at q*.
    pub chi_q: f64,
    /// The stable fixed point of the correlation map: 1 in the ordered phase and at the
    /// edge, below 1 in the chaotic phase.
    pub c_star: f64,
    /// The slope of the correlation map at c*: chi_1 where c* = 1.
    pub chi_c: f64,
    /// The depth scale of the length, -1 / ln chi_q (infinite where chi_q is 1).
    pub xi_q: f64,
    /// The depth scale of the correlation, -1 / ln chi_c (infinite at the edge of chaos).
    pub xi_c: f64,
}

/// -1 / ln(slope): the depth over which a deviation shrinks by e at this per-layer slope;
/// infinite for a slope of 1 or more (the deviation does not shrink).
pub fn depth_scale(slope: f64) -> f64 {
    if slope >= 1.0 - UNIT_SLOPE {
        f64::INFINITY
    } else {
        -1.0 / slope.ln()
    }
}

/// Which rule the pair expectations of an activation take at variance `q`: Gauss–Hermite
/// for a smooth activation up to [`HERMITE_MAX_Q`] (about 40,000 evaluations), nested
/// panels where there is a kink at 0 or the variance is larger (about a million).
fn pair_rule(activation: Activation, q: f64) -> PairRule {
    let smooth = match activation {
        Activation::Sigmoid | Activation::Tanh | Activation::Gelu | Activation::Silu => true,
        Activation::Relu
        | Activation::LeakyRelu { .. }
        | Activation::Linear
        | Activation::Elu
        | Activation::Selu
        | Activation::Softsign => false,
    };
    if smooth && q <= HERMITE_MAX_Q {
        PairRule::Hermite
    } else {
        PairRule::Panels
    }
}

/// How a pair expectation is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairRule {
    Hermite,
    Panels,
}

impl MeanField {
    /// E[f(U) g(V)] for U, V normal with variance `q` each and correlation `c`, by the rule
    /// that suits the activation.
    fn pair(&self, q: f64, c: f64, f: impl Fn(f64) -> f64, g: impl Fn(f64) -> f64) -> f64 {
        match pair_rule(self.activation(), q) {
            PairRule::Hermite => GaussHermite::standard().expect_pair(q, c, f, g),
            PairRule::Panels => expect_normal_pair(q, c, f, g),
        }
    }

    /// The slope of the length map at `q` (> 0): sigma_w^2 d/dq E[phi(sqrt(q) Z)^2], which
    /// Stein's lemma turns into sigma_w^2 E[U phi(U) phi'(U)] / q for U ~ N(0, q), so no
    /// second derivative is needed. At q = 0, its limit sigma_w^2 phi'(0)^2, which is
    /// chi_1 there.
    pub fn length_slope_at(&self, q: f64) -> f64 {
        let phi = self.activation();
        if q == 0.0 {
            return self.chi1_at(0.0);
        }
        self.sigma_w2() * expect_normal(0.0, q, |u| u * phi.value(u) * phi.derivative(u)) / q
    }

    /// The correlation map at pre-activation variance `q` (> 0) and correlation `c` in
    /// [-1, 1]: (sigma_w^2 E[phi(U) phi(V)] + sigma_b^2) / q.
    pub fn correlation_map(&self, q: f64, c: f64) -> f64 {
        let phi = self.activation();
        let both = self.pair(q, c, |u| phi.value(u), |v| phi.value(v));
        (self.sigma_w2() * both + self.sigma_b2()) / q
    }

    /// The slope of the correlation map at `q` and `c`: sigma_w^2 E[phi'(U) phi'(V)]
    /// (Price's theorem: d/dc E[phi(U) phi(V)] = q E[phi'(U) phi'(V)]).
    pub fn chi_c_at(&self, q: f64, c: f64) -> f64 {
        let phi = self.activation();
        self.sigma_w2() * self.pair(q, c, |u| phi.derivative(u), |v| phi.derivative(v))
    }

    /// The stable fixed point c* of the correlation map at q* and the map's slope there,
    /// `None` where q* is not a finite positive number.
    pub fn correlation_fixed_point(&self) -> Option<(f64, f64)> {
        let q = self.fixed_point().q().filter(|&q| q > 0.0)?;
        Some(self.correlation_fixed_point_at(q, self.chi1_at(q)))
    }

    /// c* and chi_c at pre-activation variance `q` where chi_1 is `chi_1`.
    ///
    /// Where chi_1 <= 1, c* = 1 and chi_c = chi_1. Where chi_1 > 1, c* is the zero of
    /// h(c) = map(c) - c below 1: h(1) = 0 with slope chi_1 - 1 > 0, so h < 0 just below
    /// 1, and h(0) >= 0 (E[phi(U) phi(V)] at c = 0 is E[phi(U)]^2). For a smooth activation
    /// up to [`HERMITE_MAX_Q`] the map is the Hermite series of phi (Mehler's formula:
    /// [`HermiteSeries`]), which costs a polynomial per evaluation; where the series'
    /// truncation could matter (c* near 1), and for every other activation, the pair rule.
    pub(crate) fn correlation_fixed_point_at(&self, q: f64, chi_1: f64) -> (f64, f64) {
        if chi_1 <= 1.0 + UNIT_SLOPE {
            return (1.0, chi_1);
        }
        let (sigma_w2, sigma_b2) = (self.sigma_w2(), self.sigma_b2());
        if pair_rule(self.activation(), q) == PairRule::Hermite {
            let phi = self.activation();
            let series =
                HermiteSeries::of(|x| phi.value(x), q, SERIES_ORDERS, GaussHermite::standard());
            let map = |c: f64| (sigma_w2 * series.pair(c) + sigma_b2) / q;
            let slope = |c: f64| sigma_w2 * series.pair_slope(c) / q;
            let c = attracting_correlation(map, slope);
            if series.truncation_bound(c) <= SERIES_TOLERANCE {
                return (c, slope(c));
            }
        }
        let c = attracting_correlation(|c| self.correlation_map(q, c), |c| self.chi_c_at(q, c));
        (c, self.chi_c_at(q, c))
    }

    /// q*, chi_1, chi_q, c*, chi_c and the depth scales xi_q and xi_c; `None` where q* is
    /// not a finite positive number (the ReLU family at or beyond sigma_w^2 = 2 / (1 +
    /// slope^2), and any network whose signal dies out, q* = 0, which a bias prevents).
    pub fn depth_scales(&self) -> Option<DepthScales> {
        let q_star = self.fixed_point().q().filter(|&q| q > 0.0)?;
        let chi_1 = self.chi1_at(q_star);
        let chi_q = self.length_slope_at(q_star);
        let (c_star, chi_c) = self.correlation_fixed_point()?;
        Some(DepthScales {
            q_star,
            chi_1,
            chi_q,
            c_star,
            chi_c,
            xi_q: depth_scale(chi_q),
            xi_c: depth_scale(chi_c),
        })
    }
}

/// The zero below 1 of map(c) - c, for a correlation map that is convex in c with
/// map(1) = 1 and a slope above 1 there (the chaotic phase): the gap is >= 0 on [0, c*]
/// and < 0 on (c*, 1), so every point evaluated narrows the bracket around c*. Newton's
/// method inside the bracket, bisecting where a step would leave it.
fn attracting_correlation(map: impl Fn(f64) -> f64, slope: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    let mut c = 0.0;
    for _ in 0..200 {
        let h = map(c) - c;
        if h == 0.0 {
            break;
        }
        if h > 0.0 {
            lo = c;
        } else {
            hi = c;
        }
        let step_slope = slope(c) - 1.0;
        let newton = c - h / step_slope;
        let next = if step_slope < 0.0 && newton > lo && newton < hi {
            newton
        } else {
            lo + (hi - lo) / 2.0
        };
        let settled = (next - c).abs() <= 4.0 * f64::EPSILON || hi - lo <= 4.0 * f64::EPSILON;
        c = next;
        if settled {
            break;
        }
    }
    c
}

/// The critical sigma_w^2 at `sigma_b2`: where chi_1 = 1, between the ordered phase
/// (below) and the chaotic one (above). `None` if chi_1 does not reach 1 for any sigma_w^2
/// up to 100, if it jumps over 1 (where q* jumps from one branch of the length map to
/// another, as SiLU's does at small sigma_b^2), or `sigma_b2` is negative or not finite.
///
/// For the ReLU family and the identity it is 2 / (1 + slope^2) (1 for the identity)
/// whatever sigma_b^2, since chi_1 = sigma_w^2 E[phi'^2] there does not depend on q.
/// Otherwise chi_1 is found to rise with sigma_w^2 (a test checks it for every smooth
/// activation), and the crossing is bisected to the last few bits.
pub fn critical_weight_variance(activation: Activation, sigma_b2: f64) -> Option<f64> {
    const LARGEST: f64 = 100.0;
    let chi_1 = |sigma_w2: f64| -> Option<f64> {
        let field = MeanField::new(activation, sigma_w2, sigma_b2).ok()?;
        if is_positively_homogeneous(activation) {
            return Some(field.chi1_at(1.0));
        }
        match field.fixed_point() {
            FixedPoint::Finite(q) => Some(field.chi1_at(q)),
            // A signal that grows without bound is past the edge.
            FixedPoint::Unbounded => Some(f64::INFINITY),
            FixedPoint::NotUnique => None,
        }
    };
    if is_positively_homogeneous(activation) {
        // chi_1 = sigma_w^2 E[phi'^2], linear in sigma_w^2.
        return chi_1(1.0).filter(|s| *s > 0.0).map(|s| 1.0 / s);
    }
    // Scan upward in steps of 1/8 for the first sigma_w^2 where chi_1 >= 1.
    let mut lo = 0.0;
    let mut hi = None;
    let mut sigma_w2 = 0.125;
    while sigma_w2 <= LARGEST {
        if chi_1(sigma_w2)? >= 1.0 {
            hi = Some(sigma_w2);
            break;
        }
        lo = sigma_w2;
        sigma_w2 += 0.125;
    }
    let mut hi = hi?;
    for _ in 0..60 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        if chi_1(mid)? >= 1.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let crossing = lo + (hi - lo) / 2.0;
    // Where q* jumps between two branches of the length map, chi_1 jumps over 1 and there
    // is no point where it equals 1.
    (chi_1(crossing)? - 1.0).abs().lt(&JUMP).then_some(crossing)
}

/// How far from 1 chi_1 may be at the bisected crossing before it counts as a jump over 1
/// rather than a crossing.
const JUMP: f64 = 1e-6;

/// The critical sigma_b^2 at `sigma_w2`: the bias variance that puts a network of weight
/// variance `sigma_w2` on the critical line, chi_1 = 1 (Pennington et al. 2017 pick points
/// of that line by sigma_w^2: at 1.05 its q* is small, and tanh's Jacobians there are
/// near-isometric when the weights are orthogonal). `None` where no sigma_b^2 in [0, 100]
/// gives chi_1 = 1: for the ReLU family and the identity (chi_1 does not depend on
/// sigma_b^2 there), for sigma_w^2 at or below the critical value at sigma_b^2 = 0 (the
/// network is ordered for every sigma_b^2), and where chi_1 jumps over 1.
///
/// For a smooth odd activation such as tanh, chi_1 falls as sigma_b^2 grows (a larger q*
/// saturates more units), so the crossing is bisected to the last few bits.
pub fn critical_bias_variance(activation: Activation, sigma_w2: f64) -> Option<f64> {
    const LARGEST: f64 = 100.0;
    if is_positively_homogeneous(activation) || !(sigma_w2.is_finite() && sigma_w2 > 0.0) {
        return None;
    }
    let chi_1 = |sigma_b2: f64| -> Option<f64> {
        let field = MeanField::new(activation, sigma_w2, sigma_b2).ok()?;
        match field.fixed_point() {
            FixedPoint::Finite(q) => Some(field.chi1_at(q)),
            FixedPoint::Unbounded => Some(f64::INFINITY),
            FixedPoint::NotUnique => None,
        }
    };
    // chaotic at the low end, ordered at the high end: the crossing lies between.
    let (mut lo, mut hi) = (0.0, LARGEST);
    if chi_1(lo)? <= 1.0 || chi_1(hi)? >= 1.0 {
        return None;
    }
    for _ in 0..200 {
        // Bisect on a log scale above a tiny floor: the critical sigma_b^2 near sigma_w^2
        // = 1 is of order 1e-5, and a linear bisection from 100 would spend its bits there.
        let mid = if lo == 0.0 {
            hi / 16.0
        } else {
            (lo * hi).sqrt()
        };
        if mid <= lo || mid >= hi || hi - lo <= hi * 1e-15 {
            break;
        }
        if chi_1(mid)? > 1.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let crossing = if lo == 0.0 { hi } else { (lo * hi).sqrt() };
    (chi_1(crossing)? - 1.0).abs().lt(&JUMP).then_some(crossing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    fn field(activation: Activation, sigma_w2: f64, sigma_b2: f64) -> MeanField {
        MeanField::new(activation, sigma_w2, sigma_b2).expect("valid variances")
    }

    /// Monte Carlo estimates of E[f(U) g(V)] for U, V with variance q and correlation c,
    /// and their standard error.
    fn monte_carlo(q: f64, c: f64, f: impl Fn(f64) -> f64, g: impl Fn(f64) -> f64) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let n = 400_000;
        let across = (1.0 - c * c).sqrt();
        let (mut sum, mut square) = (0.0, 0.0);
        for _ in 0..n {
            let z1: f64 = rng.sample(StandardNormal);
            let z2: f64 = rng.sample(StandardNormal);
            let x = f(q.sqrt() * z1) * g(q.sqrt() * (c * z1 + across * z2));
            sum += x;
            square += x * x;
        }
        let mean = sum / f64::from(n);
        let variance = square / f64::from(n) - mean * mean;
        (mean, (variance / f64::from(n)).sqrt())
    }

    #[test]
    fn for_tanh_the_hermite_rule_agrees_with_the_panels_up_to_its_largest_variance() {
        let tanh = |x: f64| x.tanh();
        let derivative = |x: f64| 1.0 - x.tanh().powi(2);
        for q in [0.5, 2.0, HERMITE_MAX_Q] {
            for c in [0.0, 0.3, 0.9] {
                for (name, f) in [
                    ("values", &tanh as &dyn Fn(f64) -> f64),
                    ("slopes", &derivative),
                ] {
                    let hermite = GaussHermite::standard().expect_pair(q, c, f, f);
                    let panels = expect_normal_pair(q, c, f, f);
                    assert!(
                        (hermite - panels).abs() < 1e-7 * panels.abs().max(1e-3),
                        "{name} q {q} c {c}: {hermite} against {panels}"
                    );
                }
            }
        }
        assert_eq!(
            pair_rule(Activation::Tanh, HERMITE_MAX_Q),
            PairRule::Hermite
        );
        assert_eq!(pair_rule(Activation::Tanh, 4.5), PairRule::Panels);
        assert_eq!(pair_rule(Activation::Elu, 1.0), PairRule::Panels);
    }

    #[test]
    fn the_relu_familys_critical_line_is_two_over_the_mean_square_slope() {
        for sigma_b2 in [0.0, 0.05, 0.3] {
            let relu = critical_weight_variance(Activation::Relu, sigma_b2).expect("relu");
            assert!((relu - 2.0).abs() < 1e-12, "{relu}");
            let slope = 0.2;
            let leaky =
                critical_weight_variance(Activation::LeakyRelu { slope }, sigma_b2).expect("leaky");
            assert!(
                (leaky - 2.0 / (1.0 + slope * slope)).abs() < 1e-12,
                "{leaky}"
            );
            let linear = critical_weight_variance(Activation::Linear, sigma_b2).expect("id");
            assert!((linear - 1.0).abs() < 1e-12, "{linear}");
        }
    }

    #[test]
    fn tanh_without_bias_turns_chaotic_at_sigma_w2_one() {
        // With no bias q* = 0 below sigma_w^2 = 1, where chi_1 = sigma_w^2 tanh'(0)^2.
        let critical = critical_weight_variance(Activation::Tanh, 0.0).expect("tanh");
        assert!((critical - 1.0).abs() < 1e-9, "{critical}");
    }

    #[test]
    fn chi_1_is_one_on_the_critical_line_and_the_depth_scale_diverges_there() {
        // (Sigmoid's mean keeps q* large: chi_1 stays below 1 up to sigma_w^2 = 100.)
        for activation in [Activation::Tanh, Activation::Softsign] {
            for sigma_b2 in [0.01, 0.05, 0.5] {
                let Some(sigma_w2) = critical_weight_variance(activation, sigma_b2) else {
                    panic!("{activation:?} at sigma_b^2 = {sigma_b2}: no crossing");
                };
                let chi_1 = field(activation, sigma_w2, sigma_b2)
                    .chi1()
                    .expect("finite q*");
                assert!(
                    (chi_1 - 1.0).abs() < 1e-9,
                    "{activation:?} {sigma_b2}: {chi_1}"
                );
                // Either side: ordered below, chaotic above.
                let below = field(activation, sigma_w2 * 0.95, sigma_b2).depth_scales();
                let above = field(activation, sigma_w2 * 1.05, sigma_b2).depth_scales();
                let (below, above) = (below.expect("below"), above.expect("above"));
                assert_eq!(below.c_star, 1.0, "{activation:?} {sigma_b2}");
                assert!(above.c_star < 1.0, "{activation:?} {sigma_b2}: {above:?}");
                // Closer to the edge, deeper signals: xi_c grows toward it from both sides.
                let nearer_below = field(activation, sigma_w2 * 0.99, sigma_b2).depth_scales();
                let nearer_above = field(activation, sigma_w2 * 1.01, sigma_b2).depth_scales();
                assert!(nearer_below.expect("nearer").xi_c > below.xi_c);
                assert!(nearer_above.expect("nearer").xi_c > above.xi_c);
            }
        }
        // SiLU's q* jumps at small sigma_b^2, and chi_1 with it: no critical line there.
        assert_eq!(critical_weight_variance(Activation::Silu, 0.01), None);
        assert_eq!(depth_scale(1.0), f64::INFINITY);
        assert!((depth_scale((-0.5f64).exp()) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn in_the_ordered_phase_c_star_is_one_and_xi_c_follows_chi_1() {
        let scales = field(Activation::Tanh, 1.2, 0.05)
            .depth_scales()
            .expect("finite");
        assert_eq!(scales.c_star, 1.0);
        assert!(scales.chi_1 < 1.0);
        assert_eq!(scales.chi_c, scales.chi_1);
        assert!((scales.xi_c + 1.0 / scales.chi_1.ln()).abs() < 1e-12 * scales.xi_c);
        // The ReLU family: the length map is q -> sigma_w^2 / 2 q + sigma_b^2, whose slope
        // is chi_1 = sigma_w^2 / 2 at every q.
        let relu = field(Activation::Relu, 1.5, 0.1)
            .depth_scales()
            .expect("finite");
        assert!((relu.q_star - 0.1 / (1.0 - 0.75)).abs() < 1e-12, "{relu:?}");
        assert!((relu.chi_q - 0.75).abs() < 1e-12, "{relu:?}");
        assert!((relu.xi_q + 1.0 / 0.75f64.ln()).abs() < 1e-9, "{relu:?}");
        assert_eq!(relu.c_star, 1.0);
        // Beyond the ReLU family's edge q* is unbounded: no depth scales.
        assert!(field(Activation::Relu, 2.5, 0.1).depth_scales().is_none());
    }

    #[test]
    fn in_the_chaotic_phase_c_star_is_fixed_and_attracting_as_monte_carlo_says() {
        let tanh = Activation::Tanh;
        let net = field(tanh, 3.0, 0.05);
        let scales = net.depth_scales().expect("finite");
        assert!(scales.chi_1 > 1.0, "{scales:?}");
        assert!(scales.c_star > 0.0 && scales.c_star < 1.0, "{scales:?}");
        assert!(scales.chi_c < 1.0 && scales.xi_c.is_finite(), "{scales:?}");
        // c* is a fixed point of the map, estimated from samples, within 4 standard errors.
        let q = scales.q_star;
        let (both, error) = monte_carlo(q, scales.c_star, f64::tanh, f64::tanh);
        let sampled = (3.0 * both + 0.05) / q;
        assert!(
            (sampled - scales.c_star).abs() < 4.0 * 3.0 * error / q,
            "map(c*) = {sampled} against c* = {}",
            scales.c_star
        );
        let derivative = |x: f64| 1.0 - x.tanh().powi(2);
        let (slopes, error) = monte_carlo(q, scales.c_star, derivative, derivative);
        assert!(
            (3.0 * slopes - scales.chi_c).abs() < 4.0 * 3.0 * error,
            "chi_c {} against {}",
            scales.chi_c,
            3.0 * slopes
        );
        // Iterating the map from two far-apart correlations ends at c* (slowly from near 1,
        // where the map's slope is chi_1 > 1).
        for start in [0.1, 0.99] {
            let mut c: f64 = start;
            for _ in 0..1000 {
                c = net.correlation_map(q, c);
            }
            assert!(
                (c - scales.c_star).abs() < 1e-9,
                "{start}: {c} against {scales:?}"
            );
        }
    }

    #[test]
    fn the_correlation_maps_slope_at_one_is_chi_1_and_the_length_maps_slope_is_a_difference_quotient()
     {
        for (activation, sigma_w2) in [
            (Activation::Tanh, 2.0),
            (Activation::Sigmoid, 9.0),
            (Activation::Elu, 1.5),
            (Activation::Softsign, 2.5),
        ] {
            let net = field(activation, sigma_w2, 0.1);
            let q = net.fixed_point().q().expect("finite");
            let chi_1 = net.chi1_at(q);
            let at_one = net.chi_c_at(q, 1.0);
            assert!(
                (at_one - chi_1).abs() < 1e-6 * chi_1,
                "{activation:?}: {at_one} {chi_1}"
            );
            // map(1) = 1 at q*.
            let one = net.correlation_map(q, 1.0);
            assert!((one - 1.0).abs() < 1e-6, "{activation:?}: {one}");
            let h = 1e-4 * q;
            let quotient = (net.length_map(q + h) - net.length_map(q - h)) / (2.0 * h);
            let slope = net.length_slope_at(q);
            assert!(
                (slope - quotient).abs() < 1e-6 * slope.abs().max(1.0),
                "{activation:?}: {slope} against {quotient}"
            );
        }
    }

    #[test]
    fn the_critical_bias_variance_puts_tanh_on_the_critical_line() {
        for sigma_w2 in [1.05, 1.5, 2.0, 4.0] {
            let sigma_b2 = critical_bias_variance(Activation::Tanh, sigma_w2)
                .unwrap_or_else(|| panic!("sigma_w^2 = {sigma_w2}"));
            let field = field(Activation::Tanh, sigma_w2, sigma_b2);
            let FixedPoint::Finite(q) = field.fixed_point() else {
                panic!("no fixed point at {sigma_w2}, {sigma_b2}");
            };
            let chi1 = field.chi1_at(q);
            assert!((chi1 - 1.0).abs() < 1e-6, "{sigma_w2}: chi_1 = {chi1}");
            // The inverse of the critical weight variance at that sigma_b^2.
            let back = critical_weight_variance(Activation::Tanh, sigma_b2).unwrap();
            assert!(
                (back - sigma_w2).abs() < 1e-4 * sigma_w2,
                "{sigma_w2} {back}"
            );
        }
        // Closer to sigma_w^2 = 1 the critical line has a smaller sigma_b^2 and q*.
        let near = critical_bias_variance(Activation::Tanh, 1.05).unwrap();
        let far = critical_bias_variance(Activation::Tanh, 2.0).unwrap();
        assert!(near < 1e-3 && near < far, "{near} {far}");
        // Pennington et al. 2017's point: sigma_w^2 = 1.05 with sigma_b^2 = 2.01e-5 (a
        // bisection over numpy's 200-node Gauss-Hermite rule gives 2.0105e-5, q* = 0.0259).
        assert!((near / 2.0105e-5 - 1.0).abs() < 1e-3, "{near}");
        // Ordered for every sigma_b^2, and the ReLU family, have none.
        assert_eq!(critical_bias_variance(Activation::Tanh, 0.9), None);
        assert_eq!(critical_bias_variance(Activation::Relu, 2.0), None);
    }

    #[test]
    fn a_wide_random_tanh_network_carries_two_inputs_correlation_as_the_map_says() {
        // Two inputs with pre-activation variance q* and correlation 0.95 enter a random
        // network of width 1,000 (W ~ N(0, sigma_w^2 / n), b ~ N(0, sigma_b^2)) in the
        // chaotic phase; their pre-activations' correlation at each of 12 layers against
        // the correlation map iterated from 0.95 (finite width: about 1 / sqrt(n) apart).
        let (sigma_w2, sigma_b2, n) = (3.0_f64, 0.05_f64, 1000);
        let net = field(Activation::Tanh, sigma_w2, sigma_b2);
        let scales = net.depth_scales().expect("finite");
        let q = scales.q_star;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut normal = || -> f64 { rng.sample(StandardNormal) };
        let c0: f64 = 0.95;
        let mut z1: Vec<f64> = Vec::with_capacity(n);
        let mut z2: Vec<f64> = Vec::with_capacity(n);
        for _ in 0..n {
            let (a, b) = (normal(), normal());
            z1.push(q.sqrt() * a);
            z2.push(q.sqrt() * (c0 * a + (1.0 - c0 * c0).sqrt() * b));
        }
        let mut predicted = c0;
        for layer in 1..=12 {
            let (h1, h2): (Vec<f64>, Vec<f64>) = z1
                .iter()
                .zip(&z2)
                .map(|(a, b)| (a.tanh(), b.tanh()))
                .unzip();
            let mut next1 = vec![0.0; n];
            let mut next2 = vec![0.0; n];
            for i in 0..n {
                let bias = sigma_b2.sqrt() * normal();
                let (mut s1, mut s2) = (bias, bias);
                for j in 0..n {
                    let w = (sigma_w2 / n as f64).sqrt() * normal();
                    s1 += w * h1[j];
                    s2 += w * h2[j];
                }
                next1[i] = s1;
                next2[i] = s2;
            }
            (z1, z2) = (next1, next2);
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
            let measured = dot(&z1, &z2) / (dot(&z1, &z1) * dot(&z2, &z2)).sqrt();
            predicted = net.correlation_map(q, predicted);
            assert!(
                (measured - predicted).abs() < 0.04,
                "layer {layer}: measured {measured}, map {predicted}"
            );
        }
        // Chaos drives the two inputs apart, toward c* (about 0.3) from above.
        assert!(
            predicted < c0 - 0.1 && predicted > scales.c_star,
            "{predicted}"
        );
    }
}
