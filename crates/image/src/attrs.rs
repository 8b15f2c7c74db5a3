//! Image attributes as clients write them: create bodies and JSON-patch
//! operations (`application/openstack-images-v2.1-json-patch`), checked against
//! Glance's schema rules (read-only and reserved attributes, formats, types).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{CONTAINER_FORMATS, DISK_FORMATS, Image, Visibility};

/// Attributes that only the server sets.
const READ_ONLY: &[&str] = &[
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "stores",
    "deleted",
    "deleted_at",
];

/// Core attributes that cannot be removed by a patch.
const BASE: &[&str] = &[
    "id",
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "min_disk",
    "min_ram",
    "disk_format",
    "container_format",
    "tags",
];

/// Glance's `image_property_quota` default.
pub const MAX_PROPERTIES: usize = 128;
/// Glance's `image_tag_quota` default.
pub const MAX_TAGS: usize = 128;

fn read_only(key: &str) -> Error {
    Error::Forbidden(format!("Attribute '{key}' is read-only."))
}

fn check_key(key: &str) -> Result<()> {
    if READ_ONLY.contains(&key) {
        return Err(read_only(key));
    }
    if key.starts_with("os_glance") {
        return Err(Error::Forbidden(format!("Attribute '{key}' is reserved.")));
    }
    if key.is_empty() || key.len() > 255 {
        return Err(Error::Invalid(format!(
            "Property names must be 1 to 255 characters: '{key}'"
        )));
    }
    Ok(())
}

fn schema_error(msg: String) -> Error {
    Error::Invalid(format!(
        "Provided object does not match schema 'image': {msg}"
    ))
}

fn string_or_null(key: &str, v: &Value, max: usize) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= max => Ok(Some(s.clone())),
        Value::String(s) => Err(schema_error(format!("'{s}' is too long ({key})"))),
        other => Err(schema_error(format!(
            "{other} is not of type 'null', 'string' ({key})"
        ))),
    }
}

fn enum_or_null(key: &str, v: &Value, allowed: &[&str]) -> Result<Option<String>> {
    match string_or_null(key, v, 255)? {
        None => Ok(None),
        Some(s) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(s) => Err(schema_error(format!(
            "'{s}' is not one of {allowed:?} ({key})"
        ))),
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| schema_error(format!("{v} is not of type 'boolean' ({key})")))
}

fn non_negative(key: &str, v: &Value) -> Result<i64> {
    match v.as_i64() {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(schema_error(format!(
            "{v} is not a non-negative integer ({key})"
        ))),
    }
}

pub fn parse_tags(v: &Value) -> Result<Vec<String>> {
    let arr = v
        .as_array()
        .ok_or_else(|| schema_error(format!("{v} is not of type 'array' (tags)")))?;
    let mut tags: Vec<String> = Vec::with_capacity(arr.len());
    for t in arr {
        let s = t
            .as_str()
            .ok_or_else(|| schema_error(format!("{t} is not of type 'string' (tags)")))?;
        check_tag(s)?;
        if !tags.iter().any(|x| x == s) {
            tags.push(s.to_string());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(Error::TooLarge(format!(
            "Maximum number of tags exceeded ({MAX_TAGS})"
        )));
    }
    tags.sort();
    Ok(tags)
}

pub fn check_tag(s: &str) -> Result<()> {
    if s.is_empty() || s.chars().count() > 255 {
        return Err(Error::Invalid(format!(
            "Tags must be 1 to 255 characters: '{s}'"
        )));
    }
    Ok(())
}

/// Sets one attribute (core or custom). `queued` says whether the image has no
/// data yet: formats can only change then.
pub fn set(image: &mut Image, key: &str, v: &Value, queued: bool) -> Result<()> {
    check_key(key)?;
    match key {
        "id" => {
            return Err(Error::Forbidden("Attribute 'id' is read-only.".into()));
        }
        "owner" => image.owner = string_or_null(key, v, 255)?,
        "name" => image.name = string_or_null(key, v, 255)?,
        "visibility" => {
            let s = v.as_str().unwrap_or_default();
            image.visibility = Visibility::parse(s).ok_or_else(|| {
                schema_error(format!(
                    "{v} is not one of ['community', 'public', 'private', 'shared'] (visibility)"
                ))
            })?;
        }
        "protected" => image.protected = boolean(key, v)?,
        "os_hidden" => image.os_hidden = boolean(key, v)?,
        "min_disk" => image.min_disk = non_negative(key, v)?,
        "min_ram" => image.min_ram = non_negative(key, v)?,
        "tags" => image.tags = parse_tags(v)?,
        "disk_format" | "container_format" => {
            let allowed = if key == "disk_format" {
                DISK_FORMATS
            } else {
                CONTAINER_FORMATS
            };
            let value = enum_or_null(key, v, allowed)?;
            let current = if key == "disk_format" {
                &mut image.disk_format
            } else {
                &mut image.container_format
            };
            if *current != value && !queued {
                return Err(Error::Forbidden(format!(
                    "Attribute {key} can be only replaced for a queued image."
                )));
            }
            *current = value;
        }
        _ => {
            let s = v
                .as_str()
                .ok_or_else(|| schema_error(format!("{v} is not of type 'string' ({key})")))?;
            if s.chars().count() > 65535 {
                return Err(schema_error(format!("value too long ({key})")));
            }
            image.properties.insert(key.to_string(), s.to_string());
            if image.properties.len() > MAX_PROPERTIES {
                return Err(Error::TooLarge(format!(
                    "Maximum number of properties exceeded ({MAX_PROPERTIES})"
                )));
            }
        }
    }
    Ok(())
}

/// One operation of a JSON patch, checked for shape.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOp {
    Add(String, Value),
    Replace(String, Value),
    Remove(String),
}

/// The two JSON patch dialects of Glance v2, told apart by the request's media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchFormat {
    /// `application/openstack-images-v2.0-json-patch` (JSON patch draft 4, deprecated but
    /// still accepted, and what tempest sends): `{"replace": "/name", "value": ...}`.
    V20,
    /// `application/openstack-images-v2.1-json-patch` (draft 10):
    /// `{"op": "replace", "path": "/name", "value": ...}`.
    V21,
}

/// Parses a Glance v2.1 JSON patch body: a list of `{"op", "path", "value"}`.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOp>> {
    parse_patch_as(body, PatchFormat::V21)
}

/// Parses a Glance JSON patch body in either dialect.
pub fn parse_patch_as(body: &Value, format: PatchFormat) -> Result<Vec<PatchOp>> {
    let ops = body.as_array().ok_or_else(|| {
        Error::Invalid("Request body must be a JSON array of operation objects.".into())
    })?;
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let obj = op
            .as_object()
            .ok_or_else(|| Error::Invalid("Operations must be JSON objects.".into()))?;
        let (name, path) = match format {
            PatchFormat::V21 => {
                let name = obj.get("op").and_then(Value::as_str).ok_or_else(|| {
                    Error::Invalid("Unable to find 'op' in JSON Schema change".into())
                })?;
                let path = obj.get("path").and_then(Value::as_str).ok_or_else(|| {
                    Error::Invalid("Unable to find 'path' in JSON Schema change".into())
                })?;
                (name, path)
            }
            PatchFormat::V20 => {
                let mut found = ["add", "remove", "replace"]
                    .into_iter()
                    .filter(|k| obj.contains_key(*k));
                let name = found.next().ok_or_else(|| {
                    Error::Invalid(
                        "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".".into(),
                    )
                })?;
                if found.next().is_some() {
                    return Err(Error::Invalid(
                        "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\".".into(),
                    ));
                }
                let path = obj.get(name).and_then(Value::as_str).ok_or_else(|| {
                    Error::Invalid(format!(
                        "Invalid JSON pointer for this resource: '{}'",
                        obj[name]
                    ))
                })?;
                (name, path)
            }
        };
        let key = parse_path(path)?;
        let value = || {
            obj.get("value").cloned().ok_or_else(|| {
                Error::Invalid("Unable to find 'value' in JSON Schema change".into())
            })
        };
        out.push(match name {
            "add" => PatchOp::Add(key, value()?),
            "replace" => PatchOp::Replace(key, value()?),
            "remove" => PatchOp::Remove(key),
            other => {
                return Err(Error::Invalid(format!(
                    "Invalid operation: `{other}`. It must be one of the following: add, remove, replace."
                )));
            }
        });
    }
    Ok(out)
}

/// `/name` → `name`; JSON pointer escapes `~1` and `~0` undone. Nested paths are refused.
fn parse_path(path: &str) -> Result<String> {
    let invalid = || Error::Invalid(format!("Invalid JSON pointer for this resource: '{path}'"));
    let rest = path.strip_prefix('/').ok_or_else(invalid)?;
    if rest.is_empty() || rest.contains('/') {
        return Err(invalid());
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

/// Applies a patch to an image (in memory), with Glance's rules for each operation.
pub fn apply_patch(image: &mut Image, ops: &[PatchOp]) -> Result<()> {
    let queued = image.status == crate::status::Status::Queued;
    for op in ops {
        match op {
            PatchOp::Add(k, v) => set(image, k, v, queued)?,
            PatchOp::Replace(k, v) => {
                if !BASE.contains(&k.as_str())
                    && !READ_ONLY.contains(&k.as_str())
                    && !k.starts_with("os_glance")
                    && !image.properties.contains_key(k)
                {
                    return Err(Error::Conflict(format!("Property {k} does not exist.")));
                }
                set(image, k, v, queued)?
            }
            PatchOp::Remove(k) => {
                check_key(k)?;
                if BASE.contains(&k.as_str()) {
                    return Err(Error::Forbidden(format!(
                        "Cannot remove a base property: {k}"
                    )));
                }
                if image.properties.remove(k).is_none() {
                    return Err(Error::Conflict(format!("Property {k} does not exist.")));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image() -> Image {
        Image::new_queued("i".into(), Some("p".into()), 0)
    }

    #[test]
    fn patch_adds_replaces_and_removes_like_glance() {
        let mut im = image();
        let ops = parse_patch(&json!([
            {"op": "replace", "path": "/name", "value": "cirros"},
            {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
            {"op": "add", "path": "/a~1b", "value": "x"},
        ]))
        .unwrap();
        apply_patch(&mut im, &ops).unwrap();
        assert_eq!(im.name.as_deref(), Some("cirros"));
        assert_eq!(im.properties["hw_disk_bus"], "virtio");
        assert_eq!(im.properties["a/b"], "x");
        let rm = parse_patch(&json!([{"op": "remove", "path": "/hw_disk_bus"}])).unwrap();
        apply_patch(&mut im, &rm).unwrap();
        assert!(!im.properties.contains_key("hw_disk_bus"));
        assert!(matches!(apply_patch(&mut im, &rm), Err(Error::Conflict(_))));
        let replace_missing =
            parse_patch(&json!([{"op": "replace", "path": "/nope", "value": "1"}])).unwrap();
        assert!(matches!(
            apply_patch(&mut im, &replace_missing),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn read_only_reserved_and_base_attributes_are_refused() {
        let mut im = image();
        for (op, status) in [
            (
                json!({"op": "replace", "path": "/status", "value": "active"}),
                403,
            ),
            (
                json!({"op": "add", "path": "/os_glance_import_task", "value": "x"}),
                403,
            ),
            (json!({"op": "remove", "path": "/name"}), 403),
            (json!({"op": "add", "path": "/min_ram", "value": -1}), 400),
            (
                json!({"op": "add", "path": "/disk_format", "value": "exe"}),
                400,
            ),
            (json!({"op": "add", "path": "/prop", "value": 5}), 400),
            (json!({"op": "move", "path": "/name"}), 400),
            (json!({"op": "add", "path": "/a/b", "value": "x"}), 400),
        ] {
            let r = parse_patch(&json!([op.clone()])).and_then(|o| apply_patch(&mut im, &o));
            let got = match r {
                Err(Error::Forbidden(_)) => 403,
                Err(Error::Invalid(_)) => 400,
                other => panic!("{op}: {other:?}"),
            };
            assert_eq!(got, status, "{op}");
        }
    }

    #[test]
    fn formats_change_only_while_queued() {
        let mut im = image();
        set(&mut im, "disk_format", &json!("qcow2"), true).unwrap();
        im.status = crate::status::Status::Active;
        let ops = parse_patch(&json!([{"op": "replace", "path": "/disk_format", "value": "raw"}]))
            .unwrap();
        assert!(matches!(
            apply_patch(&mut im, &ops),
            Err(Error::Forbidden(_))
        ));
        // setting the same value is not a change
        let same =
            parse_patch(&json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"}]))
                .unwrap();
        apply_patch(&mut im, &same).unwrap();
    }

    #[test]
    fn tags_are_unique_and_sorted() {
        assert_eq!(
            parse_tags(&json!(["b", "a", "b"])).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(parse_tags(&json!([""])).is_err());
        assert!(parse_tags(&json!("a")).is_err());
    }
}
