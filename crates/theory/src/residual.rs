//! The forward signal of a residual ReLU network at initialisation, in the wide limit:
//! how much each residual block multiplies the mean square of the pre-activations (Hanin &
//! Rolnick 2018; the branch scales of Fixup, Zhang et al. 2019, and SkipInit, De & Smith
//! 2020).
//!
//! Hidden layer 1 computes h_1 = relu(z_1); each later hidden layer adds a scaled branch,
//! h_l = h_(l-1) + alpha relu(z_l) with z_l = W_l h_(l-1), W ~ N(0, 2 / fan_in) (He's
//! variance) and zero biases. With s_l the mean square of h_l and m_l its mean, z_l is
//! normal with variance 2 s_(l-1), so E[relu(z_l)] = sqrt(s_(l-1) / pi) and E[relu(z_l)^2] =
//! s_(l-1). The residual stream is a sum of non-negative terms, so its mean does not
//! vanish and the cross term 2 alpha E[h relu(z)] = 2 alpha m sqrt(s / pi) counts:
//!
//! - m_l = m_(l-1) + alpha sqrt(s_(l-1) / pi);
//! - s_l = (1 + alpha^2) s_(l-1) + 2 alpha m_(l-1) sqrt(s_(l-1) / pi).
//!
//! Without the mean the factor per block would be 1 + alpha^2; with it, at alpha = 1,
//! about 2.6-3.

/// The growth per block of the pre-activations' mean square over `blocks` residual
/// blocks at branch scale `alpha`: (s_(1 + blocks) / s_1)^(1 / blocks), starting from
/// h_1 = relu(z_1) (m_1 / sqrt(s_1) = 1 / sqrt(pi)). The pre-activation z_(l+1) has mean
/// square 2 s_l, so this is also (ms(z_(blocks + 2)) / ms(z_2))^(1 / blocks). 1 for
/// `blocks` = 0 or `alpha` = 0.
pub fn relu_growth_per_block(alpha: f64, blocks: usize) -> f64 {
    if blocks == 0 {
        return 1.0;
    }
    let pi = std::f64::consts::PI;
    let (mut mean, mut square) = (1.0 / pi.sqrt(), 1.0_f64);
    for _ in 0..blocks {
        let branch_mean = (square / pi).sqrt();
        let next_square = (1.0 + alpha * alpha) * square + 2.0 * alpha * mean * branch_mean;
        mean += alpha * branch_mean;
        square = next_square;
    }
    square.powf(1.0 / blocks as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    #[test]
    fn no_branch_no_growth_and_the_mean_adds_to_one_plus_alpha_squared() {
        assert_eq!(relu_growth_per_block(0.0, 30), 1.0);
        assert_eq!(relu_growth_per_block(1.0, 0), 1.0);
        // One block from h_1: s_2 = (1 + a^2) + 2 a / pi exactly.
        let a = 0.5;
        let one = relu_growth_per_block(a, 1);
        let want = 1.0 + a * a + 2.0 * a / std::f64::consts::PI;
        assert!((one - want).abs() < 1e-15, "{one} against {want}");
        assert!(relu_growth_per_block(1.0, 62) > 2.0);
    }

    #[test]
    fn a_wide_random_residual_network_grows_as_the_recursion_says() {
        // Width 1,500, 8 blocks, He-normal weights, zero biases, from a normal input.
        let (n, blocks) = (1500, 8);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut normal = || -> f64 { rng.sample(StandardNormal) };
        for alpha in [1.0, 0.3] {
            let mean_square = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64;
            let mut z: Vec<f64> = (0..n).map(|_| normal()).collect();
            let mut h: Vec<f64> = z.iter().map(|x| x.max(0.0)).collect();
            let mut first = 0.0;
            for b in 0..=blocks {
                let next: Vec<f64> = (0..n)
                    .map(|_| {
                        let row: f64 = h.iter().map(|x| x * normal()).sum();
                        row * (2.0 / n as f64).sqrt()
                    })
                    .collect();
                z = next;
                if b == 0 {
                    first = mean_square(&z);
                }
                if b < blocks {
                    for (h, z) in h.iter_mut().zip(&z) {
                        *h += alpha * z.max(0.0);
                    }
                }
            }
            let measured = (mean_square(&z) / first).powf(1.0 / blocks as f64);
            let predicted = relu_growth_per_block(alpha, blocks);
            assert!(
                (measured / predicted - 1.0).abs() < 0.03,
                "alpha {alpha}: measured {measured}, predicted {predicted}"
            );
        }
    }
}
