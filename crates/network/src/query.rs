//! List parameters as Neutron reads them (filters on any attribute, `fields`,
//! `sort_key`/`sort_dir`, `limit`/`marker`/`page_reverse`) and their application to
//! rendered resources.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// attribute → accepted values (several values of one attribute: any of them).
    pub filters: Vec<(String, Vec<String>)>,
    pub fields: Vec<String>,
    /// (key, ascending)
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub page_reverse: bool,
}

/// One page of a list.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Value>,
    /// More items follow the page (in the direction of travel).
    pub has_next: bool,
    /// The request had a marker (so a page lies before this one).
    pub has_previous: bool,
}

fn push(filters: &mut Vec<(String, Vec<String>)>, k: &str, v: String) {
    match filters.iter_mut().find(|(key, _)| key == k) {
        Some((_, vals)) => vals.push(v),
        None => filters.push((k.to_string(), vec![v])),
    }
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
        "false" | "f" | "0" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

impl ListQuery {
    pub fn parse(pairs: &[(String, String)]) -> Result<ListQuery> {
        let mut q = ListQuery::default();
        let mut keys = Vec::new();
        let mut dirs = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "fields" => q.fields.push(v.clone()),
                "sort_key" => keys.push(v.clone()),
                "sort_dir" => {
                    if v != "asc" && v != "desc" {
                        return Err(Error::bad_request(format!(
                            "Invalid input for sort_dir. Reason: '{v}' is not in ['asc', 'desc']."
                        )));
                    }
                    dirs.push(v == "asc");
                }
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        Error::bad_request(format!(
                            "Limit must be an integer 0 or greater and not '{v}'"
                        ))
                    })?;
                    if n < 0 {
                        return Err(Error::bad_request(format!(
                            "Limit must be an integer 0 or greater and not '{v}'"
                        )));
                    }
                    q.limit = (n > 0).then(|| usize::try_from(n).unwrap_or(usize::MAX));
                }
                "marker" => q.marker = Some(v.clone()),
                "page_reverse" => q.page_reverse = parse_bool(v).unwrap_or(false),
                _ => push(&mut q.filters, k, v.clone()),
            }
        }
        if !dirs.is_empty() && dirs.len() != keys.len() {
            return Err(Error::bad_request(
                "The number of sort_keys and sort_dirs must be same",
            ));
        }
        q.sort = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, dirs.get(i).copied().unwrap_or(true)))
            .collect();
        Ok(q)
    }

    /// The filter values of `key`, if filtered on.
    pub fn filter(&self, key: &str) -> Option<&[String]> {
        self.filters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

fn scalar_matches(item: &Value, want: &str) -> bool {
    match item {
        Value::String(s) => s == want,
        Value::Bool(b) => parse_bool(want) == Some(*b),
        Value::Number(n) => n.to_string() == want,
        Value::Null => want.is_empty() || want == "None" || want == "null",
        Value::Array(a) => a.iter().any(|x| scalar_matches(x, want)),
        Value::Object(_) => false,
    }
}

fn tags_of(item: &Value) -> Vec<&str> {
    item.get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn split_tags(values: &[String]) -> Vec<&str> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether `item` passes every filter. Unknown attributes are ignored.
pub fn matches(item: &Value, filters: &[(String, Vec<String>)]) -> bool {
    for (key, values) in filters {
        let ok = match key.as_str() {
            "tags" => {
                let have = tags_of(item);
                split_tags(values).iter().all(|t| have.contains(t))
            }
            "tags-any" => {
                let have = tags_of(item);
                split_tags(values).iter().any(|t| have.contains(t))
            }
            "not-tags" => {
                let have = tags_of(item);
                !split_tags(values).iter().all(|t| have.contains(t))
            }
            "not-tags-any" => {
                let have = tags_of(item);
                !split_tags(values).iter().any(|t| have.contains(t))
            }
            "fixed_ips" => fixed_ips_match(item, values),
            _ => match item.get(key) {
                Some(v) => values.iter().any(|want| scalar_matches(v, want)),
                None => true,
            },
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `fixed_ips=ip_address=10.0.0.3&fixed_ips=subnet_id=...`: a port matches when it
/// has an address among the given ones and one in the given subnets.
fn fixed_ips_match(item: &Value, values: &[String]) -> bool {
    let Some(ips) = item.get("fixed_ips").and_then(Value::as_array) else {
        return true;
    };
    let mut want_ip = Vec::new();
    let mut want_subnet = Vec::new();
    let mut want_substr = Vec::new();
    for v in values {
        match v.split_once('=') {
            Some(("ip_address", a)) => want_ip.push(a),
            Some(("subnet_id", s)) => want_subnet.push(s),
            Some(("ip_address_substr", s)) => want_substr.push(s),
            _ => {}
        }
    }
    let field = |f: &Value, k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let ok_ip = want_ip.is_empty()
        || ips.iter().any(|f| {
            let a = field(f, "ip_address");
            want_ip
                .iter()
                .any(|w| crate::ip::canonical(w).as_deref() == Some(a.as_str()) || *w == a)
        });
    let ok_subnet = want_subnet.is_empty()
        || ips
            .iter()
            .any(|f| want_subnet.contains(&field(f, "subnet_id").as_str()));
    let ok_substr = want_substr.is_empty()
        || ips.iter().any(|f| {
            want_substr
                .iter()
                .any(|s| field(f, "ip_address").contains(s))
        });
    ok_ip && ok_subnet && ok_substr
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Which attributes may be sorted on: any scalar one the items have.
fn check_sort_keys(items: &[Value], sort: &[(String, bool)]) -> Result<()> {
    for (k, _) in sort {
        let known = items.first().is_none_or(|i| {
            i.get(k)
                .is_some_and(|v| !matches!(v, Value::Array(_) | Value::Object(_)))
        });
        if !known {
            return Err(Error::bad_request(format!(
                "'{k}' is an invalid attribute for sort_key"
            )));
        }
    }
    Ok(())
}

/// Filters, sorts (by the sort keys, then id), pages and trims `items`.
pub fn apply(mut items: Vec<Value>, q: &ListQuery) -> Result<Page> {
    check_sort_keys(&items, &q.sort)?;
    items.retain(|i| matches(i, &q.filters));
    let mut keys = q.sort.clone();
    if !keys.iter().any(|(k, _)| k == "id") {
        let asc = keys.first().map(|(_, a)| *a).unwrap_or(true);
        keys.push(("id".into(), asc));
    }
    items.sort_by(|a, b| {
        for (k, asc) in &keys {
            let o = cmp_values(a.get(k), b.get(k));
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let mut page = Page {
        has_previous: q.marker.is_some(),
        ..Page::default()
    };
    let id_of = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_string);
    if q.page_reverse {
        if let Some(m) = &q.marker {
            let pos = items
                .iter()
                .position(|i| id_of(i).as_deref() == Some(m))
                .unwrap_or(0);
            items.truncate(pos);
        }
        if let Some(limit) = q.limit
            && items.len() > limit
        {
            page.has_next = true;
            items.drain(..items.len() - limit);
        }
    } else {
        if let Some(m) = &q.marker {
            match items.iter().position(|i| id_of(i).as_deref() == Some(m)) {
                Some(pos) => {
                    items.drain(..=pos);
                }
                None => items.clear(),
            }
        }
        if let Some(limit) = q.limit
            && items.len() > limit
        {
            page.has_next = true;
            items.truncate(limit);
        }
    }
    page.items = items
        .into_iter()
        .map(|i| select_fields(i, &q.fields))
        .collect();
    Ok(page)
}

/// Keeps only `fields` (all when empty).
pub fn select_fields(item: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return item;
    }
    match item {
        Value::Object(m) => {
            let kept: Map<String, Value> = m
                .into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect();
            Value::Object(kept)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn items() -> Vec<Value> {
        vec![
            json!({"id": "c", "name": "x", "shared": true, "mtu": 1500, "tags": ["a", "b"]}),
            json!({"id": "a", "name": "y", "shared": false, "mtu": 1400, "tags": ["a"]}),
            json!({"id": "b", "name": "x", "shared": false, "mtu": 1500, "tags": []}),
        ]
    }

    fn ids(p: &Page) -> Vec<&str> {
        p.items.iter().map(|i| i["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn filters_on_strings_booleans_numbers_and_tags() {
        let q = ListQuery::parse(&pairs(&[("name", "x")])).unwrap();
        assert_eq!(ids(&apply(items(), &q).unwrap()), ["b", "c"]);
        let q = ListQuery::parse(&pairs(&[("shared", "False")])).unwrap();
        assert_eq!(ids(&apply(items(), &q).unwrap()), ["a", "b"]);
        let q = ListQuery::parse(&pairs(&[("mtu", "1400")])).unwrap();
        assert_eq!(ids(&apply(items(), &q).unwrap()), ["a"]);
        let q = ListQuery::parse(&pairs(&[("id", "a"), ("id", "c")])).unwrap();
        assert_eq!(ids(&apply(items(), &q).unwrap()), ["a", "c"]);
        let q = ListQuery::parse(&pairs(&[("tags", "a,b")])).unwrap();
        assert_eq!(ids(&apply(items(), &q).unwrap()), ["c"]);
        let q = ListQuery::parse(&pairs(&[("not-tags-any", "a")])).unwrap();
        assert_eq!(ids(&apply(items(), &q).unwrap()), ["b"]);
    }

    #[test]
    fn sorts_pages_and_selects_fields() {
        let q = ListQuery::parse(&pairs(&[("sort_key", "name"), ("sort_dir", "desc")])).unwrap();
        assert_eq!(ids(&apply(items(), &q).unwrap()), ["a", "c", "b"]);
        let q = ListQuery::parse(&pairs(&[("limit", "2")])).unwrap();
        let p = apply(items(), &q).unwrap();
        assert_eq!(ids(&p), ["a", "b"]);
        assert!(p.has_next && !p.has_previous);
        let q = ListQuery::parse(&pairs(&[("limit", "2"), ("marker", "b")])).unwrap();
        let p = apply(items(), &q).unwrap();
        assert_eq!(ids(&p), ["c"]);
        assert!(!p.has_next && p.has_previous);
        let q = ListQuery::parse(&pairs(&[
            ("limit", "1"),
            ("marker", "c"),
            ("page_reverse", "True"),
        ]))
        .unwrap();
        assert_eq!(ids(&apply(items(), &q).unwrap()), ["b"]);
        let q = ListQuery::parse(&pairs(&[("fields", "id"), ("fields", "mtu")])).unwrap();
        let p = apply(items(), &q).unwrap();
        assert_eq!(p.items[0], json!({"id": "a", "mtu": 1400}));
        assert!(ListQuery::parse(&pairs(&[("limit", "x")])).is_err());
        assert!(ListQuery::parse(&pairs(&[("sort_dir", "up")])).is_err());
        let q = ListQuery::parse(&pairs(&[("sort_key", "bogus")])).unwrap();
        assert!(apply(items(), &q).is_err());
    }

    #[test]
    fn fixed_ip_filters() {
        let port = json!({"id": "p", "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}]});
        let f = |v: &[&str]| {
            let vals: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            matches(&port, &[("fixed_ips".into(), vals)])
        };
        assert!(f(&["ip_address=10.0.0.5"]));
        assert!(!f(&["ip_address=10.0.0.6"]));
        assert!(f(&["subnet_id=s1", "ip_address=10.0.0.5"]));
        assert!(!f(&["subnet_id=s2"]));
        assert!(f(&["ip_address_substr=0.0.5"]));
    }
}
