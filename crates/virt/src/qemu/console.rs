//! The serial console log: QEMU appends everything the guest writes to ttyS0 to
//! `console.log` (`logappend=on`, so O_APPEND), whether or not anyone is attached
//! to the serial socket. A guest controls how much it writes, so the log is
//! capped: past `max` bytes it is copied to `console.log.1` and truncated
//! (QEMU's next write lands at the new end). Reads return the newest
//! [`MAX_CONSOLE_BYTES`] across both files, as Nova's libvirt driver does.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Nova's `MAX_CONSOLE_BYTES`.
pub const MAX_CONSOLE_BYTES: u64 = 100 * 1024;

pub const LOG: &str = "console.log";
pub const ROTATED: &str = "console.log.1";

fn tail_bytes(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(n)))?;
    let mut out = Vec::new();
    f.take(n).read_to_end(&mut out)?;
    Ok(out)
}

/// The newest `MAX_CONSOLE_BYTES` of the guest's serial output.
pub fn read(dir: &Path) -> std::io::Result<String> {
    let mut bytes = tail_bytes(&dir.join(LOG), MAX_CONSOLE_BYTES)?;
    let missing = MAX_CONSOLE_BYTES - bytes.len() as u64;
    if missing > 0 {
        let mut older = tail_bytes(&dir.join(ROTATED), missing)?;
        older.extend_from_slice(&bytes);
        bytes = older;
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Copies and truncates the log when it has grown past `max`; true when it did.
pub fn rotate_if_big(dir: &Path, max: u64) -> std::io::Result<bool> {
    let log = dir.join(LOG);
    let len = match std::fs::metadata(&log) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max {
        return Ok(false);
    }
    let keep = tail_bytes(&log, max)?;
    ferrostack_core::fsutil::write_private_atomic(&dir.join(ROTATED), &keep)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)?
        .set_len(0)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn the_log_is_capped_and_reads_span_the_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join(LOG))
            .unwrap();
        for i in 0..30_000 {
            writeln!(f, "line {i}").unwrap();
        }
        assert!(rotate_if_big(dir.path(), 64 * 1024).unwrap());
        assert_eq!(std::fs::metadata(dir.path().join(LOG)).unwrap().len(), 0);
        assert!(!rotate_if_big(dir.path(), 64 * 1024).unwrap());
        // the writer keeps appending at the (new) end, as QEMU does with O_APPEND
        writeln!(f, "after rotation").unwrap();
        let text = read(dir.path()).unwrap();
        assert!(
            text.ends_with("line 29999\nafter rotation\n"),
            "{}",
            &text[text.len() - 40..]
        );
        assert!(text.len() as u64 <= MAX_CONSOLE_BYTES);
        assert!(read(&dir.path().join("nowhere")).unwrap().is_empty());
    }
}
