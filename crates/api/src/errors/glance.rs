//! Glance's error dialect: webob's JSON error body
//! `{"code": "404 Not Found", "title": "Not Found", "message": "..."}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use ferrostack_image::Error;

/// An image error on its way to the client.
#[derive(Debug)]
pub struct GlanceError(pub Error);

impl From<Error> for GlanceError {
    fn from(e: Error) -> Self {
        GlanceError(e)
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Invalid(_) => StatusCode::BAD_REQUEST,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Gone(_) => StatusCode::GONE,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::InvalidImageData(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A Glance error response for a status and message.
pub fn body(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        axum::Json(json!({
            "code": format!("{} {title}", status.as_u16()),
            "title": title,
            "message": message,
        })),
    )
        .into_response()
}

impl IntoResponse for GlanceError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if let Error::Internal(source) = &self.0 {
            tracing::error!(error = %source, "internal error");
        }
        let mut resp = body(status, &self.0.to_string());
        if let Error::RangeNotSatisfiable { size } = &self.0
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        resp
    }
}
