//! VMDK: the sparse extent header ("KDMV", little-endian), its embedded text
//! descriptor, the streamOptimized footer, and standalone descriptor files.
//!
//! Only single-file images are accepted: `createType` monolithicSparse or
//! streamOptimized, exactly one extent line that names no path, and no
//! `parentFileNameHint` (qemu would open that file as a backing image). A
//! standalone descriptor file always points at other files and is refused.
//!
//! Header fields used: version @4, capacity (sectors) @12, descriptor
//! offset (sectors) @28, descriptor size (sectors) @36, gd_offset @56.

use super::{DiskFormat, Report, Unsafe, le_u32, le_u64, sanitize};

const MAGIC: &[u8; 4] = b"KDMV";
/// Legacy VMDK3 ("COWD") sparse extent.
const MAGIC_V3: &[u8; 4] = b"COWD";
const DESCRIPTOR_FILE_PREFIX: &[u8] = b"# disk descriptorfile";
const SECTOR: u64 = 512;
/// qemu refuses descriptors above 1 MiB.
const DESC_MAX: u64 = 1024 * 1024;
/// gd_offset meaning "the real header is in the footer at the end".
const GD_AT_END: u64 = u64::MAX;

fn is_descriptor_file(head: &[u8]) -> bool {
    head.get(..DESCRIPTOR_FILE_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(DESCRIPTOR_FILE_PREFIX))
}

pub(super) fn matches(head: &[u8]) -> bool {
    head.starts_with(MAGIC) || head.starts_with(MAGIC_V3) || is_descriptor_file(head)
}

/// Where the embedded descriptor ends, so the leading window covers it.
pub(super) fn wanted_prefix(head: &[u8]) -> Option<u64> {
    if !head.starts_with(MAGIC) {
        return None;
    }
    let (start, len) = descriptor_span(head)?;
    start.checked_add(len)
}

/// Embedded descriptor (offset, length) in bytes, when plausible.
fn descriptor_span(head: &[u8]) -> Option<(u64, u64)> {
    let start = le_u64(head, 28)?.checked_mul(SECTOR)?;
    let len = le_u64(head, 36)?.checked_mul(SECTOR)?;
    (start > 0 && len > 0 && len <= DESC_MAX).then_some((start, len))
}

pub(super) fn inspect(head: &[u8], tail: &[u8], size: u64) -> Report {
    let fmt = DiskFormat::Vmdk;
    if head.starts_with(MAGIC_V3) {
        let mut r = Report::new(fmt, 0);
        r.flag(Unsafe::UnsupportedFormat("vmdk version 3 (COWD)".into()));
        return r;
    }
    if is_descriptor_file(head) {
        return inspect_descriptor_file(head, size);
    }
    let (Some(version), Some(mut capacity), Some(desc_sectors), Some(gd_offset)) = (
        le_u32(head, 4),
        le_u64(head, 12),
        le_u64(head, 36),
        le_u64(head, 56),
    ) else {
        return Report::malformed(fmt, format!("VMDK header truncated ({size} bytes)"));
    };
    if !(1..=3).contains(&version) {
        return Report::malformed(fmt, format!("unsupported VMDK version {version}"));
    }
    if gd_offset == GD_AT_END {
        // streamOptimized may defer the header to a footer that sits just
        // before the final end-of-stream marker; qemu then trusts the footer.
        let footer = tail
            .len()
            .checked_sub(1024)
            .and_then(|start| tail.get(start..start + 512));
        match footer {
            Some(f) if f.starts_with(MAGIC) => match le_u64(f, 12) {
                Some(c) => capacity = c,
                None => return Report::malformed(fmt, "VMDK footer truncated"),
            },
            _ => return Report::malformed(fmt, "VMDK footer announced but missing"),
        }
    }
    let Some(virtual_size) = capacity.checked_mul(SECTOR) else {
        return Report::malformed(fmt, format!("VMDK capacity {capacity} sectors overflows"));
    };
    let mut report = Report::new(fmt, virtual_size);

    if desc_sectors.saturating_mul(SECTOR) > DESC_MAX {
        report.flag(Unsafe::Malformed(format!(
            "VMDK descriptor too large ({desc_sectors} sectors)"
        )));
        return report;
    }
    let Some((start, len)) = descriptor_span(head) else {
        report.flag(Unsafe::Malformed("VMDK has no embedded descriptor".into()));
        return report;
    };
    let span = usize::try_from(start)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(s, l)| head.get(s..s.checked_add(l)?));
    let Some(raw) = span else {
        report.flag(Unsafe::Malformed(
            "VMDK descriptor lies outside the inspected area or past the end".into(),
        ));
        return report;
    };
    match Descriptor::parse(raw) {
        Ok(desc) => desc.check_monolithic(&mut report),
        Err(why) => report.flag(Unsafe::Malformed(why)),
    }
    report
}

/// A standalone descriptor: the data is in other files, so always refused.
fn inspect_descriptor_file(head: &[u8], size: u64) -> Report {
    let fmt = DiskFormat::Vmdk;
    if (head.len() as u64) < size {
        return Report::malformed(fmt, "VMDK descriptor file too large");
    }
    match Descriptor::parse(head) {
        Ok(desc) => {
            let sectors = desc
                .extents
                .iter()
                .try_fold(0u64, |acc, e| acc.checked_add(e.sectors));
            let virtual_size = sectors.and_then(|s| s.checked_mul(SECTOR)).unwrap_or(0);
            let mut report = Report::new(fmt, virtual_size);
            let kind = desc.create_type.as_deref().unwrap_or("no createType");
            report.flag(Unsafe::VmdkNotMonolithic(format!(
                "descriptor file of type {}",
                sanitize(kind)
            )));
            if desc.parent_hint {
                report.flag(Unsafe::BackingFile);
            }
            report
        }
        Err(why) => Report::malformed(fmt, why),
    }
}

#[derive(Debug)]
struct Extent {
    sectors: u64,
    kind: String,
    file: String,
}

#[derive(Debug, Default)]
struct Descriptor {
    create_type: Option<String>,
    parent_hint: bool,
    extents: Vec<Extent>,
}

impl Descriptor {
    /// Cautious parse: every non-blank line must be a comment, a `ddb.` line,
    /// a `key=value` line or an extent line; anything else is refused.
    fn parse(raw: &[u8]) -> Result<Self, String> {
        // Padding after the text is NUL bytes.
        let text = raw.split(|&b| b == 0).next().unwrap_or_default();
        let text = std::str::from_utf8(text)
            .ok()
            .filter(|t| t.is_ascii())
            .ok_or_else(|| "VMDK descriptor is not ASCII text".to_string())?;
        let mut desc = Descriptor::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("ddb.") {
                continue;
            }
            let first = lower.split_whitespace().next().unwrap_or_default();
            if matches!(first, "rw" | "rdonly" | "noaccess") {
                desc.extents.push(parse_extent(line)?);
                continue;
            }
            match line.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() && !key.trim().contains(' ') => {
                    let key = key.trim().to_ascii_lowercase();
                    let value = value.trim().trim_matches('"').to_string();
                    match key.as_str() {
                        "createtype" => desc.create_type = Some(value),
                        "parentfilenamehint" => desc.parent_hint = true,
                        _ => {}
                    }
                }
                _ => {
                    return Err(format!(
                        "unrecognised VMDK descriptor line {:?}",
                        sanitize(line)
                    ));
                }
            }
        }
        Ok(desc)
    }

    fn check_monolithic(&self, report: &mut Report) {
        if self.parent_hint {
            report.flag(Unsafe::BackingFile);
        }
        match self.create_type.as_deref() {
            Some(t)
                if t.eq_ignore_ascii_case("monolithicSparse")
                    || t.eq_ignore_ascii_case("streamOptimized") => {}
            Some(t) => report.flag(Unsafe::VmdkNotMonolithic(format!(
                "createType {}",
                sanitize(t)
            ))),
            None => report.flag(Unsafe::VmdkNotMonolithic("no createType".into())),
        }
        match self.extents.as_slice() {
            [] => report.flag(Unsafe::VmdkNotMonolithic("no extent".into())),
            [only] => {
                if !only.kind.eq_ignore_ascii_case("SPARSE") {
                    report.flag(Unsafe::VmdkNotMonolithic(format!(
                        "extent of type {}",
                        sanitize(&only.kind)
                    )));
                }
                let f = &only.file;
                if f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.') {
                    report.flag(Unsafe::VmdkNotMonolithic(format!(
                        "extent refers to another file {:?}",
                        sanitize(f)
                    )));
                }
            }
            many => report.flag(Unsafe::VmdkNotMonolithic(format!("{} extents", many.len()))),
        }
    }
}

/// `ACCESS SECTORS TYPE ["FILENAME" [OFFSET]]`
fn parse_extent(line: &str) -> Result<Extent, String> {
    let bad = || format!("bad VMDK extent line {:?}", sanitize(line));
    let (_access, rest) = next_token(line);
    let (sectors, rest) = next_token(rest);
    let sectors = sectors.parse::<u64>().map_err(|_| bad())?;
    let (kind, rest) = next_token(rest);
    if kind.is_empty() {
        return Err(bad());
    }
    let rest = rest.trim();
    let file = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split_once('"').ok_or_else(bad)?.0.to_string(),
        None => next_token(rest).0.to_string(),
    };
    Ok(Extent {
        sectors,
        kind: kind.to_string(),
        file,
    })
}

/// First whitespace-separated token and the remainder.
fn next_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}
