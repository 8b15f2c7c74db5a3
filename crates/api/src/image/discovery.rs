//! Version discovery (`GET /` answers 300, `/versions` 200, as Glance does) and the
//! `/v2/info/*` documents.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::links::Base;

/// The newest Glance API version whose behaviour ferrostack follows.
const CURRENT: u32 = 16;

fn versions_doc(base: &Base) -> Value {
    let href = format!("{}/v2/", base.0);
    let values: Vec<Value> = (0..=CURRENT)
        .rev()
        .map(|minor| {
            json!({
                "id": format!("v2.{minor}"),
                "status": if minor == CURRENT { "CURRENT" } else { "SUPPORTED" },
                "links": [{"rel": "self", "href": href}],
            })
        })
        .collect();
    json!({ "versions": values })
}

pub async fn root(base: Base) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(versions_doc(&base)),
    )
        .into_response()
}

pub async fn versions(base: Base) -> Response {
    axum::Json(versions_doc(&base)).into_response()
}

pub async fn import_info() -> Response {
    axum::Json(json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct"],
        }
    }))
    .into_response()
}

/// `GET /v2/info/stores`: Glance answers 404 unless multi-store (`enabled_backends`) is
/// configured, and clients (tempest's import waiter among them) read a 200 here as
/// "images carry a `stores` attribute", which single-store images do not.
pub async fn stores_info() -> Response {
    crate::errors::glance::body(
        StatusCode::NOT_FOUND,
        "Multi backend is not supported at this site.",
    )
}
