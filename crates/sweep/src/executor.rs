//! Where a sweep's runs train, behind one interface: here, as `vgrad train` processes
//! ([`crate::runner`]), or on a Slurm cluster, as a job array of shards and a report job
//! ([`crate::slurm`]).

use crate::slurm::{self, SlurmError, SlurmOptions, Submitted};
use crate::{Sweep, SweepError, SweepOptions, SweepOutcome};

/// Where and how to run sweeps.
#[derive(Debug, Clone)]
pub enum Executor {
    /// Here: several `vgrad train` processes at once, with a progress bar.
    Local(SweepOptions),
    /// On Slurm: the jobs run `plan`'s program on the cluster's nodes.
    Slurm {
        /// What the jobs run.
        plan: slurm::Plan,
        /// How they are submitted.
        options: SlurmOptions,
    },
}

/// What running sweeps did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every missing run trained here (or failed, and was counted).
    Trained(SweepOutcome),
    /// The jobs Slurm runs; if they were followed (`wait`), they have ended and the report
    /// job completed, so every run has a result.
    Submitted(Submitted),
}

/// Sweeps that could not be run (a run that fails is no error: it is counted in the
/// outcome and recorded in its folder).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Training here failed: a run folder could not be written or `vgrad` not started.
    #[error("running the sweep")]
    Local(#[source] SweepError),
    /// Submitting to Slurm failed, or the followed jobs did not end well.
    #[error(transparent)]
    Slurm(#[from] SlurmError),
}

impl Executor {
    /// Runs every missing run of `sweeps` here, or submits them to Slurm.
    pub fn run(&self, sweeps: &[Sweep]) -> Result<Outcome, RunError> {
        match self {
            Self::Local(options) => crate::runner::run(sweeps, options)
                .map(Outcome::Trained)
                .map_err(RunError::Local),
            Self::Slurm { plan, options } => {
                Ok(Outcome::Submitted(slurm::run(sweeps, plan, options)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::{Overrides, SweepDefinition};

    #[test]
    fn a_vgrad_that_cannot_start_fails_the_sweep_and_names_the_binary() {
        let text = "seeds = 1\n[base]\nsteps = 1\n";
        let definition = SweepDefinition::parse(text, Path::new("tiny.toml")).unwrap();
        let sweep = Sweep::new(definition, &Overrides::default()).unwrap();
        let out = std::env::temp_dir().join(format!("vgrad-executor-test-{}", std::process::id()));
        let executor = Executor::Local(SweepOptions {
            jobs: 1,
            force: false,
            out: out.clone(),
            shard: None,
            vgrad: PathBuf::from("/nonexistent/vgrad"),
            quiet: true,
        });
        let err = executor.run(std::slice::from_ref(&sweep)).unwrap_err();
        assert!(
            matches!(err, RunError::Local(SweepError::Spawn { .. })),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "running the sweep");
        let cause = err.source().map(ToString::to_string).unwrap_or_default();
        assert!(
            cause.starts_with("cannot start /nonexistent/vgrad: "),
            "{cause}"
        );
        assert!(!out.exists(), "nothing is written when vgrad cannot start");
    }

    #[test]
    fn a_report_job_not_submitted_says_how_to_write_the_report() {
        let err = RunError::from(SlurmError::ReportNotSubmitted {
            array: 12,
            selection: "/w/experiments/seed.toml --out /w".into(),
            cause: Box::new(SlurmError::SbatchMissing),
        });
        assert_eq!(
            err.to_string(),
            "the shards (job array 12) were submitted and run on; once they end, write the \
             report with `cargo xtask report /w/experiments/seed.toml --out /w`"
        );
        let cause = err.source().map(ToString::to_string).unwrap_or_default();
        assert!(cause.starts_with("sbatch not found: "), "{cause}");
    }
}
