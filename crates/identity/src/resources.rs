//! Domains, projects (with their hierarchy), users and groups: Keystone's
//! resource and identity backends, with the policy check at the top of each
//! operation and every multi-row change in one transaction.

use ferrostack_core::RequestContext;
use ferrostack_core::context::Scope;
use ferrostack_core::ids::new_hex_id;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fields::Fields;
use crate::list::{ListParams, Page, apply};
use crate::model::{Domain, Group, Project, User};
use crate::password;
use crate::policy;
use crate::records::{self, dup};
use crate::revoke::RevocationEvent;
use crate::service::{Identity, merge_extra};

const NAME_MAX: usize = 64;
const USER_NAME_MAX: usize = 255;

use ferrostack_core::time::now_us;

/// A revocation event for everything issued so far matching `f`.
pub(crate) fn event(f: impl FnOnce(&mut RevocationEvent)) -> RevocationEvent {
    let mut e = RevocationEvent {
        issued_before_us: now_us(),
        ..Default::default()
    };
    f(&mut e);
    e
}

impl Identity {
    // ----- lookups (no policy) ------------------------------------------------------

    pub(crate) async fn find_domain(&self, id: &str) -> Result<Option<Domain>> {
        Ok(records::domains::get(&self.db, id).await?)
    }

    pub(crate) async fn domain(&self, id: &str) -> Result<Domain> {
        self.find_domain(id)
            .await?
            .ok_or_else(|| Error::not_found("domain", id))
    }

    pub(crate) async fn domain_by_name(&self, name: &str) -> Result<Domain> {
        records::domains::by_name(&self.db, name)
            .await?
            .ok_or_else(|| Error::not_found("domain", name))
    }

    pub(crate) async fn project(&self, id: &str) -> Result<Project> {
        records::projects::get(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("project", id))
    }

    pub(crate) async fn project_by_name(&self, name: &str, domain_id: &str) -> Result<Project> {
        records::projects::by_name(&self.db, name, domain_id)
            .await?
            .ok_or_else(|| Error::not_found("project", name))
    }

    pub(crate) async fn user(&self, id: &str) -> Result<User> {
        records::users::get(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))
    }

    pub(crate) async fn find_user_by_name(
        &self,
        name: &str,
        domain_id: &str,
    ) -> Result<Option<User>> {
        records::users::by_name(&self.db, name, domain_id).await
    }

    pub(crate) async fn group(&self, id: &str) -> Result<Group> {
        records::groups::get(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("group", id))
    }

    /// The domain new entities go to when the request names none: the domain of
    /// the caller's scope (Keystone's `_get_domain_id_from_token`), else `default`.
    fn default_domain_for(&self, ctx: &RequestContext) -> String {
        match &ctx.scope {
            Scope::Project { domain_id, .. } => domain_id.clone(),
            Scope::Domain { id, .. } => id.clone(),
            _ => crate::model::DEFAULT_DOMAIN_ID.to_string(),
        }
    }

    // ----- domains ---------------------------------------------------------------------

    pub async fn create_domain(&self, ctx: &RequestContext, body: Value) -> Result<Domain> {
        policy::admin(ctx, "identity:create_domain")?;
        let mut f = Fields::member(body, "domain")?;
        let id = match f.string("id", NAME_MAX)? {
            Some(id) if id.contains('/') => {
                return Err(Error::Validation(format!("Invalid domain id: {id}")));
            }
            Some(id) => id,
            None => new_hex_id(),
        };
        let name = f.required_string("name", NAME_MAX)?;
        let description = f.text("description")?.unwrap_or_default();
        let enabled = f.bool("enabled")?.unwrap_or(true);
        let tags = f.tags()?.unwrap_or_default();
        f.take("options");
        let d = Domain {
            id,
            name,
            description,
            enabled,
            tags,
            options: Default::default(),
            extra: f.into_extra(),
        };
        self.insert_domain(&d).await?;
        self.domain(&d.id).await
    }

    pub(crate) async fn insert_domain(&self, d: &Domain) -> Result<()> {
        let duplicate = format!("Duplicate entry found with name {}", d.name);
        self.insert_domain_row(d, ("domain", duplicate)).await
    }

    /// Inserts a domain; a taken name is refused with `conflict` (kind, detail).
    async fn insert_domain_row(&self, d: &Domain, conflict: (&str, String)) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        records::domains::insert(&mut tx, d)
            .await
            .map_err(dup(conflict.0, conflict.1))?;
        self.commit(tx, vec![]).await
    }

    pub async fn list_domains(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<Domain>> {
        policy::reader_of_domain(ctx, "identity:list_domains", None)?;
        let all = records::domains::list(&self.db).await?;
        apply(
            all,
            |d| &d.id,
            params,
            &["name", "enabled", "id"],
            self.settings.identity.list_limit,
        )
    }

    pub async fn get_domain(&self, ctx: &RequestContext, id: &str) -> Result<Domain> {
        let d = policy::hide_missing(ctx, "identity:get_domain", self.domain(id).await)?;
        let own = match &ctx.scope {
            Scope::Domain { id: did, .. } => did == id,
            Scope::Project { domain_id, .. } => domain_id == id,
            _ => false,
        };
        if !own {
            policy::reader_of_domain(ctx, "identity:get_domain", Some(id))?;
        }
        Ok(d)
    }

    pub async fn update_domain(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Domain> {
        policy::admin(ctx, "identity:update_domain")?;
        let mut d = self.domain(id).await?;
        let mut f = Fields::member(body, "domain")?;
        f.forbid_id_change(id)?;
        if let Some(name) = f.string("name", NAME_MAX)? {
            d.name = name;
        }
        if let Some(desc) = f.text("description")? {
            d.description = desc;
        }
        let was_enabled = d.enabled;
        if let Some(en) = f.bool("enabled")? {
            d.enabled = en;
        }
        if let Some(tags) = f.tags()? {
            d.tags = tags;
        }
        f.take("options");
        merge_extra(&mut d.extra, f.into_extra());
        let mut tx = self.db.begin_write().await?;
        records::domains::update(&mut tx, &d).await.map_err(dup(
            "domain",
            format!("Duplicate entry found with name {}", d.name),
        ))?;
        let mut events = vec![];
        if was_enabled && !d.enabled {
            let e = event(|e| e.domain_id = Some(id.to_string()));
            self.record_revocation(&mut tx, &e).await?;
            events.push(e);
        }
        self.commit(tx, events).await?;
        Ok(d)
    }

    /// Deletes a disabled domain and everything in it.
    pub async fn delete_domain(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        policy::admin(ctx, "identity:delete_domain")?;
        let d = self.domain(id).await?;
        if d.enabled {
            return Err(Error::ForbiddenAction(
                "Cannot delete a domain that is enabled, please disable it first.".into(),
            ));
        }
        let mut tx = self.db.begin_write().await?;
        records::domains::delete_with_contents(&mut tx, id).await?;
        let e = event(|e| e.domain_id = Some(id.to_string()));
        self.record_revocation(&mut tx, &e).await?;
        self.commit(tx, vec![e]).await
    }

    // ----- projects --------------------------------------------------------------------

    pub async fn create_project(&self, ctx: &RequestContext, body: Value) -> Result<Project> {
        policy::admin(ctx, "identity:create_project")?;
        let mut f = Fields::member(body, "project")?;
        let name = f.required_string("name", NAME_MAX)?;
        let is_domain = f.bool("is_domain")?.unwrap_or(false);
        let mut domain_id = f.nullable_string("domain_id", NAME_MAX)?.flatten();
        let mut parent_id = f.nullable_string("parent_id", NAME_MAX)?.flatten();
        let description = f.text("description")?.unwrap_or_default();
        let enabled = f.bool("enabled")?.unwrap_or(true);
        let tags = f.tags()?.unwrap_or_default();
        f.take("options");
        f.take("id");
        let extra = f.into_extra();

        if is_domain {
            // Keystone: a project without a parent_id has its domain_id as parent, and a
            // project acting as a domain must be a root: neither may be given.
            if parent_id.is_some() || domain_id.is_some() {
                return Err(Error::Validation(
                    "only root projects are allowed to act as domains.".into(),
                ));
            }
            let conflict = format!(
                "it is not permitted to have two projects acting as domains with the same name: {name}"
            );
            let d = Domain {
                id: new_hex_id(),
                name,
                description,
                enabled,
                tags,
                options: Default::default(),
                extra,
            };
            self.insert_domain_row(&d, ("project", conflict)).await?;
            return Ok(Project::acting_as_domain(self.domain(&d.id).await?));
        }

        // A parent that is a domain means "top level in that domain".
        if let Some(p) = parent_id.clone()
            && let Some(d) = self.find_domain(&p).await?
        {
            if domain_id.as_ref().is_some_and(|x| *x != d.id) {
                return Err(Error::Validation(
                    "Cannot create a project whose parent is in another domain.".into(),
                ));
            }
            domain_id = Some(d.id);
            parent_id = None;
        }
        if let Some(p) = &parent_id {
            let parent = self
                .project(p)
                .await
                .map_err(|_| Error::Validation(format!("Could not find parent project: {p}.")))?;
            match &domain_id {
                Some(d) if *d != parent.domain_id => {
                    return Err(Error::Validation(
                        "Cannot create a project whose parent is in another domain.".into(),
                    ));
                }
                _ => domain_id = Some(parent.domain_id.clone()),
            }
            if enabled && !parent.enabled {
                return Err(Error::ForbiddenAction(format!(
                    "Cannot create project, since its parent ({p}) is disabled."
                )));
            }
        }
        let domain_id = domain_id.unwrap_or_else(|| self.default_domain_for(ctx));
        self.find_domain(&domain_id)
            .await?
            .ok_or_else(|| Error::Validation(format!("Could not find domain: {domain_id}.")))?;
        let id = new_hex_id();
        let mut tx = self.db.begin_write().await?;
        let row = records::projects::NewProject {
            id: &id,
            name: &name,
            domain_id: &domain_id,
            parent_id: parent_id.as_deref(),
            description: &description,
            enabled,
            tags: &tags,
            extra: &extra,
        };
        records::projects::insert(&mut tx, &row).await.map_err(dup(
            "project",
            format!("Duplicate entry found with name {name} at domain ID {domain_id}"),
        ))?;
        self.commit(tx, vec![]).await?;
        self.project(&id).await
    }

    pub async fn list_projects(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<Project>> {
        let only = policy::list_domain_restriction(ctx, "identity:list_projects")?;
        let mut all = records::projects::list(&self.db).await?;
        // Keystone lists only regular projects unless `is_domain` is asked for; its
        // domains are projects acting as domains.
        if params
            .get("is_domain")
            .is_some_and(crate::fields::query_bool)
        {
            for d in records::domains::all(&self.db).await? {
                all.push(Project::acting_as_domain(d));
            }
            all.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        }
        if let Some(d) = only {
            all.retain(|p| p.domain_id == d);
        }
        if let Some(tags) = params.get("tags") {
            let want: Vec<&str> = tags.split(',').collect();
            all.retain(|p| want.iter().all(|t| p.tags.iter().any(|x| x == t)));
        }
        if let Some(tags) = params.get("tags-any") {
            let want: Vec<&str> = tags.split(',').collect();
            all.retain(|p| want.iter().any(|t| p.tags.iter().any(|x| x == t)));
        }
        apply(
            all,
            |p| &p.id,
            params,
            &[
                "name",
                "domain_id",
                "enabled",
                "parent_id",
                "is_domain",
                "id",
            ],
            self.settings.identity.list_limit,
        )
    }

    /// A project by id, or a domain shown as the project acting as it (Keystone keeps
    /// both in one table, so `/v3/projects/{id}` reaches domains too).
    async fn project_or_domain(&self, id: &str) -> Result<Project> {
        match self.project(id).await {
            Err(Error::NotFound { .. }) => match self.find_domain(id).await? {
                Some(d) => Ok(Project::acting_as_domain(d)),
                None => Err(Error::not_found("project", id)),
            },
            other => other,
        }
    }

    pub async fn get_project(&self, ctx: &RequestContext, id: &str) -> Result<Project> {
        let p = policy::hide_missing(
            ctx,
            "identity:get_project",
            self.project_or_domain(id).await,
        )?;
        policy::project_reader(ctx, "identity:get_project", &p.id, &p.domain_id)?;
        Ok(p)
    }

    pub async fn update_project(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Project> {
        policy::admin(ctx, "identity:update_project")?;
        let mut p = match self.project(id).await {
            Err(Error::NotFound { .. }) if self.find_domain(id).await?.is_some() => {
                return self.update_project_acting_as_domain(ctx, id, body).await;
            }
            other => other?,
        };
        let mut f = Fields::member(body, "project")?;
        f.forbid_id_change(id)?;
        if let Some(v) = f.take("domain_id")
            && v != Value::String(p.domain_id.clone())
        {
            return Err(Error::Validation("Cannot change Domain ID".into()));
        }
        if let Some(v) = f.take("parent_id")
            && v != Value::String(p.parent_id.clone())
        {
            return Err(Error::ForbiddenAction(
                "Update of `parent_id` is not allowed.".into(),
            ));
        }
        if let Some(v) = f.take("is_domain")
            && v != Value::Bool(false)
        {
            return Err(Error::Validation(
                "Update of `is_domain` is not allowed.".into(),
            ));
        }
        if let Some(name) = f.string("name", NAME_MAX)? {
            p.name = name;
        }
        if let Some(desc) = f.text("description")? {
            p.description = desc;
        }
        let was_enabled = p.enabled;
        if let Some(en) = f.bool("enabled")? {
            p.enabled = en;
        }
        if let Some(tags) = f.tags()? {
            p.tags = tags;
        }
        f.take("options");
        merge_extra(&mut p.extra, f.into_extra());

        if p.enabled
            && !was_enabled
            && let Some(parent) = &p.parent_project_id
            && !self.project(parent).await?.enabled
        {
            return Err(Error::ForbiddenAction(format!(
                "Cannot enable project {id} since it has disabled parents"
            )));
        }
        if !p.enabled && was_enabled {
            let enabled_children = records::projects::count_children(&self.db, id, true).await?;
            if enabled_children > 0 {
                return Err(Error::ForbiddenAction(format!(
                    "Cannot disable project {id} since its subtree contains enabled projects."
                )));
            }
        }
        let mut tx = self.db.begin_write().await?;
        records::projects::update(&mut tx, &p).await.map_err(dup(
            "project",
            format!(
                "Duplicate entry found with name {} at domain ID {}",
                p.name, p.domain_id
            ),
        ))?;
        let mut events = vec![];
        if was_enabled && !p.enabled {
            let e = event(|e| e.project_id = Some(id.to_string()));
            self.record_revocation(&mut tx, &e).await?;
            events.push(e);
        }
        self.commit(tx, events).await?;
        Ok(p)
    }

    /// `PATCH /v3/projects/{id}` of a domain: Keystone's project rules (domain and
    /// parent stay null, `is_domain` stays true), then the domain's update (disabling
    /// it needs no disabled children and revokes its tokens).
    async fn update_project_acting_as_domain(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Project> {
        let mut f = Fields::member(body, "project")?;
        f.forbid_id_change(id)?;
        if f.take("domain_id").is_some_and(|v| !v.is_null()) {
            return Err(Error::Validation("Cannot change Domain ID".into()));
        }
        if f.take("parent_id").is_some_and(|v| !v.is_null()) {
            return Err(Error::ForbiddenAction(
                "Update of `parent_id` is not allowed.".into(),
            ));
        }
        if f.take("is_domain").is_some_and(|v| v != Value::Bool(true)) {
            return Err(Error::Validation(
                "Update of `is_domain` is not allowed.".into(),
            ));
        }
        let mut member = serde_json::Map::new();
        member.insert("domain".into(), Value::Object(f.into_extra()));
        let d = self.update_domain(ctx, id, Value::Object(member)).await?;
        Ok(Project::acting_as_domain(d))
    }

    pub async fn delete_project(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        policy::admin(ctx, "identity:delete_project")?;
        match self.project(id).await {
            // A project acting as a domain goes as a domain does: only once disabled.
            Err(Error::NotFound { .. }) if self.find_domain(id).await?.is_some() => {
                return self.delete_domain(ctx, id).await;
            }
            other => {
                other?;
            }
        }
        let children = records::projects::count_children(&self.db, id, false).await?;
        if children > 0 {
            return Err(Error::ForbiddenAction(format!(
                "Cannot delete the project {id} since it is not a leaf in the hierarchy. Use the \
                 cascade option if you want to delete a whole subtree."
            )));
        }
        let mut tx = self.db.begin_write().await?;
        records::projects::delete(&mut tx, id).await?;
        let e = event(|e| e.project_id = Some(id.to_string()));
        self.record_revocation(&mut tx, &e).await?;
        self.commit(tx, vec![e]).await
    }

    /// Projects on which `user_id` has any role (directly or through a group).
    pub(crate) async fn projects_of_user(&self, user_id: &str) -> Result<Vec<Project>> {
        Ok(records::projects::of_user(&self.db, user_id).await?)
    }

    /// `GET /v3/users/{id}/projects`.
    pub async fn list_user_projects(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        params: &ListParams,
    ) -> Result<Page<Project>> {
        let u = self.user(user_id).await?;
        policy::reader_or_owner(
            ctx,
            "identity:list_user_projects",
            Some(&u.domain_id),
            user_id,
        )?;
        let all = self.projects_of_user(user_id).await?;
        apply(all, |p| &p.id, params, &["name", "domain_id", "enabled"], 0)
    }

    // ----- users -----------------------------------------------------------------------

    pub async fn create_user(&self, ctx: &RequestContext, body: Value) -> Result<User> {
        policy::admin(ctx, "identity:create_user")?;
        let mut f = Fields::member(body, "user")?;
        let name = f.required_string("name", USER_NAME_MAX)?;
        let domain_id = f
            .nullable_string("domain_id", NAME_MAX)?
            .flatten()
            .unwrap_or_else(|| self.default_domain_for(ctx));
        let password = self.take_password(&mut f)?;
        let enabled = f.bool("enabled")?.unwrap_or(true);
        let default_project_id = f.nullable_string("default_project_id", NAME_MAX)?.flatten();
        f.take("options");
        f.take("id");
        let extra = f.into_extra();
        self.find_domain(&domain_id)
            .await?
            .ok_or_else(|| Error::not_found("domain", &domain_id))?;
        if let Some(p) = &default_project_id {
            let proj = self
                .project(p)
                .await
                .map_err(|_| Error::Validation(format!("Could not find default project: {p}.")))?;
            if proj.domain_id != domain_id && domain_id.is_empty() {
                return Err(Error::Validation("Invalid default project.".into()));
            }
        }
        let hash = self.hash_password(password).await?;
        let id = new_hex_id();
        let mut tx = self.db.begin_write().await?;
        let row = records::users::NewUser {
            id: &id,
            name: &name,
            domain_id: &domain_id,
            enabled,
            password_hash: hash,
            default_project_id,
            extra: &extra,
        };
        records::users::insert(&mut tx, row).await.map_err(dup(
            "user",
            format!("Duplicate entry found with name {name} at domain ID {domain_id}"),
        ))?;
        self.commit(tx, vec![]).await?;
        self.user(&id).await
    }

    fn take_password(&self, f: &mut Fields) -> Result<Option<String>> {
        match f.take("password") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(p)) => {
                if p.len() > self.settings.identity.max_password_length {
                    return Err(Error::Validation(format!(
                        "Invalid input for field 'password': the password is longer than {} bytes",
                        self.settings.identity.max_password_length
                    )));
                }
                Ok(Some(p))
            }
            Some(_) => Err(Error::Validation(
                "Invalid input for field 'password': it is not of type 'string'".into(),
            )),
        }
    }

    pub(crate) async fn hash_password(&self, password: Option<String>) -> Result<Option<String>> {
        let Some(pw) = password else { return Ok(None) };
        let cost = self.settings.hash_cost();
        let h = tokio::task::spawn_blocking(move || password::hash(&pw, cost))
            .await
            .map_err(Error::internal)??;
        Ok(Some(h))
    }

    pub async fn list_users(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<User>> {
        let only = policy::list_domain_restriction(ctx, "identity:list_users")?;
        let mut all = records::users::list(&self.db).await?;
        if let Some(d) = only {
            all.retain(|u| u.domain_id == d);
        }
        apply(
            all,
            |u| &u.id,
            params,
            &["name", "domain_id", "enabled", "id", "email", "description"],
            self.settings.identity.list_limit,
        )
    }

    pub async fn get_user(&self, ctx: &RequestContext, id: &str) -> Result<User> {
        let u = policy::hide_missing(ctx, "identity:get_user", self.user(id).await)?;
        policy::reader_or_owner(ctx, "identity:get_user", Some(&u.domain_id), id)?;
        Ok(u)
    }

    pub async fn update_user(&self, ctx: &RequestContext, id: &str, body: Value) -> Result<User> {
        policy::admin(ctx, "identity:update_user")?;
        let mut u = self.user(id).await?;
        let mut f = Fields::member(body, "user")?;
        f.forbid_id_change(id)?;
        if let Some(v) = f.take("domain_id")
            && v != Value::String(u.domain_id.clone())
        {
            return Err(Error::Validation("Cannot change Domain ID".into()));
        }
        if let Some(name) = f.string("name", USER_NAME_MAX)? {
            u.name = name;
        }
        let new_password = self.take_password(&mut f)?;
        let was_enabled = u.enabled;
        if let Some(en) = f.bool("enabled")? {
            u.enabled = en;
        }
        if let Some(p) = f.nullable_string("default_project_id", NAME_MAX)? {
            if let Some(pid) = &p {
                self.project(pid).await.map_err(|_| {
                    Error::Validation(format!("Could not find default project: {pid}."))
                })?;
            }
            u.default_project_id = p;
        }
        f.take("options");
        merge_extra(&mut u.extra, f.into_extra());
        let password_changed = new_password.is_some();
        let hash = match new_password {
            Some(p) => self.hash_password(Some(p)).await?,
            None => u.password_hash.clone(),
        };
        let mut tx = self.db.begin_write().await?;
        let reset_failures = password_changed || (u.enabled && !was_enabled);
        records::users::update(&mut tx, &u, hash, reset_failures)
            .await
            .map_err(dup(
                "user",
                format!(
                    "Duplicate entry found with name {} at domain ID {}",
                    u.name, u.domain_id
                ),
            ))?;
        let mut events = vec![];
        if (was_enabled && !u.enabled) || password_changed {
            let e = event(|e| e.user_id = Some(id.to_string()));
            self.record_revocation(&mut tx, &e).await?;
            events.push(e);
        }
        self.commit(tx, events).await?;
        Ok(u)
    }

    pub async fn delete_user(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        policy::admin(ctx, "identity:delete_user")?;
        self.user(id).await?;
        let mut tx = self.db.begin_write().await?;
        records::users::delete(&mut tx, id).await?;
        let e = event(|e| e.user_id = Some(id.to_string()));
        self.record_revocation(&mut tx, &e).await?;
        self.commit(tx, vec![e]).await
    }

    /// `POST /v3/users/{id}/password`: the user changes its own password by proving
    /// the original one. Every token of the user is revoked afterwards.
    pub async fn change_password(&self, user_id: &str, body: Value) -> Result<()> {
        let mut f = Fields::member(body, "user")?;
        let original = match f.take("original_password") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(Error::Validation(
                    "'original_password' is a required property".into(),
                ));
            }
        };
        let new = self
            .take_password(&mut f)?
            .ok_or_else(|| Error::Validation("'password' is a required property".into()))?;
        let user = match self.user(user_id).await {
            Ok(u) => u,
            Err(Error::NotFound { .. }) => return Err(Error::unauthenticated()),
            Err(e) => return Err(e),
        };
        self.check_password(&user, &original).await?;
        let hash = self.hash_password(Some(new)).await?;
        let mut tx = self.db.begin_write().await?;
        records::users::set_password(&mut tx, user_id, hash).await?;
        let e = event(|e| e.user_id = Some(user_id.to_string()));
        self.record_revocation(&mut tx, &e).await?;
        self.commit(tx, vec![e]).await
    }

    // ----- groups ----------------------------------------------------------------------

    pub async fn create_group(&self, ctx: &RequestContext, body: Value) -> Result<Group> {
        policy::admin(ctx, "identity:create_group")?;
        let mut f = Fields::member(body, "group")?;
        let name = f.required_string("name", NAME_MAX)?;
        let domain_id = f
            .nullable_string("domain_id", NAME_MAX)?
            .flatten()
            .unwrap_or_else(|| self.default_domain_for(ctx));
        let description = f.text("description")?.unwrap_or_default();
        f.take("id");
        let extra = f.into_extra();
        self.find_domain(&domain_id)
            .await?
            .ok_or_else(|| Error::not_found("domain", &domain_id))?;
        let id = new_hex_id();
        let mut tx = self.db.begin_write().await?;
        records::groups::insert(&mut tx, &id, &name, &domain_id, &description, &extra)
            .await
            .map_err(dup(
                "group",
                format!("Duplicate entry found with name {name} at domain ID {domain_id}"),
            ))?;
        self.commit(tx, vec![]).await?;
        self.group(&id).await
    }

    pub async fn list_groups(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<Group>> {
        let only = policy::list_domain_restriction(ctx, "identity:list_groups")?;
        let mut all = records::groups::list(&self.db).await?;
        if let Some(d) = only {
            all.retain(|g| g.domain_id == d);
        }
        apply(
            all,
            |g| &g.id,
            params,
            &["name", "domain_id", "id"],
            self.settings.identity.list_limit,
        )
    }

    pub async fn get_group(&self, ctx: &RequestContext, id: &str) -> Result<Group> {
        let g = policy::hide_missing(ctx, "identity:get_group", self.group(id).await)?;
        policy::reader_of_domain(ctx, "identity:get_group", Some(&g.domain_id))?;
        Ok(g)
    }

    pub async fn update_group(&self, ctx: &RequestContext, id: &str, body: Value) -> Result<Group> {
        policy::admin(ctx, "identity:update_group")?;
        let mut g = self.group(id).await?;
        let mut f = Fields::member(body, "group")?;
        f.forbid_id_change(id)?;
        if let Some(v) = f.take("domain_id")
            && v != Value::String(g.domain_id.clone())
        {
            return Err(Error::Validation("Cannot change Domain ID".into()));
        }
        if let Some(name) = f.string("name", NAME_MAX)? {
            g.name = name;
        }
        if let Some(d) = f.text("description")? {
            g.description = d;
        }
        merge_extra(&mut g.extra, f.into_extra());
        let mut tx = self.db.begin_write().await?;
        records::groups::update(&mut tx, &g).await.map_err(dup(
            "group",
            format!(
                "Duplicate entry found with name {} at domain ID {}",
                g.name, g.domain_id
            ),
        ))?;
        self.commit(tx, vec![]).await?;
        Ok(g)
    }

    pub async fn delete_group(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        policy::admin(ctx, "identity:delete_group")?;
        self.group(id).await?;
        let mut tx = self.db.begin_write().await?;
        records::groups::delete(&mut tx, id).await?;
        self.commit(tx, vec![]).await
    }

    pub async fn add_user_to_group(
        &self,
        ctx: &RequestContext,
        group_id: &str,
        user_id: &str,
    ) -> Result<()> {
        policy::admin(ctx, "identity:add_user_to_group")?;
        self.group(group_id).await?;
        self.user(user_id).await?;
        let mut tx = self.db.begin_write().await?;
        records::groups::add_member(&mut tx, group_id, user_id).await?;
        self.commit(tx, vec![]).await
    }

    pub async fn remove_user_from_group(
        &self,
        ctx: &RequestContext,
        group_id: &str,
        user_id: &str,
    ) -> Result<()> {
        policy::admin(ctx, "identity:remove_user_from_group")?;
        self.group(group_id).await?;
        self.user(user_id).await?;
        let mut tx = self.db.begin_write().await?;
        if !records::groups::remove_member(&mut tx, group_id, user_id).await? {
            return Err(Error::NotFoundMessage(format!(
                "User {user_id} is not a member of group {group_id}."
            )));
        }
        self.commit(tx, vec![]).await
    }

    pub async fn check_user_in_group(
        &self,
        ctx: &RequestContext,
        group_id: &str,
        user_id: &str,
    ) -> Result<()> {
        let g = self.group(group_id).await?;
        let u = self.user(user_id).await?;
        if ctx.user_id != user_id {
            policy::reader_of_domain(ctx, "identity:check_user_in_group", Some(&g.domain_id))?;
        }
        if !records::groups::is_member(&self.db, &g.id, &u.id).await? {
            return Err(Error::NotFoundMessage(format!(
                "User {user_id} is not a member of group {group_id}."
            )));
        }
        Ok(())
    }

    pub async fn list_users_in_group(
        &self,
        ctx: &RequestContext,
        group_id: &str,
        params: &ListParams,
    ) -> Result<Page<User>> {
        let g = self.group(group_id).await?;
        policy::reader_of_domain(ctx, "identity:list_users_in_group", Some(&g.domain_id))?;
        let all = records::users::in_group(&self.db, group_id).await?;
        apply(all, |u| &u.id, params, &["name", "domain_id", "enabled"], 0)
    }

    pub async fn list_groups_for_user(
        &self,
        ctx: &RequestContext,
        user_id: &str,
        params: &ListParams,
    ) -> Result<Page<Group>> {
        let u = self.user(user_id).await?;
        policy::reader_or_owner(
            ctx,
            "identity:list_groups_for_user",
            Some(&u.domain_id),
            user_id,
        )?;
        let all = records::groups::of_user(&self.db, user_id).await?;
        apply(all, |g| &g.id, params, &["name", "domain_id"], 0)
    }
}
