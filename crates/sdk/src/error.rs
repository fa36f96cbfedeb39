/// Why a token was not accepted. The kinds match the Admin SDKs' errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Malformed, wrongly signed, or issued for another project or issuer.
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    /// Issued before the user's tokens were revoked, or its session was ended.
    #[error("the token has been revoked")]
    Revoked,
    #[error("the user is disabled")]
    Disabled,
    #[error("the user does not exist")]
    UserNotFound,
    /// The keys or the revocation state could not be obtained: nothing was accepted.
    #[error("verification unavailable: {0}")]
    Unavailable(String),
}
