//! Where the guest's root filesystem starts in a disk image: the whole disk, or
//! a partition found in an MBR or GPT partition table (512-byte sectors), chosen
//! as upstream's `inject_partition` says (-1 = the first partition holding an
//! ext2/3/4 filesystem, 0 = the whole disk, N = partition N). Only primary MBR
//! partitions are listed; logical ones inside an extended partition are not.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{InjectError, Partition};

const SECTOR: u64 = 512;

/// A partition: its number (1-based, as the guest's kernel counts) and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
}

fn read_at(f: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<bool> {
    f.seek(SeekFrom::Start(offset))?;
    match f.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn u64le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// The partitions of an image (empty: no partition table).
pub fn partitions(image: &Path) -> Result<Vec<Part>, InjectError> {
    let mut f = File::open(image)?;
    let mut mbr = [0u8; 512];
    if !read_at(&mut f, 0, &mut mbr)? || mbr[510] != 0x55 || mbr[511] != 0xAA {
        return Ok(Vec::new());
    }
    let entries: Vec<&[u8]> = (0..4).map(|i| &mbr[446 + 16 * i..462 + 16 * i]).collect();
    // A FAT/ext boot sector also ends in 55AA; a table has sane status bytes.
    if entries.iter().any(|e| e[0] != 0 && e[0] != 0x80) {
        return Ok(Vec::new());
    }
    if entries.iter().any(|e| e[4] == 0xEE) {
        return gpt(&mut f);
    }
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let kind = e[4];
        if kind == 0 || matches!(kind, 0x05 | 0x0F | 0x85) {
            continue;
        }
        let start = u64::from(u32le(&e[8..12]));
        let count = u64::from(u32le(&e[12..16]));
        if start == 0 || count == 0 {
            continue;
        }
        out.push(Part {
            number: i as u32 + 1,
            offset: start * SECTOR,
            size: count * SECTOR,
        });
    }
    Ok(out)
}

fn gpt(f: &mut File) -> Result<Vec<Part>, InjectError> {
    let mut hdr = [0u8; 92];
    if !read_at(f, SECTOR, &mut hdr)? || &hdr[0..8] != b"EFI PART" {
        return Err(InjectError::NoFilesystem(
            "protective MBR without a GPT header".into(),
        ));
    }
    let table = u64le(&hdr[72..80]);
    let count = u32le(&hdr[80..84]).min(1024);
    let size = u32le(&hdr[84..88]);
    if !(128..=4096).contains(&size) {
        return Err(InjectError::NoFilesystem(format!(
            "GPT entry size {size} is not sane"
        )));
    }
    let mut buf = vec![0u8; count as usize * size as usize];
    if !read_at(f, table.saturating_mul(SECTOR), &mut buf)? {
        return Err(InjectError::NoFilesystem("GPT entries past the end".into()));
    }
    let mut out = Vec::new();
    for i in 0..count as usize {
        let e = &buf[i * size as usize..(i + 1) * size as usize];
        if e[0..16].iter().all(|b| *b == 0) {
            continue;
        }
        let first = u64le(&e[32..40]);
        let last = u64le(&e[40..48]);
        if last < first {
            continue;
        }
        out.push(Part {
            number: i as u32 + 1,
            offset: first.saturating_mul(SECTOR),
            size: (last - first + 1).saturating_mul(SECTOR),
        });
    }
    Ok(out)
}

/// Whether an ext2/3/4 superblock sits at `offset`.
pub fn is_ext(image: &Path, offset: u64) -> Result<bool, InjectError> {
    let mut f = File::open(image)?;
    let mut magic = [0u8; 2];
    Ok(read_at(&mut f, offset + 1024 + 56, &mut magic)? && magic == [0x53, 0xEF])
}

/// The byte offset of the filesystem to inject into, checked to be ext2/3/4.
pub fn locate(image: &Path, which: Partition) -> Result<u64, InjectError> {
    let parts = partitions(image)?;
    let offset = match which {
        Partition::Never => return Err(InjectError::Disabled),
        Partition::Whole => 0,
        Partition::Number(n) => {
            parts
                .iter()
                .find(|p| p.number == n)
                .ok_or(InjectError::PartitionNotFound(n))?
                .offset
        }
        Partition::Auto if parts.is_empty() => 0,
        Partition::Auto => {
            let mut found = None;
            for p in &parts {
                if is_ext(image, p.offset)? {
                    found = Some(p.offset);
                    break;
                }
            }
            found.ok_or_else(|| {
                InjectError::NoFilesystem(format!(
                    "none of the {} partitions holds an ext2/3/4 filesystem",
                    parts.len()
                ))
            })?
        }
    };
    if !is_ext(image, offset)? {
        return Err(InjectError::NoFilesystem(format!(
            "no ext2/3/4 filesystem at byte {offset}"
        )));
    }
    Ok(offset)
}
