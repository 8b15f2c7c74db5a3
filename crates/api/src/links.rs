//! The base URL a service is reached at, as the client reached it ([`Base`]):
//! every link, `Location` and `next` href is built from it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::Mount;

/// A service's base URL as the client reached it (`http://host:port/identity`,
/// `…/compute`): the mount's `public_url` when configured, else `Host` + prefix.
#[derive(Debug, Clone)]
pub struct Base(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mount = parts.extensions.get::<Mount>();
        if let Some(url) = mount.and_then(|m| m.public_url.clone()) {
            return Ok(Base(url.trim_end_matches('/').to_string()));
        }
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|s| *s == "https")
            .unwrap_or("http");
        let prefix = mount.map(|m| m.prefix).unwrap_or("");
        Ok(Base(format!("{scheme}://{host}{prefix}")))
    }
}

impl Base {
    pub fn v3(&self, path: &str) -> String {
        format!("{}/v3/{path}", self.0)
    }
}
