//! `cargo xtask sweep --slurm` against real Slurm daemons: a one-node cluster started by
//! `scripts/local-slurm.sh` for this test and torn down after it (also when it fails). The
//! seed sweep submitted as 4 shards and a report job must give the report, byte for byte,
//! that `cargo xtask sweep` writes on this machine; so must a submission with one array
//! task cancelled while it runs and then submitted again. The submission is the sweep
//! crate's (`vgrad_sweep::slurm`, behind its `Executor`); xtask only parses the flags.

#![forbid(unsafe_code)]
#![cfg_attr(not(slurm), allow(dead_code, unused_imports))]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use vgrad_tests::{vgrad_bin, workspace, xtask_bin};

/// A running local cluster; dropping it stops its daemons by their recorded pids.
struct Cluster {
    state: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cluster {
    fn up() -> Cluster {
        let state = tempfile::Builder::new()
            .prefix("vgrad-slurm-test")
            .tempdir()
            .unwrap();
        let out = Command::new(script())
            .arg("up")
            .arg(state.path())
            .output()
            .unwrap();
        // From here on, Drop tears down whatever the script started.
        let mut cluster = Cluster { state, env: vec![] };
        assert!(
            out.status.success(),
            "scripts/local-slurm.sh up failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches(['\'', '"']).to_string()))
            .collect();
        assert!(
            cluster.env.iter().any(|(k, _)| k == "SLURM_CONF"),
            "the script printed no SLURM_CONF: {:?}",
            cluster.env
        );
        cluster
    }

    /// A command that talks to this cluster.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn xtask(&self, args: &[&str]) -> Output {
        self.xtask_with(args, &[])
    }

    /// [`Cluster::xtask`] with more environment, which sbatch passes on to the jobs.
    fn xtask_with(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        self.command(xtask_bin())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(workspace())
            .output()
            .unwrap()
    }

    /// The daemons' pids, as the script recorded them.
    fn pids(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(self.state.path().join("pids")) else {
            return vec![];
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .filter_map(|t| t.trim().parse().ok())
            .collect()
    }

    /// squeue's state of each job and array task still known.
    fn queue(&self, ids: &[&str]) -> BTreeMap<String, String> {
        let out = self
            .command("squeue")
            .args(["--noheader", "--array", "--format=%i %T", "--jobs"])
            .arg(ids.join(","))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().split_once(' '))
            .map(|(id, state)| (id.to_string(), state.to_string()))
            .collect()
    }

    /// Waits up to a minute for `until` to hold of the queue.
    fn wait_for(
        &self,
        ids: &[&str],
        what: &str,
        until: impl Fn(&BTreeMap<String, String>) -> bool,
    ) {
        wait_a_minute_for(what, || self.queue(ids), until);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("down")
            .arg(self.state.path())
            .status();
    }
}

/// Polls `state` every 50 ms until `until` holds of it; fails after a minute, naming `what`
/// and the state last seen.
fn wait_a_minute_for<S: std::fmt::Debug>(
    what: &str,
    state: impl Fn() -> S,
    until: impl Fn(&S) -> bool,
) {
    let start = Instant::now();
    loop {
        let seen = state();
        if until(&seen) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}; last seen: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A stand-in `vgrad` under a target folder of its own: array task `task`'s first call
/// waits (as `sleep`, which a cancel kills) instead of training; every other call, and any
/// call once that one has come, runs the real `vgrad`.
struct HeldTask {
    /// The target folder whose `release/vgrad` is the stand-in (for CARGO_TARGET_DIR).
    target: PathBuf,
    /// Where the held call moves the hold file once it has claimed it.
    taken: PathBuf,
}

impl HeldTask {
    fn new(dir: &Path, task: u32) -> HeldTask {
        let target = dir.join("held-target");
        let release = target.join("release");
        std::fs::create_dir_all(&release).unwrap();
        let (hold, taken) = (dir.join("hold"), dir.join("hold.taken"));
        std::fs::write(&hold, "").unwrap();
        // `mv` claims the hold atomically, so only one call waits.
        let wrapper = format!(
            "#!/bin/sh\n\
             if [ \"$SLURM_ARRAY_TASK_ID\" = {task} ] && mv '{hold}' '{taken}' 2>/dev/null; then\n\
             \x20   exec sleep 600\n\
             fi\n\
             exec '{vgrad}' \"$@\"\n",
            hold = hold.display(),
            taken = taken.display(),
            vgrad = vgrad_bin().display(),
        );
        let bin = release.join("vgrad");
        std::fs::write(&bin, wrapper).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        HeldTask { target, taken }
    }

    /// Waits up to a minute for the held task to reach its `vgrad`.
    fn wait(&self) {
        wait_a_minute_for(
            "the held task to start its vgrad",
            || self.taken.exists(),
            |&taken| taken,
        );
    }
}

fn script() -> PathBuf {
    workspace().join("scripts/local-slurm.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, by its path relative to `dir`.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                found.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

fn assert_same_reports(local: &Path, cluster: &Path) {
    let (a, b) = (
        files(&local.join("reports")),
        files(&cluster.join("reports")),
    );
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the reports' files differ"
    );
    for (path, bytes) in &a {
        assert!(
            b[path] == *bytes,
            "{} differs between {} and {}",
            path.display(),
            local.display(),
            cluster.display()
        );
    }
}

/// The id after `words` in the submission's output ("... as job array 12, ...").
fn job_id(output: &str, words: &str) -> String {
    let rest = &output[output
        .find(words)
        .unwrap_or_else(|| panic!("no `{words}` in: {output}"))
        + words.len()..];
    rest.trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

#[test]
#[cfg_attr(
    not(slurm),
    ignore = "Slurm is not installed: apt-get install slurmctld slurmd slurm-client munge"
)]
fn a_sweep_on_slurm_writes_the_same_report_as_one_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (local, whole, cancelled) = (path("local"), path("whole"), path("cancelled"));

    let here = Command::new(xtask_bin())
        .args(["sweep", "seed", "--out", &local])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(here.status.success(), "{}", text(&here));

    let cluster = Cluster::up();
    let pids = cluster.pids();
    assert_eq!(pids.len(), 3, "munged, slurmctld and slurmd: {pids:?}");

    // A partition the cluster lacks: Slurm's refusal, and what to change.
    let refused = cluster.xtask(&[
        "sweep",
        "seed",
        "--out",
        &whole,
        "--slurm",
        "--partition",
        "nosuch",
    ]);
    let message = text(&refused);
    assert!(!refused.status.success(), "{message}");
    assert!(
        message.contains("Slurm refused the shards' job array")
            && message.contains("Invalid partition name")
            && message.contains(
                "`nosuch` is not a partition of this cluster; give --partition one of: debug"
            ),
        "{message}"
    );

    // The whole sweep as 4 shards and a report job, followed to the end.
    let submitted = cluster.xtask(&[
        "sweep", "seed", "--out", &whole, "--slurm", "--array", "4", "--wait",
    ]);
    assert!(submitted.status.success(), "{}", text(&submitted));
    assert_same_reports(Path::new(&local), Path::new(&whole));

    // One array task cancelled while it runs; the report job then fails and names what
    // is missing; the same command again trains it, and the report is the same. A shard
    // trains in well under a second, so a cancel sent when squeue says RUNNING can come
    // too late: task 1's `vgrad` is held until the cancel instead.
    let held = HeldTask::new(dir.path(), 1);
    let first = cluster.xtask_with(
        &[
            "sweep",
            "seed",
            "--out",
            &cancelled,
            "--slurm",
            "--array",
            "4",
            "--no-build",
        ],
        &[("CARGO_TARGET_DIR", &held.target)],
    );
    let first_text = text(&first);
    assert!(first.status.success(), "{first_text}");
    let array = job_id(&first_text, "as job array");
    let report = job_id(&first_text, "the report as job");
    let task = format!("{array}_1");
    held.wait();
    assert_eq!(
        cluster.queue(&[&array]).get(&task).map(String::as_str),
        Some("RUNNING"),
        "task 1 holds its vgrad"
    );
    let cancel = cluster.command("scancel").arg(&task).output().unwrap();
    assert!(cancel.status.success(), "{}", text(&cancel));
    cluster.wait_for(&[&array, &report], "the jobs to end", |q| q.is_empty());
    let half = std::fs::read_to_string(Path::new(&cancelled).join("reports/seed.md")).unwrap();
    assert!(
        half.contains("Runs that diverged or have no result:"),
        "{half}"
    );

    let again = cluster.xtask(&[
        "sweep", "seed", "--out", &cancelled, "--slurm", "--array", "4", "--wait",
    ]);
    assert!(again.status.success(), "{}", text(&again));
    assert_same_reports(Path::new(&local), Path::new(&cancelled));

    drop(cluster);
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            status.is_empty() || status.contains("State:\tZ"),
            "daemon {pid} still runs after local-slurm.sh down"
        );
    }
}
