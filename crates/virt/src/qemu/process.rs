//! QEMU as an operating-system process: the binary and what it can do
//! ([`QemuBinary::probe`]), starting it detached from ferrostack (its own process
//! group, stdout/stderr to `qemu.log`, so a Ctrl-C, crash or restart of ferrostack
//! never reaches it), and recognising it again later: a pid from the pidfile is
//! only trusted when `/proc/<pid>/cmdline` is a `qemu-system` whose `-uuid` is the
//! instance's (a recycled pid is not a guest).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The system emulator and what this build of it offers.
#[derive(Debug, Clone)]
pub struct QemuBinary {
    pub path: PathBuf,
    /// `10.0.2` → (10, 0, 2).
    pub version: (u32, u32, u32),
    /// The SPICE module is installed (`qemu-system-modules-spice` on Debian).
    pub spice: bool,
}

impl QemuBinary {
    /// Runs the binary to learn its version and modules; `None` when it does not run.
    pub fn probe(path: &Path) -> Option<QemuBinary> {
        let out = std::process::Command::new(path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text)?;
        let spice = std::process::Command::new(path)
            .args(["-M", "none", "-spice", "help"])
            .stdin(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).contains("spice options")
                    || String::from_utf8_lossy(&o.stderr).contains("spice options")
            })
            .unwrap_or(false);
        Some(QemuBinary {
            path: path.to_path_buf(),
            version,
            spice,
        })
    }

    /// Nova's integer form of the version (`10.0.2` → 10000002).
    pub fn version_code(&self) -> i64 {
        let (a, b, c) = self.version;
        i64::from(a) * 1_000_000 + i64::from(b) * 1_000 + i64::from(c)
    }
}

fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let v = rest.split_whitespace().next()?;
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Starts QEMU with `argv`, detached: stdin closed, stdout and stderr appended to
/// `log` (0600), in a process group of its own.
/// Starts QEMU with `cwd` as its working directory: the domain's sockets are named
/// relative to it, because a UNIX socket path must fit in 108 bytes and instance
/// directories under a deep state directory do not.
pub fn launch(program: &Path, argv: &[String], cwd: &Path, log: &Path) -> std::io::Result<Child> {
    use std::os::unix::fs::OpenOptionsExt;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(log)?;
    let err = out.try_clone()?;
    let args: Vec<OsString> = argv.iter().map(OsString::from).collect();
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
}

/// Connects to the UNIX socket `path`, however long: a path beyond `sun_path`'s 108
/// bytes is reached through `/proc/self/fd/N/NAME` of its directory.
pub async fn connect_unix(path: &Path) -> std::io::Result<tokio::net::UnixStream> {
    use std::os::fd::AsRawFd;
    if path.as_os_str().len() < 100 {
        return tokio::net::UnixStream::connect(path).await;
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return tokio::net::UnixStream::connect(path).await;
    };
    let dir = std::fs::File::open(parent)?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    let r = tokio::net::UnixStream::connect(&short).await;
    drop(dir);
    r
}

/// The last lines QEMU wrote to its log (for an error message).
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join("; ")
}

/// The pid in a pidfile.
pub fn read_pidfile(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` is alive (not a zombie) and is the QEMU of instance `uuid`.
pub fn is_guest_process(pid: u32, uuid: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_qemu = args
        .first()
        .is_some_and(|a| String::from_utf8_lossy(a).contains("qemu-system"));
    let has_uuid = args
        .windows(2)
        .any(|w| w[0] == b"-uuid" && w[1] == uuid.as_bytes());
    is_qemu && has_uuid && alive(pid)
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ..." — the state follows the last ')'
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// Waits until `pid` is gone; false when it still lives after `limit`.
pub async fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while alive(pid) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// SIGKILL, for a QEMU that will not quit.
pub fn kill9(pid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// This boot of the host (`/proc/sys/kernel/random/boot_id`): a guest recorded as
/// running under another boot id was stopped by a host reboot, not a crash.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether this process runs as root (then QEMU drops to an unprivileged user).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether `name` is a user of this system (`/etc/passwd`).
pub fn user_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .map(|p| {
            p.lines()
                .any(|l| l.split(':').next().is_some_and(|u| u == name))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_beyond_sun_path_are_reached() {
        use std::os::fd::AsRawFd;
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("qmp.sock");
        assert!(path.as_os_str().len() > 108);
        // bind through the same short name QEMU gets (it runs in the directory)
        let dir = std::fs::File::open(&deep).unwrap();
        let short = format!("/proc/self/fd/{}/qmp.sock", dir.as_raw_fd());
        let listener = std::os::unix::net::UnixListener::bind(&short).unwrap();
        assert!(tokio::net::UnixStream::connect(&path).await.is_err());
        let _client = connect_unix(&path).await.unwrap();
        listener.accept().unwrap();
    }

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright"),
            Some((10, 0, 2))
        );
        assert_eq!(
            parse_version("QEMU emulator version 7.2.22"),
            Some((7, 2, 22))
        );
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn this_process_is_alive_and_not_a_guest() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(!is_guest_process(
            me,
            "4f1c2f3e-9a5b-4c1d-8e2f-0a1b2c3d4e5f"
        ));
        assert!(!alive(u32::MAX - 1));
    }
}
