//! File injection into a guest's root filesystem, without mounting it (upstream's
//! `inject_partition`/`inject_key`/`inject_password`): the SSH key
//! (`/root/.ssh/authorized_keys`, appended), the network configuration
//! (`/etc/network/interfaces`), the admin password (`/etc/shadow`, SHA-512 crypt,
//! the `root` account checked in `/etc/passwd`), the metadata (`/meta.js`), the
//! personality files, and upstream's SELinux `rc.local` restorecon snippet when
//! the guest has `/etc/selinux`.
//!
//! Disks: a raw image is edited in place; a qcow2 overlay (LUKS-encrypted or not)
//! or a raw LUKS disk is reached through a `qemu-storage-daemon` FUSE export
//! ([`export`]). An ext2/3/4 filesystem is found by [`partition`] (MBR/GPT) and
//! edited by [`debugfs`] in milliseconds; any other (XFS, btrfs, ...) goes to
//! [`guestfish`] (libguestfs, ~12 s under TCG) when it is installed, else the
//! build fails with [`InjectError::NoFilesystem`].
//!
//! Safety: every path is validated ([`path`]), then every ancestor of every
//! target is looked up in the guest filesystem before anything is written: a
//! symlink or non-directory on the way, or an existing target that is not a
//! regular file, refuses the whole injection and nothing is written.

pub mod debugfs;
pub mod export;
pub mod guestfish;
pub mod partition;
pub mod path;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use debugfs::{Debugfs, GuestFs, Node, NodeKind, Op};
use path::GuestPath;

/// Upstream's `inject_partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// -2: never inject.
    Never,
    /// -1: the first partition holding a filesystem we can edit.
    Auto,
    /// 0: the whole disk is the filesystem.
    Whole,
    /// N: partition N.
    Number(u32),
}

impl TryFrom<i32> for Partition {
    type Error = InjectError;

    fn try_from(v: i32) -> Result<Partition, InjectError> {
        match v {
            -2 => Ok(Partition::Never),
            -1 => Ok(Partition::Auto),
            0 => Ok(Partition::Whole),
            n if n > 0 => Ok(Partition::Number(n as u32)),
            n => Err(InjectError::InvalidPartition(n)),
        }
    }
}

/// What to inject. Empty fields are skipped.
#[derive(Clone, Default)]
pub struct Injection {
    pub key: Option<String>,
    /// The `/etc/network/interfaces` content.
    pub net: Option<String>,
    pub admin_password: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// Personality files: absolute guest path and content.
    pub files: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Injection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injection")
            .field("key", &self.key.is_some())
            .field("net", &self.net.is_some())
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("metadata", &self.metadata.as_ref().map(BTreeMap::len))
            .field(
                "files",
                &self.files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

/// The disk to inject into.
#[derive(Debug, Clone)]
pub struct DiskRef {
    pub path: PathBuf,
    pub format: DiskFormat,
    /// A 0600 file holding exactly the LUKS passphrase, for an encrypted disk.
    pub luks_secret_file: Option<PathBuf>,
}

/// Which [`GuestFs`] backend edits the filesystem (`[host] inject_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// debugfs for ext2/3/4, guestfish for anything else when installed.
    #[default]
    Auto,
    Debugfs,
    Guestfish,
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Backend, String> {
        match s {
            "auto" => Ok(Backend::Auto),
            "debugfs" => Ok(Backend::Debugfs),
            "guestfish" => Ok(Backend::Guestfish),
            other => Err(format!(
                "unknown injection backend {other:?} (auto, debugfs or guestfish)"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InjectOptions {
    pub backend: Backend,
    /// How long the FUSE export may take to come up, and each guestfish call.
    pub timeout: Duration,
    /// Boot the libguestfs appliance under TCG (KVM opens but does not run guests).
    pub guestfs_force_tcg: bool,
    /// Where the export mount point and scratch files live (the instance dir).
    pub work_dir: PathBuf,
}

impl Default for InjectOptions {
    fn default() -> InjectOptions {
        InjectOptions {
            backend: Backend::Auto,
            timeout: Duration::from_secs(300),
            guestfs_force_tcg: false,
            work_dir: std::env::temp_dir(),
        }
    }
}

/// What was done.
#[derive(Debug, Clone)]
pub struct InjectReport {
    /// Which backend edited the filesystem ([`Backend::Debugfs`] or [`Backend::Guestfish`]).
    pub backend: Backend,
    /// Where the filesystem is: its byte offset in the disk (debugfs), or the
    /// appliance's device (`/dev/sda1`, guestfish).
    pub filesystem: String,
    /// Guest paths written.
    pub written: Vec<String>,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("file injection is disabled (inject_partition = -2)")]
    Disabled,
    #[error("inject_partition {0} is invalid (-2, -1, 0 or a partition number)")]
    InvalidPartition(i32),
    #[error("partition {0} does not exist on the disk")]
    PartitionNotFound(u32),
    #[error("no filesystem to inject into: {0}")]
    NoFilesystem(String),
    #[error("injection backend {0} is not available")]
    BackendUnavailable(&'static str),
    #[error("refusing to inject into {path}: {reason}")]
    UnsafePath { path: String, reason: String },
    #[error("the guest has no usable root account: {0}")]
    NoRootUser(String),
    #[error("{program} failed: {message}")]
    Tool {
        program: &'static str,
        message: String,
    },
    #[error("password hashing failed: {0}")]
    Crypt(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

const KEY_COMMENT: &str = "# The following ssh key was injected by ferrostack";
const SELINUX_SNIPPET: &str = "# Added by ferrostack: give injected ssh keys their SELinux context\n\
                               restorecon -RF /root/.ssh 2>/dev/null || :\n";

/// Injects `what` into the filesystem on `disk` chosen by `partition`.
pub fn inject(
    disk: &DiskRef,
    partition: Partition,
    what: &Injection,
    opts: &InjectOptions,
) -> Result<InjectReport, InjectError> {
    let started = Instant::now();
    if partition == Partition::Never {
        return Err(InjectError::Disabled);
    }
    // Validate every requested path before touching the disk.
    let files: Vec<(GuestPath, &[u8])> = what
        .files
        .iter()
        .map(|(p, d)| Ok((GuestPath::parse(p)?, d.as_slice())))
        .collect::<Result<_, InjectError>>()?;
    std::fs::create_dir_all(&opts.work_dir)?;
    let scratch = tempfile::Builder::new()
        .prefix(".inject-")
        .tempdir_in(&opts.work_dir)?;
    let export;
    let image = if disk.format == DiskFormat::Raw && disk.luks_secret_file.is_none() {
        disk.path.clone()
    } else {
        export = export::Export::start(disk, &opts.work_dir.join("inject.export"), opts.timeout)?;
        export.path().to_path_buf()
    };
    let ext = match opts.backend {
        Backend::Guestfish => None,
        Backend::Debugfs => Some(partition::locate(&image, partition)?),
        Backend::Auto => match partition::locate(&image, partition) {
            Ok(offset) => Some(offset),
            Err(InjectError::NoFilesystem(why)) if guestfish::available() => {
                tracing::debug!(%why, "not ext2/3/4: injecting through libguestfs");
                None
            }
            Err(InjectError::NoFilesystem(why)) => {
                return Err(InjectError::NoFilesystem(format!(
                    "{why} (other filesystems need libguestfs: guestfish is not installed)"
                )));
            }
            Err(e) => return Err(e),
        },
    };
    let (backend, filesystem, written) = match ext {
        Some(offset) => {
            let mut fs = Debugfs::new(&image, offset, scratch.path())?;
            let written = inject_into(&mut fs, what, &files)?;
            (Backend::Debugfs, format!("byte {offset}"), written)
        }
        None => {
            if !guestfish::available() {
                return Err(InjectError::BackendUnavailable("guestfish"));
            }
            let mut fs = guestfish::Guestfish::launch(
                &image,
                partition,
                scratch.path(),
                opts.guestfs_force_tcg,
                opts.timeout,
            )?;
            let written = inject_into(&mut fs, what, &files)?;
            let device = fs.device().to_string();
            fs.close()?;
            (Backend::Guestfish, device, written)
        }
    };
    Ok(InjectReport {
        backend,
        filesystem,
        written,
        elapsed: started.elapsed(),
    })
}

fn p(s: &str) -> GuestPath {
    GuestPath::parse(s).expect("a built-in guest path is valid")
}

struct Plan {
    writes: Vec<(GuestPath, Vec<u8>, u32, u32, u32)>,
    /// Directories to create if missing, with their mode.
    dirs: BTreeMap<GuestPath, u32>,
}

impl Plan {
    fn write(&mut self, path: GuestPath, data: Vec<u8>, mode: u32) {
        self.write_owned(path, data, mode, 0, 0);
    }

    fn write_owned(&mut self, path: GuestPath, data: Vec<u8>, mode: u32, uid: u32, gid: u32) {
        for a in path.ancestors() {
            self.dirs.entry(a).or_insert(0o755);
        }
        self.writes.retain(|w| w.0 != path);
        self.writes.push((path, data, mode, uid, gid));
    }
}

fn unsafe_path(path: &GuestPath, reason: &str) -> InjectError {
    InjectError::UnsafePath {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// A regular file's content, `None` when missing; refuses anything else.
fn existing(
    fs: &mut dyn GuestFs,
    nodes: &BTreeMap<GuestPath, Option<Node>>,
    path: &GuestPath,
) -> Result<Option<(Vec<u8>, Node)>, InjectError> {
    match nodes.get(path).cloned().flatten() {
        None => Ok(None),
        Some(n) if n.kind == NodeKind::File => Ok(Some((fs.read(path)?, n))),
        Some(_) => Err(unsafe_path(path, "not a regular file")),
    }
}

/// Everything above the disk: look up, plan, check, write.
pub fn inject_into(
    fs: &mut dyn GuestFs,
    what: &Injection,
    files: &[(GuestPath, &[u8])],
) -> Result<Vec<String>, InjectError> {
    let keys = p("/root/.ssh/authorized_keys");
    let passwd = p("/etc/passwd");
    let shadow = p("/etc/shadow");
    let selinux = p("/etc/selinux");
    let rc_local = p("/etc/rc.d/rc.local");
    // Every path we may read or write, with its ancestors.
    let mut look: BTreeSet<GuestPath> = BTreeSet::new();
    let mut wanted = vec![
        keys.clone(),
        passwd.clone(),
        shadow.clone(),
        selinux.clone(),
        rc_local.clone(),
        p("/etc/network/interfaces"),
        p("/meta.js"),
    ];
    wanted.extend(files.iter().map(|f| f.0.clone()));
    for w in &wanted {
        look.extend(w.ancestors());
        look.insert(w.clone());
    }
    let look: Vec<GuestPath> = look.into_iter().collect();
    let nodes = fs.stat(&look)?;
    // Reading through a symlinked ancestor is as unsafe as writing through one.
    let safe_ancestors = |path: &GuestPath| -> Result<(), InjectError> {
        for a in path.ancestors() {
            match nodes.get(&a).cloned().flatten() {
                Some(n) if n.kind == NodeKind::Symlink => {
                    return Err(unsafe_path(path, &format!("{a} is a symlink")));
                }
                Some(n) if n.kind != NodeKind::Dir => {
                    return Err(unsafe_path(path, &format!("{a} is not a directory")));
                }
                _ => {}
            }
        }
        Ok(())
    };

    let mut plan = Plan {
        writes: Vec::new(),
        dirs: BTreeMap::new(),
    };
    if let Some(key) = what.key.as_deref().filter(|k| !k.trim().is_empty()) {
        safe_ancestors(&keys)?;
        let mut data = match existing(fs, &nodes, &keys)? {
            Some((d, _)) => d,
            None => Vec::new(),
        };
        if !data.is_empty() && !data.ends_with(b"\n") {
            data.push(b'\n');
        }
        data.extend_from_slice(format!("\n{KEY_COMMENT}\n{}\n", key.trim_end()).as_bytes());
        plan.write(keys.clone(), data, 0o600);
        plan.dirs.insert(p("/root"), 0o700);
        plan.dirs.insert(p("/root/.ssh"), 0o700);
        if matches!(nodes.get(&selinux), Some(Some(n)) if n.kind == NodeKind::Dir) {
            safe_ancestors(&rc_local)?;
            let (mut data, mode) = match existing(fs, &nodes, &rc_local)? {
                Some((d, n)) => (d, n.mode),
                None => (b"#!/bin/sh\n".to_vec(), 0o755),
            };
            if !String::from_utf8_lossy(&data).contains("restorecon -RF /root/.ssh") {
                if !data.ends_with(b"\n") {
                    data.push(b'\n');
                }
                data.extend_from_slice(SELINUX_SNIPPET.as_bytes());
            }
            plan.write(rc_local.clone(), data, mode | 0o100);
        }
    }
    if let Some(net) = &what.net {
        plan.write(p("/etc/network/interfaces"), net.as_bytes().to_vec(), 0o644);
    }
    if let Some(pw) = &what.admin_password {
        safe_ancestors(&passwd)?;
        safe_ancestors(&shadow)?;
        let (pass_data, _) = existing(fs, &nodes, &passwd)?
            .ok_or_else(|| InjectError::NoRootUser("no /etc/passwd".into()))?;
        if !String::from_utf8_lossy(&pass_data)
            .lines()
            .any(|l| l.starts_with("root:"))
        {
            return Err(InjectError::NoRootUser("no root in /etc/passwd".into()));
        }
        let (shadow_data, node) = existing(fs, &nodes, &shadow)?
            .ok_or_else(|| InjectError::NoRootUser("no /etc/shadow".into()))?;
        let data = set_root_password(&String::from_utf8_lossy(&shadow_data), pw)?;
        plan.write_owned(
            shadow.clone(),
            data.into_bytes(),
            node.mode,
            node.uid,
            node.gid,
        );
    }
    if let Some(meta) = &what.metadata {
        let json = serde_json::to_vec(meta).map_err(|e| InjectError::Tool {
            program: "serde_json",
            message: e.to_string(),
        })?;
        plan.write(p("/meta.js"), json, 0o644);
    }
    for (path, data) in files {
        plan.write(path.clone(), data.to_vec(), 0o644);
    }
    if plan.writes.is_empty() {
        return Ok(Vec::new());
    }

    // Check everything before writing anything.
    let mut ops = Vec::new();
    for (dir, mode) in &plan.dirs {
        match nodes.get(dir).cloned().flatten() {
            None => ops.push(Op::Mkdir {
                path: dir.clone(),
                mode: *mode,
            }),
            Some(n) if n.kind == NodeKind::Dir => {
                // upstream makes ~root/.ssh private even when it exists
                if dir.as_str() == "/root/.ssh" && n.mode != *mode {
                    ops.push(Op::ChmodDir {
                        path: dir.clone(),
                        mode: *mode,
                    });
                }
            }
            Some(n) if n.kind == NodeKind::Symlink => {
                return Err(unsafe_path(dir, "is a symlink"));
            }
            Some(_) => return Err(unsafe_path(dir, "is not a directory")),
        }
    }
    for (path, ..) in &plan.writes {
        safe_ancestors(path)?;
    }
    for (path, data, mode, uid, gid) in plan.writes.iter().cloned() {
        let replace = match nodes.get(&path).cloned().flatten() {
            None => false,
            Some(n) if n.kind == NodeKind::File => true,
            Some(n) if n.kind == NodeKind::Symlink => {
                return Err(unsafe_path(&path, "is a symlink"));
            }
            Some(_) => return Err(unsafe_path(&path, "is not a regular file")),
        };
        ops.push(Op::Write {
            path,
            data,
            mode,
            uid,
            gid,
            replace,
        });
    }
    fs.apply(&ops)?;
    verify(fs, &ops)?;
    Ok(plan.writes.into_iter().map(|w| w.0.to_string()).collect())
}

/// Looks every change up again: the right kind, mode and (for files) size.
fn verify(fs: &mut dyn GuestFs, ops: &[Op]) -> Result<(), InjectError> {
    let expect: Vec<(&GuestPath, NodeKind, Option<u64>, u32)> = ops
        .iter()
        .map(|op| match op {
            Op::Mkdir { path, mode } | Op::ChmodDir { path, mode } => {
                (path, NodeKind::Dir, None, *mode)
            }
            Op::Write {
                path, data, mode, ..
            } => (path, NodeKind::File, Some(data.len() as u64), *mode),
        })
        .collect();
    let paths: Vec<GuestPath> = expect.iter().map(|e| e.0.clone()).collect();
    let got = fs.stat(&paths)?;
    for (path, kind, size, mode) in expect {
        let ok = match got.get(path).cloned().flatten() {
            Some(n) => n.kind == kind && size.is_none_or(|s| s == n.size) && n.mode == mode,
            None => false,
        };
        if !ok {
            return Err(InjectError::Tool {
                program: "injection",
                message: format!("writing {path} did not take effect"),
            });
        }
    }
    Ok(())
}

/// `/etc/shadow` with root's password replaced by a SHA-512 crypt hash.
fn set_root_password(shadow: &str, password: &str) -> Result<String, InjectError> {
    let hash = sha_crypt::sha512_simple(password, &sha_crypt::Sha512Params::default())
        .map_err(|e| InjectError::Crypt(format!("{e:?}")))?;
    let mut found = false;
    let mut out = String::new();
    for line in shadow.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&"root") && fields.len() >= 2 {
            fields[1] = &hash;
            found = true;
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        return Err(InjectError::NoRootUser("no root in /etc/shadow".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
