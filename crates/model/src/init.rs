//! Drawing a layer's initial weights from a seeded generator.

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use vgrad_record::Init;
use vgrad_record::init::Resolved;

use crate::{ModelError, Result};

/// Draws a `fan_in x fan_out` weight matrix of `init`, row-major, from `rng`.
pub fn sample<R: Rng>(init: Init, fan_in: usize, fan_out: usize, rng: &mut R) -> Result<Vec<f32>> {
    let n = fan_in * fan_out;
    let invalid = |e: &dyn std::fmt::Display| ModelError::Config(format!("init {init}: {e}"));
    let values = match init.resolve(fan_in, fan_out) {
        Resolved::Uniform(limit) => {
            let limit = limit as f32;
            let dist = Uniform::new(-limit, limit).map_err(|e| invalid(&e))?;
            dist.sample_iter(rng).take(n).collect()
        }
        Resolved::Normal(std) => {
            let dist = Normal::new(0f32, std as f32).map_err(|e| invalid(&e))?;
            dist.sample_iter(rng).take(n).collect()
        }
        Resolved::Orthogonal(gain) => orthogonal(fan_in, fan_out, gain, rng)
            .ok_or_else(|| invalid(&"the random matrix drawn was singular"))?,
    };
    Ok(values)
}

/// Draws `fan_out` biases from N(0, `variance`) from `rng`.
pub fn sample_biases<R: Rng>(variance: f64, fan_out: usize, rng: &mut R) -> Result<Vec<f32>> {
    let dist = Normal::new(0f32, variance.sqrt() as f32)
        .map_err(|e| ModelError::Config(format!("bias variance {variance}: {e}")))?;
    Ok(dist.sample_iter(rng).take(fan_out).collect())
}

/// A `fan_in x fan_out` matrix with orthonormal columns (fan_in >= fan_out) or rows,
/// times `gain`: the Q of the QR decomposition of a matrix of standard normals, whose R
/// has a positive diagonal, which makes Q uniform over the orthogonal matrices
/// (Mezzadri 2007). `None` if the draw was singular.
fn orthogonal<R: Rng>(fan_in: usize, fan_out: usize, gain: f64, rng: &mut R) -> Option<Vec<f32>> {
    let (rows, cols) = (fan_in.max(fan_out), fan_in.min(fan_out));
    let normal = Normal::new(0f64, 1.0).ok()?;
    // Column-major: column j is q[j * rows..(j + 1) * rows].
    let mut q: Vec<f64> = normal.sample_iter(rng).take(rows * cols).collect();
    // Modified Gram-Schmidt, in f64: every column made orthogonal to the ones before it
    // and then unit length, so R's diagonal (the norms) is positive.
    for j in 0..cols {
        let (done, rest) = q.split_at_mut(j * rows);
        let column = &mut rest[..rows];
        for previous in done.chunks_exact(rows) {
            let dot: f64 = previous.iter().zip(column.iter()).map(|(a, b)| a * b).sum();
            column
                .iter_mut()
                .zip(previous)
                .for_each(|(c, p)| *c -= dot * p);
        }
        let norm = column.iter().map(|c| c * c).sum::<f64>().sqrt();
        if norm < 1e-10 {
            return None;
        }
        column.iter_mut().for_each(|c| *c /= norm);
    }
    let at = |r: usize, c: usize| (gain * q[c * rows + r]) as f32;
    Some(if fan_in >= fan_out {
        (0..fan_in)
            .flat_map(|i| (0..fan_out).map(move |o| (i, o)))
            .map(|(i, o)| at(i, o))
            .collect()
    } else {
        (0..fan_in)
            .flat_map(|i| (0..fan_out).map(move |o| (i, o)))
            .map(|(i, o)| at(o, i))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeding::{Stream, rng};

    fn moments(v: &[f32]) -> (f64, f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        let max = v.iter().map(|x| x.abs()).fold(0f32, f32::max);
        (mean, var.sqrt(), f64::from(max))
    }

    #[test]
    fn draws_have_the_documented_scale() -> Result<()> {
        let (fan_in, fan_out) = (400, 300);
        let mut r = rng(1, Stream::Init);
        let limit = (6.0f64 / 700.0).sqrt();
        let (mean, std, max) = moments(&sample(Init::GlorotUniform, fan_in, fan_out, &mut r)?);
        assert!(mean.abs() < 2e-3 && max <= limit);
        assert!((std - limit / 3f64.sqrt()).abs() / std < 0.01, "{std}");
        let (_, std, _) = moments(&sample(Init::HeNormal, fan_in, fan_out, &mut r)?);
        assert!((std - (2.0f64 / 400.0).sqrt()).abs() / std < 0.01, "{std}");
        let (_, std, _) = moments(&sample(Init::Normal { std: 1.0 }, fan_in, fan_out, &mut r)?);
        assert!((std - 1.0).abs() < 0.01, "{std}");
        Ok(())
    }

    #[test]
    fn the_variance_init_and_the_biases_have_the_papers_moments() -> Result<()> {
        // 120,000 draws: the standard error of the variance is about 0.4%, of the fourth
        // standardised moment (3 for a normal) about 0.02.
        let (fan_in, fan_out) = (400, 300);
        let mut r = rng(5, Stream::Init);
        let weights = sample(Init::Variance { sigma_w2: 1.75 }, fan_in, fan_out, &mut r)?;
        let (mean, std, _) = moments(&weights);
        let variance = std * std;
        assert!(mean.abs() < 3.0 * std / 346.0, "{mean}");
        assert!(
            ((fan_in as f64) * variance / 1.75 - 1.0).abs() < 0.015,
            "{variance}"
        );
        let fourth = weights
            .iter()
            .map(|&w| (f64::from(w) - mean).powi(4))
            .sum::<f64>()
            / weights.len() as f64
            / (variance * variance);
        assert!((fourth - 3.0).abs() < 0.1, "kurtosis {fourth}");
        let biases = sample_biases(0.05, 120_000, &mut rng(5, Stream::Bias))?;
        let (mean, std, _) = moments(&biases);
        assert!(mean.abs() < 3.0 * std / 346.0, "{mean}");
        assert!((std * std / 0.05 - 1.0).abs() < 0.015, "{std}");
        Ok(())
    }

    /// W^T W (fan_in >= fan_out) or W W^T, in f64.
    fn gram(w: &[f32], fan_in: usize, fan_out: usize) -> Vec<Vec<f64>> {
        let w = |i: usize, o: usize| f64::from(w[i * fan_out + o]);
        if fan_in >= fan_out {
            (0..fan_out)
                .map(|a| {
                    (0..fan_out)
                        .map(|b| (0..fan_in).map(|i| w(i, a) * w(i, b)).sum())
                        .collect()
                })
                .collect()
        } else {
            (0..fan_in)
                .map(|a| {
                    (0..fan_in)
                        .map(|b| (0..fan_out).map(|o| w(a, o) * w(b, o)).sum())
                        .collect()
                })
                .collect()
        }
    }

    #[test]
    fn orthogonal_draws_are_orthogonal_times_the_gain() -> Result<()> {
        for (fan_in, fan_out, gain) in [
            (10, 10, 1.0),
            (784, 10, 2f64.sqrt()),
            (10, 784, 0.5),
            (1, 1, 3.0),
        ] {
            let w = sample(
                Init::Orthogonal { gain },
                fan_in,
                fan_out,
                &mut rng(2, Stream::Init),
            )?;
            assert_eq!(w.len(), fan_in * fan_out);
            for (a, row) in gram(&w, fan_in, fan_out).iter().enumerate() {
                for (b, &v) in row.iter().enumerate() {
                    let want = if a == b { gain * gain } else { 0.0 };
                    assert!(
                        (v - want).abs() < 1e-5,
                        "{fan_in}x{fan_out} [{a},{b}] = {v}"
                    );
                }
            }
        }
        // Not the identity: a random rotation.
        let w = sample(
            Init::Orthogonal { gain: 1.0 },
            3,
            3,
            &mut rng(0, Stream::Init),
        )?;
        assert!(w[0] != 1.0 && w[1] != 0.0);
        Ok(())
    }

    #[test]
    fn same_seed_same_weights() -> Result<()> {
        let a = sample(Init::GlorotUniform, 5, 3, &mut rng(3, Stream::Init))?;
        let b = sample(Init::GlorotUniform, 5, 3, &mut rng(3, Stream::Init))?;
        let c = sample(Init::GlorotUniform, 5, 3, &mut rng(4, Stream::Init))?;
        assert_eq!(a, b);
        assert_ne!(a, c);
        Ok(())
    }
}
