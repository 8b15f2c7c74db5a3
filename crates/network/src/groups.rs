//! Security groups and their rules: the per-project `default` group (made on first
//! need, with Neutron's four rules), rule validation (protocols, port ranges, ICMP
//! type/code, prefixes matching the ethertype), duplicates, groups in use.

use serde_json::{Map, Value};

use ferrostack_core::RequestContext;
use ferrostack_core::time::unix_now;

use crate::attrs::{self, Op, Spec};
use crate::error::{Error, Result};
use crate::ip::Cidr;
use crate::model::{Rule, SecurityGroup};
use crate::records;
use crate::service::{Networks, group_not_found, owns, rule_not_found, who};

const GROUP_SPEC: &[Spec] = &[
    ("id", false, false),
    ("name", true, true),
    ("description", true, true),
    ("stateful", true, true),
    ("project_id", true, false),
    ("tenant_id", true, false),
    ("tags", true, false),
    ("security_group_rules", false, false),
];

const RULE_SPEC: &[Spec] = &[
    ("id", false, false),
    ("security_group_id", true, false),
    ("direction", true, false),
    ("ethertype", true, false),
    ("protocol", true, false),
    ("port_range_min", true, false),
    ("port_range_max", true, false),
    ("remote_ip_prefix", true, false),
    ("remote_group_id", true, false),
    ("remote_address_group_id", true, false),
    ("description", true, true),
    ("project_id", true, false),
    ("tenant_id", true, false),
    ("normalized_cidr", false, false),
];

const PROTOCOL_NAMES: &[&str] = &[
    "ah",
    "dccp",
    "egp",
    "esp",
    "gre",
    "hopopt",
    "icmp",
    "igmp",
    "ipip",
    "ipv6-encap",
    "ipv6-frag",
    "ipv6-icmp",
    "icmpv6",
    "ipv6-nonxt",
    "ipv6-opts",
    "ipv6-route",
    "ospf",
    "pgm",
    "rsvp",
    "sctp",
    "tcp",
    "udp",
    "udplite",
    "vrrp",
];

/// The protocol number behind a name, for comparisons.
fn protocol_number(p: &str) -> Option<u8> {
    Some(match p {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "dccp" => 33,
        "sctp" => 132,
        "udplite" => 136,
        "ipv6-icmp" | "icmpv6" => 58,
        "ah" => 51,
        "esp" => 50,
        "gre" => 47,
        "igmp" => 2,
        "ipip" => 4,
        "ospf" => 89,
        "vrrp" => 112,
        "hopopt" => 0,
        "egp" => 8,
        "ipv6-encap" => 41,
        "ipv6-frag" => 44,
        "ipv6-nonxt" => 59,
        "ipv6-opts" => 60,
        "ipv6-route" => 43,
        "pgm" => 113,
        "rsvp" => 46,
        n => return n.parse().ok(),
    })
}

fn new_rule(group: &SecurityGroup, direction: &str, ethertype: &str, remote_group: bool) -> Rule {
    let now = unix_now();
    Rule {
        id: ferrostack_core::ids::new_uuid(),
        project_id: group.project_id.clone(),
        security_group_id: group.id.clone(),
        direction: direction.into(),
        ethertype: ethertype.into(),
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_group.then(|| group.id.clone()),
        description: String::new(),
        created_at: now,
        updated_at: now,
        revision_number: 0,
        in_default_group: false,
    }
}

/// What makes two rules the same rule.
type RuleKey = (
    String,
    String,
    Option<u8>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn rule_key(r: &Rule) -> RuleKey {
    let prefix = r
        .remote_ip_prefix
        .clone()
        .filter(|p| p != "0.0.0.0/0" && p != "::/0");
    (
        r.direction.clone(),
        r.ethertype.clone(),
        r.protocol.as_deref().and_then(protocol_number),
        r.port_range_min,
        r.port_range_max,
        prefix,
        r.remote_group_id.clone(),
    )
}

fn port_value(m: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(Value::String(s)) if s.parse::<i64>().is_ok() => Ok(s.parse().ok()),
        Some(v) => Err(Error::invalid(
            "SecurityGroupInvalidPortValue",
            format!("Invalid value for port {}", attrs::py(v)),
        )),
    }
}

/// Checks and normalises a rule's protocol and port range (Neutron's rules).
fn check_ports(r: &mut Rule) -> Result<()> {
    let (min, max) = (r.port_range_min, r.port_range_max);
    if min.is_none() && max.is_none() {
        return Ok(());
    }
    let Some(proto) = r.protocol.clone() else {
        return Err(Error::invalid(
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        ));
    };
    match protocol_number(&proto) {
        Some(6 | 17 | 33 | 132 | 136) => {
            for v in [min, max].into_iter().flatten() {
                if !(1..=65535).contains(&v) {
                    return Err(Error::invalid(
                        "SecurityGroupInvalidPortValue",
                        format!("Invalid value for port {v}"),
                    ));
                }
            }
            // Neutron wants both ends for these protocols (one port: min = max)
            let (Some(min), Some(max)) = (min, max) else {
                return Err(Error::invalid(
                    "SecurityGroupInvalidPortRange",
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                ));
            };
            if min > max {
                return Err(Error::invalid(
                    "SecurityGroupInvalidPortRange",
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                ));
            }
            r.port_range_min = Some(min);
            r.port_range_max = Some(max);
        }
        Some(1 | 58) => {
            for (field, v) in [("type", min), ("code", max)] {
                if let Some(v) = v
                    && !(0..=255).contains(&v)
                {
                    return Err(Error::invalid(
                        "SecurityGroupInvalidIcmpValue",
                        format!(
                            "Invalid value for ICMP {field} (type or code) setting: {field}={v}. Value must be between 0 and 255."
                        ),
                    ));
                }
            }
            if min.is_none()
                && let Some(code) = max
            {
                return Err(Error::invalid(
                    "SecurityGroupMissingIcmpType",
                    format!(
                        "ICMP code (port-range-max) {code} is provided but ICMP type (port-range-min) is missing."
                    ),
                ));
            }
        }
        _ => {
            return Err(Error::invalid(
                "SecurityGroupInvalidProtocolForPortRange",
                format!(
                    "Invalid protocol {proto} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP."
                ),
            ));
        }
    }
    Ok(())
}

fn parse_protocol(m: &Map<String, Value>) -> Result<Option<String>> {
    let raw = match m.get("protocol") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.to_lowercase(),
        Some(v) => attrs::py(v),
    };
    if raw.is_empty() || raw == "any" {
        return Ok(None);
    }
    let ok = PROTOCOL_NAMES.contains(&raw.as_str()) || raw.parse::<u16>().is_ok_and(|n| n <= 255);
    if !ok {
        return Err(Error::invalid(
            "SecurityGroupRuleInvalidProtocol",
            format!(
                "Security group rule protocol {raw} not supported. Only protocol values [None, {}] and integer representations [0 to 255] are supported.",
                PROTOCOL_NAMES
                    .iter()
                    .map(|p| format!("'{p}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(Some(raw))
}

impl Networks {
    /// The project's `default` group, created (with its rules) when missing.
    pub async fn ensure_default_group(&self, project: &str) -> Result<String> {
        if let Some(id) = records::default_group_of(&mut *self.conn().await?, project).await? {
            return Ok(id);
        }
        let now = unix_now();
        let g = SecurityGroup {
            id: ferrostack_core::ids::new_uuid(),
            project_id: project.to_string(),
            name: "default".into(),
            description: "Default security group".into(),
            stateful: true,
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
            revision_number: 1,
            rules: Vec::new(),
            is_default: true,
        };
        let rules = [
            new_rule(&g, "egress", "IPv4", false),
            new_rule(&g, "egress", "IPv6", false),
            new_rule(&g, "ingress", "IPv4", true),
            new_rule(&g, "ingress", "IPv6", true),
        ];
        let attempt = async {
            let mut tx = self.db.begin_write().await?;
            if let Some(id) = records::default_group_of(&mut tx, project).await? {
                return Ok(id);
            }
            records::put_group(&mut tx, &g, true).await?;
            for r in &rules {
                records::insert_rule(&mut tx, r).await?;
            }
            records::set_default_group(&mut tx, project, &g.id).await?;
            tx.commit().await?;
            Ok::<String, Error>(g.id.clone())
        };
        match attempt.await {
            Err(e) if e.is_retryable() => {
                records::default_group_of(&mut *self.conn().await?, project)
                    .await?
                    .ok_or(e)
            }
            other => other,
        }
    }

    async fn visible_group(&self, ctx: &RequestContext, id: &str) -> Result<SecurityGroup> {
        let g = records::group(&mut *self.conn().await?, id)
            .await?
            .ok_or_else(|| group_not_found(id))?;
        if owns(ctx, &g.project_id) {
            Ok(g)
        } else {
            Err(group_not_found(id))
        }
    }

    async fn ensure_callers_default(&self, ctx: &RequestContext) -> Result<()> {
        if let Some(p) = ctx.project_id() {
            self.ensure_default_group(p).await?;
        }
        Ok(())
    }

    pub(crate) async fn list_groups(&self, ctx: &RequestContext) -> Result<Vec<SecurityGroup>> {
        self.ensure_callers_default(ctx).await?;
        records::groups(&mut *self.conn().await?, who(ctx)).await
    }

    pub(crate) async fn show_group(&self, ctx: &RequestContext, id: &str) -> Result<SecurityGroup> {
        self.ensure_callers_default(ctx).await?;
        self.visible_group(ctx, id).await
    }

    pub(crate) async fn create_group(
        &self,
        ctx: &RequestContext,
        body: Value,
    ) -> Result<SecurityGroup> {
        let m = attrs::body("security_group", body, GROUP_SPEC, Op::Create)?;
        let project = attrs::owner(&m, ctx.project_id(), ctx.is_admin())?;
        let name = attrs::string(&m, "name", 255)?.unwrap_or_default();
        if name == "default" {
            return Err(Error::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
        self.ensure_default_group(&project).await?;
        let now = unix_now();
        let mut tags = attrs::string_list(&m, "tags")?.unwrap_or_default();
        crate::networks::check_tags(&tags)?;
        tags.dedup();
        let mut g = SecurityGroup {
            id: ferrostack_core::ids::new_uuid(),
            project_id: project,
            name,
            description: attrs::string(&m, "description", 255)?.unwrap_or_default(),
            stateful: attrs::boolean(&m, "stateful")?.unwrap_or(true),
            tags,
            created_at: now,
            updated_at: now,
            revision_number: 1,
            rules: Vec::new(),
            is_default: false,
        };
        // Neutron gives every new group the two "allow all egress" rules.
        g.rules = vec![
            new_rule(&g, "egress", "IPv4", false),
            new_rule(&g, "egress", "IPv6", false),
        ];
        let mut tx = self.db.begin_write().await?;
        self.check_quota(&mut tx, &g.project_id, "security_group", 1)
            .await?;
        records::put_group(&mut tx, &g, true).await?;
        for r in &g.rules {
            records::insert_rule(&mut tx, r).await?;
        }
        tx.commit().await?;
        Ok(g)
    }

    pub(crate) async fn update_group(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<SecurityGroup> {
        let m = attrs::body("security_group", body, GROUP_SPEC, Op::Update)?;
        let mut g = self.visible_group(ctx, id).await?;
        crate::service::writer(ctx, "update_security_group")?;
        if let Some(name) = attrs::string(&m, "name", 255)? {
            if g.is_default && name != "default" {
                return Err(Error::conflict(
                    "SecurityGroupCannotUpdateDefault",
                    "Updating default security group not allowed.",
                ));
            }
            if !g.is_default && name == "default" {
                return Err(Error::conflict(
                    "SecurityGroupDefaultAlreadyExists",
                    "Default security group already exists.",
                ));
            }
            g.name = name;
        }
        if let Some(v) = attrs::string(&m, "description", 255)? {
            g.description = v;
        }
        if let Some(v) = attrs::boolean(&m, "stateful")? {
            g.stateful = v;
        }
        g.updated_at = unix_now();
        g.revision_number += 1;
        let mut tx = self.db.begin_write().await?;
        records::put_group(&mut tx, &g, false).await?;
        tx.commit().await?;
        Ok(g)
    }

    pub(crate) async fn delete_group(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        let g = self.visible_group(ctx, id).await?;
        crate::service::writer(ctx, "delete_security_group")?;
        if g.is_default && !ctx.is_admin() {
            return Err(Error::conflict(
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ));
        }
        let mut tx = self.db.begin_write().await?;
        if records::group_in_use(&mut tx, id).await? {
            return Err(Error::conflict(
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ));
        }
        records::delete_group(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- rules ---------------------------------------------------------------------------

    pub(crate) async fn list_rules(&self, ctx: &RequestContext) -> Result<Vec<Rule>> {
        self.ensure_callers_default(ctx).await?;
        let groups = records::groups(&mut *self.conn().await?, who(ctx)).await?;
        Ok(groups.into_iter().flat_map(|g| g.rules).collect())
    }

    async fn visible_rule(&self, ctx: &RequestContext, id: &str) -> Result<Rule> {
        let r = records::rule(&mut *self.conn().await?, id)
            .await?
            .ok_or_else(|| rule_not_found(id))?;
        if owns(ctx, &r.project_id) {
            Ok(r)
        } else {
            Err(rule_not_found(id))
        }
    }

    pub(crate) async fn show_rule(&self, ctx: &RequestContext, id: &str) -> Result<Rule> {
        self.visible_rule(ctx, id).await
    }

    pub(crate) async fn create_rule(&self, ctx: &RequestContext, body: Value) -> Result<Rule> {
        let m = attrs::body("security_group_rule", body, RULE_SPEC, Op::Create)?;
        for required in ["security_group_id", "direction"] {
            if !m.contains_key(required) {
                return Err(Error::bad_request(format!(
                    "Failed to parse request. Required attribute '{required}' not specified"
                )));
            }
        }
        let group_id = attrs::string(&m, "security_group_id", 255)?.unwrap_or_default();
        let direction = attrs::string(&m, "direction", 16)?.unwrap_or_default();
        attrs::one_of("direction", &direction, &["ingress", "egress"])?;
        let ethertype = attrs::string(&m, "ethertype", 16)?.unwrap_or_else(|| "IPv4".into());
        let ethertype = match ethertype.to_lowercase().as_str() {
            "ipv4" => "IPv4".to_string(),
            "ipv6" => "IPv6".to_string(),
            _ => {
                attrs::one_of("ethertype", &ethertype, &["IPv4", "IPv6"])?;
                ethertype
            }
        };
        let protocol = parse_protocol(&m)?;
        if ethertype == "IPv4" && protocol.as_deref().and_then(protocol_number) == Some(58) {
            return Err(Error::invalid(
                "SecurityGroupEthertypeConflictWithProtocol",
                format!(
                    "Invalid ethertype IPv4 for protocol {}.",
                    protocol.as_deref().unwrap_or("")
                ),
            ));
        }
        let prefix = match attrs::string_or_null(&m, "remote_ip_prefix", 64)? {
            Some(Some(p)) => {
                let c = Cidr::parse_lenient(&p).ok_or_else(|| {
                    Error::invalid_attr(
                        "remote_ip_prefix",
                        format!("'{p}' is not a valid IP subnet"),
                    )
                })?;
                let want = if ethertype == "IPv4" { 4 } else { 6 };
                if c.version != want {
                    return Err(Error::invalid(
                        "SecurityGroupRuleParameterConflict",
                        format!("Conflicting value ethertype {ethertype} for CIDR {p}"),
                    ));
                }
                Some(c.to_string())
            }
            _ => None,
        };
        let remote_group = attrs::string_or_null(&m, "remote_group_id", 255)?.flatten();
        if prefix.is_some() && remote_group.is_some() {
            return Err(Error::invalid(
                "SecurityGroupRemoteGroupAndRemoteIpPrefix",
                "Only remote_ip_prefix or remote_group_id may be provided.",
            ));
        }
        if matches!(m.get("remote_address_group_id"), Some(v) if !v.is_null()) {
            return Err(Error::bad_request("Address groups are not supported"));
        }
        let group = self.visible_group(ctx, &group_id).await?;
        crate::service::writer(ctx, "create_security_group_rule")?;
        if let Some(rg) = &remote_group {
            self.visible_group(ctx, rg).await?;
        }
        let mut r = new_rule(&group, &direction, &ethertype, false);
        r.protocol = protocol;
        r.port_range_min = port_value(&m, "port_range_min")?;
        r.port_range_max = port_value(&m, "port_range_max")?;
        r.remote_ip_prefix = prefix;
        r.remote_group_id = remote_group;
        r.description = attrs::string(&m, "description", 255)?.unwrap_or_default();
        r.in_default_group = group.is_default;
        check_ports(&mut r)?;
        let mut tx = self.db.begin_write().await?;
        let current = records::group(&mut tx, &group.id)
            .await?
            .ok_or_else(|| group_not_found(&group.id))?;
        if let Some(dup) = current.rules.iter().find(|x| rule_key(x) == rule_key(&r)) {
            return Err(Error::conflict(
                "SecurityGroupRuleExists",
                format!("Security group rule already exists. Rule id is {}.", dup.id),
            ));
        }
        self.check_quota(&mut tx, &r.project_id, "security_group_rule", 1)
            .await?;
        records::insert_rule(&mut tx, &r).await?;
        tx.commit().await?;
        Ok(r)
    }

    pub(crate) async fn update_rule(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Rule> {
        let m = attrs::body("security_group_rule", body, RULE_SPEC, Op::Update)?;
        let mut r = self.visible_rule(ctx, id).await?;
        crate::service::writer(ctx, "update_security_group_rule")?;
        if let Some(v) = attrs::string(&m, "description", 255)? {
            r.description = v;
        }
        r.updated_at = unix_now();
        r.revision_number += 1;
        let mut tx = self.db.begin_write().await?;
        records::update_rule(&mut tx, &r).await?;
        tx.commit().await?;
        Ok(r)
    }

    pub(crate) async fn delete_rule(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        self.visible_rule(ctx, id).await?;
        crate::service::writer(ctx, "delete_security_group_rule")?;
        let mut tx = self.db.begin_write().await?;
        records::delete_rule(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(proto: Option<&str>, min: Option<i64>, max: Option<i64>) -> Rule {
        let g = SecurityGroup {
            id: "g".into(),
            project_id: "p".into(),
            name: "x".into(),
            description: String::new(),
            stateful: true,
            tags: vec![],
            created_at: 0,
            updated_at: 0,
            revision_number: 0,
            rules: vec![],
            is_default: false,
        };
        let mut r = new_rule(&g, "ingress", "IPv4", false);
        r.protocol = proto.map(str::to_string);
        r.port_range_min = min;
        r.port_range_max = max;
        r
    }

    #[test]
    fn port_ranges_follow_neutron() {
        assert!(check_ports(&mut rule(Some("tcp"), Some(22), Some(22))).is_ok());
        let e = check_ports(&mut rule(Some("tcp"), Some(80), Some(22))).unwrap_err();
        assert_eq!(e.kind(), "SecurityGroupInvalidPortRange");
        let e = check_ports(&mut rule(None, Some(80), Some(80))).unwrap_err();
        assert_eq!(e.kind(), "SecurityGroupProtocolRequiredWithPorts");
        let e = check_ports(&mut rule(Some("tcp"), Some(0), Some(80))).unwrap_err();
        assert_eq!(e.kind(), "SecurityGroupInvalidPortValue");
        let e = check_ports(&mut rule(Some("gre"), Some(1), Some(2))).unwrap_err();
        assert_eq!(e.kind(), "SecurityGroupInvalidProtocolForPortRange");
        assert!(check_ports(&mut rule(Some("icmp"), Some(8), Some(0))).is_ok());
        let e = check_ports(&mut rule(Some("icmp"), Some(300), None)).unwrap_err();
        assert_eq!(e.kind(), "SecurityGroupInvalidIcmpValue");
        let e = check_ports(&mut rule(Some("icmp"), None, Some(0))).unwrap_err();
        assert_eq!(e.kind(), "SecurityGroupMissingIcmpType");
        // one end only is a range error for TCP/UDP (tempest checks (None, 6))
        let e = check_ports(&mut rule(Some("6"), Some(443), None)).unwrap_err();
        assert_eq!(e.kind(), "SecurityGroupInvalidPortRange");
        let e = check_ports(&mut rule(Some("tcp"), None, Some(6))).unwrap_err();
        assert_eq!(e.kind(), "SecurityGroupInvalidPortRange");
    }

    #[test]
    fn protocols_and_duplicates() {
        let m = serde_json::json!({"protocol": "TCP"});
        assert_eq!(
            parse_protocol(m.as_object().unwrap()).unwrap().as_deref(),
            Some("tcp")
        );
        let m = serde_json::json!({"protocol": 17});
        assert_eq!(
            parse_protocol(m.as_object().unwrap()).unwrap().as_deref(),
            Some("17")
        );
        let m = serde_json::json!({"protocol": "bogus"});
        assert_eq!(
            parse_protocol(m.as_object().unwrap()).unwrap_err().kind(),
            "SecurityGroupRuleInvalidProtocol"
        );
        let m = serde_json::json!({"protocol": "256"});
        assert!(parse_protocol(m.as_object().unwrap()).is_err());
        // "tcp" and "6" are the same rule; 0.0.0.0/0 is the same as no prefix
        let a = rule(Some("tcp"), Some(22), Some(22));
        let mut b = rule(Some("6"), Some(22), Some(22));
        b.remote_ip_prefix = Some("0.0.0.0/0".into());
        assert_eq!(rule_key(&a), rule_key(&b));
    }
}
