//! What compute asks of the network: check a server's requested networks at API
//! time (Nova's `validate_networks`), give the server its ports when it is built
//! (idempotent per server id: a restarted build finds the ports it made), and take
//! them back when it is deleted (ports compute created are deleted, ports the user
//! passed in are unbound).

use std::net::IpAddr;

use ferrostack_core::RequestContext;
use ferrostack_core::time::unix_now;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::error::Error;
use crate::ip::{self, Cidr};
use crate::model::{Network, Port, Subnet};
use crate::ports::{IpPlan, IpReq};
use crate::records::{self, Who};
use crate::service::{Networks, network_not_found, port_not_found};

/// The `networks` of a server create request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkRequest {
    /// `"auto"` (or no `networks` below 2.37): the project's one usable network.
    Auto,
    /// `"none"`: no interface.
    None,
    List(Vec<RequestedNetwork>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedNetwork {
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip: Option<IpAddr>,
    pub tag: Option<String>,
}

/// A server's ports, to be made (or found) at build time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allocation {
    pub project_id: String,
    pub server_id: String,
    pub host: String,
    pub availability_zone: String,
    pub request: NetworkRequest,
    /// Security group names or ids (`[]` = the project's `default`).
    pub security_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
    /// 4 or 6.
    pub version: u8,
}

/// One attached port, as compute shows it (`addresses`) and hands to a driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vif {
    pub port_id: String,
    pub network_id: String,
    pub network_name: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub tag: Option<String>,
}

/// A port with what a guest needs to configure it (see [`Networks::nic_details`]).
#[derive(Debug, Clone)]
pub struct NicDetail {
    pub vif: Vif,
    pub mtu: Option<u32>,
    /// Each fixed address with its subnet.
    pub addresses: Vec<(String, Subnet)>,
}

/// Nova's answer when `auto` finds several networks.
fn ambiguous() -> Error {
    Error::conflict(
        "NetworkAmbiguous",
        "Multiple possible networks found, use a Network ID to be more specific.",
    )
}

fn vif_of(p: &Port, network_name: &str, tag: Option<String>) -> Vif {
    Vif {
        port_id: p.id.clone(),
        network_id: p.network_id.clone(),
        network_name: network_name.to_string(),
        mac_address: p.mac_address.clone(),
        fixed_ips: p
            .fixed_ips
            .iter()
            .map(|f| FixedIp {
                subnet_id: f.subnet_id.clone(),
                ip_address: f.ip_address.clone(),
                version: if f.ip_address.contains(':') { 6 } else { 4 },
            })
            .collect(),
        tag,
    }
}

/// One entry of a server's request, resolved: a port to bind or a network to join.
struct Slot {
    network_id: Option<String>,
    port_id: Option<String>,
    fixed_ip: Option<IpAddr>,
    tag: Option<String>,
}

impl Networks {
    /// The networks `auto` may choose from: the project's own and the shared ones,
    /// external networks left out (Nova's `_get_available_networks`).
    async fn usable_networks(&self, project: &str) -> Result<Vec<Network>> {
        Ok(
            records::networks(&mut *self.conn().await?, Who::Project(project))
                .await?
                .into_iter()
                .filter(|n| !n.external && (n.project_id == project || n.shared))
                .collect(),
        )
    }

    async fn auto_network(&self, project: &str) -> Result<Network> {
        let mut nets = self.usable_networks(project).await?;
        match nets.len() {
            0 => Err(Error::invalid(
                "UnableToAutoAllocateNetwork",
                format!("Unable to automatically allocate a network for project {project}"),
            )),
            1 => Ok(nets.remove(0)),
            _ => Err(ambiguous()),
        }
    }

    /// The network EC2 calls the project's default VPC: the one `Auto` picks when
    /// there is one; otherwise the project's own oldest network, else the oldest
    /// shared one. `None` when the project can use no network at all.
    pub async fn default_network(&self, project: &str) -> Result<Option<Network>> {
        let mut nets = self.usable_networks(project).await?;
        if nets.len() <= 1 {
            return Ok(nets.pop());
        }
        nets.sort_by(|a, b| {
            (a.project_id != project, a.created_at, &a.id).cmp(&(
                b.project_id != project,
                b.created_at,
                &b.id,
            ))
        });
        Ok(nets.into_iter().next())
    }

    /// A network `project` may attach to (its own or shared; admins any), or 404.
    async fn attachable_network(&self, project: &str, admin: bool, id: &str) -> Result<Network> {
        let n = records::network(&mut *self.conn().await?, id)
            .await?
            .ok_or_else(|| network_not_found(id))?;
        if admin || n.project_id == project || n.shared {
            Ok(n)
        } else {
            Err(network_not_found(id))
        }
    }

    fn slots(req: &NetworkRequest) -> Vec<Slot> {
        match req {
            NetworkRequest::None | NetworkRequest::Auto => Vec::new(),
            NetworkRequest::List(list) => list
                .iter()
                .map(|r| Slot {
                    network_id: r.network_id.clone(),
                    port_id: r.port_id.clone(),
                    fixed_ip: r.fixed_ip,
                    tag: r.tag.clone(),
                })
                .collect(),
        }
    }

    /// Checks the request for `ctx`'s project, `count` servers at once: the networks
    /// exist and are the project's or shared, ports exist, belong to the project and
    /// are free (and `count` is 1 when ports are given), fixed IPs lie in a subnet of
    /// their network and are free, and `Auto` finds exactly one network.
    pub async fn check_request(
        &self,
        ctx: &RequestContext,
        req: &NetworkRequest,
        count: usize,
    ) -> Result<()> {
        let project = ctx.project_id().unwrap_or_default();
        if *req == NetworkRequest::Auto {
            self.auto_network(project).await?;
            return Ok(());
        }
        let mut conn = self.conn().await?;
        for slot in Self::slots(req) {
            if let Some(port_id) = &slot.port_id {
                let p = records::port(&mut conn, port_id)
                    .await?
                    .filter(|p| ctx.is_admin() || p.project_id == project)
                    .ok_or_else(|| port_not_found(port_id))?;
                if !p.device_id.is_empty() {
                    return Err(Error::conflict(
                        "PortInUse",
                        format!("Port {port_id} is still in use."),
                    ));
                }
                if count > 1 {
                    return Err(Error::invalid(
                        "InvalidRequest",
                        "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.",
                    ));
                }
                continue;
            }
            let Some(net_id) = &slot.network_id else {
                return Err(Error::invalid(
                    "InvalidRequest",
                    "Bad networks format: network uuid is not in proper format",
                ));
            };
            let net = self
                .attachable_network(project, ctx.is_admin(), net_id)
                .await?;
            if let Some(addr) = slot.fixed_ip {
                if count > 1 {
                    return Err(Error::invalid(
                        "InvalidRequest",
                        "max_count cannot be greater than 1 if an fixed_ip is specified.",
                    ));
                }
                let subnets = records::subnets_of(&mut conn, &net.id).await?;
                let inside = subnets
                    .iter()
                    .any(|s| Cidr::parse(&s.cidr).is_ok_and(|c| c.contains_ip(addr)));
                if !inside {
                    return Err(Error::invalid(
                        "FixedIpInvalidOnHost",
                        format!(
                            "Fixed IP {addr} is not a valid ip address for network {}.",
                            net.id
                        ),
                    ));
                }
                if let Some(holder) =
                    records::ip_holder(&mut conn, &net.id, &addr.to_string()).await?
                {
                    let device = records::port(&mut conn, &holder)
                        .await?
                        .map(|p| p.device_id)
                        .unwrap_or_default();
                    return Err(Error::conflict(
                        "FixedIpAlreadyInUse",
                        format!("Fixed IP address {addr} is already in use on instance {device}."),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the security groups a server create names, as Nova does at API time
    /// (`_check_requested_secgroups` -> `security_group_api.validate_name`, which asks
    /// Neutron by id, then by name within the caller's project): `default` always
    /// passes; an id passes when the caller may see that group (its own project's;
    /// an admin any); otherwise the name must match exactly one group of the caller's
    /// project. Whatever the `networks` (even `none`).
    pub async fn check_security_groups(
        &self,
        ctx: &RequestContext,
        names: &[String],
    ) -> Result<()> {
        let project = ctx.project_id().unwrap_or_default();
        let mut conn = self.conn().await?;
        for g in names {
            if g == "default" {
                continue;
            }
            if records::group(&mut conn, g)
                .await?
                .is_some_and(|found| ctx.is_admin() || found.project_id == project)
            {
                continue;
            }
            let hits = records::groups(&mut conn, records::Who::Project(project))
                .await?
                .into_iter()
                .filter(|x| &x.name == g)
                .count();
            match hits {
                1 => {}
                // neutronclient's `find_resource`, as Nova passes its message on
                0 => {
                    return Err(Error::not_found(
                        "SecurityGroupNotFound",
                        format!("Unable to find security_group with name or id '{g}'"),
                    ));
                }
                _ => {
                    return Err(Error::conflict(
                        "NoUniqueMatch",
                        format!(
                            "Multiple security_group matches found for name '{g}', use an ID to be more specific."
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Creates (or binds) the server's ports; repeated calls return the same ports.
    pub async fn allocate_for_server(&self, alloc: &Allocation) -> Result<Vec<Vif>> {
        let project = alloc.project_id.as_str();
        let mut slots = Self::slots(&alloc.request);
        if alloc.request == NetworkRequest::Auto {
            let net = self.auto_network(project).await?;
            slots.push(Slot {
                network_id: Some(net.id),
                port_id: None,
                fixed_ip: None,
                tag: None,
            });
        }
        let existing = records::device_ports(&self.db, &alloc.server_id).await?;
        let owner = format!("compute:{}", alloc.availability_zone);
        let mut vifs = Vec::new();
        for (i, slot) in slots.into_iter().enumerate() {
            let index = i64::try_from(i).unwrap_or(i64::MAX);
            let port = if let Some(p) = existing.iter().find(|p| p.compute_slot == Some(index)) {
                p.clone()
            } else if let Some(port_id) = &slot.port_id {
                let mut p = records::get_port(&self.db, port_id)
                    .await?
                    .filter(|p| p.project_id == project)
                    .ok_or_else(|| port_not_found(port_id))?;
                if !p.device_id.is_empty() && p.device_id != alloc.server_id {
                    return Err(Error::conflict(
                        "PortInUse",
                        format!("Port {port_id} is still in use."),
                    ));
                }
                p.device_id = alloc.server_id.clone();
                p.device_owner = owner.clone();
                p.host_id = alloc.host.clone();
                p.status = "ACTIVE".into();
                p.created_by_compute = false;
                p.compute_slot = Some(index);
                p.vif_tag = slot.tag.clone();
                p.updated_at = unix_now();
                p.revision_number += 1;
                self.write_port(&p, &IpPlan::Keep, false, false).await?
            } else {
                let net_id = slot.network_id.clone().unwrap_or_default();
                let net = self.attachable_network(project, false, &net_id).await?;
                let groups = self
                    .resolve_groups(
                        project,
                        (!alloc.security_groups.is_empty())
                            .then_some(alloc.security_groups.as_slice()),
                        net.port_security_enabled,
                        true,
                    )
                    .await?;
                let now = unix_now();
                let p = Port {
                    id: ferrostack_core::ids::new_uuid(),
                    project_id: project.to_string(),
                    network_id: net.id.clone(),
                    name: String::new(),
                    description: String::new(),
                    mac_address: String::new(),
                    admin_state_up: true,
                    status: "ACTIVE".into(),
                    device_id: alloc.server_id.clone(),
                    device_owner: owner.clone(),
                    host_id: alloc.host.clone(),
                    vnic_type: "normal".into(),
                    profile: serde_json::json!({}),
                    port_security_enabled: net.port_security_enabled,
                    security_groups: groups,
                    allowed_address_pairs: Vec::new(),
                    extra_dhcp_opts: Vec::new(),
                    dns_name: String::new(),
                    tags: Vec::new(),
                    created_at: now,
                    updated_at: now,
                    revision_number: 1,
                    created_by_compute: true,
                    compute_slot: Some(index),
                    vif_tag: slot.tag.clone(),
                    fixed_ips: Vec::new(),
                };
                let plan = match slot.fixed_ip {
                    Some(addr) => IpPlan::Requested(vec![IpReq {
                        subnet_id: None,
                        ip: Some(addr),
                    }]),
                    None => IpPlan::Default,
                };
                self.write_port(&p, &plan, true, false).await?
            };
            let name = records::network(&mut *self.conn().await?, &port.network_id)
                .await?
                .map(|n| n.name)
                .unwrap_or_default();
            vifs.push(vif_of(&port, &name, port.vif_tag.clone()));
        }
        Ok(vifs)
    }

    /// The server's ports as compute shows them, in request order.
    pub async fn vifs_of_server(&self, server_id: &str) -> Result<Vec<Vif>> {
        let mut ports = records::device_ports(&self.db, server_id).await?;
        let mut conn = self.conn().await?;
        ports.sort_by_key(|p| p.compute_slot.unwrap_or(i64::MAX));
        let mut out = Vec::new();
        for p in ports {
            let name = records::network(&mut conn, &p.network_id)
                .await?
                .map(|n| n.name)
                .unwrap_or_default();
            out.push(vif_of(&p, &name, p.vif_tag.clone()));
        }
        Ok(out)
    }

    /// What a guest needs to configure its interfaces: each port's network MTU and
    /// the subnets of its fixed addresses (in the order of `vifs`). A subnet deleted
    /// since is skipped.
    pub async fn nic_details(&self, vifs: &[Vif]) -> Result<Vec<NicDetail>> {
        let mut conn = self.conn().await?;
        let mut out = Vec::with_capacity(vifs.len());
        for v in vifs {
            let mtu = records::network(&mut conn, &v.network_id)
                .await?
                .and_then(|n| u32::try_from(n.mtu).ok())
                .filter(|m| *m > 0);
            let mut addresses = Vec::new();
            for f in &v.fixed_ips {
                if let Some(sn) = records::subnet(&mut conn, &f.subnet_id).await? {
                    addresses.push((f.ip_address.clone(), sn));
                }
            }
            out.push(NicDetail {
                vif: v.clone(),
                mtu,
                addresses,
            });
        }
        Ok(out)
    }

    /// Deletes the ports made for the server and unbinds those passed in. Idempotent.
    pub async fn release_for_server(&self, server_id: &str) -> Result<()> {
        if server_id.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin_write().await?;
        for mut p in records::ports_of_device(&mut tx, server_id).await? {
            if p.created_by_compute {
                records::delete_port(&mut tx, &p.id).await?;
            } else {
                p.device_id.clear();
                p.device_owner.clear();
                p.host_id.clear();
                p.profile = serde_json::json!({});
                p.status = "DOWN".into();
                p.compute_slot = None;
                p.vif_tag = None;
                p.updated_at = unix_now();
                p.revision_number += 1;
                records::put_port(&mut tx, &p, false).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Creates the shared `private` network and its subnet when missing (bootstrap).
    pub async fn bootstrap(&self, admin_project_id: &str) -> Result<()> {
        let cfg = &self.settings.network;
        if cfg.private_network_name.is_empty() {
            return Ok(());
        }
        let cidr = Cidr::parse(&cfg.private_network_cidr).map_err(|_| {
            Error::invalid_attr(
                "private_network_cidr",
                format!("'{}' is not a valid IP subnet", cfg.private_network_cidr),
            )
        })?;
        let mut dns = Vec::new();
        for d in &cfg.dns_nameservers {
            dns.push(ip::canonical(d).ok_or_else(|| {
                Error::invalid_attr(
                    "dns_nameservers",
                    format!("'{d}' is not a valid nameserver"),
                )
            })?);
        }
        let existing = records::networks(&mut *self.conn().await?, Who::Project(admin_project_id))
            .await?
            .into_iter()
            .find(|n| n.project_id == admin_project_id && n.name == cfg.private_network_name);
        let now = unix_now();
        let net = match existing {
            Some(n) => n,
            None => {
                let n = Network {
                    id: ferrostack_core::ids::new_uuid(),
                    project_id: admin_project_id.to_string(),
                    name: cfg.private_network_name.clone(),
                    description: String::new(),
                    admin_state_up: true,
                    shared: true,
                    external: false,
                    mtu: 1500,
                    port_security_enabled: true,
                    availability_zone_hints: Vec::new(),
                    provider_network_type: None,
                    provider_physical_network: None,
                    provider_segmentation_id: None,
                    tags: Vec::new(),
                    created_at: now,
                    updated_at: now,
                    revision_number: 1,
                    subnets: Vec::new(),
                };
                let mut tx = self.db.begin_write().await?;
                records::put_network(&mut tx, &n, true).await?;
                tx.commit().await?;
                tracing::info!(network = %n.id, name = %n.name, "created the bootstrap network");
                n
            }
        };
        if !net.subnets.is_empty() {
            return Ok(());
        }
        let gateway = cidr.first() + 1;
        let pools = ip::default_pools(&cidr, Some(gateway));
        let s = Subnet {
            id: ferrostack_core::ids::new_uuid(),
            project_id: admin_project_id.to_string(),
            network_id: net.id.clone(),
            name: format!("{}-subnet", cfg.private_network_name),
            description: String::new(),
            ip_version: cidr.version,
            cidr: cidr.to_string(),
            gateway_ip: Some(cidr.ip(gateway).to_string()),
            allocation_pools: pools
                .iter()
                .map(|r| crate::model::Pool {
                    start: cidr.ip(r.start).to_string(),
                    end: cidr.ip(r.end).to_string(),
                })
                .collect(),
            enable_dhcp: true,
            dns_nameservers: dns,
            host_routes: Vec::new(),
            ipv6_ra_mode: None,
            ipv6_address_mode: None,
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
            revision_number: 0,
        };
        // The bootstrap is not a tenant's request: no quota.
        let mut tx = self.db.begin_write().await?;
        records::put_subnet(&mut tx, &s, true).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ferrostack_core::Db;
    use ferrostack_core::context::Scope;
    use serde_json::json;

    use super::*;
    use crate::model::Resource;
    use crate::service::{Kind, Settings};

    fn port_of(r: Resource) -> Port {
        match r {
            Resource::Port(p) => p,
            other => panic!("not a port: {other:?}"),
        }
    }

    fn ctx(project: &str, roles: &[&str]) -> RequestContext {
        RequestContext {
            user_id: "u".into(),
            user_name: "u".into(),
            user_domain_id: "default".into(),
            user_domain_name: "Default".into(),
            scope: Scope::Project {
                id: project.into(),
                name: project.into(),
                domain_id: "default".into(),
                domain_name: "Default".into(),
            },
            roles: roles.iter().map(|r| r.to_string()).collect(),
            application_credential_id: None,
            unrestricted: false,
            audit_id: "a".into(),
        }
    }

    async fn service(dir: &tempfile::TempDir) -> Networks {
        let db = Db::connect(&Db::sqlite_url(&dir.path().join("n.db")), 4)
            .await
            .unwrap();
        let n = Networks::open(db, Settings::default()).await.unwrap();
        n.bootstrap("admin").await.unwrap();
        n.bootstrap("admin").await.unwrap();
        n
    }

    fn alloc(server: &str, request: NetworkRequest) -> Allocation {
        Allocation {
            project_id: "p1".into(),
            server_id: server.into(),
            host: "host1".into(),
            availability_zone: "nova".into(),
            request,
            security_groups: Vec::new(),
        }
    }

    #[tokio::test]
    async fn auto_allocation_is_idempotent_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let n = service(&dir).await;
        let member = ctx("p1", &["member", "reader"]);
        n.check_request(&member, &NetworkRequest::Auto, 2)
            .await
            .unwrap();
        let vifs = n
            .allocate_for_server(&alloc("s1", NetworkRequest::Auto))
            .await
            .unwrap();
        assert_eq!(vifs.len(), 1);
        assert_eq!(vifs[0].network_name, "private");
        assert_eq!(vifs[0].fixed_ips[0].version, 4);
        assert!(vifs[0].fixed_ips[0].ip_address.starts_with("10.0.0."));
        let again = n
            .allocate_for_server(&alloc("s1", NetworkRequest::Auto))
            .await
            .unwrap();
        assert_eq!(again, vifs);
        assert_eq!(n.vifs_of_server("s1").await.unwrap(), vifs);
        let port = port_of(n.show(&member, Kind::Port, &vifs[0].port_id).await.unwrap());
        assert_eq!(port.status, "ACTIVE");
        assert_eq!(port.device_owner, "compute:nova");
        assert_eq!(port.security_groups.len(), 1);
        n.release_for_server("s1").await.unwrap();
        n.release_for_server("s1").await.unwrap();
        assert!(n.vifs_of_server("s1").await.unwrap().is_empty());
        // a second network of the project makes `auto` ambiguous
        n.create(&member, Kind::Network, json!({"network": {"name": "mine"}}))
            .await
            .unwrap();
        let e = n
            .check_request(&member, &NetworkRequest::Auto, 1)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "NetworkAmbiguous");
    }

    #[tokio::test]
    async fn given_ports_are_bound_then_unbound_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let n = service(&dir).await;
        let member = ctx("p1", &["member", "reader"]);
        let other = ctx("p2", &["member", "reader"]);
        let private = n.usable_networks("p1").await.unwrap().remove(0);
        let port = n
            .create(
                &member,
                Kind::Port,
                json!({"port": {"network_id": private.id}}),
            )
            .await
            .unwrap();
        let pid = port.id().to_string();
        let by_port = NetworkRequest::List(vec![RequestedNetwork {
            network_id: None,
            port_id: Some(pid.clone()),
            fixed_ip: None,
            tag: Some("nic1".into()),
        }]);
        n.check_request(&member, &by_port, 1).await.unwrap();
        assert_eq!(
            n.check_request(&member, &by_port, 2)
                .await
                .unwrap_err()
                .kind(),
            "InvalidRequest"
        );
        assert_eq!(
            n.check_request(&other, &by_port, 1)
                .await
                .unwrap_err()
                .kind(),
            "PortNotFound"
        );
        let vifs = n
            .allocate_for_server(&alloc("s2", by_port.clone()))
            .await
            .unwrap();
        assert_eq!(vifs[0].port_id, pid);
        assert_eq!(vifs[0].tag.as_deref(), Some("nic1"));
        let e = n.check_request(&member, &by_port, 1).await.unwrap_err();
        assert_eq!(e.kind(), "PortInUse");
        assert_eq!(e.to_string(), format!("Port {pid} is still in use."));
        n.release_for_server("s2").await.unwrap();
        let port = port_of(n.show(&member, Kind::Port, &pid).await.unwrap());
        assert_eq!(port.device_id, "");
        assert_eq!(port.status, "DOWN");
        // a fixed IP: inside the network and free
        let ip = port.fixed_ips[0].ip_address.parse().unwrap();
        let by_ip = |addr| {
            NetworkRequest::List(vec![RequestedNetwork {
                network_id: Some(private.id.clone()),
                port_id: None,
                fixed_ip: Some(addr),
                tag: None,
            }])
        };
        let e = n.check_request(&member, &by_ip(ip), 1).await.unwrap_err();
        assert_eq!(e.kind(), "FixedIpAlreadyInUse");
        let free = "10.0.0.200".parse().unwrap();
        n.check_request(&member, &by_ip(free), 1).await.unwrap();
        let vifs = n
            .allocate_for_server(&alloc("s3", by_ip(free)))
            .await
            .unwrap();
        assert_eq!(vifs[0].fixed_ips[0].ip_address, "10.0.0.200");
        let outside = "192.168.0.1".parse().unwrap();
        assert!(n.check_request(&member, &by_ip(outside), 1).await.is_err());
        let missing = NetworkRequest::List(vec![RequestedNetwork {
            network_id: Some("nope".into()),
            port_id: None,
            fixed_ip: None,
            tag: None,
        }]);
        let e = n.check_request(&member, &missing, 1).await.unwrap_err();
        assert_eq!(e.to_string(), "Network nope could not be found.");
    }
}
