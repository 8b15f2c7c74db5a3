//! The host's image cache, upstream's layout: `instances/_base/<sha1(image_id)>`.
//! An image is fetched once per host: streamed from the [`ImageSource`] into a
//! temporary file while two threads write and hash it, verified (sha512 when the
//! record has it, else md5; and the size), its format checked with `qemu-img info`
//! against the record's `disk_format` (backing files and external data files
//! refused), converted to raw when `force_raw`, fsynced and renamed into place. A
//! side file `<sha1>.json` records the trusted format and size. Concurrent fetches
//! of one image wait for a single download: an async lock per image in the process
//! and a lock file (`<sha1>.lock`) across processes.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use md5::Digest as _;
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use super::qemu_img::QemuImg;
use super::{DiskError, ImageSource, Result};

#[derive(Debug, Clone, Copy, Default)]
pub struct CacheOptions {
    /// upstream's `force_raw_images`.
    pub force_raw: bool,
}

/// A verified image in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedImage {
    pub path: PathBuf,
    /// `raw` or `qcow2`, as verified at fetch time.
    pub format: String,
    pub virtual_size: u64,
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    image_id: String,
    format: String,
    virtual_size: u64,
}

pub struct ImageCache {
    dir: PathBuf,
    source: Arc<dyn ImageSource>,
    qemu_img: QemuImg,
    opts: CacheOptions,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// `sha1(image_id)` in hex: the cache file name.
pub fn cache_name(image_id: &str) -> String {
    hex::encode(Sha1::digest(image_id.as_bytes()))
}

fn image_err(image: &str, message: impl Into<String>) -> DiskError {
    DiskError::Image {
        image: image.to_string(),
        message: message.into(),
    }
}

impl ImageCache {
    pub fn new(
        dir: PathBuf,
        source: Arc<dyn ImageSource>,
        qemu_img: QemuImg,
        opts: CacheOptions,
    ) -> ImageCache {
        ImageCache {
            dir,
            source,
            qemu_img,
            opts,
            locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(name.to_string()).or_default().clone()
    }

    fn cached(&self, name: &str, image_id: &str) -> Option<CachedImage> {
        let data = self.dir.join(name);
        let side: Sidecar =
            serde_json::from_slice(&std::fs::read(self.dir.join(format!("{name}.json"))).ok()?)
                .ok()?;
        if side.image_id != image_id || !data.is_file() {
            return None;
        }
        // Touch it: the pruner removes what has not been used for a while.
        if let Ok(f) = std::fs::File::options().write(true).open(&data) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(CachedImage {
            path: data,
            format: side.format,
            virtual_size: side.virtual_size,
        })
    }

    /// The cached image, fetching it first when needed.
    pub async fn fetch(&self, image_id: &str) -> Result<CachedImage> {
        let name = cache_name(image_id);
        let lock = self.lock_for(&name);
        let _one = lock.lock().await;
        if let Some(c) = self.cached(&name, image_id) {
            return Ok(c);
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(DiskError::io("creating", &self.dir))?;
        // Other processes on this host share the directory: hold the lock file.
        let lock_path = self.dir.join(format!("{name}.lock"));
        let file_lock = {
            let p = lock_path.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                let f = std::fs::File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&p)?;
                fs4::fs_std::FileExt::lock_exclusive(&f)?;
                Ok(f)
            })
            .await
            .map_err(|e| image_err(image_id, e.to_string()))?
            .map_err(DiskError::io("locking", &lock_path))?
        };
        let r = match self.cached(&name, image_id) {
            Some(c) => Ok(c),
            None => self.download(image_id, &name).await,
        };
        drop(file_lock);
        r
    }

    async fn download(&self, image_id: &str, name: &str) -> Result<CachedImage> {
        let rec = self.source.describe(image_id).await.map_err(|e| {
            image_err(
                image_id,
                format!("cannot be read from the image service: {e}"),
            )
        })?;
        if rec.status != "active" {
            return Err(image_err(
                image_id,
                format!("is {}, not active", rec.status),
            ));
        }
        let tmp = match self.link_local(image_id, name, &rec).await {
            Some(linked) => linked,
            None => self.copy_verified_from_source(image_id, name, &rec).await?,
        };
        self.finish(image_id, name, &rec, tmp).await
    }

    /// The store's own file, hard-linked under a temporary name in the cache
    /// directory, when the source has one on this filesystem and its size is the
    /// record's. Its bytes were hashed as the upload wrote them (that is where the
    /// record's checksums come from) and the store never rewrites a file, so they
    /// are not hashed again; the format checks in [`Self::finish`] still run.
    /// `None` (and a log line) when there is no such file or it cannot be linked
    /// (another filesystem): the caller copies from the stream.
    async fn link_local(
        &self,
        image_id: &str,
        name: &str,
        rec: &super::SourceImage,
    ) -> Option<tempfile::NamedTempFile> {
        let src = match self.source.local_file(image_id).await {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(image = image_id, error = %e, "no local file to link; copying");
                return None;
            }
        };
        let link = self.dir.join(format!(
            ".{name}.link.{}",
            ferrostack_core::ids::new_hex_id()
        ));
        let size = rec.size;
        let linked = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            std::fs::hard_link(&src, &link)?;
            let path = tempfile::TempPath::try_from_path(link)?;
            let file = std::fs::File::open(&path)?;
            let len = file.metadata()?.len();
            if size.is_some_and(|s| s != len) {
                return Err(std::io::Error::other(format!(
                    "the store's file has {len} bytes, the record says {size:?}"
                )));
            }
            Ok(tempfile::NamedTempFile::from_parts(file, path))
        })
        .await;
        match linked {
            Ok(Ok(tmp)) => {
                tracing::info!(image = image_id, "image linked from the store (no copy)");
                Some(tmp)
            }
            Ok(Err(e)) => {
                tracing::info!(image = image_id, error = %e, "cannot link the store's file; copying");
                None
            }
            Err(_) => None,
        }
    }

    /// The source's stream written to a temporary file while it is hashed, then
    /// checked against the record's size and checksum.
    async fn copy_verified_from_source(
        &self,
        image_id: &str,
        name: &str,
        rec: &super::SourceImage,
    ) -> Result<tempfile::NamedTempFile> {
        let stream = self
            .source
            .open(image_id)
            .await
            .map_err(|e| image_err(image_id, format!("cannot be downloaded: {e}")))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .tempfile_in(&self.dir)
            .map_err(DiskError::io("creating a temporary file in", &self.dir))?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(DiskError::io("opening", tmp.path()))?;
        let want_sha512 = rec
            .os_hash_algo
            .as_deref()
            .filter(|a| *a == "sha512")
            .and(rec.os_hash_value.clone());
        let (size, digest) = copy_verified(stream, file, want_sha512.is_some())
            .await
            .map_err(|e| image_err(image_id, format!("download failed: {e}")))?;
        if let Some(expected) = rec.size
            && expected != size
        {
            return Err(image_err(
                image_id,
                format!("download has {size} bytes, the image record says {expected}: not cached"),
            ));
        }
        let expected = want_sha512.or(rec.checksum.clone());
        match expected {
            Some(e) if !e.eq_ignore_ascii_case(&digest) => {
                return Err(image_err(
                    image_id,
                    "the downloaded bytes do not match the image's checksum: not cached",
                ));
            }
            Some(_) => {}
            None => {
                return Err(image_err(image_id, "has no checksum to verify it by"));
            }
        }
        Ok(tmp)
    }

    /// Verified bytes in `tmp` → the cache entry: their real format against the
    /// record's, converted to raw when asked, fsynced, the side file, the rename.
    async fn finish(
        &self,
        image_id: &str,
        name: &str,
        rec: &super::SourceImage,
        tmp: tempfile::NamedTempFile,
    ) -> Result<CachedImage> {
        // What the bytes really are (probing is fine here: the bytes are not used
        // until they pass), against what the record says.
        let probed = self.qemu_img.info(tmp.path(), None, None).await?;
        let declared = rec.disk_format.clone().unwrap_or_else(|| "raw".into());
        let format = match (declared.as_str(), probed.format.as_str()) {
            ("raw", "raw") | ("iso", "raw") => "raw",
            ("qcow2", "qcow2") => "qcow2",
            (d, p) => {
                return Err(image_err(
                    image_id,
                    format!("is declared {d} but its bytes are {p}: refused"),
                ));
            }
        };
        if probed.backing_filename.is_some() || probed.data_file.is_some() {
            return Err(image_err(
                image_id,
                "refers to another file (backing file or data file): refused",
            ));
        }
        let dest = self.dir.join(name);
        let (final_tmp, format, virtual_size) = if format == "qcow2" && self.opts.force_raw {
            let raw = tempfile::Builder::new()
                .prefix(&format!(".{name}.raw."))
                .tempfile_in(&self.dir)
                .map_err(DiskError::io("creating a temporary file in", &self.dir))?;
            self.qemu_img
                .convert(tmp.path(), "qcow2", raw.path(), "raw", None, None, false)
                .await?;
            drop(tmp);
            (raw, "raw".to_string(), probed.virtual_size)
        } else {
            (tmp, format.to_string(), probed.virtual_size)
        };
        let side = serde_json::to_vec(&Sidecar {
            image_id: image_id.to_string(),
            format: format.clone(),
            virtual_size,
        })
        .map_err(|e| image_err(image_id, e.to_string()))?;
        let side_path = self.dir.join(format!("{name}.json"));
        // fsyncs of the whole base image and two renames: off the reactor.
        let (dir, to) = (self.dir.clone(), dest.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            final_tmp
                .as_file()
                .sync_all()
                .map_err(DiskError::io("syncing", final_tmp.path()))?;
            ferrostack_core::fsutil::write_atomic(&side_path, &side, 0o644)
                .map_err(DiskError::io("writing", &side_path))?;
            final_tmp.persist(&to).map_err(|e| DiskError::Io {
                what: "renaming into",
                path: to.clone(),
                source: e.error,
            })?;
            // Best effort: the rename is already visible; a lost directory
            // entry after a power cut means one more download, not a bad image.
            ferrostack_core::fsutil::sync_dir(&dir).ok();
            Ok(())
        })
        .await
        .map_err(|e| image_err(image_id, format!("cache task failed: {e}")))??;
        tracing::info!(image = image_id, path = %dest.display(), %format, virtual_size, "image cached");
        Ok(CachedImage {
            path: dest,
            format,
            virtual_size,
        })
    }

    /// Removes cached images that are not in `in_use` and were not used for
    /// `min_age` (modification time, touched on every cache hit). An image being
    /// fetched is never touched (its lock is held).
    pub async fn prune(
        &self,
        in_use: &HashSet<PathBuf>,
        min_age: Duration,
    ) -> Result<Vec<PathBuf>> {
        let mut gone = Vec::new();
        let mut rd = match tokio::fs::read_dir(&self.dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(gone),
            Err(e) => {
                return Err(DiskError::Io {
                    what: "reading",
                    path: self.dir.clone(),
                    source: e,
                });
            }
        };
        while let Ok(Some(e)) = rd.next_entry().await {
            let name = e.file_name().to_string_lossy().to_string();
            if name.len() != 40 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
                continue;
            }
            let path = e.path();
            if in_use.contains(&path) {
                continue;
            }
            let lock = self.lock_for(&name);
            let Ok(_g) = lock.try_lock() else {
                continue;
            };
            let old = e
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if !old {
                continue;
            }
            let _ = tokio::fs::remove_file(self.dir.join(format!("{name}.json"))).await;
            tokio::fs::remove_file(&path)
                .await
                .map_err(DiskError::io("removing", &path))?;
            let _ = tokio::fs::remove_file(self.dir.join(format!("{name}.lock"))).await;
            gone.push(path);
        }
        Ok(gone)
    }
}

/// Bytes written between two `fdatasync`s while downloading: writeback runs
/// alongside the (slower) hashing instead of all at the end.
const SYNC_EVERY: u64 = 16 << 20;

/// Streams into `file` on one thread while another hashes (sha512 through ring,
/// whose assembly is ~30% faster here than the portable sha2 crate; or md5);
/// returns (bytes, hex digest). The file is synced as it goes and at the end.
async fn copy_verified(
    mut stream: super::ByteStream,
    file: std::fs::File,
    sha512: bool,
) -> std::io::Result<(u64, String)> {
    use tokio::sync::mpsc::channel;
    // The chunks are shared (`Bytes`): the writer may lag the hasher by up to
    // 32 chunks while it syncs, then memory is bounded by that.
    let (wtx, mut wrx) = channel::<bytes::Bytes>(32);
    let (htx, mut hrx) = channel::<bytes::Bytes>(8);
    let writer = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut f = file;
        let (mut n, mut synced) = (0u64, 0u64);
        while let Some(b) = wrx.blocking_recv() {
            f.write_all(&b)?;
            n += b.len() as u64;
            if n - synced >= SYNC_EVERY {
                f.sync_data()?;
                synced = n;
            }
        }
        f.sync_all()?;
        Ok(n)
    });
    let hasher = std::thread::spawn(move || -> String {
        if sha512 {
            let mut h = ring::digest::Context::new(&ring::digest::SHA512);
            while let Some(b) = hrx.blocking_recv() {
                h.update(&b);
            }
            hex::encode(h.finish())
        } else {
            let mut h = md5::Md5::new();
            while let Some(b) = hrx.blocking_recv() {
                h.update(&b);
            }
            hex::encode(h.finalize())
        }
    });
    let mut failed = None;
    while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        match item {
            Ok(b) => {
                if wtx.send(b.clone()).await.is_err() || htx.send(b).await.is_err() {
                    failed = Some(std::io::Error::other("writer stopped"));
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(wtx);
    drop(htx);
    let (written, digest) = tokio::task::spawn_blocking(move || {
        let written = writer
            .join()
            .map_err(|_| std::io::Error::other("writer thread panicked"))?;
        let digest = hasher
            .join()
            .map_err(|_| std::io::Error::other("hash thread panicked"))?;
        Ok::<_, std::io::Error>((written, digest))
    })
    .await
    .map_err(std::io::Error::other)??;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok((written?, digest))
}
