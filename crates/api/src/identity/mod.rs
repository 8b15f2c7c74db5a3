//! Keystone v3 over HTTP. Handlers extract (`crate::auth::Caller`,
//! `crate::links::Base`), call [`Identity`], and render; the helpers here give them
//! the JSON body (Keystone's messages for malformed JSON), list parameters and
//! Keystone's entity and collection shapes.

mod catalog;
mod credentials;
mod discovery;
mod resources;
mod roles;
mod token_view;
mod tokens;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Serialize;
use serde_json::{Map, Value, json};

use ferrostack_identity::{Error, ListParams, Page};

use crate::AppState;
use crate::auth::Caller;
use crate::errors::keystone::KeystoneError;
use crate::links::Base;

pub type ApiResult<T = Response> = Result<T, KeystoneError>;

/// Every Keystone v3 route, relative to the identity mount point.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(discovery::versions))
        .route("/v3", get(discovery::v3))
        .route("/v3/", get(discovery::v3))
        .route(
            "/v3/auth/tokens",
            post(tokens::issue)
                .get(tokens::validate)
                .delete(tokens::revoke),
        )
        .route("/v3/auth/catalog", get(tokens::catalog))
        .route("/v3/auth/projects", get(tokens::projects))
        .route("/v3/auth/domains", get(tokens::domains))
        .route("/v3/auth/system", get(tokens::system))
        .route("/v3/ec2tokens", post(credentials::ec2tokens))
        .route("/v2.0/ec2tokens", post(credentials::ec2tokens_v2))
        .merge(resources::routes())
        .merge(roles::routes())
        .merge(catalog::routes())
        .merge(credentials::routes())
        .route("/v3/regions/{id}", put(catalog::put_region))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    crate::errors::keystone::body(StatusCode::NOT_FOUND, "The resource could not be found.")
}

async fn method_not_allowed() -> Response {
    crate::errors::keystone::body(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for the requested resource.",
    )
}

/// Parses a JSON request body with Keystone's messages.
pub fn json_body(bytes: &[u8]) -> Result<Value, KeystoneError> {
    if bytes.is_empty() {
        return Err(Error::Validation(
            "Expecting to find valid JSON in request body - the server could not comply with the \
             request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
                .into(),
        )
        .into());
    }
    serde_json::from_slice(bytes).map_err(|_| {
        Error::Validation(
            "Expecting to find valid JSON in request body - the server could not comply with the \
             request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
                .into(),
        )
        .into()
    })
}

/// Query parameters as list parameters.
pub fn list_params(q: Vec<(String, String)>) -> ListParams {
    ListParams(q)
}

/// An entity as JSON with its `links.self`.
pub fn with_link<T: Serialize>(item: &T, self_url: String) -> Value {
    let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("links".into(), json!({ "self": self_url }));
    }
    v
}

/// `{"<member>": {...}}` with status.
pub fn member<T: Serialize>(status: StatusCode, key: &str, item: &T, self_url: String) -> Response {
    let mut m = Map::new();
    m.insert(key.into(), with_link(item, self_url));
    (status, axum::Json(Value::Object(m))).into_response()
}

/// `{"<collection>": [...], "links": {...}}`, Keystone's collection shape.
pub fn collection<T: Serialize>(
    key: &str,
    page: Page<T>,
    base: &Base,
    path: &str,
    query: &str,
    id_of: fn(&T) -> &str,
) -> Response {
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|i| with_link(i, base.v3(&format!("{path}/{}", id_of(i)))))
        .collect();
    let self_url = if query.is_empty() {
        base.v3(path)
    } else {
        format!("{}?{query}", base.v3(path))
    };
    let next = page.next_marker.map(|m| {
        let kept: Vec<String> = query
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("marker="))
            .map(str::to_string)
            .collect();
        let mut q = kept.join("&");
        if !q.is_empty() {
            q.push('&');
        }
        format!("{}?{q}marker={m}", base.v3(path))
    });
    let mut m = Map::new();
    m.insert(key.into(), Value::Array(items));
    m.insert(
        "links".into(),
        json!({"self": self_url, "previous": null, "next": next}),
    );
    if page.truncated {
        m.insert("truncated".into(), Value::Bool(true));
    }
    axum::Json(Value::Object(m)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
