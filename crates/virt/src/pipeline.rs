//! The host-side spawn pipeline every real driver runs: image cache → instance
//! disks (overlay or flat, optionally LUKS) → config drive or file injection →
//! domain description (`libvirt.xml`). Each step is idempotent, so a spawn
//! repeated after a crash converges: cached images and finished disks are reused,
//! an existing config drive is never rewritten (as upstream). The `prepare` driver
//! stops here; the `qemu` driver starts the guest from the result (libvirt will too).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrostack_guest::configdrive::{DriveFormat, write_config_drive};
use ferrostack_guest::inject::{self, DiskFormat, DiskRef, InjectOptions, Injection, Partition};
use ferrostack_guest::metadata::{DriveOptions, config_drive_files};
use ferrostack_guest::{GuestData, GuestKey, GuestNic, netconf};

use crate::disk::ImageSource;
use crate::disk::cache::{CacheOptions, ImageCache};
use crate::disk::crypt::DiskKeys;
use crate::disk::layout::{
    DiskPlan, EncryptionPlan, InstanceDisks, RootMode, create_disks, encryption_request,
};
use crate::disk::qemu_img::{DiskSecret, QemuImg};
use crate::domain::{
    DiskBus, DiskDevice, DiskEncryption, DomainDisk, DomainNic, Graphics, GraphicsKind,
    GraphicsListen, GuestDomain, NicBackend, QemuSecrets, SerialConsole, VirtType,
    spice_password_from_metadata,
};
use crate::driver::{DriverError, Result, SnapshotSpec, SpawnSpec};
use crate::qemu::record::RunRecord;
use crate::usernet;

/// The root disk as it was before a resize, kept in the instance directory until
/// the resize is confirmed or reverted.
pub const RESIZE_BACKUP: &str = "disk.resize-orig";

/// What the pipeline is configured with (from `[host]`, see `core::config::HostConfig`).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// `STATE/instances`: `_base/` (the cache) and one directory per guest.
    pub instances_dir: PathBuf,
    /// `STATE/keys/disk-kek`: the key-encryption keys of disk keys.
    pub disk_keys_dir: PathBuf,
    pub qemu_img: PathBuf,
    pub qemu_img_timeout: Duration,
    pub force_raw_images: bool,
    pub use_cow_images: bool,
    pub config_drive_format: DriveFormat,
    pub force_config_drive: bool,
    pub inject_partition: i32,
    pub inject_key: bool,
    pub inject_password: bool,
    pub inject_backend: inject::Backend,
    pub dhcp_domain: Option<String>,
    pub vnc: bool,
    pub spice: bool,
    /// The TCP address of VNC consoles when they cannot be unix sockets (libvirt).
    pub vnc_listen: String,
    /// The TCP address of SPICE consoles (direct SPICE clients); `unix` = a unix
    /// socket in the instance directory.
    pub spice_listen: String,
    pub virt_type: VirtType,
    pub luks_iter_time_ms: u32,
    /// How the domain is wired: `false` describes libvirt's classic shape (tap
    /// NICs, TCP consoles); `true` what the QEMU driver runs (user-mode NICs with
    /// an SSH forward, consoles, serial and guest agent on unix sockets in the
    /// instance directory).
    pub user_mode: bool,
}

/// What one spawn produced, with the time of each step.
#[derive(Debug)]
pub struct Prepared {
    pub dir: PathBuf,
    pub disks: InstanceDisks,
    pub config_drive: Option<PathBuf>,
    pub injected: bool,
    pub domain_xml: PathBuf,
    /// The guest as described in `domain_xml`.
    pub domain: GuestDomain,
    pub timings: Vec<(&'static str, Duration)>,
}

pub struct Pipeline {
    cfg: PipelineConfig,
    /// `none` where the instances' file system takes O_DIRECT, else `writeback`
    /// (Nova's choice for file-backed disks; tmpfs refuses O_DIRECT).
    disk_cache: &'static str,
    qemu_img: QemuImg,
    cache: ImageCache,
    keys: Arc<DiskKeys>,
}

fn failed(op: &'static str, uuid: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Failed {
        op,
        uuid: uuid.to_string(),
        message: e.to_string(),
    }
}

impl Pipeline {
    pub fn open(cfg: PipelineConfig, source: Arc<dyn ImageSource>) -> Result<Pipeline> {
        std::fs::create_dir_all(cfg.instances_dir.join("_base"))?;
        let qemu_img = QemuImg::new(cfg.qemu_img.clone(), cfg.qemu_img_timeout);
        let cache = ImageCache::new(
            cfg.instances_dir.join("_base"),
            source,
            qemu_img.clone(),
            CacheOptions {
                force_raw: cfg.force_raw_images,
            },
        );
        let keys = DiskKeys::open(cfg.disk_keys_dir.clone(), cfg.instances_dir.clone())
            .map(Arc::new)
            .map_err(|e| failed("open disk keys", "-", e))?;
        let disk_cache = if direct_io_supported(&cfg.instances_dir) {
            "none"
        } else {
            "writeback"
        };
        Ok(Pipeline {
            cfg,
            disk_cache,
            qemu_img,
            cache,
            keys,
        })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    pub fn instances_dir(&self) -> &Path {
        &self.cfg.instances_dir
    }

    pub fn cache(&self) -> &ImageCache {
        &self.cache
    }

    /// `instances/<uuid>`, for a well-formed server id only (no path tricks).
    pub fn instance_dir(&self, uuid: &str) -> Result<PathBuf> {
        let ok = !uuid.is_empty()
            && uuid.len() <= 64
            && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            && !uuid.starts_with('-');
        if !ok {
            return Err(DriverError::Failed {
                op: "instance path",
                uuid: uuid.to_string(),
                message: "not a server id".into(),
            });
        }
        Ok(self.cfg.instances_dir.join(uuid))
    }

    /// Runs the whole pipeline for one guest.
    pub async fn prepare(&self, spec: &SpawnSpec) -> Result<Prepared> {
        let uuid = spec.uuid.as_str();
        let dir = self.instance_dir(uuid)?;
        tokio::fs::create_dir_all(&dir).await?;
        // Keys, console passwords' sockets and guest data: ferrostack's alone. (QEMU opens
        // its files before it drops to its own user.)
        tokio::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).await?;
        let mut timings = Vec::new();
        let mut t = Instant::now();
        let mut lap = |name: &'static str, t: &mut Instant| {
            timings.push((name, t.elapsed()));
            *t = Instant::now();
        };

        let image_id = spec.image_id.as_deref().ok_or(DriverError::Unsupported(
            "booting without an image (volumes)",
        ))?;
        let base = self
            .cache
            .fetch(image_id)
            .await
            .map_err(|e| failed("fetch image", uuid, e))?;
        lap("image cache", &mut t);

        let encryption = match encryption_request(&spec.flavor_extra_specs, &spec.image_properties)
            .map_err(|e| failed("encryption", uuid, e))?
        {
            Some(req) => {
                // A new key is written and fsynced: off the reactor.
                let (keys, id) = (self.keys.clone(), uuid.to_string());
                let (secret_uuid, pass) = tokio::task::spawn_blocking(move || {
                    keys.load(&id, "disk").or_else(|_| keys.create(&id, "disk"))
                })
                .await
                .map_err(|e| failed("disk key", uuid, e))?
                .map_err(|e| failed("disk key", uuid, e))?;
                Some(EncryptionPlan {
                    mode: req.mode,
                    secret: DiskSecret::new(&pass).map_err(|e| failed("disk key", uuid, e))?,
                    secret_uuid,
                    iter_time_ms: self.cfg.luks_iter_time_ms,
                })
            }
            None => None,
        };
        let plan = DiskPlan {
            instance_dir: dir.clone(),
            base,
            root_gb: u64::try_from(spec.root_gb).unwrap_or(0),
            ephemeral_gb: u64::try_from(spec.ephemeral_gb).unwrap_or(0),
            swap_mb: u64::try_from(spec.swap_mb).unwrap_or(0),
            mode: if self.cfg.use_cow_images {
                RootMode::Overlay
            } else {
                RootMode::Flat
            },
            encryption,
        };
        let disks = create_disks(&self.qemu_img, &plan)
            .await
            .map_err(|e| failed("create disks", uuid, e))?;
        lap("disks", &mut t);

        let guest = guest_data(spec, self.cfg.dhcp_domain.clone());
        let mut config_drive = None;
        let mut injected = false;
        if self.config_drive_required(spec) {
            let dest = dir.join("disk.config");
            if !tokio::fs::try_exists(&dest).await.unwrap_or(false) {
                let files = config_drive_files(
                    &guest,
                    &DriveOptions {
                        network_template: false,
                    },
                );
                let format = self.cfg.config_drive_format;
                let d = dest.clone();
                tokio::task::spawn_blocking(move || write_config_drive(&files, format, &d))
                    .await
                    .map_err(|e| failed("config drive", uuid, e))?
                    .map_err(|e| failed("config drive", uuid, e))?;
            }
            config_drive = Some(dest);
            lap("config drive", &mut t);
        } else if let Ok(partition) = Partition::try_from(self.cfg.inject_partition)
            && !matches!(partition, Partition::Never)
        {
            let what = Injection {
                key: spec.key_data.clone().filter(|_| self.cfg.inject_key),
                net: netconf::interfaces(&guest),
                admin_password: spec
                    .admin_password
                    .clone()
                    .filter(|_| self.cfg.inject_password),
                metadata: Some(spec.metadata.clone()).filter(|m| !m.is_empty()),
                files: spec.files.clone(),
            };
            let has_work = what.key.is_some()
                || what.net.is_some()
                || what.admin_password.is_some()
                || what.metadata.is_some()
                || !what.files.is_empty();
            if has_work {
                let root = disks
                    .disks
                    .iter()
                    .find(|d| d.name == "disk")
                    .ok_or_else(|| failed("inject", uuid, "no root disk"))?;
                let secret = plan.encryption.as_ref().map(|e| &e.secret);
                let disk = DiskRef {
                    path: root.path.clone(),
                    format: if root.format == "qcow2" {
                        DiskFormat::Qcow2
                    } else {
                        DiskFormat::Raw
                    },
                    luks_secret_file: secret.map(|s| s.path().to_path_buf()),
                };
                let opts = InjectOptions {
                    work_dir: dir.clone(),
                    backend: self.cfg.inject_backend,
                    // the libguestfs appliance hangs where KVM opens but does not run
                    guestfs_force_tcg: self.cfg.virt_type == VirtType::Qemu,
                    ..InjectOptions::default()
                };
                tokio::task::spawn_blocking(move || inject::inject(&disk, partition, &what, &opts))
                    .await
                    .map_err(|e| failed("inject", uuid, e))?
                    .map_err(|e| failed("inject", uuid, e))?;
                injected = true;
                lap("injection", &mut t);
            }
        }

        let domain = self.domain(spec, &dir, &disks, config_drive.as_deref());
        let xml = domain.to_libvirt_xml();
        let xml_path = dir.join("libvirt.xml");
        write_private(xml_path.clone(), xml.into_bytes())
            .await
            .map_err(|e| failed("domain xml", uuid, e))?;
        lap("domain", &mut t);
        let steps: Vec<String> = timings
            .iter()
            .map(|(n, d)| format!("{n}={}ms", d.as_millis()))
            .collect();
        tracing::info!(uuid, steps = %steps.join(" "), "guest prepared");

        Ok(Prepared {
            dir,
            disks,
            config_drive,
            injected,
            domain_xml: xml_path,
            domain,
            timings,
        })
    }

    /// Upstream's `configdrive.required_by`.
    fn config_drive_required(&self, spec: &SpawnSpec) -> bool {
        spec.config_drive
            || self.cfg.force_config_drive
            || spec
                .image_properties
                .get("img_config_drive")
                .is_some_and(|v| v == "mandatory")
    }

    /// The typed domain description of a prepared guest.
    pub fn domain(
        &self,
        spec: &SpawnSpec,
        dir: &Path,
        disks: &InstanceDisks,
        config_drive: Option<&Path>,
    ) -> GuestDomain {
        let mut out = Vec::new();
        let mut letter = b'a';
        for d in &disks.disks {
            out.push(DomainDisk {
                path: d.path.clone(),
                format: d.format.clone(),
                device: DiskDevice::Disk,
                bus: DiskBus::Virtio,
                target_dev: format!("vd{}", letter as char),
                readonly: false,
                cache: Some(self.disk_cache.into()),
                backing: d.backing.clone(),
                encryption: d
                    .secret_uuid
                    .clone()
                    .map(|secret_uuid| DiskEncryption { secret_uuid }),
                serial: None,
            });
            letter += 1;
        }
        if let Some(cd) = config_drive {
            let iso = matches!(self.cfg.config_drive_format, DriveFormat::Iso9660);
            out.push(DomainDisk {
                path: cd.to_path_buf(),
                format: "raw".into(),
                device: if iso {
                    DiskDevice::Cdrom
                } else {
                    DiskDevice::Disk
                },
                bus: if iso { DiskBus::Ide } else { DiskBus::Virtio },
                target_dev: if iso {
                    "hda".into()
                } else {
                    format!("vd{}", letter as char)
                },
                readonly: true,
                cache: Some(self.disk_cache.into()),
                backing: None,
                encryption: None,
                serial: None,
            });
        }
        let password = spice_password_from_metadata(&spec.metadata);
        let listen = |kind: GraphicsKind| match kind {
            GraphicsKind::Vnc if self.cfg.user_mode => GraphicsListen::Socket(dir.join("vnc.sock")),
            GraphicsKind::Spice if self.cfg.user_mode && self.cfg.spice_listen == "unix" => {
                GraphicsListen::Socket(dir.join("spice.sock"))
            }
            GraphicsKind::Vnc => GraphicsListen::Address {
                address: self.cfg.vnc_listen.clone(),
                port: None,
            },
            GraphicsKind::Spice => GraphicsListen::Address {
                address: self.cfg.spice_listen.clone(),
                port: None,
            },
        };
        let mut graphics = Vec::new();
        if self.cfg.vnc {
            graphics.push(Graphics {
                kind: GraphicsKind::Vnc,
                listen: listen(GraphicsKind::Vnc),
                password: password.clone(),
            });
        }
        if self.cfg.spice {
            graphics.push(Graphics {
                kind: GraphicsKind::Spice,
                listen: listen(GraphicsKind::Spice),
                password,
            });
        }
        let nics = spec
            .nics
            .iter()
            .enumerate()
            .map(|(i, n)| DomainNic {
                mac: n.mac.clone(),
                model: "virtio".into(),
                port_id: n.port_id.clone(),
                backend: match self.cfg.user_mode {
                    false => NicBackend::Tap,
                    true => usernet::user_net(
                        n,
                        Some(spec.hostname.as_str()),
                        self.cfg.dhcp_domain.as_deref(),
                        i == 0,
                    )
                    .map_or(NicBackend::Tap, NicBackend::User),
                },
            })
            .collect();
        let agent = spec
            .image_properties
            .get("hw_qemu_guest_agent")
            .is_some_and(|v| is_true(v));
        GuestDomain {
            uuid: spec.uuid.clone(),
            name: format!("instance-{}", spec.uuid),
            vcpus: u32::try_from(spec.vcpus).unwrap_or(1).max(1),
            memory_mb: u64::try_from(spec.memory_mb).unwrap_or(0),
            virt_type: self.cfg.virt_type,
            machine: None,
            emulator: None,
            disks: out,
            nics,
            serial: SerialConsole {
                log: dir.join("console.log"),
                socket: self.cfg.user_mode.then(|| dir.join("serial.sock")),
            },
            graphics,
            guest_agent: agent.then(|| dir.join("qga.sock")),
            rng: true,
            sysinfo: true,
            kernel: None,
        }
    }

    /// The passphrase files of a guest's encrypted disks for QEMU's command line;
    /// the files disappear when the returned guards are dropped (once QEMU has
    /// opened the disks).
    pub fn disk_secrets(
        &self,
        uuid: &str,
        domain: &GuestDomain,
    ) -> Result<(QemuSecrets, Vec<DiskSecret>)> {
        let mut map = QemuSecrets::default();
        let mut guards = Vec::new();
        for d in &domain.disks {
            let Some(e) = &d.encryption else { continue };
            let (secret_uuid, pass) = self
                .keys
                .load(uuid, "disk")
                .map_err(|e| failed("disk key", uuid, e))?;
            if secret_uuid != e.secret_uuid {
                return Err(failed(
                    "disk key",
                    uuid,
                    format!(
                        "no key for secret {} of disk {}",
                        e.secret_uuid, d.target_dev
                    ),
                ));
            }
            let secret = DiskSecret::new(&pass).map_err(|e| failed("disk key", uuid, e))?;
            map.disks
                .insert(e.secret_uuid.clone(), secret.path().to_path_buf());
            guards.push(secret);
        }
        Ok((map, guards))
    }

    /// Rewrites `libvirt.xml` from a changed domain (resize).
    pub async fn write_domain_xml(&self, domain: &GuestDomain) -> Result<()> {
        let path = self.instance_dir(&domain.uuid)?.join("libvirt.xml");
        write_private(path, domain.to_libvirt_xml().into_bytes())
            .await
            .map_err(|e| failed("domain xml", &domain.uuid, e))
    }

    /// Removes a guest's directory and its disk keys. Missing = done.
    pub async fn remove(&self, uuid: &str) -> Result<()> {
        let dir = self.instance_dir(uuid)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.keys
            .delete_instance(uuid)
            .map_err(|e| failed("delete disk keys", uuid, e))?;
        Ok(())
    }

    /// Writes the guest's root disk, flattened, to `spec.dest`. `in_use`: a paused
    /// QEMU holds the disk open (read with force-share; it writes nothing).
    pub async fn snapshot(&self, spec: &SnapshotSpec, in_use: bool) -> Result<()> {
        let uuid = spec.uuid.as_str();
        let root = self.instance_dir(uuid)?.join("disk");
        let secret = match self.keys.load(uuid, "disk") {
            Ok((_, pass)) => Some(DiskSecret::new(&pass).map_err(|e| failed("snapshot", uuid, e))?),
            Err(_) => None,
        };
        let format = disk_format_of(&root).await;
        self.qemu_img
            .convert(
                &root,
                &format,
                &spec.dest,
                &spec.disk_format,
                None,
                secret.as_ref(),
                in_use,
            )
            .await
            .map_err(|e| failed("snapshot", uuid, e))
    }

    /// Grows the root disk to `root_gb` (never shrinks it).
    pub async fn grow_root(&self, uuid: &str, root_gb: i64) -> Result<()> {
        let root = self.instance_dir(uuid)?.join("disk");
        let Ok(root_gb) = u64::try_from(root_gb) else {
            return Ok(());
        };
        if root_gb == 0 {
            return Ok(());
        }
        let secret = match self.keys.load(uuid, "disk") {
            Ok((_, pass)) => Some(DiskSecret::new(&pass).map_err(|e| failed("resize", uuid, e))?),
            Err(_) => None,
        };
        let format = disk_format_of(&root).await;
        let info = self
            .qemu_img
            .info(&root, Some(&format), secret.as_ref())
            .await
            .map_err(|e| failed("resize", uuid, e))?;
        let want = root_gb << 30;
        if want > info.virtual_size {
            self.qemu_img
                .resize(&root, &format, want, secret.as_ref())
                .await
                .map_err(|e| failed("resize", uuid, e))?;
        }
        Ok(())
    }

    /// Before a resize (the guest stopped): keeps the root disk as it is
    /// (`disk.resize-orig`) for a revert, unless `run` says a copy is kept already
    /// (a second resize before confirm/revert keeps the first). Returns whether
    /// `run` changed (the caller saves it).
    pub async fn keep_resize_backup(&self, uuid: &str, run: &mut RunRecord) -> Result<bool> {
        if run.resize_backup {
            return Ok(false);
        }
        let dir = self.instance_dir(uuid)?;
        let (from, to) = (dir.join("disk"), dir.join(RESIZE_BACKUP));
        tokio::task::spawn_blocking(move || std::fs::copy(&from, &to))
            .await
            .map_err(|e| failed("resize", uuid, e))??;
        run.resize_backup = true;
        Ok(true)
    }

    /// A confirmed resize: the kept copy goes (missing = done). Returns whether
    /// `run` changed.
    pub async fn drop_resize_backup(&self, uuid: &str, run: &mut RunRecord) -> Result<bool> {
        if !run.resize_backup {
            return Ok(false);
        }
        match tokio::fs::remove_file(self.instance_dir(uuid)?.join(RESIZE_BACKUP)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        run.resize_backup = false;
        Ok(true)
    }

    /// A reverted resize (the guest stopped): the kept copy is the root disk again.
    /// Returns whether `run` changed.
    pub async fn restore_resize_backup(&self, uuid: &str, run: &mut RunRecord) -> Result<bool> {
        if !run.resize_backup {
            return Ok(false);
        }
        let dir = self.instance_dir(uuid)?;
        tokio::fs::rename(dir.join(RESIZE_BACKUP), dir.join("disk")).await?;
        run.resize_backup = false;
        Ok(true)
    }

    /// Removes cached images no guest on this host uses and older than `min_age`.
    pub async fn prune_cache(&self, min_age: Duration) -> Result<Vec<PathBuf>> {
        let mut in_use = std::collections::HashSet::new();
        if let Ok(mut rd) = tokio::fs::read_dir(&self.cfg.instances_dir).await {
            while let Ok(Some(e)) = rd.next_entry().await {
                let info = e.path().join("disk.info");
                let Ok(text) = tokio::fs::read_to_string(&info).await else {
                    continue;
                };
                let Ok(map) = serde_json::from_str::<BTreeMap<String, String>>(&text) else {
                    continue;
                };
                for (path, format) in map {
                    if let Ok(i) = self
                        .qemu_img
                        .info(Path::new(&path), Some(&format), None)
                        .await
                        && let Some(b) = i.backing_filename
                    {
                        in_use.insert(PathBuf::from(b));
                    }
                }
            }
        }
        self.cache
            .prune(&in_use, min_age)
            .await
            .map_err(|e| failed("prune image cache", "-", e))
    }
}

/// A crash-safe 0600 write, off the async reactor (it fsyncs).
async fn write_private(path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        ferrostack_core::fsutil::write_private_atomic(&path, &bytes)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Whether files in `dir` can be opened with O_DIRECT (a probe file is made and removed).
fn direct_io_supported(dir: &Path) -> bool {
    use rustix::fs::{Mode, OFlags};
    let probe = dir.join(".direct-io-probe");
    let ok = rustix::fs::open(
        &probe,
        OFlags::CREATE | OFlags::WRONLY | OFlags::DIRECT,
        Mode::from_raw_mode(0o600),
    )
    .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// An image property's boolean (`yes`, `true`, `1`, ...), as Nova's `strutils.bool_from_string`.
pub fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// The trusted format of an instance disk, from `disk.info` (never probed).
async fn disk_format_of(path: &Path) -> String {
    let info = path.with_file_name("disk.info");
    if let Ok(text) = tokio::fs::read_to_string(&info).await
        && let Ok(map) = serde_json::from_str::<BTreeMap<String, String>>(&text)
        && let Some(f) = map.get(&path.to_string_lossy().to_string())
    {
        return f.clone();
    }
    "qcow2".into()
}

/// What the guest receives, from the spawn spec.
pub fn guest_data(spec: &SpawnSpec, dhcp_domain: Option<String>) -> GuestData {
    GuestData {
        uuid: spec.uuid.clone(),
        name: spec.name.clone(),
        hostname: spec.hostname.clone(),
        dhcp_domain,
        project_id: spec.project_id.clone(),
        availability_zone: Some(spec.availability_zone.clone()).filter(|a| !a.is_empty()),
        launch_index: spec.launch_index,
        reservation_id: spec.reservation_id.clone(),
        image_id: spec.image_id.clone(),
        flavor_name: spec.flavor_name.clone(),
        security_groups: if spec.security_groups.is_empty() {
            vec!["default".into()]
        } else {
            spec.security_groups.clone()
        },
        metadata: spec.metadata.clone(),
        keys: spec
            .key_data
            .iter()
            .map(|k| GuestKey {
                name: spec.key_name.clone().unwrap_or_default(),
                key_type: if k.starts_with("-----BEGIN CERTIFICATE") {
                    "x509".into()
                } else {
                    "ssh".into()
                },
                data: k.clone(),
            })
            .collect(),
        files: spec.files.clone(),
        user_data: spec.user_data.clone(),
        admin_pass: spec.admin_password.clone(),
        nics: spec
            .nics
            .iter()
            .map(|n| GuestNic {
                port_id: n.port_id.clone(),
                network_id: n.network_id.clone(),
                mac: n.mac.clone(),
                mtu: n.mtu,
                ips: n.addresses.clone(),
            })
            .collect(),
        vendor_data: serde_json::json!({}),
        created_at: spec.created_at,
    }
}
