//! Compute quotas, counted (as Nova does since Pike) rather than reserved: usage is
//! what the servers and key pairs tables hold, so nothing can leak. Limits are the
//! configured defaults overlaid with per-project rows in `quotas`.

use crate::error::Result;
use crate::records::quotas as records;
use crate::records::{self as db, Conn};
use crate::service::Compute;

/// Nova's quota resources; -1 = unlimited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuotaLimits {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
    pub metadata_items: i64,
    pub injected_files: i64,
    pub injected_file_content_bytes: i64,
    pub injected_file_path_bytes: i64,
    pub key_pairs: i64,
    pub server_groups: i64,
    pub server_group_members: i64,
}

/// The names `os-quota-sets` uses, in its order.
pub const RESOURCES: &[&str] = &[
    "instances",
    "cores",
    "ram",
    "metadata_items",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "key_pairs",
    "server_groups",
    "server_group_members",
];

impl QuotaLimits {
    pub fn defaults(q: &ferrostack_core::config::QuotaConfig) -> QuotaLimits {
        QuotaLimits {
            instances: q.instances,
            cores: q.cores,
            ram: q.ram,
            metadata_items: q.metadata_items,
            injected_files: q.injected_files,
            injected_file_content_bytes: q.injected_file_content_bytes,
            injected_file_path_bytes: q.injected_file_path_length,
            key_pairs: q.key_pairs,
            server_groups: q.server_groups,
            server_group_members: q.server_group_members,
        }
    }

    pub fn get(&self, resource: &str) -> Option<i64> {
        Some(match resource {
            "instances" => self.instances,
            "cores" => self.cores,
            "ram" => self.ram,
            "metadata_items" => self.metadata_items,
            "injected_files" => self.injected_files,
            "injected_file_content_bytes" => self.injected_file_content_bytes,
            "injected_file_path_bytes" => self.injected_file_path_bytes,
            "key_pairs" => self.key_pairs,
            "server_groups" => self.server_groups,
            "server_group_members" => self.server_group_members,
            _ => return None,
        })
    }

    pub fn set(&mut self, resource: &str, value: i64) -> bool {
        let slot = match resource {
            "instances" => &mut self.instances,
            "cores" => &mut self.cores,
            "ram" => &mut self.ram,
            "metadata_items" => &mut self.metadata_items,
            "injected_files" => &mut self.injected_files,
            "injected_file_content_bytes" => &mut self.injected_file_content_bytes,
            "injected_file_path_bytes" => &mut self.injected_file_path_bytes,
            "key_pairs" => &mut self.key_pairs,
            "server_groups" => &mut self.server_groups,
            "server_group_members" => &mut self.server_group_members,
            _ => return false,
        };
        *slot = value;
        true
    }
}

/// What a project uses of the counted resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
}

/// The limits of a project (per-user rows are not used yet: `user_id` is `''`).
pub async fn limits(
    conn: &mut Conn,
    defaults: &ferrostack_core::config::QuotaConfig,
    project_id: &str,
) -> Result<QuotaLimits> {
    let mut l = class_defaults(conn, defaults).await?;
    for (resource, n) in records::project_limits(conn, project_id).await? {
        l.set(&resource, n);
    }
    Ok(l)
}

/// The defaults: the configured `[quota]` overlaid with `os-quota-class-sets/default`.
pub async fn class_defaults(
    conn: &mut Conn,
    defaults: &ferrostack_core::config::QuotaConfig,
) -> Result<QuotaLimits> {
    let mut l = QuotaLimits::defaults(defaults);
    for (resource, n) in records::class_defaults(conn).await? {
        l.set(&resource, n);
    }
    Ok(l)
}

impl Compute {
    /// A project's limits (defaults overlaid with its overrides).
    pub async fn quota_limits(&self, project_id: &str) -> Result<QuotaLimits> {
        let mut conn = db::acquire(&self.db).await?;
        limits(&mut conn, &self.settings.quota, project_id).await
    }

    /// A project's counted usage.
    pub async fn quota_usage(&self, project_id: &str) -> Result<Usage> {
        let mut conn = db::acquire(&self.db).await?;
        records::usage(&mut conn, project_id).await
    }
}
