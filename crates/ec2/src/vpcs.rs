//! VPCs and subnets: every Neutron network the project can use is a VPC and its
//! IPv4 subnets are the VPC's subnets; the network RunInstances uses by default
//! is the project's default VPC (`isDefault`), its first subnet `defaultForAz`.

use ferrostack_core::RequestContext;
use ferrostack_network::{Kind as NKind, NetworkRequest, RequestedNetwork, Resource};

use crate::error::{Error, Result};
use crate::ids::{Kind, ec2_id};
use crate::instances::ids_account;
use crate::model::*;
use crate::params::{Filter, all_match};
use crate::reply::*;
use crate::{Ec2, Reply};

#[derive(Debug, Clone)]
pub(crate) struct SubnetRow {
    pub id: String,
    pub network_id: String,
    pub cidr: String,
}

/// Addresses of an IPv4 CIDR less network, broadcast and gateway (what AWS counts
/// as available in an empty subnet, minus its own 5 reserved).
fn capacity(cidr: &str) -> i64 {
    let bits: i64 = cidr
        .split('/')
        .nth(1)
        .and_then(|b| b.parse().ok())
        .unwrap_or(24);
    ((1i64 << (32 - bits.clamp(0, 32))) - 5).max(0)
}

impl Ec2 {
    /// The Neutron resources of `kind` the caller sees, ordered by id (Neutron's
    /// default list order), as `pick` takes them.
    pub(crate) async fn neutron_list<T>(
        &self,
        ctx: &RequestContext,
        kind: NKind,
        pick: fn(Resource) -> Option<T>,
    ) -> Result<Vec<T>> {
        let mut all = self.networks.list(ctx, kind).await?;
        all.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(all.into_iter().filter_map(pick).collect())
    }

    pub(crate) async fn visible_subnets(&self, ctx: &RequestContext) -> Result<Vec<SubnetRow>> {
        let subnets = self
            .neutron_list(ctx, NKind::Subnet, |r| match r {
                Resource::Subnet(s) => Some(s),
                _ => None,
            })
            .await?;
        Ok(subnets
            .into_iter()
            .filter(|s| s.ip_version == 4)
            .map(|s| SubnetRow {
                id: s.id,
                network_id: s.network_id,
                cidr: s.cidr,
            })
            .collect())
    }

    async fn default_network_id(&self, ctx: &RequestContext) -> Result<Option<String>> {
        let project = Self::project(ctx)?;
        Ok(self.networks.default_network(project).await?.map(|n| n.id))
    }

    pub(crate) async fn default_vpc_id(&self, ctx: &RequestContext) -> Result<String> {
        Ok(self
            .default_network_id(ctx)
            .await?
            .map(|n| ec2_id(Kind::Vpc, &n))
            .unwrap_or_default())
    }

    pub(crate) async fn default_network_request(
        &self,
        ctx: &RequestContext,
    ) -> Result<NetworkRequest> {
        match self.default_network_id(ctx).await? {
            Some(id) => Ok(NetworkRequest::List(vec![RequestedNetwork {
                network_id: Some(id),
                port_id: None,
                fixed_ip: None,
                tag: None,
            }])),
            None => Err(Error::new(
                400,
                "VPCIdNotSpecified",
                "No default VPC for this user.",
            )),
        }
    }

    pub(crate) async fn vpcs(&self, ctx: &RequestContext) -> Result<Vec<Vpc>> {
        let project = Self::project(ctx)?;
        let account = ids_account(project);
        let default = self.default_network_id(ctx).await?;
        let nets = self
            .neutron_list(ctx, NKind::Network, |r| match r {
                Resource::Network(n) => Some(n),
                _ => None,
            })
            .await?;
        let subnets = self.visible_subnets(ctx).await?;
        let stored = crate::records::tags(&self.db, project).await?;
        let mut out = Vec::new();
        let mut pairs = Vec::new();
        for n in &nets {
            let id = n.id.clone();
            let cidrs: Vec<&SubnetRow> = subnets.iter().filter(|x| x.network_id == id).collect();
            let Some(first) = cidrs.first() else { continue };
            let vpc_id = ec2_id(Kind::Vpc, &id);
            let name = n.name.clone();
            out.push(Vpc {
                vpc_id: vpc_id.clone(),
                owner_id: account.clone(),
                state: "available",
                cidr_block: first.cidr.clone(),
                cidr_block_association_set: cidrs
                    .iter()
                    .map(|c| CidrAssociation {
                        cidr_block: c.cidr.clone(),
                        association_id: format!(
                            "vpc-cidr-assoc-{}",
                            &ec2_id(Kind::Subnet, &c.id)[7..]
                        ),
                        cidr_block_state: StateName {
                            state: "associated",
                        },
                    })
                    .collect::<Vec<_>>()
                    .into(),
                ipv6_cidr_block_association_set: Items::default(),
                dhcp_options_id: "default",
                instance_tenancy: "default",
                is_default: default.as_deref() == Some(id.as_str()),
                tag_set: {
                    let mut tags = stored.get(&vpc_id).cloned().unwrap_or_default();
                    if !name.is_empty() && !tags.iter().any(|(k, _)| k == "Name") {
                        tags.insert(0, ("Name".to_string(), name));
                    }
                    tag_items(tags)
                },
            });
            pairs.push(id);
        }
        let refs: Vec<(&str, &str)> = pairs.iter().map(|p| (p.as_str(), project)).collect();
        self.remember(Kind::Vpc, &refs).await?;
        Ok(out)
    }

    pub(crate) async fn describe_vpcs(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        filters: &[Filter],
    ) -> Result<Reply> {
        let vpcs = self.vpcs(ctx).await?;
        for id in ids {
            Kind::Vpc.check(id)?;
            if !vpcs.iter().any(|v| &v.vpc_id == id) {
                return Err(Kind::Vpc.not_found(id));
            }
        }
        let mut out = Vec::new();
        for v in vpcs {
            if !ids.is_empty() && !ids.contains(&v.vpc_id) {
                continue;
            }
            let keep = all_match(filters, |f| {
                Some(match f.name.as_str() {
                    "vpc-id" => f.matches(&v.vpc_id),
                    "isDefault" | "is-default" => f.matches(&v.is_default.to_string()),
                    "state" => f.matches(v.state),
                    "cidr" | "cidr-block" | "cidrBlock" => f.matches(&v.cidr_block),
                    "owner-id" => f.matches(&v.owner_id),
                    n if n.starts_with("tag:") => v
                        .tag_set
                        .item
                        .iter()
                        .any(|t| t.key == n[4..] && f.matches(&t.value)),
                    _ => return None,
                })
            })?;
            if keep {
                out.push(v);
            }
        }
        Ok(Reply::Vpcs(VpcsReply {
            vpc_set: out.into(),
        }))
    }

    pub(crate) async fn describe_subnets(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        filters: &[Filter],
    ) -> Result<Reply> {
        let project = Self::project(ctx)?;
        let account = ids_account(project);
        let default = self.default_network_id(ctx).await?;
        let subnets = self.visible_subnets(ctx).await?;
        let pairs: Vec<(&str, &str)> = subnets.iter().map(|x| (x.id.as_str(), project)).collect();
        self.remember(Kind::Subnet, &pairs).await?;
        let zone = self.default_zone();
        let stored = crate::records::tags(&self.db, project).await?;
        let mut seen_default = false;
        let mut all = Vec::new();
        for x in &subnets {
            let subnet_id = ec2_id(Kind::Subnet, &x.id);
            let subnet_tags = stored.get(&subnet_id).cloned().unwrap_or_default();
            let is_default_net = default.as_deref() == Some(x.network_id.as_str());
            let default_for_az = is_default_net && !seen_default;
            seen_default |= default_for_az;
            all.push(Subnet {
                subnet_arn: format!(
                    "arn:aws:ec2:{}:{account}:subnet/{subnet_id}",
                    self.settings.region
                ),
                subnet_id,
                state: "available",
                owner_id: account.clone(),
                vpc_id: ec2_id(Kind::Vpc, &x.network_id),
                cidr_block: x.cidr.clone(),
                ipv6_cidr_block_association_set: Items::default(),
                available_ip_address_count: capacity(&x.cidr),
                availability_zone: zone.clone(),
                availability_zone_id: zone.clone(),
                default_for_az,
                map_public_ip_on_launch: false,
                map_customer_owned_ip_on_launch: false,
                assign_ipv6_address_on_creation: false,
                enable_dns64: false,
                ipv6_native: false,
                private_dns_name_options_on_launch: SubnetDnsOptions {
                    hostname_type: "ip-name",
                    enable_resource_name_dns_a_record: false,
                    enable_resource_name_dns_aaaa_record: false,
                },
                tag_set: tag_items(subnet_tags),
            });
        }
        for id in ids {
            Kind::Subnet.check(id)?;
            if !all.iter().any(|x| &x.subnet_id == id) {
                return Err(Kind::Subnet.not_found(id));
            }
        }
        let mut out = Vec::new();
        for x in all {
            if !ids.is_empty() && !ids.contains(&x.subnet_id) {
                continue;
            }
            let keep = all_match(filters, |f| {
                Some(match f.name.as_str() {
                    "subnet-id" => f.matches(&x.subnet_id),
                    "vpc-id" => f.matches(&x.vpc_id),
                    "state" => f.matches(x.state),
                    "availability-zone" | "availabilityZone" => f.matches(&x.availability_zone),
                    "default-for-az" | "defaultForAz" => f.matches(&x.default_for_az.to_string()),
                    "cidr-block" | "cidr" | "cidrBlock" => f.matches(&x.cidr_block),
                    "owner-id" => f.matches(&x.owner_id),
                    _ => return None,
                })
            })?;
            if keep {
                out.push(x);
            }
        }
        Ok(Reply::Subnets(SubnetsReply {
            subnet_set: out.into(),
        }))
    }
}
