//! `ferrostack bench ...`: the benchmarks, each printing its numbers beside a
//! baseline measured in the same run. `bench image` lives in [`image`].
//!
//! `ferrostack bench identity`: starts this binary's own server as a child process
//! (fresh state directory, SQLite, logs at warn), then measures over HTTP on
//! loopback, in one run:
//!
//! - a baseline: `GET /identity/v3` (version discovery, no auth, no database) —
//!   the HTTP floor of this machine and build;
//! - token validation (`GET /v3/auth/tokens`, both tokens from the cache) at 1 and
//!   8 concurrent keep-alive connections: p50/p99 latency and requests/s;
//! - token issue by the `token` method and by `application_credential`;
//! - the server's RSS when idle and its peak after the load;
//! - and, when `wrk` is installed, wrk's own numbers for validation at 8
//!   connections (the reference measurement).

pub mod boot;
pub mod compute;
pub mod disk;
pub mod ec2;
pub mod image;
mod limits;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

#[derive(clap::Args, Debug)]
pub struct IdentityBench {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Keep the server's state directory (printed) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

pub(crate) struct Server {
    child: tokio::process::Child,
    base: String,
    host: String,
    pid: u32,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

pub(crate) async fn start_server(state: &Path, password: &str) -> anyhow::Result<Server> {
    start_server_with(state, password, &[]).await
}

/// A child server with extra environment (configuration) variables.
pub(crate) async fn start_server_with(
    state: &Path,
    password: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["up", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state)
        .env("FERROSTACK_COMPUTE__DRIVER", "fake")
        .env("FERROSTACK_CONSOLE__LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .env("FERROSTACK_BOOTSTRAP__ADMIN_PASSWORD", password)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the server")?;
    let pid = child.id().context("server has no pid")?;
    let url_file = state.join("ferrostack.url");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(u) = std::fs::read_to_string(&url_file) {
            let host = u.trim().trim_start_matches("http://").to_string();
            return Ok(Server {
                child,
                base: u.trim().to_string(),
                host,
                pid,
            });
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited early: {status}");
        }
        if Instant::now() > deadline {
            bail!("server did not start within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A curl header file (`-H @file`, owner-only, so the token is on no command
/// line) in `dir`: the token, then `extra` lines.
pub(crate) fn curl_header_file(
    dir: &Path,
    name: &str,
    token: &str,
    extra: &str,
) -> anyhow::Result<std::path::PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(f, "X-Auth-Token: {token}{extra}")?;
    Ok(path)
}

pub(crate) fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    async fn open(host: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            host: host.to_string(),
        })
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Full::new(Bytes::from(serde_json::to_vec(v)?))
            }
            None => Full::new(Bytes::new()),
        };
        self.sender.ready().await?;
        let resp = self.sender.send_request(b.body(body)?).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, headers, bytes))
    }
}

impl Conn {
    /// Sends raw bytes (`application/octet-stream`) with a token.
    async fn send_bytes(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("x-auth-token", token)
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(bytes)))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, headers, body))
    }
}

struct Stats {
    requests: usize,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Runs `conns` connections for `duration`, each sending the request built by `req`.
async fn load<F>(
    host: &str,
    conns: usize,
    duration: Duration,
    expect: u16,
    req: F,
) -> anyhow::Result<Stats>
where
    F: Fn() -> (String, String, Vec<(String, String)>, Option<Value>)
        + Send
        + Sync
        + Clone
        + 'static,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let host = host.to_string();
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&host).await?;
            let mut lat = Vec::with_capacity(100_000);
            while Instant::now() < deadline {
                let (m, p, h, b) = req();
                let hv: Vec<(&str, &str)> =
                    h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                let t = Instant::now();
                let (status, _, body) = c.send(&m, &p, &hv, b.as_ref()).await?;
                lat.push(t.elapsed().as_nanos() as u64);
                if status != expect {
                    bail!(
                        "{m} {p} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let seconds = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all[i] as f64 / 1000.0
    };
    Ok(Stats {
        requests: all.len(),
        seconds,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}

fn row(name: &str, conns: usize, s: &Stats) {
    println!(
        "  {name:<44} {conns:>2} conn  {:>10.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   ({} requests)",
        s.requests as f64 / s.seconds,
        s.p50_us,
        s.p99_us,
        s.requests
    );
}

/// The cost of `Identity::validate` itself on a cache hit, without HTTP: an
/// identity service opened in this process on its own temporary SQLite database.
async fn in_process_validation(seconds: u64) -> anyhow::Result<()> {
    use ferrostack_identity::bootstrap::BootstrapSpec;
    use ferrostack_identity::{Identity, Settings};
    let dir = tempfile::tempdir()?;
    let db = ferrostack_core::Db::connect(
        &ferrostack_core::Db::sqlite_url(&dir.path().join("b.db")),
        2,
    )
    .await?;
    let cfg = ferrostack_core::config::Config::default();
    let identity =
        Identity::open(db, Settings::from_config(&cfg), &dir.path().join("keys")).await?;
    identity
        .bootstrap(&BootstrapSpec {
            admin_password: Some("pw".into()),
            region: "RegionOne".into(),
            services: vec![],
        })
        .await?;
    let issued = identity
        .authenticate(
            &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "pw"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(seconds.min(2));
    let mut n = 0u64;
    let start = Instant::now();
    while Instant::now() < deadline {
        for _ in 0..1000 {
            let v = identity.validate(&issued.token, false).await?;
            std::hint::black_box(&v);
        }
        n += 1000;
    }
    let per = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "\nIdentity::validate in process (cache hit, no HTTP): {per:.0} ns per call ({n} calls)"
    );
    Ok(())
}

fn rss_line(pid: u32) {
    println!(
        "  server RSS now {:.1} MiB",
        rss_kib(pid, "VmRSS:") as f64 / 1024.0
    );
}

fn wrk_available() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

pub async fn identity(opts: IdentityBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let password = "bench-admin-password";
    let d = Duration::from_secs(opts.duration);
    println!(
        "ferrostack bench identity — {} build, {} CPUs, {} s per measurement",
        if cfg!(debug_assertions) {
            "DEBUG (numbers not representative; use --release)"
        } else {
            "release"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        opts.duration
    );
    let server = start_server(&state, password).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(server.pid, "VmRSS:");
    println!(
        "server pid {} at {}; idle RSS {:.1} MiB",
        server.pid,
        server.base,
        idle_rss as f64 / 1024.0
    );

    let mut c = Conn::open(&server.host).await?;
    let auth_body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let (status, headers, body) = c
        .send("POST", "/identity/v3/auth/tokens", &[], Some(&auth_body))
        .await?;
    if status != 201 {
        bail!(
            "admin authentication failed: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let token = headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .context("no X-Subject-Token")?
        .to_string();
    let tok: Value = serde_json::from_slice(&body)?;
    let user_id = tok["token"]["user"]["id"]
        .as_str()
        .context("no user id")?
        .to_string();
    let (status, _, body) = c
        .send(
            "POST",
            &format!("/identity/v3/users/{user_id}/application_credentials"),
            &[("x-auth-token", &token)],
            Some(&json!({"application_credential": {"name": "bench"}})),
        )
        .await?;
    if status != 201 {
        bail!(
            "application credential: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let ac: Value = serde_json::from_slice(&body)?;
    let ac_id = ac["application_credential"]["id"]
        .as_str()
        .context("no id")?
        .to_string();
    let ac_secret = ac["application_credential"]["secret"]
        .as_str()
        .context("no secret")?
        .to_string();

    println!("\nHTTP floor (baseline, same server, same run; client in this process):");
    for conns in [1, 8] {
        let s = load(&server.host, conns, d, 200, || {
            ("GET".into(), "/identity/v3".into(), vec![], None)
        })
        .await?;
        row("GET /identity/v3 (discovery, no auth)", conns, &s);
    }
    rss_line(server.pid);

    println!("\nToken validation (GET /v3/auth/tokens, X-Auth-Token = X-Subject-Token):");
    for conns in [1, 8] {
        let t = token.clone();
        let s = load(&server.host, conns, d, 200, move || {
            (
                "GET".into(),
                "/identity/v3/auth/tokens".into(),
                vec![
                    ("x-auth-token".into(), t.clone()),
                    ("x-subject-token".into(), t.clone()),
                ],
                None,
            )
        })
        .await?;
        row("validate (catalog included)", conns, &s);
    }
    rss_line(server.pid);

    println!("\nToken issue (POST /v3/auth/tokens):");
    for conns in [1, 8] {
        let t = token.clone();
        let s = load(&server.host, conns, d, 201, move || {
            (
                "POST".into(),
                "/identity/v3/auth/tokens?nocatalog".into(),
                vec![],
                Some(
                    json!({"auth": {"identity": {"methods": ["token"], "token": {"id": t}},
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}),
                ),
            )
        })
        .await?;
        row("method token (rescope)", conns, &s);
    }
    rss_line(server.pid);
    for conns in [1, 2] {
        let (id, secret) = (ac_id.clone(), ac_secret.clone());
        let s = load(&server.host, conns, d, 201, move || {
            (
                "POST".into(),
                "/identity/v3/auth/tokens?nocatalog".into(),
                vec![],
                Some(
                    json!({"auth": {"identity": {"methods": ["application_credential"],
                    "application_credential": {"id": id, "secret": secret}}}}),
                ),
            )
        })
        .await?;
        row("method application_credential (Argon2id)", conns, &s);
    }
    rss_line(server.pid);
    for conns in [1, 2] {
        let body = auth_body.clone();
        let s = load(&server.host, conns, d, 201, move || {
            (
                "POST".into(),
                "/identity/v3/auth/tokens?nocatalog".into(),
                vec![],
                Some(body.clone()),
            )
        })
        .await?;
        row("method password (Argon2id)", conns, &s);
    }
    rss_line(server.pid);

    if wrk_available() {
        for (threads, conns, path, headers) in [
            (1, 1, "/identity/v3", false),
            (1, 1, "/identity/v3/auth/tokens", true),
            (2, 8, "/identity/v3", false),
            (2, 8, "/identity/v3/auth/tokens", true),
        ] {
            let mut cmd = tokio::process::Command::new("wrk");
            cmd.args([
                &format!("-t{threads}"),
                &format!("-c{conns}"),
                &format!("-d{}s", opts.duration),
                "--latency",
            ]);
            if headers {
                cmd.args([
                    "-H",
                    &format!("X-Auth-Token: {token}"),
                    "-H",
                    &format!("X-Subject-Token: {token}"),
                ]);
            }
            let out = cmd.arg(format!("{}{path}", server.base)).output().await?;
            let text = String::from_utf8_lossy(&out.stdout);
            let pick = |prefix: &str| {
                text.lines()
                    .map(str::trim)
                    .find(|l| l.starts_with(prefix))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("?")
                    .to_string()
            };
            let non2xx = text.lines().any(|l| l.trim().starts_with("Non-2xx"));
            println!(
                "  wrk -t{threads} -c{conns} GET {path:<28} {:>10} req/s   p50 {:>9}   p99 {:>9}{}",
                pick("Requests/sec:"),
                pick("50%"),
                pick("99%"),
                if non2xx { "   (NON-2xx ANSWERS!)" } else { "" }
            );
        }
    } else {
        println!("\n(wrk not installed: `apt-get install wrk` adds wrk's own measurement)");
    }

    in_process_validation(opts.duration).await?;

    let peak = rss_kib(server.pid, "VmHWM:");
    let now = rss_kib(server.pid, "VmRSS:");
    println!(
        "\nserver RSS: idle {:.1} MiB, after load {:.1} MiB, peak {:.1} MiB",
        idle_rss as f64 / 1024.0,
        now as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    drop(server);
    if opts.keep {
        let kept = dir.keep();
        println!("state kept in {}", kept.display());
    }
    Ok(())
}

/// A 1 MiB raw image named `name`, created and uploaded through Glance; its id.
async fn upload_image(c: &mut Conn, token: &str, name: &str) -> anyhow::Result<String> {
    let (st, _, b) = c
        .send(
            "POST",
            "/image/v2/images",
            &[("x-auth-token", token)],
            Some(&serde_json::json!({"name": name, "disk_format": "raw", "container_format": "bare"})),
        )
        .await?;
    if st != 201 {
        anyhow::bail!(
            "image create answered {st}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    let image: serde_json::Value = serde_json::from_slice(&b)?;
    let image = anyhow::Context::context(image["id"].as_str(), "image id")?.to_string();
    let (st, _, b) = c
        .send_bytes(
            "PUT",
            &format!("/image/v2/images/{image}/file"),
            token,
            vec![0u8; 1 << 20],
        )
        .await?;
    if st != 204 {
        anyhow::bail!(
            "image upload answered {st}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    Ok(image)
}
