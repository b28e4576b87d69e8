//! `--wait`: following a submission's jobs in Slurm's queue until the report job ends,
//! and how it ended.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::Submitted;
use super::error::{Client, ReportFailure, SlurmError};

/// How long following sleeps between two looks at the queue.
const POLL: Duration = Duration::from_secs(2);

/// Follows the jobs until the report job has ended, printing each change of their states;
/// an error unless the report job completed (every run has a result). `out` is the
/// submission's output folder, whose `reports/` the error points to.
pub fn follow(submitted: &Submitted, out: &Path) -> Result<(), SlurmError> {
    let mut last = String::new();
    loop {
        let states = queued_states(&[submitted.array, submitted.report])?;
        let line = progress_line(&states, submitted.array, submitted.report);
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if !states.contains_key(&submitted.report.to_string()) {
            break;
        }
        std::thread::sleep(POLL);
    }
    let (state, exit) = final_state(submitted.report)?;
    // A log that cannot be read shows as empty: the job's state already says how it ended.
    let log = std::fs::read_to_string(&submitted.report_log).unwrap_or_default();
    if state == "COMPLETED" && exit == "0:0" {
        eprint!("{log}");
        eprintln!(
            "report job {} completed: every run has a result",
            submitted.report
        );
        return Ok(());
    }
    let tail: Vec<&str> = log.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(SlurmError::ReportFailed(Box::new(ReportFailure {
        id: submitted.report,
        state,
        exit,
        log: submitted.report_log.clone(),
        tail: tail.join("\n"),
        reports: out.join("reports"),
    })))
}

/// The state of each job (array tasks by `<array>_<task>`) that Slurm still queues or runs.
fn queued_states(ids: &[u64]) -> Result<BTreeMap<String, String>, SlurmError> {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    let output = Command::new(Client::Squeue.program())
        .args(["--noheader", "--array", "--format=%i %T", "--jobs"])
        .arg(ids.join(","))
        .output()
        .map_err(|cause| SlurmError::Spawn {
            client: Client::Squeue,
            cause,
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        // Jobs that ended long enough ago are forgotten: squeue then calls their ids
        // invalid, which means that nothing is queued any more.
        if err.to_lowercase().contains("invalid job id") {
            return Ok(BTreeMap::new());
        }
        return Err(SlurmError::Squeue {
            stderr: err.trim().to_string(),
        });
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once(' ')?;
            Some((id.to_string(), state.trim().to_string()))
        })
        .collect())
}

/// "shards: 2 RUNNING, 1 PENDING; report: PENDING", from squeue's states.
fn progress_line(states: &BTreeMap<String, String>, array: u64, report: u64) -> String {
    let (array, task_prefix) = (array.to_string(), format!("{array}_"));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, state) in states {
        if id.starts_with(&task_prefix) || *id == array {
            *counts.entry(state.as_str()).or_default() += 1;
        }
    }
    let shards = if counts.is_empty() {
        "ended".to_string()
    } else {
        counts
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let report = states
        .get(&report.to_string())
        .map_or("ended", String::as_str);
    format!("shards: {shards}; report: {report}")
}

/// A finished job's state and exit code (`COMPLETED`, `0:0`): from `sacct` where the
/// cluster keeps accounting, otherwise from `scontrol`, which remembers a job for
/// `MinJobAge` seconds after it ends.
fn final_state(id: u64) -> Result<(String, String), SlurmError> {
    let id_text = id.to_string();
    if let Ok(out) = Command::new("sacct")
        .args(["--noheader", "--parsable2", "--allocations"])
        .args(["--format=State,ExitCode", "--jobs", &id_text])
        .output()
        && out.status.success()
        && let Some(line) = String::from_utf8_lossy(&out.stdout).lines().next()
        && let Some((state, exit)) = line.split_once('|')
    {
        // sacct writes `CANCELLED by 0`; the first word is the state.
        let state = state.split_whitespace().next().unwrap_or(state);
        return Ok((state.to_string(), exit.trim().to_string()));
    }
    let out = Command::new(Client::Scontrol.program())
        .args(["show", "job", "--oneliner", &id_text])
        .output()
        .map_err(|cause| SlurmError::Spawn {
            client: Client::Scontrol,
            cause,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .map(str::to_string)
    };
    match (field("JobState="), field("ExitCode=")) {
        (Some(state), Some(exit)) => Ok((state, exit)),
        _ => Err(SlurmError::UnknownEnd {
            id,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_shards_by_state() {
        let states: BTreeMap<String, String> = [
            ("12_0", "RUNNING"),
            ("12_1", "RUNNING"),
            ("12_[2-3]", "PENDING"),
            ("13", "PENDING"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(
            progress_line(&states, 12, 13),
            "shards: 1 PENDING, 2 RUNNING; report: PENDING"
        );
        assert_eq!(
            progress_line(&BTreeMap::new(), 12, 13),
            "shards: ended; report: ended"
        );
    }

    #[test]
    fn an_array_id_is_not_a_prefix_of_another() {
        let states: BTreeMap<String, String> = [("120_0", "RUNNING"), ("12_0", "PENDING")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(
            progress_line(&states, 12, 13),
            "shards: 1 PENDING; report: ended"
        );
    }
}
