//! What a guest receives, built in one place: the spawn spec the host's pipeline
//! turns into disks, config drive and domain, and the guest data the metadata
//! service answers from — the same `pipeline::guest_data` over the same spec, so
//! the config drive and the service never disagree.

use ferrostack_virt::guest::{GuestData, GuestIp, GuestRoute, GuestSubnet};
use ferrostack_virt::{SpawnSpec, SpecNic};

use crate::error::{Error, Result};
use crate::records::servers as records;
use crate::servers::model::Server;
use crate::service::Compute;

impl Compute {
    /// What the host needs to build and start the guest.
    pub(crate) async fn spawn_spec(&self, s: &Server) -> Result<SpawnSpec> {
        let mut files = Vec::new();
        for p in &s.doc.personality {
            let bytes = crate::servers::request::decode_base64(&p.contents).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Personality content for {} cannot be decoded",
                    p.path
                ))
            })?;
            files.push((p.path.clone(), bytes));
        }
        let user_data = match &s.doc.user_data {
            Some(u) => Some(
                crate::servers::request::decode_base64(u)
                    .ok_or_else(|| Error::BadRequest("User data cannot be decoded".into()))?,
            ),
            None => None,
        };
        let details = self.networks.nic_details(&s.doc.addresses).await?;
        let nics = details
            .into_iter()
            .map(|d| SpecNic {
                port_id: d.vif.port_id.clone(),
                network_id: d.vif.network_id.clone(),
                mac: d.vif.mac_address.clone(),
                fixed_ips: d
                    .vif
                    .fixed_ips
                    .iter()
                    .map(|f| f.ip_address.clone())
                    .collect(),
                mtu: d.mtu,
                addresses: d
                    .addresses
                    .into_iter()
                    .map(|(address, sn)| guest_ip(address, sn))
                    .collect(),
            })
            .collect();
        Ok(SpawnSpec {
            uuid: s.id.clone(),
            name: s.name.clone(),
            hostname: s.doc.hostname.clone(),
            project_id: s.project_id.clone(),
            user_id: s.user_id.clone(),
            vcpus: s.vcpus,
            memory_mb: s.memory_mb,
            root_gb: s.root_gb,
            ephemeral_gb: s.ephemeral_gb,
            swap_mb: s.doc.flavor.swap_mb,
            image_id: Some(s.image_ref.clone()).filter(|i| !i.is_empty()),
            flavor_extra_specs: s.doc.flavor.extra_specs.clone(),
            image_properties: s.doc.image_properties.clone(),
            metadata: s.doc.metadata.clone(),
            key_data: s.doc.key_data.clone(),
            files,
            user_data,
            config_drive: s.doc.config_drive,
            admin_password: s.doc.pending.admin_pass.clone(),
            nics,
            availability_zone: s.availability_zone.clone().unwrap_or_default(),
            key_name: s.doc.key_name.clone(),
            flavor_name: s.doc.flavor.name.clone(),
            launch_index: u32::try_from(s.launch_index).unwrap_or(0),
            reservation_id: s.reservation_id.clone(),
            security_groups: s.doc.security_groups.clone(),
            created_at: s.created_at_us / 1_000_000,
        })
    }

    /// The data a guest reads from the metadata service, for the instance
    /// `server_id` (`None`: no such live server). Called by the metadata service
    /// after it has identified the guest by its channel: no policy applies.
    pub async fn guest_data(
        &self,
        server_id: &str,
        dhcp_domain: Option<String>,
    ) -> Result<Option<GuestData>> {
        let mut conn = crate::records::acquire(&self.db).await?;
        let Some(s) = records::load(&mut conn, server_id).await? else {
            return Ok(None);
        };
        drop(conn);
        if s.deleted {
            return Ok(None);
        }
        let spec = self.spawn_spec(&s).await?;
        Ok(Some(ferrostack_virt::pipeline::guest_data(
            &spec,
            dhcp_domain,
        )))
    }

    /// The encrypted password the guest posted (empty when none).
    pub async fn guest_password(&self, server_id: &str) -> Result<String> {
        let mut conn = crate::records::acquire(&self.db).await?;
        Ok(records::load(&mut conn, server_id)
            .await?
            .and_then(|s| s.doc.password)
            .unwrap_or_default())
    }

    /// The guest posts its encrypted password (`POST /openstack/latest/password`):
    /// kept once, as Nova does (a second post is refused until an admin clears
    /// it with `DELETE /servers/{id}/os-server-password`).
    pub async fn guest_posts_password(&self, server_id: &str, password: &str) -> Result<()> {
        if password.len() > 256 {
            return Err(Error::BadRequest("Request is too large.".into()));
        }
        for _ in 0..20 {
            let mut conn = crate::records::acquire(&self.db).await?;
            let Some(mut s) = records::load(&mut conn, server_id).await? else {
                return Err(Error::NotFound(format!(
                    "Instance {server_id} could not be found."
                )));
            };
            drop(conn);
            if s.doc.password.as_deref().is_some_and(|p| !p.is_empty()) {
                return Err(Error::Conflict("Password already set.".into()));
            }
            s.doc.password = Some(password.to_string());
            match self.save(s, false).await {
                Err(Error::Stale(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(Error::Conflict(
            "The server is changing too fast to apply this request; try again.".into(),
        ))
    }
}

/// A fixed address with its subnet, as the guest-data code wants it.
fn guest_ip(address: String, sn: ferrostack_network::model::Subnet) -> GuestIp {
    GuestIp {
        address,
        subnet: GuestSubnet {
            id: sn.id,
            cidr: sn.cidr,
            ip_version: sn.ip_version,
            gateway_ip: sn.gateway_ip,
            dns_nameservers: sn.dns_nameservers,
            host_routes: sn
                .host_routes
                .into_iter()
                .map(|r| GuestRoute {
                    destination: r.destination,
                    nexthop: r.nexthop,
                })
                .collect(),
            enable_dhcp: sn.enable_dhcp,
            ipv6_address_mode: sn.ipv6_address_mode,
        },
    }
}
