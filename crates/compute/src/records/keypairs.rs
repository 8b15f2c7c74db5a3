//! The `key_pairs` table.

use sqlx::{AnyConnection, Row};

use crate::error::Result;
use crate::keypairs::KeyPair;

const COLUMNS: &str = "id, user_id, name, key_type, public_key, fingerprint, created_at_us";

fn from_row(r: &sqlx::any::AnyRow) -> Result<KeyPair> {
    Ok(KeyPair {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        key_type: r.try_get("key_type")?,
        public_key: r.try_get("public_key")?,
        fingerprint: r.try_get("fingerprint")?,
        created_at_us: r.try_get("created_at_us")?,
    })
}

pub async fn load(conn: &mut AnyConnection, user_id: &str, name: &str) -> Result<Option<KeyPair>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM key_pairs WHERE user_id = $1 AND name = $2"
    )))
    .bind(user_id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// How many key pairs a user has.
pub async fn count(conn: &mut AnyConnection, user_id: &str) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM key_pairs WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?,
    )
}

/// The highest id given to a key pair so far (0 when none).
pub async fn max_id(conn: &mut AnyConnection) -> Result<i64> {
    Ok(
        sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS m FROM key_pairs")
            .fetch_one(&mut *conn)
            .await?
            .try_get::<i64, _>("m")?,
    )
}

/// Inserts a key pair; false when the user already has one of that name.
pub async fn insert(conn: &mut AnyConnection, kp: &KeyPair) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO key_pairs (user_id, name, id, key_type, public_key, fingerprint, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&kp.user_id)
    .bind(&kp.name)
    .bind(kp.id)
    .bind(&kp.key_type)
    .bind(&kp.public_key)
    .bind(&kp.fingerprint)
    .bind(kp.created_at_us)
    .execute(&mut *conn)
    .await;
    super::inserted(r)
}

/// Up to `limit` of a user's key pairs with an id above `after`, by id.
pub async fn list_after(
    conn: &mut AnyConnection,
    user_id: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<KeyPair>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM key_pairs WHERE user_id = $1 AND id > $2 ORDER BY id"
    )))
    .bind(user_id)
    .bind(after)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().take(limit).map(from_row).collect()
}

/// Deletes a user's key pair; how many rows went.
pub async fn delete(conn: &mut AnyConnection, user_id: &str, name: &str) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM key_pairs WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(name)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}
