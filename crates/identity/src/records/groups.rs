//! The `identity_groups` and `group_members` tables.

use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::Db;
use ferrostack_core::time::unix_now;

use super::{DbResult, Tx, execute, fetch_all, fetch_optional, parse_json_map, to_json};
use crate::fields::Extra;
use crate::model::Group;

fn from_row(r: &AnyRow) -> DbResult<Group> {
    Ok(Group {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        domain_id: r.try_get("domain_id")?,
        description: r.try_get("description")?,
        extra: parse_json_map(&r.try_get::<String, _>("extra")?),
    })
}

pub(crate) async fn get(db: &Db, id: &str) -> DbResult<Option<Group>> {
    fetch_optional(
        db,
        "SELECT * FROM identity_groups WHERE id = $1",
        &[id],
        from_row,
    )
    .await
}

/// All groups by name, then id.
pub(crate) async fn list(db: &Db) -> DbResult<Vec<Group>> {
    fetch_all(
        db,
        "SELECT * FROM identity_groups ORDER BY name, id",
        &[],
        from_row,
    )
    .await
}

/// A new group row; a taken name in the domain fails with a unique violation.
pub(crate) async fn insert(
    tx: &mut Tx,
    id: &str,
    name: &str,
    domain_id: &str,
    description: &str,
    extra: &Extra,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO identity_groups (id, name, domain_id, description, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(name)
    .bind(domain_id)
    .bind(description)
    .bind(to_json(extra)?)
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the group's mutable columns.
pub(crate) async fn update(tx: &mut Tx, g: &Group) -> DbResult<()> {
    sqlx::query("UPDATE identity_groups SET name = $1, description = $2, extra = $3 WHERE id = $4")
        .bind(&g.name)
        .bind(&g.description)
        .bind(to_json(&g.extra)?)
        .bind(&g.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes the group and its assignments.
pub(crate) async fn delete(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(
        tx,
        &[
            "DELETE FROM assignments WHERE actor_type = 'group' AND actor_id = $1",
            "DELETE FROM identity_groups WHERE id = $1",
        ],
        &[id],
    )
    .await?;
    Ok(())
}

/// Adds a member (a member already there stays).
pub(crate) async fn add_member(tx: &mut Tx, group_id: &str, user_id: &str) -> DbResult<()> {
    execute(
        tx,
        &["INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"],
        &[group_id, user_id],
    )
    .await?;
    Ok(())
}

/// Removes a member; false when the user was not one.
pub(crate) async fn remove_member(tx: &mut Tx, group_id: &str, user_id: &str) -> DbResult<bool> {
    Ok(execute(
        tx,
        &["DELETE FROM group_members WHERE group_id = $1 AND user_id = $2"],
        &[group_id, user_id],
    )
    .await?
        > 0)
}

pub(crate) async fn is_member(db: &Db, group_id: &str, user_id: &str) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND user_id = $2",
    )
    .bind(group_id)
    .bind(user_id)
    .fetch_one(db.pool())
    .await?;
    Ok(n > 0)
}

/// The groups the user is a member of, by name.
pub(crate) async fn of_user(db: &Db, user_id: &str) -> DbResult<Vec<Group>> {
    let rows = sqlx::query(
        "SELECT g.* FROM identity_groups g JOIN group_members m ON m.group_id = g.id \
         WHERE m.user_id = $1 ORDER BY g.name, g.id",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The ids of the group's members, read in the transaction that changes its grants.
pub(crate) async fn member_ids(tx: &mut Tx, group_id: &str) -> DbResult<Vec<String>> {
    sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
        .bind(group_id)
        .fetch_all(&mut **tx)
        .await
}

/// Every membership as (group id, user id).
pub(crate) async fn memberships(db: &Db) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT group_id, user_id FROM group_members")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("group_id")?, r.try_get("user_id")?)))
        .collect()
}
