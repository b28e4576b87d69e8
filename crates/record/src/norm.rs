//! The normalisation applied to every hidden layer's pre-activation, as the names users
//! type. Computing it is the model crate's job (`vgrad_model::EnsembleNorm`).

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// Batch norm's epsilon and momentum, as PyTorch's `nn.BatchNorm1d`; layer norm uses the
/// same epsilon.
pub const NORM_EPSILON: f64 = 1e-5;
/// Weight of the new batch's statistics in batch norm's running averages.
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;

/// Normalisation of each hidden layer's pre-activation z, before the activation, followed
/// by a learnable scale (starting at 1) and shift (starting at 0) per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// None: the activation sees z.
    None,
    /// Batch norm (Ioffe & Szegedy 2015): each unit standardised over the batch while
    /// training, by running averages of the batch statistics at evaluation.
    Batch,
    /// Layer norm (Ba et al. 2016): each example standardised over the layer's units.
    Layer,
}

impl fmt::Display for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Batch => "batch",
            Self::Layer => "layer",
        })
    }
}

impl FromStr for Norm {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "none" => Ok(Self::None),
            "batch" => Ok(Self::Batch),
            "layer" => Ok(Self::Layer),
            other => Err(ParseError {
                what: "norm",
                value: other.to_string(),
                expected: "expected one of none, batch, layer".into(),
            }),
        }
    }
}

crate::serde_as_text!(Norm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_the_allowed_values() {
        for name in ["none", "batch", "layer"] {
            assert_eq!(name.parse::<Norm>().unwrap().to_string(), name);
        }
        assert_eq!(
            "group".parse::<Norm>().unwrap_err().to_string(),
            "invalid norm `group`: expected one of none, batch, layer"
        );
    }
}
