//! Request bodies as Neutron's API layer checks them: the resource key, which
//! attributes may be given on create and update, and the value validators with
//! Neutron's messages (`Invalid input for name. Reason: ...`).

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::query::parse_bool;

/// Create or update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
}

/// An attribute: its name, whether POST and PUT may carry it.
pub type Spec = (&'static str, bool, bool);

/// `{"network": {...}}` → the inner object, checked against `spec`.
pub fn body(resource: &str, body: Value, spec: &[Spec], op: Op) -> Result<Map<String, Value>> {
    let Value::Object(mut outer) = body else {
        return Err(Error::bad_request(format!(
            "Unable to find '{resource}' in request body"
        )));
    };
    let Some(Value::Object(inner)) = outer.remove(resource) else {
        return Err(Error::bad_request(format!(
            "Unable to find '{resource}' in request body"
        )));
    };
    let unknown: Vec<&str> = inner
        .keys()
        .filter(|k| !spec.iter().any(|(n, _, _)| n == k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Error::bad_request(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.join(", ")
        )));
    }
    for k in inner.keys() {
        let Some((_, post, put)) = spec.iter().find(|(n, _, _)| n == k) else {
            continue;
        };
        match op {
            Op::Create if !post => {
                return Err(Error::bad_request(format!(
                    "Attribute '{k}' not allowed in POST"
                )));
            }
            Op::Update if !put => {
                return Err(Error::bad_request(format!(
                    "Cannot update read-only attribute {k}"
                )));
            }
            _ => {}
        }
    }
    Ok(inner)
}

/// `'x' is not a valid string` / `'x' exceeds maximum length of 255`.
pub fn string(m: &Map<String, Value>, key: &str, max_len: usize) -> Result<Option<String>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            if s.chars().count() > max_len {
                Err(Error::invalid_attr(
                    key,
                    format!("'{s}' exceeds maximum length of {max_len}"),
                ))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(v) => Err(Error::invalid_attr(
            key,
            format!("'{}' is not a valid string", py(v)),
        )),
    }
}

/// A string that may be null (`Some(None)`).
pub fn string_or_null(
    m: &Map<String, Value>,
    key: &str,
    max_len: usize,
) -> Result<Option<Option<String>>> {
    match m.get(key) {
        Some(Value::Null) => Ok(Some(None)),
        _ => Ok(string(m, key, max_len)?.map(Some)),
    }
}

pub fn boolean(m: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if parse_bool(s).is_some() => Ok(parse_bool(s)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            Ok(Some(n.as_i64() == Some(1)))
        }
        Some(v) => Err(Error::invalid_input(format!(
            "'{}' cannot be converted to boolean",
            py(v)
        ))),
    }
}

pub fn integer(m: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(v) => Err(Error::invalid_input(format!(
            "'{}' is not an integer",
            py(v)
        ))),
    }
}

pub fn list<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a Vec<Value>>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(Error::invalid_attr(
            key,
            format!("'{}' is not a list", py(v)),
        )),
    }
}

/// A list of strings (null = empty).
pub fn string_list(m: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>> {
    if matches!(m.get(key), Some(Value::Null)) {
        return Ok(Some(Vec::new()));
    }
    let Some(items) = list(m, key)? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(Error::invalid_attr(
                key,
                format!("'{}' is not a valid string", py(other)),
            )),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// `value` is one of `allowed` (`'x' is not in ['a', 'b']`).
pub fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid_attr(
            key,
            format!(
                "{} is not in [{}]",
                value,
                allowed
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// A value as Python would print it in a message (`None`, `True`, `'x'` → x).
pub fn py(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The project a new resource belongs to: the caller's, or (admin only) the one
/// named in `project_id`/`tenant_id`.
pub fn owner(m: &Map<String, Value>, caller_project: Option<&str>, admin: bool) -> Result<String> {
    let p = string(m, "project_id", 255)?;
    let t = string(m, "tenant_id", 255)?;
    if let (Some(p), Some(t)) = (&p, &t)
        && p != t
    {
        return Err(Error::bad_request(
            "'project_id' and 'tenant_id' do not match",
        ));
    }
    match p.or(t) {
        Some(given) if Some(given.as_str()) != caller_project => {
            if admin {
                Ok(given)
            } else {
                Err(Error::bad_request(
                    "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
                ))
            }
        }
        Some(given) => Ok(given),
        None => caller_project.map(str::to_string).ok_or_else(|| {
            Error::bad_request(
                "Running without keystone AuthN requires that tenant_id is specified",
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SPEC: &[Spec] = &[
        ("name", true, true),
        ("id", false, false),
        ("cidr", true, false),
    ];

    #[test]
    fn bodies_are_checked_like_neutron() {
        let e = body("network", json!({"net": {}}), SPEC, Op::Create).unwrap_err();
        assert_eq!(e.to_string(), "Unable to find 'network' in request body");
        let e = body(
            "network",
            json!({"network": {"x": 1, "name": "a"}}),
            SPEC,
            Op::Create,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Unrecognized attribute(s) 'x'");
        let e = body("network", json!({"network": {"id": "a"}}), SPEC, Op::Create).unwrap_err();
        assert_eq!(e.to_string(), "Attribute 'id' not allowed in POST");
        let e = body(
            "network",
            json!({"network": {"cidr": "a"}}),
            SPEC,
            Op::Update,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Cannot update read-only attribute cidr");
        let m = body("network", json!({"network": {"name": 5}}), SPEC, Op::Update).unwrap();
        assert_eq!(
            string(&m, "name", 255).unwrap_err().to_string(),
            "Invalid input for name. Reason: '5' is not a valid string."
        );
        let m = json!({"a": "yes", "b": "maybe"});
        let m = m.as_object().unwrap();
        assert_eq!(boolean(m, "a").unwrap(), Some(true));
        assert_eq!(
            boolean(m, "b").unwrap_err().to_string(),
            "Invalid input for operation: 'maybe' cannot be converted to boolean."
        );
    }

    #[test]
    fn only_admins_create_for_other_projects() {
        let m = json!({"project_id": "p2"});
        let m = m.as_object().unwrap();
        assert!(owner(m, Some("p1"), false).is_err());
        assert_eq!(owner(m, Some("p1"), true).unwrap(), "p2");
        let empty = Map::new();
        assert_eq!(owner(&empty, Some("p1"), false).unwrap(), "p1");
        let both = json!({"project_id": "p2", "tenant_id": "p3"});
        assert!(owner(both.as_object().unwrap(), Some("p1"), true).is_err());
    }
}
