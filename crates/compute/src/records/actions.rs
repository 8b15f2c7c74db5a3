//! The `instance_actions` and `instance_action_events` tables: what was asked of a
//! server and what the host did about it.

use sqlx::{AnyConnection, Row};

use crate::error::Result;
use crate::instance_actions::{ActionEvent, InstanceAction};

/// A new `instance_actions` row (unfinished).
pub struct NewAction<'a> {
    pub id: &'a str,
    pub server_id: &'a str,
    pub action: &'a str,
    pub request_id: &'a str,
    pub project_id: &'a str,
    pub user_id: &'a str,
    pub start_us: i64,
}

pub async fn insert(conn: &mut AnyConnection, a: &NewAction<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO instance_actions (id, server_id, action, request_id, project_id, user_id, \
         message, start_us, finish_us, updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, NULL, $7)",
    )
    .bind(a.id)
    .bind(a.server_id)
    .bind(a.action)
    .bind(a.request_id)
    .bind(a.project_id)
    .bind(a.user_id)
    .bind(a.start_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The id of a server's newest action (with `request_id`, if given).
pub async fn newest(
    conn: &mut AnyConnection,
    server_id: &str,
    request_id: Option<&str>,
) -> Result<Option<String>> {
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
    match row {
        Some(row) => Ok(Some(row.try_get("id")?)),
        None => Ok(None),
    }
}

/// Adds an event to an action and marks the action finished at the event's
/// `finish_us` with `message`.
pub async fn finish(
    conn: &mut AnyConnection,
    action_id: &str,
    event_id: &str,
    e: &ActionEvent,
    message: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO instance_action_events (id, action_id, event, result, traceback, host, \
         start_us, finish_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event_id)
    .bind(action_id)
    .bind(e.event.as_str())
    .bind(e.result.as_deref())
    .bind(e.traceback.as_deref())
    .bind(e.host.as_deref())
    .bind(e.start_us)
    .bind(e.finish_us)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE instance_actions SET finish_us = $2, updated_at_us = $2, message = $3 WHERE id = $1",
    )
    .bind(action_id)
    .bind(e.finish_us)
    .bind(message)
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
