//! `ferrostack bench disk`: the host-side spawn pipeline (what the `prepare`
//! driver runs: image cache → qcow2 overlay → config drive → domain XML), in
//! process, on the disk of `--dir`, beside `cp` of the same image measured in the
//! same run:
//! 1. baseline: `cp` of a raw image of `--size-mib` (pseudo-random bytes, in the
//!    page cache like the pipeline's source), and sha512 of the same bytes on one
//!    core (the floor of a verified download);
//! 2. cold: the first spawn of that image — streamed from a filesystem image store
//!    (the image service's read path), verified (sha512), written into `_base`, then the overlay, config
//!    drive and XML; then again with the source offering its file on the same
//!    filesystem (as the filesystem image store does), which the cache links;
//! 3. warm: `--warm` further spawns of the same image (cache hit): p50/p99 and the
//!    time of each step;
//! 4. warm with a LUKS overlay (iter-time from `--luks-iter-ms`), for comparison.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use md5::Digest as _;

use ferrostack_image::store::{FilesystemStore, ImageStore as _};
use ferrostack_virt::SpawnSpec;
use ferrostack_virt::disk::{ByteStream, ImageSource, SourceImage};
use ferrostack_virt::domain::VirtType;
use ferrostack_virt::guest::configdrive::DriveFormat;
use ferrostack_virt::pipeline::{Pipeline, PipelineConfig};

#[derive(clap::Args, Debug)]
pub struct DiskBench {
    /// Image size in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Warm spawns measured.
    #[arg(long, default_value_t = 30)]
    warm: usize,
    /// Where the image, the cache and the instances go (its disk is measured).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// LUKS PBKDF time for the encrypted case (upstream's default is 2000).
    #[arg(long, default_value_t = 10)]
    luks_iter_ms: u32,
}

/// The image's bytes from a filesystem image store (the image service's own
/// store and read path, as `ferrostack up` serves the cache); with `local`, also
/// offers the store's file for the cache to link (the store and the instances on
/// one filesystem).
struct FileSource {
    store: Arc<FilesystemStore>,
    path: PathBuf,
    record: SourceImage,
    local: bool,
}

/// The bench image's id in its store.
const IMAGE_ID: &str = "bench-image";

#[async_trait]
impl ImageSource for FileSource {
    async fn describe(&self, _image_id: &str) -> std::io::Result<SourceImage> {
        Ok(self.record.clone())
    }

    async fn local_file(&self, _image_id: &str) -> std::io::Result<Option<PathBuf>> {
        Ok(self.local.then(|| self.path.clone()))
    }

    async fn open(&self, _image_id: &str) -> std::io::Result<ByteStream> {
        let location = self
            .store
            .location_of(IMAGE_ID)
            .map_err(std::io::Error::other)?;
        self.store
            .get(&location, None)
            .await
            .map_err(std::io::Error::other)
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Writes `size` pseudo-random bytes and returns (md5 hex, sha512 hex).
fn write_image(path: &Path, size: u64) -> anyhow::Result<(String, String)> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut md5 = md5::Md5::new();
    let mut sha = sha2::Sha512::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        md5.update(&block[..n]);
        sha.update(&block[..n]);
        left -= n as u64;
    }
    f.flush()?;
    f.get_ref().sync_all()?;
    Ok((hex::encode(md5.finalize()), hex::encode(sha.finalize())))
}

fn spec(uuid: &str, image_id: &str, encrypted: bool) -> SpawnSpec {
    let mut extra = BTreeMap::new();
    if encrypted {
        extra.insert("hw:ephemeral_encryption".into(), "true".into());
        extra.insert("hw:ephemeral_encryption_format".into(), "luks".into());
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("spice_passwd".into(), "bench-secret".into());
    SpawnSpec {
        uuid: uuid.into(),
        name: "bench".into(),
        hostname: "bench".into(),
        project_id: "p".into(),
        user_id: "u".into(),
        vcpus: 1,
        memory_mb: 512,
        root_gb: 2,
        image_id: Some(image_id.into()),
        flavor_extra_specs: extra,
        metadata,
        key_data: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench bench@ferrostack".into()),
        files: vec![("/etc/motd".into(), b"hello\n".to_vec())],
        user_data: Some(b"#!/bin/sh\necho hi\n".to_vec()),
        config_drive: true,
        admin_password: Some("bench-admin".into()),
        availability_zone: "nova".into(),
        key_name: Some("bench".into()),
        flavor_name: "m1.small".into(),
        ..Default::default()
    }
}

pub async fn run(b: DiskBench) -> anyhow::Result<()> {
    if b.size_mib == 0 {
        bail!("--size-mib must be positive");
    }
    let work = tempfile::Builder::new()
        .prefix("ferrostack-bench-disk-")
        .tempdir_in(&b.dir)
        .with_context(|| format!("cannot make a directory in {}", b.dir.display()))?;
    let root = work.path().to_path_buf();
    let store = Arc::new(
        FilesystemStore::new(root.join("store")).context("cannot open the bench's image store")?,
    );
    let image = root.join("store").join(IMAGE_ID);
    let size = b.size_mib << 20;
    println!(
        "bench disk: {} MiB image, {} warm spawns, in {}",
        b.size_mib,
        b.warm,
        root.display()
    );
    let (md5, sha) = {
        let image = image.clone();
        tokio::task::spawn_blocking(move || write_image(&image, size)).await??
    };

    // 1. baseline: cp of the same bytes (then fsync, as the cache does).
    let copy = root.join("copy.raw");
    let t = Instant::now();
    let st = tokio::process::Command::new("cp")
        .arg(&image)
        .arg(&copy)
        .status()
        .await
        .context("cannot run cp")?;
    if !st.success() {
        bail!("cp failed: {st}");
    }
    std::fs::File::open(&copy)?.sync_all()?;
    let cp = t.elapsed();
    std::fs::remove_file(&copy)?;
    println!(
        "baseline  cp + fsync of the image: {:8.1} ms ({:.0} MB/s)",
        ms(cp),
        size as f64 / 1e6 / cp.as_secs_f64()
    );

    // 1b. the verification's floor: sha512 (ring, as the cache) of the same bytes
    // read from the page cache, on one core.
    let img = image.clone();
    let hash = tokio::task::spawn_blocking(move || -> std::io::Result<Duration> {
        use std::io::Read;
        let mut f = std::fs::File::open(&img)?;
        let mut buf = vec![0u8; 1 << 20];
        let t = Instant::now();
        let mut h = ring::digest::Context::new(&ring::digest::SHA512);
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.finish();
        Ok(t.elapsed())
    })
    .await??;
    println!(
        "baseline  sha512 of the image (read + hash, one core): {:8.1} ms ({:.0} MB/s) = {:.2}× cp: the floor of a verified download",
        ms(hash),
        size as f64 / 1e6 / hash.as_secs_f64(),
        hash.as_secs_f64() / cp.as_secs_f64()
    );

    let record = SourceImage {
        id: "bench-image".into(),
        status: "active".into(),
        disk_format: Some("raw".into()),
        size: Some(size),
        checksum: Some(md5),
        os_hash_algo: Some("sha512".into()),
        os_hash_value: Some(sha),
    };
    let config = |dir: &Path| PipelineConfig {
        instances_dir: dir.join("instances"),
        disk_keys_dir: dir.join("keys").join("disk-kek"),
        qemu_img: PathBuf::from("qemu-img"),
        qemu_img_timeout: Duration::from_secs(600),
        force_raw_images: true,
        use_cow_images: true,
        config_drive_format: DriveFormat::Iso9660,
        force_config_drive: false,
        inject_partition: -2,
        inject_key: false,
        inject_password: false,
        inject_backend: Default::default(),
        dhcp_domain: Some("novalocal".into()),
        vnc: true,
        spice: true,
        vnc_listen: "127.0.0.1".into(),
        spice_listen: "unix".into(),
        virt_type: VirtType::Qemu,
        luks_iter_time_ms: b.luks_iter_ms,
        user_mode: false,
    };

    // 2. cold, twice: the image streamed, verified and written (an image store
    // elsewhere), then linked (the filesystem store on the instances' filesystem).
    let mut pipeline = None;
    for (label, local) in [("cold copy", false), ("cold link", true)] {
        let dir = root.join(if local { "linked" } else { "copied" });
        let source = Arc::new(FileSource {
            store: store.clone(),
            path: image.clone(),
            record: record.clone(),
            local,
        });
        let p = Pipeline::open(config(&dir), source).context("cannot open the pipeline")?;
        let t = Instant::now();
        let prepared = p
            .prepare(&spec(
                "00000000-0000-4000-8000-000000000000",
                "bench-image",
                false,
            ))
            .await
            .with_context(|| format!("{label} spawn"))?;
        let cold = t.elapsed();
        let steps: Vec<String> = prepared
            .timings
            .iter()
            .map(|(n, d)| format!("{n} {:.1}", ms(*d)))
            .collect();
        println!(
            "{label} spawn (image into the cache, overlay, config drive, XML): {:8.1} ms = {:.2}× cp, {:.2}× max(cp, sha512)   [{}]",
            ms(cold),
            cold.as_secs_f64() / cp.as_secs_f64(),
            cold.as_secs_f64() / cp.max(hash).as_secs_f64(),
            steps.join(", ")
        );
        pipeline = Some(p);
    }
    let pipeline = pipeline.context("no pipeline")?;

    // 3. warm, plain and LUKS.
    for (label, encrypted) in [("warm", false), ("warm LUKS", true)] {
        let mut v = Vec::with_capacity(b.warm);
        let mut step_sum: BTreeMap<&'static str, f64> = BTreeMap::new();
        for i in 0..b.warm {
            let uuid = format!(
                "{}0000000-0000-4000-8000-{:012x}",
                if encrypted { 2 } else { 1 },
                i
            );
            let t = Instant::now();
            let p = pipeline
                .prepare(&spec(&uuid, "bench-image", encrypted))
                .await
                .with_context(|| format!("{label} spawn {i}"))?;
            v.push(ms(t.elapsed()));
            for (n, d) in p.timings {
                *step_sum.entry(n).or_default() += ms(d);
            }
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let steps: Vec<String> = step_sum
            .iter()
            .map(|(n, s)| format!("{n} {:.1}", s / b.warm.max(1) as f64))
            .collect();
        println!(
            "{label:<9} spawn ({} runs): p50 {:7.1} ms  p99 {:7.1} ms   mean per step: [{}]",
            b.warm,
            pct(&v, 0.5),
            pct(&v, 0.99),
            steps.join(", ")
        );
    }
    println!(
        "targets: warm p50 < 100 ms; cold copy ≤ 1.2× max(cp, sha512); cold link: no copy of the image"
    );
    Ok(())
}
