//! The named identity providers of the seeds' table, configured through
//! `defaultSupportedIdpConfigs` with the app's client id and secret: how each one's
//! credential is checked, and which credentials each passes to blocking functions.
//!
//! Google, Apple, Microsoft and Yahoo sign their users' id_tokens (checked as any OpenID
//! provider's). Facebook, GitHub, LinkedIn and Twitter hand out access tokens, which are
//! checked with the provider's API — each time in a way that proves the token was issued to
//! this app, so a token some other app obtained signs nobody in. Their email addresses count
//! as unverified (Firebase's untrusted providers).

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::blocking::HookClient;
use crate::idp::{IdpProfile, Refused, IDP_DEADLINE};
use crate::secrets::{hex, random_alnum};

/// How a provider's credential is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A signed id_token (OpenID Connect); `code` traded at the token endpoint.
    IdToken,
    /// An access token shown to the Graph API with `appsecret_proof`.
    Facebook,
    /// An access token checked with GitHub's token API (client id and secret).
    GitHub,
    /// An access token introspected with the client credentials, then `userinfo`.
    LinkedIn,
    /// An OAuth 1.0a token and secret, shown to `verify_credentials` signed with the
    /// consumer key and secret.
    Twitter,
}

/// The credentials a provider passes to blocking functions (the seeds' table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Passes {
    pub id_token: bool,
    pub access_token: bool,
    pub expires_in: bool,
    pub token_secret: bool,
    pub refresh_token: bool,
    pub sign_in_attributes: bool,
}

const fn passes(
    id_token: bool,
    access_token: bool,
    expires_in: bool,
    token_secret: bool,
    refresh_token: bool,
    sign_in_attributes: bool,
) -> Passes {
    Passes {
        id_token,
        access_token,
        expires_in,
        token_secret,
        refresh_token,
        sign_in_attributes,
    }
}

#[derive(Debug)]
pub(crate) struct Named {
    pub id: &'static str,
    pub check: Check,
    /// The OpenID issuer (`Check::IdToken`); Microsoft's names the directory, so it comes
    /// from the configuration.
    pub issuer: Option<&'static str>,
    /// Other spellings of the issuer its tokens carry (Google's bare host).
    pub alt_issuers: &'static [&'static str],
    /// The API the access-token checks call.
    pub api: &'static str,
    pub passes: Passes,
}

const NAMED: &[Named] = &[
    Named {
        id: "google.com",
        check: Check::IdToken,
        issuer: Some("https://accounts.google.com"),
        alt_issuers: &["accounts.google.com"],
        api: "",
        passes: passes(true, true, true, false, true, false),
    },
    Named {
        id: "apple.com",
        check: Check::IdToken,
        issuer: Some("https://appleid.apple.com"),
        alt_issuers: &[],
        api: "",
        passes: passes(true, true, true, false, true, false),
    },
    Named {
        id: "microsoft.com",
        check: Check::IdToken,
        issuer: None,
        alt_issuers: &[],
        api: "",
        passes: passes(true, true, true, false, true, false),
    },
    Named {
        id: "yahoo.com",
        check: Check::IdToken,
        issuer: Some("https://api.login.yahoo.com"),
        alt_issuers: &[],
        api: "",
        passes: passes(true, true, true, false, true, false),
    },
    Named {
        id: "facebook.com",
        check: Check::Facebook,
        issuer: None,
        alt_issuers: &[],
        api: "https://graph.facebook.com",
        passes: passes(false, true, true, false, false, false),
    },
    Named {
        id: "github.com",
        check: Check::GitHub,
        issuer: None,
        alt_issuers: &[],
        api: "https://api.github.com",
        passes: passes(false, true, false, false, false, false),
    },
    Named {
        id: "linkedin.com",
        check: Check::LinkedIn,
        issuer: None,
        alt_issuers: &[],
        api: "https://api.linkedin.com",
        passes: passes(false, true, true, false, false, false),
    },
    Named {
        id: "twitter.com",
        check: Check::Twitter,
        issuer: None,
        alt_issuers: &[],
        api: "https://api.twitter.com",
        passes: passes(false, true, false, true, false, false),
    },
];

/// The ids `defaultSupportedIdpConfigs` takes.
pub(crate) fn named_ids() -> Vec<&'static str> {
    NAMED.iter().map(|n| n.id).collect()
}

pub(crate) fn named(id: &str) -> Option<&'static Named> {
    NAMED.iter().find(|n| n.id == id)
}

/// What a sign-in with `provider_id` passes to blocking functions: the seeds' row for a
/// named provider, SAML's or generic OIDC's otherwise.
pub(crate) fn passes_of(provider_id: &str) -> Passes {
    if let Some(n) = named(provider_id) {
        return n.passes;
    }
    if provider_id.starts_with("saml.") {
        return passes(false, false, false, false, false, true);
    }
    passes(true, true, true, false, true, true)
}

/// LinkedIn introspects tokens on its sign-in host, not its API host.
fn linkedin_introspection(api: &str) -> String {
    if api == "https://api.linkedin.com" {
        "https://www.linkedin.com/oauth/v2/introspectToken".to_owned()
    } else {
        format!("{api}/oauth/v2/introspectToken")
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, as OAuth 1.0a
/// signs.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `Authorization: OAuth …` header of an OAuth 1.0a request (RFC 5849, HMAC-SHA1).
/// Written by hand: it is a canonical string and one HMAC, and the OAuth 1 crates bring
/// HTTP stacks of their own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn oauth1_header(
    method: &str,
    url: &str,
    query: &[(&str, &str)],
    consumer_key: &str,
    consumer_secret: &str,
    token: &str,
    token_secret: &str,
    nonce: &str,
    timestamp: i64,
) -> String {
    let timestamp = timestamp.to_string();
    let oauth = [
        ("oauth_consumer_key", consumer_key),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", timestamp.as_str()),
        ("oauth_token", token),
        ("oauth_version", "1.0"),
    ];
    let mut params: Vec<(String, String)> = query
        .iter()
        .chain(oauth.iter())
        .map(|(k, v)| (percent(k), percent(v)))
        .collect();
    params.sort();
    let joined = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let base = format!("{method}&{}&{}", percent(url), percent(&joined));
    let key = format!("{}&{}", percent(consumer_secret), percent(token_secret));
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key.as_bytes());
    let signature = STANDARD.encode(hmac::sign(&key, base.as_bytes()).as_ref());
    let mut fields: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", percent(v)))
        .collect();
    fields.push(format!("oauth_signature=\"{}\"", percent(&signature)));
    format!("OAuth {}", fields.join(", "))
}

fn refused(why: impl Into<String>) -> Refused {
    Refused(why.into())
}

fn text(v: &Value, k: &str) -> Option<String> {
    match v.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The parts of a configuration an access-token check uses.
pub(crate) struct Client<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    /// The provider's API base (a stand-in's when configured).
    pub api: &'a str,
}

/// Checks an access-token provider's credential and reads the user's profile.
pub(crate) async fn access_token_profile(
    http: &dyn HookClient,
    named: &Named,
    client: &Client<'_>,
    access_token: &str,
    token_secret: Option<&str>,
    now_s: i64,
) -> Result<IdpProfile, Refused> {
    let api = client.api.trim_end_matches('/');
    let bearer = format!("Bearer {access_token}");
    let fail = |e: String| refused(format!("{}: {e}", named.id));
    let mut expires_at: Option<i64> = None;
    let (raw_id, claims, email, name, photo) = match named.check {
        Check::Facebook => {
            // The token's own record, read with the app's credentials: valid, and this
            // app's. Tokens travel in headers, never in URLs that could reach a log.
            let app = format!("Bearer {}|{}", client.id, client.secret);
            let query = serde_urlencoded::to_string([("input_token", access_token)])
                .map_err(|e| fail(e.to_string()))?;
            let record = http
                .call_json(
                    &format!("{api}/debug_token?{query}"),
                    &[("authorization", &app)],
                    None,
                    IDP_DEADLINE,
                )
                .await
                .map_err(fail)?;
            let data = record.get("data").cloned().unwrap_or_default();
            if data["is_valid"] != true || text(&data, "app_id").as_deref() != Some(client.id) {
                return Err(fail("the token is not this app's, or not valid".into()));
            }
            expires_at = data
                .get("expires_at")
                .and_then(Value::as_i64)
                .filter(|t| *t > 0);
            // appsecret_proof: the Graph API answers only for the app's own tokens.
            let key = hmac::Key::new(hmac::HMAC_SHA256, client.secret.as_bytes());
            let proof = hex(hmac::sign(&key, access_token.as_bytes()).as_ref());
            let query = serde_urlencoded::to_string([
                ("fields", "id,name,email,first_name,last_name,picture"),
                ("appsecret_proof", proof.as_str()),
            ])
            .map_err(|e| fail(e.to_string()))?;
            let me = http
                .call_json(
                    &format!("{api}/me?{query}"),
                    &[("authorization", &bearer)],
                    None,
                    IDP_DEADLINE,
                )
                .await
                .map_err(fail)?;
            if text(&me, "id") != text(&data, "user_id") {
                return Err(fail("the token's user is not the profile's".into()));
            }
            let photo = me
                .pointer("/picture/data/url")
                .and_then(Value::as_str)
                .map(str::to_owned);
            (
                text(&me, "id"),
                me.clone(),
                text(&me, "email"),
                text(&me, "name"),
                photo,
            )
        }
        Check::GitHub => {
            // The token API answers only the app the token was issued to.
            let basic = format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", client.id, client.secret))
            );
            let checked = http
                .call_json(
                    &format!("{api}/applications/{}/token", client.id),
                    &[("authorization", &basic)],
                    Some(&json!({ "access_token": access_token })),
                    IDP_DEADLINE,
                )
                .await
                .map_err(fail)?;
            let user = http
                .call_json(
                    &format!("{api}/user"),
                    &[("authorization", &bearer)],
                    None,
                    IDP_DEADLINE,
                )
                .await
                .map_err(fail)?;
            let token_user = text(&checked.get("user").cloned().unwrap_or_default(), "id");
            if token_user.is_none() || token_user != text(&user, "id") {
                return Err(fail("the token's user is not the profile's".into()));
            }
            // The primary verified address, when the token may read addresses.
            let primary = http
                .call_json(
                    &format!("{api}/user/emails"),
                    &[("authorization", &bearer)],
                    None,
                    IDP_DEADLINE,
                )
                .await
                .ok()
                .and_then(|list| {
                    list.as_array()?
                        .iter()
                        .find(|e| e["primary"] == true && e["verified"] == true)
                        .and_then(|e| text(e, "email"))
                });
            let email = primary.or_else(|| text(&user, "email"));
            let name = text(&user, "name").or_else(|| text(&user, "login"));
            let photo = text(&user, "avatar_url");
            (text(&user, "id"), user, email, name, photo)
        }
        Check::LinkedIn => {
            let checked = http
                .post_form(
                    &linkedin_introspection(api),
                    &[
                        ("client_id", client.id),
                        ("client_secret", client.secret),
                        ("token", access_token),
                    ],
                    IDP_DEADLINE,
                )
                .await
                .map_err(fail)?;
            expires_at = checked.get("expires_at").and_then(Value::as_i64);
            let expired = expires_at.is_some_and(|at| at <= now_s);
            if checked["active"] != true
                || text(&checked, "client_id").as_deref() != Some(client.id)
                || expired
            {
                return Err(fail("the token is not this app's, or not active".into()));
            }
            let me = http
                .call_json(
                    &format!("{api}/v2/userinfo"),
                    &[("authorization", &bearer)],
                    None,
                    IDP_DEADLINE,
                )
                .await
                .map_err(fail)?;
            (
                text(&me, "sub"),
                me.clone(),
                text(&me, "email"),
                text(&me, "name"),
                text(&me, "picture"),
            )
        }
        Check::Twitter => {
            let secret = token_secret.ok_or_else(|| fail("no oauth_token_secret".into()))?;
            let url = format!("{api}/1.1/account/verify_credentials.json");
            let query = [("include_email", "true"), ("skip_status", "true")];
            let nonce = random_alnum(32).map_err(|e| fail(e.to_string()))?;
            let auth = oauth1_header(
                "GET",
                &url,
                &query,
                client.id,
                client.secret,
                access_token,
                secret,
                &nonce,
                now_s,
            );
            let me = http
                .call_json(
                    &format!("{url}?include_email=true&skip_status=true"),
                    &[("authorization", &auth)],
                    None,
                    IDP_DEADLINE,
                )
                .await
                .map_err(fail)?;
            (
                text(&me, "id_str"),
                me.clone(),
                text(&me, "email"),
                text(&me, "name"),
                text(&me, "profile_image_url_https"),
            )
        }
        Check::IdToken => return Err(fail("signs id_tokens".into())),
    };
    let raw_id = raw_id.ok_or_else(|| fail("no user id in the profile".into()))?;
    let expires_in = expires_at.map(|at| (at - now_s).max(0));
    let claims: Map<String, Value> = claims.as_object().cloned().unwrap_or_default();
    Ok(IdpProfile {
        provider_id: named.id.to_owned(),
        raw_id,
        email: email.map(|e| crate::validate::canonical_email(&e)),
        // These providers' addresses count as unverified here, as in Firebase (untrusted
        // providers): an address they report never lands on an existing account without
        // the owner's confirmation.
        email_verified: false,
        display_name: name,
        photo_url: photo,
        claims,
        access_token: Some(access_token.to_owned()),
        expires_in,
        token_secret: token_secret.map(str::to_owned),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signing example of Twitter's OAuth 1.0a documentation.
    #[test]
    fn oauth1_signatures_match_the_documented_example() {
        let header = oauth1_header(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &[
                ("include_entities", "true"),
                (
                    "status",
                    "Hello Ladies + Gentlemen, a signed OAuth request!",
                ),
            ],
            "xvz1evFS4wEEPTGEFPHBog",
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
            "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            1_318_622_958,
        );
        assert!(
            header.contains("oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""),
            "{header}"
        );
    }

    #[test]
    fn the_table_of_passed_credentials() {
        assert_eq!(
            passes_of("github.com"),
            passes(false, true, false, false, false, false)
        );
        assert!(passes_of("twitter.com").token_secret);
        assert!(passes_of("saml.corp").sign_in_attributes && !passes_of("saml.corp").id_token);
        assert!(passes_of("oidc.x").sign_in_attributes && passes_of("oidc.x").refresh_token);
        assert!(!passes_of("google.com").sign_in_attributes);
        assert_eq!(named_ids().len(), NAMED.len());
        assert!(named_ids().iter().all(|id| named(id).is_some()));
    }
}
