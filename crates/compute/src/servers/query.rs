//! Server lists: Nova's filters, sort keys and paging. The common case (default
//! sort, filters that are columns) is one SQL query with keyset paging and a LIMIT,
//! so a page of 1,000 out of 10,000 servers reads 1,000 rows; other filters and
//! sorts load the matching rows and finish in memory.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use regex::Regex;

use ferrostack_core::RequestContext;
use ferrostack_core::db::{Db, Param};

use crate::error::{Error, Result};
use crate::records::servers::{self as records, COLUMNS, Col, Cond, ListRead};
use crate::servers::model::{Server, ServerName, vm_states_for_status};
use crate::servers::page::{Batch, BatchSender, Batches, Page};
use crate::service::Compute;
use crate::version::ApiVersion;

/// A list request, from the query string.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub params: Vec<(String, String)>,
}

impl ListQuery {
    fn get(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, k: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// The filters SQL cannot apply, checked row by row while the rows stream in.
struct RowFilters {
    name: Option<Regex>,
    status: Option<Vec<String>>,
    ip: Option<Regex>,
    key_name: Option<String>,
    tags: Vec<String>,
    tags_any: Vec<String>,
    not_tags: Vec<String>,
    not_tags_any: Vec<String>,
}

impl RowFilters {
    fn any(&self) -> bool {
        self.name.is_some()
            || self.status.is_some()
            || self.ip.is_some()
            || self.key_name.is_some()
            || !self.tags.is_empty()
            || !self.tags_any.is_empty()
            || !self.not_tags.is_empty()
            || !self.not_tags_any.is_empty()
    }

    /// The name test alone, before the rest of the row is decoded.
    fn name_ok(&self, name: &str) -> bool {
        self.name.as_ref().is_none_or(|re| re.is_match(name))
    }

    fn keep(&self, s: &Server) -> bool {
        if !self.name_ok(&s.name) {
            return false;
        }
        if let Some(names) = &self.status
            && !names.iter().any(|n| n == s.status())
        {
            return false;
        }
        if let Some(re) = &self.ip
            && !s
                .doc
                .addresses
                .iter()
                .flat_map(|v| v.fixed_ips.iter())
                .any(|ip| re.is_match(&ip.ip_address))
        {
            return false;
        }
        if let Some(k) = &self.key_name
            && s.doc.key_name.as_deref() != Some(k.as_str())
        {
            return false;
        }
        let has = |t: &String| s.doc.tags.contains(t);
        if !self.tags.iter().all(has) {
            return false;
        }
        if !self.tags_any.is_empty() && !self.tags_any.iter().any(has) {
            return false;
        }
        if !self.not_tags.is_empty() && self.not_tags.iter().all(has) {
            return false;
        }
        !self.not_tags_any.iter().any(has)
    }
}

impl Compute {
    /// `GET /servers/detail`: whole servers.
    pub async fn list_servers(
        &self,
        ctx: &RequestContext,
        q: &ListQuery,
        mv: ApiVersion,
    ) -> Result<Batches<Server>> {
        self.list::<Server>(ctx, q, mv).await
    }

    /// `GET /servers`: ids and names; in the common case only those two columns
    /// are read.
    pub async fn list_server_names(
        &self,
        ctx: &RequestContext,
        q: &ListQuery,
        mv: ApiVersion,
    ) -> Result<Page<ServerName>> {
        self.list::<ServerName>(ctx, q, mv).await?.collect().await
    }

    async fn list<T: records::Projection>(
        &self,
        ctx: &RequestContext,
        q: &ListQuery,
        mv: ApiVersion,
    ) -> Result<Batches<T>> {
        let admin = ctx.is_admin();
        let mut conds: Vec<Cond> = Vec::new();

        let all_tenants = q
            .get("all_tenants")
            .is_some_and(|v| v.is_empty() || truthy(v));
        if all_tenants && !admin {
            return Err(Error::Forbidden(
                "Policy doesn't allow os_compute_api:servers:index:get_all_tenants to be performed."
                    .into(),
            ));
        }
        let project_filter = q.get("project_id").or(q.get("tenant_id"));
        if admin && (all_tenants || project_filter.is_some()) {
            if let Some(p) = project_filter {
                conds.push(Cond::Eq(Col::ProjectId, p.to_string()));
            }
        } else {
            let p = ctx.project_id().unwrap_or("").to_string();
            conds.push(Cond::Eq(Col::ProjectId, p));
        }

        let changes_since = match q.get("changes-since") {
            Some(t) => Some(ferrostack_core::time::parse_iso_time(t).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for query parameters changes-since. Value: {t}. '{t}' is not a 'date-time'"
                ))
            })?),
            None => None,
        };
        let changes_before = match q.get("changes-before") {
            Some(t) if mv.at_least(2, 66) => Some(ferrostack_core::time::parse_iso_time(t).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for query parameters changes-before. Value: {t}. '{t}' is not a 'date-time'"
                ))
            })?),
            _ => None,
        };
        if let (Some(a), Some(b)) = (changes_since, changes_before)
            && a > b
        {
            return Err(Error::BadRequest(
                "The value of changes-since must be less than or equal to changes-before.".into(),
            ));
        }
        let want_deleted = admin && q.get("deleted").is_some_and(truthy);
        if want_deleted {
            conds.push(Cond::Deleted(true));
        } else if changes_since.is_none() && changes_before.is_none() {
            conds.push(Cond::Deleted(false));
        }
        if let Some(t) = changes_since {
            conds.push(Cond::UpdatedFrom(t * 1_000_000));
        }
        if let Some(t) = changes_before {
            conds.push(Cond::UpdatedUntil(t * 1_000_000 + 999_999));
        }

        // status: Nova maps it back to vm states; an unknown one is 400 from 2.38.
        let mut status_filter: Option<Vec<String>> = None;
        let statuses = q.all("status");
        if !statuses.is_empty() {
            let mut vms = Vec::new();
            let mut names = Vec::new();
            for s in &statuses {
                match vm_states_for_status(s) {
                    Some(v) => {
                        vms.extend(v);
                        names.push(s.to_ascii_uppercase());
                    }
                    None if mv.at_least(2, 38) => {
                        return Err(Error::BadRequest("Invalid status value".to_string()));
                    }
                    None => return Ok(Batches::empty(0)),
                }
            }
            if vms.is_empty() {
                return Ok(Batches::empty(0));
            }
            conds.push(Cond::VmStateIn(vms));
            status_filter = Some(names);
        }
        for (param, col) in [
            ("flavor", Col::FlavorId),
            ("reservation_id", Col::ReservationId),
            ("availability_zone", Col::AvailabilityZone),
            ("uuid", Col::Id),
        ] {
            if let Some(v) = q.get(param) {
                let v = if param == "flavor" {
                    v.trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or(v)
                        .to_string()
                } else {
                    v.to_string()
                };
                conds.push(Cond::Eq(col, v));
            }
        }
        if let Some(v) = q.get("image") {
            let id = v
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(v)
                .to_string();
            conds.push(Cond::Eq(Col::ImageRef, id));
        }
        if admin {
            for (param, col) in [
                ("host", Col::Host),
                ("node", Col::Host),
                ("user_id", Col::UserId),
            ] {
                if let Some(v) = q.get(param) {
                    conds.push(Cond::Eq(col, v.to_string()));
                }
            }
        }
        if let Some(v) = q.get("locked").filter(|_| mv.at_least(2, 73)) {
            conds.push(Cond::Locked(truthy(v)));
        }

        // In-memory filters.
        let name_re = match q.get("name").or(q.get("display_name")) {
            Some(n) => Some(Regex::new(n).map_err(|_| {
                Error::BadRequest(format!(
                    "Invalid name filter: {n} is not a valid regular expression"
                ))
            })?),
            None => None,
        };
        let ip_re = match q.get("ip").or(q.get("ip6")) {
            Some(n) => Some(
                Regex::new(n).map_err(|_| Error::BadRequest(format!("Invalid ip filter: {n}")))?,
            ),
            None => None,
        };
        let split_tags = |k: &str| -> Vec<String> {
            q.get(k)
                .map(|v| {
                    v.split(',')
                        .map(str::to_string)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (tags, tags_any, not_tags, not_tags_any) = if mv.at_least(2, 26) {
            (
                split_tags("tags"),
                split_tags("tags-any"),
                split_tags("not-tags"),
                split_tags("not-tags-any"),
            )
        } else {
            Default::default()
        };
        let filters = RowFilters {
            name: name_re,
            status: status_filter,
            ip: ip_re,
            key_name: q.get("key_name").map(str::to_string),
            tags,
            tags_any,
            not_tags,
            not_tags_any,
        };
        let in_memory = filters.any();

        // Sorting.
        let sort_keys = q.all("sort_key");
        let sort_dirs = q.all("sort_dir");
        let mut sort: Vec<(Col, bool)> = Vec::new();
        for (i, k) in sort_keys.iter().enumerate() {
            let col = match *k {
                "created_at" => Col::CreatedAt,
                "updated_at" => Col::UpdatedAt,
                "display_name" | "name" => Col::Name,
                "uuid" | "id" => Col::Id,
                "vm_state" => Col::VmState,
                "task_state" => Col::TaskState,
                "power_state" => Col::PowerState,
                "launch_index" => Col::LaunchIndex,
                "availability_zone" => Col::AvailabilityZone,
                "project_id" => Col::ProjectId,
                "user_id" => Col::UserId,
                "image_ref" => Col::ImageRef,
                "instance_type_id" | "flavor" => Col::FlavorId,
                "host" | "node" if admin => Col::Host,
                "host" | "node" => {
                    return Err(Error::Forbidden(format!(
                        "Only administrators can sort servers by {k}"
                    )));
                }
                other => {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for query parameters sort_key. Value: {other}."
                    )));
                }
            };
            let dir = sort_dirs.get(i).copied().unwrap_or("desc");
            let desc = match dir {
                "desc" => true,
                "asc" => false,
                other => {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for query parameters sort_dir. Value: {other}."
                    )));
                }
            };
            sort.push((col, desc));
        }
        let default_sort =
            sort.is_empty() || (sort.len() == 1 && sort[0].0 == Col::CreatedAt && sort[0].1);
        if sort.is_empty() {
            sort.push((Col::CreatedAt, true));
        }
        if !sort.iter().any(|(c, _)| *c == Col::Id) {
            let d = sort[0].1;
            sort.push((Col::Id, d));
        }

        let max = self.settings.compute.max_limit.max(1);
        let limit = match q.get("limit") {
            Some(l) => {
                let n: i64 = l.parse().map_err(|_| {
                    Error::BadRequest(format!("Invalid input for query parameters limit. Value: {l}. '{l}' does not match '^[0-9]*$'"))
                })?;
                if n < 0 {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for query parameters limit. Value: {l}."
                    )));
                }
                (n as usize).min(max)
            }
            None => max,
        };
        let marker = match q.get("marker") {
            Some(m) => {
                let found = records::get(&self.db, m).await?;
                match found {
                    Some(s) if admin || Some(s.project_id.as_str()) == ctx.project_id() => Some(s),
                    _ => return Err(Error::BadRequest(format!("marker [{m}] not found"))),
                }
            }
            None => None,
        };

        // The default order is keyset-paged in SQL. Without row filters SQL also
        // limits and only the view's columns are read; with them the rows stream
        // in order until the page is full. Other orders load every matching row
        // and sort here.
        let keyset = default_sort;
        let sql_limit = keyset && !in_memory;
        if keyset && let Some(m) = &marker {
            conds.push(Cond::Before {
                created_at_us: m.created_at_us,
                id: m.id.clone(),
            });
        }
        let (sql, binds) = ListRead {
            columns: if sql_limit { T::COLUMNS } else { COLUMNS },
            conds: &conds,
            order: &sort,
            limit: sql_limit.then_some(limit + 1),
        }
        .sql();

        let db = self.db.clone();
        Ok(Batches::spawn(limit, move |tx| async move {
            let want = limit + 1;
            let read = if sql_limit {
                read_all::<T>(&db, sql, binds, tx.clone()).await
            } else if keyset {
                read_filtered(&db, sql, binds, filters, want, tx.clone()).await
            } else {
                read_sorted(&db, sql, binds, filters, sort, marker, want, tx.clone()).await
            };
            if let Err(e) = read {
                tx.fail(e);
            }
        }))
    }
}

/// SQL filters, orders and limits: every row read belongs to the page.
async fn read_all<T: records::Projection>(
    db: &Db,
    sql: String,
    binds: Vec<Param>,
    tx: BatchSender<T>,
) -> Result<()> {
    db.fold(sql, binds, Batch::new(tx), |b, r| {
        b.push(T::decode(r)?);
        Ok::<_, Error>(b.hand_over())
    })
    .await?
    .flush();
    Ok(())
}

/// The default order with row filters: rows stream in order until `want` passed.
async fn read_filtered<T: records::Projection>(
    db: &Db,
    sql: String,
    binds: Vec<Param>,
    filters: RowFilters,
    want: usize,
    tx: BatchSender<T>,
) -> Result<()> {
    let mut kept = 0;
    db.fold(sql, binds, Batch::new(tx), move |b, r| {
        if filters.name_ok(records::name_of(r)?) {
            let s = records::decode(r)?;
            if filters.keep(&s) {
                b.push(T::from(s));
                kept += 1;
            }
        }
        Ok::<_, Error>(if kept >= want {
            ControlFlow::Break(())
        } else {
            b.hand_over()
        })
    })
    .await?
    .flush();
    Ok(())
}

/// Any other order: every matching row is read, then sorted here.
#[allow(clippy::too_many_arguments)]
async fn read_sorted<T: records::Projection>(
    db: &Db,
    sql: String,
    binds: Vec<Param>,
    filters: RowFilters,
    sort: Vec<(Col, bool)>,
    marker: Option<Server>,
    want: usize,
    tx: BatchSender<T>,
) -> Result<()> {
    let mut all: Vec<Server> = db
        .fold(sql, binds, Vec::new(), move |acc, r| {
            if filters.name_ok(records::name_of(r)?) {
                let s = records::decode(r)?;
                if filters.keep(&s) {
                    acc.push(s);
                }
            }
            Ok::<_, Error>(ControlFlow::Continue(()))
        })
        .await?;
    // One order for sorting and for the marker (the database's collation may
    // differ from byte order): rows after the marker's position, even when the
    // marker itself is filtered out or deleted.
    all.sort_by(|a, b| compare(&sort, a, b));
    if let Some(m) = &marker {
        all.retain(|s| compare(&sort, s, m) == Ordering::Greater);
    }
    all.truncate(want);
    let mut b = Batch::new(tx);
    for s in all {
        b.push(T::from(s));
        if b.hand_over().is_break() {
            return Ok(());
        }
    }
    b.flush();
    Ok(())
}

/// A sortable column value.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    Null,
    Int(i64),
    Str(&'a str),
}

fn key<'a>(s: &'a Server, col: Col) -> Key<'a> {
    let opt = |v: Option<&'a str>| v.map_or(Key::Null, Key::Str);
    match col {
        Col::CreatedAt => Key::Int(s.created_at_us),
        Col::UpdatedAt => Key::Int(s.updated_at_us),
        Col::Name => Key::Str(&s.name),
        Col::Id => Key::Str(&s.id),
        Col::VmState => Key::Str(s.vm_state.as_str()),
        Col::TaskState => opt(s.task_state.map(|t| t.as_str())),
        Col::PowerState => Key::Int(s.power_state),
        Col::LaunchIndex => Key::Int(s.launch_index),
        Col::AvailabilityZone => opt(s.availability_zone.as_deref()),
        Col::ProjectId => Key::Str(&s.project_id),
        Col::UserId => Key::Str(&s.user_id),
        Col::ImageRef => Key::Str(&s.image_ref),
        Col::FlavorId => Key::Str(&s.flavor_id),
        Col::Host => opt(s.host.as_deref()),
        Col::ReservationId => Key::Str(&s.reservation_id),
    }
}

/// The list order: `Less` = `a` comes first.
fn compare(sort: &[(Col, bool)], a: &Server, b: &Server) -> Ordering {
    for &(col, desc) in sort {
        let o = key(a, col).cmp(&key(b, col));
        let o = if desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

impl Compute {
    /// The caller's project's servers, oldest first, with those deleted since
    /// `deleted_since_us` (the EC2 API lists terminated instances for a while).
    /// Any role on the project may read them, as `GET /servers`.
    pub async fn project_servers(
        &self,
        ctx: &RequestContext,
        deleted_since_us: i64,
    ) -> Result<Vec<Server>> {
        let project = ctx.project_id().ok_or_else(|| {
            Error::Forbidden(
                "Policy doesn't allow os_compute_api:servers:index to be performed.".into(),
            )
        })?;
        records::of_project(&self.db, project, deleted_since_us).await
    }
}
