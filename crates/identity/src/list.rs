//! Listing as Keystone does it: exact filters on the attributes a collection
//! supports (booleans accept `true/false/0/1`), inexact filters `name__contains`,
//! `__startswith`, `__endswith` (an `i` prefix makes them case-insensitive), and
//! truncation at `list_limit` (reported as `truncated`). ferrostack also honours
//! `limit` and `marker` (the id of the last entity of the previous page).

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fields::query_bool;

/// The query parameters of a list request, in order.
#[derive(Debug, Clone, Default)]
pub struct ListParams(pub Vec<(String, String)>);

impl ListParams {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Builds params from pairs, for callers inside the process.
    pub fn from_pairs<I: IntoIterator<Item = (&'static str, String)>>(it: I) -> Self {
        ListParams(it.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

/// One page of a collection.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Cut at the configured `list_limit`.
    pub truncated: bool,
    /// When a `limit` was given and more entities follow: the marker of the next page.
    pub next_marker: Option<String>,
}

impl<T> Page<T> {
    pub fn all(items: Vec<T>) -> Self {
        Page {
            items,
            truncated: false,
            next_marker: None,
        }
    }
}

/// Applies filters, ordering and paging to a whole collection.
pub fn apply<T: Serialize>(
    mut items: Vec<T>,
    id_of: fn(&T) -> &str,
    params: &ListParams,
    supported: &[&str],
    list_limit: usize,
) -> Result<Page<T>> {
    let mut filters = Vec::new();
    for (key, value) in &params.0 {
        if supported.contains(&key.as_str()) {
            filters.push(Filter::Exact(key.clone(), value.clone()));
            continue;
        }
        if let Some((base, cmp)) = key.split_once("__")
            && supported.contains(&base)
        {
            let (ci, cmp) = match cmp.strip_prefix('i') {
                Some(rest) => (true, rest),
                None => (false, cmp),
            };
            let op = match cmp {
                "contains" => Inexact::Contains,
                "startswith" => Inexact::StartsWith,
                "endswith" => Inexact::EndsWith,
                _ => continue, // Keystone silently ignores unknown comparators
            };
            filters.push(Filter::Inexact {
                key: base.to_string(),
                value: value.clone(),
                op,
                case_insensitive: ci,
            });
        }
    }
    if !filters.is_empty() {
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            let json = serde_json::to_value(&item)?;
            if filters.iter().all(|f| f.matches(&json)) {
                kept.push(item);
            }
        }
        items = kept;
    }

    if let Some(marker) = params.get("marker") {
        let pos = items
            .iter()
            .position(|i| id_of(i) == marker)
            .ok_or_else(|| Error::Validation(format!("Invalid marker: {marker}")))?;
        items.drain(..=pos);
    }
    let mut next_marker = None;
    if let Some(limit) = params.get("limit") {
        let limit: usize = limit
            .parse()
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| Error::Validation(format!("Invalid limit: {limit}")))?;
        if items.len() > limit {
            items.truncate(limit);
            next_marker = items.last().map(|i| id_of(i).to_string());
        }
    }
    let mut truncated = false;
    if list_limit > 0 && items.len() > list_limit {
        items.truncate(list_limit);
        truncated = true;
    }
    Ok(Page {
        items,
        truncated,
        next_marker,
    })
}

enum Inexact {
    Contains,
    StartsWith,
    EndsWith,
}

enum Filter {
    Exact(String, String),
    Inexact {
        key: String,
        value: String,
        op: Inexact,
        case_insensitive: bool,
    },
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        match self {
            Filter::Exact(key, want) => match item.get(key) {
                Some(Value::Bool(b)) => *b == query_bool(want),
                Some(Value::String(s)) => s == want,
                Some(Value::Null) | None => false,
                Some(other) => *other.to_string() == **want,
            },
            Filter::Inexact {
                key,
                value,
                op,
                case_insensitive,
            } => {
                let Some(Value::String(s)) = item.get(key) else {
                    return false;
                };
                let (s, v) = if *case_insensitive {
                    (s.to_lowercase(), value.to_lowercase())
                } else {
                    (s.clone(), value.clone())
                };
                match op {
                    Inexact::Contains => s.contains(&v),
                    Inexact::StartsWith => s.starts_with(&v),
                    Inexact::EndsWith => s.ends_with(&v),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items() -> Vec<Value> {
        vec![
            json!({"id": "1", "name": "Alpha", "enabled": true}),
            json!({"id": "2", "name": "beta", "enabled": false}),
            json!({"id": "3", "name": "alphabet", "enabled": true}),
        ]
    }

    fn id(v: &Value) -> &str {
        v["id"].as_str().unwrap()
    }

    fn p(pairs: &[(&str, &str)]) -> ListParams {
        ListParams(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn exact_boolean_and_inexact_filters() {
        let page = apply(
            items(),
            id,
            &p(&[("enabled", "false")]),
            &["name", "enabled"],
            0,
        )
        .unwrap();
        assert_eq!(page.items.len(), 1);
        let page = apply(
            items(),
            id,
            &p(&[("name__icontains", "ALPHA")]),
            &["name"],
            0,
        )
        .unwrap();
        assert_eq!(page.items.len(), 2);
        let page = apply(
            items(),
            id,
            &p(&[("name__startswith", "alpha")]),
            &["name"],
            0,
        )
        .unwrap();
        assert_eq!(page.items.len(), 1);
        // unsupported filters are ignored
        let page = apply(items(), id, &p(&[("colour", "red")]), &["name"], 0).unwrap();
        assert_eq!(page.items.len(), 3);
    }

    #[test]
    fn limit_marker_and_list_limit() {
        let page = apply(items(), id, &p(&[("limit", "2")]), &[], 0).unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_marker.as_deref(), Some("2"));
        let page = apply(items(), id, &p(&[("limit", "2"), ("marker", "2")]), &[], 0).unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.next_marker.is_none());
        let page = apply(items(), id, &p(&[]), &[], 2).unwrap();
        assert!(page.truncated);
        assert!(apply(items(), id, &p(&[("limit", "x")]), &[], 0).is_err());
        assert!(apply(items(), id, &p(&[("marker", "nope")]), &[], 0).is_err());
    }
}
