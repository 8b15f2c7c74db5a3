//! Streaming disk-image format inspector (upload safety check).
//!
//! Images are fed chunk by chunk as they stream in ([`Inspector::feed`]); the
//! inspector only keeps the few byte windows the supported formats need, so
//! memory stays bounded (a little over 2 MiB worst case, ~100 KiB usually)
//! whatever the image size. [`Inspector::finish`] then reports the detected
//! [`DiskFormat`], its virtual size and any [`Unsafe`] findings, and
//! [`verify`] applies the upload policy (refuse unsafe content, refuse content
//! that does not match the declared `disk_format`).
//!
//! What is captured:
//! * the first 64 KiB of the stream (grown to the first qcow2 cluster, at most
//!   2 MiB, or to the end of the embedded VMDK descriptor),
//! * 32 KiB at 32 KiB (ISO 9660 / UDF volume descriptors),
//! * the last 1 KiB (VHD footer, streamOptimized VMDK footer),
//! * for VHDX only: the region table, the metadata table and a few items.
//!
//! Detection: every format whose signature is present counts as a hit. No
//! hit means [`DiskFormat::Raw`]. More than one hit (for example a qcow2
//! header in the system area of an ISO, or a VHD footer appended to a qcow2)
//! is reported as [`Unsafe::MultipleFormats`], as upstream OpenStack refuses
//! "multiple formats detected". Partition tables (MBR/GPT) are not treated as
//! a format, so a hybrid (USB-bootable) ISO is simply an ISO.

mod capture;
mod iso;
mod qcow2;
mod vdi;
mod vhd;
mod vhdx;
mod vmdk;

#[cfg(test)]
mod tests;

use std::fmt;

use capture::{Region, Tail};

/// Disk formats the inspector recognises, named as Glance names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskFormat {
    Raw,
    Qcow2,
    Vmdk,
    Vhd,
    Vhdx,
    Iso,
    Vdi,
}

impl DiskFormat {
    /// The Glance `disk_format` name.
    pub fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vhd => "vhd",
            DiskFormat::Vhdx => "vhdx",
            DiskFormat::Iso => "iso",
            DiskFormat::Vdi => "vdi",
        }
    }

    /// Parse a Glance `disk_format` (or qemu driver) name; `vpc` is qemu's
    /// name for VHD. Case-insensitive. Other names (ami, ploop, ...) give
    /// `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "raw" => Some(DiskFormat::Raw),
            "qcow2" => Some(DiskFormat::Qcow2),
            "vmdk" => Some(DiskFormat::Vmdk),
            "vhd" | "vpc" => Some(DiskFormat::Vhd),
            "vhdx" => Some(DiskFormat::Vhdx),
            "iso" => Some(DiskFormat::Iso),
            "vdi" => Some(DiskFormat::Vdi),
            _ => None,
        }
    }
}

impl fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A safety finding: content that must not be handed to qemu or a hypervisor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    /// The image points at another file to read data from (qcow2 backing
    /// file, VMDK parentFileNameHint, VHD/VHDX differencing disk, VDI diff).
    #[error("the image refers to a backing (parent) file; uploaded images must be self-contained")]
    BackingFile,
    /// qcow2 whose guest data lives in an external data file.
    #[error("the qcow2 image stores its data in an external data file")]
    DataFile,
    /// VMDK whose data is not entirely inside the uploaded file.
    #[error(
        "the VMDK image is not a single self-contained file ({0}); only monolithicSparse and streamOptimized are accepted"
    )]
    VmdkNotMonolithic(String),
    /// A header claims something impossible or is cut short.
    #[error("the image is malformed: {0}")]
    Malformed(String),
    /// qcow2 incompatible feature bits this inspector does not know.
    #[error("the qcow2 image uses unknown incompatible features (bits {0:#x})")]
    UnknownFeatures(u64),
    /// The content carries signatures of several formats at once.
    #[error("the image content matches several formats at once ({})", join_formats(.0))]
    MultipleFormats(Vec<DiskFormat>),
    /// A recognised format that is never accepted (qed, luks, legacy VMDK3...).
    #[error("the image format {0} is not supported")]
    UnsupportedFormat(String),
}

fn join_formats(formats: &[DiskFormat]) -> String {
    formats
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Result of inspecting a whole stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Detected format; `Raw` when nothing else matched. With
    /// [`Unsafe::MultipleFormats`] this is the first of the matches.
    pub format: DiskFormat,
    /// Size of the disk as the guest sees it, in bytes (0 when a header that
    /// should carry it is unusable; `problems` then says why).
    pub virtual_size: u64,
    /// Number of bytes fed.
    pub size: u64,
    /// Safety findings; empty when the image is safe.
    pub problems: Vec<Unsafe>,
}

impl Inspection {
    /// True when no safety problem was found.
    pub fn is_safe(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why an upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("image rejected: {0}")]
    Unsafe(Unsafe),
    /// Glance's words (`glance/location.py` `set_data`).
    #[error("Image disk_format {declared} does not match stream data {detected}")]
    FormatMismatch {
        declared: String,
        detected: DiskFormat,
    },
}

/// Upload policy.
///
/// * Any [`Unsafe`] finding is refused, whatever `allow_mismatch` says.
/// * Otherwise the detected format must be acceptable for the declared
///   `disk_format` (case-insensitive), unless `allow_mismatch`:
///
/// | disk_format        | accepted content            |
/// |--------------------|-----------------------------|
/// | raw                | raw, iso                    |
/// | ami, aki, ari      | raw                         |
/// | qcow2              | qcow2                       |
/// | vmdk               | vmdk                        |
/// | vhd (alias vpc)    | vhd                         |
/// | vhdx               | vhdx                        |
/// | vdi                | vdi                         |
/// | iso                | iso                         |
/// | anything else      | raw (e.g. ploop: we cannot recognise it, but a known header is a lie) |
///
/// An ISO under `raw` is accepted because ISO 9660 has no metadata that qemu
/// interprets: read with `format=raw` it is exactly the same bytes. The
/// converse is refused: content declared `iso` always carries a volume
/// descriptor at 32 KiB, so "raw" content is not an ISO.
///
/// When `container_format` is an archive (`compressed`, `ova`, `docker`) the
/// disk is not visible in the byte stream, so raw-looking content is accepted
/// for any `disk_format`; a recognised disk header must still match.
pub fn verify(
    i: &Inspection,
    disk_format: &str,
    container_format: &str,
    allow_mismatch: bool,
) -> Result<(), InspectError> {
    if let Some(problem) = i.problems.first() {
        return Err(InspectError::Unsafe(problem.clone()));
    }
    if allow_mismatch || format_accepted(i.format, disk_format, container_format) {
        return Ok(());
    }
    Err(InspectError::FormatMismatch {
        declared: disk_format.to_string(),
        detected: i.format,
    })
}

fn format_accepted(detected: DiskFormat, disk_format: &str, container_format: &str) -> bool {
    let container = container_format.to_ascii_lowercase();
    if detected == DiskFormat::Raw && matches!(container.as_str(), "compressed" | "ova" | "docker")
    {
        return true;
    }
    let declared = disk_format.to_ascii_lowercase();
    match declared.as_str() {
        "raw" => matches!(detected, DiskFormat::Raw | DiskFormat::Iso),
        "ami" | "aki" | "ari" => detected == DiskFormat::Raw,
        other => match DiskFormat::from_name(other) {
            Some(expected) => detected == expected,
            None => detected == DiskFormat::Raw,
        },
    }
}

/// Initial size of the leading window.
const HEAD_INITIAL: usize = 64 * 1024;
/// Hard cap of the leading window (largest qcow2 cluster).
const HEAD_MAX: usize = 2 * 1024 * 1024;
/// ISO 9660 / UDF volume descriptors start at sector 16 (2 KiB sectors).
const ISO_OFFSET: u64 = 32 * 1024;
/// Sixteen descriptor sectors.
const ISO_LEN: usize = 32 * 1024;

/// Streaming inspector. Feed every chunk of the image in order, then call
/// [`Inspector::finish`].
#[derive(Debug, Clone)]
pub struct Inspector {
    /// Bytes fed so far (absolute offset of the next chunk).
    pos: u64,
    head: Region,
    iso: Region,
    tail: Tail,
    /// Set once the head showed a VHDX signature.
    vhdx: Option<vhdx::Walker>,
    /// First absolute offset any region still wants; chunks ending at or
    /// before it only need offset bookkeeping.
    next_interest: u64,
}

impl Default for Inspector {
    fn default() -> Self {
        Self::new()
    }
}

impl Inspector {
    pub fn new() -> Self {
        Self {
            pos: 0,
            head: Region::new(0, HEAD_INITIAL),
            iso: Region::new(ISO_OFFSET, ISO_LEN),
            tail: Tail::new(),
            vhdx: None,
            next_interest: 0,
        }
    }

    /// Present the next chunk of the stream. Never fails or panics; memory
    /// stays bounded whatever is fed.
    pub fn feed(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        let start = self.pos;
        self.pos = self.pos.saturating_add(chunk.len() as u64);
        self.tail.push(chunk);
        if self.pos <= self.next_interest {
            return;
        }

        self.head.capture(start, chunk);
        self.iso.capture(start, chunk);
        // Looking at the head may widen it (qcow2 cluster, VMDK descriptor)
        // or start the VHDX walk; re-offer this chunk to what changed.
        if let Some(want) = self.head_wants() {
            self.head.grow_to(want);
            self.head.capture(start, chunk);
        }
        if self.vhdx.is_none() && vhdx::matches(self.head.data()) {
            self.vhdx = Some(vhdx::Walker::new());
        }
        if let Some(walker) = self.vhdx.as_mut() {
            walker.feed(start, chunk);
        }
        self.next_interest = self.compute_next_interest();
    }

    /// How long the leading window should be, judging from what it holds.
    fn head_wants(&self) -> Option<usize> {
        let head = self.head.data();
        let want = qcow2::wanted_prefix(head).or_else(|| vmdk::wanted_prefix(head))?;
        let want = usize::try_from(want).ok()?;
        (want <= HEAD_MAX).then_some(want)
    }

    fn compute_next_interest(&self) -> u64 {
        let mut next = u64::MAX;
        for candidate in [self.head.next_needed(), self.iso.next_needed()]
            .into_iter()
            .flatten()
        {
            next = next.min(candidate);
        }
        if let Some(walker) = &self.vhdx {
            next = next.min(walker.next_needed());
        }
        next
    }

    /// Bytes currently held in capture buffers (for memory-bound tests).
    #[cfg(test)]
    pub(crate) fn captured_bytes(&self) -> usize {
        self.head.data().len()
            + self.iso.data().len()
            + capture::TAIL_LEN
            + self.vhdx.as_ref().map_or(0, vhdx::Walker::captured_bytes)
    }

    /// Conclude after the last chunk.
    pub fn finish(self) -> Inspection {
        let size = self.pos;
        let head = self.head.data();
        let tail = self.tail.to_vec();
        let mut problems = Vec::new();
        let mut hits: Vec<Report> = Vec::new();

        if head.starts_with(b"QED\0") {
            problems.push(Unsafe::UnsupportedFormat("qed".into()));
        }
        if head.starts_with(b"LUKS\xba\xbe") {
            problems.push(Unsafe::UnsupportedFormat("luks".into()));
        }
        if qcow2::matches(head) {
            hits.push(qcow2::inspect(head, size));
        }
        if vmdk::matches(head) {
            hits.push(vmdk::inspect(head, &tail, size));
        }
        if vdi::matches(head) {
            hits.push(vdi::inspect(head));
        }
        if let Some(walker) = &self.vhdx {
            hits.push(walker.inspect());
        }
        if let Some(report) = vhd::inspect(head, &tail, size) {
            hits.push(report);
        }
        if let Some(report) = iso::inspect(self.iso.data(), size) {
            hits.push(report);
        }

        let (format, virtual_size) = match hits.as_slice() {
            [] => (DiskFormat::Raw, size),
            [only] => (only.format, only.virtual_size),
            [first, ..] => {
                problems.push(Unsafe::MultipleFormats(
                    hits.iter().map(|r| r.format).collect(),
                ));
                (first.format, first.virtual_size)
            }
        };
        for report in hits {
            for p in report.problems {
                if !problems.contains(&p) {
                    problems.push(p);
                }
            }
        }
        Inspection {
            format,
            virtual_size,
            size,
            problems,
        }
    }
}

/// What one format module concluded about the stream.
#[derive(Debug, Clone)]
struct Report {
    format: DiskFormat,
    virtual_size: u64,
    problems: Vec<Unsafe>,
}

impl Report {
    fn new(format: DiskFormat, virtual_size: u64) -> Self {
        Self {
            format,
            virtual_size,
            problems: Vec::new(),
        }
    }

    /// The signature is there but the header is unusable.
    fn malformed(format: DiskFormat, why: impl Into<String>) -> Self {
        Self {
            format,
            virtual_size: 0,
            problems: vec![Unsafe::Malformed(why.into())],
        }
    }

    fn flag(&mut self, problem: Unsafe) {
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }
}

/// Fixed-size slice at `off`, if the buffer is long enough.
fn bytes<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    buf.get(off..end)?.try_into().ok()
}

fn be_u32(buf: &[u8], off: usize) -> Option<u32> {
    bytes(buf, off).map(u32::from_be_bytes)
}

fn be_u64(buf: &[u8], off: usize) -> Option<u64> {
    bytes(buf, off).map(u64::from_be_bytes)
}

fn le_u16(buf: &[u8], off: usize) -> Option<u16> {
    bytes(buf, off).map(u16::from_le_bytes)
}

fn le_u32(buf: &[u8], off: usize) -> Option<u32> {
    bytes(buf, off).map(u32::from_le_bytes)
}

fn le_u64(buf: &[u8], off: usize) -> Option<u64> {
    bytes(buf, off).map(u64::from_le_bytes)
}

/// Attacker-controlled text made safe for an error message: printable ASCII
/// only, at most 64 characters.
fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

fn be_u16(buf: &[u8], off: usize) -> Option<u16> {
    bytes(buf, off).map(u16::from_be_bytes)
}
