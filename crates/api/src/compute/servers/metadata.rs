//! A server's metadata (`/metadata`), tags (`/tags`, 2.26) and addresses
//! (`/ips`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_compute::servers::request::{check_metadata, check_tag, check_tags};
use ferrostack_compute::{ApiVersion, Error};

use super::super::server_view;
use super::super::{ApiResult, Mv, json_body};
use crate::AppState;
use crate::auth::Caller;
use crate::links::Base;

pub(super) async fn metadata_list(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"metadata": srv.doc.metadata})).into_response())
}

pub(super) async fn metadata_write(
    s: AppState,
    c: Caller,
    id: String,
    body: Bytes,
    replace: bool,
) -> ApiResult {
    let body = json_body(&body)?;
    let m = body.get("metadata").ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute metadata. 'metadata' is a required property".into(),
        )
    })?;
    let items = check_metadata("metadata", m)?;
    let all = s
        .compute
        .set_server_metadata(c.ctx(), &id, items, replace)
        .await?;
    Ok(axum::Json(json!({"metadata": all})).into_response())
}

pub(super) async fn metadata_merge(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    metadata_write(s, c, id, body, false).await
}

pub(super) async fn metadata_replace(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    metadata_write(s, c, id, body, true).await
}

pub(super) async fn metadata_show(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    let v = srv
        .doc
        .metadata
        .get(&key)
        .ok_or_else(|| Error::NotFound("Metadata item was not found".into()))?;
    Ok(axum::Json(json!({"meta": {key: v}})).into_response())
}

pub(super) async fn metadata_set(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let meta = body.get("meta").ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute meta. 'meta' is a required property".into(),
        )
    })?;
    let items = check_metadata("meta", meta)?;
    if items.len() != 1 {
        return Err(Error::BadRequest("Request body contains too many items".into()).into());
    }
    if !items.contains_key(&key) {
        return Err(Error::BadRequest("Request body and URI mismatch".into()).into());
    }
    s.compute
        .set_server_metadata(c.ctx(), &id, items.clone(), false)
        .await?;
    Ok(axum::Json(json!({"meta": items})).into_response())
}

pub(super) async fn metadata_delete(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    s.compute.delete_server_metadata(c.ctx(), &id, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) fn tags_supported(mv: ApiVersion) -> Result<(), Error> {
    if mv.at_least(2, 26) {
        Ok(())
    } else {
        Err(Error::NotFound("The resource could not be found.".into()))
    }
}

pub(super) async fn tags_list(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    tags_supported(mv)?;
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"tags": srv.doc.tags})).into_response())
}

pub(super) async fn tags_replace(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    tags_supported(mv)?;
    let body = json_body(&body)?;
    let t = body.get("tags").ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute tags. 'tags' is a required property".into(),
        )
    })?;
    let tags = check_tags(t)?;
    let tags = s.compute.set_server_tags(c.ctx(), &id, tags).await?;
    Ok(axum::Json(json!({"tags": tags})).into_response())
}

pub(super) async fn tags_clear(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    tags_supported(mv)?;
    s.compute.delete_server_tag(c.ctx(), &id, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn tag_check(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    tags_supported(mv)?;
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    if srv.doc.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::NotFound(format!("Tag '{tag}' could not be found.")).into())
    }
}

pub(super) async fn tag_add(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    base: Base,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    tags_supported(mv)?;
    let tag = check_tag(&Value::String(tag))?;
    let created = s.compute.add_server_tag(c.ctx(), &id, tag.clone()).await?;
    let mut resp = if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/v2.1/servers/{id}/tags/{tag}", base.0)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

pub(super) async fn tag_delete(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    tags_supported(mv)?;
    s.compute
        .delete_server_tag(c.ctx(), &id, Some(&tag))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn ips(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    let addresses = server_view::addresses(&srv, false);
    Ok(axum::Json(json!({ "addresses": addresses })).into_response())
}

pub(super) async fn ips_of_network(
    State(s): State<AppState>,
    c: Caller,
    Path((id, net)): Path<(String, String)>,
) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    let all = server_view::addresses(&srv, false);
    let v = all
        .get(net.as_str())
        .ok_or_else(|| Error::NotFound(format!("Network {net} could not be found.")))?;
    Ok(axum::Json(json!({ net: v })).into_response())
}
