//! ISO 9660 / UDF: the volume descriptors in the 16 sectors of 2 KiB that
//! follow the 32 KiB system area. The first must carry a standard identifier
//! ("CD001", or a UDF "BEA01"/"NSR02"/"NSR03"/"TEA01"). From an ISO 9660
//! primary volume descriptor (type 1) the volume space size (@80, both-endian
//! u32) and logical block size (@128, both-endian u16) are checked against
//! the stream length.
//!
//! The virtual size is the number of bytes fed: appended data (hybrid ISOs
//! append EFI partitions) is legitimate, but a volume that claims more
//! blocks than the file holds is reported as malformed.

use super::{DiskFormat, Report, Unsafe, be_u16, be_u32, le_u16, le_u32};

const SECTOR: usize = 2048;
const TYPE_PRIMARY: u8 = 1;
const TYPE_TERMINATOR: u8 = 255;

fn identifier(desc: &[u8]) -> Option<&[u8]> {
    desc.get(1..6)
}

fn is_udf(id: &[u8]) -> bool {
    matches!(id, b"BEA01" | b"NSR02" | b"NSR03" | b"TEA01")
}

pub(super) fn inspect(descriptors: &[u8], size: u64) -> Option<Report> {
    let first = identifier(descriptors)?;
    if first != b"CD001" && !is_udf(first) {
        return None;
    }
    let mut report = Report::new(DiskFormat::Iso, size);
    for desc in descriptors.chunks(SECTOR) {
        let (Some(&kind), Some(id)) = (desc.first(), identifier(desc)) else {
            break;
        };
        if id != b"CD001" {
            if is_udf(id) {
                continue;
            }
            break;
        }
        if kind == TYPE_TERMINATOR {
            break;
        }
        if kind == TYPE_PRIMARY {
            check_primary(desc, size, &mut report);
            break;
        }
    }
    Some(report)
}

fn check_primary(pvd: &[u8], size: u64, report: &mut Report) {
    let (Some(blocks), Some(blocks_be), Some(block_size), Some(block_size_be)) = (
        le_u32(pvd, 80),
        be_u32(pvd, 84),
        le_u16(pvd, 128),
        be_u16(pvd, 130),
    ) else {
        report.flag(Unsafe::Malformed(
            "ISO primary volume descriptor truncated".into(),
        ));
        return;
    };
    if blocks != blocks_be || block_size != block_size_be {
        report.flag(Unsafe::Malformed(
            "ISO primary volume descriptor fields disagree between byte orders".into(),
        ));
        return;
    }
    if !block_size.is_power_of_two() || block_size < 512 {
        report.flag(Unsafe::Malformed(format!(
            "ISO logical block size {block_size}"
        )));
        return;
    }
    let volume = u64::from(blocks) * u64::from(block_size);
    if volume > size {
        report.flag(Unsafe::Malformed(format!(
            "ISO volume of {volume} bytes is larger than the {size} bytes uploaded"
        )));
    }
}
