//! The identity domain's SQL. Every table of the crate is read and written here and
//! nowhere else; the rest of the crate calls these functions with typed values and
//! gets model types back. No policy, no validation: rows in, rows out.
//!
//! Reads take the [`Db`](ferrostack_core::Db); writes take the caller's [`Tx`] (from
//! `Db::begin_write`), which the caller hands to `Identity::commit` with the
//! revocation events of the change.

pub(crate) mod appcreds;
pub(crate) mod assignments;
pub(crate) mod catalog;
pub(crate) mod credentials;
pub(crate) mod domains;
pub(crate) mod groups;
pub(crate) mod projects;
pub(crate) mod revocations;
pub(crate) mod roles;
pub(crate) mod token;
pub(crate) mod users;

use crate::error::Error;
use crate::fields::Extra;

/// A write transaction (`Db::begin_write`).
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The result of a records function; `?` turns its error into [`Error::Internal`].
pub(crate) type DbResult<T> = Result<T, sqlx::Error>;

/// Maps a unique-constraint violation to Keystone's 409; anything else is internal.
pub(crate) fn dup(kind: &str, detail: impl std::fmt::Display) -> impl FnOnce(sqlx::Error) -> Error {
    let detail = detail.to_string();
    let kind = kind.to_string();
    move |e| {
        if ferrostack_core::db::is_unique_violation(&e) {
            Error::duplicate(&kind, detail)
        } else {
            Error::internal(e)
        }
    }
}

/// Serialises a value for a JSON column (`extra`, `tags`, `role_ids`).
fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> DbResult<String> {
    serde_json::to_string(v).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// An `extra` column; unreadable JSON reads as empty, as it always has.
fn parse_json_map(s: &str) -> Extra {
    serde_json::from_str(s).unwrap_or_default()
}

/// A `tags` column; unreadable JSON reads as empty.
fn parse_json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// Decodes one row of a table into its model type.
type Decode<T> = fn(&sqlx::any::AnyRow) -> DbResult<T>;

/// The row `sql` finds with `binds` as `$1, $2, ...`, decoded.
async fn fetch_optional<T>(
    db: &ferrostack_core::Db,
    sql: &'static str,
    binds: &[&str],
    decode: Decode<T>,
) -> DbResult<Option<T>> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    let row = q.fetch_optional(db.pool()).await?;
    row.as_ref().map(decode).transpose()
}

/// Every row `sql` finds with `binds` as `$1, $2, ...`, decoded, in the query's order.
async fn fetch_all<T>(
    db: &ferrostack_core::Db,
    sql: &'static str,
    binds: &[&str],
    decode: Decode<T>,
) -> DbResult<Vec<T>> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(db.pool()).await?.iter().map(decode).collect()
}

/// Runs each statement with `binds` as `$1, $2, ...`; the rows the last one changed.
async fn execute(tx: &mut Tx, stmts: &[&'static str], binds: &[&str]) -> DbResult<u64> {
    let mut changed = 0;
    for sql in stmts {
        let mut q = sqlx::query(*sql);
        for b in binds {
            q = q.bind(*b);
        }
        changed = q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(changed)
}
