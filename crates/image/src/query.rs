//! Listing images as Glance does: filters (core attributes, `in:` lists, `gt:`/
//! `lte:`-style operators on times, size bounds, tags, custom properties), sort
//! keys and directions, and `limit`/`marker` paging. Works on the records the
//! caller may see; which of those a list shows by default is decided here too.

use std::cmp::Ordering;
use std::collections::HashMap;

use ferrostack_core::time::parse_iso_time;

use crate::error::{Error, Result};
use crate::model::{Image, MemberStatus, Visibility};

/// Glance's `limit_param_default` and `api_limit_max`.
pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 1000;

const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "visibility",
    "owner",
    "min_disk",
    "min_ram",
    "virtual_size",
    "os_hidden",
    "protected",
];

/// Parameters that are not property filters.
const NOT_FILTERS: &[&str] = &["limit", "marker", "sort_key", "sort_dir", "sort"];

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: usize,
    pub marker: Option<String>,
    pub sort: Vec<(String, bool)>,
    pub filters: Vec<(String, String)>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

impl ListQuery {
    /// From the query string's pairs, in order (repeated keys kept).
    pub fn parse(pairs: &[(String, String)]) -> Result<ListQuery> {
        let mut limit = DEFAULT_LIMIT;
        let mut marker = None;
        let mut keys: Vec<String> = Vec::new();
        let mut dirs: Vec<bool> = Vec::new();
        let mut sort: Vec<(String, bool)> = Vec::new();
        let mut filters = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "limit" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| invalid("limit param must be an integer"))?;
                    if n < 0 {
                        return Err(invalid("limit param must be positive"));
                    }
                    limit = usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT);
                }
                "marker" => marker = Some(v.clone()),
                "sort_key" => {
                    for key in v.split(',') {
                        check_sort_key(key)?;
                        keys.push(key.to_string());
                    }
                }
                "sort_dir" => {
                    for d in v.split(',') {
                        dirs.push(parse_dir(d)?);
                    }
                }
                "sort" => {
                    for part in v.split(',') {
                        let (key, dir) = match part.split_once(':') {
                            Some((k, d)) => (k.trim(), parse_dir(d.trim())?),
                            None => (part.trim(), false),
                        };
                        check_sort_key(key)?;
                        sort.push((key.to_string(), dir));
                    }
                }
                _ => filters.push((k.clone(), v.clone())),
            }
        }
        if !sort.is_empty() && (!keys.is_empty() || !dirs.is_empty()) {
            return Err(invalid(
                "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'",
            ));
        }
        if sort.is_empty() {
            if dirs.len() > 1 && dirs.len() != keys.len() {
                return Err(invalid(
                    "Number of sort dirs does not match the number of sort keys",
                ));
            }
            if keys.is_empty() {
                keys.push("created_at".into());
            }
            for (i, k) in keys.into_iter().enumerate() {
                let asc = dirs.get(i).or(dirs.first()).copied().unwrap_or(false);
                sort.push((k, asc));
            }
        }
        Ok(ListQuery {
            limit,
            marker,
            sort,
            filters,
        })
    }

    fn filter(&self, key: &str) -> Option<&str> {
        self.filters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn check_sort_key(k: &str) -> Result<()> {
    if SORT_KEYS.contains(&k) {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid sort key: {k}. It must be one of the following: {}.",
            SORT_KEYS.join(", ")
        )))
    }
}

/// `true` = ascending.
fn parse_dir(d: &str) -> Result<bool> {
    match d {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => Err(invalid(format!(
            "Invalid sort direction: {other}. It must be one of the following: asc, desc."
        ))),
    }
}

/// What the caller is, for the default view of a list.
pub struct Viewer<'a> {
    pub admin: bool,
    pub project: Option<&'a str>,
    /// Membership status of shared images the project is a member of.
    pub memberships: &'a HashMap<String, MemberStatus>,
}

/// Filters, sorts and pages `images` (already restricted to what the viewer may
/// see). Returns the page and whether more images follow it.
pub fn apply(images: Vec<Image>, q: &ListQuery, who: &Viewer<'_>) -> Result<(Vec<Image>, bool)> {
    let visibility = match q.filter("visibility") {
        None => None,
        Some("all") => Some(None),
        Some(v) => {
            Some(Some(Visibility::parse(v).ok_or_else(|| {
                invalid(format!("Invalid visibility value: {v}"))
            })?))
        }
    };
    let member_status = match q.filter("member_status") {
        None => Some(MemberStatus::Accepted),
        Some("all") => None,
        Some(s) => Some(
            MemberStatus::parse(s).ok_or_else(|| invalid(format!("Invalid status value: {s}")))?,
        ),
    };
    let hidden = match q.filter("os_hidden") {
        None => Some(false),
        Some(v) => Some(parse_bool("os_hidden", v)?),
    };
    let mut preds: Vec<Pred> = Vec::new();
    for (k, v) in &q.filters {
        if NOT_FILTERS.contains(&k.as_str())
            || matches!(k.as_str(), "visibility" | "member_status" | "os_hidden")
        {
            continue;
        }
        preds.push(predicate(k, v)?);
    }

    let shows = |im: &Image| -> bool {
        let own = who.project.is_some() && im.owner.as_deref() == who.project;
        let membership = who.memberships.get(&im.id).copied();
        let by_visibility = match visibility {
            // default view: what the project owns, public, and shared-with-it (accepted)
            None => {
                who.admin
                    || own
                    || im.visibility == Visibility::Public
                    || (im.visibility == Visibility::Shared
                        && membership.is_some_and(|m| member_status.is_none_or(|s| s == m)))
            }
            Some(None) => {
                who.admin
                    || own
                    || matches!(im.visibility, Visibility::Public | Visibility::Community)
                    || (im.visibility == Visibility::Shared
                        && membership.is_some_and(|m| member_status.is_none_or(|s| s == m)))
            }
            Some(Some(v)) => {
                im.visibility == v
                    && match v {
                        Visibility::Public | Visibility::Community => true,
                        Visibility::Private => who.admin || own,
                        Visibility::Shared => {
                            who.admin
                                || (own && q.filter("member_status").is_none())
                                || membership.is_some_and(|m| member_status.is_none_or(|s| s == m))
                        }
                    }
            }
        };
        by_visibility && hidden.is_none_or(|h| im.os_hidden == h) && preds.iter().all(|p| p(im))
    };
    let mut out: Vec<Image> = images.into_iter().filter(|im| shows(im)).collect();
    out.sort_by(|a, b| {
        for (key, asc) in &q.sort {
            let o = compare(a, b, key);
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        // ties: newest first, then id, as Glance adds created_at and id
        b.created_at_us
            .cmp(&a.created_at_us)
            .then_with(|| b.id.cmp(&a.id))
    });
    if let Some(m) = &q.marker {
        let pos = out
            .iter()
            .position(|im| &im.id == m)
            .ok_or_else(|| invalid(format!("Invalid marker. Image {m} could not be found.")))?;
        out.drain(..=pos);
    }
    let more = out.len() > q.limit;
    out.truncate(q.limit);
    Ok((out, more))
}

fn compare(a: &Image, b: &Image, key: &str) -> Ordering {
    match key {
        "name" => a.name.cmp(&b.name),
        "status" => a.status.as_str().cmp(b.status.as_str()),
        "container_format" => a.container_format.cmp(&b.container_format),
        "disk_format" => a.disk_format.cmp(&b.disk_format),
        "size" => a.size.cmp(&b.size),
        "id" => a.id.cmp(&b.id),
        "created_at" => a.created_at_us.cmp(&b.created_at_us),
        "updated_at" => a.updated_at_us.cmp(&b.updated_at_us),
        "visibility" => a.visibility.as_str().cmp(b.visibility.as_str()),
        "owner" => a.owner.cmp(&b.owner),
        "min_disk" => a.min_disk.cmp(&b.min_disk),
        "min_ram" => a.min_ram.cmp(&b.min_ram),
        "virtual_size" => a.virtual_size.cmp(&b.virtual_size),
        "os_hidden" => a.os_hidden.cmp(&b.os_hidden),
        "protected" => a.protected.cmp(&b.protected),
        _ => Ordering::Equal,
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(format!(
            "Invalid value '{v}' for '{key}': expected a boolean"
        ))),
    }
}

fn parse_size(key: &str, v: &str) -> Result<i64> {
    v.parse::<i64>().map_err(|_| {
        invalid(format!(
            "Invalid value '{v}' for '{key}': expected an integer"
        ))
    })
}

type Pred = Box<dyn Fn(&Image) -> bool>;

/// `in:a,b` → the list; a plain value → itself.
fn values(v: &str) -> Vec<String> {
    match v.strip_prefix("in:") {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .collect(),
        None => vec![v.to_string()],
    }
}

fn time_pred(key: &'static str, v: &str) -> Result<Pred> {
    let (op, t) = v
        .split_once(':')
        .filter(|(op, _)| matches!(*op, "gt" | "gte" | "lt" | "lte" | "eq" | "neq"))
        .unwrap_or(("eq", v));
    let at =
        parse_iso_time(t).ok_or_else(|| invalid(format!("Invalid time format for {key}: {t}")))?;
    let op = op.to_string();
    Ok(Box::new(move |im: &Image| {
        let x = if key == "created_at" {
            im.created_at()
        } else {
            im.updated_at()
        };
        match op.as_str() {
            "gt" => x > at,
            "gte" => x >= at,
            "lt" => x < at,
            "lte" => x <= at,
            "neq" => x != at,
            _ => x == at,
        }
    }))
}

fn predicate(key: &str, v: &str) -> Result<Pred> {
    let vals = values(v);
    let any_of = move |s: Option<&str>| s.is_some_and(|s| vals.iter().any(|x| x == s));
    Ok(match key {
        "id" => Box::new(move |im: &Image| any_of(Some(&im.id))),
        "name" => Box::new(move |im: &Image| any_of(im.name.as_deref())),
        "status" => Box::new(move |im: &Image| any_of(Some(im.status.as_str()))),
        "owner" => Box::new(move |im: &Image| any_of(im.owner.as_deref())),
        "disk_format" => Box::new(move |im: &Image| any_of(im.disk_format.as_deref())),
        "container_format" => Box::new(move |im: &Image| any_of(im.container_format.as_deref())),
        "protected" => {
            let b = parse_bool(key, v)?;
            Box::new(move |im: &Image| im.protected == b)
        }
        "size_min" => {
            let n = parse_size(key, v)?;
            Box::new(move |im: &Image| im.size.is_some_and(|s| s >= n))
        }
        "size_max" => {
            let n = parse_size(key, v)?;
            Box::new(move |im: &Image| im.size.is_some_and(|s| s <= n))
        }
        "tag" => {
            let tag = v.to_string();
            Box::new(move |im: &Image| im.tags.contains(&tag))
        }
        "created_at" => time_pred("created_at", v)?,
        "updated_at" => time_pred("updated_at", v)?,
        "min_disk" | "min_ram" => {
            let n = parse_size(key, v)?;
            let disk = key == "min_disk";
            Box::new(move |im: &Image| (if disk { im.min_disk } else { im.min_ram }) == n)
        }
        _ => {
            let k = key.to_string();
            let want = v.to_string();
            Box::new(move |im: &Image| im.properties.get(&k) == Some(&want))
        }
    })
}
