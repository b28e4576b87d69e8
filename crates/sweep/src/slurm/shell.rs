//! The command lines the jobs run, written for `/bin/sh` (sbatch's `--wrap`).

use std::path::Path;

/// What a shard's command line writes for its array task's index, which the job's shell
/// fills in.
pub const TASK_ID: &str = "${SLURM_ARRAY_TASK_ID}";

/// One shell command line: `program words selection extra [--force]`, each word quoted
/// for /bin/sh unless it is plainly safe (and `$` kept for words the job must expand).
pub fn shell_line(
    program: &Path,
    words: &[&str],
    selection: &[String],
    extra: &[String],
    force: bool,
) -> String {
    let mut line = vec!["exec".to_string(), quote(&program.to_string_lossy())];
    line.extend(words.iter().map(|w| quote(w)));
    line.extend(selection.iter().map(|w| quote(w)));
    line.extend(extra.iter().map(|w| {
        if w.starts_with(TASK_ID) {
            w.clone()
        } else {
            quote(w)
        }
    }));
    if force {
        line.push("--force".into());
    }
    line.join(" ")
}

/// `word` as /bin/sh reads it back unchanged.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(quote("experiments/seed.toml"), "experiments/seed.toml");
        assert_eq!(quote("/a b/c"), "'/a b/c'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_shard_command_expands_only_the_task_index() {
        let line = shell_line(
            Path::new("/w s/target/release/xtask"),
            &["sweep"],
            &["seed".into(), "--out".into(), "/runs here".into()],
            &["--shard".into(), "${SLURM_ARRAY_TASK_ID}/4".into()],
            true,
        );
        assert_eq!(
            line,
            "exec '/w s/target/release/xtask' sweep seed --out '/runs here' --shard \
             ${SLURM_ARRAY_TASK_ID}/4 --force"
        );
    }
}
