//! A server as compute stores it: the indexed columns (state, host, resources,
//! bookkeeping of the reconciler) and a JSON document with everything else
//! (flavor snapshot, metadata, tags, key data, personality, user data, addresses,
//! fault). Nova's vm/task states and how they make the API's `status`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use ferrostack_network::{NetworkRequest, Vif};

/// Nova's `vm_state`: what the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmState {
    Building,
    Active,
    Stopped,
    Paused,
    Suspended,
    Resized,
    Error,
    Deleted,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Building => "building",
            VmState::Active => "active",
            VmState::Stopped => "stopped",
            VmState::Paused => "paused",
            VmState::Suspended => "suspended",
            VmState::Resized => "resized",
            VmState::Error => "error",
            VmState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<VmState> {
        Some(match s {
            "building" => VmState::Building,
            "active" => VmState::Active,
            "stopped" => VmState::Stopped,
            "paused" => VmState::Paused,
            "suspended" => VmState::Suspended,
            "resized" => VmState::Resized,
            "error" => VmState::Error,
            "deleted" => VmState::Deleted,
            _ => return None,
        })
    }
}

/// Nova's `task_state`: what is being done to the server. Every task is work for
/// the scheduler or the host agent; `None` means the server is at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Scheduling,
    Networking,
    Spawning,
    PoweringOff,
    PoweringOn,
    Rebooting,
    RebootingHard,
    Pausing,
    Unpausing,
    Suspending,
    Resuming,
    Rebuilding,
    ResizePrep,
    ResizeReverting,
    ResizeConfirming,
    ImageSnapshot,
    UpdatingPassword,
    Deleting,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Scheduling => "scheduling",
            TaskState::Networking => "networking",
            TaskState::Spawning => "spawning",
            TaskState::PoweringOff => "powering-off",
            TaskState::PoweringOn => "powering-on",
            TaskState::Rebooting => "rebooting",
            TaskState::RebootingHard => "rebooting_hard",
            TaskState::Pausing => "pausing",
            TaskState::Unpausing => "unpausing",
            TaskState::Suspending => "suspending",
            TaskState::Resuming => "resuming",
            TaskState::Rebuilding => "rebuilding",
            TaskState::ResizePrep => "resize_prep",
            TaskState::ResizeReverting => "resize_reverting",
            TaskState::ResizeConfirming => "resize_confirming",
            TaskState::ImageSnapshot => "image_snapshot",
            TaskState::UpdatingPassword => "updating_password",
            TaskState::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        const ALL: &[TaskState] = &[
            TaskState::Scheduling,
            TaskState::Networking,
            TaskState::Spawning,
            TaskState::PoweringOff,
            TaskState::PoweringOn,
            TaskState::Rebooting,
            TaskState::RebootingHard,
            TaskState::Pausing,
            TaskState::Unpausing,
            TaskState::Suspending,
            TaskState::Resuming,
            TaskState::Rebuilding,
            TaskState::ResizePrep,
            TaskState::ResizeReverting,
            TaskState::ResizeConfirming,
            TaskState::ImageSnapshot,
            TaskState::UpdatingPassword,
            TaskState::Deleting,
        ];
        ALL.iter().copied().find(|t| t.as_str() == s)
    }
}

/// The API's `status` from vm and task state (Nova's `_STATE_MAP`).
pub fn status(vm: VmState, task: Option<TaskState>) -> &'static str {
    use TaskState as T;
    match vm {
        VmState::Building => "BUILD",
        VmState::Active => match task {
            Some(T::Rebooting) => "REBOOT",
            Some(T::RebootingHard) => "HARD_REBOOT",
            Some(T::UpdatingPassword) => "PASSWORD",
            Some(T::Rebuilding) => "REBUILD",
            Some(T::ResizePrep) => "RESIZE",
            _ => "ACTIVE",
        },
        VmState::Stopped => match task {
            Some(T::ResizePrep) => "RESIZE",
            Some(T::Rebuilding) => "REBUILD",
            _ => "SHUTOFF",
        },
        VmState::Resized => match task {
            Some(T::ResizeReverting) => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        VmState::Paused => "PAUSED",
        VmState::Suspended => "SUSPENDED",
        VmState::Error => match task {
            Some(T::Rebuilding) => "REBUILD",
            _ => "ERROR",
        },
        VmState::Deleted => "DELETED",
    }
}

/// The vm states a `?status=` filter selects (Nova's reverse map).
pub fn vm_states_for_status(status: &str) -> Option<Vec<VmState>> {
    Some(match status.to_ascii_uppercase().as_str() {
        "BUILD" => vec![VmState::Building],
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" | "PASSWORD" | "REBUILD" | "RESIZE" => {
            vec![VmState::Active]
        }
        "SHUTOFF" => vec![VmState::Stopped],
        "VERIFY_RESIZE" | "REVERT_RESIZE" => vec![VmState::Resized],
        "PAUSED" => vec![VmState::Paused],
        "SUSPENDED" => vec![VmState::Suspended],
        "ERROR" => vec![VmState::Error],
        "DELETED" => vec![VmState::Deleted],
        "MIGRATING" | "RESCUE" | "SHELVED" | "SHELVED_OFFLOADED" | "SOFT_DELETED" | "UNKNOWN" => {
            vec![]
        }
        _ => return None,
    })
}

/// The flavor as the server was built with it (Nova keeps a copy, so later flavor
/// changes or deletes do not change a server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlavorSnapshot {
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap_mb: i64,
    pub extra_specs: BTreeMap<String, String>,
}

/// A server's fault, shown when it is in ERROR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub code: i64,
    pub message: String,
    pub details: String,
    pub created_us: i64,
}

/// One personality file, still base64 as the API received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Personality {
    pub path: String,
    pub contents: String,
}

/// Work an action left for the host agent beyond its task state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// createImage: the queued image to fill.
    pub snapshot_image_id: Option<String>,
    /// rebuild: the image to rebuild from.
    pub rebuild_image_id: Option<String>,
    /// The password to set (create/rebuild/changePassword); cleared once used.
    pub admin_pass: Option<String>,
    /// The action's request id, to finish its event.
    pub request_id: Option<String>,
    /// resize: the vm state to return to on confirm or revert (Nova's `old_vm_state`).
    #[serde(default)]
    pub old_vm_state: Option<VmState>,
    /// createBackup: the backups of this type to keep once the snapshot is filled.
    #[serde(default)]
    pub backup_rotation: Option<BackupRotation>,
}

/// createBackup's rotation: after the new backup is uploaded, only the newest
/// `rotation` images of the server with this `backup_type` stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRotation {
    pub backup_type: String,
    pub rotation: i64,
}

/// Everything about a server that is not an indexed column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerDoc {
    pub flavor: FlavorSnapshot,
    #[serde(default)]
    pub old_flavor: Option<FlavorSnapshot>,
    #[serde(default)]
    pub image_properties: BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub key_name: Option<String>,
    /// The key pair's public key, resolved at create time.
    #[serde(default)]
    pub key_data: Option<String>,
    #[serde(default)]
    pub personality: Vec<Personality>,
    #[serde(default)]
    pub user_data: Option<String>,
    #[serde(default)]
    pub config_drive: bool,
    pub networks: NetworkRequest,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<Vif>,
    #[serde(default)]
    pub fault: Option<Fault>,
    #[serde(default)]
    pub access_ipv4: String,
    #[serde(default)]
    pub access_ipv6: String,
    #[serde(default)]
    pub locked_reason: Option<String>,
    #[serde(default)]
    pub locked_by: Option<String>,
    #[serde(default)]
    pub requested_az: Option<String>,
    #[serde(default)]
    pub pending: Pending,
    /// os-server-password: the guest-encrypted password, base64 (set by the metadata service).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub scheduler_hints: serde_json::Map<String, serde_json::Value>,
    /// Why the reconciler's last attempt failed (kept while retrying).
    #[serde(default)]
    pub last_error: Option<String>,
}

/// A server as `GET /servers` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName {
    pub id: String,
    pub name: String,
}

impl From<Server> for ServerName {
    fn from(s: Server) -> ServerName {
        ServerName {
            id: s.id,
            name: s.name,
        }
    }
}

/// One server.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    pub vm_state: VmState,
    pub task_state: Option<TaskState>,
    pub power_state: i64,
    pub host: Option<String>,
    pub availability_zone: Option<String>,
    pub flavor_id: String,
    pub image_ref: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub locked: bool,
    pub reservation_id: String,
    pub launch_index: i64,
    pub generation: i64,
    pub attempts: i64,
    pub next_attempt_us: i64,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    pub launched_at_us: Option<i64>,
    pub terminated_at_us: Option<i64>,
    pub deleted: bool,
    pub deleted_at_us: Option<i64>,
    pub doc: ServerDoc,
}

impl Server {
    pub fn status(&self) -> &'static str {
        if self.deleted {
            return "DELETED";
        }
        status(self.vm_state, self.task_state)
    }

    /// Nova's `hostId`: sha224 of project id + host, hex; empty without a host.
    pub fn host_id(&self) -> String {
        use sha2::{Digest, Sha224};
        match &self.host {
            Some(h) if !h.is_empty() => hex_lower(&Sha224::digest(
                format!("{}{}", self.project_id, h).as_bytes(),
            )),
            _ => String::new(),
        }
    }

    /// `instance-0000000a`-style names are derived from a database integer upstream;
    /// here from the uuid's first 8 hex digits.
    pub fn instance_name(&self) -> String {
        format!("instance-{}", &self.id.replace('-', "")[..8])
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_novas_state_map() {
        assert_eq!(
            status(VmState::Building, Some(TaskState::Scheduling)),
            "BUILD"
        );
        assert_eq!(status(VmState::Active, None), "ACTIVE");
        assert_eq!(status(VmState::Active, Some(TaskState::Deleting)), "ACTIVE");
        assert_eq!(
            status(VmState::Active, Some(TaskState::Rebooting)),
            "REBOOT"
        );
        assert_eq!(
            status(VmState::Active, Some(TaskState::RebootingHard)),
            "HARD_REBOOT"
        );
        assert_eq!(status(VmState::Stopped, None), "SHUTOFF");
        assert_eq!(status(VmState::Resized, None), "VERIFY_RESIZE");
        assert_eq!(
            status(VmState::Resized, Some(TaskState::ResizeReverting)),
            "REVERT_RESIZE"
        );
        assert_eq!(
            status(VmState::Active, Some(TaskState::ResizePrep)),
            "RESIZE"
        );
        assert_eq!(status(VmState::Error, None), "ERROR");
        for t in [
            TaskState::Scheduling,
            TaskState::PoweringOff,
            TaskState::Deleting,
        ] {
            assert_eq!(TaskState::parse(t.as_str()), Some(t));
        }
    }
}
