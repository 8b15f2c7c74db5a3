//! Server groups (`os-server-groups`): a policy (affinity, anti-affinity and the
//! soft variants) that the scheduler applies to the group's members. Members are
//! added by server create ([`add_member`]); deleted servers drop out of `members`.

use serde_json::{Map, Value, json};

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::quotas;
use crate::records::groups as records;
use crate::records::{self as db, Conn};
use crate::rules::{self, invalid_input, show_value};
use crate::service::Compute;
use crate::version::ApiVersion;

#[derive(Debug, Clone, PartialEq)]
pub struct ServerGroup {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    /// `affinity`, `anti-affinity`, `soft-affinity`, `soft-anti-affinity`.
    pub policy: String,
    /// `{"max_server_per_host": n}` or `{}`.
    pub rules: Map<String, Value>,
    /// Server ids (not deleted).
    pub members: Vec<String>,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Instance group {id} could not be found."))
}

fn policies_at(v: ApiVersion) -> &'static [&'static str] {
    if v.at_least(2, 15) {
        &[
            "anti-affinity",
            "affinity",
            "soft-anti-affinity",
            "soft-affinity",
        ]
    } else {
        &["anti-affinity", "affinity"]
    }
}

/// The body of `POST /os-server-groups`: (name, policy, rules).
pub(crate) fn parse_new(
    body: &Value,
    v: ApiVersion,
) -> Result<(String, String, Map<String, Value>)> {
    let g = rules::envelope(body, "server_group")?;
    let obj = || Value::Object(g.clone());
    let allowed: &[&str] = if v.at_least(2, 64) {
        &["name", "policy", "rules"]
    } else {
        &["name", "policies"]
    };
    rules::only("server_group", g, allowed)?;
    let name = match g.get("name") {
        Some(Value::String(s)) if s.chars().count() <= 255 && rules::valid_name(s) => s.clone(),
        Some(other) => {
            return Err(invalid_input(
                "name",
                other,
                &format!("{} is not a valid name", show_value(other)),
            ));
        }
        None => {
            return Err(invalid_input(
                "server_group",
                &obj(),
                "'name' is a required property",
            ));
        }
    };
    let allowed_policies = policies_at(v);
    let check_policy = |p: &Value| -> Result<String> {
        match p {
            Value::String(s) if allowed_policies.contains(&s.as_str()) => Ok(s.clone()),
            other => Err(invalid_input(
                "policies",
                other,
                &format!("{} is not one of {allowed_policies:?}", show_value(other)),
            )),
        }
    };
    if v.at_least(2, 64) {
        let Some(p) = g.get("policy") else {
            return Err(invalid_input(
                "server_group",
                &obj(),
                "'policy' is a required property",
            ));
        };
        let policy = check_policy(p)?;
        let rules_v = match g.get("rules") {
            None => Map::new(),
            Some(Value::Object(r)) => r.clone(),
            Some(other) => {
                return Err(invalid_input(
                    "rules",
                    other,
                    &format!("{} is not of type 'object'", show_value(other)),
                ));
            }
        };
        rules::only("rules", &rules_v, &["max_server_per_host"])?;
        if !rules_v.is_empty() && policy != "anti-affinity" {
            return Err(Error::BadRequest(
                "Only anti-affinity policy supports rules.".into(),
            ));
        }
        let mut out = Map::new();
        if let Some(n) = rules_v.get("max_server_per_host") {
            out.insert(
                "max_server_per_host".into(),
                json!(rules::integer(
                    "max_server_per_host",
                    n,
                    1,
                    i64::from(i32::MAX)
                )?),
            );
        }
        Ok((name, policy, out))
    } else {
        match g.get("policies") {
            Some(Value::Array(a)) if a.len() == 1 => Ok((name, check_policy(&a[0])?, Map::new())),
            Some(other) => Err(invalid_input(
                "policies",
                other,
                &format!(
                    "{} is not valid: exactly one policy is required",
                    show_value(other)
                ),
            )),
            None => Err(invalid_input(
                "server_group",
                &obj(),
                "'policies' is a required property",
            )),
        }
    }
}

/// Adds a server to a group inside the caller's transaction (server create with
/// `scheduler_hints.group`). `max_members` is the project's
/// `server_group_members` limit (-1 = unlimited). Errors: NotFound (no such
/// group: Nova answers 400 at create, the caller maps it), Forbidden when full.
pub async fn add_member(
    conn: &mut Conn,
    group_id: &str,
    server_id: &str,
    max_members: i64,
) -> Result<()> {
    let Some(g) = records::load(conn, group_id).await? else {
        return Err(not_found(group_id));
    };
    if max_members >= 0 && i64::try_from(g.members.len()).unwrap_or(i64::MAX) >= max_members {
        return Err(Error::Forbidden(
            "Quota exceeded, too many servers in group".into(),
        ));
    }
    records::add_member(conn, group_id, server_id).await
}

/// Removes a server from every group (on server delete; deleted servers are
/// already hidden from `members`, so this is housekeeping).
pub async fn remove_member(conn: &mut Conn, server_id: &str) -> Result<()> {
    records::remove_member(conn, server_id).await
}

/// Query of `GET /os-server-groups`.
#[derive(Debug, Clone, Default)]
pub struct ServerGroupQuery {
    pub all_projects: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

impl Compute {
    pub async fn create_server_group(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        body: &Value,
    ) -> Result<ServerGroup> {
        let project = ctx.project_id().unwrap_or_default().to_string();
        rules::project_or_admin(ctx, &project, "os_compute_api:os-server-groups:create")?;
        let (name, policy, rules_v) = parse_new(body, v)?;
        let mut tx = self.db.begin_write().await?;
        let limits = quotas::limits(&mut tx, &self.settings.quota, &project).await?;
        if limits.server_groups >= 0
            && records::count(&mut tx, &project).await? >= limits.server_groups
        {
            return Err(Error::Forbidden(
                "Quota exceeded, too many server groups.".into(),
            ));
        }
        let g = ServerGroup {
            id: ferrostack_core::ids::new_uuid(),
            project_id: project,
            user_id: ctx.user_id.clone(),
            name,
            policy,
            rules: rules_v,
            members: Vec::new(),
        };
        records::insert(&mut tx, &g, rules::now_us()).await?;
        tx.commit().await?;
        Ok(g)
    }

    pub async fn list_server_groups(
        &self,
        ctx: &RequestContext,
        q: &ServerGroupQuery,
    ) -> Result<Vec<ServerGroup>> {
        let project = ctx.project_id().unwrap_or_default().to_string();
        rules::project_or_admin(ctx, &project, "os_compute_api:os-server-groups:index")?;
        let all = ctx.is_admin()
            && q.all_projects
                .as_deref()
                .is_some_and(|s| rules::query_bool(s).unwrap_or(false));
        let (limit, _) =
            rules::limit_and_marker(q.limit.as_deref(), None, self.settings.compute.max_limit)?;
        let offset = match q.offset.as_deref() {
            None => 0,
            Some(s) => s
                .trim()
                .parse::<usize>()
                .map_err(|_| Error::BadRequest("offset param must be positive".into()))?,
        };
        let mut conn = db::acquire(&self.db).await?;
        let project = (!all).then_some(project.as_str());
        records::list(&mut conn, project, offset, limit).await
    }

    pub async fn get_server_group(&self, ctx: &RequestContext, id: &str) -> Result<ServerGroup> {
        let g = records::load(&mut *db::acquire(&self.db).await?, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        rules::project_or_admin(ctx, &g.project_id, "os_compute_api:os-server-groups:show")?;
        Ok(g)
    }

    pub async fn delete_server_group(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        let g = self.get_server_group(ctx, id).await?;
        rules::project_or_admin(ctx, &g.project_id, "os_compute_api:os-server-groups:delete")?;
        let mut tx = self.db.begin_write().await?;
        records::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_rules_switch_at_2_64() {
        let old = json!({"server_group": {"name": "g", "policies": ["anti-affinity"]}});
        let (_, p, _) = parse_new(&old, ApiVersion::new(2, 1)).unwrap();
        assert_eq!(p, "anti-affinity");
        assert!(parse_new(&old, ApiVersion::new(2, 64)).is_err());
        let soft = json!({"server_group": {"name": "g", "policies": ["soft-affinity"]}});
        assert!(parse_new(&soft, ApiVersion::new(2, 14)).is_err());
        assert!(parse_new(&soft, ApiVersion::new(2, 15)).is_ok());
        let new = json!({"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}});
        let (_, _, r) = parse_new(&new, ApiVersion::new(2, 64)).unwrap();
        assert_eq!(r["max_server_per_host"], 2);
        let bad = json!({"server_group": {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}});
        assert_eq!(
            parse_new(&bad, ApiVersion::new(2, 64))
                .unwrap_err()
                .to_string(),
            "Only anti-affinity policy supports rules."
        );
        let two = json!({"server_group": {"name": "g", "policies": ["affinity", "anti-affinity"]}});
        assert!(parse_new(&two, ApiVersion::new(2, 1)).is_err());
    }
}
