//! `ferrostack ssh [--os-cloud NAME] [USER@]SERVER [ssh args...]`: logs into a
//! guest as an ordinary OpenStack client would find it. It reads the same
//! credentials the `openstack` CLI reads (`clouds.yaml` by `--os-cloud`/`OS_CLOUD`,
//! else the `OS_*` variables of an rc file), authenticates to Keystone, finds the
//! server by id or exact name through Nova with the user's own token (anyone who
//! may see the server; no admin needed), asks where its SSH is forwarded
//! (`GET /servers/{id}/x-ferrostack-ssh`) and replaces itself with `ssh`.
//!
//! Host keys are remembered per server (`HostKeyAlias=ferrostack-<id>`, first use
//! accepted), so guests that share a loopback port over time never trip ssh's
//! "host identification has changed".

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{Value, json};

/// `ssh` options that take a value (OpenSSH 9's usage line).
const SSH_VALUE_FLAGS: &str = "BbcDEeFIiJLlmOoPpQRSWw";

/// The command-line pieces: ssh options (before the destination) and the remote
/// command (after it).
fn split_ssh_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return (opts, args[i + 1..].to_vec());
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        opts.push(a.clone());
        // a cluster like -vA, or -p2222, or -p 2222
        for (pos, ch) in a.char_indices().skip(1) {
            if SSH_VALUE_FLAGS.contains(ch) {
                if pos + ch.len_utf8() == a.len() && i + 1 < args.len() {
                    i += 1;
                    opts.push(args[i].clone());
                }
                break;
            }
        }
        i += 1;
    }
    (opts, args[i..].to_vec())
}

/// What to authenticate with.
#[derive(Debug, Default, Clone, Deserialize)]
struct Auth {
    auth_url: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
    password: Option<String>,
    project_name: Option<String>,
    project_id: Option<String>,
    user_domain_name: Option<String>,
    user_domain_id: Option<String>,
    project_domain_name: Option<String>,
    project_domain_id: Option<String>,
    application_credential_id: Option<String>,
    application_credential_secret: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct Cloud {
    #[serde(default)]
    auth: Auth,
    region_name: Option<String>,
    interface: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CloudsFile {
    clouds: BTreeMap<String, Cloud>,
}

/// Where openstacksdk looks for `clouds.yaml`, in its order.
fn clouds_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(f) = std::env::var("OS_CLIENT_CONFIG_FILE") {
        v.push(PathBuf::from(f));
    }
    v.push(PathBuf::from("clouds.yaml"));
    if let Ok(h) = std::env::var("HOME") {
        v.push(PathBuf::from(h).join(".config/openstack/clouds.yaml"));
    }
    v.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    v
}

fn cloud_from_env() -> Cloud {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Cloud {
        auth: Auth {
            auth_url: var("OS_AUTH_URL"),
            username: var("OS_USERNAME"),
            user_id: var("OS_USER_ID"),
            password: var("OS_PASSWORD"),
            project_name: var("OS_PROJECT_NAME").or_else(|| var("OS_TENANT_NAME")),
            project_id: var("OS_PROJECT_ID").or_else(|| var("OS_TENANT_ID")),
            user_domain_name: var("OS_USER_DOMAIN_NAME"),
            user_domain_id: var("OS_USER_DOMAIN_ID"),
            project_domain_name: var("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: var("OS_PROJECT_DOMAIN_ID"),
            application_credential_id: var("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_secret: var("OS_APPLICATION_CREDENTIAL_SECRET"),
        },
        region_name: var("OS_REGION_NAME"),
        interface: var("OS_INTERFACE"),
    }
}

/// The cloud named by `--os-cloud`/`OS_CLOUD` in the first `clouds.yaml` that has
/// it; else the `OS_*` variables.
fn resolve_cloud(name: Option<&str>) -> anyhow::Result<Cloud> {
    let name = name
        .map(str::to_string)
        .or_else(|| std::env::var("OS_CLOUD").ok().filter(|v| !v.is_empty()));
    let Some(name) = name else {
        let c = cloud_from_env();
        if c.auth.auth_url.is_none() {
            bail!(
                "no cloud: give --os-cloud NAME (clouds.yaml) or source an rc file (OS_AUTH_URL, ...)"
            );
        }
        return Ok(c);
    };
    for f in clouds_files() {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let file: CloudsFile = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("cannot read {}", f.display()))?;
        if let Some(c) = file.clouds.get(&name) {
            return Ok(c.clone());
        }
    }
    bail!(
        "cloud {name:?} is in none of {} (set OS_CLIENT_CONFIG_FILE to the clouds.yaml `ferrostack up` wrote)",
        clouds_files()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Keystone's `auth` body for these credentials.
fn auth_body(a: &Auth) -> anyhow::Result<Value> {
    if let (Some(id), Some(secret)) = (
        &a.application_credential_id,
        &a.application_credential_secret,
    ) {
        return Ok(
            json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret}}}}),
        );
    }
    let password = a.password.as_deref().context("the cloud has no password")?;
    let domain = |id: &Option<String>, name: &Option<String>| match (id, name) {
        (Some(id), _) => json!({"id": id}),
        (None, Some(n)) => json!({"name": n}),
        (None, None) => json!({"id": "default"}),
    };
    let user = match (&a.user_id, &a.username) {
        (Some(id), _) => json!({"id": id, "password": password}),
        (None, Some(n)) => json!({"name": n, "password": password,
            "domain": domain(&a.user_domain_id, &a.user_domain_name)}),
        (None, None) => bail!("the cloud names no user"),
    };
    let mut body =
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}});
    match (&a.project_id, &a.project_name) {
        (Some(id), _) => body["auth"]["scope"] = json!({"project": {"id": id}}),
        (None, Some(n)) => {
            body["auth"]["scope"] = json!({"project": {"name": n,
                "domain": domain(&a.project_domain_id, &a.project_domain_name)}})
        }
        (None, None) => bail!("the cloud names no project (a server belongs to one)"),
    }
    Ok(body)
}

/// `.../identity` or `.../identity/v3` → the v3 token URL.
fn tokens_url(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    }
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn call(
    http: &Http,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, hyper::HeaderMap, Value)> {
    if url.starts_with("https:") {
        bail!("{url}: `ferrostack ssh` speaks plain HTTP only (ferrostack's own endpoints)");
    }
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "application/json");
    if let Some(t) = token {
        b = b.header("x-auth-token", t);
    }
    let bytes = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(v)?)
        }
        None => Bytes::new(),
    };
    let resp = http
        .request(b.body(Full::new(bytes))?)
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await?.to_bytes();
    let v = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Ok((status, headers, v))
}

/// A Nova/Keystone error body's message.
fn message(v: &Value) -> String {
    v.as_object()
        .and_then(|o| o.values().next())
        .and_then(|e| e["message"].as_str())
        .unwrap_or("(no message)")
        .to_string()
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A regex matching exactly `s` (Nova's `name` filter is a regex).
fn regex_exact(s: &str) -> String {
    let mut out = String::from("^");
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
}

/// Finds the server and where its SSH is; returns (server id, host, port).
async fn locate(cloud: &Cloud, server: &str) -> anyhow::Result<(String, String, u16)> {
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let auth_url = cloud
        .auth
        .auth_url
        .as_deref()
        .context("the cloud has no auth_url")?;
    let (st, headers, body) = call(
        &http,
        "POST",
        &tokens_url(auth_url),
        None,
        Some(&auth_body(&cloud.auth)?),
    )
    .await?;
    if st != 201 {
        bail!("authentication failed ({st}): {}", message(&body));
    }
    let token = headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .context("Keystone gave no token")?
        .to_string();
    let interface = cloud.interface.as_deref().unwrap_or("public");
    let compute = body["token"]["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "compute")
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["interface"] == interface
                && cloud
                    .region_name
                    .as_deref()
                    .is_none_or(|r| e["region_id"] == r || e["region"] == r)
        })
        .and_then(|e| {
            e["url"]
                .as_str()
                .map(|u| u.trim_end_matches('/').to_string())
        })
        .context("the catalog has no compute endpoint")?;
    let (st, _, body) = call(
        &http,
        "GET",
        &format!("{compute}/servers/{}", percent(server)),
        Some(&token),
        None,
    )
    .await?;
    let id = if st == 200 {
        body["server"]["id"].as_str().unwrap_or(server).to_string()
    } else {
        let url = format!("{compute}/servers?name={}", percent(&regex_exact(server)));
        let (st, _, body) = call(&http, "GET", &url, Some(&token), None).await?;
        if st != 200 {
            bail!("listing servers failed ({st}): {}", message(&body));
        }
        let hits: Vec<String> = body["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"] == server)
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        match hits.as_slice() {
            [one] => one.clone(),
            [] => bail!("no server named or with id {server:?}"),
            _ => bail!("{} servers are named {server:?}: give its id", hits.len()),
        }
    };
    let (st, _, body) = call(
        &http,
        "GET",
        &format!("{compute}/servers/{id}/x-ferrostack-ssh"),
        Some(&token),
        None,
    )
    .await?;
    if st != 200 {
        bail!("server {id} has no SSH forward ({st}): {}", message(&body));
    }
    let host = body["ssh"]["host"]
        .as_str()
        .context("no host in the answer")?
        .to_string();
    let port = body["ssh"]["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .context("no port in the answer")?;
    Ok((id, host, port))
}

/// Runs `ssh` to the server; returns only when it cannot be started.
pub async fn run(
    os_cloud: Option<String>,
    target: String,
    args: Vec<String>,
) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let (user, server) = match target.rsplit_once('@') {
        Some((u, s)) => (Some(u.to_string()), s.to_string()),
        None => (None, target),
    };
    let cloud = resolve_cloud(os_cloud.as_deref())?;
    let (id, host, port) = locate(&cloud, &server).await?;
    let (opts, command) = split_ssh_args(&args);
    let dest = match user {
        Some(u) => format!("{u}@{host}"),
        None if opts.iter().any(|o| o.starts_with("-l")) => host,
        None => format!("root@{host}"),
    };
    let mut cmd = std::process::Command::new("ssh");
    // The user's options first: for each option ssh keeps the first value it is given.
    cmd.args(&opts)
        .args(["-p", &port.to_string()])
        .args(["-o", &format!("HostKeyAlias=ferrostack-{id}")])
        .args(["-o", "StrictHostKeyChecking=accept-new"])
        .arg(dest)
        .args(&command);
    let err = cmd.exec();
    Err(anyhow::Error::new(err).context("cannot run ssh (is openssh-client installed?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_end_where_the_command_begins() {
        assert_eq!(
            split_ssh_args(&v(&["-i", "key", "-v", "uptime", "-a"])),
            (v(&["-i", "key", "-v"]), v(&["uptime", "-a"]))
        );
        assert_eq!(
            split_ssh_args(&v(&["-ikey", "-oBatchMode=yes", "cat", "/etc/hostname"])),
            (
                v(&["-ikey", "-oBatchMode=yes"]),
                v(&["cat", "/etc/hostname"])
            )
        );
        assert_eq!(
            split_ssh_args(&v(&["-vl", "debian", "--", "-x"])),
            (v(&["-vl", "debian"]), v(&["-x"]))
        );
        assert_eq!(split_ssh_args(&v(&[])), (v(&[]), v(&[])));
    }

    #[test]
    fn token_urls_and_exact_names() {
        assert_eq!(
            tokens_url("http://h/identity/v3"),
            "http://h/identity/v3/auth/tokens"
        );
        assert_eq!(
            tokens_url("http://h/identity/"),
            "http://h/identity/v3/auth/tokens"
        );
        assert_eq!(regex_exact("vm.1"), "^vm\\.1$");
        assert_eq!(percent("^a b$"), "%5Ea%20b%24");
    }

    #[test]
    fn password_auth_scopes_to_the_project() {
        let b = auth_body(&Auth {
            username: Some("u".into()),
            password: Some("p".into()),
            project_name: Some("demo".into()),
            user_domain_name: Some("Default".into()),
            ..Auth::default()
        })
        .unwrap();
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(b["auth"]["scope"]["project"]["domain"]["id"], "default");
    }
}
