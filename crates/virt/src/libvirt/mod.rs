//! The `libvirt` driver: the same guests as the `qemu` driver — the same spawn
//! [`Pipeline`], the same typed [`GuestDomain`] kept as `domain.json` — but libvirt
//! owns the QEMU process. Every start renders the domain to libvirt XML
//! (`libvirt.xml`, 0600: it carries the console password) and `virsh define`s it;
//! the user-mode NICs (DHCP lease = the port's fixed IP, SSH forwarded on
//! 127.0.0.1) ride in `<qemu:commandline>` because libvirt 9.0's slirp cannot
//! forward ports; consoles are TCP ports libvirt picks (`autoport`), serial and
//! guest agent unix sockets in the instance directory, the serial log a file
//! (written by virtlogd). A LUKS disk's passphrase is a libvirt secret defined and
//! valued (from a 0600 file) just before each start and undefined once QEMU has
//! it. The binding is `virsh` run as a child process per call ([`virsh`], see
//! `docs/adr/0005-libvirt-binding.md`).
//!
//! libvirt keeps guests running while ferrostack is away: [`LibvirtDriver::open`]
//! finds every instance directory with a `domain.json` and adopts its domain
//! (`instance-<uuid>`). One task polls `virsh list --all` every second and turns a
//! stop nobody asked for (a guest power-off, `virsh destroy` from outside, a
//! killed QEMU) into a [`GuestEvent`], as the qemu driver's monitor does.
//! `run.json` ([`RunRecord`]) says whether the driver left a guest running.
//!
//! QEMU runs as libvirt's user (`libvirt-qemu`), and libvirt chowns the disks to
//! it while the guest runs (`dynamic_ownership`): the instance directory is
//! therefore `0710` with libvirt's QEMU group (the keys and `domain.json` inside
//! stay `0600` root), and the instances directory and its parents must be
//! traversable by that user (checked at open).

pub mod state;
pub mod virsh;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::disk::ImageSource;
use crate::domain::{
    ConsolePassword, GraphicsKind, GraphicsListen, GuestDomain, NicBackend, UserNetXml,
    libvirt_secret_xml,
};
use crate::driver::{
    ConsoleEndpoint, ConsoleKind, ConsoleTarget, Driver, DriverError, GuestEvent, HostResources,
    InstanceInfo, PowerState, Result, SnapshotSpec, SpawnSpec, StopCause, tail_lines,
};
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::qemu::record::{self, RunRecord};
use crate::qemu::{console, process};
use virsh::Virsh;

/// How the driver talks to libvirt.
#[derive(Debug, Clone)]
pub struct LibvirtConfig {
    /// `[host] libvirt_uri`.
    pub uri: String,
    /// Every virsh call's limit (a managed save gets ten times this).
    pub call_timeout: Duration,
    /// A clean stop presses the power button this long before `virsh destroy`.
    pub shutdown_timeout: Duration,
    pub shutdown_retry_interval: Duration,
    /// The group libvirt runs QEMU with (`group` in qemu.conf).
    pub qemu_group: String,
    /// How often the domains' states are read (stops nobody asked for).
    pub poll_interval: Duration,
    /// Where the guests' unix sockets (serial console, guest agent) live, one
    /// directory per guest: libvirt wants absolute socket paths, and one under the
    /// state directory can pass the 108 bytes a socket path may have.
    pub socket_dir: PathBuf,
}

impl Default for LibvirtConfig {
    fn default() -> Self {
        LibvirtConfig {
            uri: "qemu:///system".into(),
            call_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(60),
            shutdown_retry_interval: Duration::from_secs(10),
            qemu_group: "libvirt-qemu".into(),
            poll_interval: Duration::from_secs(1),
            socket_dir: PathBuf::from("/run/ferrostack/libvirt"),
        }
    }
}

/// One guest the driver knows (its directory holds a `domain.json`).
struct Slot {
    uuid: String,
    /// The libvirt domain name, `instance-<uuid>`.
    name: String,
    dir: PathBuf,
    /// Serialises the driver's operations on this guest; the poller skips a guest
    /// while an operation holds it.
    op: tokio::sync::Mutex<()>,
    state: Mutex<SlotState>,
}

struct SlotState {
    run: RunRecord,
    vcpus: i64,
    memory_mb: i64,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) -> RunRecord {
        self.lock().run.clone()
    }

    async fn save_run(&self, run: RunRecord) -> Result<()> {
        record::save_run(&self.dir, &run).await?;
        self.lock().run = run;
        Ok(())
    }

    /// The power state from libvirt's state word (`None`: libvirt does not know
    /// the domain; it is defined again at the next start).
    fn power_state(&self, libvirt: Option<&str>) -> PowerState {
        let suspended = self.lock().run.suspended;
        match libvirt.map(state::power_state) {
            Some(PowerState::Shutdown) | None if suspended => PowerState::Suspended,
            Some(PowerState::NoState) | None => PowerState::Shutdown,
            Some(s) => s,
        }
    }

    fn info(&self, power_state: PowerState) -> InstanceInfo {
        let st = self.lock();
        InstanceInfo {
            uuid: self.uuid.clone(),
            power_state,
            vcpus: st.vcpus,
            memory_mb: st.memory_mb,
        }
    }
}

pub struct LibvirtDriver {
    pipeline: Arc<Pipeline>,
    cfg: LibvirtConfig,
    virsh: Virsh,
    /// The gid of libvirt's QEMU group (instance directories are opened to it).
    qemu_gid: Option<u32>,
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

/// `Running hypervisor: QEMU 10.0.2` → 10000002 (the qemu driver's numbering).
fn hypervisor_version(version: &str) -> i64 {
    version
        .lines()
        .find_map(|l| l.trim().strip_prefix("Running hypervisor: QEMU "))
        .map(|v| {
            let mut n = v.trim().split('.').map(|p| p.parse::<i64>().unwrap_or(0));
            let (a, b, c) = (
                n.next().unwrap_or(0),
                n.next().unwrap_or(0),
                n.next().unwrap_or(0),
            );
            a * 1_000_000 + b * 1_000 + c
        })
        .unwrap_or(0)
}

/// A group's gid from `/etc/group`.
fn group_gid(name: &str) -> Option<u32> {
    std::fs::read_to_string("/etc/group")
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name)
                .then(|| f[2].parse().ok())
                .flatten()
        })
}

/// The first directory from `/` down to `dir` that a process of group `gid`
/// (not its owner) cannot search.
fn untraversable(dir: &Path, gid: Option<u32>) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors().find_map(|p| {
        let m = std::fs::metadata(p).ok()?;
        let ok = m.mode() & 0o001 != 0 || (m.mode() & 0o010 != 0 && Some(m.gid()) == gid);
        (!ok).then(|| p.to_path_buf())
    })
}

/// The port of the first user-mode NIC's SSH forward (0 = any).
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

fn has_forward(domain: &GuestDomain) -> bool {
    domain
        .nics
        .iter()
        .any(|n| matches!(&n.backend, NicBackend::User(u) if !u.forwards.is_empty()))
}

/// VNC's password: its first 8 characters (VNC authentication uses no more, and
/// libvirt refuses a longer one).
fn vnc_password(p: &ConsolePassword) -> ConsolePassword {
    ConsolePassword::new(p.expose().chars().take(8).collect::<String>())
}

/// A `<graphics>` element for `virsh update-device`: the live one's type, port
/// and listen address, with a new password.
fn graphics_update_xml(g: &state::LiveGraphics, password: &str) -> String {
    use quick_xml::Writer;
    let mut w = Writer::new(Vec::new());
    let kind = match g.kind {
        GraphicsKind::Vnc => "vnc",
        GraphicsKind::Spice => "spice",
    };
    let port = g.port.map(|p| p.to_string());
    let mut el = w.create_element("graphics").with_attribute(("type", kind));
    if let Some(p) = &port {
        el = el.with_attribute(("port", p.as_str()));
    }
    el = el.with_attribute(("autoport", if g.autoport { "yes" } else { "no" }));
    if let Some(l) = &g.listen {
        el = el.with_attribute(("listen", l.as_str()));
    }
    el = el.with_attribute(("passwd", password));
    let listen = g.listen.clone();
    let _ = el.write_inner_content(|w| {
        if let Some(l) = &listen {
            w.create_element("listen")
                .with_attribute(("type", "address"))
                .with_attribute(("address", l.as_str()))
                .write_empty()?;
        }
        Ok::<_, std::io::Error>(())
    });
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

/// A 0600 file in `dir` holding `bytes`, removed when the handle is dropped.
fn private_temp(dir: &Path, bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let mut f = tempfile::Builder::new()
        .prefix(".virsh-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    f.write_all(bytes)?;
    f.as_file().sync_all()?;
    Ok(f)
}

impl LibvirtDriver {
    /// Opens the driver: checks that libvirt answers at `cfg.uri`, opens the
    /// pipeline (user-mode wiring), and adopts the domains of every guest an
    /// earlier run left.
    pub async fn open(
        cfg: LibvirtConfig,
        mut pcfg: PipelineConfig,
        source: Arc<dyn ImageSource>,
    ) -> Result<Arc<LibvirtDriver>> {
        let virsh = Virsh::new(cfg.uri.clone(), cfg.call_timeout);
        let t0 = std::time::Instant::now();
        let version = virsh.ping().await.map_err(|e| {
            failed(
                "open",
                "-",
                format!(
                    "libvirt does not answer at {} (scripts/libvirtd starts it): {e}",
                    cfg.uri
                ),
            )
        })?;
        let ping_ms = t0.elapsed().as_millis() as u64;
        pcfg.user_mode = true;
        let qemu_gid = group_gid(&cfg.qemu_group);
        if qemu_gid.is_none() {
            tracing::warn!(group = %cfg.qemu_group, "libvirt's QEMU group does not exist: instance directories are opened to everyone (0711)");
        }
        let mut resources = crate::prepare::host_resources(&pcfg.instances_dir);
        resources.hypervisor_type = "QEMU".into();
        resources.hypervisor_version = hypervisor_version(&version);
        resources.cpu_info = serde_json::json!({
            "arch": "x86_64",
            "accel": pcfg.virt_type.as_str(),
            "topology": {"sockets": 1, "cores": resources.vcpus, "threads": 1},
        })
        .to_string();
        let instances = pcfg.instances_dir.clone();
        let pipeline = Arc::new(Pipeline::open(pcfg, source)?);
        let (events, rx) = mpsc::unbounded_channel();
        let d = Arc::new(LibvirtDriver {
            pipeline,
            cfg,
            virsh,
            qemu_gid,
            resources,
            boot_id: process::boot_id(),
            guests: Mutex::new(HashMap::new()),
            events,
            events_rx: Mutex::new(Some(rx)),
        });
        // the state directory (usually 0700) is opened to libvirt's QEMU group
        // only as far as QEMU must pass through it
        let mut reach = vec![instances.clone(), instances.join("_base")];
        if let Some(parent) = instances.parent()
            && untraversable(parent, qemu_gid).as_deref() == Some(parent)
        {
            reach.push(parent.to_path_buf());
        }
        for (i, p) in reach.into_iter().enumerate() {
            let r = if i < 2 {
                d.open_to_qemu(&p)
            } else {
                d.open_parent_to_qemu(&p)
            };
            if let Err(e) = r {
                tracing::warn!(path = %p.display(), error = %e, "cannot open the directory to libvirt's QEMU");
            }
        }
        if let Some(p) = untraversable(&instances, qemu_gid) {
            tracing::error!(
                path = %p.display(),
                "libvirt's QEMU user cannot reach the instances directory through this directory: \
                 guests will not start (make it searchable: chmod o+x)"
            );
        }
        d.find_guests(&instances).await;
        tracing::info!(
            uri = %d.cfg.uri,
            version = d.resources.hypervisor_version,
            virsh_ms = ping_ms,
            guests = d.guests().len(),
            "libvirt driver ready"
        );
        spawn_poller(Arc::downgrade(&d), d.cfg.poll_interval);
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
            name: domain.name.clone(),
            dir,
            op: tokio::sync::Mutex::new(()),
            state: Mutex::new(SlotState {
                run,
                vcpus: i64::from(domain.vcpus),
                memory_mb: domain.memory_mb as i64,
            }),
        });
        self.guests().insert(uuid.to_string(), slot.clone());
        slot
    }

    /// `dir` searchable by libvirt's QEMU group (0710), or by everyone (0711)
    /// when that group is unknown; nothing in it becomes readable.
    fn open_to_qemu(&self, dir: &Path) -> std::io::Result<()> {
        match self.qemu_gid {
            Some(gid) => {
                std::os::unix::fs::chown(dir, None, Some(gid))?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710))
            }
            None => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)),
        }
    }

    /// Adds search (only) for libvirt's QEMU group to a directory whose group
    /// has no rights (`0700` → `0710`), else for everyone (`o+x`).
    fn open_parent_to_qemu(&self, dir: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let mode = std::fs::metadata(dir)?.mode() & 0o7777;
        match self.qemu_gid {
            Some(gid) if mode & 0o070 == 0 => {
                std::os::unix::fs::chown(dir, None, Some(gid))?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o010))
            }
            _ => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001)),
        }
    }

    /// Every instance directory with a `domain.json` becomes a slot; a guest
    /// that should run but does not (stopped while ferrostack was away, or a
    /// host reboot) is reported; half-prepared directories are removed.
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
            match record::load_domain(&dir) {
                Ok(domain) => {
                    let run = record::load_run(&dir);
                    self.new_slot(&uuid, dir, &domain, run);
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    tracing::info!(uuid, "removing a half-prepared guest");
                    let _ = self.virsh.undefine(&format!("instance-{uuid}")).await;
                    if let Err(err) = self.pipeline.remove(&uuid).await {
                        tracing::warn!(uuid, error = %err, "could not remove it");
                    }
                }
                Err(err) => {
                    tracing::error!(uuid, error = %err, "unreadable domain.json: guest ignored");
                }
            }
        }
        let listed = match self.virsh.list_all().await {
            Ok(l) => l.into_iter().collect::<HashMap<_, _>>(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list libvirt's domains");
                return;
            }
        };
        let slots: Vec<Arc<Slot>> = self.guests().values().cloned().collect();
        for slot in slots {
            let st = listed.get(&slot.name).map(String::as_str);
            if slot.run().running && !self.check_stopped(&slot, st, true).await {
                tracing::info!(uuid = %slot.uuid, state = st.unwrap_or("-"), "adopted a running libvirt domain");
                if slot.run().ssh_port.is_none() {
                    let _ = self.read_ssh_port(&slot).await;
                }
            }
        }
    }

    /// A guest the driver left running that libvirt shows stopped (or does not
    /// know): records the stop and reports it. The caller holds the slot's
    /// operation lock (or the slot is not shared yet). Returns whether it had stopped.
    async fn check_stopped(&self, slot: &Arc<Slot>, libvirt: Option<&str>, first: bool) -> bool {
        let ps = libvirt.map(state::power_state);
        if matches!(
            ps,
            Some(PowerState::Running | PowerState::Paused | PowerState::NoState)
        ) {
            return false;
        }
        let mut run = slot.run();
        if !run.running {
            return false;
        }
        let (cause, detail) = if first && !run.boot_id.is_empty() && run.boot_id != self.boot_id {
            (
                StopCause::HostRebooted,
                "the host rebooted while the guest ran".to_string(),
            )
        } else if libvirt.is_none() {
            (
                StopCause::Crashed,
                "the domain disappeared from libvirt".to_string(),
            )
        } else {
            let reason = self
                .virsh
                .domstate(&slot.name)
                .await
                .unwrap_or_else(|e| e.to_string());
            (state::stop_cause(&reason), format!("libvirt: {reason}"))
        };
        run.running = false;
        if let Err(e) = slot.save_run(run).await {
            tracing::warn!(uuid = %slot.uuid, error = %e, "could not record the stop");
        }
        tracing::warn!(uuid = %slot.uuid, ?cause, %detail, "guest stopped on its own");
        let _ = self.events.send(GuestEvent::Stopped {
            uuid: slot.uuid.clone(),
            cause,
            detail,
        });
        true
    }

    /// One pass of the poller: every guest not being operated on.
    async fn poll(&self) {
        let slots: Vec<Arc<Slot>> = self.guests().values().cloned().collect();
        if !slots.iter().any(|s| s.run().running) {
            return;
        }
        let listed = match self.virsh.list_all().await {
            Ok(l) => l.into_iter().collect::<HashMap<_, _>>(),
            Err(e) => {
                tracing::debug!(error = %e, "poll: cannot list libvirt's domains");
                return;
            }
        };
        for slot in slots {
            let Ok(_op) = slot.op.try_lock() else {
                continue;
            };
            if !slot.run().running {
                continue;
            }
            let listed_state = listed.get(&slot.name).map(String::as_str);
            if matches!(
                listed_state.map(state::power_state),
                Some(PowerState::Running | PowerState::Paused | PowerState::NoState)
            ) {
                continue;
            }
            // listed before the lock: read again, an operation may just have ended
            let st = match self.virsh.domstate(&slot.name).await {
                Ok(s) => Some(s),
                Err(e) if e.is_not_found() => None,
                Err(_) => continue,
            };
            self.check_stopped(&slot, st.as_deref(), false).await;
        }
    }

    /// libvirt's state word of a guest's domain (`None`: unknown to libvirt).
    async fn libvirt_state(&self, slot: &Slot) -> Result<Option<String>> {
        match self.virsh.domstate(&slot.name).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(failed("state", &slot.uuid, e)),
        }
    }

    async fn current(&self, slot: &Slot) -> Result<PowerState> {
        let st = self.libvirt_state(slot).await?;
        Ok(slot.power_state(st.as_deref()))
    }

    /// The domain as libvirt runs it: consoles on TCP ports libvirt picks,
    /// the console password in the XML, the SSH forward on `ssh_port` (0 = any).
    fn libvirt_domain(
        &self,
        domain: &GuestDomain,
        password: &ConsolePassword,
        ssh_port: u16,
    ) -> GuestDomain {
        let pc = self.pipeline.config();
        let mut d = domain.clone();
        for g in &mut d.graphics {
            let address = match g.kind {
                GraphicsKind::Vnc => pc.vnc_listen.clone(),
                // a unix SPICE socket is the qemu driver's; libvirt 9.0 listens on TCP
                GraphicsKind::Spice if pc.spice_listen == "unix" => "127.0.0.1".into(),
                GraphicsKind::Spice => pc.spice_listen.clone(),
            };
            g.listen = GraphicsListen::Address {
                address,
                port: None,
            };
            g.password = Some(match g.kind {
                GraphicsKind::Vnc => vnc_password(password),
                GraphicsKind::Spice => password.clone(),
            });
        }
        set_ssh_port(&mut d, ssh_port);
        let socks = self.cfg.socket_dir.join(&domain.uuid);
        if d.serial.socket.is_some() {
            d.serial.socket = Some(socks.join("serial.sock"));
        }
        if d.guest_agent.is_some() {
            d.guest_agent = Some(socks.join("qga.sock"));
        }
        d
    }

    /// The guest's socket directory (`socket_dir/<uuid>`, root:QEMU group 0770).
    fn make_socket_dir(&self, uuid: &str) -> std::io::Result<()> {
        let dir = self.cfg.socket_dir.join(uuid);
        std::fs::create_dir_all(&dir)?;
        let top = &self.cfg.socket_dir;
        match self.qemu_gid {
            Some(gid) => {
                std::os::unix::fs::chown(top, None, Some(gid))?;
                std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o710))?;
                std::os::unix::fs::chown(&dir, None, Some(gid))?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770))
            }
            None => {
                std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o711))?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            }
        }
    }

    /// Writes `libvirt.xml` (0600) and defines the domain from it.
    async fn define(&self, slot: &Slot, domain: &GuestDomain) -> Result<()> {
        let xml = domain.to_libvirt_xml_with(UserNetXml::QemuCommandline);
        let path = slot.dir.join("libvirt.xml");
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            ferrostack_core::fsutil::write_private_atomic(&p, xml.as_bytes())
        })
        .await
        .map_err(|e| failed("define", &slot.uuid, e))??;
        self.virsh
            .define(&path)
            .await
            .map_err(|e| failed("define", &slot.uuid, e))
    }

    /// Defines the libvirt secrets of the guest's encrypted disks with their
    /// values (read by virsh from 0600 files, removed at once). Returns their uuids.
    async fn define_secrets(&self, slot: &Slot, domain: &GuestDomain) -> Result<Vec<String>> {
        let (secrets, guards) = self.pipeline.disk_secrets(&slot.uuid, domain)?;
        let mut defined = Vec::new();
        for (secret_uuid, value_file) in &secrets.disks {
            let disk = domain
                .disks
                .iter()
                .find(|d| d.encryption.as_ref().map(|e| &e.secret_uuid) == Some(secret_uuid))
                .map(|d| d.path.clone())
                .unwrap_or_else(|| slot.dir.join("disk"));
            let xml = libvirt_secret_xml(secret_uuid, &slot.uuid, &disk);
            let xml_file = private_temp(&slot.dir, xml.as_bytes())?;
            self.virsh
                .set_secret(secret_uuid, xml_file.path(), value_file)
                .await
                .map_err(|e| failed("disk secret", &slot.uuid, e))?;
            defined.push(secret_uuid.clone());
        }
        drop(guards);
        Ok(defined)
    }

    async fn undefine_secrets(&self, uuid: &str, secrets: &[String]) {
        for s in secrets {
            if let Err(e) = self.virsh.undefine_secret(s).await {
                tracing::warn!(uuid, secret = %s, error = %e, "could not undefine a disk secret");
            }
        }
    }

    fn secret_uuids(domain: &GuestDomain) -> Vec<String> {
        domain
            .disks
            .iter()
            .filter_map(|d| d.encryption.as_ref().map(|e| e.secret_uuid.clone()))
            .collect()
    }

    /// Starts the guest (or restores its managed save). Running/paused = done.
    /// The caller holds the slot's operation lock.
    async fn start(&self, slot: &Arc<Slot>) -> Result<()> {
        let uuid = slot.uuid.as_str();
        let st = self.libvirt_state(slot).await?;
        if matches!(
            st.as_deref().map(state::power_state),
            Some(PowerState::Running | PowerState::Paused)
        ) {
            return Ok(());
        }
        let saved = st.as_deref().is_some_and(|s| s.contains("(saved)"))
            || (slot.run().suspended && st.is_some());
        let domain = record::load_domain(&slot.dir).map_err(|e| failed("start", uuid, e))?;
        let password = domain
            .graphics
            .iter()
            .find_map(|g| g.password.clone())
            .unwrap_or_else(ConsolePassword::random);
        let mut run = slot.run();
        let mut port = run.ssh_port;
        self.make_socket_dir(uuid)
            .map_err(|e| failed("start", uuid, format!("socket directory: {e}")))?;
        let secrets = self.define_secrets(slot, &domain).await?;
        let started = loop {
            if !saved {
                let d = self.libvirt_domain(&domain, &password, port.unwrap_or(0));
                if let Err(e) = self.define(slot, &d).await {
                    break Err(e);
                }
            }
            match self.virsh.start(&slot.name).await {
                Ok(()) => break Ok(()),
                Err(e) if port.is_some() && !saved && e.to_string().contains("host forwarding") => {
                    tracing::info!(uuid, "the guest's SSH port is taken now: a new one");
                    port = None;
                }
                Err(e) => break Err(failed("start", uuid, e)),
            }
        };
        // QEMU has the passphrase (or failed): libvirt need not keep it
        self.undefine_secrets(uuid, &secrets).await;
        started?;
        run.running = true;
        run.suspended = false;
        run.boot_id = self.boot_id.clone();
        run.pid = None;
        slot.save_run(run).await?;
        if has_forward(&domain) {
            self.read_ssh_port(slot).await?;
        }
        Ok(())
    }

    /// The SSH forward's host port, read from QEMU's slirp (`info usernet`).
    async fn read_ssh_port(&self, slot: &Slot) -> Result<()> {
        let text = self
            .virsh
            .hmp(&slot.name, "info usernet")
            .await
            .map_err(|e| failed("start", &slot.uuid, e))?;
        let mut run = slot.run();
        run.ssh_port = crate::usernet::forwarded_port(&text, 22);
        slot.save_run(run).await
    }

    /// Stops the guest: the ACPI power button first when `clean` (pressed again
    /// every retry interval until the timeout), then `virsh destroy`. The caller
    /// holds the operation lock. Returns whether it shut down cleanly.
    async fn stop(&self, slot: &Arc<Slot>, clean: bool) -> Result<bool> {
        let uuid = slot.uuid.as_str();
        let ps = self.current(slot).await?;
        let mut gracefully = !matches!(ps, PowerState::Running | PowerState::Paused);
        if !gracefully && clean && ps == PowerState::Running && !self.cfg.shutdown_timeout.is_zero()
        {
            let deadline = tokio::time::Instant::now() + self.cfg.shutdown_timeout;
            'press: loop {
                if let Err(e) = self.virsh.shutdown(&slot.name).await {
                    tracing::debug!(uuid, error = %e, "virsh shutdown");
                }
                let next = tokio::time::Instant::now()
                    + self.cfg.shutdown_retry_interval.max(Duration::from_secs(1));
                while tokio::time::Instant::now() < next.min(deadline) {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if !matches!(
                        self.current(slot).await?,
                        PowerState::Running | PowerState::Paused
                    ) {
                        gracefully = true;
                        break 'press;
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::info!(uuid, "the guest ignored the power button: virsh destroy");
                    break;
                }
            }
        }
        if !gracefully || ps == PowerState::Paused {
            self.virsh
                .destroy(&slot.name)
                .await
                .map_err(|e| failed("stop", uuid, e))?;
        }
        let mut run = slot.run();
        run.running = false;
        slot.save_run(run).await?;
        Ok(gracefully)
    }

    async fn set_size(&self, slot: &Arc<Slot>, vcpus: i64, memory_mb: i64) -> Result<()> {
        let mut domain =
            record::load_domain(&slot.dir).map_err(|e| failed("resize", &slot.uuid, e))?;
        domain.vcpus = u32::try_from(vcpus).unwrap_or(1).max(1);
        domain.memory_mb = u64::try_from(memory_mb).unwrap_or(domain.memory_mb);
        record::save_domain(&slot.dir, &domain).await?;
        let mut st = slot.lock();
        st.vcpus = i64::from(domain.vcpus);
        st.memory_mb = domain.memory_mb as i64;
        Ok(())
    }

    /// Pause (`virsh suspend`: the vCPUs stop) or unpause (`virsh resume`) a
    /// running guest; one already so is done.
    async fn set_paused(&self, uuid: &str, pause: bool) -> Result<()> {
        let (op, command, from, to) = if pause {
            ("pause", "suspend", PowerState::Running, PowerState::Paused)
        } else {
            ("unpause", "resume", PowerState::Paused, PowerState::Running)
        };
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        match self.current(&slot).await? {
            s if s == from => self
                .virsh
                .run([command, slot.name.as_str()])
                .await
                .map(drop)
                .map_err(|e| failed(op, uuid, e)),
            s if s == to => Ok(()),
            s => Err(self.invalid(op, &slot, s)),
        }
    }

    fn invalid(&self, op: &'static str, slot: &Slot, state: PowerState) -> DriverError {
        DriverError::InvalidState {
            op,
            uuid: slot.uuid.clone(),
            state,
        }
    }
}

fn spawn_poller(d: Weak<LibvirtDriver>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(d) = d.upgrade() else { return };
            d.poll().await;
        }
    });
}

#[async_trait]
impl Driver for LibvirtDriver {
    fn name(&self) -> &'static str {
        "libvirt"
    }

    async fn host_resources(&self) -> Result<HostResources> {
        Ok(self.resources.clone())
    }

    async fn spawn(&self, spec: &SpawnSpec) -> Result<InstanceInfo> {
        let uuid = spec.uuid.as_str();
        if let Ok(slot) = self.slot(uuid) {
            // a repeated spawn (a restarted agent): start what was prepared
            let _op = slot.op.lock().await;
            self.start(&slot).await?;
            let ps = self.current(&slot).await?;
            return Ok(slot.info(ps));
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
        self.open_to_qemu(&dir)?;
        record::save_domain(&dir, &prepared.domain).await?;
        let slot = self.new_slot(uuid, dir, &prepared.domain, RunRecord::default());
        let _op = slot.op.lock().await;
        if let Err(e) = self.start(&slot).await {
            self.guests().remove(uuid);
            let _ = self.virsh.destroy(&slot.name).await;
            let _ = self.virsh.undefine(&slot.name).await;
            if let Err(c) = self.pipeline.remove(uuid).await {
                tracing::warn!(uuid, error = %c, "cleanup after a failed spawn failed");
            }
            return Err(e);
        }
        let ps = self.current(&slot).await?;
        Ok(slot.info(ps))
    }

    async fn destroy(&self, uuid: &str) -> Result<()> {
        self.pipeline.instance_dir(uuid)?; // a well-formed id: it names paths below
        let name = format!("instance-{uuid}");
        let slot = self.slot(uuid).ok();
        let _op = match &slot {
            Some(s) => Some(s.op.lock().await),
            None => None,
        };
        if let Some(s) = &slot {
            let mut run = s.run();
            run.running = false;
            s.save_run(run).await?;
        }
        self.virsh
            .destroy(&name)
            .await
            .map_err(|e| failed("destroy", uuid, e))?;
        self.virsh
            .undefine(&name)
            .await
            .map_err(|e| failed("destroy", uuid, e))?;
        if let Some(s) = &slot
            && let Ok(domain) = record::load_domain(&s.dir)
        {
            self.undefine_secrets(uuid, &Self::secret_uuids(&domain))
                .await;
        }
        self.guests().remove(uuid);
        match std::fs::remove_dir_all(self.cfg.socket_dir.join(uuid)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(uuid, error = %e, "could not remove the socket directory");
            }
            _ => {}
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
        self.stop(&slot, true).await.map(|_| ())
    }

    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        // as the qemu driver (and Nova): soft = clean shutdown + start (hard when
        // the guest ignores the button), hard = a new QEMU from the definition
        self.stop(&slot, !hard).await?;
        self.start(&slot).await
    }

    async fn pause(&self, uuid: &str) -> Result<()> {
        self.set_paused(uuid, true).await
    }

    async fn unpause(&self, uuid: &str) -> Result<()> {
        self.set_paused(uuid, false).await
    }

    async fn suspend(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        match self.current(&slot).await? {
            PowerState::Running | PowerState::Paused => {}
            PowerState::Suspended => return Ok(()),
            s => return Err(self.invalid("suspend", &slot, s)),
        }
        // `--running`: a guest suspended while paused resumes running, as after
        // the qemu driver's resume (libvirt would otherwise restore it paused)
        self.virsh
            .run_with(
                ["managedsave", slot.name.as_str(), "--running"],
                self.cfg.call_timeout * 10,
            )
            .await
            .map_err(|e| failed("suspend", uuid, e))?;
        let mut run = slot.run();
        run.running = false;
        run.suspended = true;
        slot.save_run(run).await
    }

    async fn resume(&self, uuid: &str) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let ps = self.current(&slot).await?;
        if ps != PowerState::Suspended {
            return Err(self.invalid("resume", &slot, ps));
        }
        self.start(&slot).await
    }

    fn snapshot_disk_format(&self) -> &'static str {
        "qcow2"
    }

    async fn snapshot(&self, spec: &SnapshotSpec) -> Result<()> {
        let slot = self.slot(&spec.uuid)?;
        let _op = slot.op.lock().await;
        let ps = self.current(&slot).await?;
        if ps == PowerState::Running {
            // stopped vCPUs: the disk on file is consistent
            self.virsh
                .run(["suspend", slot.name.as_str()])
                .await
                .map_err(|e| failed("snapshot", &spec.uuid, e))?;
        }
        let in_use = matches!(ps, PowerState::Running | PowerState::Paused);
        let r = self.pipeline.snapshot(spec, in_use).await;
        if ps == PowerState::Running {
            self.virsh
                .run(["resume", slot.name.as_str()])
                .await
                .map_err(|e| failed("snapshot", &spec.uuid, e))?;
        }
        r
    }

    async fn resize(&self, uuid: &str, vcpus: i64, memory_mb: i64, root_gb: i64) -> Result<()> {
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let was_on = matches!(
            self.current(&slot).await?,
            PowerState::Running | PowerState::Paused
        );
        self.stop(&slot, true).await?;
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
        let was_on = matches!(
            self.current(&slot).await?,
            PowerState::Running | PowerState::Paused
        );
        self.stop(&slot, true).await?;
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
        let ps = self.current(&slot).await?;
        if ps != PowerState::Running {
            return Err(self.invalid("console", &slot, ps));
        }
        let domain = record::load_domain(&slot.dir).map_err(|e| failed("console", uuid, e))?;
        let want = match kind {
            ConsoleKind::Serial => {
                let sock = self
                    .libvirt_domain(&domain, &ConsolePassword::random(), 0)
                    .serial
                    .socket
                    .ok_or(DriverError::Unsupported("a serial console socket"))?;
                return Ok(ConsoleEndpoint {
                    kind,
                    target: ConsoleTarget::Unix(sock),
                    password: None,
                    user_password: false,
                });
            }
            ConsoleKind::Vnc => GraphicsKind::Vnc,
            ConsoleKind::Spice => GraphicsKind::Spice,
        };
        let xml = self
            .virsh
            .dumpxml_secure(&slot.name)
            .await
            .map_err(|e| failed("console", uuid, e))?;
        let g = state::graphics(&xml)
            .into_iter()
            .find(|g| g.kind == want)
            .ok_or(DriverError::Unsupported(
                "a console of this kind (disabled in the configuration)",
            ))?;
        let port = g
            .port
            .ok_or_else(|| failed("console", uuid, "libvirt shows no console port"))?;
        let host = g
            .listen
            .clone()
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        Ok(ConsoleEndpoint {
            kind,
            target: ConsoleTarget::Tcp { host, port },
            password: g.passwd.map(ConsolePassword::new),
            user_password: domain.graphics.iter().any(|g| g.password.is_some()),
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
        record::save_domain(&slot.dir, &domain).await?;
        if !matches!(
            self.current(&slot).await?,
            PowerState::Running | PowerState::Paused
        ) {
            return Ok(()); // the next start defines the domain with it
        }
        let pw = password.cloned().unwrap_or_else(ConsolePassword::random);
        let xml = self
            .virsh
            .dumpxml_secure(&slot.name)
            .await
            .map_err(|e| failed("console password", uuid, e))?;
        for g in state::graphics(&xml) {
            let pw = match g.kind {
                GraphicsKind::Vnc => vnc_password(&pw),
                GraphicsKind::Spice => pw.clone(),
            };
            let el = graphics_update_xml(&g, pw.expose());
            let file = private_temp(&slot.dir, el.as_bytes())?;
            self.virsh
                .update_device(&slot.name, file.path(), true)
                .await
                .map_err(|e| failed("console password", uuid, e))?;
        }
        Ok(())
    }

    async fn get_info(&self, uuid: &str) -> Result<InstanceInfo> {
        let slot = self.slot(uuid)?;
        let ps = self.current(&slot).await?;
        Ok(slot.info(ps))
    }

    async fn list(&self) -> Result<Vec<InstanceInfo>> {
        let slots: Vec<Arc<Slot>> = self.guests().values().cloned().collect();
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let listed: HashMap<String, String> = self
            .virsh
            .list_all()
            .await
            .map_err(|e| failed("list", "-", e))?
            .into_iter()
            .collect();
        Ok(slots
            .iter()
            .map(|s| s.info(s.power_state(listed.get(&s.name).map(String::as_str))))
            .collect())
    }

    async fn set_admin_password(&self, uuid: &str, user: &str, password: &str) -> Result<()> {
        use base64::Engine as _;
        let slot = self.slot(uuid)?;
        let _op = slot.op.lock().await;
        let domain = record::load_domain(&slot.dir).map_err(|e| failed("set password", uuid, e))?;
        if domain.guest_agent.is_none() {
            return Err(DriverError::AgentNotEnabled(uuid.to_string()));
        }
        let ps = self.current(&slot).await?;
        if ps != PowerState::Running {
            return Err(self.invalid("set password", &slot, ps));
        }
        let cmd = serde_json::json!({
            "execute": "guest-set-user-password",
            "arguments": {
                "username": user,
                "password": base64::engine::general_purpose::STANDARD.encode(password),
                "crypted": false,
            }
        });
        // libvirt owns the agent channel; the command goes through virsh's stdin
        // (never its argv), quoted for virsh's parser (the user name is an image
        // property). serde_json escapes control characters: one line.
        let line = format!(
            "qemu-agent-command {} --timeout 30 {}",
            slot.name,
            virsh::quote(&cmd.to_string())
        );
        self.virsh.run_stdin(&line).await.map(drop).map_err(|e| {
            let message = e.to_string();
            if message.contains("agent") && message.contains("not") {
                DriverError::AgentUnresponsive {
                    uuid: uuid.to_string(),
                    message,
                }
            } else {
                failed("set password", uuid, message)
            }
        })
    }

    async fn ssh_endpoint(&self, uuid: &str) -> Result<std::net::SocketAddr> {
        let slot = self.slot(uuid)?;
        let ps = self.current(&slot).await?;
        let port = slot
            .run()
            .ssh_port
            .filter(|_| matches!(ps, PowerState::Running | PowerState::Paused));
        port.map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
            .ok_or_else(|| self.invalid("ssh", &slot, ps))
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<GuestEvent>> {
        self.events_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn version_code() {
        let v = "Compiled against library: libvirt 9.0.0\nRunning hypervisor: QEMU 10.0.2\n";
        assert_eq!(hypervisor_version(v), 10_000_002);
        assert_eq!(hypervisor_version("nothing"), 0);
    }

    #[test]
    fn graphics_update_keeps_port_and_listen() {
        let g = state::LiveGraphics {
            kind: GraphicsKind::Spice,
            port: Some(5901),
            autoport: true,
            listen: Some("127.0.0.1".into()),
            passwd: Some("old".into()),
        };
        let x = graphics_update_xml(&g, "n'ew<");
        assert!(x.starts_with("<graphics type=\"spice\" port=\"5901\" autoport=\"yes\" listen=\"127.0.0.1\" passwd=\"n&apos;ew&lt;\">"), "{x}");
        assert!(
            x.contains("<listen type=\"address\" address=\"127.0.0.1\"/>"),
            "{x}"
        );
        let back = state::graphics(&x);
        assert_eq!(back[0].passwd.as_deref(), Some("n'ew<"));
    }

    #[test]
    fn untraversable_finds_a_closed_parent() {
        let t = tempfile::tempdir().unwrap();
        let inner = t.path().join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(t.path().join("a"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(untraversable(&inner, None), Some(t.path().join("a")));
    }
}
