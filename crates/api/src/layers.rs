//! Layers every listener gets: a request id (`x-openstack-request-id: req-<uuid>`)
//! on every response and in the tracing span of every log line of the request, an
//! access log line, and panic containment (a panic becomes a 500, not a dead
//! connection).

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, Response};
use tower::util::MapRequestLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-openstack-request-id");

#[derive(Clone, Copy, Default)]
struct OpenStackRequestId;

impl MakeRequestId for OpenStackRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        // Ids supplied by clients are not trusted: each request gets a fresh one.
        ferrostack_core::ids::new_request_id()
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

/// Wraps a router with request ids, tracing and panic containment.
pub fn with_common_layers(router: Router) -> Router {
    router
        .layer(CatchPanicLayer::new())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<axum::body::Body>| {
                    let id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(|resp: &Response<axum::body::Body>, latency: Duration, _span: &Span| {
                    let status = resp.status().as_u16();
                    let ms = latency.as_secs_f64() * 1000.0;
                    if status >= 500 {
                        tracing::error!(status, latency_ms = ms, "request failed");
                    } else {
                        tracing::debug!(status, latency_ms = ms, "request done");
                    }
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, OpenStackRequestId))
        .layer(MapRequestLayer::new(|mut req: Request<axum::body::Body>| {
            req.headers_mut().remove(&REQUEST_ID);
            req
        }))
}

/// `GET /image/` is the same as `GET /image`: clients build version-discovery URLs
/// either way. Routing happens inside the router, so this runs in front of it (see
/// the binary's `serve`): a path of one or two segments with a trailing slash loses
/// the slash (`/image/`, `/compute/v2.1/`).
pub fn trim_service_root_slash(mut req: Request<axum::body::Body>) -> Request<axum::body::Body> {
    // What the client sent stays readable (EC2 signatures cover the path as sent);
    // axum keeps an OriginalUri that is already there.
    if req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .is_none()
    {
        let original = axum::extract::OriginalUri(req.uri().clone());
        req.extensions_mut().insert(original);
    }
    let path = req.uri().path();
    let inner = path.strip_prefix('/').and_then(|p| p.strip_suffix('/'));
    // `/identity/`, `/compute/v2.1/`: at most two segments (a service root or a
    // version root), never a resource path.
    if let Some(segment) = inner.filter(|s| !s.is_empty() && s.matches('/').count() <= 1) {
        let mut new = format!("/{segment}");
        if let Some(q) = req.uri().query() {
            new.push('?');
            new.push_str(q);
        }
        if let Ok(pq) = new.parse::<axum::http::uri::PathAndQuery>() {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}
