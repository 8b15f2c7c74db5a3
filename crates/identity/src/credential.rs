//! Credentials (`/v3/credentials`), the EC2 view of them (`OS-EC2`), and EC2
//! authentication (`/v3/ec2tokens`): a request signed with an EC2 secret becomes a
//! project-scoped token. Blobs are encrypted at rest with the credential key
//! repository (Fernet), as Keystone does; EC2 credential ids are
//! `sha256(access)` so a signed request finds its credential in one lookup.

use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use ferrostack_core::RequestContext;
use ferrostack_core::ids::new_hex_id;
use ferrostack_core::time::unix_now;

use crate::auth::Issued;
use crate::ec2sig::{self, SignedRequest};
use crate::error::{Error, Result};
use crate::fields::Fields;
use crate::list::{ListParams, Page, apply};
use crate::model::{Credential, Target};
use crate::policy;
use crate::records::credentials::SealedCredential;
use crate::records::{self, dup};
use crate::service::Identity;
use crate::token::{Method, Payload, ScopeRef, new_audit_id};

/// An EC2 credential as `OS-EC2` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Ec2Credential {
    pub user_id: String,
    pub tenant_id: Option<String>,
    pub access: String,
    pub secret: String,
    pub trust_id: Option<String>,
}

/// The id Keystone gives the credential of an EC2 access key.
pub fn ec2_credential_id(access: &str) -> String {
    hex::encode(Sha256::digest(access.as_bytes()))
}

fn random_hex() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Identity {
    fn seal_blob(&self, blob: &str) -> String {
        self.credential_keys.keys().encrypt(blob.as_bytes())
    }

    fn open_blob(&self, sealed: &str) -> Result<String> {
        let bytes = self.credential_keys.keys().decrypt(sealed).ok_or_else(|| {
            Error::Internal("a credential blob cannot be decrypted with the current keys".into())
        })?;
        String::from_utf8(bytes).map_err(Error::internal)
    }

    fn unseal(&self, c: SealedCredential) -> Result<Credential> {
        Ok(Credential {
            blob: self.open_blob(&c.sealed_blob)?,
            id: c.id,
            user_id: c.user_id,
            project_id: c.project_id,
            kind: c.kind,
            extra: c.extra,
        })
    }

    async fn credential(&self, id: &str) -> Result<Credential> {
        let c = records::credentials::get(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("credential", id))?;
        self.unseal(c)
    }

    async fn insert_credential(&self, c: &Credential) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        records::credentials::insert(&mut tx, c, &self.seal_blob(&c.blob))
            .await
            .map_err(dup(
                "credential",
                format!("Duplicate entry found with ID {}", c.id),
            ))?;
        self.commit(tx, vec![]).await
    }

    fn ec2_blob_access(blob: &str) -> Result<String> {
        let v: Value = serde_json::from_str(blob)
            .map_err(|_| Error::Validation("Invalid blob in credential".into()))?;
        v.get("access")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::Validation("Invalid blob in credential: no 'access'".into()))
    }

    // ----- /v3/credentials --------------------------------------------------------------

    pub async fn create_credential(&self, ctx: &RequestContext, body: Value) -> Result<Credential> {
        let mut f = Fields::member(body, "credential")?;
        let user_id = f.required_string("user_id", 64)?;
        policy::admin_or_owner(ctx, "identity:create_credential", &user_id)?;
        let kind = f.required_string("type", 255)?;
        let blob = f.required_string("blob", 65536)?;
        let project_id = f.nullable_string("project_id", 64)?.flatten();
        let explicit_id = f.string("id", 64)?;
        let extra = f.into_extra();
        self.user(&user_id)
            .await
            .map_err(|_| Error::Validation(format!("Could not find user: {user_id}.")))?;
        let id = if kind == "ec2" {
            let pid = project_id.as_ref().ok_or_else(|| {
                Error::Validation("Credentials of type ec2 need a project_id.".into())
            })?;
            self.project(pid).await?;
            let access = Self::ec2_blob_access(&blob)?;
            let id = ec2_credential_id(&access);
            if explicit_id.as_ref().is_some_and(|e| *e != id) {
                return Err(Error::Validation(
                    "The credential id of an ec2 credential must be the sha256 of its access key."
                        .into(),
                ));
            }
            id
        } else {
            explicit_id.unwrap_or_else(new_hex_id)
        };
        let c = Credential {
            id: id.clone(),
            user_id,
            project_id,
            kind,
            blob,
            extra,
        };
        self.insert_credential(&c).await?;
        Ok(c)
    }

    pub async fn list_credentials(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<Credential>> {
        let mut all = records::credentials::list(&self.db)
            .await?
            .into_iter()
            .map(|c| self.unseal(c))
            .collect::<Result<Vec<_>>>()?;
        if !(ctx.is_admin() || ctx.is_system_reader()) {
            all.retain(|c| c.user_id == ctx.user_id);
        }
        apply(
            all,
            |c| &c.id,
            params,
            &["user_id", "type", "project_id"],
            0,
        )
    }

    pub async fn get_credential(&self, ctx: &RequestContext, id: &str) -> Result<Credential> {
        let c = self.credential(id).await?;
        policy::system_reader_or_owner(ctx, "identity:get_credential", &c.user_id)?;
        Ok(c)
    }

    pub async fn update_credential(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Credential> {
        let mut c = self.credential(id).await?;
        policy::admin_or_owner(ctx, "identity:update_credential", &c.user_id)?;
        let mut f = Fields::member(body, "credential")?;
        f.forbid_id_change(id)?;
        if let Some(u) = f.string("user_id", 64)?
            && u != c.user_id
        {
            policy::admin(ctx, "identity:update_credential")?;
            self.user(&u).await?;
            c.user_id = u;
        }
        if let Some(p) = f.nullable_string("project_id", 64)? {
            c.project_id = p;
        }
        if let Some(t) = f.string("type", 255)? {
            c.kind = t;
        }
        let old_blob = c.blob.clone();
        if let Some(b) = f.string("blob", 65536)? {
            c.blob = b;
        }
        crate::service::merge_extra(&mut c.extra, f.into_extra());
        if c.kind == "ec2" {
            if c.project_id.is_none() {
                return Err(Error::Validation(
                    "Credentials of type ec2 need a project_id.".into(),
                ));
            }
            // Keystone lets an ec2 blob change, its access key included (the id stays the
            // hash of the first one), but not the scope it was created with.
            Self::ec2_blob_access(&c.blob)?;
            let old: Value = serde_json::from_str(&old_blob).unwrap_or(Value::Null);
            let new: Value = serde_json::from_str(&c.blob).unwrap_or(Value::Null);
            for key in ["trust_id", "app_cred_id", "access_token_id", "access_id"] {
                let get = |v: &Value| v.get(key).filter(|x| !x.is_null()).cloned();
                if get(&old) != get(&new) {
                    return Err(Error::Validation(format!(
                        "{key} can not be updated for credential"
                    )));
                }
            }
        }
        let mut tx = self.db.begin_write().await?;
        records::credentials::update(&mut tx, &c, &self.seal_blob(&c.blob)).await?;
        self.commit(tx, vec![]).await?;
        Ok(c)
    }

    pub async fn delete_credential(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        let c = self.credential(id).await?;
        policy::admin_or_owner(ctx, "identity:delete_credential", &c.user_id)?;
        let mut tx = self.db.begin_write().await?;
        records::credentials::delete(&mut tx, id).await?;
        self.commit(tx, vec![]).await
    }

    // ----- OS-EC2 -----------------------------------------------------------------------

    fn to_ec2(c: &Credential) -> Result<Ec2Credential> {
        let v: Value = serde_json::from_str(&c.blob)?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Ec2Credential {
            user_id: c.user_id.clone(),
            tenant_id: c.project_id.clone(),
            access: s("access").unwrap_or_default(),
            secret: s("secret").unwrap_or_default(),
            trust_id: s("trust_id"),
        })
    }

    /// `POST /v3/users/{user_id}/credentials/OS-EC2`.
    pub async fn create_ec2_credential(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        body: Value,
    ) -> Result<Ec2Credential> {
        policy::admin_or_owner(ctx, "identity:ec2_create_credential", user_id)?;
        if !ctx.unrestricted {
            return Err(Error::ForbiddenAction(
                "Using a restricted application credential to create EC2 credentials is not allowed.".into(),
            ));
        }
        let project_id = body
            .get("tenant_id")
            .or_else(|| body.get("project_id"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::Validation("'tenant_id' is a required property".into()))?;
        self.user(user_id).await?;
        self.project(&project_id).await?;
        if self
            .effective_roles(user_id, &Target::Project(project_id.clone()))
            .await?
            .is_empty()
        {
            return Err(Error::ForbiddenAction(format!(
                "User {user_id} has no role on project {project_id}."
            )));
        }
        self.create_ec2_credential_unchecked(user_id, &project_id)
            .await
    }

    /// Creates an EC2 credential without policy checks (bootstrap).
    pub(crate) async fn create_ec2_credential_unchecked(
        &self,
        user_id: &str,
        project_id: &str,
    ) -> Result<Ec2Credential> {
        let ec2 = Ec2Credential {
            user_id: user_id.to_string(),
            tenant_id: Some(project_id.to_string()),
            access: random_hex(),
            secret: random_hex(),
            trust_id: None,
        };
        let blob =
            json!({"access": ec2.access, "secret": ec2.secret, "trust_id": null}).to_string();
        self.insert_credential(&Credential {
            id: ec2_credential_id(&ec2.access),
            user_id: user_id.to_string(),
            project_id: Some(project_id.to_string()),
            kind: "ec2".into(),
            blob,
            extra: Default::default(),
        })
        .await?;
        Ok(ec2)
    }

    pub async fn list_ec2_credentials(
        &self,
        ctx: &RequestContext,
        user_id: &str,
    ) -> Result<Vec<Ec2Credential>> {
        policy::system_reader_or_owner(ctx, "identity:ec2_list_credentials", user_id)?;
        self.user(user_id).await?;
        records::credentials::ec2_of_user(&self.db, user_id)
            .await?
            .into_iter()
            .map(|c| self.unseal(c).and_then(|c| Self::to_ec2(&c)))
            .collect()
    }

    /// Keystone's lookup: no credential with that id is 404 (`Could not find credential`),
    /// one that is not an ec2 credential (or, here, not this user's) is 401.
    async fn ec2_by_access(&self, user_id: &str, access: &str) -> Result<Ec2Credential> {
        let not_found = || Error::Unauthorized("EC2 access key not found.".into());
        let c = self.credential(&ec2_credential_id(access)).await?;
        if c.kind != "ec2" || c.user_id != user_id {
            return Err(not_found());
        }
        Self::to_ec2(&c)
    }

    pub async fn get_ec2_credential(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        access: &str,
    ) -> Result<Ec2Credential> {
        policy::system_reader_or_owner(ctx, "identity:ec2_get_credential", user_id)?;
        self.ec2_by_access(user_id, access).await
    }

    pub async fn delete_ec2_credential(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        access: &str,
    ) -> Result<()> {
        policy::admin_or_owner(ctx, "identity:ec2_delete_credential", user_id)?;
        self.ec2_by_access(user_id, access).await?;
        let mut tx = self.db.begin_write().await?;
        records::credentials::delete(&mut tx, &ec2_credential_id(access)).await?;
        self.commit(tx, vec![]).await
    }

    /// The secret of an EC2 access key and whom it belongs to (for the EC2 API).
    pub async fn ec2_secret(&self, access: &str) -> Result<Option<Ec2Credential>> {
        match self.credential(&ec2_credential_id(access)).await {
            Ok(c) if c.kind == "ec2" => Ok(Some(Self::to_ec2(&c)?)),
            Ok(_) | Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ----- ec2tokens ----------------------------------------------------------------------

    /// `POST /v3/ec2tokens`: verifies an EC2-signed request and returns a token for
    /// the credential's user on the credential's project. The caller must be an
    /// admin or a service.
    pub async fn ec2_authenticate(&self, ctx: &RequestContext, body: &Value) -> Result<Issued> {
        if !(ctx.is_admin() || ctx.has_role("service")) {
            return Err(Error::Forbidden("identity:ec2tokens_validate".into()));
        }
        let creds = body
            .get("credentials")
            .or_else(|| body.get("credential"))
            .or_else(|| body.get("ec2Credentials"))
            .or_else(|| {
                body.get("auth")
                    .and_then(|a| a.get("OS-KSEC2:ec2Credentials"))
            })
            .filter(|c| c.is_object())
            .ok_or_else(|| {
                Error::Validation(
                    "Expecting to find credentials in request body - the server could not comply \
                     with the request since it is either malformed or otherwise incorrect. The \
                     client is assumed to be in error."
                        .into(),
                )
            })?;
        let req: SignedRequest = serde_json::from_value(creds.clone())
            .map_err(|e| Error::Validation(format!("Invalid EC2 credentials: {e}")))?;
        if req.access.is_empty() {
            return Err(Error::Unauthorized("EC2 Signature not supplied.".into()));
        }
        let cred = self
            .ec2_secret(&req.access)
            .await?
            .ok_or_else(|| Error::NotFoundMessage("EC2 access key not found.".into()))?;
        if req.signature.is_empty() {
            return Err(Error::Unauthorized("EC2 signature not supplied.".into()));
        }
        ec2sig::verify(&cred.secret, &req)
            .map_err(|_| Error::Unauthorized("Invalid EC2 signature.".into()))?;
        if let Ok(Some(ts)) = ec2sig::request_timestamp(&req)
            && unix_now() > ts.unix_timestamp() + self.settings.credential.auth_ttl * 60
        {
            return Err(Error::Unauthorized("Credential is expired.".into()));
        }
        let project_id = cred
            .tenant_id
            .clone()
            .ok_or_else(|| Error::Unauthorized("User not valid for project.".into()))?;
        let user = self
            .user(&cred.user_id)
            .await
            .map_err(|_| Error::unauthenticated())?;
        if !user.enabled {
            return Err(Error::Unauthorized(format!(
                "The account is disabled for user: {}.",
                user.id
            )));
        }
        if self
            .effective_roles(&user.id, &Target::Project(project_id.clone()))
            .await?
            .is_empty()
        {
            return Err(Error::Unauthorized("User not valid for project.".into()));
        }
        let now = unix_now();
        self.issue(Payload {
            user_id: user.id,
            methods: vec![Method::Ec2Credential],
            scope: ScopeRef::Project(project_id),
            expires_at: now + self.settings.token.expiration,
            issued_at_us: (ferrostack_core::time::now().unix_timestamp_nanos() / 1000) as i64,
            audit_ids: vec![new_audit_id()],
            application_credential_id: None,
        })
        .await
    }

    /// For the EC2 Query API, in process: verifies a signed request against the
    /// access key's secret and returns the caller as the credential's user on the
    /// credential's project, with that user's effective roles there (the same
    /// checks a token of that user and project passes). The request's time is
    /// the API's business.
    pub async fn ec2_context(
        &self,
        req: &SignedRequest,
    ) -> std::result::Result<RequestContext, Ec2AuthError> {
        if req.access.is_empty() || req.signature.is_empty() {
            return Err(Ec2AuthError::Missing);
        }
        let cred = self
            .ec2_secret(&req.access)
            .await
            .map_err(|e| Ec2AuthError::Internal(e.to_string()))?
            .ok_or(Ec2AuthError::UnknownKey)?;
        match ec2sig::verify(&cred.secret, req) {
            Ok(()) => {}
            Err(ec2sig::SignatureError::Malformed(m)) => return Err(Ec2AuthError::Malformed(m)),
            Err(_) => return Err(Ec2AuthError::BadSignature),
        }
        let project_id = cred.tenant_id.clone().ok_or(Ec2AuthError::NotAllowed)?;
        let now = unix_now();
        let payload = Payload {
            user_id: cred.user_id.clone(),
            methods: vec![Method::Ec2Credential],
            scope: ScopeRef::Project(project_id),
            expires_at: now + 60,
            issued_at_us: (ferrostack_core::time::now().unix_timestamp_nanos() / 1000) as i64,
            audit_ids: vec![new_audit_id()],
            application_credential_id: None,
        };
        match self.expand(&payload, self.epoch()).await {
            Ok(v) => Ok(v.context),
            Err(Error::Internal(e)) => Err(Ec2AuthError::Internal(e.to_string())),
            Err(_) => Err(Ec2AuthError::NotAllowed),
        }
    }
}

/// Why an EC2-signed request was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Ec2AuthError {
    #[error("no access key or signature")]
    Missing,
    #[error("unknown access key")]
    UnknownKey,
    #[error("signature does not match")]
    BadSignature,
    #[error("malformed signature: {0}")]
    Malformed(String),
    #[error("the credential's user may not act on its project")]
    NotAllowed,
    #[error("internal error: {0}")]
    Internal(String),
}
