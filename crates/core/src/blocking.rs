//! Blocking functions (blocking-functions.md): the per-project registration, the port the
//! HTTP client implements, and how a function's answer is read. Calling and applying live
//! in `service::blocking`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::check_claims_object;
use crate::error::{Error, Result};

pub const BEFORE_CREATE: &str = "beforeCreate";
pub const BEFORE_SIGN_IN: &str = "beforeSignIn";
pub const BEFORE_SEND_EMAIL: &str = "beforeSendEmail";
pub const BEFORE_SEND_SMS: &str = "beforeSendSms";
pub const EVENTS: &[&str] = &[
    BEFORE_CREATE,
    BEFORE_SIGN_IN,
    BEFORE_SEND_EMAIL,
    BEFORE_SEND_SMS,
];

/// Production's deadline; a server may be configured lower, never higher.
pub const MAX_DEADLINE: Duration = Duration::from_secs(7);

/// `blockingFunctions` of the project config, as Identity Platform's v2 config API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockingFunctions {
    #[serde(default)]
    pub triggers: BTreeMap<String, Trigger>,
    #[serde(default, alias = "forward_inbound_credentials")]
    pub forward_inbound_credentials: ForwardInboundCredentials,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    #[serde(alias = "function_uri")]
    pub function_uri: String,
    /// Output only: when the trigger was last set (RFC 3339).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "update_time"
    )]
    pub update_time: Option<String>,
    /// Firekeeper: the JWT's `aud` when it must differ from the URI. firebase-functions
    /// checks `aud` against `<project>.cloudfunctions.net/` (or `run.app`), so a handler
    /// served elsewhere needs the audience it expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ForwardInboundCredentials {
    #[serde(alias = "id_token", deserialize_with = "flag")]
    pub id_token: bool,
    #[serde(alias = "access_token", deserialize_with = "flag")]
    pub access_token: bool,
    #[serde(alias = "refresh_token", deserialize_with = "flag")]
    pub refresh_token: bool,
}

/// A boolean, also as the strings `"true"` / `"false"` deployment tools send.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bool(b) => Ok(b),
        Raw::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Raw::Text(t) if t.eq_ignore_ascii_case("false") || t.is_empty() => Ok(false),
        Raw::Text(t) => Err(serde::de::Error::custom(format!("{t:?} is not a boolean"))),
    }
}

impl BlockingFunctions {
    /// The emulator's checks: known event keys, absolute URIs.
    pub fn validate(&self) -> Result<()> {
        for (event, trigger) in &self.triggers {
            if !EVENTS.contains(&event.as_str()) {
                return Err(Error::detail(
                    "INVALID_BLOCKING_FUNCTION",
                    "((Event type is invalid.))",
                ));
            }
            for uri in std::iter::once(&trigger.function_uri).chain(&trigger.audience) {
                if !crate::validate::is_absolute_uri(uri) {
                    return Err(Error::detail(
                        "INVALID_BLOCKING_FUNCTION",
                        "((Expected an absolute URI with valid scheme and host.))",
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn trigger(&self, event: &str) -> Option<&Trigger> {
        self.triggers.get(event)
    }
}

/// Firekeeper's built-in policies: the seeds' common scenarios as one line of config each.
/// They run before the registered functions and refuse with the error a handler throwing
/// the same `HttpsError` would give.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BlockingPolicy {
    /// Sign-ups only with an email in one of these domains (empty: any).
    #[serde(alias = "allowed_email_domains")]
    pub allowed_email_domains: Vec<String>,
    /// Refuse sign-ups whose email is not verified. Password sign-ups never bring a
    /// verified email, so this admits only sign-ups whose provider verified it.
    #[serde(alias = "block_unverified_sign_up")]
    pub block_unverified_sign_up: bool,
    /// Refuse sign-ins while the user's email is not verified.
    #[serde(alias = "require_verified_email")]
    pub require_verified_email: bool,
    /// Refuse sign-ups and sign-ins from these CIDR ranges.
    #[serde(alias = "denied_ip_ranges")]
    pub denied_ip_ranges: Vec<ipnet::IpNet>,
    /// The display name of a new user who brings none.
    #[serde(alias = "default_display_name")]
    pub default_display_name: Option<String>,
}

/// A refusal in the form a function's `HttpsError` reaches the client.
fn refusal(status: &str, message: &str) -> Error {
    let body = serde_json::json!({"error": {"message": message, "status": status}});
    failure(
        400,
        format!("HTTP Cloud Function returned an error: {body}"),
    )
}

impl BlockingPolicy {
    fn check_ip(&self, ip: Option<&str>) -> Result<()> {
        let ip = ip.and_then(|i| i.parse::<std::net::IpAddr>().ok());
        if ip.is_some_and(|ip| self.denied_ip_ranges.iter().any(|r| r.contains(&ip))) {
            return Err(refusal("PERMISSION_DENIED", "IP banned"));
        }
        Ok(())
    }

    /// Before a new user is stored: the domain allowlist, verified emails, denied ranges;
    /// then the default display name.
    pub fn before_create(
        &self,
        email: Option<&str>,
        email_verified: bool,
        ip: Option<&str>,
        display_name: &mut Option<String>,
    ) -> Result<()> {
        if !self.allowed_email_domains.is_empty() {
            let domain = email.and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
            let allowed = domain.is_some_and(|d| {
                self.allowed_email_domains
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(d))
            });
            if !allowed {
                let message = format!("Unauthorized email \"{}\"", email.unwrap_or_default());
                return Err(refusal("INVALID_ARGUMENT", &message));
            }
        }
        if self.block_unverified_sign_up && email.is_some() && !email_verified {
            let message = format!("Unverified email \"{}\"", email.unwrap_or_default());
            return Err(refusal("INVALID_ARGUMENT", &message));
        }
        self.check_ip(ip)?;
        if display_name.as_deref().is_none_or(str::is_empty) {
            if let Some(name) = &self.default_display_name {
                *display_name = Some(name.clone());
            }
        }
        Ok(())
    }

    /// Before every sign-in: verified email, denied ranges.
    pub fn before_sign_in(
        &self,
        email: Option<&str>,
        email_verified: bool,
        ip: Option<&str>,
    ) -> Result<()> {
        if self.require_verified_email && email.is_some() && !email_verified {
            let message = format!("Unverified email \"{}\"", email.unwrap_or_default());
            return Err(refusal("INVALID_ARGUMENT", &message));
        }
        self.check_ip(ip)
    }
}

/// What came back from a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookReply {
    Answered { status: u16, body: Vec<u8> },
    DeadlineExceeded,
    Unreachable(String),
}

/// The outbound HTTP client (the server crate provides it): blocking functions, and the
/// identity providers' discovery documents, keys and token endpoints.
#[async_trait]
pub trait HookClient: Send + Sync + std::fmt::Debug {
    /// POSTs `body` as JSON to `uri`, giving up after `deadline`.
    async fn post(&self, uri: &str, body: Vec<u8>, deadline: Duration) -> HookReply;
    /// GETs a JSON document (2xx only); the error is the reason, for logs.
    async fn get_json(&self, uri: &str, deadline: Duration) -> std::result::Result<Value, String>;
    /// POSTs a form and reads a JSON answer (2xx only).
    async fn post_form(
        &self,
        uri: &str,
        form: &[(&str, &str)],
        deadline: Duration,
    ) -> std::result::Result<Value, String>;
    /// A JSON call with headers of the caller's (an identity provider's API): GET without a
    /// body, POST with `body` as JSON. 2xx only.
    async fn call_json(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
        deadline: Duration,
    ) -> std::result::Result<Value, String>;
}

/// The changes a function asked for (only the keys of its `updateMask`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookUpdates {
    pub display_name: Option<String>,
    pub photo_url: Option<String>,
    pub disabled: Option<bool>,
    pub email_verified: Option<bool>,
    pub custom_claims: Option<Map<String, Value>>,
    pub session_claims: Option<Map<String, Value>>,
}

fn failure(status: u16, detail: String) -> Error {
    Error::Blocking { status, detail }
}

/// A scalar as the emulator coerces it: strings as they are, numbers and booleans as text;
/// `null`, arrays and objects change nothing.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// How much of a refusing function's body reaches the client and the audit log: enough
/// for an `HttpsError`, not a whole page of whatever the URI points at.
const MAX_REFLECTED_BYTES: usize = 4096;

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// `null` clears the claims, as for admin `customAttributes`.
fn claims_object(v: &Value) -> Result<Map<String, Value>> {
    if v.is_null() {
        return Ok(Map::new());
    }
    let Value::Object(m) = v else {
        return Err(Error::code("INVALID_CLAIMS"));
    };
    check_claims_object(m)?;
    Ok(m.clone())
}

/// Session claims follow the custom-claim rules, except that the seeds' IP-tracking
/// scenario sets `signInIpAddress` itself: the project's own function may, as long as it is
/// an address (the server's IP binding compares the session's recorded address, never
/// this claim).
fn session_claims_object(v: &Value) -> Result<Map<String, Value>> {
    let Value::Object(m) = v else {
        return Err(Error::code("INVALID_CLAIMS"));
    };
    let mut rest = m.clone();
    if let Some(ip) = rest.remove(crate::service::SIGN_IN_IP_CLAIM) {
        if ip
            .as_str()
            .and_then(|s| s.parse::<std::net::IpAddr>().ok())
            .is_none()
        {
            return Err(Error::detail(
                "FORBIDDEN_CLAIM",
                crate::service::SIGN_IN_IP_CLAIM,
            ));
        }
    }
    check_claims_object(&rest)?;
    if Value::Object(m.clone()).to_string().chars().count() > crate::claims::MAX_CLAIMS_CHARS {
        return Err(Error::code("CLAIMS_TOO_LARGE"));
    }
    Ok(m.clone())
}

/// Reads a function's reply to `event` (§4, §6): the production error texts, the mask's
/// keys only, claims checked as admin claims are.
pub fn interpret(event: &str, reply: HookReply) -> Result<HookUpdates> {
    let body = match reply {
        HookReply::DeadlineExceeded => {
            return Err(failure(
                500,
                "((Deadline exceeded making request to the blocking function.))".into(),
            ))
        }
        HookReply::Unreachable(why) => {
            tracing::debug!(%why, "blocking function unreachable");
            return Err(failure(
                500,
                "((Failed to make request to the blocking function.))".into(),
            ));
        }
        HookReply::Answered { status, body } if !(200..300).contains(&status) => {
            // The function's body verbatim, so an HttpsError's status and message reach
            // the client (production's form).
            let shown = &body[..body.len().min(MAX_REFLECTED_BYTES)];
            return Err(failure(
                400,
                format!(
                    "HTTP Cloud Function returned an error: {}",
                    String::from_utf8_lossy(shown)
                ),
            ));
        }
        HookReply::Answered { body, .. } => body,
    };
    let parsed: Value = serde_json::from_slice(&body)
        .map_err(|_| failure(500, "((Response body is not valid JSON.))".into()))?;
    let Some(record) = parsed.get("userRecord").filter(|r| !r.is_null()) else {
        return Ok(HookUpdates::default());
    };
    let mask = record
        .get("updateMask")
        .and_then(Value::as_str)
        .ok_or_else(|| failure(400, "((Response UserRecord is missing updateMask.))".into()))?;
    let mut updates = HookUpdates::default();
    for key in mask.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let Some(v) = record.get(key) else { continue };
        match key {
            "displayName" => updates.display_name = text(v).or(updates.display_name),
            "photoURL" | "photoUrl" => updates.photo_url = text(v).or(updates.photo_url),
            "disabled" => updates.disabled = Some(truthy(v)),
            "emailVerified" => updates.email_verified = Some(truthy(v)),
            "customClaims" => updates.custom_claims = Some(claims_object(v)?),
            "sessionClaims" if event == BEFORE_SIGN_IN => {
                updates.session_claims = Some(session_claims_object(v)?)
            }
            _ => {}
        }
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(body: Value) -> HookReply {
        HookReply::Answered {
            status: 200,
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn registration_is_validated() {
        let good: BlockingFunctions = serde_json::from_value(json!({
            "triggers": {"beforeCreate": {"functionUri": "http://127.0.0.1:5001/p/f"}},
            "forwardInboundCredentials": {"idToken": true}
        }))
        .unwrap();
        good.validate().unwrap();
        assert!(good.forward_inbound_credentials.id_token);
        for (event, uri, detail) in [
            (
                "beforeDelete",
                "https://x.io/f",
                "((Event type is invalid.))",
            ),
            (
                "beforeSignIn",
                "/relative",
                "((Expected an absolute URI with valid scheme and host.))",
            ),
            (
                "beforeSignIn",
                "ftp://x.io/f",
                "((Expected an absolute URI with valid scheme and host.))",
            ),
        ] {
            let mut c = BlockingFunctions::default();
            c.triggers.insert(
                event.into(),
                Trigger {
                    function_uri: uri.into(),
                    ..Default::default()
                },
            );
            assert_eq!(
                c.validate().unwrap_err(),
                Error::detail("INVALID_BLOCKING_FUNCTION", detail)
            );
        }
    }

    #[test]
    fn built_in_policies_refuse_as_handlers_do() {
        let p: BlockingPolicy = serde_json::from_value(json!({
            "allowedEmailDomains": ["example.com"],
            "deniedIpRanges": ["10.0.0.0/8"],
            "defaultDisplayName": "Guest",
            "requireVerifiedEmail": true
        }))
        .unwrap();
        let mut name = None;
        p.before_create(Some("a@example.com"), false, Some("127.0.0.1"), &mut name)
            .unwrap();
        assert_eq!(name.as_deref(), Some("Guest"));
        let mut kept = Some("Ann".to_owned());
        p.before_create(Some("a@EXAMPLE.com"), false, None, &mut kept)
            .unwrap();
        assert_eq!(kept.as_deref(), Some("Ann"));
        let e = p
            .before_create(Some("a@evil.io"), false, None, &mut None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "BLOCKING_FUNCTION_ERROR_RESPONSE : HTTP Cloud Function returned an error: \
             {\"error\":{\"message\":\"Unauthorized email \\\"a@evil.io\\\"\",\"status\":\"INVALID_ARGUMENT\"}}"
        );
        assert!(p
            .before_create(Some("a@example.com"), false, Some("10.1.2.3"), &mut None)
            .is_err());
        assert!(p
            .before_sign_in(Some("a@example.com"), false, None)
            .is_err());
        assert!(p.before_sign_in(Some("a@example.com"), true, None).is_ok());
        assert!(p
            .before_sign_in(Some("a@example.com"), true, Some("10.9.9.9"))
            .is_err());
        assert!(BlockingPolicy::default()
            .before_sign_in(Some("a@x.io"), false, Some("10.0.0.1"))
            .is_ok());
    }

    #[test]
    fn answers_are_read_as_the_spec_says() {
        assert_eq!(
            interpret(BEFORE_CREATE, ok(json!({}))).unwrap(),
            HookUpdates::default()
        );
        let u = interpret(
            BEFORE_SIGN_IN,
            ok(json!({"userRecord": {
                "updateMask": "displayName,photoURL,disabled,customClaims,sessionClaims",
                "displayName": "Ann", "photoURL": "https://p/1", "disabled": false,
                "customClaims": {"role": "admin"}, "sessionClaims": {"ip": "1.2.3.4"},
                "emailVerified": true
            }})),
        )
        .unwrap();
        assert_eq!(u.display_name.as_deref(), Some("Ann"));
        assert_eq!(u.photo_url.as_deref(), Some("https://p/1"));
        assert_eq!(u.disabled, Some(false));
        assert_eq!(u.email_verified, None, "not in the mask");
        assert_eq!(u.session_claims.unwrap()["ip"], "1.2.3.4");
        // The seed's IP-tracking scenario: an address under the server's claim name.
        let ip = |v: Value| {
            interpret(
                BEFORE_SIGN_IN,
                ok(
                    json!({"userRecord": {"updateMask": "sessionClaims", "sessionClaims": {"signInIpAddress": v}}}),
                ),
            )
        };
        assert!(ip(json!("203.0.113.7")).is_ok());
        assert_eq!(
            ip(json!("not an address")).unwrap_err(),
            Error::detail("FORBIDDEN_CLAIM", "signInIpAddress")
        );
        // Session claims only count for beforeSignIn.
        let u = interpret(
            BEFORE_CREATE,
            ok(json!({"userRecord": {"updateMask": "sessionClaims", "sessionClaims": {"a": 1}}})),
        )
        .unwrap();
        assert_eq!(u.session_claims, None);
        let err = |reply| interpret(BEFORE_CREATE, reply).unwrap_err();
        assert_eq!(
            err(ok(json!({"userRecord": {"displayName": "x"}}))),
            failure(400, "((Response UserRecord is missing updateMask.))".into())
        );
        assert_eq!(
            err(ok(
                json!({"userRecord": {"updateMask": "customClaims", "customClaims": {"sub": "x"}}})
            )),
            Error::detail("FORBIDDEN_CLAIM", "sub")
        );
        assert_eq!(
            err(HookReply::Answered {
                status: 200,
                body: b"<html>".to_vec()
            }),
            failure(500, "((Response body is not valid JSON.))".into())
        );
        let denied = br#"{"error":{"message":"Unauthorized email","status":"PERMISSION_DENIED"}}"#;
        match err(HookReply::Answered {
            status: 403,
            body: denied.to_vec(),
        }) {
            Error::Blocking {
                status: 400,
                detail,
            } => {
                assert!(
                    detail.ends_with(std::str::from_utf8(denied).unwrap()),
                    "{detail}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            err(HookReply::DeadlineExceeded),
            Error::Blocking { status: 500, .. }
        ));
    }
}
