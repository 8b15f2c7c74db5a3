//! The scheduler: places servers waiting in `scheduling` on a host. Filters (host
//! enabled and up, availability zone, free vCPU/RAM/disk with allocation ratios,
//! image properties) then one weigher (spread: most free RAM). The database is
//! the message bus: placing a server is writing its host and the next task.
//! [`place`] is pure and table-tested; [`Compute::schedule_pending`] runs it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::hosts::Host;
use crate::instance_actions;
use crate::records::servers as records;
use crate::servers::create::now_us;
use crate::servers::model::{Fault, Server, TaskState, VmState};
use crate::service::Compute;

/// What a host has in use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostUsage {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

/// Why no host fits (for the fault message and logs).
#[derive(Debug, Clone, PartialEq)]
pub struct NoValidHost(pub String);

/// A server group's placement rule for one server: its policy and the hosts its
/// other members are on.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRule {
    pub policy: String,
    pub member_hosts: Vec<String>,
}

/// Chooses a host for `s` among `hosts` (pure).
pub fn place<'h>(
    s: &Server,
    hosts: &'h [Host],
    usage: &HashMap<String, HostUsage>,
    up: &dyn Fn(&Host) -> bool,
    group: Option<&GroupRule>,
) -> std::result::Result<&'h Host, NoValidHost> {
    let mut reasons = Vec::new();
    let want_az = s.doc.requested_az.as_deref();
    let mut best: Option<(&Host, f64)> = None;
    for h in hosts {
        if !h.enabled {
            reasons.push(format!("{}: disabled", h.name));
            continue;
        }
        if !up(h) {
            reasons.push(format!("{}: down", h.name));
            continue;
        }
        if let Some(az) = want_az
            && az != h.availability_zone
        {
            reasons.push(format!("{}: not in zone {az}", h.name));
            continue;
        }
        if let Some(hv) = s
            .doc
            .image_properties
            .get("hypervisor_type")
            .or(s.doc.image_properties.get("img_hv_type"))
            && !hv.eq_ignore_ascii_case(&h.hypervisor_type)
        {
            reasons.push(format!("{}: image wants hypervisor {hv}", h.name));
            continue;
        }
        if let Some(g) = group {
            let taken = g.member_hosts.contains(&h.name);
            if g.policy == "anti-affinity" && taken {
                reasons.push(format!(
                    "{}: holds a member of the anti-affinity group",
                    h.name
                ));
                continue;
            }
            if g.policy == "affinity" && !g.member_hosts.is_empty() && !taken {
                reasons.push(format!("{}: not where the affinity group is", h.name));
                continue;
            }
        }
        let u = usage.get(&h.name).copied().unwrap_or_default();
        let free_vcpus = h.vcpus as f64 * h.cpu_allocation_ratio - u.vcpus as f64;
        let free_ram = h.memory_mb as f64 * h.ram_allocation_ratio
            - h.reserved_host_memory_mb as f64
            - u.memory_mb as f64;
        let free_disk = h.local_gb as f64 * h.disk_allocation_ratio
            - h.reserved_host_disk_mb as f64 / 1024.0
            - u.disk_gb as f64;
        if free_vcpus < s.vcpus as f64 {
            reasons.push(format!("{}: not enough vCPUs", h.name));
            continue;
        }
        if free_ram < s.memory_mb as f64 {
            reasons.push(format!("{}: not enough RAM", h.name));
            continue;
        }
        if free_disk < (s.root_gb + s.ephemeral_gb) as f64 {
            reasons.push(format!("{}: not enough disk", h.name));
            continue;
        }
        if best.is_none_or(|(_, w)| free_ram > w) {
            best = Some((h, free_ram));
        }
    }
    best.map(|(h, _)| h).ok_or_else(|| {
        NoValidHost(if reasons.is_empty() {
            "no compute host is registered".into()
        } else {
            reasons.join("; ")
        })
    })
}

impl Compute {
    /// Places every server waiting for a host; returns how many were handled.
    pub async fn schedule_pending(&self) -> Result<usize> {
        let mut conn = crate::records::acquire(&self.db).await?;
        let waiting = records::to_schedule(&mut conn, 200).await?;
        if waiting.is_empty() {
            return Ok(0);
        }
        let hosts = crate::records::hosts::by_name(&mut conn).await?;
        let mut usage: HashMap<String, HostUsage> = crate::records::hosts::usage_by_host(&mut conn)
            .await?
            .into_iter()
            .map(|(host, u)| {
                let u = HostUsage {
                    vcpus: u.vcpus_used,
                    memory_mb: u.memory_mb_used,
                    disk_gb: u.local_gb_used,
                };
                (host, u)
            })
            .collect();
        drop(conn);
        let now = now_us();
        let up = |h: &Host| self.host_is_up(h, now);
        let mut handled = 0;
        for mut s in waiting {
            let expected = s.generation;
            let mut failed: Option<String> = None;
            let group = match crate::servers::create::server_group_hint(&s) {
                Some(gid) => self.group_rule(&gid, &s.id).await?,
                None => None,
            };
            match place(&s, &hosts, &usage, &up, group.as_ref()) {
                Ok(h) => {
                    let u = usage.entry(h.name.clone()).or_default();
                    u.vcpus += s.vcpus;
                    u.memory_mb += s.memory_mb;
                    u.disk_gb += s.root_gb + s.ephemeral_gb;
                    s.host = Some(h.name.clone());
                    s.availability_zone = Some(h.availability_zone.clone());
                    s.task_state = Some(TaskState::Networking);
                }
                Err(NoValidHost(why)) => {
                    tracing::warn!(server = %s.id, reasons = %why, "no valid host");
                    s.vm_state = VmState::Error;
                    s.task_state = None;
                    s.doc.fault = Some(Fault {
                        code: 500,
                        message: "No valid host was found. There are not enough hosts available."
                            .into(),
                        details: why.clone(),
                        created_us: now,
                    });
                    s.doc.pending.admin_pass = None;
                    failed = Some(why);
                }
            }
            s.updated_at_us = now_us();
            let mut tx = self.db.begin_write().await?;
            if records::update_if(&mut tx, &mut s, expected).await? && failed.is_some() {
                instance_actions::event(
                    &mut tx,
                    &instance_actions::EventRecord {
                        server_id: &s.id,
                        request_id: s.doc.pending.request_id.as_deref(),
                        event: "conductor_schedule_and_build_instances",
                        host: "",
                        start_us: now,
                        finish_us: now_us(),
                        error: failed.as_deref(),
                    },
                )
                .await?;
            }
            tx.commit().await?;
            handled += 1;
        }
        self.poke();
        Ok(handled)
    }

    /// Where the other members of a server's group are.
    async fn group_rule(&self, group_id: &str, server_id: &str) -> Result<Option<GroupRule>> {
        let mut conn = crate::records::acquire(&self.db).await?;
        let Some(g) = crate::records::groups::load(&mut conn, group_id).await? else {
            return Ok(None);
        };
        let mut member_hosts = Vec::new();
        for m in g.members.iter().filter(|m| *m != server_id) {
            if let Some(other) = records::load(&mut conn, m).await?
                && !other.deleted
                && let Some(h) = other.host
            {
                member_hosts.push(h);
            }
        }
        Ok(Some(GroupRule {
            policy: g.policy,
            member_hosts,
        }))
    }

    /// The scheduler loop: runs on every change of desired state, and every second.
    pub fn spawn_scheduler(
        self: &Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut wake = self.subscribe();
        tokio::spawn(async move {
            loop {
                match me.schedule_pending().await {
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "scheduler pass failed"),
                }
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => break,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::model::{FlavorSnapshot, Pending, ServerDoc};

    fn host(name: &str, az: &str, mem: i64) -> Host {
        Host {
            id: name.into(),
            name: name.into(),
            service_id: name.into(),
            availability_zone: az.into(),
            enabled: true,
            disabled_reason: None,
            forced_down: false,
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            vcpus: 4,
            memory_mb: mem,
            local_gb: 100,
            cpu_allocation_ratio: 1.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            reserved_host_memory_mb: 0,
            reserved_host_disk_mb: 0,
            host_ip: "127.0.0.1".into(),
            last_seen_us: 0,
        }
    }

    fn server(vcpus: i64, mem: i64, disk: i64) -> Server {
        Server {
            id: "s".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            name: "s".into(),
            vm_state: VmState::Building,
            task_state: Some(TaskState::Scheduling),
            power_state: 0,
            host: None,
            availability_zone: None,
            flavor_id: "1".into(),
            image_ref: "i".into(),
            vcpus,
            memory_mb: mem,
            root_gb: disk,
            ephemeral_gb: 0,
            locked: false,
            reservation_id: "r".into(),
            launch_index: 0,
            generation: 1,
            attempts: 0,
            next_attempt_us: 0,
            created_at_us: 0,
            updated_at_us: 0,
            launched_at_us: None,
            terminated_at_us: None,
            deleted: false,
            deleted_at_us: None,
            doc: ServerDoc {
                flavor: FlavorSnapshot {
                    id: "1".into(),
                    name: "f".into(),
                    vcpus,
                    memory_mb: mem,
                    root_gb: disk,
                    ephemeral_gb: 0,
                    swap_mb: 0,
                    extra_specs: Default::default(),
                },
                old_flavor: None,
                image_properties: Default::default(),
                metadata: Default::default(),
                tags: vec![],
                description: None,
                hostname: "s".into(),
                key_name: None,
                key_data: None,
                personality: vec![],
                user_data: None,
                config_drive: false,
                networks: ferrostack_network::NetworkRequest::None,
                security_groups: vec![],
                addresses: vec![],
                fault: None,
                access_ipv4: String::new(),
                access_ipv6: String::new(),
                locked_reason: None,
                locked_by: None,
                requested_az: None,
                pending: Pending::default(),
                password: None,
                scheduler_hints: Default::default(),
                last_error: None,
            },
        }
    }

    #[test]
    fn spreads_by_free_ram_and_filters_capacity_zone_state_and_groups() {
        let hosts = vec![
            host("a", "nova", 4096),
            host("b", "nova", 8192),
            host("c", "az2", 16384),
        ];
        let mut usage = HashMap::new();
        let up = |_: &Host| true;
        let s = server(1, 1024, 10);
        // c has the most free RAM.
        assert_eq!(place(&s, &hosts, &usage, &up, None).unwrap().name, "c");
        // Zone filter.
        let mut z = s.clone();
        z.doc.requested_az = Some("nova".into());
        assert_eq!(place(&z, &hosts, &usage, &up, None).unwrap().name, "b");
        // Usage counts: b is nearly full, so a wins in zone nova.
        usage.insert(
            "b".to_string(),
            HostUsage {
                vcpus: 0,
                memory_mb: 7800,
                disk_gb: 0,
            },
        );
        assert_eq!(place(&z, &hosts, &usage, &up, None).unwrap().name, "a");
        // Too big anywhere: a reason per host.
        let big = server(64, 1024, 10);
        let err = place(&big, &hosts, &usage, &up, None).unwrap_err();
        assert!(err.0.contains("not enough vCPUs"));
        // Down and disabled hosts are skipped.
        let down = |h: &Host| h.name != "c";
        assert_eq!(place(&s, &hosts, &usage, &down, None).unwrap().name, "a");
        let mut off = hosts.clone();
        off[0].enabled = false;
        off[2].enabled = false;
        assert_eq!(
            place(&s, &off, &HashMap::new(), &up, None).unwrap().name,
            "b"
        );
        // Server groups.
        let anti = GroupRule {
            policy: "anti-affinity".into(),
            member_hosts: vec!["c".into()],
        };
        assert_eq!(
            place(&s, &hosts, &HashMap::new(), &up, Some(&anti))
                .unwrap()
                .name,
            "b"
        );
        let aff = GroupRule {
            policy: "affinity".into(),
            member_hosts: vec!["a".into()],
        };
        assert_eq!(
            place(&s, &hosts, &HashMap::new(), &up, Some(&aff))
                .unwrap()
                .name,
            "a"
        );
        // No host at all.
        assert!(
            place(&s, &[], &usage, &up, None)
                .unwrap_err()
                .0
                .contains("no compute host")
        );
    }
}
