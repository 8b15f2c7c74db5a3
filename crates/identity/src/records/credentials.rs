//! The `credentials` table. Blobs are stored sealed (encrypted with the credential
//! keys); sealing and opening is the caller's business, this module moves the
//! sealed text.

use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::Db;
use ferrostack_core::time::unix_now;

use super::{DbResult, Tx, execute, fetch_all, fetch_optional, parse_json_map, to_json};
use crate::fields::Extra;
use crate::model::Credential;

/// A credential row with its blob still sealed.
pub(crate) struct SealedCredential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub kind: String,
    pub sealed_blob: String,
    pub extra: Extra,
}

fn from_row(r: &AnyRow) -> DbResult<SealedCredential> {
    Ok(SealedCredential {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        project_id: r.try_get("project_id")?,
        kind: r.try_get("type")?,
        sealed_blob: r.try_get("encrypted_blob")?,
        extra: parse_json_map(&r.try_get::<String, _>("extra")?),
    })
}

pub(crate) async fn get(db: &Db, id: &str) -> DbResult<Option<SealedCredential>> {
    fetch_optional(
        db,
        "SELECT * FROM credentials WHERE id = $1",
        &[id],
        from_row,
    )
    .await
}

/// All credentials by id.
pub(crate) async fn list(db: &Db) -> DbResult<Vec<SealedCredential>> {
    fetch_all(db, "SELECT * FROM credentials ORDER BY id", &[], from_row).await
}

/// The user's `ec2` credentials by id.
pub(crate) async fn ec2_of_user(db: &Db, user_id: &str) -> DbResult<Vec<SealedCredential>> {
    let rows =
        sqlx::query("SELECT * FROM credentials WHERE user_id = $1 AND type = 'ec2' ORDER BY id")
            .bind(user_id)
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(from_row).collect()
}

/// A new credential with its blob sealed as `sealed_blob`; a taken id fails with a
/// unique violation.
pub(crate) async fn insert(tx: &mut Tx, c: &Credential, sealed_blob: &str) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO credentials (id, user_id, project_id, type, encrypted_blob, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.id)
    .bind(&c.user_id)
    .bind(c.project_id.clone())
    .bind(&c.kind)
    .bind(sealed_blob)
    .bind(to_json(&c.extra)?)
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the credential's mutable columns, its blob sealed as `sealed_blob`.
pub(crate) async fn update(tx: &mut Tx, c: &Credential, sealed_blob: &str) -> DbResult<()> {
    sqlx::query(
        "UPDATE credentials SET user_id = $1, project_id = $2, type = $3, encrypted_blob = $4, \
         extra = $5 WHERE id = $6",
    )
    .bind(&c.user_id)
    .bind(c.project_id.clone())
    .bind(&c.kind)
    .bind(sealed_blob)
    .bind(to_json(&c.extra)?)
    .bind(&c.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn delete(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(tx, &["DELETE FROM credentials WHERE id = $1"], &[id]).await?;
    Ok(())
}
