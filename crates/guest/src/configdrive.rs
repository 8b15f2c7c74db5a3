//! The config drive writer: a file tree ([`DriveFile`]s) into an ISO 9660 image
//! with Rock Ridge and Joliet (`hadris-iso`) or a vfat image (`fatfs`), both
//! labelled `config-2` as upstream and cloud-init expect. Pure Rust, no mounts,
//! written to a temporary file beside the destination and renamed into place.

use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::metadata::DriveFile;

/// `[host] config_drive_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveFormat {
    Iso9660,
    Vfat,
}

impl FromStr for DriveFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "iso9660" => Ok(DriveFormat::Iso9660),
            "vfat" => Ok(DriveFormat::Vfat),
            other => Err(format!(
                "unknown config drive format {other:?} (iso9660 or vfat)"
            )),
        }
    }
}

/// The volume label every reader looks for.
pub const LABEL: &str = "config-2";
/// Size of a vfat drive (upstream's `CONFIGDRIVESIZE_BYTES`); the file is sparse.
pub const VFAT_SIZE: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigDriveError {
    #[error("config drive path {0:?} is not a relative path of plain names")]
    BadPath(String),
    #[error("writing the config drive {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("building the ISO 9660 image {path}: {message}")]
    Iso { path: PathBuf, message: String },
}

/// A directory of the drive, built from the flat file list.
#[derive(Default)]
struct Dir {
    dirs: BTreeMap<String, Dir>,
    files: BTreeMap<String, Vec<u8>>,
}

fn tree(files: &[DriveFile]) -> Result<Dir, ConfigDriveError> {
    let mut root = Dir::default();
    for f in files {
        let parts: Vec<&str> = f.path.split('/').collect();
        let bad = parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\0'));
        let Some((name, dirs)) = parts.split_last().filter(|_| !bad) else {
            return Err(ConfigDriveError::BadPath(f.path.clone()));
        };
        let mut d = &mut root;
        for part in dirs {
            d = d.dirs.entry((*part).to_string()).or_default();
        }
        d.files.insert((*name).to_string(), f.data.clone());
    }
    Ok(root)
}

/// Writes `files` as a config drive at `dest` (replacing it atomically).
pub fn write_config_drive(
    files: &[DriveFile],
    format: DriveFormat,
    dest: &Path,
) -> Result<(), ConfigDriveError> {
    let root = tree(files)?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let io = |source| ConfigDriveError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".config-drive-")
        .tempfile_in(dir)
        .map_err(io)?;
    let file = tmp.as_file().try_clone().map_err(io)?;
    match format {
        DriveFormat::Iso9660 => write_iso(root, file, dest)?,
        DriveFormat::Vfat => write_vfat(&root, file).map_err(io)?,
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(dest).map_err(|e| io(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_iso(root: Dir, file: std::fs::File, dest: &Path) -> Result<(), ConfigDriveError> {
    use hadris_iso::joliet::JolietLevel;
    use hadris_iso::read::PathSeparator;
    use hadris_iso::rrip::RripOptions;
    use hadris_iso::write::options::{BaseIsoLevel, CreationFeatures, IsoFormatOptions};
    use hadris_iso::write::{File as IsoFile, InputFiles, IsoImageWriter};

    fn convert(d: Dir) -> Vec<IsoFile> {
        let mut out = Vec::new();
        for (name, sub) in d.dirs {
            out.push(IsoFile::Directory {
                name: Arc::new(name),
                children: convert(sub),
            });
        }
        for (name, contents) in d.files {
            out.push(IsoFile::File {
                name: Arc::new(name),
                contents,
            });
        }
        out
    }
    let input = InputFiles {
        path_separator: PathSeparator::ForwardSlash,
        files: convert(root),
    };
    let options = IsoFormatOptions {
        volume_name: LABEL.into(),
        system_id: None,
        volume_set_id: None,
        publisher_id: Some(format!("ferrostack {}", env!("CARGO_PKG_VERSION"))),
        preparer_id: None,
        application_id: None,
        sector_size: 2048,
        features: CreationFeatures {
            filenames: BaseIsoLevel::Level2 {
                supports_lowercase: false,
                supports_rrip: true,
            },
            long_filenames: false,
            joliet: Some(JolietLevel::Level3),
            rock_ridge: Some(RripOptions::default()),
            el_torito: None,
            hybrid_boot: None,
        },
        path_separator: PathSeparator::ForwardSlash,
        strict_charset: false,
    };
    let mut out =
        IsoImageWriter::create(file, input, options).map_err(|e| ConfigDriveError::Iso {
            path: dest.to_path_buf(),
            message: format!("{e:?}"),
        })?;
    out.flush().map_err(|source| ConfigDriveError::Io {
        path: dest.to_path_buf(),
        source,
    })
}

fn write_vfat(root: &Dir, mut file: std::fs::File) -> std::io::Result<()> {
    file.set_len(VFAT_SIZE)?;
    file.rewind()?;
    let mut label = [b' '; 11];
    label[..LABEL.len()].copy_from_slice(LABEL.as_bytes());
    fatfs::format_volume(
        &mut file,
        fatfs::FormatVolumeOptions::new().volume_label(label),
    )?;
    file.rewind()?;
    let fs = fatfs::FileSystem::new(&mut file, fatfs::FsOptions::new())?;
    fn put<T: fatfs::ReadWriteSeek>(d: &fatfs::Dir<'_, T>, src: &Dir) -> std::io::Result<()> {
        for (name, sub) in &src.dirs {
            let child = d.create_dir(name)?;
            put(&child, sub)?;
        }
        for (name, data) in &src.files {
            let mut f = d.create_file(name)?;
            f.truncate()?;
            f.write_all(data)?;
            f.flush()?;
        }
        Ok(())
    }
    put(&fs.root_dir(), root)?;
    fs.unmount()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metadata::{DriveOptions, config_drive_files};
    use crate::model::tests::sample;
    use std::process::Command;

    /// Whether a host program is there; scripts/test sets
    /// FERROSTACK_REQUIRE_HOST_TOOLS=1 so that a missing one fails instead.
    fn have(tool: &str) -> bool {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok || std::env::var("FERROSTACK_REQUIRE_HOST_TOOLS").as_deref() != Ok("1"),
            "{tool} is missing (scripts/host-tools installs it)"
        );
        ok
    }

    fn run(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn sample_files() -> Vec<DriveFile> {
        let mut g = sample();
        g.nics = vec![crate::model::GuestNic {
            port_id: "port-1234567890".into(),
            network_id: "net-1".into(),
            mac: "fa:16:3e:12:34:56".into(),
            mtu: Some(1450),
            ips: vec![crate::model::GuestIp {
                address: "10.0.0.5".into(),
                subnet: crate::model::GuestSubnet {
                    id: "sn".into(),
                    cidr: "10.0.0.0/24".into(),
                    ip_version: 4,
                    gateway_ip: Some("10.0.0.1".into()),
                    dns_nameservers: vec!["10.0.0.2".into()],
                    host_routes: vec![],
                    enable_dhcp: false,
                    ipv6_address_mode: None,
                },
            }],
        }];
        config_drive_files(&g, &DriveOptions::default())
    }

    /// Checks an extracted tree byte for byte, then with cloud-init's own reader.
    fn check_tree(dir: &Path, files: &[DriveFile]) {
        for f in files {
            let got = std::fs::read(dir.join(&f.path))
                .unwrap_or_else(|e| panic!("{} missing: {e}", f.path));
            assert_eq!(got, f.data, "{}", f.path);
        }
        let py = Path::new("/usr/bin/python3");
        let ci = Command::new(py)
            .args(["-c", "import cloudinit"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ci {
            assert!(
                std::env::var("FERROSTACK_REQUIRE_HOST_TOOLS").as_deref() != Ok("1"),
                "Debian's cloud-init is missing (scripts/host-tools installs it)"
            );
            eprintln!("skipped cloud-init reader: Debian's cloud-init is not installed");
            return;
        }
        let script = r#"
import sys, json, logging
logging.disable(logging.CRITICAL)
from cloudinit.sources.helpers import openstack
r = openstack.ConfigDriveReader(sys.argv[1]).read_v2()
md = r["metadata"]
print(json.dumps({"instance-id": md["instance-id"], "local-hostname": md.get("local-hostname"),
  "public_keys": md.get("public_keys"), "meta": md.get("meta"), "userdata": r["userdata"].decode() if isinstance(r["userdata"], bytes) else r["userdata"],
  "networkdata": r["networkdata"], "files": {k: list(v) if isinstance(v, bytes) else list(v.encode()) for k, v in r["files"].items()},
  "ec2": r["ec2-metadata"]["instance-id"], "version": r["version"]}))
"#;
        let out = run(Command::new(py).args(["-c", script]).arg(dir));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let g = sample();
        assert_eq!(v["instance-id"], g.uuid.as_str());
        assert_eq!(v["local-hostname"], "vm-one.novalocal");
        assert_eq!(v["public_keys"]["mykey"], g.keys[0].data.as_str());
        assert_eq!(v["meta"]["role"], "web");
        assert_eq!(v["userdata"], "#!/bin/sh\necho hi\n");
        assert_eq!(
            v["networkdata"]["links"][0]["ethernet_mac_address"],
            "fa:16:3e:12:34:56"
        );
        assert_eq!(v["networkdata"]["networks"][0]["ip_address"], "10.0.0.5");
        assert_eq!(
            v["files"]["/etc/motd"],
            serde_json::json!(b"hello\n".to_vec())
        );
        assert_eq!(
            v["files"]["/root/data.bin"],
            serde_json::json!([0, 1, 2, 255])
        );
        assert_eq!(v["ec2"], crate::metadata::ec2_instance_id(&g.uuid).as_str());
    }

    #[test]
    fn iso_drive_is_read_back_by_isoinfo_xorriso_and_cloud_init() {
        if !have("xorriso") || !have("isoinfo") {
            eprintln!("skipped: xorriso/isoinfo not installed (scripts/host-tools)");
            return;
        }
        let files = sample_files();
        let tmp = tempfile::tempdir().unwrap();
        let iso = tmp.path().join("disk.config");
        write_config_drive(&files, DriveFormat::Iso9660, &iso).unwrap();
        let info = run(Command::new("isoinfo").arg("-d").arg("-i").arg(&iso));
        assert!(info.contains("Volume id: config-2"), "{info}");
        assert!(info.contains("Rock Ridge signatures version"), "{info}");
        assert!(info.contains("Joliet with UCS level"), "{info}");
        let listing = run(Command::new("isoinfo").args(["-R", "-f", "-i"]).arg(&iso));
        assert!(
            listing.contains("/openstack/latest/meta_data.json"),
            "{listing}"
        );
        let joliet = run(Command::new("isoinfo").args(["-J", "-f", "-i"]).arg(&iso));
        assert!(
            joliet.contains("/openstack/latest/vendor_data2.json"),
            "{joliet}"
        );
        let x = tmp.path().join("x");
        run(Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&iso)
            .args(["-extract", "/"])
            .arg(&x));
        check_tree(&x, &files);
    }

    #[test]
    fn vfat_drive_is_read_back_by_mtools_and_cloud_init() {
        if !have("mcopy") {
            eprintln!("skipped: mtools not installed (scripts/host-tools)");
            return;
        }
        let files = sample_files();
        let tmp = tempfile::tempdir().unwrap();
        let img = tmp.path().join("disk.config");
        write_config_drive(&files, DriveFormat::Vfat, &img).unwrap();
        let label = run(Command::new("mlabel")
            .args(["-s", "-i"])
            .arg(&img)
            .arg("::"));
        assert!(label.to_lowercase().contains("config-2"), "{label}");
        let x = tmp.path().join("x");
        std::fs::create_dir(&x).unwrap();
        run(Command::new("mcopy")
            .args(["-s", "-n", "-i"])
            .arg(&img)
            .args(["::/openstack", "::/ec2"])
            .arg(&x));
        check_tree(&x, &files);
    }

    #[test]
    fn paths_that_climb_out_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["../x", "a//b", "/abs", "a/./b"] {
            let r = write_config_drive(
                &[DriveFile {
                    path: bad.into(),
                    data: vec![],
                }],
                DriveFormat::Iso9660,
                &tmp.path().join("d"),
            );
            assert!(matches!(r, Err(ConfigDriveError::BadPath(_))), "{bad}");
        }
    }
}
