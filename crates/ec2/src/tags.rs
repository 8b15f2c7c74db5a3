//! Tags: on instances they are the server's metadata, on images the image's
//! custom properties (what `openstack server show` / `image show` list).

use std::collections::BTreeMap;

use serde_json::json;

use ferrostack_core::RequestContext;
use ferrostack_image::attrs::PatchFormat;

use crate::action::Paging;
use crate::catalog::is_tag_property;
use crate::error::{Error, Result};
use crate::ids::{Kind, ec2_id};
use crate::model::*;
use crate::params::{Filter, all_match};
use crate::records;
use crate::reply::*;
use crate::{Ec2, Reply};

enum Resource {
    Instance(String),
    Image(String),
    /// A resource whose tags are kept by the EC2 API itself (its EC2 id).
    Stored(String),
}

/// JSON pointer escaping of a property name (`~` and `/`).
fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

impl Ec2 {
    async fn tag_target(&self, ctx: &RequestContext, id: &str) -> Result<Resource> {
        if id.starts_with("i-") {
            let os = self.resolve(Kind::Instance, id).await?;
            self.compute
                .get_server(ctx, &os)
                .await
                .map_err(|e| match e {
                    ferrostack_compute::Error::NotFound(_) => Kind::Instance.not_found(id),
                    other => other.into(),
                })?;
            Ok(Resource::Instance(os))
        } else if id.starts_with("ami-") {
            Ok(Resource::Image(self.image(ctx, id).await?.id))
        } else {
            let visible = if id.starts_with("vol-") {
                let os = self.resolve(Kind::Volume, id).await?;
                self.compute.get_server(ctx, &os).await.is_ok()
            } else if id.starts_with("sg-") {
                Kind::SecurityGroup.check(id)?;
                self.project_groups(ctx)
                    .await?
                    .iter()
                    .any(|g| ec2_id(Kind::SecurityGroup, &g.id) == id)
            } else if id.starts_with("vpc-") {
                Kind::Vpc.check(id)?;
                self.vpcs(ctx).await?.iter().any(|v| v.vpc_id == id)
            } else if id.starts_with("subnet-") {
                Kind::Subnet.check(id)?;
                self.visible_subnets(ctx)
                    .await?
                    .iter()
                    .any(|x| ec2_id(Kind::Subnet, &x.id) == id)
            } else if id.starts_with("key-") {
                Kind::KeyPair.check(id)?;
                self.key_pair_ids(ctx).await?.iter().any(|k| k == id)
            } else {
                return Err(Error::new(
                    400,
                    "InvalidID",
                    format!("The ID '{id}' is not valid"),
                ));
            };
            if !visible {
                return Err(Error::new(
                    400,
                    "InvalidID",
                    format!("The ID '{id}' does not exist"),
                ));
            }
            Ok(Resource::Stored(id.to_string()))
        }
    }

    fn check_tag(key: &str, value: &str) -> Result<()> {
        if key.starts_with("aws:") {
            return Err(Error::invalid_param(
                "Tag keys starting with 'aws:' are reserved for internal use",
            ));
        }
        if key.chars().count() > 128 || value.chars().count() > 255 {
            return Err(Error::invalid_value(
                "Tag",
                key,
                "Tag keys are at most 128 and values at most 255 characters.",
            ));
        }
        Ok(())
    }

    pub(crate) async fn create_tags(
        &self,
        ctx: &RequestContext,
        resources: &[String],
        tags: &[(String, String)],
    ) -> Result<Reply> {
        for (k, v) in tags {
            Self::check_tag(k, v)?;
        }
        let mut targets = Vec::new();
        for id in resources {
            targets.push(self.tag_target(ctx, id).await?);
        }
        for t in targets {
            match t {
                Resource::Instance(os) => {
                    let items: BTreeMap<String, String> = tags.iter().cloned().collect();
                    self.compute
                        .set_server_metadata(ctx, &os, items, false)
                        .await?;
                }
                Resource::Stored(id) => {
                    records::put_tags(&self.db, Self::project(ctx)?, &id, tags).await?;
                }
                Resource::Image(os) => {
                    let patch: Vec<serde_json::Value> = tags
                        .iter()
                        .map(|(k, v)| json!({"op": "add", "path": pointer(k), "value": v}))
                        .collect();
                    self.images
                        .update(ctx, &os, &serde_json::Value::Array(patch), PatchFormat::V21)
                        .await?;
                }
            }
        }
        Ok(Reply::Return(ReturnReply { ret: true }))
    }

    pub(crate) async fn delete_tags(
        &self,
        ctx: &RequestContext,
        resources: &[String],
        tags: &[(String, Option<String>)],
    ) -> Result<Reply> {
        let mut targets = Vec::new();
        for id in resources {
            targets.push(self.tag_target(ctx, id).await?);
        }
        for t in targets {
            match t {
                Resource::Instance(os) => {
                    let s = self.compute.get_server(ctx, &os).await?;
                    let doomed: Vec<String> = if tags.is_empty() {
                        s.doc.metadata.keys().cloned().collect()
                    } else {
                        tags.iter()
                            .filter(|(k, v)| {
                                s.doc
                                    .metadata
                                    .get(k)
                                    .is_some_and(|cur| v.as_ref().is_none_or(|v| v == cur))
                            })
                            .map(|(k, _)| k.clone())
                            .collect()
                    };
                    for k in doomed {
                        match self.compute.delete_server_metadata(ctx, &os, &k).await {
                            Ok(()) | Err(ferrostack_compute::Error::NotFound(_)) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Resource::Stored(id) => {
                    records::delete_tags(&self.db, Self::project(ctx)?, &id, tags).await?;
                }
                Resource::Image(os) => {
                    let image = self.images.get(ctx, &os).await?;
                    let patch: Vec<serde_json::Value> = image
                        .properties
                        .iter()
                        .filter(|(k, cur)| {
                            is_tag_property(k)
                                && (tags.is_empty()
                                    || tags.iter().any(|(tk, tv)| {
                                        tk == *k && tv.as_ref().is_none_or(|v| v == *cur)
                                    }))
                        })
                        .map(|(k, _)| json!({"op": "remove", "path": pointer(k)}))
                        .collect();
                    if !patch.is_empty() {
                        self.images
                            .update(ctx, &os, &serde_json::Value::Array(patch), PatchFormat::V21)
                            .await?;
                    }
                }
            }
        }
        Ok(Reply::Return(ReturnReply { ret: true }))
    }

    pub(crate) async fn describe_tags(
        &self,
        ctx: &RequestContext,
        filters: &[Filter],
        paging: &Paging,
    ) -> Result<Reply> {
        let project = Self::project(ctx)?.to_string();
        let mut out = Vec::new();
        let servers = self.compute.project_servers(ctx, i64::MAX).await?;
        let pairs: Vec<(&str, &str)> = servers
            .iter()
            .map(|s| (s.id.as_str(), s.project_id.as_str()))
            .collect();
        self.remember(Kind::Instance, &pairs).await?;
        for s in &servers {
            let id = ec2_id(Kind::Instance, &s.id);
            for (k, v) in &s.doc.metadata {
                out.push(TagDescription {
                    resource_id: id.clone(),
                    resource_type: "instance",
                    key: k.clone(),
                    value: v.clone(),
                });
            }
        }
        for i in self.glance_images(ctx).await? {
            if i.owner.as_deref() != Some(project.as_str()) {
                continue;
            }
            let id = ec2_id(Kind::Image, &i.id);
            for (k, v) in i.properties.iter().filter(|(k, _)| is_tag_property(k)) {
                out.push(TagDescription {
                    resource_id: id.clone(),
                    resource_type: "image",
                    key: k.clone(),
                    value: v.clone(),
                });
            }
        }
        for (id, tags) in records::tags(&self.db, &project).await? {
            let resource_type = match id.split('-').next().unwrap_or_default() {
                "vol" => "volume",
                "sg" => "security-group",
                "vpc" => "vpc",
                "subnet" => "subnet",
                "key" => "key-pair",
                _ => continue,
            };
            for (key, value) in tags {
                out.push(TagDescription {
                    resource_id: id.clone(),
                    resource_type,
                    key,
                    value,
                });
            }
        }
        let mut kept = Vec::new();
        for t in out {
            let keep = all_match(filters, |f| {
                Some(match f.name.as_str() {
                    "resource-id" => f.matches(&t.resource_id),
                    "resource-type" => f.matches(t.resource_type),
                    "key" => f.matches(&t.key),
                    "value" => f.matches(&t.value),
                    n if n.starts_with("tag:") => t.key == n[4..] && f.matches(&t.value),
                    _ => return None,
                })
            })?;
            if keep {
                kept.push(t);
            }
        }
        let (page, next) = page(kept, paging.max_results, paging.next_token.as_deref())?;
        Ok(Reply::Tags(TagsReply {
            tag_set: page.into(),
            next_token: next,
        }))
    }
}
