//! Version discovery: `GET /network` lists v2.0; `GET /network/v2.0` lists the
//! resources (Neutron's answer).

use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::links::Base;

pub async fn root(base: Base) -> Response {
    axum::Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{}/v2.0/", base.0)}],
    }]}))
    .into_response()
}

pub async fn v20(base: Base) -> Response {
    let resources: Vec<_> = [
        ("subnet", "subnets"),
        ("network", "networks"),
        ("port", "ports"),
        ("security_group", "security-groups"),
        ("security_group_rule", "security-group-rules"),
        ("quota", "quotas"),
    ]
    .iter()
    .map(|(name, coll)| {
        json!({"name": name, "collection": coll,
               "links": [{"rel": "self", "href": format!("{}/v2.0/{coll}", base.0)}]})
    })
    .collect();
    axum::Json(json!({ "resources": resources })).into_response()
}
