//! `ferrostack bench compute`: servers through the Nova API of a child server
//! (fresh state directory, SQLite, fake driver, quotas off), with an API floor
//! measured in the same run (`GET /compute/v2.1/` version document and `GET` of
//! one server: the cost of a round trip with token validation):
//! 1. create → ACTIVE latency, one server at a time (POST, then GET every 1 ms);
//! 2. servers created per second by 8 concurrent clients, and how long until all
//!    of them are ACTIVE;
//! 3. the database filled to 10,000 servers (multi-create, `max_count` 100), then
//!    `GET /servers/detail` (one page of 1,000) and `GET /servers` latency;
//! 4. the server's RSS (now and peak).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::image::admin_token;
use super::{Conn, rss_kib, start_server_with};

#[derive(clap::Args, Debug)]
pub struct ComputeBench {
    /// Servers created one at a time for the latency measurement.
    #[arg(long, default_value_t = 200)]
    latency_servers: usize,
    /// Concurrent clients for the throughput measurement.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Servers each client creates in the throughput measurement.
    #[arg(long, default_value_t = 50)]
    per_client: usize,
    /// Servers in the database for the list measurement.
    #[arg(long, default_value_t = 10_000)]
    total: usize,
    /// List requests measured.
    #[arg(long, default_value_t = 30)]
    list_samples: usize,
}

const MV: (&str, &str) = ("openstack-api-version", "compute 2.79");

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

async fn json_req(
    c: &mut Conn,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let (status, _, bytes) = c
        .send(method, path, &[("x-auth-token", token), MV], body)
        .await?;
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Ok((status, v))
}

async fn create(
    c: &mut Conn,
    token: &str,
    image: &str,
    name: &str,
    count: usize,
) -> anyhow::Result<String> {
    let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "42",
        "networks": "none", "min_count": count, "max_count": count}});
    let (status, v) = json_req(c, "POST", "/compute/v2.1/servers", token, Some(&body)).await?;
    if status != 202 {
        bail!("create answered {status}: {v}");
    }
    Ok(v["server"]["id"].as_str().unwrap_or_default().to_string())
}

async fn status_of(c: &mut Conn, token: &str, id: &str) -> anyhow::Result<String> {
    let (st, v) = json_req(
        c,
        "GET",
        &format!("/compute/v2.1/servers/{id}"),
        token,
        None,
    )
    .await?;
    if st != 200 {
        bail!("show answered {st}: {v}");
    }
    Ok(v["server"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn count_active(c: &mut Conn, token: &str) -> anyhow::Result<(usize, usize)> {
    let (_, v) = json_req(
        c,
        "GET",
        "/compute/v2.1/servers/detail?status=BUILD&limit=1000",
        token,
        None,
    )
    .await?;
    let building = v["servers"].as_array().map_or(0, Vec::len);
    Ok((building, 0))
}

pub async fn run(opts: ComputeBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot make a scratch directory")?;
    let state = dir.path().join("state");
    let password = "bench-admin-password";
    println!(
        "ferrostack bench compute — {} build, {} CPUs, fake driver, SQLite, state in {}",
        if cfg!(debug_assertions) {
            "DEBUG (numbers not representative; use --release)"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.path().display()
    );
    let server = start_server_with(
        &state,
        password,
        &[
            ("FERROSTACK_QUOTA__INSTANCES", "-1"),
            ("FERROSTACK_QUOTA__CORES", "-1"),
            ("FERROSTACK_QUOTA__RAM", "-1"),
        ],
    )
    .await?;
    let host = server.host.clone();
    let token = admin_token(&host, password).await?;
    let mut c = Conn::open(&host).await?;

    // A tiny image to boot.
    let image = super::upload_image(&mut c, &token, "bench").await?;
    println!(
        "  idle RSS {:>6.1} MiB",
        rss_kib(server.pid, "VmRSS:") as f64 / 1024.0
    );

    // Floor: the version document and one server's GET.
    let first = create(&mut c, &token, &image, "floor", 1).await?;
    while status_of(&mut c, &token, &first).await? == "BUILD" {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut floor_doc = Vec::new();
    let mut floor_get = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        json_req(&mut c, "GET", "/compute/v2.1/", &token, None).await?;
        floor_doc.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        status_of(&mut c, &token, &first).await?;
        floor_get.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (d50, d99) = summary(&mut floor_doc);
    let (g50, g99) = summary(&mut floor_get);
    println!("\nbaseline (same run)");
    println!("  GET /compute/v2.1/ (no database)            p50 {d50:>7.2} ms   p99 {d99:>7.2} ms");
    println!(
        "  GET /servers/{{id}} (token + one row)         p50 {g50:>7.2} ms   p99 {g99:>7.2} ms"
    );

    // 1. create → ACTIVE, one at a time.
    let mut lat = Vec::new();
    let mut post = Vec::new();
    for i in 0..opts.latency_servers {
        let t = Instant::now();
        let id = create(&mut c, &token, &image, &format!("lat-{i}"), 1).await?;
        post.push(t.elapsed().as_secs_f64() * 1e3);
        loop {
            let s = status_of(&mut c, &token, &id).await?;
            if s == "ACTIVE" {
                break;
            }
            if s == "ERROR" {
                bail!("server {id} went to ERROR");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p99) = summary(&mut post);
    let (a50, a99) = summary(&mut lat);
    println!(
        "\n1. create → ACTIVE, one at a time ({} servers, polling every 1 ms)",
        opts.latency_servers
    );
    println!("  POST /servers → 202                         p50 {p50:>7.2} ms   p99 {p99:>7.2} ms");
    println!(
        "  POST → status ACTIVE                        p50 {a50:>7.2} ms   p99 {a99:>7.2} ms   (target p50 < 20 ms)"
    );

    // 2. 8 concurrent clients.
    let n = opts.clients * opts.per_client;
    let t = Instant::now();
    let mut tasks = Vec::new();
    let image_a = Arc::new(image.clone());
    for k in 0..opts.clients {
        let host = host.clone();
        let token = token.clone();
        let image = image_a.clone();
        let per = opts.per_client;
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&host).await?;
            let mut ids = Vec::new();
            for i in 0..per {
                ids.push(create(&mut c, &token, &image, &format!("burst-{k}-{i}"), 1).await?);
            }
            Ok::<_, anyhow::Error>(ids)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await??);
    }
    let accepted = t.elapsed();
    loop {
        let (building, _) = count_active(&mut c, &token).await?;
        if building == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_active = t.elapsed();
    println!(
        "\n2. {} clients × {} creates",
        opts.clients, opts.per_client
    );
    println!(
        "  accepted {:>6.0} servers/s ({n} in {:.2} s); all ACTIVE after {:.2} s = {:>6.0} servers/s end to end",
        n as f64 / accepted.as_secs_f64(),
        accepted.as_secs_f64(),
        all_active.as_secs_f64(),
        n as f64 / all_active.as_secs_f64()
    );

    // 3. Fill to `total` and list.
    let have = 1 + opts.latency_servers + n;
    let t = Instant::now();
    let mut left = opts.total.saturating_sub(have);
    let mut batch = 0;
    while left > 0 {
        let k = left.min(100);
        create(&mut c, &token, &image, &format!("fill-{batch}"), k).await?;
        left -= k;
        batch += 1;
    }
    loop {
        let (building, _) = count_active(&mut c, &token).await?;
        if building == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "\n3. {} servers in the database (filled {} in {:.1} s with max_count=100)",
        opts.total,
        opts.total.saturating_sub(have),
        t.elapsed().as_secs_f64()
    );
    for (label, path) in [
        (
            "GET /servers/detail?limit=1000 (one page)",
            "/compute/v2.1/servers/detail?limit=1000",
        ),
        (
            "GET /servers/detail (default page = 1000)",
            "/compute/v2.1/servers/detail",
        ),
        (
            "GET /servers?limit=1000",
            "/compute/v2.1/servers?limit=1000",
        ),
        (
            "GET /servers/detail?limit=1000&name=^fill-9",
            "/compute/v2.1/servers/detail?limit=1000&name=%5Efill-9",
        ),
    ] {
        let mut v = Vec::new();
        let mut items = 0;
        for _ in 0..opts.list_samples {
            // Timed until the last byte is in; parsing the 1.7 MB on this side
            // (~15 ms) is the client's cost, not the server's.
            let t = Instant::now();
            let (st, _, bytes) = c
                .send("GET", path, &[("x-auth-token", &token), MV], None)
                .await?;
            v.push(t.elapsed().as_secs_f64() * 1e3);
            if st != 200 {
                bail!("{path} answered {st}");
            }
            let body: Value = serde_json::from_slice(&bytes)?;
            items = body["servers"].as_array().map_or(0, Vec::len);
        }
        let (p50, p99) = summary(&mut v);
        println!("  {label:<46} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms   ({items} servers)");
    }
    println!(
        "  (targets: detail page ≤ 10 ms, /servers ≤ 5 ms, name filter ≤ 20 ms; this client keeps one connection and sends microversion 2.79)"
    );
    curl_lists(&host, &token, opts.list_samples)?;
    println!(
        "\n4. server RSS now {:.1} MiB, peak {:.1} MiB with {} servers (target < 200 MiB)",
        rss_kib(server.pid, "VmRSS:") as f64 / 1024.0,
        rss_kib(server.pid, "VmHWM:") as f64 / 1024.0,
        opts.total
    );
    drop(server);
    Ok(())
}

/// The same lists through `curl` (a new connection per request, as a user's
/// script would), at the default microversion (2.1) and at 2.79, so the numbers
/// above can be checked against a client that is not this program. `curl`'s
/// `time_total` runs from its start to the last byte. The token goes in a 0600
/// header file, never on curl's command line.
fn curl_lists(host: &str, token: &str, samples: usize) -> anyhow::Result<()> {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("  (curl not found: no curl column)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let plain = super::curl_header_file(dir.path(), "h21", token, "")?;
    let mv279 = super::curl_header_file(
        dir.path(),
        "h279",
        token,
        "\nOpenStack-API-Version: compute 2.79",
    )?;
    println!("\n  the same through curl (new connection each time)");
    for (label, path) in [
        (
            "curl /servers/detail?limit=1000",
            "/compute/v2.1/servers/detail?limit=1000",
        ),
        (
            "curl /servers?limit=1000",
            "/compute/v2.1/servers?limit=1000",
        ),
        (
            "curl /servers/detail?limit=1000&name=^fill-9",
            "/compute/v2.1/servers/detail?limit=1000&name=%5Efill-9",
        ),
        ("curl /compute/v2.1/ (floor)", "/compute/v2.1/"),
    ] {
        let mut line = format!("  {label:<46}");
        for (mv, headers) in [("2.1", &plain), ("2.79", &mv279)] {
            let mut v = Vec::new();
            for _ in 0..samples {
                let out = std::process::Command::new("curl")
                    .args([
                        "-s",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code} %{time_total}",
                        "-H",
                    ])
                    .arg(format!("@{}", headers.display()))
                    .arg(format!("http://{host}{path}"))
                    .output()?;
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                let (code, secs) = text.split_once(' ').unwrap_or(("", ""));
                if code != "200" {
                    bail!("curl {path} answered {text:?}");
                }
                v.push(secs.trim().parse::<f64>().unwrap_or(f64::NAN) * 1e3);
            }
            let (p50, _) = summary(&mut v);
            line.push_str(&format!(" {mv:>4}: p50 {p50:>7.2} ms"));
        }
        println!("{line}");
    }
    Ok(())
}
