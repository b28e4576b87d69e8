//! Abuse a new user can commit by accident: sizes with a zero too many, two sweeps on one
//! runs folder, a disk that fills up, names that lead out of the runs folder. Each gets a
//! clear error (or, for the two sweeps, the right result), never a frozen machine or a
//! file outside `--out`.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use vgrad_sweep::{Overrides, Sweep};
use vgrad_tests::{sweep_options, vgrad_bin, workspace, xtask_bin};

fn vgrad(args: &[&str]) -> Output {
    Command::new(vgrad_bin()).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sizes_are_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out = out.to_str().unwrap();

    let started = Instant::now();
    let seeds = vgrad(&[
        "train",
        "--seeds",
        "0-100000000",
        "--steps",
        "10",
        "--out",
        out,
    ]);
    let text = stderr(&seeds);
    assert!(!seeds.status.success());
    assert!(
        text.contains("`0-100000000` names more than 100000 seeds, the most one list may hold"),
        "{text}"
    );

    let wide = vgrad(&["train", "--width", "10000000", "--steps", "1", "--out", out]);
    let text = stderr(&wide);
    assert!(!wide.status.success());
    assert!(
        text.contains("this run needs about")
            && text.contains("available; train fewer seeds per process")
            && text.contains("--width 10000000 and --layers 6 give 400007990000010 parameters"),
        "{text}"
    );
    // Refused before the data set was read or a run folder made.
    assert!(!text.contains("loaded MNIST"), "{text}");
    assert!(!Path::new(out).exists());
    assert!(started.elapsed() < Duration::from_secs(10));

    // A sweep of 8,000 runs asks for --yes before it builds or trains anything.
    let experiment = dir.path().join("typo.toml");
    std::fs::write(
        &experiment,
        "seeds = 2000\n[axes]\nactivation = [\"sigmoid\", \"relu\", \"tanh\", \"selu\"]\n",
    )
    .unwrap();
    let sweep = Command::new(xtask_bin())
        .arg("sweep")
        .arg(&experiment)
        .arg("--out")
        .arg(dir.path().join("sweep"))
        .current_dir(workspace())
        .output()
        .unwrap();
    let text = stderr(&sweep);
    assert!(!sweep.status.success());
    assert!(
        text.contains(
            "this would start 8000 runs (typo: 4 grid points x 2000 seeds), more than the 5000 \
             a sweep starts without asking"
        ) && text.contains("or pass --yes to start them"),
        "{text}"
    );
    assert!(!dir.path().join("sweep").exists());
}

#[test]
fn two_sweeps_on_one_runs_folder_train_each_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("pair.toml");
    std::fs::write(
        &experiment,
        "seeds = 3\n[base]\nsteps = 400\nlog_every = 100\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\nlayers = [3, 4]\n",
    )
    .unwrap();
    let sweep = Sweep::load(&experiment, &Overrides::default()).unwrap();
    let (shared, alone) = (dir.path().join("shared"), dir.path().join("alone"));

    // Two sweeps at once, as from two terminals, each with two processes.
    let (a, b) = std::thread::scope(|scope| {
        let run = || {
            vgrad_sweep::runner::run(std::slice::from_ref(&sweep), &sweep_options(&shared, 2))
                .unwrap()
        };
        let a = scope.spawn(run);
        let b = scope.spawn(run);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a.failed, b.failed), (0, 0), "{a:?} {b:?}");
    assert_eq!(
        a.ran + b.ran,
        sweep.runs(),
        "each run trained once: {a:?} {b:?}"
    );
    assert_eq!(a.ran + a.resumed, sweep.runs(), "{a:?}");
    assert_eq!(b.ran + b.resumed, sweep.runs(), "{b:?}");

    let single =
        vgrad_sweep::runner::run(std::slice::from_ref(&sweep), &sweep_options(&alone, 2)).unwrap();
    assert_eq!(single.ran, sweep.runs());
    let together = vgrad_report::write_report(&sweep, &shared).unwrap();
    let one = vgrad_report::write_report(&sweep, &alone).unwrap();
    assert_eq!(
        std::fs::read_to_string(together).unwrap(),
        std::fs::read_to_string(one).unwrap()
    );
}

#[test]
fn a_run_another_process_trains_is_refused_with_its_own_status() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out = out.to_str().unwrap();
    let mut first = Command::new(vgrad_bin())
        .args([
            "train",
            "--steps",
            "100000",
            "--log-every",
            "1000",
            "--out",
            out,
        ])
        .spawn()
        .unwrap();
    let lock = Path::new(out).join(vgrad_record::layout::LOCK_FILE);
    let started = Instant::now();
    while !lock.exists() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = vgrad(&["train", "--steps", "10", "--out", out]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(
        second.status.code(),
        Some(i32::from(vgrad_record::layout::LOCKED_EXIT))
    );
    assert!(
        stderr(&second).contains(&format!(
            "error: another process is training the run in {out} (it holds .vgrad.lock); wait \
             for it to finish, or give --out another folder"
        )),
        "{}",
        stderr(&second)
    );
    // The kernel released the killed process's lock: the same command now trains.
    let third = vgrad(&["train", "--steps", "10", "--log-every", "5", "--out", out]);
    assert!(third.status.success(), "{}", stderr(&third));
}

#[test]
fn names_from_the_command_line_and_from_files_stay_inside_the_runs_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a/b/runs");
    let escape = vgrad(&[
        "train",
        "--seeds",
        "2",
        "--run-name",
        "../../escape-{seed}",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stderr(&escape);
    assert!(!escape.status.success());
    assert!(
        text.contains(
            "invalid value '../../escape-{seed}' for '--run-name <RUN_NAME>': `../../escape-0` \
             cannot name a folder: it contains a path separator"
        ),
        "{text}"
    );
    assert!(!dir.path().join("a").exists());

    let experiment = dir.path().join("shared.toml");
    std::fs::write(
        &experiment,
        "seeds = 1\n[[scenarios]]\nname = \"ok\"\n[[scenarios]]\nname = \"../../../etc\"\nlr = 0.1\n",
    )
    .unwrap();
    let err = Sweep::load(&experiment, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: `scenarios[1].name`: `../../../etc` cannot name a folder: it contains a path \
             separator (`/` or `\\`); use letters, digits, `-`, `_` and `.`",
            experiment.display()
        )
    );
}

/// A 64 KiB tmpfs mounted on a temporary folder, unmounted when dropped.
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    /// `None` where this process may not mount (not root).
    fn mount() -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        mounted.status.success().then_some(TinyDisk { dir })
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_names_the_run_once_and_says_how_to_finish_it() {
    let Some(disk) = TinyDisk::mount() else {
        // Under CI, which runs as root, this must not be skipped.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test as root (it mounts a 64 KiB tmpfs)"
        );
        eprintln!("skipped: mounting a 64 KiB tmpfs needs root");
        return;
    };
    let out = disk.dir.path().join("run");
    let full = vgrad(&[
        "train",
        "--steps",
        "300",
        "--log-every",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stderr(&full);
    assert!(!full.status.success());
    let error: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("error:"))
        .collect();
    assert_eq!(error.len(), 2, "{text}");
    assert!(
        error[0].starts_with(&format!("error: {}/", out.display()))
            && error[0].ends_with(": No space left on device (os error 28)"),
        "{text}"
    );
    assert_eq!(
        error[1],
        format!(
            "the run in {} is incomplete (no summary.json); once the disk has room (or the \
             folder is writable), run the same command again to train it (a sweep trains only \
             its unfinished runs)",
            out.display()
        )
    );
    assert!(!out.join("summary.json").exists());
}
