//! The image service domain (Glance v2): image records and their status machine,
//! visibility and members, list filters, JSON-patch updates, quotas; the
//! [`store::ImageStore`] seam where bytes live (filesystem store by default); the
//! upload pipeline that streams bytes to a store while hashing them (md5, sha512)
//! and inspecting their format ([`inspect`]), and downloads with ranges.
//! No HTTP here: the Glance API in `ferrostack-api` calls [`Images`].

pub mod attrs;
pub mod data;
pub mod error;
pub mod hash;
pub mod inspect;
pub mod model;
mod pipe;
pub mod policy;
pub mod query;
mod records;
pub mod service;
pub mod status;
pub mod store;
pub mod tasks;

pub use error::{Error, Result};
pub use model::{Image, Member, MemberStatus, Visibility};
pub use service::{Images, Settings};
pub use status::Status;
