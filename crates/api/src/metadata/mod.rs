//! The metadata service guests reach at 169.254.169.254 (nova-api-metadata's
//! job): the OpenStack tree (`/openstack/<version>/meta_data.json`,
//! `network_data.json`, `vendor_data*.json`, `user_data`, `password`) and the
//! EC2 tree (`/<version>/meta-data/...`, `user-data`, IMDSv2 tokens), answered
//! from the same documents as the config drive (`ferrostack_guest::metadata`
//! over `Compute::guest_data`).
//!
//! Who is asking is decided by the connection alone: `resolve` maps the TCP
//! peer to the instance whose QEMU made the connection (see
//! `ferrostack_virt::metadata_route`). A request that carries
//! `X-Forwarded-For` is refused (AWS's IMDS does the same), and no header or
//! address the guest sends is ever read to decide whose data it gets.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::Value;

use ferrostack_compute::Compute;
use ferrostack_ec2::Ec2;
use ferrostack_virt::guest::GuestData;
use ferrostack_virt::guest::metadata::{
    OPENSTACK_VERSIONS, ec2_meta_data, meta_data, network_data, vendor_data, vendor_data2,
};

/// Maps a connection's peer to the instance uuid behind it (blocking).
pub type Resolver = Arc<dyn Fn(SocketAddr) -> Option<String> + Send + Sync>;

/// The EC2 metadata versions served (Nova's list); `latest` is the newest.
pub const EC2_VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
];

#[derive(Clone)]
pub struct MetadataService {
    compute: Arc<Compute>,
    ec2: Arc<Ec2>,
    resolve: Resolver,
    dhcp_domain: Option<String>,
    tokens: Arc<Tokens>,
    max_token_ttl: u32,
}

impl MetadataService {
    pub fn new(
        compute: Arc<Compute>,
        ec2: Arc<Ec2>,
        resolve: Resolver,
        dhcp_domain: Option<String>,
        max_token_ttl: u32,
    ) -> MetadataService {
        MetadataService {
            compute,
            ec2,
            resolve,
            dhcp_domain,
            tokens: Arc::new(Tokens::new()),
            max_token_ttl,
        }
    }
}

/// IMDSv2 tokens: the expiry and an HMAC over (instance, expiry) with a key
/// made at every start — a token names its instance, dies at its expiry and
/// with the process, and needs no storage.
struct Tokens {
    key: [u8; 32],
}

impl Tokens {
    fn new() -> Tokens {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Tokens { key }
    }

    fn mac(&self, uuid: &str, expires: u64) -> Vec<u8> {
        use hmac::Mac;
        let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        m.update(uuid.as_bytes());
        m.update(&expires.to_be_bytes());
        m.finalize().into_bytes().to_vec()
    }

    fn issue(&self, uuid: &str, ttl: u32, now: u64) -> String {
        let expires = now + u64::from(ttl);
        let mut raw = expires.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.mac(uuid, expires));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    fn valid(&self, uuid: &str, token: &str, now: u64) -> bool {
        use subtle::ConstantTimeEq;
        let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim()) else {
            return false;
        };
        if raw.len() != 40 {
            return false;
        }
        let expires = u64::from_be_bytes(raw[..8].try_into().unwrap_or_default());
        expires > now && bool::from(raw[8..].ct_eq(&self.mac(uuid, expires)))
    }
}

fn now() -> u64 {
    u64::try_from(ferrostack_core::time::unix_now()).unwrap_or(0)
}

pub fn router(service: MetadataService) -> Router {
    Router::new().fallback(handle).with_state(service)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    r
}

fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "404 Not Found\n\nThe resource could not be found.\n",
    )
}

fn json(v: &Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn bytes(b: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, b).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r
}

async fn handle(
    State(svc): State<MetadataService>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.contains_key("x-forwarded-for") {
        return text(
            StatusCode::FORBIDDEN,
            "X-Forwarded-For is not accepted here.\n",
        );
    }
    let resolve = svc.resolve.clone();
    let uuid = match tokio::task::spawn_blocking(move || resolve(peer)).await {
        Ok(Some(u)) => u,
        _ => {
            tracing::info!(%peer, "metadata request from no known guest");
            return not_found();
        }
    };
    let path = uri.path().trim_start_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();

    // IMDSv2: PUT /latest/api/token.
    if parts.len() == 3 && parts[1] == "api" && parts[2] == "token" {
        if method != Method::PUT {
            return text(StatusCode::METHOD_NOT_ALLOWED, "");
        }
        let ttl = headers
            .get("x-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|t| (1..=svc.max_token_ttl).contains(t));
        let Some(ttl) = ttl else {
            return text(StatusCode::BAD_REQUEST, "");
        };
        let mut r = text(StatusCode::OK, svc.tokens.issue(&uuid, ttl, now()));
        if let Ok(v) = HeaderValue::from_str(&ttl.to_string()) {
            r.headers_mut()
                .insert("x-aws-ec2-metadata-token-ttl-seconds", v);
        }
        return r;
    }
    let token_sent = headers
        .get("x-aws-ec2-metadata-token")
        .and_then(|v| v.to_str().ok());
    match token_sent {
        Some(t) if !svc.tokens.valid(&uuid, t, now()) => return text(StatusCode::UNAUTHORIZED, ""),
        Some(_) => {}
        None => match svc.ec2.metadata_tokens_required(&uuid).await {
            Ok(false) => {}
            Ok(true) => return text(StatusCode::UNAUTHORIZED, ""),
            Err(e) => {
                tracing::error!(error = %e, "metadata: cannot read the instance's options");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "");
            }
        },
    }
    let post_password = method == Method::POST
        && parts.len() == 3
        && parts[0] == "openstack"
        && parts[2] == "password";
    if !(method == Method::GET || method == Method::HEAD || post_password) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    if post_password {
        let pw = String::from_utf8_lossy(&body).to_string();
        return match svc.compute.guest_posts_password(&uuid, &pw).await {
            Ok(()) => text(StatusCode::OK, ""),
            Err(ferrostack_compute::Error::Conflict(_)) => text(StatusCode::CONFLICT, ""),
            Err(ferrostack_compute::Error::BadRequest(_)) => text(StatusCode::BAD_REQUEST, ""),
            Err(e) => {
                tracing::error!(error = %e, "metadata: cannot keep the guest's password");
                text(StatusCode::INTERNAL_SERVER_ERROR, "")
            }
        };
    }
    let guest = match svc.compute.guest_data(&uuid, svc.dhcp_domain.clone()).await {
        Ok(Some(g)) => g,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, server = %uuid, "metadata: cannot build the guest's data");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "");
        }
    };
    match parts.first().copied() {
        None => text(
            StatusCode::OK,
            EC2_VERSIONS
                .iter()
                .copied()
                .chain(["latest"])
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Some("openstack") => openstack(&svc, &guest, &uuid, &parts[1..]).await,
        Some(v) if v == "latest" || EC2_VERSIONS.contains(&v) => ec2(&guest, v, &parts[1..]),
        Some(_) => not_found(),
    }
}

async fn openstack(svc: &MetadataService, g: &GuestData, uuid: &str, parts: &[&str]) -> Response {
    let Some(version) = parts.first().copied() else {
        return text(
            StatusCode::OK,
            OPENSTACK_VERSIONS
                .iter()
                .copied()
                .chain(["latest"])
                .collect::<Vec<_>>()
                .join("\n"),
        );
    };
    if version != "latest" && !OPENSTACK_VERSIONS.contains(&version) {
        return not_found();
    }
    match parts.get(1).copied() {
        None => {
            let mut items = vec!["meta_data.json", "password", "vendor_data.json"];
            if g.user_data.is_some() {
                items.push("user_data");
            }
            if network_data(g, version).is_some() {
                items.push("network_data.json");
            }
            if vendor_data2(g, version).is_some() {
                items.push("vendor_data2.json");
            }
            text(StatusCode::OK, items.join("\n"))
        }
        Some(_) if parts.len() > 2 => not_found(),
        Some("meta_data.json") => json(&meta_data(g, version, false)),
        Some("user_data") => match &g.user_data {
            Some(u) => bytes(u.clone()),
            None => not_found(),
        },
        Some("vendor_data.json") => {
            json(&vendor_data(g, version).unwrap_or(Value::Object(Default::default())))
        }
        Some("vendor_data2.json") => match vendor_data2(g, version) {
            Some(v) => json(&v),
            None => not_found(),
        },
        Some("network_data.json") => match network_data(g, version) {
            Some(v) => json(&v),
            None => not_found(),
        },
        Some("password") => match svc.compute.guest_password(uuid).await {
            Ok(p) => text(StatusCode::OK, p),
            Err(e) => {
                tracing::error!(error = %e, "metadata: cannot read the password");
                text(StatusCode::INTERNAL_SERVER_ERROR, "")
            }
        },
        Some(_) => not_found(),
    }
}

/// The EC2 tree: `/<v>/` lists `meta-data/` and `user-data`; `meta-data` is a
/// directory tree (objects list their keys, sub-directories with a trailing
/// `/`; `public-keys` lists `N=name`).
fn ec2(g: &GuestData, version: &str, parts: &[&str]) -> Response {
    match parts.first().copied() {
        None => {
            let mut items = vec!["meta-data/"];
            if g.user_data.is_some() {
                items.push("user-data");
            }
            text(StatusCode::OK, items.join("\n"))
        }
        Some("user-data") if parts.len() == 1 => match &g.user_data {
            Some(u) => bytes(u.clone()),
            None => not_found(),
        },
        Some("meta-data") => {
            let tree = ec2_meta_data(g, version);
            let mut node = &tree;
            for p in &parts[1..] {
                match node.get(*p) {
                    Some(n) => node = n,
                    None => return not_found(),
                }
            }
            match node {
                Value::Object(m) => {
                    let listing: Vec<String> = if parts.get(1) == Some(&"public-keys")
                        && parts.len() == 2
                    {
                        m.keys()
                            .map(|k| {
                                let i: usize = k.parse().unwrap_or(0);
                                let name = g.keys.get(i).map(|key| key.name.as_str()).unwrap_or("");
                                format!("{k}={name}")
                            })
                            .collect()
                    } else {
                        m.iter()
                            .map(|(k, v)| {
                                if v.is_object() {
                                    format!("{k}/")
                                } else {
                                    k.clone()
                                }
                            })
                            .collect()
                    };
                    text(StatusCode::OK, listing.join("\n"))
                }
                Value::Array(a) => text(
                    StatusCode::OK,
                    a.iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                Value::String(s) => text(StatusCode::OK, s.clone()),
                Value::Null => text(StatusCode::OK, ""),
                other => text(StatusCode::OK, other.to_string()),
            }
        }
        Some(_) => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imdsv2_tokens_name_their_instance_and_expire() {
        let t = Tokens::new();
        let tok = t.issue("vm-a", 60, 1_000);
        assert!(t.valid("vm-a", &tok, 1_000));
        assert!(t.valid("vm-a", &tok, 1_059));
        assert!(!t.valid("vm-a", &tok, 1_060), "expired");
        assert!(!t.valid("vm-b", &tok, 1_000), "another instance's token");
        assert!(
            !Tokens::new().valid("vm-a", &tok, 1_000),
            "another process's token"
        );
        let mut forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&tok)
            .unwrap();
        forged[..8].copy_from_slice(&(u64::MAX).to_be_bytes());
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
        assert!(
            !t.valid("vm-a", &forged, 1_000),
            "a longer life is not signed"
        );
        assert!(!t.valid("vm-a", "garbage", 1_000));
    }
}
