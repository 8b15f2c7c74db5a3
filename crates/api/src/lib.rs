//! The HTTP layer. Each OpenStack API is an axum router in its own module that only
//! translates: parse the request, call the domain, shape the response (and its
//! errors, through that API's dialect in [`errors`]). The binary mounts the
//! routers under devstack-style prefixes on one listener (`/identity`, ...) and,
//! when configured, at the root of a service's classic port.

pub mod auth;
pub mod compute;
pub mod console;
pub mod ec2;
pub mod errors;
pub mod identity;
pub mod image;
mod layers;
pub mod links;
pub mod metadata;
pub mod network;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use ferrostack_compute::Compute;
use ferrostack_ec2::Ec2;
use ferrostack_identity::Identity;
use ferrostack_image::Images;
use ferrostack_network::Networks;

pub use layers::{trim_service_root_slash, with_common_layers};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub identity: Arc<Identity>,
    pub image: Arc<Images>,
    pub compute: Arc<Compute>,
    pub network: Arc<Networks>,
    pub ec2: Arc<Ec2>,
}

/// Where a router is mounted, for the links it renders.
#[derive(Clone, Debug)]
pub struct Mount {
    /// The path prefix on this listener (`/identity`, or `` at a service's own port).
    pub prefix: &'static str,
    /// The configured public URL of the service, if any (overrides the Host header).
    pub public_url: Option<String>,
}

/// The router with every service under its prefix on one listener.
pub fn all_services(state: AppState, public_urls: &ServiceUrls) -> Router {
    Router::new()
        .nest(
            "/identity",
            identity::router(state.clone()).layer(axum::Extension(Mount {
                prefix: "/identity",
                public_url: public_urls.identity.clone(),
            })),
        )
        .nest(
            "/image",
            image::router(state.clone()).layer(axum::Extension(Mount {
                prefix: "/image",
                public_url: public_urls.image.clone(),
            })),
        )
        .nest(
            "/compute",
            compute::router(state.clone()).layer(axum::Extension(Mount {
                prefix: "/compute",
                public_url: public_urls.compute.clone(),
            })),
        )
        .nest(
            "/network",
            network::router(state.clone()).layer(axum::Extension(Mount {
                prefix: "/network",
                public_url: public_urls.network.clone(),
            })),
        )
        .nest("/ec2", ec2::router(state.clone()))
        .fallback(not_found)
}

/// One service at the root of its own listener (classic per-service ports).
pub fn single_service(
    state: AppState,
    service: &str,
    public_url: Option<String>,
) -> Option<Router> {
    match service {
        "identity" => Some(identity::router(state).layer(axum::Extension(Mount {
            prefix: "",
            public_url,
        }))),
        "image" => Some(image::router(state).layer(axum::Extension(Mount {
            prefix: "",
            public_url,
        }))),
        "compute" => Some(compute::router(state).layer(axum::Extension(Mount {
            prefix: "",
            public_url,
        }))),
        "network" => Some(network::router(state).layer(axum::Extension(Mount {
            prefix: "",
            public_url,
        }))),
        // The classic EC2 port: `/services/Cloud` (and any other path) answers.
        "ec2" => Some(ec2::router(state)),
        _ => None,
    }
}

/// Public URLs configured per service (None = derived from the request).
#[derive(Clone, Debug, Default)]
pub struct ServiceUrls {
    pub identity: Option<String>,
    pub image: Option<String>,
    pub compute: Option<String>,
    pub network: Option<String>,
}

async fn not_found() -> Response {
    errors::keystone::body(StatusCode::NOT_FOUND, "The resource could not be found.")
        .into_response()
}
