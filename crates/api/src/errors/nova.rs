//! Nova's error dialect: `{"<faultName>": {"code": N, "message": "..."}}` with the
//! fault names of `nova/api/openstack/wsgi.py` (badRequest, forbidden,
//! itemNotFound, badMethod, conflictingRequest, overLimit, notImplemented, ...).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use ferrostack_compute::Error;

/// A compute error on its way to the client.
#[derive(Debug)]
pub struct NovaError(pub Error);

impl From<Error> for NovaError {
    fn from(e: Error) -> Self {
        NovaError(e)
    }
}

impl From<ferrostack_network::Error> for NovaError {
    fn from(e: ferrostack_network::Error) -> Self {
        NovaError(e.into())
    }
}

impl From<ferrostack_image::Error> for NovaError {
    fn from(e: ferrostack_image::Error) -> Self {
        NovaError(e.into())
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
        Error::Conflict(_) | Error::Stale(_) => StatusCode::CONFLICT,
        Error::OverLimit(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Nova's fault name for a status.
pub fn fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        406 => "notAcceptable",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

/// A Nova error response for a status and message.
pub fn body(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ fault_name(status): {"code": status.as_u16(), "message": message} })),
    )
        .into_response()
}

impl IntoResponse for NovaError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if let Error::Internal(source) = &self.0 {
            tracing::error!(error = %source, "internal error");
            return body(
                status,
                "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ \
                 and attach the Nova API log if possible.",
            );
        }
        body(status, &self.0.to_string())
    }
}
