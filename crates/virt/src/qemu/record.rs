//! What the QEMU driver keeps per guest in `instances/<uuid>/`, written
//! crash-safely (temporary file, fsync, rename) and 0600, off the async reactor:
//! `domain.json` — the typed [`GuestDomain`] every start renders its command line
//! from (resize changes it); `run.json` — what the driver last did to the guest
//! ([`RunRecord`]), which tells a crash from a host reboot from a clean stop when
//! ferrostack finds the guest again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::GuestDomain;

pub const DOMAIN: &str = "domain.json";
pub const RUN: &str = "run.json";

/// What the driver last did to a guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The driver started the guest and has not stopped it since: a guest found
    /// without a process is then a crash (or a host reboot, by `boot_id`).
    pub running: bool,
    /// `/proc/sys/kernel/random/boot_id` when it was started.
    pub boot_id: String,
    pub pid: Option<u32>,
    /// The guest's memory is saved in its disk (internal snapshot `SUSPEND_TAG`).
    pub suspended: bool,
    /// The host port forwarded to the guest's SSH (kept across restarts when free).
    pub ssh_port: Option<u16>,
    /// The TCP port of the guest's SPICE console (kept across restarts when free).
    #[serde(default)]
    pub spice_port: Option<u16>,
    /// `resize` kept the root disk as it was (`disk.resize-orig`) for a revert.
    pub resize_backup: bool,
}

/// The internal snapshot name of a suspended guest's state.
pub const SUSPEND_TAG: &str = "ferrostack-suspend";

async fn write(path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        ferrostack_core::fsutil::write_private_atomic(&path, &bytes)
    })
    .await
    .map_err(std::io::Error::other)?
}

pub async fn save_domain(dir: &Path, d: &GuestDomain) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(d).map_err(std::io::Error::other)?;
    write(dir.join(DOMAIN), bytes).await
}

pub fn load_domain(dir: &Path) -> std::io::Result<GuestDomain> {
    let bytes = std::fs::read(dir.join(DOMAIN))?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

pub async fn save_run(dir: &Path, r: &RunRecord) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    write(dir.join(RUN), bytes).await
}

pub fn load_run(dir: &Path) -> RunRecord {
    std::fs::read(dir.join(RUN))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}
