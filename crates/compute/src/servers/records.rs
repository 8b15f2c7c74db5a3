//! Server rows in the database. SQL only, no policy. Writes by the reconciler are
//! conditional on the row's `generation`, so an agent that finished a step after
//! the user changed their mind (delete during spawn) does not overwrite the intent.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use ferrostack_core::db::get_bool;

use crate::error::{Error, Result};
use crate::servers::model::{Server, ServerDoc, TaskState, VmState};

pub const COLUMNS: &str = "id, project_id, user_id, name, vm_state, task_state, power_state, \
     host, availability_zone, flavor_id, image_ref, vcpus, memory_mb, root_gb, ephemeral_gb, \
     locked, reservation_id, launch_index, generation, attempts, next_attempt_us, \
     created_at_us, updated_at_us, launched_at_us, terminated_at_us, deleted, deleted_at_us, doc";

fn corrupt(what: &str, value: &str) -> Error {
    Error::internal(format!(
        "database holds an invalid server {what}: {value:?}"
    ))
}

pub fn from_row(r: &AnyRow) -> Result<Server> {
    let vm: String = r.try_get("vm_state")?;
    let task: Option<String> = r.try_get("task_state")?;
    let doc: String = r.try_get("doc")?;
    Ok(Server {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        vm_state: VmState::parse(&vm).ok_or_else(|| corrupt("vm_state", &vm))?,
        task_state: match task {
            Some(t) => Some(TaskState::parse(&t).ok_or_else(|| corrupt("task_state", &t))?),
            None => None,
        },
        power_state: r.try_get("power_state")?,
        host: r.try_get("host")?,
        availability_zone: r.try_get("availability_zone")?,
        flavor_id: r.try_get("flavor_id")?,
        image_ref: r.try_get("image_ref")?,
        vcpus: r.try_get("vcpus")?,
        memory_mb: r.try_get("memory_mb")?,
        root_gb: r.try_get("root_gb")?,
        ephemeral_gb: r.try_get("ephemeral_gb")?,
        locked: get_bool(r, "locked")?,
        reservation_id: r.try_get("reservation_id")?,
        launch_index: r.try_get("launch_index")?,
        generation: r.try_get("generation")?,
        attempts: r.try_get("attempts")?,
        next_attempt_us: r.try_get("next_attempt_us")?,
        created_at_us: r.try_get("created_at_us")?,
        updated_at_us: r.try_get("updated_at_us")?,
        launched_at_us: r.try_get("launched_at_us")?,
        terminated_at_us: r.try_get("terminated_at_us")?,
        deleted: get_bool(r, "deleted")?,
        deleted_at_us: r.try_get("deleted_at_us")?,
        doc: serde_json::from_str::<ServerDoc>(&doc)?,
    })
}

pub async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<Server>> {
    let sql = format!("SELECT {COLUMNS} FROM servers WHERE id = $1");
    match sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    {
        Some(r) => Ok(Some(from_row(&r)?)),
        None => Ok(None),
    }
}

pub async fn insert(conn: &mut AnyConnection, s: &Server) -> Result<()> {
    let sql = format!(
        "INSERT INTO servers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
    );
    bind_all(sqlx::query(AssertSqlSafe(sql)), s)?
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn bind_all<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    s: &'q Server,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>> {
    let doc = serde_json::to_string(&s.doc)?;
    Ok(q.bind(s.id.as_str())
        .bind(s.project_id.as_str())
        .bind(s.user_id.as_str())
        .bind(s.name.as_str())
        .bind(s.vm_state.as_str())
        .bind(s.task_state.map(TaskState::as_str))
        .bind(s.power_state)
        .bind(s.host.as_deref())
        .bind(s.availability_zone.as_deref())
        .bind(s.flavor_id.as_str())
        .bind(s.image_ref.as_str())
        .bind(s.vcpus)
        .bind(s.memory_mb)
        .bind(s.root_gb)
        .bind(s.ephemeral_gb)
        .bind(s.locked)
        .bind(s.reservation_id.as_str())
        .bind(s.launch_index)
        .bind(s.generation)
        .bind(s.attempts)
        .bind(s.next_attempt_us)
        .bind(s.created_at_us)
        .bind(s.updated_at_us)
        .bind(s.launched_at_us)
        .bind(s.terminated_at_us)
        .bind(s.deleted)
        .bind(s.deleted_at_us)
        .bind(doc))
}

/// Writes the whole row back if its generation is still `expected_generation`, and
/// moves the generation on by one (every writer — API, scheduler, agent — checks
/// it, so no writer overwrites a change it did not see). Returns whether it was
/// written; on success `s.generation` is the new generation.
pub async fn update_if(
    conn: &mut AnyConnection,
    s: &mut Server,
    expected_generation: i64,
) -> Result<bool> {
    s.generation = expected_generation + 1;
    let doc = serde_json::to_string(&s.doc)?;
    let done = sqlx::query(
        "UPDATE servers SET name = $2, vm_state = $3, task_state = $4, power_state = $5, \
         host = $6, availability_zone = $7, flavor_id = $8, image_ref = $9, vcpus = $10, \
         memory_mb = $11, root_gb = $12, ephemeral_gb = $13, locked = $14, generation = $15, \
         attempts = $16, next_attempt_us = $17, updated_at_us = $18, launched_at_us = $19, \
         terminated_at_us = $20, deleted = $21, deleted_at_us = $22, doc = $23 \
         WHERE id = $1 AND generation = $24",
    )
    .bind(s.id.as_str())
    .bind(s.name.as_str())
    .bind(s.vm_state.as_str())
    .bind(s.task_state.map(TaskState::as_str))
    .bind(s.power_state)
    .bind(s.host.as_deref())
    .bind(s.availability_zone.as_deref())
    .bind(s.flavor_id.as_str())
    .bind(s.image_ref.as_str())
    .bind(s.vcpus)
    .bind(s.memory_mb)
    .bind(s.root_gb)
    .bind(s.ephemeral_gb)
    .bind(s.locked)
    .bind(s.generation)
    .bind(s.attempts)
    .bind(s.next_attempt_us)
    .bind(s.updated_at_us)
    .bind(s.launched_at_us)
    .bind(s.terminated_at_us)
    .bind(s.deleted)
    .bind(s.deleted_at_us)
    .bind(doc)
    .bind(expected_generation)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Servers with work for the scheduler.
pub async fn to_schedule(conn: &mut AnyConnection, limit: i64) -> Result<Vec<Server>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM servers WHERE task_state = 'scheduling' AND deleted = $1 \
         ORDER BY created_at_us LIMIT $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(false)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Servers on `host` with a task due at `now_us`.
pub async fn due_on_host(
    conn: &mut AnyConnection,
    host: &str,
    now_us: i64,
    limit: i64,
) -> Result<Vec<Server>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM servers WHERE host = $1 AND task_state IS NOT NULL \
         AND task_state <> 'scheduling' AND deleted = $2 AND next_attempt_us <= $3 \
         ORDER BY next_attempt_us, created_at_us LIMIT $4"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(host)
        .bind(false)
        .bind(now_us)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The earliest next attempt of a task waiting on `host` (for the agent's sleep).
pub async fn next_due_on_host(conn: &mut AnyConnection, host: &str) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT MIN(next_attempt_us) AS t FROM servers WHERE host = $1 \
         AND task_state IS NOT NULL AND deleted = $2",
    )
    .bind(host)
    .bind(false)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<Option<i64>, _>("t")?)
}

/// Servers at rest on `host` (power-state sync).
pub async fn at_rest_on_host(conn: &mut AnyConnection, host: &str) -> Result<Vec<Server>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM servers WHERE host = $1 AND task_state IS NULL AND deleted = $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(host)
        .bind(false)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}
