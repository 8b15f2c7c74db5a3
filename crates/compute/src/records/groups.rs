//! The `server_groups` and `server_group_members` tables.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::error::Result;
use crate::server_groups::ServerGroup;

/// How many server groups a project has.
pub async fn count(conn: &mut AnyConnection, project_id: &str) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM server_groups WHERE project_id = $1")
            .bind(project_id)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?,
    )
}

/// A group's members that are not deleted, oldest first.
async fn members(conn: &mut AnyConnection, id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in sqlx::query(
        "SELECT m.server_id FROM server_group_members m JOIN servers s ON s.id = m.server_id \
         WHERE m.group_id = $1 AND s.deleted = $2 ORDER BY s.created_at_us, m.server_id",
    )
    .bind(id)
    .bind(false)
    .fetch_all(&mut *conn)
    .await?
    {
        out.push(r.try_get("server_id")?);
    }
    Ok(out)
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<ServerGroup> {
    let rules_text: String = r.try_get("rules")?;
    Ok(ServerGroup {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        policy: r.try_get("policy")?,
        rules: serde_json::from_str(&rules_text).unwrap_or_default(),
        members: Vec::new(),
    })
}

/// A group with its (not deleted) members.
pub async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<ServerGroup>> {
    let Some(row) = sqlx::query(
        "SELECT id, project_id, user_id, name, policy, rules FROM server_groups WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let mut g = from_row(&row)?;
    g.members = members(conn, id).await?;
    Ok(Some(g))
}

/// Groups (of one project, or of all with `None`) by creation, `offset` and
/// `limit` applied, with their members.
pub async fn list(
    conn: &mut AnyConnection,
    project_id: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Vec<ServerGroup>> {
    let rows = match project_id {
        None => {
            sqlx::query(
                "SELECT id, project_id, user_id, name, policy, rules FROM server_groups ORDER BY created_at_us, id",
            )
            .fetch_all(&mut *conn)
            .await?
        }
        Some(project) => {
            sqlx::query(
                "SELECT id, project_id, user_id, name, policy, rules FROM server_groups \
                 WHERE project_id = $1 ORDER BY created_at_us, id",
            )
            .bind(project)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut out = Vec::new();
    for r in rows.iter().skip(offset).take(limit) {
        let mut g = from_row(r)?;
        g.members = members(conn, &g.id).await?;
        out.push(g);
    }
    Ok(out)
}

/// Inserts a group (its members are added one by one, [`add_member`]).
pub async fn insert(conn: &mut AnyConnection, g: &ServerGroup, created_at_us: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO server_groups (id, project_id, user_id, name, policy, rules, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&g.id)
    .bind(&g.project_id)
    .bind(&g.user_id)
    .bind(&g.name)
    .bind(&g.policy)
    .bind(Value::Object(g.rules.clone()).to_string())
    .bind(created_at_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn add_member(conn: &mut AnyConnection, group_id: &str, server_id: &str) -> Result<()> {
    sqlx::query("INSERT INTO server_group_members (group_id, server_id) VALUES ($1, $2)")
        .bind(group_id)
        .bind(server_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes a server from every group.
pub async fn remove_member(conn: &mut AnyConnection, server_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM server_group_members WHERE server_id = $1")
        .bind(server_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes a group and its member rows.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM server_group_members WHERE group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM server_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
