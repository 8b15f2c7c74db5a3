//! Who may do what, with Keystone's default rules (its `keystone/common/policies`),
//! evaluated in-process:
//!
//! - **admin**: the `admin` role on any scope (`rule:admin_required`) may do anything;
//! - **system reader**: `reader` (or a role implying it) on the system scope reads everything;
//! - **domain reader**: `reader` on a domain reads that domain's projects, users,
//!   groups and assignments;
//! - **owner**: a user reads itself, its projects, its own application and EC2
//!   credentials, and changes its own password;
//! - a project member reads its own project.
//!
//! Every check names the Keystone policy action, which is what a refused caller sees.

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};

fn deny(action: &str) -> Error {
    Error::Forbidden(action.to_string())
}

/// `rule:admin_required`.
pub fn admin(ctx: &RequestContext, action: &str) -> Result<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(deny(action))
    }
}

/// Admin, system reader, or a reader scoped to `domain_id`.
pub fn reader_of_domain(ctx: &RequestContext, action: &str, domain_id: Option<&str>) -> Result<()> {
    if ctx.is_admin() || ctx.is_system_reader() || is_domain_reader(ctx, domain_id) {
        Ok(())
    } else {
        Err(deny(action))
    }
}

/// Admin, system reader, domain reader, or the user itself.
pub fn reader_or_owner(
    ctx: &RequestContext,
    action: &str,
    domain_id: Option<&str>,
    owner_user_id: &str,
) -> Result<()> {
    if ctx.user_id == owner_user_id {
        return Ok(());
    }
    reader_of_domain(ctx, action, domain_id)
}

/// Admin or the user itself (creating own credentials).
pub fn admin_or_owner(ctx: &RequestContext, action: &str, owner_user_id: &str) -> Result<()> {
    if ctx.is_admin() || ctx.user_id == owner_user_id {
        Ok(())
    } else {
        Err(deny(action))
    }
}

/// Admin, system reader, or the owner (credentials: no domain readers).
pub fn system_reader_or_owner(
    ctx: &RequestContext,
    action: &str,
    owner_user_id: &str,
) -> Result<()> {
    if ctx.is_admin() || ctx.is_system_reader() || ctx.user_id == owner_user_id {
        Ok(())
    } else {
        Err(deny(action))
    }
}

/// Reading a project: readers of its domain, or anyone whose token is scoped to it.
pub fn project_reader(
    ctx: &RequestContext,
    action: &str,
    project_id: &str,
    domain_id: &str,
) -> Result<()> {
    if ctx.project_id() == Some(project_id) {
        return Ok(());
    }
    reader_of_domain(ctx, action, Some(domain_id))
}

/// Keystone builds the policy target from the stored object and leaves "not found" for
/// after enforcement. Who may read everything (admin, system reader) learns that an id
/// does not exist (404); everyone else could only pass by owning the target, so an unknown
/// id is refused like another project's (403) and ids cannot be probed.
pub fn hide_missing<T>(ctx: &RequestContext, action: &str, found: Result<T>) -> Result<T> {
    match found {
        Err(Error::NotFound { .. }) if !(ctx.is_admin() || ctx.is_system_reader()) => {
            Err(deny(action))
        }
        other => other,
    }
}

/// Any authenticated caller (catalog reads, region reads).
pub fn authenticated(_ctx: &RequestContext) -> Result<()> {
    Ok(())
}

fn is_domain_reader(ctx: &RequestContext, domain_id: Option<&str>) -> bool {
    match (ctx.domain_scope_id(), domain_id) {
        (Some(scoped), Some(target)) => scoped == target && ctx.has_role("reader"),
        _ => false,
    }
}

/// Domain-scoped readers list only their own domain: the domain a list must be
/// narrowed to, or `None` when the caller may see all.
pub fn list_domain_restriction(ctx: &RequestContext, action: &str) -> Result<Option<String>> {
    if ctx.is_admin() || ctx.is_system_reader() {
        return Ok(None);
    }
    match ctx.domain_scope_id() {
        Some(d) if ctx.has_role("reader") => Ok(Some(d.to_string())),
        _ => Err(deny(action)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_core::context::Scope;

    fn ctx(roles: &[&str], scope: Scope) -> RequestContext {
        RequestContext {
            user_id: "u".into(),
            user_name: "u".into(),
            user_domain_id: "default".into(),
            user_domain_name: "Default".into(),
            scope,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            application_credential_id: None,
            unrestricted: false,
            audit_id: "a".into(),
        }
    }

    fn project(id: &str) -> Scope {
        Scope::Project {
            id: id.into(),
            name: id.into(),
            domain_id: "default".into(),
            domain_name: "Default".into(),
        }
    }

    #[test]
    fn admin_on_a_project_may_administer() {
        assert!(
            admin(
                &ctx(&["admin", "member", "reader"], project("p")),
                "identity:create_user"
            )
            .is_ok()
        );
    }

    #[test]
    fn member_may_not_list_users_but_may_read_itself_and_its_project() {
        let c = ctx(&["member", "reader"], project("p"));
        let e = reader_of_domain(&c, "identity:list_users", Some("default")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "You are not authorized to perform the requested action: identity:list_users."
        );
        assert!(reader_or_owner(&c, "identity:get_user", Some("default"), "u").is_ok());
        assert!(reader_or_owner(&c, "identity:get_user", Some("default"), "other").is_err());
        assert!(project_reader(&c, "identity:get_project", "p", "default").is_ok());
        assert!(project_reader(&c, "identity:get_project", "q", "default").is_err());
    }

    #[test]
    fn system_reader_reads_but_does_not_write() {
        let c = ctx(&["reader"], Scope::System);
        assert!(reader_of_domain(&c, "identity:list_users", None).is_ok());
        assert!(admin(&c, "identity:create_user").is_err());
    }

    #[test]
    fn domain_reader_is_limited_to_its_domain() {
        let c = ctx(
            &["reader"],
            Scope::Domain {
                id: "d1".into(),
                name: "d1".into(),
            },
        );
        assert!(reader_of_domain(&c, "identity:list_users", Some("d1")).is_ok());
        assert!(reader_of_domain(&c, "identity:list_users", Some("d2")).is_err());
        assert_eq!(
            list_domain_restriction(&c, "identity:list_users")
                .unwrap()
                .as_deref(),
            Some("d1")
        );
    }

    #[test]
    fn unknown_ids_are_missing_only_to_those_who_may_read_everything() {
        let missing = || -> Result<()> {
            Err(Error::NotFound {
                kind: "project",
                id: "nope".into(),
            })
        };
        let member = ctx(&["member", "reader"], project("p"));
        assert!(matches!(
            hide_missing(&member, "identity:get_project", missing()),
            Err(Error::Forbidden(_))
        ));
        let admin = ctx(&["admin", "member", "reader"], project("p"));
        assert!(matches!(
            hide_missing(&admin, "identity:get_project", missing()),
            Err(Error::NotFound { .. })
        ));
        let system_reader = ctx(&["reader"], Scope::System);
        assert!(matches!(
            hide_missing(&system_reader, "identity:get_project", missing()),
            Err(Error::NotFound { .. })
        ));
        assert!(hide_missing(&member, "identity:get_project", Ok(())).is_ok());
    }
}
