//! ferrostack's EC2 Query API domain. A request is authenticated in process
//! ([`auth`]: Signature Version 2 and 4 against Keystone's EC2 credentials, the
//! caller then acts with that user's roles on the credential's project), parsed
//! once into an [`Action`] ([`action`], [`params`]) and carried out on the
//! compute, image, network and identity domains, so every Nova/Glance/Neutron
//! policy applies exactly as over the OpenStack APIs. EC2 ids are derived once
//! from the OpenStack ids and stored both ways ([`ids`], [`records`]).
//!
//! The answers are typed values in AWS's data model ([`model`], [`reply`]); the
//! api crate serializes them into EC2's (or STS's) XML and adds the envelope.

pub mod action;
pub mod auth;
mod catalog;
pub mod error;
mod groups;
pub mod ids;
mod instances;
mod keypairs;
pub mod model;
pub mod params;
mod records;
pub mod reply;
mod tags;
mod vpcs;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ferrostack_compute::Compute;
use ferrostack_core::{Db, RequestContext};
use ferrostack_identity::Identity;
use ferrostack_image::Images;
use ferrostack_network::Networks;

pub use action::Action;
pub use auth::{Caller, HttpRequest};
pub use error::{Error, Result};
pub use reply::Reply;

pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        5_000_001,
        "ec2",
        include_str!("../migrations/5000001_ec2.sql"),
    ),
    (
        5_000_002,
        "ec2 tags",
        include_str!("../migrations/5000002_ec2_tags.sql"),
    ),
];

/// What the EC2 API needs to know of the deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The region (Keystone's catalog region).
    pub region: String,
    /// The EC2 endpoint URL as the catalog shows it (DescribeRegions).
    pub endpoint: String,
    /// How long terminated instances stay listed (AWS: about an hour).
    pub terminated_visible_secs: i64,
}

pub struct Ec2 {
    db: Db,
    identity: Arc<Identity>,
    compute: Arc<Compute>,
    images: Arc<Images>,
    networks: Arc<Networks>,
    settings: Settings,
    /// (kind, OpenStack id) pairs known to be stored, so a list stores only new ones.
    known: Mutex<HashSet<(ids::Kind, String)>>,
}

impl Ec2 {
    /// Applies the migrations and returns the service.
    pub async fn open(
        db: Db,
        identity: Arc<Identity>,
        compute: Arc<Compute>,
        images: Arc<Images>,
        networks: Arc<Networks>,
        settings: Settings,
    ) -> Result<Ec2> {
        db.migrate(MIGRATIONS).await.map_err(Error::internal)?;
        Ok(Ec2 {
            db,
            identity,
            compute,
            images,
            networks,
            settings,
            known: Mutex::new(HashSet::new()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Carries out one action for an authenticated caller.
    pub async fn call(&self, caller: &Caller, action: Action, request_id: &str) -> Result<Reply> {
        let ctx = &caller.ctx;
        use Action as A;
        match action {
            A::DescribeRegions { names } => self.describe_regions(&names),
            A::DescribeAvailabilityZones { names } => self.describe_zones(ctx, &names).await,
            A::DescribeImages {
                ids,
                owners,
                filters,
            } => self.describe_images(ctx, &ids, &owners, &filters).await,
            A::DescribeImageAttribute {
                image_id,
                attribute,
            } => {
                self.describe_image_attribute(ctx, &image_id, &attribute)
                    .await
            }
            A::CreateImage {
                instance_id,
                name,
                description,
                tags,
            } => {
                self.create_image(ctx, &instance_id, name, description, tags, request_id)
                    .await
            }
            A::RunInstances(req) => self.run_instances(ctx, *req, request_id).await,
            A::DescribeInstances {
                ids,
                filters,
                paging,
            } => self.describe_instances(ctx, &ids, &filters, &paging).await,
            A::DescribeInstanceStatus {
                ids,
                filters,
                include_all,
                paging,
            } => {
                self.describe_instance_status(ctx, &ids, &filters, include_all, &paging)
                    .await
            }
            A::TerminateInstances { ids } => self.terminate_instances(ctx, &ids, request_id).await,
            A::StopInstances { ids } => {
                self.power(ctx, &ids, instances::Power::Stop, request_id)
                    .await
            }
            A::StartInstances { ids } => {
                self.power(ctx, &ids, instances::Power::Start, request_id)
                    .await
            }
            A::RebootInstances { ids } => {
                self.power(ctx, &ids, instances::Power::Reboot, request_id)
                    .await
            }
            A::GetConsoleOutput { id } => self.console_output(ctx, &id).await,
            A::GetPasswordData { id } => self.password_data(ctx, &id).await,
            A::DescribeInstanceAttribute { id, attribute } => {
                self.describe_instance_attribute(ctx, &id, attribute).await
            }
            A::ModifyInstanceAttribute { id, change } => {
                self.modify_instance_attribute(ctx, &id, change).await
            }
            A::DescribeInstanceTypes {
                types,
                filters,
                paging,
            } => {
                self.describe_instance_types(ctx, &types, &filters, &paging)
                    .await
            }
            A::CreateKeyPair {
                name,
                key_type,
                tags,
            } => self.add_key_pair(ctx, &name, None, &key_type, tags).await,
            A::ImportKeyPair {
                name,
                public_key,
                tags,
            } => {
                self.add_key_pair(ctx, &name, Some(&public_key), "", tags)
                    .await
            }
            A::DescribeKeyPairs {
                names,
                ids,
                filters,
                include_public_key,
            } => {
                self.describe_key_pairs(ctx, &names, &ids, &filters, include_public_key)
                    .await
            }
            A::DeleteKeyPair { name, id } => self.delete_key_pair(ctx, name, id).await,
            A::DescribeSecurityGroups {
                ids,
                names,
                filters,
            } => {
                self.describe_security_groups(ctx, &ids, &names, &filters)
                    .await
            }
            A::CreateSecurityGroup {
                name,
                description,
                vpc_id,
                tags,
            } => {
                self.create_security_group(ctx, &name, &description, vpc_id, tags)
                    .await
            }
            A::DeleteSecurityGroup { group } => self.delete_security_group(ctx, &group).await,
            A::AuthorizeSecurityGroupIngress { group, permissions } => {
                self.authorize(ctx, &group, &permissions, "ingress").await
            }
            A::RevokeSecurityGroupIngress { group, permissions } => {
                self.revoke(ctx, &group, &permissions, "ingress").await
            }
            A::AuthorizeSecurityGroupEgress { group, permissions } => {
                self.authorize(ctx, &group, &permissions, "egress").await
            }
            A::RevokeSecurityGroupEgress { group, permissions } => {
                self.revoke(ctx, &group, &permissions, "egress").await
            }
            A::CreateTags { resources, tags } => self.create_tags(ctx, &resources, &tags).await,
            A::DeleteTags { resources, tags } => self.delete_tags(ctx, &resources, &tags).await,
            A::DescribeTags { filters, paging } => self.describe_tags(ctx, &filters, &paging).await,
            A::DescribeVpcs { ids, filters } => self.describe_vpcs(ctx, &ids, &filters).await,
            A::DescribeSubnets { ids, filters } => self.describe_subnets(ctx, &ids, &filters).await,
            A::DescribeVolumes {
                ids,
                filters,
                paging,
            } => self.describe_volumes(ctx, &ids, &filters, &paging).await,
            A::DescribeAccountAttributes { names } => Ok(self.account_attributes(&names)),
            A::GetCallerIdentity => Ok(self.caller_identity(caller)),
        }
    }

    /// Whether the instance asked for IMDSv2 tokens (`MetadataOptions.HttpTokens`
    /// = required); instances not made through EC2 never do.
    pub async fn metadata_tokens_required(&self, server_id: &str) -> Result<bool> {
        Ok(records::attrs(&self.db, &[server_id])
            .await?
            .get(server_id)
            .is_some_and(|a| a.http_tokens == "required"))
    }

    /// The 12-digit AWS account id of a project: every `ownerId` of its resources.
    pub fn account_id(project_id: &str) -> String {
        ids::account_id(project_id)
    }

    fn project(ctx: &RequestContext) -> Result<&str> {
        ctx.project_id().ok_or_else(Error::unauthorized)
    }
}
