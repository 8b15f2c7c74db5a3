//! One instance's disks, upstream's layout under `instances/<uuid>/`: `disk` (the
//! root: a qcow2 overlay on the cached image, or a flat copy; optionally LUKS),
//! `disk.eph0`, `disk.swap`, and `disk.info` recording each disk's format so it is
//! never probed again. Each disk is made under a temporary name and renamed, so a
//! spawn repeated after a crash reuses finished disks and redoes half-made ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cache::CachedImage;
use super::qemu_img::{DiskSecret, Luks, QemuImg};
use super::{DiskError, Result};

const GIB: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootMode {
    /// qcow2 overlay whose backing file is the cached image (`use_cow_images`).
    Overlay,
    /// A full qcow2 copy of the image.
    Flat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptionMode {
    /// A LUKS qcow2 overlay; the shared cached base stays plain.
    Overlay,
    /// A standalone LUKS qcow2 converted from the image: nothing of the guest is
    /// readable without the key.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptionRequest {
    pub mode: EncryptionMode,
}

fn truthy(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// What the flavor (`hw:ephemeral_encryption`, `hw:ephemeral_encryption_format`,
/// `hw:ephemeral_encryption_mode`) and the image (`hw_ephemeral_encryption`, ...)
/// ask for. Upstream's formats are `plain`, `luks`, `luksv2`; only `luks` is
/// supported here (qcow2's own LUKS). The mode key is ferrostack's: `overlay`
/// (default) or `full`.
pub fn encryption_request(
    flavor_extra_specs: &BTreeMap<String, String>,
    image_properties: &BTreeMap<String, String>,
) -> Result<Option<EncryptionRequest>> {
    let get = |f: &str, i: &str| -> (Option<String>, Option<String>) {
        (
            flavor_extra_specs.get(f).cloned(),
            image_properties.get(i).cloned(),
        )
    };
    let pick = |name: &str, (f, i): (Option<String>, Option<String>)| -> Result<Option<String>> {
        match (f, i) {
            (Some(a), Some(b)) if !a.eq_ignore_ascii_case(&b) => Err(DiskError::Invalid(format!(
                "flavor and image disagree on {name}: {a:?} vs {b:?}"
            ))),
            (Some(a), _) => Ok(Some(a)),
            (None, b) => Ok(b),
        }
    };
    let enabled = pick(
        "ephemeral encryption",
        get("hw:ephemeral_encryption", "hw_ephemeral_encryption"),
    )?;
    let enabled = match enabled {
        None => false,
        Some(v) => truthy(&v).ok_or_else(|| {
            DiskError::Invalid(format!(
                "hw:ephemeral_encryption must be true or false, not {v:?}"
            ))
        })?,
    };
    if !enabled {
        return Ok(None);
    }
    let format = pick(
        "the ephemeral encryption format",
        get(
            "hw:ephemeral_encryption_format",
            "hw_ephemeral_encryption_format",
        ),
    )?
    .unwrap_or_else(|| "luks".into());
    if !format.eq_ignore_ascii_case("luks") {
        return Err(DiskError::Invalid(format!(
            "ephemeral encryption format {format:?} is not supported (only luks)"
        )));
    }
    let mode = pick(
        "the ephemeral encryption mode",
        get(
            "hw:ephemeral_encryption_mode",
            "hw_ephemeral_encryption_mode",
        ),
    )?
    .unwrap_or_else(|| "overlay".into());
    let mode = match mode.to_ascii_lowercase().as_str() {
        "overlay" => EncryptionMode::Overlay,
        "full" => EncryptionMode::Full,
        other => {
            return Err(DiskError::Invalid(format!(
                "ephemeral encryption mode {other:?} is not overlay or full"
            )));
        }
    };
    Ok(Some(EncryptionRequest { mode }))
}

pub struct EncryptionPlan {
    pub mode: EncryptionMode,
    pub secret: DiskSecret,
    pub secret_uuid: String,
    pub iter_time_ms: u32,
}

pub struct DiskPlan {
    pub instance_dir: PathBuf,
    pub base: CachedImage,
    pub root_gb: u64,
    pub ephemeral_gb: u64,
    pub swap_mb: u64,
    pub mode: RootMode,
    pub encryption: Option<EncryptionPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFile {
    /// `disk`, `disk.eph0`, `disk.swap`.
    pub name: String,
    pub path: PathBuf,
    pub format: String,
    pub virtual_size: u64,
    pub backing: Option<(PathBuf, String)>,
    pub encrypted: bool,
    pub secret_uuid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceDisks {
    pub disks: Vec<DiskFile>,
}

/// A temporary sibling name for `path`.
fn temp_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}

async fn finish(tmp: &Path, path: &Path) -> Result<()> {
    tokio::fs::rename(tmp, path)
        .await
        .map_err(DiskError::io("renaming into", path))
}

/// Makes (or reuses) the instance's disks and records them in `disk.info`.
pub async fn create_disks(qemu_img: &QemuImg, plan: &DiskPlan) -> Result<InstanceDisks> {
    let dir = &plan.instance_dir;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(DiskError::io("creating", dir))?;
    let mut disks = Vec::new();

    // Root.
    let image_size = plan.base.virtual_size;
    let root_size = if plan.root_gb == 0 {
        image_size
    } else {
        let want = plan.root_gb * GIB;
        if want < image_size {
            return Err(DiskError::Invalid(format!(
                "the flavor's root disk ({} GiB) is smaller than the image ({} bytes): a disk is never shrunk",
                plan.root_gb, image_size
            )));
        }
        want
    };
    let root = dir.join("disk");
    let luks = plan.encryption.as_ref().map(|e| Luks {
        secret: &e.secret,
        iter_time_ms: e.iter_time_ms,
    });
    let backing = match (plan.mode, plan.encryption.as_ref().map(|e| e.mode)) {
        (_, Some(EncryptionMode::Full)) | (RootMode::Flat, _) => None,
        _ => Some((plan.base.path.clone(), plan.base.format.clone())),
    };
    if !tokio::fs::try_exists(&root).await.unwrap_or(false) {
        let tmp = temp_of(&root);
        let _ = tokio::fs::remove_file(&tmp).await;
        match &backing {
            Some((b, f)) => {
                qemu_img
                    .create_overlay(&tmp, b, f, Some(root_size), luks.as_ref())
                    .await?
            }
            None => {
                qemu_img
                    .convert(
                        &plan.base.path,
                        &plan.base.format,
                        &tmp,
                        "qcow2",
                        luks.as_ref(),
                        None,
                        false,
                    )
                    .await?;
                if root_size > image_size {
                    qemu_img
                        .resize(
                            &tmp,
                            "qcow2",
                            root_size,
                            plan.encryption.as_ref().map(|e| &e.secret),
                        )
                        .await?;
                }
            }
        }
        finish(&tmp, &root).await?;
    }
    disks.push(DiskFile {
        name: "disk".into(),
        path: root,
        format: "qcow2".into(),
        virtual_size: root_size,
        backing,
        encrypted: plan.encryption.is_some(),
        secret_uuid: plan.encryption.as_ref().map(|e| e.secret_uuid.clone()),
    });

    // Ephemeral and swap: blank, not encrypted (upstream formats them from
    // templates; a blank disk is left for the guest to format).
    for (name, size, format) in [
        ("disk.eph0", plan.ephemeral_gb * GIB, "qcow2"),
        ("disk.swap", plan.swap_mb << 20, "raw"),
    ] {
        if size == 0 {
            continue;
        }
        let path = dir.join(name);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            let tmp = temp_of(&path);
            let _ = tokio::fs::remove_file(&tmp).await;
            qemu_img.create(&tmp, format, size, None).await?;
            finish(&tmp, &path).await?;
        }
        disks.push(DiskFile {
            name: name.into(),
            path,
            format: format.into(),
            virtual_size: size,
            backing: None,
            encrypted: false,
            secret_uuid: None,
        });
    }
    record_formats(dir, &disks).await?;
    Ok(InstanceDisks { disks })
}

/// `disk.info`: `{"<abs path>": "<format>"}` on one line, 0644, written through a
/// temporary file; an entry once written is never changed.
async fn record_formats(dir: &Path, disks: &[DiskFile]) -> Result<()> {
    let path = dir.join("disk.info");
    let mut map: BTreeMap<String, String> = match tokio::fs::read(&path).await {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    };
    let mut changed = false;
    for d in disks {
        let key = d.path.to_string_lossy().to_string();
        match map.get(&key) {
            Some(f) if f != &d.format => {
                return Err(DiskError::Invalid(format!(
                    "disk.info already records {key} as {f}, not {}",
                    d.format
                )));
            }
            Some(_) => {}
            None => {
                map.insert(key, d.format.clone());
                changed = true;
            }
        }
    }
    if changed {
        let bytes = serde_json::to_vec(&map).map_err(|e| DiskError::Invalid(e.to_string()))?;
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            ferrostack_core::fsutil::write_atomic(&p, &bytes, 0o644)
        })
        .await
        .map_err(|e| DiskError::Invalid(e.to_string()))?
        .map_err(DiskError::io("writing", &path))?;
    }
    Ok(())
}
