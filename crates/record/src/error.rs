//! Errors of the record crate.

use std::path::PathBuf;

/// A setting given as text (an activation, an init, a device) that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{value}`: {expected}")]
pub struct ParseError {
    /// Which setting, e.g. "activation".
    pub what: &'static str,
    /// The value as given.
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
}

/// A configuration that parses but cannot be trained; the message names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A run file that cannot be read or written; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading or writing failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A file (or one line of `metrics.jsonl`) that is not what its schema says.
    #[error("{path}{}: {cause}", line.map(|l| format!(": line {l}")).unwrap_or_default())]
    Json {
        /// The file.
        path: PathBuf,
        /// The 1-based line, for `metrics.jsonl`.
        line: Option<usize>,
        /// The parser's message.
        cause: serde_json::Error,
    },
}

/// Serialises a type as its `Display` text and parses it back with `FromStr`, so that
/// `config.json`, sweep files and flags all spell a value the same way.
#[macro_export]
macro_rules! serde_as_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Reads a setting a sweep file may write as a number or as text (`1` or `"1"`,
/// `"critical"`): a number through `number`, which checks it, text through the type's
/// parser.
pub(crate) fn number_or_text<'de, D, T>(
    d: D,
    number: impl FnOnce(f64) -> Result<T, ParseError>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = ParseError>,
{
    use serde::Deserialize;
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(f64),
        Text(String),
    }
    match Written::deserialize(d)? {
        Written::Number(v) => number(v).map_err(serde::de::Error::custom),
        Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_names_its_cause_once() {
        // The cause is in the message, so it is not also a `source()`: error reports that
        // print the chain (anyhow's `{:#}`) would say it twice.
        let err = RecordError::Io {
            path: PathBuf::from("runs/x/summary.json"),
            cause: std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"),
        };
        assert_eq!(err.to_string(), "runs/x/summary.json: disk full");
        assert!(std::error::Error::source(&err).is_none());
    }
}
