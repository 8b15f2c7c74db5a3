//! The browser console proxy (nova-novncproxy, spicehtml5proxy and serialproxy
//! in one listener): serves Debian's noVNC and spice-html5 pages, and on a
//! websocket upgrade checks the token (query, noVNC's `path`, or the `token`
//! cookie spice_auto.html sets), the Origin, and where the server's console is
//! now, then relays bytes between the browser and the console's socket until
//! the browser leaves, the token expires or is revoked.
//!
//! The security step ([`rfb`], [`spice`]): when the server's owner set a console
//! password the browser page asks the user for it and the proxy relays the
//! hypervisor's own authentication untouched; when not, the proxy logs in with the
//! guest's random password itself. Either way QEMU never runs a console without one.

mod rfb;
mod spice;
mod wsio;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use ferrostack_compute::Compute;
use ferrostack_compute::consoles::{ConsoleGrant, ConsoleType};
use ferrostack_virt::ConsoleTarget;

use wsio::WsIo;

/// How long a console may take to connect and finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// An open session looks at its token at least this often (revocations made by
/// another process, a server that stopped).
const RECHECK_EVERY: Duration = Duration::from_secs(5);

pub struct ConsoleProxy {
    compute: Arc<Compute>,
    /// noVNC's and spice-html5's files, searched in this order.
    web_dirs: Vec<PathBuf>,
    /// Hosts a page may come from besides the proxy's own (`[console] allowed_origins`).
    allowed_origins: Vec<String>,
}

impl ConsoleProxy {
    pub fn new(
        compute: Arc<Compute>,
        web_dirs: Vec<PathBuf>,
        allowed_origins: Vec<String>,
    ) -> Arc<ConsoleProxy> {
        for d in &web_dirs {
            if !d.is_dir() {
                tracing::warn!(dir = %d.display(), "console web client files missing (scripts/host-tools installs novnc and spice-html5)");
            }
        }
        Arc::new(ConsoleProxy {
            compute,
            web_dirs,
            allowed_origins,
        })
    }
}

/// The proxy's router (its own listener).
pub fn router(proxy: Arc<ConsoleProxy>) -> Router {
    Router::new().fallback(handle).with_state(proxy)
}

/// A refusal; the connection closes after it (a websocket client that goes on
/// reading, as tempest's does, sees the end at once instead of waiting).
fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::CONNECTION, "close"),
        ],
        format!("{why}\n"),
    )
        .into_response()
}

/// A websocket refused before the upgrade: no body, and the connection closes
/// (a client that goes on reading frames, as tempest's does, sees the end at once
/// and nothing it could take for console data). Why is in the log.
fn refuse_upgrade(status: StatusCode) -> Response {
    (status, [(header::CONNECTION, "close")]).into_response()
}

async fn handle(State(p): State<Arc<ConsoleProxy>>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => upgrade(p, ws, &parts.uri, &parts.headers, peer).await,
        Err(_) if parts.method == Method::GET || parts.method == Method::HEAD => {
            static_file(&p, parts.uri.path(), parts.method == Method::HEAD).await
        }
        Err(_) => refuse(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed."),
    }
}

/// A file of the web clients. Paths starting `//` are refused (Nova's fix for an
/// open redirect), and nothing outside the clients' directories is served.
async fn static_file(p: &ConsoleProxy, path: &str, head: bool) -> Response {
    let rel = path.trim_start_matches('/');
    let safe = !path.starts_with("//")
        && !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !safe {
        return refuse(StatusCode::NOT_FOUND, "Not found.");
    }
    for dir in &p.web_dirs {
        let (Ok(root), Ok(file)) = (dir.canonicalize(), dir.join(rel).canonicalize()) else {
            continue;
        };
        if !file.starts_with(&root) || !file.is_file() {
            continue;
        }
        let Ok(bytes) = tokio::fs::read(&file).await else {
            continue;
        };
        let len = bytes.len();
        let body = if head {
            Body::empty()
        } else {
            Body::from(bytes)
        };
        return Response::builder()
            .header(header::CONTENT_TYPE, content_type(&file))
            .header(header::CONTENT_LENGTH, len)
            .header(header::CACHE_CONTROL, "no-cache")
            .body(body)
            .unwrap_or_else(|_| refuse(StatusCode::INTERNAL_SERVER_ERROR, "error"));
    }
    refuse(StatusCode::NOT_FOUND, "Not found.")
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "ogg" | "oga" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        _ => "application/octet-stream",
    }
}

/// The token: `?token=`, else inside noVNC's `?path=` (`path=%3Ftoken%3D...`), else
/// the `token` cookie.
fn token_of(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let query = uri.query().unwrap_or("");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let find = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .find(|(k, v)| k == "token" && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    if let Some(t) = find(&pairs) {
        return Some(t);
    }
    if let Some((_, path)) = pairs.iter().find(|(k, _)| k == "path") {
        let inner = path.split_once('?').map_or(path.as_str(), |(_, q)| q);
        let inner: Vec<(String, String)> = url::form_urlencoded::parse(inner.as_bytes())
            .into_owned()
            .collect();
        if let Some(t) = find(&inner) {
            return Some(t);
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == "token" && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// Nova's Origin rule: no Origin (not a browser) passes; otherwise its host must
/// be the one the page was served from (the Host header) or an allowed origin,
/// and its scheme the one of the URL the token was issued with.
fn origin_allowed(
    headers: &HeaderMap,
    allowed: &[String],
    access_url_base: &str,
) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| "Origin header not valid.")?;
    let o = url::Url::parse(origin).map_err(|_| "Origin header not valid.".to_string())?;
    let host = o.host_str().ok_or("Origin header not valid.")?;
    let origin_hostport = match o.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let expected = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:{}", if o.scheme() == "https" { 443 } else { 80 })
            }
        });
    if expected.as_deref() != Some(origin_hostport.as_str())
        && !allowed.iter().any(|a| a == host || *a == origin_hostport)
    {
        return Err(format!("Origin header does not match this host: {origin}"));
    }
    let want_scheme = match url::Url::parse(access_url_base).map(|u| u.scheme().to_string()) {
        Ok(s) if s == "wss" => "https".to_string(),
        Ok(s) if s == "ws" => "http".to_string(),
        Ok(s) => s,
        Err(_) => o.scheme().to_string(),
    };
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok());
    if o.scheme() != want_scheme && forwarded != Some(want_scheme.as_str()) {
        return Err(format!(
            "Origin header protocol does not match this host: {origin}"
        ));
    }
    Ok(())
}

type Backend = Box<dyn AsyncReadWrite>;
trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

async fn connect(target: &ConsoleTarget) -> std::io::Result<Backend> {
    Ok(match target {
        ConsoleTarget::Unix(path) => {
            Box::new(ferrostack_virt::qemu::process::connect_unix(path).await?)
        }
        ConsoleTarget::Tcp { host, port } => {
            let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            Box::new(s)
        }
    })
}

async fn upgrade(
    p: Arc<ConsoleProxy>,
    ws: WebSocketUpgrade,
    uri: &Uri,
    headers: &HeaderMap,
    peer: String,
) -> Response {
    let Some(token) = token_of(uri, headers) else {
        return refuse_upgrade(StatusCode::FORBIDDEN);
    };
    let grant = match p.compute.console_connect(&token).await {
        Ok(g) => g,
        Err(e) => {
            tracing::info!(%peer, error = %e, "console connect refused: token");
            return refuse_upgrade(StatusCode::FORBIDDEN);
        }
    };
    if let Err(why) = origin_allowed(headers, &p.allowed_origins, &grant.access_url_base) {
        tracing::warn!(%peer, server = %grant.instance_uuid, why, "console connect refused: origin");
        return refuse_upgrade(StatusCode::FORBIDDEN);
    }
    let backend =
        match tokio::time::timeout(Duration::from_secs(5), connect(&grant.endpoint.target)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::warn!(server = %grant.instance_uuid, error = %e, "console not reachable");
                return refuse_upgrade(StatusCode::BAD_GATEWAY);
            }
            Err(_) => {
                return refuse_upgrade(StatusCode::GATEWAY_TIMEOUT);
            }
        };
    tracing::info!(
        %peer,
        server = %grant.instance_uuid,
        console_type = grant.console_type.as_str(),
        "console attached"
    );
    let compute = p.compute.clone();
    ws.protocols(["binary"])
        .on_upgrade(move |socket| session(compute, socket, backend, grant, peer))
}

/// One console session: the security step, then bytes both ways until someone
/// leaves or the token ends.
async fn session(
    compute: Arc<Compute>,
    socket: WebSocket,
    mut backend: Backend,
    grant: ConsoleGrant,
    peer: String,
) {
    let server = grant.instance_uuid.clone();
    let mut io = WsIo::new(socket);
    let secure = async {
        let pw = grant
            .endpoint
            .password
            .as_ref()
            .map(|p| p.expose().to_string());
        match (grant.console_type, pw) {
            (ConsoleType::Novnc, Some(pw)) if !grant.endpoint.user_password => {
                rfb::login_server(&mut backend, &pw).await?;
                rfb::greet_client(&mut io).await?;
            }
            (ConsoleType::SpiceHtml5, Some(pw)) if !grant.endpoint.user_password => {
                spice::link_with_password(&mut io, &mut backend, &pw).await?;
            }
            _ => {}
        }
        Ok::<(), HandshakeError>(())
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, secure).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(%peer, server, error = %e, "console session ended in its handshake");
            close(io.into_parts().0, 4401, "console authentication failed").await;
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, server, "console handshake timed out");
            close(io.into_parts().0, 4408, "console handshake timed out").await;
            return;
        }
    }
    let (ws, early) = io.into_parts();
    let why = relay(&compute, ws, backend, early, &grant).await;
    tracing::info!(%peer, server, why, "console detached");
}

#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error(transparent)]
    Rfb(#[from] rfb::RfbError),
    #[error(transparent)]
    Spice(#[from] spice::SpiceError),
}

async fn close(mut ws: WebSocket, code: u16, reason: &str) {
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// Copies bytes both ways; why it stopped.
async fn relay(
    compute: &Compute,
    ws: WebSocket,
    backend: Backend,
    early: bytes::Bytes,
    grant: &ConsoleGrant,
) -> &'static str {
    let (mut sink, mut stream) = ws.split();
    let (mut rd, mut wr) = tokio::io::split(backend);
    if !early.is_empty() && wr.write_all(&early).await.is_err() {
        return "the console closed";
    }
    let now_us = ferrostack_core::time::now().unix_timestamp_nanos() / 1000;
    let left = u64::try_from(i128::from(grant.expires_us) - now_us).unwrap_or(0);
    let expiry = tokio::time::sleep(Duration::from_micros(left));
    tokio::pin!(expiry);
    let mut revoked = compute.console_revocations();
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.tick().await;
    let mut buf = vec![0u8; 64 * 1024];
    let why = loop {
        tokio::select! {
            m = stream.next() => match m {
                Some(Ok(Message::Binary(b))) => {
                    if wr.write_all(&b).await.is_err() { break "the console closed"; }
                }
                Some(Ok(Message::Text(t))) => {
                    if wr.write_all(t.as_bytes()).await.is_err() { break "the console closed"; }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "the browser left",
            },
            n = rd.read(&mut buf) => match n {
                Ok(0) | Err(_) => break "the console closed",
                Ok(n) => {
                    if sink.send(Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break "the browser left";
                    }
                }
            },
            _ = &mut expiry => break "the token expired",
            r = revoked.changed() => {
                if r.is_err() || !compute.console_token_live(&grant.token_hash).await.unwrap_or(false) {
                    break "the token was revoked";
                }
            }
            _ = recheck.tick() => {
                if !compute.console_token_live(&grant.token_hash).await.unwrap_or(true) {
                    break "the token was revoked";
                }
            }
        }
    };
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: why.into(),
        })))
        .await;
    let _ = wr.shutdown().await;
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_token_is_found_where_each_client_puts_it() {
        let none = HeaderMap::new();
        let u: Uri = "/?token=abc".parse().unwrap();
        assert_eq!(token_of(&u, &none).as_deref(), Some("abc"));
        let u: Uri = "/websockify?path=%3Ftoken%3Dxyz".parse().unwrap();
        assert_eq!(token_of(&u, &none).as_deref(), Some("xyz"));
        let u: Uri = "/websockify".parse().unwrap();
        let c = headers(&[("cookie", "a=b; token=ck")]);
        assert_eq!(token_of(&u, &c).as_deref(), Some("ck"));
        assert_eq!(token_of(&u, &none), None);
    }

    #[test]
    fn origins_must_match_the_host_or_the_allowed_list() {
        let base = "http://127.0.0.1:6080/vnc_auto.html";
        let ok = headers(&[
            ("host", "127.0.0.1:6080"),
            ("origin", "http://127.0.0.1:6080"),
        ]);
        assert!(origin_allowed(&ok, &[], base).is_ok());
        let no_origin = headers(&[("host", "127.0.0.1:6080")]);
        assert!(origin_allowed(&no_origin, &[], base).is_ok());
        let evil = headers(&[
            ("host", "127.0.0.1:6080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(origin_allowed(&evil, &[], base).is_err());
        assert!(origin_allowed(&evil, &["evil.example".into()], base).is_ok());
        let scheme = headers(&[
            ("host", "127.0.0.1:6080"),
            ("origin", "https://127.0.0.1:6080"),
        ]);
        assert!(origin_allowed(&scheme, &[], base).is_err());
    }
}
