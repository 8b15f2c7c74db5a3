//! The `qemu` driver: real guests. A spawn runs the host-side [`Pipeline`] (image
//! cache, disks, config drive or injection, the typed [`GuestDomain`]), keeps the
//! domain as `domain.json`, and starts QEMU from it: detached (its own process
//! group, stdout/stderr to `qemu.log`), with `-S`, a pidfile and a QMP socket in
//! the instance directory; then power-off/reboot actions, console passwords and
//! `cont` over QMP. ferrostack can crash, be killed or upgraded: the guests run
//! on, and [`QemuDriver::open`] finds them again (pidfile, a `/proc` check that the
//! pid is this guest's QEMU, QMP). One [`monitor::Monitor`] task per running guest
//! owns its QMP connection and notices the process's end at once; an end nobody
//! asked for becomes a [`GuestEvent`] for the agent.
//!
//! Running as root, QEMU drops to an unprivileged user (`-run-with user=`) after
//! it has opened its files, inside QEMU's seccomp sandbox (everything but
//! `elevateprivileges=deny`, which would forbid that drop). Disk passphrases reach
//! it as 0600 files that are removed as soon as it has opened the disks; console
//! passwords only over QMP. Suspend saves the guest's memory into its qcow2 disk
//! (an internal snapshot) and `-loadvm` brings it back, so nothing has to be
//! reopened by the unprivileged process and the state survives any restart.

pub mod agent;
pub mod console;
pub mod monitor;
pub mod process;
pub mod qmp;
pub mod record;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::disk::ImageSource;
use crate::domain::{ConsolePassword, GraphicsKind, GraphicsListen, GuestDomain, NicBackend};
use crate::driver::{
    ConsoleEndpoint, ConsoleKind, ConsoleTarget, Driver, DriverError, GuestEvent, HostResources,
    InstanceInfo, PowerState, Result, SnapshotSpec, SpawnSpec, StopCause, tail_lines,
};
use crate::pipeline::{Pipeline, PipelineConfig};
use monitor::{ExitReason, Monitor, RunState};
use process::QemuBinary;
use record::{RunRecord, SUSPEND_TAG};

/// How the driver runs QEMU.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// `qemu-system-x86_64` (a name is looked up on `PATH`).
    pub binary: PathBuf,
    /// The user QEMU runs as when ferrostack runs as root.
    pub user: String,
    /// QEMU's seccomp sandbox.
    pub sandbox: bool,
    /// A clean stop's ACPI power-off waits this long before QEMU is made to quit
    /// (Nova's `shutdown_timeout`; 0 = quit at once).
    pub shutdown_timeout: Duration,
    /// The power button is pressed again this often (`shutdown_retry_interval`).
    pub shutdown_retry_interval: Duration,
    /// The serial log is rotated past this size.
    pub console_log_max_bytes: u64,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            binary: PathBuf::from("qemu-system-x86_64"),
            user: "ferrostack-qemu".into(),
            sandbox: true,
            shutdown_timeout: Duration::from_secs(60),
            shutdown_retry_interval: Duration::from_secs(10),
            console_log_max_bytes: 1 << 20,
        }
    }
}

/// One guest the driver knows (its directory holds a `domain.json`).
struct Slot {
    uuid: String,
    dir: PathBuf,
    /// Serialises the driver's operations on this guest.
    op: tokio::sync::Mutex<()>,
    state: Mutex<SlotState>,
    /// An operation is stopping the process itself: its end is no news.
    stopping: AtomicBool,
}

struct SlotState {
    monitor: Option<Monitor>,
    run: RunRecord,
    vcpus: i64,
    memory_mb: i64,
    /// A QEMU found running whose monitor could not be reached (yet).
    orphan_pid: Option<u32>,
    /// The password the running QEMU's consoles ask for: the owner's
    /// `spice_passwd`, or a random one set at start or re-attach that only the
    /// console proxy knows.
    console_password: Option<ConsolePassword>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn monitor(&self) -> Option<Monitor> {
        self.lock().monitor.clone()
    }

    fn run(&self) -> RunRecord {
        self.lock().run.clone()
    }

    async fn save_run(&self, run: RunRecord) -> Result<()> {
        record::save_run(&self.dir, &run).await?;
        self.lock().run = run;
        Ok(())
    }

    fn power_state(&self) -> PowerState {
        let st = self.lock();
        match st.monitor.as_ref().map(Monitor::state) {
            Some(RunState::Running) => PowerState::Running,
            Some(RunState::Paused | RunState::Prelaunch) => PowerState::Paused,
            Some(RunState::Exited(_)) | None if st.orphan_pid.is_some() => PowerState::Running,
            Some(RunState::Exited(_)) | None if st.run.suspended => PowerState::Suspended,
            Some(RunState::Exited(_)) | None => PowerState::Shutdown,
        }
    }

    fn info(&self) -> InstanceInfo {
        let power_state = self.power_state();
        let st = self.lock();
        InstanceInfo {
            uuid: self.uuid.clone(),
            power_state,
            vcpus: st.vcpus,
            memory_mb: st.memory_mb,
        }
    }
}

pub struct QemuDriver {
    pipeline: Arc<Pipeline>,
    cfg: QemuConfig,
    bin: QemuBinary,
    /// `-run-with user=` (when ferrostack is root).
    run_as: Option<String>,
    resources: HostResources,
    boot_id: String,
    guests: Mutex<HashMap<String, Arc<Slot>>>,
    events: mpsc::UnboundedSender<GuestEvent>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<GuestEvent>>>,
}

fn failed(op: &'static str, uuid: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Failed {
        op,
        uuid: uuid.to_string(),
        message: e.to_string(),
    }
}

impl QemuDriver {
    /// Opens the driver: probes QEMU, opens the pipeline (with user-mode wiring),
    /// and finds every guest an earlier run left, re-attaching to the running ones.
    pub async fn open(
        cfg: QemuConfig,
        mut pcfg: PipelineConfig,
        source: Arc<dyn ImageSource>,
    ) -> Result<Arc<QemuDriver>> {
        let bin = QemuBinary::probe(&cfg.binary).ok_or_else(|| {
            failed(
                "open",
                "-",
                format!(
                    "{} does not run (scripts/host-tools installs QEMU)",
                    cfg.binary.display()
                ),
            )
        })?;
        if pcfg.spice && !bin.spice {
            tracing::warn!(
                "this QEMU has no SPICE module (Debian: qemu-system-modules-spice): SPICE consoles are off"
            );
            pcfg.spice = false;
        }
        pcfg.user_mode = true;
        let run_as = if process::running_as_root() {
            if process::user_exists(&cfg.user) {
                Some(cfg.user.clone())
            } else {
                tracing::warn!(
                    user = %cfg.user,
                    "the QEMU user does not exist (scripts/host-tools creates it): guests run as nobody"
                );
                Some("nobody".to_string())
            }
        } else {
            None
        };
        let mut resources = crate::prepare::host_resources(&pcfg.instances_dir);
        resources.hypervisor_type = "QEMU".into();
        resources.hypervisor_version = bin.version_code();
        resources.cpu_info = json!({
            "arch": "x86_64",
            "accel": pcfg.virt_type.as_str(),
            "topology": {"sockets": 1, "cores": resources.vcpus, "threads": 1},
        })
        .to_string();
        let instances = pcfg.instances_dir.clone();
        let pipeline = Arc::new(Pipeline::open(pcfg, source)?);
        let (events, rx) = mpsc::unbounded_channel();
        let d = Arc::new(QemuDriver {
            pipeline,
            cfg,
            bin,
            run_as,
            resources,
            boot_id: process::boot_id(),
            guests: Mutex::new(HashMap::new()),
            events,
            events_rx: Mutex::new(Some(rx)),
        });
        d.find_guests(&instances).await;
        tracing::info!(
            qemu = %d.bin.path.display(),
            version = ?d.bin.version,
            user = d.run_as.as_deref().unwrap_or("(ferrostack's own)"),
            guests = d.guests().len(),
            "qemu driver ready"
        );
        spawn_housekeeping(Arc::downgrade(&d));
        Ok(d)
    }

    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    fn guests(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.guests.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, uuid: &str) -> Result<Arc<Slot>> {
        self.guests()
            .get(uuid)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))
    }

    fn new_slot(
        &self,
        uuid: &str,
        dir: PathBuf,
        domain: &GuestDomain,
        run: RunRecord,
    ) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            uuid: uuid.to_string(),
            dir,
            op: tokio::sync::Mutex::new(()),
            state: Mutex::new(SlotState {
                monitor: None,
                run,
                vcpus: i64::from(domain.vcpus),
                memory_mb: domain.memory_mb as i64,
                orphan_pid: None,
                console_password: None,
            }),
            stopping: AtomicBool::new(false),
        });
        self.guests().insert(uuid.to_string(), slot.clone());
        slot
    }

    /// Every instance directory with a `domain.json`: running guests are
    /// re-attached; guests that should run but do not are reported (a crash while
    /// ferrostack was away, or a host reboot); half-prepared directories (a crash
    /// before the domain was written) are removed, as the next spawn redoes them.
    async fn find_guests(&self, instances: &Path) {
        let Ok(rd) = std::fs::read_dir(instances) else {
            return;
        };
        for e in rd.flatten() {
            let uuid = e.file_name().to_string_lossy().to_string();
            if uuid.starts_with('_') || uuid.starts_with('.') || !e.path().is_dir() {
                continue;
            }
            let Ok(dir) = self.pipeline.instance_dir(&uuid) else {
                continue;
            };
            let domain = match record::load_domain(&dir) {
                Ok(d) => d,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    tracing::info!(uuid, "removing a half-prepared guest");
                    if let Err(err) = self.pipeline.remove(&uuid).await {
                        tracing::warn!(uuid, error = %err, "could not remove it");
                    }
                    continue;
                }
                Err(err) => {
                    tracing::error!(uuid, error = %err, "unreadable domain.json: guest ignored");
                    continue;
                }
            };
            let run = record::load_run(&dir);
            let slot = self.new_slot(&uuid, dir.clone(), &domain, run.clone());
            let pid = process::read_pidfile(&dir.join("qemu.pid")).or(run.pid);
            match pid.filter(|p| process::is_guest_process(*p, &uuid)) {
                Some(pid) => {
                    if let Err(err) = self.attach(&slot, pid).await {
                        tracing::warn!(uuid, pid, error = %err, "running guest found, its monitor not reachable yet");
                        slot.lock().orphan_pid = Some(pid);
                    } else {
                        tracing::info!(uuid, pid, "re-attached to a running guest");
                    }
                }
                None if run.running => {
                    let rebooted = !run.boot_id.is_empty() && run.boot_id != self.boot_id;
                    let mut r = run;
                    r.running = false;
                    r.pid = None;
                    if let Err(err) = slot.save_run(r).await {
                        tracing::warn!(uuid, error = %err, "could not record the stop");
                    }
                    let (cause, detail) = if rebooted {
                        (
                            StopCause::HostRebooted,
                            "the host rebooted while the guest ran".to_string(),
                        )
                    } else {
                        (
                            StopCause::Crashed,
                            "the QEMU process of the guest ended while ferrostack was not running"
                                .to_string(),
                        )
                    };
                    tracing::warn!(uuid, ?cause, "a guest that should run was found stopped");
                    let _ = self.events.send(GuestEvent::Stopped {
                        uuid,
                        cause,
                        detail,
                    });
                }
                None => {}
            }
        }
    }

    /// Takes over a running QEMU's monitor and follows its end.
    async fn attach(&self, slot: &Arc<Slot>, pid: u32) -> Result<()> {
        let m = Monitor::attach(&slot.dir.join("qmp.sock"), pid, None)
            .await
            .map_err(|e| failed("attach", &slot.uuid, e))?;
        // A random console password died with the process that set it: set the
        // guest's consoles' password again (the owner's stays the same).
        if let Ok(domain) = record::load_domain(&slot.dir) {
            let pw = console_password_of(&domain);
            match apply_console_password(&m, &domain, &pw).await {
                Ok(()) => slot.lock().console_password = Some(pw),
                Err(e) => {
                    tracing::warn!(uuid = %slot.uuid, error = %e, "console password not set")
                }
            }
        }
        {
            let mut st = slot.lock();
            st.monitor = Some(m.clone());
            st.orphan_pid = None;
        }
        self.follow(slot.clone(), m);
        Ok(())
    }

    /// Watches a monitor until its process ends; an end no operation asked for is
    /// recorded and reported.
    fn follow(&self, slot: Arc<Slot>, m: Monitor) {
        let events = self.events.clone();
        tokio::spawn(async move {
            let exit = loop {
                if let Some(e) = m.wait_exit(Duration::from_secs(3600)).await {
                    break e;
                }
                if m.watch().has_changed().is_err() {
                    return;
                }
            };
            {
                let mut st = slot.lock();
                if st.monitor.as_ref().map(Monitor::pid) == Some(m.pid()) {
                    st.monitor = None;
                }
            }
            if slot.stopping.load(Ordering::SeqCst) {
                return;
            }
            let _op = slot.op.lock().await;
            if slot.monitor().is_some() {
                return; // started again meanwhile
            }
            let mut run = slot.run();
            run.running = false;
            run.pid = None;
            if let Err(e) = slot.save_run(run).await {
                tracing::warn!(uuid = %slot.uuid, error = %e, "could not record the stop");
            }
            let cause = match exit.reason {
                ExitReason::GuestShutdown => StopCause::GuestShutdown,
                _ => StopCause::Crashed,
            };
            tracing::warn!(uuid = %slot.uuid, ?cause, detail = %exit.detail, "guest stopped on its own");
            let _ = events.send(GuestEvent::Stopped {
                uuid: slot.uuid.clone(),
                cause,
                detail: exit.detail,
            });
        });
    }

    /// The process options around the domain's command line.
    fn process_args(&self, dir: &Path, suspended: bool) -> Vec<String> {
        let mut a = vec![
            "-S".to_string(),
            "-pidfile".into(),
            dir.join("qemu.pid").to_string_lossy().into_owned(),
            // relative to QEMU's working directory, the instance directory
            "-qmp".into(),
            "unix:qmp.sock,server=on,wait=off".into(),
            "-msg".into(),
            "timestamp=on".into(),
        ];
        if self.cfg.sandbox {
            a.extend([
                "-sandbox".into(),
                "on,obsolete=deny,spawn=deny,resourcecontrol=deny".into(),
            ]);
        }
        if let Some(u) = &self.run_as {
            a.extend(["-run-with".into(), format!("user={u}")]);
        }
        if suspended {
            a.extend(["-loadvm".into(), SUSPEND_TAG.into()]);
        }
        a
    }

    /// Starts the guest's QEMU from `domain.json` and brings it to running (or
    /// paused). The caller holds the slot's operation lock.
    async fn start(&self, slot: &Arc<Slot>) -> Result<()> {
        if slot.monitor().is_some() {
            return Ok(());
        }
        let uuid = slot.uuid.as_str();
        let mut domain = record::load_domain(&slot.dir).map_err(|e| failed("start", uuid, e))?;
        let mut run = slot.run();
        let console_password = console_password_of(&domain);
        slot.stopping.store(true, Ordering::SeqCst);
        let r = self
            .launch(slot, &mut domain, &mut run, &console_password)
            .await;
        slot.stopping.store(false, Ordering::SeqCst);
        let m = r?;
        slot.lock().console_password = Some(console_password);
        run.running = true;
        run.boot_id = self.boot_id.clone();
        run.pid = Some(m.pid());
        slot.save_run(run).await?;
        Ok(())
    }

    async fn launch(
        &self,
        slot: &Arc<Slot>,
        domain: &mut GuestDomain,
        run: &mut RunRecord,
        console_password: &ConsolePassword,
    ) -> Result<Monitor> {
        let uuid = slot.uuid.as_str();
        let dir = &slot.dir;
        let (secrets, guards) = self.pipeline.disk_secrets(uuid, domain)?;
        let mut port = run.ssh_port;
        run.spice_port = pick_spice_port(domain, run.spice_port)
            .map_err(|e| failed("start", uuid, format!("no free SPICE port: {e}")))?;
        let (child, pid) = loop {
            set_ssh_port(domain, port.unwrap_or(0));
            let mut argv = sockets_relative_to(domain, dir)
                .to_qemu_argv(&secrets)
                .map_err(|e| failed("start", uuid, e))?;
            argv.extend(self.process_args(dir, run.suspended));
            for stale in ["qmp.sock", "qemu.pid"] {
                let _ = std::fs::remove_file(dir.join(stale));
            }
            let log = dir.join("qemu.log");
            let mut child = process::launch(&self.bin.path, &argv, dir, &log)
                .map_err(|e| failed("start", uuid, format!("{}: {e}", self.bin.path.display())))?;
            let pid = child.id().unwrap_or(0);
            match wait_for_socket(&mut child, &dir.join("qmp.sock")).await {
                Ok(()) => break (child, pid),
                Err(status) => {
                    let why = process::log_tail(&log);
                    if port.is_some() && why.contains("host forwarding") {
                        tracing::info!(uuid, "the guest's SSH port is taken now: a new one");
                        port = None;
                        continue;
                    }
                    return Err(failed(
                        "start",
                        uuid,
                        format!("QEMU did not start ({status}): {why}"),
                    ));
                }
            }
        };
        let qemu_said = || {
            let t = process::log_tail(&dir.join("qemu.log"));
            if t.is_empty() {
                String::new()
            } else {
                format!(" (QEMU: {t})")
            }
        };
        let m = match attach_new(&dir.join("qmp.sock"), pid, child).await {
            Ok(m) => m,
            Err(e) => {
                process::kill9(pid);
                return Err(failed("start", uuid, format!("{e}{}", qemu_said())));
            }
        };
        slot.lock().monitor = Some(m.clone());
        self.follow(slot.clone(), m.clone());
        let setup = async {
            // The disks are open once QMP answers: the passphrase files can go.
            drop(guards);
            m.execute(
                "set-action",
                Some(json!({"shutdown": "poweroff", "reboot": "reset"})),
            )
            .await?;
            apply_console_password(&m, domain, console_password).await?;
            let has_forward = domain
                .nics
                .iter()
                .any(|n| matches!(&n.backend, NicBackend::User(u) if !u.forwards.is_empty()));
            let ssh_port = if has_forward {
                let text = m
                    .execute(
                        "human-monitor-command",
                        Some(json!({"command-line": "info usernet"})),
                    )
                    .await?;
                crate::usernet::forwarded_port(text.as_str().unwrap_or_default(), 22)
            } else {
                None
            };
            Ok::<_, qmp::QmpError>(ssh_port)
        };
        let ssh_port = match setup.await {
            Ok(p) => p,
            Err(e) => {
                let _ = m.execute("quit", None).await;
                if m.wait_exit(Duration::from_secs(10)).await.is_none() {
                    process::kill9(pid);
                }
                return Err(failed("start", uuid, format!("{e}{}", qemu_said())));
            }
        };
        run.ssh_port = ssh_port;
        if run.suspended {
            // From here on the disk moves past the saved state: never load it again.
            run.suspended = false;
            slot.save_run(run.clone()).await?;
        }
        m.execute("cont", None)
            .await
            .map_err(|e| failed("start", uuid, format!("{e}{}", qemu_said())))?;
        if self.has_snapshot(&m).await {
            self.snapshot_job(
                &m,
                "snapshot-delete",
                json!({"tag": SUSPEND_TAG, "devices": writable_nodes(domain)}),
            )
            .await
            .unwrap_or_else(
                |e| tracing::warn!(uuid, error = %e, "could not delete the suspend state"),
            );
        }
        Ok(m)
    }

    async fn has_snapshot(&self, m: &Monitor) -> bool {
        m.execute(
            "human-monitor-command",
            Some(json!({"command-line": "info snapshots"})),
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(|t| t.contains(SUSPEND_TAG)))
        .unwrap_or(false)
    }

    /// Runs a snapshot job (`snapshot-save`, `snapshot-delete`) to its end.
    async fn snapshot_job(
        &self,
        m: &Monitor,
        command: &str,
        mut args: Value,
    ) -> std::result::Result<(), String> {
        let id = format!("job-{}", uuid::Uuid::new_v4().simple());
        args["job-id"] = json!(id);
        m.execute(command, Some(args))
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1800);
        loop {
            let jobs = m
                .execute("query-jobs", None)
                .await
                .map_err(|e| e.to_string())?;
            let job = jobs
                .as_array()
                .and_then(|a| a.iter().find(|j| j["id"] == json!(id)))
                .cloned();
            match job {
                Some(j) if j["status"] == "concluded" => {
                    let _ = m.execute("job-dismiss", Some(json!({"id": id}))).await;
                    return match j.get("error").and_then(Value::as_str) {
                        Some(e) => Err(e.to_string()),
                        None => Ok(()),
                    };
                }
                None => return Ok(()),
                Some(_) => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("{command} did not finish"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the guest's process: ACPI power-off first when `clean` (pressed again
    /// every retry interval until the timeout), then `quit`, then SIGKILL. The
    /// caller holds the operation lock. Returns whether the guest shut down cleanly.
    async fn stop_process(&self, slot: &Arc<Slot>, clean: bool) -> Result<bool> {
        let Some(m) = slot.monitor() else {
            let orphan = slot.lock().orphan_pid.take();
            if let Some(pid) = orphan {
                process::kill9(pid);
                process::wait_gone(pid, Duration::from_secs(10)).await;
            }
            return Ok(true);
        };
        slot.stopping.store(true, Ordering::SeqCst);
        let mut gracefully = false;
        if clean && m.state() == RunState::Running && !self.cfg.shutdown_timeout.is_zero() {
            let deadline = tokio::time::Instant::now() + self.cfg.shutdown_timeout;
            loop {
                let _ = m.execute("system_powerdown", None).await;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if m.wait_exit(
                    left.min(self.cfg.shutdown_retry_interval.max(Duration::from_secs(1))),
                )
                .await
                .is_some()
                {
                    gracefully = true;
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::info!(uuid = %slot.uuid, "the guest ignored the power button: quitting QEMU");
                    break;
                }
            }
        }
        if !gracefully {
            let _ = m.execute("quit", None).await;
            if m.wait_exit(Duration::from_secs(30)).await.is_none() {
                tracing::warn!(uuid = %slot.uuid, pid = m.pid(), "QEMU did not quit: SIGKILL");
                process::kill9(m.pid());
                m.wait_exit(Duration::from_secs(15)).await;
            }
        }
        slot.lock().monitor = None;
        let mut run = slot.run();
        run.running = false;
        run.pid = None;
        let saved = slot.save_run(run).await;
        slot.stopping.store(false, Ordering::SeqCst);
        saved?;
        Ok(gracefully)
    }

    fn running_monitor(&self, slot: &Slot, op: &'static str) -> Result<Monitor> {
        slot.monitor().ok_or(DriverError::InvalidState {
            op,
            uuid: slot.uuid.clone(),
            state: slot.power_state(),
        })
    }

    /// Keeps the serial logs under their cap, and retries guests whose monitor
    /// could not be reached when they were found.
    async fn housekeeping(&self) {
        let slots: Vec<Arc<Slot>> = self.guests().values().cloned().collect();
        for slot in slots {
            if slot.monitor().is_some() {
                let dir = slot.dir.clone();
                let max = self.cfg.console_log_max_bytes;
                let r =
                    tokio::task::spawn_blocking(move || console::rotate_if_big(&dir, max)).await;
                if let Ok(Err(e)) = r {
                    tracing::warn!(uuid = %slot.uuid, error = %e, "console log rotation failed");
                }
            }
            let orphan = slot.lock().orphan_pid;
            if let Some(pid) = orphan {
                let Ok(_op) = slot.op.try_lock() else {
                    continue;
                };
                if !process::alive(pid) {
                    slot.lock().orphan_pid = None;
                    continue;
                }
                if self.attach(&slot, pid).await.is_ok() {
                    tracing::info!(uuid = %slot.uuid, pid, "re-attached to a running guest");
                }
            }
        }
    }
}

fn spawn_housekeeping(d: Weak<QemuDriver>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let Some(d) = d.upgrade() else { return };
            d.housekeeping().await;
        }
    });
}

/// The domain with its sockets inside `dir` named relative to it (QEMU runs there):
/// a UNIX socket path must fit in 108 bytes.
fn sockets_relative_to(domain: &GuestDomain, dir: &Path) -> GuestDomain {
    let rel = |p: &mut PathBuf| {
        if let Ok(r) = p.strip_prefix(dir) {
            *p = r.to_path_buf();
        }
    };
    let mut d = domain.clone();
    if let Some(s) = d.serial.socket.as_mut() {
        rel(s);
    }
    if let Some(s) = d.guest_agent.as_mut() {
        rel(s);
    }
    for g in &mut d.graphics {
        if let crate::domain::GraphicsListen::Socket(p) = &mut g.listen {
            rel(p);
        }
    }
    d
}

/// The password a guest's consoles get at start: the owner's, else a random one.
fn console_password_of(domain: &GuestDomain) -> ConsolePassword {
    domain
        .graphics
        .iter()
        .find_map(|g| g.password.clone())
        .unwrap_or_else(ConsolePassword::random)
}

/// Sets every graphical console's password over QMP. A set password does not
/// clear an earlier expiry (measured), so the expiry is always set too.
async fn apply_console_password(
    m: &Monitor,
    domain: &GuestDomain,
    password: &ConsolePassword,
) -> std::result::Result<(), qmp::QmpError> {
    for g in &domain.graphics {
        let protocol = match g.kind {
            GraphicsKind::Vnc => "vnc",
            GraphicsKind::Spice => "spice",
        };
        let mut args = json!({"protocol": protocol, "password": password.expose()});
        if g.kind == GraphicsKind::Vnc {
            args["connected"] = json!("keep");
        }
        m.execute("set_password", Some(args)).await?;
        m.execute(
            "expire_password",
            Some(json!({"protocol": protocol, "time": "never"})),
        )
        .await?;
    }
    Ok(())
}

/// A TCP SPICE console (direct SPICE clients) needs a port QEMU cannot pick
/// itself: the one it had when still free, else one the kernel hands out. `None`
/// when the guest has no TCP SPICE console.
fn pick_spice_port(domain: &mut GuestDomain, kept: Option<u16>) -> std::io::Result<Option<u16>> {
    for g in &mut domain.graphics {
        if let (GraphicsKind::Spice, GraphicsListen::Address { address, port }) =
            (g.kind, &mut g.listen)
        {
            let free = |p: u16| std::net::TcpListener::bind((address.as_str(), p));
            let l = match kept.map(free) {
                Some(Ok(l)) => l,
                _ => free(0)?,
            };
            let p = l.local_addr()?.port();
            *port = Some(p);
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The SSH forward's host port (0 = any) on the first user-mode NIC.
fn set_ssh_port(domain: &mut GuestDomain, port: u16) {
    for n in &mut domain.nics {
        if let NicBackend::User(u) = &mut n.backend {
            for f in &mut u.forwards {
                if f.guest_port == 22 {
                    f.host_port = port;
                }
            }
        }
    }
}

/// The `-blockdev` node names of the guest's writable disks (what an internal
/// snapshot covers).
fn writable_nodes(domain: &GuestDomain) -> Vec<String> {
    domain
        .disks
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.readonly)
        .map(|(i, _)| format!("disk{i}"))
        .collect()
}

/// Waits until QEMU has made its monitor socket; the exit status when it ended
/// first (a bad option, a wrong disk passphrase). Nothing connects here: QMP
/// serves one client, and that is the monitor task.
async fn wait_for_socket(
    child: &mut tokio::process::Child,
    sock: &Path,
) -> std::result::Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status.to_string());
        }
        if sock.exists() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.start_kill();
            return Err("no monitor socket within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Attaches the monitor of a QEMU that is starting (its socket may exist a
/// moment before it listens).
async fn attach_new(
    sock: &Path,
    pid: u32,
    mut child: tokio::process::Child,
) -> std::result::Result<Monitor, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let conn = loop {
        match qmp::connect(sock, Duration::from_secs(30)).await {
            Ok(c) => break c,
            Err(qmp::QmpError::Connect { source, .. })
                if tokio::time::Instant::now() < deadline
                    && matches!(
                        source.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                    ) =>
            {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("QEMU exited ({status})"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                let _ = child.start_kill();
                return Err(e.to_string());
            }
        }
    };
    Monitor::start(conn, pid, Some(child))
        .await
        .map_err(|e| e.to_string())
}

#[async_trait]
impl Driver for QemuDriver {
    fn name(&self) -> &'static str {
        "qemu"
    }

    async fn host_resources(&self) -> Result<HostResources> {
        Ok(self.resources.clone())
    }

    async fn spawn(&self, spec: &SpawnSpec) -> Result<InstanceInfo> {
        let uuid = spec.uuid.as_str();
        if let Ok(slot) = self.slot(uuid) {
            // A repeated spawn (a restarted agent): start what was prepared.
            let _op = slot.op.lock().await;
            self.start(&slot).await?;
            return Ok(slot.info());
        }
        let prepared = match self.pipeline.prepare(spec).await {
            Ok(p) => p,
            Err(e) => {
                if let Err(c) = self.pipeline.remove(uuid).await {
                    tracing::warn!(uuid, error = %c, "cleanup after a failed spawn failed");
                }
                return Err(e);
            }
        };
        let dir = prepared.dir.clone();
        record::save_domain(&dir, &prepared.domain).await?;
        let slot = self.new_slot(uuid, dir, &prepared.domain, RunRecord::default());
        let _op = slot.op.lock().await;
        if let Err(e) = self.start(&slot).await {
            self.guests().remove(uuid);
            if let Err(c) = self.pipeline.remove(uuid).await {
                tracing::warn!(uuid, error = %c, "cleanup after a failed spawn failed");
            }
            return Err(e);
        }
        Ok(slot.info())
    }

    async fn destroy(&self, uuid: &str) -> Result<()> {
        if let Ok(slot) = self.slot(uuid) {
            let _op = slot.op.lock().await;
            self.stop_process(&slot, false).await?;
            self.guests().remove(uuid);
        }
        self.pipeline.remove(uuid).await
    }

    async fn power_on(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        self.start(&slot).await
    }

    async fn power_off(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        self.stop_process(&slot, true).await.map(|_| ())
    }

    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        // Nova: a soft reboot is a clean shutdown and a start (falling back to a
        // hard one when the guest does not shut down); a hard one a power cycle
        // of a new QEMU process from the domain.
        self.stop_process(&slot, !hard).await?;
        self.start(&slot).await
    }

    async fn pause(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let m = self.running_monitor(&slot, "pause")?;
        m.execute("stop", None)
            .await
            .map_err(|e| failed("pause", uuid, e))?;
        Ok(())
    }

    async fn unpause(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let m = self.running_monitor(&slot, "unpause")?;
        m.execute("cont", None)
            .await
            .map_err(|e| failed("unpause", uuid, e))?;
        Ok(())
    }

    async fn suspend(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let m = self.running_monitor(&slot, "suspend")?;
        let domain = record::load_domain(&slot.dir).map_err(|e| failed("suspend", uuid, e))?;
        if domain
            .disks
            .iter()
            .any(|d| !d.readonly && d.format != "qcow2")
        {
            return Err(DriverError::Unsupported(
                "suspend of a guest with raw disks (its memory is saved into a qcow2 disk)",
            ));
        }
        let was_running = m.state() == RunState::Running;
        m.execute("stop", None)
            .await
            .map_err(|e| failed("suspend", uuid, e))?;
        let nodes = writable_nodes(&domain);
        // a leftover state of an earlier resume would make the save fail
        if self.has_snapshot(&m).await {
            let _ = self
                .snapshot_job(
                    &m,
                    "snapshot-delete",
                    json!({"tag": SUSPEND_TAG, "devices": nodes}),
                )
                .await;
        }
        let saved = self
            .snapshot_job(
                &m,
                "snapshot-save",
                json!({"tag": SUSPEND_TAG, "vmstate": nodes.first().cloned().unwrap_or_default(), "devices": nodes}),
            )
            .await;
        if let Err(e) = saved {
            if was_running {
                let _ = m.execute("cont", None).await;
            }
            return Err(failed("suspend", uuid, e));
        }
        let mut run = slot.run();
        run.suspended = true;
        slot.save_run(run).await?;
        self.stop_process(&slot, false).await.map(|_| ())
    }

    async fn resume(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        if !slot.run().suspended {
            return Err(DriverError::InvalidState {
                op: "resume",
                uuid: uuid.to_string(),
                state: slot.power_state(),
            });
        }
        self.start(&slot).await
    }

    fn snapshot_disk_format(&self) -> &'static str {
        // only the allocated clusters: a 40 GB root with 30 MB written stays 30 MB
        "qcow2"
    }

    async fn snapshot(&self, spec: &SnapshotSpec) -> Result<()> {
        let slot = self.slot(&spec.uuid)?;
        let _op = slot.op.lock().await;
        let m = slot.monitor();
        let was_running = m.as_ref().is_some_and(|m| m.state() == RunState::Running);
        if let Some(m) = &m {
            // stopped CPUs and flushed caches: the disk on file is consistent
            m.execute("stop", None)
                .await
                .map_err(|e| failed("snapshot", &spec.uuid, e))?;
        }
        let r = self.pipeline.snapshot(spec, m.is_some()).await;
        if was_running && let Some(m) = &m {
            m.execute("cont", None)
                .await
                .map_err(|e| failed("snapshot", &spec.uuid, e))?;
        }
        r
    }

    async fn resize(&self, uuid: &str, vcpus: i64, memory_mb: i64, root_gb: i64) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let was_on = slot.monitor().is_some();
        self.stop_process(&slot, true).await?;
        let mut run = slot.run();
        if self.pipeline.keep_resize_backup(uuid, &mut run).await? {
            slot.save_run(run).await?;
        }
        self.pipeline.grow_root(uuid, root_gb).await?;
        self.set_size(&slot, vcpus, memory_mb).await?;
        if was_on {
            self.start(&slot).await?;
        }
        Ok(())
    }

    async fn confirm_resize(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let mut run = slot.run();
        if self.pipeline.drop_resize_backup(uuid, &mut run).await? {
            slot.save_run(run).await?;
        }
        Ok(())
    }

    async fn revert_resize(
        &self,
        uuid: &str,
        vcpus: i64,
        memory_mb: i64,
        _root_gb: i64,
    ) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let was_on = slot.monitor().is_some();
        self.stop_process(&slot, true).await?;
        let mut run = slot.run();
        if self.pipeline.restore_resize_backup(uuid, &mut run).await? {
            slot.save_run(run).await?;
        }
        self.set_size(&slot, vcpus, memory_mb).await?;
        if was_on {
            self.start(&slot).await?;
        }
        Ok(())
    }

    async fn console_output(&self, uuid: &str, tail: Option<usize>) -> Result<String> {
        let slot = self.slot(uuid)?;
        let dir = slot.dir.clone();
        let text = tokio::task::spawn_blocking(move || console::read(&dir))
            .await
            .map_err(|e| failed("console output", uuid, e))??;
        Ok(tail_lines(&text, tail))
    }

    async fn console_endpoint(&self, uuid: &str, kind: ConsoleKind) -> Result<ConsoleEndpoint> {
        let slot = self.slot(uuid)?;
        self.running_monitor(&slot, "console")?;
        let domain = record::load_domain(&slot.dir).map_err(|e| failed("console", uuid, e))?;
        let password = slot.lock().console_password.clone();
        let user_password = domain.graphics.iter().any(|g| g.password.is_some());
        let graphics = |want: GraphicsKind| {
            domain
                .graphics
                .iter()
                .find(|g| g.kind == want)
                .ok_or(DriverError::Unsupported("this console (disabled)"))
        };
        let target = match kind {
            ConsoleKind::Serial => {
                let sock = domain
                    .serial
                    .socket
                    .clone()
                    .ok_or(DriverError::Unsupported("an interactive serial console"))?;
                return Ok(ConsoleEndpoint {
                    kind,
                    target: ConsoleTarget::Unix(sock),
                    password: None,
                    user_password: false,
                });
            }
            ConsoleKind::Vnc => graphics(GraphicsKind::Vnc)?.listen.clone(),
            ConsoleKind::Spice => graphics(GraphicsKind::Spice)?.listen.clone(),
        };
        let target = match target {
            GraphicsListen::Socket(p) => ConsoleTarget::Unix(slot.dir.join(p)),
            GraphicsListen::Address { address, .. } => {
                let port = slot
                    .run()
                    .spice_port
                    .filter(|_| kind == ConsoleKind::Spice)
                    .ok_or(DriverError::Unsupported(
                        "a TCP VNC console under the qemu driver",
                    ))?;
                ConsoleTarget::Tcp {
                    host: address,
                    port,
                }
            }
        };
        Ok(ConsoleEndpoint {
            kind,
            target,
            password: password
                .ok_or_else(|| failed("console", uuid, "no console password set"))
                .map(Some)?,
            user_password,
        })
    }

    async fn set_console_password(
        &self,
        uuid: &str,
        password: Option<&ConsolePassword>,
    ) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let mut domain =
            record::load_domain(&slot.dir).map_err(|e| failed("console password", uuid, e))?;
        for g in &mut domain.graphics {
            g.password = password.cloned();
        }
        record::save_domain(&slot.dir, &domain)
            .await
            .map_err(|e| failed("console password", uuid, e))?;
        if let Some(m) = slot.monitor() {
            let pw = console_password_of(&domain);
            apply_console_password(&m, &domain, &pw)
                .await
                .map_err(|e| failed("console password", uuid, e))?;
            slot.lock().console_password = Some(pw);
            tracing::info!(uuid, "console password changed on the running guest");
        }
        Ok(())
    }

    async fn get_info(&self, uuid: &str) -> Result<InstanceInfo> {
        Ok(self.slot(uuid)?.info())
    }

    async fn list(&self) -> Result<Vec<InstanceInfo>> {
        let slots: Vec<Arc<Slot>> = self.guests().values().cloned().collect();
        Ok(slots.iter().map(|s| s.info()).collect())
    }

    async fn set_admin_password(&self, uuid: &str, user: &str, password: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let domain = record::load_domain(&slot.dir).map_err(|e| failed("set password", uuid, e))?;
        let Some(sock) = domain.guest_agent else {
            return Err(DriverError::AgentNotEnabled(uuid.to_string()));
        };
        self.running_monitor(&slot, "set password")?;
        agent::set_user_password(&sock, user, password, Duration::from_secs(30))
            .await
            .map_err(|e| match e {
                agent::AgentError::Unresponsive(message) => DriverError::AgentUnresponsive {
                    uuid: uuid.to_string(),
                    message,
                },
                agent::AgentError::Failed(m) => failed("set password", uuid, m),
            })
    }

    async fn ssh_endpoint(&self, uuid: &str) -> Result<std::net::SocketAddr> {
        let slot = self.slot(uuid)?;
        let port = slot.run().ssh_port.filter(|_| slot.monitor().is_some());
        port.map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
            .ok_or(DriverError::InvalidState {
                op: "ssh",
                uuid: uuid.to_string(),
                state: slot.power_state(),
            })
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<GuestEvent>> {
        self.events_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

impl QemuDriver {
    async fn set_size(&self, slot: &Arc<Slot>, vcpus: i64, memory_mb: i64) -> Result<()> {
        let mut domain =
            record::load_domain(&slot.dir).map_err(|e| failed("resize", &slot.uuid, e))?;
        domain.vcpus = u32::try_from(vcpus).unwrap_or(1).max(1);
        domain.memory_mb = u64::try_from(memory_mb).unwrap_or(domain.memory_mb);
        record::save_domain(&slot.dir, &domain).await?;
        self.pipeline.write_domain_xml(&domain).await?;
        let mut st = slot.lock();
        st.vcpus = i64::from(domain.vcpus);
        st.memory_mb = domain.memory_mb as i64;
        Ok(())
    }
}
