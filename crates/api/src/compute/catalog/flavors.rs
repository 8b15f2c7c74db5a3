//! `/flavors`: list (summary and detail), show, create, update (2.55), delete,
//! extra specs, and the access list of private flavors.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_compute::ApiVersion;
use ferrostack_compute::flavors::{Flavor, FlavorQuery};

use super::{links, next_link, param, query_pairs};
use crate::AppState;
use crate::auth::Caller;
use crate::compute::{ApiResult, Mv, json_body};
use crate::links::Base;

/// Nova's flavor view: summary (`id`, `name`, `links`) or detail.
pub(crate) fn render(base: &Base, v: ApiVersion, f: &Flavor, detail: bool) -> Value {
    let mut m = json!({
        "id": f.id,
        "name": f.name,
        "links": links(base, &format!("flavors/{}", f.id)),
    });
    if v.at_least(2, 55) {
        m["description"] = json!(f.description);
    }
    if !detail {
        return m;
    }
    m["ram"] = json!(f.memory_mb);
    m["disk"] = json!(f.root_gb);
    m["vcpus"] = json!(f.vcpus);
    m["swap"] = if f.swap_mb == 0 && !v.at_least(2, 75) {
        json!("")
    } else {
        json!(f.swap_mb)
    };
    m["OS-FLV-EXT-DATA:ephemeral"] = json!(f.ephemeral_gb);
    m["OS-FLV-DISABLED:disabled"] = json!(f.disabled);
    m["os-flavor-access:is_public"] = json!(f.is_public);
    m["rxtx_factor"] = json!(f.rxtx_factor);
    if v.at_least(2, 61) {
        m["extra_specs"] = json!(f.extra_specs);
    }
    m
}

fn one(base: &Base, v: ApiVersion, f: &Flavor) -> axum::response::Response {
    axum::Json(json!({"flavor": render(base, v, f, true)})).into_response()
}

async fn list(
    s: AppState,
    c: Caller,
    v: ApiVersion,
    base: Base,
    q: Option<String>,
    detail: bool,
) -> ApiResult {
    let pairs = query_pairs(q.as_deref());
    let query = FlavorQuery {
        is_public: param(&pairs, "is_public"),
        min_ram: param(&pairs, "minRam"),
        min_disk: param(&pairs, "minDisk"),
        sort_key: param(&pairs, "sort_key"),
        sort_dir: param(&pairs, "sort_dir"),
        limit: param(&pairs, "limit"),
        marker: param(&pairs, "marker"),
    };
    let (page, full) = s.compute.list_flavors(c.ctx(), &query).await?;
    let mut body = json!({
        "flavors": page.iter().map(|f| render(&base, v, f, detail)).collect::<Vec<_>>(),
    });
    if full && let Some(last) = page.last() {
        let path = if detail { "flavors/detail" } else { "flavors" };
        body["flavors_links"] = next_link(&base, path, &pairs, &last.id);
    }
    Ok(axum::Json(body).into_response())
}

pub async fn index(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    base: Base,
    RawQuery(q): RawQuery,
) -> ApiResult {
    list(s, c, v, base, q, false).await
}

pub async fn detail(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    base: Base,
    RawQuery(q): RawQuery,
) -> ApiResult {
    list(s, c, v, base, q, true).await
}

pub async fn show(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let f = s.compute.get_flavor(c.ctx(), &id).await?;
    Ok(one(&base, v, &f))
}

pub async fn create(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    base: Base,
    body: Bytes,
) -> ApiResult {
    let f = s
        .compute
        .create_flavor(c.ctx(), v, &json_body(&body)?)
        .await?;
    Ok(one(&base, v, &f))
}

pub async fn update(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    if !v.at_least(2, 55) {
        // Nova: no version of this method below 2.55
        return Ok(crate::errors::nova::body(
            StatusCode::NOT_FOUND,
            "The resource could not be found.",
        ));
    }
    let f = s
        .compute
        .update_flavor(c.ctx(), &id, &json_body(&body)?)
        .await?;
    Ok(one(&base, v, &f))
}

pub async fn delete(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.compute.delete_flavor(c.ctx(), &id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn access_body(id: &str, projects: &[String]) -> axum::response::Response {
    axum::Json(json!({
        "flavor_access": projects
            .iter()
            .map(|p| json!({"flavor_id": id, "tenant_id": p}))
            .collect::<Vec<_>>(),
    }))
    .into_response()
}

pub async fn access(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let projects = s.compute.flavor_access(c.ctx(), &id).await?;
    Ok(access_body(&id, &projects))
}

/// `POST /flavors/{id}/action`: `addTenantAccess`, `removeTenantAccess`.
pub async fn action(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let projects = s
        .compute
        .flavor_access_action(c.ctx(), v, &id, &json_body(&body)?)
        .await?;
    Ok(access_body(&id, &projects))
}

pub async fn specs(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let specs = s.compute.flavor_extra_specs(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"extra_specs": specs})).into_response())
}

pub async fn create_specs(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let specs = s
        .compute
        .create_flavor_extra_specs(c.ctx(), &id, &json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({"extra_specs": specs})).into_response())
}

pub async fn spec(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    let (k, val) = s.compute.flavor_extra_spec(c.ctx(), &id, &key).await?;
    Ok(axum::Json(json!({ k: val })).into_response())
}

pub async fn update_spec(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let (k, val) = s
        .compute
        .update_flavor_extra_spec(c.ctx(), &id, &key, &json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({ k: val })).into_response())
}

pub async fn delete_spec(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    s.compute
        .delete_flavor_extra_spec(c.ctx(), &id, &key)
        .await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tiny() -> Flavor {
        Flavor {
            id: "1".into(),
            name: "m1.tiny".into(),
            vcpus: 1,
            memory_mb: 512,
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            extra_specs: BTreeMap::from([("hw:cpu_policy".into(), "shared".into())]),
            is_public: true,
            disabled: false,
            description: None,
        }
    }

    #[test]
    fn flavor_views_follow_microversions() {
        let base = Base("http://h/compute".into());
        let f = tiny();
        let s = render(&base, ApiVersion::new(2, 1), &f, false);
        assert_eq!(s.as_object().unwrap().len(), 3);
        assert_eq!(s["links"][0]["href"], "http://h/compute/v2.1/flavors/1");
        assert_eq!(s["links"][1]["href"], "http://h/compute/flavors/1");
        let d = render(&base, ApiVersion::new(2, 1), &f, true);
        assert_eq!(d["swap"], "");
        assert_eq!(d["ram"], 512);
        assert!(d.get("description").is_none());
        assert!(d.get("extra_specs").is_none());
        let d = render(&base, ApiVersion::new(2, 55), &f, true);
        assert_eq!(d["description"], Value::Null);
        let d = render(&base, ApiVersion::new(2, 61), &f, true);
        assert_eq!(d["extra_specs"]["hw:cpu_policy"], "shared");
        let d = render(&base, ApiVersion::new(2, 75), &f, true);
        assert_eq!(d["swap"], 0);
    }
}
