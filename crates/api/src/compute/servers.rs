//! Routes for servers: create/list/show/update/delete, actions, metadata, tags,
//! addresses, instance actions, consoles, passwords. Views follow the request's
//! microversion (2.47 embedded flavor, 2.19 description, 2.26 tags, 2.9 locked,
//! 2.73 locked_reason, 2.3 extended attributes, 2.96 pinned zone, ...).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use ferrostack_compute::servers::actions::{ServerAction, parse_action};
use ferrostack_compute::servers::model::Server;
use ferrostack_compute::servers::ops::{Action, ServerUpdate};
use ferrostack_compute::servers::query::ListQuery;
use ferrostack_compute::servers::request::{
    self, check_metadata, check_name, check_tag, check_tags,
};
use ferrostack_compute::{ApiVersion, Error};
use ferrostack_core::RequestContext;
use ferrostack_core::time::iso_time;

use super::{ApiResult, Mv, json_body, server_view};
use crate::AppState;
use crate::auth::Caller;
use crate::links::Base;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/servers", get(list).post(create))
        .route("/servers/detail", get(list_detail))
        .route("/servers/{id}", get(show).put(update).delete(delete))
        .route("/servers/{id}/action", post(action))
        .route(
            "/servers/{id}/metadata",
            get(metadata_list)
                .post(metadata_merge)
                .put(metadata_replace),
        )
        .route(
            "/servers/{id}/metadata/{key}",
            get(metadata_show).put(metadata_set).delete(metadata_delete),
        )
        .route(
            "/servers/{id}/tags",
            get(tags_list).put(tags_replace).delete(tags_clear),
        )
        .route(
            "/servers/{id}/tags/{tag}",
            get(tag_check).put(tag_add).delete(tag_delete),
        )
        .route("/servers/{id}/ips", get(ips))
        .route("/servers/{id}/ips/{network}", get(ips_of_network))
        .route("/servers/{id}/os-instance-actions", get(actions_list))
        .route("/servers/{id}/os-instance-actions/{req}", get(actions_show))
        .route("/servers/{id}/x-ferrostack-ssh", get(ssh_endpoint))
        .route(
            "/servers/{id}/os-server-password",
            get(password_show).delete(password_clear),
        )
}

fn request_id(h: &HeaderMap) -> String {
    h.get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn us_iso(us: i64) -> String {
    iso_time(us.div_euclid(1_000_000))
}

fn links(base: &Base, kind: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/v2.1/{kind}/{id}", base.0)},
        {"rel": "bookmark", "href": format!("{}/{kind}/{id}", base.0)},
    ])
}

/// The server's addresses by network; `extended` adds the IP type and MAC (every
/// view but the update/rebuild answers below 2.75).
fn addresses(s: &Server, extended: bool) -> Value {
    let mut out = Map::new();
    for vif in &s.doc.addresses {
        let entry = out
            .entry(vif.network_name.clone())
            .or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(list) = entry {
            for ip in &vif.fixed_ips {
                let mut a = json!({"version": ip.version, "addr": ip.ip_address});
                if extended {
                    a["OS-EXT-IPS:type"] = json!("fixed");
                    a["OS-EXT-IPS-MAC:mac_addr"] = json!(vif.mac_address);
                }
                list.push(a);
            }
        }
    }
    Value::Object(out)
}

/// Which response a server body is for: Nova trims the update (`PUT`) and rebuild
/// answers below 2.75 to the basic attributes (no AZ, extended status, server
/// attributes, usage, security groups, volumes, config drive; key_name in a
/// rebuild from 2.54, user_data from 2.57); `server_groups` (2.71) is only in show
/// and the update/rebuild answers, never in the detailed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Show,
    List,
    Update,
    Rebuild,
}

pub fn view(s: &Server, mv: ApiVersion, ctx: &RequestContext, base: &Base) -> Value {
    view_as(s, mv, ctx, base, Shape::Show)
}

pub fn view_as(
    s: &Server,
    mv: ApiVersion,
    ctx: &RequestContext,
    base: &Base,
    shape: Shape,
) -> Value {
    let admin = ctx.is_admin();
    // the trimmed update/rebuild answer of 2.1-2.74
    let basic = matches!(shape, Shape::Update | Shape::Rebuild) && !mv.at_least(2, 75);
    let f = &s.doc.flavor;
    let flavor = if mv.at_least(2, 47) {
        json!({
            "vcpus": f.vcpus, "ram": f.memory_mb, "disk": f.root_gb,
            "ephemeral": f.ephemeral_gb, "swap": f.swap_mb, "original_name": f.name,
            "extra_specs": f.extra_specs,
        })
    } else {
        json!({"id": f.id, "links": [{"rel": "bookmark", "href": format!("{}/flavors/{}", base.0, f.id)}]})
    };
    let image = if s.image_ref.is_empty() {
        Value::String(String::new())
    } else {
        let mut im = json!({"id": s.image_ref, "links": [{"rel": "bookmark", "href": format!("{}/images/{}", base.0, s.image_ref)}]});
        if mv.at_least(2, 98) {
            im["properties"] = json!(s.doc.image_properties);
        }
        im
    };
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "status": s.status(),
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "metadata": s.doc.metadata,
        "hostId": s.host_id(),
        "image": image,
        "flavor": flavor,
        "created": us_iso(s.created_at_us),
        "updated": us_iso(s.updated_at_us),
        "addresses": addresses(s, !basic),
        "accessIPv4": s.doc.access_ipv4,
        "accessIPv6": s.doc.access_ipv6,
        "links": links(base, "servers", &s.id),
        "OS-DCF:diskConfig": "MANUAL",
    });
    // Nova shows progress only while it means something
    if matches!(
        s.status(),
        "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING"
    ) {
        v["progress"] = json!(0);
    }
    if let Some(fault) = &s.doc.fault
        && matches!(s.status(), "ERROR" | "DELETED")
    {
        let mut fv = json!({"code": fault.code, "message": fault.message, "created": us_iso(fault.created_us)});
        if admin {
            fv["details"] = Value::String(fault.details.clone());
        }
        v["fault"] = fv;
    }
    if basic {
        if shape == Shape::Rebuild && mv.at_least(2, 54) {
            v["key_name"] = json!(s.doc.key_name);
        }
    } else {
        v["OS-EXT-AZ:availability_zone"] = json!(s.availability_zone.clone().unwrap_or_default());
        v["config_drive"] = json!(if s.doc.config_drive { "True" } else { "" });
        v["key_name"] = json!(s.doc.key_name);
        v["OS-SRV-USG:launched_at"] = json!(server_view::usage_time(s.launched_at_us));
        v["OS-SRV-USG:terminated_at"] = json!(server_view::usage_time(s.terminated_at_us));
        v["OS-EXT-STS:task_state"] = json!(s.task_state.map(|t| t.as_str()));
        v["OS-EXT-STS:vm_state"] = json!(s.vm_state.as_str());
        v["OS-EXT-STS:power_state"] = json!(s.power_state);
        v["os-extended-volumes:volumes_attached"] = json!([]);
        let groups: Vec<Value> = if s.doc.security_groups.is_empty() {
            vec![json!({"name": "default"})]
        } else {
            s.doc
                .security_groups
                .iter()
                .map(|g| json!({"name": g}))
                .collect()
        };
        if !matches!(s.doc.networks, ferrostack_network::NetworkRequest::None) {
            v["security_groups"] = Value::Array(groups);
        }
        if admin {
            v["OS-EXT-SRV-ATTR:host"] = json!(s.host);
            v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(s.host);
            v["OS-EXT-SRV-ATTR:instance_name"] = json!(s.instance_name());
            if mv.at_least(2, 3) {
                v["OS-EXT-SRV-ATTR:reservation_id"] = json!(s.reservation_id);
                v["OS-EXT-SRV-ATTR:launch_index"] = json!(s.launch_index);
                v["OS-EXT-SRV-ATTR:hostname"] = json!(s.doc.hostname);
                v["OS-EXT-SRV-ATTR:kernel_id"] = json!("");
                v["OS-EXT-SRV-ATTR:ramdisk_id"] = json!("");
                v["OS-EXT-SRV-ATTR:root_device_name"] = json!("/dev/vda");
                // a rebuild answers the new user data as `user_data` (2.57) instead
                if shape != Shape::Rebuild {
                    v["OS-EXT-SRV-ATTR:user_data"] = json!(s.doc.user_data);
                }
            }
            if mv.at_least(2, 16) {
                v["host_status"] = json!(if s.host.is_some() { "UP" } else { "" });
            }
        }
    }
    if shape == Shape::Rebuild && mv.at_least(2, 57) {
        v["user_data"] = json!(s.doc.user_data);
    }
    if mv.at_least(2, 9) {
        v["locked"] = json!(s.locked);
    }
    if mv.at_least(2, 19) {
        v["description"] = json!(s.doc.description);
    }
    if mv.at_least(2, 26) {
        v["tags"] = json!(s.doc.tags);
    }
    if mv.at_least(2, 63) {
        v["trusted_image_certificates"] = Value::Null;
    }
    if mv.at_least(2, 71) && shape != Shape::List {
        // a server is in at most one group: the one its create named
        let groups: Vec<&str> = s
            .doc
            .scheduler_hints
            .get("group")
            .and_then(Value::as_str)
            .into_iter()
            .collect();
        v["server_groups"] = json!(groups);
    }
    if mv.at_least(2, 73) {
        v["locked_reason"] = json!(s.doc.locked_reason);
    }
    if mv.at_least(2, 90) && !admin && !basic {
        v["OS-EXT-SRV-ATTR:hostname"] = json!(s.doc.hostname);
    }
    if mv.at_least(2, 96) {
        v["pinned_availability_zone"] = json!(s.doc.requested_az);
    }
    if mv.at_least(2, 100) {
        v["scheduler_hints"] = Value::Object(s.doc.scheduler_hints.clone());
    }
    v
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// The `servers_links` of a page that may have more: the same query from after
/// the page's last server.
fn next_link(
    pairs: Vec<(String, String)>,
    more: bool,
    last: Option<&str>,
    limit: usize,
    base: &Base,
    detail: bool,
) -> Option<[server_view::Link; 1]> {
    let last = last.filter(|_| more)?;
    let mut kept: Vec<(String, String)> =
        pairs.into_iter().filter(|(k, _)| k != "marker").collect();
    if !kept.iter().any(|(k, _)| k == "limit") {
        kept.push(("limit".into(), limit.to_string()));
    }
    kept.push(("marker".into(), last.to_string()));
    let qs = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&kept)
        .finish();
    let path = if detail { "servers/detail" } else { "servers" };
    Some([server_view::Link {
        rel: "next",
        href: format!("{}/v2.1/{path}?{qs}", base.0),
    }])
}

#[derive(serde::Serialize)]
struct ListBody<T> {
    servers: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    servers_links: Option<[server_view::Link; 1]>,
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    base: Base,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let pairs = query_pairs(q.as_deref());
    let query = ListQuery {
        params: pairs.clone(),
    };
    let page = s.compute.list_server_names(c.ctx(), &query, mv).await?;
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        id: &'a str,
        name: &'a str,
        links: [server_view::Link; 2],
    }
    let last = page.servers.last().map(|s| s.id.as_str());
    let servers_links = next_link(pairs, page.more, last, page.limit, &base, false);
    let servers = page
        .servers
        .iter()
        .map(|srv| Summary {
            id: &srv.id,
            name: &srv.name,
            links: server_view::links(&base, "servers", &srv.id),
        })
        .collect();
    Ok(axum::Json(ListBody {
        servers,
        servers_links,
    })
    .into_response())
}

async fn list_detail(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    base: Base,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let pairs = query_pairs(q.as_deref());
    let query = ListQuery {
        params: pairs.clone(),
    };
    let page = s.compute.list_servers(c.ctx(), &query, mv).await?;
    let last = page.servers.last().map(|s| s.id.as_str());
    let servers_links = next_link(pairs, page.more, last, page.limit, &base, true);
    let ctx = c.ctx();
    let servers = page
        .servers
        .iter()
        .map(|srv| server_view::server_view(srv, mv, ctx, &base))
        .collect::<Vec<_>>();
    Ok(axum::Json(ListBody {
        servers,
        servers_links,
    })
    .into_response())
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    base: Base,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let req = request::parse_create(&body, mv, s.compute.settings().compute.max_user_data_length)?;
    let return_reservation_id = req.return_reservation_id;
    let made = s
        .compute
        .create_servers(c.ctx(), req, &request_id(&headers))
        .await?;
    if return_reservation_id {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"reservation_id": made.reservation_id})),
        )
            .into_response());
    }
    let first = made
        .servers
        .first()
        .ok_or_else(|| Error::internal("create made no server"))?;
    let mut server = json!({
        "id": first.id,
        "links": links(&base, "servers", &first.id),
        "OS-DCF:diskConfig": "MANUAL",
    });
    if !matches!(first.doc.networks, ferrostack_network::NetworkRequest::None) {
        let groups: Vec<Value> = if first.doc.security_groups.is_empty() {
            vec![json!({"name": "default"})]
        } else {
            first
                .doc
                .security_groups
                .iter()
                .map(|g| json!({"name": g}))
                .collect()
        };
        server["security_groups"] = Value::Array(groups);
    }
    if let Some(p) = made.admin_pass {
        server["adminPass"] = Value::String(p);
    }
    let mut resp = (
        StatusCode::ACCEPTED,
        axum::Json(json!({ "server": server })),
    )
        .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/v2.1/servers/{}", base.0, first.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    base: Base,
    Path(id): Path<String>,
) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    Ok(axum::Json(json!({ "server": view(&srv, mv, c.ctx(), &base) })).into_response())
}

/// `GET /servers/{id}/x-ferrostack-ssh` (a ferrostack extension, what
/// `ferrostack ssh` asks): the host address forwarded to the guest's SSH port.
async fn ssh_endpoint(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let addr = s.compute.ssh_endpoint(c.ctx(), &id).await?;
    Ok(
        axum::Json(json!({"ssh": {"host": addr.ip().to_string(), "port": addr.port()}}))
            .into_response(),
    )
}

fn object<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>, Error> {
    body.get(key).and_then(Value::as_object).ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid input for field/attribute {key}. '{key}' is a required property"
        ))
    })
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    base: Base,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let obj = object(&body, "server")?;
    let mut u = ServerUpdate::default();
    for (k, v) in obj {
        match k.as_str() {
            "name" => u.name = Some(check_name("name", v)?),
            "description" if mv.at_least(2, 19) => {
                u.description = Some(match v {
                    Value::Null => None,
                    Value::String(d) if d.chars().count() <= 255 => Some(d.clone()),
                    _ => {
                        return Err(request::invalid(
                            "description",
                            v,
                            "is not a valid description",
                        )
                        .into());
                    }
                })
            }
            "hostname" if mv.at_least(2, 90) => match v.as_str() {
                Some(h) if request::valid_hostname(h, mv) => u.hostname = Some(h.to_string()),
                _ => {
                    return Err(request::invalid("hostname", v, "is not a valid hostname").into());
                }
            },
            "accessIPv4" => u.access_ipv4 = Some(request::access_ip(k, v)?),
            "accessIPv6" => u.access_ipv6 = Some(request::access_ip(k, v)?),
            "OS-DCF:diskConfig" => {}
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute server. Additional properties are not allowed ('{other}' was unexpected)"
                ))
                .into());
            }
        }
    }
    let srv = s.compute.update_server(c.ctx(), &id, u).await?;
    Ok(
        axum::Json(json!({ "server": view_as(&srv, mv, c.ctx(), &base, Shape::Update) }))
            .into_response(),
    )
}

async fn delete(
    State(s): State<AppState>,
    c: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    s.compute
        .delete_server(c.ctx(), &id, &request_id(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn action(
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
            return super::consoles::legacy_action(&s, &c, mv, &id, &name, &body).await;
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
        let mut v = view_as(&srv, mv, ctx, &base, Shape::Rebuild);
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

async fn metadata_list(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"metadata": srv.doc.metadata})).into_response())
}

async fn metadata_write(
    s: AppState,
    c: Caller,
    id: String,
    body: Bytes,
    replace: bool,
) -> ApiResult {
    let body = json_body(&body)?;
    let m = body.get("metadata").ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute metadata. 'metadata' is a required property".into(),
        )
    })?;
    let items = check_metadata("metadata", m)?;
    let all = s
        .compute
        .set_server_metadata(c.ctx(), &id, items, replace)
        .await?;
    Ok(axum::Json(json!({"metadata": all})).into_response())
}

async fn metadata_merge(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    metadata_write(s, c, id, body, false).await
}

async fn metadata_replace(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    metadata_write(s, c, id, body, true).await
}

async fn metadata_show(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    let v = srv
        .doc
        .metadata
        .get(&key)
        .ok_or_else(|| Error::NotFound("Metadata item was not found".into()))?;
    Ok(axum::Json(json!({"meta": {key: v}})).into_response())
}

async fn metadata_set(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let meta = body.get("meta").ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute meta. 'meta' is a required property".into(),
        )
    })?;
    let items = check_metadata("meta", meta)?;
    if items.len() != 1 {
        return Err(Error::BadRequest("Request body contains too many items".into()).into());
    }
    if !items.contains_key(&key) {
        return Err(Error::BadRequest("Request body and URI mismatch".into()).into());
    }
    s.compute
        .set_server_metadata(c.ctx(), &id, items.clone(), false)
        .await?;
    Ok(axum::Json(json!({"meta": items})).into_response())
}

async fn metadata_delete(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    s.compute.delete_server_metadata(c.ctx(), &id, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn tags_supported(mv: ApiVersion) -> Result<(), Error> {
    if mv.at_least(2, 26) {
        Ok(())
    } else {
        Err(Error::NotFound("The resource could not be found.".into()))
    }
}

async fn tags_list(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    tags_supported(mv)?;
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"tags": srv.doc.tags})).into_response())
}

async fn tags_replace(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    tags_supported(mv)?;
    let body = json_body(&body)?;
    let t = body.get("tags").ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute tags. 'tags' is a required property".into(),
        )
    })?;
    let tags = check_tags(t)?;
    let tags = s.compute.set_server_tags(c.ctx(), &id, tags).await?;
    Ok(axum::Json(json!({"tags": tags})).into_response())
}

async fn tags_clear(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> ApiResult {
    tags_supported(mv)?;
    s.compute.delete_server_tag(c.ctx(), &id, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn tag_check(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    tags_supported(mv)?;
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    if srv.doc.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::NotFound(format!("Tag '{tag}' could not be found.")).into())
    }
}

async fn tag_add(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    base: Base,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    tags_supported(mv)?;
    let tag = check_tag(&Value::String(tag))?;
    let created = s.compute.add_server_tag(c.ctx(), &id, tag.clone()).await?;
    let mut resp = if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/v2.1/servers/{id}/tags/{tag}", base.0)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

async fn tag_delete(
    State(s): State<AppState>,
    c: Caller,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    tags_supported(mv)?;
    s.compute
        .delete_server_tag(c.ctx(), &id, Some(&tag))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn ips(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    Ok(axum::Json(json!({"addresses": addresses(&srv, false)})).into_response())
}

async fn ips_of_network(
    State(s): State<AppState>,
    c: Caller,
    Path((id, net)): Path<(String, String)>,
) -> ApiResult {
    let srv = s.compute.get_server(c.ctx(), &id).await?;
    let all = addresses(&srv, false);
    let v = all
        .get(&net)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("Network {net} could not be found.")))?;
    Ok(axum::Json(json!({ net: v })).into_response())
}

fn action_view(
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

async fn actions_list(
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

async fn actions_show(
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

async fn password_show(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let p = s.compute.server_password(c.ctx(), &id, false).await?;
    Ok(axum::Json(json!({"password": p})).into_response())
}

async fn password_clear(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult {
    s.compute.server_password(c.ctx(), &id, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
