//! What a token's expansion reads on a cache miss (`auth.rs` `expand`), in one
//! SQL text and one round trip through `Db::fold`: the user with its domain, the
//! scope (project with its domain, or domain), the application credential, and the
//! role ids the user holds on the scope directly or through a group. Only the
//! columns the token needs, read by position.
//!
//! The user row is joined (LEFT JOIN) with everything else, so a missing scope or
//! credential reads as NULL columns, and each role id adds a row that repeats the
//! others (a user holds a handful of roles on a target).

use std::ops::ControlFlow;

use ferrostack_core::Db;
use ferrostack_core::db::{Cols, Param};

use crate::error::Result;
use crate::model::Target;

/// What the token is scoped to, as the payload names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScopeKey<'a> {
    Unscoped,
    Project(&'a str),
    Domain(&'a str),
    System,
}

/// A domain's name and whether it is enabled.
#[derive(Debug, Clone)]
pub(crate) struct DomainState {
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug)]
pub(crate) struct TokenUser {
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    /// `None` when the user's domain row is missing.
    pub domain: Option<DomainState>,
}

#[derive(Debug)]
pub(crate) struct TokenProject {
    pub name: String,
    pub enabled: bool,
    pub domain_id: String,
    /// `None` when the project's domain row is missing.
    pub domain: Option<DomainState>,
}

/// The scope row; `None` inside when the project or domain does not exist.
#[derive(Debug)]
pub(crate) enum TokenScope {
    None,
    Project(Option<TokenProject>),
    Domain(Option<DomainState>),
}

#[derive(Debug)]
pub(crate) struct TokenAppCred {
    pub name: String,
    /// `None` when the stored list is not readable JSON.
    pub role_ids: Option<Vec<String>>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
}

/// Everything [`read`] found for a user that exists.
#[derive(Debug)]
pub(crate) struct TokenRows {
    pub user: TokenUser,
    pub scope: TokenScope,
    /// `None` when no credential was asked for; `Some(None)` when it is gone.
    pub app_cred: Option<Option<TokenAppCred>>,
    /// Distinct role ids assigned on the scope's target (none for unscoped).
    pub role_ids: Vec<String>,
}

/// The SQL text for one shape of token, and its binds.
fn query(user_id: &str, scope: ScopeKey<'_>, app_cred: Option<&str>) -> (String, Vec<Param>) {
    let mut cols = String::from("u.name, u.domain_id, u.enabled, ud.name, ud.enabled");
    let mut from = String::from("users u LEFT JOIN domains ud ON ud.id = u.domain_id");
    let mut params = vec![Param::Text(user_id.to_owned())];
    let next = |v: &str, params: &mut Vec<Param>| {
        params.push(Param::Text(v.to_owned()));
        format!("${}", params.len())
    };
    let target = match scope {
        ScopeKey::Unscoped => None,
        ScopeKey::Project(id) => {
            let p = next(id, &mut params);
            cols.push_str(", s.name, s.enabled, s.domain_id, sd.name, sd.enabled");
            from.push_str(&format!(
                " LEFT JOIN projects s ON s.id = {p} LEFT JOIN domains sd ON sd.id = s.domain_id"
            ));
            Some(Target::Project(id.to_owned()))
        }
        ScopeKey::Domain(id) => {
            let p = next(id, &mut params);
            cols.push_str(", s.name, s.enabled");
            from.push_str(&format!(" LEFT JOIN domains s ON s.id = {p}"));
            Some(Target::Domain(id.to_owned()))
        }
        ScopeKey::System => Some(Target::System),
    };
    if let Some(id) = app_cred {
        let p = next(id, &mut params);
        cols.push_str(", ac.name, ac.role_ids, ac.expires_at, ac.unrestricted");
        from.push_str(&format!(
            " LEFT JOIN application_credentials ac ON ac.id = {p}"
        ));
    }
    if let Some(t) = target {
        let kind = next(t.kind(), &mut params);
        let id = next(t.id(), &mut params);
        cols.push_str(", ra.role_id");
        from.push_str(&format!(
            " LEFT JOIN ({}) ra ON 1 = 1",
            super::assignments::role_ids_sql(&kind, &id, "$1")
        ));
    }
    (format!("SELECT {cols} FROM {from} WHERE u.id = $1"), params)
}

fn domain_state(r: &dyn Cols, at: usize) -> Result<Option<DomainState>> {
    Ok(match r.opt_text(at)? {
        Some(name) => Some(DomainState {
            name: name.to_owned(),
            enabled: r.flag(at + 1)?,
        }),
        None => None,
    })
}

/// The columns a query of one shape returns, by position.
#[derive(Debug, Clone, Copy)]
struct Shape {
    scope: ScopeShape,
    app_cred: bool,
}

/// Which scope columns follow the user's.
#[derive(Debug, Clone, Copy)]
enum ScopeShape {
    /// None (unscoped, system).
    None,
    /// The project's name, enabled, domain id, and its domain's name, enabled.
    Project,
    /// The domain's name, enabled.
    Domain,
}

impl Shape {
    fn of(scope: ScopeKey<'_>, app_cred: bool) -> Shape {
        let scope = match scope {
            ScopeKey::Project(_) => ScopeShape::Project,
            ScopeKey::Domain(_) => ScopeShape::Domain,
            ScopeKey::Unscoped | ScopeKey::System => ScopeShape::None,
        };
        Shape { scope, app_cred }
    }

    fn app_cred_at(self) -> usize {
        5 + match self.scope {
            ScopeShape::None => 0,
            ScopeShape::Project => 5,
            ScopeShape::Domain => 2,
        }
    }

    fn role_at(self) -> usize {
        self.app_cred_at() + if self.app_cred { 4 } else { 0 }
    }
}

/// The first row's columns other than the role id.
fn decode(r: &dyn Cols, shape: Shape) -> Result<TokenRows> {
    let user = TokenUser {
        name: r.text(0)?.to_owned(),
        domain_id: r.text(1)?.to_owned(),
        enabled: r.flag(2)?,
        domain: domain_state(r, 3)?,
    };
    let scope = match shape.scope {
        ScopeShape::Project => TokenScope::Project(match r.opt_text(5)? {
            Some(name) => Some(TokenProject {
                name: name.to_owned(),
                enabled: r.flag(6)?,
                domain_id: r.text(7)?.to_owned(),
                domain: domain_state(r, 8)?,
            }),
            None => None,
        }),
        ScopeShape::Domain => TokenScope::Domain(domain_state(r, 5)?),
        ScopeShape::None => TokenScope::None,
    };
    let at = shape.app_cred_at();
    let app_cred = if shape.app_cred {
        let found = match r.opt_text(at)? {
            Some(name) => Some(TokenAppCred {
                name: name.to_owned(),
                role_ids: serde_json::from_str(r.text(at + 1)?).ok(),
                expires_at: r.opt_int(at + 2)?,
                unrestricted: r.flag(at + 3)?,
            }),
            None => None,
        };
        Some(found)
    } else {
        None
    };
    Ok(TokenRows {
        user,
        scope,
        app_cred,
        role_ids: Vec::new(),
    })
}

/// Reads what expanding a token for `user_id` on `scope` (with the application
/// credential `app_cred`) needs; `None` when the user does not exist.
pub(crate) async fn read(
    db: &Db,
    user_id: &str,
    scope: ScopeKey<'_>,
    app_cred: Option<&str>,
) -> Result<Option<TokenRows>> {
    let (sql, params) = query(user_id, scope, app_cred);
    let shape = Shape::of(scope, app_cred.is_some());
    let has_roles = !matches!(scope, ScopeKey::Unscoped);
    db.fold(
        sql,
        params,
        None,
        move |acc: &mut Option<TokenRows>, r: &dyn Cols| {
            let rows = match acc {
                Some(rows) => rows,
                None => acc.insert(decode(r, shape)?),
            };
            if has_roles && let Some(role) = r.opt_text(shape.role_at())? {
                rows.role_ids.push(role.to_owned());
            }
            Ok(ControlFlow::Continue(()))
        },
    )
    .await
}
