//! `POST /servers/{id}/action` (the body is parsed once by
//! `compute::servers::actions::parse_action`; this matches on the result and
//! answers), the instance actions (`os-instance-actions`) and the server password.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_compute::servers::actions::{ServerAction, parse_action};
use ferrostack_compute::servers::ops::Action;
use ferrostack_compute::{ApiVersion, Error};
use ferrostack_core::RequestContext;

use super::super::server_view::{self, Shape};
use super::super::{ApiResult, Mv, json_body};
use super::{request_id, us_iso};
use crate::AppState;
use crate::auth::Caller;
use crate::links::Base;

pub(super) async fn action(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    base: Base,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let rid = request_id(&headers);
    let ctx = c.ctx();
    let act = match parse_action(&body, mv)? {
        ServerAction::Change(act) => act,
        ServerAction::ForceDelete => {
            s.compute.delete_server(ctx, &id, &rid).await?;
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        ServerAction::ConsoleOutput { lines } => {
            let out = s.compute.console_output(ctx, &id, lines).await?;
            return Ok(axum::Json(json!({"output": out})).into_response());
        }
        ServerAction::LegacyConsole { name, body } => {
            return super::super::consoles::legacy_action(&s, &c, mv, &id, &name, &body).await;
        }
        ServerAction::ResetState { state } => {
            s.compute.reset_state(ctx, &id, &state).await?;
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        ServerAction::Unknown(other) => {
            // a missing server is 404 whatever the action
            s.compute.get_server(ctx, &id).await?;
            return Err(Error::BadRequest(format!("There is no such action: {other}")).into());
        }
    };
    let is_rebuild = matches!(act, Action::Rebuild(_));
    let is_image = matches!(
        act,
        Action::CreateImage { .. } | Action::CreateBackup { .. }
    );
    // Nova answers confirmResize with 204, every other action with 202.
    let status = if matches!(act, Action::ConfirmResize) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    };
    let out = s.compute.server_action(ctx, &id, act, &rid).await?;
    if is_rebuild {
        let srv = s.compute.get_server(ctx, &id).await?;
        let mut v = serde_json::to_value(server_view::server_view(
            &srv,
            mv,
            ctx,
            &base,
            Shape::Rebuild,
        ))
        .map_err(Error::from)?;
        if let Some(p) = out.admin_pass {
            v["adminPass"] = Value::String(p);
        }
        return Ok((StatusCode::ACCEPTED, axum::Json(json!({ "server": v }))).into_response());
    }
    if is_image && let Some(image_id) = out.image_id {
        if mv.at_least(2, 45) {
            return Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({"image_id": image_id})),
            )
                .into_response());
        }
        let mut resp = StatusCode::ACCEPTED.into_response();
        if let Ok(loc) = HeaderValue::from_str(&format!("{}/images/{image_id}", base.0)) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
        return Ok(resp);
    }
    Ok(status.into_response())
}

pub(super) fn action_view(
    a: &ferrostack_compute::instance_actions::InstanceAction,
    mv: ApiVersion,
    ctx: &RequestContext,
    with_events: bool,
) -> Value {
    let mut v = json!({
        "action": a.action,
        "instance_uuid": a.server_id,
        "message": a.message,
        "project_id": a.project_id,
        "request_id": a.request_id,
        "start_time": us_iso(a.start_us),
        "user_id": a.user_id,
    });
    if mv.at_least(2, 58) {
        v["updated_at"] = json!(us_iso(a.updated_at_us));
    }
    if with_events {
        let events: Vec<Value> = a
            .events
            .iter()
            .map(|e| {
                let mut ev = json!({
                    "event": e.event,
                    "start_time": us_iso(e.start_us),
                    "finish_time": e.finish_us.map(us_iso),
                    "result": e.result,
                });
                if ctx.is_admin() {
                    ev["traceback"] = json!(e.traceback);
                }
                if mv.at_least(2, 84) {
                    // what went wrong, for everyone who may see the action
                    ev["details"] = json!(
                        e.traceback
                            .as_ref()
                            .filter(|_| e.result.as_deref() == Some("Error"))
                    );
                }
                if mv.at_least(2, 62) {
                    if ctx.is_admin() {
                        ev["host"] = json!(e.host);
                    }
                    ev["hostId"] = json!("");
                }
                ev
            })
            .collect();
        v["events"] = Value::Array(events);
    }
    v
}

pub(super) async fn actions_list(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    let acts = s.compute.instance_actions(c.ctx(), &id).await?;
    let items: Vec<Value> = acts
        .iter()
        .map(|a| action_view(a, mv, c.ctx(), false))
        .collect();
    Ok(axum::Json(json!({"instanceActions": items})).into_response())
}

pub(super) async fn actions_show(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path((id, req)): Path<(String, String)>,
) -> ApiResult {
    let acts = s.compute.instance_actions(c.ctx(), &id).await?;
    let a = acts.iter().find(|a| a.request_id == req).ok_or_else(|| {
        Error::NotFound(format!(
            "Action for request_id {req} on instance {id} not found"
        ))
    })?;
    Ok(axum::Json(json!({"instanceAction": action_view(a, mv, c.ctx(), true)})).into_response())
}

pub(super) async fn password_show(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let p = s.compute.server_password(c.ctx(), &id, false).await?;
    Ok(axum::Json(json!({"password": p})).into_response())
}

pub(super) async fn password_clear(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    s.compute.server_password(c.ctx(), &id, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
