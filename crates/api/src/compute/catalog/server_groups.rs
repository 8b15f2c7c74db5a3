//! `/os-server-groups`: list (own project; admin `all_projects`), create, show,
//! delete. 2.64 replaces `policies` with `policy` + `rules`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use ferrostack_compute::server_groups::ServerGroupQuery;

use super::{param, query_pairs};
use crate::AppState;
use crate::auth::Caller;
use crate::compute::{ApiResult, Mv, json_body};

pub async fn index(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let pairs = query_pairs(q.as_deref());
    let query = ServerGroupQuery {
        all_projects: param(&pairs, "all_projects"),
        limit: param(&pairs, "limit"),
        offset: param(&pairs, "offset"),
    };
    let list = s.compute.list_server_groups(c.ctx(), &query).await?;
    Ok(axum::Json(json!({
        "server_groups": list.iter().map(|g| g.render(v)).collect::<Vec<_>>(),
    }))
    .into_response())
}

pub async fn create(State(s): State<AppState>, c: Caller, Mv(v): Mv, body: Bytes) -> ApiResult {
    let g = s
        .compute
        .create_server_group(c.ctx(), v, &json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({"server_group": g.render(v)})).into_response())
}

pub async fn show(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    let g = s.compute.get_server_group(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"server_group": g.render(v)})).into_response())
}

pub async fn delete(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.compute.delete_server_group(c.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
