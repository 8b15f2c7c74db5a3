//! The one wrapper around `qemu-img`: typed calls, argument vectors (never a shell),
//! a timeout per call, stderr in the error, `--output=json` parsed. Secrets reach
//! it only as [`DiskSecret`] files (`--object secret,id=…,file=…`), never in argv.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{DiskError, Result};

/// A LUKS passphrase materialised as a 0600 file in a private 0700 directory
/// (on `/dev/shm` where there is one, so it never reaches a disk), removed when
/// dropped. `Debug` never shows it.
pub struct DiskSecret {
    /// Owns (and on drop removes) the directory holding `path`.
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl std::fmt::Debug for DiskSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskSecret")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DiskSecret {
    pub fn new(passphrase: &str) -> Result<DiskSecret> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut builder = tempfile::Builder::new();
        builder.prefix("ferrostack-secret-");
        let shm = Path::new("/dev/shm");
        let dir = builder
            .tempdir_in(shm)
            .or_else(|_| builder.tempdir())
            .map_err(DiskError::io("creating a secret directory", "/tmp"))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(DiskError::io("chmod", dir.path()))?;
        let path = dir.path().join("key");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(DiskError::io("writing secret", &path))?;
        f.write_all(passphrase.as_bytes())
            .map_err(DiskError::io("writing secret", &path))?;
        Ok(DiskSecret { _dir: dir, path })
    }

    /// The file holding the passphrase.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `secret,id=ID,file=PATH` for `--object`.
    fn object(&self, id: &str) -> OsString {
        let mut o = OsString::from(format!("secret,id={id},file="));
        o.push(escape(&self.path));
        o
    }
}

/// LUKS options of an encrypted output.
pub struct Luks<'a> {
    pub secret: &'a DiskSecret,
    pub iter_time_ms: u32,
}

impl Luks<'_> {
    /// upstream's parameters: aes-256 xts plain64, sha256.
    fn options(&self, id: &str) -> String {
        format!(
            "encrypt.format=luks,encrypt.key-secret={id},encrypt.cipher-alg=aes-256,\
             encrypt.cipher-mode=xts,encrypt.ivgen-alg=plain64,encrypt.hash-alg=sha256,\
             encrypt.iter-time={}",
            self.iter_time_ms.max(1)
        )
    }
}

/// QEMU option syntax: a comma in a value is written twice.
fn escape(p: &Path) -> OsString {
    OsString::from(p.to_string_lossy().replace(',', ",,"))
}

/// `--image-opts` naming an encrypted qcow2 and its key.
fn image_opts(path: &Path, format: &str, key_id: &str) -> OsString {
    let mut o = OsString::from(format!("driver={format},file.filename="));
    o.push(escape(path));
    if format == "qcow2" {
        o.push(format!(",encrypt.key-secret={key_id}"));
    } else {
        o.push(format!(",key-secret={key_id}"));
    }
    o
}

/// What `qemu-img info --output=json` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: String,
    pub virtual_size: u64,
    pub actual_size: Option<u64>,
    pub backing_filename: Option<String>,
    pub backing_format: Option<String>,
    pub encrypted: bool,
    pub cluster_size: Option<u64>,
    /// qcow2 `data-file` (an external data file: refused for images).
    pub data_file: Option<String>,
}

#[derive(Deserialize)]
struct RawInfo {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "actual-size")]
    actual_size: Option<u64>,
    #[serde(rename = "backing-filename")]
    backing_filename: Option<String>,
    #[serde(rename = "backing-filename-format")]
    backing_format: Option<String>,
    encrypted: Option<bool>,
    #[serde(rename = "cluster-size")]
    cluster_size: Option<u64>,
    #[serde(rename = "format-specific")]
    format_specific: Option<serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct QemuImg {
    program: PathBuf,
    timeout: Duration,
}

impl QemuImg {
    pub fn new(program: PathBuf, timeout: Duration) -> QemuImg {
        QemuImg { program, timeout }
    }

    async fn run(&self, what: &'static str, path: &Path, args: Vec<OsString>) -> Result<Vec<u8>> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        tracing::debug!(?args, "qemu-img");
        let child = cmd.spawn().map_err(DiskError::io(what, &self.program))?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(DiskError::io(what, path))?,
            Err(_) => {
                return Err(DiskError::Timeout {
                    what,
                    path: path.to_path_buf(),
                    secs: self.timeout.as_secs(),
                });
            }
        };
        if !out.status.success() {
            return Err(DiskError::Tool {
                what,
                path: path.to_path_buf(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    pub async fn version(&self) -> Result<String> {
        let out = self
            .run("version", &self.program, vec!["--version".into()])
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string())
    }

    /// `qemu-img info`. With `format` the image is opened as that format (never
    /// probed); `None` probes, for image bytes being checked before they are trusted.
    pub async fn info(
        &self,
        path: &Path,
        format: Option<&str>,
        secret: Option<&DiskSecret>,
    ) -> Result<ImageInfo> {
        let mut args: Vec<OsString> = vec!["info".into(), "--output=json".into(), "-U".into()];
        match (format, secret) {
            (Some(f), Some(s)) => {
                args.extend(["--object".into(), s.object("sec0")]);
                args.extend(["--image-opts".into(), image_opts(path, f, "sec0")]);
            }
            (Some(f), None) => {
                args.extend(["-f".into(), f.into(), path.into()]);
            }
            (None, _) => args.push(path.into()),
        }
        let out = self.run("info", path, args).await?;
        let raw: RawInfo = serde_json::from_slice(&out).map_err(|e| DiskError::Tool {
            what: "info",
            path: path.to_path_buf(),
            status: "unparsable output".into(),
            stderr: e.to_string(),
        })?;
        let data_file = raw
            .format_specific
            .as_ref()
            .and_then(|f| f.pointer("/data/data-file"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let encrypted = raw.encrypted.unwrap_or(false)
            || raw
                .format_specific
                .as_ref()
                .and_then(|f| f.pointer("/data/encrypt"))
                .is_some();
        Ok(ImageInfo {
            format: raw.format,
            virtual_size: raw.virtual_size,
            actual_size: raw.actual_size,
            backing_filename: raw.backing_filename,
            backing_format: raw.backing_format,
            encrypted,
            cluster_size: raw.cluster_size,
            data_file,
        })
    }

    /// A new empty image.
    pub async fn create(
        &self,
        path: &Path,
        format: &str,
        size: u64,
        encrypt: Option<&Luks<'_>>,
    ) -> Result<()> {
        let mut args: Vec<OsString> =
            vec!["create".into(), "-q".into(), "-f".into(), format.into()];
        if let Some(l) = encrypt {
            args.extend(["--object".into(), l.secret.object("sec0")]);
            args.extend(["-o".into(), l.options("sec0").into()]);
        }
        args.extend([path.into(), size.to_string().into()]);
        self.run("create", path, args).await.map(|_| ())
    }

    /// A qcow2 overlay on `backing` (`-b backing -F backing_format`), optionally
    /// LUKS-encrypted, of `size` bytes (`None`: the backing file's size).
    pub async fn create_overlay(
        &self,
        path: &Path,
        backing: &Path,
        backing_format: &str,
        size: Option<u64>,
        encrypt: Option<&Luks<'_>>,
    ) -> Result<()> {
        let mut args: Vec<OsString> =
            vec!["create".into(), "-q".into(), "-f".into(), "qcow2".into()];
        args.extend([
            "-b".into(),
            backing.into(),
            "-F".into(),
            backing_format.into(),
        ]);
        if let Some(l) = encrypt {
            args.extend(["--object".into(), l.secret.object("sec0")]);
            args.extend(["-o".into(), l.options("sec0").into()]);
        }
        args.push(path.into());
        if let Some(s) = size {
            args.push(s.to_string().into());
        }
        self.run("create overlay", path, args).await.map(|_| ())
    }

    /// `qemu-img convert`: `src` (opened as `src_format`, with its key if it is
    /// encrypted) into a new `dst` (optionally LUKS-encrypted). `force_share`
    /// (`-U`) reads a source another process (a paused QEMU) holds open: only
    /// consistent while that process writes nothing (CPUs stopped, caches flushed).
    #[allow(clippy::too_many_arguments)]
    pub async fn convert(
        &self,
        src: &Path,
        src_format: &str,
        dst: &Path,
        dst_format: &str,
        encrypt: Option<&Luks<'_>>,
        src_secret: Option<&DiskSecret>,
        force_share: bool,
    ) -> Result<()> {
        let mut args: Vec<OsString> = vec!["convert".into(), "-q".into()];
        if force_share {
            args.push("-U".into());
        }
        if let Some(s) = src_secret {
            args.extend(["--object".into(), s.object("src0")]);
            args.extend(["--image-opts".into(), image_opts(src, src_format, "src0")]);
        } else {
            args.extend(["-f".into(), src_format.into(), src.into()]);
        }
        args.extend(["-O".into(), dst_format.into()]);
        if let Some(l) = encrypt {
            args.extend(["--object".into(), l.secret.object("sec0")]);
            args.extend(["-o".into(), l.options("sec0").into()]);
        }
        args.push(dst.into());
        self.run("convert", src, args).await.map(|_| ())
    }

    /// Grows (or shrinks — callers check) an image to `size` bytes. The format is
    /// always given (from `disk.info`), never probed.
    pub async fn resize(
        &self,
        path: &Path,
        format: &str,
        size: u64,
        secret: Option<&DiskSecret>,
    ) -> Result<()> {
        let mut args: Vec<OsString> = vec!["resize".into(), "-q".into()];
        if let Some(s) = secret {
            args.extend(["--object".into(), s.object("sec0")]);
            args.extend(["--image-opts".into(), image_opts(path, format, "sec0")]);
        } else {
            args.extend(["-f".into(), format.into(), path.into()]);
        }
        args.push(size.to_string().into());
        self.run("resize", path, args).await.map(|_| ())
    }
}

/// A passphrase in memory, wiped on drop.
pub type Passphrase = Zeroizing<String>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_are_private_files_that_disappear() {
        use std::os::unix::fs::PermissionsExt;
        let s = DiskSecret::new("pw-123").unwrap();
        let p = s.path().to_path_buf();
        let dir = p.parent().unwrap().to_path_buf();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "pw-123");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(!format!("{s:?}").contains("pw-123"));
        let obj = s.object("sec0");
        assert!(!obj.to_string_lossy().contains("pw-123"));
        drop(s);
        assert!(!p.exists() && !dir.exists());
    }

    #[test]
    fn commas_in_paths_are_escaped_for_qemu_option_syntax() {
        assert_eq!(
            image_opts(Path::new("/a,b/disk"), "qcow2", "s"),
            OsString::from("driver=qcow2,file.filename=/a,,b/disk,encrypt.key-secret=s")
        );
    }
}
