//! How Neutron shows each resource: the API's dicts (admin-only attributes for
//! admins), rendered from the domain's typed resources.

use serde_json::{Value, json};

use ferrostack_core::time::iso_time;
use ferrostack_network::Resource;
use ferrostack_network::model::{Network, Port, Rule, SecurityGroup, Subnet};

/// Any resource as its collection shows it.
pub fn render(r: &Resource, admin: bool) -> Value {
    match r {
        Resource::Network(n) => render_network(n, admin),
        Resource::Subnet(s) => render_subnet(s),
        Resource::Port(p) => render_port(p, admin),
        Resource::SecurityGroup(g) => render_group(g),
        Resource::SecurityGroupRule(r) => render_rule(r),
    }
}

fn times(v: &mut Value, created: i64, updated: i64, revision: i64) {
    v["created_at"] = json!(iso_time(created));
    v["updated_at"] = json!(iso_time(updated));
    v["revision_number"] = json!(revision);
}

fn render_network(n: &Network, admin: bool) -> Value {
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

fn render_subnet(s: &Subnet) -> Value {
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

fn render_port(p: &Port, admin: bool) -> Value {
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

fn render_rule(r: &Rule) -> Value {
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

fn render_group(g: &SecurityGroup) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> Network {
        Network {
            id: "n1".into(),
            project_id: "p1".into(),
            name: "private".into(),
            description: String::new(),
            admin_state_up: true,
            shared: false,
            external: false,
            mtu: 1500,
            port_security_enabled: true,
            availability_zone_hints: Vec::new(),
            provider_network_type: None,
            provider_physical_network: None,
            provider_segmentation_id: None,
            tags: vec!["t".into()],
            created_at: 0,
            updated_at: 60,
            revision_number: 2,
            subnets: vec!["s1".into()],
        }
    }

    #[test]
    fn provider_attributes_are_shown_to_admins_only() {
        let n = Resource::Network(network());
        let user = render(&n, false);
        let admin = render(&n, true);
        assert!(user.get("provider:network_type").is_none());
        assert_eq!(admin["provider:network_type"], "local");
        assert_eq!(admin["provider:segmentation_id"], Value::Null);
        for v in [&user, &admin] {
            assert_eq!(v["tenant_id"], "p1");
            assert_eq!(v["router:external"], false);
            assert_eq!(v["subnets"], json!(["s1"]));
            assert_eq!(v["created_at"], "1970-01-01T00:00:00Z");
            assert_eq!(v["updated_at"], "1970-01-01T00:01:00Z");
            assert_eq!(v["revision_number"], 2);
        }
    }

    #[test]
    fn a_group_shows_its_rules_with_their_default_group_flag() {
        let rule = Rule {
            id: "r1".into(),
            project_id: "p1".into(),
            security_group_id: "g1".into(),
            direction: "ingress".into(),
            ethertype: "IPv4".into(),
            protocol: Some("tcp".into()),
            port_range_min: Some(22),
            port_range_max: Some(22),
            remote_ip_prefix: Some("0.0.0.0/0".into()),
            remote_group_id: None,
            description: String::new(),
            created_at: 0,
            updated_at: 0,
            revision_number: 1,
            in_default_group: true,
        };
        let g = SecurityGroup {
            id: "g1".into(),
            project_id: "p1".into(),
            name: "default".into(),
            description: "Default security group".into(),
            stateful: true,
            tags: Vec::new(),
            created_at: 0,
            updated_at: 0,
            revision_number: 1,
            rules: vec![rule],
            is_default: true,
        };
        let v = render(&Resource::SecurityGroup(g), false);
        let r = &v["security_group_rules"][0];
        assert_eq!(r["normalized_cidr"], "0.0.0.0/0");
        assert_eq!(r["belongs_to_default_sg"], true);
        assert_eq!(r["remote_address_group_id"], Value::Null);
        assert_eq!(v["shared"], false);
    }
}
