//! The `console_auth_tokens` table: every SQL statement about console tokens.

use sqlx::{AnyConnection, Row};

use crate::error::Result;

/// One stored token (its hash; the token itself is never kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_hash: String,
    pub instance_uuid: String,
    pub console_type: String,
    /// The compute host's name.
    pub host: String,
    /// The console's TCP address and port when it has one.
    pub address: Option<String>,
    pub port: Option<i64>,
    /// The console's unix socket when it is one.
    pub internal_access_path: Option<String>,
    pub access_url_base: String,
    pub created_at_us: i64,
    pub expires_us: i64,
}

pub async fn insert(conn: &mut AnyConnection, t: &TokenRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO console_auth_tokens (token_hash, instance_uuid, console_type, host, \
         address, port, internal_access_path, access_url_base, created_at_us, expires_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&t.token_hash)
    .bind(&t.instance_uuid)
    .bind(&t.console_type)
    .bind(&t.host)
    .bind(t.address.clone())
    .bind(t.port)
    .bind(t.internal_access_path.clone())
    .bind(&t.access_url_base)
    .bind(t.created_at_us)
    .bind(t.expires_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The token with this hash, unless it has expired at `now_us`.
pub async fn live(
    conn: &mut AnyConnection,
    token_hash: &str,
    now_us: i64,
) -> Result<Option<TokenRow>> {
    let row = sqlx::query(
        "SELECT token_hash, instance_uuid, console_type, host, address, port, \
         internal_access_path, access_url_base, created_at_us, expires_us \
         FROM console_auth_tokens WHERE token_hash = $1 AND expires_us > $2",
    )
    .bind(token_hash)
    .bind(now_us)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(TokenRow {
        token_hash: r.try_get("token_hash")?,
        instance_uuid: r.try_get("instance_uuid")?,
        console_type: r.try_get("console_type")?,
        host: r.try_get("host")?,
        address: r.try_get("address")?,
        port: r.try_get("port")?,
        internal_access_path: r.try_get("internal_access_path")?,
        access_url_base: r.try_get("access_url_base")?,
        created_at_us: r.try_get("created_at_us")?,
        expires_us: r.try_get("expires_us")?,
    }))
}

/// Removes every token of a server; how many there were.
pub async fn delete_for_instance(conn: &mut AnyConnection, instance_uuid: &str) -> Result<u64> {
    let r = sqlx::query("DELETE FROM console_auth_tokens WHERE instance_uuid = $1")
        .bind(instance_uuid)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// Removes expired tokens (Nova's periodic `_cleanup_expired_console_auth_tokens`).
pub async fn delete_expired(conn: &mut AnyConnection, now_us: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM console_auth_tokens WHERE expires_us <= $1")
        .bind(now_us)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}
