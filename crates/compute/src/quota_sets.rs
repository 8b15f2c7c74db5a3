//! `os-quota-sets`, `os-quota-class-sets` and `/limits`: reading and setting the
//! limits of [`quotas`](crate::quotas) and what is used of them, with the keys each
//! microversion shows (2.36 drops the nova-network ones, 2.57 the injected files).

use serde_json::{Value, json};

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::flavors::MAX_INT;
use crate::quotas::{self, QuotaLimits};
use crate::records::quotas as records;
use crate::records::{self as db, Conn};
use crate::rules::{self, invalid_input};
use crate::service::Compute;
use crate::version::ApiVersion;

/// nova-network quotas, shown (always -1) below 2.36. Nova no longer shows
/// `networks` (its resource went with nova-network) but still accepts it in an
/// update below 2.36 (the class set: below 2.50), as a no-op.
const NETWORK_KEYS: &[&str] = &[
    "fixed_ips",
    "floating_ips",
    "security_group_rules",
    "security_groups",
];

/// Accepted in an update where [`NETWORK_KEYS`] are, never shown.
const LEGACY_NETWORKS: &str = "networks";

const INJECTED_KEYS: &[&str] = &[
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "injected_files",
];

/// The keys of a quota set at this microversion.
pub fn quota_keys(v: ApiVersion) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = quotas::RESOURCES
        .iter()
        .copied()
        .filter(|k| !(v.at_least(2, 57) && INJECTED_KEYS.contains(k)))
        .collect();
    if !v.at_least(2, 36) {
        keys.extend(NETWORK_KEYS);
    }
    keys
}

/// The keys of a quota class set: 2.50 adds the server group quotas and drops the
/// nova-network ones; 2.57 drops the injected files.
pub fn quota_class_keys(v: ApiVersion) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = quotas::RESOURCES
        .iter()
        .copied()
        .filter(|k| !(v.at_least(2, 57) && INJECTED_KEYS.contains(k)))
        .filter(|k| v.at_least(2, 50) || !k.starts_with("server_group"))
        .collect();
    if !v.at_least(2, 50) {
        keys.extend(NETWORK_KEYS);
    }
    keys
}

/// What is used of each resource (`in_use` of the detailed quota set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InUse {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
    pub key_pairs: i64,
    pub server_groups: i64,
}

impl InUse {
    /// The amount used of quota `key` (0 for the keys nothing counts).
    pub fn get(&self, key: &str) -> i64 {
        match key {
            "instances" => self.instances,
            "cores" => self.cores,
            "ram" => self.ram,
            "key_pairs" => self.key_pairs,
            "server_groups" => self.server_groups,
            _ => 0,
        }
    }
}

/// A project's (or one of its users') limits.
async fn limits_for(
    conn: &mut Conn,
    config: &ferrostack_core::config::QuotaConfig,
    project_id: &str,
    user_id: Option<&str>,
) -> Result<QuotaLimits> {
    let mut l = quotas::limits(conn, config, project_id).await?;
    if let Some(u) = user_id {
        for (resource, n) in records::user_limits(conn, project_id, u).await? {
            l.set(&resource, n);
        }
    }
    Ok(l)
}

async fn in_use(conn: &mut Conn, project_id: &str, user_id: &str) -> Result<InUse> {
    let u = records::usage(conn, project_id).await?;
    Ok(InUse {
        instances: u.instances,
        cores: u.cores,
        ram: u.ram,
        key_pairs: crate::records::keypairs::count(conn, user_id).await?,
        server_groups: crate::records::groups::count(conn, project_id).await?,
    })
}

/// Parses `{"quota_set": {...}}` (or `quota_class_set`): the limits to set and `force`.
pub(crate) fn parse_update(
    body: &Value,
    envelope: &str,
    v: ApiVersion,
    allow_force: bool,
) -> Result<(Vec<(String, i64)>, bool)> {
    let q = rules::envelope(body, envelope)?;
    let mut allowed = if allow_force {
        quota_keys(v)
    } else {
        quota_class_keys(v)
    };
    if allow_force {
        allowed.push("force");
    }
    if allowed.contains(&"fixed_ips") {
        allowed.push(LEGACY_NETWORKS);
    }
    rules::only(envelope, q, &allowed)?;
    let mut force = false;
    let mut out = Vec::new();
    for (k, val) in q {
        if k == "force" {
            force = rules::boolean("force", val)?;
            continue;
        }
        let n = rules::integer(k, val, -1, MAX_INT)?;
        if !NETWORK_KEYS.contains(&k.as_str()) && k != LEGACY_NETWORKS {
            out.push((k.clone(), n));
        }
    }
    Ok((out, force))
}

impl Compute {
    /// `GET /os-quota-sets/{project}` (`detail` adds what is used).
    pub async fn quota_set(
        &self,
        ctx: &RequestContext,
        project_id: &str,
        user_id: Option<&str>,
        detail: bool,
    ) -> Result<(QuotaLimits, Option<InUse>)> {
        let rule = if detail {
            "os_compute_api:os-quota-sets:detail"
        } else {
            "os_compute_api:os-quota-sets:show"
        };
        rules::project_or_admin(ctx, project_id, rule)?;
        let mut conn = db::acquire(&self.db).await?;
        let l = limits_for(&mut conn, &self.settings.quota, project_id, user_id).await?;
        let used = if detail {
            let user = user_id.unwrap_or(&ctx.user_id);
            Some(in_use(&mut conn, project_id, user).await?)
        } else {
            None
        };
        Ok((l, used))
    }

    /// `GET /os-quota-sets/{project}/defaults`.
    pub async fn quota_defaults(&self) -> Result<QuotaLimits> {
        let mut conn = db::acquire(&self.db).await?;
        quotas::class_defaults(&mut conn, &self.settings.quota).await
    }

    /// `PUT /os-quota-sets/{project}`: sets limits; without `force`, a limit below
    /// what is used is refused.
    pub async fn update_quota_set(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        project_id: &str,
        user_id: Option<&str>,
        body: &Value,
    ) -> Result<QuotaLimits> {
        rules::admin(ctx, "os_compute_api:os-quota-sets:update")?;
        let (changes, force) = parse_update(body, "quota_set", v, true)?;
        let mut tx = self.db.begin_write().await?;
        if !force {
            let used = in_use(&mut tx, project_id, user_id.unwrap_or(&ctx.user_id)).await?;
            for (k, n) in &changes {
                let u = used.get(k);
                if *n >= 0 && *n < u {
                    return Err(Error::BadRequest(format!(
                        "Quota limit {n} for {k} must be greater than or equal to already used and reserved {u}."
                    )));
                }
            }
        }
        if let Some(u) = user_id {
            let project = quotas::limits(&mut tx, &self.settings.quota, project_id).await?;
            for (k, n) in &changes {
                let max = project.get(k).unwrap_or(-1);
                if max >= 0 && (*n > max || *n < 0) {
                    return Err(Error::BadRequest(format!(
                        "Quota limit {n} for {k} must be less than or equal to {max}."
                    )));
                }
            }
            for (k, n) in &changes {
                records::put(&mut tx, project_id, u, k, *n).await?;
            }
        } else {
            for (k, n) in &changes {
                records::put(&mut tx, project_id, "", k, *n).await?;
            }
        }
        let l = limits_for(&mut tx, &self.settings.quota, project_id, user_id).await?;
        tx.commit().await?;
        Ok(l)
    }

    /// `DELETE /os-quota-sets/{project}`: back to the defaults.
    pub async fn delete_quota_set(
        &self,
        ctx: &RequestContext,
        project_id: &str,
        user_id: Option<&str>,
    ) -> Result<()> {
        rules::admin(ctx, "os_compute_api:os-quota-sets:delete")?;
        let mut tx = self.db.begin_write().await?;
        records::delete(&mut tx, project_id, user_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `GET /os-quota-class-sets/{class}` (admin, as Nova's `ADMIN` rule): only
    /// `default` has values of its own; any other class shows the defaults, as in
    /// Nova.
    pub async fn quota_class_set(&self, ctx: &RequestContext) -> Result<QuotaLimits> {
        rules::admin(ctx, "os_compute_api:os-quota-class-sets:show")?;
        self.quota_defaults().await
    }

    /// `PUT /os-quota-class-sets/{class}` (admin). Only `default` is used by Nova;
    /// other classes are accepted and change nothing.
    pub async fn update_quota_class_set(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        class: &str,
        body: &Value,
    ) -> Result<QuotaLimits> {
        rules::admin(ctx, "os_compute_api:os-quota-class-sets:update")?;
        if class.is_empty() || class.len() > 255 {
            return Err(invalid_input(
                "id",
                &json!(class),
                "is not a valid class name",
            ));
        }
        let (changes, _) = parse_update(body, "quota_class_set", v, false)?;
        if class == "default" {
            let mut tx = self.db.begin_write().await?;
            for (k, n) in &changes {
                records::put_class(&mut tx, class, k, *n).await?;
            }
            tx.commit().await?;
        }
        self.quota_defaults().await
    }

    /// `GET /limits[?tenant_id=]`: the limits and usage of the caller's project (or,
    /// for an admin, another one).
    pub async fn absolute_limits(
        &self,
        ctx: &RequestContext,
        tenant_id: Option<&str>,
    ) -> Result<(QuotaLimits, InUse)> {
        let project = match tenant_id {
            Some(t) => {
                if Some(t) != ctx.project_id() {
                    rules::admin(ctx, "os_compute_api:limits:other_project")?;
                }
                t.to_string()
            }
            None => ctx.project_id().unwrap_or_default().to_string(),
        };
        let mut conn = db::acquire(&self.db).await?;
        let l = quotas::limits(&mut conn, &self.settings.quota, &project).await?;
        let u = in_use(&mut conn, &project, &ctx.user_id).await?;
        Ok((l, u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_updates_are_validated() {
        let v = ApiVersion::new(2, 1);
        let (c, force) = parse_update(&json!({"quota_set": {"instances": "5", "cores": -1, "force": true, "floating_ips": 3, "networks": 2}}), "quota_set", v, true).unwrap();
        assert!(force);
        assert_eq!(
            c,
            vec![("cores".to_string(), -1), ("instances".to_string(), 5)]
        );
        assert!(
            parse_update(
                &json!({"quota_set": {"instances": -2}}),
                "quota_set",
                v,
                true
            )
            .is_err()
        );
        assert!(parse_update(&json!({"quota_set": {"bogus": 1}}), "quota_set", v, true).is_err());
        assert!(
            parse_update(
                &json!({"quota_set": {"floating_ips": 1}}),
                "quota_set",
                ApiVersion::new(2, 36),
                true
            )
            .is_err()
        );
        assert!(
            parse_update(
                &json!({"quota_set": {"injected_files": 1}}),
                "quota_set",
                ApiVersion::new(2, 57),
                true
            )
            .is_err()
        );
        assert!(
            parse_update(
                &json!({"quota_class_set": {"force": true}}),
                "quota_class_set",
                v,
                false
            )
            .is_err()
        );
    }
}
