//! Listing images as Glance does: filters (core attributes, `in:` lists, `gt:`/
//! `lte:`-style operators on times, size bounds, tags, custom properties), sort
//! keys and directions, and `limit`/`marker` paging. Works on the records the
//! caller may see; which of those a list shows by default is decided here too.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::ControlFlow;

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

/// Which images a list shows, decided once per list from its parameters and the
/// caller (owned, so the read can apply it to rows as they arrive).
pub struct Filter {
    admin: bool,
    project: Option<String>,
    /// Membership status of shared images the project is a member of.
    memberships: HashMap<String, MemberStatus>,
    /// `None`: the default view; `Some(None)`: `visibility=all`.
    visibility: Option<Option<Visibility>>,
    member_status: Option<MemberStatus>,
    member_status_given: bool,
    hidden: Option<bool>,
    /// Filters on core attributes, then those that need tags or properties.
    core: Vec<Pred>,
    children: Vec<Pred>,
}

impl Filter {
    /// Checks the list's filter parameters (the same errors, in the same order, as
    /// Glance answers them).
    pub fn new(
        q: &ListQuery,
        admin: bool,
        project: Option<&str>,
        memberships: HashMap<String, MemberStatus>,
    ) -> Result<Filter> {
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
                MemberStatus::parse(s)
                    .ok_or_else(|| invalid(format!("Invalid status value: {s}")))?,
            ),
        };
        let hidden = match q.filter("os_hidden") {
            None => Some(false),
            Some(v) => Some(parse_bool("os_hidden", v)?),
        };
        let mut core = Vec::new();
        let mut children = Vec::new();
        for (k, v) in &q.filters {
            if NOT_FILTERS.contains(&k.as_str())
                || matches!(k.as_str(), "visibility" | "member_status" | "os_hidden")
            {
                continue;
            }
            let p = predicate(k, v)?;
            if needs_children(k) {
                children.push(p);
            } else {
                core.push(p);
            }
        }
        Ok(Filter {
            admin,
            project: project.map(str::to_owned),
            memberships,
            visibility,
            member_status,
            member_status_given: q.filter("member_status").is_some(),
            hidden,
            core,
            children,
        })
    }

    /// `Some(h)`: the list shows only images whose `os_hidden` is `h` (a condition
    /// the read can apply).
    pub fn hidden(&self) -> Option<bool> {
        self.hidden
    }

    /// Whether deciding needs the images' tags or properties.
    pub fn needs_children(&self) -> bool {
        !self.children.is_empty()
    }

    /// Whether the list shows `im`, judged on its core attributes only.
    pub fn shows_core(&self, im: &Image) -> bool {
        let own = self.project.is_some() && im.owner.as_deref() == self.project.as_deref();
        let member_status = self.member_status;
        let membership = self.memberships.get(&im.id).copied();
        let accepted = || membership.is_some_and(|m| member_status.is_none_or(|s| s == m));
        let by_visibility = match self.visibility {
            // default view: what the project owns, public, and shared-with-it (accepted)
            None => {
                self.admin
                    || own
                    || im.visibility == Visibility::Public
                    || (im.visibility == Visibility::Shared && accepted())
            }
            Some(None) => {
                self.admin
                    || own
                    || matches!(im.visibility, Visibility::Public | Visibility::Community)
                    || (im.visibility == Visibility::Shared && accepted())
            }
            Some(Some(v)) => {
                im.visibility == v
                    && match v {
                        Visibility::Public | Visibility::Community => true,
                        Visibility::Private => self.admin || own,
                        Visibility::Shared => {
                            self.admin || (own && !self.member_status_given) || accepted()
                        }
                    }
            }
        };
        by_visibility
            && self.hidden.is_none_or(|h| im.os_hidden == h)
            && self.core.iter().all(|p| p(im))
    }

    /// Whether the list shows `im` (with its tags and properties).
    pub fn shows(&self, im: &Image) -> bool {
        self.shows_core(im) && self.children.iter().all(|p| p(im))
    }
}

/// Filters that look at tags or custom properties.
fn needs_children(key: &str) -> bool {
    !matches!(
        key,
        "id" | "name"
            | "status"
            | "owner"
            | "disk_format"
            | "container_format"
            | "protected"
            | "size_min"
            | "size_max"
            | "created_at"
            | "updated_at"
            | "min_disk"
            | "min_ram"
    )
}

/// Whether the list's order is newest first (`created_at` descending, then `id`
/// descending): the order in which the read can hand rows over, so that the page
/// is known as soon as it is full.
pub fn newest_first(q: &ListQuery) -> bool {
    matches!(q.sort.as_slice(), [(key, false)] if key == "created_at")
}

/// One page, filled from images in the list's order: skips up to and including
/// the marker, then keeps `limit` images and notes whether more follow.
pub struct Page {
    marker: Option<String>,
    past_marker: bool,
    limit: usize,
    items: Vec<Image>,
    more: bool,
}

impl Page {
    pub fn new(q: &ListQuery) -> Page {
        Page {
            marker: q.marker.clone(),
            past_marker: q.marker.is_none(),
            limit: q.limit,
            items: Vec::new(),
            more: false,
        }
    }

    /// Takes the next shown image; `Break` once the page is known.
    pub fn push(&mut self, im: Image) -> ControlFlow<()> {
        if !self.past_marker {
            self.past_marker = self.marker.as_deref() == Some(im.id.as_str());
            return ControlFlow::Continue(());
        }
        if self.items.len() == self.limit {
            self.more = true;
            return ControlFlow::Break(());
        }
        self.items.push(im);
        ControlFlow::Continue(())
    }

    /// The page and whether more images follow it.
    pub fn finish(self) -> Result<(Vec<Image>, bool)> {
        if !self.past_marker {
            let m = self.marker.unwrap_or_default();
            return Err(invalid(format!(
                "Invalid marker. Image {m} could not be found."
            )));
        }
        Ok((self.items, self.more))
    }

    /// The images so far (to fill in their tags and properties).
    pub fn items_mut(&mut self) -> &mut Vec<Image> {
        &mut self.items
    }
}

/// Filters, sorts and pages `images` (already restricted to what the viewer may
/// see, with tags and properties). Returns the page and whether more images follow.
pub fn apply(images: Vec<Image>, q: &ListQuery, filter: &Filter) -> Result<(Vec<Image>, bool)> {
    let mut out: Vec<Image> = images.into_iter().filter(|im| filter.shows(im)).collect();
    out.sort_by(|a, b| {
        for (key, asc) in &q.sort {
            let o = compare(a, b, key);
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        newest(a, b)
    });
    let mut page = Page::new(q);
    for im in out {
        if page.push(im).is_break() {
            break;
        }
    }
    page.finish()
}

/// Ties: newest first, then id, as Glance adds created_at and id.
fn newest(a: &Image, b: &Image) -> Ordering {
    b.created_at_us
        .cmp(&a.created_at_us)
        .then_with(|| b.id.cmp(&a.id))
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

type Pred = Box<dyn Fn(&Image) -> bool + Send + Sync>;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> Vec<Image> {
        (0..40)
            .map(|i| {
                let mut im = Image::new_queued(
                    format!("id-{:02}", (i * 7) % 40),
                    Some(if i % 3 == 0 { "p" } else { "q" }.to_string()),
                    // some share a creation time: the id breaks the tie
                    1_000 + i64::from(i / 4),
                );
                im.visibility = if i % 5 == 0 {
                    Visibility::Public
                } else {
                    Visibility::Private
                };
                im.os_hidden = i % 11 == 0;
                im
            })
            .collect()
    }

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ListQuery::parse(&pairs).unwrap()
    }

    /// What the streaming read does: rows newest first, filtered, into a page.
    fn streamed(q: &ListQuery, f: &Filter) -> Result<(Vec<Image>, bool)> {
        let mut rows = images();
        rows.sort_by(newest);
        let mut page = Page::new(q);
        for im in rows.into_iter().filter(|im| f.shows_core(im)) {
            if page.push(im).is_break() {
                break;
            }
        }
        page.finish()
    }

    #[test]
    fn a_page_read_newest_first_is_the_page_the_sorted_list_gives() {
        let ids = |r: Result<(Vec<Image>, bool)>| {
            r.map(|(v, more)| (v.into_iter().map(|im| im.id).collect::<Vec<_>>(), more))
                .map_err(|e| e.to_string())
        };
        for pairs in [
            vec![],
            vec![("limit", "5")],
            vec![("limit", "0")],
            vec![("limit", "1000")],
            vec![("limit", "3"), ("marker", "id-14")],
            vec![("marker", "id-39")],
            vec![("marker", "nope")],
            vec![("os_hidden", "true")],
            vec![("visibility", "public"), ("limit", "2")],
        ] {
            let q = query(&pairs);
            assert!(newest_first(&q));
            for (admin, project) in [(true, None), (false, Some("p"))] {
                let f = Filter::new(&q, admin, project, HashMap::new()).unwrap();
                assert_eq!(
                    ids(streamed(&q, &f)),
                    ids(apply(images(), &q, &f)),
                    "{pairs:?} admin={admin}"
                );
            }
        }
    }

    #[test]
    fn other_orders_and_tag_filters_are_not_streamed() {
        assert!(!newest_first(&query(&[("sort_key", "name")])));
        assert!(!newest_first(&query(&[("sort", "created_at:asc")])));
        let q = query(&[("tag", "x")]);
        assert!(
            Filter::new(&q, true, None, HashMap::new())
                .unwrap()
                .needs_children()
        );
        let q = query(&[("os_distro", "x")]);
        assert!(
            Filter::new(&q, true, None, HashMap::new())
                .unwrap()
                .needs_children()
        );
        let q = query(&[("name", "x"), ("size_min", "1")]);
        assert!(
            !Filter::new(&q, true, None, HashMap::new())
                .unwrap()
                .needs_children()
        );
    }
}
