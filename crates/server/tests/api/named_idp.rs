//! The named providers of the seeds' table through `defaultSupportedIdpConfigs`, each
//! against a stand-in started here that checks what the real one would: Google's id_tokens
//! (the local OpenID provider), GitHub's token API with the app's credentials, Facebook's
//! `appsecret_proof`, LinkedIn's token introspection and Twitter's OAuth 1.0a header. A
//! token another app obtained signs nobody in, and blocking functions get exactly the
//! credentials the table lists for each provider.

use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use base64::Engine;
use firekeeper_core::{Clock, Mode};
use serde_json::{json, Value};

use super::idp::{provider, CLIENT_ID, CLIENT_SECRET};
use super::{boot, boot_custom, claims, hook_server, message, Server};

const GOOD: &str = "token-of-this-app";
const FOREIGN: &str = "token-of-another-app";

type Seen = Arc<Mutex<Vec<String>>>;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bearer(h: &HeaderMap) -> String {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// One stand-in for Facebook's, GitHub's, LinkedIn's and Twitter's APIs. Every API answers
/// both tokens (as the real ones would); only the app checks tell them apart.
async fn api_stand_in() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn fb_debug(
        headers: HeaderMap,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> Response {
        if bearer(&headers) != format!("Bearer {CLIENT_ID}|{CLIENT_SECRET}") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let app = if q.get("input_token").map(String::as_str) == Some(GOOD) {
            CLIENT_ID
        } else {
            "another-app"
        };
        Json(
            json!({"data": {"app_id": app, "is_valid": true, "user_id": "fb-1",
            "expires_at": 1_800_000_000i64}}),
        )
        .into_response()
    }
    async fn fb_me(
        headers: HeaderMap,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> Response {
        let token = bearer(&headers).trim_start_matches("Bearer ").to_owned();
        let key = hmac::Key::new(hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
        let proof = hex(hmac::sign(&key, token.as_bytes()).as_ref());
        // The Graph API refuses a proof made with another app's secret for the token.
        if q.contains_key("access_token")
            || token != GOOD
            || q.get("appsecret_proof") != Some(&proof)
        {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"message": "Invalid appsecret_proof"}})),
            )
                .into_response();
        }
        Json(
            json!({"id": "fb-1", "name": "Face Book", "email": "fb@example.com",
            "picture": {"data": {"url": "https://img.example/fb.png"}}}),
        )
        .into_response()
    }
    async fn gh_check(
        Path(client): Path<String>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Response {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        );
        if client != CLIENT_ID || bearer(&headers) != basic || body["access_token"] != GOOD {
            return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
        }
        Json(json!({"token": GOOD, "user": {"id": 4242, "login": "octo"}})).into_response()
    }
    async fn gh_user(headers: HeaderMap) -> Response {
        if bearer(&headers) == format!("Bearer {GOOD}")
            || bearer(&headers) == format!("Bearer {FOREIGN}")
        {
            Json(
                json!({"id": 4242, "login": "octo", "name": null, "email": null,
                "avatar_url": "https://img.example/octo.png"}),
            )
            .into_response()
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        }
    }
    async fn gh_emails() -> Json<Value> {
        Json(
            json!([{"email": "old@example.com", "primary": false, "verified": true},
            {"email": "Octo@Example.com", "primary": true, "verified": true}]),
        )
    }
    async fn li_introspect(body: String) -> Json<Value> {
        let form: std::collections::HashMap<String, String> =
            serde_urlencoded::from_str(&body).unwrap_or_default();
        let ours = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
        let token = form.get("token").cloned().unwrap_or_default();
        let issued_to = if token == GOOD {
            CLIENT_ID
        } else {
            "someone-else"
        };
        Json(json!({"active": ours, "client_id": issued_to, "expires_at": 1_800_000_000i64}))
    }
    async fn li_userinfo() -> Json<Value> {
        Json(
            json!({"sub": "li-7", "name": "Linked In", "email": "li@example.com",
            "email_verified": true, "picture": "https://img.example/li.png"}),
        )
    }
    async fn tw_verify(State(seen): State<Seen>, headers: HeaderMap) -> Response {
        let auth = bearer(&headers);
        seen.lock().unwrap().push(auth.clone());
        let signed = auth.starts_with("OAuth ")
            && auth.contains(&format!("oauth_consumer_key=\"{CLIENT_ID}\""))
            && auth.contains("oauth_signature_method=\"HMAC-SHA1\"")
            && auth.contains("oauth_signature=\"");
        if !signed || !auth.contains(&format!("oauth_token=\"{GOOD}\"")) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"errors": [{"code": 89}]})),
            )
                .into_response();
        }
        Json(
            json!({"id_str": "tw-9", "name": "Twit Ter", "screen_name": "twit",
            "email": "tw@example.com", "profile_image_url_https": "https://img.example/tw.png"}),
        )
        .into_response()
    }
    let app = axum::Router::new()
        .route("/me", get(fb_me))
        .route("/debug_token", get(fb_debug))
        .route("/applications/{client}/token", post(gh_check))
        .route("/user", get(gh_user))
        .route("/user/emails", get(gh_emails))
        .route("/oauth/v2/introspectToken", post(li_introspect))
        .route("/v2/userinfo", get(li_userinfo))
        .route("/1.1/account/verify_credentials.json", get(tw_verify))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

impl Server {
    async fn configure_named(&self, id: &str, endpoints: Value) {
        let (st, b) = self
            .admin_v2(
                reqwest::Method::POST,
                &format!("defaultSupportedIdpConfigs?idpId={id}"),
                Some(json!({"enabled": true, "clientId": CLIENT_ID,
                    "clientSecret": CLIENT_SECRET, "endpoints": endpoints})),
            )
            .await;
        assert_eq!(st, 200, "{id}: {b}");
        assert_eq!(
            b["name"],
            format!(
                "projects/{}/defaultSupportedIdpConfigs/{id}",
                super::PROJECT
            )
        );
    }
}

#[tokio::test]
async fn named_providers_sign_in_with_their_own_checks() {
    use reqwest::Method;
    let s = boot_custom(Mode::Production, 1 << 20, |c| {
        c.idp_endpoint_overrides = true
    })
    .await;
    let (api, seen) = api_stand_in().await;
    let oidc = provider(s.clock.now_secs()).await;
    let (hooks, calls) = hook_server().await;

    // The configuration API.
    let (_, b) = s
        .admin_v2(
            Method::POST,
            "defaultSupportedIdpConfigs?idpId=myspace.com",
            Some(json!({})),
        )
        .await;
    assert!(message(&b).starts_with("INVALID_PROVIDER_ID"), "{b}");
    let (_, b) = s
        .admin_v2(
            Method::POST,
            "defaultSupportedIdpConfigs?idpId=github.com",
            Some(json!({"enabled": true, "clientId": CLIENT_ID})),
        )
        .await;
    assert_eq!(message(&b), "MISSING_OAUTH_CLIENT_SECRET");
    let (_, b) = s
        .admin_v2(
            Method::POST,
            "defaultSupportedIdpConfigs?idpId=github.com",
            Some(
                json!({"enabled": true, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                "endpoints": {"apiUri": "http://api.example"}}),
            ),
        )
        .await;
    assert!(
        message(&b).starts_with("INVALID_CONFIG"),
        "plain http elsewhere: {b}"
    );
    // Not configured yet: refused.
    let (_, b) = s
        .idp(&format!("access_token={GOOD}&providerId=github.com"))
        .await;
    assert!(message(&b).starts_with("OPERATION_NOT_ALLOWED"), "{b}");
    for id in ["facebook.com", "github.com", "linkedin.com", "twitter.com"] {
        s.configure_named(id, json!({"apiUri": api})).await;
    }
    s.configure_named("google.com", json!({"issuer": oidc.issuer}))
        .await;
    let (_, listed) = s
        .admin_v2(Method::GET, "defaultSupportedIdpConfigs", None)
        .await;
    assert_eq!(
        listed["defaultSupportedIdpConfigs"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // Every credential forwarded, to see which ones each provider passes.
    s.set_hooks(json!({"beforeCreate": {"functionUri": format!("{hooks}/ok")}}))
        .await;
    let (st, b) = s
        .raw(
            s.http
                .patch(format!(
                    "{}/identitytoolkit.googleapis.com/v2/projects/{}/config",
                    s.base,
                    super::PROJECT
                ))
                .query(&[("updateMask", "blockingFunctions.forwardInboundCredentials")])
                .bearer_auth(&s.admin)
                .json(&json!({"blockingFunctions": {"forwardInboundCredentials":
                    {"idToken": true, "accessToken": true, "refreshToken": true}}})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let last_call = || calls.lock().unwrap().last().cloned().unwrap().1;
    let credential_keys = |c: &Value| -> Vec<String> {
        let mut k: Vec<String> = c
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("oauth_") || *k == "sign_in_attributes")
            .cloned()
            .collect();
        k.sort();
        k
    };

    // Google: an id_token checked like any OpenID provider's.
    let token = oidc.id_token(
        "g-1",
        json!({"email": "g@example.com", "email_verified": true}),
    );
    let (st, b) = s
        .idp(&format!(
            "id_token={token}&access_token=ga&providerId=google.com"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        claims(b["idToken"].as_str().unwrap())["firebase"]["sign_in_provider"],
        "google.com"
    );
    assert_eq!(
        credential_keys(&last_call()),
        ["oauth_access_token", "oauth_id_token"],
        "Google passes id and access tokens (a refresh token only from a code)"
    );
    let (_, b) = s
        .idp(&format!(
            "id_token={}&providerId=google.com",
            oidc.id_token("g-2", json!({"aud": "other"}))
        ))
        .await;
    assert!(message(&b).starts_with("INVALID_IDP_RESPONSE"), "{b}");

    // GitHub: the token API with the app's credentials; the primary verified address.
    let (st, b) = s
        .idp(&format!(
            "access_token={GOOD}&expires_in=3600&providerId=github.com"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["email"], "octo@example.com");
    // GitHub, like Facebook, LinkedIn and Twitter, is not trusted with addresses.
    assert_eq!(b["emailVerified"], false);
    assert_eq!(b["federatedId"], "4242");
    assert_eq!(credential_keys(&last_call()), ["oauth_access_token"]);
    let (_, b) = s
        .idp(&format!("access_token={FOREIGN}&providerId=github.com"))
        .await;
    assert!(
        message(&b).starts_with("INVALID_IDP_RESPONSE"),
        "another app's token: {b}"
    );

    // Facebook: appsecret_proof.
    let (st, b) = s
        .idp(&format!(
            "access_token={GOOD}&expires_in=5000&providerId=facebook.com"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["displayName"], "Face Book");
    assert_eq!(b["photoUrl"], "https://img.example/fb.png");
    let c = last_call();
    assert_eq!(
        credential_keys(&c),
        ["oauth_access_token", "oauth_expires_in"]
    );
    // The expiry is the token's own (from Facebook), not what the client claims.
    assert_eq!(c["oauth_expires_in"], 100_000_000);
    let (_, b) = s
        .idp(&format!("access_token={FOREIGN}&providerId=facebook.com"))
        .await;
    assert!(message(&b).starts_with("INVALID_IDP_RESPONSE"), "{b}");

    // LinkedIn: introspection names the app.
    let (st, b) = s
        .idp(&format!(
            "access_token={GOOD}&expires_in=60&providerId=linkedin.com"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["federatedId"], "li-7");
    assert_eq!(
        credential_keys(&last_call()),
        ["oauth_access_token", "oauth_expires_in"]
    );
    let (_, b) = s
        .idp(&format!("access_token={FOREIGN}&providerId=linkedin.com"))
        .await;
    assert!(message(&b).starts_with("INVALID_IDP_RESPONSE"), "{b}");

    // Twitter: OAuth 1.0a, the token secret passed on.
    let (st, b) = s
        .idp(&format!(
            "access_token={GOOD}&oauth_token_secret=tw-secret&providerId=twitter.com"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["email"], "tw@example.com");
    let c = last_call();
    assert_eq!(
        credential_keys(&c),
        ["oauth_access_token", "oauth_token_secret"]
    );
    assert_eq!(c["oauth_token_secret"], "tw-secret");
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|a| a.contains("oauth_nonce=")));
    let (_, b) = s
        .idp(&format!("access_token={GOOD}&providerId=twitter.com"))
        .await;
    assert!(
        message(&b).starts_with("INVALID_IDP_RESPONSE"),
        "no secret: {b}"
    );

    // Disabled: refused.
    let (st, _) = s
        .admin_v2(
            Method::PATCH,
            "defaultSupportedIdpConfigs/github.com?updateMask=enabled",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(st, 200);
    let (_, b) = s
        .idp(&format!("access_token={GOOD}&providerId=github.com"))
        .await;
    assert!(message(&b).starts_with("OPERATION_NOT_ALLOWED"), "{b}");
    // Microsoft needs its directory's issuer.
    s.configure_named("microsoft.com", json!({})).await;
    let (_, b) = s
        .idp(&format!(
            "id_token={}&providerId=microsoft.com",
            oidc.id_token("m", json!({}))
        ))
        .await;
    assert!(message(&b).contains("endpoints.issuer"), "{b}");

    // Refused credentials are limited per client.
    let mut limited = false;
    for _ in 0..31 {
        let (_, b) = s
            .idp(&format!("access_token={FOREIGN}&providerId=linkedin.com"))
            .await;
        if message(&b) == "TOO_MANY_ATTEMPTS_TRY_LATER" {
            limited = true;
            break;
        }
    }
    assert!(limited);
}

#[tokio::test]
async fn stand_in_endpoints_need_the_servers_consent() {
    let s = boot(Mode::Production).await;
    s.configure_named("github.com", json!({"apiUri": "http://127.0.0.1:9"}))
        .await;
    let (_, b) = s
        .idp(&format!("access_token={GOOD}&providerId=github.com"))
        .await;
    assert!(message(&b).contains("idp_endpoint_overrides"), "{b}");
    let (st, b) = s
        .admin_v2(
            reqwest::Method::POST,
            "defaultSupportedIdpConfigs?idpId=facebook.com",
            Some(
                json!({"enabled": true, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                "endpoints": {"apiUri": "https://graph.example/x?y="}}),
            ),
        )
        .await;
    assert_eq!(st, 400, "a query in an endpoint: {b}");
}
