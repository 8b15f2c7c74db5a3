//! Hypervisors and compute services as the admin sees them (`os-hypervisors`,
//! `os-services`): read from the `hosts` table the host agents register in, with
//! usage summed from `servers`. Services can be disabled and forced down; the
//! scheduler honours both. The controller's scheduler and conductor are shown as
//! services of their own, always up, in zone `internal`.

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::Digest as _;

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::records::hosts as records;
use crate::records::{self as db, Conn};
use crate::rules::{self, invalid_input, show_value};
use crate::service::Compute;
use crate::version::ApiVersion;

/// A registered compute host (one hypervisor + its nova-compute service) as the
/// admin APIs show it: the `hosts` row ([`crate::hosts::Host`], read through
/// `Deref`) plus what is derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub row: crate::hosts::Host,
    /// 1-based position by registration: the integer id below 2.53.
    pub number: i64,
    /// Heartbeat recent enough and not forced down.
    pub up: bool,
    pub usage: HostUsage,
}

impl std::ops::Deref for Host {
    type Target = crate::hosts::Host;
    fn deref(&self) -> &crate::hosts::Host {
        &self.row
    }
}

/// What the servers on a host use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostUsage {
    pub running_vms: i64,
    pub vcpus_used: i64,
    pub memory_mb_used: i64,
    pub local_gb_used: i64,
    pub current_workload: i64,
}

/// Every registered host, in registration order.
pub async fn load_hosts(conn: &mut Conn, service_down_time_s: u64) -> Result<Vec<Host>> {
    let usage = records::usage_by_host(conn).await?;
    let rows = records::by_registration(conn).await?;
    let now = rules::now_us();
    let down_us = i64::try_from(service_down_time_s)
        .unwrap_or(i64::MAX / 2_000_000)
        .saturating_mul(1_000_000);
    let mut out = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        out.push(Host {
            number: i64::try_from(i).unwrap_or(0) + 1,
            up: !row.forced_down && now.saturating_sub(row.last_seen_us) <= down_us,
            usage: usage.get(&row.name).copied().unwrap_or_default(),
            row,
        });
    }
    Ok(out)
}

/// A stable UUID-shaped id for a synthetic service (`nova-scheduler@host`).
fn synthetic_uuid(what: &str) -> String {
    let h = sha2::Sha256::digest(what.as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-5{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The controller's host name: `[compute] host`, else the machine's.
pub fn controller_host(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Host {
    /// RAM in use: the servers' plus the host's reserved memory.
    pub fn memory_mb_used(&self) -> i64 {
        self.usage.memory_mb_used + self.reserved_host_memory_mb
    }

    /// Disk in use: the servers' plus the host's reserved disk.
    pub fn local_gb_used(&self) -> i64 {
        self.usage.local_gb_used + self.reserved_host_disk_mb / 1024
    }

    /// The id below 2.53: the position by registration.
    pub fn service_num(&self) -> i64 {
        self.number + 2
    }
}

/// Query of `GET /os-hypervisors[/detail]`.
#[derive(Debug, Clone, Default)]
pub struct HypervisorQuery {
    pub limit: Option<String>,
    pub marker: Option<String>,
    pub hostname_pattern: Option<String>,
    pub with_servers: Option<String>,
}

/// A compute service, or the controller's scheduler/conductor.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub number: i64,
    pub uuid: String,
    pub binary: String,
    pub host: String,
    pub zone: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub up: bool,
    pub updated_at_us: i64,
}

fn services_of(hosts: &[Host], controller: &str) -> Vec<Service> {
    let now = rules::now_us();
    let mut out: Vec<Service> = ["nova-scheduler", "nova-conductor"]
        .iter()
        .zip(1..)
        .map(|(b, n)| Service {
            number: n,
            uuid: synthetic_uuid(&format!("{b}@{controller}")),
            binary: (*b).to_string(),
            host: controller.to_string(),
            zone: "internal".into(),
            enabled: true,
            disabled_reason: None,
            forced_down: false,
            up: true,
            updated_at_us: now,
        })
        .collect();
    out.extend(hosts.iter().map(|h| Service {
        number: h.service_num(),
        uuid: h.service_id.clone(),
        binary: "nova-compute".into(),
        host: h.name.clone(),
        zone: h.availability_zone.clone(),
        enabled: h.enabled,
        disabled_reason: h.disabled_reason.clone(),
        forced_down: h.forced_down,
        up: h.up,
        updated_at_us: h.last_seen_us,
    }));
    out
}

/// `uptime(1)`'s line (`10:01:02 up 3 days, 4:05,  1 user,  load average: 0.1, 0.2, 0.3`),
/// what Nova's drivers report as a host's uptime; here the controller's, read from
/// `/proc` (an all-in-one host).
pub fn uptime_text() -> String {
    let secs = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .unwrap_or(0.0) as u64;
    let load: Vec<String> = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).map(str::to_string).collect())
        .unwrap_or_default();
    let load = if load.len() == 3 {
        load.join(", ")
    } else {
        "0.00, 0.00, 0.00".into()
    };
    let now = ferrostack_core::time::now();
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    let up = if days > 0 {
        format!("{days} days, {hours:2}:{minutes:02}")
    } else {
        format!("{hours:2}:{minutes:02}")
    };
    format!(
        " {:02}:{:02}:{:02} up {up},  1 user,  load average: {load}",
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// SQL `LIKE '%pattern%'` as Nova's hostname search does it, case-insensitively.
fn matches_pattern(name: &str, pattern: &str) -> bool {
    let p = pattern.trim_matches('%').to_lowercase();
    name.to_lowercase().contains(&p)
}

impl Compute {
    async fn hosts(&self) -> Result<Vec<Host>> {
        let mut conn = db::acquire(&self.db).await?;
        load_hosts(&mut conn, self.settings.compute.service_down_time).await
    }

    /// `GET /os-hypervisors[/detail]`: a page of hosts and whether the page is full.
    pub async fn list_hypervisors(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        detail: bool,
        q: &HypervisorQuery,
    ) -> Result<(Vec<Host>, bool)> {
        rules::admin(
            ctx,
            if detail {
                "os_compute_api:os-hypervisors:list-detail"
            } else {
                "os_compute_api:os-hypervisors:list"
            },
        )?;
        let paging = v.at_least(2, 33) && (q.limit.is_some() || q.marker.is_some());
        if let Some(p) = &q.hostname_pattern
            && v.at_least(2, 53)
        {
            if paging {
                return Err(Error::BadRequest(
                    "Paging over hypervisors with the hypervisor_hostname_pattern query \
                     parameter is not supported."
                        .into(),
                ));
            }
            let found: Vec<Host> = self
                .hosts()
                .await?
                .into_iter()
                .filter(|h| matches_pattern(&h.name, p))
                .collect();
            if found.is_empty() {
                return Err(Error::NotFound(format!(
                    "No hypervisor matching '{p}' could be found."
                )));
            }
            return Ok((found, false));
        }
        let hosts = self.hosts().await?;
        if !paging {
            return Ok((hosts, false));
        }
        let (limit, marker) = rules::limit_and_marker(
            q.limit.as_deref(),
            q.marker.as_deref(),
            self.settings.compute.max_limit,
        )?;
        let start = match marker {
            None => 0,
            Some(m) => {
                hosts
                    .iter()
                    .position(|h| {
                        if v.at_least(2, 53) {
                            h.id == m
                        } else {
                            h.number.to_string() == m
                        }
                    })
                    .ok_or_else(|| Error::BadRequest(format!("marker [{m}] not found")))?
                    + 1
            }
        };
        let page: Vec<Host> = hosts.into_iter().skip(start).take(limit).collect();
        let full = page.len() == limit;
        Ok((page, full))
    }

    pub async fn get_hypervisor(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        id: &str,
    ) -> Result<Host> {
        rules::admin(ctx, "os_compute_api:os-hypervisors:show")?;
        self.hosts()
            .await?
            .into_iter()
            .find(|h| {
                if v.at_least(2, 53) {
                    h.id == id
                } else {
                    h.number.to_string() == id
                }
            })
            .ok_or_else(|| Error::NotFound(format!("Hypervisor with ID {id} could not be found.")))
    }

    /// `GET /os-hypervisors/{id}/uptime` (removed in 2.88): the host; its uptime
    /// is [`uptime_text`].
    pub async fn hypervisor_uptime(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        id: &str,
    ) -> Result<Host> {
        if v.at_least(2, 88) {
            return Err(Error::NotFound("The resource could not be found.".into()));
        }
        rules::admin(ctx, "os_compute_api:os-hypervisors:uptime")?;
        self.get_hypervisor(ctx, v, id).await
    }

    /// `GET /os-aggregates`: host aggregates are not modelled; the list is empty.
    pub fn list_aggregates(&self, ctx: &RequestContext) -> Result<Vec<Value>> {
        rules::admin(ctx, "os_compute_api:os-aggregates:index")?;
        Ok(Vec::new())
    }

    /// `GET /os-hypervisors/{pattern}/search` (below 2.53).
    pub async fn search_hypervisors(
        &self,
        ctx: &RequestContext,
        pattern: &str,
    ) -> Result<Vec<Host>> {
        rules::admin(ctx, "os_compute_api:os-hypervisors:search")?;
        let found: Vec<Host> = self
            .hosts()
            .await?
            .into_iter()
            .filter(|h| matches_pattern(&h.name, pattern))
            .collect();
        if found.is_empty() {
            return Err(Error::NotFound(format!(
                "No hypervisor matching '{pattern}' could be found."
            )));
        }
        Ok(found)
    }

    /// Servers (id, name) on each host, for `with_servers`.
    pub async fn servers_on_hosts(&self) -> Result<HashMap<String, Vec<(String, String)>>> {
        records::servers_by_host(&mut *db::acquire(&self.db).await?).await
    }

    /// `GET /os-hypervisors/statistics` (removed in 2.88).
    pub async fn hypervisor_statistics(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
    ) -> Result<Value> {
        if v.at_least(2, 88) {
            return Err(Error::NotFound("The resource could not be found.".into()));
        }
        rules::admin(ctx, "os_compute_api:os-hypervisors:statistics")?;
        let hosts = self.hosts().await?;
        let sum = |f: &dyn Fn(&Host) -> i64| hosts.iter().map(f).sum::<i64>();
        Ok(json!({
            "count": hosts.len(),
            "vcpus": sum(&|h| h.vcpus),
            "memory_mb": sum(&|h| h.memory_mb),
            "local_gb": sum(&|h| h.local_gb),
            "vcpus_used": sum(&|h| h.usage.vcpus_used),
            "memory_mb_used": sum(&|h| h.memory_mb_used()),
            "local_gb_used": sum(&|h| h.local_gb_used()),
            "free_ram_mb": sum(&|h| h.memory_mb - h.memory_mb_used()),
            "free_disk_gb": sum(&|h| h.local_gb - h.local_gb_used()),
            "current_workload": sum(&|h| h.usage.current_workload),
            "running_vms": sum(&|h| h.usage.running_vms),
            "disk_available_least": sum(&|h| h.local_gb - h.local_gb_used()),
        }))
    }

    // --- services ------------------------------------------------------------------

    /// `GET /os-services[?host=&binary=]`.
    pub async fn list_services(
        &self,
        ctx: &RequestContext,
        host: Option<&str>,
        binary: Option<&str>,
    ) -> Result<Vec<Service>> {
        rules::admin(ctx, "os_compute_api:os-services:list")?;
        let controller = controller_host(&self.settings.compute.host);
        Ok(services_of(&self.hosts().await?, &controller)
            .into_iter()
            .filter(|s| host.is_none_or(|h| s.host == h))
            .filter(|s| binary.is_none_or(|b| s.binary == b))
            .collect())
    }

    async fn set_host_service(
        &self,
        host_id: &str,
        enabled: Option<bool>,
        reason: Option<Option<String>>,
        forced_down: Option<bool>,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        if let Some(e) = enabled {
            records::set_flag(&mut tx, host_id, records::Flag::Enabled, e, rules::now_us()).await?;
        }
        if let Some(r) = reason {
            records::set_disabled_reason(&mut tx, host_id, r).await?;
        }
        if let Some(f) = forced_down {
            records::set_flag(
                &mut tx,
                host_id,
                records::Flag::ForcedDown,
                f,
                rules::now_us(),
            )
            .await?;
        }
        tx.commit().await?;
        self.poke();
        Ok(())
    }

    /// `PUT /os-services/{id}` (2.53): status, disabled_reason, forced_down.
    pub async fn update_service(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
    ) -> Result<Service> {
        rules::admin(ctx, "os_compute_api:os-services:update")?;
        let Value::Object(b) = body else {
            return Err(invalid_input("body", body, "is not of type 'object'"));
        };
        rules::only("body", b, &["status", "disabled_reason", "forced_down"])?;
        let status = match b.get("status") {
            None => None,
            Some(Value::String(s)) if s == "enabled" || s == "disabled" => Some(s.as_str()),
            Some(other) => {
                return Err(invalid_input(
                    "status",
                    other,
                    &format!(
                        "{} is not one of ['enabled', 'disabled']",
                        show_value(other)
                    ),
                ));
            }
        };
        let reason = match b.get("disabled_reason") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 255 => Some(s.clone()),
            Some(other) => {
                return Err(invalid_input(
                    "disabled_reason",
                    other,
                    &format!("{} is not valid", show_value(other)),
                ));
            }
        };
        let forced_down = match b.get("forced_down") {
            None => None,
            Some(x) => Some(rules::boolean("forced_down", x)?),
        };
        if status == Some("enabled") && reason.is_some() {
            return Err(Error::BadRequest(
                "Specifying 'disabled_reason' with status 'enabled' is invalid.".into(),
            ));
        }
        if status.is_none() && reason.is_some() {
            return Err(Error::BadRequest(
                "Specifying 'disabled_reason' is only allowed with 'status': 'disabled'.".into(),
            ));
        }
        if status.is_none() && forced_down.is_none() {
            return Err(Error::BadRequest(
                "At least one of 'status' or 'forced_down' must be specified in the request body."
                    .into(),
            ));
        }
        let controller = controller_host(&self.settings.compute.host);
        let hosts = self.hosts().await?;
        let svc = services_of(&hosts, &controller)
            .into_iter()
            .find(|s| s.uuid == id)
            .ok_or_else(|| Error::NotFound(format!("Service {id} could not be found.")))?;
        if svc.binary != "nova-compute" {
            return Err(Error::BadRequest(format!(
                "Updating a {} service is not supported. Only nova-compute services can be updated.",
                svc.binary
            )));
        }
        let host = hosts
            .iter()
            .find(|h| h.service_id == id)
            .ok_or_else(|| Error::NotFound(format!("Service {id} could not be found.")))?;
        let (enabled, reason_change) = match status {
            Some("enabled") => (Some(true), Some(None)),
            Some(_) => (Some(false), Some(reason)),
            None => (None, None),
        };
        self.set_host_service(&host.id, enabled, reason_change, forced_down)
            .await?;
        self.list_services(ctx, None, None)
            .await?
            .into_iter()
            .find(|s| s.uuid == id)
            .ok_or_else(|| Error::NotFound(format!("Service {id} could not be found.")))
    }

    /// The pre-2.53 `PUT /os-services/{enable,disable,disable-log-reason,force-down}`
    /// with `{"host", "binary"}`; returns Nova's `service` body.
    pub async fn service_action(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        action: &str,
        body: &Value,
    ) -> Result<Value> {
        if v.at_least(2, 53) {
            return Err(Error::NotFound("The resource could not be found.".into()));
        }
        rules::admin(ctx, "os_compute_api:os-services:update")?;
        let Value::Object(b) = body else {
            return Err(invalid_input("body", body, "is not of type 'object'"));
        };
        let text = |k: &str| -> Result<String> {
            match b.get(k) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(invalid_input(
                    "body",
                    body,
                    &format!("'{k}' is a required property"),
                )),
            }
        };
        let host_name = text("host")?;
        let binary = text("binary")?;
        let host = self
            .hosts()
            .await?
            .into_iter()
            .find(|h| h.name == host_name);
        let Some(host) = host.filter(|_| binary == "nova-compute") else {
            return Err(Error::NotFound(format!(
                "Host '{host_name}' is not mapped to any cell"
            )));
        };
        match action {
            "enable" => {
                self.set_host_service(&host.id, Some(true), Some(None), None)
                    .await?;
                Ok(json!({"host": host_name, "binary": binary, "status": "enabled"}))
            }
            "disable" => {
                self.set_host_service(&host.id, Some(false), None, None)
                    .await?;
                Ok(json!({"host": host_name, "binary": binary, "status": "disabled"}))
            }
            "disable-log-reason" => {
                let reason = text("disabled_reason")?;
                self.set_host_service(&host.id, Some(false), Some(Some(reason.clone())), None)
                    .await?;
                Ok(
                    json!({"host": host_name, "binary": binary, "status": "disabled",
                          "disabled_reason": reason}),
                )
            }
            "force-down" if v.at_least(2, 11) => {
                let f = match b.get("forced_down") {
                    Some(x) => rules::boolean("forced_down", x)?,
                    None => {
                        return Err(invalid_input(
                            "body",
                            body,
                            "'forced_down' is a required property",
                        ));
                    }
                };
                self.set_host_service(&host.id, None, None, Some(f)).await?;
                Ok(json!({"host": host_name, "binary": binary, "forced_down": f}))
            }
            _ => Err(Error::NotFound("Unknown action".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            row: crate::hosts::Host {
                id: "7e1d1f3c-0000-4000-8000-000000000001".into(),
                name: "h1".into(),
                service_id: "7e1d1f3c-0000-4000-8000-000000000002".into(),
                availability_zone: "nova".into(),
                enabled: true,
                disabled_reason: None,
                forced_down: false,
                hypervisor_type: "fake".into(),
                hypervisor_version: 1000,
                vcpus: 8,
                memory_mb: 8192,
                local_gb: 100,
                cpu_allocation_ratio: 16.0,
                ram_allocation_ratio: 1.5,
                disk_allocation_ratio: 1.0,
                reserved_host_memory_mb: 512,
                reserved_host_disk_mb: 0,
                host_ip: "127.0.0.1".into(),
                last_seen_us: 0,
            },
            number: 1,
            up: true,
            usage: HostUsage {
                running_vms: 1,
                vcpus_used: 2,
                memory_mb_used: 1024,
                local_gb_used: 10,
                current_workload: 0,
            },
        }
    }

    #[test]
    fn services_include_the_controller() {
        let s = services_of(&[host()], "ctl");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].binary, "nova-scheduler");
        assert_eq!(s[0].zone, "internal");
        assert_eq!(s[2].binary, "nova-compute");
        assert_eq!(s[2].number, 3);
        assert_eq!(s[2].uuid, host().service_id);
        assert!(!s[2].forced_down);
        assert_eq!(synthetic_uuid("a").len(), 36);
        assert_eq!(synthetic_uuid("a"), synthetic_uuid("a"));
    }

    #[test]
    fn hostname_patterns_are_substring_matches() {
        assert!(matches_pattern("compute-1.example", "compute"));
        assert!(matches_pattern("compute-1", "%pute%"));
        assert!(!matches_pattern("compute-1", "storage"));
    }
}
