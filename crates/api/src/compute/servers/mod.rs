//! Routes for servers: create/list/show/update/delete here; actions, instance
//! actions and passwords in `actions.rs`; metadata, tags and addresses in
//! `metadata.rs`. Every body is rendered by `server_view` (one view, Nova's
//! microversion rules once).

mod actions;
mod metadata;

use actions::{action, actions_list, actions_show, password_clear, password_show};
use metadata::{
    ips, ips_of_network, metadata_delete, metadata_list, metadata_merge, metadata_replace,
    metadata_set, metadata_show, tag_add, tag_check, tag_delete, tags_clear, tags_list,
    tags_replace,
};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use ferrostack_compute::Error;
use ferrostack_compute::servers::ops::ServerUpdate;
use ferrostack_compute::servers::query::ListQuery;
use ferrostack_compute::servers::request::{self, check_name};
use ferrostack_core::time::iso_time;

use super::server_view::{self, Shape};
use super::{ApiResult, Mv, json_body};
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

pub(super) fn request_id(h: &HeaderMap) -> String {
    h.get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

pub(super) fn us_iso(us: i64) -> String {
    iso_time(us.div_euclid(1_000_000))
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
    let query = ListQuery {
        params: query_pairs(q.as_deref()),
    };
    let page = s.compute.list_server_names(c.ctx(), &query, mv).await?;
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        id: &'a str,
        name: &'a str,
        links: [server_view::Link; 2],
    }
    let last = page.servers.last().map(|s| s.id.as_str());
    let servers_links = next_link(query.params, page.more, last, page.limit, &base, false);
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
    let query = ListQuery {
        params: query_pairs(q.as_deref()),
    };
    let ctx = c.ctx();
    let mut page = s.compute.list_servers(ctx, &query, mv).await?;
    // Each batch is rendered here while the database thread reads the next one.
    let mut body = Vec::with_capacity(64 * 1024);
    body.extend_from_slice(b"{\"servers\":[");
    let mut last: Option<String> = None;
    while let Some(batch) = page.next().await {
        for srv in &batch? {
            if last.is_some() {
                body.push(b',');
            }
            serde_json::to_writer(
                &mut body,
                &server_view::server_view(srv, mv, ctx, &base, Shape::List),
            )
            .map_err(|e| Error::internal(format!("cannot render a server: {e}")))?;
            last = Some(srv.id.clone());
        }
    }
    body.push(b']');
    if let Some(links) = next_link(
        query.params,
        page.more(),
        last.as_deref(),
        page.limit(),
        &base,
        true,
    ) {
        body.extend_from_slice(b",\"servers_links\":");
        serde_json::to_writer(&mut body, &links)
            .map_err(|e| Error::internal(format!("cannot render a link: {e}")))?;
    }
    body.push(b'}');
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
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
        "links": server_view::server_links(&base, &first.id),
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
    let view = server_view::server_view(&srv, mv, c.ctx(), &base, Shape::Show);
    Ok(axum::Json(json!({ "server": view })).into_response())
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
    Ok(axum::Json(
        json!({ "server": server_view::server_view(&srv, mv, c.ctx(), &base, Shape::Update) }),
    )
    .into_response())
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
