//! The authenticated caller of a request, as every service sees it once the token
//! has been validated: who (user), on what (scope), with which effective roles.
//! Policy decisions in the domain crates take a `&RequestContext`.

use serde::Serialize;

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Unscoped,
    Project {
        id: String,
        name: String,
        domain_id: String,
        domain_name: String,
    },
    Domain {
        id: String,
        name: String,
    },
    System,
}

/// The validated caller.
#[derive(Debug, Clone, Serialize)]
pub struct RequestContext {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub scope: Scope,
    /// Effective role names (implied roles expanded), lowercase as stored.
    pub roles: Vec<String>,
    /// The application credential the token came from, if any.
    pub application_credential_id: Option<String>,
    /// Whether that application credential may create other credentials.
    pub unrestricted: bool,
    /// The token's own audit id (the first of its audit_ids).
    pub audit_id: String,
}

impl RequestContext {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Upstream's `rule:admin_required`: the admin role on any scope.
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }

    /// A reader (or better) on the system scope can read everything.
    pub fn is_system_reader(&self) -> bool {
        matches!(self.scope, Scope::System) && self.has_role("reader")
    }

    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Project { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn domain_scope_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Domain { id, .. } => Some(id),
            _ => None,
        }
    }
}
