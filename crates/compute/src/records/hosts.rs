//! The `hosts` table (one row per compute host: capacity, service state,
//! heartbeat), and what the servers placed on each host use.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use ferrostack_core::config::ComputeConfig;
use ferrostack_core::db::get_bool;
use ferrostack_virt::HostResources;

use crate::error::Result;
use crate::hosts::Host;

const COLUMNS: &str = "id, name, service_id, availability_zone, enabled, disabled_reason, \
     forced_down, hypervisor_type, hypervisor_version, vcpus, memory_mb, local_gb, \
     cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio, reserved_host_memory_mb, \
     reserved_host_disk_mb, host_ip, last_seen_us";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Host> {
    Ok(Host {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        service_id: r.try_get("service_id")?,
        availability_zone: r.try_get("availability_zone")?,
        enabled: get_bool(r, "enabled")?,
        disabled_reason: r.try_get("disabled_reason")?,
        forced_down: get_bool(r, "forced_down")?,
        hypervisor_type: r.try_get("hypervisor_type")?,
        hypervisor_version: r.try_get("hypervisor_version")?,
        vcpus: r.try_get("vcpus")?,
        memory_mb: r.try_get("memory_mb")?,
        local_gb: r.try_get("local_gb")?,
        cpu_allocation_ratio: r.try_get("cpu_allocation_ratio")?,
        ram_allocation_ratio: r.try_get("ram_allocation_ratio")?,
        disk_allocation_ratio: r.try_get("disk_allocation_ratio")?,
        reserved_host_memory_mb: r.try_get("reserved_host_memory_mb")?,
        reserved_host_disk_mb: r.try_get("reserved_host_disk_mb")?,
        host_ip: r.try_get("host_ip")?,
        last_seen_us: r.try_get("last_seen_us")?,
    })
}

/// Every host, by name.
pub async fn by_name(conn: &mut AnyConnection) -> Result<Vec<Host>> {
    let sql = format!("SELECT {COLUMNS} FROM hosts ORDER BY name");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Every host, in registration order.
pub async fn by_registration(conn: &mut AnyConnection) -> Result<Vec<Host>> {
    let sql = format!("SELECT {COLUMNS} FROM hosts ORDER BY created_at_us, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Whether any host is in zone `zone`.
pub async fn zone_has_hosts(conn: &mut AnyConnection, zone: &str) -> Result<bool> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM hosts WHERE availability_zone = $1")
        .bind(zone)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// A host agent's registration: where it is and what its hypervisor has.
pub struct Registration<'a> {
    pub name: &'a str,
    pub az: &'a str,
    pub res: &'a HostResources,
    /// The allocation ratios and reservations.
    pub config: &'a ComputeConfig,
    pub now_us: i64,
}

/// Registers a host, or refreshes its capacity when it is known.
pub async fn register(conn: &mut AnyConnection, r: &Registration<'_>) -> Result<()> {
    let Registration {
        name,
        az,
        res,
        config: c,
        now_us: now,
    } = *r;
    let exists = sqlx::query("SELECT id FROM hosts WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    if exists {
        let q = sqlx::query(
            "UPDATE hosts SET availability_zone = $2, hypervisor_type = $3, hypervisor_version = $4, \
             vcpus = $5, memory_mb = $6, local_gb = $7, cpu_allocation_ratio = $8, \
             ram_allocation_ratio = $9, disk_allocation_ratio = $10, reserved_host_memory_mb = $11, \
             reserved_host_disk_mb = $12, last_seen_us = $13, updated_at_us = $13 WHERE name = $1",
        )
        .bind(name)
        .bind(az);
        capacity(q, res, c).bind(now).execute(&mut *conn).await?;
    } else {
        let q = sqlx::query(
            "INSERT INTO hosts (id, name, service_id, availability_zone, enabled, disabled_reason, \
             forced_down, hypervisor_type, hypervisor_version, vcpus, memory_mb, local_gb, \
             cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio, \
             reserved_host_memory_mb, reserved_host_disk_mb, host_ip, last_seen_us, \
             created_at_us, updated_at_us) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, $18)",
        )
        .bind(ferrostack_core::ids::new_uuid())
        .bind(name)
        .bind(ferrostack_core::ids::new_uuid())
        .bind(az)
        .bind(true)
        .bind(false);
        capacity(q, res, c)
            .bind("127.0.0.1")
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds the capacity columns, `hypervisor_type` to `reserved_host_disk_mb`.
fn capacity<'q>(q: Query<'q>, res: &'q HostResources, c: &ComputeConfig) -> Query<'q> {
    q.bind(res.hypervisor_type.as_str())
        .bind(res.hypervisor_version)
        .bind(res.vcpus)
        .bind(res.memory_mb)
        .bind(res.local_gb)
        .bind(c.cpu_allocation_ratio)
        .bind(c.ram_allocation_ratio)
        .bind(c.disk_allocation_ratio)
        .bind(c.reserved_host_memory_mb)
        .bind(c.reserved_host_disk_mb)
}

pub async fn heartbeat(conn: &mut AnyConnection, name: &str, now_us: i64) -> Result<()> {
    sqlx::query("UPDATE hosts SET last_seen_us = $2 WHERE name = $1")
        .bind(name)
        .bind(now_us)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A service flag of a host.
#[derive(Debug, Clone, Copy)]
pub enum Flag {
    Enabled,
    ForcedDown,
}

pub async fn set_flag(
    conn: &mut AnyConnection,
    host_id: &str,
    flag: Flag,
    value: bool,
    now_us: i64,
) -> Result<()> {
    let sql = match flag {
        Flag::Enabled => "UPDATE hosts SET enabled = $1, updated_at_us = $2 WHERE id = $3",
        Flag::ForcedDown => "UPDATE hosts SET forced_down = $1, updated_at_us = $2 WHERE id = $3",
    };
    sqlx::query(sql)
        .bind(value)
        .bind(now_us)
        .bind(host_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn set_disabled_reason(
    conn: &mut AnyConnection,
    host_id: &str,
    reason: Option<String>,
) -> Result<()> {
    sqlx::query("UPDATE hosts SET disabled_reason = $1 WHERE id = $2")
        .bind(reason)
        .bind(host_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What the servers placed on each host (not deleted) use.
pub async fn usage_by_host(
    conn: &mut AnyConnection,
) -> Result<HashMap<String, crate::hypervisors::HostUsage>> {
    let mut out = HashMap::new();
    for r in sqlx::query(
        "SELECT host, COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, \
         CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS m, \
         CAST(COALESCE(SUM(root_gb + ephemeral_gb), 0) AS BIGINT) AS d, \
         CAST(COALESCE(SUM(CASE WHEN task_state IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS w \
         FROM servers WHERE deleted = $1 AND host IS NOT NULL GROUP BY host",
    )
    .bind(false)
    .fetch_all(&mut *conn)
    .await?
    {
        out.insert(
            r.try_get::<String, _>("host")?,
            crate::hypervisors::HostUsage {
                running_vms: r.try_get("n")?,
                vcpus_used: r.try_get("c")?,
                memory_mb_used: r.try_get("m")?,
                local_gb_used: r.try_get("d")?,
                current_workload: r.try_get("w")?,
            },
        );
    }
    Ok(out)
}

/// The servers (id, name) on each host, oldest first.
pub async fn servers_by_host(
    conn: &mut AnyConnection,
) -> Result<HashMap<String, Vec<(String, String)>>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for r in sqlx::query(
        "SELECT id, name, host FROM servers WHERE deleted = $1 AND host IS NOT NULL ORDER BY created_at_us",
    )
    .bind(false)
    .fetch_all(&mut *conn)
    .await?
    {
        out.entry(r.try_get("host")?)
            .or_default()
            .push((r.try_get("id")?, r.try_get("name")?));
    }
    Ok(out)
}
