//! `ferrostack bench boot`: real guests on the qemu driver of a child server (fresh
//! state directory, SQLite), beside bare QEMU with the same options, in one run:
//!
//! 1. a baseline: the tiny test image booted by `qemu-system-x86_64` started by hand
//!    with exactly the command line ferrostack gave one of its guests (read back from
//!    `/proc/PID/cmdline`; only the paths point at a copy, `-S` and `-run-with` are
//!    dropped and the SSH forward gets a fixed port), timed from the exec to the first
//!    `ssh ... true` that succeeds (polled: an SSH banner on the forward, then ssh);
//! 2. `POST /servers` → the first `ssh ... true` through the guest's forward that
//!    succeeds (the same ssh loop), one server at a time;
//! 3. N servers created at once, and the time until every one answers SSH;
//! 4. the server's RSS (now and peak) with those N guests running.
//!
//! The image is `--image`, else the newest `tiny-*.qcow2` in
//! `$FERROSTACK_GUEST_CACHE` (default `/var/tmp/ferrostack-guests`), which
//! `scripts/guest-images tiny` builds.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::image::admin_token;
use super::{Conn, rss_kib, start_server_with};

#[derive(clap::Args, Debug)]
pub struct BootBench {
    /// The guest image (qcow2); default: the newest cached tiny test image.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Boots measured one at a time, for each of bare QEMU and ferrostack.
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// Servers booted at once.
    #[arg(long, default_value_t = 5)]
    parallel: usize,
    /// Seconds one boot may take before the bench gives up.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
}

const MV: (&str, &str) = ("openstack-api-version", "compute 2.79");

fn default_image() -> anyhow::Result<PathBuf> {
    let cache = std::env::var_os("FERROSTACK_GUEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/ferrostack-guests"));
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("tiny-") && n.ends_with(".qcow2")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).with_context(|| {
        format!(
            "no tiny test image in {}: run scripts/guest-images tiny, or pass --image",
            cache.display()
        )
    })
}

/// The API calls the bench makes, on one keep-alive connection.
struct Api {
    c: Conn,
    token: String,
}

impl Api {
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let (status, _, bytes) = self
            .c
            .send(method, path, &[("x-auth-token", &self.token), MV], body)
            .await?;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, v))
    }

    async fn ok(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method, path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path} answered {status}: {v}");
        }
        Ok(v)
    }
}

/// Waits until 127.0.0.1:PORT answers with an SSH banner. slirp accepts on the host
/// side before the guest does, so a bare connect proves nothing; a short read timeout
/// keeps the polling quantum small (ssh's own `ConnectTimeout` is whole seconds).
async fn wait_banner(port: u16, deadline: Instant) {
    use tokio::io::AsyncReadExt;
    while Instant::now() < deadline {
        if let Ok(Ok(mut c)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            let mut buf = [0u8; 4];
            if let Ok(Ok(4)) =
                tokio::time::timeout(Duration::from_millis(300), c.read_exact(&mut buf)).await
                && &buf == b"SSH-"
            {
                return;
            }
        }
        // each banner costs the guest a dropbear fork: do not flood a TCG guest
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `ssh root@127.0.0.1 -p PORT true` until it succeeds (after the banner is there):
/// the time it first did.
async fn ssh_until_ok(key: &Path, port: u16, deadline: Instant) -> anyhow::Result<Instant> {
    wait_banner(port, deadline).await;
    loop {
        let ok = tokio::process::Command::new("ssh")
            .args([
                "-i",
                &key.to_string_lossy(),
                "-p",
                &port.to_string(),
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=2",
                "-o",
                "LogLevel=QUIET",
                "root@127.0.0.1",
                "true",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status();
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(10), ok).await
            && s.success()
        {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("no SSH on 127.0.0.1:{port} in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Boots one server and waits until it answers SSH: (seconds from POST to SSH,
/// seconds from POST to a running guest with its forward known, server id).
async fn boot_one(
    host: &str,
    token: &str,
    body: &Value,
    key: &Path,
    timeout: Duration,
) -> anyhow::Result<(f64, f64, String)> {
    let mut api = Api {
        c: Conn::open(host).await?,
        token: token.to_string(),
    };
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let v = api.ok("POST", "/compute/v2.1/servers", Some(body)).await?;
    let id = v["server"]["id"]
        .as_str()
        .context("no server id")?
        .to_string();
    let port = loop {
        let (status, v) = api
            .call(
                "GET",
                &format!("/compute/v2.1/servers/{id}/x-ferrostack-ssh"),
                None,
            )
            .await?;
        if status == 200
            && let Some(p) = v["ssh"]["port"].as_u64()
        {
            break u16::try_from(p)?;
        }
        if Instant::now() > deadline {
            bail!("server {id} has no SSH endpoint in time ({status} {v})");
        }
        let (_, s) = api
            .call("GET", &format!("/compute/v2.1/servers/{id}"), None)
            .await?;
        if s["server"]["status"] == "ERROR" {
            bail!("server {id} went to ERROR: {}", s["server"]["fault"]);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let running = t0.elapsed().as_secs_f64();
    let done = ssh_until_ok(key, port, deadline).await?;
    Ok(((done - t0).as_secs_f64(), running, id))
}

async fn delete_all(api: &mut Api, ids: &[String], timeout: Duration) -> anyhow::Result<()> {
    for id in ids {
        api.ok("DELETE", &format!("/compute/v2.1/servers/{id}"), None)
            .await?;
    }
    let deadline = Instant::now() + timeout;
    for id in ids {
        loop {
            let (status, _) = api
                .call("GET", &format!("/compute/v2.1/servers/{id}"), None)
                .await?;
            if status == 404 {
                break;
            }
            if Instant::now() > deadline {
                bail!("server {id} not deleted in time");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The bare-QEMU baseline: ferrostack's own command line for a guest, replayed by hand
/// on a fresh overlay of the same image with a copy of that guest's config drive.
struct Bare {
    argv: Vec<String>,
    dir: PathBuf,
    port: u16,
}

impl Bare {
    /// From the running QEMU `pid` of instance directory `inst`.
    fn from_guest(pid: u32, inst: &Path, dir: &Path) -> anyhow::Result<Bare> {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
        let mut args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let inst = inst.to_string_lossy().into_owned();
        let here = dir.to_string_lossy().into_owned();
        let port = free_port()?;
        let mut out = Vec::with_capacity(args.len());
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "-S" => {}
                "-run-with" | "-loadvm" => i += 1,
                _ => {
                    let mut a = std::mem::take(&mut args[i]).replace(&inst, &here);
                    if a.contains("hostfwd=tcp:127.0.0.1:") {
                        // ...,hostfwd=tcp:127.0.0.1:PORT-GUEST:22
                        let (head, tail) =
                            a.split_once("hostfwd=tcp:127.0.0.1:").unwrap_or_default();
                        let rest = tail.split_once('-').map(|x| x.1).unwrap_or_default();
                        a = format!("{head}hostfwd=tcp:127.0.0.1:{port}-{rest}");
                    }
                    out.push(a);
                }
            }
            i += 1;
        }
        Ok(Bare {
            argv: out,
            dir: dir.to_path_buf(),
            port,
        })
    }

    /// One boot: a fresh overlay, QEMU started, SSH polled; QEMU killed after.
    async fn boot(
        &self,
        (backing, format): &(PathBuf, String),
        key: &Path,
        timeout: Duration,
    ) -> anyhow::Result<f64> {
        let disk = self.dir.join("disk");
        let _ = std::fs::remove_file(&disk);
        let _ = std::fs::remove_file(self.dir.join("qmp.sock"));
        let st = tokio::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", format.as_str(), "-b"])
            .arg(backing)
            .arg(&disk)
            .status()
            .await?;
        if !st.success() {
            bail!("qemu-img create failed");
        }
        let t0 = Instant::now();
        let mut child = tokio::process::Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .current_dir(&self.dir) // the domain's sockets are relative to it
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start qemu-system-x86_64")?;
        let r = tokio::select! {
            r = ssh_until_ok(key, self.port, t0 + timeout) => r.map(|t| (t - t0).as_secs_f64()),
            s = child.wait() => Err(anyhow::anyhow!("bare QEMU exited: {s:?}")),
        };
        let _ = child.start_kill();
        let _ = child.wait().await;
        r
    }
}

pub async fn run(opts: BootBench) -> anyhow::Result<()> {
    let image = match &opts.image {
        Some(p) => p.clone(),
        None => default_image()?,
    };
    let timeout = Duration::from_secs(opts.timeout);
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let key = dir.path().join("id_ed25519");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key)
        .status()
        .context("ssh-keygen")?;
    if !st.success() {
        bail!("ssh-keygen failed");
    }
    let pubkey = std::fs::read_to_string(key.with_extension("pub"))?;
    let password = "bench-admin-pw";

    println!(
        "ferrostack bench boot: image {} ({:.1} MiB), {} samples, {} in parallel, {} build, {} cores",
        image.display(),
        std::fs::metadata(&image)?.len() as f64 / 1048576.0,
        opts.samples,
        opts.parallel,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    );

    let server =
        start_server_with(&state, password, &[("FERROSTACK_COMPUTE__DRIVER", "qemu")]).await?;
    let token = admin_token(&server.host, password).await?;
    let mut api = Api {
        c: Conn::open(&server.host).await?,
        token: token.clone(),
    };

    // The image, a key pair, the network.
    let v = api
        .ok(
            "POST",
            "/image/v2/images",
            Some(&json!({"name": "tiny", "disk_format": "qcow2", "container_format": "bare"})),
        )
        .await?;
    let image_id = v["id"].as_str().context("no image id")?.to_string();
    let bytes = tokio::fs::read(&image).await?;
    let (status, _, body) = api
        .c
        .send_bytes(
            "PUT",
            &format!("/image/v2/images/{image_id}/file"),
            &token,
            bytes,
        )
        .await?;
    if status != 204 {
        bail!("image upload: {status} {}", String::from_utf8_lossy(&body));
    }
    api.ok(
        "POST",
        "/compute/v2.1/os-keypairs",
        Some(&json!({"keypair": {"name": "bench", "public_key": pubkey.trim()}})),
    )
    .await?;
    let nets = api
        .ok("GET", "/network/v2.0/networks?name=private", None)
        .await?;
    let net = nets["networks"][0]["id"]
        .as_str()
        .context("no `private` network")?
        .to_string();
    let body = |name: &str| {
        json!({"server": {"name": name, "imageRef": image_id, "flavorRef": "1",
            "key_name": "bench", "config_drive": true, "networks": [{"uuid": net}]}})
    };

    // A first boot (warms the image cache) whose command line the baseline replays.
    let (first, _, id0) = boot_one(&server.host, &token, &body("warm"), &key, timeout).await?;
    let inst = state.join("instances").join(&id0);
    let pid: u32 = std::fs::read_to_string(inst.join("qemu.pid"))?
        .trim()
        .parse()?;
    let bare_dir = dir.path().join("bare");
    std::fs::create_dir_all(&bare_dir)?;
    std::fs::copy(inst.join("disk.config"), bare_dir.join("disk.config"))?;
    let bare = Bare::from_guest(pid, &inst, &bare_dir)?;
    let backing = image_cache_file(&inst).await?;
    delete_all(&mut api, std::slice::from_ref(&id0), timeout).await?;
    println!("\n  first boot (cold image cache): {first:.2} s to SSH");

    let (mut bare_t, mut fs_t, mut run_t) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..opts.samples {
        bare_t.push(bare.boot(&backing, &key, timeout).await?);
        let (t, running, id) = boot_one(
            &server.host,
            &token,
            &body(&format!("seq{i}")),
            &key,
            timeout,
        )
        .await?;
        fs_t.push(t);
        run_t.push(running);
        delete_all(&mut api, &[id], timeout).await?;
    }
    println!(
        "\nOne boot to a working `ssh true` (p50 of {}):",
        opts.samples
    );
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  bare qemu-system-x86_64, same options   {:6.2} s   [{}]",
        pct(&mut bare_t.clone(), 0.5),
        show(&bare_t)
    );
    println!(
        "  POST /servers -> SSH (ferrostack)        {:6.2} s   [{}]",
        pct(&mut fs_t.clone(), 0.5),
        show(&fs_t)
    );
    println!(
        "  ferrostack adds                          {:+6.2} s   (target: at most +0.50 s; \
         guest boots vary by ~1 s here)",
        pct(&mut fs_t.clone(), 0.5) - pct(&mut bare_t.clone(), 0.5)
    );
    println!(
        "  of which POST -> guest running           {:6.2} s   [{}]  (API, scheduling, \
         image cache, overlay, config drive, QEMU start, QMP; polled every 20 ms)",
        pct(&mut run_t.clone(), 0.5),
        show(&run_t)
    );

    // N at once.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..opts.parallel {
        let (host, token, key, b) = (
            server.host.clone(),
            token.clone(),
            key.clone(),
            body(&format!("par{i}")),
        );
        tasks.push(tokio::spawn(async move {
            boot_one(&host, &token, &b, &key, timeout).await
        }));
    }
    let mut ids = Vec::new();
    let mut each = Vec::new();
    for t in tasks {
        let (s, _, id) = t.await??;
        each.push(s);
        ids.push(id);
    }
    let all = t0.elapsed().as_secs_f64();
    println!("\n{} servers created at once:", opts.parallel);
    println!(
        "  all reachable by SSH after               {all:6.2} s   [each: {}]",
        show(&each)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "  ferrostack RSS with {} guests running     {:6.1} MiB (peak {:.1} MiB; target < 64 MiB)",
        opts.parallel,
        rss_kib(server.pid, "VmRSS:") as f64 / 1024.0,
        rss_kib(server.pid, "VmHWM:") as f64 / 1024.0
    );
    delete_all(&mut api, &ids, timeout).await?;
    Ok(())
}

/// The cached base image an instance's overlay sits on (`qemu-img info`'s backing
/// file) and its format.
async fn image_cache_file(inst: &Path) -> anyhow::Result<(PathBuf, String)> {
    let out = tokio::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(inst.join("disk"))
        .output()
        .await?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let b = v["full-backing-filename"]
        .as_str()
        .or_else(|| v["backing-filename"].as_str())
        .context("the guest's disk has no backing file")?;
    let format = v["backing-filename-format"].as_str().unwrap_or("raw");
    Ok((PathBuf::from(b), format.to_string()))
}
