//! The libvirt domain XML rendering of a [`GuestDomain`] (validated against
//! libvirt's schema by `virt-xml-validate` in the tests) and the libvirt secret
//! definition of a disk passphrase.

use std::path::Path;

use quick_xml::Writer;
use quick_xml::events::BytesText;

use super::{
    DiskDevice, DomainDisk, GUEST_AGENT_PORT, GraphicsKind, GraphicsListen, GuestDomain,
    NOVA_VERSION, NicBackend, VirtType,
};

/// libvirt's namespace for QEMU command-line passthrough.
pub const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// How user-mode (slirp) NICs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNetXml {
    /// `<interface type='user'>` with `<ip>` and `<portForward>` (the shape of
    /// libvirt's passt backend; descriptive).
    Interface,
    /// No `<interface>`: the same `-netdev user,...,hostfwd=...` and `-device`
    /// arguments the QEMU driver uses, in `<qemu:commandline>` (what libvirt 9.0
    /// can run: its slirp has no port forwards; see ADR 0005).
    QemuCommandline,
}

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
    pub fn to_libvirt_xml(&self) -> String {
        self.to_libvirt_xml_with(UserNetXml::Interface)
    }

    /// The XML with user-mode NICs rendered as `usernet` says (the libvirt driver
    /// passes them through to QEMU: libvirt 9.0's slirp cannot forward ports).
    pub fn to_libvirt_xml_with(&self, usernet: UserNetXml) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        self.write_xml(&mut w, usernet)
            .expect("writing XML to memory cannot fail");
        let mut out = String::from_utf8(w.into_inner()).expect("XML is UTF-8");
        out.push('\n');
        out
    }

    fn write_xml(&self, w: &mut W, usernet: UserNetXml) -> XmlResult {
        let passthrough: Vec<String> = match usernet {
            UserNetXml::Interface => Vec::new(),
            UserNetXml::QemuCommandline => self.usernet_args(),
        };
        let mut root = w
            .create_element("domain")
            .with_attribute(("type", self.virt_type.as_str()));
        if !passthrough.is_empty() {
            root = root.with_attribute(("xmlns:qemu", QEMU_NS));
        }
        root.write_inner_content(|w| {
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
                .write_inner_content(|w| self.write_devices(w, usernet))?;
            if !passthrough.is_empty() {
                w.create_element("qemu:commandline")
                    .write_inner_content(|w| {
                        for a in &passthrough {
                            w.create_element("qemu:arg")
                                .with_attribute(("value", a.as_str()))
                                .write_empty()?;
                        }
                        Ok::<_, std::io::Error>(())
                    })?;
            }
            Ok::<_, std::io::Error>(())
        })?;
        Ok(())
    }

    /// The `-netdev user,...` + `-device` arguments of the user-mode NICs (ids
    /// `fsnet<N>`, apart from libvirt's own `net<N>`/`hostnet<N>`; PCI slots 0x1f
    /// downwards, away from the ones libvirt assigns).
    fn usernet_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for (i, n) in self.nics.iter().enumerate() {
            let NicBackend::User(u) = &n.backend else {
                continue;
            };
            let id = format!("fsnet{i}");
            let dev = if n.model == "virtio" {
                "virtio-net-pci"
            } else {
                n.model.as_str()
            };
            a.extend([
                "-netdev".to_string(),
                super::argv::user_netdev(&id, u),
                "-device".to_string(),
                // a slot from the top: libvirt numbers its own devices from slot 2
                // up and does not know this one
                format!(
                    "{dev},netdev={id},mac={},addr=0x{:x}",
                    super::argv::opt(&n.mac),
                    0x1f_usize.saturating_sub(i)
                ),
            ]);
        }
        a
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

    fn write_devices(&self, w: &mut W, usernet: UserNetXml) -> XmlResult {
        if let Some(e) = &self.emulator {
            text(w, "emulator", &path_str(e))?;
        }
        for d in &self.disks {
            write_disk(w, d)?;
        }
        for n in &self.nics {
            if usernet == UserNetXml::QemuCommandline && matches!(n.backend, NicBackend::User(_)) {
                continue;
            }
            let kind = match n.backend {
                NicBackend::Tap => "ethernet",
                NicBackend::User(_) => "user",
            };
            w.create_element("interface")
                .with_attribute(("type", kind))
                .write_inner_content(|w| {
                    w.create_element("mac")
                        .with_attribute(("address", n.mac.as_str()))
                        .write_empty()?;
                    if let NicBackend::User(u) = &n.backend {
                        let prefix = u.net.split('/').nth(1).unwrap_or("24");
                        w.create_element("ip")
                            .with_attribute(("family", "ipv4"))
                            .with_attribute(("address", u.address.as_str()))
                            .with_attribute(("prefix", prefix))
                            .write_empty()?;
                        for f in &u.forwards {
                            let port = f.host_port.to_string();
                            let to = f.guest_port.to_string();
                            w.create_element("portForward")
                                .with_attribute(("proto", "tcp"))
                                .with_attribute(("address", f.host_addr.as_str()))
                                .write_inner_content(|w| {
                                    w.create_element("range")
                                        .with_attribute(("start", port.as_str()))
                                        .with_attribute(("to", to.as_str()))
                                        .write_empty()?;
                                    Ok::<_, std::io::Error>(())
                                })?;
                        }
                    }
                    w.create_element("model")
                        .with_attribute(("type", n.model.as_str()))
                        .write_empty()?;
                    if matches!(n.backend, NicBackend::Tap) {
                        w.create_element("target")
                            .with_attribute(("dev", n.tap_name().as_str()))
                            .write_empty()?;
                    }
                    Ok::<_, std::io::Error>(())
                })?;
        }
        let log = path_str(&self.serial.log);
        let serial = match &self.serial.socket {
            Some(_) => "unix",
            None => "file",
        };
        w.create_element("serial")
            .with_attribute(("type", serial))
            .write_inner_content(|w| {
                match &self.serial.socket {
                    Some(sock) => {
                        let sock = path_str(sock);
                        w.create_element("source")
                            .with_attribute(("mode", "bind"))
                            .with_attribute(("path", sock.as_str()))
                            .write_empty()?;
                        w.create_element("log")
                            .with_attribute(("file", log.as_str()))
                            .with_attribute(("append", "on"))
                            .write_empty()?;
                    }
                    None => {
                        w.create_element("source")
                            .with_attribute(("path", log.as_str()))
                            .write_empty()?;
                    }
                }
                w.create_element("target")
                    .with_attribute(("port", "0"))
                    .write_empty()?;
                Ok::<_, std::io::Error>(())
            })?;
        if let Some(sock) = &self.guest_agent {
            let sock = path_str(sock);
            w.create_element("channel")
                .with_attribute(("type", "unix"))
                .write_inner_content(|w| {
                    w.create_element("source")
                        .with_attribute(("mode", "bind"))
                        .with_attribute(("path", sock.as_str()))
                        .write_empty()?;
                    w.create_element("target")
                        .with_attribute(("type", "virtio"))
                        .with_attribute(("name", GUEST_AGENT_PORT))
                        .write_empty()?;
                    Ok::<_, std::io::Error>(())
                })?;
        }
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
            let mut el = w.create_element("graphics").with_attribute(("type", kind));
            let port = match &g.listen {
                GraphicsListen::Address { port, .. } => port.map(|p| p.to_string()),
                GraphicsListen::Socket(_) => None,
            };
            if let GraphicsListen::Address { .. } = &g.listen {
                el = match &port {
                    Some(p) => el
                        .with_attribute(("port", p.as_str()))
                        .with_attribute(("autoport", "no")),
                    None => el.with_attribute(("autoport", "yes")),
                };
            }
            if let Some(pw) = &g.password {
                el = el.with_attribute(("passwd", pw.expose()));
            }
            el.write_inner_content(|w| {
                match &g.listen {
                    GraphicsListen::Address { address, .. } => {
                        w.create_element("listen")
                            .with_attribute(("type", "address"))
                            .with_attribute(("address", address.as_str()))
                            .write_empty()?;
                    }
                    GraphicsListen::Socket(p) => {
                        let p = path_str(p);
                        w.create_element("listen")
                            .with_attribute(("type", "socket"))
                            .with_attribute(("socket", p.as_str()))
                            .write_empty()?;
                    }
                }
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
        if self.rng {
            w.create_element("rng")
                .with_attribute(("model", "virtio"))
                .write_inner_content(|w| {
                    w.create_element("backend")
                        .with_attribute(("model", "random"))
                        .write_text_content(BytesText::new("/dev/urandom"))?;
                    Ok::<_, std::io::Error>(())
                })?;
        }
        w.create_element("memballoon")
            .with_attribute(("model", "virtio"))
            .write_empty()?;
        Ok(())
    }
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
