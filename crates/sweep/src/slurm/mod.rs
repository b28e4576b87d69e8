//! Running a sweep on a Slurm cluster: one job array of shards (each task trains one
//! `--shard K/N` of every grid, as [`crate::runner`] does on this machine) and a report
//! job that runs once the array has ended (`afterany`), both submitted with `sbatch` from
//! the login node. The workspace and the runs folder must be on a file system every node
//! sees, and the program the jobs run must be built before anything is submitted.

mod error;
mod follow;
mod sbatch;
mod shell;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

pub use error::{Client, JobKind, ReportFailure, SlurmError};

use crate::Sweep;
use sbatch::{run_sbatch, sbatch};
use shell::{TASK_ID, shell_line};

/// How the jobs are submitted: the flags of `cargo xtask sweep --slurm`, named as
/// `sbatch` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmOptions {
    /// Array tasks: the grid is split into this many disjoint shards, one per task.
    pub array: NonZeroUsize,
    /// The partition (queue) of every job; the cluster's default if none.
    pub partition: Option<String>,
    /// Time limit of each job, as sbatch takes it (minutes, `H:MM:SS`, `D-HH`).
    pub time: Option<String>,
    /// CPUs per array task; each shard trains that many runs at once.
    pub cpus_per_task: NonZeroUsize,
    /// More sbatch flags for every job, e.g. `--mem=4G`.
    pub sbatch_args: Vec<String>,
    /// Follow the jobs until the report job ends; an error unless it completed.
    pub wait: bool,
}

impl SlurmOptions {
    /// Array tasks unless told otherwise.
    pub const DEFAULT_ARRAY: NonZeroUsize = NonZeroUsize::new(4).unwrap();
    /// CPUs per array task unless told otherwise.
    pub const DEFAULT_CPUS_PER_TASK: NonZeroUsize = NonZeroUsize::MIN;
}

impl Default for SlurmOptions {
    fn default() -> Self {
        Self {
            array: Self::DEFAULT_ARRAY,
            partition: None,
            time: None,
            cpus_per_task: Self::DEFAULT_CPUS_PER_TASK,
            sbatch_args: Vec::new(),
            wait: false,
        }
    }
}

/// What the jobs run: the submitting command line again, on the cluster's nodes. The
/// program takes `cargo xtask`'s command line: a shard runs `PROGRAM sweep SELECTION
/// --no-build --jobs N --shard K/N [--force]`, the report job `PROGRAM report SELECTION
/// --require-complete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The program (the built xtask binary, under the shared workspace's `target/`).
    pub program: PathBuf,
    /// The workspace, every job's working folder.
    pub workspace: PathBuf,
    /// The arguments that select the sweeps and their overrides, as given to `sweep` and
    /// `report` alike: sweep files, `--cuda`, `--steps`, `--seeds`, `--out`, with
    /// absolute paths, since the jobs start in the workspace.
    pub selection: Vec<String>,
    /// Where the runs and reports go (absolute); the job logs go to its `slurm/`.
    pub out: PathBuf,
    /// Whether the shards train on a GPU (each asks for one).
    pub cuda: bool,
    /// Rerun finished runs too.
    pub force: bool,
}

/// The jobs of one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The job id of the array of shards.
    pub array: u64,
    /// The job id of the report job.
    pub report: u64,
    /// The report job's log file.
    pub report_log: PathBuf,
}

/// Submits `sweeps` as `plan` says, as a job array and a report job; prints the jobs and
/// how to follow them, and with `options.wait` follows them to the end.
pub fn run(sweeps: &[Sweep], plan: &Plan, options: &SlurmOptions) -> Result<Submitted, SlurmError> {
    let names: Vec<&str> = sweeps.iter().map(Sweep::name).collect();
    let logs = plan.out.join("slurm");
    std::fs::create_dir_all(&logs).map_err(|cause| SlurmError::LogFolder {
        path: logs.clone(),
        cause,
    })?;
    let job_name = format!("vgrad-{}", names.join("+"));
    let shard_command = shell_line(
        &plan.program,
        &["sweep"],
        &plan.selection,
        &[
            "--no-build".into(),
            "--jobs".into(),
            options.cpus_per_task.to_string(),
            "--shard".into(),
            // sbatch's --wrap runs this with /bin/sh, which fills in the task's index.
            format!("{TASK_ID}/{}", options.array),
        ],
        plan.force,
    );
    let last_task = options.array.get() - 1;
    let mut array = sbatch(options);
    array
        .arg(format!("--job-name={job_name}"))
        .arg(format!("--array=0-{last_task}"))
        .arg(format!("--cpus-per-task={}", options.cpus_per_task))
        .arg(format!(
            "--output={}",
            logs.join(format!("{job_name}-%A_%a.out")).display()
        ))
        .arg(format!("--chdir={}", plan.workspace.display()));
    if plan.cuda {
        array.arg("--gres=gpu:1");
    }
    let array_id = run_sbatch(array.arg("--wrap").arg(&shard_command), JobKind::Shards)?;

    let report_command = shell_line(
        &plan.program,
        &["report"],
        &plan.selection,
        &["--require-complete".into()],
        false,
    );
    let report_log = logs.join(format!("{job_name}-report-{array_id}.out"));
    let mut report = sbatch(options);
    report
        .arg(format!("--job-name={job_name}-report"))
        .arg(format!("--dependency=afterany:{array_id}"))
        .arg("--cpus-per-task=1")
        .arg(format!("--output={}", report_log.display()))
        .arg(format!("--chdir={}", plan.workspace.display()));
    let report_id = run_sbatch(report.arg("--wrap").arg(&report_command), JobKind::Report)
        .map_err(|cause| SlurmError::ReportNotSubmitted {
            array: array_id,
            selection: plan.selection.join(" "),
            cause: Box::new(cause),
        })?;
    let submitted = Submitted {
        array: array_id,
        report: report_id,
        report_log,
    };
    print_submission(&names, plan, last_task, &submitted, &logs, &job_name);
    if options.wait {
        follow::follow(&submitted, &plan.out)?;
    }
    Ok(submitted)
}

/// Prints what was submitted, where its logs and reports go, and how to follow it.
fn print_submission(
    names: &[&str],
    plan: &Plan,
    last_task: usize,
    s: &Submitted,
    logs: &Path,
    job_name: &str,
) {
    println!(
        "submitted {}: shards 0-{last_task} as job array {}, the report as job {} (it \
         starts once the array has ended)",
        names.join(", "),
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
    for (i, name) in names.iter().enumerate() {
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
