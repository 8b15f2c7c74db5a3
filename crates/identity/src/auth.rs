//! Authentication and tokens: `POST /v3/auth/tokens` (password, token, application
//! credential; project/domain/system/unscoped), validation with an in-memory cache
//! that honours expiry, revocation and every identity change (the epoch), revocation,
//! and the catalog a token's body shows (the body itself is `api`'s `token_view`).
//!
//! Validation never touches the database on a cache hit: decrypting is skipped,
//! and the epoch check replaces re-reading users, projects and roles.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;

use ferrostack_core::RequestContext;
use ferrostack_core::context::Scope;
use ferrostack_core::time::{now_us, unix_now};

use crate::catalog::CatalogEntry;
use crate::error::{Error, Result};
use crate::model::{RoleRef, Target, User};
use crate::password;
use crate::records;
use crate::records::token::{ScopeKey, TokenScope};
use crate::revoke::TokenFacts;
use crate::service::Identity;
use crate::token::{self, Method, Payload, ScopeRef, new_audit_id};

/// The application credential a token came from.
#[derive(Debug, Clone)]
pub struct AppCredRef {
    pub id: String,
    pub name: String,
    pub restricted: bool,
}

/// A token that validated: who, on what, with which roles, until when.
#[derive(Debug)]
pub struct ValidToken {
    pub context: RequestContext,
    pub roles: Vec<RoleRef>,
    pub methods: Vec<Method>,
    pub expires_at: i64,
    pub issued_at_us: i64,
    pub audit_ids: Vec<String>,
    pub application_credential: Option<AppCredRef>,
    pub(crate) epoch: u64,
    /// The HTTP layer's rendering of the body (with and without catalog), built once.
    rendered: [OnceLock<Bytes>; 2],
}

impl ValidToken {
    pub fn is_expired(&self) -> bool {
        unix_now() >= self.expires_at
    }

    /// Where the rendered body (with or without catalog) is kept: a validated token
    /// lives for one epoch in the cache, so its body is built once per token and epoch.
    pub fn rendered_body(&self, with_catalog: bool) -> &OnceLock<Bytes> {
        &self.rendered[usize::from(with_catalog)]
    }
}

/// The scope an authentication request asks for.
#[derive(Debug, Clone)]
enum ScopeRequest {
    /// No scope given: the user's default project when usable, else unscoped.
    Default,
    Unscoped,
    ProjectId(String),
    ProjectName {
        name: String,
        domain: DomainRef,
    },
    Domain(DomainRef),
    System,
}

#[derive(Debug, Clone)]
enum DomainRef {
    Id(String),
    Name(String),
}

/// What was issued.
pub struct Issued {
    pub token: String,
    pub valid: Arc<ValidToken>,
}

fn bad(msg: &str) -> Error {
    Error::Validation(msg.to_string())
}

fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a serde_json::Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

fn str_field<'a>(v: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn parse_domain(v: Option<&Value>) -> Result<DomainRef> {
    let d = v
        .and_then(Value::as_object)
        .ok_or_else(|| bad("Expecting to find domain in user or project - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."))?;
    if let Some(id) = str_field(d, "id") {
        Ok(DomainRef::Id(id.to_string()))
    } else if let Some(name) = str_field(d, "name") {
        Ok(DomainRef::Name(name.to_string()))
    } else {
        Err(bad(
            "Expecting to find id or name in domain - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
        ))
    }
}

fn parse_scope(auth: &Value) -> Result<ScopeRequest> {
    let Some(scope) = auth.get("scope") else {
        return Ok(ScopeRequest::Default);
    };
    if scope.as_str() == Some("unscoped") {
        return Ok(ScopeRequest::Unscoped);
    }
    let s = scope
        .as_object()
        .ok_or_else(|| bad("Invalid input for field 'scope': it is not of type 'object'"))?;
    let n = ["project", "domain", "system", "OS-TRUST:trust"]
        .iter()
        .filter(|k| s.contains_key(**k))
        .count();
    if n > 1 {
        return Err(bad(
            "Specify a project, a domain or the system as scope, not several.",
        ));
    }
    if s.contains_key("OS-TRUST:trust") {
        return Err(Error::Unauthorized("Trusts are not supported.".into()));
    }
    if let Some(p) = s.get("project") {
        let p = p
            .as_object()
            .ok_or_else(|| bad("Invalid input for field 'project': it is not of type 'object'"))?;
        if let Some(id) = str_field(p, "id") {
            return Ok(ScopeRequest::ProjectId(id.to_string()));
        }
        let name = str_field(p, "name")
            .ok_or_else(|| bad("Expecting to find id or name in project - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."))?;
        return Ok(ScopeRequest::ProjectName {
            name: name.to_string(),
            domain: parse_domain(p.get("domain"))?,
        });
    }
    if s.contains_key("domain") {
        return Ok(ScopeRequest::Domain(parse_domain(s.get("domain"))?));
    }
    if let Some(sys) = s.get("system") {
        if sys.get("all").and_then(Value::as_bool) == Some(true) {
            return Ok(ScopeRequest::System);
        }
        return Err(bad(
            "Invalid input for field 'system': only {\"all\": true} is supported",
        ));
    }
    Ok(ScopeRequest::Default)
}

impl Identity {
    async fn resolve_domain(&self, d: &DomainRef) -> Result<crate::model::Domain> {
        let found = match d {
            DomainRef::Id(id) => self.find_domain(id).await?,
            DomainRef::Name(n) => self.domain_by_name(n).await.ok(),
        };
        found.ok_or_else(Error::unauthenticated)
    }

    /// Finds the user an auth request names (by id, or name + domain).
    async fn resolve_user(&self, u: &serde_json::Map<String, Value>) -> Result<Option<User>> {
        if let Some(id) = str_field(u, "id") {
            return match self.user(id).await {
                Ok(u) => Ok(Some(u)),
                Err(Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            };
        }
        let name = str_field(u, "name").ok_or_else(|| {
            bad("Expecting to find id or name in user - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
        })?;
        let domain = match parse_domain(u.get("domain"))? {
            DomainRef::Id(id) => self.find_domain(&id).await?,
            DomainRef::Name(n) => self.domain_by_name(&n).await.ok(),
        };
        let Some(domain) = domain else {
            return Ok(None);
        };
        self.find_user_by_name(name, &domain.id).await
    }

    /// Verifies a password, with lockout after repeated failures when configured.
    pub(crate) async fn check_password(&self, user: &User, password: &str) -> Result<()> {
        let sec = &self.settings.security;
        let now = unix_now();
        if sec.lockout_failure_attempts > 0
            && user.failed_auth_count >= i64::from(sec.lockout_failure_attempts)
            && user
                .failed_auth_at
                .is_some_and(|t| t + sec.lockout_duration > now)
        {
            return Err(Error::Unauthorized(format!(
                "The account is locked for user: {}.",
                user.id
            )));
        }
        let stored = user
            .password_hash
            .clone()
            .unwrap_or_else(|| self.dummy_hash.clone());
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &stored))
            .await
            .map_err(Error::internal)?;
        if ok && user.password_hash.is_some() {
            if user.failed_auth_count > 0 {
                records::users::clear_failures(&self.db, &user.id).await?;
            }
            return Ok(());
        }
        if sec.lockout_failure_attempts > 0 {
            // A lock that has expired starts a fresh count.
            let expired = user
                .failed_auth_at
                .is_some_and(|t| t + sec.lockout_duration <= now);
            records::users::record_failure(&self.db, &user.id, expired, now).await?;
        }
        Err(Error::unauthenticated())
    }

    fn check_user_enabled(user_id: &str, enabled: bool) -> Result<()> {
        if enabled {
            Ok(())
        } else {
            Err(Error::Unauthorized(format!(
                "The account is disabled for user: {user_id}."
            )))
        }
    }

    /// `POST /v3/auth/tokens`: authenticates and issues a token.
    pub async fn authenticate(&self, body: &Value) -> Result<Issued> {
        let auth = body
            .get("auth")
            .filter(|a| a.is_object())
            .ok_or_else(|| bad("'auth' is a required property"))?;
        let ident =
            obj(auth, "identity").ok_or_else(|| bad("'identity' is a required property"))?;
        let methods: Vec<&str> = ident
            .get("methods")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("'methods' is a required property"))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if methods.is_empty() {
            return Err(bad(
                "Invalid input for field 'identity/methods': [] is too short",
            ));
        }
        let scope = parse_scope(auth)?;
        let now = unix_now();
        let mut expires_at = now + self.settings.token.expiration;
        let mut parent_audit: Option<String> = None;
        let mut app_cred: Option<crate::model::ApplicationCredential> = None;
        let mut user: Option<User> = None;
        let mut used = Vec::new();
        let mut token_scope: Option<ScopeRef> = None;

        for m in &methods {
            let data = ident.get(*m).and_then(Value::as_object);
            match *m {
                "password" => {
                    let u = data
                        .and_then(|d| d.get("user"))
                        .and_then(Value::as_object)
                        .ok_or_else(|| bad("Expecting to find user in password - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."))?;
                    let password = str_field(u, "password").ok_or_else(|| {
                        bad("Expecting to find password in user - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
                    })?;
                    let found = self.resolve_user(u).await?;
                    let Some(found) = found else {
                        // Same work as a real check, so timing does not reveal users.
                        let stored = self.dummy_hash.clone();
                        let pw = password.to_string();
                        let _ = tokio::task::spawn_blocking(move || password::verify(&pw, &stored))
                            .await;
                        return Err(Error::unauthenticated());
                    };
                    self.check_password(&found, password).await?;
                    Self::check_user_enabled(&found.id, found.enabled)?;
                    merge_user(&mut user, found)?;
                    used.push(Method::Password);
                }
                "token" => {
                    let id = data
                        .and_then(|d| str_field(d, "id"))
                        .ok_or_else(|| bad("Expecting to find id in token - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."))?;
                    let old = self
                        .validate(id, false)
                        .await
                        .map_err(|_| Error::unauthenticated())?;
                    if old.application_credential.is_some() {
                        return Err(Error::Unauthorized(
                            "A token created with an application credential cannot be rescoped."
                                .into(),
                        ));
                    }
                    expires_at = expires_at.min(old.expires_at);
                    parent_audit = old.audit_ids.first().cloned();
                    let u = self.user(&old.context.user_id).await?;
                    merge_user(&mut user, u)?;
                    used.push(Method::Token);
                    for m in &old.methods {
                        if !used.contains(m) {
                            used.push(*m);
                        }
                    }
                }
                "application_credential" => {
                    let d =
                        data.ok_or_else(|| bad("'application_credential' is a required property"))?;
                    let (u, ac) = self.authenticate_app_cred(d).await?;
                    if !matches!(scope, ScopeRequest::Default) {
                        return Err(Error::Unauthorized(
                            "Application credentials cannot request a scope.".into(),
                        ));
                    }
                    if let Some(exp) = ac.expires_at_unix {
                        expires_at = expires_at.min(exp);
                    }
                    token_scope = Some(ScopeRef::Project(ac.project_id.clone()));
                    merge_user(&mut user, u)?;
                    app_cred = Some(ac);
                    used.push(Method::ApplicationCredential);
                }
                _ => {
                    return Err(Error::Unauthorized(
                        "Attempted to authenticate with an unsupported method.".into(),
                    ));
                }
            }
        }
        let user = user.ok_or_else(Error::unauthenticated)?;
        let scope = match token_scope {
            Some(s) => s,
            None => self.resolve_scope(&user, scope).await?,
        };
        let mut audit_ids = vec![new_audit_id()];
        audit_ids.extend(parent_audit);
        let payload = Payload {
            user_id: user.id.clone(),
            methods: used,
            scope,
            expires_at,
            issued_at_us: now_us(),
            audit_ids,
            application_credential_id: app_cred.map(|a| a.id),
        };
        self.issue(payload).await
    }

    /// Seals a payload after checking it expands (user enabled, roles on scope).
    pub(crate) async fn issue(&self, payload: Payload) -> Result<Issued> {
        let epoch = self.epoch();
        let valid = Arc::new(self.expand(&payload, epoch).await?);
        let token = token::seal(&self.token_keys, &payload).map_err(Error::internal)?;
        self.cache.insert(token.clone(), valid.clone());
        Ok(Issued { token, valid })
    }

    async fn resolve_scope(&self, user: &User, req: ScopeRequest) -> Result<ScopeRef> {
        match req {
            ScopeRequest::Unscoped => Ok(ScopeRef::Unscoped),
            ScopeRequest::Default => {
                // Keystone scopes to the default project when the user may use it.
                if let Some(p) = &user.default_project_id
                    && let Ok(project) = self.project(p).await
                    && project.enabled
                    && !self
                        .effective_roles(&user.id, &Target::Project(p.clone()))
                        .await?
                        .is_empty()
                {
                    return Ok(ScopeRef::Project(p.clone()));
                }
                Ok(ScopeRef::Unscoped)
            }
            ScopeRequest::ProjectId(id) => Ok(ScopeRef::Project(id)),
            ScopeRequest::ProjectName { name, domain } => {
                let d = self.resolve_domain(&domain).await?;
                let p = self
                    .project_by_name(&name, &d.id)
                    .await
                    .map_err(|_| Error::Unauthorized(format!("Could not find project: {name}.")))?;
                Ok(ScopeRef::Project(p.id))
            }
            ScopeRequest::Domain(d) => Ok(ScopeRef::Domain(self.resolve_domain(&d).await?.id)),
            ScopeRequest::System => Ok(ScopeRef::System),
        }
    }

    /// Builds the validated view of a payload from the current database state (one
    /// read: `records::token`).
    pub(crate) async fn expand(&self, p: &Payload, epoch: u64) -> Result<ValidToken> {
        let invalid = || Error::NotFoundMessage("Failed to validate token".into());
        let key = match &p.scope {
            ScopeRef::Unscoped => ScopeKey::Unscoped,
            ScopeRef::Project(id) => ScopeKey::Project(id),
            ScopeRef::Domain(id) => ScopeKey::Domain(id),
            ScopeRef::System => ScopeKey::System,
        };
        let ac_id = p.application_credential_id.as_deref();
        let Some(rows) = records::token::read(&self.db, &p.user_id, key, ac_id).await? else {
            return Err(Error::Unauthorized("The user no longer exists.".into()));
        };
        let user = rows.user;
        Self::check_user_enabled(&p.user_id, user.enabled)?;
        let user_domain = user.domain.ok_or_else(invalid)?;
        if !user_domain.enabled {
            return Err(Error::Unauthorized(format!(
                "The domain {} of user {} is disabled.",
                user.domain_id, p.user_id
            )));
        }
        let (scope, scoped, scope_domain) = match (&p.scope, rows.scope) {
            (ScopeRef::Project(pid), TokenScope::Project(project)) => {
                let project = project.ok_or_else(|| {
                    Error::Unauthorized(format!("Could not find project: {pid}."))
                })?;
                let pd = project
                    .domain
                    .ok_or_else(|| Error::not_found("domain", project.domain_id.clone()))?;
                if !project.enabled || !pd.enabled {
                    return Err(Error::Unauthorized(format!("Project {pid} is disabled.")));
                }
                (
                    Scope::Project {
                        id: pid.clone(),
                        name: project.name,
                        domain_id: project.domain_id.clone(),
                        domain_name: pd.name,
                    },
                    true,
                    Some(project.domain_id),
                )
            }
            (ScopeRef::Domain(did), TokenScope::Domain(d)) => {
                let d =
                    d.ok_or_else(|| Error::Unauthorized(format!("Could not find domain: {did}.")))?;
                if !d.enabled {
                    return Err(Error::Unauthorized(format!("Domain {did} is disabled.")));
                }
                (
                    Scope::Domain {
                        id: did.clone(),
                        name: d.name,
                    },
                    true,
                    Some(did.clone()),
                )
            }
            (ScopeRef::System, _) => (Scope::System, true, None),
            _ => (Scope::Unscoped, false, None),
        };
        let mut roles = self.effective_roles_of(&rows.role_ids).await?;
        let mut app = None;
        if let Some(ac_id) = ac_id {
            let gone =
                || Error::Unauthorized("The application credential no longer exists.".into());
            let ac = rows.app_cred.flatten().ok_or_else(gone)?;
            let role_ids = ac.role_ids.ok_or_else(gone)?;
            if ac.expires_at.is_some_and(|e| e <= unix_now()) {
                return Err(Error::Unauthorized(
                    "The application credential has expired.".into(),
                ));
            }
            roles.retain(|r| role_ids.contains(&r.id));
            app = Some(AppCredRef {
                id: ac_id.to_string(),
                name: ac.name,
                restricted: !ac.unrestricted,
            });
        }
        if scoped && roles.is_empty() {
            let what = match &p.scope {
                ScopeRef::Project(id) => format!("project {id}"),
                ScopeRef::Domain(id) => format!("domain {id}"),
                _ => "the system".to_string(),
            };
            return Err(Error::Unauthorized(format!(
                "User {} has no access to {what}.",
                p.user_id
            )));
        }
        let facts = TokenFacts {
            audit_ids: &p.audit_ids,
            user_id: &p.user_id,
            user_domain_id: &user.domain_id,
            project_id: match &p.scope {
                ScopeRef::Project(id) => Some(id),
                _ => None,
            },
            scope_domain_id: scope_domain.as_deref(),
            issued_at_us: p.issued_at_us,
        };
        if self
            .revocations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_revoked(&facts)
        {
            return Err(invalid());
        }
        let context = RequestContext {
            user_id: p.user_id.clone(),
            user_name: user.name,
            user_domain_id: user.domain_id,
            user_domain_name: user_domain.name,
            scope,
            roles: roles.iter().map(|r| r.name.clone()).collect(),
            unrestricted: app.as_ref().is_none_or(|a| !a.restricted),
            application_credential_id: app.as_ref().map(|a| a.id.clone()),
            audit_id: p.audit_ids.first().cloned().unwrap_or_default(),
        };
        Ok(ValidToken {
            context,
            roles,
            methods: p.methods.clone(),
            expires_at: p.expires_at,
            issued_at_us: p.issued_at_us,
            audit_ids: p.audit_ids.clone(),
            application_credential: app,
            epoch,
            rendered: Default::default(),
        })
    }

    /// Validates a token. Errors are `NotFoundMessage("Failed to validate token")`
    /// for tokens that never were or no longer are valid; callers checking their
    /// own caller's token answer 401 instead.
    pub async fn validate(&self, token: &str, allow_expired: bool) -> Result<Arc<ValidToken>> {
        let invalid = || Error::NotFoundMessage("Failed to validate token".into());
        let now = unix_now();
        let usable = |v: &ValidToken| {
            now < v.expires_at
                || (allow_expired && now < v.expires_at + self.settings.token.allow_expired_window)
        };
        let epoch = self.epoch();
        if let Some(v) = self.cache.get(token)
            && v.epoch == epoch
        {
            return if usable(&v) { Ok(v) } else { Err(invalid()) };
        }
        let payload = token::open(&self.token_keys, token).ok_or_else(invalid)?;
        let horizon = payload.expires_at
            + if allow_expired {
                self.settings.token.allow_expired_window
            } else {
                0
            };
        if now >= horizon {
            return Err(invalid());
        }
        let v = match self.expand(&payload, epoch).await {
            Ok(v) => Arc::new(v),
            Err(Error::Internal(e)) => return Err(Error::Internal(e)),
            Err(_) => {
                self.cache.remove(token);
                return Err(invalid());
            }
        };
        self.cache.insert(token.to_string(), v.clone());
        Ok(v)
    }

    /// `DELETE /v3/auth/tokens`: revokes the subject token (the caller's own, or any
    /// token for an admin).
    pub async fn revoke_token(&self, ctx: &RequestContext, subject: &str) -> Result<()> {
        let v = self.validate(subject, false).await?;
        if !ctx.is_admin() && ctx.user_id != v.context.user_id {
            return Err(Error::Forbidden("identity:revoke_token".into()));
        }
        let audit = v
            .audit_ids
            .first()
            .cloned()
            .ok_or_else(|| Error::NotFoundMessage("Failed to validate token".into()))?;
        let mut tx = self.db.begin_write().await?;
        let e = crate::resources::event(|e| e.audit_id = Some(audit));
        self.record_revocation(&mut tx, &e).await?;
        self.commit(tx, vec![e]).await?;
        self.cache.remove(subject);
        Ok(())
    }

    /// Policy for `GET`/`HEAD /v3/auth/tokens`: admin, system reader, a service, or
    /// the subject's own user.
    pub fn may_validate(&self, ctx: &RequestContext, subject: &ValidToken) -> Result<()> {
        if ctx.is_admin()
            || ctx.is_system_reader()
            || ctx.has_role("service")
            || ctx.user_id == subject.context.user_id
        {
            Ok(())
        } else {
            Err(Error::Forbidden("identity:validate_token".into()))
        }
    }

    /// The catalog a token's body shows: `None` when not asked for or when the
    /// token is unscoped (Keystone gives those no catalog).
    pub async fn token_catalog(
        &self,
        v: &ValidToken,
        with_catalog: bool,
    ) -> Result<Option<Vec<CatalogEntry>>> {
        if with_catalog && !matches!(v.context.scope, Scope::Unscoped) {
            Ok(Some(self.catalog_for(v.context.project_id()).await?))
        } else {
            Ok(None)
        }
    }
}

fn merge_user(slot: &mut Option<User>, u: User) -> Result<()> {
    match slot {
        Some(existing) if existing.id != u.id => Err(Error::Unauthorized(
            "Authentication methods identify different users.".into(),
        )),
        _ => {
            *slot = Some(u);
            Ok(())
        }
    }
}
