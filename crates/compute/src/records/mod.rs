//! The compute domain's SQL. Tables are read and written here and nowhere else in
//! the crate; the rest of the crate calls these functions with typed values and
//! only passes connections and transactions through ([`acquire`],
//! `Db::begin_write`).
//!
//! Hot reads (server lists and shows) go through `Db::fold` with positional
//! columns, so a list decodes only what its view shows.

pub(crate) mod actions;
pub(crate) mod consoles;
pub(crate) mod flavors;
pub(crate) mod groups;
pub(crate) mod hosts;
pub(crate) mod keypairs;
pub(crate) mod quotas;
pub(crate) mod servers;

use sqlx::any::AnyQueryResult;
use sqlx::pool::PoolConnection;

use ferrostack_core::db::{Db, is_unique_violation};

use crate::error::Result;

/// A connection the records functions run on (a pooled one, or a transaction's).
pub(crate) type Conn = sqlx::AnyConnection;

/// A pooled connection for a sequence of reads outside a transaction.
pub(crate) async fn acquire(db: &Db) -> Result<PoolConnection<sqlx::Any>> {
    Ok(db.pool().acquire().await?)
}

/// The outcome of an INSERT into a table with a unique key: false when the key
/// is taken.
fn inserted(r: std::result::Result<AnyQueryResult, sqlx::Error>) -> Result<bool> {
    match r {
        Err(e) if is_unique_violation(&e) => Ok(false),
        r => {
            r?;
            Ok(true)
        }
    }
}
