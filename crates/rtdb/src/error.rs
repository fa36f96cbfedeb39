//! The database's errors. The Realtime Database REST protocol has its own envelope,
//! `{"error": "<text>"}` with a plain status (spec §4.6), unlike the Identity Toolkit's, so
//! its errors are their own type; storage failures arrive as the core's `Error`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    pub status: u16,
    pub message: String,
}

impl DbError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    /// A rules denial: 401, as Firebase answers it.
    pub fn permission_denied() -> Self {
        Self {
            status: 401,
            message: "Permission denied".into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: 401,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: 500,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for DbError {}

impl From<firekeeper_core::Error> for DbError {
    fn from(e: firekeeper_core::Error) -> Self {
        Self::internal(e.to_string())
    }
}

pub type DbResult<T> = Result<T, DbError>;
