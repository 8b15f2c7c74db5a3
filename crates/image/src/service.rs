//! The `Images` service object: image records, tags, members, deactivation —
//! everything but the bytes' journey (that is `data.rs`). Policy first, then one
//! transaction per change.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use serde_json::Value;

use ferrostack_core::{Db, RequestContext};

use crate::attrs::{self, PatchOp};
use crate::error::{Error, Result};
use crate::model::{Image, Member, MemberStatus, Visibility};
use crate::policy;
use crate::query::{self, Filter, ListQuery, Page};
use crate::records::{self, Scope, Visible};
use crate::status::Status;
use crate::store::{FilesystemStore, ImageStore};

/// The image migrations, numbered in image's range (2_000_000+).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        2_000_001,
        "image",
        include_str!("../migrations/2000001_image.sql"),
    ),
    (
        2_000_002,
        "image tasks",
        include_str!("../migrations/2000002_image_tasks.sql"),
    ),
];

/// Limits, with Glance's names and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `image_size_cap`: the largest image accepted, in bytes (1 TiB).
    pub image_size_cap: u64,
    /// `user_storage_quota`: bytes of image data per project; 0 = unlimited.
    pub user_storage_quota: u64,
    /// Images per project; 0 = unlimited.
    pub image_count_quota: u64,
    /// Glance's `image_member_quota`.
    pub image_member_quota: usize,
    /// `[image_format] require_image_format_match`.
    pub require_format_match: bool,
}

impl Settings {
    pub fn from_config(c: &ferrostack_core::config::ImageConfig) -> Self {
        Settings {
            image_size_cap: c.image_size_cap,
            user_storage_quota: c.user_storage_quota,
            image_count_quota: c.image_count_quota,
            image_member_quota: c.image_member_quota,
            require_format_match: c.require_format_match,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Default::default())
    }
}

pub struct Images {
    pub(crate) db: Db,
    pub(crate) store: Arc<dyn ImageStore>,
    /// Where `PUT /stage` puts bytes until `POST /import` (Glance's staging store).
    pub(crate) staging: FilesystemStore,
    pub(crate) settings: Settings,
}

pub(crate) use ferrostack_core::time::now_us;

impl Images {
    pub async fn open(
        db: Db,
        store: Arc<dyn ImageStore>,
        staging: FilesystemStore,
        settings: Settings,
    ) -> Result<Images> {
        db.migrate(MIGRATIONS).await.map_err(Error::internal)?;
        let images = Images {
            db,
            store,
            staging,
            settings,
        };
        images.recover().await?;
        Ok(images)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Loads an image the caller may see, or 404.
    pub(crate) async fn visible(&self, ctx: &RequestContext, id: &str) -> Result<Image> {
        let im = records::get(&self.db, id)
            .await?
            .ok_or_else(|| Error::no_image(id))?;
        let is_member = match ctx.project_id() {
            Some(p) if im.visibility == Visibility::Shared => {
                records::is_member(&self.db, id, p).await?
            }
            _ => false,
        };
        if policy::can_see(ctx, &im, is_member) {
            Ok(im)
        } else {
            Err(Error::no_image(id))
        }
    }

    pub async fn create(&self, ctx: &RequestContext, body: Value) -> Result<Image> {
        policy::member(ctx, "add_image")?;
        let Value::Object(fields) = body else {
            return Err(Error::Invalid("Body expected in request.".into()));
        };
        let now = now_us();
        let id = match fields.get("id") {
            None | Some(Value::Null) => ferrostack_core::ids::new_uuid(),
            Some(Value::String(s)) => {
                let u = uuid::Uuid::parse_str(s).map_err(|_| {
                    Error::Invalid(format!(
                        "Provided object does not match schema 'image': '{s}' is not a 'uuid' (id)"
                    ))
                })?;
                u.hyphenated().to_string()
            }
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "Provided object does not match schema 'image': {other} is not of type 'string' (id)"
                )));
            }
        };
        let mut im = Image::new_queued(id, ctx.project_id().map(str::to_string), now);
        for (k, v) in &fields {
            if k == "id" {
                continue;
            }
            attrs::set(&mut im, k, v, true)?;
        }
        policy::visibility(ctx, im.visibility)?;
        if !ctx.is_admin() && im.owner.as_deref() != ctx.project_id() {
            return Err(Error::Forbidden(format!(
                "You are not permitted to create images owned by '{}'.",
                im.owner.as_deref().unwrap_or("")
            )));
        }
        let mut tx = self.db.begin_write().await?;
        if records::load(&mut tx, &im.id).await?.is_some() {
            return Err(Error::Conflict(format!(
                "Image with identifier {} already exists!",
                im.id
            )));
        }
        if let (Some(owner), limit @ 1..) = (&im.owner, self.settings.image_count_quota) {
            let (count, _) = records::usage(&mut tx, owner).await?;
            if u64::try_from(count).unwrap_or(0) >= limit {
                return Err(Error::TooLarge(format!(
                    "Maximum number of images exceeded ({limit})"
                )));
            }
        }
        records::insert(&mut tx, &im).await?;
        tx.commit().await?;
        Ok(im)
    }

    pub async fn get(&self, ctx: &RequestContext, id: &str) -> Result<Image> {
        policy::reader(ctx, "get_image")?;
        self.visible(ctx, id).await
    }

    /// One page of images and whether more follow. With the default order and no
    /// filter on tags or properties, the read stops as soon as the page is full and
    /// only the page's images get their tags and properties.
    pub async fn list(&self, ctx: &RequestContext, q: &ListQuery) -> Result<(Vec<Image>, bool)> {
        policy::reader(ctx, "get_images")?;
        let project = ctx.project_id();
        let memberships = match project {
            Some(p) => records::memberships(&self.db, p).await?,
            None => HashMap::new(),
        };
        let filter = Filter::new(q, ctx.is_admin(), project, memberships)?;
        let scope = Scope {
            who: match (ctx.is_admin(), project) {
                (false, Some(p)) => Visible::Project(p),
                _ => Visible::All,
            },
            hidden: filter.hidden(),
        };
        if query::newest_first(q) && !filter.needs_children() {
            let (mut page, _) = records::fold_images(
                &self.db,
                &scope,
                true,
                (Page::new(q), filter),
                |(page, filter), im| {
                    if filter.shows_core(&im) {
                        page.push(im)
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
            .await?;
            let items = std::mem::take(page.items_mut());
            *page.items_mut() = records::fill_children(&self.db, &scope, items).await?;
            return page.finish();
        }
        let rows = records::fold_images(&self.db, &scope, false, Vec::new(), |rows, im| {
            rows.push(im);
            ControlFlow::Continue(())
        })
        .await?;
        let rows = records::fill_children(&self.db, &scope, rows).await?;
        query::apply(rows, q, &filter)
    }

    pub async fn update(
        &self,
        ctx: &RequestContext,
        id: &str,
        patch: &Value,
        format: attrs::PatchFormat,
    ) -> Result<Image> {
        let ops = attrs::parse_patch_as(patch, format)?;
        let seen = self.visible(ctx, id).await?;
        policy::modify(ctx, &seen, "modify_image")?;
        let mut tx = self.db.begin_write().await?;
        let mut im = records::load(&mut tx, id)
            .await?
            .ok_or_else(|| Error::no_image(id))?;
        let before = im.visibility;
        attrs::apply_patch(&mut im, &ops)?;
        if ops
            .iter()
            .any(|o| matches!(o, PatchOp::Add(k, _) | PatchOp::Replace(k, _) if k == "owner"))
            && !ctx.is_admin()
            && im.owner.as_deref() != ctx.project_id()
        {
            return Err(Error::Forbidden(
                "You are not permitted to modify 'owner' on this image.".into(),
            ));
        }
        if im.visibility != before {
            policy::visibility(ctx, im.visibility)?;
        }
        im.updated_at_us = now_us();
        records::save(&mut tx, &im).await?;
        tx.commit().await?;
        Ok(im)
    }

    pub async fn delete(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        let im = self.visible(ctx, id).await?;
        policy::modify(ctx, &im, "delete_image")?;
        if im.protected {
            return Err(Error::Forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            )));
        }
        let mut tx = self.db.begin_write().await?;
        // re-read inside the write lock: a concurrent update may have protected it
        let Some(current) = records::load(&mut tx, id).await? else {
            return Err(Error::no_image(id));
        };
        if current.protected {
            return Err(Error::Forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            )));
        }
        records::delete(&mut tx, id).await?;
        tx.commit().await?;
        // the record is gone first: a crash here leaves unreferenced bytes, which
        // start-up recovery removes
        if let Some(loc) = &current.location
            && let Err(e) = self.store.delete(loc).await
        {
            tracing::warn!(image_id = %id, error = %e, "image bytes not removed; recovery will retry");
        }
        Ok(())
    }

    /// Glance's `deactivate` / `reactivate` rules: admin, or a member of the owning project.
    pub async fn deactivate(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        self.set_active(ctx, id, false).await
    }

    pub async fn reactivate(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        self.set_active(ctx, id, true).await
    }

    async fn set_active(&self, ctx: &RequestContext, id: &str, active: bool) -> Result<()> {
        let seen = self.visible(ctx, id).await?;
        policy::modify(ctx, &seen, if active { "reactivate" } else { "deactivate" })?;
        let mut tx = self.db.begin_write().await?;
        let mut im = records::load(&mut tx, id)
            .await?
            .ok_or_else(|| Error::no_image(id))?;
        let (want, verb) = if active {
            (Status::Active, "reactivate")
        } else {
            (Status::Deactivated, "deactivate")
        };
        if im.status == want {
            return Ok(());
        }
        if !im.status.has_data() || !im.status.can_become(want) {
            return Err(Error::Forbidden(format!(
                "Not allowed to {verb} image in status '{}'",
                im.status
            )));
        }
        im.status = want;
        im.updated_at_us = now_us();
        records::save(&mut tx, &im).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_tag(&self, ctx: &RequestContext, id: &str, tag: &str) -> Result<()> {
        attrs::check_tag(tag)?;
        self.change_tags(ctx, id, |tags| {
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
                tags.sort();
            }
            if tags.len() > attrs::MAX_TAGS {
                return Err(Error::TooLarge(format!(
                    "Maximum number of tags exceeded ({})",
                    attrs::MAX_TAGS
                )));
            }
            Ok(())
        })
        .await
    }

    pub async fn delete_tag(&self, ctx: &RequestContext, id: &str, tag: &str) -> Result<()> {
        self.change_tags(ctx, id, |tags| {
            let before = tags.len();
            tags.retain(|t| t != tag);
            if tags.len() == before {
                return Err(Error::NotFound(format!("Tag {tag} not found.")));
            }
            Ok(())
        })
        .await
    }

    async fn change_tags(
        &self,
        ctx: &RequestContext,
        id: &str,
        f: impl FnOnce(&mut Vec<String>) -> Result<()>,
    ) -> Result<()> {
        let seen = self.visible(ctx, id).await?;
        policy::modify(ctx, &seen, "modify_image")?;
        let mut tx = self.db.begin_write().await?;
        let mut im = records::load(&mut tx, id)
            .await?
            .ok_or_else(|| Error::no_image(id))?;
        f(&mut im.tags)?;
        im.updated_at_us = now_us();
        records::save(&mut tx, &im).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- members ---------------------------------------------------------------

    /// Members are listed to the owner (all) and to a member (itself only).
    pub async fn list_members(&self, ctx: &RequestContext, id: &str) -> Result<Vec<Member>> {
        policy::reader(ctx, "get_members")?;
        let im = self.visible(ctx, id).await?;
        if im.visibility != Visibility::Shared {
            return Err(Error::Forbidden("Only shared images have members.".into()));
        }
        let all = records::members(&mut *records::conn(&self.db).await?, id).await?;
        if ctx.is_admin() || policy::owns(ctx, &im) {
            return Ok(all);
        }
        Ok(all
            .into_iter()
            .filter(|m| Some(m.member_id.as_str()) == ctx.project_id())
            .collect())
    }

    pub async fn get_member(&self, ctx: &RequestContext, id: &str, member: &str) -> Result<Member> {
        policy::reader(ctx, "get_member")?;
        let im = self.visible(ctx, id).await?;
        let not_found =
            || Error::NotFound(format!("The specified member {member} could not be found"));
        if !(ctx.is_admin() || policy::owns(ctx, &im) || ctx.project_id() == Some(member)) {
            return Err(not_found());
        }
        records::member(&mut *records::conn(&self.db).await?, id, member)
            .await?
            .ok_or_else(not_found)
    }

    pub async fn add_member(&self, ctx: &RequestContext, id: &str, body: &Value) -> Result<Member> {
        let member = body
            .as_object()
            .and_then(|o| o.get("member"))
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty() && m.len() <= 255)
            .ok_or_else(|| Error::Invalid("Member to be added not specified".into()))?
            .to_string();
        let im = self.visible(ctx, id).await?;
        policy::modify(ctx, &im, "add_member")?;
        if im.visibility != Visibility::Shared {
            return Err(Error::Forbidden(format!(
                "Image {id} is not shared: only shared images have members."
            )));
        }
        let mut tx = self.db.begin_write().await?;
        let existing = records::members(&mut tx, id).await?;
        if existing.iter().any(|m| m.member_id == member) {
            return Err(Error::Conflict(format!(
                "Member {member} already exists for image {id}"
            )));
        }
        if existing.len() >= self.settings.image_member_quota {
            return Err(Error::TooLarge(format!(
                "Maximum number of image members exceeded ({})",
                self.settings.image_member_quota
            )));
        }
        let now = now_us();
        let m = Member {
            image_id: id.to_string(),
            member_id: member,
            status: MemberStatus::Pending,
            created_at: now.div_euclid(1_000_000),
            updated_at: now.div_euclid(1_000_000),
        };
        records::put_member(&mut tx, &m, now, true).await?;
        tx.commit().await?;
        Ok(m)
    }

    /// Accept or reject: only the member project itself.
    pub async fn update_member(
        &self,
        ctx: &RequestContext,
        id: &str,
        member: &str,
        body: &Value,
    ) -> Result<Member> {
        let status = body
            .as_object()
            .and_then(|o| o.get("status"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Invalid("Status not specified".into()))?;
        let status = MemberStatus::parse(status)
            .ok_or_else(|| Error::Invalid(format!("Invalid status: {status}")))?;
        policy::reader(ctx, "modify_member")?;
        self.visible(ctx, id).await?;
        let mut m = self.get_member(ctx, id, member).await?;
        if ctx.project_id() != Some(member) {
            return Err(Error::Forbidden(
                "You are not permitted to modify 'status' on this image member.".into(),
            ));
        }
        let now = now_us();
        m.status = status;
        m.updated_at = now.div_euclid(1_000_000);
        let mut tx = self.db.begin_write().await?;
        records::put_member(&mut tx, &m, now, false).await?;
        tx.commit().await?;
        Ok(m)
    }

    pub async fn delete_member(&self, ctx: &RequestContext, id: &str, member: &str) -> Result<()> {
        let im = self.visible(ctx, id).await?;
        policy::modify(ctx, &im, "delete_member")?;
        let mut tx = self.db.begin_write().await?;
        if records::member(&mut tx, id, member).await?.is_none() {
            return Err(Error::NotFound(format!(
                "The specified member {member} could not be found"
            )));
        }
        records::delete_member(&mut tx, id, member).await?;
        tx.commit().await?;
        Ok(())
    }
}
