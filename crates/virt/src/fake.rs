//! The fake driver: guests are entries in a map. Like upstream's fake driver it
//! exists for API, scheduler and scale tests. It can persist its guests (one small
//! file per guest under a directory) so that, like a real hypervisor, they outlive
//! a restart of the control plane; it can take time to spawn; and it fails on
//! purpose when a test asks: a guest whose metadata has `fake:fail` = `spawn`
//! (or a comma list of operation names) fails those operations, and
//! [`FakeDriver::fail_next`] fails the next call of an operation for one guest.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::driver::{
    ConsoleEndpoint, ConsoleKind, ConsoleTarget, Driver, DriverError, HostResources, InstanceInfo,
    PowerState, Result, SnapshotSpec, SpawnSpec,
};

/// The metadata key a test sets to make operations on a guest fail.
pub const FAIL_KEY: &str = "fake:fail";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Guest {
    uuid: String,
    name: String,
    power_state: PowerState,
    vcpus: i64,
    memory_mb: i64,
    root_gb: i64,
    fail: HashSet<String>,
    console: Vec<String>,
    /// Passwords set through changePassword (user → password), as a real guest
    /// would keep them; tests read them back with [`FakeDriver::password`].
    #[serde(default)]
    passwords: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub resources: HostResources,
    pub spawn_delay: Duration,
    /// Where guests are persisted; `None` = memory only.
    pub state_dir: Option<PathBuf>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            resources: HostResources {
                vcpus: 1000,
                memory_mb: 800_000,
                local_gb: 600_000,
                hypervisor_type: "fake".into(),
                hypervisor_version: 1000,
                cpu_info: "{}".into(),
            },
            spawn_delay: Duration::ZERO,
            state_dir: None,
        }
    }
}

pub struct FakeDriver {
    cfg: FakeConfig,
    guests: Mutex<HashMap<String, Guest>>,
    fail_once: Mutex<HashSet<(String, String)>>,
}

impl FakeDriver {
    /// A driver; with a state directory, the guests found there are loaded.
    pub fn new(cfg: FakeConfig) -> Result<FakeDriver> {
        let mut guests = HashMap::new();
        if let Some(dir) = &cfg.state_dir {
            std::fs::create_dir_all(dir)?;
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read(&path)?;
                    match serde_json::from_slice::<Guest>(&text) {
                        Ok(g) => {
                            guests.insert(g.uuid.clone(), g);
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "fake driver: unreadable guest file ignored");
                        }
                    }
                }
            }
        }
        Ok(FakeDriver {
            cfg,
            guests: Mutex::new(guests),
            fail_once: Mutex::new(HashSet::new()),
        })
    }

    /// The password changePassword last set for `user` in a guest.
    pub fn password(&self, uuid: &str, user: &str) -> Option<String> {
        self.guests()
            .get(uuid)
            .and_then(|g| g.passwords.get(user).cloned())
    }

    /// Makes the next `op` (e.g. `"power_off"`) on `uuid` fail once.
    pub fn fail_next(&self, op: &str, uuid: &str) {
        self.fail_once
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((op.to_string(), uuid.to_string()));
    }

    fn guests(&self) -> std::sync::MutexGuard<'_, HashMap<String, Guest>> {
        self.guests.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_fail(&self, op: &'static str, uuid: &str, g: Option<&Guest>) -> Result<()> {
        let once = self
            .fail_once
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(op.to_string(), uuid.to_string()));
        if once || g.is_some_and(|g| g.fail.contains(op)) {
            return Err(DriverError::Failed {
                op,
                uuid: uuid.to_string(),
                message: "injected failure (fake driver)".into(),
            });
        }
        Ok(())
    }

    /// Writes the guest's file (a temporary file renamed over the old one), off the
    /// async reactor.
    async fn persist(&self, g: &Guest) -> Result<()> {
        let Some(dir) = self.cfg.state_dir.clone() else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(g).map_err(std::io::Error::other)?;
        let uuid = g.uuid.clone();
        tokio::task::spawn_blocking(move || {
            let tmp = dir.join(format!(".{uuid}.tmp"));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, dir.join(format!("{uuid}.json")))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// Removes the guest's file, off the async reactor.
    async fn unpersist(&self, uuid: &str) -> Result<()> {
        let Some(dir) = self.cfg.state_dir.clone() else {
            return Ok(());
        };
        let path = dir.join(format!("{uuid}.json"));
        tokio::task::spawn_blocking(move || match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// Moves a guest from one of `from` power states to `to`.
    async fn transition(
        &self,
        op: &'static str,
        uuid: &str,
        from: &[PowerState],
        to: PowerState,
        line: &str,
    ) -> Result<()> {
        let changed = {
            let mut guests = self.guests();
            let g = guests
                .get_mut(uuid)
                .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
            self.check_fail(op, uuid, Some(g))?;
            if g.power_state == to {
                return Ok(());
            }
            if !from.contains(&g.power_state) {
                return Err(DriverError::InvalidState {
                    op,
                    uuid: uuid.to_string(),
                    state: g.power_state,
                });
            }
            g.power_state = to;
            g.console.push(line.to_string());
            g.clone()
        };
        self.persist(&changed).await
    }

    fn info(g: &Guest) -> InstanceInfo {
        InstanceInfo {
            uuid: g.uuid.clone(),
            power_state: g.power_state,
            vcpus: g.vcpus,
            memory_mb: g.memory_mb,
        }
    }
}

#[async_trait]
impl Driver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn host_resources(&self) -> Result<HostResources> {
        Ok(self.cfg.resources.clone())
    }

    async fn spawn(&self, spec: &SpawnSpec) -> Result<InstanceInfo> {
        if let Some(g) = self.guests().get(&spec.uuid) {
            return Ok(Self::info(g));
        }
        let fail: HashSet<String> = spec
            .metadata
            .get(FAIL_KEY)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        let probe = Guest {
            uuid: spec.uuid.clone(),
            name: spec.name.clone(),
            power_state: PowerState::Running,
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
            root_gb: spec.root_gb,
            fail,
            passwords: Default::default(),
            console: vec![
                format!("fake: booting {} ({})", spec.name, spec.uuid),
                format!("{} login:", spec.hostname),
            ],
        };
        self.check_fail("spawn", &spec.uuid, Some(&probe))?;
        if !self.cfg.spawn_delay.is_zero() {
            tokio::time::sleep(self.cfg.spawn_delay).await;
        }
        self.persist(&probe).await?;
        let info = Self::info(&probe);
        self.guests().insert(spec.uuid.clone(), probe);
        Ok(info)
    }

    async fn destroy(&self, uuid: &str) -> Result<()> {
        let g = self.guests().get(uuid).cloned();
        self.check_fail("destroy", uuid, g.as_ref())?;
        self.unpersist(uuid).await?;
        self.guests().remove(uuid);
        Ok(())
    }

    async fn power_on(&self, uuid: &str) -> Result<()> {
        self.transition(
            "power_on",
            uuid,
            &[
                PowerState::Shutdown,
                PowerState::Crashed,
                PowerState::NoState,
            ],
            PowerState::Running,
            "fake: powered on",
        )
        .await
    }

    async fn power_off(&self, uuid: &str) -> Result<()> {
        self.transition(
            "power_off",
            uuid,
            &[
                PowerState::Running,
                PowerState::Paused,
                PowerState::Suspended,
                PowerState::Crashed,
                PowerState::NoState,
            ],
            PowerState::Shutdown,
            "fake: powered off",
        )
        .await
    }

    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()> {
        let rebooted = {
            let mut guests = self.guests();
            let g = guests
                .get_mut(uuid)
                .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
            self.check_fail("reboot", uuid, Some(g))?;
            if !hard && g.power_state != PowerState::Running {
                return Err(DriverError::InvalidState {
                    op: "reboot",
                    uuid: uuid.to_string(),
                    state: g.power_state,
                });
            }
            g.power_state = PowerState::Running;
            g.console.push(format!(
                "fake: {} reboot",
                if hard { "hard" } else { "soft" }
            ));
            g.clone()
        };
        self.persist(&rebooted).await
    }

    async fn pause(&self, uuid: &str) -> Result<()> {
        self.transition(
            "pause",
            uuid,
            &[PowerState::Running],
            PowerState::Paused,
            "fake: paused",
        )
        .await
    }

    async fn unpause(&self, uuid: &str) -> Result<()> {
        self.transition(
            "unpause",
            uuid,
            &[PowerState::Paused],
            PowerState::Running,
            "fake: unpaused",
        )
        .await
    }

    async fn suspend(&self, uuid: &str) -> Result<()> {
        self.transition(
            "suspend",
            uuid,
            &[PowerState::Running, PowerState::Paused],
            PowerState::Suspended,
            "fake: suspended",
        )
        .await
    }

    async fn resume(&self, uuid: &str) -> Result<()> {
        self.transition(
            "resume",
            uuid,
            &[PowerState::Suspended],
            PowerState::Running,
            "fake: resumed",
        )
        .await
    }

    async fn set_admin_password(&self, uuid: &str, user: &str, password: &str) -> Result<()> {
        let current = self.guests().get(uuid).cloned();
        let Some(mut g) = current else {
            return Err(DriverError::NotFound(uuid.to_string()));
        };
        self.check_fail("set_admin_password", uuid, Some(&g))?;
        if g.power_state != PowerState::Running {
            return Err(DriverError::InvalidState {
                op: "set password",
                uuid: uuid.to_string(),
                state: g.power_state,
            });
        }
        g.passwords.insert(user.to_string(), password.to_string());
        g.console.push(format!("fake: password of {user} changed"));
        self.persist(&g).await?;
        self.guests().insert(uuid.to_string(), g);
        Ok(())
    }

    async fn snapshot(&self, spec: &SnapshotSpec) -> Result<()> {
        let g = self
            .guests()
            .get(&spec.uuid)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(spec.uuid.clone()))?;
        self.check_fail("snapshot", &spec.uuid, Some(&g))?;
        // A small, valid raw image: the fake guest's "disk".
        let mut bytes = vec![0u8; 1024 * 1024];
        let tag = format!("ferrostack fake snapshot of {}\n", g.uuid);
        bytes[..tag.len()].copy_from_slice(tag.as_bytes());
        let dest = spec.dest.clone();
        tokio::task::spawn_blocking(move || std::fs::write(dest, bytes))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    async fn resize(&self, uuid: &str, vcpus: i64, memory_mb: i64, root_gb: i64) -> Result<()> {
        let resized = {
            let mut guests = self.guests();
            let g = guests
                .get_mut(uuid)
                .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
            self.check_fail("resize", uuid, Some(g))?;
            g.vcpus = vcpus;
            g.memory_mb = memory_mb;
            g.root_gb = root_gb;
            g.console.push("fake: resized".into());
            g.clone()
        };
        self.persist(&resized).await
    }

    async fn console_output(&self, uuid: &str, tail_lines: Option<usize>) -> Result<String> {
        let guests = self.guests();
        let g = guests
            .get(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        let skip = tail_lines.map_or(0, |n| g.console.len().saturating_sub(n));
        // Like upstream's fake driver: lines joined, no final newline (so Nova's
        // tail of n pieces is the last n lines).
        Ok(g.console[skip..].join("\n"))
    }

    /// Like upstream's fake driver, a fake guest "has" consoles so the API around
    /// them (tokens, URLs, revocation) can be exercised at scale; they lead
    /// nowhere (a unix socket that does not exist), so a proxy connect fails.
    async fn console_endpoint(&self, uuid: &str, kind: ConsoleKind) -> Result<ConsoleEndpoint> {
        let running = self
            .guests()
            .get(uuid)
            .map(|g| Self::info(g).power_state)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        if running != PowerState::Running {
            return Err(DriverError::InvalidState {
                op: "console",
                uuid: uuid.to_string(),
                state: running,
            });
        }
        let name = match kind {
            ConsoleKind::Vnc => "vnc",
            ConsoleKind::Spice => "spice",
            ConsoleKind::Serial => "serial",
        };
        Ok(ConsoleEndpoint {
            kind,
            target: ConsoleTarget::Unix(format!("/nonexistent/fake-console/{uuid}.{name}").into()),
            password: None,
            user_password: false,
        })
    }

    async fn set_console_password(
        &self,
        uuid: &str,
        _password: Option<&crate::domain::ConsolePassword>,
    ) -> Result<()> {
        self.get_info(uuid).await.map(|_| ())
    }

    async fn get_info(&self, uuid: &str) -> Result<InstanceInfo> {
        self.guests()
            .get(uuid)
            .map(Self::info)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))
    }

    async fn list(&self) -> Result<Vec<InstanceInfo>> {
        Ok(self.guests().values().map(Self::info).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(uuid: &str) -> SpawnSpec {
        SpawnSpec {
            uuid: uuid.into(),
            name: "vm".into(),
            hostname: "vm".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            vcpus: 1,
            memory_mb: 512,
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            image_id: None,
            flavor_extra_specs: Default::default(),
            image_properties: Default::default(),
            metadata: Default::default(),
            key_data: None,
            files: vec![],
            user_data: None,
            config_drive: false,
            admin_password: None,
            nics: vec![],
            availability_zone: "nova".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn spawn_is_idempotent_and_destroy_of_missing_guest_succeeds() {
        let d = FakeDriver::new(FakeConfig::default()).unwrap();
        d.spawn(&spec("a")).await.unwrap();
        d.spawn(&spec("a")).await.unwrap();
        assert_eq!(d.list().await.unwrap().len(), 1);
        d.destroy("a").await.unwrap();
        d.destroy("a").await.unwrap();
        assert!(matches!(
            d.get_info("a").await,
            Err(DriverError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn power_transitions_follow_the_guest_state() {
        let d = FakeDriver::new(FakeConfig::default()).unwrap();
        d.spawn(&spec("a")).await.unwrap();
        d.pause("a").await.unwrap();
        assert!(matches!(
            d.suspend("a").await.map(|_| ()).and(d.unpause("a").await),
            Err(DriverError::InvalidState { .. })
        ));
        d.resume("a").await.unwrap();
        d.power_off("a").await.unwrap();
        assert_eq!(
            d.get_info("a").await.unwrap().power_state,
            PowerState::Shutdown
        );
        assert!(d.reboot("a", false).await.is_err());
        d.reboot("a", true).await.unwrap();
        assert_eq!(
            d.get_info("a").await.unwrap().power_state,
            PowerState::Running
        );
    }

    #[tokio::test]
    async fn injected_failures_fail_the_named_operations() {
        let d = FakeDriver::new(FakeConfig::default()).unwrap();
        let mut s = spec("a");
        s.metadata.insert(FAIL_KEY.into(), "spawn".into());
        assert!(matches!(d.spawn(&s).await, Err(DriverError::Failed { .. })));
        d.spawn(&spec("b")).await.unwrap();
        d.fail_next("power_off", "b");
        assert!(d.power_off("b").await.is_err());
        d.power_off("b").await.unwrap();
    }

    #[tokio::test]
    async fn persisted_guests_survive_a_new_driver() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FakeConfig {
            state_dir: Some(dir.path().to_path_buf()),
            ..FakeConfig::default()
        };
        let d = FakeDriver::new(cfg.clone()).unwrap();
        d.spawn(&spec("a")).await.unwrap();
        d.spawn(&spec("b")).await.unwrap();
        d.power_off("b").await.unwrap();
        d.destroy("a").await.unwrap();
        drop(d);
        let d = FakeDriver::new(cfg).unwrap();
        let all = d.list().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].power_state, PowerState::Shutdown);
    }
}
