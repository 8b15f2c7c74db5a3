//! The tags sub-resource (`/v2.0/{networks,subnets,ports,security-groups}/{id}/tags`).

use ferrostack_core::RequestContext;
use ferrostack_core::time::unix_now;

use crate::error::{Error, Result};
use crate::networks::check_tags;
use crate::records;
use crate::service::{Kind, Networks, owns, writer};

impl Networks {
    /// The tags of a resource the caller sees.
    pub async fn tags(&self, ctx: &RequestContext, kind: Kind, id: &str) -> Result<Vec<String>> {
        Ok(self.show(ctx, kind, id).await?.tags().to_vec())
    }

    /// Changes a resource's tags with `f`; returns the new tags.
    pub async fn modify_tags(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        id: &str,
        f: impl FnOnce(&mut Vec<String>) -> Result<()>,
    ) -> Result<Vec<String>> {
        // visibility first (404), then the right to change it (403)
        let shown = self.show(ctx, kind, id).await?;
        writer(ctx, &format!("update_{}", kind.singular()))?;
        if !owns(ctx, shown.project_id()) {
            return Err(Error::policy(&format!(
                "rule:update_{}_tags",
                kind.plural()
            )));
        }
        let now = unix_now();
        let mut tx = self.db.begin_write().await?;
        let tags = match kind {
            Kind::Network => {
                let mut n = records::network(&mut tx, id)
                    .await?
                    .ok_or_else(|| crate::service::network_not_found(id))?;
                f(&mut n.tags)?;
                n.updated_at = now;
                n.revision_number += 1;
                records::put_network(&mut tx, &n, false).await?;
                n.tags
            }
            Kind::Subnet => {
                let mut s = records::subnet(&mut tx, id)
                    .await?
                    .ok_or_else(|| crate::service::subnet_not_found(id))?;
                f(&mut s.tags)?;
                s.updated_at = now;
                s.revision_number += 1;
                records::put_subnet(&mut tx, &s, false).await?;
                s.tags
            }
            Kind::Port => {
                let mut p = records::port(&mut tx, id)
                    .await?
                    .ok_or_else(|| crate::service::port_not_found(id))?;
                f(&mut p.tags)?;
                p.updated_at = now;
                p.revision_number += 1;
                records::put_port(&mut tx, &p, false).await?;
                p.tags
            }
            Kind::SecurityGroup => {
                let mut g = records::group(&mut tx, id)
                    .await?
                    .ok_or_else(|| crate::service::group_not_found(id))?;
                f(&mut g.tags)?;
                g.updated_at = now;
                g.revision_number += 1;
                records::put_group(&mut tx, &g, false).await?;
                g.tags
            }
            Kind::SecurityGroupRule => {
                return Err(Error::not_found(
                    "HTTPNotFound",
                    "The resource could not be found.",
                ));
            }
        };
        tx.commit().await?;
        Ok(tags)
    }

    /// `PUT .../tags`: replaces every tag.
    pub async fn replace_tags(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        id: &str,
        new: Vec<String>,
    ) -> Result<Vec<String>> {
        check_tags(&new)?;
        self.modify_tags(ctx, kind, id, |tags| {
            tags.clear();
            for t in new {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            Ok(())
        })
        .await
    }

    /// `PUT .../tags/{tag}`.
    pub async fn add_tag(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        id: &str,
        tag: &str,
    ) -> Result<()> {
        check_tags(&[tag.to_string()])?;
        self.modify_tags(ctx, kind, id, |tags| {
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// `DELETE .../tags/{tag}` (404 `TagNotFound` when absent).
    pub async fn remove_tag(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        id: &str,
        tag: &str,
    ) -> Result<()> {
        self.modify_tags(ctx, kind, id, |tags| {
            let before = tags.len();
            tags.retain(|t| t != tag);
            if tags.len() == before {
                return Err(Error::not_found(
                    "TagNotFound",
                    format!("Tag {tag} could not be found for {} {id}.", kind.singular()),
                ));
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }
}
