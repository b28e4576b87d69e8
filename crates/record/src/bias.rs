//! The biases' initial variance sigma_b^2 (`--bias-variance`): a number, or `critical`,
//! the value mean-field theory puts on the critical line chi_1 = 1 for the run's activation
//! and weight variance (`vgrad_theory::run_bias_variance` resolves it).

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// sigma_b^2: every bias starts at N(0, sigma_b^2), drawn from the run's seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BiasVariance {
    /// This sigma_b^2; 0 starts the biases at zero.
    Value(f64),
    /// The sigma_b^2 at which chi_1 = 1 for the run's activation and hidden layers'
    /// sigma_w^2 (Pennington et al. 2017 pick their networks on that line by sigma_w^2).
    Critical,
}

impl BiasVariance {
    /// Biases that start at zero: the reference experiment's.
    pub const ZERO: Self = Self::Value(0.0);

    /// The number given, where one is (`None` for `critical`, which the theory resolves).
    pub fn value(self) -> Option<f64> {
        match self {
            Self::Value(v) => Some(v),
            Self::Critical => None,
        }
    }

    fn checked(self) -> Result<Self, ParseError> {
        match self {
            Self::Value(v) if !(v >= 0.0 && v.is_finite()) => Err(invalid(v.to_string())),
            other => Ok(other),
        }
    }
}

fn invalid(value: String) -> ParseError {
    ParseError {
        what: "bias variance",
        value,
        expected: "expected a finite number of at least 0 (sigma_b^2; 0 starts the biases at \
                   zero) or critical (the sigma_b^2 that puts the network on chi_1 = 1)"
            .into(),
    }
}

impl fmt::Display for BiasVariance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(v) => write!(f, "{v}"),
            Self::Critical => f.write_str("critical"),
        }
    }
}

impl FromStr for BiasVariance {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "critical" => Ok(Self::Critical),
            other => match other.parse::<f64>() {
                Ok(v) => Self::Value(v).checked().map_err(|_| invalid(other.into())),
                Err(_) => Err(invalid(other.into())),
            },
        }
    }
}

impl serde::Serialize for BiasVariance {
    /// A number as a number, so that the `config.json` (and hash) of every run that set
    /// one before `critical` existed stays as it was.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => s.serialize_f64(*v),
            Self::Critical => s.serialize_str("critical"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for BiasVariance {
    /// `"critical"`, a number, or a number written as text (a sweep file's `0.05` or
    /// `"0.05"`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::error::number_or_text(d, |v| Self::Value(v).checked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_names_what_is_allowed() {
        for text in ["0", "0.05", "critical"] {
            assert_eq!(text.parse::<BiasVariance>().unwrap().to_string(), text);
        }
        for bad in ["-0.1", "NaN", "inf", "chaotic"] {
            assert_eq!(
                bad.parse::<BiasVariance>().unwrap_err().to_string(),
                format!(
                    "invalid bias variance `{bad}`: expected a finite number of at least 0 \
                     (sigma_b^2; 0 starts the biases at zero) or critical (the sigma_b^2 that \
                     puts the network on chi_1 = 1)"
                )
            );
        }
    }

    #[test]
    fn a_number_is_written_as_the_number_it_always_was() {
        assert_eq!(
            serde_json::to_string(&BiasVariance::Value(0.05)).unwrap(),
            "0.05"
        );
        assert_eq!(
            serde_json::to_string(&BiasVariance::Critical).unwrap(),
            "\"critical\""
        );
        for (json, expected) in [
            ("0.05", BiasVariance::Value(0.05)),
            ("\"0.05\"", BiasVariance::Value(0.05)),
            ("\"critical\"", BiasVariance::Critical),
        ] {
            assert_eq!(
                serde_json::from_str::<BiasVariance>(json).unwrap(),
                expected
            );
        }
        assert!(serde_json::from_str::<BiasVariance>("-1").is_err());
    }
}
