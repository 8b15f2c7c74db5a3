//! Starting the compute control loops in this process: the scheduler, and (unless
//! `[compute] run_agent = false`) this host's agent with its hypervisor driver.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use ferrostack_compute::Compute;
use ferrostack_compute::agent::Agent;
use ferrostack_core::config::Config;
use ferrostack_virt::Driver;
use ferrostack_virt::fake::{FakeConfig, FakeDriver};

/// This machine's name, for `[compute] host = ""`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn driver(cfg: &Config) -> anyhow::Result<Arc<dyn Driver>> {
    let c = &cfg.compute;
    match c.driver.as_str() {
        "fake" => {
            let mut fc = FakeConfig {
                spawn_delay: Duration::from_millis(c.fake_spawn_delay_ms),
                state_dir: Some(cfg.state_dir.join("instances").join("_fake")),
                ..FakeConfig::default()
            };
            fc.resources.vcpus = c.fake_vcpus;
            fc.resources.memory_mb = c.fake_memory_mb;
            fc.resources.local_gb = c.fake_disk_gb;
            Ok(Arc::new(
                FakeDriver::new(fc).context("cannot open the fake driver's state")?,
            ))
        }
        other => anyhow::bail!(
            "unknown [compute] driver {other:?}: this release has the `fake` driver (QEMU and libvirt arrive later)"
        ),
    }
}

/// Starts the scheduler and, when configured, the in-process host agent.
pub async fn start_controller(
    cfg: &Config,
    compute: &Arc<Compute>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    compute.spawn_scheduler(stop.clone());
    if cfg.compute.run_agent {
        let host = if cfg.compute.host.is_empty() {
            hostname()
        } else {
            cfg.compute.host.clone()
        };
        let agent = Agent::new(
            compute.clone(),
            driver(cfg)?,
            host,
            cfg.compute.availability_zone.clone(),
        );
        agent
            .start(stop)
            .await
            .context("cannot start the host agent")?;
    }
    Ok(())
}
