//! The settings of recurrent runs (issue 36), as users type them: the task a network
//! learns (`--task`), how a recurrent network's weights start (`--recurrent-init`) and the
//! LSTM's forget-gate bias (`--forget-bias`). Building the cells is the model crate's job
//! (`vgrad_model::recurrent`).

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// Rows of an MNIST image: a recurrent network's time steps on `--task mnist`.
pub const IMAGE_ROWS: usize = 28;

/// Features per step of the adding problem: the value and the marker.
pub const ADDING_FEATURES: usize = 2;

/// What a run learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Task {
    /// Classify the images of `--data`. A recurrent network reads each image row by row:
    /// 28 time steps of 28 pixels, its last hidden state read out (row-sequential MNIST).
    #[default]
    Mnist,
    /// The adding problem (Hochreiter & Schmidhuber 1997): `--sequence-length` steps of a
    /// value in U(0, 1) and a marker, one marked step in each half; the target is the sum
    /// of the two marked values, scored by the mean squared error. Recurrent models only.
    Adding,
}

impl Task {
    /// Whether runs of the task are scored by their mean squared error (solved /
    /// unsolved / diverged) rather than their accuracy (trained / collapsed / diverged).
    pub fn is_regression(self) -> bool {
        self == Self::Adding
    }

    /// The features a recurrent network reads per time step: an image row's pixels, or
    /// the adding problem's value and marker.
    pub fn features(self) -> usize {
        match self {
            Self::Mnist => crate::INPUT / IMAGE_ROWS,
            Self::Adding => ADDING_FEATURES,
        }
    }

    /// The network's outputs: a logit per class, or the one predicted sum.
    pub fn outputs(self) -> usize {
        match self {
            Self::Mnist => crate::CLASSES,
            Self::Adding => 1,
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mnist => "mnist",
            Self::Adding => "adding",
        })
    }
}

impl FromStr for Task {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "mnist" => Ok(Self::Mnist),
            "adding" => Ok(Self::Adding),
            other => Err(ParseError {
                what: "task",
                value: other.to_string(),
                expected: "expected one of mnist, adding".into(),
            }),
        }
    }
}

crate::serde_as_text!(Task);

/// How a recurrent network's recurrent weight `W_h` starts; every other parameter follows
/// from it as each variant says.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RecurrentInit {
    /// The frameworks' default (PyTorch's `nn.RNN`, `nn.LSTM`, `nn.GRU` and `nn.Linear`
    /// for the readout): every weight and bias U(-1/sqrt(hidden), 1/sqrt(hidden)).
    #[default]
    Uniform,
    /// Each gate's `hidden x hidden` block of `W_h` an independent random orthogonal
    /// matrix times `gain` (Saxe et al. 2014; every singular value equals `gain`); every
    /// other parameter as [`RecurrentInit::Uniform`], from the same draws.
    Orthogonal {
        /// Every singular value of each block.
        gain: f64,
    },
    /// Le et al. 2015's IRNN, for the vanilla RNN only: `W_h = gain * I`, both biases
    /// zero, the input weights N(0, 0.001^2); the readout as [`RecurrentInit::Uniform`].
    Identity {
        /// The identity's scale.
        gain: f64,
    },
}

impl fmt::Display for RecurrentInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uniform => f.write_str("uniform"),
            Self::Orthogonal { gain } => write!(f, "orthogonal:{gain}"),
            Self::Identity { gain } => write!(f, "identity:{gain}"),
        }
    }
}

impl FromStr for RecurrentInit {
    type Err = ParseError;

    /// `uniform`, `orthogonal[:gain]` or `identity[:gain]` (gain 1 where left out; a
    /// finite number above 0).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let fail = |expected: &str| ParseError {
            what: "recurrent init",
            value: s.to_string(),
            expected: expected.to_string(),
        };
        let (name, gain) = match s.trim().split_once(':') {
            Some((name, gain)) => match gain.parse::<f64>() {
                Ok(g) if g > 0.0 && g.is_finite() => (name, Some(g)),
                _ => {
                    return Err(fail(
                        "the gain after the colon must be a finite number above 0",
                    ));
                }
            },
            None => (s.trim(), None),
        };
        match (name, gain) {
            ("uniform", None) => Ok(Self::Uniform),
            ("orthogonal", gain) => Ok(Self::Orthogonal {
                gain: gain.unwrap_or(1.0),
            }),
            ("identity", gain) => Ok(Self::Identity {
                gain: gain.unwrap_or(1.0),
            }),
            _ => Err(fail(
                "expected one of uniform, orthogonal[:<gain>], identity[:<gain>]",
            )),
        }
    }
}

crate::serde_as_text!(RecurrentInit);

/// The LSTM's forget-gate bias (`--forget-bias`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ForgetBias {
    /// As the init draws it (the frameworks' default: the sum of two uniform biases).
    #[default]
    Init,
    /// The input bias's forget block set to this value and the recurrent bias's to 0, so
    /// that the gate's effective bias is exactly it (Gers et al. 2000; Jozefowicz et al.
    /// 2015 recommend 1).
    Set(f64),
}

impl ForgetBias {
    /// The value to set, where one is set.
    pub fn value(self) -> Option<f64> {
        match self {
            Self::Init => None,
            Self::Set(v) => Some(v),
        }
    }
}

impl fmt::Display for ForgetBias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Init => f.write_str("init"),
            Self::Set(v) => write!(f, "{v}"),
        }
    }
}

impl FromStr for ForgetBias {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "init" => Ok(Self::Init),
            other => match other.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Self::Set(v)),
                _ => Err(ParseError {
                    what: "forget bias",
                    value: other.to_string(),
                    expected: "expected init (as the init draws it) or a finite number".into(),
                }),
            },
        }
    }
}

impl serde::Serialize for ForgetBias {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Init => s.serialize_str("init"),
            Self::Set(v) => s.serialize_f64(*v),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ForgetBias {
    /// `"init"`, a number, or a number written as text (a sweep file's `1` or `"1"`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::error::number_or_text(d, |v| Self::Set(v).checked())
    }
}

impl ForgetBias {
    fn checked(self) -> Result<Self, ParseError> {
        match self {
            Self::Set(v) if !v.is_finite() => Err(ParseError {
                what: "forget bias",
                value: v.to_string(),
                expected: "expected init (as the init draws it) or a finite number".into(),
            }),
            other => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_what_they_write_and_name_what_is_allowed() {
        for task in ["mnist", "adding"] {
            assert_eq!(task.parse::<Task>().unwrap().to_string(), task);
        }
        for init in ["uniform", "orthogonal:1.5", "identity:0.01"] {
            assert_eq!(init.parse::<RecurrentInit>().unwrap().to_string(), init);
        }
        assert_eq!(
            "orthogonal".parse::<RecurrentInit>().unwrap(),
            RecurrentInit::Orthogonal { gain: 1.0 }
        );
        for bias in ["init", "0", "1", "-2.5"] {
            assert_eq!(bias.parse::<ForgetBias>().unwrap().to_string(), bias);
        }
        assert_eq!(
            "pixels".parse::<Task>().unwrap_err().to_string(),
            "invalid task `pixels`: expected one of mnist, adding"
        );
        assert_eq!(
            "identity:-1"
                .parse::<RecurrentInit>()
                .unwrap_err()
                .to_string(),
            "invalid recurrent init `identity:-1`: the gain after the colon must be a finite \
             number above 0"
        );
        assert_eq!(
            "he".parse::<RecurrentInit>().unwrap_err().to_string(),
            "invalid recurrent init `he`: expected one of uniform, orthogonal[:<gain>], \
             identity[:<gain>]"
        );
        for bad in ["uniform:2", "orthogonal:x"] {
            assert!(bad.parse::<RecurrentInit>().is_err(), "{bad}");
        }
        assert_eq!(
            "open".parse::<ForgetBias>().unwrap_err().to_string(),
            "invalid forget bias `open`: expected init (as the init draws it) or a finite number"
        );
    }

    #[test]
    fn the_forget_bias_reads_numbers_and_text_and_writes_numbers() {
        let number: ForgetBias = serde_json::from_str("1").unwrap();
        let text: ForgetBias = serde_json::from_str("\"1\"").unwrap();
        let init: ForgetBias = serde_json::from_str("\"init\"").unwrap();
        assert_eq!(
            (number, text, init),
            (ForgetBias::Set(1.0), ForgetBias::Set(1.0), ForgetBias::Init)
        );
        assert_eq!(serde_json::to_string(&ForgetBias::Set(0.0)).unwrap(), "0.0");
        assert_eq!(
            serde_json::to_string(&ForgetBias::Init).unwrap(),
            "\"init\""
        );
        assert!(serde_json::from_str::<ForgetBias>("\"shut\"").is_err());
    }
}
