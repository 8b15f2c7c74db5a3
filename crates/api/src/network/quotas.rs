//! `/v2.0/quotas`: limits per project (defaults from `[quota]`), usage details,
//! admin updates and resets.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiResult, json_body};
use crate::AppState;
use crate::auth::Caller;

pub async fn list(State(s): State<AppState>, c: Caller) -> ApiResult {
    let quotas = s.network.quota_list(c.ctx()).await?;
    Ok(axum::Json(json!({ "quotas": quotas })).into_response())
}

pub async fn show(State(s): State<AppState>, c: Caller, Path(project): Path<String>) -> ApiResult {
    let q = s.network.quota(c.ctx(), &project).await?;
    Ok(axum::Json(json!({ "quota": q })).into_response())
}

pub async fn defaults(
    State(s): State<AppState>,
    c: Caller,
    Path(project): Path<String>,
) -> ApiResult {
    let q = s.network.quota_defaults(c.ctx(), &project).await?;
    Ok(axum::Json(json!({ "quota": q })).into_response())
}

pub async fn details(
    State(s): State<AppState>,
    c: Caller,
    Path(project): Path<String>,
) -> ApiResult {
    let q = s.network.quota_details(c.ctx(), &project).await?;
    Ok(axum::Json(json!({ "quota": q })).into_response())
}

pub async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult {
    let q = s
        .network
        .update_quota(c.ctx(), &project, json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({ "quota": q })).into_response())
}

pub async fn reset(State(s): State<AppState>, c: Caller, Path(project): Path<String>) -> ApiResult {
    s.network.reset_quota(c.ctx(), &project).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
