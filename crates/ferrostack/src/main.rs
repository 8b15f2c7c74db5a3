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

/// Pins glibc's mmap threshold at its initial 128 KiB. Left dynamic, glibc raises
/// it to the size of the first large block freed, after which the 19 MiB Argon2
/// working area of every password check is carved from (and kept in) the heap
/// arenas: measured with `bench identity`, RSS grew from 31 MiB to 560 MiB; pinned,
/// it stays under 50 MiB. Must run before any other thread starts.
#[allow(unsafe_code)]
fn pin_mmap_threshold() {
    // SAFETY: mallopt only changes allocator parameters; it is called once, first
    // thing in main, before the runtime or any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> std::process::ExitCode {
    pin_mmap_threshold();
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
