//! The resources and how Neutron shows them. Rows keep these as JSON documents
//! (`doc`); `render_*` gives the API's dicts (admin-only attributes for admins).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use ferrostack_core::time::iso_time;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub shared: bool,
    pub external: bool,
    pub mtu: i64,
    pub port_security_enabled: bool,
    #[serde(default)]
    pub availability_zone_hints: Vec<String>,
    #[serde(default)]
    pub provider_network_type: Option<String>,
    #[serde(default)]
    pub provider_physical_network: Option<String>,
    #[serde(default)]
    pub provider_segmentation_id: Option<i64>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision_number: i64,
    /// Subnet ids, filled when loaded.
    #[serde(skip)]
    pub subnets: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pool {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Route {
    pub destination: String,
    pub nexthop: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub ip_version: u8,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub allocation_pools: Vec<Pool>,
    pub enable_dhcp: bool,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<Route>,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision_number: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Port {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub mac_address: String,
    pub admin_state_up: bool,
    pub status: String,
    pub device_id: String,
    pub device_owner: String,
    pub host_id: String,
    pub vnic_type: String,
    pub profile: Value,
    pub port_security_enabled: bool,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<Value>,
    pub extra_dhcp_opts: Vec<Value>,
    pub dns_name: String,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision_number: i64,
    /// Ports made by `allocate_for_server` are deleted with the server.
    #[serde(default)]
    pub created_by_compute: bool,
    /// The index of the server's request this port answers.
    #[serde(default)]
    pub compute_slot: Option<i64>,
    /// The device tag of that request.
    #[serde(default)]
    pub vif_tag: Option<String>,
    /// From the allocations, filled when loaded.
    #[serde(skip)]
    pub fixed_ips: Vec<PortIp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub stateful: bool,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision_number: i64,
    #[serde(skip)]
    pub rules: Vec<Rule>,
    /// The project's `default` group.
    #[serde(skip)]
    pub is_default: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub project_id: String,
    pub security_group_id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision_number: i64,
    #[serde(skip)]
    pub in_default_group: bool,
}

fn times(v: &mut Value, created: i64, updated: i64, revision: i64) {
    v["created_at"] = json!(iso_time(created));
    v["updated_at"] = json!(iso_time(updated));
    v["revision_number"] = json!(revision);
}

pub fn render_network(n: &Network, admin: bool) -> Value {
    let mut v = json!({
        "id": n.id,
        "name": n.name,
        "tenant_id": n.project_id,
        "project_id": n.project_id,
        "admin_state_up": n.admin_state_up,
        "status": "ACTIVE",
        "shared": n.shared,
        "router:external": n.external,
        "subnets": n.subnets,
        "mtu": n.mtu,
        "description": n.description,
        "tags": n.tags,
        "availability_zone_hints": n.availability_zone_hints,
        "availability_zones": ["nova"],
        "ipv4_address_scope": null,
        "ipv6_address_scope": null,
        "port_security_enabled": n.port_security_enabled,
        "is_default": false,
        "l2_adjacency": true,
    });
    if admin {
        v["provider:network_type"] = json!(n.provider_network_type.as_deref().unwrap_or("local"));
        v["provider:physical_network"] = json!(n.provider_physical_network);
        v["provider:segmentation_id"] = json!(n.provider_segmentation_id);
    }
    times(&mut v, n.created_at, n.updated_at, n.revision_number);
    v
}

pub fn render_subnet(s: &Subnet) -> Value {
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "tenant_id": s.project_id,
        "project_id": s.project_id,
        "network_id": s.network_id,
        "ip_version": s.ip_version,
        "subnetpool_id": null,
        "enable_dhcp": s.enable_dhcp,
        "ipv6_ra_mode": s.ipv6_ra_mode,
        "ipv6_address_mode": s.ipv6_address_mode,
        "gateway_ip": s.gateway_ip,
        "cidr": s.cidr,
        "allocation_pools": s.allocation_pools,
        "host_routes": s.host_routes,
        "dns_nameservers": s.dns_nameservers,
        "description": s.description,
        "service_types": [],
        "tags": s.tags,
    });
    times(&mut v, s.created_at, s.updated_at, s.revision_number);
    v
}

pub fn render_port(p: &Port, admin: bool) -> Value {
    let bound = !p.host_id.is_empty();
    let pairs: Vec<Value> = p
        .allowed_address_pairs
        .iter()
        .map(|pair| {
            let mut pair = pair.clone();
            if pair.get("mac_address").is_none_or(Value::is_null) {
                pair["mac_address"] = json!(p.mac_address);
            }
            pair
        })
        .collect();
    let dns_assignment: Vec<Value> = p
        .fixed_ips
        .iter()
        .map(|f| {
            let host = format!("host-{}", f.ip_address.replace(['.', ':'], "-"));
            json!({"hostname": host, "ip_address": f.ip_address, "fqdn": format!("{host}.openstacklocal.")})
        })
        .collect();
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "network_id": p.network_id,
        "tenant_id": p.project_id,
        "project_id": p.project_id,
        "mac_address": p.mac_address,
        "admin_state_up": p.admin_state_up,
        "status": p.status,
        "device_id": p.device_id,
        "device_owner": p.device_owner,
        "fixed_ips": p.fixed_ips,
        "allowed_address_pairs": pairs,
        "extra_dhcp_opts": p.extra_dhcp_opts,
        "security_groups": p.security_groups,
        "description": p.description,
        "binding:vnic_type": p.vnic_type,
        "port_security_enabled": p.port_security_enabled,
        "dns_name": p.dns_name,
        "dns_assignment": dns_assignment,
        "ip_allocation": "immediate",
        "tags": p.tags,
    });
    if admin {
        v["binding:host_id"] = json!(p.host_id);
        v["binding:profile"] = p.profile.clone();
        v["binding:vif_type"] = json!(if bound { "other" } else { "unbound" });
        v["binding:vif_details"] = json!({});
    }
    times(&mut v, p.created_at, p.updated_at, p.revision_number);
    v
}

pub fn render_rule(r: &Rule) -> Value {
    let normalized = r.remote_ip_prefix.clone();
    let mut v = json!({
        "id": r.id,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "security_group_id": r.security_group_id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": null,
        "normalized_cidr": normalized,
        "description": r.description,
        "belongs_to_default_sg": r.in_default_group,
    });
    times(&mut v, r.created_at, r.updated_at, r.revision_number);
    v
}

pub fn render_group(g: &SecurityGroup) -> Value {
    let mut v = json!({
        "id": g.id,
        "name": g.name,
        "tenant_id": g.project_id,
        "project_id": g.project_id,
        "description": g.description,
        "stateful": g.stateful,
        "shared": false,
        "security_group_rules": g.rules.iter().map(render_rule).collect::<Vec<_>>(),
        "tags": g.tags,
    });
    times(&mut v, g.created_at, g.updated_at, g.revision_number);
    v
}
