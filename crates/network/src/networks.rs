//! Networks: create, show, list, update, delete (refused while ports use it).

use serde_json::Value;

use ferrostack_core::RequestContext;
use ferrostack_core::time::unix_now;

use crate::attrs::{self, Op, Spec};
use crate::error::{Error, Result};
use crate::model::Network;
use crate::records;
use crate::service::{Networks, admin_attr, network_not_found, owns, who};

const SPEC: &[Spec] = &[
    ("id", false, false),
    ("name", true, true),
    ("description", true, true),
    ("admin_state_up", true, true),
    ("shared", true, true),
    ("router:external", true, true),
    ("mtu", true, true),
    ("port_security_enabled", true, true),
    ("project_id", true, false),
    ("tenant_id", true, false),
    ("availability_zone_hints", true, false),
    ("provider:network_type", true, false),
    ("provider:physical_network", true, false),
    ("provider:segmentation_id", true, false),
    ("tags", true, false),
    ("status", false, false),
    ("subnets", false, false),
];

/// A network is visible to its project, and to everyone when shared or external.
pub(crate) fn can_see(ctx: &RequestContext, n: &Network) -> bool {
    owns(ctx, &n.project_id) || n.shared || n.external
}

fn check_mtu(mtu: i64) -> Result<()> {
    if mtu > 1500 {
        return Err(Error::invalid_input(
            "Requested MTU is too big, maximum is 1500",
        ));
    }
    if mtu < 68 {
        return Err(Error::invalid_attr(
            "mtu",
            format!("'{mtu}' is too small - must be at least '68'"),
        ));
    }
    Ok(())
}

pub(crate) fn check_tags(tags: &[String]) -> Result<()> {
    for t in tags {
        if t.is_empty() || t.chars().count() > 255 || t.contains(',') || t.contains('/') {
            return Err(Error::invalid_attr(
                "tags",
                format!("'{t}' is not a valid tag"),
            ));
        }
    }
    Ok(())
}

impl Networks {
    /// Loads a network the caller may see, or 404.
    pub(crate) async fn visible_network(&self, ctx: &RequestContext, id: &str) -> Result<Network> {
        let n = records::network(&mut *self.conn().await?, id)
            .await?
            .ok_or_else(|| network_not_found(id))?;
        if can_see(ctx, &n) {
            Ok(n)
        } else {
            Err(network_not_found(id))
        }
    }

    pub(crate) async fn list_networks(&self, ctx: &RequestContext) -> Result<Vec<Network>> {
        records::networks(&mut *self.conn().await?, who(ctx)).await
    }

    pub(crate) async fn show_network(&self, ctx: &RequestContext, id: &str) -> Result<Network> {
        self.visible_network(ctx, id).await
    }

    pub(crate) async fn create_network(
        &self,
        ctx: &RequestContext,
        body: Value,
    ) -> Result<Network> {
        let m = attrs::body("network", body, SPEC, Op::Create)?;
        let project = attrs::owner(&m, ctx.project_id(), ctx.is_admin())?;
        let now = unix_now();
        let mut n = Network {
            id: ferrostack_core::ids::new_uuid(),
            project_id: project,
            name: attrs::string(&m, "name", 255)?.unwrap_or_default(),
            description: attrs::string(&m, "description", 255)?.unwrap_or_default(),
            admin_state_up: attrs::boolean(&m, "admin_state_up")?.unwrap_or(true),
            shared: attrs::boolean(&m, "shared")?.unwrap_or(false),
            external: attrs::boolean(&m, "router:external")?.unwrap_or(false),
            mtu: attrs::integer(&m, "mtu")?.unwrap_or(1500),
            port_security_enabled: attrs::boolean(&m, "port_security_enabled")?.unwrap_or(true),
            availability_zone_hints: attrs::string_list(&m, "availability_zone_hints")?
                .unwrap_or_default(),
            provider_network_type: attrs::string(&m, "provider:network_type", 255)?,
            provider_physical_network: attrs::string(&m, "provider:physical_network", 255)?,
            provider_segmentation_id: attrs::integer(&m, "provider:segmentation_id")?,
            tags: attrs::string_list(&m, "tags")?.unwrap_or_default(),
            created_at: now,
            updated_at: now,
            revision_number: 1,
            subnets: Vec::new(),
        };
        check_mtu(n.mtu)?;
        check_tags(&n.tags)?;
        if n.shared {
            admin_attr(ctx, "create_network", "shared")?;
        }
        if n.external {
            admin_attr(ctx, "create_network", "router:external")?;
        }
        for p in [
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        ] {
            if m.contains_key(p) {
                admin_attr(ctx, "create_network", p)?;
            }
        }
        n.tags.dedup();
        let mut tx = self.db.begin_write().await?;
        self.check_quota(&mut tx, &n.project_id, "network", 1)
            .await?;
        records::put_network(&mut tx, &n, true).await?;
        tx.commit().await?;
        Ok(n)
    }

    pub(crate) async fn update_network(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Network> {
        let m = attrs::body("network", body, SPEC, Op::Update)?;
        let mut n = self.visible_network(ctx, id).await?;
        crate::service::writer(ctx, "update_network")?;
        if !owns(ctx, &n.project_id) {
            return Err(Error::policy("rule:update_network"));
        }
        if let Some(v) = attrs::string(&m, "name", 255)? {
            n.name = v;
        }
        if let Some(v) = attrs::string(&m, "description", 255)? {
            n.description = v;
        }
        if let Some(v) = attrs::boolean(&m, "admin_state_up")? {
            n.admin_state_up = v;
        }
        if let Some(v) = attrs::boolean(&m, "shared")? {
            if v != n.shared {
                admin_attr(ctx, "update_network", "shared")?;
            }
            n.shared = v;
        }
        if let Some(v) = attrs::boolean(&m, "router:external")? {
            if v != n.external {
                admin_attr(ctx, "update_network", "router:external")?;
            }
            n.external = v;
        }
        if let Some(v) = attrs::integer(&m, "mtu")? {
            check_mtu(v)?;
            n.mtu = v;
        }
        if let Some(v) = attrs::boolean(&m, "port_security_enabled")? {
            n.port_security_enabled = v;
        }
        let mut tx = self.db.begin_write().await?;
        if !n.shared {
            // Neutron: a network other projects use cannot stop being shared.
            let foreign = records::ports_of_network(&mut tx, &n.id)
                .await?
                .iter()
                .any(|p| p.project_id != n.project_id && !p.device_owner.starts_with("network:"));
            if foreign {
                return Err(Error::conflict(
                    "InvalidSharedSetting",
                    format!(
                        "Unable to reconfigure sharing settings for network {}. Multiple tenants are using it.",
                        n.id
                    ),
                ));
            }
        }
        n.updated_at = unix_now();
        n.revision_number += 1;
        records::put_network(&mut tx, &n, false).await?;
        tx.commit().await?;
        Ok(n)
    }

    pub(crate) async fn delete_network(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        let n = self.visible_network(ctx, id).await?;
        crate::service::writer(ctx, "delete_network")?;
        if !owns(ctx, &n.project_id) {
            return Err(Error::policy("rule:delete_network"));
        }
        let mut tx = self.db.begin_write().await?;
        let ports = records::ports_of_network(&mut tx, id).await?;
        if ports
            .iter()
            .any(|p| !p.device_owner.starts_with("network:"))
        {
            return Err(Error::conflict(
                "NetworkInUse",
                format!(
                    "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
                ),
            ));
        }
        for p in &ports {
            records::delete_port(&mut tx, &p.id).await?;
        }
        for s in records::subnets_of(&mut tx, id).await? {
            records::delete_subnet(&mut tx, &s.id).await?;
        }
        records::delete_network(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}
