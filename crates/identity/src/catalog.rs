//! The service catalog: regions, services and endpoints (CRUD), and the catalog a
//! token carries (enabled services with their enabled endpoints, URL templates
//! `$(project_id)s` / `%(tenant_id)s` filled in for the token's project).

use ferrostack_core::RequestContext;
use ferrostack_core::ids::new_hex_id;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fields::Fields;
use crate::list::{ListParams, Page, apply};
use crate::model::{Endpoint, Region, Service};
use crate::policy;
use crate::records::{self, dup};
use crate::service::{Identity, merge_extra};

const INTERFACES: &[&str] = &["public", "internal", "admin"];

/// One service in a token's catalog.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogEntry {
    pub endpoints: Vec<CatalogEndpoint>,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogEndpoint {
    pub id: String,
    pub interface: String,
    pub region: Option<String>,
    pub region_id: Option<String>,
    pub url: String,
}

/// Fills Keystone's URL templates; `None` when the URL needs a project and there is none.
fn fill_template(url: &str, project_id: Option<&str>) -> Option<String> {
    let needs = url.contains("$(project_id)s")
        || url.contains("$(tenant_id)s")
        || url.contains("%(project_id)s")
        || url.contains("%(tenant_id)s");
    if !needs {
        return Some(url.to_string());
    }
    let p = project_id?;
    Some(
        url.replace("$(project_id)s", p)
            .replace("$(tenant_id)s", p)
            .replace("%(project_id)s", p)
            .replace("%(tenant_id)s", p),
    )
}

impl Identity {
    /// The catalog for a token scoped to `project_id` (or not project-scoped).
    pub async fn catalog_for(&self, project_id: Option<&str>) -> Result<Vec<CatalogEntry>> {
        let snap = self.snapshot().await?;
        let mut out = Vec::new();
        for s in snap.services.iter().filter(|s| s.enabled) {
            let endpoints: Vec<CatalogEndpoint> = snap
                .endpoints
                .iter()
                .filter(|e| e.enabled && e.service_id == s.id)
                .filter_map(|e| {
                    Some(CatalogEndpoint {
                        id: e.id.clone(),
                        interface: e.interface.clone(),
                        region: e.region_id.clone(),
                        region_id: e.region_id.clone(),
                        url: fill_template(&e.url, project_id)?,
                    })
                })
                .collect();
            out.push(CatalogEntry {
                endpoints,
                id: s.id.clone(),
                kind: s.kind.clone(),
                name: s.name.clone(),
            });
        }
        Ok(out)
    }

    // ----- regions ---------------------------------------------------------------------

    pub(crate) async fn region(&self, id: &str) -> Result<Region> {
        records::catalog::region(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("region", id))
    }

    /// `POST /v3/regions` (id optional) and `PUT /v3/regions/{id}`.
    pub async fn create_region(
        &self,
        ctx: &RequestContext,
        id: Option<&str>,
        body: Value,
    ) -> Result<Region> {
        policy::admin(ctx, "identity:create_region")?;
        let mut f = Fields::member(body, "region")?;
        let body_id = f.string("id", 255)?;
        let id = match (id, body_id) {
            (Some(url), Some(b)) if url != b => {
                return Err(Error::Validation(
                    "Conflicting region IDs specified: the URL and the body disagree.".into(),
                ));
            }
            (Some(url), _) => url.to_string(),
            (None, Some(b)) => b,
            (None, None) => new_hex_id(),
        };
        let description = f.text("description")?.unwrap_or_default();
        let parent = f.nullable_string("parent_region_id", 255)?.flatten();
        let extra = f.into_extra();
        if let Some(p) = &parent {
            self.region(p)
                .await
                .map_err(|_| Error::Validation(format!("Could not find parent region: {p}.")))?;
        }
        let region = Region {
            id: id.clone(),
            description,
            parent_region_id: parent,
            extra,
        };
        let mut tx = self.db.begin_write().await?;
        records::catalog::insert_region(&mut tx, &region)
            .await
            .map_err(dup("region", format!("Duplicate ID, {id}")))?;
        self.commit(tx, vec![]).await?;
        self.region(&id).await
    }

    pub async fn list_regions(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<Region>> {
        policy::authenticated(ctx)?;
        let all = records::catalog::regions(&self.db).await?;
        apply(all, |r| &r.id, params, &["parent_region_id", "id"], 0)
    }

    pub async fn get_region(&self, ctx: &RequestContext, id: &str) -> Result<Region> {
        policy::authenticated(ctx)?;
        self.region(id).await
    }

    pub async fn update_region(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Region> {
        policy::admin(ctx, "identity:update_region")?;
        let mut r = self.region(id).await?;
        let mut f = Fields::member(body, "region")?;
        f.forbid_id_change(id)?;
        if let Some(d) = f.text("description")? {
            r.description = d;
        }
        if let Some(p) = f.nullable_string("parent_region_id", 255)? {
            if let Some(pid) = &p {
                if pid == id {
                    return Err(Error::Validation(
                        "A region cannot be its own parent.".into(),
                    ));
                }
                self.region(pid).await.map_err(|_| {
                    Error::Validation(format!("Could not find parent region: {pid}."))
                })?;
            }
            r.parent_region_id = p;
        }
        merge_extra(&mut r.extra, f.into_extra());
        let mut tx = self.db.begin_write().await?;
        records::catalog::update_region(&mut tx, &r).await?;
        self.commit(tx, vec![]).await?;
        Ok(r)
    }

    pub async fn delete_region(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        policy::admin(ctx, "identity:delete_region")?;
        self.region(id).await?;
        if records::catalog::region_in_use(&self.db, id).await? {
            return Err(Error::ForbiddenAction(format!(
                "Unable to delete region {id} because it or its child regions have associated endpoints."
            )));
        }
        let mut tx = self.db.begin_write().await?;
        records::catalog::delete_region(&mut tx, id).await?;
        self.commit(tx, vec![]).await
    }

    // ----- services --------------------------------------------------------------------

    pub(crate) async fn service(&self, id: &str) -> Result<Service> {
        records::catalog::service(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("service", id))
    }

    pub async fn create_service(&self, ctx: &RequestContext, body: Value) -> Result<Service> {
        policy::admin(ctx, "identity:create_service")?;
        let mut f = Fields::member(body, "service")?;
        let kind = f.required_string("type", 255)?;
        let name = f.text("name")?.unwrap_or_default();
        let description = f.text("description")?.unwrap_or_default();
        let enabled = f.bool("enabled")?.unwrap_or(true);
        f.take("id");
        let extra = f.into_extra();
        let id = new_hex_id();
        self.insert_service(&id, &kind, &name, &description, enabled, &extra)
            .await?;
        self.service(&id).await
    }

    pub(crate) async fn insert_service(
        &self,
        id: &str,
        kind: &str,
        name: &str,
        description: &str,
        enabled: bool,
        extra: &serde_json::Map<String, Value>,
    ) -> Result<()> {
        let service = Service {
            id: id.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            enabled,
            extra: extra.clone(),
        };
        let mut tx = self.db.begin_write().await?;
        records::catalog::insert_service(&mut tx, &service).await?;
        self.commit(tx, vec![]).await
    }

    pub async fn list_services(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<Service>> {
        policy::reader_of_domain(ctx, "identity:list_services", None)?;
        let snap = self.snapshot().await?;
        apply(
            snap.services.clone(),
            |s| &s.id,
            params,
            &["type", "name", "enabled", "id"],
            0,
        )
    }

    pub async fn get_service(&self, ctx: &RequestContext, id: &str) -> Result<Service> {
        policy::reader_of_domain(ctx, "identity:get_service", None)?;
        self.service(id).await
    }

    pub async fn update_service(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Service> {
        policy::admin(ctx, "identity:update_service")?;
        let mut s = self.service(id).await?;
        let mut f = Fields::member(body, "service")?;
        f.forbid_id_change(id)?;
        if let Some(t) = f.string("type", 255)? {
            s.kind = t;
        }
        if let Some(n) = f.text("name")? {
            s.name = n;
        }
        if let Some(d) = f.text("description")? {
            s.description = d;
        }
        if let Some(e) = f.bool("enabled")? {
            s.enabled = e;
        }
        merge_extra(&mut s.extra, f.into_extra());
        let mut tx = self.db.begin_write().await?;
        records::catalog::update_service(&mut tx, &s).await?;
        self.commit(tx, vec![]).await?;
        Ok(s)
    }

    /// Deletes a service and its endpoints.
    pub async fn delete_service(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        policy::admin(ctx, "identity:delete_service")?;
        self.service(id).await?;
        let mut tx = self.db.begin_write().await?;
        records::catalog::delete_service(&mut tx, id).await?;
        self.commit(tx, vec![]).await
    }

    // ----- endpoints -------------------------------------------------------------------

    pub(crate) async fn endpoint(&self, id: &str) -> Result<Endpoint> {
        records::catalog::endpoint(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("endpoint", id))
    }

    fn check_interface(i: &str) -> Result<()> {
        if INTERFACES.contains(&i) {
            Ok(())
        } else {
            Err(Error::Validation(format!(
                "Invalid input for field 'interface': '{i}' is not one of ['admin', 'internal', 'public']"
            )))
        }
    }

    fn check_url(u: &str) -> Result<()> {
        if u.starts_with("http://") || u.starts_with("https://") {
            Ok(())
        } else {
            Err(Error::Validation(format!(
                "Invalid input for field 'url': '{u}' is not a valid URL"
            )))
        }
    }

    pub async fn create_endpoint(&self, ctx: &RequestContext, body: Value) -> Result<Endpoint> {
        policy::admin(ctx, "identity:create_endpoint")?;
        let mut f = Fields::member(body, "endpoint")?;
        let service_id = f.required_string("service_id", 64)?;
        let interface = f.required_string("interface", 64)?;
        Self::check_interface(&interface)?;
        let url = f.required_string("url", 2048)?;
        Self::check_url(&url)?;
        let legacy_region = f.nullable_string("region", 255)?.flatten();
        let region_id = f.nullable_string("region_id", 255)?.flatten();
        let enabled = f.bool("enabled")?.unwrap_or(true);
        f.take("id");
        let extra = f.into_extra();
        self.service(&service_id)
            .await
            .map_err(|_| Error::Validation(format!("Could not find service: {service_id}.")))?;
        let region_id = match (region_id, legacy_region) {
            (None, Some(legacy)) => {
                self.ensure_legacy_region(&legacy).await?;
                Some(legacy)
            }
            (r, _) => r,
        };
        if let Some(r) = &region_id {
            self.region(r)
                .await
                .map_err(|_| Error::Validation(format!("Could not find region: {r}.")))?;
        }
        let id = new_hex_id();
        self.insert_endpoint(
            &id,
            &service_id,
            &interface,
            region_id.as_deref(),
            &url,
            enabled,
            &extra,
        )
        .await?;
        self.endpoint(&id).await
    }

    /// An endpoint given the v2-style `region` (not `region_id`) names its region, which
    /// Keystone creates when it does not exist yet (backward compatibility with v2 clients).
    async fn ensure_legacy_region(&self, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        if records::catalog::insert_region_if_missing(&mut tx, id).await? {
            self.commit(tx, vec![]).await
        } else {
            Ok(())
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_endpoint(
        &self,
        id: &str,
        service_id: &str,
        interface: &str,
        region_id: Option<&str>,
        url: &str,
        enabled: bool,
        extra: &serde_json::Map<String, Value>,
    ) -> Result<()> {
        let endpoint = Endpoint {
            id: id.to_string(),
            service_id: service_id.to_string(),
            interface: interface.to_string(),
            region: region_id.map(str::to_string),
            region_id: region_id.map(str::to_string),
            url: url.to_string(),
            enabled,
            extra: extra.clone(),
        };
        let mut tx = self.db.begin_write().await?;
        records::catalog::insert_endpoint(&mut tx, &endpoint).await?;
        self.commit(tx, vec![]).await
    }

    pub async fn list_endpoints(
        &self,
        ctx: &RequestContext,
        params: &ListParams,
    ) -> Result<Page<Endpoint>> {
        policy::reader_of_domain(ctx, "identity:list_endpoints", None)?;
        let snap = self.snapshot().await?;
        apply(
            snap.endpoints.clone(),
            |e| &e.id,
            params,
            &["interface", "service_id", "region_id", "enabled", "id"],
            0,
        )
    }

    pub async fn get_endpoint(&self, ctx: &RequestContext, id: &str) -> Result<Endpoint> {
        policy::reader_of_domain(ctx, "identity:get_endpoint", None)?;
        self.endpoint(id).await
    }

    pub async fn update_endpoint(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: Value,
    ) -> Result<Endpoint> {
        policy::admin(ctx, "identity:update_endpoint")?;
        let mut e = self.endpoint(id).await?;
        let mut f = Fields::member(body, "endpoint")?;
        f.forbid_id_change(id)?;
        if let Some(s) = f.string("service_id", 64)? {
            self.service(&s)
                .await
                .map_err(|_| Error::Validation(format!("Could not find service: {s}.")))?;
            e.service_id = s;
        }
        if let Some(i) = f.string("interface", 64)? {
            Self::check_interface(&i)?;
            e.interface = i;
        }
        if let Some(u) = f.string("url", 2048)? {
            Self::check_url(&u)?;
            e.url = u;
        }
        let legacy = f.nullable_string("region", 255)?;
        let region_id = f.nullable_string("region_id", 255)?;
        if let (None, Some(Some(name))) = (&region_id, &legacy) {
            self.ensure_legacy_region(name).await?;
        }
        if let Some(r) = region_id.or(legacy) {
            if let Some(rid) = &r {
                self.region(rid)
                    .await
                    .map_err(|_| Error::Validation(format!("Could not find region: {rid}.")))?;
            }
            e.region_id = r.clone();
            e.region = r;
        }
        if let Some(en) = f.bool("enabled")? {
            e.enabled = en;
        }
        merge_extra(&mut e.extra, f.into_extra());
        let mut tx = self.db.begin_write().await?;
        records::catalog::update_endpoint(&mut tx, &e).await?;
        self.commit(tx, vec![]).await?;
        Ok(e)
    }

    pub async fn delete_endpoint(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        policy::admin(ctx, "identity:delete_endpoint")?;
        self.endpoint(id).await?;
        let mut tx = self.db.begin_write().await?;
        records::catalog::delete_endpoint(&mut tx, id).await?;
        self.commit(tx, vec![]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_templates_are_filled_or_the_endpoint_dropped() {
        assert_eq!(
            fill_template("http://h/v1/$(project_id)s", Some("p")).as_deref(),
            Some("http://h/v1/p")
        );
        assert_eq!(
            fill_template("http://h/v1/%(tenant_id)s", Some("p")).as_deref(),
            Some("http://h/v1/p")
        );
        assert_eq!(fill_template("http://h/v1/$(project_id)s", None), None);
        assert_eq!(
            fill_template("http://h/v2.1", None).as_deref(),
            Some("http://h/v2.1")
        );
    }
}
