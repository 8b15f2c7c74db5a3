//! The identity domain's errors. Each variant is something a caller (the HTTP
//! layer, another service) can act on; the Keystone dialect maps them to status
//! codes and error bodies in one place (`api::errors::keystone`).

/// Result alias for identity operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed or a field is invalid.
    #[error("{0}")]
    Validation(String),
    /// 401: authentication failed (bad credentials, bad token, disabled user, ...).
    /// The message is what Keystone tells the client; never a secret.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the policy says no. Holds the policy action name.
    #[error("You are not authorized to perform the requested action: {0}.")]
    Forbidden(String),
    /// 403 with a specific explanation (e.g. deleting an enabled domain).
    #[error("{0}")]
    ForbiddenAction(String),
    /// 404.
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    /// 404 with a specific message (token validation).
    #[error("{0}")]
    NotFoundMessage(String),
    /// 409: a duplicate or a conflicting state.
    #[error("{0}")]
    Conflict(String),
    /// 500: something broke that the caller cannot fix.
    #[error("An unexpected error prevented the server from fulfilling your request.")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Error {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Internal(Box::new(e))
    }

    /// Keystone's answer to a request without valid authentication.
    pub fn unauthenticated() -> Error {
        Error::Unauthorized("The request you have made requires authentication.".into())
    }

    pub fn duplicate(kind: &str, detail: impl std::fmt::Display) -> Error {
        Error::Conflict(format!(
            "Conflict occurred attempting to store {kind} - {detail}."
        ))
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::internal(e)
    }
}

impl From<ferrostack_core::db::DbError> for Error {
    fn from(e: ferrostack_core::db::DbError) -> Self {
        Error::internal(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(e)
    }
}

impl From<ferrostack_core::keyrepo::KeyRepoError> for Error {
    fn from(e: ferrostack_core::keyrepo::KeyRepoError) -> Self {
        Error::internal(e)
    }
}
