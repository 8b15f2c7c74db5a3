//! Whether KVM really runs guests here. `/dev/kvm` opening is not enough: on some
//! hosts (nested, restricted CPUs) QEMU starts with `-accel kvm` and the guest never
//! executes an instruction. The probe boots a 512-byte boot sector that prints a
//! marker on the serial port, under the given accelerator with the CPU model a
//! guest gets there (`-cpu host` under KVM, as the domain asks), and waits for it.
//! (On one machine of this project's kind a real-mode sector printed under KVM
//! with QEMU's default CPU while real kernels hung; with `-cpu host` QEMU aborts
//! there at once, so the probe says no.)

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &[u8] = b"ferrostack-accel-probe-ok";

/// A boot sector: `ds = 0; si = msg; for each byte: out 0x3f8; cli; hlt`.
fn boot_sector() -> Vec<u8> {
    let msg_off: u16 = 23;
    let addr = 0x7c00u16 + msg_off;
    let mut b = vec![
        0x31,
        0xC0, // xor ax, ax
        0x8E,
        0xD8, // mov ds, ax
        0xFC, // cld
        0xBE,
        (addr & 0xff) as u8,
        (addr >> 8) as u8, // mov si, msg
        0xBA,
        0xF8,
        0x03, // mov dx, 0x3f8
        0xAC, // next: lodsb
        0x84,
        0xC0, // test al, al
        0x74,
        0x03, // jz done
        0xEE, // out dx, al
        0xEB,
        0xF8, // jmp next
        0xFA, // done: cli
        0xF4, // hlt
        0xEB,
        0xFC, // jmp done
    ];
    debug_assert_eq!(b.len(), msg_off as usize);
    b.extend_from_slice(MARKER);
    b.push(0);
    b.resize(510, 0);
    b.extend_from_slice(&[0x55, 0xAA]);
    b
}

/// Boots the probe sector with `accel` (`kvm` or `tcg`); true when the marker
/// reached the serial port within `timeout`.
pub fn accel_runs_guests(qemu: &Path, accel: &str, timeout: Duration) -> bool {
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let disk = dir.path().join("probe.img");
    if std::fs::write(&disk, boot_sector()).is_err() {
        return false;
    }
    let mut drive = std::ffi::OsString::from("file=");
    drive.push(disk.as_os_str());
    drive.push(",format=raw,if=ide");
    let cpu = if accel == "kvm" { "host" } else { "max" };
    let child = Command::new(qemu)
        .args([
            "-accel",
            accel,
            "-cpu",
            cpu,
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .args(["-m", "16", "-no-reboot", "-serial", "stdio", "-drive"])
        .arg(drive)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let Some(mut out) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return false;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(MARKER.len()).any(|w| w == MARKER) {
                let _ = tx.send(true);
                return;
            }
        }
        let _ = tx.send(false);
    });
    let start = Instant::now();
    let ok = rx
        .recv_timeout(timeout.saturating_sub(start.elapsed()))
        .unwrap_or(false);
    let _ = child.kill();
    let _ = child.wait();
    ok
}

/// `[host] virt_type = "auto"`: KVM when `/dev/kvm` exists and the probe boots.
pub fn kvm_runs_guests() -> bool {
    if !Path::new("/dev/kvm").exists() {
        return false;
    }
    let ok = accel_runs_guests(
        Path::new("qemu-system-x86_64"),
        "kvm",
        Duration::from_secs(5),
    );
    if !ok {
        tracing::warn!("/dev/kvm exists but a KVM guest did not run within 5 s: using TCG");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu() -> Option<&'static Path> {
        let p = Path::new("/usr/bin/qemu-system-x86_64");
        assert!(
            p.exists() || std::env::var("FERROSTACK_REQUIRE_HOST_TOOLS").as_deref() != Ok("1"),
            "qemu-system-x86_64 is missing (scripts/host-tools installs it)"
        );
        p.exists().then_some(p)
    }

    #[test]
    fn the_probe_sector_prints_its_marker_under_tcg() {
        let Some(q) = qemu() else {
            eprintln!("skipped: qemu-system-x86_64 is not installed");
            return;
        };
        let t = Instant::now();
        assert!(accel_runs_guests(q, "tcg", Duration::from_secs(20)));
        eprintln!("tcg probe: {:?}", t.elapsed());
    }

    #[test]
    fn an_accelerator_that_cannot_start_is_reported_as_not_running_guests() {
        let Some(q) = qemu() else {
            eprintln!("skipped: qemu-system-x86_64 is not installed");
            return;
        };
        assert!(!accel_runs_guests(q, "nosuchaccel", Duration::from_secs(5)));
    }
}
