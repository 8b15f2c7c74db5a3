//! The libguestfs backend of [`GuestFs`] (upstream Nova's choice), for the
//! filesystems `debugfs` cannot edit (XFS, btrfs, ...): one `guestfish --listen`
//! server per injection boots the libguestfs appliance once (~12 s under TCG),
//! and every operation is one `guestfish --remote` call whose arguments are argv
//! elements, never a parsed script line. The disk is handed over as a raw file
//! (a FUSE export for qcow2/LUKS, see [`super::export`]); the guest filesystem
//! is mounted inside the appliance, never on the host.
//!
//! libguestfs reads its usual environment (`LIBGUESTFS_BACKEND`,
//! `SUPERMIN_KERNEL`, `LIBGUESTFS_CACHEDIR`, ...); `direct` is the default
//! backend here, and [`Guestfish::launch`] forces TCG when asked, because on
//! hosts where KVM opens but does not run guests the appliance hangs forever.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::debugfs::{GuestFs, Node, NodeKind, Op};
use super::path::GuestPath;
use super::{InjectError, Partition};

fn tool(message: impl Into<String>) -> InjectError {
    InjectError::Tool {
        program: "guestfish",
        message: message.into(),
    }
}

/// Whether `guestfish` can be run at all.
pub fn available() -> bool {
    Command::new("guestfish")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A running `guestfish --listen` server with the guest filesystem mounted at `/`.
pub struct Guestfish {
    pid: u32,
    scratch: PathBuf,
    timeout: Duration,
    /// The device mounted (`/dev/sda1`).
    device: String,
    closed: bool,
}

/// Waits for `cmd` at most `timeout`; kills it after that.
fn output_within(cmd: &mut Command, timeout: Duration) -> Result<Output, InjectError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| tool(e.to_string()))?;
    let started = Instant::now();
    loop {
        match child.try_wait()? {
            Some(_) => return Ok(child.wait_with_output()?),
            None if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(tool(format!("no answer within {timeout:?}")));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// `lstatnslist` output: one `[i] = { st_mode: 33188 ... }` block per name;
/// a missing name has `st_ino: -1`.
fn parse_lstatns_list(text: &str) -> Result<Vec<Option<Node>>, InjectError> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            blocks.push(String::new());
        } else if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
        .iter()
        .map(|b| {
            if b.lines().any(|l| l.trim() == "st_ino: -1") {
                Ok(None)
            } else {
                parse_lstatns(b).map(Some)
            }
        })
        .collect()
}

/// One `lstatns` block (`st_mode: 33188` lines) as a [`Node`].
fn parse_lstatns(text: &str) -> Result<Node, InjectError> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.trim(), v.trim());
        }
    }
    let num = |name: &str| -> Result<u64, InjectError> {
        fields
            .get(name)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| tool(format!("no {name} in lstatns output: {}", text.trim())))
    };
    let mode = num("st_mode")? as u32;
    let kind = match mode & 0o170000 {
        0o100000 => NodeKind::File,
        0o040000 => NodeKind::Dir,
        0o120000 => NodeKind::Symlink,
        0o010000 => NodeKind::Other("FIFO".into()),
        0o140000 => NodeKind::Other("socket".into()),
        0o020000 => NodeKind::Other("character device".into()),
        0o060000 => NodeKind::Other("block device".into()),
        other => NodeKind::Other(format!("type {other:o}")),
    };
    Ok(Node {
        kind,
        mode: mode & 0o7777,
        uid: num("st_uid")? as u32,
        gid: num("st_gid")? as u32,
        size: num("st_size")?,
    })
}

/// The device to mount: `which` among the disk's partitions and filesystems
/// (`list-filesystems` lines, `/dev/sda1: xfs`).
fn choose_device(
    which: Partition,
    partitions: &[String],
    filesystems: &[(String, String)],
) -> Result<String, InjectError> {
    let usable = |fs: &str| !matches!(fs, "" | "unknown" | "swap" | "LVM2_member");
    let device = match which {
        Partition::Never => return Err(InjectError::Disabled),
        Partition::Whole => "/dev/sda".to_string(),
        Partition::Number(n) => {
            let d = format!("/dev/sda{n}");
            if !partitions.contains(&d) {
                return Err(InjectError::PartitionNotFound(n));
            }
            d
        }
        Partition::Auto if partitions.is_empty() => "/dev/sda".to_string(),
        Partition::Auto => {
            let mut candidates: Vec<&String> = partitions.iter().collect();
            candidates.sort_by_key(|d| {
                d.trim_start_matches("/dev/sda")
                    .parse::<u32>()
                    .unwrap_or(u32::MAX)
            });
            return candidates
                .into_iter()
                .find(|d| check_fs(d, filesystems, usable).is_ok())
                .cloned()
                .ok_or_else(|| {
                    InjectError::NoFilesystem(format!(
                        "none of the {} partitions holds a filesystem libguestfs can mount",
                        partitions.len()
                    ))
                });
        }
    };
    check_fs(&device, filesystems, usable)?;
    Ok(device)
}

fn check_fs(
    device: &str,
    filesystems: &[(String, String)],
    usable: impl Fn(&str) -> bool,
) -> Result<(), InjectError> {
    match filesystems.iter().find(|(d, _)| d == device) {
        Some((_, fs)) if usable(fs) => Ok(()),
        Some((_, fs)) => Err(InjectError::NoFilesystem(format!(
            "{device} holds {fs:?}, not a filesystem to inject into"
        ))),
        None => Err(InjectError::NoFilesystem(format!(
            "no filesystem on {device}"
        ))),
    }
}

impl Guestfish {
    /// Starts the server on the raw disk `image`, boots the appliance and mounts
    /// the filesystem `which` selects. Each call may take `timeout`.
    pub fn launch(
        image: &Path,
        which: Partition,
        scratch: &Path,
        force_tcg: bool,
        timeout: Duration,
    ) -> Result<Guestfish, InjectError> {
        let mut cmd = Command::new("guestfish");
        cmd.arg("--listen")
            .arg("--rw")
            .arg("--format=raw")
            .arg("-a")
            .arg(image);
        if std::env::var_os("LIBGUESTFS_BACKEND").is_none() {
            cmd.env("LIBGUESTFS_BACKEND", "direct");
        }
        if force_tcg {
            cmd.env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
        }
        let log = scratch.join("guestfish.log");
        let mut child: Child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .map_err(|e| tool(e.to_string()))?;
        // `GUESTFISH_PID=1234; export GUESTFISH_PID`, then the listener
        // closes its stdout and the launching process exits.
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let status = child.wait()?;
        let pid = line
            .trim()
            .strip_prefix("GUESTFISH_PID=")
            .and_then(|r| r.split(';').next())
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid.filter(|_| status.success()) else {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(tool(format!("--listen did not start: {}", err.trim())));
        };
        let mut gf = Guestfish {
            pid,
            scratch: scratch.to_path_buf(),
            timeout,
            device: String::new(),
            closed: false,
        };
        gf.call(&["run"])?;
        let partitions: Vec<String> = gf
            .call(&["list-partitions"])?
            .lines()
            .map(str::to_string)
            .collect();
        let filesystems: Vec<(String, String)> = gf
            .call(&["list-filesystems"])?
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(d, f)| (d.to_string(), f.to_string()))
            .collect();
        gf.device = choose_device(which, &partitions, &filesystems)?;
        let device = gf.device.clone();
        gf.call(&["mount", &device, "/"])?;
        Ok(gf)
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    /// One remote command; its stdout. A failing command also stops the
    /// server (guestfish's remote mode), and its message is in the server's log.
    fn call(&self, args: &[&str]) -> Result<String, InjectError> {
        let out = output_within(
            Command::new("guestfish")
                .arg(format!("--remote={}", self.pid))
                .arg("--")
                .args(args),
            self.timeout,
        )?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let log = std::fs::read_to_string(self.scratch.join("guestfish.log")).unwrap_or_default();
        let client = String::from_utf8_lossy(&out.stderr);
        Err(tool(format!(
            "{}: {} {}",
            args.first().unwrap_or(&""),
            log.trim(),
            client.trim()
        )))
    }

    fn host_path(&self, name: &str) -> Result<String, InjectError> {
        let p = self.scratch.join(name);
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| tool(format!("unusable scratch path {p:?}")))
    }

    /// Unmounts (syncing the filesystem) and stops the appliance. Errors here
    /// mean the writes may not have reached the disk.
    pub fn close(mut self) -> Result<(), InjectError> {
        self.closed = true;
        self.call(&["umount-all"])?;
        self.call(&["shutdown"])?;
        self.call(&["exit"])?;
        Ok(())
    }
}

impl Drop for Guestfish {
    fn drop(&mut self) {
        // `exit` syncs and stops the appliance. When it fails the server is
        // usually gone already (a failed command stops it); one that hangs is
        // terminated (libguestfs' recovery process then stops the appliance).
        if self.closed || self.call(&["exit"]).is_ok() {
            return;
        }
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", self.pid)).unwrap_or_default();
        if comm.trim() == "guestfish"
            && let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32)
        {
            tracing::warn!(
                pid = self.pid,
                "guestfish server did not exit: terminating it"
            );
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}

impl GuestFs for Guestfish {
    fn stat(
        &mut self,
        paths: &[GuestPath],
    ) -> Result<BTreeMap<GuestPath, Option<Node>>, InjectError> {
        // Every ancestor is looked up before its children, one `lstatnslist`
        // per directory; children of anything but a real directory are not
        // looked up (the caller refuses such paths), because a failing command
        // would stop the server.
        let mut all: BTreeSet<GuestPath> = BTreeSet::new();
        for p in paths {
            all.extend(p.ancestors());
            all.insert(p.clone());
        }
        let mut by_parent: BTreeMap<String, Vec<GuestPath>> = BTreeMap::new();
        for p in all {
            let parent = match p.as_str().rfind('/') {
                Some(0) | None => "/".to_string(),
                Some(i) => p.as_str()[..i].to_string(),
            };
            by_parent.entry(parent).or_default().push(p);
        }
        let mut known: BTreeMap<GuestPath, Option<Node>> = BTreeMap::new();
        for (parent, children) in by_parent {
            let parent_is_dir = parent == "/"
                || matches!(
                    known.get(&GuestPath::parse(&parent)?),
                    Some(Some(n)) if n.kind == NodeKind::Dir
                );
            if !parent_is_dir {
                for c in children {
                    known.insert(c, None);
                }
                continue;
            }
            let names: Vec<&str> = children
                .iter()
                .map(|c| c.as_str().rsplit('/').next().unwrap_or_default())
                .collect();
            let nodes =
                parse_lstatns_list(&self.call(&["lstatnslist", &parent, &names.join(" ")])?)?;
            if nodes.len() != children.len() {
                return Err(tool(format!(
                    "lstatnslist {parent}: {} answers for {} names",
                    nodes.len(),
                    children.len()
                )));
            }
            known.extend(children.into_iter().zip(nodes));
        }
        Ok(paths
            .iter()
            .map(|p| (p.clone(), known.get(p).cloned().flatten()))
            .collect())
    }

    fn read(&mut self, path: &GuestPath) -> Result<Vec<u8>, InjectError> {
        let dest = self.host_path("dump")?;
        let _ = std::fs::remove_file(&dest);
        self.call(&["download", path.as_str(), &dest])?;
        let data = std::fs::read(&dest)?;
        let _ = std::fs::remove_file(&dest);
        Ok(data)
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), InjectError> {
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Mkdir { path, mode } => {
                    self.call(&["mkdir", path.as_str()])?;
                    self.call(&["chmod", &format!("0{mode:o}"), path.as_str()])?;
                    self.call(&["chown", "0", "0", path.as_str()])?;
                }
                Op::ChmodDir { path, mode } => {
                    self.call(&["chmod", &format!("0{mode:o}"), path.as_str()])?;
                }
                Op::Write {
                    path,
                    data,
                    mode,
                    uid,
                    gid,
                    replace,
                } => {
                    let src = self.host_path(&format!("data{i}"))?;
                    std::fs::write(&src, data)?;
                    if *replace {
                        // a new inode, as debugfs makes: hard links keep the old data
                        self.call(&["rm", path.as_str()])?;
                    }
                    self.call(&["upload", &src, path.as_str()])?;
                    let _ = std::fs::remove_file(&src);
                    self.call(&["chmod", &format!("0{mode:o}"), path.as_str()])?;
                    self.call(&["chown", &uid.to_string(), &gid.to_string(), path.as_str()])?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lstatns() {
        let t = "st_dev: 2049\nst_ino: 131\nst_mode: 33184\nst_nlink: 1\nst_uid: 1000\n\
                 st_gid: 42\nst_rdev: 0\nst_size: 17\nst_blksize: 4096\n";
        let n = parse_lstatns(t).unwrap();
        assert_eq!(n.kind, NodeKind::File);
        assert_eq!((n.mode, n.uid, n.gid, n.size), (0o640, 1000, 42, 17));
        let l = parse_lstatns("st_mode: 41471\nst_uid: 0\nst_gid: 0\nst_size: 4\n").unwrap();
        assert_eq!((l.kind, l.mode), (NodeKind::Symlink, 0o777));
        let f = parse_lstatns("st_mode: 4516\nst_uid: 0\nst_gid: 0\nst_size: 0\n").unwrap();
        assert_eq!(f.kind, NodeKind::Other("FIFO".into()));
        assert!(parse_lstatns("nonsense").is_err());
        let list = "[0] = {\n  st_dev: 0\n  st_ino: -1\n  st_mode: 0\n  st_uid: 0\n  st_gid: 0\n  st_size: 0\n}\n\
                    [1] = {\n  st_ino: 11\n  st_mode: 16832\n  st_uid: 0\n  st_gid: 0\n  st_size: 12288\n}\n";
        let got = parse_lstatns_list(list).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_none());
        let d = got[1].clone().unwrap();
        assert_eq!((d.kind, d.mode), (NodeKind::Dir, 0o700));
    }

    #[test]
    fn chooses_the_device_as_inject_partition_says() {
        let parts = vec!["/dev/sda1".to_string(), "/dev/sda2".to_string()];
        let fss = vec![
            ("/dev/sda1".to_string(), "swap".to_string()),
            ("/dev/sda2".to_string(), "xfs".to_string()),
        ];
        assert_eq!(
            choose_device(Partition::Auto, &parts, &fss).unwrap(),
            "/dev/sda2"
        );
        assert_eq!(
            choose_device(Partition::Number(2), &parts, &fss).unwrap(),
            "/dev/sda2"
        );
        assert!(matches!(
            choose_device(Partition::Number(1), &parts, &fss),
            Err(InjectError::NoFilesystem(_))
        ));
        assert!(matches!(
            choose_device(Partition::Number(3), &parts, &fss),
            Err(InjectError::PartitionNotFound(3))
        ));
        assert!(matches!(
            choose_device(Partition::Whole, &parts, &fss),
            Err(InjectError::NoFilesystem(_))
        ));
        let whole = vec![("/dev/sda".to_string(), "btrfs".to_string())];
        assert_eq!(
            choose_device(Partition::Auto, &[], &whole).unwrap(),
            "/dev/sda"
        );
        assert_eq!(
            choose_device(Partition::Whole, &[], &whole).unwrap(),
            "/dev/sda"
        );
    }
}
