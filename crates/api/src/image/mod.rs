//! Glance v2 over HTTP. Handlers extract, call [`Images`](ferrostack_image::Images)
//! and render Glance's flat JSON; errors go through the Glance dialect. Bytes are
//! streamed in both directions (never buffered whole).

mod data;
mod discovery;
mod images;
mod members;
mod schemas;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use serde_json::Value;

use crate::AppState;
use crate::errors::glance::{self, GlanceError};

pub type ApiResult<T = Response> = Result<T, GlanceError>;

/// Every Glance route, relative to the image mount point.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(discovery::root))
        .route("/versions", get(discovery::versions))
        .route("/v2", get(discovery::versions))
        .route("/v2/", get(discovery::versions))
        .route("/v2/images", get(images::list).post(images::create))
        .route(
            "/v2/images/{id}",
            get(images::show)
                .patch(images::update)
                .delete(images::delete),
        )
        .route(
            "/v2/images/{id}/file",
            put(data::upload).get(data::download),
        )
        .route("/v2/images/{id}/stage", put(data::stage))
        .route("/v2/images/{id}/import", post(data::import))
        .route("/v2/images/{id}/tasks", get(images::tasks))
        .route(
            "/v2/images/{id}/actions/deactivate",
            post(images::deactivate),
        )
        .route(
            "/v2/images/{id}/actions/reactivate",
            post(images::reactivate),
        )
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(images::add_tag).delete(images::delete_tag),
        )
        .route(
            "/v2/images/{id}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/v2/images/{id}/members/{member}",
            get(members::show)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/v2/schemas/image", get(schemas::image))
        .route("/v2/schemas/images", get(schemas::images))
        .route("/v2/schemas/member", get(schemas::member))
        .route("/v2/schemas/members", get(schemas::members))
        .route("/v2/info/import", get(discovery::import_info))
        .route("/v2/info/stores", get(discovery::stores_info))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    glance::body(StatusCode::NOT_FOUND, "The resource could not be found.")
}

async fn method_not_allowed() -> Response {
    glance::body(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for the requested resource.",
    )
}

/// Parses a JSON request body with Glance's message for malformed JSON.
fn json_body(bytes: &[u8]) -> Result<Value, GlanceError> {
    serde_json::from_slice(bytes).map_err(|_| {
        GlanceError(ferrostack_image::Error::Invalid(
            "Malformed JSON in request body.".into(),
        ))
    })
}
