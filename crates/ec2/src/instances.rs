//! Instances: RunInstances onto Nova's server create (ClientToken through its
//! own index), the describe family (reservations, filters, paging, terminated
//! instances kept visible for a while), power actions, console output, password
//! data and the instance attributes.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use ferrostack_compute::servers::ops::Action as NovaAction;
use ferrostack_compute::servers::request::CreateRequest;
use ferrostack_compute::{Server, TaskState, VmState};
use ferrostack_core::RequestContext;
use ferrostack_network::server_ports::{NetworkRequest, RequestedNetwork};

use crate::action::{AttrChange, InstanceAttr, Paging, RunRequest};
use crate::error::{Error, Result};
use crate::ids::{Kind, ec2_id};
use crate::model::*;
use crate::params::{Filter, all_match};
use crate::records::{self, Attrs};
use crate::reply::*;
use crate::{Ec2, Reply};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Power {
    Stop,
    Start,
    Reboot,
}

pub(crate) use ferrostack_core::time::now_us;

pub(crate) fn iso_us(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// EC2's state of a Nova server.
pub(crate) fn state_of(s: &Server) -> State {
    let (code, name) = if s.deleted || s.vm_state == VmState::Deleted {
        (48, "terminated")
    } else {
        match (s.vm_state, s.task_state) {
            (_, Some(TaskState::Deleting)) => (32, "shutting-down"),
            (_, Some(TaskState::PoweringOff | TaskState::Suspending | TaskState::Pausing)) => {
                (64, "stopping")
            }
            (VmState::Building, _) | (_, Some(TaskState::PoweringOn | TaskState::Resuming)) => {
                (0, "pending")
            }
            (VmState::Active | VmState::Resized, _) => (16, "running"),
            (VmState::Stopped | VmState::Paused | VmState::Suspended | VmState::Error, _) => {
                (80, "stopped")
            }
            (VmState::Deleted, _) => (48, "terminated"),
        }
    };
    State { code, name }
}

fn state_reason(s: &Server) -> Option<Reason> {
    if s.deleted {
        return Some(Reason {
            code: "Client.UserInitiatedShutdown".into(),
            message: "Client.UserInitiatedShutdown: User initiated shutdown".into(),
        });
    }
    match s.vm_state {
        VmState::Error => Some(Reason {
            code: "Server.InternalError".into(),
            message: format!(
                "Server.InternalError: {}",
                s.doc
                    .fault
                    .as_ref()
                    .map(|f| f.message.clone())
                    .unwrap_or_else(|| "Internal error on launch".into())
            ),
        }),
        VmState::Stopped | VmState::Paused | VmState::Suspended => Some(Reason {
            code: "Client.UserInitiatedShutdown".into(),
            message: "Client.UserInitiatedShutdown: User initiated shutdown".into(),
        }),
        _ => None,
    }
}

/// What instance views need of the project, loaded once per request.
pub(crate) struct Lookup {
    pub account: String,
    /// Security group name → id (the project's groups).
    pub groups: HashMap<String, String>,
}

fn hash_request(r: &RunRequest) -> String {
    let mut h = Sha256::new();
    let parts = [
        r.image_id.as_str(),
        r.instance_type.as_str(),
        &r.min_count.to_string(),
        &r.max_count.to_string(),
        r.key_name.as_deref().unwrap_or(""),
        r.user_data.as_deref().unwrap_or(""),
        &r.security_group_ids.join(","),
        &r.security_groups.join(","),
        r.subnet_id.as_deref().unwrap_or(""),
        r.availability_zone.as_deref().unwrap_or(""),
    ];
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

impl Ec2 {
    pub(crate) fn terminated_since(&self) -> i64 {
        now_us() - self.settings.terminated_visible_secs * 1_000_000
    }

    /// Stores the EC2 ids of these objects if this process has not yet.
    pub(crate) async fn remember(&self, kind: Kind, objects: &[(&str, &str)]) -> Result<()> {
        let fresh: Vec<(String, String, String)> = {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            objects
                .iter()
                .filter(|(os, _)| !known.contains(&(kind, os.to_string())))
                .map(|(os, p)| (ec2_id(kind, os), os.to_string(), p.to_string()))
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        records::remember(&self.db, kind, &fresh).await?;
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for (_, os, _) in fresh {
            known.insert((kind, os));
        }
        Ok(())
    }

    /// The OpenStack id behind an EC2 id of this kind (malformed → `.Malformed`,
    /// unknown → `.NotFound`).
    pub(crate) async fn resolve(&self, kind: Kind, id: &str) -> Result<String> {
        kind.check(id)?;
        records::os_id(&self.db, kind, id)
            .await?
            .ok_or_else(|| kind.not_found(id))
    }

    pub(crate) async fn lookup(&self, ctx: &RequestContext) -> Result<Lookup> {
        let project = Self::project(ctx)?;
        let groups = self
            .project_groups(ctx)
            .await?
            .into_iter()
            .map(|g| (g.name, g.id))
            .collect();
        Ok(Lookup {
            account: ids_account(project),
            groups,
        })
    }

    /// The project's instances as EC2 sees them, remembered.
    async fn instances(&self, ctx: &RequestContext) -> Result<Vec<Server>> {
        let servers = self
            .compute
            .project_servers(ctx, self.terminated_since())
            .await?;
        let pairs: Vec<(&str, &str)> = servers
            .iter()
            .map(|s| (s.id.as_str(), s.project_id.as_str()))
            .collect();
        self.remember(Kind::Instance, &pairs).await?;
        Ok(servers)
    }

    /// One instance of the caller's project, terminated ones included.
    async fn instance(&self, ctx: &RequestContext, id: &str) -> Result<Server> {
        let os = self.resolve(Kind::Instance, id).await?;
        match self.compute.get_server(ctx, &os).await {
            Ok(s) if Some(s.project_id.as_str()) == ctx.project_id() => Ok(s),
            Ok(_) => Err(Kind::Instance.not_found(id)),
            Err(ferrostack_compute::Error::NotFound(_)) => {
                // Deleted servers are gone for Nova but stay visible as terminated.
                self.compute
                    .project_servers(ctx, self.terminated_since())
                    .await?
                    .into_iter()
                    .find(|s| s.id == os)
                    .ok_or_else(|| Kind::Instance.not_found(id))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn view(&self, s: &Server, a: &Attrs, l: &Lookup) -> Instance {
        let id = ec2_id(Kind::Instance, &s.id);
        let zone = s
            .availability_zone
            .clone()
            .unwrap_or_else(|| self.default_zone());
        let groups: Vec<Group> = s
            .doc
            .security_groups
            .iter()
            .map(|name| Group {
                group_id: l
                    .groups
                    .get(name)
                    .map(|g| ec2_id(Kind::SecurityGroup, g))
                    .unwrap_or_default(),
                group_name: name.clone(),
            })
            .collect();
        let launch_us = s.launched_at_us.unwrap_or(s.created_at_us);
        let vifs = if s.deleted {
            &[][..]
        } else {
            &s.doc.addresses[..]
        };
        let mut enis = Vec::new();
        for (index, vif) in vifs.iter().enumerate() {
            let v4: Vec<&ferrostack_network::server_ports::FixedIp> =
                vif.fixed_ips.iter().filter(|f| f.version == 4).collect();
            let Some(first) = v4.first() else { continue };
            let subnet = ec2_id(Kind::Subnet, &first.subnet_id);
            let vpc = ec2_id(Kind::Vpc, &vif.network_id);
            enis.push(Eni {
                network_interface_id: ec2_id(Kind::NetworkInterface, &vif.port_id),
                subnet_id: subnet,
                vpc_id: vpc,
                description: String::new(),
                owner_id: l.account.clone(),
                status: "in-use",
                mac_address: vif.mac_address.clone(),
                private_ip_address: first.ip_address.clone(),
                private_dns_name: private_dns(&first.ip_address, &self.settings.region),
                source_dest_check: a.source_dest_check,
                interface_type: "interface",
                group_set: groups.clone().into(),
                attachment: EniAttachment {
                    attachment_id: format!(
                        "eni-attach-{}",
                        &ec2_id(Kind::NetworkInterface, &vif.port_id)[4..]
                    ),
                    device_index: index as i32,
                    status: "attached",
                    attach_time: iso_us(launch_us),
                    delete_on_termination: true,
                    network_card_index: 0,
                },
                private_ip_addresses_set: v4
                    .iter()
                    .enumerate()
                    .map(|(i, f)| PrivateIp {
                        private_ip_address: f.ip_address.clone(),
                        private_dns_name: private_dns(&f.ip_address, &self.settings.region),
                        primary: i == 0,
                    })
                    .collect::<Vec<_>>()
                    .into(),
                ipv6_addresses_set: Items::default(),
            });
        }
        let primary = enis.first();
        let tags: Vec<(String, String)> = s
            .doc
            .metadata
            .iter()
            .filter(|(k, _)| !k.starts_with("aws:") || k.as_str() == "aws:ec2launchtemplate:id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Instance {
            instance_id: id.clone(),
            image_id: ec2_id(Kind::Image, &s.image_ref),
            instance_state: state_of(s),
            private_dns_name: primary
                .map(|e| e.private_dns_name.clone())
                .unwrap_or_default(),
            dns_name: String::new(),
            reason: String::new(),
            key_name: s.doc.key_name.clone(),
            ami_launch_index: s.launch_index,
            product_codes: Items::default(),
            instance_type: s.doc.flavor.name.clone(),
            launch_time: iso_us(launch_us),
            placement: Placement {
                availability_zone: zone,
                group_name: String::new(),
                tenancy: "default",
            },
            monitoring: Monitoring { state: "disabled" },
            subnet_id: primary.map(|e| e.subnet_id.clone()),
            vpc_id: primary.map(|e| e.vpc_id.clone()),
            private_ip_address: primary.map(|e| e.private_ip_address.clone()),
            source_dest_check: a.source_dest_check,
            group_set: groups.into(),
            state_reason: state_reason(s),
            architecture: "x86_64",
            root_device_type: "ebs",
            root_device_name: "/dev/vda",
            block_device_mapping: if s.deleted {
                Items::default()
            } else {
                vec![InstanceBdm {
                    device_name: "/dev/vda".into(),
                    ebs: EbsDevice {
                        volume_id: ec2_id(Kind::Volume, &s.id),
                        status: "attached",
                        attach_time: iso_us(launch_us),
                        delete_on_termination: true,
                    },
                }]
                .into()
            },
            virtualization_type: "hvm",
            client_token: a.client_token.clone(),
            tag_set: tag_items(tags),
            hypervisor: "xen",
            network_interface_set: enis.into(),
            ebs_optimized: false,
            ena_support: false,
            cpu_options: CpuOptions {
                core_count: s.vcpus.max(1),
                threads_per_core: 1,
            },
            capacity_reservation_specification: CapacityReservation {
                capacity_reservation_preference: "open",
            },
            hibernation_options: Configured { configured: false },
            metadata_options: MetadataOptions {
                state: "applied",
                http_tokens: a.http_tokens.clone(),
                http_put_response_hop_limit: 1,
                http_endpoint: "enabled",
                http_protocol_ipv6: "disabled",
                instance_metadata_tags: "disabled",
            },
            enclave_options: Enabled { enabled: false },
            boot_mode: "legacy-bios",
            platform_details: "Linux/UNIX",
            usage_operation: "RunInstances",
            usage_operation_update_time: iso_us(launch_us),
            private_dns_name_options: PrivateDnsNameOptions {
                hostname_type: "ip-name",
                enable_resource_name_dns_a_record: false,
                enable_resource_name_dns_aaaa_record: false,
            },
            maintenance_options: MaintenanceOptions {
                auto_recovery: "default",
            },
            current_instance_boot_mode: "legacy-bios",
        }
    }

    /// Groups servers into reservations (Nova's reservation_id), in order.
    fn reservations(
        &self,
        servers: &[Server],
        views: Vec<Instance>,
        account: &str,
    ) -> Vec<Reservation> {
        let mut out: Vec<Reservation> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (s, v) in servers.iter().zip(views) {
            match index.get(s.reservation_id.as_str()) {
                Some(&i) => out[i].instances_set.item.push(v),
                None => {
                    index.insert(&s.reservation_id, out.len());
                    out.push(Reservation {
                        reservation_id: s.reservation_id.clone(),
                        owner_id: account.to_string(),
                        group_set: Items::default(),
                        instances_set: vec![v].into(),
                    });
                }
            }
        }
        out
    }

    fn instance_filter(f: &Filter, v: &Instance, s: &Server) -> Result<bool> {
        let name = f.name.as_str();
        if let Some(key) = name.strip_prefix("tag:") {
            return Ok(v
                .tag_set
                .item
                .iter()
                .any(|t| t.key == key && f.matches(&t.value)));
        }
        let one = |x: &str| f.matches(x);
        Ok(match name {
            "instance-id" => one(&v.instance_id),
            "instance-state-name" => one(v.instance_state.name),
            "instance-state-code" => one(&v.instance_state.code.to_string()),
            "image-id" => one(&v.image_id),
            "instance-type" => one(&v.instance_type),
            "key-name" => v.key_name.as_deref().is_some_and(one),
            "availability-zone" => one(&v.placement.availability_zone),
            "reservation-id" => one(&s.reservation_id),
            "subnet-id" => v.subnet_id.as_deref().is_some_and(one),
            "vpc-id" => v.vpc_id.as_deref().is_some_and(one),
            "private-ip-address" => v.private_ip_address.as_deref().is_some_and(one),
            "private-dns-name" => one(&v.private_dns_name),
            "client-token" => one(&v.client_token),
            "tag-key" => v.tag_set.item.iter().any(|t| f.matches(&t.key)),
            "tag-value" => v.tag_set.item.iter().any(|t| f.matches(&t.value)),
            "instance.group-id" | "group-id" => v.group_set.item.iter().any(|g| one(&g.group_id)),
            "instance.group-name" | "group-name" => {
                v.group_set.item.iter().any(|g| one(&g.group_name))
            }
            "network-interface.network-interface-id" => v
                .network_interface_set
                .item
                .iter()
                .any(|e| one(&e.network_interface_id)),
            "architecture" => one(v.architecture),
            "root-device-type" => one(v.root_device_type),
            "launch-index" => one(&v.ami_launch_index.to_string()),
            "owner-id" => one(&ids_account(&s.project_id)),
            other => {
                return Err(Error::invalid_value(
                    "Filter",
                    other,
                    "The filter is invalid.",
                ));
            }
        })
    }

    /// Views of the instances asked for (all, or by id: an unknown id is an error,
    /// as AWS).
    async fn select(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        filters: &[Filter],
    ) -> Result<(Vec<Server>, Vec<Instance>, Lookup)> {
        let mut servers = self.instances(ctx).await?;
        if !ids.is_empty() {
            let mut wanted = Vec::new();
            for id in ids {
                Kind::Instance.check(id)?;
                match servers
                    .iter()
                    .position(|s| ec2_id(Kind::Instance, &s.id) == *id)
                {
                    Some(i) => wanted.push(i),
                    None => return Err(Kind::Instance.not_found(id)),
                }
            }
            wanted.sort_unstable();
            wanted.dedup();
            servers = wanted.into_iter().map(|i| servers[i].clone()).collect();
        }
        let lookup = self.lookup(ctx).await?;
        let id_refs: Vec<&str> = servers.iter().map(|s| s.id.as_str()).collect();
        let attrs = records::attrs(&self.db, &id_refs).await?;
        let default = Attrs::default();
        let mut keep_s = Vec::with_capacity(servers.len());
        let mut keep_v = Vec::with_capacity(servers.len());
        'next: for s in servers {
            let v = self.view(&s, attrs.get(&s.id).unwrap_or(&default), &lookup);
            for f in filters {
                if !Self::instance_filter(f, &v, &s)? {
                    continue 'next;
                }
            }
            keep_s.push(s);
            keep_v.push(v);
        }
        Ok((keep_s, keep_v, lookup))
    }

    pub(crate) async fn describe_instances(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        filters: &[Filter],
        paging: &Paging,
    ) -> Result<Reply> {
        let (servers, views, lookup) = self.select(ctx, ids, filters).await?;
        let reservations = self.reservations(&servers, views, &lookup.account);
        let (page, next) = page(
            reservations,
            paging.max_results,
            paging.next_token.as_deref(),
        )?;
        Ok(Reply::Instances(InstancesReply {
            reservation_set: page.into(),
            next_token: next,
        }))
    }

    pub(crate) async fn describe_instance_status(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        filters: &[Filter],
        include_all: bool,
        paging: &Paging,
    ) -> Result<Reply> {
        let (servers, views, _) = self.select(ctx, ids, &[]).await?;
        let mut out = Vec::new();
        for (s, v) in servers.iter().zip(views) {
            let running = v.instance_state.code == 16;
            if !include_all && !running {
                continue;
            }
            if s.deleted && ids.is_empty() {
                continue;
            }
            let summary = |ok: bool| StatusSummary {
                status: if !running {
                    "not-applicable"
                } else if ok {
                    "ok"
                } else {
                    "initializing"
                },
                details: if running {
                    vec![StatusDetail {
                        name: "reachability",
                        status: if ok { "passed" } else { "initializing" },
                    }]
                    .into()
                } else {
                    Items::default()
                },
            };
            let ok = running && s.power_state == 1;
            let st = InstanceStatus {
                instance_id: v.instance_id.clone(),
                availability_zone: v.placement.availability_zone.clone(),
                instance_state: v.instance_state.clone(),
                system_status: summary(ok),
                instance_status: summary(ok),
                attached_ebs_status: summary(ok),
                events_set: Items::default(),
            };
            let keep = all_match(filters, |f| {
                Some(match f.name.as_str() {
                    "availability-zone" => f.matches(&st.availability_zone),
                    "instance-state-name" => f.matches(st.instance_state.name),
                    "instance-state-code" => f.matches(&st.instance_state.code.to_string()),
                    "instance-status.status" => f.matches(st.instance_status.status),
                    "system-status.status" => f.matches(st.system_status.status),
                    _ => return None,
                })
            })?;
            if keep {
                out.push(st);
            }
        }
        let (page, next) = page(out, paging.max_results, paging.next_token.as_deref())?;
        Ok(Reply::InstanceStatus(InstanceStatusReply {
            instance_status_set: page.into(),
            next_token: next,
        }))
    }

    pub(crate) async fn run_instances(
        &self,
        ctx: &RequestContext,
        r: RunRequest,
        request_id: &str,
    ) -> Result<Reply> {
        let project = Self::project(ctx)?.to_string();
        let hash = hash_request(&r);
        // ClientToken: the same token answers the same reservation, found by key.
        if let Some(token) = &r.client_token {
            loop {
                match records::client_token(&self.db, &project, token).await? {
                    Some(row) if row.params_hash != hash => {
                        return Err(Error::new(
                            400,
                            "IdempotentParameterMismatch",
                            "The client token you have provided is associated with a resource that is already deleted, or the request parameters differ.",
                        ));
                    }
                    Some(row) if !row.reservation_id.is_empty() => {
                        return self.reservation_reply(ctx, &row.reservation_id).await;
                    }
                    Some(row) => {
                        // Claimed by a request still running, or one that died.
                        let stale = now_us() - 120_000_000;
                        if row.created_at_us < stale
                            && records::retake_token(
                                &self.db,
                                &project,
                                token,
                                &hash,
                                stale,
                                now_us(),
                            )
                            .await?
                        {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                    None => {
                        if records::claim_token(&self.db, &project, token, &hash, now_us()).await? {
                            break;
                        }
                    }
                }
            }
        }
        let result = self.launch(ctx, &r, request_id).await;
        if let Some(token) = &r.client_token {
            match &result {
                Ok((reservation, _)) => {
                    records::settle_token(&self.db, &project, token, reservation).await?
                }
                Err(_) => records::release_token(&self.db, &project, token).await?,
            }
        }
        let (_, servers) = result?;
        let attrs = Attrs {
            disable_api_termination: r.disable_api_termination,
            disable_api_stop: r.disable_api_stop,
            source_dest_check: true,
            shutdown_behavior: r.shutdown_behavior.clone(),
            client_token: r.client_token.clone().unwrap_or_default(),
            http_tokens: r.http_tokens.clone(),
        };
        let pairs: Vec<(&str, &str)> = servers
            .iter()
            .map(|s| (s.id.as_str(), s.project_id.as_str()))
            .collect();
        self.remember(Kind::Instance, &pairs).await?;
        let volumes: Vec<(&str, &str)> = pairs.clone();
        self.remember(Kind::Volume, &volumes).await?;
        for s in &servers {
            records::put_attrs(&self.db, &s.id, &attrs).await?;
            if !r.volume_tags.is_empty() {
                records::put_tags(
                    &self.db,
                    &s.project_id,
                    &ec2_id(Kind::Volume, &s.id),
                    &r.volume_tags,
                )
                .await?;
            }
        }
        let lookup = self.lookup(ctx).await?;
        let views: Vec<Instance> = servers
            .iter()
            .map(|s| self.view(s, &attrs, &lookup))
            .collect();
        let mut res = self.reservations(&servers, views, &lookup.account);
        Ok(Reply::Reservation(res.remove(0)))
    }

    async fn reservation_reply(&self, ctx: &RequestContext, reservation: &str) -> Result<Reply> {
        let servers: Vec<Server> = self
            .instances(ctx)
            .await?
            .into_iter()
            .filter(|s| s.reservation_id == reservation)
            .collect();
        if servers.is_empty() {
            return Err(Error::new(
                400,
                "IdempotentParameterMismatch",
                "The client token you have provided is associated with a resource that is already deleted.",
            ));
        }
        let lookup = self.lookup(ctx).await?;
        let ids: Vec<&str> = servers.iter().map(|s| s.id.as_str()).collect();
        let attrs = records::attrs(&self.db, &ids).await?;
        let default = Attrs::default();
        let views = servers
            .iter()
            .map(|s| self.view(s, attrs.get(&s.id).unwrap_or(&default), &lookup))
            .collect();
        let mut res = self.reservations(&servers, views, &lookup.account);
        Ok(Reply::Reservation(res.remove(0)))
    }

    /// Creates the servers of a RunInstances.
    async fn launch(
        &self,
        ctx: &RequestContext,
        r: &RunRequest,
        request_id: &str,
    ) -> Result<(String, Vec<Server>)> {
        let image = self.resolve(Kind::Image, &r.image_id).await?;
        let flavor = self.flavor_by_name(ctx, &r.instance_type).await?;
        if let Some(size) = r.root_size
            && size != flavor.root_gb.max(1)
        {
            return Err(Error::new(
                400,
                "InvalidBlockDeviceMapping",
                format!(
                    "Root disks have the size of their instance type: {} has {} GiB, {size} GiB was asked.",
                    flavor.name,
                    flavor.root_gb.max(1)
                ),
            ));
        }
        let mut group_names: Vec<String> = r.security_groups.clone();
        if !r.security_group_ids.is_empty() {
            let groups = self.project_groups(ctx).await?;
            for gid in &r.security_group_ids {
                Kind::SecurityGroup.check(gid)?;
                let g = groups
                    .iter()
                    .find(|g| ec2_id(Kind::SecurityGroup, &g.id) == *gid)
                    .ok_or_else(|| Kind::SecurityGroup.not_found(gid))?;
                group_names.push(g.name.clone());
            }
        }
        if group_names.is_empty() {
            group_names.push("default".into());
        }
        let networks = match &r.subnet_id {
            Some(sub) => {
                Kind::Subnet.check(sub)?;
                let subnet = self
                    .visible_subnets(ctx)
                    .await?
                    .into_iter()
                    .find(|s| ec2_id(Kind::Subnet, &s.id) == *sub)
                    .ok_or_else(|| Kind::Subnet.not_found(sub))?;
                let fixed_ip = match &r.private_ip {
                    Some(ip) => Some(
                        ip.parse()
                            .map_err(|_| Error::invalid_value("PrivateIpAddress", ip, ""))?,
                    ),
                    None => None,
                };
                NetworkRequest::List(vec![RequestedNetwork {
                    network_id: Some(subnet.network_id),
                    port_id: None,
                    fixed_ip,
                    tag: None,
                }])
            }
            None => self.default_network_request(ctx).await?,
        };
        let mut metadata: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &r.tags {
            metadata.insert(k.clone(), v.clone());
        }
        let name = r
            .tags
            .iter()
            .find(|(k, _)| k == "Name")
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty());
        let req = CreateRequest {
            name: name.clone().unwrap_or_else(|| "ec2-instance".into()),
            image_ref: Some(image),
            flavor_ref: flavor.id.clone(),
            metadata,
            personality: vec![],
            user_data: r.user_data.clone(),
            key_name: r.key_name.clone(),
            networks,
            security_groups: group_names,
            availability_zone: r.availability_zone.clone(),
            config_drive: false,
            admin_pass: None,
            min_count: r.min_count,
            max_count: r.max_count,
            return_reservation_id: false,
            description: None,
            tags: vec![],
            hostname: None,
            access_ipv4: String::new(),
            access_ipv6: String::new(),
            scheduler_hints: Default::default(),
        };
        if let Some(k) = &r.key_name
            && self
                .compute
                .keypair_public_key(&ctx.user_id, k)
                .await?
                .is_none()
        {
            return Err(Error::not_found("InvalidKeyPair.NotFound", "key pair", k));
        }
        let created = self
            .compute
            .create_servers(ctx, req, request_id)
            .await
            .map_err(|e| match e {
                ferrostack_compute::Error::BadRequest(m) if m.contains("availability zone") => {
                    Error::new(400, "InvalidParameterValue", m)
                }
                ferrostack_compute::Error::BadRequest(m)
                    if m.contains("Security group")
                        || m.contains("security group")
                        || m.contains("security_group") =>
                {
                    Error::new(400, "InvalidGroup.NotFound", m)
                }
                other => other.into(),
            })?;
        let mut servers = created.servers;
        // Unnamed instances are named by their EC2 id (what `openstack server list` shows).
        if name.is_none() {
            for s in servers.iter_mut() {
                let update = ferrostack_compute::servers::ops::ServerUpdate {
                    name: Some(ec2_id(Kind::Instance, &s.id)),
                    ..Default::default()
                };
                if let Ok(updated) = self.compute.update_server(ctx, &s.id, update).await {
                    *s = updated;
                }
            }
        }
        Ok((created.reservation_id, servers))
    }

    pub(crate) async fn terminate_instances(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        request_id: &str,
    ) -> Result<Reply> {
        let mut targets = Vec::new();
        for id in ids {
            targets.push(self.instance(ctx, id).await?);
        }
        let attrs = records::attrs(
            &self.db,
            &targets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        )
        .await?;
        for s in &targets {
            if attrs.get(&s.id).is_some_and(|a| a.disable_api_termination) && !s.deleted {
                return Err(Error::not_permitted(format!(
                    "The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.",
                    ec2_id(Kind::Instance, &s.id)
                )));
            }
        }
        let mut out = Vec::new();
        for s in targets {
            let previous = state_of(&s);
            if !s.deleted && s.task_state != Some(TaskState::Deleting) {
                match self.compute.delete_server(ctx, &s.id, request_id).await {
                    Ok(()) | Err(ferrostack_compute::Error::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let current = if previous.code == 48 {
                previous.clone()
            } else {
                State {
                    code: 32,
                    name: "shutting-down",
                }
            };
            out.push(StateChange {
                instance_id: ec2_id(Kind::Instance, &s.id),
                current_state: current,
                previous_state: previous,
            });
        }
        Ok(Reply::StateChanges(StateChangesReply {
            instances_set: out.into(),
        }))
    }

    pub(crate) async fn power(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        what: Power,
        request_id: &str,
    ) -> Result<Reply> {
        let mut targets = Vec::new();
        for id in ids {
            let s = self.instance(ctx, id).await?;
            if s.deleted {
                return Err(Error::incorrect_state(format!(
                    "The instance '{id}' is not in a state from which it can be {}.",
                    match what {
                        Power::Stop => "stopped",
                        Power::Start => "started",
                        Power::Reboot => "rebooted",
                    }
                )));
            }
            targets.push(s);
        }
        if what == Power::Stop {
            let attrs = records::attrs(
                &self.db,
                &targets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            )
            .await?;
            for s in &targets {
                if attrs.get(&s.id).is_some_and(|a| a.disable_api_stop) {
                    return Err(Error::not_permitted(format!(
                        "The instance '{}' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.",
                        ec2_id(Kind::Instance, &s.id)
                    )));
                }
            }
        }
        let mut out = Vec::new();
        for s in targets {
            let previous = state_of(&s);
            let action = match (what, previous.code) {
                (Power::Stop, 16) => Some(NovaAction::Stop),
                (Power::Stop, 80 | 64) => None,
                (Power::Start, 80) if s.vm_state == VmState::Stopped => Some(NovaAction::Start),
                (Power::Start, 80) if s.vm_state == VmState::Paused => Some(NovaAction::Unpause),
                (Power::Start, 80) if s.vm_state == VmState::Suspended => Some(NovaAction::Resume),
                (Power::Start, 16 | 0) => None,
                (Power::Reboot, 16) => Some(NovaAction::Reboot { hard: false }),
                _ => {
                    return Err(Error::incorrect_state(format!(
                        "The instance '{}' is not in a state from which it can be {}.",
                        ec2_id(Kind::Instance, &s.id),
                        match what {
                            Power::Stop => "stopped",
                            Power::Start => "started",
                            Power::Reboot => "rebooted",
                        }
                    )));
                }
            };
            let acted = action.is_some();
            if let Some(a) = action {
                self.compute
                    .server_action(ctx, &s.id, a, request_id)
                    .await?;
            }
            if what == Power::Reboot {
                continue;
            }
            let current = match (what, acted) {
                (Power::Stop, true) => State {
                    code: 64,
                    name: "stopping",
                },
                (Power::Start, true) => State {
                    code: 0,
                    name: "pending",
                },
                _ => previous.clone(),
            };
            out.push(StateChange {
                instance_id: ec2_id(Kind::Instance, &s.id),
                current_state: current,
                previous_state: previous,
            });
        }
        Ok(match what {
            Power::Reboot => Reply::Return(ReturnReply { ret: true }),
            _ => Reply::StateChanges(StateChangesReply {
                instances_set: out.into(),
            }),
        })
    }

    pub(crate) async fn console_output(&self, ctx: &RequestContext, id: &str) -> Result<Reply> {
        let s = self.instance(ctx, id).await?;
        let text = if s.deleted {
            String::new()
        } else {
            match self.compute.console_output(ctx, &s.id, None).await {
                Ok(t) => t,
                Err(ferrostack_compute::Error::Conflict(_)) => String::new(),
                Err(e) => return Err(e.into()),
            }
        };
        // AWS returns the last 64 KB.
        let bytes = text.as_bytes();
        let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
        Ok(Reply::ConsoleOutput(ConsoleOutputReply {
            instance_id: id.to_string(),
            timestamp: iso_us(now_us()),
            output: base64::engine::general_purpose::STANDARD.encode(tail),
        }))
    }

    pub(crate) async fn password_data(&self, ctx: &RequestContext, id: &str) -> Result<Reply> {
        let s = self.instance(ctx, id).await?;
        let data = if s.deleted {
            String::new()
        } else {
            self.compute.server_password(ctx, &s.id, false).await?
        };
        Ok(Reply::PasswordData(PasswordDataReply {
            instance_id: id.to_string(),
            timestamp: iso_us(now_us()),
            password_data: data,
        }))
    }

    pub(crate) async fn describe_instance_attribute(
        &self,
        ctx: &RequestContext,
        id: &str,
        attribute: InstanceAttr,
    ) -> Result<Reply> {
        let s = self.instance(ctx, id).await?;
        let a = records::attrs(&self.db, &[s.id.as_str()])
            .await?
            .remove(&s.id)
            .unwrap_or_default();
        let lookup = self.lookup(ctx).await?;
        let v = self.view(&s, &a, &lookup);
        let mut r = InstanceAttributeReply {
            instance_id: id.to_string(),
            ..Default::default()
        };
        use InstanceAttr as A;
        match attribute {
            A::InstanceType => {
                r.instance_type = Some(Value {
                    value: v.instance_type,
                })
            }
            A::Kernel => r.kernel = Some(Items::default()),
            A::Ramdisk => r.ramdisk = Some(Items::default()),
            A::UserData => {
                r.user_data = Some(UserDataValue {
                    value: s.doc.user_data.clone().filter(|u| !u.is_empty()),
                })
            }
            A::DisableApiTermination => {
                r.disable_api_termination = Some(Value {
                    value: a.disable_api_termination,
                })
            }
            A::InstanceInitiatedShutdownBehavior => {
                r.instance_initiated_shutdown_behavior = Some(Value {
                    value: a.shutdown_behavior.clone(),
                })
            }
            A::RootDeviceName => r.root_device_name = Some(Value { value: "/dev/vda" }),
            A::BlockDeviceMapping => r.block_device_mapping = Some(v.block_device_mapping),
            A::ProductCodes => r.product_codes = Some(Items::default()),
            A::SourceDestCheck => {
                r.source_dest_check = Some(Value {
                    value: a.source_dest_check,
                })
            }
            A::GroupSet => r.group_set = Some(v.group_set),
            A::EbsOptimized => r.ebs_optimized = Some(Value { value: false }),
            A::SriovNetSupport => r.sriov_net_support = Some(Items::default()),
            A::EnaSupport => r.ena_support = Some(Value { value: false }),
            A::EnclaveOptions => r.enclave_options = Some(Enabled { enabled: false }),
            A::DisableApiStop => {
                r.disable_api_stop = Some(Value {
                    value: a.disable_api_stop,
                })
            }
        }
        Ok(Reply::InstanceAttribute(Box::new(r)))
    }

    pub(crate) async fn modify_instance_attribute(
        &self,
        ctx: &RequestContext,
        id: &str,
        change: AttrChange,
    ) -> Result<Reply> {
        let s = self.instance(ctx, id).await?;
        if !(ctx.is_admin() || ctx.has_role("member")) {
            return Err(Error::unauthorized());
        }
        if s.deleted {
            return Err(Error::incorrect_state(format!(
                "The instance '{id}' is terminated."
            )));
        }
        let mut a = records::attrs(&self.db, &[s.id.as_str()])
            .await?
            .remove(&s.id)
            .unwrap_or_default();
        match change {
            AttrChange::DisableApiTermination(b) => a.disable_api_termination = b,
            AttrChange::DisableApiStop(b) => a.disable_api_stop = b,
            AttrChange::SourceDestCheck(b) => a.source_dest_check = b,
            AttrChange::ShutdownBehavior(b) => a.shutdown_behavior = b,
            AttrChange::EbsOptimized(false) => {}
            AttrChange::EbsOptimized(true) => {
                return Err(Error::unsupported(
                    "EBS optimization is not available in this cloud.",
                ));
            }
            AttrChange::InstanceType(t) => {
                if t != s.doc.flavor.name {
                    return Err(Error::unsupported(
                        "Changing the instance type is done with Nova's resize here (openstack server resize).",
                    ));
                }
            }
            AttrChange::UserData(_) => {
                return Err(Error::unsupported(
                    "User data cannot be changed after launch in this cloud (Nova keeps it from create or rebuild).",
                ));
            }
            AttrChange::Groups(_) => {
                return Err(Error::unsupported(
                    "Changing an instance's security groups is done through Neutron ports here.",
                ));
            }
        }
        records::put_attrs(&self.db, &s.id, &a).await?;
        Ok(Reply::Return(ReturnReply { ret: true }))
    }
}

/// AWS's private DNS name: `ec2.internal` in us-east-1, `<region>.compute.internal`
/// elsewhere.
fn private_dns(ip: &str, region: &str) -> String {
    let domain = if region == "us-east-1" {
        "ec2.internal".to_string()
    } else {
        format!("{}.compute.internal", region.to_ascii_lowercase())
    };
    format!("ip-{}.{domain}", ip.replace('.', "-"))
}

pub(crate) fn ids_account(project: &str) -> String {
    crate::ids::account_id(project)
}
