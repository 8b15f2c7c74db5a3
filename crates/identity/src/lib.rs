//! Identity domain: the Keystone v3 model (domains, projects, users, groups, roles,
//! assignments, catalog), token issue/validation/revocation, policy, application and
//! EC2 credentials, and the EC2 request signatures (SigV2/SigV4) other services reuse.
//! Nothing here knows about HTTP: the API crate translates requests into calls on
//! [`Identity`] and maps [`Error`] to Keystone's error bodies.

mod appcred;
mod assignment;
pub mod auth;
pub mod bootstrap;
pub mod catalog;
pub mod credential;
pub mod ec2sig;
pub mod error;
pub mod fields;
pub mod list;
pub mod model;
mod password;
pub mod policy;
mod records;
mod resources;
pub mod revoke;
pub mod service;
pub mod token;

pub use assignment::{AssignmentQuery, Inference, NameEntry, Names};
pub use auth::{Issued, ValidToken};
pub use error::{Error, Result};
pub use list::{ListParams, Page};
pub use service::{Identity, Settings};
