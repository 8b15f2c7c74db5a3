//! Application credentials: a user delegates (a subset of) its roles on one project
//! to a named secret, shown once at creation and stored only as an Argon2id hash.
//! Tokens from an application credential are always scoped to its project and
//! carry only the delegated roles the user still has.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::Value;

use ferrostack_core::RequestContext;
use ferrostack_core::ids::new_hex_id;
use ferrostack_core::time::unix_now;

use crate::error::{Error, Result};
use crate::fields::Fields;
use crate::list::{ListParams, Page, apply};
use crate::model::{ApplicationCredential, RoleRef, Target, User};
use crate::password;
use crate::policy;
use crate::records::appcreds::{NewAppCred, StoredAppCred};
use crate::records::{self, dup};
use crate::service::Identity;

/// Parses an ISO 8601 time as clients send it (`...Z`, an offset, or no zone: UTC),
/// keeping microseconds: Unix microseconds.
fn parse_time_us(s: &str) -> Option<i64> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339))
        .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// `2026-12-01T11:19:52.358392`: how Keystone shows an application credential's
/// `expires_at` (UTC, microseconds, no zone designator).
fn keystone_time_us(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

impl Identity {
    fn app_cred(&self, r: StoredAppCred, snap: &crate::service::Snapshot) -> ApplicationCredential {
        let roles = r
            .role_ids
            .iter()
            .filter_map(|id| snap.roles.get(id))
            .map(|r| RoleRef {
                id: r.id.clone(),
                name: r.name.clone(),
                domain_id: r.domain_id.clone(),
            })
            .collect();
        let expires_us = r.expires_at_us.or(r.expires_at.map(|e| e * 1_000_000));
        ApplicationCredential {
            id: r.id,
            name: r.name,
            description: (!r.description.is_empty()).then_some(r.description),
            user_id: r.user_id,
            project_id: r.project_id,
            expires_at: expires_us.map(keystone_time_us),
            unrestricted: r.unrestricted,
            roles,
            access_rules: vec![],
            secret: None,
            expires_at_unix: r.expires_at,
            secret_hash: r.secret_hash,
        }
    }

    pub(crate) async fn app_credential_row(&self, id: &str) -> Result<ApplicationCredential> {
        let row = records::appcreds::get(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("application credential", id))?;
        let snap = self.snapshot().await?;
        Ok(self.app_cred(row, &snap))
    }

    pub async fn create_application_credential(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        body: Value,
    ) -> Result<ApplicationCredential> {
        if ctx.user_id != user_id {
            return Err(Error::Forbidden(
                "identity:create_application_credential".into(),
            ));
        }
        if !ctx.unrestricted {
            return Err(Error::ForbiddenAction(
                "Using method 'application_credential' is not allowed for managing additional \
                 application credentials."
                    .into(),
            ));
        }
        let project_id = ctx.project_id().map(str::to_string).ok_or_else(|| {
            Error::Validation("Application credentials need a project-scoped token.".into())
        })?;
        let mut f = Fields::member(body, "application_credential")?;
        let name = f.required_string("name", 255)?;
        let description = f.text("description")?.unwrap_or_default();
        let secret = match f.take("secret") {
            None | Some(Value::Null) => {
                let mut b = [0u8; 64];
                rand::rngs::OsRng.fill_bytes(&mut b);
                URL_SAFE_NO_PAD.encode(b)
            }
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(_) => {
                return Err(Error::Validation(
                    "Invalid input for field 'secret': it must be a non-empty string".into(),
                ));
            }
        };
        let expires_at = match f.take("expires_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let t = parse_time_us(&s).ok_or_else(|| {
                    Error::Validation(format!(
                        "Invalid input for field 'expires_at': '{s}' is not a valid time"
                    ))
                })?;
                if t <= unix_now() * 1_000_000 {
                    return Err(Error::Validation(
                        "The application credential's expires_at must be in the future.".into(),
                    ));
                }
                Some(t)
            }
            Some(_) => {
                return Err(Error::Validation(
                    "Invalid input for field 'expires_at': it is not of type 'string'".into(),
                ));
            }
        };
        let unrestricted = f.bool("unrestricted")?.unwrap_or(false);
        if let Some(rules) = f.array("access_rules")?
            && !rules.is_empty()
        {
            return Err(Error::Validation("Access rules are not supported.".into()));
        }
        let requested = f.array("roles")?;
        f.take("id");
        f.take("project_id");
        f.take("user_id");
        f.deny_unknown()?;

        let held = self
            .effective_roles(user_id, &Target::Project(project_id.clone()))
            .await?;
        let roles: Vec<RoleRef> = match requested.filter(|r| !r.is_empty()) {
            None => held
                .into_iter()
                .filter(|r| ctx.roles.contains(&r.name))
                .collect(),
            Some(list) => {
                let mut out = Vec::new();
                for item in list {
                    let (id, name) = (
                        item.get("id").and_then(Value::as_str),
                        item.get("name").and_then(Value::as_str),
                    );
                    let found = held
                        .iter()
                        .find(|r| Some(r.id.as_str()) == id || Some(r.name.as_str()) == name)
                        .cloned()
                        .ok_or_else(|| {
                            Error::NotFoundMessage(format!(
                                "Could not find role assignment with role: {}, user or group: {user_id}, \
                                 project, domain, or system: {project_id}.",
                                id.or(name).unwrap_or("?")
                            ))
                        })?;
                    if !out.contains(&found) {
                        out.push(found);
                    }
                }
                out
            }
        };
        if roles.is_empty() {
            return Err(Error::Validation(
                "An application credential needs at least one role.".into(),
            ));
        }
        let cost = self.settings.hash_cost();
        let secret_for_hash = secret.clone();
        let hash = tokio::task::spawn_blocking(move || password::hash(&secret_for_hash, cost))
            .await
            .map_err(Error::internal)??;
        let id = new_hex_id();
        let role_ids: Vec<&str> = roles.iter().map(|r| r.id.as_str()).collect();
        let row = NewAppCred {
            id: &id,
            name: &name,
            user_id,
            project_id: &project_id,
            description: &description,
            secret_hash: hash,
            expires_at_us: expires_at,
            unrestricted,
            role_ids,
        };
        let mut tx = self.db.begin_write().await?;
        records::appcreds::insert(&mut tx, row).await.map_err(dup(
            "application_credential",
            format!("Duplicate entry found with name {name}"),
        ))?;
        self.commit(tx, vec![]).await?;
        let mut ac = self.app_credential_row(&id).await?;
        ac.secret = Some(secret);
        Ok(ac)
    }

    pub async fn list_application_credentials(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        params: &ListParams,
    ) -> Result<Page<ApplicationCredential>> {
        policy::system_reader_or_owner(ctx, "identity:list_application_credentials", user_id)?;
        self.user(user_id).await?;
        let rows = records::appcreds::of_user(&self.db, user_id).await?;
        let snap = self.snapshot().await?;
        let all = rows.into_iter().map(|r| self.app_cred(r, &snap)).collect();
        apply(all, |a| &a.id, params, &["name"], 0)
    }

    pub async fn get_application_credential(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        id: &str,
    ) -> Result<ApplicationCredential> {
        policy::system_reader_or_owner(ctx, "identity:get_application_credential", user_id)?;
        let ac = self.app_credential_row(id).await?;
        if ac.user_id != user_id {
            return Err(Error::not_found("application credential", id));
        }
        Ok(ac)
    }

    pub async fn delete_application_credential(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        id: &str,
    ) -> Result<()> {
        policy::admin_or_owner(ctx, "identity:delete_application_credential", user_id)?;
        if !ctx.unrestricted && ctx.user_id == user_id {
            return Err(Error::ForbiddenAction(
                "Using method 'application_credential' is not allowed for managing additional \
                 application credentials."
                    .into(),
            ));
        }
        let ac = self.get_application_credential(ctx, user_id, id).await?;
        let mut tx = self.db.begin_write().await?;
        records::appcreds::delete(&mut tx, &ac.id).await?;
        self.commit(tx, vec![]).await
    }

    /// Checks an `application_credential` auth method; returns the user and the credential.
    pub(crate) async fn authenticate_app_cred(
        &self,
        d: &serde_json::Map<String, Value>,
    ) -> Result<(User, ApplicationCredential)> {
        let secret = d
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Validation("'secret' is a required property".into()))?;
        let ac = if let Some(id) = d.get("id").and_then(Value::as_str) {
            self.app_credential_row(id).await.ok()
        } else {
            let name = d.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::Validation("Expecting to find id or name in application_credential".into())
            })?;
            let u = d.get("user").and_then(Value::as_object).ok_or_else(|| {
                Error::Validation("'user' is required with an application credential name".into())
            })?;
            let user = if let Some(uid) = u.get("id").and_then(Value::as_str) {
                self.user(uid).await.ok()
            } else {
                let uname = u.get("name").and_then(Value::as_str).unwrap_or_default();
                let dom = u.get("domain").and_then(Value::as_object);
                let did = match (
                    dom.and_then(|x| x.get("id")).and_then(Value::as_str),
                    dom.and_then(|x| x.get("name")).and_then(Value::as_str),
                ) {
                    (Some(id), _) => Some(id.to_string()),
                    (None, Some(n)) => self.domain_by_name(n).await.ok().map(|d| d.id),
                    _ => None,
                };
                match did {
                    Some(did) => self.find_user_by_name(uname, &did).await?,
                    None => None,
                }
            };
            match user {
                Some(user) => {
                    match records::appcreds::id_by_name(&self.db, &user.id, name).await? {
                        Some(id) => self.app_credential_row(&id).await.ok(),
                        None => None,
                    }
                }
                None => None,
            }
        };
        let stored = ac
            .as_ref()
            .map(|a| a.secret_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let s = secret.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&s, &stored))
            .await
            .map_err(Error::internal)?;
        let Some(ac) = ac.filter(|_| ok) else {
            return Err(Error::unauthenticated());
        };
        if ac.expires_at_unix.is_some_and(|e| e <= unix_now()) {
            return Err(Error::Unauthorized(
                "The application credential has expired.".into(),
            ));
        }
        let user = self.user(&ac.user_id).await?;
        if !user.enabled {
            return Err(Error::Unauthorized(format!(
                "The account is disabled for user: {}.",
                user.id
            )));
        }
        Ok((user, ac))
    }
}
