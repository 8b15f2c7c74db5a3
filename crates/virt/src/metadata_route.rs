//! How a guest's request to the metadata service (169.254.169.254:80) reaches
//! the host, and which guest sent it.
//!
//! A user-mode network makes a guest's TCP connections from its QEMU process on
//! the host. Two rule chains for QEMU's user (`FERROSTACK-METADATA` in the nat
//! and filter tables) redirect its connections to 169.254.169.254:80 to the
//! metadata listener and refuse the rest of 169.254.0.0/16 (without them, slirp
//! would carry the guest to the *host's* link-local network — on a cloud VM, to
//! the host's own metadata). The listener then asks the kernel which socket
//! made the connection (`/proc/net/tcp`: the one bound to the peer address and
//! still aimed at 169.254.169.254:80, owned by QEMU's user), finds the QEMU
//! process holding that socket and reads its `-uuid`. Nothing the guest sends —
//! addresses, headers — takes part in it; guests with the same fixed IP on
//! different networks stay apart.
//!
//! The rules stay when ferrostack stops (guests outlive it, and the refusal must
//! too); each start rewrites them for its own listener.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

/// The chains' name, in the nat and filter tables.
pub const CHAIN: &str = "FERROSTACK-METADATA";

/// The metadata address guests use.
pub const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("cannot run iptables: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("iptables {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
}

fn iptables(args: &[&str]) -> Result<bool, RouteError> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    Ok(out.status.success())
}

fn must(args: &[&str]) -> Result<(), RouteError> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(RouteError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Whether the interception can work here: root and an `iptables` that runs.
pub fn available() -> bool {
    running_as_root()
        && Command::new("iptables")
            .args(["-w", "-t", "nat", "-S", "OUTPUT"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Installs (or rewrites) the rules: QEMU's user (`uid`) reaching
/// 169.254.169.254:80 goes to `port` on this host; the rest of 169.254.0.0/16
/// is refused. Blocking (runs `iptables`).
pub fn install(uid: u32, port: u16) -> Result<(), RouteError> {
    let uid = uid.to_string();
    let port = port.to_string();
    let dst = format!("{METADATA_IP}/32");
    // nat: the redirect
    let _ = iptables(&["-t", "nat", "-N", CHAIN]);
    must(&["-t", "nat", "-F", CHAIN])?;
    must(&[
        "-t",
        "nat",
        "-A",
        CHAIN,
        "-d",
        &dst,
        "-p",
        "tcp",
        "--dport",
        "80",
        "-m",
        "owner",
        "--uid-owner",
        &uid,
        "-j",
        "REDIRECT",
        "--to-ports",
        &port,
    ])?;
    if !iptables(&["-t", "nat", "-C", "OUTPUT", "-j", CHAIN])? {
        must(&["-t", "nat", "-I", "OUTPUT", "1", "-j", CHAIN])?;
    }
    // filter: everything else link-local from QEMU is refused
    let _ = iptables(&["-N", CHAIN]);
    must(&["-F", CHAIN])?;
    must(&[
        "-A",
        CHAIN,
        "-d",
        "169.254.0.0/16",
        "-p",
        "tcp",
        "-m",
        "owner",
        "--uid-owner",
        &uid,
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ])?;
    must(&[
        "-A",
        CHAIN,
        "-d",
        "169.254.0.0/16",
        "-m",
        "owner",
        "--uid-owner",
        &uid,
        "-j",
        "REJECT",
    ])?;
    if !iptables(&["-C", "OUTPUT", "-j", CHAIN])? {
        must(&["-I", "OUTPUT", "1", "-j", CHAIN])?;
    }
    Ok(())
}

/// The uid of a user name (`/etc/passwd`).
pub fn uid_of(user: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == user).then_some(())?;
        f.next()?;
        f.next()?.parse().ok()
    })
}

/// A `/proc/net/tcp` address: `0100007F:1F90` = 127.0.0.1:8080 (the address as
/// the machine stores it, the port in host order).
fn parse_v4(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddr::from((Ipv4Addr::from(ip.to_le_bytes()), port)))
}

/// The inode of the socket owned by `uid` that is bound to `peer` and aimed at
/// 169.254.169.254:80, from a `/proc/net/tcp` text.
fn socket_inode(table: &str, peer: SocketAddr, uid: u32) -> Option<u64> {
    let target = SocketAddr::from((METADATA_IP, 80));
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 10 {
            return None;
        }
        let (local, remote) = (parse_v4(f[1])?, parse_v4(f[2])?);
        let owner: u32 = f[7].parse().ok()?;
        (local == peer && remote == target && owner == uid)
            .then(|| f[9].parse().ok())
            .flatten()
    })
}

/// The `-uuid` of a QEMU command line (NUL-separated).
fn uuid_of_cmdline(cmdline: &[u8]) -> Option<String> {
    let mut args = cmdline.split(|b| *b == 0);
    while let Some(a) = args.next() {
        if a == b"-uuid" {
            return args
                .next()
                .and_then(|u| std::str::from_utf8(u).ok())
                .map(str::to_string);
        }
    }
    None
}

/// The process of `uid` holding socket `inode`.
fn holder(proc_root: &Path, uid: u32, inode: u64) -> Option<u32> {
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir(proc_root).ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if entry.metadata().map(|m| m.uid()).ok() != Some(uid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == want.as_str()) {
                return Some(pid);
            }
        }
    }
    None
}

/// The instance uuid of the guest whose QEMU (running as `uid`) made the TCP
/// connection that arrived from `peer`; `None` when no QEMU of ours made it.
/// Blocking (reads /proc); about a millisecond.
pub fn guest_of_connection(peer: SocketAddr, uid: u32) -> Option<String> {
    let SocketAddr::V4(_) = peer else {
        return None;
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = socket_inode(&table, peer, uid)?;
    let pid = holder(Path::new("/proc"), uid, inode)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    uuid_of_cmdline(&cmdline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_lines_are_read_as_the_kernel_writes_them() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n\
   1: 0F02000A:A1B2 FEA9FEA9:0050 01 00000000:00000000 00:00000000 00000000   999        0 222 1 0 20 4 30 10 -1\n\
   2: 0F02000A:A1B3 FEA9FEA9:0050 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1\n";
        let peer: SocketAddr = "10.0.2.15:41394".parse().unwrap();
        assert_eq!(socket_inode(table, peer, 999), Some(222));
        // the same connection owned by another user is not a guest's
        assert_eq!(socket_inode(table, peer, 1000), None);
        // root's socket to the metadata address (a host process) is not a guest's either
        assert_eq!(
            socket_inode(table, "10.0.2.15:41395".parse().unwrap(), 999),
            None
        );
        assert_eq!(
            parse_v4("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
    }

    #[test]
    fn the_uuid_comes_from_qemus_command_line() {
        let c = [
            "qemu-system-x86_64",
            "-name",
            "guest=x",
            "-uuid",
            "5f0c2c4e-0000-4000-8000-000000000001",
            "-m",
            "128",
        ]
        .join("\0");
        let c = c.as_bytes();
        assert_eq!(
            uuid_of_cmdline(c).as_deref(),
            Some("5f0c2c4e-0000-4000-8000-000000000001")
        );
        assert_eq!(uuid_of_cmdline(b"sh\0-c\0true\0"), None);
    }
}
