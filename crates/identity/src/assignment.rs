//! Roles, implied roles, grants and the role-assignment listing. Effective roles
//! (what a token carries) are direct user assignments plus those of the user's
//! groups, expanded through the implied-role graph.

use std::collections::{BTreeSet, HashSet};

use ferrostack_core::RequestContext;
use ferrostack_core::ids::new_hex_id;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fields::Fields;
use crate::list::{ListParams, Page, apply};
use crate::model::{Actor, Assignment, Role, RoleRef, Target};
use crate::policy;
use crate::records::{self, dup};
use crate::resources::event;
use crate::service::{Identity, merge_extra};

/// Keystone's `[assignment] prohibited_implied_role` default.
const PROHIBITED_IMPLIED: &[&str] = &["admin"];

/// A prior role and the roles it implies.
#[derive(Debug, Clone)]
pub struct Inference {
    pub prior: Role,
    pub implies: Vec<Role>,
}

/// Filters of `GET /v3/role_assignments`.
#[derive(Debug, Clone, Default)]
pub struct AssignmentQuery {
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub role_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub system: bool,
    pub effective: bool,
}

impl Identity {
    pub(crate) async fn role(&self, id: &str) -> Result<Role> {
        records::roles::get(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("role", id))
    }

    pub(crate) async fn role_by_name(&self, name: &str) -> Result<Option<Role>> {
        Ok(records::roles::global_by_name(&self.db, name).await?)
    }

    // ----- roles -----------------------------------------------------------------------

    pub async fn create_role(&self, ctx: &RequestContext, body: Value) -> Result<Role> {
        policy::admin(ctx, "identity:create_role")?;
        let mut f = Fields::member(body, "role")?;
        let name = f.required_string("name", 255)?;
        let domain_id = f.nullable_string("domain_id", 64)?.flatten();
        let description = f.text("description")?.unwrap_or_default();
        let immutable = role_options(&mut f)?.unwrap_or(false);
        f.take("id");
        let extra = f.into_extra();
        if let Some(d) = &domain_id {
            self.domain(d).await?;
        }
        let id = new_hex_id();
        self.insert_role(
            &id,
            &name,
            domain_id.as_deref().unwrap_or(""),
            &description,
            immutable,
            &extra,
        )
        .await?;
        self.role(&id).await
    }

    pub(crate) async fn insert_role(
        &self,
        id: &str,
        name: &str,
        domain_id: &str,
        description: &str,
        immutable: bool,
        extra: &serde_json::Map<String, Value>,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        records::roles::insert(&mut tx, id, name, domain_id, description, immutable, extra)
            .await
            .map_err(dup(
                "role",
                format!("Duplicate entry found with name {name}"),
            ))?;
        self.commit(tx, vec![]).await
    }

    pub async fn list_roles(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<Role>> {
        policy::reader_of_domain(ctx, "identity:list_roles", params.get("domain_id"))?;
        let all = records::roles::list(&self.db, params.get("domain_id")).await?;
        apply(
            all,
            |r| &r.id,
            params,
            &["name", "id"],
            self.settings.identity.list_limit,
        )
    }

    pub async fn get_role(&self, ctx: &RequestContext, id: &str) -> Result<Role> {
        let r = self.role(id).await?;
        policy::reader_of_domain(ctx, "identity:get_role", r.domain_id.as_deref())?;
        Ok(r)
    }

    pub async fn update_role(&self, ctx: &RequestContext, id: &str, body: Value) -> Result<Role> {
        policy::admin(ctx, "identity:update_role")?;
        let mut r = self.role(id).await?;
        let mut f = Fields::member(body, "role")?;
        f.forbid_id_change(id)?;
        let new_immutable = role_options(&mut f)?;
        if r.immutable() && new_immutable != Some(false) {
            return Err(Error::ForbiddenAction(format!(
                "Unable to update immutable role {id}; set its 'immutable' option to false first."
            )));
        }
        if let Some(v) = f.take("domain_id")
            && v != r
                .domain_id
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null)
        {
            return Err(Error::Validation("Cannot change Domain ID".into()));
        }
        if let Some(name) = f.string("name", 255)? {
            r.name = name;
        }
        if let Some(d) = f.text("description")? {
            r.description = (!d.is_empty()).then_some(d);
        }
        merge_extra(&mut r.extra, f.into_extra());
        let immutable = new_immutable.unwrap_or(r.immutable());
        let mut tx = self.db.begin_write().await?;
        records::roles::update(&mut tx, &r, immutable)
            .await
            .map_err(dup(
                "role",
                format!("Duplicate entry found with name {}", r.name),
            ))?;
        self.commit(tx, vec![]).await?;
        self.role(id).await
    }

    /// Deletes a role with its assignments and implications (as Keystone does);
    /// immutable roles (the bootstrap's admin/member/reader) are refused.
    pub async fn delete_role(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        policy::admin(ctx, "identity:delete_role")?;
        let r = self.role(id).await?;
        if r.immutable() {
            return Err(Error::ForbiddenAction(format!(
                "Unable to delete immutable role {id}; set its 'immutable' option to false first."
            )));
        }
        let mut tx = self.db.begin_write().await?;
        records::roles::delete(&mut tx, id).await?;
        self.commit(tx, vec![]).await
    }

    // ----- implied roles ---------------------------------------------------------------

    pub async fn create_implied_role(
        &self,
        ctx: &RequestContext,
        prior: &str,
        implied: &str,
    ) -> Result<(Role, Role)> {
        policy::admin(ctx, "identity:create_implied_role")?;
        let p = self.role(prior).await?;
        let i = self.role(implied).await?;
        if PROHIBITED_IMPLIED.contains(&i.name.as_str()) {
            return Err(Error::ForbiddenAction(format!(
                "{} may not be an implied role.",
                i.name
            )));
        }
        let snap = self.snapshot().await?;
        if prior == implied || snap.expand_roles([&i.id]).contains(&p.id) {
            return Err(Error::ForbiddenAction(format!(
                "Implying {} from {} would create a cycle of implied roles.",
                i.name, p.name
            )));
        }
        let mut tx = self.db.begin_write().await?;
        records::roles::insert_implication(&mut tx, prior, implied).await?;
        self.commit(tx, vec![]).await?;
        Ok((p, i))
    }

    pub async fn get_implied_role(
        &self,
        ctx: &RequestContext,
        prior: &str,
        implied: &str,
    ) -> Result<(Role, Role)> {
        policy::reader_of_domain(ctx, "identity:get_implied_role", None)?;
        let p = self.role(prior).await?;
        let i = self.role(implied).await?;
        let snap = self.snapshot().await?;
        if !snap
            .implies
            .get(prior)
            .is_some_and(|v| v.iter().any(|x| x == implied))
        {
            return Err(Error::NotFoundMessage(format!(
                "{implied} is not an implied role of {prior}."
            )));
        }
        Ok((p, i))
    }

    pub async fn delete_implied_role(
        &self,
        ctx: &RequestContext,
        prior: &str,
        implied: &str,
    ) -> Result<()> {
        policy::admin(ctx, "identity:delete_implied_role")?;
        self.role(prior).await?;
        self.role(implied).await?;
        let mut tx = self.db.begin_write().await?;
        if !records::roles::delete_implication(&mut tx, prior, implied).await? {
            return Err(Error::NotFoundMessage(format!(
                "{implied} is not an implied role of {prior}."
            )));
        }
        self.commit(tx, vec![]).await
    }

    /// `GET /v3/roles/{prior}/implies`.
    pub async fn list_implied_roles(&self, ctx: &RequestContext, prior: &str) -> Result<Inference> {
        policy::reader_of_domain(ctx, "identity:list_implied_roles", None)?;
        let p = self.role(prior).await?;
        let snap = self.snapshot().await?;
        let implies = snap
            .implies
            .get(prior)
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| snap.roles.get(i).cloned())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Inference { prior: p, implies })
    }

    /// `GET /v3/role_inferences`.
    pub async fn list_role_inferences(&self, ctx: &RequestContext) -> Result<Vec<Inference>> {
        policy::reader_of_domain(ctx, "identity:list_role_inference_rules", None)?;
        let snap = self.snapshot().await?;
        let mut out: Vec<Inference> = snap
            .implies
            .iter()
            .filter_map(|(prior, implied)| {
                Some(Inference {
                    prior: snap.roles.get(prior)?.clone(),
                    implies: implied
                        .iter()
                        .filter_map(|i| snap.roles.get(i).cloned())
                        .collect(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.prior.name.cmp(&b.prior.name));
        Ok(out)
    }

    // ----- grants ----------------------------------------------------------------------

    async fn check_grant_parties(&self, actor: &Actor, target: &Target) -> Result<Option<String>> {
        match actor {
            Actor::User(u) => {
                self.user(u).await?;
            }
            Actor::Group(g) => {
                self.group(g).await?;
            }
        }
        Ok(match target {
            Target::Project(p) => Some(self.project(p).await?.domain_id),
            Target::Domain(d) => Some(self.domain(d).await?.id),
            Target::System => None,
        })
    }

    pub async fn create_grant(
        &self,
        ctx: &RequestContext,
        actor: Actor,
        target: Target,
        role_id: &str,
    ) -> Result<()> {
        policy::admin(ctx, "identity:create_grant")?;
        self.check_grant_parties(&actor, &target).await?;
        self.role(role_id).await?;
        self.insert_assignment(&actor, &target, role_id).await
    }

    pub(crate) async fn insert_assignment(
        &self,
        actor: &Actor,
        target: &Target,
        role_id: &str,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        records::assignments::insert(&mut tx, actor, target, role_id).await?;
        self.commit(tx, vec![]).await
    }

    pub async fn check_grant(
        &self,
        ctx: &RequestContext,
        actor: Actor,
        target: Target,
        role_id: &str,
    ) -> Result<()> {
        let domain = self.check_grant_parties(&actor, &target).await?;
        policy::reader_of_domain(ctx, "identity:check_grant", domain.as_deref())?;
        self.role(role_id).await?;
        if !records::assignments::exists(&self.db, &actor, &target, role_id).await? {
            return Err(not_assigned(role_id, &actor, &target));
        }
        Ok(())
    }

    pub async fn list_grants(
        &self,
        ctx: &RequestContext,
        actor: Actor,
        target: Target,
    ) -> Result<Vec<Role>> {
        let domain = self.check_grant_parties(&actor, &target).await?;
        policy::reader_of_domain(ctx, "identity:list_grants", domain.as_deref())?;
        Ok(records::assignments::roles_of(&self.db, &actor, &target).await?)
    }

    /// Removes a grant; the affected users' tokens on that target are revoked.
    pub async fn revoke_grant(
        &self,
        ctx: &RequestContext,
        actor: Actor,
        target: Target,
        role_id: &str,
    ) -> Result<()> {
        policy::admin(ctx, "identity:revoke_grant")?;
        self.check_grant_parties(&actor, &target).await?;
        self.role(role_id).await?;
        let mut tx = self.db.begin_write().await?;
        if !records::assignments::delete(&mut tx, &actor, &target, role_id).await? {
            return Err(not_assigned(role_id, &actor, &target));
        }
        let users: Vec<String> = match &actor {
            Actor::User(u) => vec![u.clone()],
            Actor::Group(g) => records::groups::member_ids(&mut tx, g).await?,
        };
        let mut events = Vec::new();
        for u in users {
            let e = event(|e| {
                e.user_id = Some(u.clone());
                if let Target::Project(p) = &target {
                    e.project_id = Some(p.clone());
                }
            });
            self.record_revocation(&mut tx, &e).await?;
            events.push(e);
        }
        self.commit(tx, events).await
    }

    // ----- effective roles ------------------------------------------------------------------

    /// Role ids assigned to the user on the target, directly or through its groups.
    pub(crate) async fn direct_role_ids(
        &self,
        user_id: &str,
        target: &Target,
    ) -> Result<Vec<String>> {
        records::assignments::role_ids_of_user(&self.db, user_id, target).await
    }

    /// The user's effective roles on the target, implied roles included, by name.
    pub(crate) async fn effective_roles(
        &self,
        user_id: &str,
        target: &Target,
    ) -> Result<Vec<RoleRef>> {
        let direct = self.direct_role_ids(user_id, target).await?;
        self.effective_roles_of(&direct).await
    }

    /// The effective roles that directly assigned role ids give, implied roles
    /// included, by name.
    pub(crate) async fn effective_roles_of(&self, direct: &[String]) -> Result<Vec<RoleRef>> {
        if direct.is_empty() {
            return Ok(vec![]);
        }
        let snap = self.snapshot().await?;
        let mut roles: Vec<RoleRef> = snap
            .expand_roles(direct)
            .into_iter()
            .filter_map(|id| snap.roles.get(&id))
            // Domain-specific roles only carry implications; Keystone strips them from
            // effective roles (tokens, `effective` listings) once those are expanded.
            .filter(|r| r.domain_id.is_none())
            .map(|r| RoleRef {
                id: r.id.clone(),
                name: r.name.clone(),
                domain_id: r.domain_id.clone(),
            })
            .collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roles)
    }

    /// `GET /v3/role_assignments`.
    pub async fn list_role_assignments(
        &self,
        ctx: &RequestContext,
        q: &AssignmentQuery,
    ) -> Result<Vec<Assignment>> {
        let own = q.user_id.as_deref() == Some(ctx.user_id.as_str());
        if !own {
            let domain = match (&q.domain_id, &q.project_id) {
                (Some(d), _) => Some(d.clone()),
                (None, Some(p)) => self.project(p).await.ok().map(|p| p.domain_id),
                _ => None,
            };
            policy::reader_of_domain(ctx, "identity:list_role_assignments", domain.as_deref())?;
        }
        let direct = records::assignments::all(&self.db).await?;

        let mut all: Vec<Assignment> = if q.effective {
            // Groups become their members; implied roles are added.
            let mut members: std::collections::HashMap<String, Vec<String>> = Default::default();
            for (group_id, user_id) in records::groups::memberships(&self.db).await? {
                members.entry(group_id).or_default().push(user_id);
            }
            let snap = self.snapshot().await?;
            let mut out = BTreeSet::new();
            for a in direct {
                let users: Vec<(String, Option<String>)> = match &a.actor {
                    Actor::User(u) => vec![(u.clone(), None)],
                    Actor::Group(g) => members
                        .get(g)
                        .map(|us| us.iter().map(|u| (u.clone(), Some(g.clone()))).collect())
                        .unwrap_or_default(),
                };
                for (u, via) in users {
                    for role in snap.expand_roles([&a.role_id]) {
                        if snap.roles.get(&role).is_some_and(|r| r.domain_id.is_some()) {
                            continue; // stripped, as in effective_roles
                        }
                        let prior = (role != a.role_id).then(|| a.role_id.clone());
                        out.insert(Assignment {
                            actor: Actor::User(u.clone()),
                            target: a.target.clone(),
                            role_id: role,
                            via_group: via.clone(),
                            prior_role: prior,
                        });
                    }
                }
            }
            // The same (user, target, role) reached twice is one effective assignment.
            let mut seen = HashSet::new();
            out.into_iter()
                .filter(|a| seen.insert((a.actor.clone(), a.target.clone(), a.role_id.clone())))
                .collect()
        } else {
            direct
        };

        all.retain(|a| {
            q.user_id
                .as_ref()
                .is_none_or(|u| a.actor == Actor::User(u.clone()))
                && q.group_id
                    .as_ref()
                    .is_none_or(|g| a.actor == Actor::Group(g.clone()))
                && q.role_id.as_ref().is_none_or(|r| a.role_id == *r)
                && q.project_id
                    .as_ref()
                    .is_none_or(|p| a.target == Target::Project(p.clone()))
                && q.domain_id
                    .as_ref()
                    .is_none_or(|d| a.target == Target::Domain(d.clone()))
                && (!q.system || a.target == Target::System)
        });
        all.sort();
        Ok(all)
    }
}

fn role_options(f: &mut Fields) -> Result<Option<bool>> {
    match f.object("options")? {
        None => Ok(None),
        Some(mut o) => match o.remove("immutable") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(Error::Validation(
                "Invalid input for field 'options.immutable': it is not of type 'boolean'".into(),
            )),
        },
    }
}

fn not_assigned(role_id: &str, actor: &Actor, target: &Target) -> Error {
    Error::NotFoundMessage(format!(
        "Could not find role assignment with role: {role_id}, user or group: {}, project, domain, or system: {}.",
        actor.id(),
        target.id()
    ))
}

/// A name (and its domain) for an id in a role assignment listing.
#[derive(Debug, Clone)]
pub struct NameEntry {
    pub name: String,
    pub domain: Option<(String, String)>,
}

/// Names for the ids of a role-assignment listing (`include_names`).
#[derive(Debug, Default)]
pub struct Names(std::collections::HashMap<(&'static str, String), NameEntry>);

impl Names {
    pub fn get(&self, kind: &str, id: &str) -> Option<&NameEntry> {
        let kind: &'static str = match kind {
            "user" => "user",
            "group" => "group",
            "project" => "project",
            "domain" => "domain",
            "role" => "role",
            _ => return None,
        };
        self.0.get(&(kind, id.to_string()))
    }
}

impl Identity {
    /// Looks up the names `include_names` shows for a listing.
    pub async fn assignment_names(&self, list: &[Assignment]) -> Result<Names> {
        let mut names = Names::default();
        let mut domain_names: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        let mut domain_name = async |id: &str| -> String {
            if let Some(n) = domain_names.get(id) {
                return n.clone();
            }
            let n = self
                .find_domain(id)
                .await
                .ok()
                .flatten()
                .map(|d| d.name)
                .unwrap_or_default();
            domain_names.insert(id.to_string(), n.clone());
            n
        };
        let snap = self.snapshot().await?;
        for a in list {
            if let Some(r) = snap.roles.get(&a.role_id) {
                let domain = match &r.domain_id {
                    Some(d) => Some((d.clone(), domain_name(d).await)),
                    None => None,
                };
                names.0.insert(
                    ("role", r.id.clone()),
                    NameEntry {
                        name: r.name.clone(),
                        domain,
                    },
                );
            }
            match &a.actor {
                Actor::User(u) if !names.0.contains_key(&("user", u.clone())) => {
                    if let Ok(user) = self.user(u).await {
                        let d = domain_name(&user.domain_id).await;
                        names.0.insert(
                            ("user", u.clone()),
                            NameEntry {
                                name: user.name,
                                domain: Some((user.domain_id, d)),
                            },
                        );
                    }
                }
                Actor::Group(g) if !names.0.contains_key(&("group", g.clone())) => {
                    if let Ok(group) = self.group(g).await {
                        let d = domain_name(&group.domain_id).await;
                        names.0.insert(
                            ("group", g.clone()),
                            NameEntry {
                                name: group.name,
                                domain: Some((group.domain_id, d)),
                            },
                        );
                    }
                }
                _ => {}
            }
            match &a.target {
                Target::Project(p) if !names.0.contains_key(&("project", p.clone())) => {
                    if let Ok(project) = self.project(p).await {
                        let d = domain_name(&project.domain_id).await;
                        names.0.insert(
                            ("project", p.clone()),
                            NameEntry {
                                name: project.name,
                                domain: Some((project.domain_id, d)),
                            },
                        );
                    }
                }
                Target::Domain(d) if !names.0.contains_key(&("domain", d.clone())) => {
                    let n = domain_name(d).await;
                    names.0.insert(
                        ("domain", d.clone()),
                        NameEntry {
                            name: n,
                            domain: None,
                        },
                    );
                }
                _ => {}
            }
        }
        Ok(names)
    }

    /// Enabled projects (in enabled domains) the user has a role on.
    pub async fn scopable_projects(&self, user_id: &str) -> Result<Vec<crate::model::Project>> {
        let mut out = Vec::new();
        for p in self.projects_of_user(user_id).await? {
            if p.enabled
                && self
                    .find_domain(&p.domain_id)
                    .await?
                    .is_some_and(|d| d.enabled)
            {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Enabled domains the user has a role on.
    pub async fn scopable_domains(&self, user_id: &str) -> Result<Vec<crate::model::Domain>> {
        let ids = records::assignments::domain_ids_of_user(&self.db, user_id).await?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(d) = self.find_domain(&id).await?
                && d.enabled
            {
                out.push(d);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Whether the user has any role on the system scope.
    pub async fn has_system_role(&self, user_id: &str) -> Result<bool> {
        Ok(!self
            .direct_role_ids(user_id, &Target::System)
            .await?
            .is_empty())
    }
}
