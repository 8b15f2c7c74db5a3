//! Roles, implied roles, grants (`/v3/{projects|domains|system}/.../roles/{role}`)
//! and `/v3/role_assignments`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Map, Value, json};

use ferrostack_identity::model::{Actor, Assignment, Role, Target};
use ferrostack_identity::{AssignmentQuery, Error, Inference};

use super::{
    ApiResult, Base, Caller, collection, json_body, list_params, member, no_content, with_link,
};
use crate::AppState;
use crate::errors::keystone::KeystoneError;

type Q = Query<Vec<(String, String)>>;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/v3/roles", get(list_roles).post(create_role))
        .route(
            "/v3/roles/{id}",
            get(get_role).patch(update_role).delete(delete_role),
        )
        .route("/v3/roles/{id}/implies", get(list_implied))
        .route(
            "/v3/roles/{id}/implies/{implied}",
            get(get_implied)
                .head(check_implied)
                .put(create_implied)
                .delete(delete_implied),
        )
        .route("/v3/role_inferences", get(role_inferences))
        .route("/v3/role_assignments", get(role_assignments));
    for target in ["/v3/projects/{tid}", "/v3/domains/{tid}", "/v3/system"] {
        for actor in ["users", "groups"] {
            r = r
                .route(&format!("{target}/{actor}/{{aid}}/roles"), get(list_grants))
                .route(
                    &format!("{target}/{actor}/{{aid}}/roles/{{rid}}"),
                    get(check_grant).put(create_grant).delete(revoke_grant),
                );
        }
    }
    r
}

fn role_ref(r: &Role, base: &Base) -> Value {
    json!({"id": r.id, "name": r.name, "links": {"self": base.v3(&format!("roles/{}", r.id))}})
}

async fn list_roles(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = s.identity.list_roles(c.ctx(), &list_params(q)).await?;
    Ok(collection(
        "roles",
        page,
        &base,
        "roles",
        &raw.unwrap_or_default(),
        |r| &r.id,
    ))
}

async fn create_role(State(s): State<AppState>, c: Caller, base: Base, body: Bytes) -> ApiResult {
    let r = s.identity.create_role(c.ctx(), json_body(&body)?).await?;
    Ok(member(
        StatusCode::CREATED,
        "role",
        &r,
        base.v3(&format!("roles/{}", r.id)),
    ))
}

async fn get_role(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let r = s.identity.get_role(c.ctx(), &id).await?;
    Ok(member(
        StatusCode::OK,
        "role",
        &r,
        base.v3(&format!("roles/{id}")),
    ))
}

async fn update_role(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let r = s
        .identity
        .update_role(c.ctx(), &id, json_body(&body)?)
        .await?;
    Ok(member(
        StatusCode::OK,
        "role",
        &r,
        base.v3(&format!("roles/{id}")),
    ))
}

async fn delete_role(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.identity.delete_role(c.ctx(), &id).await?;
    Ok(no_content())
}

fn inference_json(inf: &Inference, base: &Base) -> Value {
    json!({
        "prior_role": role_ref(&inf.prior, base),
        "implies": inf.implies.iter().map(|r| role_ref(r, base)).collect::<Vec<_>>(),
    })
}

async fn list_implied(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let inf = s.identity.list_implied_roles(c.ctx(), &id).await?;
    Ok(axum::Json(json!({
        "role_inference": inference_json(&inf, &base),
        "links": {"self": base.v3(&format!("roles/{id}/implies"))}
    }))
    .into_response())
}

fn one_inference(prior: &Role, implied: &Role, base: &Base) -> Value {
    json!({
        "role_inference": {"prior_role": role_ref(prior, base), "implies": role_ref(implied, base)},
        "links": {"self": base.v3(&format!("roles/{}/implies/{}", prior.id, implied.id))}
    })
}

async fn get_implied(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path((id, implied)): Path<(String, String)>,
) -> ApiResult {
    let (p, i) = s.identity.get_implied_role(c.ctx(), &id, &implied).await?;
    Ok(axum::Json(one_inference(&p, &i, &base)).into_response())
}

/// `HEAD /v3/roles/{prior}/implies/{implied}`: Keystone's "check" answers 204, where GET
/// answers 200 with the rule.
async fn check_implied(
    State(s): State<AppState>,
    c: Caller,
    Path((id, implied)): Path<(String, String)>,
) -> ApiResult {
    s.identity.get_implied_role(c.ctx(), &id, &implied).await?;
    Ok(no_content())
}

async fn create_implied(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path((id, implied)): Path<(String, String)>,
) -> ApiResult {
    let (p, i) = s
        .identity
        .create_implied_role(c.ctx(), &id, &implied)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(one_inference(&p, &i, &base)),
    )
        .into_response())
}

async fn delete_implied(
    State(s): State<AppState>,
    c: Caller,
    Path((id, implied)): Path<(String, String)>,
) -> ApiResult {
    s.identity
        .delete_implied_role(c.ctx(), &id, &implied)
        .await?;
    Ok(no_content())
}

async fn role_inferences(State(s): State<AppState>, c: Caller, base: Base) -> ApiResult {
    let all = s.identity.list_role_inferences(c.ctx()).await?;
    Ok(axum::Json(json!({
        "role_inferences": all.iter().map(|i| inference_json(i, &base)).collect::<Vec<_>>(),
        "links": {"self": base.v3("role_inferences"), "previous": null, "next": null}
    }))
    .into_response())
}

// ----- grants ----------------------------------------------------------------------------

/// Which actor and target a grant route names, read from the matched route template.
fn grant_parties(
    path: &MatchedPath,
    params: &HashMap<String, String>,
) -> Result<(Actor, Target), KeystoneError> {
    let p = path.as_str();
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let actor = if p.contains("/users/") {
        Actor::User(get("aid"))
    } else {
        Actor::Group(get("aid"))
    };
    let target = if p.contains("/v3/projects/") {
        Target::Project(get("tid"))
    } else if p.contains("/v3/domains/") {
        Target::Domain(get("tid"))
    } else if p.contains("/v3/system/") {
        Target::System
    } else {
        return Err(Error::Internal(format!("unexpected grant route {p}").into()).into());
    };
    Ok((actor, target))
}

async fn list_grants(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    mp: MatchedPath,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult {
    let (actor, target) = grant_parties(&mp, &params)?;
    let roles = s.identity.list_grants(c.ctx(), actor, target).await?;
    let items: Vec<Value> = roles
        .iter()
        .map(|r| with_link(r, base.v3(&format!("roles/{}", r.id))))
        .collect();
    Ok(
        axum::Json(
            json!({"roles": items, "links": {"self": null, "previous": null, "next": null}}),
        )
        .into_response(),
    )
}

async fn check_grant(
    State(s): State<AppState>,
    c: Caller,
    mp: MatchedPath,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult {
    let (actor, target) = grant_parties(&mp, &params)?;
    let rid = params.get("rid").cloned().unwrap_or_default();
    s.identity.check_grant(c.ctx(), actor, target, &rid).await?;
    Ok(no_content())
}

async fn create_grant(
    State(s): State<AppState>,
    c: Caller,
    mp: MatchedPath,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult {
    let (actor, target) = grant_parties(&mp, &params)?;
    let rid = params.get("rid").cloned().unwrap_or_default();
    s.identity
        .create_grant(c.ctx(), actor, target, &rid)
        .await?;
    Ok(no_content())
}

async fn revoke_grant(
    State(s): State<AppState>,
    c: Caller,
    mp: MatchedPath,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult {
    let (actor, target) = grant_parties(&mp, &params)?;
    let rid = params.get("rid").cloned().unwrap_or_default();
    s.identity
        .revoke_grant(c.ctx(), actor, target, &rid)
        .await?;
    Ok(no_content())
}

// ----- role assignments --------------------------------------------------------------------

fn present(q: &[(String, String)], key: &str) -> bool {
    q.iter()
        .any(|(k, v)| k == key && (v.is_empty() || ferrostack_identity::fields::query_bool(v)))
}

async fn role_assignments(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Query(q): Q,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    if present(&q, "include_subtree") {
        return Err(Error::Validation("include_subtree is not supported.".into()).into());
    }
    let query = AssignmentQuery {
        user_id: get("user.id"),
        group_id: get("group.id"),
        role_id: get("role.id"),
        project_id: get("scope.project.id"),
        domain_id: get("scope.domain.id"),
        system: get("scope.system").is_some(),
        effective: present(&q, "effective"),
    };
    if query.effective && query.group_id.is_some() {
        return Err(Error::Validation(
            "Combining effective and group filter will always result in an empty list.".into(),
        )
        .into());
    }
    let list = s.identity.list_role_assignments(c.ctx(), &query).await?;
    let names = if present(&q, "include_names") {
        Some(s.identity.assignment_names(&list).await?)
    } else {
        None
    };
    let items: Vec<Value> = list
        .iter()
        .map(|a| assignment_json(a, &base, names.as_ref()))
        .collect();
    let self_url = match raw {
        Some(r) if !r.is_empty() => format!("{}?{r}", base.v3("role_assignments")),
        _ => base.v3("role_assignments"),
    };
    Ok(axum::Json(json!({"role_assignments": items, "links": {"self": self_url, "previous": null, "next": null}})).into_response())
}

fn assignment_json(
    a: &Assignment,
    base: &Base,
    names: Option<&ferrostack_identity::Names>,
) -> Value {
    let mut o = Map::new();
    let named = |kind: &str, id: &str| -> Value {
        let mut v = json!({ "id": id });
        if let Some(n) = names
            && let Some(e) = n.get(kind, id)
        {
            v["name"] = json!(e.name);
            if let Some((did, dname)) = &e.domain {
                v["domain"] = json!({"id": did, "name": dname});
            }
        }
        v
    };
    o.insert("role".into(), named("role", &a.role_id));
    let (actor_key, actor_seg, actor_id) = match &a.actor {
        Actor::User(u) => ("user", "users", u.clone()),
        Actor::Group(g) => ("group", "groups", g.clone()),
    };
    o.insert(actor_key.into(), named(actor_key, &actor_id));
    let (scope, target_seg) = match &a.target {
        Target::Project(p) => (
            json!({"project": named("project", p)}),
            format!("projects/{p}"),
        ),
        Target::Domain(d) => (
            json!({"domain": named("domain", d)}),
            format!("domains/{d}"),
        ),
        Target::System => (json!({"system": {"all": true}}), "system".to_string()),
    };
    o.insert("scope".into(), scope);
    let role_for_link = a.prior_role.as_deref().unwrap_or(&a.role_id);
    let mut links = Map::new();
    let assignment = match &a.via_group {
        Some(g) => base.v3(&format!("{target_seg}/groups/{g}/roles/{role_for_link}")),
        None => base.v3(&format!(
            "{target_seg}/{actor_seg}/{actor_id}/roles/{role_for_link}"
        )),
    };
    links.insert("assignment".into(), json!(assignment));
    if let Some(g) = &a.via_group {
        links.insert(
            "membership".into(),
            json!(base.v3(&format!("groups/{g}/users/{actor_id}"))),
        );
    }
    if let Some(p) = &a.prior_role {
        links.insert("prior_role".into(), json!(base.v3(&format!("roles/{p}"))));
    }
    o.insert("links".into(), Value::Object(links));
    Value::Object(o)
}
