//! The phase diagram: [`DepthScales`] over a grid of (sigma_w^2, sigma_b^2), fast enough
//! to draw (Poole et al. 2016, Fig. 3; Schoenholz et al. 2017, Fig. 1).
//!
//! Point by point, [`MeanField::depth_scales`] finds q* by bisecting the length map on
//! panels, about a thousand evaluations of phi per step of the bisection. Along a row of
//! the grid q* moves little from one sigma_w^2 to the next, so here, for tanh and the
//! sigmoid, whose length map has one positive fixed point, q* is found by Newton's method
//! from the row's previous q*, on the 200-node Gauss–Hermite rule (the slope from Stein's
//! lemma, as [`MeanField::length_slope_at`]), and c* from the Hermite series. The numbers
//! agree with [`MeanField::depth_scales`] to the rules' accuracy (a test checks 1e-7);
//! a point where Newton does not settle, where q* leaves the rule's range, and every
//! other activation, takes [`MeanField::depth_scales`].

use vgrad_record::Activation;

use crate::depth_scales::{DepthScales, HERMITE_MAX_Q, depth_scale};
use crate::mean_field::MeanField;
use crate::quadrature::GaussHermite;

/// Newton steps tried for q* before a point falls back to the panels.
const NEWTON_STEPS: usize = 60;

/// The depth scales at every (sigma_w^2, sigma_b^2) of the grid: row `j` holds
/// `sigma_b2s[j]`, column `i` `sigma_w2s[i]`, so the result is `sigma_b2s.len()` rows of
/// `sigma_w2s.len()` values (in the order given: ascending sigma_w^2 is fastest). `None`
/// where q* is not a finite positive number or a variance is invalid.
pub fn phase_diagram(
    activation: Activation,
    sigma_w2s: &[f64],
    sigma_b2s: &[f64],
) -> Vec<Vec<Option<DepthScales>>> {
    sigma_b2s
        .iter()
        .map(|&sigma_b2| {
            let mut previous_q = 1.0;
            sigma_w2s
                .iter()
                .map(|&sigma_w2| {
                    let field = MeanField::new(activation, sigma_w2, sigma_b2).ok()?;
                    let fast = has_one_fixed_point(activation)
                        .then(|| newton_fixed_point(&field, previous_q))
                        .flatten();
                    let scales = match fast {
                        Some(at) => Some(scales_at(&field, &at)),
                        None => field.depth_scales(),
                    };
                    if let Some(s) = &scales {
                        previous_q = s.q_star;
                    }
                    scales
                })
                .collect()
        })
        .collect()
}

/// Whether the length map has one positive fixed point (for sigma_b^2 > 0), so that
/// Newton's method from any start finds the one [`MeanField::fixed_point`] reports.
fn has_one_fixed_point(activation: Activation) -> bool {
    matches!(activation, Activation::Tanh | Activation::Sigmoid)
}

/// q* by Newton's method on the 200-node rule from `start`, with chi_1 and the length
/// map's slope from the same nodes; `None` where it does not settle within
/// [`NEWTON_STEPS`] or leaves (1e-6, [`HERMITE_MAX_Q`]].
fn newton_fixed_point(field: &MeanField, start: f64) -> Option<FixedPointSlopes> {
    let phi = field.activation();
    let rule = GaussHermite::standard();
    let sigma_w2 = field.sigma_w2();
    let mut q = start.clamp(1e-3, HERMITE_MAX_Q);
    for _ in 0..NEWTON_STEPS {
        let sd = q.sqrt();
        let (mut square, mut stein, mut slope_square) = (0.0, 0.0, 0.0);
        for (&z, &w) in rule.nodes().iter().zip(rule.weights()) {
            let u = sd * z;
            let (value, derivative) = (phi.value(u), phi.derivative(u));
            square += w * value * value;
            stein += w * u * value * derivative;
            slope_square += w * derivative * derivative;
        }
        let gap = sigma_w2 * square + field.sigma_b2() - q;
        let chi_q = sigma_w2 * stein / q;
        if chi_q >= 1.0 {
            return None;
        }
        let next = q - gap / (chi_q - 1.0);
        if !(next > 1e-6 && next <= HERMITE_MAX_Q) {
            return None;
        }
        if (next - q).abs() <= 1e-15 * q {
            // One step from q*: the slopes at q are those at q* to the rule's accuracy.
            return Some(FixedPointSlopes {
                q: next,
                chi_1: sigma_w2 * slope_square,
                chi_q,
            });
        }
        q = next;
    }
    None
}

/// q* with the slopes of the two maps there.
struct FixedPointSlopes {
    q: f64,
    chi_1: f64,
    chi_q: f64,
}

/// The depth scales of `field` at its fixed point.
fn scales_at(field: &MeanField, at: &FixedPointSlopes) -> DepthScales {
    let (c_star, chi_c) = field.correlation_fixed_point_at(at.q, at.chi_1);
    DepthScales {
        q_star: at.q,
        chi_1: at.chi_1,
        chi_q: at.chi_q,
        c_star,
        chi_c,
        xi_q: depth_scale(at.chi_q),
        xi_c: depth_scale(chi_c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_agrees_with_the_depth_scales_point_by_point() {
        let sigma_w2s: Vec<f64> = (0..9).map(|i| 0.5 + 0.45 * f64::from(i)).collect();
        let sigma_b2s = [0.0, 0.01, 0.05, 0.3];
        for activation in [Activation::Tanh, Activation::Sigmoid, Activation::Elu] {
            let grid = phase_diagram(activation, &sigma_w2s, &sigma_b2s);
            assert_eq!(grid.len(), sigma_b2s.len());
            for (row, &sigma_b2) in grid.iter().zip(&sigma_b2s) {
                assert_eq!(row.len(), sigma_w2s.len());
                for (cell, &sigma_w2) in row.iter().zip(&sigma_w2s) {
                    let point = MeanField::new(activation, sigma_w2, sigma_b2)
                        .unwrap()
                        .depth_scales();
                    let at = format!("{activation:?} at ({sigma_w2}, {sigma_b2})");
                    match (cell, point) {
                        (Some(g), Some(p)) => {
                            for (name, a, b) in [
                                ("q*", g.q_star, p.q_star),
                                ("chi_1", g.chi_1, p.chi_1),
                                ("chi_q", g.chi_q, p.chi_q),
                                ("c*", g.c_star, p.c_star),
                                ("chi_c", g.chi_c, p.chi_c),
                            ] {
                                assert!(
                                    (a - b).abs() <= 1e-7 * b.abs().max(1e-3),
                                    "{at}: {name} {a} against {b}"
                                );
                            }
                        }
                        (None, None) => {}
                        (g, p) => panic!("{at}: {g:?} against {p:?}"),
                    }
                }
            }
        }
    }
}
