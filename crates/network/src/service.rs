//! The `Networks` service object, its migrations, who may do what (Neutron's default
//! policy), quotas, and the dispatch from a resource kind to its operations.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use ferrostack_core::{Db, RequestContext};

use crate::error::{Error, Result};
use crate::model::Resource;
use crate::records::{self, Conn, Who};

/// The network migrations, numbered in network's range (4_000_000+).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(
    4_000_001,
    "network",
    include_str!("../migrations/4000001_network.sql"),
)];

/// Settings from `[network]` and the network part of `[quota]`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub network: ferrostack_core::config::NetworkConfig,
    pub quota: ferrostack_core::config::QuotaConfig,
}

pub struct Networks {
    pub(crate) db: Db,
    pub(crate) settings: Settings,
}

/// The resources of the API, for the generic operations below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Network,
    Subnet,
    Port,
    SecurityGroup,
    SecurityGroupRule,
}

impl Kind {
    /// The body key of one resource (`network`).
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Port => "port",
            Kind::SecurityGroup => "security_group",
            Kind::SecurityGroupRule => "security_group_rule",
        }
    }

    /// The body key of a list (`networks`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Network => "networks",
            Kind::Subnet => "subnets",
            Kind::Port => "ports",
            Kind::SecurityGroup => "security_groups",
            Kind::SecurityGroupRule => "security_group_rules",
        }
    }

    /// The URL segment (`security-groups`).
    pub fn path(self) -> &'static str {
        match self {
            Kind::SecurityGroup => "security-groups",
            Kind::SecurityGroupRule => "security-group-rules",
            k => k.plural(),
        }
    }
}

/// The resources Neutron's quota API knows.
pub const QUOTA_RESOURCES: [&str; 9] = [
    "network",
    "subnet",
    "port",
    "security_group",
    "security_group_rule",
    "router",
    "floatingip",
    "rbac_policy",
    "subnetpool",
];

// --- policy (Neutron's defaults) ---------------------------------------------------------

/// Reading needs a project-scoped token (or admin).
pub(crate) fn reader(ctx: &RequestContext, rule: &str) -> Result<()> {
    if ctx.is_admin()
        || (ctx.project_id().is_some() && (ctx.has_role("reader") || ctx.has_role("member")))
    {
        Ok(())
    } else {
        Err(Error::policy(&format!("rule:{rule}")))
    }
}

/// Writing needs `member` on the project (or admin): a reader gets 403.
pub(crate) fn writer(ctx: &RequestContext, rule: &str) -> Result<()> {
    if ctx.is_admin() || (ctx.project_id().is_some() && ctx.has_role("member")) {
        Ok(())
    } else {
        Err(Error::policy(&format!("rule:{rule}")))
    }
}

/// An attribute only admins may set (`rule:create_network:shared`).
pub(crate) fn admin_attr(ctx: &RequestContext, action: &str, attr: &str) -> Result<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(Error::policy(&format!(
            "(rule:{action} and rule:{action}:{attr})"
        )))
    }
}

pub(crate) fn who(ctx: &RequestContext) -> Who<'_> {
    match (ctx.is_admin(), ctx.project_id()) {
        (false, Some(p)) => Who::Project(p),
        (false, None) => Who::Project(""),
        (true, _) => Who::All,
    }
}

/// Whether the caller owns a resource of `project` (admins own everything).
pub(crate) fn owns(ctx: &RequestContext, project: &str) -> bool {
    ctx.is_admin() || ctx.project_id() == Some(project)
}

pub(crate) fn network_not_found(id: &str) -> Error {
    Error::not_found(
        "NetworkNotFound",
        format!("Network {id} could not be found."),
    )
}

pub(crate) fn subnet_not_found(id: &str) -> Error {
    Error::not_found("SubnetNotFound", format!("Subnet {id} could not be found."))
}

pub(crate) fn port_not_found(id: &str) -> Error {
    Error::not_found("PortNotFound", format!("Port {id} could not be found."))
}

pub(crate) fn group_not_found(id: &str) -> Error {
    Error::not_found(
        "SecurityGroupNotFound",
        format!("Security group {id} does not exist"),
    )
}

pub(crate) fn rule_not_found(id: &str) -> Error {
    Error::not_found(
        "SecurityGroupRuleNotFound",
        format!("Security group rule {id} does not exist"),
    )
}

fn wrap<T>(items: Vec<T>, f: fn(T) -> Resource) -> Vec<Resource> {
    items.into_iter().map(f).collect()
}

/// How many times a write that lost a race is tried again.
pub(crate) const RETRIES: u32 = 60;

/// A short random pause before trying a write again.
pub(crate) async fn backoff(attempt: u32) {
    use rand::Rng;
    let ms = rand::thread_rng().gen_range(0..(2 + u64::from(attempt.min(20)) * 2));
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

impl Networks {
    /// Applies migrations and returns the service.
    pub async fn open(db: Db, settings: Settings) -> Result<Networks> {
        db.migrate(MIGRATIONS).await.map_err(Error::internal)?;
        Ok(Networks { db, settings })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) async fn conn(&self) -> Result<records::Pooled> {
        records::conn(&self.db).await
    }

    // --- generic operations (what the HTTP layer calls) --------------------------------

    /// Every resource of `kind` the caller may see; the API renders them and applies
    /// the list query (`query::apply`).
    pub async fn list(&self, ctx: &RequestContext, kind: Kind) -> Result<Vec<Resource>> {
        reader(ctx, &format!("get_{}", kind.singular()))?;
        Ok(match kind {
            Kind::Network => wrap(self.list_networks(ctx).await?, Resource::Network),
            Kind::Subnet => wrap(self.list_subnets(ctx).await?, Resource::Subnet),
            Kind::Port => wrap(self.list_ports(ctx).await?, Resource::Port),
            Kind::SecurityGroup => wrap(self.list_groups(ctx).await?, Resource::SecurityGroup),
            Kind::SecurityGroupRule => {
                wrap(self.list_rules(ctx).await?, Resource::SecurityGroupRule)
            }
        })
    }

    pub async fn show(&self, ctx: &RequestContext, kind: Kind, id: &str) -> Result<Resource> {
        reader(ctx, &format!("get_{}", kind.singular()))?;
        Ok(match kind {
            Kind::Network => Resource::Network(self.show_network(ctx, id).await?),
            Kind::Subnet => Resource::Subnet(self.show_subnet(ctx, id).await?),
            Kind::Port => Resource::Port(self.show_port(ctx, id).await?),
            Kind::SecurityGroup => Resource::SecurityGroup(self.show_group(ctx, id).await?),
            Kind::SecurityGroupRule => Resource::SecurityGroupRule(self.show_rule(ctx, id).await?),
        })
    }

    pub async fn create(&self, ctx: &RequestContext, kind: Kind, body: Value) -> Result<Resource> {
        writer(ctx, &format!("create_{}", kind.singular()))?;
        Ok(match kind {
            Kind::Network => Resource::Network(self.create_network(ctx, body).await?),
            Kind::Subnet => Resource::Subnet(self.create_subnet(ctx, body).await?),
            Kind::Port => Resource::Port(self.create_port(ctx, body).await?),
            Kind::SecurityGroup => Resource::SecurityGroup(self.create_group(ctx, body).await?),
            Kind::SecurityGroupRule => {
                Resource::SecurityGroupRule(self.create_rule(ctx, body).await?)
            }
        })
    }

    pub async fn update(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        id: &str,
        body: Value,
    ) -> Result<Resource> {
        Ok(match kind {
            Kind::Network => Resource::Network(self.update_network(ctx, id, body).await?),
            Kind::Subnet => Resource::Subnet(self.update_subnet(ctx, id, body).await?),
            Kind::Port => Resource::Port(self.update_port(ctx, id, body).await?),
            Kind::SecurityGroup => Resource::SecurityGroup(self.update_group(ctx, id, body).await?),
            Kind::SecurityGroupRule => {
                Resource::SecurityGroupRule(self.update_rule(ctx, id, body).await?)
            }
        })
    }

    pub async fn delete(&self, ctx: &RequestContext, kind: Kind, id: &str) -> Result<()> {
        match kind {
            Kind::Network => self.delete_network(ctx, id).await,
            Kind::Subnet => self.delete_subnet(ctx, id).await,
            Kind::Port => self.delete_port(ctx, id).await,
            Kind::SecurityGroup => self.delete_group(ctx, id).await,
            Kind::SecurityGroupRule => self.delete_rule(ctx, id).await,
        }
    }

    // --- quotas --------------------------------------------------------------------------

    fn default_limit(&self, resource: &str) -> i64 {
        let q = &self.settings.quota;
        match resource {
            "network" => q.network,
            "subnet" => q.subnet,
            "port" => q.port,
            "security_group" => q.security_group,
            "security_group_rule" => q.security_group_rule,
            "router" => q.router,
            "floatingip" => q.floatingip,
            "rbac_policy" => 10,
            _ => -1,
        }
    }

    fn defaults(&self) -> BTreeMap<String, i64> {
        QUOTA_RESOURCES
            .iter()
            .map(|r| (r.to_string(), self.default_limit(r)))
            .collect()
    }

    async fn limits(&self, conn: &mut Conn, project: &str) -> Result<BTreeMap<String, i64>> {
        let mut out = self.defaults();
        for (_, r, limit) in records::quota_overrides(conn, Some(project)).await? {
            out.insert(r, limit);
        }
        Ok(out)
    }

    /// 409 `OverQuota` when `project` may not have `adding` more `resource`s.
    pub(crate) async fn check_quota(
        &self,
        conn: &mut Conn,
        project: &str,
        resource: &str,
        adding: i64,
    ) -> Result<()> {
        let limit = self
            .limits(conn, project)
            .await?
            .get(resource)
            .copied()
            .unwrap_or(-1);
        if limit < 0 {
            return Ok(());
        }
        let used = records::count(conn, resource, project).await?;
        if used + adding > limit {
            return Err(Error::conflict(
                "OverQuota",
                format!("Quota exceeded for resources: ['{resource}']."),
            ));
        }
        Ok(())
    }

    fn quota_access(ctx: &RequestContext, project: &str) -> Result<()> {
        if ctx.is_admin() || ctx.project_id() == Some(project) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                kind: "NotAuthorized",
                message: "Non-admin is not authorised to access quotas for another project".into(),
            })
        }
    }

    /// `GET /v2.0/quotas/{project}`.
    pub async fn quota(&self, ctx: &RequestContext, project: &str) -> Result<Value> {
        Self::quota_access(ctx, project)?;
        let limits = self.limits(&mut *self.conn().await?, project).await?;
        Ok(json!(limits))
    }

    /// `GET /v2.0/quotas/{project}/default`.
    pub async fn quota_defaults(&self, ctx: &RequestContext, project: &str) -> Result<Value> {
        Self::quota_access(ctx, project)?;
        let mut v = json!(self.defaults());
        v["project_id"] = json!(project);
        v["tenant_id"] = json!(project);
        Ok(v)
    }

    /// `GET /v2.0/quotas/{project}/details`: limit, used, reserved.
    pub async fn quota_details(&self, ctx: &RequestContext, project: &str) -> Result<Value> {
        Self::quota_access(ctx, project)?;
        let mut conn = self.conn().await?;
        let limits = self.limits(&mut conn, project).await?;
        let mut out = serde_json::Map::new();
        for (r, limit) in limits {
            let used = records::count(&mut conn, &r, project).await?;
            out.insert(r, json!({"limit": limit, "used": used, "reserved": 0}));
        }
        Ok(Value::Object(out))
    }

    /// `GET /v2.0/quotas`: projects with limits of their own (admin).
    pub async fn quota_list(&self, ctx: &RequestContext) -> Result<Vec<Value>> {
        if !ctx.is_admin() {
            return Err(Error::policy("rule:get_quota"));
        }
        let mut conn = self.conn().await?;
        let mut projects: Vec<String> = records::quota_overrides(&mut conn, None)
            .await?
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        projects.dedup();
        let mut out = Vec::new();
        for p in projects {
            let mut v = json!(self.limits(&mut conn, &p).await?);
            v["project_id"] = json!(p);
            v["tenant_id"] = json!(p);
            out.push(v);
        }
        Ok(out)
    }

    /// `PUT /v2.0/quotas/{project}` (admin).
    pub async fn update_quota(
        &self,
        ctx: &RequestContext,
        project: &str,
        body: Value,
    ) -> Result<Value> {
        if !ctx.is_admin() {
            return Err(Error::policy("rule:update_quota"));
        }
        let spec: Vec<crate::attrs::Spec> = QUOTA_RESOURCES
            .iter()
            .map(|r| (*r, true, true))
            .chain([
                ("project_id", true, true),
                ("tenant_id", true, true),
                ("force", true, true),
                ("check_limit", true, true),
            ])
            .collect();
        let m = crate::attrs::body("quota", body, &spec, crate::attrs::Op::Update)?;
        let check_limit = crate::attrs::boolean(&m, "check_limit")?.unwrap_or(false)
            && crate::attrs::boolean(&m, "force")? != Some(true);
        let mut tx = self.db.begin_write().await?;
        for r in QUOTA_RESOURCES {
            let Some(v) = crate::attrs::integer(&m, r)? else {
                continue;
            };
            if !(-1..=i64::from(i32::MAX)).contains(&v) {
                return Err(Error::invalid_attr(
                    r,
                    format!("'{v}' is too small - must be at least '-1'"),
                ));
            }
            // `quota-check-limit`: a limit below what is already used is refused.
            if check_limit && v >= 0 {
                let used = records::count(&mut tx, r, project).await?;
                if used > v {
                    return Err(Error::invalid(
                        "InvalidQuotaValue",
                        format!(
                            "Quota limit {v} for {r} must be greater than or equal to already used {used}"
                        ),
                    ));
                }
            }
            records::set_quota(&mut tx, project, r, v).await?;
        }
        let limits = self.limits(&mut tx, project).await?;
        tx.commit().await?;
        Ok(json!(limits))
    }

    /// `DELETE /v2.0/quotas/{project}`: back to the defaults (admin).
    pub async fn reset_quota(&self, ctx: &RequestContext, project: &str) -> Result<()> {
        if !ctx.is_admin() {
            return Err(Error::policy("rule:delete_quota"));
        }
        let mut tx = self.db.begin_write().await?;
        records::reset_quotas(&mut tx, project).await?;
        tx.commit().await?;
        Ok(())
    }
}
