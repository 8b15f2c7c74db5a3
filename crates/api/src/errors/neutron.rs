//! Neutron's error dialect: `{"NeutronError": {"type": "NetworkNotFound",
//! "message": "...", "detail": ""}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use ferrostack_network::Error;

/// A network error on its way to the client.
#[derive(Debug)]
pub struct NeutronError(pub Error);

impl From<Error> for NeutronError {
    fn from(e: Error) -> Self {
        NeutronError(e)
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A Neutron error response.
pub fn body(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"NeutronError": {"type": kind, "message": message, "detail": ""}})),
    )
        .into_response()
}

impl IntoResponse for NeutronError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if let Error::Internal(source) = &self.0 {
            tracing::error!(error = %source, "internal error");
            return body(
                status,
                "HTTPInternalServerError",
                "Request Failed: internal server error while processing your request.",
            );
        }
        body(status, self.0.kind(), &self.0.to_string())
    }
}
