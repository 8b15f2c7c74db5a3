//! Admin views of the hosts: `/os-hypervisors` (list, detail, show, statistics,
//! search), `/os-services` (list, enable/disable/force down) and the availability
//! zones (`/os-availability-zone[/detail]`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_compute::ApiVersion;
use ferrostack_compute::hypervisors::{Host, HypervisorQuery};

use super::hypervisor_views as views;
use super::{next_link, param, query_pairs};
use crate::AppState;
use crate::auth::Caller;
use crate::compute::{ApiResult, Mv, json_body};
use crate::links::Base;

fn not_found() -> crate::errors::nova::NovaError {
    ferrostack_compute::Error::NotFound("The resource could not be found.".into()).into()
}

fn with_servers(mut m: Value, servers: Option<&Vec<(String, String)>>) -> Value {
    if let Some(list) = servers.filter(|l| !l.is_empty()) {
        m["servers"] = list
            .iter()
            .map(|(id, name)| json!({"uuid": id, "name": name}))
            .collect();
    }
    m
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
    let query = HypervisorQuery {
        limit: param(&pairs, "limit"),
        marker: param(&pairs, "marker"),
        hostname_pattern: param(&pairs, "hypervisor_hostname_pattern"),
        with_servers: param(&pairs, "with_servers"),
    };
    let (hosts, full) = s
        .compute
        .list_hypervisors(c.ctx(), v, detail, &query)
        .await?;
    let servers = if v.at_least(2, 53)
        && query
            .with_servers
            .as_deref()
            .is_some_and(|w| matches!(w.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
    {
        Some(s.compute.servers_on_hosts().await?)
    } else {
        None
    };
    let render = |h: &Host| {
        let m = if detail {
            views::detail(h, v)
        } else {
            views::summary(h, v)
        };
        with_servers(m, servers.as_ref().and_then(|s| s.get(&h.name)))
    };
    let mut body = json!({"hypervisors": hosts.iter().map(render).collect::<Vec<_>>()});
    if full && let Some(last) = hosts.last() {
        let marker = if v.at_least(2, 53) {
            last.id.clone()
        } else {
            last.number.to_string()
        };
        let path = if detail {
            "os-hypervisors/detail"
        } else {
            "os-hypervisors"
        };
        body["hypervisors_links"] = next_link(&base, path, &pairs, &marker);
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
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let h = s.compute.get_hypervisor(c.ctx(), v, &id).await?;
    let want_servers = v.at_least(2, 53)
        && param(&query_pairs(q.as_deref()), "with_servers").is_some_and(|w| {
            matches!(w.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
        });
    let mut m = views::detail(&h, v);
    if want_servers {
        let servers = s.compute.servers_on_hosts().await?;
        m = with_servers(m, servers.get(&h.name));
    }
    Ok(axum::Json(json!({"hypervisor": m})).into_response())
}

pub async fn statistics(State(s): State<AppState>, c: Caller, Mv(v): Mv) -> ApiResult {
    let stats = s.compute.hypervisor_statistics(c.ctx(), v).await?;
    Ok(axum::Json(json!({"hypervisor_statistics": stats})).into_response())
}

pub async fn uptime(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    let h = s.compute.hypervisor_uptime(c.ctx(), v, &id).await?;
    Ok(axum::Json(json!({"hypervisor": views::uptime(&h, v)})).into_response())
}

pub async fn aggregates(State(s): State<AppState>, c: Caller) -> ApiResult {
    let list = s.compute.list_aggregates(c.ctx())?;
    Ok(axum::Json(json!({"aggregates": list})).into_response())
}

/// `/os-hypervisors/{pattern}/search` (removed in 2.53).
pub async fn search(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(pattern): Path<String>,
) -> ApiResult {
    if v.at_least(2, 53) {
        return Err(not_found());
    }
    let hosts = s.compute.search_hypervisors(c.ctx(), &pattern).await?;
    Ok(axum::Json(json!({
        "hypervisors": hosts.iter().map(|h| views::summary(h, v)).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `/os-hypervisors/{pattern}/servers` (removed in 2.53).
pub async fn servers(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(pattern): Path<String>,
) -> ApiResult {
    if v.at_least(2, 53) {
        return Err(not_found());
    }
    let hosts = s.compute.search_hypervisors(c.ctx(), &pattern).await?;
    let servers = s.compute.servers_on_hosts().await?;
    Ok(axum::Json(json!({
        "hypervisors": hosts
            .iter()
            .map(|h| with_servers(views::summary(h, v), servers.get(&h.name)))
            .collect::<Vec<_>>(),
    }))
    .into_response())
}

pub async fn services(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let pairs = query_pairs(q.as_deref());
    let list = s
        .compute
        .list_services(
            c.ctx(),
            param(&pairs, "host").as_deref(),
            param(&pairs, "binary").as_deref(),
        )
        .await?;
    Ok(axum::Json(json!({
        "services": list.iter().map(|x| views::service(x, v)).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `PUT /os-services/{id}` (2.53) or, before, `PUT /os-services/{action}`.
pub async fn update_service(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    if v.at_least(2, 53) {
        let svc = s.compute.update_service(c.ctx(), &id, &body).await?;
        return Ok(axum::Json(json!({"service": views::service(&svc, v)})).into_response());
    }
    let out = s.compute.service_action(c.ctx(), v, &id, &body).await?;
    Ok(axum::Json(json!({"service": out})).into_response())
}

pub async fn zones(State(s): State<AppState>, c: Caller) -> ApiResult {
    let z = s.compute.availability_zones(c.ctx(), false).await?;
    Ok(axum::Json(json!({
        "availabilityZoneInfo": z.iter().map(views::zone).collect::<Vec<_>>(),
    }))
    .into_response())
}

pub async fn zones_detail(State(s): State<AppState>, c: Caller) -> ApiResult {
    let z = s.compute.availability_zones(c.ctx(), true).await?;
    Ok(axum::Json(json!({
        "availabilityZoneInfo": z.iter().map(views::zone).collect::<Vec<_>>(),
    }))
    .into_response())
}
