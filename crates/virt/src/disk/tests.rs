//! The image cache and instance disks against real `qemu-img`/`qemu-io`, with an
//! in-memory [`ImageSource`] (the unit-test stand-in for the image service).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use md5::Digest as _;

use super::cache::{CacheOptions, ImageCache, cache_name};
use super::crypt::DiskKeys;
use super::layout::{
    DiskPlan, EncryptionMode, EncryptionPlan, RootMode, create_disks, encryption_request,
};
use super::qemu_img::{DiskSecret, QemuImg};
use super::{ByteStream, DiskError, ImageSource, SourceImage};

fn have_qemu_img() -> bool {
    let ok = Command::new("qemu-img").arg("--version").output().is_ok();
    assert!(
        ok || std::env::var("FERROSTACK_REQUIRE_HOST_TOOLS").as_deref() != Ok("1"),
        "qemu-img is missing (scripts/host-tools installs it)"
    );
    ok
}

#[derive(Clone)]
struct Img {
    rec: SourceImage,
    bytes: Vec<u8>,
    /// Fail the stream after this many bytes.
    cut_at: Option<usize>,
}

#[derive(Default)]
struct MemSource {
    images: std::sync::Mutex<BTreeMap<String, Img>>,
    opens: AtomicUsize,
    /// Images whose bytes also sit in a file (as the filesystem store keeps them).
    local: std::sync::Mutex<BTreeMap<String, PathBuf>>,
}

impl MemSource {
    fn add(&self, id: &str, format: &str, bytes: Vec<u8>) -> SourceImage {
        let rec = SourceImage {
            id: id.into(),
            status: "active".into(),
            disk_format: Some(format.into()),
            size: Some(bytes.len() as u64),
            checksum: Some(hex::encode(md5::Md5::digest(&bytes))),
            os_hash_algo: Some("sha512".into()),
            os_hash_value: Some(hex::encode(sha2::Sha512::digest(&bytes))),
        };
        self.put(Img {
            rec: rec.clone(),
            bytes,
            cut_at: None,
        });
        rec
    }

    fn put(&self, img: Img) {
        self.images.lock().unwrap().insert(img.rec.id.clone(), img);
    }

    fn get(&self, id: &str) -> std::io::Result<Img> {
        self.images
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such image"))
    }
}

struct Chunks {
    data: Vec<u8>,
    at: usize,
    cut_at: Option<usize>,
}

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<bytes::Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let end = self.data.len().min(self.at + 64 * 1024);
        if let Some(cut) = self.cut_at
            && self.at >= cut
        {
            self.cut_at = None;
            self.at = self.data.len();
            return std::task::Poll::Ready(Some(Err(std::io::Error::other("connection reset"))));
        }
        if self.at >= self.data.len() {
            return std::task::Poll::Ready(None);
        }
        let chunk = bytes::Bytes::copy_from_slice(&self.data[self.at..end]);
        self.at = end;
        std::task::Poll::Ready(Some(Ok(chunk)))
    }
}

#[async_trait]
impl ImageSource for MemSource {
    async fn describe(&self, id: &str) -> std::io::Result<SourceImage> {
        Ok(self.get(id)?.rec)
    }
    async fn local_file(&self, id: &str) -> std::io::Result<Option<PathBuf>> {
        Ok(self.local.lock().unwrap().get(id).cloned())
    }
    async fn open(&self, id: &str) -> std::io::Result<ByteStream> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let img = self.get(id)?;
        Ok(Box::pin(Chunks {
            data: img.bytes,
            at: 0,
            cut_at: img.cut_at,
        }))
    }
}

fn qemu_img() -> QemuImg {
    QemuImg::new(PathBuf::from("qemu-img"), Duration::from_secs(120))
}

/// A raw image of `mib` MiB holding `marker` at offset 0.
fn raw_image(mib: usize, marker: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    v[..marker.len()].copy_from_slice(marker);
    v
}

/// The same as a qcow2 file's bytes.
fn qcow2_image(dir: &Path, mib: usize, marker: &[u8], backing: Option<&Path>) -> Vec<u8> {
    let raw = dir.join("src.raw");
    std::fs::write(&raw, raw_image(mib, marker)).unwrap();
    let q = dir.join("src.qcow2");
    let mut c = Command::new("qemu-img");
    c.args(["convert", "-q", "-O", "qcow2"]).arg(&raw).arg(&q);
    assert!(c.status().unwrap().success());
    if let Some(b) = backing {
        let mut c = Command::new("qemu-img");
        c.args(["rebase", "-u", "-F", "raw", "-b"]).arg(b).arg(&q);
        assert!(c.status().unwrap().success());
    }
    std::fs::read(q).unwrap()
}

fn cache(dir: &Path, source: Arc<MemSource>, force_raw: bool) -> ImageCache {
    ImageCache::new(
        dir.join("_base"),
        source,
        qemu_img(),
        CacheOptions { force_raw },
    )
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn an_image_is_fetched_once_verified_and_named_by_sha1_of_its_id() {
    if !have_qemu_img() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = Arc::new(MemSource::default());
    let bytes = raw_image(4, b"MARKER");
    src.add("img-1", "raw", bytes.clone());
    let c = Arc::new(cache(t.path(), src.clone(), true));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.fetch("img-1").await.unwrap() }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    assert_eq!(src.opens.load(Ordering::SeqCst), 1, "single flight");
    let name = cache_name("img-1");
    assert_eq!(name.len(), 40);
    assert_eq!(got[0].path, t.path().join("_base").join(&name));
    assert!(got.iter().all(|g| g == &got[0]));
    assert_eq!(got[0].format, "raw");
    assert_eq!(got[0].virtual_size, 4 << 20);
    assert_eq!(std::fs::read(&got[0].path).unwrap(), bytes);
    // a later fetch (a new cache object: another process) hits the cache
    let c2 = cache(t.path(), src.clone(), true);
    c2.fetch("img-1").await.unwrap();
    assert_eq!(src.opens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_store_file_on_the_same_filesystem_is_linked_not_copied() {
    use std::os::unix::fs::MetadataExt;
    if !have_qemu_img() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("images");
    std::fs::create_dir_all(&store).unwrap();
    let src = Arc::new(MemSource::default());
    let bytes = raw_image(2, b"LINKED");
    src.add("img-l", "raw", bytes.clone());
    let file = store.join("img-l");
    std::fs::write(&file, &bytes).unwrap();
    src.local
        .lock()
        .unwrap()
        .insert("img-l".into(), file.clone());
    let c = cache(t.path(), src.clone(), false);
    let got = c.fetch("img-l").await.unwrap();
    assert_eq!(src.opens.load(Ordering::SeqCst), 0, "no stream opened");
    let (a, b) = (
        std::fs::metadata(&file).unwrap(),
        std::fs::metadata(&got.path).unwrap(),
    );
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "the same inode");
    assert_eq!(b.nlink(), 2);
    assert_eq!(got.format, "raw");
    assert_eq!(got.virtual_size, 2 << 20);
    assert!(
        listing(&t.path().join("_base"))
            .iter()
            .all(|n| !n.contains(".link.")),
        "no temporary link left"
    );
    // Removing the cache entry leaves the store's file alone.
    std::fs::remove_file(&got.path).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), bytes);

    // A store file whose size is not the record's is not trusted: the stream is
    // copied and verified instead.
    let other = raw_image(1, b"OTHER");
    src.add("img-m", "raw", other.clone());
    let wrong = store.join("img-m");
    std::fs::write(&wrong, b"short").unwrap();
    src.local
        .lock()
        .unwrap()
        .insert("img-m".into(), wrong.clone());
    let got = c.fetch("img-m").await.unwrap();
    assert_eq!(src.opens.load(Ordering::SeqCst), 1);
    assert_ne!(
        std::fs::metadata(&wrong).unwrap().ino(),
        std::fs::metadata(&got.path).unwrap().ino()
    );
    assert_eq!(std::fs::read(&got.path).unwrap(), other);

    // Declared qcow2 but raw in the store: the format check still refuses it.
    let mut rec = src.add("img-q", "qcow2", raw_image(1, b"Q"));
    rec.disk_format = Some("qcow2".into());
    let q = store.join("img-q");
    std::fs::write(&q, raw_image(1, b"Q")).unwrap();
    src.local.lock().unwrap().insert("img-q".into(), q);
    let e = c.fetch("img-q").await.unwrap_err().to_string();
    assert!(e.contains("declared qcow2 but its bytes are raw"), "{e}");
}

#[tokio::test]
async fn bad_downloads_are_never_cached() {
    if !have_qemu_img() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = Arc::new(MemSource::default());
    let c = cache(t.path(), src.clone(), true);
    // bytes that do not match the checksum
    let mut rec = src.add("tampered", "raw", raw_image(1, b"A"));
    rec.os_hash_value = Some(hex::encode(sha2::Sha512::digest(b"something else")));
    src.put(Img {
        rec,
        bytes: raw_image(1, b"A"),
        cut_at: None,
    });
    let e = c.fetch("tampered").await.unwrap_err().to_string();
    assert!(e.contains("do not match the image's checksum"), "{e}");
    // md5 only (no os_hash) is still verified
    let mut rec = src.add("md5", "raw", raw_image(1, b"B"));
    rec.os_hash_algo = None;
    rec.os_hash_value = None;
    rec.checksum = Some("0".repeat(32));
    src.put(Img {
        rec,
        bytes: raw_image(1, b"B"),
        cut_at: None,
    });
    assert!(c.fetch("md5").await.is_err());
    // a download cut in the middle
    let rec = src.add("cut", "raw", raw_image(2, b"C"));
    src.put(Img {
        rec,
        bytes: raw_image(2, b"C"),
        cut_at: Some(1 << 20),
    });
    let e = c.fetch("cut").await.unwrap_err().to_string();
    assert!(e.contains("download failed"), "{e}");
    // a short download (the stream ends early, no error)
    let mut rec = src.add("short", "raw", raw_image(1, b"D"));
    rec.size = Some(2 << 20);
    src.put(Img {
        rec,
        bytes: raw_image(1, b"D"),
        cut_at: None,
    });
    let e = c.fetch("short").await.unwrap_err().to_string();
    assert!(e.contains("not cached"), "{e}");
    // not active
    let mut rec = src.add("queued", "raw", raw_image(1, b"E"));
    rec.status = "queued".into();
    src.put(Img {
        rec,
        bytes: vec![],
        cut_at: None,
    });
    assert!(
        c.fetch("queued")
            .await
            .unwrap_err()
            .to_string()
            .contains("not active")
    );
    // a qcow2 declared raw, and a qcow2 pointing at a host file
    let q = qcow2_image(t.path(), 1, b"F", None);
    src.add("liar", "raw", q);
    let e = c.fetch("liar").await.unwrap_err().to_string();
    assert!(e.contains("declared raw but its bytes are qcow2"), "{e}");
    let q = qcow2_image(t.path(), 1, b"G", Some(Path::new("/etc/shadow")));
    src.add("backed", "qcow2", q);
    let e = c.fetch("backed").await.unwrap_err().to_string();
    assert!(e.contains("backing file"), "{e}");
    // nothing but lock files is left in the cache
    let left: Vec<String> = listing(&t.path().join("_base"))
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn qcow2_images_are_converted_to_raw_when_configured_and_pruned_when_unused() {
    if !have_qemu_img() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = Arc::new(MemSource::default());
    let q = qcow2_image(t.path(), 3, b"QCOW", None);
    src.add("q", "qcow2", q.clone());
    src.add("q2", "qcow2", q);
    let raw = cache(t.path(), src.clone(), true).fetch("q").await.unwrap();
    assert_eq!(raw.format, "raw");
    assert_eq!(std::fs::metadata(&raw.path).unwrap().len(), 3 << 20);
    let kept = cache(t.path(), src.clone(), false)
        .fetch("q2")
        .await
        .unwrap();
    assert_eq!(kept.format, "qcow2");
    let info = qemu_img()
        .info(&kept.path, Some("qcow2"), None)
        .await
        .unwrap();
    assert_eq!(info.virtual_size, 3 << 20);

    let c = cache(t.path(), src.clone(), true);
    let young = c
        .prune(&HashSet::new(), Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(young.is_empty(), "recently used images stay");
    let in_use: HashSet<PathBuf> = [raw.path.clone()].into();
    let gone = c.prune(&in_use, Duration::ZERO).await.unwrap();
    assert_eq!(gone, vec![kept.path.clone()]);
    assert!(raw.path.exists() && !kept.path.exists());
}

fn plan(dir: &Path, base: super::cache::CachedImage, root_gb: u64) -> DiskPlan {
    DiskPlan {
        instance_dir: dir.to_path_buf(),
        base,
        root_gb,
        ephemeral_gb: 1,
        swap_mb: 64,
        mode: RootMode::Overlay,
        encryption: None,
    }
}

#[tokio::test]
async fn overlay_flat_ephemeral_swap_and_disk_info() {
    if !have_qemu_img() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = Arc::new(MemSource::default());
    src.add("img", "raw", raw_image(8, b"ROOT"));
    let base = cache(t.path(), src, true).fetch("img").await.unwrap();
    let q = qemu_img();
    let dir = t.path().join("vm1");
    let disks = create_disks(&q, &plan(&dir, base.clone(), 1))
        .await
        .unwrap();
    let names: Vec<&str> = disks.disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["disk", "disk.eph0", "disk.swap"]);
    let info = q
        .info(&dir.join("disk"), Some("qcow2"), None)
        .await
        .unwrap();
    assert_eq!(info.format, "qcow2");
    assert_eq!(info.virtual_size, 1 << 30);
    assert_eq!(
        info.backing_filename.as_deref(),
        Some(base.path.to_str().unwrap())
    );
    assert_eq!(info.backing_format.as_deref(), Some("raw"));
    assert!(!info.encrypted);
    let eph = q
        .info(&dir.join("disk.eph0"), Some("qcow2"), None)
        .await
        .unwrap();
    assert_eq!(eph.virtual_size, 1 << 30);
    assert_eq!(
        std::fs::metadata(dir.join("disk.swap")).unwrap().len(),
        64 << 20
    );
    let recorded: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(dir.join("disk.info")).unwrap()).unwrap();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[dir.join("disk").to_str().unwrap()], "qcow2");
    assert_eq!(recorded[dir.join("disk.swap").to_str().unwrap()], "raw");
    // again: the same disks, reused
    let mtime = std::fs::metadata(dir.join("disk"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        create_disks(&q, &plan(&dir, base.clone(), 1))
            .await
            .unwrap(),
        disks
    );
    assert_eq!(
        std::fs::metadata(dir.join("disk"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    // root_gb 0 = the image's size; flat = no backing file
    let flat_dir = t.path().join("vm2");
    let mut p = plan(&flat_dir, base.clone(), 0);
    p.mode = RootMode::Flat;
    create_disks(&q, &p).await.unwrap();
    let info = q
        .info(&flat_dir.join("disk"), Some("qcow2"), None)
        .await
        .unwrap();
    assert_eq!(info.backing_filename, None);
    assert_eq!(info.virtual_size, 8 << 20);
}

#[tokio::test]
async fn a_root_disk_is_never_smaller_than_its_image() {
    if !have_qemu_img() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = Arc::new(MemSource::default());
    src.add("img", "raw", raw_image(8, b"ROOT"));
    let mut base = cache(t.path(), src, true).fetch("img").await.unwrap();
    base.virtual_size = 2 << 30; // as a 2 GiB image would be
    let e = create_disks(&qemu_img(), &plan(&t.path().join("vm"), base, 1))
        .await
        .unwrap_err();
    assert!(matches!(e, DiskError::Invalid(_)));
    assert!(e.to_string().contains("never shrunk"), "{e}");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Writes 64 KiB of `pattern` at 1 MiB through the encrypted disk with qemu-io.
fn qemu_io(disk: &Path, secret: &Path, cmd: &str) -> std::process::Output {
    Command::new("qemu-io")
        .arg("--object")
        .arg(format!("secret,id=s0,file={},format=raw", secret.display()))
        .arg("--image-opts")
        .arg(format!(
            "driver=qcow2,file.filename={},encrypt.key-secret=s0",
            disk.display()
        ))
        .args(["-c", cmd])
        .output()
        .unwrap()
}

#[tokio::test]
async fn luks_overlay_and_full_modes() {
    if !have_qemu_img() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = Arc::new(MemSource::default());
    let marker = b"FERROSTACK-PLAINTEXT-MARKER-IN-THE-IMAGE";
    src.add("img", "raw", raw_image(8, marker));
    let base = cache(t.path(), src, true).fetch("img").await.unwrap();
    let keys = DiskKeys::open(t.path().join("kek"), t.path().to_path_buf()).unwrap();
    let q = qemu_img();
    for (vm, mode) in [
        ("vm-ov", EncryptionMode::Overlay),
        ("vm-full", EncryptionMode::Full),
    ] {
        let dir = t.path().join(vm);
        let (secret_uuid, pass) = keys.create(vm, "disk").unwrap();
        let mut p = plan(&dir, base.clone(), 1);
        p.encryption = Some(EncryptionPlan {
            mode,
            secret: DiskSecret::new(&pass).unwrap(),
            secret_uuid: secret_uuid.clone(),
            iter_time_ms: 10,
        });
        let disks = create_disks(&q, &p).await.unwrap();
        assert_eq!(
            disks.disks[0].secret_uuid.as_deref(),
            Some(secret_uuid.as_str())
        );
        let root = dir.join("disk");
        let info = q.info(&root, Some("qcow2"), None).await.unwrap();
        assert!(info.encrypted, "{vm}: qemu-img info must say encrypted");
        assert_eq!(info.virtual_size, 1 << 30);
        let file = std::fs::read(&root).unwrap();
        match mode {
            EncryptionMode::Overlay => {
                assert!(info.backing_filename.is_some());
            }
            EncryptionMode::Full => {
                assert!(info.backing_filename.is_none());
                assert!(
                    !contains(&file, marker),
                    "full mode: image bytes are encrypted"
                );
            }
        }
        // a marker written through the disk is readable with the key, not in the file
        let secret = DiskSecret::new(&pass).unwrap();
        let w = qemu_io(&root, secret.path(), "write -P 0x5a 1M 64k");
        assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
        let r = qemu_io(&root, secret.path(), "read -P 0x5a 1M 64k");
        assert!(
            r.status.success() && !String::from_utf8_lossy(&r.stdout).contains("fail"),
            "{}",
            String::from_utf8_lossy(&r.stdout)
        );
        let file = std::fs::read(&root).unwrap();
        assert!(
            !contains(&file, &[0x5a; 4096]),
            "{vm}: plaintext in the file"
        );
        // the wrong key fails to open it
        let wrong = DiskSecret::new("not the key").unwrap();
        let e = q
            .convert(
                &root,
                "qcow2",
                &t.path().join("out.raw"),
                "raw",
                None,
                Some(&wrong),
                false,
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Invalid password"), "{e}");
        // and the right one does
        q.convert(
            &root,
            "qcow2",
            &t.path().join("out.raw"),
            "raw",
            None,
            Some(&secret),
            false,
        )
        .await
        .unwrap();
        let flat = std::fs::read(t.path().join("out.raw")).unwrap();
        assert!(flat.starts_with(marker));
        assert!(flat[1 << 20..(1 << 20) + 65536].iter().all(|b| *b == 0x5a));
    }
    // the cached base stays plain and unchanged
    assert!(std::fs::read(&base.path).unwrap().starts_with(marker));
}

#[test]
fn encryption_is_asked_for_by_flavor_or_image() {
    let m = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(encryption_request(&m(&[]), &m(&[])).unwrap(), None);
    let r = encryption_request(&m(&[("hw:ephemeral_encryption", "true")]), &m(&[])).unwrap();
    assert_eq!(r.unwrap().mode, EncryptionMode::Overlay);
    let r = encryption_request(
        &m(&[]),
        &m(&[
            ("hw_ephemeral_encryption", "True"),
            ("hw_ephemeral_encryption_format", "luks"),
            ("hw_ephemeral_encryption_mode", "full"),
        ]),
    )
    .unwrap();
    assert_eq!(r.unwrap().mode, EncryptionMode::Full);
    assert!(
        encryption_request(
            &m(&[
                ("hw:ephemeral_encryption", "true"),
                ("hw:ephemeral_encryption_format", "plain")
            ]),
            &m(&[])
        )
        .is_err()
    );
    assert!(encryption_request(&m(&[("hw:ephemeral_encryption", "maybe")]), &m(&[])).is_err());
    assert!(
        encryption_request(
            &m(&[("hw:ephemeral_encryption", "true")]),
            &m(&[("hw_ephemeral_encryption", "false")])
        )
        .is_err()
    );
}
