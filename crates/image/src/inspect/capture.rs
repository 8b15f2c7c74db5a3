//! Byte-range capture for the streaming inspector: [`Region`] collects one
//! contiguous window of the stream at a known offset, [`Tail`] remembers the
//! last bytes of the stream (where VHD and streamOptimized VMDK keep footers).
//!
//! Both are fed every chunk with its absolute start offset and copy only the
//! bytes they want, so memory stays bounded by the window sizes.

/// A contiguous window `[offset, offset + want)` of the stream.
///
/// Capturing is idempotent: feeding the same chunk twice copies nothing new,
/// which lets the inspector grow `want` (or add regions) after looking at a
/// chunk and then present that same chunk again.
#[derive(Debug, Clone)]
pub(super) struct Region {
    offset: u64,
    want: usize,
    data: Vec<u8>,
    /// The stream moved past bytes this region still needed (the region was
    /// created, or grown, too late). It can never complete.
    missed: bool,
}

impl Region {
    pub(super) fn new(offset: u64, want: usize) -> Self {
        Self {
            offset,
            want,
            data: Vec::new(),
            missed: false,
        }
    }

    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.data
    }

    pub(super) fn complete(&self) -> bool {
        self.data.len() >= self.want
    }

    /// Raise the wanted length (never shrinks).
    pub(super) fn grow_to(&mut self, want: usize) {
        self.want = self.want.max(want);
    }

    /// Absolute stream offset of the next byte this region needs, or `None`
    /// when it needs nothing more.
    pub(super) fn next_needed(&self) -> Option<u64> {
        if self.complete() || self.missed {
            None
        } else {
            Some(self.offset.saturating_add(self.data.len() as u64))
        }
    }

    /// Offer the chunk that starts at absolute offset `start`.
    pub(super) fn capture(&mut self, start: u64, chunk: &[u8]) {
        let Some(next) = self.next_needed() else {
            return;
        };
        let end = start.saturating_add(chunk.len() as u64);
        if next >= end {
            return;
        }
        if next < start {
            // Bytes between `next` and `start` went by without us.
            self.missed = true;
            return;
        }
        // `next - start < chunk.len()`, so this fits in usize.
        let from = usize::try_from(next - start).unwrap_or(usize::MAX);
        let Some(avail) = chunk.get(from..) else {
            return;
        };
        let take = avail.len().min(self.want - self.data.len());
        self.data.extend_from_slice(&avail[..take]);
    }
}

/// Ring buffer holding the last `TAIL_LEN` bytes of the stream.
#[derive(Debug, Clone)]
pub(super) struct Tail {
    buf: Box<[u8; TAIL_LEN]>,
    /// Index in `buf` where the next byte goes (== oldest byte once full).
    head: usize,
    /// Bytes stored so far, saturating at `TAIL_LEN`.
    len: usize,
}

/// Enough for a VHD footer (512) and a streamOptimized VMDK footer header,
/// which sits just before the 512-byte end-of-stream marker.
pub(super) const TAIL_LEN: usize = 1024;

impl Tail {
    pub(super) fn new() -> Self {
        Self {
            buf: Box::new([0; TAIL_LEN]),
            head: 0,
            len: 0,
        }
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_LEN {
            let last = &chunk[chunk.len() - TAIL_LEN..];
            self.buf.copy_from_slice(last);
            self.head = 0;
            self.len = TAIL_LEN;
            return;
        }
        // Short chunk: write it at `head`, wrapping at most once.
        let first = chunk.len().min(TAIL_LEN - self.head);
        self.buf[self.head..self.head + first].copy_from_slice(&chunk[..first]);
        let rest = &chunk[first..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.head = (self.head + chunk.len()) % TAIL_LEN;
        self.len = (self.len + chunk.len()).min(TAIL_LEN);
    }

    /// The stored bytes in stream order (at most `TAIL_LEN`).
    pub(super) fn to_vec(&self) -> Vec<u8> {
        if self.len < TAIL_LEN {
            // Never wrapped yet: the data starts at index 0.
            self.buf[..self.len].to_vec()
        } else {
            let mut out = Vec::with_capacity(TAIL_LEN);
            out.extend_from_slice(&self.buf[self.head..]);
            out.extend_from_slice(&self.buf[..self.head]);
            out
        }
    }
}
