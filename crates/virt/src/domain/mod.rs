//! One typed description of a guest ([`GuestDomain`]: vCPUs, memory, disks with
//! bus/cache/backing/encryption, the config drive, NICs and their backend, the
//! serial console, VNC/SPICE graphics, the guest agent channel) and its two
//! renderings: libvirt domain XML ([`GuestDomain::to_libvirt_xml`], `xml.rs`,
//! written as `instances/<uuid>/libvirt.xml`) and a QEMU command line
//! ([`GuestDomain::to_qemu_argv`], `argv.rs`).
//!
//! Secrets never travel in clear through here: disks name their LUKS passphrase by
//! libvirt secret UUID (the value is set out of band, see [`libvirt_secret_xml`]),
//! the QEMU command line refers to secret *files*, and the console password is a
//! [`ConsolePassword`] whose `Debug` is redacted. Only the XML carries the console
//! password (`passwd=`), as libvirt requires; the file is written 0600. The QEMU
//! driver never puts it on the command line: it sets it over QMP.

mod argv;
mod xml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use xml::{QEMU_NS, UserNetXml, libvirt_secret_xml};

/// The metadata key upstream reads a console password from.
pub const SPICE_PASSWORD_KEY: &str = "spice_passwd";

/// The virtio-serial port name the QEMU guest agent listens on.
pub const GUEST_AGENT_PORT: &str = "org.qemu.guest_agent.0";

/// Hardware acceleration: `kvm` where a real probe says guests run, else `qemu` (TCG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskDevice {
    Disk,
    Cdrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskEncryption {
    pub secret_uuid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// A port forwarded from the host into a user-mode network guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostForward {
    /// The host address to listen on (`127.0.0.1`).
    pub host_addr: String,
    /// The host port; 0 = any free port (the kernel picks, read back over QMP).
    pub host_port: u16,
    pub guest_port: u16,
}

/// QEMU's user-mode network stack (slirp) for one NIC: a private network whose
/// DHCP server hands the guest exactly its port's fixed address. See
/// `docs/adr/0003-user-mode-guest-networking.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNet {
    /// The subnet, `10.0.0.0/24`.
    pub net: String,
    /// The gateway address (slirp's "host"; DHCP's router).
    pub gateway: String,
    /// The guest's fixed address (the only lease: `dhcpstart`).
    pub address: String,
    /// The DNS address DHCP announces (slirp's resolver proxy, inside `net`).
    pub dns: Option<String>,
    /// DHCP option 12 and 15.
    pub hostname: Option<String>,
    pub domain: Option<String>,
    pub forwards: Vec<HostForward>,
}

/// How a NIC reaches the network: the seam where a bridge/tap datapath slots in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicBackend {
    /// A tap device named after the port (a bridge datapath plugs it).
    Tap,
    /// A user-mode network private to this NIC (no root, no bridge).
    User(UserNet),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainNic {
    pub mac: String,
    /// `virtio`, `e1000`, ...
    pub model: String,
    /// The Neutron port; the tap device is named after it as upstream
    /// (`tap` + the first 11 characters).
    pub port_id: String,
    pub backend: NicBackend,
}

impl DomainNic {
    pub fn tap_name(&self) -> String {
        format!("tap{}", self.port_id.chars().take(11).collect::<String>())
    }
}

/// A console password. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConsolePassword(String);

impl ConsolePassword {
    pub fn new(password: impl Into<String>) -> ConsolePassword {
        ConsolePassword(password.into())
    }

    /// A random password nobody is told (a console is never left open).
    pub fn random() -> ConsolePassword {
        use rand::Rng;
        const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut rng = rand::thread_rng();
        ConsolePassword(
            (0..20)
                .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
                .collect(),
        )
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphicsKind {
    Vnc,
    Spice,
}

/// Where a graphical console listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphicsListen {
    /// A TCP address; `port: None` lets the hypervisor choose (`autoport`).
    Address { address: String, port: Option<u16> },
    /// A unix socket (what the QEMU driver uses: nothing to find by port scan).
    Socket(PathBuf),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Graphics {
    pub kind: GraphicsKind,
    pub listen: GraphicsListen,
    pub password: Option<ConsolePassword>,
}

/// The serial console: always logged to a file; optionally also a unix socket an
/// interactive client can attach to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SerialConsole {
    /// `instances/<uuid>/console.log`.
    pub log: PathBuf,
    pub socket: Option<PathBuf>,
}

/// Direct kernel boot (the tiny test guests; images with a kernel/ramdisk pair).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelBoot {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub serial: SerialConsole,
    pub graphics: Vec<Graphics>,
    /// The QEMU guest agent's channel (a unix socket on the host side), when the
    /// image says `hw_qemu_guest_agent=yes`.
    pub guest_agent: Option<PathBuf>,
    /// A virtio RNG fed from the host's `/dev/urandom` (guests boot faster).
    pub rng: bool,
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
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("disk {0} is encrypted but no secret file was given for it")]
    MissingSecret(String),
}

const NOVA_VERSION: &str = concat!("ferrostack ", env!("CARGO_PKG_VERSION"));

impl GuestDomain {
    fn machine(&self) -> &str {
        self.machine.as_deref().unwrap_or("pc")
    }
}

/// `hda` → 0, `hdb` → 1, ...
fn ide_index(dev: &str) -> Option<u32> {
    let c = dev.strip_prefix("hd")?.chars().next()?;
    c.is_ascii_lowercase().then(|| c as u32 - 'a' as u32)
}
