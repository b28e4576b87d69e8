//! Reads what back-propagation did to every layer, from candle's `GradStore`, and turns
//! it into the per-layer records of the vanishing-gradient study: gradient and weight
//! magnitudes, dead or saturated units, fixed-edge histograms, and the back-propagated
//! error at each pre-activation; and the singular values of the network's Jacobians, per
//! layer and whole, at the evaluation pass ([`jacobian`]).

#![forbid(unsafe_code)]

pub mod error;
pub mod jacobian;
pub mod moments;
pub mod probe;
pub mod taps;
pub mod through_time;

pub use error::{ProbeError, Result};
pub use jacobian::{Jacobians, MemberSpectra, jacobian_spectra, jacobians};
pub use moments::Moments;
pub use probe::{per_member, probe_step};
pub use taps::DeltaTaps;
