//! Reading one server and changing it: show, update, delete (+ force), metadata,
//! tags, and the actions (stop, start, reboot, pause, suspend, lock, rebuild,
//! resize, createImage, changePassword, console output). Each action checks
//! policy, the lock and the state as Nova does (409 with Nova's message when the
//! state does not allow it), then sets the task the host agent carries out.

use std::collections::BTreeMap;

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::instance_actions;
use crate::quotas;
use crate::records::servers as records;
use crate::servers::create::{check_metadata_quota, now_us, require_member};
use crate::servers::model::{FlavorSnapshot, Server, TaskState, VmState};
use crate::service::Compute;

/// A state-changing server action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Stop,
    Start,
    Reboot {
        hard: bool,
    },
    Pause,
    Unpause,
    Suspend,
    Resume,
    Lock {
        reason: Option<String>,
    },
    Unlock,
    Rebuild(Box<Rebuild>),
    Resize {
        flavor_ref: String,
    },
    ConfirmResize,
    RevertResize,
    CreateImage {
        name: String,
        metadata: BTreeMap<String, String>,
    },
    /// A snapshot with `image_type=backup`; older backups of the same type beyond
    /// `rotation` are deleted once it is uploaded.
    CreateBackup {
        name: String,
        backup_type: String,
        rotation: i64,
        metadata: BTreeMap<String, String>,
    },
    ChangePassword {
        password: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rebuild {
    pub image_ref: String,
    pub name: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub admin_pass: Option<String>,
    pub personality: Option<Vec<crate::servers::model::Personality>>,
    pub user_data: Option<Option<String>>,
    pub key_name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub access_ipv4: Option<String>,
    pub access_ipv6: Option<String>,
}

/// `PUT /servers/{id}`: the attributes to change (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub hostname: Option<String>,
    /// canonical address or `""` ([`access_ip`](crate::servers::request::access_ip))
    pub access_ipv4: Option<String>,
    pub access_ipv6: Option<String>,
}

/// What an action answers beyond 202.
#[derive(Debug, Clone, Default)]
pub struct ActionOutcome {
    pub admin_pass: Option<String>,
    pub image_id: Option<String>,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Instance {id} could not be found."))
}

fn conflict_state(action: &str, s: &Server) -> Error {
    let attr = if s.task_state.is_some() {
        "task_state"
    } else {
        "vm_state"
    };
    let value = s
        .task_state
        .map(TaskState::as_str)
        .unwrap_or(s.vm_state.as_str());
    Error::Conflict(format!(
        "Cannot '{action}' instance {} while it is in {attr} {value}",
        s.id
    ))
}

/// Runs a read-modify-write until it lands: another writer (the agent recording a
/// step, another request) may have changed the row between the read and the write.
macro_rules! retrying {
    ($attempt:expr) => {{
        let mut tries = 0u64;
        loop {
            match $attempt.await {
                Err(Error::Stale(_)) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(tries * 2)).await;
                }
                Err(Error::Stale(_)) => {
                    break Err(Error::Conflict(
                        "The server is changing too fast to apply this request; try again.".into(),
                    ));
                }
                other => break other,
            }
        }
    }};
}

impl Compute {
    pub async fn update_server(
        &self,
        ctx: &RequestContext,
        id: &str,
        update: ServerUpdate,
    ) -> Result<Server> {
        retrying!(self.update_server_once(ctx, id, update.clone()))
    }

    pub async fn delete_server(
        &self,
        ctx: &RequestContext,
        id: &str,
        request_id: &str,
    ) -> Result<()> {
        retrying!(self.delete_server_once(ctx, id, request_id))
    }

    pub async fn set_server_metadata(
        &self,
        ctx: &RequestContext,
        id: &str,
        items: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>> {
        let before = self.console_password_of(ctx, id).await?;
        let out = retrying!(self.set_server_metadata_once(ctx, id, items.clone(), replace))?;
        self.after_metadata_change(ctx, id, before).await?;
        Ok(out)
    }

    pub async fn delete_server_metadata(
        &self,
        ctx: &RequestContext,
        id: &str,
        key: &str,
    ) -> Result<()> {
        let before = self.console_password_of(ctx, id).await?;
        retrying!(self.delete_server_metadata_once(ctx, id, key))?;
        self.after_metadata_change(ctx, id, before).await
    }

    /// The server's `spice_passwd` (the console password its owner chose).
    async fn console_password_of(&self, ctx: &RequestContext, id: &str) -> Result<Option<String>> {
        let s = self.get_server(ctx, id).await?;
        Ok(s.doc
            .metadata
            .get(ferrostack_virt::domain::SPICE_PASSWORD_KEY)
            .cloned())
    }

    async fn after_metadata_change(
        &self,
        ctx: &RequestContext,
        id: &str,
        before: Option<String>,
    ) -> Result<()> {
        let s = self.get_server(ctx, id).await?;
        if s.doc
            .metadata
            .get(ferrostack_virt::domain::SPICE_PASSWORD_KEY)
            != before.as_ref()
        {
            self.console_password_changed(&s).await?;
        }
        Ok(())
    }

    pub async fn set_server_tags(
        &self,
        ctx: &RequestContext,
        id: &str,
        tags: Vec<String>,
    ) -> Result<Vec<String>> {
        retrying!(self.set_server_tags_once(ctx, id, tags.clone()))
    }

    pub async fn add_server_tag(
        &self,
        ctx: &RequestContext,
        id: &str,
        tag: String,
    ) -> Result<bool> {
        retrying!(self.add_server_tag_once(ctx, id, tag.clone()))
    }

    pub async fn delete_server_tag(
        &self,
        ctx: &RequestContext,
        id: &str,
        tag: Option<&str>,
    ) -> Result<()> {
        retrying!(self.delete_server_tag_once(ctx, id, tag))
    }

    pub async fn reset_state(&self, ctx: &RequestContext, id: &str, state: &str) -> Result<()> {
        retrying!(self.reset_state_once(ctx, id, state))
    }

    pub async fn server_password(
        &self,
        ctx: &RequestContext,
        id: &str,
        clear: bool,
    ) -> Result<String> {
        retrying!(self.server_password_once(ctx, id, clear))
    }

    /// A server action (`POST /servers/{id}/action`).
    pub async fn server_action(
        &self,
        ctx: &RequestContext,
        id: &str,
        action: Action,
        request_id: &str,
    ) -> Result<ActionOutcome> {
        // A snapshot's image id is chosen once, so a retried attempt finds the
        // image its first attempt made instead of making another.
        if let Action::ChangePassword { password } = action {
            return self
                .change_password(ctx, id, &password, request_id)
                .await
                .map(|()| ActionOutcome::default());
        }
        let image_id = ferrostack_core::ids::new_uuid();
        retrying!(self.server_action_once(ctx, id, action.clone(), request_id, &image_id))
    }

    /// `changePassword`: done while the caller waits, as Nova's RPC call to the
    /// compute host, so a driver or guest that cannot do it answers now (409 no
    /// guest agent, 501 not possible here) instead of dropping the password.
    async fn change_password(
        &self,
        ctx: &RequestContext,
        id: &str,
        password: &str,
        request_id: &str,
    ) -> Result<()> {
        let s = self
            .writable(ctx, id, "os_compute_api:os-admin-password")
            .await?;
        Self::check_lock(ctx, &s)?;
        if s.task_state.is_some() || s.vm_state != VmState::Active {
            return Err(conflict_state("changePassword", &s));
        }
        let host = s.host.clone().unwrap_or_default();
        let link = self.link_of(&s)?;
        let started = now_us();
        {
            let mut tx = self.db.begin_write().await?;
            instance_actions::start(
                &mut tx,
                ctx,
                &s.id,
                &s.project_id,
                "changePassword",
                request_id,
                started,
            )
            .await?;
            tx.commit().await?;
        }
        let user = s
            .doc
            .image_properties
            .get("os_admin_user")
            .filter(|u| !u.is_empty())
            .map_or("root", String::as_str);
        let result = link.set_admin_password(&s.id, user, password).await;
        let why = result.as_ref().err().map(|e| e.to_string());
        let mut tx = self.db.begin_write().await?;
        instance_actions::event(
            &mut tx,
            &instance_actions::EventRecord {
                server_id: &s.id,
                request_id: Some(request_id),
                event: "compute_set_admin_password",
                host: &host,
                start_us: started,
                finish_us: now_us(),
                error: why.as_deref(),
            },
        )
        .await?;
        tx.commit().await?;
        result
    }

    /// createBackup's rotation, run once the new backup is uploaded (as Nova's
    /// compute manager does): of the server's images with `image_type=backup` and
    /// this `backup_type`, newest first, all but the first `rotation` are deleted.
    pub async fn rotate_backups(
        &self,
        ctx: &RequestContext,
        server_id: &str,
        backup_type: &str,
        rotation: i64,
    ) -> Result<()> {
        let pairs: Vec<(String, String)> = [
            ("instance_uuid", server_id),
            ("image_type", "backup"),
            ("backup_type", backup_type),
            ("sort_key", "created_at"),
            ("sort_dir", "desc"),
            ("limit", "1000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let q = ferrostack_image::query::ListQuery::parse(&pairs)?;
        let (images, _) = self.images.list(ctx, &q).await?;
        let keep = usize::try_from(rotation.max(0)).unwrap_or(usize::MAX);
        for img in images.iter().skip(keep) {
            match self.images.delete(ctx, &img.id).await {
                Ok(()) | Err(ferrostack_image::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A server the caller may see (404 otherwise, as Nova answers).
    pub async fn get_server(&self, ctx: &RequestContext, id: &str) -> Result<Server> {
        let s = records::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if s.deleted {
            return Err(not_found(id));
        }
        if !ctx.is_admin() && ctx.project_id() != Some(s.project_id.as_str()) {
            return Err(not_found(id));
        }
        Ok(s)
    }

    async fn writable(&self, ctx: &RequestContext, id: &str, rule: &str) -> Result<Server> {
        let s = self.get_server(ctx, id).await?;
        if s.deleted {
            return Err(not_found(id));
        }
        require_member(ctx, rule)?;
        Ok(s)
    }

    fn check_lock(ctx: &RequestContext, s: &Server) -> Result<()> {
        if s.locked && !ctx.is_admin() {
            return Err(Error::Conflict(format!("Instance {} is locked", s.id)));
        }
        Ok(())
    }

    /// Writes a user's change; the row must not have changed meanwhile.
    pub(crate) async fn save(&self, mut s: Server, bump: bool) -> Result<Server> {
        let expected = s.generation;
        if bump {
            s.attempts = 0;
            s.next_attempt_us = 0;
        }
        s.updated_at_us = now_us();
        let mut tx = self.db.begin_write().await?;
        if !records::update_if(&mut tx, &mut s, expected).await? {
            return Err(Error::Stale(s.id.clone()));
        }
        tx.commit().await?;
        if bump {
            self.poke();
        }
        Ok(s)
    }

    async fn save_with_action(
        &self,
        ctx: &RequestContext,
        mut s: Server,
        action: &str,
        request_id: &str,
    ) -> Result<Server> {
        let expected = s.generation;
        s.attempts = 0;
        s.next_attempt_us = 0;
        s.doc.pending.request_id = Some(request_id.to_string());
        s.doc.last_error = None;
        let now = now_us();
        s.updated_at_us = now;
        let mut tx = self.db.begin_write().await?;
        if !records::update_if(&mut tx, &mut s, expected).await? {
            return Err(Error::Stale(s.id.clone()));
        }
        instance_actions::start(&mut tx, ctx, &s.id, &s.project_id, action, request_id, now)
            .await?;
        tx.commit().await?;
        self.poke();
        Ok(s)
    }

    /// `PUT /servers/{id}`: name, description, hostname, access IPs.
    async fn update_server_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        u: ServerUpdate,
    ) -> Result<Server> {
        let mut s = self
            .writable(ctx, id, "os_compute_api:servers:update")
            .await?;
        Self::check_lock(ctx, &s)?;
        if let Some(n) = u.name {
            s.name = n;
        }
        if let Some(d) = u.description {
            s.doc.description = d;
        }
        if let Some(h) = u.hostname {
            s.doc.hostname = h;
        }
        if let Some(a) = u.access_ipv4 {
            s.doc.access_ipv4 = a;
        }
        if let Some(a) = u.access_ipv6 {
            s.doc.access_ipv6 = a;
        }
        self.save(s, false).await
    }

    /// `DELETE /servers/{id}` (and `forceDelete`). A server not yet on a host is
    /// deleted at once; otherwise the host agent destroys it and frees its ports.
    async fn delete_server_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        request_id: &str,
    ) -> Result<()> {
        let mut s = self
            .writable(ctx, id, "os_compute_api:servers:delete")
            .await?;
        Self::check_lock(ctx, &s)?;
        // a deleted server's consoles close now, not when its guest is gone
        self.revoke_consoles(id).await?;
        if s.task_state == Some(TaskState::Deleting) {
            // Deleting again retries a delete that went to ERROR or is waiting.
            s.attempts = 0;
            s.next_attempt_us = 0;
            self.save(s, true).await?;
            return Ok(());
        }
        if s.host.is_none() {
            // Nothing exists on any host yet: a local delete.
            let expected = s.generation;
            let now = now_us();
            s.vm_state = VmState::Deleted;
            s.task_state = None;
            s.deleted = true;
            s.deleted_at_us = Some(now);
            s.terminated_at_us = Some(now);
            s.updated_at_us = now;
            s.doc.pending = Default::default();
            let mut tx = self.db.begin_write().await?;
            if !records::update_if(&mut tx, &mut s, expected).await? {
                return Err(Error::Stale(id.to_string()));
            }
            instance_actions::start(&mut tx, ctx, id, &s.project_id, "delete", request_id, now)
                .await?;
            crate::server_groups::remove_member(&mut tx, id).await?;
            tx.commit().await?;
            self.networks.release_for_server(id).await?;
            self.poke();
            return Ok(());
        }
        s.task_state = Some(TaskState::Deleting);
        self.save_with_action(ctx, s, "delete", request_id).await?;
        Ok(())
    }

    /// Server metadata: replace all (`PUT`), merge (`POST`), set one, delete one.
    async fn set_server_metadata_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        items: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>> {
        let mut s = self
            .writable(ctx, id, "os_compute_api:server-metadata:update")
            .await?;
        Self::check_lock(ctx, &s)?;
        if s.task_state == Some(TaskState::Deleting) {
            return Err(conflict_state("update metadata", &s));
        }
        let mut next = if replace {
            BTreeMap::new()
        } else {
            s.doc.metadata.clone()
        };
        next.extend(items);
        let limits = {
            let mut conn = crate::records::acquire(&self.db).await?;
            quotas::limits(&mut conn, &self.settings.quota, &s.project_id).await?
        };
        check_metadata_quota(&limits, next.len())?;
        s.doc.metadata = next;
        Ok(self.save(s, false).await?.doc.metadata)
    }

    async fn delete_server_metadata_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        key: &str,
    ) -> Result<()> {
        let mut s = self
            .writable(ctx, id, "os_compute_api:server-metadata:delete")
            .await?;
        Self::check_lock(ctx, &s)?;
        if s.doc.metadata.remove(key).is_none() {
            return Err(Error::NotFound("Metadata item was not found".into()));
        }
        self.save(s, false).await?;
        Ok(())
    }

    /// Server tags: replace all, add one, delete one, delete all.
    async fn set_server_tags_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        tags: Vec<String>,
    ) -> Result<Vec<String>> {
        let mut s = self
            .writable(ctx, id, "os_compute_api:os-server-tags:update_all")
            .await?;
        Self::check_tag_state(&s)?;
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        s.doc.tags = tags;
        Ok(self.save(s, false).await?.doc.tags)
    }

    fn check_tag_state(s: &Server) -> Result<()> {
        // Nova allows tag changes only in active, paused, suspended, stopped, shelved*, building.
        match s.vm_state {
            VmState::Active
            | VmState::Paused
            | VmState::Suspended
            | VmState::Stopped
            | VmState::Building
                if s.task_state != Some(TaskState::Deleting) =>
            {
                Ok(())
            }
            _ => Err(conflict_state("update tags", s)),
        }
    }

    async fn add_server_tag_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        tag: String,
    ) -> Result<bool> {
        let mut s = self
            .writable(ctx, id, "os_compute_api:os-server-tags:update")
            .await?;
        Self::check_tag_state(&s)?;
        if s.doc.tags.contains(&tag) {
            return Ok(false);
        }
        if s.doc.tags.len() >= 50 {
            return Err(Error::BadRequest(
                "The number of tags exceeded the per-server limit 50".into(),
            ));
        }
        s.doc.tags.push(tag);
        s.doc.tags.sort();
        self.save(s, false).await?;
        Ok(true)
    }

    async fn delete_server_tag_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        tag: Option<&str>,
    ) -> Result<()> {
        let mut s = self
            .writable(ctx, id, "os_compute_api:os-server-tags:delete")
            .await?;
        Self::check_tag_state(&s)?;
        match tag {
            Some(t) => {
                let before = s.doc.tags.len();
                s.doc.tags.retain(|x| x != t);
                if s.doc.tags.len() == before {
                    return Err(Error::NotFound(format!("Tag '{t}' could not be found.")));
                }
            }
            None => s.doc.tags.clear(),
        }
        self.save(s, false).await?;
        Ok(())
    }

    /// A server action (`POST /servers/{id}/action`).
    async fn server_action_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        action: Action,
        request_id: &str,
        new_image_id: &str,
    ) -> Result<ActionOutcome> {
        let mut s = self
            .writable(ctx, id, "os_compute_api:servers:action")
            .await?;
        let mut outcome = ActionOutcome::default();
        match &action {
            Action::Lock { .. } | Action::Unlock => {}
            _ => Self::check_lock(ctx, &s)?,
        }
        let busy = s.task_state.is_some();
        use VmState as V;
        let (name, next_task): (&str, Option<TaskState>) = match action {
            Action::Stop => {
                if busy || !matches!(s.vm_state, V::Active | V::Error | V::Resized) {
                    return Err(conflict_state("stop", &s));
                }
                ("stop", Some(TaskState::PoweringOff))
            }
            Action::Start => {
                if busy || s.vm_state != V::Stopped {
                    return Err(conflict_state("start", &s));
                }
                ("start", Some(TaskState::PoweringOn))
            }
            Action::Reboot { hard } => {
                let ok_vm = if hard {
                    matches!(
                        s.vm_state,
                        V::Active | V::Stopped | V::Paused | V::Suspended | V::Error
                    )
                } else {
                    s.vm_state == V::Active
                };
                let ok_task = !busy || (hard && matches!(s.task_state, Some(TaskState::Rebooting)));
                if !ok_vm || !ok_task {
                    return Err(conflict_state("reboot", &s));
                }
                (
                    "reboot",
                    Some(if hard {
                        TaskState::RebootingHard
                    } else {
                        TaskState::Rebooting
                    }),
                )
            }
            Action::Pause => {
                if busy || s.vm_state != V::Active {
                    return Err(conflict_state("pause", &s));
                }
                ("pause", Some(TaskState::Pausing))
            }
            Action::Unpause => {
                if busy || s.vm_state != V::Paused {
                    return Err(conflict_state("unpause", &s));
                }
                ("unpause", Some(TaskState::Unpausing))
            }
            Action::Suspend => {
                if busy || !matches!(s.vm_state, V::Active | V::Paused) {
                    return Err(conflict_state("suspend", &s));
                }
                ("suspend", Some(TaskState::Suspending))
            }
            Action::Resume => {
                if busy || s.vm_state != V::Suspended {
                    return Err(conflict_state("resume", &s));
                }
                ("resume", Some(TaskState::Resuming))
            }
            Action::Lock { reason } => {
                s.locked = true;
                s.doc.locked_reason = reason;
                s.doc.locked_by = Some(
                    if ctx.is_admin() && ctx.project_id() != Some(s.project_id.as_str()) {
                        "admin".into()
                    } else {
                        "owner".into()
                    },
                );
                ("lock", None)
            }
            Action::Unlock => {
                if s.locked && s.doc.locked_by.as_deref() == Some("admin") && !ctx.is_admin() {
                    return Err(Error::Forbidden(
                        "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.".into(),
                    ));
                }
                s.locked = false;
                s.doc.locked_reason = None;
                s.doc.locked_by = None;
                ("unlock", None)
            }
            Action::Rebuild(r) => {
                if busy || !matches!(s.vm_state, V::Active | V::Stopped | V::Error) {
                    return Err(conflict_state("rebuild", &s));
                }
                let image = match self.images.get(ctx, &r.image_ref).await {
                    Ok(i) => i,
                    Err(ferrostack_image::Error::NotFound(_))
                    | Err(ferrostack_image::Error::Forbidden(_)) => {
                        return Err(Error::BadRequest(format!(
                            "Image {} could not be found.",
                            r.image_ref
                        )));
                    }
                    Err(e) => return Err(e.into()),
                };
                if image.status != ferrostack_image::Status::Active {
                    return Err(Error::BadRequest(format!(
                        "Image {} is not active.",
                        r.image_ref
                    )));
                }
                let limits = {
                    let mut conn = crate::records::acquire(&self.db).await?;
                    quotas::limits(&mut conn, &self.settings.quota, &s.project_id).await?
                };
                if let Some(m) = &r.metadata {
                    check_metadata_quota(&limits, m.len())?;
                }
                if let Some(p) = &r.personality {
                    crate::servers::create::check_personality_quota(&limits, p)?;
                }
                if let Some(Some(k)) = &r.key_name {
                    match self.keypair_public_key(&ctx.user_id, k).await? {
                        Some((pk, _)) => {
                            s.doc.key_name = Some(k.clone());
                            s.doc.key_data = Some(pk);
                        }
                        None => return Err(Error::BadRequest("Invalid key_name provided.".into())),
                    }
                } else if let Some(None) = &r.key_name {
                    s.doc.key_name = None;
                    s.doc.key_data = None;
                }
                // Nova deletes a rebuilt server's console tokens
                self.revoke_consoles(&s.id).await?;
                if let Some(n) = r.name {
                    s.name = n;
                }
                if let Some(m) = r.metadata {
                    s.doc.metadata = m;
                }
                if let Some(p) = r.personality {
                    s.doc.personality = p;
                }
                if let Some(u) = r.user_data {
                    s.doc.user_data = u;
                }
                if let Some(d) = r.description {
                    s.doc.description = d;
                }
                if let Some(a) = r.access_ipv4 {
                    s.doc.access_ipv4 = a;
                }
                if let Some(a) = r.access_ipv6 {
                    s.doc.access_ipv6 = a;
                }
                s.image_ref = r.image_ref.clone();
                s.doc.image_properties = image.properties.clone();
                let pass = r
                    .admin_pass
                    .unwrap_or_else(crate::servers::create::generate_password);
                s.doc.pending.admin_pass = Some(pass.clone());
                s.doc.pending.rebuild_image_id = Some(r.image_ref.clone());
                outcome.admin_pass = Some(pass);
                ("rebuild", Some(TaskState::Rebuilding))
            }
            Action::Resize { flavor_ref } => {
                if busy || !matches!(s.vm_state, V::Active | V::Stopped) {
                    return Err(conflict_state("resize", &s));
                }
                let flavor = match self.flavor_for_server(ctx, &flavor_ref).await {
                    Ok(f) => f,
                    Err(Error::NotFound(_)) => {
                        return Err(Error::BadRequest(format!(
                            "Flavor {flavor_ref} could not be found."
                        )));
                    }
                    Err(e) => return Err(e),
                };
                if flavor.id == s.flavor_id {
                    return Err(Error::BadRequest(
                        "When resizing, instances must change flavor!".into(),
                    ));
                }
                if flavor.root_gb < s.root_gb && flavor.root_gb != 0 {
                    return Err(Error::BadRequest(
                        "Resize error: Unable to resize disk down.".into(),
                    ));
                }
                let new = FlavorSnapshot {
                    id: flavor.id.clone(),
                    name: flavor.name.clone(),
                    vcpus: flavor.vcpus,
                    memory_mb: flavor.memory_mb,
                    root_gb: flavor.root_gb,
                    ephemeral_gb: flavor.ephemeral_gb,
                    swap_mb: flavor.swap_mb,
                    extra_specs: flavor.extra_specs.clone(),
                };
                // The new size counts against quota from now on (Nova: counted on the new flavor).
                {
                    let _serial = self.quota_lock.lock().await;
                    let mut conn = crate::records::acquire(&self.db).await?;
                    let limits =
                        quotas::limits(&mut conn, &self.settings.quota, &s.project_id).await?;
                    let usage = crate::records::quotas::usage(&mut conn, &s.project_id).await?;
                    let dc = new.vcpus - s.vcpus;
                    let dr = new.memory_mb - s.memory_mb;
                    for (n, limit, used, d) in [
                        ("cores", limits.cores, usage.cores, dc),
                        ("ram", limits.ram, usage.ram, dr),
                    ] {
                        if d > 0 && limit >= 0 && used + d > limit {
                            return Err(Error::Forbidden(format!(
                                "Quota exceeded for {n}: Requested {d}, but already used {used} of {limit} {n}"
                            )));
                        }
                    }
                }
                s.doc.pending.old_vm_state = Some(s.vm_state);
                s.doc.old_flavor = Some(s.doc.flavor.clone());
                s.doc.flavor = new.clone();
                s.flavor_id = new.id.clone();
                s.vcpus = new.vcpus;
                s.memory_mb = new.memory_mb;
                s.root_gb = new.root_gb;
                s.ephemeral_gb = new.ephemeral_gb;
                ("resize", Some(TaskState::ResizePrep))
            }
            Action::ConfirmResize => {
                if busy || s.vm_state != V::Resized {
                    return Err(conflict_state("confirmResize", &s));
                }
                ("confirmResize", Some(TaskState::ResizeConfirming))
            }
            Action::RevertResize => {
                if busy || s.vm_state != V::Resized {
                    return Err(conflict_state("revertResize", &s));
                }
                if let Some(old) = s.doc.old_flavor.clone() {
                    s.doc.flavor = old.clone();
                    s.flavor_id = old.id.clone();
                    s.vcpus = old.vcpus;
                    s.memory_mb = old.memory_mb;
                    s.root_gb = old.root_gb;
                    s.ephemeral_gb = old.ephemeral_gb;
                }
                ("revertResize", Some(TaskState::ResizeReverting))
            }
            Action::CreateImage { .. } | Action::CreateBackup { .. } => {
                let (name, metadata, backup, verb) = match action {
                    Action::CreateBackup {
                        name,
                        backup_type,
                        rotation,
                        metadata,
                    } => (
                        name,
                        metadata,
                        Some(crate::servers::model::BackupRotation {
                            backup_type,
                            rotation,
                        }),
                        "createBackup",
                    ),
                    Action::CreateImage { name, metadata } => (name, metadata, None, "createImage"),
                    _ => unreachable!("matched above"),
                };
                if busy
                    || !matches!(
                        s.vm_state,
                        V::Active | V::Stopped | V::Paused | V::Suspended
                    )
                {
                    return Err(conflict_state(verb, &s));
                }
                let mut body = serde_json::json!({
                    "id": new_image_id,
                    "name": name,
                    "disk_format": "raw",
                    "container_format": "bare",
                    "image_type": if backup.is_some() { "backup" } else { "snapshot" },
                    "instance_uuid": s.id,
                    "base_image_ref": s.image_ref,
                    "owner_user_name": ctx.user_name,
                });
                if let Some(b) = &backup {
                    body["backup_type"] = serde_json::Value::String(b.backup_type.clone());
                }
                if let Some(obj) = body.as_object_mut() {
                    for (k, v) in s.doc.image_properties.iter().filter(|(k, _)| {
                        !k.starts_with("os_glance") && !k.starts_with("owner_specified")
                    }) {
                        obj.entry(k.clone())
                            .or_insert(serde_json::Value::String(v.clone()));
                    }
                    for (k, v) in metadata {
                        obj.insert(k, serde_json::Value::String(v));
                    }
                }
                match self.images.create(ctx, body).await {
                    Ok(_) | Err(ferrostack_image::Error::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                s.doc.pending.snapshot_image_id = Some(new_image_id.to_string());
                s.doc.pending.backup_rotation = backup;
                outcome.image_id = Some(new_image_id.to_string());
                (verb, Some(TaskState::ImageSnapshot))
            }
            Action::ChangePassword { .. } => {
                // handled by `change_password` before it gets here
                return Err(Error::internal("changePassword is not a queued action"));
            }
        };
        if next_task.is_some() {
            s.task_state = next_task;
        }
        self.save_with_action(ctx, s, name, request_id).await?;
        Ok(outcome)
    }

    /// `os-resetState` (admin): forces the vm state and clears the task.
    async fn reset_state_once(&self, ctx: &RequestContext, id: &str, state: &str) -> Result<()> {
        if !ctx.is_admin() {
            return Err(Error::Forbidden(
                "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed."
                    .into(),
            ));
        }
        let vm = match state {
            "active" => VmState::Active,
            "error" => VmState::Error,
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute state. Value: {other}. '{other}' is not one of ['active', 'error']"
                )));
            }
        };
        let mut s = self.get_server(ctx, id).await?;
        s.vm_state = vm;
        s.task_state = None;
        self.save(s, true).await?;
        Ok(())
    }

    /// The instance actions of a server the caller may see.
    pub async fn instance_actions(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<Vec<instance_actions::InstanceAction>> {
        // Nova shows the actions of deleted servers too (it reads deleted rows).
        let mut conn = crate::records::acquire(&self.db).await?;
        let s = records::load(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if !ctx.is_admin() && ctx.project_id() != Some(s.project_id.as_str()) {
            return Err(not_found(id));
        }
        crate::records::actions::list(&mut conn, &s.id).await
    }

    /// `os-server-password`: the encrypted password the guest posted, or "".
    async fn server_password_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        clear: bool,
    ) -> Result<String> {
        let mut s = self.get_server(ctx, id).await?;
        if clear {
            require_member(ctx, "os_compute_api:os-server-password:clear")?;
            s.doc.password = None;
            self.save(s, false).await?;
            return Ok(String::new());
        }
        Ok(s.doc.password.unwrap_or_default())
    }
}
