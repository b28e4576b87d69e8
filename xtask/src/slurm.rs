//! `cargo xtask sweep --slurm`: a sweep as one Slurm job array of shards (`--shard K/N`)
//! and a report job that runs once the array has ended (`afterany`), both submitted with
//! `sbatch` from the login node. The workspace and the runs folder must be on a file
//! system every node sees; `vgrad` is built once, here, before anything is submitted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

/// The flags of `cargo xtask sweep --slurm`, named as `sbatch` names them.
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// Submit the sweep to Slurm (a job array of shards and a report job that waits for
    /// it) instead of training here.
    #[arg(long)]
    pub slurm: bool,
    /// Array tasks: the grid is split into this many disjoint shards, one per task.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = crate::at_least_one)]
    pub array: usize,
    /// The partition (queue) of every job; `sinfo -s` lists a cluster's partitions.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each job, as sbatch takes it (minutes, `H:MM:SS`, `D-HH`).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per array task; each shard trains that many runs at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = crate::at_least_one)]
    pub cpus_per_task: usize,
    /// Another sbatch flag for every job, e.g. `--sbatch-arg=--mem=4G` or
    /// `--sbatch-arg=--account=lab` (repeatable).
    #[arg(long = "sbatch-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Follow the jobs until the report job ends, and exit with its status.
    #[arg(long)]
    pub wait: bool,
}

impl SlurmArgs {
    /// The Slurm flags given without `--slurm`, which would otherwise be ignored.
    pub fn stray_flags(&self) -> Vec<&'static str> {
        let mut stray = Vec::new();
        if self.partition.is_some() {
            stray.push("--partition");
        }
        if self.time.is_some() {
            stray.push("--time");
        }
        if !self.sbatch_args.is_empty() {
            stray.push("--sbatch-arg");
        }
        if self.wait {
            stray.push("--wait");
        }
        stray
    }
}

/// What the jobs run: the same `cargo xtask` command line, as the built xtask binary.
pub struct Plan {
    /// The xtask binary (under the shared workspace's `target/`).
    pub xtask: PathBuf,
    /// The workspace, every job's working folder.
    pub workspace: PathBuf,
    /// Sweep names, for the job name.
    pub names: Vec<String>,
    /// The arguments that select the sweeps and their overrides, as given to `sweep`
    /// and `report` alike: sweep files, `--cuda`, `--steps`, `--seeds`, `--out`.
    pub selection: Vec<String>,
    /// Where the runs and reports go (absolute); the job logs go to its `slurm/`.
    pub out: PathBuf,
    /// Whether the shards train on a GPU.
    pub cuda: bool,
    /// Rerun finished runs too.
    pub force: bool,
}

/// Job ids of one submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The array of shards.
    pub array: String,
    /// The report job.
    pub report: String,
    /// The report job's log file.
    pub report_log: PathBuf,
}

/// Submits `plan` as a job array and a report job, prints how to follow them, and with
/// `--wait` follows them to the end.
pub fn submit(plan: &Plan, args: &SlurmArgs) -> Result<()> {
    let logs = plan.out.join("slurm");
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("creating {}, the jobs' log folder", logs.display()))?;
    let job_name = format!("vgrad-{}", plan.names.join("+"));
    let shard_command = shell_line(
        &plan.xtask,
        &["sweep"],
        &plan.selection,
        &[
            "--no-build".into(),
            "--jobs".into(),
            args.cpus_per_task.to_string(),
            "--shard".into(),
            // sbatch's --wrap runs this with /bin/sh, which fills in the task's index.
            format!("${{SLURM_ARRAY_TASK_ID}}/{}", args.array),
        ],
        plan.force,
    );
    let mut array = sbatch(args);
    array
        .arg(format!("--job-name={job_name}"))
        .arg(format!("--array=0-{}", args.array - 1))
        .arg(format!("--cpus-per-task={}", args.cpus_per_task))
        .arg(format!(
            "--output={}",
            logs.join(format!("{job_name}-%A_%a.out")).display()
        ))
        .arg(format!("--chdir={}", plan.workspace.display()));
    if plan.cuda {
        array.arg("--gres=gpu:1");
    }
    let array_id = run_sbatch(
        array.arg("--wrap").arg(&shard_command),
        "the shards' job array",
    )?;

    let report_command = shell_line(
        &plan.xtask,
        &["report"],
        &plan.selection,
        &["--require-complete".into()],
        false,
    );
    let report_log = logs.join(format!("{job_name}-report-{array_id}.out"));
    let mut report = sbatch(args);
    report
        .arg(format!("--job-name={job_name}-report"))
        .arg(format!("--dependency=afterany:{array_id}"))
        .arg("--cpus-per-task=1")
        .arg(format!("--output={}", report_log.display()))
        .arg(format!("--chdir={}", plan.workspace.display()));
    let report_id = match run_sbatch(report.arg("--wrap").arg(&report_command), "the report job") {
        Ok(id) => id,
        Err(err) => {
            return Err(err.context(format!(
                "the shards (job array {array_id}) were submitted and run on; once they end, \
                 write the report with `cargo xtask report {}`",
                plan.selection.join(" ")
            )));
        }
    };
    let submitted = Submitted {
        array: array_id,
        report: report_id,
        report_log,
    };
    print_submission(plan, args, &submitted, &logs, &job_name);
    if args.wait {
        follow(plan, &submitted)
    } else {
        Ok(())
    }
}

/// `sbatch --parsable` with the flags every job of the submission shares.
fn sbatch(args: &SlurmArgs) -> Command {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(partition) = &args.partition {
        cmd.arg(format!("--partition={partition}"));
    }
    if let Some(time) = &args.time {
        cmd.arg(format!("--time={time}"));
    }
    cmd.args(&args.sbatch_args);
    cmd
}

/// Runs an `sbatch --parsable` command; its job id, or an error that says what Slurm
/// refused and what to change.
fn run_sbatch(cmd: &mut Command, what: &str) -> Result<String> {
    let output = match cmd.output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "sbatch not found: --slurm submits jobs with Slurm's client commands (sbatch, \
             squeue, scontrol), which must be on PATH; on a cluster, run this on a login node"
        ),
        Err(err) => return Err(err).context("starting sbatch"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("{}", refusal(what, stderr.trim(), cmd));
    }
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch accepted {what} but printed no job id: {stdout:?} {stderr:?}");
    }
    Ok(id)
}

/// Slurm's refusal in a sentence that says which flag to change.
fn refusal(what: &str, stderr: &str, cmd: &Command) -> String {
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
    format!(
        "Slurm refused {what}: {stderr}\n  {advice}\n  sbatch flags: {}",
        flags.join(" ")
    )
}

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

fn print_submission(plan: &Plan, args: &SlurmArgs, s: &Submitted, logs: &Path, job_name: &str) {
    println!(
        "submitted {}: shards 0-{} as job array {}, the report as job {} (it starts once the \
         array has ended)",
        plan.names.join(", "),
        args.array - 1,
        s.array,
        s.report
    );
    println!("  follow:  squeue -j {},{}", s.array, s.report);
    println!(
        "  history: sacct -j {},{} (where the cluster keeps accounting)",
        s.array, s.report
    );
    println!(
        "  logs:    {}",
        logs.join(format!("{job_name}-{}_*.out", s.array)).display()
    );
    println!("           {}", s.report_log.display());
    for (i, name) in plan.names.iter().enumerate() {
        println!(
            "  {}{}",
            if i == 0 { "report:  " } else { "         " },
            plan.out
                .join("reports")
                .join(format!("{name}.md"))
                .display()
        );
    }
    println!(
        "  a shard that fails or is preempted: run this command again; finished runs are kept"
    );
}

/// How long `--wait` sleeps between two looks at the queue.
const POLL: Duration = Duration::from_secs(2);

/// Follows the jobs until the report job has ended; its status is the command's.
fn follow(plan: &Plan, s: &Submitted) -> Result<()> {
    let mut last = String::new();
    loop {
        let states = queued_states(&[&s.array, &s.report])?;
        let line = progress_line(&states, &s.array, &s.report);
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if !states.contains_key(&s.report) {
            break;
        }
        std::thread::sleep(POLL);
    }
    let (state, exit) = final_state(&s.report)?;
    let log = std::fs::read_to_string(&s.report_log).unwrap_or_default();
    if state == "COMPLETED" && exit == "0:0" {
        eprint!("{log}");
        eprintln!("report job {} completed: every run has a result", s.report);
        return Ok(());
    }
    let tail: Vec<&str> = log.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    bail!(
        "the report job {} ended {state} (exit code {exit}); its log {} ends with:\n{}\n\
         Rerun the same command to train what is missing: finished runs are kept. The \
         reports in {} list the missing runs.",
        s.report,
        s.report_log.display(),
        tail.join("\n"),
        plan.out.join("reports").display()
    )
}

/// The state of each job (array tasks by `<array>_<task>`) that Slurm still queues or runs.
fn queued_states(ids: &[&str]) -> Result<BTreeMap<String, String>> {
    let output = Command::new("squeue")
        .args(["--noheader", "--array", "--format=%i %T", "--jobs"])
        .arg(ids.join(","))
        .output()
        .context("running squeue")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        // Jobs that ended long enough ago are forgotten: squeue then calls their ids
        // invalid, which means that nothing is queued any more.
        if err.to_lowercase().contains("invalid job id") {
            return Ok(BTreeMap::new());
        }
        bail!("squeue failed: {}", err.trim());
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
fn progress_line(states: &BTreeMap<String, String>, array: &str, report: &str) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, state) in states {
        if id.starts_with(&format!("{array}_")) || id == array {
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
    let report = states.get(report).map_or("ended", String::as_str);
    format!("shards: {shards}; report: {report}")
}

/// A finished job's state and exit code (`COMPLETED`, `0:0`): from `sacct` where the
/// cluster keeps accounting, otherwise from `scontrol`, which remembers a job for
/// `MinJobAge` seconds after it ends.
fn final_state(id: &str) -> Result<(String, String)> {
    if let Ok(out) = Command::new("sacct")
        .args(["--noheader", "--parsable2", "--allocations"])
        .args(["--format=State,ExitCode", "--jobs", id])
        .output()
        && out.status.success()
        && let Some(line) = String::from_utf8_lossy(&out.stdout).lines().next()
        && let Some((state, exit)) = line.split_once('|')
    {
        // sacct writes `CANCELLED by 0`; the first word is the state.
        let state = state.split_whitespace().next().unwrap_or(state);
        return Ok((state.to_string(), exit.trim().to_string()));
    }
    let out = Command::new("scontrol")
        .args(["show", "job", "--oneliner", id])
        .output()
        .context("running scontrol")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .map(str::to_string)
    };
    match (field("JobState="), field("ExitCode=")) {
        (Some(state), Some(exit)) => Ok((state, exit)),
        _ => bail!(
            "job {id} has ended, but neither sacct nor scontrol knows how: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// One shell command line: `program words selection extra [--force]`, each word quoted
/// for /bin/sh unless it is plainly safe (and `$` kept for words the job must expand).
fn shell_line(
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
        if w.starts_with("${SLURM_ARRAY_TASK_ID}") {
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
            progress_line(&states, "12", "13"),
            "shards: 1 PENDING, 2 RUNNING; report: PENDING"
        );
        assert_eq!(
            progress_line(&BTreeMap::new(), "12", "13"),
            "shards: ended; report: ended"
        );
    }

    #[test]
    fn a_refused_partition_says_which_flag_to_change() {
        let mut cmd = Command::new("sbatch");
        cmd.args(["--parsable", "--partition=nosuch", "--wrap", "true"]);
        let text = refusal(
            "the shards' job array",
            "sbatch: error: Batch job submission failed: Invalid partition name specified",
            &cmd,
        );
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
            "the report job",
            "sbatch: error: Invalid --time specification",
            &cmd,
        );
        assert!(
            time.contains("--time takes minutes, MM:SS, H:MM:SS"),
            "{time}"
        );
        let gpu = refusal(
            "the shards' job array",
            "sbatch: error: Invalid generic resource (gres) specification",
            &cmd,
        );
        assert!(
            gpu.contains("pick a GPU partition with --partition, or leave out --cuda"),
            "{gpu}"
        );
    }
}
