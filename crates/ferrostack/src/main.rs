//! `ferrostack`: an OpenStack-compatible private cloud in one binary.
//!
//! This crate is the command line and the wiring: it loads the configuration
//! (defaults < TOML file < `FERROSTACK_*` environment < flags), opens the database
//! and the services, binds the listeners, bootstraps the cloud, writes the client
//! files, serves until SIGINT/SIGTERM and shuts down cleanly.

mod agent;
mod bench;
mod cli;
mod files;
mod logging;
mod settings;
mod ssh;
mod up;

use clap::Parser;

/// Pins glibc's mmap threshold at 4 MiB. Left dynamic, glibc raises it to the size
/// of the first large block freed, after which the 19 MiB Argon2 working area of
/// every password check is carved from (and kept in) the heap arenas: measured with
/// `bench identity`, RSS grew from 31 MiB to 560 MiB; pinned, it stays under 50 MiB.
/// 4 MiB rather than glibc's initial 128 KiB keeps the image data path's buffers
/// (hyper's reads up to ~400 KiB, 1 MiB writes) on the heap instead of an mmap,
/// page faults and zeroing per buffer. Two malloc arenas instead of glibc's 8 per
/// core: every SQLite connection has its own thread, and each thread's arena kept
/// its freed pages (`bench compute` with 10,000 servers: RSS 156 → 118 MiB, same
/// latencies). Must run before any other thread starts.
#[allow(unsafe_code)]
fn pin_mmap_threshold() {
    // SAFETY: mallopt only changes allocator parameters; it is called once, first
    // thing in main, before the runtime or any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
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
