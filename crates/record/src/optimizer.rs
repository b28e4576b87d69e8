//! The optimizers a run can train with, as the names users type. Applying one is the
//! training crate's job (`vgrad_train::optimizer`).

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// Names accepted by [`Optimizer::from_str`], for error messages and help texts.
pub const OPTIMIZER_NAMES: &str = "adam, sgd, momentum:<beta>";

/// How the weights move given their gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Adam (Kingma & Ba 2015) with `lr`, `beta1`, `beta2`, `epsilon`; PyTorch's
    /// `torch.optim.Adam` without weight decay. Rescales every parameter's step by its
    /// own gradient's running magnitude, which hides much of a vanishing gradient.
    Adam,
    /// Plain gradient descent: w -= lr * g.
    Sgd,
    /// Heavy-ball momentum as PyTorch's `SGD(momentum=beta)` (no dampening, no Nesterov):
    /// b = beta * b + g (b = g at the first step), w -= lr * b.
    Momentum {
        /// Decay of the velocity, in [0, 1).
        beta: f64,
    },
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Adam => f.write_str("adam"),
            Self::Sgd => f.write_str("sgd"),
            Self::Momentum { beta } => write!(f, "momentum:{beta}"),
        }
    }
}

impl FromStr for Optimizer {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = |expected: String| ParseError {
            what: "optimizer",
            value: s.to_string(),
            expected,
        };
        match s.trim() {
            "adam" => Ok(Self::Adam),
            "sgd" => Ok(Self::Sgd),
            other => match other.strip_prefix("momentum:") {
                Some(beta) => match beta.trim().parse::<f64>() {
                    Ok(beta) if (0.0..1.0).contains(&beta) => Ok(Self::Momentum { beta }),
                    _ => Err(bad(
                        "the momentum after `momentum:` must be a number in [0, 1), e.g. momentum:0.9"
                            .into(),
                    )),
                },
                None => Err(bad(format!("expected one of {OPTIMIZER_NAMES}"))),
            },
        }
    }
}

crate::serde_as_text!(Optimizer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_with_the_allowed_values() {
        for name in ["adam", "sgd", "momentum:0.9", "momentum:0"] {
            assert_eq!(name.parse::<Optimizer>().unwrap().to_string(), name);
        }
        assert_eq!(
            "momentum:1.5".parse::<Optimizer>().unwrap_err().to_string(),
            "invalid optimizer `momentum:1.5`: the momentum after `momentum:` must be a number \
             in [0, 1), e.g. momentum:0.9"
        );
        assert!("momentum:1".parse::<Optimizer>().is_err());
        assert!("momentum".parse::<Optimizer>().is_err());
        let err = "rmsprop".parse::<Optimizer>().unwrap_err().to_string();
        assert!(err.contains("adam, sgd, momentum:<beta>"), "{err}");
    }
}
