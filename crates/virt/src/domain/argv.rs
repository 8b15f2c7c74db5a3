//! The QEMU command line of a [`GuestDomain`]: the machine and its devices only.
//! The QEMU driver adds the process options (`-S`, `-qmp`, `-pidfile`, the
//! sandbox, the user to run as). Disks are `-blockdev` nodes named `disk<N>` (the
//! names internal snapshots and QMP refer to); passphrases are `secret` objects
//! read from files; console passwords are not here at all (the driver sets them
//! over QMP, and until then nobody can log in: VNC `password=on`, SPICE ticketing).

use std::path::Path;

use super::{
    DiskBus, DiskDevice, DomainError, GUEST_AGENT_PORT, GraphicsKind, GraphicsListen, GuestDomain,
    NOVA_VERSION, NicBackend, QemuSecrets, UserNet, VirtType, ide_index,
};

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A value inside a QEMU `key=value,...` option: commas are doubled.
pub(crate) fn opt(v: &str) -> String {
    v.replace(',', ",,")
}

/// The `-netdev user,...` options of a user-mode NIC.
pub(super) fn user_netdev(id: &str, u: &UserNet) -> String {
    let mut v = format!(
        "user,id={id},net={},host={},dhcpstart={},ipv6=off",
        opt(&u.net),
        opt(&u.gateway),
        opt(&u.address)
    );
    if let Some(d) = &u.dns {
        v.push_str(&format!(",dns={}", opt(d)));
    }
    if let Some(h) = &u.hostname {
        v.push_str(&format!(",hostname={}", opt(h)));
    }
    if let Some(d) = &u.domain {
        v.push_str(&format!(",domainname={}", opt(d)));
    }
    for f in &u.forwards {
        v.push_str(&format!(
            ",hostfwd=tcp:{}:{}-{}:{}",
            opt(&f.host_addr),
            f.host_port,
            opt(&u.address),
            f.guest_port
        ));
    }
    v
}

impl GuestDomain {
    /// The QEMU command line (without the program and the process options).
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
        push(
            &mut a,
            "-cpu",
            match self.virt_type {
                VirtType::Kvm => "host".into(),
                VirtType::Qemu => "max".into(),
            },
        );
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
        let mut boot_index = 0;
        for (i, d) in self.disks.iter().enumerate() {
            let file = format!("f{i}");
            let node = format!("disk{i}");
            let mut f = format!(
                "driver=file,filename={},node-name={file}",
                opt(&path_str(&d.path))
            );
            if d.cache.as_deref() == Some("none") {
                f.push_str(",cache.direct=on");
            }
            if d.readonly {
                f.push_str(",read-only=on");
            }
            push(&mut a, "-blockdev", f);
            let mut fmt = format!("driver={},file={file},node-name={node}", d.format);
            if let Some(e) = &d.encryption {
                let path = secrets
                    .disks
                    .get(&e.secret_uuid)
                    .ok_or_else(|| DomainError::MissingSecret(d.target_dev.clone()))?;
                let id = format!("sec{i}");
                push(
                    &mut a,
                    "-object",
                    format!("secret,id={id},file={},format=raw", opt(&path_str(path))),
                );
                fmt.push_str(&format!(",encrypt.format=luks,encrypt.key-secret={id}"));
            }
            if d.readonly {
                fmt.push_str(",read-only=on");
            }
            push(&mut a, "-blockdev", fmt);
            let serial = d
                .serial
                .as_ref()
                .map(|s| format!(",serial={}", opt(s)))
                .unwrap_or_default();
            let dev = match (d.device, d.bus) {
                (DiskDevice::Cdrom, _) | (_, DiskBus::Ide) => {
                    let kind = if d.device == DiskDevice::Cdrom {
                        "ide-cd"
                    } else {
                        "ide-hd"
                    };
                    let idx = ide_index(&d.target_dev).unwrap_or(0);
                    format!(
                        "{kind},drive={node},bus=ide.{},unit={}{serial}",
                        idx / 2,
                        idx % 2
                    )
                }
                _ => {
                    let dev = format!("virtio-blk-pci,drive={node},bootindex={boot_index}{serial}");
                    boot_index += 1;
                    dev
                }
            };
            push(&mut a, "-device", dev);
        }
        for (i, n) in self.nics.iter().enumerate() {
            let id = format!("net{i}");
            let netdev = match &n.backend {
                NicBackend::Tap => format!(
                    "tap,id={id},ifname={},script=no,downscript=no",
                    n.tap_name()
                ),
                NicBackend::User(u) => user_netdev(&id, u),
            };
            push(&mut a, "-netdev", netdev);
            let dev = if n.model == "virtio" {
                "virtio-net-pci"
            } else {
                n.model.as_str()
            };
            push(
                &mut a,
                "-device",
                format!("{dev},netdev={id},mac={}", opt(&n.mac)),
            );
        }
        let log = opt(&path_str(&self.serial.log));
        match &self.serial.socket {
            Some(sock) => {
                push(
                    &mut a,
                    "-chardev",
                    format!(
                        "socket,id=serial0,path={},server=on,wait=off,logfile={log},logappend=on",
                        opt(&path_str(sock))
                    ),
                );
                push(&mut a, "-serial", "chardev:serial0".into());
            }
            None => {
                push(
                    &mut a,
                    "-chardev",
                    format!("file,id=serial0,path={log},append=on"),
                );
                push(&mut a, "-serial", "chardev:serial0".into());
            }
        }
        if let Some(sock) = &self.guest_agent {
            push(
                &mut a,
                "-chardev",
                format!(
                    "socket,id=qga0,path={},server=on,wait=off",
                    opt(&path_str(sock))
                ),
            );
            push(&mut a, "-device", "virtio-serial-pci,id=vser0".into());
            push(
                &mut a,
                "-device",
                format!("virtserialport,bus=vser0.0,chardev=qga0,name={GUEST_AGENT_PORT}"),
            );
        }
        if self.rng {
            push(
                &mut a,
                "-object",
                "rng-random,id=rng0,filename=/dev/urandom".into(),
            );
            push(&mut a, "-device", "virtio-rng-pci,rng=rng0".into());
        }
        for g in &self.graphics {
            match (g.kind, &g.listen) {
                (GraphicsKind::Vnc, GraphicsListen::Socket(p)) => push(
                    &mut a,
                    "-vnc",
                    format!("unix:{},password=on", opt(&path_str(p))),
                ),
                (GraphicsKind::Vnc, GraphicsListen::Address { address, port }) => {
                    let disp = match port {
                        Some(p) => format!("{}", p.saturating_sub(5900)),
                        None => "0,to=99".into(),
                    };
                    push(
                        &mut a,
                        "-vnc",
                        format!("{}:{disp},password=on", opt(address)),
                    );
                }
                (GraphicsKind::Spice, GraphicsListen::Socket(p)) => push(
                    &mut a,
                    "-spice",
                    format!("unix=on,addr={}", opt(&path_str(p))),
                ),
                (GraphicsKind::Spice, GraphicsListen::Address { address, port }) => push(
                    &mut a,
                    "-spice",
                    format!("port={},addr={}", port.unwrap_or(5930), opt(address)),
                ),
            }
        }
        // VNC and SPICE are displays of their own; no local window either way.
        push(&mut a, "-display", "none".into());
        if !self.graphics.is_empty() {
            push(&mut a, "-device", "virtio-vga".into());
            a.push("-usb".into());
            push(&mut a, "-device", "usb-tablet".into());
        }
        Ok(a)
    }
}
