//! The `Driver` trait and the types it speaks: what to spawn ([`SpawnSpec`]), what a
//! hypervisor reports ([`InstanceInfo`], [`PowerState`], [`HostResources`]) and its
//! errors. Every call is idempotent where it can be: destroying a missing guest
//! succeeds, powering on a running one is a no-op; the reconciler relies on it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::ConsolePassword;

/// Nova's power states (the integers the API shows in `OS-EXT-STS:power_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    NoState,
    Running,
    Paused,
    Shutdown,
    Crashed,
    Suspended,
}

impl PowerState {
    /// Nova's numbering: 0 NOSTATE, 1 RUNNING, 3 PAUSED, 4 SHUTDOWN, 6 CRASHED, 7 SUSPENDED.
    pub fn code(self) -> i64 {
        match self {
            PowerState::NoState => 0,
            PowerState::Running => 1,
            PowerState::Paused => 3,
            PowerState::Shutdown => 4,
            PowerState::Crashed => 6,
            PowerState::Suspended => 7,
        }
    }

    pub fn from_code(code: i64) -> PowerState {
        match code {
            1 => PowerState::Running,
            3 => PowerState::Paused,
            4 => PowerState::Shutdown,
            6 => PowerState::Crashed,
            7 => PowerState::Suspended,
            _ => PowerState::NoState,
        }
    }
}

/// One network interface of a guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecNic {
    pub port_id: String,
    pub network_id: String,
    pub mac: String,
    pub fixed_ips: Vec<String>,
    /// The network's MTU, when known.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Each fixed address with its subnet (what `network_data.json` and the
    /// injected `interfaces` file are made of).
    #[serde(default)]
    pub addresses: Vec<ferrostack_guest::GuestIp>,
}

/// Everything a driver needs to create a guest, resolved by the compute side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpawnSpec {
    pub uuid: String,
    pub name: String,
    pub hostname: String,
    pub project_id: String,
    pub user_id: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap_mb: i64,
    pub image_id: Option<String>,
    pub flavor_extra_specs: BTreeMap<String, String>,
    pub image_properties: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    /// The key pair's public key, resolved at create time (never the name).
    pub key_data: Option<String>,
    /// Decoded personality files (path, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// Decoded user data.
    pub user_data: Option<Vec<u8>>,
    pub config_drive: bool,
    pub admin_password: Option<String>,
    pub nics: Vec<SpecNic>,
    pub availability_zone: String,
    /// The key pair's name as it was at create time (`public_keys` in metadata).
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub flavor_name: String,
    #[serde(default)]
    pub launch_index: u32,
    #[serde(default)]
    pub reservation_id: String,
    /// Security group names as requested.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Creation time, seconds since the epoch.
    #[serde(default)]
    pub created_at: i64,
}

/// What the hypervisor knows of one guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub uuid: String,
    pub power_state: PowerState,
    pub vcpus: i64,
    pub memory_mb: i64,
}

/// A host's capacity as its hypervisor reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResources {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub cpu_info: String,
}

/// What to capture for a snapshot; the driver writes the disk image to `dest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSpec {
    pub uuid: String,
    pub dest: std::path::PathBuf,
    /// `raw` or `qcow2`.
    pub disk_format: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleKind {
    Vnc,
    Spice,
    Serial,
}

/// Where a guest's console can be reached right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleTarget {
    /// A unix socket on this host (what the QEMU driver prefers: nothing to find
    /// by a port scan).
    Unix(std::path::PathBuf),
    /// A TCP address (libvirt's consoles, a SPICE port for direct clients).
    Tcp { host: String, port: u16 },
}

/// A guest's console as the console proxy needs it: where it is, and the password
/// the hypervisor asks for. `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleEndpoint {
    pub kind: ConsoleKind,
    pub target: ConsoleTarget,
    /// What the hypervisor expects (VNC compares only the first 8 bytes); `None`
    /// when the console asks for none (the serial console).
    pub password: Option<ConsolePassword>,
    /// The server's owner chose it (`spice_passwd`): the browser page asks the
    /// user for it. `false`: a random password nobody is told, which the proxy
    /// gives the hypervisor itself.
    pub user_password: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("instance {0} could not be found on this host")]
    NotFound(String),
    #[error("{op} of instance {uuid} is not possible in power state {state:?}")]
    InvalidState {
        op: &'static str,
        uuid: String,
        state: PowerState,
    },
    #[error("{0} is not supported by this driver")]
    Unsupported(&'static str),
    #[error("{op} of instance {uuid} failed: {message}")]
    Failed {
        op: &'static str,
        uuid: String,
        message: String,
    },
    /// The image does not declare a guest agent (`hw_qemu_guest_agent`).
    #[error("QEMU guest agent is not enabled")]
    AgentNotEnabled(String),
    /// The guest agent channel exists but nothing answers in the guest.
    #[error("the guest agent of instance {uuid} did not answer: {message}")]
    AgentUnresponsive { uuid: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Why a guest stopped without being asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// It powered itself off (Nova: a guest shutdown becomes SHUTOFF).
    GuestShutdown,
    /// Its process died: killed, out of memory, crashed.
    Crashed,
    /// It was running when the host went down; found stopped after the reboot.
    HostRebooted,
}

/// Something a guest did on its own, reported as it happens (not at the next
/// periodic sync), so the power state shown is never a lie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuestEvent {
    Stopped {
        uuid: String,
        cause: StopCause,
        /// What happened, in words (for the instance-action event).
        detail: String,
    },
}

pub type Result<T> = std::result::Result<T, DriverError>;

/// A hypervisor, as the host agent sees it.
#[async_trait]
pub trait Driver: Send + Sync {
    /// Short name for logs and `hypervisor_type`.
    fn name(&self) -> &'static str;
    /// Capacity of this host.
    async fn host_resources(&self) -> Result<HostResources>;
    /// Creates and starts a guest. Spawning a guest that already exists is not an
    /// error when it matches the spec (a restarted agent may repeat it).
    async fn spawn(&self, spec: &SpawnSpec) -> Result<InstanceInfo>;
    /// Stops and removes a guest and everything the driver made for it. Missing = done.
    async fn destroy(&self, uuid: &str) -> Result<()>;
    async fn power_on(&self, uuid: &str) -> Result<()>;
    async fn power_off(&self, uuid: &str) -> Result<()>;
    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()>;
    async fn pause(&self, uuid: &str) -> Result<()>;
    async fn unpause(&self, uuid: &str) -> Result<()>;
    async fn suspend(&self, uuid: &str) -> Result<()>;
    async fn resume(&self, uuid: &str) -> Result<()>;
    /// The image format [`Driver::snapshot`] writes: Nova's libvirt driver keeps the
    /// root disk's own format (`qcow2` for its overlays); `raw` for drivers without disks.
    fn snapshot_disk_format(&self) -> &'static str {
        "raw"
    }
    /// Writes the guest's root disk image to `spec.dest`.
    async fn snapshot(&self, spec: &SnapshotSpec) -> Result<()>;
    /// Changes a guest's size (same host): the reconciler calls it for resize.
    async fn resize(&self, uuid: &str, vcpus: i64, memory_mb: i64, root_gb: i64) -> Result<()>;
    /// The tail of the serial console log.
    async fn console_output(&self, uuid: &str, tail_lines: Option<usize>) -> Result<String>;
    /// Where the guest's console of `kind` is now, and its password. Called at
    /// every console connect, so a token never outlives the console it was made for.
    async fn console_endpoint(&self, uuid: &str, kind: ConsoleKind) -> Result<ConsoleEndpoint>;
    /// Changes the graphical consoles' password while the guest runs (no reboot):
    /// `Some` = the owner's `spice_passwd`, `None` = back to a random one. Also
    /// kept for later starts.
    async fn set_console_password(
        &self,
        _uuid: &str,
        _password: Option<&ConsolePassword>,
    ) -> Result<()> {
        Err(DriverError::Unsupported("changing the console password"))
    }
    /// A guest's state; `NotFound` when the hypervisor does not know it.
    async fn get_info(&self, uuid: &str) -> Result<InstanceInfo>;
    /// Every guest the hypervisor knows.
    async fn list(&self) -> Result<Vec<InstanceInfo>>;
    /// Sets `user`'s password inside the guest (changePassword). Drivers that
    /// cannot say so (`Unsupported`), never pretend.
    async fn set_admin_password(&self, uuid: &str, user: &str, password: &str) -> Result<()> {
        let _ = (uuid, user, password);
        Err(DriverError::Unsupported("setting the admin password"))
    }
    /// Ends a resize for good (a kept copy of the old disk may go).
    async fn confirm_resize(&self, uuid: &str) -> Result<()> {
        self.get_info(uuid).await.map(|_| ())
    }
    /// Undoes a resize: back to these sizes (and the old disk, where it was kept).
    async fn revert_resize(
        &self,
        uuid: &str,
        vcpus: i64,
        memory_mb: i64,
        root_gb: i64,
    ) -> Result<()> {
        self.resize(uuid, vcpus, memory_mb, root_gb).await
    }
    /// The host address forwarded to the guest's SSH port, where the driver makes one.
    async fn ssh_endpoint(&self, _uuid: &str) -> Result<std::net::SocketAddr> {
        Err(DriverError::Unsupported("an SSH forward"))
    }
    /// The stream of [`GuestEvent`]s; the first caller gets it, later ones `None`.
    fn take_events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<GuestEvent>> {
        None
    }
}

/// The last `n` lines of a console log (all of it for `None`), joined without a
/// final newline: the shape every driver answers `console_output` with.
pub fn tail_lines(text: &str, n: Option<usize>) -> String {
    match n {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        None => text.to_string(),
    }
}
