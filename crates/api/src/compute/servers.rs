//! Routes for servers: create/list/show/update/delete, actions, metadata, tags,
//! instance actions, consoles, passwords.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
