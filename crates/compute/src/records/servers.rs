//! Server rows in the database. SQL only, no policy. Writes by the reconciler are
//! conditional on the row's `generation`, so an agent that finished a step after
//! the user changed their mind (delete during spawn) does not overwrite the intent.

use std::ops::ControlFlow;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use ferrostack_core::db::{Cols, Db, Param};

use crate::error::{Error, Result};
use crate::servers::model::{Server, ServerDoc, ServerName, TaskState, VmState};

pub const COLUMNS: &str = "id, project_id, user_id, name, vm_state, task_state, power_state, \
     host, availability_zone, flavor_id, image_ref, vcpus, memory_mb, root_gb, ephemeral_gb, \
     locked, reservation_id, launch_index, generation, attempts, next_attempt_us, \
     created_at_us, updated_at_us, launched_at_us, terminated_at_us, deleted, deleted_at_us, doc";

/// `id, name`: what `GET /servers` shows.
pub const NAME_COLUMNS: &str = "id, name";

fn corrupt(what: &str, value: &str) -> Error {
    Error::internal(format!(
        "database holds an invalid server {what}: {value:?}"
    ))
}

/// A row of [`COLUMNS`], by position.
pub fn decode(r: &dyn Cols) -> Result<Server> {
    let vm = r.text(4)?;
    let task = r.opt_text(5)?;
    Ok(Server {
        id: r.text(0)?.to_owned(),
        project_id: r.text(1)?.to_owned(),
        user_id: r.text(2)?.to_owned(),
        name: r.text(3)?.to_owned(),
        vm_state: VmState::parse(vm).ok_or_else(|| corrupt("vm_state", vm))?,
        task_state: match task {
            Some(t) => Some(TaskState::parse(t).ok_or_else(|| corrupt("task_state", t))?),
            None => None,
        },
        power_state: r.int(6)?,
        host: r.opt_text(7)?.map(str::to_owned),
        availability_zone: r.opt_text(8)?.map(str::to_owned),
        flavor_id: r.text(9)?.to_owned(),
        image_ref: r.text(10)?.to_owned(),
        vcpus: r.int(11)?,
        memory_mb: r.int(12)?,
        root_gb: r.int(13)?,
        ephemeral_gb: r.int(14)?,
        locked: r.flag(15)?,
        reservation_id: r.text(16)?.to_owned(),
        launch_index: r.int(17)?,
        generation: r.int(18)?,
        attempts: r.int(19)?,
        next_attempt_us: r.int(20)?,
        created_at_us: r.int(21)?,
        updated_at_us: r.int(22)?,
        launched_at_us: r.opt_int(23)?,
        terminated_at_us: r.opt_int(24)?,
        deleted: r.flag(25)?,
        deleted_at_us: r.opt_int(26)?,
        doc: serde_json::from_str::<ServerDoc>(r.text(27)?)?,
    })
}

/// The name column of a [`COLUMNS`] row, for filtering before decoding the rest.
pub fn name_of(r: &dyn Cols) -> Result<&str> {
    Ok(r.text(3)?)
}

pub fn from_row(r: &AnyRow) -> Result<Server> {
    decode(r)
}

/// A server's id and name ([`NAME_COLUMNS`]).
pub fn decode_name(r: &dyn Cols) -> Result<ServerName> {
    Ok(ServerName {
        id: r.text(0)?.to_owned(),
        name: r.text(1)?.to_owned(),
    })
}

/// What a list reads per row: its columns and how they decode.
pub trait Projection: From<Server> + Send + 'static {
    const COLUMNS: &'static str;
    fn decode(r: &dyn Cols) -> Result<Self>;
}

impl Projection for Server {
    const COLUMNS: &'static str = COLUMNS;
    fn decode(r: &dyn Cols) -> Result<Server> {
        decode(r)
    }
}

impl Projection for ServerName {
    const COLUMNS: &'static str = NAME_COLUMNS;
    fn decode(r: &dyn Cols) -> Result<ServerName> {
        decode_name(r)
    }
}

/// One server by id, deleted or not, outside any transaction.
pub async fn get(db: &Db, id: &str) -> Result<Option<Server>> {
    db.fold(
        format!("SELECT {COLUMNS} FROM servers WHERE id = $1"),
        vec![Param::Text(id.to_owned())],
        None,
        |acc: &mut Option<Server>, r| {
            *acc = Some(decode(r)?);
            Ok(ControlFlow::Break(()))
        },
    )
    .await
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

/// A column a server list filters or sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Id,
    ProjectId,
    UserId,
    Name,
    VmState,
    TaskState,
    PowerState,
    Host,
    AvailabilityZone,
    FlavorId,
    ImageRef,
    ReservationId,
    LaunchIndex,
    CreatedAt,
    UpdatedAt,
}

impl Col {
    fn sql(self) -> &'static str {
        match self {
            Col::Id => "id",
            Col::ProjectId => "project_id",
            Col::UserId => "user_id",
            Col::Name => "name",
            Col::VmState => "vm_state",
            Col::TaskState => "task_state",
            Col::PowerState => "power_state",
            Col::Host => "host",
            Col::AvailabilityZone => "availability_zone",
            Col::FlavorId => "flavor_id",
            Col::ImageRef => "image_ref",
            Col::ReservationId => "reservation_id",
            Col::LaunchIndex => "launch_index",
            Col::CreatedAt => "created_at_us",
            Col::UpdatedAt => "updated_at_us",
        }
    }
}

/// One condition of a list read; the conditions of a read all hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Eq(Col, String),
    Deleted(bool),
    Locked(bool),
    UpdatedFrom(i64),
    UpdatedUntil(i64),
    VmStateIn(Vec<VmState>),
    /// Keyset paging in the default order (newest first): rows after this one.
    Before {
        created_at_us: i64,
        id: String,
    },
}

/// A server list read: which columns, which rows, in which order, how many.
pub struct ListRead<'a> {
    pub columns: &'static str,
    pub conds: &'a [Cond],
    /// Columns and whether descending.
    pub order: &'a [(Col, bool)],
    pub limit: Option<usize>,
}

impl ListRead<'_> {
    /// The one SQL text (both databases) and its parameters.
    pub fn sql(&self) -> (String, Vec<Param>) {
        let mut params: Vec<Param> = Vec::new();
        let mut arg = |p: Param| {
            params.push(p);
            format!("${}", params.len())
        };
        let mut wh: Vec<String> = Vec::with_capacity(self.conds.len());
        for c in self.conds {
            wh.push(match c {
                Cond::Eq(col, v) => format!("{} = {}", col.sql(), arg(Param::Text(v.clone()))),
                Cond::Deleted(d) => format!("deleted = {}", arg(Param::Bool(*d))),
                Cond::Locked(l) => format!("locked = {}", arg(Param::Bool(*l))),
                Cond::UpdatedFrom(us) => format!("updated_at_us >= {}", arg(Param::Int(*us))),
                Cond::UpdatedUntil(us) => format!("updated_at_us <= {}", arg(Param::Int(*us))),
                Cond::VmStateIn(states) => {
                    let list: Vec<String> = states
                        .iter()
                        .map(|v| arg(Param::Text(v.as_str().to_owned())))
                        .collect();
                    format!("vm_state IN ({})", list.join(", "))
                }
                Cond::Before { created_at_us, id } => {
                    let a = arg(Param::Int(*created_at_us));
                    let b = arg(Param::Text(id.clone()));
                    format!("(created_at_us < {a} OR (created_at_us = {a} AND id < {b}))")
                }
            });
        }
        let mut sql = format!("SELECT {} FROM servers", self.columns);
        if !wh.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&wh.join(" AND "));
        }
        if !self.order.is_empty() {
            let order: Vec<String> = self
                .order
                .iter()
                .map(|(c, desc)| format!("{} {}", c.sql(), if *desc { "DESC" } else { "ASC" }))
                .collect();
            sql.push_str(" ORDER BY ");
            sql.push_str(&order.join(", "));
        }
        if let Some(n) = self.limit {
            let a = arg(Param::Int(n as i64));
            sql.push_str(&format!(" LIMIT {a}"));
        }
        (sql, params)
    }
}

/// A project's servers, oldest first, with those deleted since `deleted_since_us`.
pub async fn of_project(db: &Db, project: &str, deleted_since_us: i64) -> Result<Vec<Server>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM servers WHERE project_id = $1 \
         AND (deleted = $2 OR deleted_at_us >= $3) ORDER BY created_at_us, id"
    );
    let params = vec![
        Param::Text(project.to_owned()),
        Param::Bool(false),
        Param::Int(deleted_since_us),
    ];
    db.fold(sql, params, Vec::new(), |acc, r| {
        acc.push(decode(r)?);
        Ok::<_, Error>(ControlFlow::Continue(()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_read_is_one_sql_text_with_numbered_parameters() {
        let conds = [
            Cond::Eq(Col::ProjectId, "p".into()),
            Cond::Deleted(false),
            Cond::VmStateIn(vec![VmState::Active, VmState::Stopped]),
            Cond::Before {
                created_at_us: 7,
                id: "x".into(),
            },
        ];
        let read = ListRead {
            columns: NAME_COLUMNS,
            conds: &conds,
            order: &[(Col::CreatedAt, true), (Col::Id, true)],
            limit: Some(11),
        };
        let (sql, params) = read.sql();
        assert_eq!(
            sql,
            "SELECT id, name FROM servers WHERE project_id = $1 AND deleted = $2 \
             AND vm_state IN ($3, $4) AND (created_at_us < $5 OR (created_at_us = $5 AND id < $6)) \
             ORDER BY created_at_us DESC, id DESC LIMIT $7"
        );
        assert_eq!(params.len(), 7);
        assert!(matches!(params[6], Param::Int(11)));
    }
}
