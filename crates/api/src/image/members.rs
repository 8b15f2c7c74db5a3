//! `/v2/images/{id}/members`: share an image with other projects; the member
//! project accepts or rejects.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use ferrostack_core::time::iso_time;
use ferrostack_image::Member;

use super::{ApiResult, json_body};
use crate::AppState;
use crate::auth::Caller;

fn render(m: &Member) -> Value {
    json!({
        "image_id": m.image_id,
        "member_id": m.member_id,
        "status": m.status.as_str(),
        "created_at": iso_time(m.created_at),
        "updated_at": iso_time(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}

fn one(m: &Member) -> Response {
    axum::Json(render(m)).into_response()
}

pub async fn list(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let members = s.image.list_members(c.ctx(), &id).await?;
    Ok(axum::Json(json!({
        "members": members.iter().map(render).collect::<Vec<_>>(),
        "schema": "/v2/schemas/members",
    }))
    .into_response())
}

pub async fn create(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let m = s.image.add_member(c.ctx(), &id, &json_body(&body)?).await?;
    Ok(one(&m))
}

pub async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult {
    Ok(one(&s.image.get_member(c.ctx(), &id, &member).await?))
}

pub async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path((id, member)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let m = s
        .image
        .update_member(c.ctx(), &id, &member, &json_body(&body)?)
        .await?;
    Ok(one(&m))
}

pub async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult {
    s.image.delete_member(c.ctx(), &id, &member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
