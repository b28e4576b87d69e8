//! Parsing and checking a sweep file.

use std::path::{Path, PathBuf};

use toml::{Table, Value};
use vgrad_cli::config::RunConfig;

/// Fields of `vgrad train` a sweep may set in `[base]` or vary in `[axes]`.
pub const FIELDS: [&str; 12] = [
    "activation",
    "layers",
    "width",
    "init",
    "steps",
    "batch_size",
    "lr",
    "beta1",
    "beta2",
    "epsilon",
    "log_every",
    "data",
];

/// Top-level keys of a sweep file.
const TOP_LEVEL: [&str; 4] = ["description", "seeds", "base", "axes"];

/// A sweep file that cannot be used; the message names the file, the key and what is
/// allowed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{path}: not valid TOML: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key with a bad value, or an unknown key.
    #[error("{path}: `{key}`: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Dotted key, e.g. `axes.activation[2]`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// A sweep file, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepDefinition {
    /// The experiment's name: the file's stem (`seed` for `experiments/seed.toml`).
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// What the sweep is for.
    pub description: String,
    /// The seeds every grid point is trained with.
    pub seeds: Vec<u64>,
    /// The configuration before the axes are applied (with `[base]` applied to the
    /// reference defaults).
    pub base: RunConfig,
    /// Varied fields in file order, each with its values in file order.
    pub axes: Vec<(String, Vec<Value>)>,
}

/// Sets `field` of `cfg` from a TOML value; the error says what was expected.
pub fn apply_field(cfg: &mut RunConfig, field: &str, value: &Value) -> Result<(), String> {
    let count = |v: &Value| -> Result<usize, String> {
        match v.as_integer() {
            Some(i) if i >= 0 => Ok(i as usize),
            _ => Err(format!("expected a non-negative integer, found {v}")),
        }
    };
    let number = |v: &Value| -> Result<f64, String> {
        match v {
            Value::Float(f) => Ok(*f),
            Value::Integer(i) => Ok(*i as f64),
            _ => Err(format!("expected a number, found {v}")),
        }
    };
    let text = |v: &Value| -> Result<String, String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("expected a string, found {v}"))
    };
    match field {
        "activation" => cfg.activation = text(value)?.parse().map_err(|e| format!("{e}"))?,
        "init" => cfg.init = text(value)?.parse().map_err(|e| format!("{e}"))?,
        "data" => cfg.data = text(value)?,
        "layers" => cfg.layers = count(value)?,
        "width" => cfg.width = count(value)?,
        "steps" => cfg.steps = count(value)?,
        "batch_size" => cfg.batch_size = count(value)?,
        "log_every" => cfg.log_every = count(value)?,
        "lr" => cfg.adam.lr = number(value)?,
        "beta1" => cfg.adam.beta1 = number(value)?,
        "beta2" => cfg.adam.beta2 = number(value)?,
        "epsilon" => cfg.adam.epsilon = number(value)?,
        other => {
            return Err(format!(
                "unknown field `{other}`; allowed: {}",
                FIELDS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The canonical text of `field` in `cfg` (e.g. `leaky-relu:0.01` for `leaky-relu`).
pub fn field_display(cfg: &RunConfig, field: &str) -> String {
    match field {
        "activation" => cfg.activation.to_string(),
        "init" => cfg.init.to_string(),
        "data" => cfg.data.clone(),
        "layers" => cfg.layers.to_string(),
        "width" => cfg.width.to_string(),
        "steps" => cfg.steps.to_string(),
        "batch_size" => cfg.batch_size.to_string(),
        "log_every" => cfg.log_every.to_string(),
        "lr" => number(cfg.adam.lr),
        "beta1" => number(cfg.adam.beta1),
        "beta2" => number(cfg.adam.beta2),
        "epsilon" => number(cfg.adam.epsilon),
        _ => String::new(),
    }
}

/// A float in its shortest exact form, in scientific notation when very small or large
/// (`1e-8`, not `0.00000001`).
fn number(x: f64) -> String {
    if x != 0.0 && !(1e-3..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

impl SweepDefinition {
    /// Reads and checks the sweep file at `path`.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of a sweep file; `path` names it (and gives the experiment's name).
    pub fn parse(text: &str, path: &Path) -> Result<Self, SweepError> {
        let key_error = |key: &str, message: String| SweepError::Key {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| SweepError::Toml {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
        for key in table.keys() {
            if !TOP_LEVEL.contains(&key.as_str()) {
                return Err(key_error(
                    key,
                    format!("unknown key; allowed: {}", TOP_LEVEL.join(", ")),
                ));
            }
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into());
        let description = match table.get("description") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(key_error(
                    "description",
                    format!("expected a string, found {other}"),
                ));
            }
        };
        let seeds = match table.get("seeds") {
            None => return Err(key_error(
                "seeds",
                "missing: give the number of seeds, e.g. seeds = 10, or a list such as [0, 3, 7]"
                    .into(),
            )),
            Some(v) => parse_seeds(v).map_err(|m| key_error("seeds", m))?,
        };
        let mut base = RunConfig::default();
        if let Some(value) = table.get("base") {
            let Value::Table(fields) = value else {
                return Err(key_error(
                    "base",
                    format!("expected a table of fields, found {value}"),
                ));
            };
            for (field, v) in fields {
                apply_field(&mut base, field, v)
                    .map_err(|m| key_error(&format!("base.{field}"), m))?;
            }
        }
        let mut axes = Vec::new();
        if let Some(value) = table.get("axes") {
            let Value::Table(fields) = value else {
                return Err(key_error(
                    "axes",
                    format!("expected a table of lists, found {value}"),
                ));
            };
            for (field, v) in fields {
                let key = format!("axes.{field}");
                let Value::Array(values) = v else {
                    return Err(key_error(
                        &key,
                        format!("expected a list of values, found {v}"),
                    ));
                };
                if values.is_empty() {
                    return Err(key_error(
                        &key,
                        "empty list: an axis needs at least one value".into(),
                    ));
                }
                for (i, item) in values.iter().enumerate() {
                    let mut probe = base.clone();
                    apply_field(&mut probe, field, item)
                        .map_err(|m| key_error(&format!("{key}[{i}]"), m))?;
                }
                axes.push((field.clone(), values.clone()));
            }
        }
        Ok(Self {
            name,
            path: path.to_path_buf(),
            description,
            seeds,
            base,
            axes,
        })
    }
}

/// `seeds = N` (seeds 0..N) or `seeds = [a, b, ...]`.
fn parse_seeds(value: &Value) -> Result<Vec<u64>, String> {
    let seeds: Vec<u64> = match value {
        Value::Integer(n) if *n >= 1 => (0..*n as u64).collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| match v.as_integer() {
                Some(i) if i >= 0 => Ok(i as u64),
                _ => Err(format!("expected non-negative integer seeds, found {v}")),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "expected a positive number of seeds or a list of seeds, found {other}"
            ));
        }
    };
    if seeds.is_empty() {
        return Err("the list of seeds is empty".into());
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("seed {} appears twice", w[0]));
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SweepDefinition, String> {
        SweepDefinition::parse(text, Path::new("experiments/test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_base_axes_and_seeds() {
        let d = parse(
            "description = \"d\"\nseeds = 3\n[base]\nsteps = 100\nlr = 1\n[axes]\nactivation = [\"relu\", \"leaky-relu:0.2\"]\nlayers = [3, 6]\n",
        )
        .unwrap();
        assert_eq!(d.name, "test");
        assert_eq!(d.seeds, vec![0, 1, 2]);
        assert_eq!((d.base.steps, d.base.adam.lr), (100, 1.0));
        assert_eq!(
            d.axes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            vec!["activation", "layers"]
        );
        assert_eq!(parse("seeds = [4, 1]").unwrap().seeds, vec![4, 1]);
    }

    #[test]
    fn errors_name_the_file_the_key_and_what_is_allowed() {
        let cases = [
            (
                "seeds = 2\nsteps = 5",
                "`steps`: unknown key; allowed: description, seeds, base, axes",
            ),
            (
                "seeds = 2\n[base]\nsteps = \"many\"",
                "`base.steps`: expected a non-negative integer, found \"many\"",
            ),
            (
                "seeds = 2\n[base]\nlearning_rate = 0.1",
                "unknown field `learning_rate`; allowed: activation, layers",
            ),
            (
                "seeds = 2\n[axes]\nactivation = []",
                "`axes.activation`: empty list",
            ),
            (
                "seeds = 2\n[axes]\nactivation = [\"relu\", \"swish\"]",
                "`axes.activation[1]`: invalid activation `swish`",
            ),
            (
                "seeds = 2\n[axes]\nlayers = 6",
                "`axes.layers`: expected a list",
            ),
            ("[base]\nsteps = 5", "`seeds`: missing"),
            ("seeds = 0", "`seeds`: expected a positive number"),
            ("seeds = [1, 1]", "seed 1 appears twice"),
            ("seeds = 2\n[base", "not valid TOML"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with("experiments/test.toml: "), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
