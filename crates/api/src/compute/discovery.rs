//! Version discovery: `GET /compute` lists the versions, `GET /compute/v2.1` shows
//! v2.1 with its microversion range (what keystoneauth reads).

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use ferrostack_compute::ApiVersion;

use crate::links::Base;

fn v21_doc(base: &Base) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": ApiVersion::MAX.to_string(),
        "min_version": ApiVersion::MIN.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [
            {"rel": "self", "href": format!("{}/v2.1/", base.0)},
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
        ],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.compute+json;version=2.1",
        }],
    })
}

/// The legacy v2.0 entry Nova lists first (its API is v2.1 without microversions;
/// ferrostack serves only `/v2.1`, so the link points there).
fn v20_doc(base: &Base) -> Value {
    json!({
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{}/v2.1/", base.0)}],
    })
}

pub async fn root(base: Base) -> Response {
    axum::Json(json!({ "versions": [v20_doc(&base), v21_doc(&base)] })).into_response()
}

pub async fn v21(base: Base) -> Response {
    axum::Json(json!({ "version": v21_doc(&base) })).into_response()
}
