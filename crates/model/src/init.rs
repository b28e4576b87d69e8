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
    };
    Ok(values)
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
    fn same_seed_same_weights() -> Result<()> {
        let a = sample(Init::GlorotUniform, 5, 3, &mut rng(3, Stream::Init))?;
        let b = sample(Init::GlorotUniform, 5, 3, &mut rng(3, Stream::Init))?;
        let c = sample(Init::GlorotUniform, 5, 3, &mut rng(4, Stream::Init))?;
        assert_eq!(a, b);
        assert_ne!(a, c);
        Ok(())
    }
}
