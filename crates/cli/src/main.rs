//! The `vgrad` binary.

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use vgrad_cli::args::{Cli, Command};

// candle allocates a buffer per op; glibc's malloc maps and unmaps every buffer of 128 KiB
// or more, which made training steps 2-3x slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Train(args) => args.threads,
        Command::Selftest(_) | Command::Peak(_) => 1,
    };
    // Nothing has started a thread yet (argument parsing starts none), and candle runs
    // only after this.
    if let Err(err) = vgrad_cli::threads::configure(threads) {
        eprintln!("warning: candle's thread count was left at its default: {err}");
    }
    vgrad_cli::allocator::keep_freed_pages();
    vgrad_cli::allocator::small_pages_only();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only where a terminal shows them, not in a pipe or a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match vgrad_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            // A sweep tells "another process trains this run" from a failure by the status.
            match err.downcast_ref::<vgrad_train::TrainError>() {
                Some(vgrad_train::TrainError::Locked { .. }) => {
                    ExitCode::from(vgrad_record::layout::LOCKED_EXIT)
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}
