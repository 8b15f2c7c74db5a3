//! Rendering tests: libvirt's schema accepts the XML; secrets stay out of argv.

use super::*;
use std::path::Path;
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
            backend: NicBackend::Tap,
        }],
        serial: SerialConsole {
            log: "/var/lib/fs/instances/x/console.log".into(),
            socket: None,
        },
        graphics: vec![
            Graphics {
                kind: GraphicsKind::Vnc,
                listen: GraphicsListen::Address {
                    address: "127.0.0.1".into(),
                    port: None,
                },
                password: Some(ConsolePassword::new("s3cr<t&'\"")),
            },
            Graphics {
                kind: GraphicsKind::Spice,
                listen: GraphicsListen::Address {
                    address: "127.0.0.1".into(),
                    port: None,
                },
                password: Some(ConsolePassword::new("s3cr<t&'\"")),
            },
        ],
        guest_agent: None,
        rng: true,
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
    assert!(
        xml.contains("<secret type=\"passphrase\" uuid=\"0e9f8a4c-1111-4222-8333-444455556666\"/>")
    );
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
    let argv = d.to_qemu_argv(&secrets).unwrap();
    let joined = argv.join(" ");
    assert!(!joined.contains("s3cr"), "{joined}");
    assert!(joined.contains("secret,id=sec0,file=/run/x/disk.key,format=raw"));
    assert!(joined.contains("node-name=disk0,encrypt.format=luks,encrypt.key-secret=sec0"));
    assert!(joined.contains("ide-cd,drive=disk1,bus=ide.0,unit=0"));
    assert!(joined.contains("virtio-blk-pci,drive=disk0,bootindex=0"));
    assert!(joined.contains("-vnc 127.0.0.1:0,to=99,password=on"));
    assert!(joined.contains("-spice port=5930,addr=127.0.0.1"));
    assert!(!joined.contains("disable-ticketing"));
    assert!(joined.contains("-machine pc,accel=tcg"));
    assert!(joined.contains("mac=fa:16:3e:00:11:22"));
    assert!(joined.contains("manufacturer=OpenStack Foundation,product=OpenStack Nova"));
}

#[test]
fn user_mode_nics_hand_out_the_fixed_address_and_forward_ssh() {
    let mut d = sample();
    d.disks[0].encryption = None;
    d.nics[0].backend = NicBackend::User(UserNet {
        net: "10.0.0.0/24".into(),
        gateway: "10.0.0.1".into(),
        address: "10.0.0.7".into(),
        dns: Some("10.0.0.2".into()),
        hostname: Some("vm1".into()),
        domain: Some("novalocal".into()),
        forwards: vec![HostForward {
            host_addr: "127.0.0.1".into(),
            host_port: 0,
            guest_port: 22,
        }],
    });
    d.serial.socket = Some("/i/x/serial.sock".into());
    d.guest_agent = Some("/i/x/qga.sock".into());
    d.graphics = vec![
        Graphics {
            kind: GraphicsKind::Vnc,
            listen: GraphicsListen::Socket("/i/x/vnc.sock".into()),
            password: None,
        },
        Graphics {
            kind: GraphicsKind::Spice,
            listen: GraphicsListen::Socket("/i/x/spice.sock".into()),
            password: None,
        },
    ];
    let joined = d.to_qemu_argv(&QemuSecrets::default()).unwrap().join(" ");
    assert!(joined.contains(
        "-netdev user,id=net0,net=10.0.0.0/24,host=10.0.0.1,dhcpstart=10.0.0.7,ipv6=off,dns=10.0.0.2,hostname=vm1,domainname=novalocal,hostfwd=tcp:127.0.0.1:0-10.0.0.7:22"
    ), "{joined}");
    assert!(joined.contains("socket,id=serial0,path=/i/x/serial.sock,server=on,wait=off,logfile=/var/lib/fs/instances/x/console.log,logappend=on"));
    assert!(joined.contains("virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0"));
    assert!(joined.contains("-vnc unix:/i/x/vnc.sock,password=on"));
    assert!(joined.contains("-spice unix=on,addr=/i/x/spice.sock"));
    let xml = d.to_libvirt_xml();
    validate("domain", &xml);
    assert!(xml.contains("<interface type=\"user\">"));
    assert!(xml.contains("<ip family=\"ipv4\" address=\"10.0.0.7\" prefix=\"24\"/>"));
    assert!(xml.contains("<listen type=\"socket\" socket=\"/i/x/vnc.sock\"/>"));
    assert!(xml.contains("name=\"org.qemu.guest_agent.0\""));
    // the domain survives a round trip through its JSON record
    let back: GuestDomain = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(
        back.to_qemu_argv(&QemuSecrets::default())
            .unwrap()
            .join(" "),
        joined
    );
}

#[test]
fn commas_in_paths_are_escaped_in_qemu_options() {
    let mut d = sample();
    d.disks[0].encryption = None;
    d.graphics.clear();
    d.disks[0].path = "/a,b/disk".into();
    let argv = d.to_qemu_argv(&QemuSecrets::default()).unwrap();
    assert!(argv.iter().any(|a| a.contains("filename=/a,,b/disk,")));
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

#[test]
fn libvirt_driver_xml_passes_user_nics_through_with_acpi_encryption_and_passwords() {
    let mut d = sample();
    d.nics[0].backend = NicBackend::User(UserNet {
        net: "10.0.0.0/24".into(),
        gateway: "10.0.0.1".into(),
        address: "10.0.0.7".into(),
        dns: None,
        hostname: Some("vm1".into()),
        domain: None,
        forwards: vec![HostForward {
            host_addr: "127.0.0.1".into(),
            host_port: 0,
            guest_port: 22,
        }],
    });
    d.serial.socket = Some("/i/x/serial.sock".into());
    d.guest_agent = Some("/i/x/qga.sock".into());
    let xml = d.to_libvirt_xml_with(UserNetXml::QemuCommandline);
    validate("domain", &xml);
    // libvirt 9.0 emits -no-acpi (gone in QEMU 10) without it
    assert!(xml.contains("<features>\n    <acpi/>"), "{xml}");
    assert!(xml.contains(&format!("xmlns:qemu=\"{QEMU_NS}\"")), "{xml}");
    assert!(!xml.contains("<interface"), "{xml}");
    assert!(xml.contains("<qemu:arg value=\"-netdev\"/>"));
    assert!(xml.contains(
        "<qemu:arg value=\"user,id=fsnet0,net=10.0.0.0/24,host=10.0.0.1,dhcpstart=10.0.0.7,ipv6=off,hostname=vm1,hostfwd=tcp:127.0.0.1:0-10.0.0.7:22\"/>"
    ), "{xml}");
    assert!(xml.contains(
        "<qemu:arg value=\"virtio-net-pci,netdev=fsnet0,mac=fa:16:3e:00:11:22,addr=0x1f\"/>"
    ));
    // the encrypted disk names its libvirt secret, the consoles carry the password
    assert!(xml.contains(
        "<encryption format=\"luks\">\n          <secret type=\"passphrase\" uuid=\"0e9f8a4c-1111-4222-8333-444455556666\"/>"
    ), "{xml}");
    assert_eq!(
        xml.matches("passwd=\"s3cr&lt;t&amp;&apos;&quot;\"").count(),
        2
    );
    assert!(
        xml.contains("<graphics type=\"vnc\" autoport=\"yes\""),
        "{xml}"
    );
    // serial: a unix socket plus the log file console_output reads
    assert!(xml.contains("<source mode=\"bind\" path=\"/i/x/serial.sock\"/>"));
    assert!(xml.contains("<log file=\"/var/lib/fs/instances/x/console.log\" append=\"on\"/>"));
    assert!(xml.contains("name=\"org.qemu.guest_agent.0\""));
    // without user-mode NICs there is nothing to pass through
    let plain = sample().to_libvirt_xml_with(UserNetXml::QemuCommandline);
    assert!(!plain.contains("xmlns:qemu") && !plain.contains("qemu:commandline"));
}
