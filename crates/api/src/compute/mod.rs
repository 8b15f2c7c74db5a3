//! Nova v2.1 over HTTP. A layer parses the microversion once per request
//! ([`Mv`]) and answers it in the response headers; handlers extract, call
//! [`Compute`](ferrostack_compute::Compute) and render Nova's enveloped JSON; errors
//! go through the Nova dialect.

mod catalog;
mod consoles;
mod discovery;
mod extensions;
mod server_view;
mod servers;
mod shares;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use ferrostack_compute::{ApiVersion, Error};

use crate::AppState;
use crate::errors::nova::{self, NovaError};

pub type ApiResult<T = Response> = Result<T, NovaError>;

/// Every Nova route, relative to the compute mount point.
pub fn router(state: AppState) -> Router {
    let v21 = Router::new()
        .route("/", get(discovery::v21))
        .route("/extensions", get(extensions::index))
        .route("/extensions/{alias}", get(extensions::show))
        .merge(catalog::routes())
        .merge(servers::routes())
        .merge(consoles::routes())
        .merge(shares::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(microversion));
    Router::new()
        .route("/", get(discovery::root))
        .nest("/v2.1", v21)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    nova::body(StatusCode::NOT_FOUND, "The resource could not be found.")
}

async fn method_not_allowed() -> Response {
    nova::body(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for the requested resource.",
    )
}

/// The request's compute microversion.
#[derive(Debug, Clone, Copy)]
pub struct Mv(pub ApiVersion);

impl<S: Send + Sync> FromRequestParts<S> for Mv {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Mv>()
            .copied()
            .unwrap_or(Mv(ApiVersion::MIN)))
    }
}

/// The version a request asks for: `OpenStack-API-Version: compute X.Y` wins over
/// `X-OpenStack-Nova-API-Version`; none = 2.1. `Err` carries the 400/406 answer.
fn requested_version(headers: &axum::http::HeaderMap) -> Result<ApiVersion, NovaError> {
    let mut asked: Option<String> = None;
    for v in headers.get_all("openstack-api-version") {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(',') {
            let mut words = part.split_whitespace();
            if words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("compute"))
            {
                asked = Some(words.collect::<Vec<_>>().join(" "));
            }
        }
    }
    if asked.is_none() {
        asked = headers
            .get("x-openstack-nova-api-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
    }
    let Some(asked) = asked else {
        return Ok(ApiVersion::MIN);
    };
    let Some(v) = ApiVersion::parse(&asked) else {
        return Err(Error::BadRequest(format!(
            "API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
        .into());
    };
    if !v.supported() {
        return Err(Error::NotAcceptable(format!(
            "Version {v} is not supported by the API. Minimum is {} and maximum is {}.",
            ApiVersion::MIN,
            ApiVersion::MAX
        ))
        .into());
    }
    Ok(v)
}

/// Parses the microversion, runs the handler, answers the version and the compute
/// request id headers.
async fn microversion(mut req: Request, next: Next) -> Response {
    let v = match requested_version(req.headers()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(Mv(v));
    let request_id = req.headers().get("x-openstack-request-id").cloned();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(val) = HeaderValue::from_str(&format!("compute {v}")) {
        h.insert("openstack-api-version", val);
    }
    if let Ok(val) = HeaderValue::from_str(&v.to_string()) {
        h.insert("x-openstack-nova-api-version", val);
    }
    h.insert(
        "vary",
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    if let Some(id) = request_id {
        h.insert("x-compute-request-id", id);
    }
    resp
}

/// Parses a JSON request body with Nova's message for malformed bodies.
pub fn json_body(bytes: &[u8]) -> Result<Value, NovaError> {
    if bytes.is_empty() {
        return Err(Error::BadRequest("The request body is empty.".into()).into());
    }
    serde_json::from_slice(bytes)
        .map_err(|_| Error::BadRequest("Malformed request body".into()).into())
}
