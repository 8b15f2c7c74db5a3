//! `/os-keypairs`: list (2.35 paging), show, create (import or generate), delete.
//! 2.2 adds `type` and answers 201/204; 2.10 lets an admin name another user.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_compute::ApiVersion;
use ferrostack_compute::keypairs::{CreatedKeyPair, KeyPair, KeyPairQuery};
use ferrostack_compute::nova_time;

use super::{next_link, param, query_pairs};
use crate::AppState;
use crate::auth::Caller;
use crate::compute::{ApiResult, Mv, json_body};
use crate::links::Base;

fn summary(v: ApiVersion, k: &KeyPair) -> Value {
    let mut m = json!({
        "name": k.name,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
    });
    if v.at_least(2, 2) {
        m["type"] = json!(k.key_type);
    }
    m
}

fn shown(v: ApiVersion, k: &KeyPair) -> Value {
    let mut m = summary(v, k);
    m["user_id"] = json!(k.user_id);
    m["id"] = json!(k.id);
    m["created_at"] = json!(nova_time(k.created_at_us));
    m["updated_at"] = Value::Null;
    m["deleted"] = json!(false);
    m["deleted_at"] = Value::Null;
    m
}

fn created(v: ApiVersion, c: &CreatedKeyPair) -> Value {
    let mut m = summary(v, &c.keypair);
    m["user_id"] = json!(c.keypair.user_id);
    if let Some(p) = &c.private_key {
        m["private_key"] = json!(p);
    }
    m
}

pub async fn index(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    base: Base,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let pairs = query_pairs(q.as_deref());
    let query = KeyPairQuery {
        user_id: param(&pairs, "user_id"),
        limit: param(&pairs, "limit"),
        marker: param(&pairs, "marker"),
    };
    let (page, full) = s.compute.list_keypairs(c.ctx(), v, &query).await?;
    let mut body = json!({
        "keypairs": page.iter().map(|k| json!({"keypair": summary(v, k)})).collect::<Vec<_>>(),
    });
    if full && let Some(last) = page.last() {
        body["keypairs_links"] = next_link(&base, "os-keypairs", &pairs, &last.name);
    }
    Ok(axum::Json(body).into_response())
}

pub async fn show(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let user = param(&query_pairs(q.as_deref()), "user_id");
    let k = s
        .compute
        .get_keypair(c.ctx(), v, &name, user.as_deref())
        .await?;
    Ok(axum::Json(json!({"keypair": shown(v, &k)})).into_response())
}

pub async fn create(State(s): State<AppState>, c: Caller, Mv(v): Mv, body: Bytes) -> ApiResult {
    let k = s
        .compute
        .create_keypair(c.ctx(), v, &json_body(&body)?)
        .await?;
    let status = if v.at_least(2, 2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!({"keypair": created(v, &k)}))).into_response())
}

pub async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Mv(v): Mv,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let user = param(&query_pairs(q.as_deref()), "user_id");
    s.compute
        .delete_keypair(c.ctx(), v, &name, user.as_deref())
        .await?;
    Ok(if v.at_least(2, 2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypair_views_follow_microversions() {
        let k = KeyPair {
            id: 7,
            user_id: "u".into(),
            name: "k".into(),
            key_type: "ssh".into(),
            public_key: "ssh-ed25519 AAAA".into(),
            fingerprint: "aa".into(),
            created_at_us: 0,
        };
        let s = summary(ApiVersion::new(2, 1), &k);
        assert!(s.get("type").is_none());
        assert_eq!(summary(ApiVersion::new(2, 2), &k)["type"], "ssh");
        let d = shown(ApiVersion::new(2, 2), &k);
        assert_eq!(d["id"], 7);
        assert_eq!(d["deleted"], false);
        assert_eq!(d["created_at"], "1970-01-01T00:00:00.000000");
        let c = created(
            ApiVersion::new(2, 1),
            &CreatedKeyPair {
                keypair: k,
                private_key: Some("PRIV".into()),
            },
        );
        assert_eq!(c["private_key"], "PRIV");
        assert_eq!(c["user_id"], "u");
    }
}
