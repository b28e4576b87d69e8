//! Parsing and checking a sweep file.
//!
//! `[base]` and every value of `[axes]` are fields of the run configuration: the sweep
//! merges them into one TOML table per grid point and deserialises it into a
//! [`RunConfig`], which rejects unknown keys, so a sweep file can set exactly what
//! `vgrad train` can. Each `[[scenarios]]` table is a named set of such fields that go
//! together (an optimizer with its own learning rate); the grid repeats the axes' product
//! once per scenario.

use std::path::{Path, PathBuf};

use toml::{Table, Value};
use vgrad_record::layout::check_folder_name;
use vgrad_record::seeds::SEEDS_GRAMMAR;
use vgrad_record::{RunConfig, Seeds};

/// Top-level keys of a sweep file.
const TOP_LEVEL: [&str; 6] = [
    "description",
    "seeds",
    "base",
    "axes",
    "scenarios",
    "papers",
];

/// A sweep that cannot be used or run; the message names the file, the key and what is
/// allowed, or the run folder and what failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{}: not valid TOML: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key with a bad value, or an unknown key.
    #[error("{}: `{key}`: {message}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Dotted key, e.g. `axes.activation[2]`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// `vgrad train` could not be started.
    #[error("cannot start {}: {cause}", program.display())]
    Spawn {
        /// The binary.
        program: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

/// A paper a sweep can reproduce, whose numbers the report sets beside the sweep's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    /// The reference post (Andy Thomas, TensorFlow 1): the decay ratios.
    Post,
    /// Glorot & Bengio 2010: the Jacobians' singular values at initialisation.
    Glorot2010,
    /// Ioffe & Szegedy 2015: batch norm's learning curves.
    Ioffe2015,
    /// He et al. 2015: deep ReLU networks under their init and Glorot's.
    He2015,
    /// Schoenholz et al. 2017: trainable depth over sigma_w^2 against 6 xi_c.
    Schoenholz2017,
    /// Yang et al. 2019: batch norm's gradient explosion with depth.
    Yang2019,
    /// Hanin & Rolnick 2018 (with Fixup and SkipInit): residual branches, scaled.
    Hanin2018,
    /// He et al. 2016: deeper plain convolutional networks fit worse, residual ones do not.
    He2016,
    /// Pascanu, Mikolov & Bengio 2013: the vanilla RNN's bound on the Jacobians through
    /// time, and gradient clipping.
    Pascanu2013,
    /// Jozefowicz, Zaremba & Sutskever 2015: the LSTM's forget-gate bias of 1.
    Jozefowicz2015,
    /// Le, Jaitly & Hinton 2015: sequential MNIST and the adding problem.
    Le2015,
    /// Hochreiter & Schmidhuber 1997: the LSTM and the adding problem.
    Hochreiter1997,
    /// Pennington, Schoenholz & Ganguli 2017: the hidden chain's singular values at
    /// criticality, orthogonal against Gaussian weights, and the learning speed.
    Pennington2017,
}

impl Paper {
    /// Every paper, with its key in `[papers]`.
    pub const ALL: [(Self, &'static str); 13] = [
        (Self::Post, "post"),
        (Self::Glorot2010, "glorot2010"),
        (Self::Ioffe2015, "ioffe2015"),
        (Self::He2015, "he2015"),
        (Self::Schoenholz2017, "schoenholz2017"),
        (Self::Yang2019, "yang2019"),
        (Self::Hanin2018, "hanin2018"),
        (Self::He2016, "he2016"),
        (Self::Pascanu2013, "pascanu2013"),
        (Self::Jozefowicz2015, "jozefowicz2015"),
        (Self::Le2015, "le2015"),
        (Self::Hochreiter1997, "hochreiter1997"),
        (Self::Pennington2017, "pennington2017"),
    ];
}

impl std::str::FromStr for Paper {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(_, key)| *key == s)
            .map(|(p, _)| *p)
            .ok_or_else(|| {
                let keys: Vec<&str> = Self::ALL.iter().map(|(_, k)| *k).collect();
                format!("unknown paper; allowed: {}", keys.join(", "))
            })
    }
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
    /// The papers the sweep reproduces (`[papers]`), each with its setup beside the
    /// sweep's and which numbers are comparable (markdown): the report compares with
    /// these, and only these.
    pub papers: Vec<(Paper, String)>,
    /// The seeds every grid point is trained with.
    pub seeds: Vec<u64>,
    /// The fields `[base]` sets (the reference defaults hold for the others).
    pub base: Table,
    /// Varied fields in file order, each with its values in file order.
    pub axes: Vec<(String, Vec<Value>)>,
    /// The `[[scenarios]]` in file order; empty when the file has none.
    pub scenarios: Vec<NamedScenario>,
}

/// One `[[scenarios]]` table: settings that go together, under a name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedScenario {
    /// Its name, unique in the sweep: it labels the grid points and names the run folders.
    pub name: String,
    /// The fields it sets over `[base]` (every key of the table but `name`), in file order.
    pub fields: Table,
}

/// Why a table of fields is not a run configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field at fault, when it is one field.
    pub field: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// The run configuration that `table` (fields of a sweep file) describes.
pub fn config_from(table: &Table) -> Result<RunConfig, FieldError> {
    if table.contains_key("seed") {
        return Err(FieldError {
            field: Some("seed".into()),
            message: "a sweep's seeds are set by its top-level `seeds` key".into(),
        });
    }
    serde_path_to_error::deserialize(Value::Table(table.clone())).map_err(|e| {
        let path = e.path().to_string();
        FieldError {
            field: (path != ".").then_some(path),
            message: e.into_inner().to_string(),
        }
    })
}

impl SweepDefinition {
    /// Reads and checks the sweep file at `path`.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|cause| SweepError::Io {
            path: path.to_path_buf(),
            cause,
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
        if let Some(key) = table.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
            return Err(key_error(
                key,
                format!("unknown key; allowed: {}", TOP_LEVEL.join(", ")),
            ));
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into());
        let text = |key: &str| match table.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(key_error(key, format!("expected a string, found {other}"))),
        };
        let description = text("description")?;
        let papers = match table.get("papers") {
            None => Vec::new(),
            Some(Value::Table(papers)) => papers
                .iter()
                .map(|(key, setup)| {
                    let at = format!("papers.{key}");
                    let paper = key.parse::<Paper>().map_err(|m| key_error(&at, m))?;
                    match setup {
                        Value::String(s) => Ok((paper, s.clone())),
                        other => Err(key_error(
                            &at,
                            format!("expected the paper's setup as a string, found {other}"),
                        )),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(key_error(
                    "papers",
                    format!("expected a table of papers, found {other}"),
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
        let base = match table.get("base") {
            None => Table::new(),
            Some(Value::Table(fields)) => fields.clone(),
            Some(other) => {
                return Err(key_error(
                    "base",
                    format!("expected a table of fields, found {other}"),
                ));
            }
        };
        config_from(&base).map_err(|e| match e.field {
            Some(f) => key_error(&format!("base.{f}"), e.message),
            None => key_error("base", e.message),
        })?;
        let axes = match table.get("axes") {
            None => Vec::new(),
            Some(Value::Table(fields)) => fields
                .iter()
                .map(|(field, values)| {
                    check_axis(&base, field, values).map_err(|(k, m)| key_error(&k, m))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(key_error(
                    "axes",
                    format!("expected a table of lists, found {other}"),
                ));
            }
        };
        let scenarios = match table.get("scenarios") {
            None => Vec::new(),
            Some(value) => {
                parse_scenarios(&base, &axes, value).map_err(|(k, m)| key_error(&k, m))?
            }
        };
        Ok(Self {
            name,
            path: path.to_path_buf(),
            description,
            papers,
            seeds,
            base,
            axes,
            scenarios,
        })
    }
}

/// An axis of field `field`: a non-empty list whose every value, set over `base`, gives a
/// run configuration. The error is the dotted key at fault and what is wrong.
fn check_axis(
    base: &Table,
    field: &str,
    values: &Value,
) -> Result<(String, Vec<Value>), (String, String)> {
    let key = format!("axes.{field}");
    let Value::Array(values) = values else {
        return Err((key, format!("expected a list of values, found {values}")));
    };
    if values.is_empty() {
        return Err((key, "empty list: an axis needs at least one value".into()));
    }
    for (i, value) in values.iter().enumerate() {
        let mut table = base.clone();
        table.insert(field.to_string(), value.clone());
        config_from(&table).map_err(|e| (format!("{key}[{i}]"), e.message))?;
    }
    Ok((field.to_string(), values.clone()))
}

/// The `[[scenarios]]` array: each a table with a unique, non-empty `name` whose other keys,
/// set over `base`, give a run configuration and leave the axes' fields to the axes. The
/// error is the dotted key at fault (`scenarios[1].lr`) and what is wrong.
fn parse_scenarios(
    base: &Table,
    axes: &[(String, Vec<Value>)],
    value: &Value,
) -> Result<Vec<NamedScenario>, (String, String)> {
    let key = "scenarios".to_string();
    let Value::Array(items) = value else {
        return Err((
            key,
            format!("expected an array of tables ([[scenarios]]), found {value}"),
        ));
    };
    if items.is_empty() {
        return Err((
            key,
            "empty list: give at least one [[scenarios]] table, or leave the key out".into(),
        ));
    }
    let mut scenarios: Vec<NamedScenario> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("scenarios[{i}]");
        let Value::Table(table) = item else {
            return Err((at, format!("expected a table of fields, found {item}")));
        };
        let name = match table.get("name") {
            None => {
                return Err((
                    format!("{at}.name"),
                    "missing: every scenario needs a name, e.g. name = \"sgd\"".into(),
                ));
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err((
                    format!("{at}.name"),
                    "empty: a scenario's name labels its grid points and run folders".into(),
                ));
            }
            Some(Value::String(s)) => {
                // The name labels run folders; one from a shared file must not lead out.
                check_folder_name(s).map_err(|m| (format!("{at}.name"), m))?;
                s.clone()
            }
            Some(other) => {
                return Err((
                    format!("{at}.name"),
                    format!("expected a string, found {other}"),
                ));
            }
        };
        if let Some(j) = scenarios.iter().position(|s| s.name == name) {
            return Err((
                format!("{at}.name"),
                format!("`{name}` also names scenarios[{j}]; names must be unique"),
            ));
        }
        let mut fields = table.clone();
        fields.remove("name");
        // Both would set the field; which one wins would be a guess.
        if let Some(field) = fields.keys().find(|k| axes.iter().any(|(a, _)| a == *k)) {
            return Err((
                format!("{at}.{field}"),
                "also an axis; set it in one place".into(),
            ));
        }
        let mut merged = base.clone();
        merged.extend(fields.clone());
        config_from(&merged).map_err(|e| match e.field {
            Some(f) => (format!("{at}.{f}"), e.message),
            None => (at.clone(), e.message),
        })?;
        scenarios.push(NamedScenario { name, fields });
    }
    Ok(scenarios)
}

/// `seeds = N` (seeds 0..N), `seeds = [a, b, ...]`, or `seeds = "0-4,9"` (the grammar of
/// the `--seeds` flags).
fn parse_seeds(value: &Value) -> Result<Vec<u64>, String> {
    let seeds = match value {
        Value::Integer(n) if *n >= 1 => Seeds::count(*n as u64)?,
        Value::String(spec) => spec.parse()?,
        Value::Array(items) => Seeds::list(
            items
                .iter()
                .map(|v| match v.as_integer() {
                    Some(i) if i >= 0 => Ok(i as u64),
                    _ => Err(format!("expected non-negative integer seeds, found {v}")),
                })
                .collect::<Result<_, _>>()?,
        )?,
        other => {
            return Err(format!(
                "expected a positive number of seeds, a list of seeds, or a string of \
                 {SEEDS_GRAMMAR}; found {other}"
            ));
        }
    };
    Ok(seeds.as_slice().to_vec())
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
        let base = config_from(&d.base).unwrap();
        assert_eq!((base.steps, base.lr), (100, 1.0));
        assert_eq!(
            d.axes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            vec!["activation", "layers"]
        );
        assert_eq!(parse("seeds = [4, 1]").unwrap().seeds, vec![4, 1]);
        assert_eq!(parse("seeds = \"2-3,7\"").unwrap().seeds, vec![2, 3, 7]);
    }

    #[test]
    fn errors_name_the_file_the_key_and_what_is_allowed() {
        let cases = [
            (
                "seeds = 2\nsteps = 5",
                "`steps`: unknown key; allowed: description, seeds, base, axes, scenarios, papers",
            ),
            (
                "seeds = 2\n[base]\nsteps = \"many\"",
                "`base.steps`: invalid type: string \"many\", expected usize",
            ),
            (
                "seeds = 2\n[base]\nlayers = -1",
                "`base.layers`: invalid value: integer `-1`, expected usize",
            ),
            (
                "seeds = 2\n[base]\nlearning_rate = 0.1",
                "`base.learning_rate`: unknown field `learning_rate`, expected one of `model`, `task`, `sequence_length`, `recurrent_init`, `forget_bias`, `activation`, `layers`",
            ),
            (
                "seeds = 2\n[base]\nseed = 3",
                "`base.seed`: a sweep's seeds are set by its top-level `seeds` key",
            ),
            (
                "seeds = 2\n[axes]\nactivation = []",
                "`axes.activation`: empty list",
            ),
            (
                "seeds = 2\n[axes]\nactivation = [\"relu\", \"swish\"]",
                "`axes.activation[1]`: invalid activation `swish`: expected one of sigmoid",
            ),
            (
                "seeds = 2\n[axes]\ndevice = [\"cpu\", \"tpu\"]",
                "`axes.device[1]`: invalid device `tpu`: expected one of cpu, cuda, auto",
            ),
            (
                "seeds = 2\n[axes]\nlayers = 6",
                "`axes.layers`: expected a list",
            ),
            ("[base]\nsteps = 5", "`seeds`: missing"),
            ("seeds = 0", "`seeds`: expected a positive number"),
            ("seeds = [1, 1]", "seed 1 appears twice"),
            ("seeds = \"3-x\"", "`3-x` in `3-x` is not a seed or a range"),
            ("seeds = 2\n[base", "not valid TOML"),
            (
                "seeds = 2\n[papers]\nhinton2006 = \"x\"",
                "`papers.hinton2006`: unknown paper; allowed: post, glorot2010, ioffe2015, he2015, \
                 schoenholz2017, yang2019, hanin2018, he2016, pascanu2013, jozefowicz2015, \
                 le2015, hochreiter1997, pennington2017",
            ),
            (
                "seeds = 2\n[papers]\npost = 3",
                "`papers.post`: expected the paper's setup as a string, found 3",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with("experiments/test.toml: "), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn reads_the_papers_with_their_setups() {
        let d = SweepDefinition::parse(
            "seeds = 2\n[papers]\nhe2015 = \"| a | b |\"\npost = \"x\"\n",
            Path::new("experiments/test.toml"),
        )
        .unwrap();
        assert_eq!(
            d.papers,
            vec![
                (Paper::He2015, "| a | b |".to_string()),
                (Paper::Post, "x".into())
            ]
        );
    }

    /// The example of the README: two axes and two scenarios.
    const SCENARIOS: &str = "seeds = 5\n[base]\nsteps = 2500\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\nlayers = [6, 10]\n[[scenarios]]\nname = \"adam\"\noptimizer = \"adam\"\nlr = 0.001\n[[scenarios]]\nname = \"sgd\"\noptimizer = \"sgd\"\nlr = 0.1\n";

    #[test]
    fn reads_scenarios_in_file_order_without_their_names() {
        let d = parse(SCENARIOS).unwrap();
        let names: Vec<&str> = d.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["adam", "sgd"]);
        let sgd = &d.scenarios[1].fields;
        assert_eq!(
            sgd.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
            vec!["optimizer=\"sgd\"", "lr=0.1"]
        );
        assert_eq!(d.base.get("steps"), Some(&Value::Integer(2500)));
        // A scenario may be only a name (the base configuration) and override `[base]`.
        let d = parse("seeds = 1\n[base]\nlr = 0.5\n[[scenarios]]\nname = \"ref\"\n[[scenarios]]\nname = \"slow\"\nlr = 0.01\n").unwrap();
        assert!(d.scenarios[0].fields.is_empty());
        assert_eq!(d.scenarios[1].fields.get("lr"), Some(&Value::Float(0.01)));
        assert!(parse("seeds = 1").unwrap().scenarios.is_empty());
    }

    #[test]
    fn scenario_errors_name_the_file_and_the_key() {
        let one = |body: &str| {
            format!(
                "seeds = 2\n[axes]\nlayers = [3, 6]\n[[scenarios]]\nname = \"a\"\n[[scenarios]]\n{body}"
            )
        };
        let cases = [
            (
                one("name = \"b\"\nlr = \"x\""),
                "`scenarios[1].lr`: invalid type: string \"x\", expected f64",
            ),
            (
                one("name = \"b\"\nlayers = 4"),
                "`scenarios[1].layers`: also an axis; set it in one place",
            ),
            (
                one("name = \"b\"\nseed = 3"),
                "`scenarios[1].seed`: a sweep's seeds are set by its top-level `seeds` key",
            ),
            (
                one("name = \"b\"\nlearning_rate = 0.1"),
                "`scenarios[1].learning_rate`: unknown field `learning_rate`, expected one of `model`, `task`, `sequence_length`, `recurrent_init`, `forget_bias`, `activation`, `layers`",
            ),
            (
                one("name = \"b\"\noptimizer = \"rmsprop\""),
                "`scenarios[1].optimizer`: invalid optimizer `rmsprop`",
            ),
            (
                one("lr = 0.1"),
                "`scenarios[1].name`: missing: every scenario needs a name, e.g. name = \"sgd\"",
            ),
            (
                one("name = \"../../escape\""),
                "`scenarios[1].name`: `../../escape` cannot name a folder: it contains a path separator",
            ),
            (
                one("name = \"-x\""),
                "`scenarios[1].name`: `-x` cannot name a folder: it starts with `-`",
            ),
            (
                one("name = \" \""),
                "`scenarios[1].name`: empty: a scenario's name labels its grid points and run folders",
            ),
            (
                one("name = 3"),
                "`scenarios[1].name`: expected a string, found 3",
            ),
            (
                one("name = \"a\"\nlr = 0.1"),
                "`scenarios[1].name`: `a` also names scenarios[0]; names must be unique",
            ),
            (
                "seeds = 2\nscenarios = []".into(),
                "`scenarios`: empty list: give at least one [[scenarios]] table, or leave the key out",
            ),
            (
                "seeds = 2\nscenarios = \"sgd\"".into(),
                "`scenarios`: expected an array of tables ([[scenarios]]), found \"sgd\"",
            ),
            (
                "seeds = 2\nscenarios = [{ name = \"a\" }, 4]".into(),
                "`scenarios[1]`: expected a table of fields, found 4",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text).unwrap_err();
            assert!(
                err.starts_with(&format!("experiments/test.toml: {want}")),
                "{text:?}: {err}"
            );
        }
    }
}
