//! Starting and stopping a real server for a test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "it-admin-pw";

/// Which database a test server uses.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `FERROSTACK_TEST_POSTGRES`, or `None` (the PostgreSQL variant is skipped, unless
/// `FERROSTACK_REQUIRE_POSTGRES=1`, as the test script sets, makes that an error).
pub fn postgres_base() -> Option<String> {
    match std::env::var("FERROSTACK_TEST_POSTGRES") {
        Ok(v) if !v.is_empty() => Some(v.trim_end_matches('/').to_string()),
        _ => {
            assert!(
                std::env::var("FERROSTACK_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FERROSTACK_REQUIRE_POSTGRES=1 but FERROSTACK_TEST_POSTGRES is not set"
            );
            eprintln!("FERROSTACK_TEST_POSTGRES not set: skipping the PostgreSQL variant");
            None
        }
    }
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub base: String,
    pub database: Option<String>,
    pub env: Vec<(String, String)>,
    pub client: reqwest::Client,
}

fn random_name() -> String {
    format!("fs_it_{}", uuid_like())
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", t, std::process::id())
}

impl Server {
    /// Starts a server; `None` when the backend is not available here.
    pub fn start(backend: Backend, env: &[(&str, &str)]) -> Option<Server> {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(format!("{}/{}", postgres_base()?, random_name())),
        };
        let mut s = Server {
            dir: tempfile::tempdir().unwrap(),
            child: None,
            base: String::new(),
            database,
            env: env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            client: reqwest::Client::new(),
        };
        s.spawn();
        Some(s)
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrostack"));
        cmd.env("FERROSTACK_BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Cheap hashing keeps the suite fast; the cost is exercised by the bench.
            .env("FERROSTACK_IDENTITY__PASSWORD_HASH_MEMORY_KIB", "256")
            .env("FERROSTACK_IDENTITY__PASSWORD_HASH_ITERATIONS", "1")
            .env("RUST_LOG", "warn")
            // API tests run on the fake driver unless a test asks for another
            .env("FERROSTACK_COMPUTE__DRIVER", "fake")
            // many servers run at once: each console proxy on a port of its own
            .env("FERROSTACK_CONSOLE__LISTEN", "127.0.0.1:0");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// (Re)starts the process on the same state directory and database.
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.state().join("ferrostack.url"));
        let mut cmd = self.command();
        cmd.args(["up", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(self.state())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(db) = &self.database {
            cmd.args(["--database", db]);
        }
        let mut child = cmd.spawn().expect("start ferrostack");
        let url_file = self.state().join("ferrostack.url");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(u) = std::fs::read_to_string(&url_file) {
                self.base = u.trim().to_string();
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("ferrostack exited during start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "ferrostack did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(&child, "TERM");
        wait_with_timeout(&mut child, Duration::from_secs(20))
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/identity{path}", self.base)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Resp::from(rb.send().await.expect("request")).await
    }

    /// Password authentication; returns the response (token in `subject`).
    pub async fn auth(&self, user: &str, password: &str, project: Option<&str>) -> Resp {
        let mut body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}}});
        if let Some(p) = project {
            body["auth"]["scope"] = json!({"project": {"name": p, "domain": {"id": "default"}}});
        }
        self.call(Method::POST, "/v3/auth/tokens", None, Some(body))
            .await
    }

    pub async fn admin_token(&self) -> String {
        let r = self.auth("admin", ADMIN_PASSWORD, Some("admin")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.subject.unwrap()
    }

    /// Creates a project and a user with `role` on it; returns (project id, user id).
    pub async fn project_user(
        &self,
        admin: &str,
        project: &str,
        user: &str,
        password: &str,
        role: &str,
    ) -> (String, String) {
        let p = self
            .call(
                Method::POST,
                "/v3/projects",
                Some(admin),
                Some(json!({"project": {"name": project}})),
            )
            .await;
        assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
        let pid = p.body["project"]["id"].as_str().unwrap().to_string();
        let u = self
            .call(
                Method::POST,
                "/v3/users",
                Some(admin),
                Some(json!({"user": {"name": user, "password": password, "default_project_id": pid}})),
            )
            .await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
        let uid = u.body["user"]["id"].as_str().unwrap().to_string();
        let roles = self
            .call(
                Method::GET,
                &format!("/v3/roles?name={role}"),
                Some(admin),
                None,
            )
            .await;
        let rid = roles.body["roles"][0]["id"].as_str().unwrap().to_string();
        let g = self
            .call(
                Method::PUT,
                &format!("/v3/projects/{pid}/users/{uid}/roles/{rid}"),
                Some(admin),
                None,
            )
            .await;
        assert_eq!(g.status, StatusCode::NO_CONTENT, "{}", g.body);
        (pid, uid)
    }

    /// Validates `subject` with `caller`'s token.
    pub async fn validate(&self, caller: &str, subject: &str) -> Resp {
        let r = self
            .client
            .get(self.url("/v3/auth/tokens"))
            .header("X-Auth-Token", caller)
            .header("X-Subject-Token", subject)
            .send()
            .await
            .unwrap();
        Resp::from(r).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

pub fn wait_with_timeout(child: &mut Child, t: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + t;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {t:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub subject: Option<String>,
}

impl Resp {
    async fn from(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let subject = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
            subject,
        }
    }

    /// Asserts a Keystone error body with this status.
    pub fn assert_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["error"]["code"],
            json!(status.as_u16()),
            "{}",
            self.body
        );
        assert!(self.body["error"]["title"].is_string(), "{}", self.body);
        assert!(self.body["error"]["message"].is_string(), "{}", self.body);
    }
}

/// Declares a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(s) = Server::start(Backend::Sqlite, &[]) {
                    ($body)(s).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(s) = Server::start(Backend::Postgres, &[]) {
                    ($body)(s).await;
                }
            }
        }
    };
}

pub fn file_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// --- compute (Nova) and image helpers for the servers and reliability tests ---------

/// Declares a test on SQLite and on PostgreSQL, each server started with `env`.
#[macro_export]
/// Attributes before the name (e.g. `#[ignore = "bug: ..."]`) go on both tests.
macro_rules! both_backends_env {
    ($(#[$m:meta])* $name:ident, $env:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$m])*
            async fn sqlite() {
                if let Some(s) = Server::start(Backend::Sqlite, $env) {
                    ($body)(s).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$m])*
            async fn postgres() {
                if let Some(s) = Server::start(Backend::Postgres, $env) {
                    ($body)(s).await;
                }
            }
        }
    };
}

impl Server {
    /// A Nova v2.1 request; `mv` is the compute microversion (`None`: no header, 2.1).
    pub async fn compute(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        mv: Option<&str>,
    ) -> Resp {
        let mut rb = self
            .client
            .request(method, format!("{}/compute/v2.1{path}", self.base))
            .header("X-Auth-Token", token);
        if let Some(v) = mv {
            rb = rb.header("OpenStack-API-Version", format!("compute {v}"));
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Resp::from(rb.send().await.expect("request")).await
    }

    /// GET of an absolute URL (a `next` link), with a token.
    pub async fn get_abs(&self, url: &str, token: &str, mv: Option<&str>) -> Resp {
        let mut rb = self.client.get(url).header("X-Auth-Token", token);
        if let Some(v) = mv {
            rb = rb.header("OpenStack-API-Version", format!("compute {v}"));
        }
        Resp::from(rb.send().await.expect("request")).await
    }

    /// A Glance v2 request with a JSON body.
    pub async fn glance(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self
            .client
            .request(method, format!("{}/image/v2{path}", self.base))
            .header("X-Auth-Token", token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Resp::from(rb.send().await.expect("request")).await
    }

    /// An active raw image of a few KiB (created and uploaded through Glance).
    pub async fn active_image(&self, token: &str, name: &str) -> String {
        let r = self
            .glance(
                Method::POST,
                "/images",
                token,
                Some(json!({"name": name, "disk_format": "raw", "container_format": "bare"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
        let up = self
            .client
            .put(format!("{}/image/v2/images/{id}/file", self.base))
            .header("X-Auth-Token", token)
            .header("Content-Type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .unwrap();
        assert_eq!(up.status(), StatusCode::NO_CONTENT);
        id
    }

    /// A project-scoped token for `user`.
    pub async fn token_for(&self, user: &str, password: &str, project: &str) -> String {
        let r = self.auth(user, password, Some(project)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.subject.unwrap()
    }

    /// `GET /servers/{id}` until it is in `status` with no task (or 404 when `status`
    /// is "DELETED"); panics after `secs`. Returns the last server view.
    pub async fn wait_server(
        &self,
        token: &str,
        id: &str,
        status: &str,
        mv: Option<&str>,
        secs: u64,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self
                .compute(Method::GET, &format!("/servers/{id}"), token, None, mv)
                .await;
            if status == "DELETED" && r.status == StatusCode::NOT_FOUND {
                return r.body;
            }
            assert_eq!(r.status, StatusCode::OK, "GET server {id}: {}", r.body);
            let s = &r.body["server"];
            if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
                return s.clone();
            }
            assert!(
                Instant::now() < deadline,
                "server {id} not {status} within {secs} s: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a process that is expected to exit by itself (a test crash point);
    /// returns its exit status.
    pub fn wait_exit(&mut self, t: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_with_timeout(&mut child, t)
    }

    /// The guests the fake hypervisor holds (files under STATE/instances/_fake).
    pub fn fake_guests(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.state().join("instances/_fake"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .map(|n| n.trim_end_matches(".json").to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A Nova error body: `{"<fault>": {"code": status, "message": ...}}`; returns the message.
pub fn nova_error(r: &Resp, status: StatusCode) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    let fault = match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        406 => "notAcceptable",
        409 => "conflictingRequest",
        _ => panic!("no fault name for {status}"),
    };
    assert_eq!(r.body[fault]["code"], json!(status.as_u16()), "{}", r.body);
    r.body[fault]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {}", r.body))
        .to_string()
}
