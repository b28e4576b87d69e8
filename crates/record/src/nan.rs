//! JSON has no NaN: serde_json writes a NaN as `null`. These read such a `null` back as
//! NaN, for numbers a run may not have (the accuracy of a diverged run, say).

use serde::{Deserialize, Deserializer};

/// An `f64` that may be `null` (NaN).
pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// NaN, the value of a number a file does not have (`#[serde(default = ...)]`).
pub fn missing() -> f64 {
    f64::NAN
}

/// A list of `f64` whose entries may be `null` (NaN).
pub fn vec_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}
