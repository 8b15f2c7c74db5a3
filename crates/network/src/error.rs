//! Network errors. Each variant carries Neutron's error `type` (e.g.
//! `NetworkNotFound`) so the API can render `{"NeutronError": {"type", "message", "detail"}}`.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400.
    #[error("{message}")]
    Invalid { kind: &'static str, message: String },
    /// 403 (policy) — Neutron also answers 404 for what a project may not see.
    #[error("{message}")]
    Forbidden { kind: &'static str, message: String },
    /// 404.
    #[error("{message}")]
    NotFound { kind: &'static str, message: String },
    /// 409 (in use, IP taken, quota exceeded is `OverQuota` 409 in Neutron).
    #[error("{message}")]
    Conflict { kind: &'static str, message: String },
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Neutron's exception name for the body's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid { kind, .. }
            | Error::Forbidden { kind, .. }
            | Error::NotFound { kind, .. }
            | Error::Conflict { kind, .. } => kind,
            Error::Internal(_) => "InternalError",
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(Box::new(e))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
