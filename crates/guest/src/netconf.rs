//! A guest's network configuration, from its ports and their subnets:
//! `network_data.json` (upstream's `get_network_metadata`: links, networks,
//! services) and the Debian `/etc/network/interfaces` file upstream renders from
//! `interfaces.template` (used for injection and the config drive's
//! `network_config`).

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::model::{GuestData, GuestIp, GuestNic};

/// A CIDR's prefix length and the netmask upstream writes (dotted for IPv4, the
/// expanded address form for IPv6, as netaddr's `netmask` prints it).
fn netmask(cidr: &str) -> Option<(IpAddr, u8, String)> {
    let (net, len) = cidr.split_once('/')?;
    let net: IpAddr = net.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let mask = match net {
        IpAddr::V4(_) => {
            if len > 32 {
                return None;
            }
            let m: u32 = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            std::net::Ipv4Addr::from(m).to_string()
        }
        IpAddr::V6(_) => {
            if len > 128 {
                return None;
            }
            let m: u128 = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            std::net::Ipv6Addr::from(m).to_string()
        }
    };
    Some((net, len, mask))
}

/// The first IPv4 and the first IPv6 address of a NIC (upstream uses only those).
fn first_ips(nic: &GuestNic) -> Vec<&GuestIp> {
    let mut out = Vec::new();
    if let Some(v4) = nic.ips.iter().find(|i| i.subnet.ip_version == 4) {
        out.push(v4);
    }
    if let Some(v6) = nic.ips.iter().find(|i| i.subnet.ip_version == 6) {
        out.push(v6);
    }
    out
}

fn link_id(nic: &GuestNic) -> String {
    // Nova names links after the VIF's device name: "tap" + the port id's first 11
    // characters.
    format!("tap{}", nic.port_id.chars().take(11).collect::<String>())
}

/// `network_data.json`.
pub fn network_data(g: &GuestData) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut services: Vec<Value> = Vec::new();
    let mut n = 0usize;
    for nic in &g.nics {
        let id = link_id(nic);
        let ips = first_ips(nic);
        let dhcp_only = !ips.is_empty() && ips.iter().all(|i| i.subnet.enable_dhcp);
        links.push(json!({
            "id": id,
            "vif_id": nic.port_id,
            "type": "phy",
            "mtu": if dhcp_only { Value::Null } else { json!(nic.mtu) },
            "ethernet_mac_address": nic.mac,
        }));
        for ip in ips {
            let sn = &ip.subnet;
            let v6 = sn.ip_version == 6;
            let net_id = format!("network{n}");
            n += 1;
            if sn.enable_dhcp && sn.ipv6_address_mode.as_deref() != Some("slaac") {
                networks.push(json!({
                    "id": net_id,
                    "type": if v6 { "ipv6_dhcp" } else { "ipv4_dhcp" },
                    "link": id,
                    "network_id": nic.network_id,
                }));
                continue;
            }
            let Some((_, _, mask)) = netmask(&sn.cidr) else {
                continue;
            };
            let mut routes = Vec::new();
            if let Some(gw) = &sn.gateway_ip {
                routes.push(json!({
                    "network": if v6 { "::" } else { "0.0.0.0" },
                    "netmask": if v6 { "::" } else { "0.0.0.0" },
                    "gateway": gw,
                }));
            }
            for r in &sn.host_routes {
                if let Some((net, _, m)) = netmask(&r.destination) {
                    routes.push(
                        json!({"network": net.to_string(), "netmask": m, "gateway": r.nexthop}),
                    );
                }
            }
            let dns: Vec<Value> = sn
                .dns_nameservers
                .iter()
                .map(|d| json!({"type": "dns", "address": d}))
                .collect();
            for d in &dns {
                if !services.contains(d) {
                    services.push(d.clone());
                }
            }
            let kind = match (v6, sn.ipv6_address_mode.as_deref()) {
                (false, _) => "ipv4".to_string(),
                (true, Some(mode)) => format!("ipv6_{mode}"),
                (true, None) => "ipv6".to_string(),
            };
            networks.push(json!({
                "id": net_id,
                "type": kind,
                "link": id,
                "ip_address": ip.address,
                "netmask": mask,
                "routes": routes,
                "network_id": nic.network_id,
                "services": dns,
            }));
        }
    }
    json!({"links": links, "networks": networks, "services": services})
}

/// The Debian `interfaces` file for the guest's NICs (`eth0`, `eth1`, ...): static
/// stanzas for addresses on subnets without DHCP, `dhcp` for the others. `None`
/// when the guest has no NIC with an address.
pub fn interfaces(g: &GuestData) -> Option<String> {
    let mut out = String::from(
        "# Injected by ferrostack on instance boot\n#\n\
         # This file describes the network interfaces available on your system\n\
         # and how to activate them. For more information, see interfaces(5).\n\n\
         # The loopback network interface\nauto lo\niface lo inet loopback\n",
    );
    let mut any = false;
    for (i, nic) in g.nics.iter().enumerate() {
        let name = format!("eth{i}");
        let ips = first_ips(nic);
        if ips.is_empty() {
            continue;
        }
        any = true;
        out.push_str(&format!("\nauto {name}\n"));
        for ip in ips {
            let sn = &ip.subnet;
            let family = if sn.ip_version == 6 { "inet6" } else { "inet" };
            if sn.enable_dhcp {
                out.push_str(&format!("iface {name} {family} dhcp\n"));
                continue;
            }
            let Some((_, len, mask)) = netmask(&sn.cidr) else {
                continue;
            };
            out.push_str(&format!("iface {name} {family} static\n"));
            out.push_str(&format!("    hwaddress ether {}\n", nic.mac));
            out.push_str(&format!("    address {}\n", ip.address));
            if sn.ip_version == 6 {
                out.push_str(&format!("    netmask {len}\n"));
            } else {
                out.push_str(&format!("    netmask {mask}\n"));
                if let Some(b) = broadcast(&sn.cidr) {
                    out.push_str(&format!("    broadcast {b}\n"));
                }
            }
            if let Some(gw) = &sn.gateway_ip {
                out.push_str(&format!("    gateway {gw}\n"));
            }
            if !sn.dns_nameservers.is_empty() {
                out.push_str(&format!(
                    "    dns-nameservers {}\n",
                    sn.dns_nameservers.join(" ")
                ));
            }
        }
    }
    any.then_some(out)
}

fn broadcast(cidr: &str) -> Option<String> {
    let (net, len, _) = netmask(cidr)?;
    match net {
        IpAddr::V4(a) => {
            let host: u32 = if len >= 32 { 0 } else { u32::MAX >> len };
            Some(std::net::Ipv4Addr::from(u32::from(a) | host).to_string())
        }
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GuestRoute, GuestSubnet};

    pub(crate) fn subnet(cidr: &str, v: u8, dhcp: bool) -> GuestSubnet {
        GuestSubnet {
            id: format!("sn-{cidr}"),
            cidr: cidr.into(),
            ip_version: v,
            gateway_ip: Some(if v == 4 { "10.0.0.1" } else { "fd00::1" }.into()),
            dns_nameservers: vec!["8.8.8.8".into()],
            host_routes: vec![],
            enable_dhcp: dhcp,
            ipv6_address_mode: None,
        }
    }

    fn guest(nics: Vec<GuestNic>) -> GuestData {
        let mut g = crate::model::tests::sample();
        g.nics = nics;
        g
    }

    fn nic(ips: Vec<GuestIp>) -> GuestNic {
        GuestNic {
            port_id: "0123456789abcdef".into(),
            network_id: "net-1".into(),
            mac: "fa:16:3e:00:00:01".into(),
            mtu: Some(1450),
            ips,
        }
    }

    #[test]
    fn dhcp_subnet_gives_a_dhcp_network_and_no_mtu() {
        let g = guest(vec![nic(vec![GuestIp {
            address: "10.0.0.5".into(),
            subnet: subnet("10.0.0.0/24", 4, true),
        }])]);
        let nd = network_data(&g);
        assert_eq!(nd["links"][0]["id"], "tap0123456789a");
        assert_eq!(nd["links"][0]["mtu"], Value::Null);
        assert_eq!(nd["networks"][0]["type"], "ipv4_dhcp");
        assert_eq!(nd["networks"][0]["link"], "tap0123456789a");
        assert_eq!(nd["services"], json!([]));
        assert!(
            interfaces(&g)
                .unwrap_or_default()
                .contains("iface eth0 inet dhcp")
        );
    }

    #[test]
    fn static_subnets_carry_address_mask_routes_and_deduplicated_dns() {
        let mut sn = subnet("10.0.0.0/24", 4, false);
        sn.host_routes = vec![GuestRoute {
            destination: "192.168.0.0/16".into(),
            nexthop: "10.0.0.254".into(),
        }];
        let g = guest(vec![
            nic(vec![
                GuestIp {
                    address: "10.0.0.5".into(),
                    subnet: sn.clone(),
                },
                GuestIp {
                    address: "10.0.0.6".into(),
                    subnet: sn.clone(),
                },
                GuestIp {
                    address: "fd00::5".into(),
                    subnet: subnet("fd00::/64", 6, false),
                },
            ]),
            nic(vec![GuestIp {
                address: "10.0.0.7".into(),
                subnet: sn,
            }]),
        ]);
        let nd = network_data(&g);
        let nets = nd["networks"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            nets.len(),
            3,
            "first v4 + first v6 of NIC 0, v4 of NIC 1: {nd}"
        );
        assert_eq!(nets[0]["type"], "ipv4");
        assert_eq!(nets[0]["ip_address"], "10.0.0.5");
        assert_eq!(nets[0]["netmask"], "255.255.255.0");
        assert_eq!(nets[0]["routes"][0]["gateway"], "10.0.0.1");
        assert_eq!(nets[0]["routes"][1]["network"], "192.168.0.0");
        assert_eq!(nets[0]["routes"][1]["netmask"], "255.255.0.0");
        assert_eq!(nets[1]["type"], "ipv6");
        assert_eq!(nets[1]["netmask"], "ffff:ffff:ffff:ffff::");
        assert_eq!(nets[1]["routes"][0]["network"], "::");
        assert_eq!(nd["links"][0]["mtu"], 1450);
        assert_eq!(
            nd["services"],
            json!([{"type": "dns", "address": "8.8.8.8"}])
        );
        for k in ["links", "networks", "services"] {
            assert!(nd[k].is_array(), "{k} is required");
        }
        let eni = interfaces(&g).unwrap_or_default();
        assert!(eni.contains("auto eth0\niface eth0 inet static\n"), "{eni}");
        assert!(eni.contains("    address 10.0.0.5\n    netmask 255.255.255.0\n    broadcast 10.0.0.255\n    gateway 10.0.0.1\n    dns-nameservers 8.8.8.8\n"), "{eni}");
        assert!(eni.contains("iface eth0 inet6 static"), "{eni}");
        assert!(eni.contains("auto eth1\n"), "{eni}");
    }

    #[test]
    fn no_nics_means_no_interfaces_file() {
        assert_eq!(interfaces(&guest(vec![])), None);
        assert_eq!(
            network_data(&guest(vec![])),
            json!({"links": [], "networks": [], "services": []})
        );
    }
}
