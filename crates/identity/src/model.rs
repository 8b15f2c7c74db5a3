//! The identity entities as Keystone shows them. `Serialize` produces Keystone's JSON
//! for each entity (without the `links`, which depend on the URL the client used and
//! are added by the HTTP layer).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::fields::Extra;

/// The id of the domain every bootstrap creates.
pub const DEFAULT_DOMAIN_ID: &str = "default";

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

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    #[serde(flatten)]
    pub extra: Extra,
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
