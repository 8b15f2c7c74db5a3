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

    /// A plain 400 (`HTTPBadRequest`), as Neutron's API layer raises for bodies.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::Invalid {
            kind: "HTTPBadRequest",
            message: message.into(),
        }
    }

    /// `Invalid input for <attr>. Reason: <reason>.` (an attribute validator failed).
    pub fn invalid_attr(attr: &str, reason: impl std::fmt::Display) -> Error {
        Error::bad_request(format!("Invalid input for {attr}. Reason: {reason}."))
    }

    /// `InvalidInput`: `Invalid input for operation: <msg>.`
    pub fn invalid_input(msg: impl std::fmt::Display) -> Error {
        let msg = msg.to_string();
        let msg = msg.trim_end_matches('.');
        Error::Invalid {
            kind: "InvalidInput",
            message: format!("Invalid input for operation: {msg}."),
        }
    }

    pub fn invalid(kind: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            kind,
            message: message.into(),
        }
    }

    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            kind,
            message: message.into(),
        }
    }

    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Error {
        Error::NotFound {
            kind,
            message: message.into(),
        }
    }

    /// Neutron's `PolicyNotAuthorized`: `<rule> is disallowed by policy`.
    pub fn policy(rule: &str) -> Error {
        Error::Forbidden {
            kind: "PolicyNotAuthorized",
            message: format!("{rule} is disallowed by policy"),
        }
    }

    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Internal(e.into())
    }

    /// A write that lost a race (duplicate key, deadlock, serialization failure):
    /// the whole transaction may be tried again.
    pub(crate) fn is_retryable(&self) -> bool {
        let Error::Internal(source) = self else {
            return false;
        };
        if source.is::<LostRace>() {
            return true;
        }
        crate::records::lost_race(source.as_ref())
    }
}

/// A concurrent writer took what this transaction chose (an address it picked was
/// free when read and taken when checked): the transaction is tried again.
#[derive(Debug, thiserror::Error)]
#[error("a concurrent request took the resource first")]
pub(crate) struct LostRace;

impl Error {
    pub(crate) fn lost_race() -> Error {
        Error::Internal(Box::new(LostRace))
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

pub type Result<T> = std::result::Result<T, Error>;
