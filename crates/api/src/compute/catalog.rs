//! Routes for what servers are made from and limited by: flavors, key pairs,
//! availability zones, limits, quota sets, hypervisors, services, server groups.
//! The handlers live in `catalog/`; this file has the route list and the small
//! helpers they share (query pairs, Nova links).

mod flavors;
mod hypervisor_views;
mod hypervisors;
mod keypairs;
mod quotas;
mod server_groups;

use axum::Router;
use axum::routing::{get, put};
use serde_json::{Value, json};

use crate::AppState;
use crate::links::Base;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/flavors", get(flavors::index).post(flavors::create))
        .route("/flavors/detail", get(flavors::detail))
        .route(
            "/flavors/{id}",
            get(flavors::show)
                .put(flavors::update)
                .delete(flavors::delete),
        )
        .route("/flavors/{id}/action", axum::routing::post(flavors::action))
        .route("/flavors/{id}/os-flavor-access", get(flavors::access))
        .route(
            "/flavors/{id}/os-extra_specs",
            get(flavors::specs).post(flavors::create_specs),
        )
        .route(
            "/flavors/{id}/os-extra_specs/{key}",
            get(flavors::spec)
                .put(flavors::update_spec)
                .delete(flavors::delete_spec),
        )
        .route("/os-keypairs", get(keypairs::index).post(keypairs::create))
        .route(
            "/os-keypairs/{name}",
            get(keypairs::show).delete(keypairs::delete),
        )
        .route("/os-availability-zone", get(hypervisors::zones))
        .route(
            "/os-availability-zone/detail",
            get(hypervisors::zones_detail),
        )
        .route("/limits", get(quotas::limits))
        .route(
            "/os-quota-sets/{project}",
            get(quotas::show).put(quotas::update).delete(quotas::delete),
        )
        .route("/os-quota-sets/{project}/detail", get(quotas::detail))
        .route("/os-quota-sets/{project}/defaults", get(quotas::defaults))
        .route(
            "/os-quota-class-sets/{class}",
            get(quotas::class_show).put(quotas::class_update),
        )
        .route("/os-hypervisors", get(hypervisors::index))
        .route("/os-hypervisors/detail", get(hypervisors::detail))
        .route("/os-hypervisors/statistics", get(hypervisors::statistics))
        .route("/os-hypervisors/{id}", get(hypervisors::show))
        .route("/os-hypervisors/{id}/uptime", get(hypervisors::uptime))
        .route("/os-hypervisors/{id}/search", get(hypervisors::search))
        .route("/os-hypervisors/{id}/servers", get(hypervisors::servers))
        .route("/os-aggregates", get(hypervisors::aggregates))
        .route("/os-services", get(hypervisors::services))
        .route("/os-services/{id}", put(hypervisors::update_service))
        .route(
            "/os-server-groups",
            get(server_groups::index).post(server_groups::create),
        )
        .route(
            "/os-server-groups/{id}",
            get(server_groups::show).delete(server_groups::delete),
        )
}

/// Query string pairs, decoded.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

/// The last value of a query parameter.
pub(crate) fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `self` and `bookmark` links of a resource (`flavors/1`).
pub(crate) fn links(base: &Base, path: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/v2.1/{path}", base.0)},
        {"rel": "bookmark", "href": format!("{}/{path}", base.0)},
    ])
}

/// Nova's `<collection>_links`: a `next` link with the request's parameters and
/// `marker` set to the last item.
pub(crate) fn next_link(
    base: &Base,
    path: &str,
    pairs: &[(String, String)],
    marker: &str,
) -> Value {
    let mut kept: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "marker")
        .cloned()
        .collect();
    kept.push(("marker".into(), marker.to_string()));
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&kept)
        .finish();
    json!([{"rel": "next", "href": format!("{}/v2.1/{path}?{q}", base.0)}])
}
