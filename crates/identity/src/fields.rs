//! Request bodies as Keystone validates them: known fields are checked by type and
//! length with Keystone's messages ("Invalid input for field 'name': ..."), and
//! whatever is left over is kept as the entity's extra attributes, as Keystone does.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Extra attributes kept on an entity and returned as top-level keys.
pub type Extra = Map<String, Value>;

/// A JSON object being taken apart field by field.
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Takes `{"<member>": {...}}` out of a request body.
    pub fn member(body: Value, member: &str) -> Result<Fields> {
        match body {
            Value::Object(mut outer) => match outer.remove(member) {
                Some(Value::Object(inner)) => Ok(Fields(inner)),
                Some(other) => Err(invalid(member, &other, "object")),
                None => Err(Error::Validation(format!(
                    "'{member}' is a required property"
                ))),
            },
            _ => Err(Error::Validation(
                "Expecting a JSON object as the request body.".into(),
            )),
        }
    }

    pub fn from_map(map: Map<String, Value>) -> Fields {
        Fields(map)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A required string of 1..=max characters.
    pub fn required_string(&mut self, key: &str, max: usize) -> Result<String> {
        match self.0.remove(key) {
            None => Err(Error::Validation(format!("'{key}' is a required property"))),
            Some(v) => check_string(key, v, max, false),
        }
    }

    /// An optional string (absent → None). `null` is refused.
    pub fn string(&mut self, key: &str, max: usize) -> Result<Option<String>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(v) => check_string(key, v, max, false).map(Some),
        }
    }

    /// An optional string that may also be `null` (absent → None, null → Some(None)).
    pub fn nullable_string(&mut self, key: &str, max: usize) -> Result<Option<Option<String>>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => check_string(key, v, max, true).map(|s| Some(Some(s))),
        }
    }

    /// An optional string that may be empty (descriptions).
    pub fn text(&mut self, key: &str) -> Result<Option<String>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(key, &other, "string")),
        }
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(invalid(key, &other, "boolean")),
        }
    }

    /// Tags: a list of up to 80 strings of 1..=255 characters without '/' or ','.
    pub fn tags(&mut self) -> Result<Option<Vec<String>>> {
        match self.0.remove("tags") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => {
                if items.len() > 80 {
                    return Err(Error::Validation(
                        "Invalid input for field 'tags': too many tags (at most 80).".into(),
                    ));
                }
                let mut out = Vec::new();
                for item in items {
                    let tag = check_string("tags", item, 255, false)?;
                    if tag.contains('/') || tag.contains(',') {
                        return Err(Error::Validation(format!(
                            "Invalid input for field 'tags': '{tag}' must not contain '/' or ','."
                        )));
                    }
                    if !out.contains(&tag) {
                        out.push(tag);
                    }
                }
                Ok(Some(out))
            }
            Some(other) => Err(invalid("tags", &other, "array")),
        }
    }

    /// An optional JSON object.
    pub fn object(&mut self, key: &str) -> Result<Option<Map<String, Value>>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(invalid(key, &other, "object")),
        }
    }

    /// An optional array.
    pub fn array(&mut self, key: &str) -> Result<Option<Vec<Value>>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(invalid(key, &other, "array")),
        }
    }

    /// Removes a key whatever its value.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// Refuses an `id` that differs from the one in the URL (Keystone: "Cannot change ID").
    pub fn forbid_id_change(&mut self, id: &str) -> Result<()> {
        match self.0.remove("id") {
            None => Ok(()),
            Some(Value::String(s)) if s == id => Ok(()),
            Some(_) => Err(Error::Validation("Cannot change ID".into())),
        }
    }

    /// Refuses any field left over (for strict schemas).
    pub fn deny_unknown(self) -> Result<()> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(Error::Validation(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            ))),
        }
    }

    /// The remaining fields, kept as extra attributes. `links` is never stored.
    pub fn into_extra(mut self) -> Extra {
        self.0.remove("links");
        self.0
    }
}

fn check_string(key: &str, v: Value, max: usize, _nullable: bool) -> Result<String> {
    match v {
        Value::String(s) => {
            let len = s.chars().count();
            if len == 0 {
                Err(Error::Validation(format!(
                    "Invalid input for field '{key}': '' is too short"
                )))
            } else if len > max {
                Err(Error::Validation(format!(
                    "Invalid input for field '{key}': '{}' is too long (at most {max} characters)",
                    s.chars().take(32).collect::<String>()
                )))
            } else if s.trim().is_empty() {
                Err(Error::Validation(format!(
                    "Invalid input for field '{key}': '{s}' must not be only whitespace"
                )))
            } else {
                Ok(s)
            }
        }
        other => Err(invalid(key, &other, "string")),
    }
}

fn invalid(key: &str, v: &Value, ty: &str) -> Error {
    let shown = match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    Error::Validation(format!(
        "Invalid input for field '{key}': {shown} is not of type '{ty}'"
    ))
}

/// Parses Keystone's boolean query values (`enabled=false`, `enabled=0`, `enabled`).
pub fn query_bool(v: &str) -> bool {
    !matches!(
        v.to_ascii_lowercase().as_str(),
        "false" | "0" | "no" | "off" | "n" | "f"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_member_and_wrong_types_give_keystone_messages() {
        let e = Fields::member(json!({}), "project").err().unwrap();
        assert_eq!(e.to_string(), "'project' is a required property");
        let mut f = Fields::member(json!({"project": {"enabled": "true"}}), "project").unwrap();
        let e = f.bool("enabled").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid input for field 'enabled': 'true' is not of type 'boolean'"
        );
    }

    #[test]
    fn names_are_length_checked_and_extras_kept() {
        let mut f = Fields::member(
            json!({"user": {"name": "x".repeat(65), "email": "a@b"}}),
            "user",
        )
        .unwrap();
        assert!(f.required_string("name", 64).is_err());
        let extra = f.into_extra();
        assert_eq!(extra.get("email"), Some(&json!("a@b")));
    }

    #[test]
    fn tags_refuse_separators() {
        let mut f = Fields::from_map(json!({"tags": ["a/b"]}).as_object().unwrap().clone());
        assert!(f.tags().is_err());
        let mut f = Fields::from_map(
            json!({"tags": ["a", "a", "b"]})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(f.tags().unwrap().unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn query_booleans_follow_keystone() {
        assert!(query_bool("true"));
        assert!(query_bool("1"));
        assert!(!query_bool("False"));
        assert!(!query_bool("0"));
    }
}
