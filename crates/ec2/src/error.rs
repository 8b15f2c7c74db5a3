//! EC2's errors: an AWS error code, its message and HTTP status. The api crate
//! renders them (`<Response><Errors><Error>…`, or STS's `<ErrorResponse>`); the
//! domain errors of the services underneath are translated here, in one place.

use std::borrow::Cow;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: Cow<'static, str>,
    pub message: String,
    pub status: u16,
    /// The cause of a 500, logged by the api crate, never shown.
    #[source]
    pub internal: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Error {
            code: code.into(),
            message: message.into(),
            status,
            internal: None,
        }
    }

    pub fn auth_failure() -> Self {
        Self::new(
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        )
    }
    pub fn signature_mismatch() -> Self {
        Self::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        )
    }
    pub fn expired() -> Self {
        Self::new(400, "RequestExpired", "Request has expired.")
    }
    pub fn invalid_action(action: &str) -> Self {
        Self::new(
            400,
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
        )
    }
    pub fn missing(param: &str) -> Self {
        Self::new(
            400,
            "MissingParameter",
            format!("The request must contain the parameter {param}"),
        )
    }
    pub fn invalid_value(param: &str, value: &str, why: &str) -> Self {
        Self::new(
            400,
            "InvalidParameterValue",
            format!("Value ({value}) for parameter {param} is invalid. {why}")
                .trim_end()
                .to_string(),
        )
    }
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameter", message)
    }
    pub fn combination(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterCombination", message)
    }
    pub fn not_found(code: &'static str, what: &str, id: &str) -> Self {
        Self::new(400, code, format!("The {what} '{id}' does not exist"))
    }
    pub fn malformed(code: &'static str, what: &str, id: &str) -> Self {
        Self::new(
            400,
            code,
            format!("Invalid id: \"{id}\" (expecting \"{what}-...\")"),
        )
    }
    pub fn unauthorized() -> Self {
        Self::new(
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        )
    }
    pub fn incorrect_state(message: impl Into<String>) -> Self {
        Self::new(400, "IncorrectInstanceState", message)
    }
    pub fn not_permitted(message: impl Into<String>) -> Self {
        Self::new(400, "OperationNotPermitted", message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(400, "UnsupportedOperation", message)
    }
    pub fn duplicate(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error {
            code: "InternalError".into(),
            message: "An internal error has occurred".into(),
            status: 500,
            internal: Some(e.into()),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::internal(e)
    }
}

/// Nova's errors as EC2 words them: policy → UnauthorizedOperation, quota →
/// InstanceLimitExceeded, a wrong state → IncorrectInstanceState, bad input →
/// InvalidParameterValue.
impl From<ferrostack_compute::Error> for Error {
    fn from(e: ferrostack_compute::Error) -> Self {
        use ferrostack_compute::Error as C;
        match e {
            C::Forbidden(m) if m.contains("Quota exceeded") => {
                Error::new(400, "InstanceLimitExceeded", m)
            }
            C::Forbidden(_) => Error::unauthorized(),
            C::OverLimit(m) => Error::new(400, "InstanceLimitExceeded", m),
            C::BadRequest(m) => Error::new(400, "InvalidParameterValue", m),
            C::NotFound(m) => Error::new(400, "InvalidParameterValue", m),
            C::Conflict(m) | C::Stale(m) => Error::incorrect_state(m),
            C::NotAcceptable(m) | C::NotImplemented(m) => Error::unsupported(m),
            other => Error::internal(other),
        }
    }
}

impl From<ferrostack_image::Error> for Error {
    fn from(e: ferrostack_image::Error) -> Self {
        use ferrostack_image::Error as I;
        match e {
            I::Forbidden(_) => Error::unauthorized(),
            I::Invalid(m)
            | I::InvalidImageData(m)
            | I::NotFound(m)
            | I::Conflict(m)
            | I::Gone(m)
            | I::TooLarge(m) => Error::new(400, "InvalidParameterValue", m),
            other => Error::internal(other),
        }
    }
}

impl From<ferrostack_network::Error> for Error {
    fn from(e: ferrostack_network::Error) -> Self {
        use ferrostack_network::Error as N;
        match e {
            N::Forbidden { .. } => Error::unauthorized(),
            N::Conflict {
                kind: "OverQuota",
                message,
            } => Error::new(400, "ResourceLimitExceeded", message),
            N::Conflict {
                kind: "SecurityGroupRuleExists",
                message,
            } => Error::new(400, "InvalidPermission.Duplicate", message),
            N::Conflict {
                kind: "SecurityGroupInUse",
                message,
            } => Error::new(400, "DependencyViolation", message),
            N::Invalid { message, .. }
            | N::NotFound { message, .. }
            | N::Conflict { message, .. } => Error::new(400, "InvalidParameterValue", message),
            other => Error::internal(other),
        }
    }
}
