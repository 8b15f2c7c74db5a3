//! Who may do what to images, with Glance's default (secure RBAC) rules:
//! readers of a project read, members of a project write their project's images,
//! admins do anything; publicizing needs admin; (de)activating is the owner's or admin's.

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::model::{Image, Visibility};

/// The project the caller acts for, or 403 (Glance needs project-scoped tokens,
/// admins excepted).
pub fn project(ctx: &RequestContext) -> Option<&str> {
    ctx.project_id()
}

pub fn reader(ctx: &RequestContext, action: &str) -> Result<()> {
    if ctx.is_admin() || (ctx.project_id().is_some() && ctx.has_role("reader")) {
        Ok(())
    } else {
        Err(Error::forbidden(action))
    }
}

pub fn member(ctx: &RequestContext, action: &str) -> Result<()> {
    if ctx.is_admin() || (ctx.project_id().is_some() && ctx.has_role("member")) {
        Ok(())
    } else {
        Err(Error::forbidden(action))
    }
}

pub fn admin(ctx: &RequestContext, action: &str) -> Result<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(action))
    }
}

/// Whether the caller sees this image at all (otherwise it is "not found").
pub fn can_see(ctx: &RequestContext, im: &Image, is_member: bool) -> bool {
    ctx.is_admin()
        || owns(ctx, im)
        || matches!(im.visibility, Visibility::Public | Visibility::Community)
        || (im.visibility == Visibility::Shared && is_member)
}

pub fn owns(ctx: &RequestContext, im: &Image) -> bool {
    ctx.project_id().is_some() && im.owner.as_deref() == ctx.project_id()
}

/// Changing an image: its owner (a member of the owning project) or admin.
pub fn modify(ctx: &RequestContext, im: &Image, action: &str) -> Result<()> {
    member(ctx, action)?;
    if ctx.is_admin() || owns(ctx, im) {
        Ok(())
    } else {
        Err(Error::forbidden(action))
    }
}

/// Glance's `publicize_image`: only admins make images public.
pub fn visibility(ctx: &RequestContext, v: Visibility) -> Result<()> {
    if v == Visibility::Public && !ctx.is_admin() {
        return Err(Error::Forbidden(
            "You are not authorized to complete publicize_image action.".into(),
        ));
    }
    Ok(())
}
