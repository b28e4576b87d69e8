//! Reads what back-propagation did to every layer, from candle's `GradStore`, and turns
//! it into the statistics of the vanishing-gradient study: per-layer gradient and weight
//! magnitudes, dead or saturated units, fixed-edge histograms, the back-propagated error
//! at each pre-activation, and the first-to-last-layer decay ratios.

pub mod decay;
pub mod error;
pub mod histogram;
pub mod nan;
pub mod probe;
pub mod record;
pub mod seeds;
pub mod stats;
pub mod taps;

pub use decay::DecayProfile;
pub use error::{ProbeError, Result};
pub use histogram::Histogram;
pub use probe::probe_step;
pub use record::{LayerRecord, StepRecord};
pub use seeds::GeometricSummary;
pub use stats::Moments;
pub use taps::DeltaTaps;
