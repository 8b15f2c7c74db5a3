//! `/limits`, `/os-quota-sets/{project}[/detail|/defaults]` and
//! `/os-quota-class-sets/{class}`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_compute::quota_sets::{
    render_absolute_limits, render_quota_class_set, render_quota_set,
};

use super::{param, query_pairs};
use crate::AppState;
use crate::auth::Caller;
use crate::compute::{ApiResult, Mv, json_body};

pub async fn limits(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let tenant = param(&query_pairs(q.as_deref()), "tenant_id");
    let (l, u) = s
        .compute
        .absolute_limits(c.ctx(), tenant.as_deref())
        .await?;
    Ok(axum::Json(json!({"limits": {
        "rate": [],
        "absolute": Value::Object(render_absolute_limits(v, &l, &u)),
    }}))
    .into_response())
}

async fn quota_set(
    s: AppState,
    c: Caller,
    v: ferrostack_compute::ApiVersion,
    project: String,
    q: Option<String>,
    detail: bool,
) -> ApiResult {
    let user = param(&query_pairs(q.as_deref()), "user_id");
    let (l, used) = s
        .compute
        .quota_set(c.ctx(), &project, user.as_deref(), detail)
        .await?;
    Ok(axum::Json(json!({
        "quota_set": Value::Object(render_quota_set(v, &l, used.as_ref(), Some(&project))),
    }))
    .into_response())
}

pub async fn show(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    quota_set(s, c, v, project, q, false).await
}

pub async fn detail(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    quota_set(s, c, v, project, q, true).await
}

pub async fn defaults(
    State(s): State<AppState>,
    _c: Caller,
    Mv(v): Mv,
    Path(project): Path<String>,
) -> ApiResult {
    let l = s.compute.quota_defaults().await?;
    Ok(axum::Json(json!({
        "quota_set": Value::Object(render_quota_set(v, &l, None, Some(&project))),
    }))
    .into_response())
}

pub async fn update(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult {
    let user = param(&query_pairs(q.as_deref()), "user_id");
    let l = s
        .compute
        .update_quota_set(c.ctx(), v, &project, user.as_deref(), &json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({
        "quota_set": Value::Object(render_quota_set(v, &l, None, None)),
    }))
    .into_response())
}

pub async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let user = param(&query_pairs(q.as_deref()), "user_id");
    s.compute
        .delete_quota_set(c.ctx(), &project, user.as_deref())
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn class_show(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(class): Path<String>,
) -> ApiResult {
    let l = s.compute.quota_class_set(c.ctx()).await?;
    Ok(axum::Json(json!({
        "quota_class_set": Value::Object(render_quota_class_set(v, &l, Some(&class))),
    }))
    .into_response())
}

pub async fn class_update(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(class): Path<String>,
    body: Bytes,
) -> ApiResult {
    let l = s
        .compute
        .update_quota_class_set(c.ctx(), v, &class, &json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({
        "quota_class_set": Value::Object(render_quota_class_set(v, &l, None)),
    }))
    .into_response())
}
