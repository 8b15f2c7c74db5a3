//! The `roles` and `implied_roles` tables.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::Db;
use ferrostack_core::db::get_bool;
use ferrostack_core::time::unix_now;

use super::{DbResult, Tx, execute, fetch_all, fetch_optional, parse_json_map, to_json};
use crate::fields::Extra;
use crate::model::Role;

pub(super) fn from_row(r: &AnyRow) -> DbResult<Role> {
    let domain_id: String = r.try_get("domain_id")?;
    let description: String = r.try_get("description")?;
    let mut options = Map::new();
    if get_bool(r, "immutable")? {
        options.insert("immutable".into(), Value::Bool(true));
    }
    Ok(Role {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        domain_id: (!domain_id.is_empty()).then_some(domain_id),
        description: (!description.is_empty()).then_some(description),
        options,
        extra: parse_json_map(&r.try_get::<String, _>("extra")?),
    })
}

pub(crate) async fn get(db: &Db, id: &str) -> DbResult<Option<Role>> {
    fetch_optional(db, "SELECT * FROM roles WHERE id = $1", &[id], from_row).await
}

/// The global (not domain-specific) role with that name.
pub(crate) async fn global_by_name(db: &Db, name: &str) -> DbResult<Option<Role>> {
    fetch_optional(
        db,
        "SELECT * FROM roles WHERE name = $1 AND domain_id = ''",
        &[name],
        from_row,
    )
    .await
}

/// The roles of a domain, or the global roles for `None`, by name.
pub(crate) async fn list(db: &Db, domain_id: Option<&str>) -> DbResult<Vec<Role>> {
    let rows = match domain_id {
        Some(d) => {
            sqlx::query("SELECT * FROM roles WHERE domain_id = $1 ORDER BY name, id")
                .bind(d)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query("SELECT * FROM roles WHERE domain_id = '' ORDER BY name, id")
                .fetch_all(db.pool())
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// Every role, in no particular order.
pub(crate) async fn all(db: &Db) -> DbResult<Vec<Role>> {
    fetch_all(db, "SELECT * FROM roles", &[], from_row).await
}

/// A new role row (`domain_id` empty for a global role); a taken name fails with a
/// unique violation.
pub(crate) async fn insert(
    tx: &mut Tx,
    id: &str,
    name: &str,
    domain_id: &str,
    description: &str,
    immutable: bool,
    extra: &Extra,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO roles (id, name, domain_id, description, immutable, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(name)
    .bind(domain_id)
    .bind(description)
    .bind(immutable)
    .bind(to_json(extra)?)
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the role's mutable columns.
pub(crate) async fn update(tx: &mut Tx, r: &Role, immutable: bool) -> DbResult<()> {
    sqlx::query(
        "UPDATE roles SET name = $1, description = $2, immutable = $3, extra = $4 WHERE id = $5",
    )
    .bind(&r.name)
    .bind(r.description.clone().unwrap_or_default())
    .bind(immutable)
    .bind(to_json(&r.extra)?)
    .bind(&r.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the role with its assignments and implications.
pub(crate) async fn delete(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(
        tx,
        &[
            "DELETE FROM assignments WHERE role_id = $1",
            "DELETE FROM implied_roles WHERE prior_role_id = $1 OR implied_role_id = $1",
            "DELETE FROM roles WHERE id = $1",
        ],
        &[id],
    )
    .await?;
    Ok(())
}

/// Every implication as (prior role id, implied role id).
pub(crate) async fn implications(db: &Db) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT prior_role_id, implied_role_id FROM implied_roles")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("prior_role_id")?, r.try_get("implied_role_id")?)))
        .collect()
}

/// `prior` implies `implied` (already so: unchanged).
pub(crate) async fn insert_implication(tx: &mut Tx, prior: &str, implied: &str) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(prior)
    .bind(implied)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes an implication; false when there was none.
pub(crate) async fn delete_implication(tx: &mut Tx, prior: &str, implied: &str) -> DbResult<bool> {
    let n =
        sqlx::query("DELETE FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2")
            .bind(prior)
            .bind(implied)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok(n > 0)
}
