//! The `application_credentials` table. Roles are stored as a JSON list of role ids,
//! the secret only as its hash; expiry in seconds (`expires_at`) and, since
//! migration 1000002, microseconds (`expires_at_us`).

use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::Db;
use ferrostack_core::db::get_bool;
use ferrostack_core::time::unix_now;

use super::{DbResult, Tx, execute, fetch_optional, to_json};

/// An application credential row; role ids not yet resolved to roles.
pub(crate) struct StoredAppCred {
    pub id: String,
    pub name: String,
    pub description: String,
    pub user_id: String,
    pub project_id: String,
    pub role_ids: Vec<String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Unix microseconds; `expires_at` is the fallback for rows older than the column.
    pub expires_at_us: Option<i64>,
    pub unrestricted: bool,
    pub secret_hash: String,
}

fn from_row(r: &AnyRow) -> DbResult<StoredAppCred> {
    let role_ids = serde_json::from_str(&r.try_get::<String, _>("role_ids")?)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(StoredAppCred {
        role_ids,
        expires_at: r.try_get("expires_at")?,
        expires_at_us: r.try_get("expires_at_us")?,
        description: r.try_get("description")?,
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        user_id: r.try_get("user_id")?,
        project_id: r.try_get("project_id")?,
        unrestricted: get_bool(r, "unrestricted")?,
        secret_hash: r.try_get("secret_hash")?,
    })
}

pub(crate) async fn get(db: &Db, id: &str) -> DbResult<Option<StoredAppCred>> {
    fetch_optional(
        db,
        "SELECT * FROM application_credentials WHERE id = $1",
        &[id],
        from_row,
    )
    .await
}

/// The user's application credentials by name, then id.
pub(crate) async fn of_user(db: &Db, user_id: &str) -> DbResult<Vec<StoredAppCred>> {
    let rows =
        sqlx::query("SELECT * FROM application_credentials WHERE user_id = $1 ORDER BY name, id")
            .bind(user_id)
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(from_row).collect()
}

/// The id of the user's application credential with that name.
pub(crate) async fn id_by_name(db: &Db, user_id: &str, name: &str) -> DbResult<Option<String>> {
    sqlx::query_scalar("SELECT id FROM application_credentials WHERE user_id = $1 AND name = $2")
        .bind(user_id)
        .bind(name)
        .fetch_optional(db.pool())
        .await
}

/// The columns of a new application credential.
pub(crate) struct NewAppCred<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub user_id: &'a str,
    pub project_id: &'a str,
    pub description: &'a str,
    pub secret_hash: String,
    /// Unix microseconds.
    pub expires_at_us: Option<i64>,
    pub unrestricted: bool,
    pub role_ids: Vec<&'a str>,
}

/// A new application credential; a taken name fails with a unique violation.
pub(crate) async fn insert(tx: &mut Tx, a: NewAppCred<'_>) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO application_credentials (id, name, user_id, project_id, description, \
         secret_hash, expires_at, unrestricted, role_ids, created_at, expires_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(a.id)
    .bind(a.name)
    .bind(a.user_id)
    .bind(a.project_id)
    .bind(a.description)
    .bind(a.secret_hash)
    .bind(a.expires_at_us.map(|us| us.div_euclid(1_000_000)))
    .bind(a.unrestricted)
    .bind(to_json(&a.role_ids)?)
    .bind(unix_now())
    .bind(a.expires_at_us)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn delete(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(
        tx,
        &["DELETE FROM application_credentials WHERE id = $1"],
        &[id],
    )
    .await?;
    Ok(())
}
