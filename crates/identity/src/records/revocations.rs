//! The `revocation_events` table: Keystone's revocation events, kept until no token
//! they could match can still validate.

use sqlx::Row;

use ferrostack_core::Db;
use ferrostack_core::ids::new_hex_id;
use ferrostack_core::time::unix_now;

use super::{DbResult, Tx};
use crate::revoke::RevocationEvent;

/// Stores an event, revoked now.
pub(crate) async fn insert(tx: &mut Tx, e: &RevocationEvent) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO revocation_events (id, audit_id, audit_chain_id, user_id, project_id, \
         domain_id, issued_before_us, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_hex_id())
    .bind(e.audit_id.clone())
    .bind(e.audit_chain_id.clone())
    .bind(e.user_id.clone())
    .bind(e.project_id.clone())
    .bind(e.domain_id.clone())
    .bind(e.issued_before_us)
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Drops the events revoked before `horizon` (Unix seconds).
pub(crate) async fn purge_before(db: &Db, horizon: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM revocation_events WHERE revoked_at < $1")
        .bind(horizon)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(crate) async fn all(db: &Db) -> DbResult<Vec<RevocationEvent>> {
    let rows = sqlx::query(
        "SELECT audit_id, audit_chain_id, user_id, project_id, domain_id, issued_before_us \
         FROM revocation_events",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RevocationEvent {
                audit_id: r.try_get("audit_id")?,
                audit_chain_id: r.try_get("audit_chain_id")?,
                user_id: r.try_get("user_id")?,
                project_id: r.try_get("project_id")?,
                domain_id: r.try_get("domain_id")?,
                issued_before_us: r.try_get("issued_before_us")?,
            })
        })
        .collect()
}
