//! Servers: the model (states, the JSON document), request validation, create
//! (quotas, key pair resolution, desired state), lists, and the changes users make
//! (update, delete, metadata, tags, actions).

pub mod actions;
pub mod create;
pub mod model;
pub mod ops;
pub mod page;
pub mod query;
pub mod request;
