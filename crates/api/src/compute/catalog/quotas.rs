//! `/limits`, `/os-quota-sets/{project}[/detail|/defaults]` and
//! `/os-quota-class-sets/{class}`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_compute::ApiVersion;
use ferrostack_compute::quota_sets::{InUse, quota_class_keys, quota_keys};
use ferrostack_compute::quotas::QuotaLimits;
use serde_json::Map;

use super::{param, query_pairs};
use crate::AppState;
use crate::auth::Caller;
use crate::compute::{ApiResult, Mv, json_body};

pub async fn limits(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let tenant = param(&query_pairs(q.as_deref()), "tenant_id");
    let (l, u) = s
        .compute
        .absolute_limits(c.ctx(), tenant.as_deref())
        .await?;
    Ok(axum::Json(json!({"limits": {
        "rate": [],
        "absolute": Value::Object(render_absolute_limits(v, &l, &u)),
    }}))
    .into_response())
}

async fn quota_set(
    s: AppState,
    c: Caller,
    v: ferrostack_compute::ApiVersion,
    project: String,
    q: Option<String>,
    detail: bool,
) -> ApiResult {
    let user = param(&query_pairs(q.as_deref()), "user_id");
    let (l, used) = s
        .compute
        .quota_set(c.ctx(), &project, user.as_deref(), detail)
        .await?;
    Ok(axum::Json(json!({
        "quota_set": Value::Object(render_quota_set(v, &l, used.as_ref(), Some(&project))),
    }))
    .into_response())
}

pub async fn show(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    quota_set(s, c, v, project, q, false).await
}

pub async fn detail(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    quota_set(s, c, v, project, q, true).await
}

pub async fn defaults(
    State(s): State<AppState>,
    _c: Caller,
    Mv(v): Mv,
    Path(project): Path<String>,
) -> ApiResult {
    let l = s.compute.quota_defaults().await?;
    Ok(axum::Json(json!({
        "quota_set": Value::Object(render_quota_set(v, &l, None, Some(&project))),
    }))
    .into_response())
}

pub async fn update(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult {
    let user = param(&query_pairs(q.as_deref()), "user_id");
    let l = s
        .compute
        .update_quota_set(c.ctx(), v, &project, user.as_deref(), &json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({
        "quota_set": Value::Object(render_quota_set(v, &l, None, None)),
    }))
    .into_response())
}

pub async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let user = param(&query_pairs(q.as_deref()), "user_id");
    s.compute
        .delete_quota_set(c.ctx(), &project, user.as_deref())
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn class_show(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(class): Path<String>,
) -> ApiResult {
    let l = s.compute.quota_class_set(c.ctx()).await?;
    Ok(axum::Json(json!({
        "quota_class_set": Value::Object(render_quota_class_set(v, &l, Some(&class))),
    }))
    .into_response())
}

pub async fn class_update(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(class): Path<String>,
    body: Bytes,
) -> ApiResult {
    let l = s
        .compute
        .update_quota_class_set(c.ctx(), v, &class, &json_body(&body)?)
        .await?;
    Ok(axum::Json(json!({
        "quota_class_set": Value::Object(render_quota_class_set(v, &l, None)),
    }))
    .into_response())
}

/// A quota set body: `{key: limit}` or, with `in_use`, `{key: {in_use, limit, reserved}}`.
pub fn render_quota_set(
    v: ApiVersion,
    limits: &QuotaLimits,
    in_use: Option<&InUse>,
    id: Option<&str>,
) -> Map<String, Value> {
    render_keys(quota_keys(v), limits, in_use, id)
}

/// A quota class set body (`{key: limit}`, with `id` when shown).
pub fn render_quota_class_set(
    v: ApiVersion,
    limits: &QuotaLimits,
    id: Option<&str>,
) -> Map<String, Value> {
    render_keys(quota_class_keys(v), limits, None, id)
}

fn render_keys(
    keys: Vec<&'static str>,
    limits: &QuotaLimits,
    in_use: Option<&InUse>,
    id: Option<&str>,
) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("id".into(), json!(id));
    }
    for k in keys {
        let limit = limits.get(k).unwrap_or(-1);
        let value = match in_use {
            None => json!(limit),
            Some(u) => json!({"in_use": u.get(k), "limit": limit, "reserved": 0}),
        };
        m.insert(k.to_string(), value);
    }
    m
}

/// `GET /limits` absolute limits at this microversion.
pub fn render_absolute_limits(v: ApiVersion, l: &QuotaLimits, u: &InUse) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, n: i64| {
        m.insert(k.to_string(), json!(n));
    };
    put("maxServerMeta", l.metadata_items);
    put("maxTotalInstances", l.instances);
    put("maxTotalCores", l.cores);
    put("maxTotalRAMSize", l.ram);
    put("maxTotalKeypairs", l.key_pairs);
    put("maxServerGroups", l.server_groups);
    put("maxServerGroupMembers", l.server_group_members);
    put("totalInstancesUsed", u.instances);
    put("totalCoresUsed", u.cores);
    put("totalRAMUsed", u.ram);
    put("totalServerGroupsUsed", u.server_groups);
    if !v.at_least(2, 39) {
        put("maxImageMeta", l.metadata_items);
    }
    if !v.at_least(2, 57) {
        put("maxPersonality", l.injected_files);
        put("maxPersonalitySize", l.injected_file_content_bytes);
    }
    if !v.at_least(2, 36) {
        put("maxSecurityGroups", -1);
        put("maxSecurityGroupRules", -1);
        put("maxTotalFloatingIps", -1);
        put("totalSecurityGroupsUsed", 0);
        put("totalFloatingIpsUsed", 0);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QuotaLimits {
        QuotaLimits::defaults(&Default::default())
    }

    #[test]
    fn quota_set_keys_follow_microversions() {
        let at = |minor| render_quota_set(ApiVersion::new(2, minor), &limits(), None, Some("p"));
        let old = at(1);
        assert_eq!(old["id"], "p");
        assert_eq!(old["floating_ips"], -1);
        assert!(!old.contains_key("networks")); // tempest's 2.1 schema forbids it
        assert_eq!(old["injected_files"], 5);
        assert_eq!(old["key_pairs"], 100);
        let mid = at(36);
        assert!(!mid.contains_key("floating_ips"));
        assert!(mid.contains_key("injected_files"));
        let new = at(57);
        assert!(!new.contains_key("injected_files"));
        assert!(!new.contains_key("injected_file_path_bytes"));
        assert_eq!(new["instances"], 10);
        assert_eq!(new.len(), 8); // id + 7
        let d = render_quota_set(
            ApiVersion::new(2, 57),
            &limits(),
            Some(&InUse {
                cores: 3,
                ..Default::default()
            }),
            None,
        );
        assert_eq!(d["cores"], json!({"in_use": 3, "limit": 20, "reserved": 0}));
    }

    #[test]
    fn absolute_limits_follow_microversions() {
        let at =
            |minor| render_absolute_limits(ApiVersion::new(2, minor), &limits(), &InUse::default());
        let old = at(1);
        for k in [
            "maxTotalFloatingIps",
            "maxImageMeta",
            "maxPersonality",
            "maxPersonalitySize",
            "totalFloatingIpsUsed",
        ] {
            assert!(old.contains_key(k), "{k}");
        }
        assert_eq!(old["maxTotalRAMSize"], 51200);
        let v36 = at(36);
        assert!(!v36.contains_key("maxTotalFloatingIps"));
        assert!(v36.contains_key("maxImageMeta"));
        let v39 = at(39);
        assert!(!v39.contains_key("maxImageMeta"));
        assert!(v39.contains_key("maxPersonality"));
        let v57 = at(57);
        assert!(!v57.contains_key("maxPersonality"));
        assert_eq!(v57.len(), 11);
    }
}
