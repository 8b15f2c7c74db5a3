//! Server create: Nova's `compute/api.py` job in one place. Resolve and check the
//! flavor, image, key pair, security groups, networks and zone; then one transaction checks the
//! quotas (injected files, metadata items, instances/cores/RAM) and writes the
//! desired state (BUILD/scheduling) of each server plus its `create` action.

use ferrostack_core::RequestContext;
use ferrostack_image::Status as ImageStatus;
use rand::Rng;

use crate::error::{Error, Result};
use crate::instance_actions;
use crate::quotas;
use crate::records::servers as records;
use crate::servers::model::{FlavorSnapshot, Pending, Server, ServerDoc, TaskState, VmState};
use crate::servers::request::CreateRequest;
use crate::service::Compute;

/// What a create made.
#[derive(Debug, Clone)]
pub struct Created {
    pub servers: Vec<Server>,
    pub reservation_id: String,
    /// The admin password, returned once.
    pub admin_pass: Option<String>,
}

/// A password as Nova generates them (`utils.generate_password`, 12 characters
/// without look-alike characters).
pub fn generate_password() -> String {
    const SYMBOLS: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| SYMBOLS[rng.gen_range(0..SYMBOLS.len())] as char)
        .collect()
}

/// A hostname from a display name (Nova's `sanitize_hostname`).
pub fn sanitize_hostname(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
        } else if (c == ' ' || c == '_' || c == '.') && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(63).collect();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "server".to_string()
    } else {
        out
    }
}

pub(crate) fn require_member(ctx: &RequestContext, rule: &str) -> Result<()> {
    if ctx.is_admin() || ctx.has_role("member") {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "Policy doesn't allow {rule} to be performed."
        )))
    }
}

impl Compute {
    /// `POST /servers`.
    pub async fn create_servers(
        &self,
        ctx: &RequestContext,
        req: CreateRequest,
        request_id: &str,
    ) -> Result<Created> {
        require_member(ctx, "os_compute_api:servers:create")?;
        let project_id = ctx
            .project_id()
            .ok_or_else(|| {
                Error::Forbidden(
                    "Servers are created in a project: use a project-scoped token.".into(),
                )
            })?
            .to_string();

        let flavor = match self.flavor_for_server(ctx, &req.flavor_ref).await {
            Ok(f) => f,
            Err(Error::NotFound(_)) => {
                return Err(Error::BadRequest(format!(
                    "Flavor {} could not be found.",
                    req.flavor_ref
                )));
            }
            Err(e) => return Err(e),
        };
        if flavor.disabled {
            return Err(Error::BadRequest("Flavor is disabled.".into()));
        }
        let image_id = req.image_ref.clone().unwrap_or_default();
        let image = match self.images.get(ctx, &image_id).await {
            Ok(i) => i,
            Err(ferrostack_image::Error::NotFound(_))
            | Err(ferrostack_image::Error::Forbidden(_)) => {
                return Err(Error::BadRequest(format!(
                    "Image {image_id} could not be found."
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if image.status != ImageStatus::Active {
            return Err(Error::BadRequest(format!(
                "Image {image_id} is not active."
            )));
        }
        if image.min_ram > flavor.memory_mb {
            return Err(Error::BadRequest(
                "Flavor's memory is too small for requested image.".into(),
            ));
        }
        if flavor.root_gb > 0 {
            if image.min_disk > flavor.root_gb {
                return Err(Error::BadRequest(
                    "Flavor's disk is too small for requested image.".into(),
                ));
            }
            let root_bytes = flavor.root_gb << 30;
            let image_bytes = image.virtual_size.or(image.size).unwrap_or(0);
            if image_bytes > root_bytes {
                return Err(Error::BadRequest(format!(
                    "Flavor's disk is too small for requested image. Flavor disk is {root_bytes} bytes, image is {image_bytes} bytes."
                )));
            }
        }
        let key_data = match &req.key_name {
            Some(name) => match self.keypair_public_key(&ctx.user_id, name).await? {
                Some((public_key, _kind)) => Some(public_key),
                None => return Err(Error::BadRequest("Invalid key_name provided.".into())),
            },
            None => None,
        };
        // Nova checks the security groups before the networks (400 when one is unknown)
        self.networks
            .check_security_groups(ctx, &req.security_groups)
            .await?;
        self.networks
            .check_request(ctx, &req.networks, req.max_count as usize)
            .await?;
        let zone = match &req.availability_zone {
            Some(az) => {
                let az_name = az.split(':').next().unwrap_or(az).to_string();
                if !az_name.is_empty() && !self.zone_exists(&az_name).await? {
                    return Err(Error::BadRequest(
                        "The requested availability zone is not available".to_string(),
                    ));
                }
                (!az_name.is_empty()).then_some(az_name)
            }
            None => None,
        };

        let admin_pass = req.admin_pass.clone().or_else(|| Some(generate_password()));
        let reservation_id = format!("r-{}", &ferrostack_core::ids::new_hex_id()[..8]);
        let snapshot = FlavorSnapshot {
            id: flavor.id.clone(),
            name: flavor.name.clone(),
            vcpus: flavor.vcpus,
            memory_mb: flavor.memory_mb,
            root_gb: flavor.root_gb,
            ephemeral_gb: flavor.ephemeral_gb,
            swap_mb: flavor.swap_mb,
            extra_specs: flavor.extra_specs.clone(),
        };

        let _serial = self.quota_lock.lock().await;
        let mut tx = self.db.begin_write().await?;
        let limits = quotas::limits(&mut tx, &self.settings.quota, &project_id).await?;
        check_injection_quotas(&limits, &req)?;
        let usage = crate::records::quotas::usage(&mut tx, &project_id).await?;
        let count = allowed_count(
            &limits,
            &usage,
            &flavor_resources(&snapshot),
            req.min_count,
            req.max_count,
        )?;

        let now = now_us();
        let mut made = Vec::new();
        for i in 0..count {
            let name = if count > 1 {
                format!("{}-{}", req.name, i + 1)
            } else {
                req.name.clone()
            };
            let hostname = req
                .hostname
                .clone()
                .unwrap_or_else(|| sanitize_hostname(&name));
            let server = Server {
                id: ferrostack_core::ids::new_uuid(),
                project_id: project_id.clone(),
                user_id: ctx.user_id.clone(),
                name,
                vm_state: VmState::Building,
                task_state: Some(TaskState::Scheduling),
                power_state: 0,
                host: None,
                availability_zone: zone.clone(),
                flavor_id: flavor.id.clone(),
                image_ref: image_id.clone(),
                vcpus: snapshot.vcpus,
                memory_mb: snapshot.memory_mb,
                root_gb: snapshot.root_gb,
                ephemeral_gb: snapshot.ephemeral_gb,
                locked: false,
                reservation_id: reservation_id.clone(),
                launch_index: i,
                generation: 1,
                attempts: 0,
                next_attempt_us: 0,
                created_at_us: now,
                updated_at_us: now,
                launched_at_us: None,
                terminated_at_us: None,
                deleted: false,
                deleted_at_us: None,
                doc: ServerDoc {
                    flavor: snapshot.clone(),
                    old_flavor: None,
                    image_properties: image.properties.clone(),
                    metadata: req.metadata.clone(),
                    tags: req.tags.clone(),
                    description: req.description.clone(),
                    hostname,
                    key_name: req.key_name.clone(),
                    key_data: key_data.clone(),
                    personality: req.personality.clone(),
                    user_data: req.user_data.clone(),
                    config_drive: req.config_drive,
                    networks: req.networks.clone(),
                    security_groups: req.security_groups.clone(),
                    addresses: Vec::new(),
                    fault: None,
                    access_ipv4: req.access_ipv4.clone(),
                    access_ipv6: req.access_ipv6.clone(),
                    locked_reason: None,
                    locked_by: None,
                    requested_az: zone.clone(),
                    pending: Pending {
                        admin_pass: admin_pass.clone(),
                        request_id: Some(request_id.to_string()),
                        ..Pending::default()
                    },
                    password: None,
                    scheduler_hints: req.scheduler_hints.clone(),
                    last_error: None,
                },
            };
            records::insert(&mut tx, &server).await?;
            if let Some(group) = server_group_hint(&server) {
                match crate::records::groups::load(&mut tx, &group).await? {
                    Some(g) if g.project_id == project_id || ctx.is_admin() => {}
                    _ => {
                        return Err(Error::BadRequest(format!(
                            "Invalid input for field/attribute group. Server group {group} could not be found."
                        )));
                    }
                }
                crate::server_groups::add_member(
                    &mut tx,
                    &group,
                    &server.id,
                    limits.server_group_members,
                )
                .await?;
            }
            instance_actions::start(
                &mut tx,
                ctx,
                &server.id,
                &project_id,
                "create",
                request_id,
                now,
            )
            .await?;
            made.push(server);
        }
        tx.commit().await?;
        drop(_serial);
        self.poke();
        Ok(Created {
            servers: made,
            reservation_id,
            admin_pass,
        })
    }

    async fn zone_exists(&self, zone: &str) -> Result<bool> {
        if zone == self.settings.compute.availability_zone {
            return Ok(true);
        }
        let mut conn = crate::records::acquire(&self.db).await?;
        crate::records::hosts::zone_has_hosts(&mut conn, zone).await
    }
}

/// The server group a server was created into (`os:scheduler_hints.group`).
pub fn server_group_hint(s: &Server) -> Option<String> {
    s.doc
        .scheduler_hints
        .get("group")
        .and_then(|g| g.as_str())
        .map(str::to_string)
}

pub(crate) use ferrostack_core::time::now_us;

/// Resources one server of a flavor takes: (instances, cores, ram).
pub(crate) fn flavor_resources(f: &FlavorSnapshot) -> (i64, i64, i64) {
    (1, f.vcpus, f.memory_mb)
}

/// Nova's injected-file and metadata checks (403 with its messages).
pub(crate) fn check_injection_quotas(
    limits: &quotas::QuotaLimits,
    req: &CreateRequest,
) -> Result<()> {
    check_metadata_quota(limits, req.metadata.len())?;
    check_personality_quota(limits, &req.personality)
}

pub(crate) fn check_metadata_quota(limits: &quotas::QuotaLimits, items: usize) -> Result<()> {
    if limits.metadata_items >= 0 && items as i64 > limits.metadata_items {
        return Err(Error::Forbidden(format!(
            "Maximum number of metadata items exceeds {}",
            limits.metadata_items
        )));
    }
    Ok(())
}

pub(crate) fn check_personality_quota(
    limits: &quotas::QuotaLimits,
    files: &[crate::servers::model::Personality],
) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    if limits.injected_files >= 0 && files.len() as i64 > limits.injected_files {
        return Err(Error::Forbidden("Personality file limit exceeded".into()));
    }
    let longest_path = files.iter().map(|f| f.path.len()).max().unwrap_or(0) as i64;
    if limits.injected_file_path_bytes >= 0 && longest_path > limits.injected_file_path_bytes {
        return Err(Error::Forbidden(format!(
            "Personality file path exceeds maximum {}",
            limits.injected_file_path_bytes
        )));
    }
    // Measured on the base64 text, as Nova does.
    let longest = files.iter().map(|f| f.contents.len()).max().unwrap_or(0) as i64;
    if limits.injected_file_content_bytes >= 0 && longest > limits.injected_file_content_bytes {
        return Err(Error::Forbidden(format!(
            "Personality file content exceeds maximum {}",
            limits.injected_file_content_bytes
        )));
    }
    Ok(())
}

/// How many servers fit (Nova builds as many as allowed between min and max).
pub(crate) fn allowed_count(
    limits: &quotas::QuotaLimits,
    usage: &quotas::Usage,
    per_server: &(i64, i64, i64),
    min_count: i64,
    max_count: i64,
) -> Result<i64> {
    let checks = [
        ("instances", limits.instances, usage.instances, per_server.0),
        ("cores", limits.cores, usage.cores, per_server.1),
        ("ram", limits.ram, usage.ram, per_server.2),
    ];
    let mut fit = max_count;
    for (_, limit, used, each) in checks {
        if limit >= 0 && each > 0 {
            fit = fit.min((limit - used).max(0) / each);
        }
    }
    if fit >= min_count {
        return Ok(fit);
    }
    let overs: Vec<&str> = checks
        .iter()
        .filter(|(_, limit, used, each)| *limit >= 0 && used + each * min_count > *limit)
        .map(|(n, ..)| *n)
        .collect();
    let (name, limit, used, each) = checks
        .iter()
        .find(|(n, ..)| overs.first() == Some(n))
        .copied()
        .unwrap_or(checks[0]);
    Err(Error::Forbidden(format!(
        "Quota exceeded for {name}: Requested {}, but already used {used} of {limit} {name}",
        each * min_count
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quotas::{QuotaLimits, Usage};

    fn limits() -> QuotaLimits {
        QuotaLimits::defaults(&ferrostack_core::config::QuotaConfig::default())
    }

    #[test]
    fn quota_allows_as_many_as_fit_between_min_and_max() {
        let l = limits();
        let used = Usage {
            instances: 8,
            cores: 8,
            ram: 4096,
        };
        assert_eq!(allowed_count(&l, &used, &(1, 1, 512), 1, 5).unwrap(), 2);
        let e = allowed_count(&l, &used, &(1, 1, 512), 3, 5).unwrap_err();
        assert!(
            matches!(e, Error::Forbidden(m) if m.starts_with("Quota exceeded for instances: Requested 3, but already used 8 of 10 instances"))
        );
        let e = allowed_count(&l, &Usage::default(), &(1, 64, 512), 1, 1).unwrap_err();
        assert!(matches!(e, Error::Forbidden(m) if m.contains("cores")));
    }

    #[test]
    fn personality_limits_count_path_and_base64_length() {
        use crate::servers::model::Personality;
        let l = limits();
        let f = |p: &str, c: usize| Personality {
            path: p.into(),
            contents: "A".repeat(c),
        };
        assert!(check_personality_quota(&l, &[f("/a", 4)]).is_ok());
        let six: Vec<_> = (0..6).map(|i| f(&format!("/{i}"), 4)).collect();
        assert!(
            matches!(check_personality_quota(&l, &six), Err(Error::Forbidden(m)) if m == "Personality file limit exceeded")
        );
        assert!(
            matches!(check_personality_quota(&l, &[f(&"p".repeat(256), 4)]), Err(Error::Forbidden(m)) if m == "Personality file path exceeds maximum 255")
        );
        assert!(
            matches!(check_personality_quota(&l, &[f("/a", 10241)]), Err(Error::Forbidden(m)) if m == "Personality file content exceeds maximum 10240")
        );
        assert!(check_metadata_quota(&l, 129).is_err());
        assert!(check_metadata_quota(&l, 128).is_ok());
    }

    #[test]
    fn hostnames_are_sanitized_display_names() {
        assert_eq!(sanitize_hostname("My Server_1"), "my-server-1");
        assert_eq!(sanitize_hostname("---"), "server");
        assert_eq!(sanitize_hostname("a.b"), "a-b");
        assert_eq!(generate_password().len(), 12);
    }
}
