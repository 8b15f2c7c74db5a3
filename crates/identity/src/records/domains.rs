//! The `domains` table (and the cascade that deletes a domain with everything in it).

use serde_json::Map;
use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::Db;
use ferrostack_core::db::get_bool;
use ferrostack_core::time::unix_now;

use super::{DbResult, Tx, fetch_all, fetch_optional, parse_json_list, parse_json_map, to_json};
use crate::model::Domain;

fn from_row(r: &AnyRow) -> DbResult<Domain> {
    Ok(Domain {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        enabled: get_bool(r, "enabled")?,
        tags: parse_json_list(&r.try_get::<String, _>("tags")?),
        options: Map::new(),
        extra: parse_json_map(&r.try_get::<String, _>("extra")?),
    })
}

pub(crate) async fn get(db: &Db, id: &str) -> DbResult<Option<Domain>> {
    fetch_optional(db, "SELECT * FROM domains WHERE id = $1", &[id], from_row).await
}

pub(crate) async fn by_name(db: &Db, name: &str) -> DbResult<Option<Domain>> {
    fetch_optional(
        db,
        "SELECT * FROM domains WHERE name = $1",
        &[name],
        from_row,
    )
    .await
}

/// All domains by name, then id.
pub(crate) async fn list(db: &Db) -> DbResult<Vec<Domain>> {
    fetch_all(db, "SELECT * FROM domains ORDER BY name, id", &[], from_row).await
}

/// All domains, in no particular order.
pub(crate) async fn all(db: &Db) -> DbResult<Vec<Domain>> {
    fetch_all(db, "SELECT * FROM domains", &[], from_row).await
}

/// A new domain row; a taken name fails with a unique violation.
pub(crate) async fn insert(tx: &mut Tx, d: &Domain) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO domains (id, name, description, enabled, tags, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(d.enabled)
    .bind(to_json(&d.tags)?)
    .bind(to_json(&d.extra)?)
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the domain's mutable columns.
pub(crate) async fn update(tx: &mut Tx, d: &Domain) -> DbResult<()> {
    sqlx::query(
        "UPDATE domains SET name = $1, description = $2, enabled = $3, tags = $4, extra = $5 \
         WHERE id = $6",
    )
    .bind(&d.name)
    .bind(&d.description)
    .bind(d.enabled)
    .bind(to_json(&d.tags)?)
    .bind(to_json(&d.extra)?)
    .bind(&d.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the domain with its projects, users, groups, domain roles and every
/// assignment on or to them.
pub(crate) async fn delete_with_contents(tx: &mut Tx, id: &str) -> DbResult<()> {
    let stmts = [
        "DELETE FROM assignments WHERE target_type = 'project' AND target_id IN \
         (SELECT id FROM projects WHERE domain_id = $1)",
        "DELETE FROM assignments WHERE target_type = 'domain' AND target_id = $1",
        "DELETE FROM assignments WHERE actor_type = 'user' AND actor_id IN \
         (SELECT id FROM users WHERE domain_id = $1)",
        "DELETE FROM assignments WHERE actor_type = 'group' AND actor_id IN \
         (SELECT id FROM identity_groups WHERE domain_id = $1)",
        "DELETE FROM users WHERE domain_id = $1",
        "DELETE FROM identity_groups WHERE domain_id = $1",
        "UPDATE projects SET parent_id = NULL WHERE domain_id = $1",
        "DELETE FROM projects WHERE domain_id = $1",
        "DELETE FROM roles WHERE domain_id = $1",
        "DELETE FROM domains WHERE id = $1",
    ];
    for sql in stmts {
        sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    }
    Ok(())
}
