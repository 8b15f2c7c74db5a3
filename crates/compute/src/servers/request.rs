//! Parsing and validating a server create request body exactly as Nova's schema
//! does for the request's microversion: field by field, unknown fields refused,
//! Nova's messages. Pure: no database.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine;
use serde_json::{Map, Value};

use ferrostack_network::{NetworkRequest, RequestedNetwork};

use crate::error::{Error, Result};
use crate::servers::model::Personality;
use crate::version::ApiVersion;

/// A validated `POST /servers` body.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub name: String,
    pub image_ref: Option<String>,
    pub flavor_ref: String,
    pub metadata: BTreeMap<String, String>,
    pub personality: Vec<Personality>,
    pub user_data: Option<String>,
    pub key_name: Option<String>,
    pub networks: NetworkRequest,
    pub security_groups: Vec<String>,
    pub availability_zone: Option<String>,
    pub config_drive: bool,
    pub admin_pass: Option<String>,
    pub min_count: i64,
    pub max_count: i64,
    pub return_reservation_id: bool,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub hostname: Option<String>,
    pub access_ipv4: String,
    pub access_ipv6: String,
    pub scheduler_hints: Map<String, Value>,
}

pub fn invalid(field: &str, value: &Value, why: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input for field/attribute {field}. Value: {}. {why}",
        match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    ))
}

fn string<'a>(field: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| invalid(field, v, &format!("{v} is not of type 'string'")))
}

/// Nova's `name` rule: 1–255 characters, no leading or trailing whitespace.
pub fn check_name(field: &str, v: &Value) -> Result<String> {
    let s = string(field, v)?;
    if s.is_empty() {
        return Err(invalid(field, v, "'' is too short"));
    }
    if s.chars().count() > 255 {
        return Err(invalid(field, v, &format!("'{s}' is too long")));
    }
    if s.trim() != s || s.chars().any(|c| c.is_control()) {
        return Err(invalid(
            field,
            v,
            &format!("'{s}' does not match the name pattern"),
        ));
    }
    Ok(s.to_string())
}

/// Metadata: keys `^[a-zA-Z0-9-_:. ]{1,255}$`, string values up to 255.
pub fn check_metadata(field: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(field, v, &format!("{v} is not of type 'object'")))?;
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        let key_ok = !k.is_empty()
            && k.chars().count() <= 255
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c));
        if !key_ok {
            return Err(invalid(
                field,
                v,
                &format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        let s = val.as_str().ok_or_else(|| {
            invalid(
                &format!("{field}/{k}"),
                val,
                &format!("{val} is not of type 'string'"),
            )
        })?;
        if s.chars().count() > 255 {
            return Err(invalid(
                &format!("{field}/{k}"),
                val,
                &format!("'{s}' is too long"),
            ));
        }
        out.insert(k.clone(), s.to_string());
    }
    Ok(out)
}

pub fn is_base64(s: &str) -> bool {
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .is_ok()
}

pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .ok()
}

fn check_uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

fn boolean(field: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
            "0" | "f" | "false" | "off" | "n" | "no" | "" => Ok(false),
            _ => Err(invalid(
                field,
                v,
                &format!("{v} is not of type 'boolean', 'string'"),
            )),
        },
        Value::Null => Ok(false),
        _ => Err(invalid(
            field,
            v,
            &format!("{v} is not of type 'boolean', 'string'"),
        )),
    }
}

fn positive_int(field: &str, v: &Value) -> Result<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid(field, v, &format!("{v} is not of type 'integer', 'string'")))?;
    if n < 1 {
        return Err(invalid(
            field,
            v,
            &format!("{n} is less than the minimum of 1"),
        ));
    }
    Ok(n)
}

/// `imageRef`: a uuid, or a URL ending in one.
pub fn image_id_from_ref(r: &str) -> Option<String> {
    let last = r.trim_end_matches('/').rsplit('/').next()?;
    check_uuid_like(last).then(|| last.to_string())
}

fn parse_networks(v: &Value, mv: ApiVersion) -> Result<NetworkRequest> {
    match v {
        Value::String(s) if mv.at_least(2, 37) && s == "auto" => Ok(NetworkRequest::Auto),
        Value::String(s) if mv.at_least(2, 37) && s == "none" => Ok(NetworkRequest::None),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let obj = item.as_object().ok_or_else(|| {
                    invalid("networks", item, &format!("{item} is not of type 'object'"))
                })?;
                let mut req = RequestedNetwork {
                    network_id: None,
                    port_id: None,
                    fixed_ip: None,
                    tag: None,
                };
                for (k, val) in obj {
                    match k.as_str() {
                        "uuid" => {
                            let s = string("uuid", val)?;
                            if !check_uuid_like(s) {
                                return Err(Error::BadRequest(format!(
                                    "Bad networks format: network uuid is not in proper format ({s})"
                                )));
                            }
                            req.network_id = Some(s.to_string());
                        }
                        "port" => {
                            if val.is_null() {
                                continue;
                            }
                            let s = string("port", val)?;
                            if !check_uuid_like(s) {
                                return Err(invalid(
                                    "port",
                                    val,
                                    &format!("'{s}' is not a 'uuid'"),
                                ));
                            }
                            req.port_id = Some(s.to_string());
                        }
                        "fixed_ip" => {
                            let s = string("fixed_ip", val)?;
                            req.fixed_ip = Some(s.parse::<IpAddr>().map_err(|_| {
                                Error::BadRequest(format!("Invalid fixed IP address ({s})"))
                            })?);
                        }
                        "tag" if mv.at_least(2, 32) => {
                            let s = string("tag", val)?;
                            if s.is_empty() || s.len() > 60 || s.contains('/') || s.contains(',') {
                                return Err(invalid("tag", val, "is not a valid tag"));
                            }
                            req.tag = Some(s.to_string());
                        }
                        other => {
                            return Err(invalid(
                                "networks",
                                item,
                                &format!(
                                    "Additional properties are not allowed ('{other}' was unexpected)"
                                ),
                            ));
                        }
                    }
                }
                if req.network_id.is_none() && req.port_id.is_none() {
                    return Err(Error::BadRequest(
                        "Bad networks format: network uuid is not in proper format (None)".into(),
                    ));
                }
                out.push(req);
            }
            Ok(NetworkRequest::List(out))
        }
        _ => Err(invalid(
            "networks",
            v,
            &format!("{v} is not valid under any of the given schemas"),
        )),
    }
}

/// A requested `hostname` (2.90): a short name up to 63 characters; from 2.94 a
/// fully qualified name up to 255 (Nova's `fqdn` type: letters, digits, `-`, `.`,
/// `_`).
pub fn valid_hostname(h: &str, mv: ApiVersion) -> bool {
    let (max, underscore) = if mv.at_least(2, 94) {
        (255, true)
    } else {
        (63, false)
    };
    !h.is_empty()
        && h.len() <= max
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || (underscore && c == '_'))
        && !h.starts_with('-')
}

/// `accessIPv4` / `accessIPv6` (create, update, rebuild): an address of that
/// family or `""`, kept as Nova keeps it, in canonical form (Nova stores an IP
/// column, so `0000:...:babe:220.12.22.2` reads back as `::babe:dc0c:1602`).
pub fn access_ip(field: &str, v: &Value) -> Result<String> {
    let a = string(field, v)?;
    if a.is_empty() {
        return Ok(String::new());
    }
    let parsed = if field == "accessIPv4" {
        a.parse::<std::net::Ipv4Addr>().map(|ip| ip.to_string())
    } else {
        a.parse::<std::net::Ipv6Addr>().map(|ip| ip.to_string())
    };
    let family = if field == "accessIPv4" {
        "ipv4"
    } else {
        "ipv6"
    };
    parsed.map_err(|_| invalid(field, v, &format!("is not a '{family}'")))
}

/// Validates `body` (the whole request) for microversion `mv`.
/// `personality` (below 2.57): files to inject, contents in base64.
pub fn parse_personality(v: &Value) -> Result<Vec<Personality>> {
    let items = v
        .as_array()
        .ok_or_else(|| invalid("personality", v, "is not of type 'array'"))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let obj = item
            .as_object()
            .ok_or_else(|| invalid("personality", item, "is not of type 'object'"))?;
        let mut path = None;
        let mut contents = None;
        for (pk, pv) in obj {
            match pk.as_str() {
                "path" => path = Some(string("path", pv)?.to_string()),
                "contents" => {
                    let c = string("contents", pv)?;
                    if !is_base64(c) {
                        return Err(invalid("contents", pv, &format!("'{c}' is not a 'base64'")));
                    }
                    contents = Some(c.to_string());
                }
                other => {
                    return Err(invalid(
                        "personality",
                        item,
                        &format!(
                            "Additional properties are not allowed ('{other}' was unexpected)"
                        ),
                    ));
                }
            }
        }
        out.push(Personality {
            path: path.unwrap_or_default(),
            contents: contents.unwrap_or_default(),
        });
    }
    Ok(out)
}

pub fn parse_create(body: &Value, mv: ApiVersion, max_user_data: usize) -> Result<CreateRequest> {
    let top = body
        .as_object()
        .ok_or_else(|| invalid("body", body, "is not of type 'object'"))?;
    let mut hints = Map::new();
    for (k, v) in top {
        match k.as_str() {
            "server" => {}
            "os:scheduler_hints" | "OS-SCH-HNT:scheduler_hints" => {
                hints = v
                    .as_object()
                    .cloned()
                    .ok_or_else(|| invalid(k, v, &format!("{v} is not of type 'object'")))?;
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {other}. Additional properties are not allowed ('{other}' was unexpected)"
                )));
            }
        }
    }
    let Some(server) = top.get("server") else {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute server. 'server' is a required property".into(),
        ));
    };
    let s = server.as_object().ok_or_else(|| {
        invalid(
            "server",
            server,
            &format!("{server} is not of type 'object'"),
        )
    })?;

    let mut req = CreateRequest {
        name: String::new(),
        image_ref: None,
        flavor_ref: String::new(),
        metadata: BTreeMap::new(),
        personality: Vec::new(),
        user_data: None,
        key_name: None,
        networks: NetworkRequest::Auto,
        security_groups: Vec::new(),
        availability_zone: None,
        config_drive: false,
        admin_pass: None,
        min_count: 1,
        max_count: 1,
        return_reservation_id: false,
        description: None,
        tags: Vec::new(),
        hostname: None,
        access_ipv4: String::new(),
        access_ipv6: String::new(),
        scheduler_hints: hints,
    };
    let mut saw_name = false;
    let mut saw_flavor = false;
    let mut saw_networks = false;
    let mut bdm_image: Option<String> = None;
    for (k, v) in s {
        match k.as_str() {
            "name" => {
                req.name = check_name("name", v)?;
                saw_name = true;
            }
            "imageRef" => {
                let r = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    _ => return Err(invalid("imageRef", v, "is not of type 'string'")),
                };
                if !r.is_empty() {
                    let id = image_id_from_ref(&r)
                        .ok_or_else(|| Error::BadRequest("Invalid imageRef provided.".into()))?;
                    req.image_ref = Some(id);
                }
            }
            "flavorRef" => {
                let r = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(invalid(
                            "flavorRef",
                            v,
                            "is not of type 'string', 'integer'",
                        ));
                    }
                };
                if r.is_empty() {
                    return Err(invalid("flavorRef", v, "'' is too short"));
                }
                req.flavor_ref = r
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(&r)
                    .to_string();
                saw_flavor = true;
            }
            "metadata" => req.metadata = check_metadata("metadata", v)?,
            "personality" if !mv.at_least(2, 57) => req.personality = parse_personality(v)?,
            "user_data" => {
                if v.is_null() {
                    continue;
                }
                let u = string("user_data", v)?;
                if u.len() > max_user_data {
                    return Err(invalid(
                        "user_data",
                        v,
                        &format!("is too long (more than {max_user_data} characters)"),
                    ));
                }
                if !is_base64(u) {
                    return Err(invalid("user_data", v, "is not a 'base64'"));
                }
                req.user_data = Some(u.to_string());
            }
            "key_name" => {
                if !v.is_null() {
                    let kn = string("key_name", v)?;
                    if kn.is_empty() || kn.len() > 255 {
                        return Err(invalid("key_name", v, "is not a valid key name"));
                    }
                    req.key_name = Some(kn.to_string());
                }
            }
            "networks" => {
                req.networks = parse_networks(v, mv)?;
                saw_networks = true;
            }
            "security_groups" => {
                let items = v
                    .as_array()
                    .ok_or_else(|| invalid("security_groups", v, "is not of type 'array'"))?;
                for item in items {
                    let name = item
                        .get("name")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| {
                            invalid("security_groups", item, "'name' is a required property")
                        })?;
                    req.security_groups.push(name.to_string());
                }
            }
            "availability_zone" => {
                if !v.is_null() {
                    let az = string("availability_zone", v)?;
                    if az.is_empty() || az.len() > 255 {
                        return Err(invalid("availability_zone", v, "is not a valid zone"));
                    }
                    req.availability_zone = Some(az.to_string());
                }
            }
            "config_drive" => req.config_drive = boolean("config_drive", v)?,
            "adminPass" => req.admin_pass = Some(string("adminPass", v)?.to_string()),
            "min_count" => req.min_count = positive_int("min_count", v)?,
            "max_count" => req.max_count = positive_int("max_count", v)?,
            "return_reservation_id" => {
                req.return_reservation_id = boolean("return_reservation_id", v)?
            }
            "description" if mv.at_least(2, 19) => {
                if v.is_null() {
                    continue;
                }
                let d = string("description", v)?;
                if d.chars().count() > 255 || d.chars().any(|c| c.is_control() && c != '\n') {
                    return Err(invalid("description", v, "is not a valid description"));
                }
                req.description = Some(d.to_string());
            }
            "tags" if mv.at_least(2, 52) => req.tags = check_tags(v)?,
            "hostname" if mv.at_least(2, 90) => {
                let h = string("hostname", v)?;
                if !valid_hostname(h, mv) {
                    return Err(invalid("hostname", v, "is not a valid hostname"));
                }
                req.hostname = Some(h.to_string());
            }
            "accessIPv4" | "accessIPv6" => {
                let a = access_ip(k, v)?;
                if k == "accessIPv4" {
                    req.access_ipv4 = a;
                } else {
                    req.access_ipv6 = a;
                }
            }
            "OS-DCF:diskConfig" => {
                let d = string("OS-DCF:diskConfig", v)?;
                if d != "AUTO" && d != "MANUAL" {
                    return Err(invalid(
                        "OS-DCF:diskConfig",
                        v,
                        "is not one of ['AUTO', 'MANUAL']",
                    ));
                }
            }
            "block_device_mapping_v2" => bdm_image = check_bdm_v2(v)?,
            "block_device_mapping" => {
                if v.as_array().is_some_and(|a| !a.is_empty()) {
                    return Err(Error::BadRequest(
                        "Block device mappings need a volume service, which this cloud does not have.".into(),
                    ));
                }
            }
            "trusted_image_certificates" if mv.at_least(2, 63) => {
                if !v.is_null() {
                    return Err(Error::BadRequest(
                        "Image certificate validation is not supported by this cloud.".into(),
                    ));
                }
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute server. Value: {server}. Additional properties are not allowed ('{other}' was unexpected)"
                )));
            }
        }
    }
    if !saw_name {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute server. 'name' is a required property".into(),
        ));
    }
    if !saw_flavor {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute server. 'flavorRef' is a required property".into(),
        ));
    }
    if mv.at_least(2, 37) && !saw_networks {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute server. 'networks' is a required property".into(),
        ));
    }
    if req.image_ref.is_none() {
        req.image_ref = bdm_image;
    }
    if req.image_ref.is_none() {
        return Err(Error::BadRequest("Invalid imageRef provided.".into()));
    }
    // max_count defaults to min_count (Nova: a lone min_count asks for exactly
    // that many)
    if s.contains_key("min_count") && !s.contains_key("max_count") {
        req.max_count = req.min_count;
    }
    if req.min_count > req.max_count {
        return Err(Error::BadRequest("min_count must be <= max_count".into()));
    }
    if req.max_count > 1 {
        if let NetworkRequest::List(l) = &req.networks
            && l.iter().any(|n| n.port_id.is_some())
        {
            return Err(Error::BadRequest(
                "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.".into(),
            ));
        }
        if req.hostname.is_some() {
            return Err(Error::BadRequest(
                "Cannot set the hostname of several servers at once.".into(),
            ));
        }
    }
    Ok(req)
}

/// Server tags: at most 50, each 1–60 characters without `/` or `,`.
pub fn check_tags(v: &Value) -> Result<Vec<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| invalid("tags", v, "is not of type 'array'"))?;
    if items.len() > 50 {
        return Err(invalid("tags", v, "is too long"));
    }
    let mut out: Vec<String> = Vec::new();
    for t in items {
        out.push(check_tag(t)?);
    }
    out.dedup();
    Ok(out)
}

pub fn check_tag(t: &Value) -> Result<String> {
    let s = string("tags", t)?;
    if s.is_empty() || s.chars().count() > 60 || s.contains('/') || s.contains(',') {
        return Err(invalid("tags", t, "is not a valid tag"));
    }
    Ok(s.to_string())
}

/// Block device mapping v2: image → local (the boot disk) and blank → local
/// (ephemeral) are what this cloud does; volumes need a volume service.
fn check_bdm_v2(v: &Value) -> Result<Option<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| invalid("block_device_mapping_v2", v, "is not of type 'array'"))?;
    let mut image = None;
    for item in items {
        let obj = item
            .as_object()
            .ok_or_else(|| invalid("block_device_mapping_v2", item, "is not of type 'object'"))?;
        let dest = obj
            .get("destination_type")
            .and_then(Value::as_str)
            .unwrap_or("local");
        let source = obj
            .get("source_type")
            .and_then(Value::as_str)
            .unwrap_or("blank");
        if dest == "volume" || source == "volume" || source == "snapshot" {
            return Err(Error::BadRequest(
                "Block device mapping with destination_type 'volume' (or a volume/snapshot source) needs a volume service, which this cloud does not have yet. Boot from an image with destination_type 'local'.".into(),
            ));
        }
        if dest != "local" {
            return Err(invalid(
                "destination_type",
                &Value::String(dest.into()),
                "is not one of ['local', 'volume']",
            ));
        }
        match source {
            "image" => {
                let id = obj
                    .get("uuid")
                    .and_then(Value::as_str)
                    .filter(|u| check_uuid_like(u))
                    .ok_or_else(|| {
                        Error::BadRequest("Invalid image uuid in block device mapping.".into())
                    })?;
                let boot_index = obj.get("boot_index").and_then(|b| match b {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                });
                if boot_index.unwrap_or(0) == 0 {
                    image = Some(id.to_string());
                }
            }
            "blank" => {}
            other => {
                return Err(invalid(
                    "source_type",
                    &Value::String(other.into()),
                    "is not one of ['volume', 'image', 'snapshot', 'blank']",
                ));
            }
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(minor: u16) -> ApiVersion {
        ApiVersion::new(2, minor)
    }

    #[test]
    fn hostnames_become_fqdns_at_2_94() {
        let fqdn = format!("{}-guest-test.domaintest.com", "x".repeat(52));
        assert!(!valid_hostname(&fqdn, ApiVersion::new(2, 90)));
        assert!(valid_hostname(&fqdn, ApiVersion::new(2, 94)));
        assert!(valid_hostname("web-1", ApiVersion::new(2, 90)));
        assert!(!valid_hostname("-web", ApiVersion::new(2, 94)));
        assert!(!valid_hostname(&"a".repeat(256), ApiVersion::new(2, 94)));
        assert!(!valid_hostname("a b", ApiVersion::new(2, 94)));
    }

    #[test]
    fn access_ips_are_canonical() {
        let v6 = serde_json::json!("0000:0000:0000:0000:0000:babe:220.12.22.2");
        assert_eq!(access_ip("accessIPv6", &v6).unwrap(), "::babe:dc0c:1602");
        assert_eq!(access_ip("accessIPv4", &serde_json::json!("")).unwrap(), "");
        assert!(access_ip("accessIPv4", &serde_json::json!("::1")).is_err());
        assert!(access_ip("accessIPv6", &serde_json::json!("1.2.3.4")).is_err());
    }

    #[test]
    fn a_plain_create_parses() {
        let r = parse_create(
            &json!({"server": {"name": "vm", "imageRef": "b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11",
                "flavorRef": "1", "networks": [{"uuid": "b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e12"}],
                "metadata": {"a": "b"}, "min_count": 1, "max_count": 1}}),
            v(79),
            65535,
        )
        .unwrap();
        assert_eq!(r.name, "vm");
        assert_eq!(r.flavor_ref, "1");
        assert!(matches!(r.networks, NetworkRequest::List(ref l) if l.len() == 1));
    }

    #[test]
    fn networks_are_required_from_2_37_and_auto_is_understood() {
        let body = json!({"server": {"name": "vm", "imageRef": "b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11", "flavorRef": "1"}});
        assert!(parse_create(&body, v(37), 65535).is_err());
        assert_eq!(
            parse_create(&body, v(36), 65535).unwrap().networks,
            NetworkRequest::Auto
        );
        let mut b = body.clone();
        b["server"]["networks"] = json!("none");
        assert_eq!(
            parse_create(&b, v(37), 65535).unwrap().networks,
            NetworkRequest::None
        );
        assert!(parse_create(&b, v(36), 65535).is_err());
    }

    #[test]
    fn personality_is_refused_from_2_57_and_must_be_base64() {
        let mut body = json!({"server": {"name": "vm", "imageRef": "b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11", "flavorRef": "1",
            "networks": "none", "personality": [{"path": "/etc/motd", "contents": "aGVsbG8="}]}});
        assert_eq!(
            parse_create(&body, v(56), 65535).unwrap().personality.len(),
            1
        );
        assert!(parse_create(&body, v(57), 65535).is_err());
        body["server"]["personality"][0]["contents"] = json!("not base64!");
        assert!(parse_create(&body, v(56), 65535).is_err());
    }

    #[test]
    fn bad_names_metadata_user_data_and_counts_are_400() {
        let base = json!({"server": {"name": "vm", "imageRef": "b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11", "flavorRef": "1"}});
        for (k, val) in [
            ("name", json!(" vm")),
            ("name", json!("")),
            ("name", json!("x".repeat(256))),
            ("metadata", json!({"a": 1})),
            ("metadata", json!({"": "x"})),
            ("user_data", json!("!!!")),
            ("min_count", json!(0)),
            ("unknown_field", json!(1)),
            (
                "block_device_mapping_v2",
                json!([{"source_type": "image", "destination_type": "volume", "uuid": "b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11"}]),
            ),
        ] {
            let mut b = base.clone();
            b["server"][k] = val;
            assert!(
                matches!(parse_create(&b, v(1), 65535), Err(Error::BadRequest(_))),
                "{k}"
            );
        }
        let mut b = base.clone();
        b["server"]["min_count"] = json!(3);
        b["server"]["max_count"] = json!(2);
        assert!(parse_create(&b, v(1), 65535).is_err());
        let mut b = base;
        b["server"]["user_data"] = json!("QUFB".repeat(10));
        assert!(parse_create(&b, v(1), 16).is_err());
    }

    #[test]
    fn image_ref_may_be_a_url_or_come_from_the_boot_bdm() {
        assert_eq!(
            image_id_from_ref("http://h/image/v2/images/b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11")
                .as_deref(),
            Some("b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11")
        );
        let b = json!({"server": {"name": "vm", "flavorRef": "1", "block_device_mapping_v2": [
            {"uuid": "b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11", "boot_index": 0, "source_type": "image",
             "destination_type": "local", "delete_on_termination": true}]}});
        assert_eq!(
            parse_create(&b, v(1), 65535).unwrap().image_ref.as_deref(),
            Some("b3b8b4d6-3d4b-4c39-8f6b-0f4b1c2a9e11")
        );
    }
}
