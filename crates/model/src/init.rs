//! Weight initialisation schemes, drawn from a seeded generator.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::{ModelError, Result};

/// Names accepted by [`Init::from_str`], for error messages and help texts.
pub const INIT_NAMES: &str = "glorot-uniform, glorot-normal, he-uniform, he-normal, lecun-normal, normal:<std>, uniform:<limit>";

/// How a layer's weight matrix is drawn; biases always start at zero.
///
/// The normal schemes are plain (untruncated) normals with the textbook variance:
/// Glorot 2 / (fan_in + fan_out), He 2 / fan_in, LeCun 1 / fan_in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// U(-l, l) with l = sqrt(6 / (fan_in + fan_out)): TensorFlow's `tf.layers.dense` default.
    GlorotUniform,
    /// N(0, 2 / (fan_in + fan_out)).
    GlorotNormal,
    /// U(-l, l) with l = sqrt(6 / fan_in).
    HeUniform,
    /// N(0, 2 / fan_in).
    HeNormal,
    /// N(0, 1 / fan_in).
    LecunNormal,
    /// N(0, std^2) whatever the layer's size.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// U(-limit, limit) whatever the layer's size.
    Uniform {
        /// Half-width of the interval.
        limit: f64,
    },
}

/// A distribution to draw weights from, resolved for one layer's fan-in and fan-out.
enum Resolved {
    Uniform(f64),
    Normal(f64),
}

impl Init {
    fn resolve(&self, fan_in: usize, fan_out: usize) -> Resolved {
        let (fan_in, fan_out) = (fan_in as f64, fan_out as f64);
        match *self {
            Self::GlorotUniform => Resolved::Uniform((6.0 / (fan_in + fan_out)).sqrt()),
            Self::GlorotNormal => Resolved::Normal((2.0 / (fan_in + fan_out)).sqrt()),
            Self::HeUniform => Resolved::Uniform((6.0 / fan_in).sqrt()),
            Self::HeNormal => Resolved::Normal((2.0 / fan_in).sqrt()),
            Self::LecunNormal => Resolved::Normal((1.0 / fan_in).sqrt()),
            Self::Normal { std } => Resolved::Normal(std),
            Self::Uniform { limit } => Resolved::Uniform(limit),
        }
    }

    /// Draws a `fan_in x fan_out` weight matrix, row-major, from `rng`.
    pub fn sample<R: Rng>(&self, fan_in: usize, fan_out: usize, rng: &mut R) -> Result<Vec<f32>> {
        let n = fan_in * fan_out;
        let invalid = |e: &dyn fmt::Display| ModelError::Config(format!("init {self}: {e}"));
        let values = match self.resolve(fan_in, fan_out) {
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
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GlorotUniform => f.write_str("glorot-uniform"),
            Self::GlorotNormal => f.write_str("glorot-normal"),
            Self::HeUniform => f.write_str("he-uniform"),
            Self::HeNormal => f.write_str("he-normal"),
            Self::LecunNormal => f.write_str("lecun-normal"),
            Self::Normal { std } => write!(f, "normal:{std}"),
            Self::Uniform { limit } => write!(f, "uniform:{limit}"),
        }
    }
}

impl FromStr for Init {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |expected: String| ModelError::Parse {
            what: "init",
            value: s.to_string(),
            expected,
        };
        // A positive, finite scale after `name:`.
        let scale = |name: &str, value: &str| -> Result<f64> {
            match value.trim().parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
                _ => Err(bad(format!(
                    "the value after `{name}:` must be a positive number, e.g. {name}:1.0"
                ))),
            }
        };
        let init = match s.trim() {
            "glorot-uniform" => Self::GlorotUniform,
            "glorot-normal" => Self::GlorotNormal,
            "he-uniform" => Self::HeUniform,
            "he-normal" => Self::HeNormal,
            "lecun-normal" => Self::LecunNormal,
            other => {
                if let Some(std) = other.strip_prefix("normal:") {
                    Self::Normal {
                        std: scale("normal", std)?,
                    }
                } else if let Some(limit) = other.strip_prefix("uniform:") {
                    Self::Uniform {
                        limit: scale("uniform", limit)?,
                    }
                } else {
                    return Err(bad(format!("expected one of {INIT_NAMES}")));
                }
            }
        };
        Ok(init)
    }
}

impl serde::Serialize for Init {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Init {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeding::{Stream, rng};

    #[test]
    fn round_trips_names() {
        for name in [
            "glorot-uniform",
            "glorot-normal",
            "he-uniform",
            "he-normal",
            "lecun-normal",
            "normal:1",
            "uniform:0.05",
        ] {
            assert_eq!(name.parse::<Init>().unwrap().to_string(), name);
        }
        let err = "xavier".parse::<Init>().unwrap_err().to_string();
        assert!(err.contains("xavier") && err.contains("he-normal"), "{err}");
        assert!("normal:-1".parse::<Init>().is_err());
        assert!("uniform:abc".parse::<Init>().is_err());
    }

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
        let (mean, std, max) = moments(&Init::GlorotUniform.sample(fan_in, fan_out, &mut r)?);
        assert!(mean.abs() < 2e-3 && max <= limit);
        assert!((std - limit / 3f64.sqrt()).abs() / std < 0.01, "{std}");
        let (_, std, _) = moments(&Init::HeNormal.sample(fan_in, fan_out, &mut r)?);
        assert!((std - (2.0f64 / 400.0).sqrt()).abs() / std < 0.01, "{std}");
        let (_, std, _) = moments(&Init::Normal { std: 1.0 }.sample(fan_in, fan_out, &mut r)?);
        assert!((std - 1.0).abs() < 0.01, "{std}");
        Ok(())
    }

    #[test]
    fn same_seed_same_weights() -> Result<()> {
        let a = Init::GlorotUniform.sample(5, 3, &mut rng(3, Stream::Init))?;
        let b = Init::GlorotUniform.sample(5, 3, &mut rng(3, Stream::Init))?;
        let c = Init::GlorotUniform.sample(5, 3, &mut rng(4, Stream::Init))?;
        assert_eq!(a, b);
        assert_ne!(a, c);
        Ok(())
    }
}
