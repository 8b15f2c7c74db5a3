//! One typed description of a guest ([`GuestDomain`]: vCPUs, memory, disks with
//! bus/cache/backing/encryption, the config drive, NICs, the serial console file,
//! VNC/SPICE graphics with a password) and its two renderings: libvirt domain XML
//! ([`GuestDomain::to_libvirt_xml`], written as `instances/<uuid>/libvirt.xml`)
//! and a QEMU command line ([`GuestDomain::to_qemu_argv`]).
//!
//! Secrets never travel in clear through here: disks name their LUKS passphrase by
//! libvirt secret UUID (the value is set out of band, see [`libvirt_secret_xml`]),
//! the QEMU command line refers to secret *files*, and the console password is a
//! [`ConsolePassword`] whose `Debug` is redacted. Only the XML carries the console
//! password (`passwd=`), as libvirt requires; the file is written 0600.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quick_xml::Writer;
use quick_xml::events::BytesText;

/// The metadata key upstream reads a console password from.
pub const SPICE_PASSWORD_KEY: &str = "spice_passwd";

/// Hardware acceleration: `kvm` where a real probe says guests run, else `qemu` (TCG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtType {
    Kvm,
    Qemu,
}

impl VirtType {
    pub fn as_str(self) -> &'static str {
        match self {
            VirtType::Kvm => "kvm",
            VirtType::Qemu => "qemu",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskDevice {
    Disk,
    Cdrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    Virtio,
    Ide,
    Sata,
    Scsi,
}

impl DiskBus {
    fn as_str(self) -> &'static str {
        match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Ide => "ide",
            DiskBus::Sata => "sata",
            DiskBus::Scsi => "scsi",
        }
    }
}

/// A LUKS-encrypted disk: its passphrase is the libvirt secret `secret_uuid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskEncryption {
    pub secret_uuid: String,
}

#[derive(Debug, Clone)]
pub struct DomainDisk {
    pub path: PathBuf,
    /// `raw` or `qcow2` (the trusted format from `disk.info`, never probed).
    pub format: String,
    pub device: DiskDevice,
    pub bus: DiskBus,
    /// `vda`, `hda`, ...
    pub target_dev: String,
    pub readonly: bool,
    /// `none`, `writeback`, ... (`None`: the hypervisor's default).
    pub cache: Option<String>,
    /// The backing file and its format, for an overlay.
    pub backing: Option<(PathBuf, String)>,
    pub encryption: Option<DiskEncryption>,
    pub serial: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DomainNic {
    pub mac: String,
    /// `virtio`, `e1000`, ...
    pub model: String,
    /// The Neutron port; the tap device is named after it as upstream
    /// (`tap` + the first 11 characters).
    pub port_id: String,
}

impl DomainNic {
    pub fn tap_name(&self) -> String {
        format!("tap{}", self.port_id.chars().take(11).collect::<String>())
    }
}

/// A console password. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsolePassword(String);

impl ConsolePassword {
    pub fn new(password: impl Into<String>) -> ConsolePassword {
        ConsolePassword(password.into())
    }

    /// The password itself, for the one place that must hand it to the hypervisor.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ConsolePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsolePassword(<redacted>)")
    }
}

/// The console password a server asked for through its `spice_passwd` metadata key
/// (empty = none).
pub fn spice_password_from_metadata(
    metadata: &BTreeMap<String, String>,
) -> Option<ConsolePassword> {
    metadata
        .get(SPICE_PASSWORD_KEY)
        .filter(|p| !p.is_empty())
        .map(|p| ConsolePassword::new(p.clone()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphicsKind {
    Vnc,
    Spice,
}

#[derive(Debug, Clone)]
pub struct Graphics {
    pub kind: GraphicsKind,
    pub listen: String,
    /// A fixed TCP port; `None` lets the hypervisor choose (`autoport`).
    pub port: Option<u16>,
    pub password: Option<ConsolePassword>,
}

/// Direct kernel boot (the tiny test guests; images with a kernel/ramdisk pair).
#[derive(Debug, Clone)]
pub struct KernelBoot {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GuestDomain {
    pub uuid: String,
    /// `instance-<uuid>`.
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub virt_type: VirtType,
    /// The machine type (`None`: `pc`, whose IDE bus carries the ISO config drive).
    pub machine: Option<String>,
    pub emulator: Option<PathBuf>,
    pub disks: Vec<DomainDisk>,
    pub nics: Vec<DomainNic>,
    /// The serial console is written to this file (`instances/<uuid>/console.log`).
    pub serial_log: PathBuf,
    pub graphics: Vec<Graphics>,
    /// Upstream's SMBIOS identity (`OpenStack Nova`, serial and uuid = server id),
    /// which cloud-init uses to recognise an OpenStack guest.
    pub sysinfo: bool,
    pub kernel: Option<KernelBoot>,
}

/// Secret files the QEMU command line refers to (by path, never by value).
#[derive(Debug, Clone, Default)]
pub struct QemuSecrets {
    /// libvirt secret UUID of a disk → a 0600 file holding its passphrase.
    pub disks: BTreeMap<String, PathBuf>,
    /// A 0600 file holding the SPICE password.
    pub spice_password: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("disk {0} is encrypted but no secret file was given for it")]
    MissingSecret(String),
    #[error("a SPICE password is set but no secret file was given for it")]
    MissingSpiceSecret,
}

const NOVA_VERSION: &str = concat!("ferrostack ", env!("CARGO_PKG_VERSION"));

type W = Writer<Vec<u8>>;
type XmlResult = std::io::Result<()>;

fn text(w: &mut W, name: &str, value: &str) -> XmlResult {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl GuestDomain {
    fn machine(&self) -> &str {
        self.machine.as_deref().unwrap_or("pc")
    }

    /// The libvirt domain XML.
    pub fn to_libvirt_xml(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        self.write_xml(&mut w)
            .expect("writing XML to memory cannot fail");
        let mut out = String::from_utf8(w.into_inner()).expect("XML is UTF-8");
        out.push('\n');
        out
    }

    fn write_xml(&self, w: &mut W) -> XmlResult {
        w.create_element("domain")
            .with_attribute(("type", self.virt_type.as_str()))
            .write_inner_content(|w| {
                text(w, "name", &self.name)?;
                text(w, "uuid", &self.uuid)?;
                w.create_element("memory")
                    .with_attribute(("unit", "MiB"))
                    .write_text_content(BytesText::new(&self.memory_mb.to_string()))?;
                text(w, "vcpu", &self.vcpus.to_string())?;
                if self.sysinfo {
                    self.write_sysinfo(w)?;
                }
                self.write_os(w)?;
                w.create_element("features").write_inner_content(|w| {
                    w.create_element("acpi").write_empty()?;
                    w.create_element("apic").write_empty()?;
                    Ok::<_, std::io::Error>(())
                })?;
                if self.virt_type == VirtType::Kvm {
                    w.create_element("cpu")
                        .with_attribute(("mode", "host-model"))
                        .write_empty()?;
                }
                w.create_element("clock")
                    .with_attribute(("offset", "utc"))
                    .write_empty()?;
                text(w, "on_poweroff", "destroy")?;
                text(w, "on_reboot", "restart")?;
                text(w, "on_crash", "destroy")?;
                w.create_element("devices")
                    .write_inner_content(|w| self.write_devices(w))?;
                Ok::<_, std::io::Error>(())
            })?;
        Ok(())
    }

    fn write_sysinfo(&self, w: &mut W) -> XmlResult {
        let entries = [
            ("manufacturer", "OpenStack Foundation"),
            ("product", "OpenStack Nova"),
            ("version", NOVA_VERSION),
            ("serial", self.uuid.as_str()),
            ("uuid", self.uuid.as_str()),
            ("family", "Virtual Machine"),
        ];
        w.create_element("sysinfo")
            .with_attribute(("type", "smbios"))
            .write_inner_content(|w| {
                w.create_element("system").write_inner_content(|w| {
                    for (name, value) in entries {
                        w.create_element("entry")
                            .with_attribute(("name", name))
                            .write_text_content(BytesText::new(value))?;
                    }
                    Ok::<_, std::io::Error>(())
                })?;
                Ok::<_, std::io::Error>(())
            })?;
        Ok(())
    }

    fn write_os(&self, w: &mut W) -> XmlResult {
        w.create_element("os").write_inner_content(|w| {
            w.create_element("type")
                .with_attribute(("arch", "x86_64"))
                .with_attribute(("machine", self.machine()))
                .write_text_content(BytesText::new("hvm"))?;
            if let Some(k) = &self.kernel {
                text(w, "kernel", &path_str(&k.kernel))?;
                if let Some(i) = &k.initrd {
                    text(w, "initrd", &path_str(i))?;
                }
                if let Some(c) = &k.cmdline {
                    text(w, "cmdline", c)?;
                }
            } else {
                w.create_element("boot")
                    .with_attribute(("dev", "hd"))
                    .write_empty()?;
            }
            if self.sysinfo {
                w.create_element("smbios")
                    .with_attribute(("mode", "sysinfo"))
                    .write_empty()?;
            }
            Ok::<_, std::io::Error>(())
        })?;
        Ok(())
    }

    fn write_devices(&self, w: &mut W) -> XmlResult {
        if let Some(e) = &self.emulator {
            text(w, "emulator", &path_str(e))?;
        }
        for d in &self.disks {
            write_disk(w, d)?;
        }
        for n in &self.nics {
            w.create_element("interface")
                .with_attribute(("type", "ethernet"))
                .write_inner_content(|w| {
                    w.create_element("mac")
                        .with_attribute(("address", n.mac.as_str()))
                        .write_empty()?;
                    w.create_element("model")
                        .with_attribute(("type", n.model.as_str()))
                        .write_empty()?;
                    w.create_element("target")
                        .with_attribute(("dev", n.tap_name().as_str()))
                        .write_empty()?;
                    Ok::<_, std::io::Error>(())
                })?;
        }
        let log = path_str(&self.serial_log);
        w.create_element("serial")
            .with_attribute(("type", "file"))
            .write_inner_content(|w| {
                w.create_element("source")
                    .with_attribute(("path", log.as_str()))
                    .write_empty()?;
                w.create_element("target")
                    .with_attribute(("port", "0"))
                    .write_empty()?;
                Ok::<_, std::io::Error>(())
            })?;
        if !self.graphics.is_empty() {
            w.create_element("input")
                .with_attribute(("type", "tablet"))
                .with_attribute(("bus", "usb"))
                .write_empty()?;
        }
        for g in &self.graphics {
            let kind = match g.kind {
                GraphicsKind::Vnc => "vnc",
                GraphicsKind::Spice => "spice",
            };
            let port = g.port.map(|p| p.to_string());
            let mut el = w.create_element("graphics").with_attribute(("type", kind));
            el = match &port {
                Some(p) => el
                    .with_attribute(("port", p.as_str()))
                    .with_attribute(("autoport", "no")),
                None => el.with_attribute(("autoport", "yes")),
            };
            el = el.with_attribute(("listen", g.listen.as_str()));
            if let Some(pw) = &g.password {
                el = el.with_attribute(("passwd", pw.expose()));
            }
            el.write_inner_content(|w| {
                w.create_element("listen")
                    .with_attribute(("type", "address"))
                    .with_attribute(("address", g.listen.as_str()))
                    .write_empty()?;
                Ok::<_, std::io::Error>(())
            })?;
        }
        if !self.graphics.is_empty() {
            w.create_element("video").write_inner_content(|w| {
                w.create_element("model")
                    .with_attribute(("type", "virtio"))
                    .write_empty()?;
                Ok::<_, std::io::Error>(())
            })?;
        }
        w.create_element("memballoon")
            .with_attribute(("model", "virtio"))
            .write_empty()?;
        Ok(())
    }

    /// The QEMU command line (without the program), for the direct QEMU driver.
    /// Passwords and passphrases are referenced as files; the VNC password (which
    /// QEMU cannot read from a file) is set over QMP after start (`password=on`).
    pub fn to_qemu_argv(&self, secrets: &QemuSecrets) -> Result<Vec<String>, DomainError> {
        let mut a: Vec<String> = Vec::new();
        let push = |a: &mut Vec<String>, k: &str, v: String| {
            a.push(k.to_string());
            a.push(v);
        };
        push(
            &mut a,
            "-name",
            format!("guest={},debug-threads=on", opt(&self.name)),
        );
        push(&mut a, "-uuid", self.uuid.clone());
        let accel = match self.virt_type {
            VirtType::Kvm => "kvm",
            VirtType::Qemu => "tcg",
        };
        push(
            &mut a,
            "-machine",
            format!("{},accel={accel}", self.machine()),
        );
        if self.virt_type == VirtType::Kvm {
            push(&mut a, "-cpu", "host".into());
        }
        push(&mut a, "-m", format!("{}M", self.memory_mb));
        push(&mut a, "-smp", self.vcpus.to_string());
        a.extend(["-nodefaults", "-no-user-config"].map(String::from));
        if self.sysinfo {
            push(
                &mut a,
                "-smbios",
                format!(
                    "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,version={},serial={},uuid={},family=Virtual Machine",
                    opt(NOVA_VERSION),
                    opt(&self.uuid),
                    opt(&self.uuid)
                ),
            );
        }
        if let Some(k) = &self.kernel {
            push(&mut a, "-kernel", path_str(&k.kernel));
            if let Some(i) = &k.initrd {
                push(&mut a, "-initrd", path_str(i));
            }
            if let Some(c) = &k.cmdline {
                push(&mut a, "-append", c.clone());
            }
        }
        for (i, d) in self.disks.iter().enumerate() {
            let mut drive = format!("file={},format={}", opt(&path_str(&d.path)), d.format);
            if let Some(e) = &d.encryption {
                let file = secrets
                    .disks
                    .get(&e.secret_uuid)
                    .ok_or_else(|| DomainError::MissingSecret(d.target_dev.clone()))?;
                let id = format!("sec{i}");
                push(
                    &mut a,
                    "-object",
                    format!("secret,id={id},file={},format=raw", opt(&path_str(file))),
                );
                drive.push_str(&format!(",encrypt.format=luks,encrypt.key-secret={id}"));
            }
            let iface = match (d.bus, d.device) {
                (_, DiskDevice::Cdrom) => ",if=ide,media=cdrom".to_string(),
                (DiskBus::Ide, _) => ",if=ide".to_string(),
                (DiskBus::Virtio, _) => ",if=virtio".to_string(),
                (DiskBus::Sata | DiskBus::Scsi, _) => ",if=none".to_string(),
            };
            drive.push_str(&iface);
            if (d.device == DiskDevice::Cdrom || d.bus == DiskBus::Ide)
                && let Some(idx) = ide_index(&d.target_dev)
            {
                drive.push_str(&format!(",index={idx}"));
            }
            if let Some(c) = &d.cache {
                drive.push_str(&format!(",cache={c}"));
            }
            if d.readonly {
                drive.push_str(",readonly=on");
            }
            if let Some(s) = &d.serial {
                drive.push_str(&format!(",serial={}", opt(s)));
            }
            push(&mut a, "-drive", drive);
        }
        for (i, n) in self.nics.iter().enumerate() {
            push(
                &mut a,
                "-netdev",
                format!(
                    "tap,id=net{i},ifname={},script=no,downscript=no",
                    n.tap_name()
                ),
            );
            let dev = if n.model == "virtio" {
                "virtio-net-pci"
            } else {
                n.model.as_str()
            };
            push(
                &mut a,
                "-device",
                format!("{dev},netdev=net{i},mac={}", opt(&n.mac)),
            );
        }
        push(
            &mut a,
            "-serial",
            format!("file:{}", path_str(&self.serial_log)),
        );
        let mut display = false;
        for g in &self.graphics {
            display = true;
            match g.kind {
                GraphicsKind::Vnc => {
                    let disp = match g.port {
                        Some(p) => format!("{}", p.saturating_sub(5900)),
                        None => "0,to=99".into(),
                    };
                    let mut v = format!("{}:{disp}", opt(&g.listen));
                    if g.password.is_some() {
                        v.push_str(",password=on");
                    }
                    push(&mut a, "-vnc", v);
                }
                GraphicsKind::Spice => {
                    let mut v = format!("port={},addr={}", g.port.unwrap_or(5930), opt(&g.listen));
                    if g.password.is_some() {
                        let file = secrets
                            .spice_password
                            .as_ref()
                            .ok_or(DomainError::MissingSpiceSecret)?;
                        push(
                            &mut a,
                            "-object",
                            format!("secret,id=spicepw,file={},format=raw", opt(&path_str(file))),
                        );
                        v.push_str(",password-secret=spicepw");
                    } else {
                        v.push_str(",disable-ticketing=on");
                    }
                    push(&mut a, "-spice", v);
                }
            }
        }
        if display {
            push(&mut a, "-device", "virtio-vga".into());
            a.push("-usb".into());
            push(&mut a, "-device", "usb-tablet".into());
        } else {
            push(&mut a, "-display", "none".into());
        }
        Ok(a)
    }
}

/// `hda` → 0, `hdb` → 1, ...
fn ide_index(dev: &str) -> Option<u32> {
    let c = dev.strip_prefix("hd")?.chars().next()?;
    c.is_ascii_lowercase().then(|| c as u32 - 'a' as u32)
}

/// A value inside a QEMU `key=value,...` option: commas are doubled.
fn opt(v: &str) -> String {
    v.replace(',', ",,")
}

fn write_disk(w: &mut W, d: &DomainDisk) -> XmlResult {
    let device = match d.device {
        DiskDevice::Disk => "disk",
        DiskDevice::Cdrom => "cdrom",
    };
    w.create_element("disk")
        .with_attribute(("type", "file"))
        .with_attribute(("device", device))
        .write_inner_content(|w| {
            let mut drv = w
                .create_element("driver")
                .with_attribute(("name", "qemu"))
                .with_attribute(("type", d.format.as_str()));
            if let Some(c) = &d.cache {
                drv = drv.with_attribute(("cache", c.as_str()));
            }
            drv.write_empty()?;
            let src = path_str(&d.path);
            let el = w
                .create_element("source")
                .with_attribute(("file", src.as_str()));
            match &d.encryption {
                Some(e) => {
                    el.write_inner_content(|w| {
                        w.create_element("encryption")
                            .with_attribute(("format", "luks"))
                            .write_inner_content(|w| {
                                w.create_element("secret")
                                    .with_attribute(("type", "passphrase"))
                                    .with_attribute(("uuid", e.secret_uuid.as_str()))
                                    .write_empty()?;
                                Ok::<_, std::io::Error>(())
                            })?;
                        Ok::<_, std::io::Error>(())
                    })?;
                }
                None => {
                    el.write_empty()?;
                }
            }
            if let Some((bpath, bformat)) = &d.backing {
                let b = path_str(bpath);
                w.create_element("backingStore")
                    .with_attribute(("type", "file"))
                    .write_inner_content(|w| {
                        w.create_element("format")
                            .with_attribute(("type", bformat.as_str()))
                            .write_empty()?;
                        w.create_element("source")
                            .with_attribute(("file", b.as_str()))
                            .write_empty()?;
                        w.create_element("backingStore").write_empty()?;
                        Ok::<_, std::io::Error>(())
                    })?;
            }
            w.create_element("target")
                .with_attribute(("dev", d.target_dev.as_str()))
                .with_attribute(("bus", d.bus.as_str()))
                .write_empty()?;
            if d.readonly {
                w.create_element("readonly").write_empty()?;
            }
            if let Some(s) = &d.serial {
                text(w, "serial", s)?;
            }
            Ok::<_, std::io::Error>(())
        })?;
    Ok(())
}

/// The libvirt secret definition of a disk passphrase (`virsh secret-define`); the
/// value is set separately (`virsh secret-set-value --file`), never in this XML.
/// The secret's usage is the disk file it unlocks.
pub fn libvirt_secret_xml(secret_uuid: &str, instance_uuid: &str, disk: &Path) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let usage = path_str(disk);
    w.create_element("secret")
        .with_attribute(("ephemeral", "no"))
        .with_attribute(("private", "yes"))
        .write_inner_content(|w| {
            text(w, "uuid", secret_uuid)?;
            text(
                w,
                "description",
                &format!("ferrostack: LUKS passphrase of a disk of instance {instance_uuid}"),
            )?;
            w.create_element("usage")
                .with_attribute(("type", "volume"))
                .write_inner_content(|w| text(w, "volume", &usage))?;
            Ok::<_, std::io::Error>(())
        })
        .expect("writing XML to memory cannot fail");
    let mut out = String::from_utf8(w.into_inner()).expect("XML is UTF-8");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sample() -> GuestDomain {
        GuestDomain {
            uuid: "4f1c2f3e-9a5b-4c1d-8e2f-0a1b2c3d4e5f".into(),
            name: "instance-4f1c2f3e-9a5b-4c1d-8e2f-0a1b2c3d4e5f".into(),
            vcpus: 2,
            memory_mb: 512,
            virt_type: VirtType::Qemu,
            machine: None,
            emulator: None,
            disks: vec![
                DomainDisk {
                    path: "/var/lib/fs/instances/x/disk".into(),
                    format: "qcow2".into(),
                    device: DiskDevice::Disk,
                    bus: DiskBus::Virtio,
                    target_dev: "vda".into(),
                    readonly: false,
                    cache: Some("none".into()),
                    backing: Some(("/var/lib/fs/instances/_base/abc".into(), "raw".into())),
                    encryption: Some(DiskEncryption {
                        secret_uuid: "0e9f8a4c-1111-4222-8333-444455556666".into(),
                    }),
                    serial: None,
                },
                DomainDisk {
                    path: "/var/lib/fs/instances/x/disk.config".into(),
                    format: "raw".into(),
                    device: DiskDevice::Cdrom,
                    bus: DiskBus::Ide,
                    target_dev: "hda".into(),
                    readonly: true,
                    cache: Some("none".into()),
                    backing: None,
                    encryption: None,
                    serial: None,
                },
            ],
            nics: vec![DomainNic {
                mac: "fa:16:3e:00:11:22".into(),
                model: "virtio".into(),
                port_id: "a1b2c3d4-e5f6-4711-8899-aabbccddeeff".into(),
            }],
            serial_log: "/var/lib/fs/instances/x/console.log".into(),
            graphics: vec![
                Graphics {
                    kind: GraphicsKind::Vnc,
                    listen: "127.0.0.1".into(),
                    port: None,
                    password: Some(ConsolePassword::new("s3cr<t&'\"")),
                },
                Graphics {
                    kind: GraphicsKind::Spice,
                    listen: "127.0.0.1".into(),
                    port: None,
                    password: Some(ConsolePassword::new("s3cr<t&'\"")),
                },
            ],
            sysinfo: true,
            kernel: None,
        }
    }

    fn validate(kind: &str, xml: &str) {
        let have = Command::new("virt-xml-validate")
            .arg("--help")
            .output()
            .is_ok();
        if !have {
            assert!(
                std::env::var("FERROSTACK_REQUIRE_HOST_TOOLS").as_deref() != Ok("1"),
                "virt-xml-validate is missing (scripts/host-tools installs it)"
            );
            eprintln!("skipped: virt-xml-validate not installed (scripts/host-tools)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.xml");
        std::fs::write(&f, xml).unwrap();
        let out = Command::new("virt-xml-validate")
            .arg(&f)
            .arg(kind)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "virt-xml-validate refused:\n{}\n{}{}",
            xml,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn libvirt_xml_validates_and_carries_encryption_backing_and_passwords() {
        let d = sample();
        let xml = d.to_libvirt_xml();
        validate("domain", &xml);
        assert!(xml.contains("<domain type=\"qemu\">"));
        assert!(xml.contains("<encryption format=\"luks\">"));
        assert!(xml.contains(
            "<secret type=\"passphrase\" uuid=\"0e9f8a4c-1111-4222-8333-444455556666\"/>"
        ));
        assert!(xml.contains("<source file=\"/var/lib/fs/instances/_base/abc\"/>"));
        assert!(xml.contains("<format type=\"raw\"/>"));
        assert!(xml.contains("device=\"cdrom\""));
        assert!(xml.contains("<target dev=\"hda\" bus=\"ide\"/>"));
        assert!(xml.contains("<source path=\"/var/lib/fs/instances/x/console.log\"/>"));
        assert!(xml.contains("<entry name=\"product\">OpenStack Nova</entry>"));
        assert!(xml.contains("<target dev=\"tapa1b2c3d4-e5\"/>"));
        // the password is escaped, present on both consoles
        assert_eq!(
            xml.matches("passwd=\"s3cr&lt;t&amp;&apos;&quot;\"").count(),
            2
        );
        assert!(!xml.contains("s3cr<t"));
    }

    #[test]
    fn minimal_domain_validates() {
        let mut d = sample();
        d.disks.truncate(1);
        d.disks[0].encryption = None;
        d.disks[0].backing = None;
        d.graphics.clear();
        d.nics.clear();
        d.sysinfo = false;
        d.virt_type = VirtType::Kvm;
        d.kernel = Some(KernelBoot {
            kernel: "/k/vmlinuz".into(),
            initrd: Some("/k/initrd".into()),
            cmdline: Some("console=ttyS0".into()),
        });
        let xml = d.to_libvirt_xml();
        validate("domain", &xml);
        assert!(!xml.contains("graphics"));
        assert!(!xml.contains("encryption"));
        assert!(xml.contains("<cpu mode=\"host-model\"/>"));
        assert!(xml.contains("<kernel>/k/vmlinuz</kernel>"));
    }

    #[test]
    fn secret_xml_validates_and_holds_no_value() {
        let xml = libvirt_secret_xml(
            "0e9f8a4c-1111-4222-8333-444455556666",
            "abc",
            Path::new("/var/lib/fs/instances/abc/disk"),
        );
        validate("secret", &xml);
        assert!(xml.contains("<usage type=\"volume\">"));
        assert!(!xml.contains("value"));
    }

    #[test]
    fn password_is_redacted_in_debug_and_argv() {
        let d = sample();
        assert!(!format!("{d:?}").contains("s3cr"));
        let mut secrets = QemuSecrets::default();
        assert!(matches!(
            d.to_qemu_argv(&secrets),
            Err(DomainError::MissingSecret(_))
        ));
        secrets.disks.insert(
            "0e9f8a4c-1111-4222-8333-444455556666".into(),
            "/run/x/disk.key".into(),
        );
        assert!(matches!(
            d.to_qemu_argv(&secrets),
            Err(DomainError::MissingSpiceSecret)
        ));
        secrets.spice_password = Some("/run/x/spice.pw".into());
        let argv = d.to_qemu_argv(&secrets).unwrap();
        let joined = argv.join(" ");
        assert!(!joined.contains("s3cr"), "{joined}");
        assert!(joined.contains("secret,id=sec0,file=/run/x/disk.key,format=raw"));
        assert!(joined.contains("encrypt.format=luks,encrypt.key-secret=sec0"));
        assert!(joined.contains("if=ide,media=cdrom,index=0"));
        assert!(joined.contains("-vnc 127.0.0.1:0,to=99,password=on"));
        assert!(joined.contains("password-secret=spicepw"));
        assert!(joined.contains("-machine pc,accel=tcg"));
        assert!(joined.contains("mac=fa:16:3e:00:11:22"));
    }

    #[test]
    fn commas_in_paths_are_escaped_in_qemu_options() {
        let mut d = sample();
        d.disks[0].encryption = None;
        d.graphics.clear();
        d.disks[0].path = "/a,b/disk".into();
        let argv = d.to_qemu_argv(&QemuSecrets::default()).unwrap();
        assert!(argv.iter().any(|a| a.starts_with("file=/a,,b/disk,")));
    }

    #[test]
    fn spice_password_comes_from_metadata() {
        let mut m = BTreeMap::new();
        assert!(spice_password_from_metadata(&m).is_none());
        m.insert("spice_passwd".into(), String::new());
        assert!(spice_password_from_metadata(&m).is_none());
        m.insert("spice_passwd".into(), "pw".into());
        assert_eq!(spice_password_from_metadata(&m).unwrap().expose(), "pw");
    }
}
