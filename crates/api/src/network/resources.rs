//! The collections: list (filters, fields, sorting, pagination links), show,
//! create, update, delete, and the tags sub-resource.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_network::{Error, ListQuery, query};

use super::views::render;
use super::{ApiResult, json_body, kind_of, query_pairs};
use crate::AppState;
use crate::auth::Caller;
use crate::errors::neutron::NeutronError;
use crate::links::Base;

fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub async fn list(
    State(s): State<AppState>,
    c: Caller,
    base: Base,
    Path(coll): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let kind = kind_of(&coll)?;
    let pairs = query_pairs(q.as_deref());
    let query = ListQuery::parse(&pairs)?;
    let admin = c.ctx().is_admin();
    let items = s.network.list(c.ctx(), kind).await?;
    let page = query::apply(items.iter().map(|r| render(r, admin)).collect(), &query)?;
    let mut body = json!({ kind.plural(): page.items });
    if let Some(limit) = query.limit {
        let kept: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != "marker" && k != "page_reverse" && k != "limit")
            .cloned()
            .collect();
        let href = |marker: &str, reverse: bool| {
            let mut p = kept.clone();
            p.push(("limit".into(), limit.to_string()));
            p.push(("marker".into(), marker.to_string()));
            if reverse {
                p.push(("page_reverse".into(), "True".into()));
            }
            format!("{}/v2.0/{}?{}", base.0, kind.path(), encode(&p))
        };
        let id_at = |i: usize| {
            page.items
                .get(i)
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let first = id_at(0);
        let last = page.items.len().checked_sub(1).and_then(id_at);
        let mut links = Vec::new();
        // In the direction of travel, "next" when more follow; "previous" when a
        // marker brought us here.
        let (more_forward, more_back) = if query.page_reverse {
            (page.has_previous, page.has_next)
        } else {
            (page.has_next, page.has_previous)
        };
        if more_forward && let Some(last) = &last {
            links.push(json!({"rel": "next", "href": href(last, false)}));
        }
        if more_back && let Some(first) = &first {
            links.push(json!({"rel": "previous", "href": href(first, true)}));
        }
        if !links.is_empty() {
            body[format!("{}_links", kind.plural())] = json!(links);
        }
    }
    Ok(axum::Json(body).into_response())
}

pub async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let kind = kind_of(&coll)?;
    let fields: Vec<String> = query_pairs(q.as_deref())
        .into_iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v)
        .collect();
    let r = s.network.show(c.ctx(), kind, &id).await?;
    let v = query::select_fields(render(&r, c.ctx().is_admin()), &fields);
    Ok(axum::Json(json!({ kind.singular(): v })).into_response())
}

pub async fn create(
    State(s): State<AppState>,
    c: Caller,
    Path(coll): Path<String>,
    body: Bytes,
) -> ApiResult {
    let kind = kind_of(&coll)?;
    let r = s.network.create(c.ctx(), kind, json_body(&body)?).await?;
    let v = render(&r, c.ctx().is_admin());
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ kind.singular(): v })),
    )
        .into_response())
}

pub async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let kind = kind_of(&coll)?;
    let r = s
        .network
        .update(c.ctx(), kind, &id, json_body(&body)?)
        .await?;
    let v = render(&r, c.ctx().is_admin());
    Ok(axum::Json(json!({ kind.singular(): v })).into_response())
}

pub async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id)): Path<(String, String)>,
) -> ApiResult {
    let kind = kind_of(&coll)?;
    s.network.delete(c.ctx(), kind, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn taggable(coll: &str) -> Result<ferrostack_network::Kind, NeutronError> {
    let kind = kind_of(coll)?;
    if kind == ferrostack_network::Kind::SecurityGroupRule {
        return Err(NeutronError(Error::not_found(
            "HTTPNotFound",
            "The resource could not be found.",
        )));
    }
    Ok(kind)
}

pub async fn tags(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id)): Path<(String, String)>,
) -> ApiResult {
    let tags = s.network.tags(c.ctx(), taggable(&coll)?, &id).await?;
    Ok(axum::Json(json!({ "tags": tags })).into_response())
}

pub async fn replace_tags(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let kind = taggable(&coll)?;
    let body = json_body(&body)?;
    let Some(list) = body.get("tags").and_then(Value::as_array) else {
        return Err(NeutronError(Error::bad_request(
            "Invalid input for tags. Reason: the body must be {\"tags\": [...]}.",
        )));
    };
    let mut new = Vec::new();
    for t in list {
        match t {
            Value::String(t) => new.push(t.clone()),
            other => {
                return Err(NeutronError(Error::bad_request(format!(
                    "Invalid input for tags. Reason: '{other}' is not a valid string."
                ))));
            }
        }
    }
    let tags = s.network.replace_tags(c.ctx(), kind, &id, new).await?;
    Ok(axum::Json(json!({ "tags": tags })).into_response())
}

pub async fn clear_tags(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id)): Path<(String, String)>,
) -> ApiResult {
    let kind = taggable(&coll)?;
    s.network
        .replace_tags(c.ctx(), kind, &id, Vec::new())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn has_tag(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id, tag)): Path<(String, String, String)>,
) -> ApiResult {
    let kind = taggable(&coll)?;
    let tags = s.network.tags(c.ctx(), kind, &id).await?;
    if tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(NeutronError(Error::not_found(
            "TagNotFound",
            format!("Tag {tag} could not be found for {} {id}.", kind.singular()),
        )))
    }
}

pub async fn add_tag(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id, tag)): Path<(String, String, String)>,
) -> ApiResult {
    let kind = taggable(&coll)?;
    s.network.add_tag(c.ctx(), kind, &id, &tag).await?;
    Ok(StatusCode::CREATED.into_response())
}

pub async fn remove_tag(
    State(s): State<AppState>,
    c: Caller,
    Path((coll, id, tag)): Path<(String, String, String)>,
) -> ApiResult {
    let kind = taggable(&coll)?;
    s.network.remove_tag(c.ctx(), kind, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
