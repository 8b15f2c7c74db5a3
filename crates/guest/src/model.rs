//! [`GuestData`]: everything a guest is given, resolved once by the compute side
//! (key pair data, not its name; ports with their subnets). Every document in this
//! crate is a pure function of it (plus randomness where upstream uses some).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One key pair as the guest sees it (`public_keys` / `keys` in meta_data.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestKey {
    pub name: String,
    /// `ssh` or `x509`.
    pub key_type: String,
    pub data: String,
}

/// A static route of a subnet (`host_routes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestRoute {
    /// CIDR, e.g. `192.168.0.0/24`.
    pub destination: String,
    pub nexthop: String,
}

/// The subnet an address belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSubnet {
    pub id: String,
    /// CIDR, e.g. `10.0.0.0/24` or `fd00::/64`.
    pub cidr: String,
    /// 4 or 6.
    pub ip_version: u8,
    pub gateway_ip: Option<String>,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<GuestRoute>,
    pub enable_dhcp: bool,
    /// `slaac`, `dhcpv6-stateful`, `dhcpv6-stateless` (IPv6 only).
    pub ipv6_address_mode: Option<String>,
}

/// One fixed address of a NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestIp {
    pub address: String,
    pub subnet: GuestSubnet,
}

/// One network interface (a Neutron port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNic {
    pub port_id: String,
    pub network_id: String,
    pub mac: String,
    pub mtu: Option<u32>,
    pub ips: Vec<GuestIp>,
}

/// Everything a guest receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestData {
    pub uuid: String,
    /// The server's display name.
    pub name: String,
    /// The guest hostname, without domain.
    pub hostname: String,
    /// `[api] dhcp_domain` (upstream default `novalocal`); appended to the hostname.
    pub dhcp_domain: Option<String>,
    pub project_id: String,
    pub availability_zone: Option<String>,
    pub launch_index: u32,
    pub reservation_id: String,
    pub image_id: Option<String>,
    /// The flavor's name (EC2 `instance-type`).
    pub flavor_name: String,
    pub security_groups: Vec<String>,
    /// Server metadata (`meta`).
    pub metadata: BTreeMap<String, String>,
    pub keys: Vec<GuestKey>,
    /// Personality files: absolute guest path and bytes, in request order.
    pub files: Vec<(String, Vec<u8>)>,
    pub user_data: Option<Vec<u8>>,
    /// Only put on the config drive (never the metadata service), as upstream.
    pub admin_pass: Option<String>,
    pub nics: Vec<GuestNic>,
    /// Static vendor data (`vendor_data.json`; `{}` when none is configured).
    pub vendor_data: serde_json::Value,
    /// Seconds since the epoch of the server's creation (EC2 `launch-time` aside,
    /// used for stable file times on the drive).
    pub created_at: i64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A guest with one of everything, for the tests of this crate.
    pub(crate) fn sample() -> GuestData {
        let mut metadata = BTreeMap::new();
        metadata.insert("role".into(), "web".into());
        GuestData {
            uuid: "6d4a1b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into(),
            name: "vm one".into(),
            hostname: "vm-one".into(),
            dhcp_domain: Some("novalocal".into()),
            project_id: "proj".into(),
            availability_zone: Some("nova".into()),
            launch_index: 0,
            reservation_id: "r-abcdef12".into(),
            image_id: Some("img-1".into()),
            flavor_name: "m1.tiny".into(),
            security_groups: vec!["default".into()],
            metadata,
            keys: vec![GuestKey {
                name: "mykey".into(),
                key_type: "ssh".into(),
                data: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITest test@host".into(),
            }],
            files: vec![
                ("/etc/motd".into(), b"hello\n".to_vec()),
                ("/root/data.bin".into(), vec![0, 1, 2, 255]),
            ],
            user_data: Some(b"#!/bin/sh\necho hi\n".to_vec()),
            admin_pass: Some("s3cret".into()),
            nics: vec![],
            vendor_data: serde_json::json!({}),
            created_at: 1_700_000_000,
        }
    }
}
