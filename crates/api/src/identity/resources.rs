//! Domains, projects, users (and their password, groups, projects), groups and
//! group membership.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::{ApiResult, Base, Caller, collection, json_body, list_params, member, no_content};
use crate::AppState;

type Q = Query<Vec<(String, String)>>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/domains", get(list_domains).post(create_domain))
        .route(
            "/v3/domains/{id}",
            get(get_domain).patch(update_domain).delete(delete_domain),
        )
        .route("/v3/projects", get(list_projects).post(create_project))
        .route(
            "/v3/projects/{id}",
            get(get_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route("/v3/users", get(list_users).post(create_user))
        .route(
            "/v3/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/v3/users/{id}/password", post(change_password))
        .route("/v3/users/{id}/groups", get(user_groups))
        .route("/v3/users/{id}/projects", get(user_projects))
        .route("/v3/groups", get(list_groups).post(create_group))
        .route(
            "/v3/groups/{id}",
            get(get_group).patch(update_group).delete(delete_group),
        )
        .route("/v3/groups/{id}/users", get(group_users))
        .route(
            "/v3/groups/{id}/users/{uid}",
            get(check_member).put(add_member).delete(remove_member),
        )
}

// ----- domains ---------------------------------------------------------------------------

async fn list_domains(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s.identity.list_domains(c.ctx(), &list_params(q)).await?;
    Ok(collection(
        "domains",
        page,
        &base,
        "domains",
        &raw.unwrap_or_default(),
        |d| &d.id,
    ))
}

async fn create_domain(State(s): State<AppState>, c: Caller, base: Base, body: Bytes) -> ApiResult {
    let d = s.identity.create_domain(c.ctx(), json_body(&body)?).await?;
    Ok(member(
        StatusCode::CREATED,
        "domain",
        &d,
        base.v3(&format!("domains/{}", d.id)),
    ))
}

async fn get_domain(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let d = s.identity.get_domain(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "domain",
        &d,
        base.v3(&format!("domains/{id}")),
    ))
}

async fn update_domain(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let d = s
        .identity
        .update_domain(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "domain",
        &d,
        base.v3(&format!("domains/{id}")),
    ))
}

async fn delete_domain(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.identity.delete_domain(c.ctx(), &id).await?;
    Ok(no_content())
}

// ----- projects --------------------------------------------------------------------------

async fn list_projects(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s.identity.list_projects(c.ctx(), &list_params(q)).await?;
    Ok(collection(
        "projects",
        page,
        &base,
        "projects",
        &raw.unwrap_or_default(),
        |p| &p.id,
    ))
}

async fn create_project(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    body: Bytes,
) -> ApiResult {
    let p = s
        .identity
        .create_project(c.ctx(), json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::CREATED,
        "project",
        &p,
        base.v3(&format!("projects/{}", p.id)),
    ))
}

async fn get_project(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let p = s.identity.get_project(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "project",
        &p,
        base.v3(&format!("projects/{id}")),
    ))
}

async fn update_project(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let p = s
        .identity
        .update_project(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "project",
        &p,
        base.v3(&format!("projects/{id}")),
    ))
}

async fn delete_project(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.identity.delete_project(c.ctx(), &id).await?;
    Ok(no_content())
}

// ----- users -----------------------------------------------------------------------------

async fn list_users(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s.identity.list_users(c.ctx(), &list_params(q)).await?;
    Ok(collection(
        "users",
        page,
        &base,
        "users",
        &raw.unwrap_or_default(),
        |u| &u.id,
    ))
}

async fn create_user(State(s): State<AppState>, c: Caller, base: Base, body: Bytes) -> ApiResult {
    let u = s.identity.create_user(c.ctx(), json_body(&body)?).await?;
    Ok(member(
        StatusCode::CREATED,
        "user",
        &u,
        base.v3(&format!("users/{}", u.id)),
    ))
}

async fn get_user(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let u = s.identity.get_user(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "user",
        &u,
        base.v3(&format!("users/{id}")),
    ))
}

async fn update_user(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let u = s
        .identity
        .update_user(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "user",
        &u,
        base.v3(&format!("users/{id}")),
    ))
}

async fn delete_user(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.identity.delete_user(c.ctx(), &id).await?;
    Ok(no_content())
}

/// Self-service password change: authenticated by the original password, like
/// Keystone (a token is not required, so an expired password can be changed).
async fn change_password(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    s.identity.change_password(&id, json_body(&body)?).await?;
    Ok(no_content())
}

async fn user_groups(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult<Response> {
    let page = s
        .identity
        .list_groups_for_user(c.ctx(), &id, &list_params(q))
        .await?;
    Ok(collection("groups", page, &base, "groups", "", |g| &g.id))
}

async fn user_projects(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let page = s
        .identity
        .list_user_projects(c.ctx(), &id, &list_params(q))
        .await?;
    Ok(collection("projects", page, &base, "projects", "", |p| {
        &p.id
    }))
}

// ----- groups ----------------------------------------------------------------------------

async fn list_groups(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s.identity.list_groups(c.ctx(), &list_params(q)).await?;
    Ok(collection(
        "groups",
        page,
        &base,
        "groups",
        &raw.unwrap_or_default(),
        |g| &g.id,
    ))
}

async fn create_group(State(s): State<AppState>, c: Caller, base: Base, body: Bytes) -> ApiResult {
    let g = s.identity.create_group(c.ctx(), json_body(&body)?).await?;
    Ok(member(
        StatusCode::CREATED,
        "group",
        &g,
        base.v3(&format!("groups/{}", g.id)),
    ))
}

async fn get_group(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let g = s.identity.get_group(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "group",
        &g,
        base.v3(&format!("groups/{id}")),
    ))
}

async fn update_group(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let g = s
        .identity
        .update_group(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "group",
        &g,
        base.v3(&format!("groups/{id}")),
    ))
}

async fn delete_group(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.identity.delete_group(c.ctx(), &id).await?;
    Ok(no_content())
}

async fn group_users(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let page = s
        .identity
        .list_users_in_group(c.ctx(), &id, &list_params(q))
        .await?;
    Ok(collection("users", page, &base, "users", "", |u| &u.id))
}

async fn check_member(
    State(s): State<AppState>,
    c: Caller,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult {
    s.identity.check_user_in_group(c.ctx(), &id, &uid).await?;
    Ok(no_content())
}

async fn add_member(
    State(s): State<AppState>,
    c: Caller,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult {
    s.identity.add_user_to_group(c.ctx(), &id, &uid).await?;
    Ok(no_content())
}

async fn remove_member(
    State(s): State<AppState>,
    c: Caller,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult {
    s.identity
        .remove_user_from_group(c.ctx(), &id, &uid)
        .await?;
    Ok(no_content())
}
