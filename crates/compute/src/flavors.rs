//! Flavors (Nova's `flavor-manage`, `os-flavor-access`, `os-extra_specs`): the sizes
//! servers are made in. Public flavors are seen by everyone; private ones by admins
//! and the projects given access. The defaults (m1.tiny ... m1.xlarge, devstack's
//! m1.nano and m1.micro) are seeded by migration 3000002, once.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::records::flavors::{self as records, has_access, load, projects_of};
use crate::records::{self as db, Conn};
use crate::rules::{self, invalid_input, show_value};
use crate::service::Compute;
use crate::version::ApiVersion;

/// Nova's `db.MAX_INT`.
pub const MAX_INT: i64 = 2_147_483_647;

/// A flavor, as stored and as the server document snapshots it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    /// Nova's `flavorid`.
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap_mb: i64,
    pub rxtx_factor: f64,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
    pub is_public: bool,
    pub disabled: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// Query parameters of `GET /flavors[/detail]`, as given.
#[derive(Debug, Clone, Default)]
pub struct FlavorQuery {
    pub is_public: Option<String>,
    pub min_ram: Option<String>,
    pub min_disk: Option<String>,
    pub sort_key: Option<String>,
    pub sort_dir: Option<String>,
    pub limit: Option<String>,
    pub marker: Option<String>,
}

/// Nova's flavor `VALID_SORT_KEYS` (those a flavor has here).
const SORT_KEYS: &[&str] = &[
    "created_at",
    "description",
    "disabled",
    "ephemeral_gb",
    "flavorid",
    "id",
    "is_public",
    "memory_mb",
    "name",
    "root_gb",
    "rxtx_factor",
    "swap",
    "updated_at",
    "vcpu_weight",
    "vcpus",
];

pub(crate) fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Flavor {id} could not be found."))
}

/// `is_public` filter: `None` literal = all (admin only), absent = public only.
fn parse_is_public(v: Option<&str>) -> Result<Option<bool>> {
    match v {
        None => Ok(Some(true)),
        Some(s) if s.eq_ignore_ascii_case("none") => Ok(None),
        Some(s) => rules::query_bool(s)
            .map(Some)
            .ok_or_else(|| Error::BadRequest(format!("Invalid is_public filter [{s}]"))),
    }
}

fn sort_flavors(list: &mut [Flavor], key: &str, desc: bool) {
    use std::cmp::Ordering;
    let num = |f: &Flavor| -> f64 {
        match key {
            "memory_mb" => f.memory_mb as f64,
            "vcpus" => f.vcpus as f64,
            "root_gb" => f.root_gb as f64,
            "ephemeral_gb" => f.ephemeral_gb as f64,
            "swap" => f.swap_mb as f64,
            "rxtx_factor" => f.rxtx_factor,
            "disabled" => f64::from(u8::from(f.disabled)),
            "is_public" => f64::from(u8::from(f.is_public)),
            _ => 0.0,
        }
    };
    list.sort_by(|a, b| {
        let o = match key {
            "name" => a.name.cmp(&b.name),
            "description" => a.description.cmp(&b.description),
            "flavorid" | "id" | "created_at" | "updated_at" | "vcpu_weight" => a.id.cmp(&b.id),
            _ => num(a).partial_cmp(&num(b)).unwrap_or(Ordering::Equal),
        };
        let o = o.then_with(|| a.id.cmp(&b.id));
        if desc { o.reverse() } else { o }
    });
}

/// A flavor reference as a client may give it: an id, or a URL ending in one.
pub fn id_from_ref(flavor_ref: &str) -> &str {
    let t = flavor_ref.trim_end_matches('/');
    if t.contains("://") {
        t.rsplit('/').next().unwrap_or(t)
    } else {
        t
    }
}

/// Validated fields of `POST /flavors`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewFlavor {
    pub id: Option<String>,
    pub flavor: Flavor,
}

fn flavor_id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b' ' | b'_' | b'-'))
}

fn description(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= 65535 => {
            if s.chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
            {
                return Err(invalid_input(
                    "description",
                    v,
                    "The description contains characters that are not printable.",
                ));
            }
            Ok(Some(s.clone()))
        }
        Value::String(_) => Err(invalid_input("description", v, "is too long")),
        _ => Err(invalid_input(
            "description",
            v,
            &format!("{} is not of type 'string', 'null'", show_value(v)),
        )),
    }
}

/// The body of `POST /flavors`, validated as Nova's `flavor_manage` schema does.
pub(crate) fn parse_new_flavor(body: &Value, v: ApiVersion) -> Result<NewFlavor> {
    let f = rules::envelope(body, "flavor")?;
    let mut allowed = vec![
        "name",
        "id",
        "ram",
        "vcpus",
        "disk",
        "OS-FLV-EXT-DATA:ephemeral",
        "swap",
        "rxtx_factor",
        "os-flavor-access:is_public",
    ];
    if v.at_least(2, 55) {
        allowed.push("description");
    }
    rules::only("flavor", f, &allowed)?;
    for required in ["name", "ram", "vcpus", "disk"] {
        if !f.contains_key(required) {
            return Err(invalid_input(
                "flavor",
                &Value::Object(f.clone()),
                &format!("'{required}' is a required property"),
            ));
        }
    }
    let name = match &f["name"] {
        Value::String(s) if s.chars().count() <= 255 => s.clone(),
        other => {
            return Err(invalid_input(
                "name",
                other,
                &format!("{} is not of type 'string'", show_value(other)),
            ));
        }
    };
    if !rules::valid_name(&name) {
        return Err(Error::BadRequest(
            "An invalid 'name' value was provided. The name must be: printable characters. \
             Can not start or end with whitespace."
                .into(),
        ));
    }
    // Nova's schema: `{'type': ['string', 'number', 'null'], 'minLength': 1,
    // 'maxLength': 255, 'pattern': ...}`; length and pattern bind strings only, and
    // `flavors.create` stores `str(id)`, generating a UUID when the id is falsy.
    let id = match f.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if flavor_id_ok(s) => Some(s.clone()),
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => None,
        Some(Value::Number(n)) => Some(rules::python_str(n)),
        Some(v @ Value::String(s)) if s.chars().count() > 255 => {
            return Err(invalid_input("id", v, &format!("'{s}' is too long")));
        }
        Some(v @ Value::String(s)) => {
            return Err(invalid_input(
                "id",
                v,
                &format!("'{s}' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'"),
            ));
        }
        Some(other) => {
            return Err(invalid_input(
                "id",
                other,
                &format!(
                    "{} is not of type 'string', 'number', 'null'",
                    show_value(other)
                ),
            ));
        }
    };
    let int = |k: &str, min: i64| -> Result<i64> {
        match f.get(k) {
            None => Ok(0),
            Some(x) => rules::integer(k, x, min, MAX_INT),
        }
    };
    let rxtx_factor = match f.get("rxtx_factor") {
        None => 1.0,
        Some(x) => {
            let n = match x {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if n > 0.0 && n <= 3.40282e38 => n,
                _ => {
                    return Err(invalid_input(
                        "rxtx_factor",
                        x,
                        &format!(
                            "{} is less than or equal to the minimum of 0",
                            show_value(x)
                        ),
                    ));
                }
            }
        }
    };
    let is_public = match f.get("os-flavor-access:is_public") {
        None => true,
        Some(x) => rules::boolean("os-flavor-access:is_public", x)?,
    };
    let description = match f.get("description") {
        None => None,
        Some(x) => description(x)?,
    };
    Ok(NewFlavor {
        id: id.clone(),
        flavor: Flavor {
            id: id.unwrap_or_default(),
            name,
            vcpus: int("vcpus", 1)?,
            memory_mb: int("ram", 1)?,
            root_gb: int("disk", 0)?,
            ephemeral_gb: int("OS-FLV-EXT-DATA:ephemeral", 0)?,
            swap_mb: int("swap", 0)?,
            rxtx_factor,
            extra_specs: BTreeMap::new(),
            is_public,
            disabled: false,
            description,
        },
    })
}

/// Nova's extra spec key pattern `^[a-zA-Z0-9-_:. ]{1,255}$`.
pub(crate) fn spec_key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 255
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':' | b'.' | b' '))
}

fn spec_value(k: &str, v: &Value) -> Result<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => {
            return Err(invalid_input(
                k,
                other,
                &format!(
                    "{} is not of type 'string', 'integer', 'number', 'boolean'",
                    show_value(other)
                ),
            ));
        }
    };
    if s.chars().count() > 255 {
        return Err(invalid_input(k, v, &format!("'{s}' is too long")));
    }
    Ok(s)
}

/// `{"extra_specs": {k: v, ...}}` or `{k: v}` members, validated.
pub(crate) fn parse_specs(field: &str, m: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if !spec_key_ok(k) {
            return Err(invalid_input(
                field,
                &Value::Object(m.clone()),
                &format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        out.insert(k.clone(), spec_value(k, v)?);
    }
    Ok(out)
}

impl Compute {
    /// Loads a flavor the caller may see (public, admin, or a project with access).
    async fn visible_flavor(
        &self,
        conn: &mut Conn,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<Flavor> {
        let f = load(conn, id).await?.ok_or_else(|| not_found(id))?;
        if f.is_public || ctx.is_admin() || has_access(conn, id, ctx.project_id()).await? {
            Ok(f)
        } else {
            Err(not_found(id))
        }
    }

    /// One page of flavors and whether the page is full (so a `next` link follows).
    pub async fn list_flavors(
        &self,
        ctx: &RequestContext,
        q: &FlavorQuery,
    ) -> Result<(Vec<Flavor>, bool)> {
        let is_public = if ctx.is_admin() {
            parse_is_public(q.is_public.as_deref())?
        } else {
            Some(true)
        };
        let parse_min = |v: &Option<String>, what: &str| -> Result<Option<i64>> {
            match v {
                None => Ok(None),
                Some(s) => s
                    .trim()
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| Error::BadRequest(format!("Invalid {what} filter [{s}]"))),
            }
        };
        let min_ram = parse_min(&q.min_ram, "minRam")?;
        let min_disk = parse_min(&q.min_disk, "minDisk")?;
        let sort_key = q.sort_key.as_deref().unwrap_or("flavorid");
        if !SORT_KEYS.contains(&sort_key) {
            return Err(Error::BadRequest(format!(
                "Invalid input for query parameters sort_key. Value: {sort_key}. '{sort_key}' is not one of {SORT_KEYS:?}"
            )));
        }
        let desc = match q.sort_dir.as_deref().unwrap_or("asc") {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for query parameters sort_dir. Value: {other}. '{other}' is not one of ['asc', 'desc']"
                )));
            }
        };
        let (limit, marker) = rules::limit_and_marker(
            q.limit.as_deref(),
            q.marker.as_deref(),
            self.settings.compute.max_limit,
        )?;

        let mut conn = db::acquire(&self.db).await?;
        let flavors = records::all(&mut conn).await?;
        let accessible = match ctx.project_id() {
            Some(p) => records::shared_with(&mut conn, p).await?,
            None => HashSet::new(),
        };
        let mut specs = records::all_specs(&mut conn).await?;
        let mut list = Vec::new();
        for mut f in flavors {
            let keep = match is_public {
                // public only = public + those shared with the caller's project
                Some(true) => f.is_public || accessible.contains(&f.id),
                Some(false) => !f.is_public,
                None => true,
            };
            if !keep
                || (!ctx.is_admin() && f.disabled)
                || min_ram.is_some_and(|m| f.memory_mb < m)
                || min_disk.is_some_and(|m| f.root_gb < m)
            {
                continue;
            }
            f.extra_specs = specs.remove(&f.id).unwrap_or_default();
            list.push(f);
        }
        sort_flavors(&mut list, sort_key, desc);
        let start = match &marker {
            None => 0,
            Some(m) => {
                list.iter()
                    .position(|f| &f.id == m)
                    .ok_or_else(|| Error::BadRequest(format!("marker [{m}] not found")))?
                    + 1
            }
        };
        let page: Vec<Flavor> = list.into_iter().skip(start).take(limit).collect();
        let full = page.len() == limit && limit > 0;
        Ok((page, full))
    }

    pub async fn get_flavor(&self, ctx: &RequestContext, id: &str) -> Result<Flavor> {
        let mut conn = db::acquire(&self.db).await?;
        self.visible_flavor(&mut conn, ctx, id).await
    }

    /// The flavor a server is created with: visible to the caller, extra specs
    /// included; `flavor_ref` may be an id or a URL ending in one. NotFound when it
    /// does not exist or is private to other projects.
    pub async fn flavor_for_server(
        &self,
        ctx: &RequestContext,
        flavor_ref: &str,
    ) -> Result<Flavor> {
        self.get_flavor(ctx, id_from_ref(flavor_ref)).await
    }

    pub async fn create_flavor(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        body: &Value,
    ) -> Result<Flavor> {
        rules::admin(ctx, "os_compute_api:os-flavor-manage:create")?;
        let new = parse_new_flavor(body, v)?;
        let mut f = new.flavor;
        f.id = new.id.unwrap_or_else(ferrostack_core::ids::new_uuid);
        let mut tx = self.db.begin_write().await?;
        if load(&mut tx, &f.id).await?.is_some() {
            return Err(Error::Conflict(format!(
                "Flavor with ID {} already exists.",
                f.id
            )));
        }
        let name_taken = || Error::Conflict(format!("Flavor with name {} already exists.", f.name));
        if records::name_exists(&mut tx, &f.name).await? {
            return Err(name_taken());
        }
        if !records::insert(&mut tx, &f, rules::now_us()).await? {
            return Err(name_taken());
        }
        tx.commit().await?;
        Ok(f)
    }

    /// `PUT /flavors/{id}` (2.55): only the description changes.
    pub async fn update_flavor(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
    ) -> Result<Flavor> {
        rules::admin(ctx, "os_compute_api:os-flavor-manage:update")?;
        let f = rules::envelope(body, "flavor")?;
        rules::only("flavor", f, &["description"])?;
        let Some(d) = f.get("description") else {
            return Err(invalid_input(
                "flavor",
                &Value::Object(f.clone()),
                "'description' is a required property",
            ));
        };
        let d = description(d)?;
        let mut tx = self.db.begin_write().await?;
        let mut flavor = load(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
        records::set_description(&mut tx, id, &d, rules::now_us()).await?;
        tx.commit().await?;
        flavor.description = d;
        Ok(flavor)
    }

    pub async fn delete_flavor(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        rules::admin(ctx, "os_compute_api:os-flavor-manage:delete")?;
        let mut tx = self.db.begin_write().await?;
        let n = records::delete(&mut tx, id).await?;
        if n == 0 {
            return Err(not_found(id));
        }
        tx.commit().await?;
        Ok(())
    }

    // --- extra specs -------------------------------------------------------------

    pub async fn flavor_extra_specs(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<BTreeMap<String, String>> {
        Ok(self.get_flavor(ctx, id).await?.extra_specs)
    }

    pub async fn flavor_extra_spec(
        &self,
        ctx: &RequestContext,
        id: &str,
        key: &str,
    ) -> Result<(String, String)> {
        let f = self.get_flavor(ctx, id).await?;
        f.extra_specs
            .get(key)
            .map(|v| (key.to_string(), v.clone()))
            .ok_or_else(|| no_spec(id, key))
    }

    /// `POST /flavors/{id}/os-extra_specs`: adds or replaces the given keys; returns them.
    pub async fn create_flavor_extra_specs(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
    ) -> Result<BTreeMap<String, String>> {
        rules::admin(ctx, "os_compute_api:os-flavor-extra-specs:create")?;
        let m = rules::envelope(body, "extra_specs")?;
        let specs = parse_specs("extra_specs", m)?;
        self.put_specs(id, &specs).await?;
        Ok(specs)
    }

    /// `PUT /flavors/{id}/os-extra_specs/{key}` with `{key: value}`.
    pub async fn update_flavor_extra_spec(
        &self,
        ctx: &RequestContext,
        id: &str,
        key: &str,
        body: &Value,
    ) -> Result<(String, String)> {
        rules::admin(ctx, "os_compute_api:os-flavor-extra-specs:update")?;
        let Value::Object(m) = body else {
            return Err(invalid_input(
                "extra_specs",
                body,
                "is not of type 'object'",
            ));
        };
        if m.len() > 1 {
            return Err(Error::BadRequest(
                "Request body contains too many items".into(),
            ));
        }
        if !m.contains_key(key) {
            return Err(Error::BadRequest("Request body and URI mismatch".into()));
        }
        let specs = parse_specs("extra_specs", m)?;
        self.put_specs(id, &specs).await?;
        Ok(specs.into_iter().next().unwrap_or_default())
    }

    async fn put_specs(&self, id: &str, specs: &BTreeMap<String, String>) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        if load(&mut tx, id).await?.is_none() {
            return Err(not_found(id));
        }
        records::put_specs(&mut tx, id, specs, rules::now_us()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_flavor_extra_spec(
        &self,
        ctx: &RequestContext,
        id: &str,
        key: &str,
    ) -> Result<()> {
        rules::admin(ctx, "os_compute_api:os-flavor-extra-specs:delete")?;
        let mut tx = self.db.begin_write().await?;
        if load(&mut tx, id).await?.is_none() {
            return Err(not_found(id));
        }
        let n = records::delete_spec(&mut tx, id, key).await?;
        if n == 0 {
            return Err(no_spec(id, key));
        }
        tx.commit().await?;
        Ok(())
    }

    // --- access --------------------------------------------------------------------

    /// The projects a private flavor is shared with.
    pub async fn flavor_access(&self, ctx: &RequestContext, id: &str) -> Result<Vec<String>> {
        rules::admin(ctx, "os_compute_api:os-flavor-access")?;
        let mut conn = db::acquire(&self.db).await?;
        let f = load(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
        if f.is_public {
            return Err(Error::NotFound(
                "Access list not available for public flavors.".into(),
            ));
        }
        projects_of(&mut conn, id).await
    }

    /// `POST /flavors/{id}/action` with `addTenantAccess` or `removeTenantAccess`;
    /// returns the access list after the change.
    pub async fn flavor_access_action(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        id: &str,
        body: &Value,
    ) -> Result<Vec<String>> {
        let (action, add) = if body.get("addTenantAccess").is_some() {
            ("addTenantAccess", true)
        } else if body.get("removeTenantAccess").is_some() {
            ("removeTenantAccess", false)
        } else {
            return Err(Error::BadRequest(
                "There is no such action: ".to_string()
                    + body
                        .as_object()
                        .and_then(|o| o.keys().next())
                        .map(String::as_str)
                        .unwrap_or(""),
            ));
        };
        if add {
            rules::admin(ctx, "os_compute_api:os-flavor-access:add_tenant_access")?;
        } else {
            rules::admin(ctx, "os_compute_api:os-flavor-access:remove_tenant_access")?;
        }
        let a = rules::envelope(body, action)?;
        rules::only(action, a, &["tenant"])?;
        let tenant = match a.get("tenant") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
            Some(other) => {
                return Err(invalid_input(
                    "tenant",
                    other,
                    &format!("{} is not of type 'string'", show_value(other)),
                ));
            }
            None => {
                return Err(invalid_input(
                    action,
                    &Value::Object(a.clone()),
                    "'tenant' is a required property",
                ));
            }
        };
        let mut tx = self.db.begin_write().await?;
        let f = load(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
        let exists = has_access(&mut tx, id, Some(&tenant)).await?;
        if add {
            if f.is_public && v.at_least(2, 7) {
                return Err(Error::Conflict(
                    "Can not add access to a public flavor.".into(),
                ));
            }
            if exists {
                return Err(Error::Conflict(format!(
                    "Flavor access already exists for flavor {id} and project {tenant} combination."
                )));
            }
            records::add_project(&mut tx, id, &tenant).await?;
        } else {
            if !exists {
                return Err(Error::NotFound(format!(
                    "Flavor access not found for {id} / {tenant} combination."
                )));
            }
            records::remove_project(&mut tx, id, &tenant).await?;
        }
        let list = projects_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(list)
    }
}

fn no_spec(id: &str, key: &str) -> Error {
    Error::NotFound(format!("Flavor {id} has no extra specs with key {key}."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(minor: u16) -> ApiVersion {
        ApiVersion::new(2, minor)
    }

    #[test]
    fn a_minimal_flavor_gets_nova_defaults() {
        let n = parse_new_flavor(
            &json!({"flavor": {"name": "f", "ram": "512", "vcpus": 1, "disk": 0, "id": null}}),
            v(1),
        )
        .unwrap();
        assert_eq!(n.id, None);
        assert_eq!(n.flavor.memory_mb, 512);
        assert_eq!(n.flavor.rxtx_factor, 1.0);
        assert!(n.flavor.is_public);
        assert_eq!(n.flavor.swap_mb, 0);
    }

    #[test]
    fn flavor_bodies_are_validated_like_nova() {
        let bad = |b: Value, minor: u16| parse_new_flavor(&b, v(minor)).unwrap_err().to_string();
        assert!(
            bad(json!({"flavor": {"name": "f", "vcpus": 1, "disk": 0}}), 1)
                .contains("'ram' is a required property")
        );
        assert!(
            bad(
                json!({"flavor": {"name": "f", "ram": 0, "vcpus": 1, "disk": 0}}),
                1
            )
            .contains("less than the minimum of 1")
        );
        assert!(
            bad(
                json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": -1}}),
                1
            )
            .contains("less than the minimum of 0")
        );
        assert!(
            bad(
                json!({"flavor": {"name": " f", "ram": 1, "vcpus": 1, "disk": 1}}),
                1
            )
            .contains("An invalid 'name' value")
        );
        assert!(
            bad(
                json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 1, "id": "a/b"}}),
                1
            )
            .contains("does not match")
        );
        // description only from 2.55
        let d =
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 1, "description": "x"}});
        assert!(
            bad(d.clone(), 54)
                .contains("Additional properties are not allowed ('description' was unexpected)")
        );
        assert_eq!(
            parse_new_flavor(&d, v(55))
                .unwrap()
                .flavor
                .description
                .as_deref(),
            Some("x")
        );
        assert!(
            bad(
                json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 1, "rxtx_factor": 0}}),
                1
            )
            .contains("rxtx_factor")
        );
    }

    #[test]
    fn numeric_flavor_ids_are_stored_as_python_writes_them() {
        let id = |x: Value| {
            parse_new_flavor(
                &json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "id": x}}),
                v(1),
            )
            .map(|n| n.id)
        };
        assert_eq!(id(json!(835001500)).unwrap().as_deref(), Some("835001500"));
        assert_eq!(id(json!(-3)).unwrap().as_deref(), Some("-3"));
        assert_eq!(id(json!(1.5)).unwrap().as_deref(), Some("1.5"));
        assert_eq!(id(json!(2.0)).unwrap().as_deref(), Some("2.0"));
        assert_eq!(id(json!(1e16)).unwrap().as_deref(), Some("1e+16"));
        assert_eq!(id(json!(0.00001)).unwrap().as_deref(), Some("1e-05"));
        assert_eq!(id(json!(0.0001)).unwrap().as_deref(), Some("0.0001"));
        assert_eq!(
            id(json!(123456.789)).unwrap().as_deref(),
            Some("123456.789")
        );
        // `if not flavorid`: zero gets a generated id
        assert_eq!(id(json!(0)).unwrap(), None);
        assert_eq!(id(json!(0.0)).unwrap(), None);
        assert_eq!(
            id(json!(true)).unwrap_err().to_string(),
            "Invalid input for field/attribute id. Value: True. True is not of type 'string', 'number', 'null'"
        );
        assert_eq!(
            id(json!("a/b")).unwrap_err().to_string(),
            "Invalid input for field/attribute id. Value: a/b. 'a/b' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'"
        );
    }

    #[test]
    fn is_public_takes_novas_boolean_enum() {
        let public = |x: Value| {
            parse_new_flavor(
                &json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0,
                                   "os-flavor-access:is_public": x}}),
                v(1),
            )
            .map(|n| n.flavor.is_public)
        };
        for t in [
            "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
        ] {
            assert!(public(json!(t)).unwrap(), "{t}");
        }
        for f in [
            "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no",
        ] {
            assert!(!public(json!(f)).unwrap(), "{f}");
        }
        assert!(!public(json!(false)).unwrap());
        // not in the enum
        let e = public(json!("tRuE")).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "Invalid input for field/attribute os-flavor-access:is_public. Value: tRuE. \
                 'tRuE' is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', \
                 'YES', 'Yes', 'yes', False, 'False', "
            ),
            "{e}"
        );
        assert!(public(json!("t")).is_err());
        assert!(
            public(json!(1))
                .unwrap_err()
                .to_string()
                .ends_with("1 is not of type 'boolean', 'string'")
        );
    }

    #[test]
    fn is_public_filter_parses_none_and_booleans() {
        assert_eq!(parse_is_public(None).unwrap(), Some(true));
        assert_eq!(parse_is_public(Some("None")).unwrap(), None);
        assert_eq!(parse_is_public(Some("false")).unwrap(), Some(false));
        assert_eq!(
            parse_is_public(Some("maybe")).unwrap_err().to_string(),
            "Invalid is_public filter [maybe]"
        );
    }

    #[test]
    fn flavor_refs_may_be_urls() {
        assert_eq!(id_from_ref("42"), "42");
        assert_eq!(id_from_ref("http://h/compute/v2.1/flavors/42"), "42");
    }

    #[test]
    fn extra_spec_keys_follow_nova_pattern() {
        assert!(spec_key_ok("hw:cpu_policy"));
        assert!(spec_key_ok("quota:disk read"));
        assert!(!spec_key_ok("a/b"));
        assert!(!spec_key_ok(""));
        let m = json!({"k": 5, "b": true}).as_object().unwrap().clone();
        let s = parse_specs("extra_specs", &m).unwrap();
        assert_eq!(s["k"], "5");
        assert_eq!(s["b"], "True");
    }
}
