//! `cargo xtask fuzz`: runs the libFuzzer targets of `fuzz/` (the parsers of outside
//! bytes: IDX files, sweep files, TensorBoard event files) through cargo-fuzz, one after
//! the other, each for a while, and tells what they ran and found.
//!
//! cargo-fuzz needs nightly features (sanitizer and coverage flags); `RUSTC_BOOTSTRAP=1`
//! unlocks them on the stable toolchain, so no nightly is needed. libFuzzer grows its
//! corpus in `fuzz/target/corpus/<target>/`, reading the committed seeds of
//! `fuzz/corpus/<target>/` and the committed regressions of `fuzz/regressions/<target>/`
//! without writing to them; what crashes lands in `fuzz/artifacts/<target>/`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The fuzz targets, in the order they run (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: [&str; 3] = ["idx", "sweep_file", "tb_events"];

/// libFuzzer's limits: an input that needs more memory (in all, or in one allocation) or
/// more seconds than this is a finding, since a file's parsing should need far less.
const LIMITS: [&str; 3] = ["-rss_limit_mb=2048", "-malloc_limit_mb=1024", "-timeout=10"];

/// What one target's run did.
struct Outcome {
    target: &'static str,
    /// Inputs run, from libFuzzer's final statistics.
    executions: Option<u64>,
    /// Inputs per second, from the same.
    per_second: Option<u64>,
    /// Files libFuzzer wrote to the artifacts folder: crashes, out-of-memory inputs,
    /// timeouts.
    findings: Vec<PathBuf>,
}

/// Runs `target` (every target when `None`) for `seconds` each.
pub fn run(workspace: &Path, target: Option<&str>, seconds: u64) -> Result<()> {
    check_cargo_fuzz()?;
    let targets: Vec<&'static str> = match target {
        Some(name) => TARGETS.iter().copied().filter(|t| *t == name).collect(),
        None => TARGETS.to_vec(),
    };
    if targets.is_empty() {
        bail!(
            "no fuzz target `{}`; the targets are: {}",
            target.unwrap_or_default(),
            TARGETS.join(", ")
        );
    }
    let mut outcomes = Vec::new();
    for target in targets {
        outcomes.push(run_target(workspace, target, seconds)?);
    }
    eprintln!("\nfuzzing, {seconds} s per target:");
    let count = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    for o in &outcomes {
        eprintln!(
            "  {}: {} executions ({}/s), {} findings",
            o.target,
            count(o.executions),
            count(o.per_second),
            o.findings.len()
        );
        for file in &o.findings {
            eprintln!(
                "    {} (rerun: RUSTC_BOOTSTRAP=1 cargo fuzz run {} {}; once fixed, \
                 commit it to fuzz/regressions/{}/)",
                file.display(),
                o.target,
                file.display(),
                o.target
            );
        }
    }
    let found: usize = outcomes.iter().map(|o| o.findings.len()).sum();
    if found > 0 {
        bail!("the fuzzers found {found} failing inputs");
    }
    Ok(())
}

/// Fails with the command that installs cargo-fuzz when it is missing.
fn check_cargo_fuzz() -> Result<()> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz`, then this again");
    }
    Ok(())
}

/// Builds and runs one target for `seconds`, echoing libFuzzer's output.
fn run_target(workspace: &Path, target: &'static str, seconds: u64) -> Result<Outcome> {
    let fuzz = workspace.join("fuzz");
    let grown = fuzz.join("target/corpus").join(target);
    std::fs::create_dir_all(&grown).with_context(|| format!("creating {}", grown.display()))?;
    let artifacts = fuzz.join("artifacts").join(target);
    let before = files_in(&artifacts);
    let mut corpora = vec![grown, fuzz.join("corpus").join(target)];
    let regressions = fuzz.join("regressions").join(target);
    if regressions.is_dir() {
        corpora.push(regressions);
    }
    eprintln!("fuzzing {target} for {seconds} s");
    let mut child = Command::new("cargo")
        .current_dir(workspace)
        .env("RUSTC_BOOTSTRAP", "1")
        // Release build with overflow checks and debug assertions, under AddressSanitizer
        // (cargo-fuzz's default).
        .args(["fuzz", "run", target, "--release", "--debug-assertions"])
        .args(&corpora)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(LIMITS)
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped())
        .spawn()
        .context("starting cargo fuzz")?;
    let mut executions = None;
    let mut per_second = None;
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        while reader
            .read_until(b'\n', &mut line)
            .context("reading cargo fuzz")?
            > 0
        {
            let text = String::from_utf8_lossy(&line);
            eprint!("{text}");
            let stat = |name: &str| {
                text.trim()
                    .strip_prefix(name)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            executions = stat("stat::number_of_executed_units:").or(executions);
            per_second = stat("stat::average_exec_per_sec:").or(per_second);
            line.clear();
        }
    }
    let status = child.wait().context("waiting for cargo fuzz")?;
    let findings: Vec<PathBuf> = files_in(&artifacts).difference(&before).cloned().collect();
    if !status.success() && findings.is_empty() {
        bail!("cargo fuzz run {target} failed ({status}) without a failing input: see above");
    }
    Ok(Outcome {
        target,
        executions,
        per_second,
        findings,
    })
}

/// The files in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}
