//! qcow2 (QEMU copy-on-write, versions 2 and 3): header parsing, virtual
//! size and the safety checks (backing file, external data file, unknown
//! incompatible features, header extensions in the first cluster).
//!
//! Layout used (big-endian): magic @0, version @4, backing_file_offset @8,
//! backing_file_size @16, cluster_bits @20, size @24, crypt_method @32;
//! v3 adds incompatible_features @72, compatible_features @80,
//! autoclear_features @88, refcount_order @96, header_length @100.
//! Header extensions follow the header up to the end of the first cluster.

use super::{DiskFormat, Report, Unsafe, be_u32, be_u64};

const MAGIC: &[u8; 4] = b"QFI\xfb";
const V2_HEADER_LEN: usize = 72;
const V3_HEADER_LEN: usize = 104;
/// Incompatible feature bits qemu 10 defines: dirty, corrupt, external data
/// file, compression type, extended L2 entries.
const KNOWN_INCOMPATIBLE: u64 = 0b1_1111;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Autoclear bit: external data file holds a valid raw image.
const AUTOCLEAR_DATA_FILE_RAW: u64 = 1 << 1;
/// Header extension naming the external data file ("DATA" in ASCII).
const EXT_DATA_FILE: u32 = 0x4441_5441;
const EXT_END: u32 = 0;

pub(super) fn matches(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

fn cluster_bits(head: &[u8]) -> Option<u32> {
    be_u32(head, 20).filter(|bits| (9..=21).contains(bits))
}

/// The whole first cluster must be captured to see the header extensions.
pub(super) fn wanted_prefix(head: &[u8]) -> Option<u64> {
    if !matches(head) {
        return None;
    }
    cluster_bits(head).map(|bits| 1u64 << bits)
}

pub(super) fn inspect(head: &[u8], size: u64) -> Report {
    let fmt = DiskFormat::Qcow2;
    let (Some(version), Some(backing_offset), Some(raw_bits), Some(virtual_size), Some(crypt)) = (
        be_u32(head, 4),
        be_u64(head, 8),
        be_u32(head, 20),
        be_u64(head, 24),
        be_u32(head, 32),
    ) else {
        return Report::malformed(fmt, format!("qcow2 header truncated ({size} bytes)"));
    };
    let mut report = Report::new(fmt, virtual_size);
    // A backing file is unsafe whatever else is wrong; check it first.
    if backing_offset != 0 {
        report.flag(Unsafe::BackingFile);
    }
    if version != 2 && version != 3 {
        report.flag(Unsafe::Malformed(format!(
            "unsupported qcow2 version {version}"
        )));
        return report;
    }
    let Some(bits) = cluster_bits(head) else {
        report.flag(Unsafe::Malformed(format!(
            "qcow2 cluster_bits {raw_bits} outside 9..=21"
        )));
        return report;
    };
    let cluster_size = 1usize << bits;
    if crypt > 2 {
        report.flag(Unsafe::Malformed(format!(
            "unknown qcow2 encryption method {crypt}"
        )));
    }

    let header_len = if version == 2 {
        if head.len() < V2_HEADER_LEN {
            report.flag(Unsafe::Malformed("qcow2 header truncated".into()));
            return report;
        }
        V2_HEADER_LEN
    } else {
        let (Some(incompat), Some(autoclear), Some(refcount_order), Some(header_len)) = (
            be_u64(head, 72),
            be_u64(head, 88),
            be_u32(head, 96),
            be_u32(head, 100),
        ) else {
            report.flag(Unsafe::Malformed("qcow2 v3 header truncated".into()));
            return report;
        };
        if incompat & INCOMPAT_DATA_FILE != 0 || autoclear & AUTOCLEAR_DATA_FILE_RAW != 0 {
            report.flag(Unsafe::DataFile);
        }
        let unknown = incompat & !KNOWN_INCOMPATIBLE;
        if unknown != 0 {
            report.flag(Unsafe::UnknownFeatures(unknown));
        }
        if refcount_order > 6 {
            report.flag(Unsafe::Malformed(format!(
                "qcow2 refcount_order {refcount_order} above 6"
            )));
        }
        let header_len = usize::try_from(header_len).unwrap_or(usize::MAX);
        if header_len < V3_HEADER_LEN || header_len > cluster_size {
            report.flag(Unsafe::Malformed(format!(
                "qcow2 header_length {header_len} outside {V3_HEADER_LEN}..={cluster_size}"
            )));
            return report;
        }
        header_len
    };
    check_extensions(head, header_len, cluster_size, &mut report);
    report
}

/// Walk the header extensions between the header and the end of the first
/// cluster, flagging an external data file name and overruns.
fn check_extensions(head: &[u8], header_len: usize, cluster_size: usize, report: &mut Report) {
    let end = cluster_size.min(head.len());
    let mut off = header_len;
    while off < end {
        let (Some(kind), Some(len)) = (be_u32(head, off), be_u32(head, off + 4)) else {
            if head.len() < cluster_size {
                report.flag(Unsafe::Malformed(
                    "qcow2 header extensions truncated".into(),
                ));
            }
            return;
        };
        if kind == EXT_END {
            return;
        }
        let data_start = off + 8;
        let padded = (u64::from(len) + 7) & !7;
        let next = usize::try_from(padded)
            .ok()
            .and_then(|p| data_start.checked_add(p));
        let Some(next) = next.filter(|&n| n <= cluster_size) else {
            report.flag(Unsafe::Malformed(
                "qcow2 header extension runs past the first cluster".into(),
            ));
            return;
        };
        if kind == EXT_DATA_FILE {
            report.flag(Unsafe::DataFile);
        }
        off = next;
    }
}
