//! Availability zones (`os-availability-zone`): the zones of the registered
//! compute hosts. A zone is available while one of its services is enabled; the
//! detail (admin) adds the hosts and their services, and the controller's
//! services in zone `internal`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use ferrostack_core::RequestContext;

use crate::error::Result;
use crate::hypervisors::{controller_host, load_hosts};
use crate::rules::{self, nova_time};
use crate::service::Compute;

/// One zone: name, whether any enabled service is in it, and (detail) its hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    pub available: bool,
    /// host → service binary → (available, active, updated_at)
    pub hosts: Option<Map<String, Value>>,
}

impl Compute {
    /// The zones; `detail` (admin) includes hosts and `internal`. With no host
    /// registered yet, the configured default zone is shown (empty of hosts).
    pub async fn availability_zones(
        &self,
        ctx: &RequestContext,
        detail: bool,
    ) -> Result<Vec<Zone>> {
        if detail {
            rules::admin(ctx, "os_compute_api:os-availability-zone:detail")?;
        }
        let mut conn = crate::records::acquire(&self.db).await?;
        let hosts = load_hosts(&mut conn, self.settings.compute.service_down_time).await?;
        let mut zones: BTreeMap<String, (bool, Map<String, Value>)> = BTreeMap::new();
        for h in &hosts {
            let z = zones.entry(h.availability_zone.clone()).or_default();
            z.0 |= h.enabled;
            z.1.insert(
                h.name.clone(),
                json!({"nova-compute": {
                    "available": h.up,
                    "active": h.enabled,
                    "updated_at": nova_time(h.last_seen_us),
                }}),
            );
        }
        if zones.is_empty() {
            zones.insert(
                self.settings.compute.availability_zone.clone(),
                (true, Map::new()),
            );
        }
        let mut out = Vec::new();
        if detail {
            let now = nova_time(rules::now_us());
            let svc = json!({"available": true, "active": true, "updated_at": now});
            let mut internal = Map::new();
            internal.insert(
                controller_host(&self.settings.compute.host),
                json!({"nova-conductor": svc, "nova-scheduler": svc}),
            );
            out.push(Zone {
                name: "internal".into(),
                available: true,
                hosts: Some(internal),
            });
        }
        // available zones first, then the unavailable ones, as Nova lists them
        let (avail, unavail): (Vec<_>, Vec<_>) = zones.into_iter().partition(|(_, (a, _))| *a);
        for (name, (available, hosts)) in avail.into_iter().chain(unavail) {
            out.push(Zone {
                name,
                available,
                hosts: if detail { Some(hosts) } else { None },
            });
        }
        Ok(out)
    }
}
