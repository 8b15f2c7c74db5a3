//! Subnets: CIDR, gateway, allocation pools, DNS servers, host routes, IPv6 modes;
//! overlapping CIDRs on one network are refused, and so is deleting a subnet whose
//! addresses ports still hold.

use std::net::IpAddr;

use serde_json::{Map, Value};

use ferrostack_core::RequestContext;
use ferrostack_core::time::unix_now;

use crate::attrs::{self, Op, Spec};
use crate::error::{Error, Result};
use crate::ip::{self, Cidr, CidrError, PoolError, Range};
use crate::model::{Network, Pool, Route, Subnet};
use crate::records;
use crate::service::{Networks, network_not_found, owns, subnet_not_found, who};

const SPEC: &[Spec] = &[
    ("id", false, false),
    ("name", true, true),
    ("description", true, true),
    ("network_id", true, false),
    ("ip_version", true, false),
    ("cidr", true, false),
    ("gateway_ip", true, true),
    ("allocation_pools", true, true),
    ("enable_dhcp", true, true),
    ("dns_nameservers", true, true),
    ("host_routes", true, true),
    ("ipv6_ra_mode", true, false),
    ("ipv6_address_mode", true, false),
    ("subnetpool_id", true, false),
    ("use_default_subnetpool", true, false),
    ("prefixlen", true, false),
    ("service_types", true, true),
    ("segment_id", true, true),
    ("project_id", true, false),
    ("tenant_id", true, false),
    ("tags", true, false),
];

const IPV6_MODES: &[&str] = &["dhcpv6-stateful", "dhcpv6-stateless", "slaac"];

/// A subnet's CIDR, parsed (stored CIDRs are always valid).
pub(crate) fn cidr_of(s: &Subnet) -> Result<Cidr> {
    Cidr::parse(&s.cidr)
        .map_err(|_| Error::internal(format!("stored CIDR {:?} is invalid", s.cidr)))
}

/// A subnet's pools as ranges.
pub(crate) fn pools_of(s: &Subnet) -> Vec<Range> {
    s.allocation_pools
        .iter()
        .filter_map(|p| {
            let (_, a) = ip::to_u128(ip::parse_ip(&p.start)?);
            let (_, b) = ip::to_u128(ip::parse_ip(&p.end)?);
            Some(Range { start: a, end: b })
        })
        .collect()
}

/// Whether addresses come from the MAC (SLAAC) rather than the pools.
pub(crate) fn is_auto_address(s: &Subnet) -> bool {
    s.ip_version == 6
        && matches!(
            s.ipv6_address_mode.as_deref(),
            Some("slaac") | Some("dhcpv6-stateless")
        )
}

fn parse_cidr_attr(attr: &str, s: &str) -> Result<Cidr> {
    Cidr::parse(s).map_err(|e| match e {
        CidrError::NoPrefix(rec) => Error::invalid_attr(
            attr,
            format!("'{s}' isn't a recognized IP subnet cidr, '{rec}' is recommended"),
        ),
        CidrError::Invalid => Error::invalid_attr(attr, format!("'{s}' is not a valid IP subnet")),
    })
}

fn pool_text(c: &Cidr, r: &Range) -> String {
    format!("{}-{}", c.ip(r.start), c.ip(r.end))
}

fn parse_pools(m: &Map<String, Value>, cidr: &Cidr) -> Result<Option<Vec<Range>>> {
    let Some(items) = attrs::list(m, "allocation_pools")? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in items {
        let bad = || {
            Error::invalid_attr(
                "allocation_pools",
                format!("Invalid data format for IP pool: '{}'", attrs::py(item)),
            )
        };
        let Value::Object(p) = item else {
            return Err(bad());
        };
        let (Some(Value::String(s)), Some(Value::String(e))) = (p.get("start"), p.get("end"))
        else {
            return Err(bad());
        };
        if p.len() != 2 {
            return Err(bad());
        }
        let (Some(a), Some(b)) = (ip::parse_ip(s), ip::parse_ip(e)) else {
            return Err(bad());
        };
        let (va, a) = ip::to_u128(a);
        let (vb, b) = ip::to_u128(b);
        if va != cidr.version || vb != cidr.version {
            return Err(Error::invalid(
                "OutOfBoundsAllocationPool",
                format!("The allocation pool {s}-{e} spans beyond the subnet cidr {cidr}."),
            ));
        }
        out.push(Range { start: a, end: b });
    }
    Ok(Some(out))
}

fn check_pools(cidr: &Cidr, pools: &[Range], gateway: Option<u128>) -> Result<()> {
    ip::check_pools(cidr, pools, gateway).map_err(|e| match e {
        PoolError::Inverted(r) => Error::invalid(
            "InvalidAllocationPool",
            format!("The allocation pool {} is not valid.", pool_text(cidr, &r)),
        ),
        PoolError::OutOfBounds(r) => Error::invalid(
            "OutOfBoundsAllocationPool",
            format!(
                "The allocation pool {} spans beyond the subnet cidr {cidr}.",
                pool_text(cidr, &r)
            ),
        ),
        PoolError::Overlap(a, b) => Error::conflict(
            "OverlappingAllocationPools",
            format!(
                "Found overlapping allocation pools: {} and {} for subnet {cidr}.",
                pool_text(cidr, &a),
                pool_text(cidr, &b)
            ),
        ),
        PoolError::Gateway(r) => Error::conflict(
            "GatewayConflictWithAllocationPools",
            format!(
                "Gateway ip {} conflicts with allocation pool {}",
                gateway.map(|g| cidr.ip(g).to_string()).unwrap_or_default(),
                pool_text(cidr, &r)
            ),
        ),
    })
}

fn parse_gateway(m: &Map<String, Value>, cidr: &Cidr) -> Result<Option<Option<u128>>> {
    match m.get("gateway_ip") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => {
            let ip = ip::parse_ip(s).ok_or_else(|| {
                Error::invalid_attr("gateway_ip", format!("'{s}' is not a valid IP address"))
            })?;
            let (v, g) = ip::to_u128(ip);
            let (lo, hi) = cidr.host_range();
            if v != cidr.version || g < lo || g > hi {
                return Err(Error::invalid_input(format!(
                    "Gateway IP {s} is not valid on subnet {cidr}"
                )));
            }
            Ok(Some(Some(g)))
        }
        Some(other) => Err(Error::invalid_attr(
            "gateway_ip",
            format!("'{}' is not a valid IP address", attrs::py(other)),
        )),
    }
}

fn parse_dns(m: &Map<String, Value>) -> Result<Option<Vec<String>>> {
    let Some(items) = attrs::string_list(m, "dns_nameservers")? else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for s in items {
        let ip = ip::parse_ip(&s).ok_or_else(|| {
            Error::invalid_attr(
                "dns_nameservers",
                format!("'{s}' is not a valid nameserver"),
            )
        })?;
        let canon = ip.to_string();
        if out.contains(&canon) {
            return Err(Error::invalid_attr(
                "dns_nameservers",
                format!("Duplicate nameserver '{s}'"),
            ));
        }
        out.push(canon);
    }
    if out.len() > 5 {
        return Err(Error::invalid(
            "DNSNameServersExhausted",
            "Unable to complete operation for the subnet. The number of DNS nameservers exceeds the limit 5.".to_string(),
        ));
    }
    Ok(Some(out))
}

fn parse_routes(m: &Map<String, Value>, version: u8) -> Result<Option<Vec<Route>>> {
    let Some(items) = attrs::list(m, "host_routes")? else {
        return Ok(None);
    };
    let mut out: Vec<Route> = Vec::new();
    for item in items {
        let bad = |why: String| Error::invalid_attr("host_routes", why);
        let Value::Object(r) = item else {
            return Err(bad(format!(
                "Invalid data format for hostroute: '{}'",
                attrs::py(item)
            )));
        };
        let (Some(Value::String(d)), Some(Value::String(n))) =
            (r.get("destination"), r.get("nexthop"))
        else {
            return Err(bad(format!(
                "Invalid data format for hostroute: '{}'",
                attrs::py(item)
            )));
        };
        let dest = Cidr::parse(d).map_err(|_| bad(format!("'{d}' is not a valid IP subnet")))?;
        let hop: IpAddr =
            ip::parse_ip(n).ok_or_else(|| bad(format!("'{n}' is not a valid IP address")))?;
        if dest.version != version || ip::to_u128(hop).0 != version {
            return Err(Error::invalid(
                "IpVersionMismatch",
                format!("Host route {d} via {n} does not match the subnet's IP version {version}"),
            ));
        }
        let route = Route {
            destination: dest.to_string(),
            nexthop: hop.to_string(),
        };
        if out.contains(&route) {
            return Err(bad(format!("Duplicate hostroute '{}'", attrs::py(item))));
        }
        out.push(route);
    }
    Ok(Some(out))
}

fn ipv6_mode(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match attrs::string_or_null(m, key, 255)? {
        Some(Some(v)) => {
            attrs::one_of(key, &v, IPV6_MODES)?;
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

fn allocation_pools(cidr: &Cidr, pools: &[Range]) -> Vec<Pool> {
    pools
        .iter()
        .map(|r| Pool {
            start: cidr.ip(r.start).to_string(),
            end: cidr.ip(r.end).to_string(),
        })
        .collect()
}

impl Networks {
    async fn visible_subnet(&self, ctx: &RequestContext, id: &str) -> Result<(Subnet, Network)> {
        let mut conn = self.conn().await?;
        let s = records::subnet(&mut conn, id)
            .await?
            .ok_or_else(|| subnet_not_found(id))?;
        let n = records::network(&mut conn, &s.network_id)
            .await?
            .ok_or_else(|| subnet_not_found(id))?;
        if owns(ctx, &s.project_id) || crate::networks::can_see(ctx, &n) {
            Ok((s, n))
        } else {
            Err(subnet_not_found(id))
        }
    }

    pub(crate) async fn list_subnets(&self, ctx: &RequestContext) -> Result<Vec<Subnet>> {
        let subnets = records::subnets(&mut *self.conn().await?, who(ctx)).await?;
        Ok(subnets)
    }

    pub(crate) async fn show_subnet(&self, ctx: &RequestContext, id: &str) -> Result<Subnet> {
        Ok(self.visible_subnet(ctx, id).await?.0)
    }

    pub(crate) async fn create_subnet(&self, ctx: &RequestContext, body: Value) -> Result<Subnet> {
        let m = attrs::body("subnet", body, SPEC, Op::Create)?;
        for required in ["network_id", "ip_version"] {
            if !m.contains_key(required) {
                return Err(Error::bad_request(format!(
                    "Failed to parse request. Required attribute '{required}' not specified"
                )));
            }
        }
        let network_id = attrs::string(&m, "network_id", 255)?.unwrap_or_default();
        let version = attrs::integer(&m, "ip_version")?.unwrap_or(0);
        if version != 4 && version != 6 {
            return Err(Error::invalid_attr(
                "ip_version",
                format!("{version} is not in [4, 6]"),
            ));
        }
        let version = if version == 4 { 4u8 } else { 6u8 };
        if matches!(m.get("subnetpool_id"), Some(v) if !v.is_null())
            || attrs::boolean(&m, "use_default_subnetpool")? == Some(true)
        {
            return Err(Error::bad_request(
                "Subnet pools are not supported: give a cidr",
            ));
        }
        let Some(cidr_text) = attrs::string(&m, "cidr", 64)? else {
            return Err(Error::bad_request(
                "Failed to parse request. Required attribute 'cidr' not specified",
            ));
        };
        let cidr = parse_cidr_attr("cidr", &cidr_text)?;
        if cidr.version != version {
            return Err(Error::invalid_input(format!(
                "Cidr {cidr_text} does not match IP version {version}"
            )));
        }
        let gateway = match parse_gateway(&m, &cidr)? {
            Some(g) => g,
            None => {
                let (lo, hi) = cidr.host_range();
                (lo <= hi && cidr.prefix < if version == 4 { 31 } else { 127 })
                    .then_some(cidr.first() + 1)
            }
        };
        let pools = match parse_pools(&m, &cidr)? {
            Some(p) => p,
            None => ip::default_pools(&cidr, gateway),
        };
        check_pools(&cidr, &pools, gateway)?;
        let ra_mode = ipv6_mode(&m, "ipv6_ra_mode")?;
        let addr_mode = ipv6_mode(&m, "ipv6_address_mode")?;
        if version == 4 && (ra_mode.is_some() || addr_mode.is_some()) {
            return Err(Error::invalid_input(
                "ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version is 4",
            ));
        }
        if let (Some(ra), Some(addr)) = (&ra_mode, &addr_mode)
            && ra != addr
        {
            return Err(Error::invalid_input(format!(
                "ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not valid. If both attributes are set, they must be the same value"
            )));
        }
        if matches!(
            addr_mode.as_deref(),
            Some("slaac") | Some("dhcpv6-stateless")
        ) && cidr.prefix != 64
        {
            return Err(Error::invalid_input(format!(
                "Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64"
            )));
        }
        if matches!(m.get("service_types"), Some(Value::Array(a)) if !a.is_empty()) {
            return Err(Error::bad_request("Subnet service types are not supported"));
        }
        if matches!(m.get("segment_id"), Some(v) if !v.is_null()) {
            return Err(Error::bad_request("Network segments are not supported"));
        }
        let project = attrs::owner(&m, ctx.project_id(), ctx.is_admin())?;
        let net = self.visible_network(ctx, &network_id).await?;
        if !owns(ctx, &net.project_id) {
            return Err(Error::policy("rule:create_subnet"));
        }
        let now = unix_now();
        let mut s = Subnet {
            id: ferrostack_core::ids::new_uuid(),
            project_id: project,
            network_id: net.id.clone(),
            name: attrs::string(&m, "name", 255)?.unwrap_or_default(),
            description: attrs::string(&m, "description", 255)?.unwrap_or_default(),
            ip_version: version,
            cidr: cidr.to_string(),
            gateway_ip: gateway.map(|g| cidr.ip(g).to_string()),
            allocation_pools: allocation_pools(&cidr, &pools),
            enable_dhcp: attrs::boolean(&m, "enable_dhcp")?.unwrap_or(true),
            dns_nameservers: parse_dns(&m)?.unwrap_or_default(),
            host_routes: parse_routes(&m, version)?.unwrap_or_default(),
            ipv6_ra_mode: ra_mode,
            ipv6_address_mode: addr_mode,
            tags: attrs::string_list(&m, "tags")?.unwrap_or_default(),
            created_at: now,
            updated_at: now,
            revision_number: 0,
        };
        crate::networks::check_tags(&s.tags)?;
        s.tags.dedup();
        self.insert_subnet(&s).await?;
        Ok(s)
    }

    /// Writes a new subnet after the checks that need the network's other subnets.
    pub(crate) async fn insert_subnet(&self, s: &Subnet) -> Result<()> {
        let cidr = cidr_of(s)?;
        let mut tx = self.db.begin_write().await?;
        if records::network(&mut tx, &s.network_id).await?.is_none() {
            return Err(network_not_found(&s.network_id));
        }
        for other in records::subnets_of(&mut tx, &s.network_id).await? {
            if cidr_of(&other)?.overlaps(&cidr) {
                return Err(Error::invalid_input(format!(
                    "Requested subnet with cidr: {cidr} for network: {} overlaps with another subnet",
                    s.network_id
                )));
            }
        }
        self.check_quota(&mut tx, &s.project_id, "subnet", 1)
            .await?;
        records::put_subnet(&mut tx, s, true).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn update_subnet(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Subnet> {
        let m = attrs::body("subnet", body, SPEC, Op::Update)?;
        let (mut s, net) = self.visible_subnet(ctx, id).await?;
        crate::service::writer(ctx, "update_subnet")?;
        if !owns(ctx, &s.project_id) && !owns(ctx, &net.project_id) {
            return Err(Error::policy("rule:update_subnet"));
        }
        let cidr = cidr_of(&s)?;
        if let Some(v) = attrs::string(&m, "name", 255)? {
            s.name = v;
        }
        if let Some(v) = attrs::string(&m, "description", 255)? {
            s.description = v;
        }
        if let Some(v) = attrs::boolean(&m, "enable_dhcp")? {
            s.enable_dhcp = v;
        }
        if let Some(v) = parse_dns(&m)? {
            s.dns_nameservers = v;
        }
        if let Some(v) = parse_routes(&m, s.ip_version)? {
            s.host_routes = v;
        }
        let mut gateway = s
            .gateway_ip
            .as_deref()
            .and_then(ip::parse_ip)
            .map(|g| ip::to_u128(g).1);
        if let Some(g) = parse_gateway(&m, &cidr)? {
            gateway = g;
        }
        let pools = parse_pools(&m, &cidr)?.unwrap_or_else(|| pools_of(&s));
        check_pools(&cidr, &pools, gateway)?;
        s.gateway_ip = gateway.map(|g| cidr.ip(g).to_string());
        s.allocation_pools = allocation_pools(&cidr, &pools);
        s.updated_at = unix_now();
        s.revision_number += 1;
        let mut tx = self.db.begin_write().await?;
        records::put_subnet(&mut tx, &s, false).await?;
        tx.commit().await?;
        Ok(s)
    }

    pub(crate) async fn delete_subnet(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        let (s, net) = self.visible_subnet(ctx, id).await?;
        crate::service::writer(ctx, "delete_subnet")?;
        if !owns(ctx, &s.project_id) && !owns(ctx, &net.project_id) {
            return Err(Error::policy("rule:delete_subnet"));
        }
        let mut tx = self.db.begin_write().await?;
        let ports = records::ports_of_network(&mut tx, &s.network_id).await?;
        let holders: Vec<_> = ports
            .iter()
            .filter(|p| p.fixed_ips.iter().any(|f| f.subnet_id == s.id))
            .collect();
        if holders
            .iter()
            .any(|p| !p.device_owner.starts_with("network:"))
        {
            return Err(Error::conflict(
                "SubnetInUse",
                format!(
                    "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
                ),
            ));
        }
        for p in holders {
            let mut p = p.clone();
            p.fixed_ips.retain(|f| f.subnet_id != s.id);
            records::put_ips(&mut tx, &p).await?;
        }
        records::delete_subnet(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}
