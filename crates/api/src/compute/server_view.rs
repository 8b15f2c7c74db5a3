//! The one server view: show, the detailed list, and the update and rebuild
//! answers ([`Shape`]), as one typed struct serialized straight to the response
//! (a page of 1,000 servers is about 1.7 MB; building it as `serde_json::Value`
//! maps first cost as much as the database read). Nova's microversion and role
//! rules live here once. Fields that depend on the microversion, the role or the
//! shape are `Option`s skipped when `None`; `Some(None)` renders `null`.

use std::collections::BTreeMap;

use serde::Serialize;

use ferrostack_compute::ApiVersion;
use ferrostack_compute::servers::model::Server;
use ferrostack_core::RequestContext;
use ferrostack_core::time::IsoTime;

use crate::links::Base;

#[derive(Serialize)]
pub struct Link {
    pub rel: &'static str,
    pub href: String,
}

/// `{base}{/v2.1}/{kind}/{id}`, written straight into the response: a page of
/// 1,000 servers has 4,000 links, and a `String` each showed in the profile.
#[derive(Clone, Copy)]
pub struct Href<'a> {
    base: &'a str,
    versioned: bool,
    kind: &'static str,
    id: &'a str,
}

impl std::fmt::Display for Href<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = if self.versioned { "/v2.1" } else { "" };
        write!(f, "{}{v}/{}/{}", self.base, self.kind, self.id)
    }
}

impl Serialize for Href<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Serialize)]
pub struct HrefLink<'a> {
    pub rel: &'static str,
    pub href: Href<'a>,
}

fn bookmark<'a>(base: &'a Base, kind: &'static str, id: &'a str) -> [HrefLink<'a>; 1] {
    [HrefLink {
        rel: "bookmark",
        href: Href {
            base: &base.0,
            versioned: false,
            kind,
            id,
        },
    }]
}

/// `2026-12-01T10:00:00Z` (`Iso`) or, for the OS-SRV-USG times,
/// `2026-12-01T10:00:00.000000` (`Usage`), from microseconds, written in place.
#[derive(Clone, Copy)]
pub enum Stamp {
    Iso(i64),
    Usage(i64),
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = match *self {
            Stamp::Iso(us) | Stamp::Usage(us) => us,
        };
        let secs = IsoTime(us.div_euclid(1_000_000));
        match self {
            Stamp::Iso(_) => write!(f, "{secs}"),
            Stamp::Usage(_) => write!(f, "{secs:#}.{:06}", us.rem_euclid(1_000_000)),
        }
    }
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum ImageView<'a> {
    None(&'static str),
    Ref {
        id: &'a str,
        links: [HrefLink<'a>; 1],
        #[serde(skip_serializing_if = "Option::is_none")]
        properties: Option<&'a BTreeMap<String, String>>,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum FlavorView<'a> {
    Link {
        id: &'a str,
        links: [HrefLink<'a>; 1],
    },
    Embedded {
        vcpus: i64,
        ram: i64,
        disk: i64,
        ephemeral: i64,
        swap: i64,
        original_name: &'a str,
        extra_specs: &'a BTreeMap<String, String>,
    },
}

#[derive(Serialize)]
pub struct AddressView<'a> {
    pub version: u8,
    pub addr: &'a str,
    #[serde(rename = "OS-EXT-IPS:type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(
        rename = "OS-EXT-IPS-MAC:mac_addr",
        skip_serializing_if = "Option::is_none"
    )]
    pub mac: Option<&'a str>,
}

/// Which answer a server body is for. Nova trims the update (`PUT`) and rebuild
/// answers below 2.75 to the basic attributes (no AZ, extended status, server
/// attributes, usage, security groups, volumes, config drive, IP type and MAC;
/// key_name in a rebuild from 2.54, user_data from 2.57); `server_groups` (2.71)
/// is in show and the update/rebuild answers, never in the detailed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Show,
    List,
    Update,
    Rebuild,
}

#[derive(Serialize)]
pub struct NameView<'a> {
    pub name: &'a str,
}

#[derive(Serialize)]
pub struct FaultView<'a> {
    pub code: i64,
    pub message: &'a str,
    pub created: Stamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<&'a str>,
}

/// Skip when the microversion or role does not show the field.
type Opt<T> = Option<T>;

#[derive(Serialize)]
pub struct ServerView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub status: &'static str,
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
    #[serde(rename = "hostId")]
    pub host_id: String,
    pub image: ImageView<'a>,
    pub flavor: FlavorView<'a>,
    pub created: Stamp,
    pub updated: Stamp,
    pub addresses: BTreeMap<&'a str, Vec<AddressView<'a>>>,
    #[serde(rename = "accessIPv4")]
    pub access_ipv4: &'a str,
    #[serde(rename = "accessIPv6")]
    pub access_ipv6: &'a str,
    pub links: [HrefLink<'a>; 2],
    #[serde(rename = "OS-DCF:diskConfig")]
    pub disk_config: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<i64>,
    #[serde(
        rename = "OS-EXT-AZ:availability_zone",
        skip_serializing_if = "Option::is_none"
    )]
    pub availability_zone: Opt<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_drive: Opt<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Opt<Option<&'a str>>,
    #[serde(
        rename = "OS-SRV-USG:launched_at",
        skip_serializing_if = "Option::is_none"
    )]
    pub launched_at: Opt<Option<Stamp>>,
    #[serde(
        rename = "OS-SRV-USG:terminated_at",
        skip_serializing_if = "Option::is_none"
    )]
    pub terminated_at: Opt<Option<Stamp>>,
    #[serde(
        rename = "OS-EXT-STS:task_state",
        skip_serializing_if = "Option::is_none"
    )]
    pub task_state: Opt<Option<&'static str>>,
    #[serde(
        rename = "OS-EXT-STS:vm_state",
        skip_serializing_if = "Option::is_none"
    )]
    pub vm_state: Opt<&'static str>,
    #[serde(
        rename = "OS-EXT-STS:power_state",
        skip_serializing_if = "Option::is_none"
    )]
    pub power_state: Opt<i64>,
    #[serde(
        rename = "os-extended-volumes:volumes_attached",
        skip_serializing_if = "Option::is_none"
    )]
    pub volumes_attached: Opt<[(); 0]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Opt<Vec<NameView<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Opt<FaultView<'a>>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:host",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_host: Opt<Option<&'a str>>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:hypervisor_hostname",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_hypervisor_hostname: Opt<Option<&'a str>>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:instance_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_instance_name: Opt<String>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:reservation_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_reservation_id: Opt<&'a str>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:launch_index",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_launch_index: Opt<i64>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:hostname",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_hostname: Opt<&'a str>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:kernel_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_kernel_id: Opt<&'static str>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:ramdisk_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_ramdisk_id: Opt<&'static str>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:root_device_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_root_device_name: Opt<&'static str>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:user_data",
        skip_serializing_if = "Option::is_none"
    )]
    pub attr_user_data: Opt<Option<&'a str>>,
    /// The rebuild answer's user data (2.57).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Opt<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_status: Opt<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Opt<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Opt<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Opt<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_image_certificates: Opt<Option<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_groups: Opt<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_reason: Opt<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_availability_zone: Opt<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_hints: Opt<&'a serde_json::Map<String, serde_json::Value>>,
}

/// `self` and `bookmark` links of a server, written in place.
pub fn server_links<'a>(base: &'a Base, id: &'a str) -> [HrefLink<'a>; 2] {
    let href = |versioned| Href {
        base: &base.0,
        versioned,
        kind: "servers",
        id,
    };
    [
        HrefLink {
            rel: "self",
            href: href(true),
        },
        HrefLink {
            rel: "bookmark",
            href: href(false),
        },
    ]
}

pub fn links(base: &Base, kind: &str, id: &str) -> [Link; 2] {
    [
        Link {
            rel: "self",
            href: format!("{}/v2.1/{kind}/{id}", base.0),
        },
        Link {
            rel: "bookmark",
            href: format!("{}/{kind}/{id}", base.0),
        },
    ]
}

/// `addresses`: network name → fixed IPs; `extended` adds the IP type and MAC.
pub fn addresses(s: &Server, extended: bool) -> BTreeMap<&str, Vec<AddressView<'_>>> {
    let mut out: BTreeMap<&str, Vec<AddressView<'_>>> = BTreeMap::new();
    for vif in &s.doc.addresses {
        let list = out.entry(vif.network_name.as_str()).or_default();
        for ip in &vif.fixed_ips {
            list.push(AddressView {
                version: ip.version,
                addr: &ip.ip_address,
                kind: extended.then_some("fixed"),
                mac: extended.then_some(vif.mac_address.as_str()),
            });
        }
    }
    out
}

/// A server's view for `mv`, the caller's role and the answer it is for.
pub fn server_view<'a>(
    s: &'a Server,
    mv: ApiVersion,
    ctx: &RequestContext,
    base: &'a Base,
    shape: Shape,
) -> ServerView<'a> {
    let admin = ctx.is_admin();
    // the trimmed update/rebuild answer of 2.1-2.74
    let basic = matches!(shape, Shape::Update | Shape::Rebuild) && !mv.at_least(2, 75);
    let full = !basic;
    let rebuild = shape == Shape::Rebuild;
    let f = &s.doc.flavor;
    let flavor = if mv.at_least(2, 47) {
        FlavorView::Embedded {
            vcpus: f.vcpus,
            ram: f.memory_mb,
            disk: f.root_gb,
            ephemeral: f.ephemeral_gb,
            swap: f.swap_mb,
            original_name: &f.name,
            extra_specs: &f.extra_specs,
        }
    } else {
        FlavorView::Link {
            id: &f.id,
            links: bookmark(base, "flavors", &f.id),
        }
    };
    let image = if s.image_ref.is_empty() {
        ImageView::None("")
    } else {
        ImageView::Ref {
            id: &s.image_ref,
            links: bookmark(base, "images", &s.image_ref),
            properties: mv.at_least(2, 98).then_some(&s.doc.image_properties),
        }
    };
    let security_groups =
        (full && !matches!(s.doc.networks, ferrostack_network::NetworkRequest::None)).then(|| {
            if s.doc.security_groups.is_empty() {
                vec![NameView { name: "default" }]
            } else {
                s.doc
                    .security_groups
                    .iter()
                    .map(|g| NameView { name: g })
                    .collect()
            }
        });
    let status = s.status();
    let fault = s
        .doc
        .fault
        .as_ref()
        .filter(|_| matches!(status, "ERROR" | "DELETED"))
        .map(|fault| FaultView {
            code: fault.code,
            message: &fault.message,
            created: Stamp::Iso(fault.created_us),
            details: admin.then_some(fault.details.as_str()),
        });
    let attrs = full && admin;
    let v23 = attrs && mv.at_least(2, 3);
    ServerView {
        id: &s.id,
        name: &s.name,
        status,
        tenant_id: &s.project_id,
        user_id: &s.user_id,
        metadata: &s.doc.metadata,
        host_id: s.host_id(),
        image,
        flavor,
        created: Stamp::Iso(s.created_at_us),
        updated: Stamp::Iso(s.updated_at_us),
        addresses: addresses(s, full),
        access_ipv4: &s.doc.access_ipv4,
        access_ipv6: &s.doc.access_ipv6,
        links: server_links(base, &s.id),
        disk_config: "MANUAL",
        // Nova shows progress only while it means something.
        progress: matches!(
            status,
            "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING"
        )
        .then_some(0),
        availability_zone: full.then(|| s.availability_zone.as_deref().unwrap_or("")),
        config_drive: full.then_some(if s.doc.config_drive { "True" } else { "" }),
        key_name: (full || (rebuild && mv.at_least(2, 54))).then_some(s.doc.key_name.as_deref()),
        launched_at: full.then_some(s.launched_at_us.map(Stamp::Usage)),
        terminated_at: full.then_some(s.terminated_at_us.map(Stamp::Usage)),
        task_state: full.then_some(s.task_state.map(|t| t.as_str())),
        vm_state: full.then_some(s.vm_state.as_str()),
        power_state: full.then_some(s.power_state),
        volumes_attached: full.then_some([]),
        security_groups,
        fault,
        attr_host: attrs.then_some(s.host.as_deref()),
        attr_hypervisor_hostname: attrs.then_some(s.host.as_deref()),
        attr_instance_name: attrs.then(|| s.instance_name()),
        attr_reservation_id: v23.then_some(s.reservation_id.as_str()),
        attr_launch_index: v23.then_some(s.launch_index),
        attr_hostname: (v23 || (full && mv.at_least(2, 90))).then_some(s.doc.hostname.as_str()),
        attr_kernel_id: v23.then_some(""),
        attr_ramdisk_id: v23.then_some(""),
        attr_root_device_name: v23.then_some("/dev/vda"),
        // a rebuild answers the new user data as `user_data` (2.57) instead
        attr_user_data: (v23 && !rebuild).then_some(s.doc.user_data.as_deref()),
        user_data: (rebuild && mv.at_least(2, 57)).then_some(s.doc.user_data.as_deref()),
        host_status: (attrs && mv.at_least(2, 16)).then_some(if s.host.is_some() {
            "UP"
        } else {
            ""
        }),
        locked: mv.at_least(2, 9).then_some(s.locked),
        description: mv.at_least(2, 19).then_some(s.doc.description.as_deref()),
        tags: mv.at_least(2, 26).then_some(s.doc.tags.as_slice()),
        trusted_image_certificates: mv.at_least(2, 63).then_some(None),
        // a server is in at most one group: the one its create named; never
        // shown in the detailed list
        server_groups: (mv.at_least(2, 71) && shape != Shape::List).then(|| {
            s.doc
                .scheduler_hints
                .get("group")
                .and_then(serde_json::Value::as_str)
                .into_iter()
                .collect()
        }),
        locked_reason: mv.at_least(2, 73).then_some(s.doc.locked_reason.as_deref()),
        pinned_availability_zone: mv.at_least(2, 96).then_some(s.doc.requested_az.as_deref()),
        scheduler_hints: mv.at_least(2, 100).then_some(&s.doc.scheduler_hints),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_core::time::iso_time;

    #[test]
    fn stamps_are_novas_two_time_formats() {
        let us = 1_764_583_200_123_456; // 2025-12-01T10:00:00.123456
        assert_eq!(Stamp::Iso(us).to_string(), "2025-12-01T10:00:00Z");
        assert_eq!(Stamp::Iso(us).to_string(), iso_time(us / 1_000_000));
        assert_eq!(Stamp::Usage(us).to_string(), "2025-12-01T10:00:00.123456");
        assert_eq!(Stamp::Usage(-1).to_string(), "1969-12-31T23:59:59.999999");
        assert_eq!(
            serde_json::to_string(&Stamp::Iso(0)).unwrap(),
            "\"1970-01-01T00:00:00Z\""
        );
        let base = Base("http://h:1/compute".into());
        let links = server_links(&base, "abc");
        assert_eq!(
            serde_json::to_value(&links).unwrap(),
            serde_json::json!([
                {"rel": "self", "href": "http://h:1/compute/v2.1/servers/abc"},
                {"rel": "bookmark", "href": "http://h:1/compute/servers/abc"}
            ])
        );
    }
}
