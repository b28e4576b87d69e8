//! Running sweeps here (and, on a Slurm cluster, each array task's shard on its node):
//! every (grid point, seed) as a `vgrad train` run, the seeds of a grid point trained
//! together as one ensemble, several processes at once, resuming from what the run
//! folders on disk say.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use vgrad_kernels::platform::die_with_parent;
use vgrad_record::layout::{ERROR_FILE, LOCK_FILE, LOCKED_EXIT};
use vgrad_record::{RunState, run_state};

use crate::{GridPoint, Shard, Sweep, SweepError};

/// How to run sweeps.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Processes at once.
    pub jobs: usize,
    /// Rerun runs that already finished.
    pub force: bool,
    /// Where `runs/` goes.
    pub out: PathBuf,
    /// Only this slice of each grid.
    pub shard: Option<Shard>,
    /// The `vgrad` binary to run.
    pub vgrad: PathBuf,
    /// No progress bar.
    pub quiet: bool,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepOutcome {
    /// Runs trained now.
    pub ran: usize,
    /// Runs found finished on disk and skipped.
    pub resumed: usize,
    /// Runs whose process failed.
    pub failed: usize,
    /// Seconds the training took.
    pub seconds: f64,
}

/// One `vgrad train` process: some seeds of one grid point.
#[derive(Debug, Clone)]
struct Job {
    point: GridPoint,
    seeds: Vec<u64>,
    runs_dir: PathBuf,
}

/// The jobs that bring `sweep`'s runs in `runs_dir` up to date: the missing seeds of each
/// grid point, split so that there are at least `jobs` processes where the grid is small.
fn plan(sweep: &Sweep, runs_dir: &Path, opts: &SweepOptions) -> (Vec<Job>, usize) {
    let mut resumed = 0;
    let mut todo: Vec<(GridPoint, Vec<u64>)> = Vec::new();
    for point in sweep.points_in(opts.shard) {
        let seeds: Vec<u64> = sweep
            .seeds
            .iter()
            .copied()
            .filter(|&seed| {
                let done = is_done(runs_dir, point, seed);
                resumed += usize::from(done && !opts.force);
                opts.force || !done
            })
            .collect();
        if !seeds.is_empty() {
            todo.push((point.clone(), seeds));
        }
    }
    let chunks_per_point = opts.jobs.div_ceil(todo.len().max(1)).max(1);
    let jobs = todo
        .into_iter()
        .flat_map(|(point, seeds)| {
            let size = seeds.len().div_ceil(chunks_per_point).max(1);
            seeds
                .chunks(size)
                .map(|chunk| Job {
                    point: point.clone(),
                    seeds: chunk.to_vec(),
                    runs_dir: runs_dir.to_path_buf(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    (jobs, resumed)
}

/// What became of a job's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct JobCounts {
    failed: usize,
    /// Finished by another process (another sweep on the same runs folder) meanwhile.
    resumed: usize,
}

/// Runs one job. Runs that another process trains now (it holds their lock: a second
/// sweep on the same runs folder) are waited for and then, if that process did not finish
/// them, trained here. On failure, writes what the process printed last into each
/// unfinished run folder.
fn run_job(job: &Job, vgrad: &Path, force: bool) -> Result<JobCounts, SweepError> {
    let mut counts = JobCounts::default();
    let mut job = job.clone();
    loop {
        match run_process(&job, vgrad, force)? {
            Process::Succeeded => return Ok(counts),
            Process::Locked => {
                for &seed in &job.seeds {
                    let dir = job.runs_dir.join(job.point.run_dir(seed));
                    wait_for_lock(&dir).map_err(|cause| SweepError::Io {
                        path: dir.join(LOCK_FILE),
                        cause,
                    })?;
                }
            }
            Process::Failed(message) => {
                let unfinished = unfinished(&job);
                counts.resumed += job.seeds.len() - unfinished.len();
                counts.failed += unfinished.len();
                record_failure(&job, &unfinished, &message)?;
                return Ok(counts);
            }
        }
        // Whatever the other process finished is done; the rest is this job's again.
        let left = if force {
            job.seeds.clone()
        } else {
            unfinished(&job)
        };
        counts.resumed += job.seeds.len() - left.len();
        if left.is_empty() {
            return Ok(counts);
        }
        job.seeds = left;
    }
}

/// Whether the run of `point` and `seed` in `runs_dir` has its result on disk, in the
/// current layout or the older flat one (whose finished runs are kept, not retrained).
fn is_done(runs_dir: &Path, point: &GridPoint, seed: u64) -> bool {
    matches!(
        run_state(&point.find_run_dir(runs_dir, seed)),
        RunState::Done(_)
    )
}

/// The job's seeds whose runs have no result on disk.
fn unfinished(job: &Job) -> Vec<u64> {
    job.seeds
        .iter()
        .copied()
        .filter(|&seed| !is_done(&job.runs_dir, &job.point, seed))
        .collect()
}

/// Blocks until no process holds the lock of the run folder `dir` (if it has one).
fn wait_for_lock(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::options()
        .write(true)
        .open(dir.join(LOCK_FILE))
    {
        Ok(file) => file.lock(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// How a `vgrad train` process ended.
enum Process {
    Succeeded,
    /// Another process holds the lock of one of its run folders.
    Locked,
    /// Anything else, with what it printed last.
    Failed(String),
}

/// Writes `message` into the run folders of `seeds`.
fn record_failure(job: &Job, seeds: &[u64], message: &str) -> Result<(), SweepError> {
    for &seed in seeds {
        let dir = job.runs_dir.join(job.point.run_dir(seed));
        std::fs::create_dir_all(&dir).map_err(|cause| SweepError::Io {
            path: dir.clone(),
            cause,
        })?;
        let file = dir.join(ERROR_FILE);
        std::fs::write(&file, message).map_err(|cause| SweepError::Io { path: file, cause })?;
    }
    Ok(())
}

/// Runs the job's `vgrad train` process once.
fn run_process(job: &Job, vgrad: &Path, force: bool) -> Result<Process, SweepError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| SweepError::Io { path, cause }
    };
    for &seed in &job.seeds {
        let stale = job.runs_dir.join(job.point.run_dir(seed)).join(ERROR_FILE);
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(io(&stale))?;
        }
    }
    let seeds = vgrad_record::seeds::spec(&job.seeds);
    let mut cmd = Command::new(vgrad);
    // A sweep killed with SIGKILL must not leave `vgrad` processes behind that still write
    // into the run folders a rerun starts again.
    die_with_parent(&mut cmd);
    cmd.arg("train")
        .args(job.point.config.train_flags())
        .args([
            "--seeds",
            &seeds,
            "--threads",
            "1",
            "--run-name",
            &job.point.run_name_template(),
        ])
        // One folder per grid point, the seeds' folders in it: TensorBoard's run selector
        // groups them.
        .arg("--out")
        .arg(job.runs_dir.join(job.point.dir_name()))
        .env("RUST_LOG", "warn");
    if force {
        cmd.arg("--force");
    }
    let output = cmd.output().map_err(|cause| SweepError::Spawn {
        program: vgrad.to_path_buf(),
        cause,
    })?;
    if output.status.success() {
        return Ok(Process::Succeeded);
    }
    if output.status.code() == Some(i32::from(LOCKED_EXIT)) {
        return Ok(Process::Locked);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    Ok(Process::Failed(format!(
        "vgrad train exited with {}:\n{}\n",
        output.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )))
}

/// Trains every run of `sweeps` that is not finished on disk (all of them with `force`),
/// into `<out>/runs/<experiment>/<grid point>/seed-<seed>_<hash>/`, then writes each
/// sweep's experiment for TensorBoard's HParams dashboard there. A run whose process fails is recorded in its folder
/// (`error.txt`) and counted, and the others go on.
pub fn run(sweeps: &[Sweep], opts: &SweepOptions) -> Result<SweepOutcome, SweepError> {
    let mut outcome = SweepOutcome::default();
    let mut jobs = Vec::new();
    for sweep in sweeps {
        let (planned, resumed) = plan(sweep, &sweep.runs_dir(&opts.out), opts);
        outcome.resumed += resumed;
        jobs.extend(planned);
    }
    let total: usize = jobs.iter().map(|j| j.seeds.len()).sum();
    let bar = if opts.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("0 failed, {} already done", outcome.resumed));
    let started = Instant::now();
    let queue = Mutex::new(VecDeque::from(jobs));
    let failed = Mutex::new(0usize);
    let done_elsewhere = Mutex::new(0usize);
    let errors = Mutex::new(Vec::<SweepError>::new());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| {
                // The guard is dropped inside the closure: the queue is not locked while a job runs.
                let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
                while let Some(job) = next() {
                    match run_job(&job, &opts.vgrad, opts.force) {
                        Ok(counts) => {
                            if let Ok(mut c) = done_elsewhere.lock() {
                                *c += counts.resumed;
                            }
                            if let Ok(mut f) = failed.lock() {
                                *f += counts.failed;
                            }
                        }
                        Err(e) => {
                            if let Ok(mut errs) = errors.lock() {
                                errs.push(e);
                            }
                        }
                    }
                    bar.inc(job.seeds.len() as u64);
                    let failed = failed.lock().map(|f| *f).unwrap_or(0);
                    bar.set_message(format!("{failed} failed, {} already done", outcome.resumed));
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = errors.into_inner().ok().and_then(|mut e| e.pop()) {
        return Err(e);
    }
    // Once the runs are on disk (so a sweep whose `vgrad` cannot start writes nothing);
    // until then TensorBoard builds the dashboard's columns from the runs' own settings.
    for sweep in sweeps {
        crate::hparams::write_experiment(sweep, &sweep.runs_dir(&opts.out))?;
    }
    outcome.failed = failed.into_inner().unwrap_or(0);
    let elsewhere = done_elsewhere.into_inner().unwrap_or(0);
    outcome.resumed += elsewhere;
    outcome.ran = total - outcome.failed - elsewhere;
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}
