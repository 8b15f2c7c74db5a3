//! The compute domain's SQL. Tables are read and written here and nowhere else in
//! the crate (moving in file by file: servers first); the rest of the crate calls
//! these functions with typed values.
//!
//! Hot reads (server lists and shows) go through `Db::fold` with positional
//! columns, so a list decodes only what its view shows.

pub(crate) mod servers;
