//! `GET /v2.1/extensions[/{alias}]`: the legacy v2 extension list. Nova answers a
//! fixed list (the v2.1 API has no extensions any more, the list only keeps old
//! clients that probe for an alias working); ferrostack answers the aliases of what
//! it serves, in the same shape: `namespace` and `updated` are Nova's constant
//! placeholders, `links` is empty.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::compute::ApiResult;

const NAMESPACE: &str = "http://docs.openstack.org/compute/ext/fake_xml";
const UPDATED: &str = "2014-12-03T00:00:00Z";

/// (name, alias, description), sorted by alias as Nova lists them.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("DiskConfig", "OS-DCF", "Disk Management Extension."),
    (
        "ExtendedAvailabilityZone",
        "OS-EXT-AZ",
        "Extended Availability Zone support.",
    ),
    (
        "ImageSize",
        "OS-EXT-IMG-SIZE",
        "Adds image size to image listings.",
    ),
    (
        "ExtendedIps",
        "OS-EXT-IPS",
        "Adds type parameter to the ip list.",
    ),
    (
        "ExtendedIpsMac",
        "OS-EXT-IPS-MAC",
        "Adds mac address parameter to the ip list.",
    ),
    (
        "ExtendedServerAttributes",
        "OS-EXT-SRV-ATTR",
        "Extended Server Attributes support.",
    ),
    ("ExtendedStatus", "OS-EXT-STS", "Extended Status support."),
    (
        "FlavorDisabled",
        "OS-FLV-DISABLED",
        "Support to show the disabled status of a flavor.",
    ),
    (
        "FlavorExtraData",
        "OS-FLV-EXT-DATA",
        "Provide additional data for flavors.",
    ),
    (
        "SchedulerHints",
        "OS-SCH-HNT",
        "Pass arbitrary key/value pairs to the scheduler.",
    ),
    (
        "ServerUsage",
        "OS-SRV-USG",
        "Adds launched_at and terminated_at on Servers.",
    ),
    (
        "AdminActions",
        "os-admin-actions",
        "Enable admin-only server actions.",
    ),
    (
        "AvailabilityZone",
        "os-availability-zone",
        "1. Add availability_zone to the Create Server API.\n2. Add availability zones describing.",
    ),
    ("ConfigDrive", "os-config-drive", "Config Drive Extension."),
    (
        "ConsoleOutput",
        "os-console-output",
        "Console log output support, with tailing ability.",
    ),
    ("Consoles", "os-consoles", "Interactive Console support."),
    (
        "CreateServerExt",
        "os-create-server-ext",
        "Extended support to the Create Server v1.1 API.",
    ),
    (
        "DeferredDelete",
        "os-deferred-delete",
        "Instance deferred delete.",
    ),
    (
        "ExtendedHypervisors",
        "os-extended-hypervisors",
        "Extended hypervisors support.",
    ),
    (
        "ExtendedQuotas",
        "os-extended-quotas",
        "Adds ability for admins to delete quota and optionally force the update Quota command.",
    ),
    (
        "ExtendedServices",
        "os-extended-services",
        "Extended services support.",
    ),
    (
        "ExtendedServicesDelete",
        "os-extended-services-delete",
        "Extended services deletion support.",
    ),
    ("FlavorAccess", "os-flavor-access", "Flavor access support."),
    (
        "FlavorExtraSpecs",
        "os-flavor-extra-specs",
        "Flavors extra specs support.",
    ),
    (
        "FlavorManage",
        "os-flavor-manage",
        "Flavor create/delete API support.",
    ),
    (
        "FlavorRxtx",
        "os-flavor-rxtx",
        "Support to show the rxtx status of a flavor.",
    ),
    (
        "FlavorSwap",
        "os-flavor-swap",
        "Support to show the swap status of a flavor.",
    ),
    ("Hosts", "os-hosts", "Admin-only host administration."),
    (
        "HypervisorStatus",
        "os-hypervisor-status",
        "Show hypervisor status.",
    ),
    (
        "Hypervisors",
        "os-hypervisors",
        "Admin-only hypervisor administration.",
    ),
    (
        "InstanceActions",
        "os-instance-actions",
        "View a log of actions and events taken on an instance.",
    ),
    ("Keypairs", "os-keypairs", "Keypair Support."),
    (
        "Locks",
        "os-lock-server",
        "Enable lock/unlock server actions.",
    ),
    (
        "MultipleCreate",
        "os-multiple-create",
        "Allow multiple create in the Create Server v2.1 API.",
    ),
    (
        "PauseServer",
        "os-pause-server",
        "Enable pause/unpause server actions.",
    ),
    (
        "QuotaClasses",
        "os-quota-class-sets",
        "Quota classes management support.",
    ),
    ("Quotas", "os-quota-sets", "Quotas management support."),
    (
        "ServerDiagnostics",
        "os-server-diagnostics",
        "Allow Admins to view server diagnostics through server action.",
    ),
    (
        "ServerGroupQuotas",
        "os-server-group-quotas",
        "Adds quota support to server groups.",
    ),
    ("ServerGroups", "os-server-groups", "Server group support."),
    (
        "ServerListMultiStatus",
        "os-server-list-multi-status",
        "Allow to filter the servers by a set of status values.",
    ),
    (
        "ServerPassword",
        "os-server-password",
        "Server password support.",
    ),
    (
        "ServerSortKeys",
        "os-server-sort-keys",
        "Add sorting support in get Server v2 API.",
    ),
    (
        "ServerStartStop",
        "os-server-start-stop",
        "Start/Stop instance compute API support.",
    ),
    ("Services", "os-services", "Services support."),
    (
        "SuspendServer",
        "os-suspend-server",
        "Enable suspend/resume server actions.",
    ),
    (
        "UsedLimits",
        "os-used-limits",
        "Provide data on limited resources that are being used.",
    ),
    (
        "UserData",
        "os-user-data",
        "Add user_data to the Create Server API.",
    ),
    (
        "UserQuotas",
        "os-user-quotas",
        "Project user quota support.",
    ),
];

fn render(&(name, alias, description): &(&str, &str, &str)) -> Value {
    json!({
        "name": name,
        "alias": alias,
        "description": description,
        "namespace": NAMESPACE,
        "updated": UPDATED,
        "links": [],
    })
}

pub async fn index(_: Caller) -> Response {
    axum::Json(json!({"extensions": EXTENSIONS.iter().map(render).collect::<Vec<_>>()}))
        .into_response()
}

pub async fn show(_: Caller, Path(alias): Path<String>) -> ApiResult {
    let e = EXTENSIONS
        .iter()
        .find(|e| e.1 == alias)
        .ok_or_else(|| ferrostack_compute::Error::NotFound("Not Found".into()))?;
    Ok(axum::Json(json!({"extension": render(e)})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_aliases() {
        let aliases: Vec<&str> = EXTENSIONS.iter().map(|e| e.1).collect();
        let mut sorted = aliases.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(aliases, sorted);
        assert!(EXTENSIONS.iter().any(|e| e.0 == "Hosts"));
    }
}
