//! `/v3/auth/*`: issue, validate (GET/HEAD), revoke, and what a token may scope to.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use ferrostack_core::context::Scope;
use ferrostack_identity::Error;

use super::token_view::token_body;
use super::{ApiResult, Base, Caller, header as hdr, json_body, with_link};
use crate::AppState;
use crate::errors::keystone::KeystoneError;

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    nocatalog: Option<String>,
    allow_expired: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref()
        .is_some_and(ferrostack_identity::fields::query_bool)
}

fn token_response(status: StatusCode, token: &str, body: Bytes) -> ApiResult {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-subject-token",
        HeaderValue::from_str(token).map_err(|_| {
            KeystoneError::from(Error::Internal("token is not a valid header".into()))
        })?,
    );
    Ok(resp)
}

/// `POST /v3/auth/tokens`.
pub async fn issue(
    State(s): State<AppState>,
    base: Base,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let issued = s
        .identity
        .authenticate(&body)
        .await
        .map_err(|e| KeystoneError {
            error: e,
            www_authenticate: Some(base.0.clone()),
        })?;
    let rendered = token_body(&s.identity, &issued.valid, !flag(&q.nocatalog)).await?;
    token_response(StatusCode::CREATED, &issued.token, rendered)
}

/// `GET`/`HEAD /v3/auth/tokens`: validates `X-Subject-Token`.
pub async fn validate(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> ApiResult {
    let subject = hdr(&headers, "x-subject-token").ok_or_else(|| {
        KeystoneError::from(Error::Validation(
            "Expecting to find X-Subject-Token in request headers.".into(),
        ))
    })?;
    let v = s.identity.validate(subject, flag(&q.allow_expired)).await?;
    s.identity.may_validate(caller.ctx(), &v)?;
    let rendered = token_body(&s.identity, &v, !flag(&q.nocatalog)).await?;
    token_response(StatusCode::OK, subject, rendered)
}

/// `DELETE /v3/auth/tokens`.
pub async fn revoke(State(s): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult {
    let subject = hdr(&headers, "x-subject-token").ok_or_else(|| {
        KeystoneError::from(Error::Validation(
            "Expecting to find X-Subject-Token in request headers.".into(),
        ))
    })?;
    s.identity.revoke_token(caller.ctx(), subject).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v3/auth/catalog`.
pub async fn catalog(State(s): State<AppState>, caller: Caller, base: Base) -> ApiResult {
    if matches!(caller.ctx().scope, Scope::Unscoped) {
        return Err(Error::ForbiddenAction(
            "A catalog can only be retrieved with a scoped token.".into(),
        )
        .into());
    }
    let cat = s.identity.catalog_for(caller.ctx().project_id()).await?;
    Ok(axum::Json(json!({"catalog": cat, "links": {"self": base.v3("auth/catalog"), "previous": null, "next": null}})).into_response())
}

/// `GET /v3/auth/projects`: the enabled projects the caller may scope to.
pub async fn projects(State(s): State<AppState>, caller: Caller, base: Base) -> ApiResult {
    let list = s.identity.scopable_projects(&caller.ctx().user_id).await?;
    let items: Vec<_> = list
        .iter()
        .map(|p| with_link(p, base.v3(&format!("projects/{}", p.id))))
        .collect();
    Ok(axum::Json(json!({"projects": items, "links": {"self": base.v3("auth/projects"), "previous": null, "next": null}})).into_response())
}

/// `GET /v3/auth/domains`: the enabled domains the caller may scope to.
pub async fn domains(State(s): State<AppState>, caller: Caller, base: Base) -> ApiResult {
    let list = s.identity.scopable_domains(&caller.ctx().user_id).await?;
    let items: Vec<_> = list
        .iter()
        .map(|d| with_link(d, base.v3(&format!("domains/{}", d.id))))
        .collect();
    Ok(axum::Json(json!({"domains": items, "links": {"self": base.v3("auth/domains"), "previous": null, "next": null}})).into_response())
}

/// `GET /v3/auth/system`.
pub async fn system(State(s): State<AppState>, caller: Caller, base: Base) -> ApiResult {
    let has = s.identity.has_system_role(&caller.ctx().user_id).await?;
    let system = if has {
        json!([{"all": true}])
    } else {
        json!([])
    };
    Ok(axum::Json(json!({"system": system, "links": {"self": base.v3("auth/system"), "previous": null, "next": null}})).into_response())
}
