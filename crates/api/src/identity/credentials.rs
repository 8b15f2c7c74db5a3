//! Credentials, EC2 credentials (`OS-EC2`), application credentials, and
//! `/v3/ec2tokens` (with the legacy `/v2.0/ec2tokens` shape).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use ferrostack_core::context::Scope;
use ferrostack_core::time::iso_time;
use ferrostack_identity::Error;
use ferrostack_identity::credential::Ec2Credential;

use super::{ApiResult, Base, Caller, collection, json_body, list_params, member, no_content};
use crate::AppState;
use crate::errors::keystone::KeystoneError;

type Q = Query<Vec<(String, String)>>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/credentials",
            get(list_credentials).post(create_credential),
        )
        .route(
            "/v3/credentials/{id}",
            get(get_credential)
                .patch(update_credential)
                .delete(delete_credential),
        )
        .route(
            "/v3/users/{uid}/credentials/OS-EC2",
            get(list_ec2).post(create_ec2),
        )
        .route(
            "/v3/users/{uid}/credentials/OS-EC2/{access}",
            get(get_ec2).delete(delete_ec2),
        )
        .route(
            "/v3/users/{uid}/application_credentials",
            get(list_app_creds).post(create_app_cred),
        )
        .route(
            "/v3/users/{uid}/application_credentials/{id}",
            get(get_app_cred).delete(delete_app_cred),
        )
}

async fn list_credentials(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s
        .identity
        .list_credentials(c.ctx(), &list_params(q))
        .await?;
    Ok(collection(
        "credentials",
        page,
        &base,
        "credentials",
        &raw.unwrap_or_default(),
        |x| &x.id,
    ))
}

async fn create_credential(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    body: Bytes,
) -> ApiResult {
    let x = s
        .identity
        .create_credential(c.ctx(), json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::CREATED,
        "credential",
        &x,
        base.v3(&format!("credentials/{}", x.id)),
    ))
}

async fn get_credential(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let x = s.identity.get_credential(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "credential",
        &x,
        base.v3(&format!("credentials/{id}")),
    ))
}

async fn update_credential(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let x = s
        .identity
        .update_credential(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "credential",
        &x,
        base.v3(&format!("credentials/{id}")),
    ))
}

async fn delete_credential(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    s.identity.delete_credential(c.ctx(), &id).await?;
    Ok(no_content())
}

// ----- OS-EC2 ----------------------------------------------------------------------------

fn ec2_json(c: &Ec2Credential, base: &Base) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    v["links"] =
        json!({"self": base.v3(&format!("users/{}/credentials/OS-EC2/{}", c.user_id, c.access))});
    v
}

async fn create_ec2(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(uid): Path<String>,
    body: Bytes,
) -> ApiResult {
    let x = s
        .identity
        .create_ec2_credential(c.ctx(), &uid, json_body(&body)?)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"credential": ec2_json(&x, &base)})),
    )
        .into_response())
}

async fn list_ec2(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(uid): Path<String>,
) -> ApiResult {
    let list = s.identity.list_ec2_credentials(c.ctx(), &uid).await?;
    Ok(axum::Json(json!({
        "credentials": list.iter().map(|x| ec2_json(x, &base)).collect::<Vec<_>>(),
        "links": {"self": base.v3(&format!("users/{uid}/credentials/OS-EC2")), "previous": null, "next": null}
    }))
    .into_response())
}

async fn get_ec2(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path((uid, access)): Path<(String, String)>,
) -> ApiResult {
    let x = s
        .identity
        .get_ec2_credential(c.ctx(), &uid, &access)
        .await?;
    Ok(axum::Json(json!({"credential": ec2_json(&x, &base)})).into_response())
}

async fn delete_ec2(
    State(s): State<AppState>,
    c: Caller,
    Path((uid, access)): Path<(String, String)>,
) -> ApiResult {
    s.identity
        .delete_ec2_credential(c.ctx(), &uid, &access)
        .await?;
    Ok(no_content())
}

// ----- application credentials -----------------------------------------------------------

async fn list_app_creds(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(uid): Path<String>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s
        .identity
        .list_application_credentials(c.ctx(), &uid, &list_params(q))
        .await?;
    let path = format!("users/{uid}/application_credentials");
    Ok(collection(
        "application_credentials",
        page,
        &base,
        &path,
        &raw.unwrap_or_default(),
        |x| &x.id,
    ))
}

async fn create_app_cred(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(uid): Path<String>,
    body: Bytes,
) -> ApiResult {
    let x = s
        .identity
        .create_application_credential(c.ctx(), &uid, json_body(&body)?)
        .await?;
    let url = base.v3(&format!("users/{uid}/application_credentials/{}", x.id));
    Ok(member(
        StatusCode::CREATED,
        "application_credential",
        &x,
        url,
    ))
}

async fn get_app_cred(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path((uid, id)): Path<(String, String)>,
) -> ApiResult {
    let x = s
        .identity
        .get_application_credential(c.ctx(), &uid, &id)
        .await?;
    let url = base.v3(&format!("users/{uid}/application_credentials/{id}"));
    Ok(member(StatusCode::OK, "application_credential", &x, url))
}

async fn delete_app_cred(
    State(s): State<AppState>,
    c: Caller,
    Path((uid, id)): Path<(String, String)>,
) -> ApiResult {
    s.identity
        .delete_application_credential(c.ctx(), &uid, &id)
        .await?;
    Ok(no_content())
}

// ----- ec2tokens -------------------------------------------------------------------------

/// `POST /v3/ec2tokens`: 200 with the token body and `X-Subject-Token`.
pub async fn ec2tokens(State(s): State<AppState>, c: Caller, body: Bytes) -> ApiResult {
    let issued = s
        .identity
        .ec2_authenticate(c.ctx(), &json_body(&body)?)
        .await?;
    let rendered = super::token_view::token_body(&s.identity, &issued.valid, true).await?;
    let mut resp = (StatusCode::OK, rendered).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_str(&issued.token).map_err(|_| {
            KeystoneError::from(Error::Internal("token is not a valid header".into()))
        })?,
    );
    Ok(resp)
}

/// `POST /v2.0/ec2tokens`: the same check, answered in Keystone v2.0's `access` shape
/// (what the classic Nova EC2 API parsed).
pub async fn ec2tokens_v2(State(s): State<AppState>, c: Caller, body: Bytes) -> ApiResult {
    let issued = s
        .identity
        .ec2_authenticate(c.ctx(), &json_body(&body)?)
        .await?;
    let v = &issued.valid;
    let ctx = &v.context;
    let tenant = match &ctx.scope {
        Scope::Project { id, name, .. } => {
            json!({"id": id, "name": name, "enabled": true, "description": null})
        }
        _ => Value::Null,
    };
    let catalog = s.identity.catalog_for(ctx.project_id()).await?;
    let service_catalog: Vec<Value> = catalog
        .iter()
        .map(|svc| {
            let url = |i: &str| {
                svc.endpoints
                    .iter()
                    .find(|e| e.interface == i)
                    .map(|e| e.url.clone())
            };
            let region = svc.endpoints.first().and_then(|e| e.region_id.clone());
            json!({
                "type": svc.kind,
                "name": svc.name,
                "endpoints": [{
                    "id": svc.endpoints.first().map(|e| e.id.clone()),
                    "region": region,
                    "publicURL": url("public"),
                    "internalURL": url("internal"),
                    "adminURL": url("admin"),
                }],
                "endpoints_links": [],
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "access": {
            "token": {
                "id": issued.token,
                "expires": iso_time(v.expires_at),
                "issued_at": iso_time(v.issued_at_us / 1_000_000),
                "tenant": tenant,
                "audit_ids": v.audit_ids,
            },
            "user": {
                "id": ctx.user_id,
                "name": ctx.user_name,
                "username": ctx.user_name,
                "roles": v.roles.iter().map(|r| json!({"name": r.name})).collect::<Vec<_>>(),
                "roles_links": [],
            },
            "serviceCatalog": service_catalog,
            "metadata": {
                "is_admin": 0,
                "roles": v.roles.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            },
        }
    }))
    .into_response())
}
