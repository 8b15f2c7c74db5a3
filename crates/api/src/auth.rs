//! Who is calling: the [`Caller`] extractor validates `X-Auth-Token` through the
//! identity service (401 in Keystone's shape when missing or invalid); every
//! service's handlers take it.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use ferrostack_identity::{Error, ValidToken};

use crate::AppState;
use crate::errors::keystone::KeystoneError;
use crate::links::Base;

/// The validated caller of a request (`X-Auth-Token`); 401 when missing or invalid.
pub struct Caller(pub Arc<ValidToken>);

impl Caller {
    pub fn ctx(&self) -> &ferrostack_core::RequestContext {
        &self.0.context
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = KeystoneError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let base = Base::from_request_parts(parts, state)
            .await
            .ok()
            .map(|b| b.0);
        let unauth = |base: Option<String>| KeystoneError {
            error: Error::unauthenticated(),
            www_authenticate: base,
        };
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauth(base.clone()))?;
        match state.identity.validate(token, false).await {
            Ok(v) => Ok(Caller(v)),
            Err(Error::Internal(e)) => Err(Error::Internal(e).into()),
            Err(_) => Err(unauth(base)),
        }
    }
}

impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = KeystoneError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        if parts.headers.contains_key("x-auth-token") {
            <Caller as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}
