//! Submitting one job with `sbatch --parsable`, and Slurm's refusals in sentences that
//! say which flag to change.

use std::process::Command;

use super::SlurmOptions;
use super::error::{Client, JobKind, SlurmError};

/// `sbatch --parsable` with the flags every job of the submission shares.
pub fn sbatch(options: &SlurmOptions) -> Command {
    let mut cmd = Command::new(Client::Sbatch.program());
    cmd.arg("--parsable");
    if let Some(partition) = &options.partition {
        cmd.arg(format!("--partition={partition}"));
    }
    if let Some(time) = &options.time {
        cmd.arg(format!("--time={time}"));
    }
    cmd.args(&options.sbatch_args);
    cmd
}

/// Runs an `sbatch --parsable` command that submits `job`; its job id, or an error that
/// says what Slurm refused and what to change.
pub fn run_sbatch(cmd: &mut Command, job: JobKind) -> Result<u64, SlurmError> {
    let output = match cmd.output() {
        Ok(output) => output,
        Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => {
            return Err(SlurmError::SbatchMissing);
        }
        Err(cause) => {
            return Err(SlurmError::Spawn {
                client: Client::Sbatch,
                cause,
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(refusal(job, stderr.trim(), cmd));
    }
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let id = stdout.trim().split(';').next().unwrap_or("");
    let digits = !id.is_empty() && id.chars().all(|c| c.is_ascii_digit());
    match id.parse() {
        Ok(id) if digits => Ok(id),
        _ => Err(SlurmError::NoJobId {
            job,
            stdout: stdout.into_owned(),
            stderr: stderr.into_owned(),
        }),
    }
}

/// Slurm's refusal of `job`, with the advice that says which flag to change.
fn refusal(job: JobKind, stderr: &str, cmd: &Command) -> SlurmError {
    let flags: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--wrap")
        .collect();
    let lower = stderr.to_lowercase();
    let advice = if lower.contains("invalid partition") {
        let partition = flag_value(&flags, "--partition=").unwrap_or_default();
        format!(
            "`{partition}` is not a partition of this cluster; give --partition one of: {} \
             (`sinfo -s` lists them), or leave it out for the default",
            partitions().unwrap_or_else(|| "see `sinfo -s`".into())
        )
    } else if lower.contains("time limit") || lower.contains("--time") {
        "--time takes minutes, MM:SS, H:MM:SS, D-HH or D-HH:MM:SS, within the partition's \
         limit (`sinfo -s` shows it)"
            .to_string()
    } else if lower.contains("generic resource") || lower.contains("gres") {
        "--cuda asks every shard for a GPU (--gres=gpu:1), and this partition has none; pick \
         a GPU partition with --partition, or leave out --cuda"
            .to_string()
    } else {
        "check --partition, --time, --cpus-per-task and --sbatch-arg against the cluster's \
         limits (`sinfo -s`, `scontrol show partition`)"
            .to_string()
    };
    SlurmError::Refused {
        job,
        stderr: stderr.to_string(),
        advice,
        flags: flags.join(" "),
    }
}

/// The value of the first `--flag=value` among `flags` whose `--flag=` is `prefix`.
fn flag_value(flags: &[String], prefix: &str) -> Option<String> {
    flags
        .iter()
        .find_map(|f| f.strip_prefix(prefix).map(str::to_string))
}

/// The cluster's partitions, as `sinfo` lists them.
fn partitions() -> Option<String> {
    let out = Command::new("sinfo")
        .args(["--noheader", "--format=%P"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.split_whitespace().collect();
    (out.status.success() && !names.is_empty()).then(|| names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_partition_says_which_flag_to_change() {
        let mut cmd = Command::new("sbatch");
        cmd.args(["--parsable", "--partition=nosuch", "--wrap", "true"]);
        let text = refusal(
            JobKind::Shards,
            "sbatch: error: Batch job submission failed: Invalid partition name specified",
            &cmd,
        )
        .to_string();
        assert!(
            text.starts_with(
                "Slurm refused the shards' job array: sbatch: error: Batch job submission \
                 failed: Invalid partition name specified\n  `nosuch` is not a partition of \
                 this cluster; give --partition one of:"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("sbatch flags: --parsable --partition=nosuch"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_time_or_gpu_says_what_to_change() {
        let cmd = Command::new("sbatch");
        let time = refusal(
            JobKind::Report,
            "sbatch: error: Invalid --time specification",
            &cmd,
        )
        .to_string();
        assert!(
            time.contains("--time takes minutes, MM:SS, H:MM:SS"),
            "{time}"
        );
        let gpu = refusal(
            JobKind::Shards,
            "sbatch: error: Invalid generic resource (gres) specification",
            &cmd,
        )
        .to_string();
        assert!(
            gpu.contains("pick a GPU partition with --partition, or leave out --cuda"),
            "{gpu}"
        );
    }

    #[test]
    fn sbatch_shares_the_submission_flags() {
        let options = SlurmOptions {
            partition: Some("gpu".into()),
            time: Some("1:00:00".into()),
            sbatch_args: vec!["--mem=4G".into()],
            ..SlurmOptions::default()
        };
        let args: Vec<String> = sbatch(&options)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--parsable",
                "--partition=gpu",
                "--time=1:00:00",
                "--mem=4G"
            ]
        );
    }
}
