//! Version discovery, in the shapes keystoneauth parses: `GET /` answers 300 with
//! `{"versions": {"values": [...]}}`, `GET /v3` answers 200 with `{"version": ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Base;

fn v3_version(base: &Base) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/v3/", base.0)}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json"
        }]
    })
}

pub async fn versions(base: Base) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({"versions": {"values": [v3_version(&base)]}})),
    )
        .into_response()
}

pub async fn v3(base: Base) -> Response {
    axum::Json(json!({"version": v3_version(&base)})).into_response()
}
