//! How a residual branch is scaled where it joins its skip connection (`--branch-scale`),
//! as the names users type. Computing it is the model crate's job.
//!
//! Without a scale the forward signal of a residual network grows with depth, each branch
//! adding its variance to the skip's (Hanin & Rolnick 2018): the remedies report's
//! 32-layer residual network reaches an activation mean in the thousands. Scaling each of
//! L branches by 1/sqrt(L) keeps the sum's variance bounded (Fixup, Zhang et al. 2019, for
//! branches of one layer), and a learnable scalar that starts at 0 makes every block the
//! identity at initialisation (SkipInit, De & Smith 2020).

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// The scale alpha of a residual branch: hidden layer l computes h_l = h_(l-1) + alpha
/// f(z_l).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchScale {
    /// alpha = 1: the plain residual network.
    One,
    /// alpha = 1 / sqrt(B) for a network of B residual branches (hidden layers 2..L-1,
    /// so B = L - 2).
    InverseSqrtDepth,
    /// alpha a learnable scalar per branch (and ensemble member), starting at 0 (SkipInit).
    SkipInit,
}

impl BranchScale {
    /// Every scale, in the order of the help text.
    pub const ALL: [Self; 3] = [Self::One, Self::InverseSqrtDepth, Self::SkipInit];

    /// The fixed alpha of a network of `branches` residual branches; `None` where alpha is
    /// learned (SkipInit).
    pub fn fixed(&self, branches: usize) -> Option<f64> {
        match self {
            Self::One => Some(1.0),
            Self::InverseSqrtDepth => Some(1.0 / (branches.max(1) as f64).sqrt()),
            Self::SkipInit => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::One => "one",
            Self::InverseSqrtDepth => "inverse-sqrt-depth",
            Self::SkipInit => "skipinit",
        }
    }
}

impl fmt::Display for BranchScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BranchScale {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s.trim())
            .ok_or_else(|| ParseError {
                what: "branch scale",
                value: s.to_string(),
                expected: "expected one of one, inverse-sqrt-depth, skipinit".into(),
            })
    }
}

crate::serde_as_text!(BranchScale);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_scales() {
        for b in BranchScale::ALL {
            assert_eq!(b.to_string().parse::<BranchScale>().unwrap(), b);
        }
        assert_eq!(
            "half".parse::<BranchScale>().unwrap_err().to_string(),
            "invalid branch scale `half`: expected one of one, inverse-sqrt-depth, skipinit"
        );
        assert_eq!(BranchScale::One.fixed(30), Some(1.0));
        assert_eq!(BranchScale::InverseSqrtDepth.fixed(4), Some(0.5));
        assert_eq!(BranchScale::SkipInit.fixed(4), None);
    }
}
