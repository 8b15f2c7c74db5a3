//! The identity entities as Keystone shows them. `Serialize` produces Keystone's JSON
//! for each entity (without the `links`, which depend on the URL the client used and
//! are added by the HTTP layer).

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::db::get_bool;

use crate::fields::Extra;

/// The id of the domain every bootstrap creates.
pub const DEFAULT_DOMAIN_ID: &str = "default";

fn parse_json_map(s: &str) -> Extra {
    serde_json::from_str(s).unwrap_or_default()
}

fn parse_json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

#[derive(Debug, Clone, Serialize)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Domain {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Domain {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            enabled: get_bool(r, "enabled")?,
            tags: parse_json_list(&r.try_get::<String, _>("tags")?),
            options: Map::new(),
            extra: parse_json_map(&r.try_get::<String, _>("extra")?),
        })
    }
}

/// `null` for an empty string: a project acting as a domain has no domain and no parent.
fn null_if_empty<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.serialize_str(v)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// Empty (shown as `null`) for a project acting as a domain.
    #[serde(serialize_with = "null_if_empty")]
    pub domain_id: String,
    pub description: String,
    pub enabled: bool,
    /// The parent project, or the domain for a top-level project (as Keystone shows it);
    /// empty (shown as `null`) for a project acting as a domain.
    #[serde(serialize_with = "null_if_empty")]
    pub parent_id: String,
    pub is_domain: bool,
    pub tags: Vec<String>,
    pub options: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Extra,
    /// The parent project id when the project is not top-level.
    #[serde(skip)]
    pub parent_project_id: Option<String>,
}

impl Project {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        let domain_id: String = r.try_get("domain_id")?;
        let parent: Option<String> = r.try_get("parent_id")?;
        Ok(Project {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            parent_id: parent.clone().unwrap_or_else(|| domain_id.clone()),
            domain_id,
            description: r.try_get("description")?,
            enabled: get_bool(r, "enabled")?,
            is_domain: false,
            tags: parse_json_list(&r.try_get::<String, _>("tags")?),
            options: Map::new(),
            extra: parse_json_map(&r.try_get::<String, _>("extra")?),
            parent_project_id: parent,
        })
    }

    /// A domain as Keystone shows it through `/v3/projects`: Keystone stores every
    /// domain as a project with `is_domain` true, no domain and no parent.
    pub fn acting_as_domain(d: Domain) -> Project {
        Project {
            id: d.id,
            name: d.name,
            domain_id: String::new(),
            description: d.description,
            enabled: d.enabled,
            parent_id: String::new(),
            is_domain: true,
            tags: d.tags,
            options: d.options,
            extra: d.extra,
            parent_project_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_project_id: Option<String>,
    pub password_expires_at: Option<String>,
    pub options: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Extra,
    #[serde(skip)]
    pub(crate) password_hash: Option<String>,
    #[serde(skip)]
    pub(crate) failed_auth_count: i64,
    #[serde(skip)]
    pub(crate) failed_auth_at: Option<i64>,
}

impl User {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(User {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            domain_id: r.try_get("domain_id")?,
            enabled: get_bool(r, "enabled")?,
            default_project_id: r.try_get("default_project_id")?,
            password_expires_at: None,
            options: Map::new(),
            extra: parse_json_map(&r.try_get::<String, _>("extra")?),
            password_hash: r.try_get("password_hash")?,
            failed_auth_count: r.try_get("failed_auth_count")?,
            failed_auth_at: r.try_get("failed_auth_at")?,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Group {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Group {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            domain_id: r.try_get("domain_id")?,
            description: r.try_get("description")?,
            extra: parse_json_map(&r.try_get::<String, _>("extra")?),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub domain_id: Option<String>,
    pub description: Option<String>,
    pub options: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Role {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        let domain_id: String = r.try_get("domain_id")?;
        let description: String = r.try_get("description")?;
        let mut options = Map::new();
        if get_bool(r, "immutable")? {
            options.insert("immutable".into(), Value::Bool(true));
        }
        Ok(Role {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            domain_id: (!domain_id.is_empty()).then_some(domain_id),
            description: (!description.is_empty()).then_some(description),
            options,
            extra: parse_json_map(&r.try_get::<String, _>("extra")?),
        })
    }

    pub fn immutable(&self) -> bool {
        self.options.get("immutable") == Some(&Value::Bool(true))
    }
}

/// Who holds a role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    User(String),
    Group(String),
}

impl Actor {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::Group(_) => "group",
        }
    }
    pub(crate) fn id(&self) -> &str {
        match self {
            Actor::User(id) | Actor::Group(id) => id,
        }
    }
}

/// On what a role is assigned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Project(String),
    Domain(String),
    System,
}

impl Target {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Target::Project(_) => "project",
            Target::Domain(_) => "domain",
            Target::System => "system",
        }
    }
    pub(crate) fn id(&self) -> &str {
        match self {
            Target::Project(id) | Target::Domain(id) => id,
            Target::System => "all",
        }
    }
    pub(crate) fn from_parts(kind: &str, id: String) -> Option<Target> {
        match kind {
            "project" => Some(Target::Project(id)),
            "domain" => Some(Target::Domain(id)),
            "system" => Some(Target::System),
            _ => None,
        }
    }
}

/// One role assignment, direct or (in effective listings) derived.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Assignment {
    pub actor: Actor,
    pub target: Target,
    pub role_id: String,
    /// For effective listings: the group membership or prior role it came from.
    pub via_group: Option<String>,
    pub prior_role: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplicationCredential {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub user_id: String,
    pub project_id: String,
    pub expires_at: Option<String>,
    pub unrestricted: bool,
    pub roles: Vec<RoleRef>,
    pub access_rules: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip)]
    pub(crate) expires_at_unix: Option<i64>,
    #[serde(skip)]
    pub(crate) secret_hash: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoleRef {
    pub id: String,
    pub name: String,
    pub domain_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub blob: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Region {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Region {
            id: r.try_get("id")?,
            description: r.try_get("description")?,
            parent_region_id: r.try_get("parent_region_id")?,
            extra: parse_json_map(&r.try_get::<String, _>("extra")?),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Service {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Service {
            id: r.try_get("id")?,
            kind: r.try_get("type")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            enabled: get_bool(r, "enabled")?,
            extra: parse_json_map(&r.try_get::<String, _>("extra")?),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    /// Keystone shows the region id twice: `region` (legacy) and `region_id`.
    pub region: Option<String>,
    pub region_id: Option<String>,
    pub url: String,
    pub enabled: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Endpoint {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        let region_id: Option<String> = r.try_get("region_id")?;
        Ok(Endpoint {
            id: r.try_get("id")?,
            service_id: r.try_get("service_id")?,
            interface: r.try_get("interface")?,
            region: region_id.clone(),
            region_id,
            url: r.try_get("url")?,
            enabled: get_bool(r, "enabled")?,
            extra: parse_json_map(&r.try_get::<String, _>("extra")?),
        })
    }
}
