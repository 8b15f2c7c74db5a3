//! The resources. Rows keep these as JSON documents (`doc`); how Neutron shows them
//! (its dicts) is the API's business (`ferrostack-api`, `network/views.rs`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// One resource of any kind, as the generic operations of
/// [`Networks`](crate::Networks) return it.
#[derive(Debug, Clone)]
pub enum Resource {
    Network(Network),
    Subnet(Subnet),
    Port(Port),
    SecurityGroup(SecurityGroup),
    SecurityGroupRule(Rule),
}

impl Resource {
    pub fn id(&self) -> &str {
        match self {
            Resource::Network(n) => &n.id,
            Resource::Subnet(s) => &s.id,
            Resource::Port(p) => &p.id,
            Resource::SecurityGroup(g) => &g.id,
            Resource::SecurityGroupRule(r) => &r.id,
        }
    }

    pub fn project_id(&self) -> &str {
        match self {
            Resource::Network(n) => &n.project_id,
            Resource::Subnet(s) => &s.project_id,
            Resource::Port(p) => &p.project_id,
            Resource::SecurityGroup(g) => &g.project_id,
            Resource::SecurityGroupRule(r) => &r.project_id,
        }
    }

    /// Its tags (rules have none).
    pub fn tags(&self) -> &[String] {
        match self {
            Resource::Network(n) => &n.tags,
            Resource::Subnet(s) => &s.tags,
            Resource::Port(p) => &p.tags,
            Resource::SecurityGroup(g) => &g.tags,
            Resource::SecurityGroupRule(_) => &[],
        }
    }
}
