//! The host agent (upstream's nova-compute manager), as a reconciler: it wakes on
//! any change of desired state or on a tick, reads the servers on its host that
//! have a task due, asks its [`Driver`] what exists, runs the one next step
//! ([`plan`]) and records the result after each step — conditionally on the
//! server's generation, so a newer intent (a delete during a spawn) always wins.
//! A failing step backs off (0.5 s, 1 s, 2 s, ...) and after `max_attempts` the
//! server gets a fault (ERROR for builds and deletes). It also registers and
//! heartbeats its host and syncs power states periodically.

pub mod guest;
pub mod image_source;
pub mod plan;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use ferrostack_core::RequestContext;
use ferrostack_core::context::Scope;
use ferrostack_network::Allocation;
use ferrostack_virt::{Driver, DriverError, GuestEvent, PowerState, SnapshotSpec, StopCause};

use crate::error::{Error, Result};
use crate::hosts::HostLink;
use crate::instance_actions;
use crate::records::servers as records;
use crate::servers::create::now_us;
use crate::servers::model::{Fault, Server, TaskState, VmState};
use crate::service::Compute;
use plan::{Step, after, event_name, plan};

/// Test-only crash points (`FERROSTACK_TEST_CRASH_AT=<step>` makes the process
/// exit right after that step ran, before its result is recorded).
fn crash_point(step: Step) {
    if let Ok(want) = std::env::var("FERROSTACK_TEST_CRASH_AT")
        && !want.is_empty()
        && format!("{step:?}").eq_ignore_ascii_case(&want)
    {
        tracing::warn!(?step, "test crash point reached: exiting");
        std::process::exit(86);
    }
}

/// One host's agent.
pub struct Agent {
    compute: Arc<Compute>,
    driver: Arc<dyn Driver>,
    host: String,
    az: String,
    in_flight: Mutex<HashSet<String>>,
}

/// How many servers an agent works on at once.
const PARALLEL: usize = 16;

impl Agent {
    pub fn new(
        compute: Arc<Compute>,
        driver: Arc<dyn Driver>,
        host: String,
        az: String,
    ) -> Arc<Agent> {
        Arc::new(Agent {
            compute,
            driver,
            host,
            az,
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Registers the host, then reconciles until `stop` changes.
    pub async fn start(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>> {
        let res = self
            .driver
            .host_resources()
            .await
            .map_err(|e| Error::Internal(Box::new(e)))?;
        self.compute
            .register_host(&self.host, &self.az, &res)
            .await?;
        self.compute
            .attach_host(&self.host, self.clone() as Arc<dyn HostLink>);
        tracing::info!(host = %self.host, driver = self.driver.name(), "host agent started");
        let mut handles = Vec::new();

        let me = self.clone();
        let mut wake = self.compute.subscribe();
        let mut stop1 = stop.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let sleep = match me.pass().await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::error!(error = %e, "agent pass failed");
                        Duration::from_secs(1)
                    }
                };
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(sleep) => {}
                    _ = stop1.changed() => break,
                }
            }
        }));

        if let Some(mut events) = self.driver.take_events() {
            let me = self.clone();
            let mut stop3 = stop.clone();
            handles.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        ev = events.recv() => {
                            let Some(ev) = ev else { break };
                            if let Err(e) = me.on_guest_event(ev).await {
                                tracing::error!(error = %e, "recording a guest event failed");
                            }
                        }
                        _ = stop3.changed() => break,
                    }
                }
            }));
        }

        let me = self.clone();
        let mut stop2 = stop;
        handles.push(tokio::spawn(async move {
            let c = &me.compute.settings.compute;
            let mut beat = tokio::time::interval(Duration::from_secs(c.report_interval.max(1)));
            let mut sync =
                tokio::time::interval(Duration::from_secs(c.sync_power_state_interval.max(1)));
            sync.tick().await;
            loop {
                tokio::select! {
                    _ = beat.tick() => {
                        if let Err(e) = me.compute.heartbeat(&me.host).await {
                            tracing::error!(error = %e, "heartbeat failed");
                        }
                    }
                    _ = sync.tick() => {
                        if let Err(e) = me.sync_power_states().await {
                            tracing::error!(error = %e, "power state sync failed");
                        }
                    }
                    _ = stop2.changed() => break,
                }
            }
        }));
        Ok(handles)
    }

    /// One pass: run the due servers' next steps; returns how long to sleep.
    pub async fn pass(self: &Arc<Self>) -> Result<Duration> {
        let now = now_us();
        let due = {
            let mut conn = crate::records::acquire(&self.compute.db).await?;
            records::due_on_host(&mut conn, &self.host, now, 500).await?
        };
        let todo: Vec<Server> = {
            let mut inf = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            due.into_iter()
                .filter(|s| inf.insert(s.id.clone()))
                .collect()
        };
        if !todo.is_empty() {
            let me = self.clone();
            futures::stream::iter(todo)
                .for_each_concurrent(PARALLEL, |s| {
                    let me = me.clone();
                    async move {
                        let id = s.id.clone();
                        // Each server runs as its own task, so a panic stays there.
                        let worker = me.clone();
                        let r = tokio::spawn(async move { worker.converge(s).await }).await;
                        match r {
                            Ok(Err(e)) => {
                                tracing::error!(server = %id, error = %e, "recording a step failed")
                            }
                            Err(e) => tracing::error!(server = %id, error = %e, "a step panicked"),
                            Ok(Ok(())) => {}
                        }
                        me.in_flight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
                    }
                })
                .await;
            return Ok(Duration::ZERO);
        }
        let mut conn = crate::records::acquire(&self.compute.db).await?;
        Ok(
            match records::next_due_on_host(&mut conn, &self.host).await? {
                Some(t) if t > now => {
                    Duration::from_micros((t - now) as u64).min(Duration::from_secs(5))
                }
                Some(_) => Duration::from_millis(50),
                None => Duration::from_secs(5),
            },
        )
    }

    async fn observe(&self, id: &str) -> std::result::Result<Option<PowerState>, DriverError> {
        match self.driver.get_info(id).await {
            Ok(i) => Ok(Some(i.power_state)),
            Err(DriverError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs steps for one server until it rests, fails or its intent changes.
    async fn converge(&self, mut s: Server) -> Result<()> {
        for _ in 0..8 {
            let Some(task) = s.task_state else {
                return Ok(());
            };
            let timeout = self.compute.settings.compute.instance_build_timeout as i64;
            if timeout > 0
                && s.vm_state == VmState::Building
                && now_us() - s.created_at_us > timeout * 1_000_000
            {
                s.attempts = i64::from(self.compute.settings.compute.max_attempts);
                let why = format!(
                    "the build timed out after {timeout} s ([compute] instance_build_timeout)"
                );
                return self.record_failure(s, Step::Spawn, why).await;
            }
            let observed = match self.observe(&s.id).await {
                Ok(o) => o,
                Err(e) => return self.record_failure(s, Step::Lost, e.to_string()).await,
            };
            let step = plan(task, observed);
            let started = now_us();
            let result = self.run(&mut s, step).await;
            crash_point(step);
            match result {
                Ok(reported) => match self.record_success(s, step, started, reported).await? {
                    Some(next) => s = next,
                    None => return Ok(()),
                },
                Err(e) => return self.record_failure(s, step, e.to_string()).await,
            }
        }
        Ok(())
    }

    fn service_context(&self, s: &Server) -> RequestContext {
        RequestContext {
            user_id: s.user_id.clone(),
            user_name: "ferrostack-agent".into(),
            user_domain_id: "default".into(),
            user_domain_name: "Default".into(),
            scope: Scope::Project {
                id: s.project_id.clone(),
                name: String::new(),
                domain_id: "default".into(),
                domain_name: "Default".into(),
            },
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            application_credential_id: None,
            unrestricted: false,
            audit_id: String::new(),
        }
    }

    /// Carries out one step against the driver (and the network/image services).
    /// Runs one step on the driver; returns the power state the driver reported
    /// when the step tells one (a spawn), which wins over the planned one.
    async fn run(&self, s: &mut Server, step: Step) -> Result<Option<PowerState>> {
        let d = &self.driver;
        let drv = |e: DriverError| Error::Internal(Box::new(e));
        match step {
            Step::AllocateNetwork => {
                let vifs = self
                    .compute
                    .networks
                    .allocate_for_server(&Allocation {
                        project_id: s.project_id.clone(),
                        server_id: s.id.clone(),
                        host: self.host.clone(),
                        availability_zone: s.availability_zone.clone().unwrap_or_default(),
                        request: s.doc.networks.clone(),
                        security_groups: s.doc.security_groups.clone(),
                    })
                    .await?;
                s.doc.addresses = vifs;
            }
            Step::Spawn => {
                let spec = self.compute.spawn_spec(s).await?;
                let info = d.spawn(&spec).await.map_err(drv)?;
                return Ok(Some(info.power_state));
            }
            Step::Adopt => {}
            Step::Destroy => d.destroy(&s.id).await.map_err(drv)?,
            Step::FinishDelete => self.compute.networks.release_for_server(&s.id).await?,
            Step::PowerOff => d.power_off(&s.id).await.map_err(drv)?,
            Step::PowerOn => d.power_on(&s.id).await.map_err(drv)?,
            Step::Reboot { hard } => d.reboot(&s.id, hard).await.map_err(drv)?,
            Step::Pause => d.pause(&s.id).await.map_err(drv)?,
            Step::Unpause => d.unpause(&s.id).await.map_err(drv)?,
            Step::Suspend => d.suspend(&s.id).await.map_err(drv)?,
            Step::Resume => d.resume(&s.id).await.map_err(drv)?,
            Step::Rebuild => {
                d.destroy(&s.id).await.map_err(drv)?;
                let spec = self.compute.spawn_spec(s).await?;
                d.spawn(&spec).await.map_err(drv)?;
                if s.vm_state == VmState::Stopped {
                    d.power_off(&s.id).await.map_err(drv)?;
                }
            }
            Step::Resize => d
                .resize(&s.id, s.vcpus, s.memory_mb, s.root_gb)
                .await
                .map_err(drv)?,
            Step::RevertResize => d
                .revert_resize(&s.id, s.vcpus, s.memory_mb, s.root_gb)
                .await
                .map_err(drv)?,
            Step::ConfirmResize => d.confirm_resize(&s.id).await.map_err(drv)?,
            Step::Snapshot => self.snapshot(s).await?,
            Step::SetPassword => {
                // A password queued by an older release (changePassword is now
                // carried out while the caller waits).
                if let Some(p) = s.doc.pending.admin_pass.clone() {
                    d.set_admin_password(&s.id, "root", &p).await.map_err(drv)?;
                }
            }
            Step::Lost => {
                return Err(Error::Conflict(format!(
                    "instance {} is not known to the {} hypervisor on {}",
                    s.id,
                    d.name(),
                    self.host
                )));
            }
        }
        Ok(None)
    }

    async fn snapshot(&self, s: &Server) -> Result<()> {
        let Some(image_id) = s.doc.pending.snapshot_image_id.clone() else {
            return Ok(());
        };
        let dir = self
            .compute
            .settings
            .state_dir
            .join("instances")
            .join("_snapshots");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::Internal(Box::new(e)))?;
        let format = self.driver.snapshot_disk_format();
        let ctx = self.service_context(s);
        if format != "raw" {
            // The image was made queued as raw by the API; say what will be uploaded.
            let patch = serde_json::json!([
                {"op": "replace", "path": "/disk_format", "value": format}
            ]);
            match self
                .compute
                .images
                .update(
                    &ctx,
                    &image_id,
                    &patch,
                    ferrostack_image::attrs::PatchFormat::V21,
                )
                .await
            {
                Ok(_) => {}
                Err(ferrostack_image::Error::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        let dest = dir.join(format!("{image_id}.{format}"));
        self.driver
            .snapshot(&SnapshotSpec {
                uuid: s.id.clone(),
                dest: dest.clone(),
                disk_format: format.into(),
            })
            .await
            .map_err(|e| Error::Internal(Box::new(e)))?;
        let file = tokio::fs::File::open(&dest)
            .await
            .map_err(|e| Error::Internal(Box::new(e)))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| Error::Internal(Box::new(e)))?
            .len();
        let stream = tokio_util_stream(file);
        let r = self
            .compute
            .images
            .upload(&ctx, &image_id, stream, Some(len))
            .await;
        let _ = tokio::fs::remove_file(&dest).await;
        match r {
            Ok(()) => {
                // createBackup: drop the backups beyond the rotation (a failed
                // rotation leaves extra backups, never fails the snapshot).
                if let Some(b) = &s.doc.pending.backup_rotation
                    && let Err(e) = self
                        .compute
                        .rotate_backups(&ctx, &s.id, &b.backup_type, b.rotation)
                        .await
                {
                    tracing::warn!(server = %s.id, error = %e, "backup rotation failed");
                }
                Ok(())
            }
            // The user deleted the image meanwhile: nothing left to fill.
            Err(ferrostack_image::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a successful step; returns the server when more steps follow.
    async fn record_success(
        &self,
        mut s: Server,
        step: Step,
        started: i64,
        reported: Option<PowerState>,
    ) -> Result<Option<Server>> {
        let expected = s.generation;
        let (vm, task, planned) = after(step, s.vm_state);
        let power = reported.or(planned);
        let now = now_us();
        if let Some(v) = vm {
            s.vm_state = v;
        }
        s.task_state = task;
        if let Some(p) = power {
            s.power_state = p.code();
        }
        s.attempts = 0;
        s.next_attempt_us = 0;
        s.doc.last_error = None;
        match step {
            Step::Spawn | Step::Adopt => {
                s.launched_at_us = Some(now);
                s.doc.pending.admin_pass = None;
                s.doc.fault = None;
            }
            Step::Rebuild | Step::SetPassword => {
                s.doc.pending.admin_pass = None;
                s.doc.pending.rebuild_image_id = None;
                if step == Step::Rebuild {
                    s.launched_at_us = Some(now);
                }
            }
            Step::Snapshot => {
                s.doc.pending.snapshot_image_id = None;
                s.doc.pending.backup_rotation = None;
            }
            Step::ConfirmResize | Step::RevertResize => {
                // Back to where the resize started (a stopped server stays stopped).
                let back = s.doc.pending.old_vm_state.take().unwrap_or(VmState::Active);
                s.vm_state = back;
                if back == VmState::Stopped {
                    s.power_state = PowerState::Shutdown.code();
                }
                s.doc.old_flavor = None;
            }
            Step::FinishDelete => {
                s.deleted = true;
                s.deleted_at_us = Some(now);
                s.terminated_at_us = Some(now);
                s.doc.addresses.clear();
                s.doc.pending = Default::default();
            }
            _ => {}
        }
        s.updated_at_us = now;
        let finished = s.task_state.is_none();
        let mut tx = self.compute.db.begin_write().await?;
        if !records::update_if(&mut tx, &mut s, expected).await? {
            // The user changed their mind meanwhile; the next pass serves the new intent.
            tx.rollback().await?;
            self.compute.poke();
            return Ok(None);
        }
        if step == Step::FinishDelete {
            crate::server_groups::remove_member(&mut tx, &s.id).await?;
        }
        if finished {
            instance_actions::event(
                &mut tx,
                &instance_actions::EventRecord {
                    server_id: &s.id,
                    request_id: s.doc.pending.request_id.as_deref(),
                    event: event_name(step),
                    host: &self.host,
                    start_us: started,
                    finish_us: now,
                    error: None,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok((!finished).then_some(s))
    }

    async fn record_failure(&self, mut s: Server, step: Step, why: String) -> Result<()> {
        let expected = s.generation;
        let max = i64::from(self.compute.settings.compute.max_attempts.max(1));
        let now = now_us();
        s.attempts += 1;
        let give_up = s.attempts >= max || step == Step::Lost;
        tracing::warn!(server = %s.id, ?step, attempt = s.attempts, give_up, error = %why, "step failed");
        if give_up {
            let building = matches!(
                s.task_state,
                Some(TaskState::Networking | TaskState::Spawning | TaskState::Scheduling)
            );
            let deleting = s.task_state == Some(TaskState::Deleting);
            if building || deleting || step == Step::Lost || step == Step::Rebuild {
                s.vm_state = VmState::Error;
            }
            if step == Step::Lost {
                s.power_state = PowerState::NoState.code();
            }
            s.doc.fault = Some(Fault {
                code: 500,
                message: if building {
                    format!("Build of instance {} aborted: {why}", s.id)
                } else {
                    why.clone()
                },
                details: format!(
                    "{:?} failed {} times on host {}: {why}",
                    step, s.attempts, self.host
                ),
                created_us: now,
            });
            s.task_state = None;
            s.attempts = 0;
            s.next_attempt_us = 0;
            s.doc.pending.admin_pass = None;
        } else {
            let backoff = 500_000i64 << (s.attempts - 1).min(6);
            s.next_attempt_us = now + backoff;
        }
        s.doc.last_error = Some(why.clone());
        s.updated_at_us = now;
        let mut tx = self.compute.db.begin_write().await?;
        if records::update_if(&mut tx, &mut s, expected).await? && give_up {
            instance_actions::event(
                &mut tx,
                &instance_actions::EventRecord {
                    server_id: &s.id,
                    request_id: s.doc.pending.request_id.as_deref(),
                    event: event_name(step),
                    host: &self.host,
                    start_us: now,
                    finish_us: now,
                    error: Some(&why),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A guest stopped on its own: a server at rest that should run becomes
    /// SHUTOFF at once, with a `stop` action whose event says why (Nova records
    /// the same action when its power-state sync stops an instance). A guest the
    /// host's reboot stopped is started again when
    /// `[compute] resume_guests_state_on_host_boot` says so.
    async fn on_guest_event(&self, ev: GuestEvent) -> Result<()> {
        let GuestEvent::Stopped {
            uuid,
            cause,
            detail,
        } = ev;
        let Some(mut s) = ({
            let mut conn = crate::records::acquire(&self.compute.db).await?;
            records::load(&mut conn, &uuid).await?
        }) else {
            return Ok(());
        };
        let at_rest_running = s.task_state.is_none()
            && matches!(
                s.vm_state,
                VmState::Active | VmState::Paused | VmState::Resized
            );
        if s.deleted || s.host.as_deref() != Some(self.host.as_str()) || !at_rest_running {
            // a task in flight finds the guest's state itself
            self.compute.poke();
            return Ok(());
        }
        let expected = s.generation;
        let now = now_us();
        let resume = cause == StopCause::HostRebooted
            && self
                .compute
                .settings
                .compute
                .resume_guests_state_on_host_boot
            && s.vm_state == VmState::Active;
        let action = if resume {
            s.task_state = Some(TaskState::PoweringOn);
            s.attempts = 0;
            s.next_attempt_us = 0;
            "start"
        } else {
            if s.vm_state != VmState::Resized {
                s.vm_state = VmState::Stopped;
            }
            s.power_state = PowerState::Shutdown.code();
            "stop"
        };
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        s.doc.pending.request_id = Some(request_id.clone());
        s.updated_at_us = now;
        let ctx = self.service_context(&s);
        let mut tx = self.compute.db.begin_write().await?;
        if !records::update_if(&mut tx, &mut s, expected).await? {
            tx.rollback().await?;
            self.compute.poke();
            return Ok(());
        }
        instance_actions::start(
            &mut tx,
            &ctx,
            &s.id,
            &s.project_id,
            action,
            &request_id,
            now,
        )
        .await?;
        if !resume {
            let error = (cause != StopCause::GuestShutdown).then_some(detail.as_str());
            instance_actions::event(
                &mut tx,
                &instance_actions::EventRecord {
                    server_id: &s.id,
                    request_id: Some(&request_id),
                    event: "compute_stop_instance",
                    host: &self.host,
                    start_us: now,
                    finish_us: now,
                    error,
                },
            )
            .await?;
        }
        tx.commit().await?;
        tracing::warn!(server = %s.id, ?cause, %detail, action, "guest stopped on its own");
        self.compute.poke();
        Ok(())
    }

    /// Nova's `_sync_power_states`: servers at rest get the hypervisor's power
    /// state; an active server found shut down becomes stopped.
    pub async fn sync_power_states(&self) -> Result<()> {
        let servers = {
            let mut conn = crate::records::acquire(&self.compute.db).await?;
            records::at_rest_on_host(&mut conn, &self.host).await?
        };
        for mut s in servers {
            let observed = match self.observe(&s.id).await {
                Ok(o) => o.unwrap_or(PowerState::NoState),
                Err(_) => continue,
            };
            if observed.code() == s.power_state {
                continue;
            }
            let expected = s.generation;
            s.power_state = observed.code();
            if s.vm_state == VmState::Active
                && matches!(observed, PowerState::Shutdown | PowerState::Crashed)
            {
                s.vm_state = VmState::Stopped;
            }
            s.updated_at_us = now_us();
            let mut tx = self.compute.db.begin_write().await?;
            records::update_if(&mut tx, &mut s, expected).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

fn tokio_util_stream(file: tokio::fs::File) -> ferrostack_image::store::ByteStream {
    Box::pin(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20))
}

#[async_trait]
impl HostLink for Agent {
    async fn console_output(&self, uuid: &str, lines: Option<usize>) -> Result<String> {
        self.driver
            .console_output(uuid, lines)
            .await
            .map_err(|e| match e {
                DriverError::NotFound(m) => Error::NotFound(m),
                other => Error::Internal(Box::new(other)),
            })
    }

    async fn set_admin_password(&self, uuid: &str, user: &str, password: &str) -> Result<()> {
        // Nova's answers: QemuGuestAgentNotEnabled and InstancePasswordSetFailed
        // are 409; a driver that cannot (or an agent that does not answer) is 501.
        self.driver
            .set_admin_password(uuid, user, password)
            .await
            .map_err(|e| match e {
                DriverError::AgentNotEnabled(_) => {
                    Error::Conflict("QEMU guest agent is not enabled".into())
                }
                DriverError::Unsupported(_) | DriverError::AgentUnresponsive { .. } => {
                    tracing::info!(server = %uuid, error = %e, "changePassword not possible");
                    Error::NotImplemented("Unable to set password on instance".into())
                }
                DriverError::NotFound(m) => Error::NotFound(m),
                DriverError::InvalidState { .. } => {
                    Error::Conflict(format!("Cannot 'changePassword' instance {uuid}: {e}"))
                }
                DriverError::Failed { message, .. } => Error::Conflict(format!(
                    "Failed to set admin password on {uuid} because {message}"
                )),
                other => Error::Internal(Box::new(other)),
            })
    }

    async fn ssh_endpoint(&self, uuid: &str) -> Result<std::net::SocketAddr> {
        self.driver.ssh_endpoint(uuid).await.map_err(|e| match e {
            DriverError::NotFound(m) => Error::NotFound(m),
            DriverError::Unsupported(_) => Error::NotImplemented(format!(
                "The {} hypervisor driver makes no SSH forward.",
                self.driver.name()
            )),
            DriverError::InvalidState { .. } => {
                Error::Conflict(format!("Instance {uuid} is not running."))
            }
            other => Error::Internal(Box::new(other)),
        })
    }

    async fn console_endpoint(
        &self,
        uuid: &str,
        kind: ferrostack_virt::ConsoleKind,
    ) -> Result<ferrostack_virt::ConsoleEndpoint> {
        self.driver
            .console_endpoint(uuid, kind)
            .await
            .map_err(|e| match e {
                DriverError::NotFound(m) => Error::NotFound(m),
                DriverError::Unsupported(_) => Error::NotImplemented(format!(
                    "The {} hypervisor driver has no such console.",
                    self.driver.name()
                )),
                DriverError::InvalidState { .. } => {
                    Error::Conflict(format!("Instance {uuid} is not ready."))
                }
                other => Error::Internal(Box::new(other)),
            })
    }

    async fn set_console_password(
        &self,
        uuid: &str,
        password: Option<ferrostack_virt::domain::ConsolePassword>,
    ) -> Result<()> {
        self.driver
            .set_console_password(uuid, password.as_ref())
            .await
            .map_err(|e| match e {
                DriverError::NotFound(m) => Error::NotFound(m),
                DriverError::Unsupported(m) => Error::NotImplemented(m.to_string()),
                other => Error::Internal(Box::new(other)),
            })
    }
}
