//! The EC2 Query API over HTTP: GET query or form POST at any path under its
//! mount (`/ec2`, or `/` and `/services/Cloud` on its own port). The request's
//! signature covers the path the client used, so the original URI is read, not
//! the one the router stripped. Answers are XML in the namespace of the
//! request's `Version` (STS's `GetCallerIdentity` in STS's), with `requestId`
//! and a `Date` header (SDKs correct their clock skew from it).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use ferrostack_ec2::{Action, HttpRequest};

use crate::AppState;
use crate::errors::ec2::{Ec2Error, xml_response};

/// The biggest request body read (AWS caps Query requests far lower in practice).
const MAX_BODY: usize = 1 << 20;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", any(handle))
        .route("/{*rest}", any(handle))
        .with_state(state)
}

fn request_id(h: &HeaderMap) -> String {
    let rid = h
        .get(crate::layers::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    rid.strip_prefix("req-").unwrap_or(rid).to_string()
}

fn decode_pairs(s: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rid = request_id(&headers);
    let query = decode_pairs(uri.query().unwrap_or("").as_bytes());
    let is_form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let form = if method == Method::POST && is_form {
        decode_pairs(&body)
    } else {
        Vec::new()
    };
    let req = HttpRequest {
        verb: method.as_str().to_string(),
        host: headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        path: uri.path().to_string(),
        query,
        form,
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: body.to_vec(),
    };
    let params = req.action_params();
    // STS and IAM callers (GetCallerIdentity, or any request signed for the sts/iam
    // service) get the awsquery dialect's errors.
    let scope_service = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split_once("Credential="))
        .and_then(|(_, c)| c.split([',', ' ']).next())
        .and_then(|c| c.split('/').nth(3))
        .map(str::to_string);
    let sts = params.get("Action") == Some("GetCallerIdentity")
        || matches!(scope_service.as_deref(), Some("sts" | "iam"));
    let version = params
        .get("Version")
        .filter(|v| v.len() == 10 && v.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        .unwrap_or("2016-11-15")
        .to_string();
    let fail = |e: ferrostack_ec2::Error| {
        Ec2Error {
            error: e,
            request_id: rid.clone(),
            sts,
        }
        .into_response()
    };
    if method != Method::GET && method != Method::POST {
        return fail(ferrostack_ec2::Error::new(
            405,
            "InvalidHttpRequest",
            "The Query API is GET or POST.",
        ));
    }
    if body.len() > MAX_BODY {
        return fail(ferrostack_ec2::Error::new(
            413,
            "RequestEntityTooLarge",
            "The request is too large.",
        ));
    }
    let caller = match state.ec2.authenticate(&req).await {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let action = match Action::parse(&params) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let name = action.name();
    let namespace = if action.is_sts() {
        "https://sts.amazonaws.com/doc/2011-06-15/".to_string()
    } else {
        format!("http://ec2.amazonaws.com/doc/{version}/")
    };
    match state.ec2.call(&caller, action, &rid).await {
        Ok(reply) => match xml_response(name, &namespace, &rid, sts, &reply) {
            Ok(r) => r,
            Err(e) => fail(ferrostack_ec2::Error::internal(e)),
        },
        Err(e) => fail(e),
    }
}
