//! The image data store seam: where Glance image bytes live.
//!
//! Owns the [`ImageStore`] trait, its error type and the image-id rule shared by all
//! back ends. Callers (the `/v2/images/{id}/file` handlers) see only a [`ByteStream`]
//! going in, an opaque `location` string coming out, and a [`ByteStream`] coming back;
//! hashing, size caps and format inspection are done by the caller on the stream
//! before it reaches [`ImageStore::put`] (see `crate::hash::tee`).
//!
//! Why this fits other back ends without changing callers:
//! * S3 (`object_store`): `put` buffers the stream into parts (>= 5 MiB) and drives a
//!   multipart upload; completing it is the "visible only when durable" step, and a
//!   drop guard aborts the multipart upload. `get` is a ranged GET, `delete` a DELETE,
//!   `recover` aborts stale multipart uploads and lists objects against `keep`.
//!   Location: `s3://bucket/prefix/<id>`.
//! * Ceph RBD: `put` creates an RBD image, writes at increasing offsets, then
//!   snapshots and protects it (Glance's `rbd://fsid/pool/image/snap` location);
//!   a failed or dropped put removes the RBD image. `get` reads at offsets.
//!
//! The location string carries the scheme ([`ImageStore::scheme`]), so a registry of
//! stores can dispatch `get`/`delete` for images written by an older configuration.

pub mod fs;

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use fs::FilesystemStore;

/// A stream of image bytes, in and out of a store.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// Longest accepted image id (a file name component on most file systems).
pub const MAX_ID_LEN: usize = 255;

/// What a successful [`ImageStore::put`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// Where the data is, e.g. `file:///var/lib/ferrostack/images/<id>`.
    pub location: String,
    /// Number of bytes stored.
    pub size: u64,
}

/// What [`ImageStore::recover`] cleaned up at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Partial uploads (left by a crash) removed.
    pub partial_removed: usize,
    /// Complete objects removed because no image references them.
    pub unreferenced_removed: usize,
    /// Complete objects kept.
    pub kept: usize,
}

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The id is not a plain file name of `[A-Za-z0-9_-]` (path traversal guard).
    #[error("invalid image id {0:?}")]
    InvalidId(String),
    /// The location does not belong to this store (wrong scheme or directory).
    #[error("location {0:?} does not belong to this store")]
    InvalidLocation(String),
    /// Nothing is stored at this location.
    #[error("no image data at {0}")]
    NotFound(String),
    /// Data for this id was already stored; image data is immutable.
    #[error("image data for {0} already exists")]
    AlreadyExists(String),
    /// The requested range is not within the stored object.
    #[error("range {start}..{end} is outside the {size} bytes stored")]
    InvalidRange { start: u64, end: u64, size: u64 },
    /// The input stream failed (client gone, size cap, inspector veto, ...).
    #[error("upload source failed")]
    Source(#[source] io::Error),
    /// A store-side I/O operation failed.
    #[error("{op} failed on {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[async_trait]
pub trait ImageStore: Send + Sync {
    /// The location scheme this store writes and reads, e.g. `"file"`.
    fn scheme(&self) -> &'static str;

    /// Streams `data` into the store under `id`. Nothing is visible under the final
    /// name until the stream ended successfully and the bytes are durable. If the
    /// stream yields an error ([`StoreError::Source`]), or the future is dropped
    /// (client disconnect), the partial bytes are removed. Stored data is immutable:
    /// a second put for the same id fails with [`StoreError::AlreadyExists`].
    async fn put(&self, id: &str, data: ByteStream) -> Result<StoredImage, StoreError>;

    /// Streams the object back; `range` is a byte range within the size, already
    /// validated by the caller (the store re-checks it: [`StoreError::InvalidRange`]).
    async fn get(
        &self,
        location: &str,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, StoreError>;

    /// [`get`](Self::get) for bytes that go straight into a socket write, so only the
    /// kernel's copy ever reads them (the download handler's body, which hyper
    /// `writev`s). A store may then hand out memory it maps instead of reading into
    /// buffers: the filesystem store does (no read copy; a file cut short under it
    /// fails the write with `EFAULT` instead of a `SIGBUS` in process code).
    /// Anything the process itself reads (hashing, copying to a file) uses `get`.
    /// The default is `get`.
    async fn get_for_socket(
        &self,
        location: &str,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, StoreError> {
        self.get(location, range).await
    }

    /// The object's file on this host, for a store that keeps objects as plain
    /// immutable files (the host's image cache links it instead of copying).
    /// `None` (the default) for stores that do not.
    fn local_path(&self, _location: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// Removes the object. Idempotent: an absent object is `Ok(())`, so deleting an
    /// image whose data is already gone succeeds.
    async fn delete(&self, location: &str) -> Result<(), StoreError>;

    /// Start-up cleanup: removes partial uploads and the objects whose id `keep`
    /// rejects. Must not run concurrently with `put`s. (The explicit `for<'k>` keeps
    /// `async_trait` from tying the argument's lifetime to the call.)
    async fn recover(
        &self,
        keep: &(dyn for<'k> Fn(&'k str) -> bool + Send + Sync),
    ) -> Result<RecoveryReport, StoreError>;
}

/// Accepts only plain ids of 1..=255 ASCII letters, digits, `-` and `_` (UUIDs pass):
/// no `/`, `.`, `..`, NUL or hidden names, so an id is always one file name inside the
/// store's directory.
pub fn validate_id(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        validate_id("0f6c3b3e-5d2a-4c1e-9a57-2f1b8f0f2c11").unwrap();
        validate_id("abc_DEF-1").unwrap();
        for bad in [
            "", ".", "..", "../x", "a/b", "/abs", ".partial", "a\0b", "a.b", "a b", "é",
        ] {
            assert!(
                matches!(validate_id(bad), Err(StoreError::InvalidId(_))),
                "{bad:?}"
            );
        }
        assert!(validate_id(&"a".repeat(256)).is_err());
        validate_id(&"a".repeat(255)).unwrap();
    }
}
