//! `/os-server-groups`: list (own project; admin `all_projects`), create, show,
//! delete. 2.64 replaces `policies` with `policy` + `rules`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_compute::ApiVersion;
use ferrostack_compute::server_groups::{ServerGroup, ServerGroupQuery};

use super::{param, query_pairs};
use crate::AppState;
use crate::auth::Caller;
use crate::compute::{ApiResult, Mv, json_body};

pub async fn index(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let pairs = query_pairs(q.as_deref());
    let query = ServerGroupQuery {
        all_projects: param(&pairs, "all_projects"),
        limit: param(&pairs, "limit"),
        offset: param(&pairs, "offset"),
    };
    let list = s.compute.list_server_groups(c.ctx(), &query).await?;
    Ok(axum::Json(json!({
        "server_groups": list.iter().map(|g| view(g, v)).collect::<Vec<_>>(),
    }))
    .into_response())
}

pub async fn create(State(s): State<AppState>, c: Caller, Mv(v): Mv, body: Bytes) -> ApiResult {
    let g = s
        .compute
        .create_server_group(c.ctx(), v, &json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({"server_group": view(&g, v)})).into_response())
}

pub async fn show(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    let g = s.compute.get_server_group(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"server_group": view(&g, v)})).into_response())
}

pub async fn delete(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.compute.delete_server_group(c.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Nova's server group body at this microversion (`policies` + `metadata` below
/// 2.64, `policy` + `rules` from it; owner ids from 2.13).
fn view(g: &ServerGroup, v: ApiVersion) -> Value {
    let mut m = json!({
        "id": g.id,
        "name": g.name,
        "members": g.members,
    });
    if v.at_least(2, 64) {
        m["policy"] = json!(g.policy);
        m["rules"] = Value::Object(g.rules.clone());
    } else {
        m["policies"] = json!([g.policy]);
        m["metadata"] = json!({});
    }
    if v.at_least(2, 13) {
        m["project_id"] = json!(g.project_id);
        m["user_id"] = json!(g.user_id);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn rendering_follows_microversions() {
        let g = ServerGroup {
            id: "i".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            name: "n".into(),
            policy: "affinity".into(),
            rules: Map::new(),
            members: vec![],
        };
        let old = view(&g, ApiVersion::new(2, 1));
        assert_eq!(old["policies"], json!(["affinity"]));
        assert_eq!(old["metadata"], json!({}));
        assert!(old.get("project_id").is_none());
        let new = view(&g, ApiVersion::new(2, 64));
        assert_eq!(new["policy"], "affinity");
        assert_eq!(new["rules"], json!({}));
        assert!(new.get("policies").is_none());
        assert_eq!(new["user_id"], "u");
    }
}
