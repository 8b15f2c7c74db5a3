//! `ferrostack bench image`: upload and download of one large image through the
//! Glance API of a child server (fresh state directory, SQLite), beside this
//! machine's own limits measured in the same run on the same disk: write+fsync of
//! the same number of bytes, md5 and sha512 of them on one core each, and all
//! three at once on their own threads (what the upload pipeline does). Prints
//! MB/s (10^6 bytes/s), the ratios, and the server's peak RSS. Then the same
//! download through `curl`, beside `cat` of the store's file.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::Request;
use hyper::body::Frame;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::limits;

use super::{Conn, rss_kib, start_server};

#[derive(clap::Args, Debug)]
pub struct ImageBench {
    /// Image size in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Size of the pieces the client sends, in KiB.
    #[arg(long, default_value_t = 64)]
    chunk_kib: usize,
}

/// Distinct pseudo-random data the upload cycles through.
const POOL: usize = 8 << 20;

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

pub(crate) async fn admin_token(host: &str, password: &str) -> anyhow::Result<String> {
    let mut c = Conn::open(host).await?;
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let (status, headers, body) = c
        .send(
            "POST",
            "/identity/v3/auth/tokens?nocatalog",
            &[],
            Some(&body),
        )
        .await?;
    if status != 201 {
        bail!(
            "admin authentication failed: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .context("no X-Subject-Token")?
        .to_string())
}

pub async fn run(opts: ImageBench) -> anyhow::Result<()> {
    let total = opts.size_mib << 20;
    let chunk = (opts.chunk_kib.max(1)) << 10;
    let dir = tempfile::tempdir_in(std::env::current_dir()?)
        .context("cannot make a scratch directory here (the disk under test)")?;
    let state = dir.path().join("state");
    let password = "bench-admin-password";
    println!(
        "ferrostack bench image — {} build, {} CPUs, {} MiB image, {} KiB client chunks, state on {}",
        if cfg!(debug_assertions) {
            "DEBUG (numbers not representative; use --release)"
        } else {
            "release"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        opts.size_mib,
        opts.chunk_kib,
        dir.path().display()
    );

    // This machine's limits, on the same disk and bytes count.
    let scratch = dir.path().join("limits");
    std::fs::create_dir_all(&scratch)?;
    let (write_fsync, md5, sha512, together) = tokio::task::spawn_blocking(move || {
        let w = limits::measure_write_fsync(&scratch, total);
        let m = limits::measure_md5(total);
        let s = limits::measure_sha512(total);
        (w, m, s, limits::measure_all_at_once(&scratch, total))
    })
    .await?;
    let write_fsync = write_fsync.context("write+fsync measurement failed")?;
    let together = together.context("combined measurement failed")?;
    let binding = write_fsync.min(md5).min(sha512);
    println!("\nThis machine, same run:");
    println!("  write+fsync            {write_fsync:8.0} MB/s");
    println!("  md5 (one core)         {md5:8.0} MB/s");
    println!("  sha512 (one core)      {sha512:8.0} MB/s");
    println!("  slowest of the three   {binding:8.0} MB/s");
    println!(
        "  all three at once      {together:8.0} MB/s  (one thread each, no HTTP: the pipeline's work alone)"
    );

    let server = start_server(&state, password).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_kib(server.pid, "VmRSS:");
    let token = admin_token(&server.host, password).await?;
    let auth = [("x-auth-token", token.as_str())];

    let mut c = Conn::open(&server.host).await?;
    let (status, _, body) = c
        .send(
            "POST",
            "/image/v2/images",
            &auth,
            Some(&json!({"name": "bench", "disk_format": "raw", "container_format": "bare"})),
        )
        .await?;
    if status != 201 {
        bail!(
            "image create failed: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let id = serde_json::from_slice::<Value>(&body)?["id"]
        .as_str()
        .context("no image id")?
        .to_string();

    // Upload: a streamed body cut from a pool of pseudo-random bytes (no copies).
    let mut pool = vec![0u8; POOL];
    limits::fill_pseudo_random(&mut pool, 7);
    let pool = Bytes::from(pool);
    let mut offsets = (0..total).step_by(chunk);
    let pieces = futures::stream::iter(std::iter::from_fn(move || {
        let at = offsets.next()?;
        let len = usize::try_from((total - at).min(chunk as u64)).unwrap_or(chunk);
        let start = usize::try_from(at % POOL as u64).unwrap_or(0);
        let start = if start + len > POOL { 0 } else { start };
        Some(Ok::<_, std::convert::Infallible>(Frame::data(
            pool.slice(start..start + len),
        )))
    }));
    let stream = TcpStream::connect(&server.host).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method("PUT")
        .uri(format!("/image/v2/images/{id}/file"))
        .header("host", &server.host)
        .header("x-auth-token", &token)
        .header("content-type", "application/octet-stream")
        .header("content-length", total)
        .body(StreamBody::new(pieces))?;
    let t = Instant::now();
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let up = t.elapsed();
    if status.as_u16() != 204 {
        bail!("upload failed: {status} {}", String::from_utf8_lossy(&body));
    }
    let after_up = rss_kib(server.pid, "VmHWM:");

    // Download, counting bytes.
    let stream = TcpStream::connect(&server.host).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::builder()
        .uri(format!("/image/v2/images/{id}/file"))
        .header("host", &server.host)
        .header("x-auth-token", &token)
        .body(http_body_util::Empty::<Bytes>::new())?;
    let t = Instant::now();
    let resp = sender.send_request(req).await?;
    if resp.status().as_u16() != 200 {
        bail!("download failed: {}", resp.status());
    }
    let mut body = resp.into_body().into_data_stream();
    let mut got: u64 = 0;
    while let Some(piece) = body.next().await {
        got += piece?.len() as u64;
    }
    let down = t.elapsed();
    if got != total {
        bail!("download returned {got} bytes, expected {total}");
    }
    let peak = rss_kib(server.pid, "VmHWM:");

    let up_rate = mbps(total, up);
    let down_rate = mbps(total, down);
    println!("\nThrough the API (PUT/GET /v2/images/{{id}}/file, one connection):");
    println!(
        "  upload                 {up_rate:8.0} MB/s  = {:3.0}% of the slowest limit, {:3.0}% of all three at once (target >= 85%)",
        100.0 * up_rate / binding,
        100.0 * up_rate / together
    );
    println!(
        "  download               {down_rate:8.0} MB/s  = {:3.0}% of write+fsync (target >= 90%; reads come from the page cache)",
        100.0 * down_rate / write_fsync
    );
    println!(
        "  server RSS: idle {:.1} MiB, peak after upload {:.1} MiB, peak after download {:.1} MiB (target < 64 MiB)",
        idle as f64 / 1024.0,
        after_up as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    curl_beside_cat(
        &server.host,
        &token,
        &id,
        &state.join("images").join(&id),
        total,
    )?;
    drop(server);
    Ok(())
}

/// The same download through `curl` (a client that is not ours), beside `cat` of
/// the store's file (one copy out of the page cache, no network): five runs each,
/// alternating, median. Glance is not started by this bench; run Glance's download
/// by hand with the same curl line to compare.
fn curl_beside_cat(
    host: &str,
    token: &str,
    id: &str,
    file: &std::path::Path,
    total: u64,
) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    if Command::new("curl").arg("--version").output().is_err() {
        println!("  (curl not found: no curl column)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let headers = super::curl_header_file(dir.path(), "h", token, "")?;
    let (mut by_curl, mut by_cat) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download} %{time_total}",
                "-H",
            ])
            .arg(format!("@{}", headers.display()))
            .arg(format!("http://{host}/image/v2/images/{id}/file"))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let parts: Vec<&str> = text.split(' ').collect();
        if parts.first() != Some(&"200") || parts.get(1) != Some(&total.to_string().as_str()) {
            bail!("curl download answered {text:?}");
        }
        let secs: f64 = parts
            .get(2)
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(f64::NAN);
        by_curl.push(total as f64 / secs / 1e6);

        let t = Instant::now();
        let status = Command::new("cat")
            .arg(file)
            .stdout(std::fs::File::create("/dev/null")?)
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("cat {} failed", file.display());
        }
        by_cat.push(mbps(total, t.elapsed()));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (curl, cat) = (median(&mut by_curl), median(&mut by_cat));
    println!(
        "
The same download through curl, beside cat of the store's file (5 runs each, median):"
    );
    println!("  curl GET .../file      {curl:8.0} MB/s  (new connection, body to /dev/null)");
    println!(
        "  cat FILE > /dev/null   {cat:8.0} MB/s  (one copy from the page cache; curl = {:3.0}% of it)",
        100.0 * curl / cat
    );
    Ok(())
}
