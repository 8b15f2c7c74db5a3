//! Configuration types, one struct per section, with upstream's option names and
//! defaults where an upstream option exists. Loading (TOML file, environment,
//! flags) happens in the binary; every crate receives the section it needs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, keys, images and instances live.
    pub state_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub token: TokenConfig,
    pub credential: CredentialConfig,
    pub security_compliance: SecurityComplianceConfig,
    pub identity: IdentityConfig,
    pub image: ImageConfig,
    pub compute: ComputeConfig,
    /// The host side of compute: disks, guest data, consoles.
    pub host: HostConfig,
    pub network: NetworkConfig,
    pub quota: QuotaConfig,
    pub bootstrap: BootstrapConfig,
    /// `[vnc]`, `[spice]`, `[serial_console]`: which consoles guests get and the
    /// URLs users are given for them.
    pub vnc: VncConfig,
    pub spice: SpiceConfig,
    pub serial_console: SerialConsoleConfig,
    /// `[consoleauth]`: console tokens.
    pub consoleauth: ConsoleAuthConfig,
    /// The browser console proxy (nova-novncproxy / spicehtml5proxy /
    /// serialproxy in one listener).
    pub console: ConsoleProxyConfig,
    /// `[metadata]`: the metadata service guests reach at 169.254.169.254.
    pub metadata: MetadataConfig,
    /// Per-service overrides: `[services.identity] listen = "0.0.0.0:5000"`.
    pub services: BTreeMap<String, ServiceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from("ferrostack-state"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            token: TokenConfig::default(),
            credential: CredentialConfig::default(),
            security_compliance: SecurityComplianceConfig::default(),
            identity: IdentityConfig::default(),
            image: ImageConfig::default(),
            compute: ComputeConfig::default(),
            host: HostConfig::default(),
            network: NetworkConfig::default(),
            quota: QuotaConfig::default(),
            bootstrap: BootstrapConfig::default(),
            vnc: VncConfig::default(),
            spice: SpiceConfig::default(),
            serial_console: SerialConsoleConfig::default(),
            consoleauth: ConsoleAuthConfig::default(),
            console: ConsoleProxyConfig::default(),
            metadata: MetadataConfig::default(),
            services: BTreeMap::new(),
        }
    }
}

/// The image service (Glance's option names).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// The largest image accepted, in bytes (`image_size_cap`, 1 TiB).
    pub image_size_cap: u64,
    /// Bytes of image data a project may store; 0 = unlimited (`user_storage_quota`).
    pub user_storage_quota: u64,
    /// Images a project may have; 0 = unlimited.
    pub image_count_quota: u64,
    /// Members an image may have (`image_member_quota`).
    pub image_member_quota: usize,
    /// Refuse uploads whose content is not the declared `disk_format`
    /// (`[image_format] require_image_format_match`). Unsafe images are refused always.
    pub require_format_match: bool,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            image_size_cap: 1 << 40,
            user_storage_quota: 0,
            image_count_quota: 0,
            image_member_quota: 128,
            require_format_match: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The one listener serving every service under its path prefix.
    pub listen: String,
    /// The base URL advertised in the catalog; empty = derived from the bound address.
    pub public_url: String,
    /// `human` or `json`.
    pub log_format: String,
    /// How long in-flight requests may take to finish after SIGTERM, in seconds.
    pub shutdown_grace: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: String::new(),
            log_format: "human".into(),
            shutdown_grace: 30,
        }
    }
}

/// A service served on its own classic port as well (at the root of that listener).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// e.g. `0.0.0.0:5000` for identity.
    pub listen: String,
    /// The URL advertised in the catalog for this service; empty = derived.
    pub public_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`; empty = `STATE_DIR/ferrostack.db`.
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 8,
        }
    }
}

/// Keystone's `[token]` (and `[fernet_tokens]`) options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Token lifetime in seconds.
    pub expiration: i64,
    /// How long after expiry `?allow_expired=1` still validates a token, in seconds.
    pub allow_expired_window: i64,
    /// How many keys the token key repository keeps (staged + primary + secondaries).
    pub max_active_keys: usize,
    /// Validated tokens kept in memory.
    pub cache_size: usize,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            expiration: 3600,
            allow_expired_window: 172_800,
            max_active_keys: 3,
            cache_size: 100_000,
        }
    }
}

/// Keystone's `[credential]` options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialConfig {
    /// How old a signed EC2 request may be when it reaches `/ec2tokens`, in
    /// **minutes** (Keystone's unit for this option).
    pub auth_ttl: i64,
}

impl Default for CredentialConfig {
    fn default() -> Self {
        CredentialConfig { auth_ttl: 15 }
    }
}

/// Keystone's `[security_compliance]` options that ferrostack implements.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityComplianceConfig {
    /// Failed password attempts before the account locks; 0 disables lockout.
    pub lockout_failure_attempts: u32,
    /// How long a locked account stays locked, in seconds.
    pub lockout_duration: i64,
}

impl Default for SecurityComplianceConfig {
    fn default() -> Self {
        SecurityComplianceConfig {
            lockout_failure_attempts: 0,
            lockout_duration: 1800,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Argon2id memory cost in KiB for password hashes.
    pub password_hash_memory_kib: u32,
    /// Argon2id passes.
    pub password_hash_iterations: u32,
    /// The most entities a list returns when the client gives no `limit`; 0 = no cap
    /// (Keystone's `list_limit`; truncated lists say `"truncated": true`).
    pub list_limit: usize,
    /// Longest accepted password, in bytes.
    pub max_password_length: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            password_hash_memory_kib: 19 * 1024,
            password_hash_iterations: 2,
            list_limit: 0,
            max_password_length: 4096,
        }
    }
}

/// The compute service and this process's host agent (Nova's option names where
/// one exists).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeConfig {
    /// The hypervisor driver of the in-process host agent: `auto` (`qemu` when a
    /// working `qemu-system-x86_64` is installed, else `fake`), `qemu` (real guests),
    /// `libvirt` (real guests run by libvirtd, `[host] libvirt_uri`),
    /// `fake` (in memory, for API and scale tests) or `prepare` (the host-side
    /// pipeline — image cache, disks, encryption, config drive, injection, domain
    /// XML — without starting a hypervisor).
    pub driver: String,
    /// This host's name (Nova's `host`); empty = the machine's hostname.
    pub host: String,
    /// The availability zone of this host (`default_availability_zone`).
    pub availability_zone: String,
    /// Whether the host agent runs in this process.
    pub run_agent: bool,
    /// `cpu_allocation_ratio`, `ram_allocation_ratio`, `disk_allocation_ratio`.
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// `reserved_host_memory_mb`, `reserved_host_disk_mb`.
    pub reserved_host_memory_mb: i64,
    pub reserved_host_disk_mb: i64,
    /// Resources the fake driver reports (Nova's fake: 1000 vCPUs, 800000 MiB, 600000 GiB).
    pub fake_vcpus: i64,
    pub fake_memory_mb: i64,
    pub fake_disk_gb: i64,
    /// Milliseconds the fake driver takes to spawn (0 = instant).
    pub fake_spawn_delay_ms: u64,
    /// Seconds between host heartbeats; a host silent for `service_down_time` is down.
    pub report_interval: u64,
    pub service_down_time: u64,
    /// Seconds between periodic power-state syncs (`sync_power_state_interval`).
    pub sync_power_state_interval: u64,
    /// Seconds a clean stop waits for the guest to power off after the ACPI power
    /// button before the hypervisor is made to stop it (`shutdown_timeout`).
    pub shutdown_timeout: u64,
    /// Seconds between presses of the power button during a clean stop
    /// (`[compute] shutdown_retry_interval`).
    pub shutdown_retry_interval: u64,
    /// Start the guests that were running when the host went down
    /// (`resume_guests_state_on_host_boot`; Nova's default is off, ferrostack's on).
    pub resume_guests_state_on_host_boot: bool,
    /// Attempts of a failing step before the server goes to ERROR.
    pub max_attempts: u32,
    /// Seconds a build may take before it is put in ERROR (`instance_build_timeout`; 0 = none).
    pub instance_build_timeout: u64,
    /// Maximum length of base64 `user_data` (Nova's schema: 65535).
    pub max_user_data_length: usize,
    /// Default `limit` of server lists (`[api] max_limit`).
    pub max_limit: usize,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            driver: "auto".into(),
            host: String::new(),
            availability_zone: "nova".into(),
            run_agent: true,
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.5,
            disk_allocation_ratio: 1.0,
            reserved_host_memory_mb: 512,
            reserved_host_disk_mb: 0,
            fake_vcpus: 1000,
            fake_memory_mb: 800_000,
            fake_disk_gb: 600_000,
            fake_spawn_delay_ms: 0,
            report_interval: 10,
            service_down_time: 60,
            sync_power_state_interval: 600,
            shutdown_timeout: 60,
            shutdown_retry_interval: 10,
            resume_guests_state_on_host_boot: true,
            max_attempts: 3,
            instance_build_timeout: 0,
            max_user_data_length: 65535,
            max_limit: 1000,
        }
    }
}

/// The host side of compute: image cache, instance disks, guest data and consoles.
/// Upstream's option names (and defaults) where one exists; the section upstream
/// keeps it in is given.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// `[DEFAULT] force_raw_images`: qcow2 images are converted to raw in the cache.
    pub force_raw_images: bool,
    /// `[DEFAULT] use_cow_images`: root disks are qcow2 overlays on the cached
    /// image; `false` = a full (flat) copy.
    pub use_cow_images: bool,
    /// `[image_cache] remove_unused_original_minimum_age_seconds`: unused cached
    /// images older than this are removed by the periodic cache pass.
    pub remove_unused_original_minimum_age_seconds: u64,
    /// `[image_cache] manager_interval` (seconds; 0 = never prune).
    pub image_cache_manager_interval: u64,
    /// `[DEFAULT] config_drive_format`: `iso9660` or `vfat`.
    pub config_drive_format: String,
    /// `[DEFAULT] force_config_drive`.
    pub force_config_drive: bool,
    /// `[libvirt] inject_partition`: -2 never (default), -1 find the root
    /// filesystem, 0 the whole disk, N partition N.
    pub inject_partition: i32,
    /// `[libvirt] inject_key`, `[libvirt] inject_password`.
    pub inject_key: bool,
    pub inject_password: bool,
    /// How injection edits the guest filesystem: `auto` (debugfs for ext2/3/4,
    /// libguestfs' guestfish for anything else when installed), `debugfs` or
    /// `guestfish` (upstream's only way; ~12 s per injection under TCG).
    pub inject_backend: String,
    /// `[api] dhcp_domain`, appended to the guest hostname in metadata ("" = none).
    pub dhcp_domain: String,
    /// `[libvirt] virt_type`: `kvm`, `qemu` (TCG) or `auto` (KVM when a probe
    /// shows it runs guests).
    pub virt_type: String,
    /// LUKS PBKDF time per key slot, milliseconds (upstream 2000; tests use 10).
    pub luks_iter_time_ms: u32,
    /// Seconds a `qemu-img` call may take.
    pub qemu_img_timeout: u64,
    /// The system emulator the `qemu` driver runs.
    pub qemu_binary: String,
    /// The unprivileged user QEMU runs as when ferrostack runs as root
    /// (`scripts/host-tools` creates it; `nobody` when it is missing).
    pub qemu_user: String,
    /// QEMU's seccomp sandbox (`-sandbox on,...`).
    pub qemu_sandbox: bool,
    /// A guest's serial log is rotated past this many bytes (one old file kept).
    pub console_log_max_bytes: u64,
    /// The libvirt connection of `[compute] driver = libvirt` (Nova's
    /// `[libvirt] connection_uri`); scripts/libvirtd starts the daemon.
    pub libvirt_uri: String,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            force_raw_images: true,
            use_cow_images: true,
            remove_unused_original_minimum_age_seconds: 86_400,
            image_cache_manager_interval: 2400,
            config_drive_format: "iso9660".into(),
            force_config_drive: false,
            inject_partition: -2,
            inject_key: false,
            inject_password: false,
            inject_backend: "auto".into(),
            dhcp_domain: "novalocal".into(),
            virt_type: "auto".into(),
            luks_iter_time_ms: 2000,
            qemu_img_timeout: 3600,
            qemu_binary: "qemu-system-x86_64".into(),
            qemu_user: "ferrostack-qemu".into(),
            qemu_sandbox: true,
            console_log_max_bytes: 1 << 20,
            libvirt_uri: "qemu:///system".into(),
        }
    }
}

/// The network service (Neutron subset).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The shared network created at bootstrap (`--network private`); empty name = none.
    pub private_network_name: String,
    pub private_network_cidr: String,
    /// MAC prefix of new ports (Neutron's `base_mac` fa:16:3e:00:00:00).
    pub base_mac: String,
    /// Default DNS servers of the bootstrap subnet.
    pub dns_nameservers: Vec<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            private_network_name: "private".into(),
            private_network_cidr: "10.0.0.0/24".into(),
            base_mac: "fa:16:3e:00:00:00".into(),
            dns_nameservers: Vec::new(),
        }
    }
}

/// Default quotas (Nova's `[quota]` and Neutron's `[QUOTAS]`); -1 = unlimited.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
    pub metadata_items: i64,
    pub injected_files: i64,
    pub injected_file_content_bytes: i64,
    pub injected_file_path_length: i64,
    pub key_pairs: i64,
    pub server_groups: i64,
    pub server_group_members: i64,
    pub network: i64,
    pub subnet: i64,
    pub port: i64,
    pub security_group: i64,
    pub security_group_rule: i64,
    pub router: i64,
    pub floatingip: i64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            instances: 10,
            cores: 20,
            ram: 50 * 1024,
            metadata_items: 128,
            injected_files: 5,
            injected_file_content_bytes: 10 * 1024,
            injected_file_path_length: 255,
            key_pairs: 100,
            server_groups: 10,
            server_group_members: 10,
            network: 100,
            subnet: 100,
            port: 500,
            security_group: 10,
            security_group_rule: 100,
            router: 10,
            floatingip: 50,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// The admin password set at first start; empty = a random one.
    pub admin_password: String,
    pub region: String,
    /// Name of the cloud entry written to clouds.yaml.
    pub cloud_name: String,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            admin_password: String::new(),
            region: "RegionOne".into(),
            cloud_name: "ferrostack".into(),
        }
    }
}

impl Config {
    /// The configuration with secrets replaced, for `config show` and logs.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        if !c.bootstrap.admin_password.is_empty() {
            c.bootstrap.admin_password = "***".into();
        }
        c.database.url = crate::db::redact_url(&c.database.url);
        c
    }

    /// The database URL, defaulting to SQLite in the state directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            crate::db::Db::sqlite_url(&self.state_dir.join("ferrostack.db"))
        } else {
            self.database.url.clone()
        }
    }
}

/// `[vnc]`: a VNC console per guest, on a unix socket in the instance directory
/// (the QEMU driver) or a TCP port (libvirt), always with a password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VncConfig {
    pub enabled: bool,
    /// `server_listen`: the TCP address of drivers that cannot use a unix socket
    /// (libvirt).
    pub server_listen: String,
    /// `novncproxy_base_url`: the noVNC page users are sent to; the token rides
    /// in its `path` parameter. Empty = `http://<[console] listen>/vnc_auto.html`.
    pub novncproxy_base_url: String,
}

impl Default for VncConfig {
    fn default() -> Self {
        VncConfig {
            enabled: true,
            server_listen: "127.0.0.1".into(),
            novncproxy_base_url: String::new(),
        }
    }
}

/// `[spice]`: a SPICE console per guest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpiceConfig {
    pub enabled: bool,
    /// `server_listen`: the TCP address SPICE listens on, reachable by direct
    /// SPICE clients (`remote-viewer spice://HOST:PORT`); `unix` = a unix socket
    /// in the instance directory, reachable only through the proxy.
    pub server_listen: String,
    /// `html5proxy_base_url`: the spice-html5 page. Empty =
    /// `http://<[console] listen>/spice_auto.html`.
    pub html5proxy_base_url: String,
    /// `spice_direct_proxy_base_url` (microversion 2.99's `spice-direct`).
    pub spice_direct_proxy_base_url: String,
}

impl Default for SpiceConfig {
    fn default() -> Self {
        SpiceConfig {
            enabled: true,
            server_listen: "127.0.0.1".into(),
            html5proxy_base_url: String::new(),
            spice_direct_proxy_base_url: "http://127.0.0.1:13002/nova".into(),
        }
    }
}

/// `[serial_console]`: the guest's serial port over a websocket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SerialConsoleConfig {
    pub enabled: bool,
    /// `base_url`. Empty = `ws://<[console] listen>/`.
    pub base_url: String,
}

impl Default for SerialConsoleConfig {
    fn default() -> Self {
        SerialConsoleConfig {
            enabled: true,
            base_url: String::new(),
        }
    }
}

/// `[consoleauth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleAuthConfig {
    /// `token_ttl`: seconds a console token (and every session opened with it)
    /// lives.
    pub token_ttl: u64,
}

impl Default for ConsoleAuthConfig {
    fn default() -> Self {
        ConsoleAuthConfig { token_ttl: 600 }
    }
}

/// The console proxy ferrostack serves itself: noVNC and spice-html5 pages and
/// the websockets behind them, on a listener of its own (nova-novncproxy's 6080).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleProxyConfig {
    /// Where the proxy listens ("" = no proxy).
    pub listen: String,
    /// `[console] allowed_origins`: hosts a browser page may come from besides
    /// the proxy's own.
    pub allowed_origins: Vec<String>,
    /// Debian's `novnc` files (scripts/host-tools installs them).
    pub novnc_dir: PathBuf,
    /// Debian's `spice-html5` files.
    pub spice_html5_dir: PathBuf,
}

impl Default for ConsoleProxyConfig {
    fn default() -> Self {
        ConsoleProxyConfig {
            listen: "127.0.0.1:6080".into(),
            allowed_origins: Vec::new(),
            novnc_dir: PathBuf::from("/usr/share/novnc"),
            spice_html5_dir: PathBuf::from("/usr/share/spice-html5"),
        }
    }
}

/// The metadata service (nova-api-metadata's job). Guests of the real drivers
/// reach it at 169.254.169.254:80: their user-mode network makes that
/// connection from their QEMU process on the host, a NAT rule for QEMU's user
/// sends it to `listen`, and the service tells the guest by the QEMU process
/// that owns the connection (never by an address or header the guest chooses).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// Where the service listens on the host (a loopback address).
    pub listen: String,
    /// `auto` (when ferrostack runs as root with the qemu or libvirt driver and
    /// `iptables` is there), `on` (fail to start otherwise) or `off` (config
    /// drive only).
    pub intercept: String,
    /// Seconds an IMDSv2 token may live at most (AWS: 21600).
    pub max_token_ttl: u32,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            listen: "127.0.0.1:8775".into(),
            intercept: "auto".into(),
            max_token_ttl: 21_600,
        }
    }
}
