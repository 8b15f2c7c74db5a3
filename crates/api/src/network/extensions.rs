//! `/v2.0/extensions`: the Neutron extensions this service implements, under
//! Neutron's aliases (clients decide what to send from this list).

use axum::extract::Path;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use ferrostack_network::Error;

use super::ApiResult;
use crate::auth::Caller;
use crate::errors::neutron::NeutronError;

/// (alias, name, description)
const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "allowed-address-pairs",
        "Allowed Address Pairs",
        "Provides allowed address pairs",
    ),
    (
        "binding",
        "Port Binding",
        "Expose port bindings of a virtual port to external application",
    ),
    (
        "external-net",
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    (
        "extra_dhcp_opt",
        "Neutron Extra DHCP options",
        "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)",
    ),
    ("ip_allocation", "IP Allocation", "IP allocation extension."),
    (
        "l2_adjacency",
        "L2 Adjacency",
        "Display L2 Adjacency for Neutron Networks.",
    ),
    (
        "net-mtu",
        "Network MTU",
        "Provides MTU attribute for a network resource.",
    ),
    (
        "network_availability_zone",
        "Network Availability Zone",
        "Availability zone support for network.",
    ),
    (
        "pagination",
        "Pagination support",
        "Extension that indicates that pagination is enabled.",
    ),
    ("port-security", "Port Security", "Provides port security"),
    (
        "project-id",
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
    (
        "provider",
        "Provider Network",
        "Expose mapping of virtual networks to physical networks",
    ),
    (
        "quota-check-limit",
        "Quota engine limit check",
        "Support for checking the resource usage before applying a new quota limit",
    ),
    (
        "quotas",
        "Quota management support",
        "Expose functions for quotas management per project",
    ),
    (
        "quota_details",
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
    ),
    (
        "security-group",
        "security-group",
        "The security groups extension.",
    ),
    (
        "sorting",
        "Sorting support",
        "Extension that indicates that sorting is enabled.",
    ),
    (
        "standard-attr-description",
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    (
        "standard-attr-tag",
        "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip",
        "Enables to set tag on resources with standard attribute.",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
    (
        "stateful-security-group",
        "Stateful security group",
        "Indicates if the security group is stateful or not",
    ),
];

fn render(e: &(&str, &str, &str)) -> Value {
    json!({"alias": e.0, "name": e.1, "description": e.2,
           "updated": "2013-01-20T00:00:00-00:00", "links": []})
}

pub async fn list(_c: Caller) -> ApiResult {
    let all: Vec<Value> = EXTENSIONS.iter().map(render).collect();
    Ok(axum::Json(json!({ "extensions": all })).into_response())
}

pub async fn show(_c: Caller, Path(alias): Path<String>) -> ApiResult {
    match EXTENSIONS.iter().find(|e| e.0 == alias) {
        Some(e) => Ok(axum::Json(json!({ "extension": render(e) })).into_response()),
        None => Err(NeutronError(Error::not_found(
            "HTTPNotFound",
            format!("Extension with alias {alias} does not exist"),
        ))),
    }
}
