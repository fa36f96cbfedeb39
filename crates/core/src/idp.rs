//! OpenID Connect providers: what a sign-in learned from one, the discovery document and key
//! set cache, and the id_token checks (signature against the provider's keys, issuer,
//! audience, expiry, nonce). RS256 only, the algorithm every OIDC provider must offer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firekeeper_tokens::{jws, PublicKey};
use serde_json::{Map, Value};

use crate::blocking::HookClient;
use crate::secrets::{hex, sha256};

/// How long a provider's discovery document and keys are trusted before they are fetched
/// again; an unknown `kid` refetches sooner (key rotation), at most once per
/// [`REFETCH_FLOOR_MS`].
const KEYS_TTL_MS: i64 = 10 * 60_000;
const REFETCH_FLOOR_MS: i64 = 30_000;
/// Clock skew tolerated on `iat` (a provider's clock ahead of ours) and on `exp`.
const SKEW_SECS: i64 = 300;
const EXP_SKEW_SECS: i64 = 60;
/// How long a provider may take to answer.
pub const IDP_DEADLINE: Duration = Duration::from_secs(10);

/// What a sign-in learned from its identity provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdpProfile {
    pub provider_id: String,
    /// The user's id at the provider (`sub`).
    pub raw_id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub photo_url: Option<String>,
    /// Every claim the provider sent about the user.
    pub claims: Map<String, Value>,
    pub id_token: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
    /// OAuth 1.0a (Twitter): the token's secret.
    pub token_secret: Option<String>,
}

impl IdpProfile {
    /// A profile from an id_token's (or fake token's) claims: `None` without a string `sub`.
    pub fn from_claims(provider_id: &str, claims: Map<String, Value>) -> Option<Self> {
        let text = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let raw_id = text("sub")?;
        let email_verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        Some(Self {
            provider_id: provider_id.to_owned(),
            raw_id,
            email: text("email").map(|e| crate::validate::canonical_email(&e)),
            email_verified,
            display_name: text("name"),
            photo_url: text("picture"),
            claims,
            ..Default::default()
        })
    }
}

/// Why an id_token was refused (for logs; clients get one generic error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(why: impl Into<String>) -> Refused {
    Refused(why.into())
}

/// Checks an id_token against the provider's keys and the configuration: RS256 signature,
/// `iss`, `aud` (or one of them) = `client_id`, `exp`, `iat`, a `sub`, and the nonce: the
/// token's must be the SHA-256 (hex) of the raw nonce given with the credential, as the
/// client SDKs expect, and a token carrying a nonce needs one.
pub fn check_id_token(
    token: &str,
    keys: &[PublicKey],
    issuer: &str,
    client_id: &str,
    raw_nonce: Option<&str>,
    now_s: i64,
) -> Result<Map<String, Value>, Refused> {
    let decoded = jws::decode(token).map_err(|_| refused("not a JWT"))?;
    if decoded.alg() != Some("RS256") {
        return Err(refused(format!("alg {:?}", decoded.alg())));
    }
    let key = match decoded.kid() {
        Some(kid) => keys.iter().find(|k| k.kid == kid),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
    .ok_or_else(|| refused("unknown signing key"))?;
    decoded
        .verify_rs256(key)
        .map_err(|_| refused("bad signature"))?;
    let c = decoded.payload;
    addressed_and_current(&c, issuer, client_id, now_s)?;
    if c.get("iat").and_then(Value::as_i64).unwrap_or(0) > now_s + SKEW_SECS {
        return Err(refused("issued in the future"));
    }
    if c.get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(refused("no subject"));
    }
    let in_token = c.get("nonce").and_then(Value::as_str);
    match (raw_nonce, in_token) {
        (None, None) => {}
        // Only the hash: a "raw" nonce equal to the token's own claim would let anyone
        // holding the token pass.
        (Some(raw), Some(t)) if t == hex(&sha256(raw.as_bytes())) => {}
        (None, Some(_)) => return Err(refused("the token has a nonce; none was given")),
        _ => return Err(refused("nonce mismatch")),
    }
    Ok(c)
}

/// A provider's endpoints and keys, as discovered.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub token_endpoint: Option<String>,
    pub keys: Vec<PublicKey>,
    fetched_at: i64,
}

/// Whether a provider URL may be trusted for keys and secrets: https, or plain http to this
/// machine only (a provider on the same host, as in tests). A key set fetched in the clear
/// could be swapped by anyone on the path.
pub fn is_trusted_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return crate::validate::uri_host(url).is_some();
    }
    lower.starts_with("http://")
        && matches!(
            crate::validate::uri_host(url).as_deref(),
            Some("localhost" | "127.0.0.1" | "::1")
        )
}

/// Discovery documents and key sets by issuer. One fetch at a time (a burst of tokens with
/// unknown key ids makes one request, not one each); a failed fetch is remembered for
/// [`FAILURE_PAUSE_MS`], and while the provider cannot be reached the keys last fetched
/// keep working.
#[derive(Debug, Default)]
pub struct OidcCache {
    entries: Mutex<HashMap<String, Arc<Discovered>>>,
    failures: Mutex<HashMap<String, i64>>,
    fetching: tokio::sync::Mutex<()>,
}

/// How long a failed fetch is not retried.
const FAILURE_PAUSE_MS: i64 = 10_000;

impl OidcCache {
    fn cached(&self, issuer: &str) -> Option<Arc<Discovered>> {
        self.entries
            .lock()
            .ok()
            .and_then(|m| m.get(issuer).cloned())
    }

    /// The cached entry if it serves: fresh, and holding `need_kid` (or refetched too
    /// recently to try again).
    fn usable(d: &Discovered, need_kid: Option<&str>, now_ms: i64) -> bool {
        let fresh = now_ms - d.fetched_at < KEYS_TTL_MS;
        let has_kid = need_kid.is_none_or(|kid| d.keys.iter().any(|k| k.kid == kid));
        fresh && (has_kid || now_ms - d.fetched_at < REFETCH_FLOOR_MS)
    }

    /// The provider's endpoints and keys: cached, fetched when older than the TTL or when
    /// `need_kid` is not among the cached keys (at most once per 30 s).
    pub async fn discover(
        &self,
        http: &dyn HookClient,
        issuer: &str,
        need_kid: Option<&str>,
        now_ms: i64,
    ) -> Result<Arc<Discovered>, Refused> {
        if let Some(d) = self
            .cached(issuer)
            .filter(|d| Self::usable(d, need_kid, now_ms))
        {
            return Ok(d);
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Someone else may have fetched while this call waited.
        let cached = self.cached(issuer);
        if let Some(d) = cached.clone().filter(|d| Self::usable(d, need_kid, now_ms)) {
            return Ok(d);
        }
        let failed_recently = self
            .failures
            .lock()
            .ok()
            .and_then(|m| m.get(issuer).copied())
            .is_some_and(|at| now_ms - at < FAILURE_PAUSE_MS);
        let fetched = if failed_recently {
            Err(refused("the provider failed moments ago"))
        } else {
            fetch(http, issuer, now_ms).await
        };
        match fetched {
            Ok(found) => {
                let found = Arc::new(found);
                if let Ok(mut m) = self.entries.lock() {
                    m.insert(issuer.to_owned(), found.clone());
                }
                Ok(found)
            }
            Err(e) => {
                if !failed_recently {
                    if let Ok(mut m) = self.failures.lock() {
                        m.insert(issuer.to_owned(), now_ms);
                    }
                }
                // Keys that were good a while ago beat no keys at all.
                cached.ok_or(e)
            }
        }
    }
}

/// Reads a provider's discovery document and key set.
async fn fetch(http: &dyn HookClient, issuer: &str, now_ms: i64) -> Result<Discovered, Refused> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = http
        .get_json(&url, IDP_DEADLINE)
        .await
        .map_err(|e| refused(format!("discovery {url}: {e}")))?;
    let stated = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if stated.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(refused(format!("discovery names another issuer: {stated}")));
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .filter(|u| is_trusted_url(u))
        .ok_or_else(|| refused("discovery document without an https jwks_uri"))?;
    let jwks = http
        .get_json(jwks_uri, IDP_DEADLINE)
        .await
        .map_err(|e| refused(format!("keys {jwks_uri}: {e}")))?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
                .filter_map(|k| {
                    let text = |f: &str| k.get(f).and_then(Value::as_str);
                    PublicKey::from_jwk(text("kid").unwrap_or_default(), text("n")?, text("e")?)
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Discovered {
        token_endpoint: doc
            .get("token_endpoint")
            .and_then(Value::as_str)
            .filter(|u| is_trusted_url(u))
            .map(str::to_owned),
        keys,
        fetched_at: now_ms,
    })
}

/// The checks an id_token's unverified payload must pass before any key is fetched for
/// it, so made-up tokens cost no request to the provider.
pub fn precheck(token: &str, issuer: &str, client_id: &str, now_s: i64) -> Result<(), Refused> {
    let c = jws::decode_payload(token).map_err(|_| refused("not a JWT"))?;
    addressed_and_current(&c, issuer, client_id, now_s)
}

/// The claims name this issuer and this client, and have not expired.
fn addressed_and_current(
    c: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now_s: i64,
) -> Result<(), Refused> {
    let same_issuer = |i: &str| i.trim_end_matches('/') == issuer.trim_end_matches('/');
    if !c
        .get("iss")
        .and_then(Value::as_str)
        .is_some_and(same_issuer)
    {
        return Err(refused("wrong issuer"));
    }
    let audience_ok = match c.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(refused("wrong audience"));
    }
    let exp = c.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp + EXP_SKEW_SECS < now_s {
        return Err(refused("expired"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use firekeeper_tokens::SigningKey;
    use serde_json::json;

    fn token(key: &SigningKey, claims: Value) -> String {
        jws::sign_rs256(key, claims.as_object().unwrap()).unwrap()
    }

    #[test]
    fn id_tokens_are_checked_in_full() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let keys = [key.public_key()];
        let now = 1_700_000_000;
        let good = json!({"iss": "https://idp.example", "aud": "client", "sub": "u1",
            "iat": now, "exp": now + 600, "email": "U@Example.com", "email_verified": true});
        let check = |t: &str, nonce: Option<&str>| {
            check_id_token(t, &keys, "https://idp.example/", "client", nonce, now)
        };
        let claims = check(&token(&key, good.clone()), None).unwrap();
        let p = IdpProfile::from_claims("oidc.x", claims).unwrap();
        assert_eq!(
            (p.raw_id.as_str(), p.email.as_deref()),
            ("u1", Some("u@example.com"))
        );
        assert!(p.email_verified);

        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        for (what, t) in [
            ("forged", token(&other, good.clone())),
            ("expired", token(&key, with("exp", json!(now - 3600)))),
            ("audience", token(&key, with("aud", json!("someone-else")))),
            (
                "issuer",
                token(&key, with("iss", json!("https://evil.example"))),
            ),
            ("future", token(&key, with("iat", json!(now + 3600)))),
            ("no subject", token(&key, with("sub", json!("")))),
        ] {
            assert!(check(&t, None).is_err(), "{what}");
        }
        assert!(check(&token(&key, with("aud", json!(["x", "client"]))), None).is_ok());
        // Nonces: the token holds the hash of the raw nonce; required both ways. Passing
        // the token's own claim as the "raw" nonce proves nothing.
        let hashed = hex(&sha256(b"raw-nonce"));
        assert!(check(
            &token(&key, with("nonce", json!(hashed))),
            Some("raw-nonce")
        )
        .is_ok());
        assert!(check(
            &token(&key, with("nonce", json!(hashed))),
            Some(hashed.as_str())
        )
        .is_err());
        assert!(check(
            &token(&key, with("nonce", json!("other"))),
            Some("raw-nonce")
        )
        .is_err());
        assert!(check(&token(&key, with("nonce", json!("raw-nonce"))), None).is_err());
        assert!(check(&token(&key, good.clone()), Some("raw-nonce")).is_err());
        // An unsigned token is no token.
        let unsigned = jws::encode_unsigned(good.as_object().unwrap());
        assert!(check(&unsigned, None).is_err());
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn keys_come_over_https_or_from_this_machine() {
        assert!(is_trusted_url("https://idp.example/jwks"));
        assert!(is_trusted_url("http://127.0.0.1:8080/jwks"));
        assert!(is_trusted_url("http://localhost/jwks"));
        assert!(!is_trusted_url("http://idp.example/jwks"));
        assert!(!is_trusted_url("https://evil\\@idp.example/"));
    }
}
