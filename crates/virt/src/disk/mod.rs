//! Instance disks on a host: the typed `qemu-img` wrapper ([`qemu_img`]), the image
//! cache under `instances/_base` ([`cache`]), per-instance disks — overlay or flat
//! root, ephemeral, swap, `disk.info` ([`layout`]) — and LUKS encryption with wrapped
//! per-disk keys ([`crypt`]). [`ImageSource`] is how the cache reaches the image
//! service without knowing it.

pub mod cache;
pub mod crypt;
pub mod layout;
pub mod qemu_img;

use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// An image record as the host needs it to fetch and verify the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceImage {
    pub id: String,
    /// Glance `status`; only `active` images can be fetched.
    pub status: String,
    /// Glance `disk_format` (`raw`, `qcow2`, ...).
    pub disk_format: Option<String>,
    pub size: Option<u64>,
    /// md5 hex (`checksum`).
    pub checksum: Option<String>,
    /// `os_hash_algo` (e.g. `sha512`) and `os_hash_value` (hex).
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
}

pub type ByteStream =
    Pin<Box<dyn futures_core::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static>>;

/// Where image bytes come from (the image service, in-process today).
#[async_trait]
pub trait ImageSource: Send + Sync {
    async fn describe(&self, image_id: &str) -> std::io::Result<SourceImage>;
    async fn open(&self, image_id: &str) -> std::io::Result<ByteStream>;
    /// The image's bytes as a file on this host, when the image store keeps them in
    /// one: immutable, written and hashed once by the upload that made the record.
    /// The cache hard-links it instead of copying when it can. `None` (the default):
    /// only the stream.
    async fn local_file(&self, _image_id: &str) -> std::io::Result<Option<PathBuf>> {
        Ok(None)
    }
}

/// What went wrong on the disk side: what was attempted, on which path, and why.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{what} of {path}: qemu-img failed ({status}): {stderr}")]
    Tool {
        what: &'static str,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{what} of {path}: qemu-img did not finish within {secs} s")]
    Timeout {
        what: &'static str,
        path: PathBuf,
        secs: u64,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image {image}: {message}")]
    Image { image: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("disk key: {0}")]
    Key(String),
}

impl DiskError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> DiskError {
        let path = path.into();
        move |source| DiskError::Io { what, path, source }
    }
}

pub type Result<T> = std::result::Result<T, DiskError>;

#[cfg(test)]
mod tests;
