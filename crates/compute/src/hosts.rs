//! Hosts: each host agent registers its hypervisor's capacity and heartbeats; the
//! scheduler reads them; a host silent for `service_down_time` is down. The
//! [`HostLink`] seam is how the controller reaches a host's agent: in process
//! today, over HTTP for `ferrostack agent` later.

use async_trait::async_trait;
use ferrostack_virt::HostResources;

use crate::error::Result;
use crate::records::hosts as records;
use crate::records::{self as db};
use crate::servers::create::now_us;
use crate::service::Compute;

/// What the controller may ask of a host's agent directly.
#[async_trait]
pub trait HostLink: Send + Sync {
    /// The tail of a guest's console log.
    async fn console_output(&self, uuid: &str, lines: Option<usize>) -> Result<String>;
    /// Sets a user's password inside the guest (changePassword), or says why not:
    /// `Conflict` (no guest agent, the guest refused), `NotImplemented`.
    async fn set_admin_password(&self, uuid: &str, user: &str, password: &str) -> Result<()>;
    /// The host address forwarded to the guest's SSH port.
    async fn ssh_endpoint(&self, uuid: &str) -> Result<std::net::SocketAddr>;
    /// Where the guest's console of `kind` is now (`Conflict` when the guest does
    /// not run, `NotImplemented` when its driver has none).
    async fn console_endpoint(
        &self,
        uuid: &str,
        kind: ferrostack_virt::ConsoleKind,
    ) -> Result<ferrostack_virt::ConsoleEndpoint>;
    /// Gives the guest's graphical consoles a new password now (`None`: a random one).
    async fn set_console_password(
        &self,
        uuid: &str,
        password: Option<ferrostack_virt::domain::ConsolePassword>,
    ) -> Result<()>;
}

/// A host as the scheduler and the admin APIs see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Host {
    pub id: String,
    pub name: String,
    pub service_id: String,
    pub availability_zone: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    pub reserved_host_memory_mb: i64,
    pub reserved_host_disk_mb: i64,
    pub host_ip: String,
    pub last_seen_us: i64,
}

impl Compute {
    /// Registers (or refreshes) a host with its hypervisor's capacity.
    pub async fn register_host(&self, name: &str, az: &str, res: &HostResources) -> Result<()> {
        let c = &self.settings.compute;
        let now = now_us();
        let mut tx = self.db.begin_write().await?;
        records::register(
            &mut tx,
            &records::Registration {
                name,
                az,
                res,
                config: c,
                now_us: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The agent's periodic "I am alive".
    pub async fn heartbeat(&self, name: &str) -> Result<()> {
        records::heartbeat(&mut *db::acquire(&self.db).await?, name, now_us()).await
    }

    /// Whether a host counts as up (heard from within `service_down_time`).
    pub fn host_is_up(&self, h: &Host, now_us: i64) -> bool {
        !h.forced_down
            && now_us - h.last_seen_us
                <= (self.settings.compute.service_down_time as i64) * 1_000_000
    }

    /// Connects a host's agent so the controller can reach it.
    pub fn attach_host(&self, name: &str, link: std::sync::Arc<dyn HostLink>) {
        self.links
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), link);
    }

    pub(crate) fn link(&self, name: &str) -> Option<std::sync::Arc<dyn HostLink>> {
        self.links
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// The agent of the host a server is on.
    pub(crate) fn link_of(
        &self,
        s: &crate::servers::model::Server,
    ) -> Result<std::sync::Arc<dyn HostLink>> {
        let host = s.host.clone().unwrap_or_default();
        self.link(&host).ok_or_else(|| {
            crate::Error::Conflict(format!(
                "The host {host} of instance {} cannot be reached.",
                s.id
            ))
        })
    }

    /// `os-getConsoleOutput`.
    pub async fn console_output(
        &self,
        ctx: &ferrostack_core::RequestContext,
        id: &str,
        lines: Option<usize>,
    ) -> Result<String> {
        let s = self.get_server(ctx, id).await?;
        crate::servers::create::require_member(ctx, "os_compute_api:os-console-output")?;
        if s.vm_state == crate::servers::model::VmState::Building || s.host.is_none() {
            return Err(crate::Error::Conflict(format!(
                "Cannot 'get_console_output' instance {id} while it is in vm_state {}",
                s.vm_state.as_str()
            )));
        }
        let link = self.link_of(&s)?;
        // The driver's tail counts whole lines; Nova's counts the pieces between
        // newlines, so a log ending in one gives a last, empty piece: ask for one
        // line more and cut as Nova does.
        let out = link.console_output(id, lines.map(|n| n + 1)).await?;
        Ok(match lines {
            Some(n) => tail_pieces(&out, n),
            None => out,
        })
    }
}

impl crate::service::Compute {
    /// Where to reach a server's SSH from this host (ferrostack's extension for
    /// `ferrostack ssh`): anyone who may see the server may ask.
    pub async fn ssh_endpoint(
        &self,
        ctx: &ferrostack_core::RequestContext,
        id: &str,
    ) -> Result<std::net::SocketAddr> {
        let s = self.get_server(ctx, id).await?;
        use crate::servers::model::VmState;
        // a resized guest runs (on its new flavor) until it is confirmed or reverted
        if !matches!(s.vm_state, VmState::Active | VmState::Resized) {
            return Err(crate::Error::Conflict(format!(
                "Instance {id} is not running (vm_state {}).",
                s.vm_state.as_str()
            )));
        }
        let link = self.link_of(&s)?;
        link.ssh_endpoint(id).await
    }
}

/// The last `n` newline-separated pieces of a console log, as Nova's
/// `_tail_log` cuts it (`n` = 0: nothing).
pub fn tail_pieces(log: &str, n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let pieces: Vec<&str> = log.split('\n').collect();
    pieces[pieces.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::tail_pieces;

    #[test]
    fn console_tail_counts_pieces_as_nova() {
        let log = "one\ntwo\nthree\n";
        // tempest: length=3 must give exactly 3 pieces of split('\n')
        assert_eq!(tail_pieces(log, 3), "two\nthree\n");
        assert_eq!(tail_pieces(log, 3).split('\n').count(), 3);
        assert_eq!(tail_pieces(log, 10), log);
        assert_eq!(tail_pieces(log, 1), "");
        assert_eq!(tail_pieces(log, 0), "");
        assert_eq!(tail_pieces("a\nb", 1), "b");
    }
}
