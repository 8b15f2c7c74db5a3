//! Keystone's token body (`{"token": {...}}`), as `POST`/`GET /v3/auth/tokens` and
//! `POST /v3/ec2tokens` answer it: rendered from the validated token and its
//! catalog, once per token and epoch (kept with the token in identity's cache).

use axum::body::Bytes;
use serde_json::{Value, json};

use ferrostack_core::context::Scope;
use ferrostack_core::time::keystone_time;
use ferrostack_identity::catalog::CatalogEntry;
use ferrostack_identity::{Identity, ValidToken};

/// The body for `v`, with its catalog when `with_catalog` (and the token is scoped).
pub(super) async fn token_body(
    identity: &Identity,
    v: &ValidToken,
    with_catalog: bool,
) -> ferrostack_identity::Result<Bytes> {
    let slot = v.rendered_body(with_catalog);
    if let Some(b) = slot.get() {
        return Ok(b.clone());
    }
    let catalog = identity.token_catalog(v, with_catalog).await?;
    let body = render_token(v, catalog.as_deref());
    let bytes = Bytes::from(serde_json::to_vec(&body)?);
    let _ = slot.set(bytes.clone());
    Ok(bytes)
}

/// Keystone's token body.
fn render_token(v: &ValidToken, catalog: Option<&[CatalogEntry]>) -> Value {
    let c = &v.context;
    let mut t = json!({
        "methods": v.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "user": {
            "domain": {"id": c.user_domain_id, "name": c.user_domain_name},
            "id": c.user_id,
            "name": c.user_name,
            "password_expires_at": null,
        },
        "audit_ids": v.audit_ids,
        "expires_at": keystone_time(v.expires_at),
        "issued_at": keystone_time(v.issued_at_us / 1_000_000),
    });
    let map = t.as_object_mut().expect("json! object");
    match &c.scope {
        Scope::Unscoped => {}
        Scope::Project {
            id,
            name,
            domain_id,
            domain_name,
        } => {
            map.insert(
                "project".into(),
                json!({"domain": {"id": domain_id, "name": domain_name}, "id": id, "name": name}),
            );
            map.insert("is_domain".into(), Value::Bool(false));
        }
        Scope::Domain { id, name } => {
            map.insert("domain".into(), json!({"id": id, "name": name}));
        }
        Scope::System => {
            map.insert("system".into(), json!({"all": true}));
        }
    }
    if !matches!(c.scope, Scope::Unscoped) {
        map.insert(
            "roles".into(),
            Value::Array(
                v.roles
                    .iter()
                    .map(|r| json!({"id": r.id, "name": r.name}))
                    .collect(),
            ),
        );
    }
    if let Some(cat) = catalog {
        map.insert(
            "catalog".into(),
            serde_json::to_value(cat).unwrap_or(Value::Array(vec![])),
        );
    }
    if let Some(ac) = &v.application_credential {
        map.insert(
            "application_credential".into(),
            json!({"id": ac.id, "name": ac.name, "restricted": ac.restricted}),
        );
    }
    json!({ "token": t })
}
