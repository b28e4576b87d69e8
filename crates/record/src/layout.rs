//! A run folder: the names of its files, how they are written, and what the folder on
//! disk says about its run.

use std::path::{Path, PathBuf};

use crate::{RecordError, RunConfig, RunSummary, StepRecord, VALIDATION_EXAMPLES};

/// The resolved configuration.
pub const CONFIG_FILE: &str = "config.json";
/// One JSON object per logged step.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Written last: its presence means the run finished.
pub const SUMMARY_FILE: &str = "summary.json";
/// What the process printed last, in the folder of a run whose process failed.
pub const ERROR_FILE: &str = "error.txt";
/// Start of the names of TensorBoard event files.
pub const EVENTS_PREFIX: &str = "events.out.tfevents.";
/// Locked (an advisory `flock`) by the process that trains the run, so that two sweeps on
/// one runs folder never write a run together; the kernel releases it when that process
/// ends, however it ends, so a killed sweep leaves no stale lock.
pub const LOCK_FILE: &str = ".vgrad.lock";
/// The scalars of a finished run's event file that TensorBoard's HParams dashboard shows
/// as its metrics (it reads each one's last value): tag, column title, description.
pub const HPARAMS_METRICS: [(&str, &str, &str); 3] = [
    (
        "decay_ratio",
        "decay ratio",
        "the post's measure: the last layer's mean |dC/dW| over the first's, over the \
         logged steps",
    ),
    (
        "test_acc",
        "test accuracy",
        "accuracy on the 10,000 test images after the last step",
    ),
    (
        "outcome",
        "outcome",
        "1 trained, 0 collapsed (near a guess's accuracy), -1 diverged",
    ),
];
/// `vgrad train`'s exit status when another process holds a run folder's lock
/// (`EX_TEMPFAIL` of sysexits.h: try again later). A sweep then waits for that process.
pub const LOCKED_EXIT: u8 = 75;

/// Checks that `name` is one folder name that stays inside the folder it is joined to:
/// not empty, no `/` or `\`, no `..`, no NUL or other control character, and no leading
/// `-` (which a command line would read as a flag). Run names and scenario names, which
/// may come from a shared sweep file, become folder names.
pub fn check_folder_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.contains(['/', '\\']) {
        Some("it contains a path separator (`/` or `\\`)")
    } else if name.contains("..") {
        Some("it contains `..`")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character (NUL, newline, ...)")
    } else if name.starts_with('-') {
        Some("it starts with `-`")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "`{}` cannot name a folder: {problem}; use letters, digits, `-`, `_` and `.`",
            name.escape_debug()
        )),
        None => Ok(()),
    }
}

/// What `config.json` holds: the run's configuration (its
/// [`RunConfig::recorded_fields`]) and the data split it trained on.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ConfigFile {
    /// Every setting of the run.
    #[serde(flatten)]
    pub config: RunConfig,
    /// Training images held out for validation.
    pub validation_examples: usize,
}

impl ConfigFile {
    /// The file of a run with configuration `config`.
    pub fn of(config: &RunConfig) -> Self {
        Self {
            config: config.clone(),
            validation_examples: VALIDATION_EXAMPLES,
        }
    }
}

impl serde::Serialize for ConfigFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.config.recorded_fields();
        let mut map = s.serialize_map(Some(fields.len() + 1))?;
        for (name, value) in &fields {
            map.serialize_entry(name, value)?;
        }
        map.serialize_entry("validation_examples", &self.validation_examples)?;
        map.end()
    }
}

/// A run folder's name from a `--run-name` template: `{seed}` and `{hash}` are replaced.
pub fn run_name(template: &str, cfg: &RunConfig) -> String {
    template
        .replace("{seed}", &cfg.seed.to_string())
        .replace("{hash}", &cfg.hash())
}

/// The line that says how to browse the runs in `logdir` with TensorBoard:
/// `TensorBoard: tensorboard --logdir <logdir>`, with the workspace's `.venv/bin/tensorboard`
/// where the current folder has one (where `cargo xtask test` installs it), the folder
/// relative to the current one where it is inside it, and quoted for a shell where it
/// needs to be.
pub fn tensorboard_line(logdir: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let venv = Path::new(".venv/bin/tensorboard");
    let program = if venv.is_file() {
        venv.display().to_string()
    } else {
        "tensorboard".to_string()
    };
    let shown = cwd
        .as_deref()
        .and_then(|cwd| logdir.strip_prefix(cwd).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or(logdir);
    format!(
        "TensorBoard: {program} --logdir {}",
        shell_word(&shown.display().to_string())
    )
}

/// `word` as one word of a POSIX shell: as it is when it holds only characters no shell
/// reads specially, otherwise in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=+@%,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |cause| RecordError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename, so a
/// reader (or a run killed mid-write) never sees half a file.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), RecordError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut text = serde_json::to_string_pretty(value).map_err(|cause| RecordError::Json {
        path: path.to_path_buf(),
        line: None,
        cause,
    })?;
    text.push('\n');
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Reads a run's `metrics.jsonl`.
pub fn read_metrics(dir: &Path) -> Result<Vec<StepRecord>, RecordError> {
    let path = dir.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|cause| RecordError::Json {
                path: path.clone(),
                line: Some(i + 1),
                cause,
            })
        })
        .collect()
}

/// Where a run stands, as its folder says.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Finished: its `summary.json`.
    Done(Box<RunSummary>),
    /// Its process failed: what it printed last (or why its summary is unreadable).
    Failed(String),
    /// Started but not finished (interrupted, or running now).
    Incomplete,
    /// Never started.
    Missing,
}

/// Reads the state of the run folder `dir`.
pub fn run_state(dir: &Path) -> RunState {
    let summary: PathBuf = dir.join(SUMMARY_FILE);
    if let Ok(text) = std::fs::read_to_string(&summary) {
        return match serde_json::from_str::<RunSummary>(&text) {
            Ok(s) => RunState::Done(Box::new(s)),
            Err(e) => RunState::Failed(format!("{}: unreadable: {e}", summary.display())),
        };
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(ERROR_FILE)) {
        return RunState::Failed(text);
    }
    if dir.is_dir() {
        RunState::Incomplete
    } else {
        RunState::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_reads_back_and_names_fill_in() {
        let cfg = RunConfig {
            seed: 7,
            ..RunConfig::default()
        };
        let text = serde_json::to_string_pretty(&ConfigFile::of(&cfg)).unwrap();
        let back: ConfigFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ConfigFile::of(&cfg));
        let name = run_name("relu_seed-{seed}_{hash}", &cfg);
        assert_eq!(name, format!("relu_seed-7_{}", cfg.hash()));
    }

    #[test]
    fn the_tensorboard_line_names_the_folder_as_a_shell_reads_it() {
        let line = tensorboard_line(Path::new("/no/such/runs/seed"));
        assert!(line.starts_with("TensorBoard: "), "{line}");
        assert!(line.ends_with(" --logdir /no/such/runs/seed"), "{line}");
        let cwd = std::env::current_dir().unwrap();
        assert!(tensorboard_line(&cwd.join("runs/seed")).ends_with(" --logdir runs/seed"));
        assert_eq!(shell_word("runs/my sweep"), "'runs/my sweep'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_state_of_a_folder() {
        let dir = std::env::temp_dir().join(format!("vgrad-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(run_state(&dir), RunState::Missing);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(run_state(&dir), RunState::Incomplete);
        std::fs::write(dir.join(ERROR_FILE), "boom").unwrap();
        assert_eq!(run_state(&dir), RunState::Failed("boom".into()));
        write_json_atomic(&dir.join(SUMMARY_FILE), &serde_json::json!({"status": 1})).unwrap();
        assert!(matches!(run_state(&dir), RunState::Failed(m) if m.contains("unreadable")));
        std::fs::write(dir.join(METRICS_FILE), "{}\n").unwrap();
        let err = read_metrics(&dir).unwrap_err().to_string();
        assert!(
            err.contains("metrics.jsonl: line 1: missing field"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn folder_names_stay_inside_their_folder() {
        for good in ["seed-3", "relu_seed-0_ab12cd34", "lr.0.1", "x-"] {
            assert_eq!(check_folder_name(good), Ok(()), "{good}");
        }
        let cases = [
            ("", "it is empty"),
            ("../../escape-3", "it contains a path separator"),
            ("..", "it contains `..`"),
            ("a..b", "it contains `..`"),
            ("a\\b", "it contains a path separator"),
            ("a\0b", "it contains a control character"),
            ("-rf", "it starts with `-`"),
        ];
        for (bad, why) in cases {
            let err = check_folder_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(
                err.ends_with("use letters, digits, `-`, `_` and `.`"),
                "{err}"
            );
        }
        assert_eq!(
            check_folder_name("../x").unwrap_err(),
            "`../x` cannot name a folder: it contains a path separator (`/` or `\\`); use \
             letters, digits, `-`, `_` and `.`"
        );
    }
}
