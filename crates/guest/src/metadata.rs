//! The metadata documents a guest reads — from the config drive now and from the
//! metadata service later, so both are made here and only here: `meta_data.json`,
//! `vendor_data*.json`, `network_data.json` (from [`crate::netconf`]), the EC2
//! `meta-data.json`, and the config drive's whole file tree with upstream's layout
//! (`openstack/<version>/...`, `openstack/content/NNNN`, `ec2/<version>/...`).

use base64::Engine;
use rand::RngCore;
use serde_json::{Map, Value, json};

use crate::model::GuestData;
use crate::netconf;

/// The OpenStack metadata versions upstream serves, oldest first (`latest` is the
/// newest of them).
pub const OPENSTACK_VERSIONS: &[&str] = &[
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
    "2025-04-04",
];

/// EC2 versions written to a config drive: upstream's default
/// `config_drive_skip_versions` leaves only this one (plus `latest`).
pub const EC2_VERSIONS_ON_DRIVE: &[&str] = &["2009-04-04"];

/// `latest` means the newest version.
fn resolve(version: &str) -> &str {
    if version == "latest" {
        OPENSTACK_VERSIONS[OPENSTACK_VERSIONS.len() - 1]
    } else {
        version
    }
}

/// Dated versions compare as strings (`YYYY-MM-DD`).
fn at_least(version: &str, since: &str) -> bool {
    resolve(version) >= since
}

/// `meta_data.json` for `version` (a dated version or `latest`). `files` and
/// `admin_pass` only go on a config drive, as upstream.
pub fn meta_data(g: &GuestData, version: &str, for_config_drive: bool) -> Value {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(g.uuid));
    if !g.metadata.is_empty() {
        m.insert("meta".into(), json!(g.metadata));
    }
    if for_config_drive && !g.files.is_empty() {
        let files: Vec<Value> = g
            .files
            .iter()
            .enumerate()
            .map(|(i, (path, _))| json!({"path": path, "content_path": content_path(i)}))
            .collect();
        m.insert("files".into(), json!(files));
    }
    if for_config_drive && let Some(p) = &g.admin_pass {
        m.insert("admin_pass".into(), json!(p));
    }
    if !g.keys.is_empty() {
        let public: Map<String, Value> = g
            .keys
            .iter()
            .map(|k| (k.name.clone(), json!(k.data)))
            .collect();
        m.insert("public_keys".into(), Value::Object(public));
        let keys: Vec<Value> = g
            .keys
            .iter()
            .map(|k| json!({"name": k.name, "type": k.key_type, "data": k.data}))
            .collect();
        m.insert("keys".into(), json!(keys));
    }
    m.insert("hostname".into(), json!(fqdn(g)));
    m.insert("name".into(), json!(g.name));
    m.insert("launch_index".into(), json!(g.launch_index));
    m.insert("availability_zone".into(), json!(g.availability_zone));
    if at_least(version, "2013-04-04") {
        let mut seed = [0u8; 512];
        rand::thread_rng().fill_bytes(&mut seed);
        m.insert(
            "random_seed".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(seed)),
        );
    }
    if at_least(version, "2015-10-15") {
        m.insert("project_id".into(), json!(g.project_id));
    }
    if at_least(version, "2016-06-30") {
        m.insert("devices".into(), json!([]));
    }
    if at_least(version, "2020-10-14") {
        m.insert("dedicated_cpus".into(), json!([]));
    }
    Value::Object(m)
}

fn fqdn(g: &GuestData) -> String {
    match g.dhcp_domain.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => format!("{}.{d}", g.hostname),
        None => g.hostname.clone(),
    }
}

/// Whether the drive carries the network template as `content/0000`; the personality
/// files follow it.
fn content_offset(g: &GuestData, opts: &DriveOptions) -> usize {
    usize::from(opts.network_template && netconf::interfaces(g).is_some())
}

/// `content_path` of the i-th personality file when nothing precedes it; the tree
/// builder shifts it when a network template takes `content/0000`.
fn content_path(i: usize) -> String {
    format!("/content/{i:04}")
}

/// `vendor_data.json` (from 2013-10-17): the static vendor data.
pub fn vendor_data(g: &GuestData, version: &str) -> Option<Value> {
    at_least(version, "2013-10-17").then(|| g.vendor_data.clone())
}

/// `vendor_data2.json` (from 2016-10-06): `{"static": <vendor data>}` (no dynamic
/// vendor-data targets are configured).
pub fn vendor_data2(g: &GuestData, version: &str) -> Option<Value> {
    at_least(version, "2016-10-06").then(|| json!({"static": g.vendor_data}))
}

/// `network_data.json` (from 2015-10-15).
pub fn network_data(g: &GuestData, version: &str) -> Option<Value> {
    at_least(version, "2015-10-15").then(|| netconf::network_data(g))
}

/// An EC2 id: `prefix-` and 17 hex digits of SHA-256 over `prefix:id` (the length
/// of AWS's current ids). The EC2 Query API names the same objects with the same
/// function, so the guest's `instance-id` and `ami-id` are the API's ids.
pub fn ec2_id(prefix: &str, os_id: &str) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut h = Sha256::new();
    h.update(prefix.as_bytes());
    h.update(b":");
    h.update(os_id.as_bytes());
    let digest = h.finalize();
    let mut id = String::with_capacity(prefix.len() + 18);
    id.push_str(prefix);
    id.push('-');
    for b in &digest[..9] {
        id.push(HEX[usize::from(b >> 4)] as char);
        id.push(HEX[usize::from(b & 15)] as char);
    }
    id.pop(); // 17 digits
    id
}

/// The instance's EC2 id.
pub fn ec2_instance_id(uuid: &str) -> String {
    ec2_id("i", uuid)
}

fn ec2_image_id(image: Option<&str>) -> String {
    image.map(|id| ec2_id("ami", id)).unwrap_or_default()
}

/// The EC2 `meta-data` tree for `version` (dated EC2 version or `latest`), as JSON.
pub fn ec2_meta_data(g: &GuestData, version: &str) -> Value {
    let latest = version == "latest";
    let since = |v: &str| latest || version >= v;
    let local_ipv4 = g
        .nics
        .iter()
        .flat_map(|n| n.ips.iter())
        .find(|i| i.subnet.ip_version == 4)
        .map(|i| i.address.clone())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("ami-id".into(), json!(ec2_image_id(g.image_id.as_deref())));
    m.insert("ami-launch-index".into(), json!(g.launch_index));
    m.insert("ami-manifest-path".into(), json!("FIXME"));
    m.insert("instance-id".into(), json!(ec2_instance_id(&g.uuid)));
    m.insert("hostname".into(), json!(fqdn(g)));
    m.insert("local-ipv4".into(), json!(local_ipv4));
    m.insert("reservation-id".into(), json!(g.reservation_id));
    m.insert("security-groups".into(), json!(g.security_groups));
    if let Some(k) = g.keys.first() {
        m.insert("public-keys".into(), json!({"0": {"openssh-key": k.data}}));
    }
    if since("2007-01-19") {
        m.insert("local-hostname".into(), json!(fqdn(g)));
        m.insert("public-hostname".into(), json!(fqdn(g)));
        m.insert("public-ipv4".into(), json!(""));
    }
    if since("2007-08-29") {
        m.insert("instance-type".into(), json!(g.flavor_name));
    }
    if since("2007-12-15") {
        m.insert(
            "block-device-mapping".into(),
            json!({"ami": "vda", "root": "/dev/vda"}),
        );
    }
    if since("2008-02-01") {
        m.insert(
            "placement".into(),
            json!({"availability-zone": g.availability_zone}),
        );
    }
    if since("2008-09-01") {
        m.insert("instance-action".into(), json!("none"));
    }
    Value::Object(m)
}

/// One file of a config drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveFile {
    /// Relative path, e.g. `openstack/latest/meta_data.json`.
    pub path: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DriveOptions {
    /// Put the rendered `interfaces` file on the drive as `content/0000` with a
    /// `network_config` pointer (upstream does when a network is `injected`).
    pub network_template: bool,
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Every file of a config drive, upstream's layout.
pub fn config_drive_files(g: &GuestData, opts: &DriveOptions) -> Vec<DriveFile> {
    let mut out = Vec::new();
    let offset = content_offset(g, opts);
    let mut file = |path: String, data: Vec<u8>| out.push(DriveFile { path, data });

    for v in EC2_VERSIONS_ON_DRIVE.iter().copied().chain(["latest"]) {
        file(
            format!("ec2/{v}/meta-data.json"),
            json_bytes(&ec2_meta_data(g, v)),
        );
        if let Some(u) = &g.user_data {
            file(format!("ec2/{v}/user-data"), u.clone());
        }
    }
    for v in OPENSTACK_VERSIONS.iter().copied().chain(["latest"]) {
        let mut md = meta_data(g, v, true);
        if let Some(files) = md.get_mut("files").and_then(|f| f.as_array_mut()) {
            for (i, f) in files.iter_mut().enumerate() {
                f["content_path"] = json!(format!("/content/{:04}", i + offset));
            }
        }
        if offset == 1 {
            md["network_config"] =
                json!({"name": "network_config", "content_path": "/content/0000"});
        }
        file(format!("openstack/{v}/meta_data.json"), json_bytes(&md));
        if let Some(u) = &g.user_data {
            file(format!("openstack/{v}/user_data"), u.clone());
        }
        if let Some(vd) = vendor_data(g, v) {
            file(format!("openstack/{v}/vendor_data.json"), json_bytes(&vd));
        }
        if let Some(nd) = network_data(g, v) {
            file(format!("openstack/{v}/network_data.json"), json_bytes(&nd));
        }
        if let Some(vd) = vendor_data2(g, v) {
            file(format!("openstack/{v}/vendor_data2.json"), json_bytes(&vd));
        }
    }
    if offset == 1
        && let Some(eni) = netconf::interfaces(g)
    {
        file("openstack/content/0000".into(), eni.into_bytes());
    }
    for (i, (_, data)) in g.files.iter().enumerate() {
        file(format!("openstack/content/{:04}", i + offset), data.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    #[test]
    fn meta_data_keys_follow_the_version() {
        let g = sample();
        let old = meta_data(&g, "2012-08-10", true);
        for k in [
            "uuid",
            "meta",
            "files",
            "admin_pass",
            "public_keys",
            "keys",
            "hostname",
            "name",
            "launch_index",
            "availability_zone",
        ] {
            assert!(old.get(k).is_some(), "{k} in 2012-08-10");
        }
        for k in ["random_seed", "project_id", "devices", "dedicated_cpus"] {
            assert!(old.get(k).is_none(), "{k} not in 2012-08-10");
        }
        let v = meta_data(&g, "2015-10-15", true);
        assert!(v.get("random_seed").is_some() && v.get("project_id").is_some());
        assert!(v.get("devices").is_none());
        let latest = meta_data(&g, "latest", true);
        for k in ["random_seed", "project_id", "devices", "dedicated_cpus"] {
            assert!(latest.get(k).is_some(), "{k} in latest");
        }
        assert_eq!(latest["hostname"], "vm-one.novalocal");
        assert_eq!(latest["public_keys"]["mykey"], g.keys[0].data);
        assert_eq!(latest["keys"][0]["type"], "ssh");
        let seed = latest["random_seed"].as_str().unwrap_or_default();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(seed)
                .map(|b| b.len())
                .unwrap_or(0),
            512
        );
    }

    #[test]
    fn the_metadata_service_never_gets_files_or_the_admin_password() {
        let md = meta_data(&sample(), "latest", false);
        assert!(md.get("files").is_none());
        assert!(md.get("admin_pass").is_none());
    }

    #[test]
    fn drive_tree_has_every_version_latest_and_content_files() {
        let g = sample();
        let files = config_drive_files(&g, &DriveOptions::default());
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        for v in OPENSTACK_VERSIONS.iter().chain(&["latest"]) {
            assert!(paths.contains(&format!("openstack/{v}/meta_data.json").as_str()));
            assert!(paths.contains(&format!("openstack/{v}/user_data").as_str()));
        }
        assert!(!paths.contains(&"openstack/2012-08-10/vendor_data.json"));
        assert!(paths.contains(&"openstack/2013-10-17/vendor_data.json"));
        assert!(!paths.contains(&"openstack/2013-10-17/network_data.json"));
        assert!(paths.contains(&"openstack/2015-10-15/network_data.json"));
        assert!(paths.contains(&"openstack/2016-10-06/vendor_data2.json"));
        assert!(paths.contains(&"ec2/2009-04-04/meta-data.json"));
        assert!(paths.contains(&"ec2/latest/user-data"));
        let c1 = files.iter().find(|f| f.path == "openstack/content/0001");
        assert_eq!(c1.map(|f| f.data.clone()), Some(vec![0, 1, 2, 255]));
        let md: Value = serde_json::from_slice(
            &files
                .iter()
                .find(|f| f.path == "openstack/latest/meta_data.json")
                .map(|f| f.data.clone())
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(
            md["files"][1],
            json!({"path": "/root/data.bin", "content_path": "/content/0001"})
        );
    }

    #[test]
    fn a_network_template_takes_content_0000_and_shifts_the_files() {
        let mut g = sample();
        g.nics = vec![crate::model::GuestNic {
            port_id: "p1".into(),
            network_id: "n1".into(),
            mac: "fa:16:3e:00:00:01".into(),
            mtu: None,
            ips: vec![crate::model::GuestIp {
                address: "10.0.0.5".into(),
                subnet: crate::model::GuestSubnet {
                    id: "s".into(),
                    cidr: "10.0.0.0/24".into(),
                    ip_version: 4,
                    gateway_ip: None,
                    dns_nameservers: vec![],
                    host_routes: vec![],
                    enable_dhcp: false,
                    ipv6_address_mode: None,
                },
            }],
        }];
        let files = config_drive_files(
            &g,
            &DriveOptions {
                network_template: true,
            },
        );
        let get = |p: &str| files.iter().find(|f| f.path == p).map(|f| f.data.clone());
        assert!(
            String::from_utf8(get("openstack/content/0000").unwrap_or_default())
                .unwrap_or_default()
                .contains("address 10.0.0.5")
        );
        assert_eq!(get("openstack/content/0002"), Some(vec![0, 1, 2, 255]));
        let md: Value =
            serde_json::from_slice(&get("openstack/latest/meta_data.json").unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(md["network_config"]["content_path"], "/content/0000");
        assert_eq!(md["files"][0]["content_path"], "/content/0001");
    }

    #[test]
    fn ec2_tree_has_upstream_keys() {
        let g = sample();
        let m = ec2_meta_data(&g, "2009-04-04");
        assert_eq!(m["instance-id"], ec2_id("i", &g.uuid));
        assert!(m["instance-id"].as_str().unwrap().len() == 19);
        assert_eq!(m["ami-id"], ec2_id("ami", g.image_id.as_deref().unwrap()));
        assert_eq!(m["public-keys"]["0"]["openssh-key"], g.keys[0].data);
        assert_eq!(m["placement"]["availability-zone"], "nova");
        assert_eq!(m["instance-type"], "m1.tiny");
        assert_eq!(m["security-groups"], json!(["default"]));
    }
}
