use serde_json::{Map, Value};

/// The verified claims of a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// The user's uid (`sub`).
    pub fn uid(&self) -> &str {
        self.str("sub").unwrap_or_default()
    }

    /// The sign-in session the token belongs to (Firekeeper's `sid`).
    pub fn session_id(&self) -> Option<&str> {
        self.str("sid")
    }

    pub fn tenant(&self) -> Option<&str> {
        self.0
            .get("firebase")
            .and_then(|f| f.get("tenant"))
            .and_then(Value::as_str)
    }

    pub fn issued_at(&self) -> i64 {
        self.0.get("iat").and_then(Value::as_i64).unwrap_or(0)
    }

    /// The time a revocation is compared with: the sign-in (`auth_time`), as the Node Admin
    /// SDK does, or `iat` when earlier or absent. A cookie made from an old sign-in is then
    /// revoked even in the second it was made; the server refuses to extend a sign-in
    /// older than a revocation, so no valid token has an older `auth_time`.
    pub fn revocation_time(&self) -> i64 {
        match self.auth_time() {
            a if a > 0 => a.min(self.issued_at()),
            _ => self.issued_at(),
        }
    }

    pub fn auth_time(&self) -> i64 {
        self.0.get("auth_time").and_then(Value::as_i64).unwrap_or(0)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// Any claim, custom claims included (`claims.get("admin") == Some(&true.into())`).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}
