//! VHDX: a chain of little-endian structures located by offsets, walked while
//! the stream goes by. The file starts with the "vhdxfile" identifier; the
//! region table at 192 KiB points at the metadata region (which the spec puts
//! at a 1 MiB-aligned offset past the 1 MiB header section), whose table of
//! GUID-tagged items points at the Virtual Disk Size (u64), File Parameters
//! (flag "has parent") and, for differencing disks, Parent Locator items.
//!
//! Captured: the 64 KiB region table, the 64 KiB metadata table and two
//! 8-byte items.

use super::capture::Region;
use super::{DiskFormat, Report, Unsafe, le_u16, le_u32, le_u64};

const IDENT: &[u8; 8] = b"vhdxfile";
const REGION_TABLE_OFFSET: u64 = 192 * 1024;
const TABLE_LEN: usize = 64 * 1024;
const MAX_ENTRIES: u64 = 2047;
const MIB: u64 = 1024 * 1024;
const ITEM_MIN_OFFSET: u32 = 64 * 1024;
/// File Parameters flag: this is a differencing disk.
const HAS_PARENT: u32 = 1 << 1;

/// GUID in its on-disk (mixed-endian) byte order.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

const METADATA_REGION: [u8; 16] = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const FILE_PARAMETERS: [u8; 16] = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const PARENT_LOCATOR: [u8; 16] = guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

pub(super) fn matches(head: &[u8]) -> bool {
    head.starts_with(IDENT)
}

/// Streaming walk of the VHDX structures.
#[derive(Debug, Clone)]
pub(super) struct Walker {
    region_table: Region,
    metadata: Option<Region>,
    /// Metadata table parsed (items located).
    parsed: bool,
    disk_size: Option<Region>,
    file_params: Option<Region>,
    parent_locator: bool,
    error: Option<String>,
}

impl Walker {
    pub(super) fn new() -> Self {
        Self {
            region_table: Region::new(REGION_TABLE_OFFSET, TABLE_LEN),
            metadata: None,
            parsed: false,
            disk_size: None,
            file_params: None,
            parent_locator: false,
            error: None,
        }
    }

    /// Each step may create the next region, which is then offered the same
    /// chunk, so the whole chain can resolve within one large chunk.
    pub(super) fn feed(&mut self, start: u64, chunk: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.region_table.capture(start, chunk);
        if self.metadata.is_none() && self.region_table.complete() {
            match find_metadata_region(self.region_table.data()) {
                Ok(offset) => self.metadata = Some(Region::new(offset, TABLE_LEN)),
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        let Some(meta) = self.metadata.as_mut() else {
            return;
        };
        meta.capture(start, chunk);
        if !self.parsed && meta.complete() {
            self.parsed = true;
            if let Err(e) = self.locate_items() {
                self.error = Some(e);
                return;
            }
        }
        for item in [self.disk_size.as_mut(), self.file_params.as_mut()]
            .into_iter()
            .flatten()
        {
            item.capture(start, chunk);
        }
    }

    fn locate_items(&mut self) -> Result<(), String> {
        let Some(meta) = &self.metadata else {
            return Ok(());
        };
        let table = meta.data();
        if !table.starts_with(b"metadata") {
            return Err("VHDX metadata table signature missing".into());
        }
        let count = le_u16(table, 10).map_or(0, u64::from);
        if count > MAX_ENTRIES {
            return Err(format!("VHDX metadata table has {count} entries"));
        }
        for i in 0..count {
            // count <= 2047, so the entry offset stays below 64 KiB.
            let at = usize::try_from(32 + 32 * i).unwrap_or(usize::MAX);
            let (Some(id), Some(offset), Some(length)) = (
                super::bytes::<16>(table, at),
                le_u32(table, at + 16),
                le_u32(table, at + 20),
            ) else {
                return Err("VHDX metadata table truncated".into());
            };
            if id == PARENT_LOCATOR {
                self.parent_locator = true;
                continue;
            }
            let slot = if id == VIRTUAL_DISK_SIZE {
                &mut self.disk_size
            } else if id == FILE_PARAMETERS {
                &mut self.file_params
            } else {
                continue;
            };
            if offset < ITEM_MIN_OFFSET || length < 8 {
                return Err(format!(
                    "VHDX metadata item at offset {offset} with length {length}"
                ));
            }
            let abs = meta
                .offset()
                .checked_add(u64::from(offset))
                .ok_or_else(|| "VHDX metadata item offset overflows".to_string())?;
            *slot = Some(Region::new(abs, 8));
        }
        Ok(())
    }

    pub(super) fn next_needed(&self) -> u64 {
        if self.error.is_some() {
            return u64::MAX;
        }
        [
            Some(&self.region_table),
            self.metadata.as_ref(),
            self.disk_size.as_ref(),
            self.file_params.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(Region::next_needed)
        .min()
        .unwrap_or(u64::MAX)
    }

    #[cfg(test)]
    pub(super) fn captured_bytes(&self) -> usize {
        [
            Some(&self.region_table),
            self.metadata.as_ref(),
            self.disk_size.as_ref(),
            self.file_params.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|r| r.data().len())
        .sum()
    }

    pub(super) fn inspect(&self) -> Report {
        let fmt = DiskFormat::Vhdx;
        if let Some(e) = &self.error {
            return Report::malformed(fmt, e.clone());
        }
        if !self.region_table.complete() {
            return Report::malformed(fmt, "VHDX region table truncated");
        }
        let Some(meta) = &self.metadata else {
            return Report::malformed(fmt, "VHDX metadata region not found");
        };
        if !meta.complete() {
            return Report::malformed(fmt, "VHDX metadata table truncated");
        }
        let Some(size) = self.disk_size.as_ref().and_then(|r| le_u64(r.data(), 0)) else {
            return Report::malformed(fmt, "VHDX virtual disk size missing or truncated");
        };
        let mut report = Report::new(fmt, size);
        let has_parent = self
            .file_params
            .as_ref()
            .and_then(|r| le_u32(r.data(), 4))
            .is_some_and(|flags| flags & HAS_PARENT != 0);
        if has_parent || self.parent_locator {
            report.flag(Unsafe::BackingFile);
        }
        report
    }
}

/// Offset of the metadata region from the region table.
fn find_metadata_region(table: &[u8]) -> Result<u64, String> {
    if !table.starts_with(b"regi") {
        return Err("VHDX region table signature missing".into());
    }
    let count = le_u32(table, 8).map_or(0, u64::from);
    if count > MAX_ENTRIES {
        return Err(format!("VHDX region table has {count} entries"));
    }
    for i in 0..count {
        let at = usize::try_from(16 + 32 * i).unwrap_or(usize::MAX);
        let (Some(id), Some(offset)) = (super::bytes::<16>(table, at), le_u64(table, at + 16))
        else {
            return Err("VHDX region table truncated".into());
        };
        if id == METADATA_REGION {
            // Past the 1 MiB header section and 1 MiB aligned, as the spec
            // requires; this also guarantees the stream has not passed it.
            if offset < MIB || offset % MIB != 0 {
                return Err(format!("VHDX metadata region at bad offset {offset}"));
            }
            return Ok(offset);
        }
    }
    Err("VHDX metadata region not found".into())
}
