//! The small filesystem seam injection writes through ([`GuestFs`]), and its
//! backend for ext2/3/4: e2fsprogs' `debugfs`, which edits the filesystem image
//! directly (`image?offset=N` for a partition) without mounting it. One debugfs
//! session looks up every path, one writes; debugfs exits 0 even when a command
//! fails, which is why the caller verifies every write by a last lookup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::InjectError;
use super::path::GuestPath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    /// FIFO, socket, device, ... (debugfs's name for it).
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// Permission bits (`0o644`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

/// One change to the guest filesystem.
#[derive(Debug, Clone)]
pub enum Op {
    Mkdir {
        path: GuestPath,
        mode: u32,
    },
    /// Sets an existing directory's permission bits.
    ChmodDir {
        path: GuestPath,
        mode: u32,
    },
    /// Creates or replaces (a new inode: hard links elsewhere keep the old data).
    Write {
        path: GuestPath,
        data: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
        replace: bool,
    },
}

/// What injection needs from a guest filesystem. Lookups never follow a final
/// symlink; callers check every ancestor themselves.
pub trait GuestFs {
    fn stat(
        &mut self,
        paths: &[GuestPath],
    ) -> Result<BTreeMap<GuestPath, Option<Node>>, InjectError>;
    /// The content of a regular file.
    fn read(&mut self, path: &GuestPath) -> Result<Vec<u8>, InjectError>;
    /// Applies the changes in order (directories are owned by root). A backend
    /// may report success for a change that did not happen: the caller checks.
    fn apply(&mut self, ops: &[Op]) -> Result<(), InjectError>;
}

/// `debugfs` on an ext2/3/4 filesystem at a byte offset of an image file.
pub struct Debugfs {
    target: String,
    scratch: PathBuf,
}

fn tool(message: impl Into<String>) -> InjectError {
    InjectError::Tool {
        program: "debugfs",
        message: message.into(),
    }
}

/// Host paths handed to debugfs commands must survive its command parser.
fn plain(p: &Path) -> Result<String, InjectError> {
    let s = p.to_string_lossy().into_owned();
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
    {
        return Err(tool(format!("unusable scratch path {s:?}")));
    }
    Ok(s)
}

impl Debugfs {
    /// `scratch` is a private directory for command and data files.
    pub fn new(image: &Path, offset: u64, scratch: &Path) -> Result<Debugfs, InjectError> {
        let image = image.to_string_lossy().into_owned();
        if image.contains('?') {
            return Err(tool("image path contains '?'"));
        }
        let target = if offset == 0 {
            image
        } else {
            format!("{image}?offset={offset}")
        };
        Ok(Debugfs {
            target,
            scratch: scratch.to_path_buf(),
        })
    }

    /// Runs a command file; returns each command's stdout, in order.
    fn session(&self, cmds: &[String], write: bool) -> Result<(Vec<String>, String), InjectError> {
        let file = self.scratch.join("cmds");
        std::fs::write(&file, cmds.join("\n") + "\n")?;
        let mut c = Command::new("debugfs");
        if write {
            c.arg("-w");
        }
        let out = c
            .arg("-f")
            .arg(&file)
            .arg(&self.target)
            .env("PAGER", "__none__")
            .env("DEBUGFS_PAGER", "__none__")
            .output()
            .map_err(|e| tool(e.to_string()))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(tool(stderr.trim().to_string()));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut blocks: Vec<String> = Vec::new();
        for line in stdout.lines() {
            if line.starts_with("debugfs: ") {
                blocks.push(String::new());
            } else if let Some(b) = blocks.last_mut() {
                b.push_str(line);
                b.push('\n');
            }
        }
        if blocks.len() != cmds.len() {
            return Err(tool(format!(
                "expected {} command outputs, got {}: {}",
                cmds.len(),
                blocks.len(),
                stderr.trim()
            )));
        }
        Ok((blocks, stderr))
    }
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let i = text.find(name)? + name.len();
    text[i..].split_whitespace().next()
}

/// Parses `stat` output; empty output = not found.
fn parse_stat(block: &str) -> Result<Option<Node>, InjectError> {
    if !block.contains("Inode:") {
        return Ok(None);
    }
    let first = block.lines().next().unwrap_or_default();
    let ty = first
        .split("Type:")
        .nth(1)
        .and_then(|r| r.split("Mode:").next())
        .map(str::trim)
        .ok_or_else(|| tool(format!("unreadable stat output: {first}")))?;
    let kind = match ty {
        "regular" => NodeKind::File,
        "directory" => NodeKind::Dir,
        "symlink" => NodeKind::Symlink,
        other => NodeKind::Other(other.to_string()),
    };
    let num = |name: &str| -> Result<u64, InjectError> {
        field(block, name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| tool(format!("no {name} in stat output")))
    };
    let mode = field(block, "Mode:")
        .and_then(|v| u32::from_str_radix(v, 8).ok())
        .ok_or_else(|| tool("no Mode: in stat output"))?;
    Ok(Some(Node {
        kind,
        mode,
        uid: num("User:")? as u32,
        gid: num("Group:")? as u32,
        size: num("Size:")?,
    }))
}

impl GuestFs for Debugfs {
    fn stat(
        &mut self,
        paths: &[GuestPath],
    ) -> Result<BTreeMap<GuestPath, Option<Node>>, InjectError> {
        if paths.is_empty() {
            return Ok(BTreeMap::new());
        }
        let cmds: Vec<String> = paths.iter().map(|p| format!("stat \"{p}\"")).collect();
        let (blocks, _) = self.session(&cmds, false)?;
        let mut out = BTreeMap::new();
        for (p, b) in paths.iter().zip(blocks) {
            out.insert(p.clone(), parse_stat(&b)?);
        }
        Ok(out)
    }

    fn read(&mut self, path: &GuestPath) -> Result<Vec<u8>, InjectError> {
        let dest = self.scratch.join("dump");
        let _ = std::fs::remove_file(&dest);
        let cmds = vec![format!("dump \"{path}\" \"{}\"", plain(&dest)?)];
        let (_, stderr) = self.session(&cmds, false)?;
        let data = std::fs::read(&dest).map_err(|e| tool(format!("dump {path}: {e} {stderr}")))?;
        let _ = std::fs::remove_file(&dest);
        Ok(data)
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), InjectError> {
        let mut cmds = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Mkdir { path, mode } => {
                    cmds.push(format!("mkdir \"{path}\""));
                    cmds.push(format!(
                        "set_inode_field \"{path}\" mode 0{:o}",
                        0o40000 | mode
                    ));
                    cmds.push(format!("set_inode_field \"{path}\" uid 0"));
                    cmds.push(format!("set_inode_field \"{path}\" gid 0"));
                }
                Op::ChmodDir { path, mode } => {
                    cmds.push(format!(
                        "set_inode_field \"{path}\" mode 0{:o}",
                        0o40000 | mode
                    ));
                }
                Op::Write {
                    path,
                    data,
                    mode,
                    uid,
                    gid,
                    replace,
                } => {
                    let src = self.scratch.join(format!("data{i}"));
                    std::fs::write(&src, data)?;
                    if *replace {
                        cmds.push(format!("rm \"{path}\""));
                    }
                    cmds.push(format!("write \"{}\" \"{path}\"", plain(&src)?));
                    cmds.push(format!(
                        "set_inode_field \"{path}\" mode 0{:o}",
                        0o100000 | mode
                    ));
                    cmds.push(format!("set_inode_field \"{path}\" uid {uid}"));
                    cmds.push(format!("set_inode_field \"{path}\" gid {gid}"));
                }
            }
        }
        let (_, stderr) = self.session(&cmds, true)?;
        // debugfs reports failed commands only here (the caller's lookup catches them)
        let complaints: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
            .collect();
        if !complaints.is_empty() {
            tracing::warn!(stderr = %complaints.join("; "), "debugfs reported errors");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_blocks() {
        let b = "Inode: 12   Type: regular    Mode:  0640   Flags: 0x80000\n\
                 Generation: 1    Version: 0x00000000:00000001\n\
                 User:  1000   Group:    42   Project:     0   Size: 17\n";
        let n = parse_stat(b).unwrap().unwrap();
        assert_eq!(n.kind, NodeKind::File);
        assert_eq!((n.mode, n.uid, n.gid, n.size), (0o640, 1000, 42, 17));
        let b = "Inode: 13   Type: FIFO    Mode:  0644   Flags: 0x0\nUser:     0   Group:     0   Size: 0\n";
        assert_eq!(
            parse_stat(b).unwrap().unwrap().kind,
            NodeKind::Other("FIFO".into())
        );
        assert_eq!(parse_stat("").unwrap(), None);
    }
}
