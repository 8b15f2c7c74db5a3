//! `/v2/images`: create, list, show, update (JSON patch), delete, deactivate,
//! reactivate, tags. Images render flat, custom properties beside core attributes.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use ferrostack_core::time::iso_time;
use ferrostack_image::Image;
use ferrostack_image::attrs::PatchFormat;
use ferrostack_image::query::ListQuery;

use super::{ApiResult, json_body};
use crate::AppState;
use crate::auth::Caller;

/// Glance's representation of an image.
pub fn render(im: &Image) -> Value {
    let mut m = Map::new();
    for (k, v) in &im.properties {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    let core = json!({
        "id": im.id,
        "name": im.name,
        "status": im.status.as_str(),
        "visibility": im.visibility.as_str(),
        "protected": im.protected,
        "os_hidden": im.os_hidden,
        "checksum": im.checksum,
        "os_hash_algo": im.os_hash_algo,
        "os_hash_value": im.os_hash_value,
        "owner": im.owner,
        "size": im.size,
        "virtual_size": im.virtual_size,
        "min_disk": im.min_disk,
        "min_ram": im.min_ram,
        "disk_format": im.disk_format,
        "container_format": im.container_format,
        "created_at": iso_time(im.created_at()),
        "updated_at": iso_time(im.updated_at()),
        "tags": im.tags,
        "self": format!("/v2/images/{}", im.id),
        "file": format!("/v2/images/{}/file", im.id),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(core) = core {
        m.extend(core);
    }
    Value::Object(m)
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub async fn list(State(s): State<AppState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let pairs = query_pairs(q.as_deref());
    let query = ListQuery::parse(&pairs)?;
    let (page, more) = s.image.list(c.ctx(), &query).await?;
    let kept: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "marker").collect();
    let first = if kept.is_empty() {
        "/v2/images".to_string()
    } else {
        format!("/v2/images?{}", encode(&kept))
    };
    let mut body = json!({
        "images": page.iter().map(render).collect::<Vec<_>>(),
        "first": first,
        "schema": "/v2/schemas/images",
    });
    if more && let Some(last) = page.last() {
        let mut next = kept;
        next.push(("marker".into(), last.id.clone()));
        body["next"] = Value::String(format!("/v2/images?{}", encode(&next)));
    }
    Ok(axum::Json(body).into_response())
}

pub async fn create(State(s): State<AppState>, c: Caller, body: Bytes) -> ApiResult {
    let im = s.image.create(c.ctx(), json_body(&body)?).await?;
    let location = format!("/v2/images/{}", im.id);
    // Glance tells clients which import methods they can use on the new image.
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (
                header::HeaderName::from_static("openstack-image-import-methods"),
                "glance-direct".to_string(),
            ),
        ],
        axum::Json(render(&im)),
    )
        .into_response())
}

pub async fn show(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let im = s.image.get(c.ctx(), &id).await?;
    Ok(axum::Json(render(&im)).into_response())
}

const PATCH_TYPE: &str = "application/openstack-images-v2.1-json-patch";

pub async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    let format = match media {
        PATCH_TYPE => PatchFormat::V21,
        "application/openstack-images-v2.0-json-patch" => PatchFormat::V20,
        _ => {
            let mut r = crate::errors::glance::body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("Unsupported Content-Type: {ct}"),
            );
            if let Ok(v) = PATCH_TYPE.parse() {
                r.headers_mut().insert("accept-patch", v);
            }
            return Ok(r);
        }
    };
    let im = s
        .image
        .update(c.ctx(), &id, &json_body(&body)?, format)
        .await?;
    Ok(axum::Json(render(&im)).into_response())
}

pub async fn delete(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.image.delete(c.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn deactivate(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.image.deactivate(c.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn reactivate(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.image.reactivate(c.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn add_tag(
    State(s): State<AppState>,
    c: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    s.image.add_tag(c.ctx(), &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_tag(
    State(s): State<AppState>,
    c: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    s.image.delete_tag(c.ctx(), &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v2/images/{id}/tasks` (Image API v2.12): the image's import tasks.
pub async fn tasks(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let tasks = s.image.image_tasks(c.ctx(), &id).await?;
    Ok(axum::Json(json!({
        "tasks": tasks.iter().map(|t| t.to_json()).collect::<Vec<_>>()
    }))
    .into_response())
}
