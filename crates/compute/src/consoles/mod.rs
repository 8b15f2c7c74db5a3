//! Remote consoles: the console types a server offers, tokens (Nova's
//! `console_auth_tokens`, kept as sha256 only, multi-use until they expire), the
//! check a console proxy makes at every connect, and revocation (server deleted,
//! rebuilt, console password changed).
//!
//! A token is bound to its server and to where the server's console was when the
//! token was made; [`Compute::console_connect`] asks the host again where the
//! console is now, so a token never reaches a console that moved (a restart that
//! picked a new port, another guest on a reused port).

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use ferrostack_core::RequestContext;
use ferrostack_virt::{ConsoleEndpoint, ConsoleKind, ConsoleTarget};

use crate::error::{Error, Result};
use crate::records::consoles::{self as records, TokenRow};
use crate::servers::create::{now_us, require_member};
use crate::servers::model::{Server, VmState};
use crate::service::Compute;

const POLICY: &str = "os_compute_api:os-remote-consoles";
const AUTH_TOKENS_POLICY: &str = "os_compute_api:os-console-auth-tokens";

/// A console type as the API names it (`remote_console.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleType {
    Novnc,
    SpiceHtml5,
    /// Microversion 2.99: a token for a SPICE client that connects through an
    /// external proxy, which redeems it with `os-console-auth-tokens`.
    SpiceDirect,
    Serial,
}

impl ConsoleType {
    pub fn parse(s: &str) -> Option<ConsoleType> {
        Some(match s {
            "novnc" => ConsoleType::Novnc,
            "spice-html5" => ConsoleType::SpiceHtml5,
            "spice-direct" => ConsoleType::SpiceDirect,
            "serial" => ConsoleType::Serial,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleType::Novnc => "novnc",
            ConsoleType::SpiceHtml5 => "spice-html5",
            ConsoleType::SpiceDirect => "spice-direct",
            ConsoleType::Serial => "serial",
        }
    }

    /// The protocol this type belongs to (`remote_console.protocol`).
    pub fn protocol(self) -> &'static str {
        match self {
            ConsoleType::Novnc => "vnc",
            ConsoleType::SpiceHtml5 | ConsoleType::SpiceDirect => "spice",
            ConsoleType::Serial => "serial",
        }
    }

    pub fn kind(self) -> ConsoleKind {
        match self {
            ConsoleType::Novnc => ConsoleKind::Vnc,
            ConsoleType::SpiceHtml5 | ConsoleType::SpiceDirect => ConsoleKind::Spice,
            ConsoleType::Serial => ConsoleKind::Serial,
        }
    }
}

/// `[vnc]`, `[spice]`, `[serial_console]` and `[consoleauth]` as compute uses them
/// (base URLs already resolved against the proxy's listener).
#[derive(Debug, Clone, Default)]
pub struct ConsoleSettings {
    pub vnc_enabled: bool,
    pub spice_enabled: bool,
    pub serial_enabled: bool,
    pub novnc_base_url: String,
    pub spice_html5_base_url: String,
    pub spice_direct_base_url: String,
    pub serial_base_url: String,
    /// Seconds a token lives.
    pub token_ttl: u64,
}

impl ConsoleSettings {
    fn enabled(&self, t: ConsoleType) -> bool {
        match t.kind() {
            ConsoleKind::Vnc => self.vnc_enabled,
            ConsoleKind::Spice => self.spice_enabled,
            ConsoleKind::Serial => self.serial_enabled,
        }
    }

    fn base_url(&self, t: ConsoleType) -> &str {
        match t {
            ConsoleType::Novnc => &self.novnc_base_url,
            ConsoleType::SpiceHtml5 => &self.spice_html5_base_url,
            ConsoleType::SpiceDirect => &self.spice_direct_base_url,
            ConsoleType::Serial => &self.serial_base_url,
        }
    }
}

/// What `remote-consoles` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUrl {
    pub console_type: ConsoleType,
    pub url: String,
}

/// A checked token, as a console proxy gets it: the console to connect to now.
#[derive(Debug, Clone)]
pub struct ConsoleGrant {
    pub token_hash: String,
    pub instance_uuid: String,
    pub console_type: ConsoleType,
    pub endpoint: ConsoleEndpoint,
    /// The scheme and host the browser page must come from (Origin check).
    pub access_url_base: String,
    pub expires_us: i64,
}

/// `GET /os-console-auth-tokens/{token}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleAuthInfo {
    pub instance_uuid: String,
    pub host: String,
    pub port: Option<i64>,
    pub tls_port: Option<i64>,
    pub internal_access_path: Option<String>,
    pub console_type: ConsoleType,
}

/// The sha256 (hex) a token is stored and looked up by.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn invalid_token() -> Error {
    Error::NotFound("The token is invalid or has expired.".into())
}

fn not_ready(id: &str) -> Error {
    Error::Conflict(format!("Instance {id} is not ready."))
}

/// `url` with `extra` (`name=value`) added to its query.
fn with_query(url: &str, extra: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{extra}")
}

impl Compute {
    /// `POST /servers/{id}/remote-consoles` and the legacy `os-get*Console`
    /// actions: a new token and the URL that carries it.
    pub async fn create_console(
        &self,
        ctx: &RequestContext,
        id: &str,
        protocol: &str,
        console_type: &str,
    ) -> Result<ConsoleUrl> {
        let s = self.get_server(ctx, id).await?;
        require_member(ctx, POLICY)?;
        let t = ConsoleType::parse(console_type)
            .filter(|t| t.protocol() == protocol)
            .ok_or_else(|| Error::BadRequest(format!("Invalid console type {console_type}")))?;
        let cfg = &self.settings.consoles;
        if !cfg.enabled(t) {
            return Err(Error::BadRequest(format!(
                "Unavailable console type {console_type}."
            )));
        }
        if s.vm_state != VmState::Active || s.host.is_none() {
            return Err(not_ready(id));
        }
        let host = s.host.clone().unwrap_or_default();
        let endpoint = self.live_endpoint(&s, t).await?;
        if t == ConsoleType::SpiceDirect && !matches!(endpoint.target, ConsoleTarget::Tcp { .. }) {
            // a direct SPICE client needs a TCP port ([spice] server_listen = unix has none)
            return Err(Error::BadRequest(format!(
                "Unavailable console type {console_type}."
            )));
        }
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let base = cfg.base_url(t).to_string();
        let now = now_us();
        let ttl = i64::try_from(cfg.token_ttl.max(1)).unwrap_or(i64::MAX / 2_000_000);
        let (address, port, path) = target_columns(&endpoint.target);
        let row = TokenRow {
            token_hash: token_hash(&token),
            instance_uuid: s.id.clone(),
            console_type: t.as_str().into(),
            host,
            address,
            port,
            internal_access_path: path,
            access_url_base: base.clone(),
            created_at_us: now,
            expires_us: now.saturating_add(ttl.saturating_mul(1_000_000)),
        };
        let mut tx = self.db.begin_write().await?;
        records::delete_expired(&mut tx, now).await?;
        records::insert(&mut tx, &row).await?;
        tx.commit().await?;
        tracing::info!(server = %s.id, console_type = t.as_str(), "console token issued");
        let url = match t {
            // noVNC reads the websocket's path (with the token) from `path`
            ConsoleType::Novnc => with_query(&base, &format!("path=%3Ftoken%3D{token}")),
            _ => with_query(&base, &format!("token={token}")),
        };
        Ok(ConsoleUrl {
            console_type: t,
            url,
        })
    }

    /// What a console proxy calls at every connect: the token must exist and be
    /// unexpired, its server active, and the server's console still where the
    /// token was made for.
    pub async fn console_connect(&self, token: &str) -> Result<ConsoleGrant> {
        let hash = token_hash(token);
        let row = {
            let mut conn = crate::records::acquire(&self.db).await?;
            records::live(&mut conn, &hash, now_us()).await?
        }
        .ok_or_else(invalid_token)?;
        let t = ConsoleType::parse(&row.console_type).ok_or_else(invalid_token)?;
        let s = {
            let mut conn = crate::records::acquire(&self.db).await?;
            crate::records::servers::load(&mut conn, &row.instance_uuid).await?
        }
        .filter(|s| !s.deleted && s.vm_state == VmState::Active)
        .ok_or_else(invalid_token)?;
        let endpoint = self.live_endpoint(&s, t).await.map_err(|e| {
            tracing::info!(server = %s.id, error = %e, "console token refused: console not reachable");
            invalid_token()
        })?;
        if target_columns(&endpoint.target)
            != (
                row.address.clone(),
                row.port,
                row.internal_access_path.clone(),
            )
            || s.host.as_deref() != Some(row.host.as_str())
        {
            tracing::warn!(server = %s.id, "console token refused: the console moved since it was issued");
            return Err(invalid_token());
        }
        Ok(ConsoleGrant {
            token_hash: hash,
            instance_uuid: s.id,
            console_type: t,
            endpoint,
            access_url_base: row.access_url_base,
            expires_us: row.expires_us,
        })
    }

    /// Whether a token (by hash) is still good: an open session asks this when
    /// told of revocations and every few seconds.
    pub async fn console_token_live(&self, token_hash: &str) -> Result<bool> {
        let mut conn = crate::records::acquire(&self.db).await?;
        Ok(records::live(&mut conn, token_hash, now_us())
            .await?
            .is_some())
    }

    /// Changes whenever this process revokes console tokens.
    pub fn console_revocations(&self) -> watch::Receiver<u64> {
        self.console_revoked.subscribe()
    }

    /// `GET /os-console-auth-tokens/{token}` (admins): where the token leads.
    pub async fn console_auth_token(
        &self,
        ctx: &RequestContext,
        token: &str,
    ) -> Result<ConsoleAuthInfo> {
        crate::rules::admin(ctx, AUTH_TOKENS_POLICY)?;
        let row = {
            let mut conn = crate::records::acquire(&self.db).await?;
            records::live(&mut conn, &token_hash(token), now_us()).await?
        }
        .ok_or_else(invalid_token)?;
        let console_type = ConsoleType::parse(&row.console_type).ok_or_else(invalid_token)?;
        Ok(ConsoleAuthInfo {
            instance_uuid: row.instance_uuid,
            host: row.address.unwrap_or(row.host),
            port: row.port,
            tls_port: None,
            internal_access_path: row.internal_access_path,
            console_type,
        })
    }

    /// Ends every console token (and so every open session) of a server.
    pub(crate) async fn revoke_consoles(&self, id: &str) -> Result<()> {
        let n = {
            let mut tx = self.db.begin_write().await?;
            let n = records::delete_for_instance(&mut tx, id).await?;
            tx.commit().await?;
            n
        };
        if n > 0 {
            tracing::info!(server = %id, tokens = n, "console tokens revoked");
        }
        self.console_revoked.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// The server's `spice_passwd` changed: the guest's consoles take the new
    /// password now (no reboot) and the tokens made under the old one end.
    pub(crate) async fn console_password_changed(&self, s: &Server) -> Result<()> {
        self.revoke_consoles(&s.id).await?;
        let Some(link) = s.host.as_deref().and_then(|h| self.link(h)) else {
            return Ok(());
        };
        let password = ferrostack_virt::domain::spice_password_from_metadata(&s.doc.metadata);
        if let Err(e) = link.set_console_password(&s.id, password).await {
            // the desired state is in the metadata; the next start applies it
            tracing::warn!(server = %s.id, error = %e, "console password not changed on the running guest");
        }
        Ok(())
    }

    async fn live_endpoint(&self, s: &Server, t: ConsoleType) -> Result<ConsoleEndpoint> {
        let link = self.link_of(s)?;
        link.console_endpoint(&s.id, t.kind()).await
    }
}

/// The columns a console target is stored in: (address, port, unix path).
fn target_columns(t: &ConsoleTarget) -> (Option<String>, Option<i64>, Option<String>) {
    match t {
        ConsoleTarget::Unix(p) => (None, None, Some(p.to_string_lossy().into_owned())),
        ConsoleTarget::Tcp { host, port } => (Some(host.clone()), Some(i64::from(*port)), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_protocols_pair_up() {
        for (ty, proto) in [
            ("novnc", "vnc"),
            ("spice-html5", "spice"),
            ("spice-direct", "spice"),
            ("serial", "serial"),
        ] {
            let t = ConsoleType::parse(ty).unwrap();
            assert_eq!(t.as_str(), ty);
            assert_eq!(t.protocol(), proto);
        }
        assert_eq!(ConsoleType::parse("xvpvnc"), None);
    }

    #[test]
    fn tokens_are_stored_as_sha256() {
        let h = token_hash("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn urls_carry_the_token_where_each_client_reads_it() {
        assert_eq!(
            with_query("http://h:6080/vnc_auto.html", "path=%3Ftoken%3Dt"),
            "http://h:6080/vnc_auto.html?path=%3Ftoken%3Dt"
        );
        assert_eq!(
            with_query("http://h/x?a=1", "token=t"),
            "http://h/x?a=1&token=t"
        );
    }
}
