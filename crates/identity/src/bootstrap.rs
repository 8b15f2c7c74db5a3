//! First-start bootstrap, idempotent like `keystone-manage bootstrap`: the `Default`
//! domain, the `admin` and `service` projects, the immutable roles `admin` ⊃ `member`
//! ⊃ `reader` (plus `service`), the `admin` user with admin on its project and on the
//! system, the region, the catalog (created, or URLs updated when they moved), and
//! an EC2 credential for the admin.

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::Map;

use ferrostack_core::ids::new_hex_id;

use crate::credential::Ec2Credential;
use crate::error::Result;
use crate::model::{Actor, DEFAULT_DOMAIN_ID, Domain, Target};
use crate::password;
use crate::records;
use crate::service::Identity;

/// A service to advertise in the catalog.
#[derive(Debug, Clone)]
pub struct CatalogService {
    pub kind: String,
    pub name: String,
    pub description: String,
    /// The same URL serves the public, internal and admin interfaces.
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct BootstrapSpec {
    /// Set (or reset) the admin password to this; `None` = random at first start.
    pub admin_password: Option<String>,
    pub region: String,
    pub services: Vec<CatalogService>,
}

#[derive(Debug, Clone)]
pub struct BootstrapOutcome {
    pub admin_user_id: String,
    pub admin_project_id: String,
    /// The password, when this run chose or set it (first start, or configured).
    pub admin_password: Option<String>,
    pub ec2: Ec2Credential,
}

fn random_password() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

impl Identity {
    pub async fn bootstrap(&self, spec: &BootstrapSpec) -> Result<BootstrapOutcome> {
        let none = Map::new();
        if self.find_domain(DEFAULT_DOMAIN_ID).await?.is_none() {
            self.insert_domain(&Domain {
                id: DEFAULT_DOMAIN_ID.into(),
                name: "Default".into(),
                description: "The default domain".into(),
                enabled: true,
                tags: vec![],
                options: Map::new(),
                extra: Map::new(),
            })
            .await?;
        }
        let admin_project = self
            .ensure_project("admin", "Bootstrap project for initializing the cloud.")
            .await?;
        self.ensure_project("service", "Project for the services' own users.")
            .await?;

        let mut role_ids = std::collections::HashMap::new();
        for name in ["admin", "member", "reader", "service"] {
            let id = match self.role_by_name(name).await? {
                Some(r) => r.id,
                None => {
                    let id = new_hex_id();
                    self.insert_role(&id, name, "", "", true, &none).await?;
                    id
                }
            };
            role_ids.insert(name, id);
        }
        for (prior, implied) in [("admin", "member"), ("member", "reader")] {
            let mut tx = self.db.begin_write().await?;
            records::roles::insert_implication(&mut tx, &role_ids[prior], &role_ids[implied])
                .await?;
            self.commit(tx, vec![]).await?;
        }

        let cost = self.settings.hash_cost();
        let (admin, admin_password) =
            match self.find_user_by_name("admin", DEFAULT_DOMAIN_ID).await? {
                Some(u) => {
                    let mut set = None;
                    if let Some(pw) = &spec.admin_password {
                        let stored = u.password_hash.clone().unwrap_or_default();
                        let check = pw.clone();
                        let same =
                            tokio::task::spawn_blocking(move || password::verify(&check, &stored))
                                .await
                                .map_err(crate::error::Error::internal)?;
                        if !same {
                            let hash = self.hash_password(Some(pw.clone())).await?;
                            let mut tx = self.db.begin_write().await?;
                            records::users::set_password_and_enable(&mut tx, &u.id, hash).await?;
                            self.commit(tx, vec![]).await?;
                        }
                        set = Some(pw.clone());
                    }
                    (u, set)
                }
                None => {
                    let pw = spec.admin_password.clone().unwrap_or_else(random_password);
                    let check = pw.clone();
                    let hash = tokio::task::spawn_blocking(move || password::hash(&check, cost))
                        .await
                        .map_err(crate::error::Error::internal)??;
                    let id = new_hex_id();
                    let row = records::users::NewUser {
                        id: &id,
                        name: "admin",
                        domain_id: DEFAULT_DOMAIN_ID,
                        enabled: true,
                        password_hash: Some(hash),
                        default_project_id: None,
                        extra: &none,
                    };
                    let mut tx = self.db.begin_write().await?;
                    records::users::insert(&mut tx, row).await?;
                    self.commit(tx, vec![]).await?;
                    (self.user(&id).await?, Some(pw))
                }
            };
        let admin_actor = Actor::User(admin.id.clone());
        self.insert_assignment(
            &admin_actor,
            &Target::Project(admin_project.clone()),
            &role_ids["admin"],
        )
        .await?;
        self.insert_assignment(&admin_actor, &Target::System, &role_ids["admin"])
            .await?;

        if self.region(&spec.region).await.is_err() {
            let mut tx = self.db.begin_write().await?;
            records::catalog::insert_region_if_missing(&mut tx, &spec.region).await?;
            self.commit(tx, vec![]).await?;
        }
        for s in &spec.services {
            self.ensure_catalog_entry(s, &spec.region).await?;
        }

        let existing = self
            .list_ec2_credentials_unchecked(&admin.id)
            .await?
            .into_iter()
            .find(|c| c.tenant_id.as_deref() == Some(admin_project.as_str()));
        let ec2 = match existing {
            Some(c) => c,
            None => {
                self.create_ec2_credential_unchecked(&admin.id, &admin_project)
                    .await?
            }
        };
        Ok(BootstrapOutcome {
            admin_user_id: admin.id,
            admin_project_id: admin_project,
            admin_password,
            ec2,
        })
    }

    async fn ensure_project(&self, name: &str, description: &str) -> Result<String> {
        if let Ok(p) = self.project_by_name(name, DEFAULT_DOMAIN_ID).await {
            return Ok(p.id);
        }
        let id = new_hex_id();
        let row = records::projects::NewProject {
            id: &id,
            name,
            domain_id: DEFAULT_DOMAIN_ID,
            parent_id: None,
            description,
            enabled: true,
            tags: &[],
            extra: &Map::new(),
        };
        let mut tx = self.db.begin_write().await?;
        records::projects::insert(&mut tx, &row).await?;
        self.commit(tx, vec![]).await?;
        Ok(id)
    }

    async fn ensure_catalog_entry(&self, s: &CatalogService, region: &str) -> Result<()> {
        let snap = self.snapshot().await?;
        let service_id = match snap.services.iter().find(|x| x.kind == s.kind) {
            Some(x) => x.id.clone(),
            None => {
                let id = new_hex_id();
                self.insert_service(&id, &s.kind, &s.name, &s.description, true, &Map::new())
                    .await?;
                id
            }
        };
        for interface in ["public", "internal", "admin"] {
            let existing = snap.endpoints.iter().find(|e| {
                e.service_id == service_id
                    && e.interface == interface
                    && e.region_id.as_deref() == Some(region)
            });
            match existing {
                Some(e) if e.url == s.url => {}
                Some(e) => {
                    let mut tx = self.db.begin_write().await?;
                    records::catalog::set_endpoint_url(&mut tx, &e.id, &s.url).await?;
                    self.commit(tx, vec![]).await?;
                }
                None => {
                    self.insert_endpoint(
                        &new_hex_id(),
                        &service_id,
                        interface,
                        Some(region),
                        &s.url,
                        true,
                        &Map::new(),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn list_ec2_credentials_unchecked(&self, user_id: &str) -> Result<Vec<Ec2Credential>> {
        let ctx = ferrostack_core::RequestContext {
            user_id: user_id.to_string(),
            user_name: String::new(),
            user_domain_id: String::new(),
            user_domain_name: String::new(),
            scope: ferrostack_core::context::Scope::Unscoped,
            roles: vec![],
            application_credential_id: None,
            unrestricted: true,
            audit_id: String::new(),
        };
        self.list_ec2_credentials(&ctx, user_id).await
    }
}
