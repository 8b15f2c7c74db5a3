//! Remote consoles over Nova's API: `POST /servers/{id}/remote-consoles` (2.6+),
//! the legacy `os-getVNCConsole` / `os-getSPICEConsole` / `os-getSerialConsole` /
//! `os-getRDPConsole` actions (2.1–2.5), and `GET /os-console-auth-tokens/{token}`
//! for admins. Bodies are checked as Nova's schemas check them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use ferrostack_compute::Error;

use super::{ApiResult, Mv, json_body};
use crate::AppState;
use crate::auth::Caller;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/servers/{id}/remote-consoles", post(create))
        .route("/os-console-auth-tokens/{token}", get(auth_token))
}

fn not_found() -> Error {
    Error::NotFound("The resource could not be found.".into())
}

/// Nova's jsonschema message for a value outside an enum.
fn not_one_of(field: &str, v: &Value, allowed: &[&str]) -> Error {
    let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let list = allowed
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Error::BadRequest(format!(
        "Invalid input for field/attribute {field}. Value: {shown}. '{shown}' is not one of [{list}]"
    ))
}

fn required(field: &str, parent: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input for field/attribute {parent}. '{field}' is a required property"
    ))
}

fn enum_field<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    parent: &str,
    allowed: &[&str],
) -> Result<&'a str, Error> {
    let v = obj.get(field).ok_or_else(|| required(field, parent))?;
    v.as_str()
        .filter(|s| allowed.contains(s))
        .ok_or_else(|| not_one_of(field, v, allowed))
}

fn no_extra(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), Error> {
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::BadRequest(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(())
}

/// `POST /servers/{id}/remote-consoles`.
async fn create(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    if !mv.at_least(2, 6) {
        return Err(not_found().into());
    }
    let body = json_body(&body)?;
    let top = body
        .as_object()
        .ok_or_else(|| Error::BadRequest("The request body must be an object.".into()))?;
    no_extra(top, &["remote_console"])?;
    let rc = top
        .get("remote_console")
        .ok_or_else(|| required("remote_console", "remote_console"))?
        .as_object()
        .ok_or_else(|| {
            not_one_of(
                "remote_console",
                top.get("remote_console").unwrap_or(&Value::Null),
                &[],
            )
        })?;
    no_extra(rc, &["protocol", "type"])?;
    let mut protocols = vec!["vnc", "spice", "rdp", "serial"];
    let mut types = vec!["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"];
    if mv.at_least(2, 8) {
        protocols.push("mks");
        types.push("webmks");
    }
    if mv.at_least(2, 99) {
        types.push("spice-direct");
    }
    let protocol = enum_field(rc, "protocol", "remote_console", &protocols)?;
    let kind = enum_field(rc, "type", "remote_console", &types)?;
    let out = console_url(&s, &c, &id, protocol, kind).await?;
    Ok(axum::Json(json!({"remote_console": {
        "protocol": protocol,
        "type": kind,
        "url": out,
    }}))
    .into_response())
}

async fn console_url(
    s: &AppState,
    c: &Caller,
    id: &str,
    protocol: &str,
    kind: &str,
) -> Result<String, Error> {
    if matches!(protocol, "rdp" | "mks") {
        // a missing server is 404 before the console type matters
        s.compute.get_server(c.ctx(), id).await?;
        return Err(Error::BadRequest(format!(
            "Unavailable console type {kind}."
        )));
    }
    Ok(s.compute
        .create_console(c.ctx(), id, protocol, kind)
        .await?
        .url)
}

/// The legacy console actions (microversions 2.1 to 2.5): `{"console": {type, url}}`.
pub(super) async fn legacy_action(
    s: &AppState,
    c: &Caller,
    mv: ferrostack_compute::ApiVersion,
    id: &str,
    name: &str,
    arg: &Value,
) -> ApiResult {
    if mv.at_least(2, 6) {
        return Err(not_found().into());
    }
    let (protocol, allowed): (&str, &[&str]) = match name {
        "os-getVNCConsole" => ("vnc", &["novnc", "xvpvnc"]),
        "os-getSPICEConsole" => ("spice", &["spice-html5"]),
        "os-getSerialConsole" => ("serial", &["serial"]),
        _ => ("rdp", &["rdp-html5"]),
    };
    let obj = arg.as_object().ok_or_else(|| not_one_of(name, arg, &[]))?;
    let kind = enum_field(obj, "type", name, allowed)?;
    let url = console_url(s, c, id, protocol, kind).await?;
    Ok(axum::Json(json!({"console": {"type": kind, "url": url}})).into_response())
}

/// `GET /os-console-auth-tokens/{token}` (admins; every type from 2.31).
async fn auth_token(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(token): Path<String>,
) -> ApiResult {
    let info = s
        .compute
        .console_auth_token(c.ctx(), &token)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => {
                Error::NotFound("The token '***' is invalid or has expired".into())
            }
            other => other,
        })?;
    if !mv.at_least(2, 31) {
        // before 2.31 only RDP tokens could be looked up, and ferrostack has none
        // (Nova answers 401 here)
        return Ok(crate::errors::nova::body(
            axum::http::StatusCode::UNAUTHORIZED,
            "The requested console type details are not accessible",
        ));
    }
    let mut console = json!({
        "instance_uuid": info.instance_uuid,
        "host": info.host,
        "port": info.port,
        "internal_access_path": info.internal_access_path,
    });
    if mv.at_least(2, 99) {
        console["tls_port"] = json!(info.tls_port);
    }
    Ok(axum::Json(json!({ "console": console })).into_response())
}
