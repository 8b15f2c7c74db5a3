//! The `users` table: the account, its password hash and its failed-login count.

use std::ops::ControlFlow;

use serde_json::Map;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use ferrostack_core::Db;
use ferrostack_core::db::{Cols, DbError, Param};
use ferrostack_core::time::unix_now;

use super::{DbResult, Tx, execute, parse_json_map, to_json};
use crate::error::Result;
use crate::fields::Extra;
use crate::model::User;

/// The columns [`decode`] reads, in its order.
const COLUMNS: &str = "id, name, domain_id, enabled, default_project_id, extra, password_hash, \
     failed_auth_count, failed_auth_at";

/// A row of [`COLUMNS`], by position.
fn decode(r: &dyn Cols) -> Result<User, DbError> {
    Ok(User {
        id: r.text(0)?.to_owned(),
        name: r.text(1)?.to_owned(),
        domain_id: r.text(2)?.to_owned(),
        enabled: r.flag(3)?,
        default_project_id: r.opt_text(4)?.map(str::to_owned),
        password_expires_at: None,
        options: Map::new(),
        extra: parse_json_map(r.text(5)?),
        password_hash: r.opt_text(6)?.map(str::to_owned),
        failed_auth_count: r.int(7)?,
        failed_auth_at: r.opt_int(8)?,
    })
}

/// A row of [`COLUMNS`] read through sqlx.
fn from_row(r: &AnyRow) -> DbResult<User> {
    decode(r).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The one user `sql` (selecting [`COLUMNS`]) finds with `binds` as `$1, $2, ...`.
async fn fetch_one_user(db: &Db, sql: String, binds: &[&str]) -> Result<Option<User>> {
    let params = binds.iter().map(|b| Param::Text((*b).to_owned())).collect();
    db.fold(
        sql,
        params,
        None,
        |found: &mut Option<User>, r: &dyn Cols| {
            *found = Some(decode(r)?);
            Ok(ControlFlow::Break(()))
        },
    )
    .await
}

pub(crate) async fn get(db: &Db, id: &str) -> Result<Option<User>> {
    fetch_one_user(
        db,
        format!("SELECT {COLUMNS} FROM users WHERE id = $1"),
        &[id],
    )
    .await
}

pub(crate) async fn by_name(db: &Db, name: &str, domain_id: &str) -> Result<Option<User>> {
    fetch_one_user(
        db,
        format!("SELECT {COLUMNS} FROM users WHERE name = $1 AND domain_id = $2"),
        &[name, domain_id],
    )
    .await
}

/// All users by name, then id.
pub(crate) async fn list(db: &Db) -> DbResult<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY name, id");
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// The group's members, by name.
pub(crate) async fn in_group(db: &Db, group_id: &str) -> DbResult<Vec<User>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE id IN \
         (SELECT user_id FROM group_members WHERE group_id = $1) ORDER BY name, id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(group_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// The columns of a new user row.
pub(crate) struct NewUser<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub domain_id: &'a str,
    pub enabled: bool,
    pub password_hash: Option<String>,
    pub default_project_id: Option<String>,
    pub extra: &'a Extra,
}

/// A new user row; a taken name in the domain fails with a unique violation.
pub(crate) async fn insert(tx: &mut Tx, u: NewUser<'_>) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO users (id, name, domain_id, enabled, password_hash, default_project_id, \
         extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(u.id)
    .bind(u.name)
    .bind(u.domain_id)
    .bind(u.enabled)
    .bind(u.password_hash)
    .bind(u.default_project_id)
    .bind(to_json(u.extra)?)
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the user's mutable columns with `password_hash`; the failed-login count
/// starts again when `reset_failures`.
pub(crate) async fn update(
    tx: &mut Tx,
    u: &User,
    password_hash: Option<String>,
    reset_failures: bool,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET name = $1, enabled = $2, default_project_id = $3, extra = $4, \
         password_hash = $5, failed_auth_count = CASE WHEN $6 THEN 0 ELSE failed_auth_count END \
         WHERE id = $7",
    )
    .bind(&u.name)
    .bind(u.enabled)
    .bind(u.default_project_id.clone())
    .bind(to_json(&u.extra)?)
    .bind(password_hash)
    .bind(reset_failures)
    .bind(&u.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the user and its assignments.
pub(crate) async fn delete(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(
        tx,
        &[
            "DELETE FROM assignments WHERE actor_type = 'user' AND actor_id = $1",
            "DELETE FROM users WHERE id = $1",
        ],
        &[id],
    )
    .await?;
    Ok(())
}

/// A new password; the failed-login count starts again.
pub(crate) async fn set_password(tx: &mut Tx, id: &str, hash: Option<String>) -> DbResult<()> {
    sqlx::query("UPDATE users SET password_hash = $1, failed_auth_count = 0 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A new password for an account that is enabled as well (the bootstrap's admin).
pub(crate) async fn set_password_and_enable(
    tx: &mut Tx,
    id: &str,
    hash: Option<String>,
) -> DbResult<()> {
    sqlx::query("UPDATE users SET password_hash = $1, enabled = $2 WHERE id = $3")
        .bind(hash)
        .bind(true)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A successful login clears the failed-login count.
pub(crate) async fn clear_failures(db: &Db, id: &str) -> DbResult<()> {
    sqlx::query("UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Counts a failed login at `now`; `restart` makes it the first of a new count.
pub(crate) async fn record_failure(db: &Db, id: &str, restart: bool, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET failed_auth_count = CASE WHEN $1 THEN 1 ELSE failed_auth_count + 1 END, \
         failed_auth_at = $2 WHERE id = $3",
    )
    .bind(restart)
    .bind(now)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}
