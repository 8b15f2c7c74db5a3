//! VHD ("vpc" in qemu): the 512-byte big-endian footer. Fixed disks carry it
//! only at the very end of the file; dynamic and differencing disks also keep
//! a copy at offset 0. Fields used: cookie "conectix" @0, current size @48,
//! disk type @60 (2 fixed, 3 dynamic, 4 differencing), checksum @64.

use super::{DiskFormat, Report, Unsafe, be_u32, be_u64};

const COOKIE: &[u8; 8] = b"conectix";
const FOOTER_LEN: usize = 512;
const TYPE_FIXED: u32 = 2;
const TYPE_DYNAMIC: u32 = 3;
const TYPE_DIFFERENCING: u32 = 4;

struct Footer {
    current_size: u64,
    disk_type: u32,
    checksum_ok: bool,
}

fn parse(footer: &[u8]) -> Option<Footer> {
    let footer = footer.get(..FOOTER_LEN)?;
    let stored = be_u32(footer, 64)?;
    // One's complement of the byte sum, with the checksum field as zero.
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    Some(Footer {
        current_size: be_u64(footer, 48)?,
        disk_type: be_u32(footer, 60)?,
        checksum_ok: !sum == stored,
    })
}

/// `None` when neither the start nor the end of the stream holds a footer.
pub(super) fn inspect(head: &[u8], tail: &[u8], size: u64) -> Option<Report> {
    let fmt = DiskFormat::Vhd;
    let in_head = head.starts_with(COOKIE);
    let end_footer = tail
        .len()
        .checked_sub(FOOTER_LEN)
        .and_then(|start| tail.get(start..))
        .filter(|f| f.starts_with(COOKIE) && size >= FOOTER_LEN as u64);
    if !in_head && end_footer.is_none() {
        return None;
    }
    // Like qemu, prefer the copy at offset 0 when there is one.
    let primary = if in_head { Some(head) } else { end_footer };
    let Some(footer) = primary.and_then(parse) else {
        return Some(Report::malformed(fmt, "VHD footer truncated"));
    };
    let mut report = Report::new(fmt, footer.current_size);
    if !footer.checksum_ok {
        report.flag(Unsafe::Malformed("VHD footer checksum mismatch".into()));
    }
    match footer.disk_type {
        TYPE_FIXED => {
            // Fixed: the data precedes the footer, so the file must hold it.
            if footer.current_size > size.saturating_sub(FOOTER_LEN as u64) {
                report.flag(Unsafe::Malformed(format!(
                    "fixed VHD claims {} bytes but the file holds {}",
                    footer.current_size,
                    size.saturating_sub(FOOTER_LEN as u64)
                )));
            }
        }
        TYPE_DYNAMIC => {}
        TYPE_DIFFERENCING => report.flag(Unsafe::BackingFile),
        other => report.flag(Unsafe::Malformed(format!("unknown VHD disk type {other}"))),
    }
    if in_head
        && let Some(end) = end_footer.and_then(parse)
        && (end.current_size != footer.current_size || end.disk_type != footer.disk_type)
    {
        report.flag(Unsafe::Malformed(
            "the two VHD footer copies disagree".into(),
        ));
    }
    Some(report)
}
