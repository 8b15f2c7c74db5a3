//! The `prepare` driver: the whole host-side pipeline of a spawn, for real — image
//! cache, instance disks (overlay or flat, optionally LUKS-encrypted), config drive,
//! file injection, domain description (`libvirt.xml`) — without starting a
//! hypervisor. A server built with it is ACTIVE with power state "no state": what a
//! guest would receive can be inspected under `instances/<uuid>/`. The QEMU and
//! libvirt drivers will run the same [`Pipeline`] and then start the guest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::disk::ImageSource;
use crate::driver::{
    ConsoleEndpoint, ConsoleKind, Driver, DriverError, HostResources, InstanceInfo, PowerState,
    Result, SnapshotSpec, SpawnSpec,
};
use crate::pipeline::{Pipeline, PipelineConfig};

/// The record the driver keeps per guest (`instances/<uuid>/prepare.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    power_state: PowerState,
    vcpus: i64,
    memory_mb: i64,
}

const RECORD: &str = "prepare.json";

pub struct PrepareDriver {
    pipeline: Arc<Pipeline>,
    resources: HostResources,
    guests: Mutex<HashMap<String, Record>>,
}

impl PrepareDriver {
    /// Opens the driver over `cfg.instances_dir`, finding the guests prepared by an
    /// earlier run.
    pub fn open(
        cfg: PipelineConfig,
        source: Arc<dyn ImageSource>,
        resources: HostResources,
    ) -> Result<PrepareDriver> {
        let pipeline = Arc::new(Pipeline::open(cfg, source)?);
        let mut guests = HashMap::new();
        if let Ok(rd) = std::fs::read_dir(pipeline.instances_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('_') {
                    continue;
                }
                let path = e.path().join(RECORD);
                if let Ok(bytes) = std::fs::read(&path)
                    && let Ok(r) = serde_json::from_slice::<Record>(&bytes)
                {
                    guests.insert(name, r);
                } else if e.path().is_dir() && pipeline.instance_dir(&name).is_ok() {
                    // A spawn cut short by a crash: the agent spawns it again
                    // from scratch if the server still wants it.
                    tracing::info!(uuid = %name, "removing a half-prepared guest");
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(PrepareDriver {
            pipeline,
            resources,
            guests: Mutex::new(guests),
        })
    }

    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    fn record(&self, uuid: &str) -> Result<Record> {
        self.lock()
            .get(uuid)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.guests.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn save(&self, uuid: &str, r: Record) -> Result<()> {
        let path = self.pipeline.instance_dir(uuid)?.join(RECORD);
        let bytes = serde_json::to_vec(&r).map_err(|e| DriverError::Failed {
            op: "record",
            uuid: uuid.to_string(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &bytes).await?;
        self.lock().insert(uuid.to_string(), r);
        Ok(())
    }

    async fn set_power(&self, uuid: &str, state: PowerState) -> Result<()> {
        let mut r = self.record(uuid)?;
        r.power_state = state;
        self.save(uuid, r).await
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (path, bytes) = (path.to_path_buf(), bytes.to_vec());
    tokio::task::spawn_blocking(move || ferrostack_core::fsutil::write_atomic(&path, &bytes, 0o644))
        .await
        .map_err(std::io::Error::other)?
}

#[async_trait]
impl Driver for PrepareDriver {
    fn name(&self) -> &'static str {
        "prepare"
    }

    async fn host_resources(&self) -> Result<HostResources> {
        Ok(self.resources.clone())
    }

    async fn spawn(&self, spec: &SpawnSpec) -> Result<InstanceInfo> {
        if let Some(r) = self.lock().get(&spec.uuid).cloned() {
            return Ok(InstanceInfo {
                uuid: spec.uuid.clone(),
                power_state: r.power_state,
                vcpus: r.vcpus,
                memory_mb: r.memory_mb,
            });
        }
        if let Err(e) = self.pipeline.prepare(spec).await {
            // As upstream cleans up after a failed spawn: no half-made guest stays.
            if let Err(c) = self.pipeline.remove(&spec.uuid).await {
                tracing::warn!(uuid = %spec.uuid, error = %c, "cleanup after a failed spawn failed");
            }
            return Err(e);
        }
        let r = Record {
            power_state: PowerState::NoState,
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
        };
        self.save(&spec.uuid, r.clone()).await?;
        Ok(InstanceInfo {
            uuid: spec.uuid.clone(),
            power_state: r.power_state,
            vcpus: r.vcpus,
            memory_mb: r.memory_mb,
        })
    }

    async fn destroy(&self, uuid: &str) -> Result<()> {
        self.pipeline.remove(uuid).await?;
        self.lock().remove(uuid);
        Ok(())
    }

    async fn power_on(&self, uuid: &str) -> Result<()> {
        self.set_power(uuid, PowerState::NoState).await
    }

    async fn power_off(&self, uuid: &str) -> Result<()> {
        self.set_power(uuid, PowerState::Shutdown).await
    }

    async fn reboot(&self, uuid: &str, _hard: bool) -> Result<()> {
        self.record(uuid).map(|_| ())
    }

    async fn pause(&self, _uuid: &str) -> Result<()> {
        Err(DriverError::Unsupported(
            "pause (the prepare driver runs no hypervisor)",
        ))
    }

    async fn unpause(&self, _uuid: &str) -> Result<()> {
        Err(DriverError::Unsupported(
            "unpause (the prepare driver runs no hypervisor)",
        ))
    }

    async fn suspend(&self, _uuid: &str) -> Result<()> {
        Err(DriverError::Unsupported(
            "suspend (the prepare driver runs no hypervisor)",
        ))
    }

    async fn resume(&self, _uuid: &str) -> Result<()> {
        Err(DriverError::Unsupported(
            "resume (the prepare driver runs no hypervisor)",
        ))
    }

    async fn snapshot(&self, spec: &SnapshotSpec) -> Result<()> {
        self.record(&spec.uuid)?;
        self.pipeline.snapshot(spec, false).await
    }

    async fn resize(&self, uuid: &str, vcpus: i64, memory_mb: i64, root_gb: i64) -> Result<()> {
        let mut r = self.record(uuid)?;
        self.pipeline.grow_root(uuid, root_gb).await?;
        r.vcpus = vcpus;
        r.memory_mb = memory_mb;
        self.save(uuid, r).await
    }

    async fn console_output(&self, uuid: &str, tail_lines: Option<usize>) -> Result<String> {
        self.record(uuid)?;
        let path = self.pipeline.instance_dir(uuid)?.join("console.log");
        let text = match tokio::fs::read(&path).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(crate::driver::tail_lines(&text, tail_lines))
    }

    async fn console_endpoint(&self, _uuid: &str, _kind: ConsoleKind) -> Result<ConsoleEndpoint> {
        Err(DriverError::Unsupported(
            "a console (the prepare driver runs no hypervisor)",
        ))
    }

    async fn get_info(&self, uuid: &str) -> Result<InstanceInfo> {
        let r = self.record(uuid)?;
        Ok(InstanceInfo {
            uuid: uuid.to_string(),
            power_state: r.power_state,
            vcpus: r.vcpus,
            memory_mb: r.memory_mb,
        })
    }

    async fn list(&self) -> Result<Vec<InstanceInfo>> {
        Ok(self
            .lock()
            .iter()
            .map(|(uuid, r)| InstanceInfo {
                uuid: uuid.clone(),
                power_state: r.power_state,
                vcpus: r.vcpus,
                memory_mb: r.memory_mb,
            })
            .collect())
    }
}

/// This host's capacity for the `prepare` driver: CPUs and memory of the machine,
/// disk of the file system holding the instances.
pub fn host_resources(instances_dir: &Path) -> HostResources {
    let vcpus = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(1024);
    let local_gb = fs4::total_space(instances_dir)
        .map(|b| (b / (1 << 30)) as i64)
        .unwrap_or(10);
    HostResources {
        vcpus,
        memory_mb,
        local_gb,
        hypervisor_type: "QEMU".into(),
        hypervisor_version: 0,
        cpu_info: "{}".into(),
    }
}
