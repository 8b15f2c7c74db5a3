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
use ferrostack_virt::domain::VirtType;
use ferrostack_virt::fake::{FakeConfig, FakeDriver};
use ferrostack_virt::libvirt::{LibvirtConfig, LibvirtDriver};
use ferrostack_virt::pipeline::{Pipeline, PipelineConfig};
use ferrostack_virt::prepare::{self, PrepareDriver};
use ferrostack_virt::qemu::{QemuConfig, QemuDriver};
use std::path::PathBuf;

/// This machine's name, for `[compute] host = ""`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `[host]` as the spawn pipeline wants it.
pub fn pipeline_config(cfg: &Config) -> anyhow::Result<PipelineConfig> {
    let h = &cfg.host;
    Ok(PipelineConfig {
        instances_dir: cfg.state_dir.join("instances"),
        disk_keys_dir: cfg.state_dir.join("keys").join("disk-kek"),
        qemu_img: PathBuf::from("qemu-img"),
        qemu_img_timeout: Duration::from_secs(h.qemu_img_timeout.max(1)),
        force_raw_images: h.force_raw_images,
        use_cow_images: h.use_cow_images,
        config_drive_format: h
            .config_drive_format
            .parse()
            .map_err(|e| anyhow::anyhow!("host.config_drive_format: {e}"))?,
        force_config_drive: h.force_config_drive,
        inject_partition: h.inject_partition,
        inject_key: h.inject_key,
        inject_password: h.inject_password,
        inject_backend: h
            .inject_backend
            .parse()
            .map_err(|e| anyhow::anyhow!("host.inject_backend: {e}"))?,
        dhcp_domain: Some(h.dhcp_domain.clone()).filter(|d| !d.is_empty()),
        vnc: cfg.vnc.enabled,
        spice: cfg.spice.enabled,
        vnc_listen: cfg.vnc.server_listen.clone(),
        spice_listen: cfg.spice.server_listen.clone(),
        virt_type: virt_type(&h.virt_type),
        luks_iter_time_ms: h.luks_iter_time_ms,
        user_mode: false,
    })
}

/// `[host] virt_type`; `auto` is KVM only when a probe shows KVM runs guests.
fn virt_type(want: &str) -> VirtType {
    match want {
        "kvm" => VirtType::Kvm,
        "qemu" => VirtType::Qemu,
        _ => {
            if ferrostack_virt::probe::kvm_runs_guests() {
                VirtType::Kvm
            } else {
                VirtType::Qemu
            }
        }
    }
}

/// `[compute] driver = auto`: `qemu` when the emulator is installed and boots a
/// guest (the TCG probe: a boot sector that prints a marker), else `fake`.
fn auto_driver(cfg: &Config) -> &'static str {
    let qemu = PathBuf::from(&cfg.host.qemu_binary);
    if ferrostack_virt::probe::accel_runs_guests(&qemu, "tcg", Duration::from_secs(20)) {
        tracing::info!(qemu = %qemu.display(), "[compute] driver = auto: QEMU works here, using the qemu driver");
        "qemu"
    } else {
        tracing::warn!(
            qemu = %qemu.display(),
            "[compute] driver = auto: no working QEMU (scripts/host-tools installs it): \
             servers run on the FAKE driver, nothing boots (hypervisor_type shows \"fake\")"
        );
        "fake"
    }
}

/// Removes unused cached images every `[host] image_cache_manager_interval`.
fn spawn_cache_pruner(cfg: &Config, pipeline: Arc<Pipeline>, mut stop: watch::Receiver<bool>) {
    let every = cfg.host.image_cache_manager_interval;
    if every == 0 {
        return;
    }
    let min_age = Duration::from_secs(cfg.host.remove_unused_original_minimum_age_seconds);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match pipeline.prune_cache(min_age).await {
                        Ok(gone) if !gone.is_empty() => {
                            tracing::info!(removed = gone.len(), "image cache pruned");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "image cache pruning failed"),
                    }
                }
                _ = stop.changed() => break,
            }
        }
    });
}

async fn driver(
    cfg: &Config,
    compute: &Arc<Compute>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<(Arc<dyn Driver>, &'static str)> {
    let name = match cfg.compute.driver.as_str() {
        "auto" => auto_driver(cfg),
        "qemu" => "qemu",
        "libvirt" => "libvirt",
        "fake" => "fake",
        "prepare" => "prepare",
        other => anyhow::bail!("unknown [compute] driver {other:?}"),
    };
    Ok((driver_named(cfg, name, compute, stop).await?, name))
}

async fn driver_named(
    cfg: &Config,
    name: &str,
    compute: &Arc<Compute>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Arc<dyn Driver>> {
    let c = &cfg.compute;
    match name {
        "qemu" => {
            let pc = pipeline_config(cfg)?;
            std::fs::create_dir_all(&pc.instances_dir)
                .with_context(|| format!("cannot create {}", pc.instances_dir.display()))?;
            let h = &cfg.host;
            let qc = QemuConfig {
                binary: PathBuf::from(&h.qemu_binary),
                user: h.qemu_user.clone(),
                sandbox: h.qemu_sandbox,
                shutdown_timeout: Duration::from_secs(c.shutdown_timeout),
                shutdown_retry_interval: Duration::from_secs(c.shutdown_retry_interval.max(1)),
                console_log_max_bytes: h.console_log_max_bytes.max(4096),
            };
            let d = QemuDriver::open(qc, pc, compute.image_source())
                .await
                .context("cannot open the qemu driver")?;
            spawn_cache_pruner(cfg, d.pipeline().clone(), stop.clone());
            Ok(d)
        }
        "libvirt" => {
            let pc = pipeline_config(cfg)?;
            std::fs::create_dir_all(&pc.instances_dir)
                .with_context(|| format!("cannot create {}", pc.instances_dir.display()))?;
            let lc = LibvirtConfig {
                uri: cfg.host.libvirt_uri.clone(),
                shutdown_timeout: Duration::from_secs(c.shutdown_timeout),
                shutdown_retry_interval: Duration::from_secs(c.shutdown_retry_interval.max(1)),
                ..LibvirtConfig::default()
            };
            let d = LibvirtDriver::open(lc, pc, compute.image_source())
                .await
                .context("cannot open the libvirt driver")?;
            spawn_cache_pruner(cfg, d.pipeline().clone(), stop.clone());
            Ok(d)
        }
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
        "prepare" => {
            let pc = pipeline_config(cfg)?;
            std::fs::create_dir_all(&pc.instances_dir)
                .with_context(|| format!("cannot create {}", pc.instances_dir.display()))?;
            let res = prepare::host_resources(&pc.instances_dir);
            let d = PrepareDriver::open(pc, compute.image_source(), res)
                .context("cannot open the prepare driver")?;
            spawn_cache_pruner(cfg, d.pipeline().clone(), stop.clone());
            Ok(Arc::new(d))
        }
        other => anyhow::bail!(
            "unknown [compute] driver {other:?}: this release has `auto`, `qemu`, `libvirt`, `fake` and `prepare`"
        ),
    }
}

/// Starts the scheduler and, when configured, the in-process host agent.
/// Starts the scheduler and (with `run_agent`) this host's agent; returns the
/// name of the driver the agent runs (`None` without an agent).
pub async fn start_controller(
    cfg: &Config,
    compute: &Arc<Compute>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<&'static str>> {
    compute.spawn_scheduler(stop.clone());
    if cfg.compute.run_agent {
        let host = if cfg.compute.host.is_empty() {
            hostname()
        } else {
            cfg.compute.host.clone()
        };
        let (d, name) = driver(cfg, compute, &stop).await?;
        let agent = Agent::new(
            compute.clone(),
            d,
            host,
            cfg.compute.availability_zone.clone(),
        );
        agent
            .start(stop)
            .await
            .context("cannot start the host agent")?;
        return Ok(Some(name));
    }
    Ok(None)
}
