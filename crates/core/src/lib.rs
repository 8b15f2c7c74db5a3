//! Foundations shared by every ferrostack crate: identifiers, the authenticated
//! request context, time helpers, the database handle (SQLite or PostgreSQL behind
//! one pool), on-disk key repositories, crash-safe file writes and the configuration
//! types. Nothing here knows about HTTP or any one service.

pub mod config;
pub mod context;
pub mod db;
pub mod fsutil;
pub mod ids;
pub mod keyrepo;
pub mod time;

pub use context::RequestContext;
pub use db::Db;
