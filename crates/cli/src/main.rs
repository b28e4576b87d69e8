//! The `vgrad` binary.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

// candle allocates a buffer per op; glibc's malloc maps and unmaps every buffer of 128 KiB
// or more, which made training steps 2-3x slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = vgrad_cli::args::Cli::parse();
    if let vgrad_cli::args::Command::Train(args) = &cli.command {
        vgrad_cli::threads::configure(args.threads);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match vgrad_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
