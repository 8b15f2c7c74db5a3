//! Injection against real ext4 images built by `mkfs.ext4 -d`, read back with
//! `debugfs`, checked with `e2fsck -fn`; qcow2 and LUKS qcow2 through real
//! `qemu-img`/`qemu-storage-daemon`; hostile images with symlinks, FIFOs and
//! files where directories should be.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

fn have(program: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program} || test -x /sbin/{program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("FERROSTACK_REQUIRE_HOST_TOOLS").as_deref() != Ok("1"),
            "{program} is missing (scripts/host-tools installs it)"
        );
        eprintln!("skipped: {program} not installed (scripts/host-tools)");
    }
    ok
}

fn tools(list: &[&str]) -> bool {
    list.iter().all(|t| have(t))
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A tiny Debian-like root tree, customised by `f`, as an ext4 image.
fn rootfs(dir: &Path, name: &str, f: impl FnOnce(&Path)) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::create_dir_all(tree.join("root")).unwrap();
    std::fs::write(
        tree.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("etc/shadow"),
        "root:*:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n",
    )
    .unwrap();
    f(&tree);
    let img = dir.join(format!("{name}.raw"));
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("16M"));
    img
}

fn cat(spec: &str, path: &str) -> String {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(spec)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stat_line(spec: &str, path: &str) -> String {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("stat {path}"))
        .arg(spec)
        .env("PAGER", "__none__")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn fsck(spec: &str) {
    run(Command::new("e2fsck").arg("-fn").arg(spec));
}

/// The whole content (equality is all the tests need; the images are 16 MiB).
fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A sparse disk of `size` bytes holding `fs` at byte 10240 * 512 (partition 2 of
/// `table`, an sfdisk script).
fn partitioned(path: &Path, size: u64, table: &str, fs: &Path) {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), table.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    run(Command::new("dd")
        .arg(format!("if={}", fs.display()))
        .arg(format!("of={}", path.display()))
        .args(["bs=512", "seek=10240", "conv=notrunc,sparse", "status=none"]));
}

/// A qcow2 overlay on a raw base, as the image cache makes them.
fn overlay(base: &Path, path: &Path) -> DiskRef {
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(base)
        .arg(path));
    DiskRef {
        path: path.to_path_buf(),
        format: DiskFormat::Qcow2,
        luks_secret_file: None,
    }
}

fn everything() -> Injection {
    let mut meta = BTreeMap::new();
    meta.insert("role".to_string(), "web".to_string());
    Injection {
        key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHello user@host".into()),
        net: Some("auto lo\niface lo inet loopback\n".into()),
        admin_password: Some("Sup3r-secret".into()),
        metadata: Some(meta),
        files: vec![
            ("/etc/motd".into(), b"welcome\n".to_vec()),
            ("/opt/app/conf/app.ini".into(), b"[app]\nx=1\n".to_vec()),
        ],
    }
}

fn raw(path: &Path) -> DiskRef {
    DiskRef {
        path: path.to_path_buf(),
        format: DiskFormat::Raw,
        luks_secret_file: None,
    }
}

fn opts(dir: &Path) -> InjectOptions {
    InjectOptions {
        work_dir: dir.to_path_buf(),
        ..InjectOptions::default()
    }
}

fn check_everything(spec: &str) {
    let keys = cat(spec, "/root/.ssh/authorized_keys");
    assert!(keys.contains("ssh-ed25519 OLD old@key\n"), "{keys}");
    assert!(keys.contains("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHello user@host\n"));
    assert!(stat_line(spec, "/root/.ssh/authorized_keys").contains("Mode:  0600"));
    assert!(stat_line(spec, "/root/.ssh").contains("Mode:  0700"));
    assert_eq!(
        cat(spec, "/etc/network/interfaces"),
        "auto lo\niface lo inet loopback\n"
    );
    let shadow = cat(spec, "/etc/shadow");
    let root = shadow.lines().next().unwrap();
    let hash = root.split(':').nth(1).unwrap();
    assert!(hash.starts_with("$6$"), "{root}");
    assert!(sha_crypt::sha512_check("Sup3r-secret", hash).is_ok());
    assert!(sha_crypt::sha512_check("wrong", hash).is_err());
    assert!(shadow.contains("\nbin:*:19000:0:99999:7:::\n"));
    assert!(stat_line(spec, "/etc/shadow").contains("Mode:  0640"));
    assert_eq!(cat(spec, "/meta.js"), r#"{"role":"web"}"#);
    assert_eq!(cat(spec, "/etc/motd"), "welcome\n");
    assert_eq!(cat(spec, "/opt/app/conf/app.ini"), "[app]\nx=1\n");
    fsck(spec);
}

fn base_tree(t: &Path) {
    std::fs::create_dir_all(t.join("root/.ssh")).unwrap();
    std::fs::write(
        t.join("root/.ssh/authorized_keys"),
        "ssh-ed25519 OLD old@key",
    )
    .unwrap();
    std::fs::write(t.join("etc/motd"), "old motd\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.join("etc/shadow"), std::fs::Permissions::from_mode(0o640)).unwrap();
}

#[test]
fn partition_numbers_follow_upstream() {
    assert_eq!(Partition::try_from(-2).unwrap(), Partition::Never);
    assert_eq!(Partition::try_from(-1).unwrap(), Partition::Auto);
    assert_eq!(Partition::try_from(0).unwrap(), Partition::Whole);
    assert_eq!(Partition::try_from(3).unwrap(), Partition::Number(3));
    assert!(matches!(
        Partition::try_from(-3),
        Err(InjectError::InvalidPartition(-3))
    ));
    let d = tempfile::tempdir().unwrap();
    let e = inject(
        &raw(&d.path().join("x")),
        Partition::Never,
        &everything(),
        &opts(d.path()),
    )
    .unwrap_err();
    assert!(matches!(e, InjectError::Disabled));
    assert!(!format!("{:?}", everything()).contains("Sup3r"));
}

#[test]
fn injects_everything_into_a_raw_ext4_disk() {
    if !tools(&["mkfs.ext4", "debugfs", "e2fsck"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = rootfs(d.path(), "whole", base_tree);
    let r = inject(&raw(&img), Partition::Whole, &everything(), &opts(d.path())).unwrap();
    assert_eq!(
        (r.backend, r.filesystem.as_str()),
        (Backend::Debugfs, "byte 0")
    );
    assert_eq!(r.written.len(), 6, "{:?}", r.written);
    eprintln!("raw ext4 injection: {:?}", r.elapsed);
    check_everything(img.to_str().unwrap());
    // -1 on a disk without a partition table is the whole disk
    let r = inject(&raw(&img), Partition::Auto, &everything(), &opts(d.path())).unwrap();
    assert_eq!(
        (r.backend, r.filesystem.as_str()),
        (Backend::Debugfs, "byte 0")
    );
    // no scratch files left behind
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".inject"))
        .collect();
    assert!(left.is_empty());
}

#[test]
fn finds_the_root_partition_in_gpt_and_mbr_tables() {
    if !tools(&["mkfs.ext4", "debugfs", "e2fsck", "sfdisk"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let fs = rootfs(d.path(), "part", base_tree);
    for (label, table) in [
        (
            "gpt",
            "label: gpt\nstart=2048, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\nstart=10240, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
        ),
        (
            "dos",
            "label: dos\nstart=2048, size=8192, type=83\nstart=10240, type=83\n",
        ),
    ] {
        let img = d.path().join(format!("{label}.raw"));
        // the filesystem goes into partition 2 (partition 1 stays empty)
        partitioned(&img, 40 << 20, table, &fs);
        let parts = partition::partitions(&img).unwrap();
        assert_eq!(parts.len(), 2, "{label}: {parts:?}");
        let r = inject(&raw(&img), Partition::Auto, &everything(), &opts(d.path())).unwrap();
        assert_eq!(r.filesystem, format!("byte {}", 10240 * 512), "{label}");
        check_everything(&format!("{}?offset={}", img.display(), 10240 * 512));
        assert!(
            inject(
                &raw(&img),
                Partition::Number(2),
                &everything(),
                &opts(d.path())
            )
            .is_ok()
        );
        // (debugfs only: `auto` would hand a non-ext filesystem to guestfish)
        let ext_only = InjectOptions {
            backend: Backend::Debugfs,
            ..opts(d.path())
        };
        let e = inject(&raw(&img), Partition::Number(1), &everything(), &ext_only).unwrap_err();
        assert!(matches!(e, InjectError::NoFilesystem(_)), "{e}");
        let e = inject(&raw(&img), Partition::Number(3), &everything(), &ext_only).unwrap_err();
        assert!(matches!(e, InjectError::PartitionNotFound(3)), "{e}");
        let e = inject(&raw(&img), Partition::Whole, &everything(), &ext_only).unwrap_err();
        assert!(matches!(e, InjectError::NoFilesystem(_)), "{e}");
    }
}

#[test]
fn injects_into_a_qcow2_overlay_through_a_fuse_export() {
    if !tools(&[
        "mkfs.ext4",
        "debugfs",
        "e2fsck",
        "qemu-img",
        "qemu-storage-daemon",
        "fusermount3",
    ]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let base = rootfs(d.path(), "base", base_tree);
    let before = sha(&base);
    let ov = d.path().join("disk");
    let disk = overlay(&base, &ov);
    let r = inject(&disk, Partition::Auto, &everything(), &opts(d.path())).unwrap();
    eprintln!("qcow2 overlay injection: {:?}", r.elapsed);
    assert!(sha(&base) == before, "the cached base must not change");
    assert!(!d.path().join("inject.export").exists());
    run(Command::new("qemu-img").args(["check", "-q"]).arg(&ov));
    let flat = d.path().join("flat.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&ov)
        .arg(&flat));
    check_everything(flat.to_str().unwrap());
}

#[test]
fn injects_into_a_luks_qcow2_and_a_wrong_key_fails() {
    if !tools(&[
        "mkfs.ext4",
        "debugfs",
        "e2fsck",
        "qemu-img",
        "qemu-storage-daemon",
        "fusermount3",
    ]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let base = rootfs(d.path(), "base", base_tree);
    let secret = d.path().join("pass");
    std::fs::write(&secret, "correct horse").unwrap();
    let enc = d.path().join("disk");
    run(Command::new("qemu-img")
        .arg("convert")
        .arg("--object")
        .arg(format!(
            "secret,id=sec0,file={},format=raw",
            secret.display()
        ))
        .args([
            "-O",
            "qcow2",
            "-o",
            "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
        ])
        .arg(&base)
        .arg(&enc));
    let marker = "plaintext-marker-7f3a9c";
    let mut what = everything();
    what.files
        .push(("/etc/marker".into(), format!("{marker}\n").into_bytes()));
    let bad = d.path().join("bad");
    std::fs::write(&bad, "wrong").unwrap();
    let e = inject(
        &DiskRef {
            path: enc.clone(),
            format: DiskFormat::Qcow2,
            luks_secret_file: Some(bad),
        },
        Partition::Auto,
        &what,
        &opts(d.path()),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("Invalid password"),
        "wrong key must fail to open: {e}"
    );
    let disk = DiskRef {
        path: enc.clone(),
        format: DiskFormat::Qcow2,
        luks_secret_file: Some(secret.clone()),
    };
    let r = inject(&disk, Partition::Auto, &what, &opts(d.path())).unwrap();
    eprintln!("LUKS qcow2 injection: {:?}", r.elapsed);
    let bytes = std::fs::read(&enc).unwrap();
    assert!(
        !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "the marker must not appear in the encrypted file"
    );
    let flat = d.path().join("flat.raw");
    run(Command::new("qemu-img")
        .arg("convert")
        .arg("--object")
        .arg(format!(
            "secret,id=sec0,file={},format=raw",
            secret.display()
        ))
        .arg("--image-opts")
        .arg(format!(
            "driver=qcow2,file.filename={},encrypt.key-secret=sec0",
            enc.display()
        ))
        .args(["-O", "raw"])
        .arg(&flat));
    assert_eq!(
        cat(flat.to_str().unwrap(), "/etc/marker"),
        format!("{marker}\n")
    );
    check_everything(flat.to_str().unwrap());
}

#[test]
fn hostile_images_are_refused_and_left_untouched() {
    if !tools(&["mkfs.ext4", "debugfs", "mkfifo"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = rootfs(d.path(), "hostile", |t| {
        std::os::unix::fs::symlink("/etc", t.join("root/.ssh")).unwrap();
        std::fs::create_dir_all(t.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../tmp", t.join("etc/network")).unwrap();
        run(Command::new("mkfifo").arg(t.join("meta.js")));
        std::fs::write(t.join("opt"), "a file where a directory should be").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.join("etc/hosts")).unwrap();
    });
    let before = sha(&img);
    let o = opts(d.path());
    let cases: Vec<(&str, Injection)> = vec![
        (
            "symlink",
            Injection {
                key: Some("ssh-ed25519 AAAA x".into()),
                files: vec![("/etc/safe".into(), b"x".to_vec())],
                ..Injection::default()
            },
        ),
        (
            "symlink",
            Injection {
                net: Some("auto lo\n".into()),
                ..Injection::default()
            },
        ),
        (
            "not a regular file",
            Injection {
                metadata: Some(BTreeMap::new()),
                ..Injection::default()
            },
        ),
        (
            "not a directory",
            Injection {
                files: vec![("/opt/app.conf".into(), b"x".to_vec())],
                ..Injection::default()
            },
        ),
        (
            "symlink",
            Injection {
                files: vec![("/etc/hosts".into(), b"x".to_vec())],
                ..Injection::default()
            },
        ),
        (
            "'..'",
            Injection {
                files: vec![("/etc/../../host".into(), b"x".to_vec())],
                ..Injection::default()
            },
        ),
        (
            "absolute",
            Injection {
                files: vec![("etc/relative".into(), b"x".to_vec())],
                ..Injection::default()
            },
        ),
    ];
    for (want, what) in cases {
        let e = inject(&raw(&img), Partition::Whole, &what, &o).unwrap_err();
        assert!(
            matches!(e, InjectError::UnsafePath { .. }) && e.to_string().contains(want),
            "{what:?}: {e}"
        );
        assert!(sha(&img) == before, "{what:?} changed the image");
    }
    assert_eq!(cat(img.to_str().unwrap(), "/etc/safe"), "");
}

#[test]
fn a_password_needs_a_root_account() {
    if !tools(&["mkfs.ext4", "debugfs"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = rootfs(d.path(), "noroot", |t| {
        std::fs::write(t.join("etc/passwd"), "bin:x:2:2::/:/bin/false\n").unwrap();
    });
    let what = Injection {
        admin_password: Some("pw".into()),
        ..Injection::default()
    };
    let e = inject(&raw(&img), Partition::Whole, &what, &opts(d.path())).unwrap_err();
    assert!(matches!(e, InjectError::NoRootUser(_)), "{e}");
    let e = inject(
        &raw(&d.path().join("absent")),
        Partition::Whole,
        &what,
        &opts(d.path()),
    )
    .unwrap_err();
    assert!(matches!(e, InjectError::Io(_)), "{e}");
}

#[test]
fn selinux_guests_get_the_restorecon_snippet() {
    if !tools(&["mkfs.ext4", "debugfs"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = rootfs(d.path(), "selinux", |t| {
        std::fs::create_dir_all(t.join("etc/selinux")).unwrap();
    });
    let what = Injection {
        key: Some("ssh-ed25519 AAAA k".into()),
        ..Injection::default()
    };
    inject(&raw(&img), Partition::Whole, &what, &opts(d.path())).unwrap();
    let spec = img.to_str().unwrap();
    let rc = cat(spec, "/etc/rc.d/rc.local");
    assert!(rc.starts_with("#!/bin/sh\n"), "{rc}");
    assert!(rc.contains("restorecon -RF /root/.ssh"));
    assert!(stat_line(spec, "/etc/rc.d/rc.local").contains("Mode:  0755"));
    // a second injection does not repeat it
    inject(&raw(&img), Partition::Whole, &what, &opts(d.path())).unwrap();
    assert_eq!(
        cat(spec, "/etc/rc.d/rc.local")
            .matches("restorecon")
            .count(),
        1
    );
}

/// Options for the guestfish backend: TCG always (KVM may open and not run).
fn gf_opts(dir: &Path, backend: Backend) -> InjectOptions {
    InjectOptions {
        backend,
        guestfs_force_tcg: true,
        ..opts(dir)
    }
}

#[test]
fn guestfish_edits_ext4_as_debugfs_would_and_refuses_hostile_trees() {
    if !tools(&["guestfish", "mkfs.ext4", "debugfs", "e2fsck"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = rootfs(d.path(), "gf", base_tree);
    let r = inject(
        &raw(&img),
        Partition::Auto,
        &everything(),
        &gf_opts(d.path(), Backend::Guestfish),
    )
    .unwrap();
    eprintln!("guestfish ext4 injection: {:?}", r.elapsed);
    assert_eq!(
        (r.backend, r.filesystem.as_str()),
        (Backend::Guestfish, "/dev/sda")
    );
    // read back by the other backend
    check_everything(img.to_str().unwrap());

    let img = rootfs(d.path(), "gf-hostile", |t| {
        std::os::unix::fs::symlink("/etc", t.join("root/.ssh")).unwrap();
    });
    let what = Injection {
        key: Some("ssh-ed25519 AAAA x".into()),
        files: vec![("/etc/safe".into(), b"x".to_vec())],
        ..Injection::default()
    };
    let e = inject(
        &raw(&img),
        Partition::Whole,
        &what,
        &gf_opts(d.path(), Backend::Guestfish),
    )
    .unwrap_err();
    assert!(
        matches!(e, InjectError::UnsafePath { .. }) && e.to_string().contains("symlink"),
        "{e}"
    );
    let spec = img.to_str().unwrap();
    assert_eq!(cat(spec, "/etc/safe"), "");
    assert_eq!(cat(spec, "/etc/authorized_keys"), "");
    fsck(spec);
}

/// An XFS root filesystem (which debugfs cannot edit) in partition 2 of an MBR
/// disk, under a qcow2 overlay: `auto` finds no ext filesystem and hands the
/// disk to guestfish through the FUSE export.
#[test]
fn auto_injects_into_xfs_through_guestfish() {
    if !tools(&[
        "guestfish",
        "mkfs.xfs",
        "sfdisk",
        "qemu-img",
        "qemu-storage-daemon",
        "fusermount3",
    ]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(src.join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    let proto = d.path().join("proto");
    std::fs::write(
        &proto,
        format!(
            "/dev/null\n0 0\nd--755 0 0\netc d--755 0 0\npasswd ---644 0 0 {}\n\
             shadow ---640 0 0 {}\n$\nroot d--700 0 0\n$\n$\n",
            src.join("passwd").display(),
            src.join("shadow").display()
        ),
    )
    .unwrap();
    let fs = d.path().join("xfs.raw");
    std::fs::File::create(&fs)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    run(Command::new("mkfs.xfs")
        .arg("-q")
        .arg("-p")
        .arg(&proto)
        .arg(&fs));
    let base = d.path().join("base.raw");
    partitioned(
        &base,
        320 << 20,
        "label: dos\nstart=2048, size=8192, type=82\nstart=10240, type=83\n",
        &fs,
    );
    let ov = d.path().join("disk");
    let disk = overlay(&base, &ov);
    let what = Injection {
        admin_password: Some("Sup3r-secret".into()),
        ..everything()
    };
    let r = inject(
        &disk,
        Partition::Auto,
        &what,
        &gf_opts(d.path(), Backend::Auto),
    )
    .unwrap();
    eprintln!("guestfish XFS qcow2 injection: {:?}", r.elapsed);
    assert_eq!(
        (r.backend, r.filesystem.as_str()),
        (Backend::Guestfish, "/dev/sda2")
    );
    assert!(!d.path().join("inject.export").exists());
    run(Command::new("qemu-img").args(["check", "-q"]).arg(&ov));
    // read back with a separate read-only guestfish session
    let out = run(Command::new("guestfish")
        .env("LIBGUESTFS_BACKEND", "direct")
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .args(["--ro", "--format=qcow2", "-a"])
        .arg(&ov)
        .args(["-m", "/dev/sda2"])
        .args(["cat", "/root/.ssh/authorized_keys", ":"])
        .args(["cat", "/etc/shadow", ":"])
        .args(["cat", "/opt/app/conf/app.ini", ":"])
        .args(["cat", "/meta.js", ":"])
        .args(["echo", "", ":"])
        .args(["stat", "/root/.ssh/authorized_keys"]));
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHello user@host\n"),
        "{out}"
    );
    let root = out.lines().find(|l| l.starts_with("root:$6$")).unwrap();
    let hash = root.split(':').nth(1).unwrap();
    assert!(sha_crypt::sha512_check("Sup3r-secret", hash).is_ok());
    assert!(out.contains("[app]\nx=1\n"));
    assert!(out.contains(r#"{"role":"web"}"#));
    // stat's mode: 0o100600
    assert!(out.contains("mode: 33152"), "{out}");
}
