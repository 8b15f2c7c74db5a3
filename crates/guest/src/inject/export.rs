//! A qcow2 (optionally LUKS-encrypted) or raw-LUKS disk seen as a plain raw file:
//! `qemu-storage-daemon` exports it through FUSE onto a regular file, debugfs
//! edits that file, and dropping the [`Export`] stops the daemon (SIGTERM, which
//! flushes and unmounts). No root mount, no nbd. The passphrase reaches the daemon
//! as a secret object reading a 0600 file, never on the command line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{DiskFormat, DiskRef, InjectError};

pub struct Export {
    child: Option<Child>,
    mountpoint: PathBuf,
}

/// `/proc/mounts` escapes space, tab, newline and backslash as octal.
fn mounts_escape(p: &Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

fn is_mounted(mountpoint: &Path) -> bool {
    let want = mounts_escape(mountpoint);
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

fn unmount(mountpoint: &Path) {
    let _ = Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(mountpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Export {
    /// Starts the export on `mountpoint` (created as an empty file) and waits
    /// until it is mounted.
    pub fn start(
        disk: &DiskRef,
        mountpoint: &Path,
        timeout: Duration,
    ) -> Result<Export, InjectError> {
        if is_mounted(mountpoint) {
            // left over by a killed run
            unmount(mountpoint);
        }
        std::fs::write(mountpoint, b"")?;
        let log = mountpoint.with_extension("log");
        let mut cmd = Command::new("qemu-storage-daemon");
        if let Some(secret) = &disk.luks_secret_file {
            cmd.arg("--object").arg(
                json!({"qom-type": "secret", "id": "sec0", "file": secret, "format": "raw"})
                    .to_string(),
            );
        }
        cmd.arg("--blockdev")
            .arg(json!({"driver": "file", "node-name": "f0", "filename": disk.path}).to_string());
        let fmt = match (disk.format, disk.luks_secret_file.is_some()) {
            (DiskFormat::Qcow2, false) => {
                json!({"driver": "qcow2", "node-name": "d0", "file": "f0"})
            }
            (DiskFormat::Qcow2, true) => json!({"driver": "qcow2", "node-name": "d0", "file": "f0",
                "encrypt": {"format": "luks", "key-secret": "sec0"}}),
            (DiskFormat::Raw, true) => json!({"driver": "luks", "node-name": "d0", "file": "f0",
                "key-secret": "sec0"}),
            (DiskFormat::Raw, false) => json!({"driver": "raw", "node-name": "d0", "file": "f0"}),
        };
        cmd.arg("--blockdev").arg(fmt.to_string());
        cmd.arg("--export").arg(
            json!({"type": "fuse", "id": "e0", "node-name": "d0", "mountpoint": mountpoint,
                   "writable": true})
            .to_string(),
        );
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .map_err(|e| InjectError::Tool {
                program: "qemu-storage-daemon",
                message: e.to_string(),
            })?;
        let mut export = Export {
            child: Some(child),
            mountpoint: mountpoint.to_path_buf(),
        };
        let started = Instant::now();
        loop {
            if is_mounted(mountpoint) {
                let _ = std::fs::remove_file(&log);
                return Ok(export);
            }
            let exited = export
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > timeout {
                let message = std::fs::read_to_string(&log).unwrap_or_default();
                let _ = std::fs::remove_file(&log);
                let message = if exited.is_some() {
                    message.trim().to_string()
                } else {
                    format!("export not mounted after {timeout:?}: {}", message.trim())
                };
                return Err(InjectError::Tool {
                    program: "qemu-storage-daemon",
                    message,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The exported disk, readable and writable as a raw image.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let started = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if started.elapsed() < Duration::from_secs(10) => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if is_mounted(&self.mountpoint) {
            unmount(&self.mountpoint);
        }
        let _ = std::fs::remove_file(&self.mountpoint);
    }
}
