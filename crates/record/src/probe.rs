//! What a run measures beyond the gradients, as the names users type.

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// The widest hidden layer at which `auto` probes the Jacobian at every logged step.
pub const JACOBIAN_AUTO_WIDTH: usize = 128;

/// How many test images (the first ones, the same for every run) the Jacobian is
/// measured on in a network whose widest hidden layer has `width` units: 8, which keeps
/// the whole probe within 3% of the training time at the reference logging, or 4 beyond
/// [`JACOBIAN_AUTO_WIDTH`] units, where one singular value decomposition costs much more.
pub fn jacobian_examples(width: usize) -> usize {
    if width <= JACOBIAN_AUTO_WIDTH { 8 } else { 4 }
}

/// Which of the costly measurements the probe takes (`--probe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The Jacobian spectrum at every logged step while no hidden layer is wider than
    /// [`JACOBIAN_AUTO_WIDTH`] units, at step 0 only beyond.
    Auto,
    /// The Jacobian spectrum at every logged step, at any width.
    Jacobian,
    /// No Jacobian spectrum.
    Basic,
}

impl Probe {
    /// Whether the Jacobian is probed at logged step `step` of a network whose widest
    /// hidden layer has `width` units.
    pub fn jacobian_at(&self, step: usize, width: usize) -> bool {
        match self {
            Self::Auto => width <= JACOBIAN_AUTO_WIDTH || step == 0,
            Self::Jacobian => true,
            Self::Basic => false,
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Jacobian => "jacobian",
            Self::Basic => "basic",
        })
    }
}

impl FromStr for Probe {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "jacobian" => Ok(Self::Jacobian),
            "basic" => Ok(Self::Basic),
            other => Err(ParseError {
                what: "probe",
                value: other.to_string(),
                expected: "expected one of auto, jacobian, basic".into(),
            }),
        }
    }
}

crate::serde_as_text!(Probe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_probes_wide_networks_at_step_0_only() {
        assert!(Probe::Auto.jacobian_at(200, 10) && Probe::Auto.jacobian_at(0, 1000));
        assert!(!Probe::Auto.jacobian_at(200, 1000));
        assert!(Probe::Jacobian.jacobian_at(200, 1000));
        assert!(!Probe::Basic.jacobian_at(0, 10));
        for name in ["auto", "jacobian", "basic"] {
            assert_eq!(name.parse::<Probe>().unwrap().to_string(), name);
        }
        assert_eq!(
            "all".parse::<Probe>().unwrap_err().to_string(),
            "invalid probe `all`: expected one of auto, jacobian, basic"
        );
    }
}
