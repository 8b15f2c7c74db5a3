//! Compute errors, one variant per answer Nova gives (the API maps each to Nova's
//! fault name: badRequest, forbidden, itemNotFound, conflictingRequest, overLimit,
//! notImplemented).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400 badRequest.
    #[error("{0}")]
    BadRequest(String),
    /// 403 forbidden (policy, and Nova's quota errors on create).
    #[error("{0}")]
    Forbidden(String),
    /// 404 itemNotFound.
    #[error("{0}")]
    NotFound(String),
    /// 406 (an unsupported microversion).
    #[error("{0}")]
    NotAcceptable(String),
    /// 409 conflictingRequest (wrong state, locked, name taken).
    #[error("{0}")]
    Conflict(String),
    /// 409: the row changed under a read-modify-write; callers retry it.
    #[error("{0}")]
    Stale(String),
    /// 413 overLimit.
    #[error("{0}")]
    OverLimit(String),
    /// 501 notImplemented.
    #[error("{0}")]
    NotImplemented(String),
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub fn internal(msg: impl Into<String>) -> Error {
        Error::Internal(msg.into().into())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(Box::new(e))
    }
}

impl From<ferrostack_core::db::DbError> for Error {
    fn from(e: ferrostack_core::db::DbError) -> Self {
        Error::Internal(Box::new(e))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(Box::new(e))
    }
}

impl From<ferrostack_network::Error> for Error {
    fn from(e: ferrostack_network::Error) -> Self {
        use ferrostack_network::Error as N;
        match e {
            N::Invalid { message, .. } => Error::BadRequest(message),
            N::Forbidden { message, .. } => Error::Forbidden(message),
            N::NotFound { message, .. } => Error::BadRequest(message),
            N::Conflict { message, .. } => Error::Conflict(message),
            N::Internal(e) => Error::Internal(e),
        }
    }
}

impl From<ferrostack_image::Error> for Error {
    fn from(e: ferrostack_image::Error) -> Self {
        use ferrostack_image::Error as I;
        match e {
            I::NotFound(m) => Error::NotFound(m),
            I::Forbidden(m) => Error::Forbidden(m),
            I::Invalid(m) | I::InvalidImageData(m) => Error::BadRequest(m),
            I::Conflict(m) => Error::Conflict(m),
            I::TooLarge(m) => Error::OverLimit(m),
            other => Error::Internal(Box::new(other)),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
