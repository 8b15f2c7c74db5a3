//! Neutron v2.0 (subset) over HTTP. Handlers extract, call
//! [`Networks`](ferrostack_network::Networks) and render Neutron's JSON; errors go
//! through the Neutron dialect.

mod discovery;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::AppState;
use crate::errors::neutron::{self, NeutronError};

pub type ApiResult<T = Response> = Result<T, NeutronError>;

/// Every Neutron route, relative to the network mount point.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(discovery::root))
        .route("/v2.0", get(discovery::v20))
        .route("/v2.0/", get(discovery::v20))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    neutron::body(
        StatusCode::NOT_FOUND,
        "HTTPNotFound",
        "The resource could not be found.",
    )
}

async fn method_not_allowed() -> Response {
    neutron::body(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTPMethodNotAllowed",
        "The method specified is not allowed for the requested resource.",
    )
}
