//! Neutron v2.0 (subset) over HTTP. Handlers extract, call
//! [`Networks`](ferrostack_network::Networks) and render Neutron's JSON (`views.rs`,
//! then the list query: filters, sorting, paging, `fields`); errors go
//! through the Neutron dialect. One set of generic handlers serves every collection
//! (`networks`, `subnets`, `ports`, `security-groups`, `security-group-rules`).

mod discovery;
mod extensions;
mod quotas;
mod resources;
mod views;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;

use ferrostack_network::{Error, Kind};

use crate::AppState;
use crate::errors::neutron::{self, NeutronError};

pub type ApiResult<T = Response> = Result<T, NeutronError>;

/// Every Neutron route, relative to the network mount point.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(discovery::root))
        .route("/v2.0", get(discovery::v20))
        .route("/v2.0/", get(discovery::v20))
        .route("/v2.0/extensions", get(extensions::list))
        .route("/v2.0/extensions/{alias}", get(extensions::show))
        .route("/v2.0/quotas", get(quotas::list))
        .route(
            "/v2.0/quotas/{project}",
            get(quotas::show).put(quotas::update).delete(quotas::reset),
        )
        .route("/v2.0/quotas/{project}/default", get(quotas::defaults))
        .route("/v2.0/quotas/{project}/details", get(quotas::details))
        .route("/v2.0/{coll}", get(resources::list).post(resources::create))
        .route(
            "/v2.0/{coll}/{id}",
            get(resources::show)
                .put(resources::update)
                .delete(resources::delete),
        )
        .route(
            "/v2.0/{coll}/{id}/tags",
            get(resources::tags)
                .put(resources::replace_tags)
                .delete(resources::clear_tags),
        )
        .route(
            "/v2.0/{coll}/{id}/tags/{tag}",
            get(resources::has_tag)
                .put(resources::add_tag)
                .delete(resources::remove_tag),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

/// The resource kind behind a URL segment; anything else is an unknown resource.
fn kind_of(coll: &str) -> Result<Kind, NeutronError> {
    Ok(match coll {
        "networks" => Kind::Network,
        "subnets" => Kind::Subnet,
        "ports" => Kind::Port,
        "security-groups" => Kind::SecurityGroup,
        "security-group-rules" => Kind::SecurityGroupRule,
        _ => {
            return Err(NeutronError(Error::not_found(
                "HTTPNotFound",
                "The resource could not be found.",
            )));
        }
    })
}

/// Parses a JSON request body (Neutron's message for malformed JSON).
fn json_body(bytes: &[u8]) -> Result<Value, NeutronError> {
    serde_json::from_slice(bytes).map_err(|_| {
        NeutronError(Error::invalid(
            "MalformedRequestBody",
            "Malformed request body: Cannot understand JSON",
        ))
    })
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
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
