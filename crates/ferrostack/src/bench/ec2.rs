//! `ferrostack bench ec2`: the EC2 Query API of a child server (fresh state
//! directory, SQLite, fake driver, quotas off, a /16 `private` network so every
//! instance gets its port) beside moto's server mode (`moto_server` from PyPI's
//! `moto[server]`, which `scripts/bench-venv` installs) doing the same in the same
//! run:
//! 0. the API floor: `DescribeRegions` (signature check, no database), p50/p99;
//! 1. 1,000 instances in each (`RunInstances` MinCount=MaxCount=100, 10 times;
//!    ferrostack's waited for until none is `pending`), then `DescribeInstances`
//!    of all of them in one answer (no paging parameters), N sequential samples:
//!    p50/p99, the answer's size, and moto's p50 over ferrostack's;
//! 2. `RunInstances` of one instance, N sequential samples: p50/p99 until the
//!    answer (ferrostack's instance is `pending` then), and the ratio;
//! 3. ferrostack's RSS now and peak (moto's beside it).
//!
//! Every request is a form POST signed with Signature Version 4 as boto3 sends
//! it (`Authorization` header, `host;x-amz-date` signed, the form's SHA-256 as
//! the payload hash): for ferrostack with the admin's EC2 credentials from
//! `STATE/ec2rc.sh` and region `RegionOne`; for moto with a dummy key and region
//! `us-east-1` (moto reads the region from the credential scope, knows only AWS's
//! regions, and does not check signatures). A time runs from the request's first
//! byte to the answer's last, signing excluded, on one keep-alive connection per
//! server (reopened inside the timed span when the server closed it). One
//! untimed request precedes each series.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use sha2::{Digest, Sha256};

use super::image::admin_token;
use super::{Conn, rss_kib, start_server_with};

#[derive(clap::Args, Debug)]
pub struct Ec2Bench {
    /// Instances created in each cloud before DescribeInstances is measured.
    #[arg(long, default_value_t = 1000)]
    instances: usize,
    /// DescribeInstances requests measured on each.
    #[arg(long, default_value_t = 30)]
    describe_samples: usize,
    /// RunInstances (one instance) requests measured on each.
    #[arg(long, default_value_t = 50)]
    run_samples: usize,
    /// moto's `moto_server` (default: $FERROSTACK_BENCH_VENV/bin/moto_server, then
    /// the repository's .venv-bench/bin/moto_server, then PATH). `scripts/bench-venv`
    /// installs it; without it only ferrostack is measured.
    #[arg(long, value_name = "PATH")]
    moto_server: Option<PathBuf>,
}

/// The API version sent with every request (what boto3 sends).
const VERSION: &str = "2016-11-15";

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (pct(v, 0.5), pct(v, 0.99))
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), msg)
        .as_ref()
        .to_vec()
}

/// `20261207T120000Z`: SigV4's request time, now.
fn amz_date() -> String {
    ferrostack_core::time::iso_time(ferrostack_core::time::unix_now()).replace(['-', ':'], "")
}

/// The form body of an action: its parameters in order, then `Version`.
fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .copied()
        .chain([("Version", VERSION)])
        .map(|(k, v)| {
            format!(
                "{}={}",
                ferrostack_identity::ec2sig::quote(k),
                ferrostack_identity::ec2sig::quote(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Where and as whom a client signs.
struct Endpoint {
    name: &'static str,
    host: String,
    path: &'static str,
    region: &'static str,
    access: String,
    secret: String,
}

impl Endpoint {
    /// The SigV4 `Authorization` header of a form POST of `body` at `date`.
    fn authorization(&self, body: &str, date: &str) -> String {
        let day = &date[..8];
        let payload = hex::encode(Sha256::digest(body.as_bytes()));
        let canonical = format!(
            "POST\n{}\n\nhost:{}\nx-amz-date:{date}\n\nhost;x-amz-date\n{payload}",
            self.path, self.host
        );
        let scope = format!("{day}/{}/ec2/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let k = hmac(format!("AWS4{}", self.secret).as_bytes(), day.as_bytes());
        let k = hmac(&k, self.region.as_bytes());
        let k = hmac(&k, b"ec2");
        let k = hmac(&k, b"aws4_request");
        let signature = hex::encode(hmac(&k, to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-date, Signature={signature}",
            self.access
        )
    }
}

impl Conn {
    /// A form POST (`application/x-www-form-urlencoded`) with extra headers.
    async fn post_form(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut b = Request::builder()
            .method("POST")
            .uri(path)
            .header("host", &self.host)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            );
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.sender.ready().await?;
        let resp = self
            .sender
            .send_request(b.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

/// An EC2 client: signs each request, keeps one connection.
struct Client {
    ep: Endpoint,
    conn: Option<Conn>,
}

impl Client {
    fn new(ep: Endpoint) -> Client {
        Client { ep, conn: None }
    }

    /// One signed call answered 200: (milliseconds, body).
    async fn call(&mut self, params: &[(&str, &str)]) -> anyhow::Result<(f64, Bytes)> {
        let body = form(params);
        let date = amz_date();
        let auth = self.ep.authorization(&body, &date);
        let t = Instant::now();
        let reuse = match self.conn.as_mut() {
            Some(c) => c.sender.ready().await.is_ok(),
            None => false,
        };
        if !reuse {
            self.conn = Some(Conn::open(&self.ep.host).await?);
        }
        let conn = self.conn.as_mut().context("no connection")?;
        let (status, bytes) = conn
            .post_form(
                self.ep.path,
                &[("x-amz-date", &date), ("authorization", &auth)],
                body,
            )
            .await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if status != 200 {
            let action = params.first().map_or("", |p| p.1);
            let text = String::from_utf8_lossy(&bytes);
            bail!(
                "{} {action} answered {status}: {}",
                self.ep.name,
                text.chars().take(600).collect::<String>()
            );
        }
        Ok((ms, bytes))
    }
}

fn between<'a>(body: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    body.split(open)
        .skip(1)
        .filter_map(|rest| rest.split(close).next())
        .collect()
}

/// The distinct instance ids of an answer.
fn instance_ids(body: &[u8]) -> HashSet<String> {
    between(
        &String::from_utf8_lossy(body),
        "<instanceId>",
        "</instanceId>",
    )
    .into_iter()
    .map(str::to_string)
    .collect()
}

/// RunInstances of `count` (checked in the answer): milliseconds.
async fn run_instances(
    c: &mut Client,
    ami: &str,
    instance_type: &str,
    count: usize,
) -> anyhow::Result<f64> {
    let n = count.to_string();
    let (ms, body) = c
        .call(&[
            ("Action", "RunInstances"),
            ("ImageId", ami),
            ("InstanceType", instance_type),
            ("MinCount", &n),
            ("MaxCount", &n),
        ])
        .await?;
    let got = instance_ids(&body).len();
    if got != count {
        bail!(
            "{} RunInstances of {count} answered {got} instances",
            c.ep.name
        );
    }
    Ok(ms)
}

/// Fills a cloud to `total` instances, 100 per RunInstances; seconds taken.
async fn fill(c: &mut Client, ami: &str, instance_type: &str, total: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let mut left = total;
    while left > 0 {
        let k = left.min(100);
        run_instances(c, ami, instance_type, k).await?;
        left -= k;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The series of one measurement: (p50, p99) in ms.
type Series = (f64, f64);

/// `samples` sequential calls after one untimed one: (p50, p99, last answer).
async fn series(
    c: &mut Client,
    params: &[(&str, &str)],
    samples: usize,
) -> anyhow::Result<(Series, Bytes)> {
    let (_, mut last) = c.call(params).await?;
    let mut v = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (ms, body) = c.call(params).await?;
        v.push(ms);
        last = body;
    }
    Ok((summary(&mut v), last))
}

/// DescribeInstances of everything: timing, answer size, and the instance count
/// (checked before and after).
async fn describe_all(
    c: &mut Client,
    samples: usize,
    expect: usize,
) -> anyhow::Result<(Series, usize)> {
    let params = [("Action", "DescribeInstances")];
    let (s, last) = series(c, &params, samples).await?;
    let got = instance_ids(&last).len();
    if got != expect {
        bail!(
            "{} DescribeInstances listed {got} instances, expected {expect}",
            c.ep.name
        );
    }
    Ok((s, last.len()))
}

/// RunInstances of one instance, `samples` times: (p50, p99).
async fn run_latency(
    c: &mut Client,
    ami: &str,
    instance_type: &str,
    samples: usize,
) -> anyhow::Result<Series> {
    let mut v = Vec::with_capacity(samples);
    for _ in 0..samples {
        v.push(run_instances(c, ami, instance_type, 1).await?);
    }
    Ok(summary(&mut v))
}

/// A value of `export NAME='value'` in a file ferrostack wrote.
fn sh_var(text: &str, name: &str) -> Option<String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("export {name}=")))?;
    let v = line.trim();
    Some(
        v.strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(v)
            .replace("'\\''", "'"),
    )
}

/// moto_server as a child process, killed when dropped.
struct Moto {
    child: tokio::process::Child,
    pid: u32,
    port: u16,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The moto_server to run: the flag, the bench venv, the repository's, PATH.
fn find_moto(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    let mut candidates = Vec::new();
    if let Some(v) = std::env::var_os("FERROSTACK_BENCH_VENV") {
        candidates.push(PathBuf::from(v).join("bin/moto_server"));
    }
    // The repository: an ancestor of this binary (target/release/ferrostack) or
    // of the working directory that holds .venv-bench.
    let roots = std::env::current_exe()
        .ok()
        .into_iter()
        .chain(std::env::current_dir().ok());
    for start in roots {
        for dir in start.ancestors() {
            candidates.push(dir.join(".venv-bench/bin/moto_server"));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("moto_server")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// moto's version, from the python beside its moto_server (best effort).
fn moto_version(server: &Path) -> String {
    let python = server.with_file_name("python");
    std::process::Command::new(python)
        .args(["-c", "import moto; print(moto.__version__)"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "(version unknown)".into())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts moto_server on a free port and waits until it answers DescribeRegions.
async fn start_moto(server: &Path, scratch: &Path) -> anyhow::Result<(Moto, Client)> {
    let port = free_port()?;
    let log = scratch.join("moto.log");
    let out = std::fs::File::create(&log)?;
    let child = tokio::process::Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", server.display()))?;
    let pid = child.id().context("moto_server has no pid")?;
    let mut moto = Moto {
        child,
        pid,
        port,
        log,
    };
    let mut client = Client::new(Endpoint {
        name: "moto",
        host: format!("127.0.0.1:{port}"),
        path: "/",
        region: "us-east-1",
        access: "AKIDBENCHMOTO".into(),
        secret: "moto-ignores-signatures".into(),
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = moto.child.try_wait()? {
            bail!(
                "moto_server exited early ({status}); its log:\n{}",
                std::fs::read_to_string(&moto.log).unwrap_or_default()
            );
        }
        if client.call(&[("Action", "DescribeRegions")]).await.is_ok() {
            return Ok((moto, client));
        }
        client.conn = None;
        if Instant::now() > deadline {
            bail!("moto_server did not answer within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tiny raw image through Glance; its ami- id through DescribeImages.
async fn ferrostack_ami(host: &str, password: &str, c: &mut Client) -> anyhow::Result<String> {
    let token = admin_token(host, password).await?;
    let mut g = Conn::open(host).await?;
    super::upload_image(&mut g, &token, "bench-ec2").await?;
    let (_, body) = c
        .call(&[
            ("Action", "DescribeImages"),
            ("Filter.1.Name", "name"),
            ("Filter.1.Value.1", "bench-ec2"),
        ])
        .await?;
    let text = String::from_utf8_lossy(&body);
    let ids = between(&text, "<imageId>", "</imageId>");
    match ids.as_slice() {
        [one] => Ok(one.to_string()),
        _ => bail!("DescribeImages name=bench-ec2 found {} images", ids.len()),
    }
}

/// The first of moto's built-in Amazon AMIs.
async fn moto_ami(c: &mut Client) -> anyhow::Result<String> {
    let (_, body) = c
        .call(&[("Action", "DescribeImages"), ("Owner.1", "amazon")])
        .await?;
    between(&String::from_utf8_lossy(&body), "<imageId>", "</imageId>")
        .first()
        .map(|s| s.to_string())
        .context("moto has no Amazon AMI")
}

/// Waits until none of ferrostack's instances is pending; seconds waited.
async fn wait_running(c: &mut Client) -> anyhow::Result<f64> {
    let t = Instant::now();
    let deadline = t + Duration::from_secs(300);
    loop {
        let (_, body) = c
            .call(&[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", "instance-state-name"),
                ("Filter.1.Value.1", "pending"),
            ])
            .await?;
        let pending = instance_ids(&body).len();
        if pending == 0 {
            return Ok(t.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            bail!("{pending} instances still pending after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ms(s: Series) -> String {
    format!("p50 {:>8.2} ms  p99 {:>8.2} ms", s.0, s.1)
}

/// One measurement's line: ferrostack, moto, moto/ferrostack.
fn row(label: &str, f: Series, m: Option<Series>) {
    match m {
        Some(m) => println!(
            "  {label:<34} {}   │ {}   │ ×{:>6.1} p50, ×{:>6.1} p99",
            ms(f),
            ms(m),
            m.0 / f.0,
            m.1 / f.1
        ),
        None => println!("  {label:<34} {}   │ moto not run", ms(f)),
    }
}

/// This machine's 1-minute load average (other work skews every number here).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub async fn run(opts: Ec2Bench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot make a scratch directory")?;
    let state = dir.path().join("state");
    let password = "bench-admin-password";
    println!(
        "ferrostack bench ec2 — {} build, {} CPUs (load average {}), fake driver, SQLite, state in {}",
        if cfg!(debug_assertions) {
            "DEBUG (numbers not representative; use --release)"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        dir.path().display()
    );
    let server = start_server_with(
        &state,
        password,
        &[
            ("FERROSTACK_QUOTA__INSTANCES", "-1"),
            ("FERROSTACK_QUOTA__CORES", "-1"),
            ("FERROSTACK_QUOTA__RAM", "-1"),
            ("FERROSTACK_QUOTA__PORT", "-1"),
            ("FERROSTACK_NETWORK__PRIVATE_NETWORK_CIDR", "10.0.0.0/16"),
        ],
    )
    .await?;
    let rc = std::fs::read_to_string(state.join("ec2rc.sh")).context("no STATE/ec2rc.sh")?;
    let mut fs = Client::new(Endpoint {
        name: "ferrostack",
        host: server.host.clone(),
        path: "/ec2/",
        region: "RegionOne",
        access: sh_var(&rc, "EC2_ACCESS_KEY").context("no EC2_ACCESS_KEY in ec2rc.sh")?,
        secret: sh_var(&rc, "EC2_SECRET_KEY").context("no EC2_SECRET_KEY in ec2rc.sh")?,
    });
    println!(
        "  ferrostack pid {} at {}/ec2/ (SigV4, RegionOne, the admin's EC2 credentials); idle RSS {:.1} MiB",
        server.pid,
        server.base,
        mib(rss_kib(server.pid, "VmRSS:"))
    );

    let mut moto = match find_moto(opts.moto_server.as_deref()) {
        Some(path) => match start_moto(&path, dir.path()).await {
            Ok((m, c)) => {
                println!(
                    "  moto {} pid {} at http://127.0.0.1:{}/ ({}; SigV4, us-east-1); idle RSS {:.1} MiB",
                    moto_version(&path),
                    m.pid,
                    m.port,
                    path.display(),
                    mib(rss_kib(m.pid, "VmRSS:"))
                );
                Some((m, c))
            }
            Err(e) => {
                println!("  moto: NOT RUN — {path:?} did not start: {e:#}");
                None
            }
        },
        None => {
            println!(
                "  moto: NOT RUN — no moto_server found (--moto-server PATH, \
                 $FERROSTACK_BENCH_VENV/bin, .venv-bench/bin, PATH).\n  \
                 Install it with `scripts/bench-venv` (PyPI moto[server] into .venv-bench) and run again."
            );
            None
        }
    };

    let columns = || {
        println!(
            "  {:<34} {:<32}   │ {:<32}   │ moto/ferrostack",
            "", "ferrostack", "moto"
        );
    };

    // 0. Floor.
    let regions = [("Action", "DescribeRegions")];
    let (floor_f, _) = series(&mut fs, &regions, 300).await?;
    let floor_m = match moto.as_mut() {
        Some((_, c)) => Some(series(c, &regions, 300).await?.0),
        None => None,
    };
    println!("\n0. API floor (same run; 300 sequential requests, one connection)");
    columns();
    row("DescribeRegions (no database)", floor_f, floor_m);

    // 1. Fill and DescribeInstances.
    let ami = ferrostack_ami(&server.host, password, &mut fs).await?;
    let fill_f = fill(&mut fs, &ami, "m1.tiny", opts.instances).await?;
    let wait_f = wait_running(&mut fs).await?;
    let mut fill_m = None;
    if let Some((_, c)) = moto.as_mut() {
        let ami = moto_ami(c).await?;
        fill_m = Some((fill(c, &ami, "t2.micro", opts.instances).await?, ami));
    }
    let (desc_f, size_f) = describe_all(&mut fs, opts.describe_samples, opts.instances).await?;
    let desc_m = match moto.as_mut() {
        Some((_, c)) => Some(describe_all(c, opts.describe_samples, opts.instances).await?),
        None => None,
    };
    println!(
        "\n1. DescribeInstances of {} instances, one answer (no paging), {} sequential samples",
        opts.instances, opts.describe_samples
    );
    println!(
        "  filled with RunInstances ×100: ferrostack {fill_f:.1} s ({ami}, m1.tiny; none pending {wait_f:.1} s later){}",
        match &fill_m {
            Some((s, ami)) => format!(", moto {s:.1} s ({ami}, t2.micro)"),
            None => String::new(),
        }
    );
    columns();
    row("DescribeInstances (all)", desc_f, desc_m.map(|d| d.0));
    println!(
        "  {:<34} {:<32}   │ {}",
        "answer size",
        format!("{:.0} KB", size_f as f64 / 1e3),
        desc_m.map_or("-".into(), |d| format!("{:.0} KB", d.1 as f64 / 1e3))
    );
    println!(
        "  DescribeInstances p50 / ferrostack's DescribeRegions p50: ×{:.0}",
        desc_f.0 / floor_f.0
    );
    match desc_m {
        Some((m, _)) => {
            let ratio = m.0 / desc_f.0;
            println!(
                "  target: ≥ 10× moto on DescribeInstances — ×{ratio:.1} at p50: {}",
                if ratio >= 10.0 { "MET" } else { "NOT MET" }
            );
        }
        None => println!("  target: ≥ 10× moto on DescribeInstances — moto not run"),
    }

    // 2. RunInstances latency.
    let run_f = run_latency(&mut fs, &ami, "m1.tiny", opts.run_samples).await?;
    let run_m = match (moto.as_mut(), &fill_m) {
        (Some((_, c)), Some((_, ami))) => {
            Some(run_latency(c, ami, "t2.micro", opts.run_samples).await?)
        }
        _ => None,
    };
    println!(
        "\n2. RunInstances MinCount=MaxCount=1, {} sequential samples (until the answer; ferrostack's is pending then)",
        opts.run_samples
    );
    columns();
    row("RunInstances (one)", run_f, run_m);

    // 3. Memory.
    println!(
        "\n3. ferrostack RSS now {:.1} MiB, peak {:.1} MiB with {} instances{}",
        mib(rss_kib(server.pid, "VmRSS:")),
        mib(rss_kib(server.pid, "VmHWM:")),
        opts.instances + opts.run_samples,
        match &moto {
            Some((m, _)) => format!(
                " (moto: now {:.1} MiB, peak {:.1} MiB)",
                mib(rss_kib(m.pid, "VmRSS:")),
                mib(rss_kib(m.pid, "VmHWM:"))
            ),
            None => String::new(),
        }
    );
    println!("  load average at the end: {}", load_average());
    drop(moto);
    drop(server);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_identity::ec2sig::{SignedRequest, verify};

    /// The signature is the one ferrostack's verifier computes.
    #[test]
    fn sigv4_verifies() {
        let ep = Endpoint {
            name: "t",
            host: "127.0.0.1:8080".into(),
            path: "/ec2/",
            region: "RegionOne",
            access: "AK".into(),
            secret: "s3cr'et".into(),
        };
        let body = form(&[
            ("Action", "DescribeImages"),
            ("Filter.1.Name", "name"),
            ("Filter.1.Value.1", "a b/c*"),
        ]);
        assert!(body.contains("Filter.1.Value.1=a%20b%2Fc%2A"), "{body}");
        let date = amz_date();
        let auth = ep.authorization(&body, &date);
        let signature = auth.rsplit("Signature=").next().unwrap().to_string();
        let req = SignedRequest {
            access: "AK".into(),
            signature,
            host: ep.host.clone(),
            verb: "POST".into(),
            path: "/ec2/".into(),
            params: Default::default(),
            headers: [
                ("host".to_string(), ep.host.clone()),
                ("x-amz-date".to_string(), date),
                ("authorization".to_string(), auth),
            ]
            .into_iter()
            .collect(),
            body_hash: Some(hex::encode(Sha256::digest(body.as_bytes()))),
        };
        verify("s3cr'et", &req).unwrap();
        assert!(verify("other", &req).is_err());
    }

    #[test]
    fn reads_ec2rc() {
        let rc = "# x\nexport EC2_ACCESS_KEY='abc'\nexport EC2_SECRET_KEY='it'\\''s'\n";
        assert_eq!(sh_var(rc, "EC2_ACCESS_KEY").as_deref(), Some("abc"));
        assert_eq!(sh_var(rc, "EC2_SECRET_KEY").as_deref(), Some("it's"));
        assert_eq!(sh_var(rc, "EC2_URL"), None);
    }
}
