//! Keystone's error dialect: `{"error": {"code", "title", "message"}}`, plus
//! `WWW-Authenticate: Keystone uri="..."` on 401.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use ferrostack_identity::Error;

/// An identity error on its way to the client.
#[derive(Debug)]
pub struct KeystoneError {
    pub error: Error,
    /// The identity base URL for the WWW-Authenticate header.
    pub www_authenticate: Option<String>,
}

impl From<Error> for KeystoneError {
    fn from(error: Error) -> Self {
        KeystoneError {
            error,
            www_authenticate: None,
        }
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Validation(_) => StatusCode::BAD_REQUEST,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::ForbiddenAction(_) => StatusCode::FORBIDDEN,
        Error::NotFound { .. } | Error::NotFoundMessage(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A Keystone error response for a status and message.
pub fn body(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        axum::Json(json!({"error": {"code": status.as_u16(), "title": title, "message": message}})),
    )
        .into_response()
}

impl IntoResponse for KeystoneError {
    fn into_response(self) -> Response {
        let status = status_of(&self.error);
        if let Error::Internal(source) = &self.error {
            tracing::error!(error = %source, "identity request failed");
        }
        let message = match &self.error {
            // Keystone's validation messages carry this explanation.
            Error::Validation(m) if !m.contains("The client is assumed to be in error") => format!(
                "{m} The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
            ),
            other => other.to_string(),
        };
        let mut resp = body(status, &message);
        if status == StatusCode::UNAUTHORIZED {
            let uri = self.www_authenticate.unwrap_or_default();
            if let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{uri}\"")) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}
