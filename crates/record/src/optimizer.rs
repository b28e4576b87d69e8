//! The optimizers a run can train with, as the names users type, and what the rest of
//! vgrad needs to know of each. Applying one is the training crate's job, one file per
//! optimizer in `vgrad_train::optimizer`.
//!
//! Adding one here is its variant, its entry in [`Optimizer::ALL`] and its arm in
//! [`Optimizer::spec`], which the compiler asks for; the tests check that `ALL` names each
//! optimizer once and that every name parses back.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::ParseError;

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

/// What vgrad needs to know of an optimizer besides its update, declared in one place.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The name users type (before the `:<number>` of one that takes a number).
    pub name: &'static str,
    /// The name in a report's sentences.
    pub title: &'static str,
    /// The number the name carries after a colon, if it takes one.
    pub parameter: Option<Parameter>,
    /// Whether each weight's step is its gradient over that gradient's own running scale
    /// (Adam), so that a layer's step size does not follow its gradient's: the reports
    /// explain the update ratios of these runs apart.
    pub rescales_steps: bool,
}

/// The number an optimizer's name carries after a colon (`momentum:0.9`).
#[derive(Debug, Clone)]
pub struct Parameter {
    /// Its placeholder in the list of names (`beta` in `momentum:<beta>`).
    pub placeholder: &'static str,
    /// What it is, for error messages ("the momentum").
    pub meaning: &'static str,
    /// Its value.
    pub value: f64,
    /// The values it may take, the end excluded.
    pub range: Range<f64>,
    /// The optimizer with this number set to another value.
    pub with_value: fn(f64) -> Optimizer,
}

impl Optimizer {
    /// Every optimizer, one that takes a number at an example value: the names
    /// [`Optimizer::from_str`] accepts, in the order error messages list them.
    pub const ALL: [Self; 3] = [Self::Adam, Self::Sgd, Self::Momentum { beta: 0.9 }];

    /// Its name, number and traits.
    pub fn spec(&self) -> Spec {
        match *self {
            Self::Adam => Spec {
                name: "adam",
                title: "Adam",
                parameter: None,
                rescales_steps: true,
            },
            Self::Sgd => Spec {
                name: "sgd",
                title: "SGD",
                parameter: None,
                rescales_steps: false,
            },
            Self::Momentum { beta } => Spec {
                name: "momentum",
                title: "momentum",
                parameter: Some(Parameter {
                    placeholder: "beta",
                    meaning: "the momentum",
                    value: beta,
                    range: 0.0..1.0,
                    with_value: |beta| Self::Momentum { beta },
                }),
                rescales_steps: false,
            },
        }
    }

    /// The names accepted by [`Optimizer::from_str`], for error messages and help texts:
    /// `adam, sgd, momentum:<beta>`.
    pub fn names() -> String {
        let names: Vec<String> = Self::ALL
            .iter()
            .map(|o| {
                let spec = o.spec();
                match spec.parameter {
                    Some(p) => format!("{}:<{}>", spec.name, p.placeholder),
                    None => spec.name.to_string(),
                }
            })
            .collect();
        names.join(", ")
    }
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = self.spec();
        match spec.parameter {
            Some(p) => write!(f, "{}:{}", spec.name, p.value),
            None => f.write_str(spec.name),
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
        let text = s.trim();
        let (name, number) = match text.split_once(':') {
            Some((name, number)) => (name, Some(number)),
            None => (text, None),
        };
        let Some(example) = Self::ALL.into_iter().find(|o| o.spec().name == name) else {
            return Err(bad(format!("expected one of {}", Self::names())));
        };
        match (example.spec().parameter, number) {
            (None, None) => Ok(example),
            (None, Some(_)) => Err(bad(format!("expected one of {}", Self::names()))),
            (Some(p), number) => match number.map(|n| n.trim().parse::<f64>()) {
                Some(Ok(value)) if p.range.contains(&value) => Ok((p.with_value)(value)),
                _ => Err(bad(format!(
                    "{} after `{name}:` must be a number in [{}, {}), e.g. {example}",
                    p.meaning, p.range.start, p.range.end
                ))),
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
        assert!("sgd:0.5".parse::<Optimizer>().is_err());
        let err = "rmsprop".parse::<Optimizer>().unwrap_err().to_string();
        assert!(err.contains("adam, sgd, momentum:<beta>"), "{err}");
    }

    #[test]
    fn every_optimizer_is_listed_once_and_parses_back() {
        let names: Vec<&str> = Optimizer::ALL.iter().map(|o| o.spec().name).collect();
        for (i, optimizer) in Optimizer::ALL.iter().enumerate() {
            assert!(!names[..i].contains(&names[i]), "{} twice", names[i]);
            assert_eq!(optimizer.to_string().parse::<Optimizer>(), Ok(*optimizer));
        }
        assert_eq!(Optimizer::names(), "adam, sgd, momentum:<beta>");
    }
}
