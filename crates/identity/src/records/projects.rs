//! The `projects` table (and the rows that go with a deleted project).

use serde_json::Map;
use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::Db;
use ferrostack_core::db::get_bool;
use ferrostack_core::time::unix_now;

use super::{
    DbResult, Tx, execute, fetch_all, fetch_optional, parse_json_list, parse_json_map, to_json,
};
use crate::fields::Extra;
use crate::model::Project;

fn from_row(r: &AnyRow) -> DbResult<Project> {
    let domain_id: String = r.try_get("domain_id")?;
    let parent: Option<String> = r.try_get("parent_id")?;
    Ok(Project {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        parent_id: parent.clone().unwrap_or_else(|| domain_id.clone()),
        domain_id,
        description: r.try_get("description")?,
        enabled: get_bool(r, "enabled")?,
        is_domain: false,
        tags: parse_json_list(&r.try_get::<String, _>("tags")?),
        options: Map::new(),
        extra: parse_json_map(&r.try_get::<String, _>("extra")?),
        parent_project_id: parent,
    })
}

pub(crate) async fn get(db: &Db, id: &str) -> DbResult<Option<Project>> {
    fetch_optional(db, "SELECT * FROM projects WHERE id = $1", &[id], from_row).await
}

pub(crate) async fn by_name(db: &Db, name: &str, domain_id: &str) -> DbResult<Option<Project>> {
    fetch_optional(
        db,
        "SELECT * FROM projects WHERE name = $1 AND domain_id = $2",
        &[name, domain_id],
        from_row,
    )
    .await
}

/// All projects by name, then id.
pub(crate) async fn list(db: &Db) -> DbResult<Vec<Project>> {
    fetch_all(
        db,
        "SELECT * FROM projects ORDER BY name, id",
        &[],
        from_row,
    )
    .await
}

/// Projects on which `user_id` has any role (directly or through a group), by name.
pub(crate) async fn of_user(db: &Db, user_id: &str) -> DbResult<Vec<Project>> {
    let rows = sqlx::query(
        "SELECT * FROM projects WHERE id IN (SELECT target_id FROM assignments \
         WHERE target_type = 'project' AND ((actor_type = 'user' AND actor_id = $1) OR \
         (actor_type = 'group' AND actor_id IN (SELECT group_id FROM group_members WHERE user_id = $1)))) \
         ORDER BY name, id",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// How many direct children the project has (only enabled ones when `enabled_only`).
pub(crate) async fn count_children(db: &Db, id: &str, enabled_only: bool) -> DbResult<i64> {
    if enabled_only {
        sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE parent_id = $1 AND enabled = $2")
            .bind(id)
            .bind(true)
            .fetch_one(db.pool())
            .await
    } else {
        sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE parent_id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
    }
}

/// The columns of a new project row.
pub(crate) struct NewProject<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub domain_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub description: &'a str,
    pub enabled: bool,
    pub tags: &'a [String],
    pub extra: &'a Extra,
}

/// A new project row; a taken name in the domain fails with a unique violation.
pub(crate) async fn insert(tx: &mut Tx, p: &NewProject<'_>) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, tags, \
         extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id)
    .bind(p.name)
    .bind(p.domain_id)
    .bind(p.parent_id.map(str::to_string))
    .bind(p.description)
    .bind(p.enabled)
    .bind(to_json(p.tags)?)
    .bind(to_json(p.extra)?)
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the project's mutable columns.
pub(crate) async fn update(tx: &mut Tx, p: &Project) -> DbResult<()> {
    sqlx::query(
        "UPDATE projects SET name = $1, description = $2, enabled = $3, tags = $4, extra = $5 \
         WHERE id = $6",
    )
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.enabled)
    .bind(to_json(&p.tags)?)
    .bind(to_json(&p.extra)?)
    .bind(&p.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the project with its assignments, application credentials and credentials.
pub(crate) async fn delete(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(
        tx,
        &[
            "DELETE FROM assignments WHERE target_type = 'project' AND target_id = $1",
            "DELETE FROM application_credentials WHERE project_id = $1",
            "DELETE FROM credentials WHERE project_id = $1",
            "DELETE FROM projects WHERE id = $1",
        ],
        &[id],
    )
    .await?;
    Ok(())
}
