//! Routes for what servers are made from and limited by: flavors, key pairs,
//! availability zones, limits, quota sets, hypervisors, services, server groups.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
