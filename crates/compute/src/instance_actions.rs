//! Instance actions (`os-instance-actions`): one row per user action on a server
//! (create, stop, reboot, ...) with the request id, and events the host agent
//! records as it carries the action out (start, finish, result).

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use ferrostack_core::RequestContext;

use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct InstanceAction {
    pub id: String,
    pub server_id: String,
    pub action: String,
    pub request_id: String,
    pub project_id: String,
    pub user_id: String,
    pub message: Option<String>,
    pub start_us: i64,
    pub finish_us: Option<i64>,
    pub updated_at_us: i64,
    pub events: Vec<ActionEvent>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionEvent {
    pub event: String,
    pub result: Option<String>,
    pub traceback: Option<String>,
    pub host: Option<String>,
    pub start_us: i64,
    pub finish_us: Option<i64>,
}

/// Records that `action` was asked of a server (in the caller's transaction).
pub async fn start(
    conn: &mut AnyConnection,
    ctx: &RequestContext,
    server_id: &str,
    project_id: &str,
    action: &str,
    request_id: &str,
    now_us: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO instance_actions (id, server_id, action, request_id, project_id, user_id, \
         message, start_us, finish_us, updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, NULL, $7)",
    )
    .bind(ferrostack_core::ids::new_uuid())
    .bind(server_id)
    .bind(action)
    .bind(request_id)
    .bind(project_id)
    .bind(ctx.user_id.as_str())
    .bind(now_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What happened when an action was carried out.
pub struct EventRecord<'a> {
    pub server_id: &'a str,
    /// The action's request id (`None` = the server's newest action).
    pub request_id: Option<&'a str>,
    pub event: &'a str,
    pub host: &'a str,
    pub start_us: i64,
    pub finish_us: i64,
    /// The failure's message, if it failed.
    pub error: Option<&'a str>,
}

/// Records an event of an action (the agent, when it has carried the action out).
pub async fn event(conn: &mut AnyConnection, e: &EventRecord<'_>) -> Result<()> {
    let EventRecord {
        server_id,
        request_id,
        event,
        host,
        start_us,
        finish_us: now_us,
        error,
    } = *e;
    let row = match request_id {
        Some(r) => {
            sqlx::query(
                "SELECT id FROM instance_actions WHERE server_id = $1 AND request_id = $2 \
                 ORDER BY start_us DESC LIMIT 1",
            )
            .bind(server_id)
            .bind(r)
            .fetch_optional(&mut *conn)
            .await?
        }
        None => sqlx::query(
            "SELECT id FROM instance_actions WHERE server_id = $1 ORDER BY start_us DESC LIMIT 1",
        )
        .bind(server_id)
        .fetch_optional(&mut *conn)
        .await?,
    };
    let Some(row) = row else { return Ok(()) };
    let action_id: String = row.try_get("id")?;
    sqlx::query(
        "INSERT INTO instance_action_events (id, action_id, event, result, traceback, host, \
         start_us, finish_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(ferrostack_core::ids::new_uuid())
    .bind(action_id.as_str())
    .bind(event)
    .bind(if error.is_some() { "Error" } else { "Success" })
    .bind(error)
    .bind(host)
    .bind(start_us)
    .bind(now_us)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE instance_actions SET finish_us = $2, updated_at_us = $2, message = $3 WHERE id = $1",
    )
    .bind(action_id.as_str())
    .bind(now_us)
    .bind(error.map(|_| "Error"))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The actions of a server, newest first, with their events.
pub async fn list(conn: &mut AnyConnection, server_id: &str) -> Result<Vec<InstanceAction>> {
    let rows = sqlx::query(
        "SELECT id, server_id, action, request_id, project_id, user_id, message, start_us, \
         finish_us, updated_at_us FROM instance_actions WHERE server_id = $1 ORDER BY start_us DESC",
    )
    .bind(server_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let events = sqlx::query(
            "SELECT event, result, traceback, host, start_us, finish_us FROM instance_action_events \
             WHERE action_id = $1 ORDER BY start_us",
        )
        .bind(id.as_str())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|e| {
            Ok(ActionEvent {
                event: e.try_get("event")?,
                result: e.try_get("result")?,
                traceback: e.try_get("traceback")?,
                host: e.try_get("host")?,
                start_us: e.try_get("start_us")?,
                finish_us: e.try_get("finish_us")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        out.push(InstanceAction {
            id,
            server_id: r.try_get("server_id")?,
            action: r.try_get("action")?,
            request_id: r.try_get("request_id")?,
            project_id: r.try_get("project_id")?,
            user_id: r.try_get("user_id")?,
            message: r.try_get("message")?,
            start_us: r.try_get("start_us")?,
            finish_us: r.try_get("finish_us")?,
            updated_at_us: r.try_get("updated_at_us")?,
            events,
        });
    }
    Ok(out)
}
