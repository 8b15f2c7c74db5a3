//! Ports: MAC and IP allocation (never the same address twice: unique keys on
//! (network, address) and (network, MAC), and a transaction that is tried again when
//! it loses a race), bindings, security groups, updates of fixed IPs.

use std::net::IpAddr;

use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use ferrostack_core::RequestContext;
use ferrostack_core::time::unix_now;

use crate::attrs::{self, Op, Spec};
use crate::error::{Error, Result};
use crate::ip;
use crate::model::{Network, Port, PortIp};
use crate::records;
use crate::service::{
    Networks, RETRIES, admin_attr, backoff, network_not_found, owns, port_not_found, who,
};
use crate::subnets::{cidr_of, is_auto_address, pools_of};

const SPEC: &[Spec] = &[
    ("id", false, false),
    ("name", true, true),
    ("description", true, true),
    ("network_id", true, false),
    ("admin_state_up", true, true),
    ("mac_address", true, true),
    ("fixed_ips", true, true),
    ("device_id", true, true),
    ("device_owner", true, true),
    ("project_id", true, false),
    ("tenant_id", true, false),
    ("security_groups", true, true),
    ("port_security_enabled", true, true),
    ("allowed_address_pairs", true, true),
    ("extra_dhcp_opts", true, true),
    ("binding:host_id", true, true),
    ("binding:vnic_type", true, true),
    ("binding:profile", true, true),
    ("dns_name", true, true),
    ("tags", true, false),
    ("status", false, false),
    ("binding:vif_type", false, false),
    ("binding:vif_details", false, false),
];

const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
];

/// One requested address: a subnet, an address, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IpReq {
    pub subnet_id: Option<String>,
    pub ip: Option<IpAddr>,
}

/// Which addresses a port write gives the port.
#[derive(Debug, Clone)]
pub(crate) enum IpPlan {
    /// One from the first IPv4 and the first IPv6 subnet.
    Default,
    Requested(Vec<IpReq>),
    /// Leave the port's addresses as they are.
    Keep,
}

fn parse_fixed_ips(m: &Map<String, Value>) -> Result<Option<Vec<IpReq>>> {
    if matches!(m.get("fixed_ips"), Some(Value::Null)) {
        return Ok(Some(Vec::new()));
    }
    let Some(items) = attrs::list(m, "fixed_ips")? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in items {
        let bad = || {
            Error::invalid_attr(
                "fixed_ips",
                format!("Invalid data format for fixed IP: '{}'", attrs::py(item)),
            )
        };
        let Value::Object(f) = item else {
            return Err(bad());
        };
        if f.keys().any(|k| k != "subnet_id" && k != "ip_address") {
            return Err(bad());
        }
        let subnet_id = match f.get("subnet_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad()),
        };
        let ip = match f.get("ip_address") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(ip::parse_ip(s).ok_or_else(|| {
                Error::invalid_attr("fixed_ips", format!("'{s}' is not a valid IP address"))
            })?),
            Some(_) => return Err(bad()),
        };
        if subnet_id.is_none() && ip.is_none() {
            return Err(Error::invalid_input(
                "IP allocation requires subnet_id or ip_address",
            ));
        }
        out.push(IpReq { subnet_id, ip });
    }
    Ok(Some(out))
}

fn parse_mac(m: &Map<String, Value>) -> Result<Option<String>> {
    match attrs::string(m, "mac_address", 64)? {
        None => Ok(None),
        Some(s) => {
            let b = ip::parse_mac(&s).ok_or_else(|| {
                Error::invalid_attr("mac_address", format!("'{s}' is not a valid MAC address"))
            })?;
            if b == [0; 6] || b[0] & 1 == 1 {
                return Err(Error::invalid_attr(
                    "mac_address",
                    format!("'{s}' is not a valid MAC address"),
                ));
            }
            Ok(Some(ip::format_mac(b)))
        }
    }
}

fn parse_pairs(m: &Map<String, Value>) -> Result<Option<Vec<Value>>> {
    if matches!(m.get("allowed_address_pairs"), Some(Value::Null)) {
        return Ok(Some(Vec::new()));
    }
    let Some(items) = attrs::list(m, "allowed_address_pairs")? else {
        return Ok(None);
    };
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        let bad = |why: String| Error::invalid_attr("allowed_address_pairs", why);
        let Value::Object(p) = item else {
            return Err(bad(format!(
                "Allowed address pairs must be a list of dictionaries, not '{}'",
                attrs::py(item)
            )));
        };
        if let Some(k) = p.keys().find(|k| *k != "ip_address" && *k != "mac_address") {
            return Err(bad(format!("Unrecognized attribute(s) '{k}'")));
        }
        let Some(Value::String(addr)) = p.get("ip_address") else {
            return Err(bad("AllowedAddressPair must contain ip_address".into()));
        };
        let canon = match ip::Cidr::parse(addr) {
            Ok(c) if c.prefix == if c.version == 4 { 32 } else { 128 } => {
                ip::from_u128(c.version, c.network).to_string()
            }
            Ok(c) => c.to_string(),
            Err(ip::CidrError::NoPrefix(_)) => ip::canonical(addr).unwrap_or_default(),
            Err(_) => return Err(bad(format!("'{addr}' is not a valid IP address"))),
        };
        let mut pair = json!({"ip_address": canon});
        match p.get("mac_address") {
            None | Some(Value::Null) => {}
            Some(Value::String(mac)) => {
                let b = ip::parse_mac(mac)
                    .ok_or_else(|| bad(format!("'{mac}' is not a valid MAC address")))?;
                pair["mac_address"] = json!(ip::format_mac(b));
            }
            Some(other) => {
                return Err(bad(format!(
                    "'{}' is not a valid MAC address",
                    attrs::py(other)
                )));
            }
        }
        if out.contains(&pair) {
            return Err(Error::invalid(
                "DuplicateAddressPairInRequest",
                format!(
                    "Request contains duplicate address pair: mac_address {} ip_address {}.",
                    pair.get("mac_address")
                        .and_then(Value::as_str)
                        .unwrap_or("None"),
                    canon
                ),
            ));
        }
        out.push(pair);
    }
    Ok(Some(out))
}

fn parse_dhcp_opts(m: &Map<String, Value>) -> Result<Option<Vec<Value>>> {
    if matches!(m.get("extra_dhcp_opts"), Some(Value::Null)) {
        return Ok(Some(Vec::new()));
    }
    let Some(items) = attrs::list(m, "extra_dhcp_opts")? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Object(o) = item else {
            return Err(Error::invalid_attr(
                "extra_dhcp_opts",
                format!("'{}' is not a dictionary", attrs::py(item)),
            ));
        };
        if !matches!(o.get("opt_name"), Some(Value::String(_))) {
            return Err(Error::invalid_attr(
                "extra_dhcp_opts",
                "opt_name is required",
            ));
        }
        let mut opt = json!({"opt_name": o["opt_name"], "opt_value": o.get("opt_value").cloned().unwrap_or(Value::Null),
            "ip_version": o.get("ip_version").cloned().unwrap_or(json!(4))});
        if opt["opt_value"].is_number() {
            opt["opt_value"] = json!(opt["opt_value"].to_string());
        }
        out.push(opt);
    }
    Ok(Some(out))
}

fn mac_in_use(network_id: &str, mac: &str) -> Error {
    Error::conflict(
        "MacAddressInUse",
        format!(
            "Unable to complete operation for network {network_id}. The mac address {mac} is in use."
        ),
    )
}

fn ip_taken(ip: &str, subnet_id: &str) -> Error {
    Error::conflict(
        "IpAddressAlreadyAllocated",
        format!("IP address {ip} already allocated in subnet {subnet_id}"),
    )
}

pub(crate) fn exhausted(network_id: &str) -> Error {
    Error::conflict(
        "IpAddressGenerationFailure",
        format!("No more IP addresses available on network {network_id}."),
    )
}

impl Networks {
    /// Chooses the port's addresses inside the caller's transaction. `attempt` > 0
    /// (a retry after losing a race) picks at random among the first free ones.
    pub(crate) async fn assign_ips(
        &self,
        conn: &mut records::Conn,
        p: &Port,
        plan: &IpPlan,
        attempt: u32,
    ) -> Result<Vec<PortIp>> {
        let subnets = records::subnets_of(conn, &p.network_id).await?;
        let reqs: Vec<IpReq> = match plan {
            IpPlan::Keep => return Ok(p.fixed_ips.clone()),
            IpPlan::Requested(r) => r.clone(),
            IpPlan::Default => [4u8, 6]
                .iter()
                .filter_map(|v| subnets.iter().find(|s| s.ip_version == *v))
                .map(|s| IpReq {
                    subnet_id: Some(s.id.clone()),
                    ip: None,
                })
                .collect(),
        };
        let invalid_subnet = |sid: &str| {
            Error::invalid_input(format!(
                "Failed to create port on network {}, because fixed_ips included invalid subnet {sid}",
                p.network_id
            ))
        };
        let mut chosen: Vec<PortIp> = Vec::new();
        for r in reqs {
            let subnet = match (&r.subnet_id, r.ip) {
                (Some(sid), _) => subnets
                    .iter()
                    .find(|s| &s.id == sid)
                    .ok_or_else(|| invalid_subnet(sid))?,
                (None, Some(addr)) => subnets
                    .iter()
                    .find(|s| cidr_of(s).is_ok_and(|c| c.contains_ip(addr)))
                    .ok_or_else(|| {
                        Error::invalid(
                            "InvalidIpForNetwork",
                            format!("IP address {addr} is not a valid IP for any of the subnets on the specified network."),
                        )
                    })?,
                (None, None) => {
                    return Err(Error::invalid_input(
                        "IP allocation requires subnet_id or ip_address",
                    ));
                }
            };
            let cidr = cidr_of(subnet)?;
            let addr = match r.ip {
                Some(addr) => {
                    let (v, n) = ip::to_u128(addr);
                    let (lo, hi) = cidr.host_range();
                    if !cidr.contains(v, n) || n < lo || n > hi {
                        return Err(Error::invalid(
                            "InvalidIpForSubnet",
                            format!(
                                "IP address {addr} is not a valid IP for the specified subnet."
                            ),
                        ));
                    }
                    addr.to_string()
                }
                None if is_auto_address(subnet) => {
                    let n = ip::eui64(&cidr, &p.mac_address)
                        .ok_or_else(|| Error::internal("port without a valid MAC"))?;
                    cidr.ip(n).to_string()
                }
                None => {
                    let mut taken: Vec<u128> = records::taken_in_subnet(conn, &subnet.id)
                        .await?
                        .iter()
                        .chain(chosen.iter().map(|c| &c.ip_address))
                        .filter_map(|t| ip::parse_ip(t))
                        .map(|a| ip::to_u128(a).1)
                        .collect();
                    taken.sort_unstable();
                    let window = if attempt == 0 { 1 } else { 16 };
                    let free = ip::free_addresses(&pools_of(subnet), &taken, window);
                    let Some(pick) = free.choose(&mut rand::thread_rng()) else {
                        return Err(exhausted(&p.network_id));
                    };
                    cidr.ip(*pick).to_string()
                }
            };
            if chosen.iter().any(|c| c.ip_address == addr) {
                return Err(ip_taken(&addr, &subnet.id));
            }
            if let Some(holder) = records::ip_holder(conn, &p.network_id, &addr).await?
                && holder != p.id
            {
                // An address the caller asked for is taken; one we picked was taken
                // by a concurrent request since we read the free ones: try again.
                return Err(if r.ip.is_some() {
                    ip_taken(&addr, &subnet.id)
                } else {
                    Error::lost_race()
                });
            }
            chosen.push(PortIp {
                subnet_id: subnet.id.clone(),
                ip_address: addr,
            });
        }
        Ok(chosen)
    }

    /// Writes a port (new or changed) with its addresses, trying again when a
    /// concurrent write took the address or MAC first.
    pub(crate) async fn write_port(
        &self,
        p: &Port,
        plan: &IpPlan,
        insert: bool,
        mac_given: bool,
    ) -> Result<Port> {
        let mut attempt = 0;
        loop {
            match self
                .try_write_port(p, plan, insert, mac_given, attempt)
                .await
            {
                Err(e) if e.is_retryable() && attempt + 1 < RETRIES => {
                    attempt += 1;
                    backoff(attempt).await;
                }
                other => return other,
            }
        }
    }

    async fn try_write_port(
        &self,
        p: &Port,
        plan: &IpPlan,
        insert: bool,
        mac_given: bool,
        attempt: u32,
    ) -> Result<Port> {
        let mut p = p.clone();
        let mut tx = self.db.begin_write().await?;
        if records::network(&mut tx, &p.network_id).await?.is_none() {
            return Err(network_not_found(&p.network_id));
        }
        if insert {
            self.check_quota(&mut tx, &p.project_id, "port", 1).await?;
        }
        if mac_given {
            let held =
                records::mac_held_by_other(&mut tx, &p.network_id, &p.mac_address, &p.id).await?;
            if held {
                return Err(mac_in_use(&p.network_id, &p.mac_address));
            }
        } else if insert {
            let mut tries = 0;
            loop {
                p.mac_address =
                    ip::random_mac(&self.settings.network.base_mac, &mut rand::thread_rng());
                if !records::mac_taken(&mut tx, &p.network_id, &p.mac_address).await? {
                    break;
                }
                tries += 1;
                if tries > 1000 {
                    return Err(Error::internal("cannot find a free MAC address"));
                }
            }
        }
        let ips = self.assign_ips(&mut tx, &p, plan, attempt).await?;
        let ips_changed = ips != p.fixed_ips || insert;
        p.fixed_ips = ips;
        records::put_port(&mut tx, &p, insert).await?;
        if ips_changed {
            records::put_ips(&mut tx, &p).await?;
        }
        tx.commit().await?;
        Ok(p)
    }

    /// The security groups of a port of `project`: the given ones (ids, or names
    /// when `by_name`), or the project's default.
    pub(crate) async fn resolve_groups(
        &self,
        project: &str,
        given: Option<&[String]>,
        port_security: bool,
        by_name: bool,
    ) -> Result<Vec<String>> {
        let Some(given) = given else {
            return Ok(if port_security {
                vec![self.ensure_default_group(project).await?]
            } else {
                Vec::new()
            });
        };
        if !given.is_empty() && !port_security {
            return Err(Error::invalid(
                "PortSecurityAndIPRequiredForSecurityGroups",
                "Port security must be enabled and port must have an IP address in order to use security groups.",
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for g in given {
            let id = if by_name && g == "default" {
                self.ensure_default_group(project).await?
            } else {
                let mut conn = self.conn().await?;
                match records::group(&mut conn, g).await? {
                    Some(found) if found.project_id == project => found.id,
                    _ if by_name => {
                        let hits: Vec<_> =
                            records::groups(&mut conn, records::Who::Project(project))
                                .await?
                                .into_iter()
                                .filter(|x| &x.name == g)
                                .collect();
                        match hits.as_slice() {
                            [one] => one.id.clone(),
                            [] => return Err(crate::service::group_not_found(g)),
                            _ => {
                                return Err(Error::conflict(
                                    "DuplicateSecurityGroupName",
                                    format!(
                                        "Multiple security_group matches found for name '{g}', use an ID to be more specific."
                                    ),
                                ));
                            }
                        }
                    }
                    _ => return Err(crate::service::group_not_found(g)),
                }
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    async fn visible_port(&self, ctx: &RequestContext, id: &str) -> Result<(Port, Network)> {
        let p = records::get_port(&self.db, id)
            .await?
            .ok_or_else(|| port_not_found(id))?;
        let n = records::network(&mut *self.conn().await?, &p.network_id)
            .await?
            .ok_or_else(|| port_not_found(id))?;
        if owns(ctx, &p.project_id) || owns(ctx, &n.project_id) {
            Ok((p, n))
        } else {
            Err(port_not_found(id))
        }
    }

    pub(crate) async fn list_ports(&self, ctx: &RequestContext) -> Result<Vec<Port>> {
        records::ports(&self.db, who(ctx)).await
    }

    pub(crate) async fn show_port(&self, ctx: &RequestContext, id: &str) -> Result<Port> {
        let (p, _) = self.visible_port(ctx, id).await?;
        Ok(p)
    }

    pub(crate) async fn create_port(&self, ctx: &RequestContext, body: Value) -> Result<Port> {
        let m = attrs::body("port", body, SPEC, Op::Create)?;
        let Some(network_id) = attrs::string(&m, "network_id", 255)? else {
            return Err(Error::bad_request(
                "Failed to parse request. Required attribute 'network_id' not specified",
            ));
        };
        let net = self.visible_network(ctx, &network_id).await?;
        let project = attrs::owner(&m, ctx.project_id(), ctx.is_admin())?;
        let net_owner = owns(ctx, &net.project_id);
        let mac = parse_mac(&m)?;
        if mac.is_some() && !net_owner {
            return Err(Error::policy(
                "(rule:create_port and rule:create_port:mac_address)",
            ));
        }
        let fixed = parse_fixed_ips(&m)?;
        if !net_owner && fixed.iter().flatten().any(|r| r.ip.is_some()) {
            return Err(Error::policy(
                "(rule:create_port and rule:create_port:fixed_ips:ip_address)",
            ));
        }
        for a in ["binding:host_id", "binding:profile"] {
            if m.contains_key(a) {
                admin_attr(ctx, "create_port", a)?;
            }
        }
        let vnic = attrs::string(&m, "binding:vnic_type", 64)?.unwrap_or_else(|| "normal".into());
        attrs::one_of("binding:vnic_type", &vnic, VNIC_TYPES)?;
        let port_security =
            attrs::boolean(&m, "port_security_enabled")?.unwrap_or(net.port_security_enabled);
        let given_groups = attrs::string_list(&m, "security_groups")?;
        let device_owner = attrs::string(&m, "device_owner", 255)?.unwrap_or_default();
        let groups = if device_owner.starts_with("network:") && given_groups.is_none() {
            Vec::new()
        } else {
            self.resolve_groups(&project, given_groups.as_deref(), port_security, false)
                .await?
        };
        let now = unix_now();
        let mut tags = attrs::string_list(&m, "tags")?.unwrap_or_default();
        crate::networks::check_tags(&tags)?;
        tags.dedup();
        let p = Port {
            id: ferrostack_core::ids::new_uuid(),
            project_id: project,
            network_id: net.id.clone(),
            name: attrs::string(&m, "name", 255)?.unwrap_or_default(),
            description: attrs::string(&m, "description", 255)?.unwrap_or_default(),
            mac_address: mac.clone().unwrap_or_default(),
            admin_state_up: attrs::boolean(&m, "admin_state_up")?.unwrap_or(true),
            status: "DOWN".into(),
            device_id: attrs::string(&m, "device_id", 255)?.unwrap_or_default(),
            device_owner,
            host_id: attrs::string(&m, "binding:host_id", 255)?.unwrap_or_default(),
            vnic_type: vnic,
            profile: match m.get("binding:profile") {
                None | Some(Value::Null) => json!({}),
                Some(v @ Value::Object(_)) => v.clone(),
                Some(v) => {
                    return Err(Error::invalid_attr(
                        "binding:profile",
                        format!("'{}' is not a dictionary", attrs::py(v)),
                    ));
                }
            },
            port_security_enabled: port_security,
            security_groups: groups,
            allowed_address_pairs: parse_pairs(&m)?.unwrap_or_default(),
            extra_dhcp_opts: parse_dhcp_opts(&m)?.unwrap_or_default(),
            dns_name: attrs::string(&m, "dns_name", 255)?.unwrap_or_default(),
            tags,
            created_at: now,
            updated_at: now,
            revision_number: 1,
            created_by_compute: false,
            compute_slot: None,
            vif_tag: None,
            fixed_ips: Vec::new(),
        };
        if !p.allowed_address_pairs.is_empty() && !p.port_security_enabled {
            return Err(Error::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
        let plan = match fixed {
            Some(r) => IpPlan::Requested(r),
            None => IpPlan::Default,
        };
        let p = self.write_port(&p, &plan, true, mac.is_some()).await?;
        Ok(p)
    }

    pub(crate) async fn update_port(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Port> {
        let m = attrs::body("port", body, SPEC, Op::Update)?;
        let (mut p, net) = self.visible_port(ctx, id).await?;
        crate::service::writer(ctx, "update_port")?;
        let net_owner = owns(ctx, &net.project_id);
        if !owns(ctx, &p.project_id) && !net_owner {
            return Err(Error::policy("rule:update_port"));
        }
        if let Some(v) = attrs::string(&m, "name", 255)? {
            p.name = v;
        }
        if let Some(v) = attrs::string(&m, "description", 255)? {
            p.description = v;
        }
        if let Some(v) = attrs::boolean(&m, "admin_state_up")? {
            p.admin_state_up = v;
        }
        if let Some(v) = attrs::string(&m, "device_id", 255)? {
            p.device_id = v;
        }
        if let Some(v) = attrs::string(&m, "device_owner", 255)? {
            p.device_owner = v;
        }
        if let Some(v) = attrs::string(&m, "dns_name", 255)? {
            p.dns_name = v;
        }
        for a in ["binding:host_id", "binding:profile"] {
            if m.contains_key(a) {
                admin_attr(ctx, "update_port", a)?;
            }
        }
        if let Some(v) = attrs::string(&m, "binding:host_id", 255)? {
            p.host_id = v;
        }
        match m.get("binding:profile") {
            None => {}
            Some(Value::Null) => p.profile = json!({}),
            Some(v @ Value::Object(_)) => p.profile = v.clone(),
            Some(v) => {
                return Err(Error::invalid_attr(
                    "binding:profile",
                    format!("'{}' is not a dictionary", attrs::py(v)),
                ));
            }
        }
        if let Some(v) = attrs::string(&m, "binding:vnic_type", 64)? {
            attrs::one_of("binding:vnic_type", &v, VNIC_TYPES)?;
            p.vnic_type = v;
        }
        let mac = parse_mac(&m)?;
        let mac_changed = mac.as_ref().is_some_and(|x| *x != p.mac_address);
        if let Some(new) = mac.filter(|_| mac_changed) {
            admin_attr(ctx, "update_port", "mac_address")?;
            if !p.host_id.is_empty() {
                return Err(Error::conflict(
                    "PortBound",
                    format!(
                        "Unable to complete operation on port {}, port is already bound, port type: other, old_mac {}, new_mac {new}.",
                        p.id, p.mac_address
                    ),
                ));
            }
            p.mac_address = new;
        }
        if let Some(v) = attrs::boolean(&m, "port_security_enabled")? {
            p.port_security_enabled = v;
        }
        if let Some(pairs) = parse_pairs(&m)? {
            p.allowed_address_pairs = pairs;
        }
        if let Some(opts) = parse_dhcp_opts(&m)? {
            p.extra_dhcp_opts = opts;
        }
        if let Some(groups) = attrs::string_list(&m, "security_groups")? {
            p.security_groups = self
                .resolve_groups(&p.project_id, Some(&groups), p.port_security_enabled, false)
                .await?;
        }
        if !p.port_security_enabled && !p.security_groups.is_empty() {
            return Err(Error::conflict(
                "PortSecurityPortHasSecurityGroup",
                "Port has security group associated. Cannot disable port security or ip address until security group is removed",
            ));
        }
        if !p.port_security_enabled && !p.allowed_address_pairs.is_empty() {
            return Err(Error::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
        let plan = match parse_fixed_ips(&m)? {
            None => IpPlan::Keep,
            Some(mut reqs) => {
                if !net_owner && reqs.iter().any(|r| r.ip.is_some()) {
                    return Err(Error::policy(
                        "(rule:update_port and rule:update_port:fixed_ips:ip_address)",
                    ));
                }
                // A subnet the port already has an address in keeps that address.
                let mut spare = p.fixed_ips.clone();
                for r in reqs.iter_mut() {
                    if let (Some(sid), None) = (&r.subnet_id, r.ip)
                        && let Some(pos) = spare.iter().position(|f| &f.subnet_id == sid)
                    {
                        let kept = spare.remove(pos);
                        r.ip = ip::parse_ip(&kept.ip_address);
                    }
                }
                IpPlan::Requested(reqs)
            }
        };
        p.updated_at = unix_now();
        p.revision_number += 1;
        let p = self.write_port(&p, &plan, false, mac_changed).await?;
        Ok(p)
    }

    pub(crate) async fn delete_port(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        let (p, net) = self.visible_port(ctx, id).await?;
        crate::service::writer(ctx, "delete_port")?;
        if !owns(ctx, &p.project_id) && !owns(ctx, &net.project_id) {
            return Err(Error::policy("rule:delete_port"));
        }
        let mut tx = self.db.begin_write().await?;
        records::delete_port(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}
