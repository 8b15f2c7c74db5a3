//! Security groups onto Neutron's: EC2's IpPermissions are Neutron rules
//! (ingress/egress, protocol, port range, a CIDR or a remote group), grouped
//! back by (protocol, ports) for the answers.

use serde_json::{Value as Json, json};

use ferrostack_core::RequestContext;
use ferrostack_network::{Kind as NKind, Resource};

use crate::action::{GroupRef, Permission};
use crate::error::{Error, Result};
use crate::ids::{Kind, ec2_id};
use crate::instances::ids_account;
use crate::model::*;
use crate::params::{Filter, all_match};
use crate::reply::*;
use crate::{Ec2, Reply};

#[derive(Debug, Clone)]
pub(crate) struct RuleRow {
    pub id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub prefix: Option<String>,
    pub remote_group: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub project_id: String,
    pub rules: Vec<RuleRow>,
}

fn group_row(g: ferrostack_network::model::SecurityGroup) -> GroupRow {
    GroupRow {
        id: g.id,
        name: g.name,
        description: g.description,
        project_id: g.project_id,
        rules: g
            .rules
            .into_iter()
            .map(|r| RuleRow {
                id: r.id,
                direction: r.direction,
                ethertype: r.ethertype,
                protocol: r.protocol,
                min: r.port_range_min,
                max: r.port_range_max,
                prefix: r.remote_ip_prefix,
                remote_group: r.remote_group_id,
            })
            .collect(),
    }
}

/// EC2's protocol name of a Neutron protocol (`-1` = all).
fn ec2_protocol(p: Option<&str>) -> String {
    match p {
        None | Some("any") => "-1".into(),
        Some(p) => p.to_string(),
    }
}

fn neutron_protocol(p: &str) -> Result<Option<String>> {
    Ok(match p {
        "-1" | "all" => None,
        "tcp" | "udp" | "icmp" | "icmpv6" => Some(p.to_string()),
        "6" => Some("tcp".into()),
        "17" => Some("udp".into()),
        "1" => Some("icmp".into()),
        n if n.parse::<u8>().is_ok() => Some(n.to_string()),
        other => {
            return Err(Error::new(
                400,
                "InvalidParameterValue",
                format!("Invalid value '{other}' for IP protocol. Unknown protocol."),
            ));
        }
    })
}

impl Ec2 {
    pub(crate) async fn project_groups(&self, ctx: &RequestContext) -> Result<Vec<GroupRow>> {
        let project = Self::project(ctx)?;
        self.networks.ensure_default_group(project).await?;
        let groups: Vec<GroupRow> = self
            .neutron_list(ctx, NKind::SecurityGroup, |r| match r {
                Resource::SecurityGroup(g) => Some(g),
                _ => None,
            })
            .await?
            .into_iter()
            .map(group_row)
            .filter(|g| g.project_id == project)
            .collect();
        let pairs: Vec<(&str, &str)> = groups.iter().map(|g| (g.id.as_str(), project)).collect();
        self.remember(Kind::SecurityGroup, &pairs).await?;
        Ok(groups)
    }

    async fn group(&self, ctx: &RequestContext, r: &GroupRef) -> Result<GroupRow> {
        let groups = self.project_groups(ctx).await?;
        match r {
            GroupRef::Id(id) => {
                Kind::SecurityGroup.check(id)?;
                groups
                    .into_iter()
                    .find(|g| ec2_id(Kind::SecurityGroup, &g.id) == *id)
                    .ok_or_else(|| Error::not_found("InvalidGroup.NotFound", "security group", id))
            }
            GroupRef::Name(n) => groups.into_iter().find(|g| &g.name == n).ok_or_else(|| {
                Error::new(
                    400,
                    "InvalidGroup.NotFound",
                    format!("The security group '{n}' does not exist in default VPC"),
                )
            }),
        }
    }

    fn permissions_view(
        &self,
        g: &GroupRow,
        all: &[GroupRow],
        direction: &str,
        account: &str,
    ) -> Vec<IpPermission> {
        let mut out: Vec<IpPermission> = Vec::new();
        for r in g.rules.iter().filter(|r| r.direction == direction) {
            let protocol = ec2_protocol(r.protocol.as_deref());
            let (from, to) = if protocol == "-1" {
                (None, None)
            } else if matches!(protocol.as_str(), "icmp" | "icmpv6") {
                (Some(r.min.unwrap_or(-1)), Some(r.max.unwrap_or(-1)))
            } else {
                (Some(r.min.unwrap_or(0)), Some(r.max.unwrap_or(65535)))
            };
            let i = match out
                .iter()
                .position(|p| p.ip_protocol == protocol && p.from_port == from && p.to_port == to)
            {
                Some(i) => i,
                None => {
                    out.push(IpPermission {
                        ip_protocol: protocol.clone(),
                        from_port: from,
                        to_port: to,
                        groups: Items::default(),
                        ip_ranges: Items::default(),
                        ipv6_ranges: Items::default(),
                        prefix_list_ids: Items::default(),
                    });
                    out.len() - 1
                }
            };
            let p = &mut out[i];
            if let Some(rg) = &r.remote_group {
                // One EC2 pair covers both address families (Neutron keeps a rule each).
                let group_id = ec2_id(Kind::SecurityGroup, rg);
                if p.groups.item.iter().any(|g| g.group_id == group_id) {
                    continue;
                }
                p.groups.item.push(GroupPair {
                    user_id: account.to_string(),
                    group_id,
                    group_name: all
                        .iter()
                        .find(|x| &x.id == rg)
                        .map(|x| x.name.clone())
                        .unwrap_or_default(),
                });
            } else if r.ethertype == "IPv6" {
                p.ipv6_ranges.item.push(Ipv6Range {
                    cidr_ipv6: r.prefix.clone().unwrap_or_else(|| "::/0".into()),
                    description: None,
                });
            } else {
                p.ip_ranges.item.push(IpRange {
                    cidr_ip: r.prefix.clone().unwrap_or_else(|| "0.0.0.0/0".into()),
                    description: None,
                });
            }
        }
        out
    }

    pub(crate) async fn describe_security_groups(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        names: &[String],
        filters: &[Filter],
    ) -> Result<Reply> {
        let project = Self::project(ctx)?;
        let account = ids_account(project);
        let groups = self.project_groups(ctx).await?;
        let vpc = self.default_vpc_id(ctx).await?;
        let stored = crate::records::tags(&self.db, project).await?;
        for id in ids {
            Kind::SecurityGroup.check(id)?;
            if !groups
                .iter()
                .any(|g| ec2_id(Kind::SecurityGroup, &g.id) == *id)
            {
                return Err(Error::not_found(
                    "InvalidGroup.NotFound",
                    "security group",
                    id,
                ));
            }
        }
        for n in names {
            if !groups.iter().any(|g| &g.name == n) {
                return Err(Error::new(
                    400,
                    "InvalidGroup.NotFound",
                    format!("The security group '{n}' does not exist in default VPC"),
                ));
            }
        }
        let mut out = Vec::new();
        for g in &groups {
            let gid = ec2_id(Kind::SecurityGroup, &g.id);
            if (!ids.is_empty() && !ids.contains(&gid))
                || (!names.is_empty() && !names.contains(&g.name))
            {
                continue;
            }
            let view = SecurityGroup {
                owner_id: account.clone(),
                group_id: gid.clone(),
                group_name: g.name.clone(),
                group_description: if g.description.is_empty() {
                    g.name.clone()
                } else {
                    g.description.clone()
                },
                vpc_id: vpc.clone(),
                security_group_arn: format!(
                    "arn:aws:ec2:{}:{account}:security-group/{gid}",
                    self.settings.region
                ),
                ip_permissions: self
                    .permissions_view(g, &groups, "ingress", &account)
                    .into(),
                ip_permissions_egress: self.permissions_view(g, &groups, "egress", &account).into(),
                tag_set: tag_items(stored.get(&gid).cloned().unwrap_or_default()),
            };
            let keep = all_match(filters, |f| {
                Some(match f.name.as_str() {
                    "group-id" => f.matches(&view.group_id),
                    "group-name" => f.matches(&view.group_name),
                    "description" => f.matches(&view.group_description),
                    "vpc-id" => f.matches(&view.vpc_id),
                    "owner-id" => f.matches(&view.owner_id),
                    "ip-permission.protocol" => view
                        .ip_permissions
                        .item
                        .iter()
                        .any(|p| f.matches(&p.ip_protocol)),
                    "ip-permission.cidr" => view
                        .ip_permissions
                        .item
                        .iter()
                        .any(|p| p.ip_ranges.item.iter().any(|r| f.matches(&r.cidr_ip))),
                    "ip-permission.from-port" => view
                        .ip_permissions
                        .item
                        .iter()
                        .any(|p| p.from_port.is_some_and(|x| f.matches(&x.to_string()))),
                    "ip-permission.to-port" => view
                        .ip_permissions
                        .item
                        .iter()
                        .any(|p| p.to_port.is_some_and(|x| f.matches(&x.to_string()))),
                    _ => return None,
                })
            })?;
            if keep {
                out.push(view);
            }
        }
        Ok(Reply::SecurityGroups(SecurityGroupsReply {
            security_group_info: out.into(),
        }))
    }

    pub(crate) async fn create_security_group(
        &self,
        ctx: &RequestContext,
        name: &str,
        description: &str,
        vpc_id: Option<String>,
        tags: Vec<(String, String)>,
    ) -> Result<Reply> {
        let project = Self::project(ctx)?;
        if let Some(v) = &vpc_id {
            Kind::Vpc.check(v)?;
            if !self.vpcs(ctx).await?.iter().any(|x| &x.vpc_id == v) {
                return Err(Kind::Vpc.not_found(v));
            }
        }
        if name.len() > 255 || name.starts_with("sg-") {
            return Err(Error::invalid_value(
                "GroupName",
                name,
                "Invalid security group name.",
            ));
        }
        if self
            .project_groups(ctx)
            .await?
            .iter()
            .any(|g| g.name == name)
        {
            return Err(Error::duplicate(
                "InvalidGroup.Duplicate",
                format!(
                    "The security group '{name}' already exists for VPC '{}'",
                    self.default_vpc_id(ctx).await?
                ),
            ));
        }
        let created = self
            .networks
            .create(
                ctx,
                NKind::SecurityGroup,
                json!({"security_group": {"name": name, "description": description}}),
            )
            .await?;
        let id = created.id().to_string();
        self.remember(Kind::SecurityGroup, &[(id.as_str(), project)])
            .await?;
        let gid = ec2_id(Kind::SecurityGroup, &id);
        crate::records::put_tags(&self.db, project, &gid, &tags).await?;
        Ok(Reply::CreatedGroup(CreatedGroupReply {
            ret: true,
            security_group_arn: format!(
                "arn:aws:ec2:{}:{}:security-group/{gid}",
                self.settings.region,
                ids_account(project)
            ),
            group_id: gid,
            tag_set: tag_items(tags),
        }))
    }

    pub(crate) async fn delete_security_group(
        &self,
        ctx: &RequestContext,
        r: &GroupRef,
    ) -> Result<Reply> {
        let g = self.group(ctx, r).await?;
        if g.name == "default" {
            return Err(Error::new(
                400,
                "CannotDelete",
                "the specified group: \"default\" name: \"default\" cannot be deleted by a user",
            ));
        }
        self.networks
            .delete(ctx, NKind::SecurityGroup, &g.id)
            .await?;
        Ok(Reply::Return(ReturnReply { ret: true }))
    }

    /// Each permission as the Neutron rules it means.
    async fn rule_bodies(
        &self,
        ctx: &RequestContext,
        g: &GroupRow,
        perms: &[Permission],
        direction: &str,
    ) -> Result<Vec<Json>> {
        let groups = self.project_groups(ctx).await?;
        let mut out = Vec::new();
        for p in perms {
            let protocol = neutron_protocol(&p.protocol)?;
            let (min, max) = match protocol.as_deref() {
                None => (None, None),
                Some("icmp" | "icmpv6") => (
                    p.from_port.filter(|x| *x >= 0),
                    p.to_port.filter(|x| *x >= 0),
                ),
                Some("tcp" | "udp") => {
                    let (Some(a), Some(b)) = (p.from_port, p.to_port) else {
                        return Err(Error::new(
                            400,
                            "InvalidParameterValue",
                            "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
                        ));
                    };
                    if a == -1 && b == -1 {
                        (None, None)
                    } else if !(0..=65535).contains(&a) || !(0..=65535).contains(&b) || a > b {
                        return Err(Error::new(
                            400,
                            "InvalidParameterValue",
                            format!("Invalid TCP/UDP port range {a}-{b}."),
                        ));
                    } else {
                        (Some(a), Some(b))
                    }
                }
                Some(_) => (None, None),
            };
            let base = |ethertype: &str| {
                json!({
                    "security_group_id": g.id,
                    "direction": direction,
                    "ethertype": ethertype,
                    "protocol": protocol,
                    "port_range_min": min,
                    "port_range_max": max,
                })
            };
            for c in &p.cidrs {
                let mut b = base("IPv4");
                b["remote_ip_prefix"] = json!(c);
                out.push(b);
            }
            for c in &p.cidrs_v6 {
                let mut b = base("IPv6");
                b["remote_ip_prefix"] = json!(c);
                out.push(b);
            }
            for gref in &p.groups {
                let target = groups
                    .iter()
                    .find(|x| ec2_id(Kind::SecurityGroup, &x.id) == *gref || &x.name == gref)
                    .ok_or_else(|| {
                        Error::not_found("InvalidGroup.NotFound", "security group", gref)
                    })?;
                for family in ["IPv4", "IPv6"] {
                    let mut b = base(family);
                    b["remote_group_id"] = json!(target.id);
                    out.push(b);
                }
            }
            if p.cidrs.is_empty() && p.cidrs_v6.is_empty() && p.groups.is_empty() {
                return Err(Error::missing("IpPermissions.N.IpRanges"));
            }
        }
        Ok(out)
    }

    pub(crate) async fn authorize(
        &self,
        ctx: &RequestContext,
        r: &GroupRef,
        perms: &[Permission],
        direction: &str,
    ) -> Result<Reply> {
        let g = self.group(ctx, r).await?;
        for body in self.rule_bodies(ctx, &g, perms, direction).await? {
            let v6_pair = body.get("remote_group_id").is_some() && body["ethertype"] == "IPv6";
            match self
                .networks
                .create(
                    ctx,
                    NKind::SecurityGroupRule,
                    json!({"security_group_rule": body}),
                )
                .await
            {
                Ok(_) => {}
                // the IPv6 half of a group pair may be there already (Neutron's default)
                Err(ferrostack_network::Error::Conflict { .. }) if v6_pair => {}
                Err(ferrostack_network::Error::Conflict { message, .. }) => {
                    return Err(Error::new(
                        400,
                        "InvalidPermission.Duplicate",
                        format!("the specified rule already exists: {message}"),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Reply::Return(ReturnReply { ret: true }))
    }

    pub(crate) async fn revoke(
        &self,
        ctx: &RequestContext,
        r: &GroupRef,
        perms: &[Permission],
        direction: &str,
    ) -> Result<Reply> {
        let g = self.group(ctx, r).await?;
        let wanted = self.rule_bodies(ctx, &g, perms, direction).await?;
        let mut doomed = Vec::new();
        for w in &wanted {
            let hit = g.rules.iter().find(|rule| {
                rule.direction == direction
                    && rule.ethertype == w["ethertype"].as_str().unwrap_or("IPv4")
                    && rule.protocol.as_deref() == w["protocol"].as_str()
                    && rule.min == w["port_range_min"].as_i64()
                    && rule.max == w["port_range_max"].as_i64()
                    && rule.prefix.as_deref() == w.get("remote_ip_prefix").and_then(Json::as_str)
                    && rule.remote_group.as_deref()
                        == w.get("remote_group_id").and_then(Json::as_str)
            });
            match hit {
                Some(rule) => doomed.push(rule.id.clone()),
                // A group pair may exist for one family only (made over Neutron).
                None if w.get("remote_group_id").is_some() && w["ethertype"] == "IPv6" => {}
                None => {
                    return Err(Error::new(
                        400,
                        "InvalidPermission.NotFound",
                        "The specified rule does not exist in this security group.",
                    ));
                }
            }
        }
        for id in doomed {
            self.networks
                .delete(ctx, NKind::SecurityGroupRule, &id)
                .await?;
        }
        Ok(Reply::Return(ReturnReply { ret: true }))
    }
}
