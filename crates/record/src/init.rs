//! Weight initialisation schemes, as the names users type and the distribution each
//! resolves to for a layer; drawing the weights is the model crate's job.

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// Names accepted by [`Init::from_str`], for error messages and help texts.
pub const INIT_NAMES: &str = "glorot-uniform, glorot-normal, he-uniform, he-normal, lecun-normal, standard, orthogonal, orthogonal:<gain>, normal:<std>, uniform:<limit>, variance:<sigma_w^2>";

/// How a layer's weight matrix is drawn (biases start at zero, or as the run's
/// `bias_variance` says).
///
/// The normal schemes are plain (untruncated) normals with the textbook variance:
/// Glorot 2 / (fan_in + fan_out), He 2 / fan_in, LeCun 1 / fan_in, and the mean-field
/// papers' sigma_w^2 / fan_in.
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
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): Glorot & Bengio 2010's "standard" init
    /// (their eq. 1), which is also PyTorch's `nn.Linear` default.
    Standard,
    /// A random orthogonal matrix times `gain` (Saxe et al. 2013): orthonormal columns when
    /// fan_in >= fan_out, orthonormal rows otherwise, as PyTorch's `orthogonal_`.
    Orthogonal {
        /// Scale of the matrix; every singular value equals it.
        gain: f64,
    },
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
    /// N(0, sigma_w^2 / fan_in): the convention of the signal-propagation papers (Poole et
    /// al. 2016, Schoenholz et al. 2017), where sigma_w^2 places a network on their phase
    /// diagram (lecun-normal is `variance:1`, he-normal `variance:2`).
    Variance {
        /// sigma_w^2: fan-in times the variance of a weight.
        sigma_w2: f64,
    },
}

/// The distribution a layer's weights are drawn from, resolved for its fan-in and fan-out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved {
    /// U(-limit, limit).
    Uniform(f64),
    /// N(0, std^2), untruncated.
    Normal(f64),
    /// `gain` times the orthogonal factor of a matrix of standard normals.
    Orthogonal(f64),
}

impl Init {
    /// The distribution of the weights of a `fan_in x fan_out` layer.
    pub fn resolve(&self, fan_in: usize, fan_out: usize) -> Resolved {
        let (fan_in, fan_out) = (fan_in as f64, fan_out as f64);
        match *self {
            Self::GlorotUniform => Resolved::Uniform((6.0 / (fan_in + fan_out)).sqrt()),
            Self::GlorotNormal => Resolved::Normal((2.0 / (fan_in + fan_out)).sqrt()),
            Self::HeUniform => Resolved::Uniform((6.0 / fan_in).sqrt()),
            Self::HeNormal => Resolved::Normal((2.0 / fan_in).sqrt()),
            Self::LecunNormal => Resolved::Normal((1.0 / fan_in).sqrt()),
            Self::Standard => Resolved::Uniform(1.0 / fan_in.sqrt()),
            Self::Orthogonal { gain } => Resolved::Orthogonal(gain),
            Self::Normal { std } => Resolved::Normal(std),
            Self::Uniform { limit } => Resolved::Uniform(limit),
            Self::Variance { sigma_w2 } => Resolved::Normal((sigma_w2 / fan_in).sqrt()),
        }
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
            Self::Standard => f.write_str("standard"),
            Self::Orthogonal { gain } => write!(f, "orthogonal:{gain}"),
            Self::Normal { std } => write!(f, "normal:{std}"),
            Self::Uniform { limit } => write!(f, "uniform:{limit}"),
            Self::Variance { sigma_w2 } => write!(f, "variance:{sigma_w2}"),
        }
    }
}

impl FromStr for Init {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = |expected: String| ParseError {
            what: "init",
            value: s.to_string(),
            expected,
        };
        // A positive, finite scale after `name:`.
        let scale = |name: &str, value: &str| -> Result<f64, ParseError> {
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
            "standard" => Self::Standard,
            "orthogonal" => Self::Orthogonal { gain: 1.0 },
            other => {
                if let Some(gain) = other.strip_prefix("orthogonal:") {
                    Self::Orthogonal {
                        gain: scale("orthogonal", gain)?,
                    }
                } else if let Some(std) = other.strip_prefix("normal:") {
                    Self::Normal {
                        std: scale("normal", std)?,
                    }
                } else if let Some(limit) = other.strip_prefix("uniform:") {
                    Self::Uniform {
                        limit: scale("uniform", limit)?,
                    }
                } else if let Some(sigma_w2) = other.strip_prefix("variance:") {
                    Self::Variance {
                        sigma_w2: scale("variance", sigma_w2)?,
                    }
                } else {
                    return Err(bad(format!("expected one of {INIT_NAMES}")));
                }
            }
        };
        Ok(init)
    }
}

crate::serde_as_text!(Init);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_names() {
        for name in [
            "glorot-uniform",
            "glorot-normal",
            "he-uniform",
            "he-normal",
            "lecun-normal",
            "standard",
            "orthogonal:1.4142",
            "normal:1",
            "uniform:0.05",
            "variance:1.75",
        ] {
            assert_eq!(name.parse::<Init>().unwrap().to_string(), name);
        }
        let err = "xavier".parse::<Init>().unwrap_err().to_string();
        assert!(err.contains("xavier") && err.contains("he-normal"), "{err}");
        assert!("normal:-1".parse::<Init>().is_err());
        assert_eq!(
            "orthogonal".parse::<Init>().unwrap(),
            Init::Orthogonal { gain: 1.0 }
        );
        assert_eq!(
            "orthogonal:-1".parse::<Init>().unwrap_err().to_string(),
            "invalid init `orthogonal:-1`: the value after `orthogonal:` must be a positive \
             number, e.g. orthogonal:1.0"
        );
        assert_eq!(
            Init::Standard.resolve(400, 10),
            Resolved::Uniform(0.05),
            "1/sqrt(fan_in)"
        );
        assert!("uniform:abc".parse::<Init>().is_err());
        assert_eq!(
            "variance:0".parse::<Init>().unwrap_err().to_string(),
            "invalid init `variance:0`: the value after `variance:` must be a positive \
             number, e.g. variance:1.0"
        );
        // sigma_w^2 / fan_in: He's normal at 2, LeCun's at 1.
        assert_eq!(
            Init::Variance { sigma_w2: 2.0 }.resolve(50, 10),
            Init::HeNormal.resolve(50, 10)
        );
        assert_eq!(
            Init::Variance { sigma_w2: 1.0 }.resolve(400, 10),
            Init::LecunNormal.resolve(400, 10)
        );
    }
}
