//! `ferrostack`: an OpenStack-compatible private cloud in one binary.
//!
//! This crate is the command line and the wiring: it loads the configuration
//! (defaults < TOML file < `FERROSTACK_*` environment < flags), opens the database
//! and the services, binds the listeners, bootstraps the cloud, writes the client
//! files, serves until SIGINT/SIGTERM and shuts down cleanly.

mod bench;
mod cli;
mod files;
mod logging;
mod settings;
mod up;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrostack: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrostack: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
