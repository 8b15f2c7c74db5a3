//! The image domain's errors. Each variant is something a caller can act on; the
//! Glance dialect (`api::errors::glance`) maps them to status codes and bodies.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: malformed request or invalid field.
    #[error("{0}")]
    Invalid(String),
    /// 403: policy refused, or a read-only/reserved attribute.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such image (or not visible to the caller), member, tag.
    #[error("{0}")]
    NotFound(String),
    /// 409: the image's state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// 410: the image went away while its data was being uploaded.
    #[error("{0}")]
    Gone(String),
    /// 415: the uploaded bytes are not what the image says they are (Glance's
    /// `InvalidImageData`, answered as `HTTPUnsupportedMediaType`).
    #[error("{0}")]
    InvalidImageData(String),
    /// 413: size cap or quota.
    #[error("{0}")]
    TooLarge(String),
    /// 416: a Range outside the data.
    #[error("Requested range not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    /// 500.
    #[error("An unexpected error prevented the server from fulfilling your request.")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Internal(Box::new(e))
    }

    pub fn no_image(id: &str) -> Error {
        Error::NotFound(format!("No image found with ID {id}"))
    }

    /// Glance's message for a policy refusal.
    pub fn forbidden(action: &str) -> Error {
        Error::Forbidden(format!("You are not authorized to {action}."))
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
