//! Custom-claim rules shared by `customAttributes`, custom-token `claims` and blocking
//! functions.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Claims a developer may not set (Firebase's list, §4.1 of the wire contract).
pub const RESERVED: &[&str] = &[
    "iss",
    "aud",
    "sub",
    "iat",
    "exp",
    "nbf",
    "jti",
    "nonce",
    "azp",
    "acr",
    "amr",
    "cnf",
    "auth_time",
    "firebase",
    "at_hash",
    "c_hash",
    // Firekeeper's session binding: set by the server only.
    "signInIpAddress",
    "ipBinding",
];

pub const MAX_CLAIMS_CHARS: usize = 1000;

fn check_reserved(map: &Map<String, Value>) -> Result<()> {
    match map.keys().find(|k| RESERVED.contains(&k.as_str())) {
        Some(k) => Err(Error::detail("FORBIDDEN_CLAIM", k.clone())),
        None => Ok(()),
    }
}

/// Validates a serialised `customAttributes` value and returns it normalised
/// (`""` and `null` clear the claims, stored as `{}`).
pub fn parse_custom_attributes(text: &str) -> Result<String> {
    if text.chars().count() > MAX_CLAIMS_CHARS {
        return Err(Error::code("CLAIMS_TOO_LARGE"));
    }
    if text.trim().is_empty() {
        return Ok("{}".to_owned());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => {
            check_reserved(&map)?;
            Ok(text.to_owned())
        }
        Ok(Value::Null) => Ok("{}".to_owned()),
        _ => Err(Error::code("INVALID_CLAIMS")),
    }
}

/// Validates claims given as an object (custom tokens).
pub fn check_claims_object(map: &Map<String, Value>) -> Result<()> {
    if Value::Object(map.clone()).to_string().chars().count() > MAX_CLAIMS_CHARS {
        return Err(Error::code("CLAIMS_TOO_LARGE"));
    }
    check_reserved(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_attribute_rules() {
        assert_eq!(
            parse_custom_attributes("{\"admin\":true}").unwrap(),
            "{\"admin\":true}"
        );
        assert_eq!(parse_custom_attributes("").unwrap(), "{}");
        assert_eq!(parse_custom_attributes("null").unwrap(), "{}");
        assert_eq!(
            parse_custom_attributes("[1]").unwrap_err(),
            Error::code("INVALID_CLAIMS")
        );
        assert_eq!(
            parse_custom_attributes("{\"sub\":1}").unwrap_err(),
            Error::detail("FORBIDDEN_CLAIM", "sub")
        );
        let big = format!("{{\"k\":\"{}\"}}", "x".repeat(1000));
        assert_eq!(
            parse_custom_attributes(&big).unwrap_err(),
            Error::code("CLAIMS_TOO_LARGE")
        );
    }
}
