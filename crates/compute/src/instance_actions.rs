//! Instance actions (`os-instance-actions`): one row per user action on a server
//! (create, stop, reboot, ...) with the request id, and events the host agent
//! records as it carries the action out (start, finish, result).

use serde::Serialize;

use ferrostack_core::RequestContext;

use crate::error::Result;
use crate::records::Conn;
use crate::records::actions as records;

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
    conn: &mut Conn,
    ctx: &RequestContext,
    server_id: &str,
    project_id: &str,
    action: &str,
    request_id: &str,
    now_us: i64,
) -> Result<()> {
    records::insert(
        conn,
        &records::NewAction {
            id: &ferrostack_core::ids::new_uuid(),
            server_id,
            action,
            request_id,
            project_id,
            user_id: ctx.user_id.as_str(),
            start_us: now_us,
        },
    )
    .await
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
pub async fn event(conn: &mut Conn, e: &EventRecord<'_>) -> Result<()> {
    let Some(action_id) = records::newest(conn, e.server_id, e.request_id).await? else {
        return Ok(());
    };
    let ev = ActionEvent {
        event: e.event.to_owned(),
        result: Some(
            if e.error.is_some() {
                "Error"
            } else {
                "Success"
            }
            .to_owned(),
        ),
        traceback: e.error.map(str::to_owned),
        host: Some(e.host.to_owned()),
        start_us: e.start_us,
        finish_us: Some(e.finish_us),
    };
    let message = e.error.map(|_| "Error");
    records::finish(
        conn,
        &action_id,
        &ferrostack_core::ids::new_uuid(),
        &ev,
        message,
    )
    .await
}
