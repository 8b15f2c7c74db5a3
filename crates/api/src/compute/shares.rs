//! Share attachments (microversion 2.97: virtiofs mounts of Manila shares).
//! ferrostack runs no shared file system service, so no share exists to attach:
//! the list is empty and every share is not found, as Nova answers for a share
//! Manila does not know.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use ferrostack_compute::Error;

use super::{ApiResult, Mv};
use crate::AppState;
use crate::auth::Caller;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/servers/{id}/shares", get(list).post(attach))
        .route("/servers/{id}/shares/{share_id}", get(show).delete(detach))
}

fn not_found() -> Error {
    Error::NotFound("The resource could not be found.".into())
}

fn share_not_found(share_id: &str) -> Error {
    Error::NotFound(format!("Share {share_id} could not be found."))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    if !mv.at_least(2, 97) {
        return Err(not_found().into());
    }
    s.compute.get_server(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"shares": []})).into_response())
}

async fn attach(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    if !mv.at_least(2, 97) {
        return Err(not_found().into());
    }
    s.compute.get_server(c.ctx(), &id).await?;
    let body = super::json_body(&body)?;
    let share_id = body
        .get("share")
        .and_then(|s| s.get("share_id"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field/attribute share. 'share_id' is a required property".into(),
            )
        })?;
    Err(share_not_found(share_id).into())
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path((id, share_id)): Path<(String, String)>,
) -> ApiResult {
    if !mv.at_least(2, 97) {
        return Err(not_found().into());
    }
    s.compute.get_server(c.ctx(), &id).await?;
    Err(share_not_found(&share_id).into())
}

async fn detach(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path((id, share_id)): Path<(String, String)>,
) -> ApiResult {
    show(State(s), c, Mv(mv), Path((id, share_id))).await
}
