//! VDI (VirtualBox): the little-endian header in the first 512 bytes.
//! Fields used: signature 0xbeda107f @0x40, version @0x44, image type @0x4c
//! (1 dynamic, 2 static, 3 undo, 4 differencing), disk size @0x170.

use super::{DiskFormat, Report, Unsafe, le_u32, le_u64};

const SIGNATURE: u32 = 0xbeda_107f;
const VERSION_1_1: u32 = 0x0001_0001;

pub(super) fn matches(head: &[u8]) -> bool {
    le_u32(head, 0x40) == Some(SIGNATURE)
}

pub(super) fn inspect(head: &[u8]) -> Report {
    let fmt = DiskFormat::Vdi;
    let (Some(version), Some(image_type), Some(disk_size)) =
        (le_u32(head, 0x44), le_u32(head, 0x4c), le_u64(head, 0x170))
    else {
        return Report::malformed(fmt, "VDI header truncated");
    };
    let mut report = Report::new(fmt, disk_size);
    if version != VERSION_1_1 {
        report.flag(Unsafe::Malformed(format!(
            "unsupported VDI version {}.{}",
            version >> 16,
            version & 0xffff
        )));
    }
    match image_type {
        1 | 2 => {}
        4 => report.flag(Unsafe::BackingFile),
        other => report.flag(Unsafe::Malformed(format!(
            "unsupported VDI image type {other}"
        ))),
    }
    report
}
