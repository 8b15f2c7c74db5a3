//! Regions, services and endpoints.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;

use super::{ApiResult, Base, Caller, collection, json_body, list_params, member, no_content};
use crate::AppState;

type Q = Query<Vec<(String, String)>>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/regions", get(list_regions).post(create_region))
        .route(
            "/v3/regions/{id}",
            get(get_region).patch(update_region).delete(delete_region),
        )
        .route("/v3/services", get(list_services).post(create_service))
        .route(
            "/v3/services/{id}",
            get(get_service)
                .patch(update_service)
                .delete(delete_service),
        )
        .route("/v3/endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/v3/endpoints/{id}",
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
}

async fn list_regions(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s.identity.list_regions(c.ctx(), &list_params(q)).await?;
    Ok(collection(
        "regions",
        page,
        &base,
        "regions",
        &raw.unwrap_or_default(),
        |r| &r.id,
    ))
}

async fn create_region(State(s): State<AppState>, c: Caller, base: Base, body: Bytes) -> ApiResult {
    let r = s
        .identity
        .create_region(c.ctx(), None, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::CREATED,
        "region",
        &r,
        base.v3(&format!("regions/{}", r.id)),
    ))
}

/// `PUT /v3/regions/{id}`: create with a chosen id.
pub async fn put_region(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let r = s
        .identity
        .create_region(c.ctx(), Some(&id), json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::CREATED,
        "region",
        &r,
        base.v3(&format!("regions/{id}")),
    ))
}

async fn get_region(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let r = s.identity.get_region(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "region",
        &r,
        base.v3(&format!("regions/{id}")),
    ))
}

async fn update_region(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let r = s
        .identity
        .update_region(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "region",
        &r,
        base.v3(&format!("regions/{id}")),
    ))
}

async fn delete_region(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.identity.delete_region(c.ctx(), &id).await?;
    Ok(no_content())
}

async fn list_services(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s.identity.list_services(c.ctx(), &list_params(q)).await?;
    Ok(collection(
        "services",
        page,
        &base,
        "services",
        &raw.unwrap_or_default(),
        |x| &x.id,
    ))
}

async fn create_service(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    body: Bytes,
) -> ApiResult {
    let x = s
        .identity
        .create_service(c.ctx(), json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::CREATED,
        "service",
        &x,
        base.v3(&format!("services/{}", x.id)),
    ))
}

async fn get_service(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let x = s.identity.get_service(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "service",
        &x,
        base.v3(&format!("services/{id}")),
    ))
}

async fn update_service(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let x = s
        .identity
        .update_service(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "service",
        &x,
        base.v3(&format!("services/{id}")),
    ))
}

async fn delete_service(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.identity.delete_service(c.ctx(), &id).await?;
    Ok(no_content())
}

async fn list_endpoints(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s.identity.list_endpoints(c.ctx(), &list_params(q)).await?;
    Ok(collection(
        "endpoints",
        page,
        &base,
        "endpoints",
        &raw.unwrap_or_default(),
        |x| &x.id,
    ))
}

async fn create_endpoint(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    body: Bytes,
) -> ApiResult {
    let x = s
        .identity
        .create_endpoint(c.ctx(), json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::CREATED,
        "endpoint",
        &x,
        base.v3(&format!("endpoints/{}", x.id)),
    ))
}

async fn get_endpoint(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let x = s.identity.get_endpoint(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "endpoint",
        &x,
        base.v3(&format!("endpoints/{id}")),
    ))
}

async fn update_endpoint(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let x = s
        .identity
        .update_endpoint(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "endpoint",
        &x,
        base.v3(&format!("endpoints/{id}")),
    ))
}

async fn delete_endpoint(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    s.identity.delete_endpoint(c.ctx(), &id).await?;
    Ok(no_content())
}
