//! The activation functions under test, as the names users type. Applying one to a tensor
//! is the model crate's job (`vgrad_model::ActivationLayer`).

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// The leaky ReLU slope used by `leaky-relu` without an explicit slope (the value the
/// reference post's text describes; its code used TensorFlow's default of 0.2).
pub const DEFAULT_LEAKY_SLOPE: f64 = 0.01;

/// Names accepted by [`Activation::from_str`], for error messages and help texts.
pub const ACTIVATION_NAMES: &str =
    "sigmoid, tanh, relu, leaky-relu, leaky-relu:<slope>, elu, gelu, silu, softsign, selu, linear";

/// SELU's scale lambda (Klambauer et al. 2017, eq. 14, to the digits PyTorch uses).
pub const SELU_LAMBDA: f64 = 1.050_700_987_355_480_5;
/// SELU's alpha (Klambauer et al. 2017, eq. 14).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;

/// An element-wise activation applied after every hidden layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// 1 / (1 + e^-x); derivative at most 0.25.
    Sigmoid,
    /// Hyperbolic tangent; derivative at most 1.
    Tanh,
    /// max(0, x).
    Relu,
    /// max(slope * x, x) with 0 < slope < 1.
    LeakyRelu {
        /// Slope on the negative side.
        slope: f64,
    },
    /// x for x > 0, e^x - 1 otherwise (alpha = 1).
    Elu,
    /// x * Phi(x), with the exact (erf) Gaussian CDF.
    Gelu,
    /// x * sigmoid(x), also called swish.
    Silu,
    /// x / (1 + |x|) (Glorot & Bengio 2010): like tanh, but its tails approach +-1
    /// polynomially, so it saturates more gently.
    Softsign,
    /// lambda * (x for x > 0, alpha * (e^x - 1) otherwise): the self-normalising unit of
    /// Klambauer et al. 2017, meant for `lecun-normal` weights.
    Selu,
    /// The identity: a deep linear network (Saxe et al. 2013), whose Jacobian is the
    /// product of its weights.
    Linear,
}

/// How [`Activation::unit_is_off`] classifies a unit that does not pass gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffKind {
    /// Pre-activation at or below zero (ReLU family, ELU, GELU, SiLU).
    Dead,
    /// Derivative below 1% of its maximum (sigmoid, tanh).
    Saturated,
}

impl Activation {
    /// Which kind of "off" this activation's units can be in.
    pub fn off_kind(&self) -> OffKind {
        match self {
            Self::Sigmoid | Self::Tanh | Self::Softsign | Self::Linear => OffKind::Saturated,
            _ => OffKind::Dead,
        }
    }

    /// The value f(z), in f64, for work outside a tensor library (mean-field theory
    /// integrates it against a Gaussian). GELU uses the same erf approximation (absolute
    /// error below 1.5e-7) as [`Activation::derivative`], so the two stay consistent.
    pub fn value(&self, z: f64) -> f64 {
        match *self {
            Self::Sigmoid => 1.0 / (1.0 + (-z).exp()),
            Self::Tanh => z.tanh(),
            Self::Relu => z.max(0.0),
            Self::LeakyRelu { slope } => {
                if z > 0.0 {
                    z
                } else {
                    slope * z
                }
            }
            // exp_m1 keeps the digits that e^z - 1 loses near 0.
            Self::Elu => {
                if z > 0.0 {
                    z
                } else {
                    z.exp_m1()
                }
            }
            Self::Gelu => 0.5 * z * (1.0 + erf(z / std::f64::consts::SQRT_2)),
            Self::Silu => z / (1.0 + (-z).exp()),
            Self::Softsign => z / (1.0 + z.abs()),
            Self::Selu => {
                if z > 0.0 {
                    SELU_LAMBDA * z
                } else {
                    SELU_LAMBDA * SELU_ALPHA * z.exp_m1()
                }
            }
            Self::Linear => z,
        }
    }

    /// The derivative f'(z), in f64; at the kink of the ReLU family the derivative of the
    /// negative side (0, or the slope), as TensorFlow and PyTorch take it.
    pub fn derivative(&self, z: f64) -> f64 {
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        match *self {
            Self::Sigmoid => {
                let s = sigmoid(z);
                s * (1.0 - s)
            }
            Self::Tanh => 1.0 - z.tanh().powi(2),
            Self::Relu => f64::from(u8::from(z > 0.0)),
            Self::LeakyRelu { slope } => {
                if z > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            Self::Elu => {
                if z > 0.0 {
                    1.0
                } else {
                    z.exp()
                }
            }
            // d/dz z*Phi(z) = Phi(z) + z*phi(z).
            Self::Gelu => {
                let phi = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
                0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2)) + z * phi
            }
            Self::Silu => {
                let s = sigmoid(z);
                s + z * s * (1.0 - s)
            }
            Self::Softsign => (1.0 + z.abs()).powi(-2),
            Self::Linear => 1.0,
            Self::Selu => {
                if z > 0.0 {
                    SELU_LAMBDA
                } else {
                    SELU_LAMBDA * SELU_ALPHA * z.exp()
                }
            }
        }
    }

    /// The largest value the derivative takes: 1/4 for sigmoid, 1 for tanh, softsign and
    /// the ReLU family, a little above 1 for GELU and SiLU, lambda * alpha (about 1.76,
    /// just below 0) for SELU.
    pub fn max_derivative(&self) -> f64 {
        match self {
            Self::Sigmoid => 0.25,
            Self::Gelu => 1.128_904_9,
            Self::Silu => 1.099_839_2,
            Self::Selu => SELU_LAMBDA * SELU_ALPHA,
            _ => 1.0,
        }
    }

    /// `(self.derivative(z), self.unit_is_off(z))` for an f32 `z`, with sigmoid's one
    /// exponential shared: both are the same `s (1 - s)`, and the probe needs both for
    /// every hidden unit of every logged step.
    pub fn derivative_and_off(&self, z: f32) -> (f64, bool) {
        let derivative = self.derivative(f64::from(z));
        match self {
            Self::Sigmoid => (derivative, derivative < SIGMOID_OFF),
            _ => (derivative, self.unit_is_off(z)),
        }
    }

    /// Whether a unit with pre-activation `z` is off: dead (z <= 0) for the ReLU family,
    /// ELU, SELU, GELU and SiLU; saturated (derivative below 1% of its maximum) for
    /// sigmoid, tanh and softsign.
    pub fn unit_is_off(&self, z: f32) -> bool {
        match self {
            Self::Sigmoid => {
                let s = 1.0 / (1.0 + (-f64::from(z)).exp());
                s * (1.0 - s) < SIGMOID_OFF
            }
            Self::Tanh => {
                let t = f64::from(z).tanh();
                1.0 - t * t < 0.01
            }
            Self::Softsign => (1.0 + f64::from(z).abs()).powi(-2) < 0.01,
            Self::Linear => false,
            _ => z <= 0.0,
        }
    }
}

/// Below this derivative (1% of its maximum, 1/4) a sigmoid unit is saturated.
const SIGMOID_OFF: f64 = 0.01 * 0.25;

/// The error function, by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7): std
/// has none, and a statistic of GELU's derivative needs no more.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * (-x * x).exp()).copysign(x)
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sigmoid => f.write_str("sigmoid"),
            Self::Tanh => f.write_str("tanh"),
            Self::Relu => f.write_str("relu"),
            Self::LeakyRelu { slope } => write!(f, "leaky-relu:{slope}"),
            Self::Elu => f.write_str("elu"),
            Self::Gelu => f.write_str("gelu"),
            Self::Silu => f.write_str("silu"),
            Self::Softsign => f.write_str("softsign"),
            Self::Selu => f.write_str("selu"),
            Self::Linear => f.write_str("linear"),
        }
    }
}

impl FromStr for Activation {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = |expected: String| ParseError {
            what: "activation",
            value: s.to_string(),
            expected,
        };
        let activation = match s.trim() {
            "sigmoid" => Self::Sigmoid,
            "tanh" => Self::Tanh,
            "relu" => Self::Relu,
            "leaky-relu" => Self::LeakyRelu {
                slope: DEFAULT_LEAKY_SLOPE,
            },
            "elu" => Self::Elu,
            "gelu" => Self::Gelu,
            "silu" => Self::Silu,
            "softsign" => Self::Softsign,
            "selu" => Self::Selu,
            "linear" => Self::Linear,
            other => {
                match other.strip_prefix("leaky-relu:") {
                    Some(slope) => {
                        let slope: f64 = slope.trim().parse().map_err(|_| {
                        bad("the slope after `leaky-relu:` must be a number, e.g. leaky-relu:0.2".into())
                    })?;
                        if !(slope > 0.0 && slope < 1.0) {
                            return Err(bad(
                                "the leaky-relu slope must lie strictly between 0 and 1".into(),
                            ));
                        }
                        Self::LeakyRelu { slope }
                    }
                    None => return Err(bad(format!("expected one of {ACTIVATION_NAMES}"))),
                }
            }
        };
        Ok(activation)
    }
}

crate::serde_as_text!(Activation);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_derivative_and_state_are_the_separate_ones() {
        let zs = (-4000..=4000)
            .map(|i| i as f32 * 0.005)
            .chain([f32::NAN, f32::INFINITY]);
        for activation in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
            for z in zs.clone() {
                let (d, off) = activation.derivative_and_off(z);
                let separate = activation.derivative(f64::from(z));
                assert!(d.to_bits() == separate.to_bits() || (d.is_nan() && separate.is_nan()));
                assert_eq!(off, activation.unit_is_off(z), "{activation:?} at {z}");
            }
        }
    }

    #[test]
    fn parses_every_name_and_round_trips() {
        for name in [
            "sigmoid",
            "tanh",
            "relu",
            "leaky-relu:0.2",
            "leaky-relu:0.01",
            "elu",
            "gelu",
            "silu",
            "softsign",
            "selu",
            "linear",
        ] {
            let a: Activation = name.parse().unwrap();
            assert_eq!(a.to_string(), name);
        }
        assert_eq!(
            "leaky-relu".parse::<Activation>().unwrap(),
            Activation::LeakyRelu { slope: 0.01 }
        );
    }

    #[test]
    fn rejects_bad_names_and_slopes_with_the_allowed_values() {
        let err = "swish".parse::<Activation>().unwrap_err().to_string();
        assert!(
            err.contains("swish") && err.contains("leaky-relu:<slope>"),
            "{err}"
        );
        assert!("leaky-relu:x".parse::<Activation>().is_err());
        assert!("leaky-relu:0".parse::<Activation>().is_err());
        assert!("leaky-relu:1.5".parse::<Activation>().is_err());
    }

    /// An activation's formula, written out independently of the code under test.
    type Formula = fn(f64) -> f64;

    /// Every activation with its formula, written out independently of the code.
    fn formulas() -> [(Activation, Formula); 10] {
        [
            (Activation::Linear, |x| x),
            (Activation::Softsign, |x| x / (1.0 + x.abs())),
            (Activation::Selu, |x| {
                1.050_700_987_355_480_5
                    * if x > 0.0 {
                        x
                    } else {
                        1.673_263_242_354_377_3 * (x.exp() - 1.0)
                    }
            }),
            (Activation::Sigmoid, |x| 1.0 / (1.0 + (-x).exp())),
            (Activation::Tanh, f64::tanh),
            (Activation::Relu, |x| x.max(0.0)),
            (Activation::LeakyRelu { slope: 0.2 }, |x| x.max(0.2 * x)),
            (Activation::Elu, |x| if x > 0.0 { x } else { x.exp() - 1.0 }),
            (Activation::Gelu, |x| 0.5 * x * (1.0 + erf(x / 2f64.sqrt()))),
            (Activation::Silu, |x| x / (1.0 + (-x).exp())),
        ]
    }

    #[test]
    fn derivatives_match_central_differences_of_the_formulas() {
        let cases = formulas();
        let h = 1e-5;
        for (activation, f) in cases {
            let mut largest = 0f64;
            for i in -400..=400 {
                // Away from the kink at 0, where a central difference sees half a slope.
                let z = f64::from(i) * 0.01 + 0.005;
                let numeric = (f(z + h) - f(z - h)) / (2.0 * h);
                let d = activation.derivative(z);
                assert!(
                    (d - numeric).abs() < 1e-5,
                    "{activation} at {z}: {d} vs {numeric}"
                );
                largest = largest.max(d);
            }
            assert!(
                largest <= activation.max_derivative() + 1e-9,
                "{activation}"
            );
            // The grid's nearest point to SELU's maximum (at 0-) is 0.005 away.
            assert!(largest > activation.max_derivative() * 0.99, "{activation}");
        }
        assert_eq!(Activation::Relu.derivative(0.0), 0.0);
        assert_eq!(Activation::LeakyRelu { slope: 0.2 }.derivative(0.0), 0.2);
    }

    #[test]
    fn values_match_the_formulas_and_their_differences_the_derivatives() {
        let cases = formulas();
        let h = 1e-5;
        for (activation, f) in cases {
            for i in -400..=400 {
                let z = f64::from(i) * 0.01;
                let (v, expected) = (activation.value(z), f(z));
                assert!(
                    (v - expected).abs() <= 1e-14 * (1.0 + expected.abs()),
                    "{activation} at {z}: {v} vs {expected}"
                );
                // Away from the kink at 0, where a central difference sees half a slope.
                let z = z + 0.005;
                let numeric = (activation.value(z + h) - activation.value(z - h)) / (2.0 * h);
                let d = activation.derivative(z);
                assert!(
                    (d - numeric).abs() < 1e-5,
                    "{activation} at {z}: {d} vs {numeric}"
                );
            }
        }
        assert_eq!(Activation::Relu.value(-3.0), 0.0);
        assert_eq!(Activation::LeakyRelu { slope: 0.2 }.value(-3.0), 0.2 * -3.0);
    }

    #[test]
    fn off_units() {
        let relu = Activation::Relu;
        assert!(relu.unit_is_off(0.0) && relu.unit_is_off(-1.0) && !relu.unit_is_off(1e-6));
        // sigmoid'(z) < 0.0025 once |z| > ~5.99
        assert!(Activation::Sigmoid.unit_is_off(6.5) && Activation::Sigmoid.unit_is_off(-6.5));
        assert!(!Activation::Sigmoid.unit_is_off(5.5));
        // tanh'(z) < 0.01 once |z| > ~2.99
        assert!(Activation::Tanh.unit_is_off(3.1) && !Activation::Tanh.unit_is_off(2.9));
        // softsign'(z) < 0.01 once |z| > 9
        assert!(Activation::Softsign.unit_is_off(-9.5) && !Activation::Softsign.unit_is_off(8.5));
    }
}
