//! What can go wrong submitting a sweep to Slurm or following its jobs, each in a sentence
//! that says which flag or command to change.

use std::fmt;
use std::path::PathBuf;

/// One of Slurm's client commands, which the submission runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `sbatch`, which submits the jobs.
    Sbatch,
    /// `squeue`, which lists the jobs still queued or running.
    Squeue,
    /// `scontrol`, which remembers how a job ended where there is no accounting.
    Scontrol,
}

impl Client {
    /// The program's name on `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Self::Sbatch => "sbatch",
            Self::Squeue => "squeue",
            Self::Scontrol => "scontrol",
        }
    }

    /// What the submission does with it, as an error message says it.
    fn action(self) -> &'static str {
        match self {
            Self::Sbatch => "starting sbatch",
            Self::Squeue => "running squeue",
            Self::Scontrol => "running scontrol",
        }
    }
}

/// Which of a submission's jobs an `sbatch` call submits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// The job array of shards, which train.
    Shards,
    /// The report job, which waits for the array.
    Report,
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shards => "the shards' job array",
            Self::Report => "the report job",
        })
    }
}

/// A submission to Slurm that failed, or a followed job that did not end well.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// The folder of the jobs' logs could not be created.
    #[error("creating {}, the jobs' log folder", path.display())]
    LogFolder {
        /// The folder (`<out>/slurm`).
        path: PathBuf,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
    /// `sbatch` is not on `PATH`: not a machine that can submit.
    #[error(
        "sbatch not found: --slurm submits jobs with Slurm's client commands (sbatch, \
         squeue, scontrol), which must be on PATH; on a cluster, run this on a login node"
    )]
    SbatchMissing,
    /// A client command could not be started.
    #[error("{}", client.action())]
    Spawn {
        /// The command.
        client: Client,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
    /// `sbatch` refused a job.
    #[error("Slurm refused {job}: {stderr}\n  {advice}\n  sbatch flags: {flags}")]
    Refused {
        /// The job refused.
        job: JobKind,
        /// What sbatch said.
        stderr: String,
        /// Which flag to change, and to what.
        advice: String,
        /// The flags given to sbatch (all but the command it wraps).
        flags: String,
    },
    /// `sbatch` succeeded but printed no job id.
    #[error("sbatch accepted {job} but printed no job id: {stdout:?} {stderr:?}")]
    NoJobId {
        /// The job submitted.
        job: JobKind,
        /// What sbatch printed.
        stdout: String,
        /// What sbatch printed on stderr.
        stderr: String,
    },
    /// The shards were submitted, but the report job was not.
    #[error(
        "the shards (job array {array}) were submitted and run on; once they end, write \
         the report with `cargo xtask report {selection}`"
    )]
    ReportNotSubmitted {
        /// The array's job id.
        array: u64,
        /// The selection of sweeps, as `cargo xtask report` takes it.
        selection: String,
        /// Why the report job was not submitted.
        #[source]
        cause: Box<SlurmError>,
    },
    /// `squeue` failed for another reason than jobs it has forgotten.
    #[error("squeue failed: {stderr}")]
    Squeue {
        /// What squeue said.
        stderr: String,
    },
    /// Neither `sacct` nor `scontrol` tells how a job ended.
    #[error("job {id} has ended, but neither sacct nor scontrol knows how: {stderr}")]
    UnknownEnd {
        /// The job.
        id: u64,
        /// What scontrol said.
        stderr: String,
    },
    /// The followed report job ended otherwise than completed with status 0: runs are
    /// missing, unfinished or failed.
    #[error(transparent)]
    ReportFailed(Box<ReportFailure>),
}

/// How a followed report job ended, when it did not complete: what `--wait` fails with.
#[derive(Debug, thiserror::Error)]
#[error(
    "the report job {id} ended {state} (exit code {exit}); its log {} ends with:\n{tail}\n\
     Rerun the same command to train what is missing: finished runs are kept. The reports \
     in {} list the missing runs.",
    log.display(),
    reports.display()
)]
pub struct ReportFailure {
    /// The report job.
    pub id: u64,
    /// Its final state, as Slurm names it (`FAILED`, `CANCELLED`, `TIMEOUT`).
    pub state: String,
    /// Its exit code, as Slurm writes it (`1:0`).
    pub exit: String,
    /// Its log file.
    pub log: PathBuf,
    /// The last lines of its log.
    pub tail: String,
    /// The folder of the reports it wrote.
    pub reports: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_report_job_shows_its_log_and_says_to_rerun() {
        let err = SlurmError::ReportFailed(Box::new(ReportFailure {
            id: 13,
            state: "FAILED".into(),
            exit: "1:0".into(),
            log: PathBuf::from("/w/slurm/report.out"),
            tail: "error: runs missing".into(),
            reports: PathBuf::from("/w/reports"),
        }));
        assert_eq!(
            err.to_string(),
            "the report job 13 ended FAILED (exit code 1:0); its log /w/slurm/report.out ends \
             with:\nerror: runs missing\nRerun the same command to train what is missing: \
             finished runs are kept. The reports in /w/reports list the missing runs."
        );
    }

    #[test]
    fn a_client_that_cannot_start_is_named() {
        let err = SlurmError::Spawn {
            client: Client::Squeue,
            cause: std::io::Error::other("no"),
        };
        assert_eq!(err.to_string(), "running squeue");
    }
}
