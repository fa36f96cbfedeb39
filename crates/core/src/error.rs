//! The one error type. Each variant knows its HTTP status and Google envelope fields; the
//! server only renders them.

use crate::store::{StoreError, UniqueField};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A domain error: 400, message `CODE` or `CODE : detail` (space, colon, space).
    #[error("{}", code_message(code, detail))]
    Code {
        code: &'static str,
        detail: Option<String>,
    },
    /// 400 `INVALID_ARGUMENT` for schema problems (`Invalid JSON payload received. ...`).
    #[error("{0}")]
    InvalidArgument(String),
    /// 400 `INVALID_ARGUMENT` with reason `parseError` for unparsable JSON.
    #[error("{0}")]
    ParseError(String),
    /// 403: no API key and no admin credential.
    #[error("The request is missing a valid API key.")]
    MissingApiKey,
    /// 400: an API key the project does not know.
    #[error("API key not valid. Please pass a valid API key.")]
    InvalidApiKey,
    /// 401: admin-only operation without a credential.
    #[error("Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")]
    MissingCredential,
    /// 401: a Bearer credential that is not valid.
    #[error("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")]
    InvalidCredential,
    /// 403: a valid admin credential used outside its project.
    #[error("The caller does not have permission")]
    PermissionDenied,
    #[error("Not Found")]
    NotFound,
    /// 501 with the given message.
    #[error("{0}")]
    NotImplemented(String),
    /// 409: the record kept changing under concurrent writes; the client may retry.
    #[error("ABORTED : The account was changed concurrently; retry the request.")]
    Aborted,
    /// 413: body larger than the configured limit.
    #[error("Request payload size exceeds the limit: {0} bytes.")]
    PayloadTooLarge(usize),
    /// A blocking function refused or failed: `BLOCKING_FUNCTION_ERROR_RESPONSE : detail`,
    /// 400 when the function answered with an error, 500 `INTERNAL` when it could not be
    /// reached or answered nonsense (blocking-functions.md §6).
    #[error("BLOCKING_FUNCTION_ERROR_RESPONSE : {detail}")]
    Blocking { status: u16, detail: String },
    /// 500 `INTERNAL`; the detail is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

fn code_message(code: &str, detail: &Option<String>) -> String {
    match detail {
        Some(d) => format!("{code} : {d}"),
        None => code.to_owned(),
    }
}

impl Error {
    pub fn code(code: &'static str) -> Self {
        Error::Code { code, detail: None }
    }

    pub fn detail(code: &'static str, detail: impl Into<String>) -> Self {
        Error::Code {
            code,
            detail: Some(detail.into()),
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        Error::Internal(what.to_string())
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Error::Code { .. }
            | Error::InvalidArgument(_)
            | Error::ParseError(_)
            | Error::InvalidApiKey => 400,
            Error::MissingCredential | Error::InvalidCredential => 401,
            Error::MissingApiKey | Error::PermissionDenied => 403,
            Error::NotFound => 404,
            Error::Aborted => 409,
            Error::PayloadTooLarge(_) => 413,
            Error::NotImplemented(_) => 501,
            Error::Blocking { status, .. } => *status,
            Error::Internal(_) => 500,
        }
    }

    /// Google's `status` field; domain errors carry none (production omits it too).
    pub fn status(&self) -> Option<&'static str> {
        match self {
            Error::Code { .. } => None,
            Error::InvalidArgument(_) | Error::ParseError(_) | Error::InvalidApiKey => {
                Some("INVALID_ARGUMENT")
            }
            Error::MissingCredential | Error::InvalidCredential => Some("UNAUTHENTICATED"),
            Error::MissingApiKey | Error::PermissionDenied => Some("PERMISSION_DENIED"),
            Error::NotFound => Some("NOT_FOUND"),
            Error::Aborted => Some("ABORTED"),
            Error::PayloadTooLarge(_) => Some("INVALID_ARGUMENT"),
            Error::NotImplemented(_) => Some("NOT_IMPLEMENTED"),
            Error::Blocking { status, .. } => (*status >= 500).then_some("INTERNAL"),
            Error::Internal(_) => Some("INTERNAL"),
        }
    }

    /// The message clients see. Internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "INTERNAL_ERROR".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(UniqueField::Email) => Error::code("EMAIL_EXISTS"),
            StoreError::Conflict(UniqueField::Phone) => Error::code("PHONE_NUMBER_EXISTS"),
            StoreError::Conflict(UniqueField::LocalId) => Error::code("DUPLICATE_LOCAL_ID"),
            StoreError::Conflict(UniqueField::Federated) => {
                Error::code("FEDERATED_USER_ID_ALREADY_LINKED")
            }
            StoreError::Conflict(UniqueField::Other) => Error::internal("unique constraint"),
            StoreError::NotFound => Error::code("USER_NOT_FOUND"),
            StoreError::Stale => Error::Aborted,
            StoreError::Backend(msg) => Error::Internal(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_space_colon_space() {
        assert_eq!(
            Error::detail("WEAK_PASSWORD", "Password should be at least 6 characters").to_string(),
            "WEAK_PASSWORD : Password should be at least 6 characters"
        );
        assert_eq!(Error::code("EMAIL_EXISTS").to_string(), "EMAIL_EXISTS");
        assert_eq!(Error::code("EMAIL_EXISTS").status(), None);
        assert_eq!(Error::MissingApiKey.http_status(), 403);
    }
}
