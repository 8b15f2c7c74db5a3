//! The `flavors`, `flavor_extra_specs` and `flavor_projects` tables.

use std::collections::{BTreeMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use ferrostack_core::db::get_bool;

use crate::error::Result;
use crate::flavors::Flavor;

const COLUMNS: &str = "id, name, vcpus, memory_mb, root_gb, ephemeral_gb, swap_mb, rxtx_factor, \
                       is_public, disabled, description, created_at_us";

fn from_row(r: &AnyRow) -> Result<Flavor> {
    Ok(Flavor {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        vcpus: r.try_get("vcpus")?,
        memory_mb: r.try_get("memory_mb")?,
        root_gb: r.try_get("root_gb")?,
        ephemeral_gb: r.try_get("ephemeral_gb")?,
        swap_mb: r.try_get("swap_mb")?,
        rxtx_factor: r.try_get("rxtx_factor")?,
        extra_specs: BTreeMap::new(),
        is_public: get_bool(r, "is_public")?,
        disabled: get_bool(r, "disabled")?,
        description: r.try_get("description")?,
    })
}

/// One flavor with its extra specs.
pub async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<Flavor>> {
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM flavors WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let mut f = from_row(&row)?;
    f.extra_specs = specs_of(conn, id).await?;
    Ok(Some(f))
}

async fn specs_of(conn: &mut AnyConnection, id: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for r in sqlx::query("SELECT spec_key, spec_value FROM flavor_extra_specs WHERE flavor_id = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
    {
        out.insert(r.try_get("spec_key")?, r.try_get("spec_value")?);
    }
    Ok(out)
}

/// Every flavor, without extra specs, in no particular order.
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<Flavor>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM flavors"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The ids of the flavors shared with a project.
pub async fn shared_with(conn: &mut AnyConnection, project_id: &str) -> Result<HashSet<String>> {
    Ok(
        sqlx::query("SELECT flavor_id FROM flavor_projects WHERE project_id = $1")
            .bind(project_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("flavor_id"))
            .collect::<std::result::Result<_, _>>()?,
    )
}

/// Every flavor's extra specs, by flavor id.
pub async fn all_specs(
    conn: &mut AnyConnection,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut specs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in sqlx::query("SELECT flavor_id, spec_key, spec_value FROM flavor_extra_specs")
        .fetch_all(&mut *conn)
        .await?
    {
        specs
            .entry(r.try_get("flavor_id")?)
            .or_default()
            .insert(r.try_get("spec_key")?, r.try_get("spec_value")?);
    }
    Ok(specs)
}

/// The projects a flavor is shared with, sorted.
pub async fn projects_of(conn: &mut AnyConnection, id: &str) -> Result<Vec<String>> {
    let mut v: Vec<String> = Vec::new();
    for r in sqlx::query(
        "SELECT project_id FROM flavor_projects WHERE flavor_id = $1 ORDER BY project_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    {
        v.push(r.try_get("project_id")?);
    }
    Ok(v)
}

/// Whether a flavor is shared with `project` (never with no project).
pub async fn has_access(conn: &mut AnyConnection, id: &str, project: Option<&str>) -> Result<bool> {
    let Some(p) = project else { return Ok(false) };
    Ok(
        sqlx::query("SELECT 1 AS x FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2")
            .bind(id)
            .bind(p)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

pub async fn name_exists(conn: &mut AnyConnection, name: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 AS x FROM flavors WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Inserts a flavor (without its extra specs); false when its name is taken.
pub async fn insert(conn: &mut AnyConnection, f: &Flavor, created_at_us: i64) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO flavors (id, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap_mb, \
         rxtx_factor, is_public, disabled, description, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&f.id)
    .bind(&f.name)
    .bind(f.memory_mb)
    .bind(f.vcpus)
    .bind(f.root_gb)
    .bind(f.ephemeral_gb)
    .bind(f.swap_mb)
    .bind(f.rxtx_factor)
    .bind(f.is_public)
    .bind(f.disabled)
    .bind(&f.description)
    .bind(created_at_us)
    .execute(&mut *conn)
    .await;
    super::inserted(r)
}

pub async fn set_description(
    conn: &mut AnyConnection,
    id: &str,
    description: &Option<String>,
    now_us: i64,
) -> Result<()> {
    sqlx::query("UPDATE flavors SET description = $1, updated_at_us = $2 WHERE id = $3")
        .bind(description)
        .bind(now_us)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes a flavor with its extra specs and access list; how many flavors went.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<u64> {
    sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM flavor_projects WHERE flavor_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query("DELETE FROM flavors WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// Adds or replaces extra specs and touches the flavor's `updated_at`.
pub async fn put_specs(
    conn: &mut AnyConnection,
    id: &str,
    specs: &BTreeMap<String, String>,
    now_us: i64,
) -> Result<()> {
    for (k, v) in specs {
        delete_spec(conn, id, k).await?;
        sqlx::query(
            "INSERT INTO flavor_extra_specs (flavor_id, spec_key, spec_value) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(k)
        .bind(v)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE flavors SET updated_at_us = $1 WHERE id = $2")
        .bind(now_us)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes one extra spec; how many rows went.
pub async fn delete_spec(conn: &mut AnyConnection, id: &str, key: &str) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1 AND spec_key = $2")
            .bind(id)
            .bind(key)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

pub async fn add_project(conn: &mut AnyConnection, id: &str, project_id: &str) -> Result<()> {
    sqlx::query("INSERT INTO flavor_projects (flavor_id, project_id) VALUES ($1, $2)")
        .bind(id)
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn remove_project(conn: &mut AnyConnection, id: &str, project_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2")
        .bind(id)
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
