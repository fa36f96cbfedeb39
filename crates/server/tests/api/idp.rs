//! Federated sign-in end to end: an OpenID Connect provider started here (its own keys,
//! discovery document and token endpoint), configured through the v2 `oauthIdpConfigs` API,
//! and `accounts:signInWithIdp` with its id_tokens and authorization codes.

use std::sync::{Arc, Mutex};

use firekeeper_core::{Clock, Mode};
use firekeeper_tokens::{jws, SigningKey};
use serde_json::{json, Value};

use super::{boot, claims, hook_server, message, Server, IT, PROJECT};

pub(super) const CLIENT_ID: &str = "firekeeper-client";
pub(super) const CLIENT_SECRET: &str = "provider-secret";
const V2: &str = "/identitytoolkit.googleapis.com/v2";

/// A small OpenID provider: discovery, JWKS and a token endpoint that trades the code
/// `good-code` for tokens. Forms posted to the token endpoint are recorded.
pub(super) struct Provider {
    pub(super) issuer: String,
    key: Arc<SigningKey>,
    forms: Arc<Mutex<Vec<Value>>>,
}

pub(super) async fn provider(now_s: i64) -> Provider {
    use axum::routing::{get, post};
    let key = Arc::new(SigningKey::generate().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let forms: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (iss, jwk) = (issuer.clone(), key.public_key().jwk().unwrap());
    let (signer, seen) = (key.clone(), forms.clone());
    let issuer_for_token = issuer.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let iss = iss.clone();
                async move {
                    axum::Json(json!({
                        "issuer": iss,
                        "jwks_uri": format!("{iss}/jwks"),
                        "token_endpoint": format!("{iss}/token"),
                        "response_types_supported": ["id_token", "code"],
                    }))
                }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let jwk = jwk.clone();
                async move { axum::Json(json!({"keys": [jwk]})) }
            }),
        )
        .route(
            "/token",
            post(move |body: String| {
                let (signer, seen, iss) = (signer.clone(), seen.clone(), issuer_for_token.clone());
                async move {
                    let form: serde_json::Map<String, Value> =
                        serde_urlencoded::from_str::<Vec<(String, String)>>(&body)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into()))
                            .collect();
                    seen.lock().unwrap().push(Value::Object(form.clone()));
                    let ok = form.get("code") == Some(&json!("good-code"))
                        && form.get("client_secret") == Some(&json!(CLIENT_SECRET));
                    if !ok {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            axum::Json(json!({"error": "invalid_grant"})),
                        );
                    }
                    let id_token = sign(
                        &signer,
                        json!({"iss": iss, "aud": CLIENT_ID, "sub": "code-user", "iat": now_s,
                            "exp": now_s + 600, "email": "code@example.com", "email_verified": true}),
                    );
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({"id_token": id_token, "access_token": "at-1",
                            "refresh_token": "rt-1", "expires_in": 3600, "token_type": "Bearer"})),
                    )
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Provider { issuer, key, forms }
}

fn sign(key: &SigningKey, claims: Value) -> String {
    jws::sign_rs256(key, claims.as_object().unwrap()).unwrap()
}

impl Provider {
    pub(super) fn id_token(&self, sub: &str, extra: Value) -> String {
        let now = 1_700_000_000i64;
        let mut c = json!({"iss": self.issuer, "aud": CLIENT_ID, "sub": sub, "iat": now,
            "exp": now + 600, "name": format!("User {sub}")});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(&self.key, c)
    }
}

impl Server {
    pub(super) async fn idp(&self, post_body: &str) -> (u16, Value) {
        self.post(
            &format!("{IT}/accounts:signInWithIdp"),
            json!({"requestUri": "http://localhost/callback", "postBody": post_body,
                "returnSecureToken": true}),
        )
        .await
    }
}

#[tokio::test]
async fn provider_configs_are_managed_as_the_admin_sdks_do() {
    use reqwest::Method;
    let s = boot(Mode::Production).await;
    let config = json!({"displayName": "Local", "enabled": true, "clientId": CLIENT_ID,
        "issuer": "https://idp.example", "responseType": {"idToken": true}});
    let (st, b) = s
        .admin_v2(
            Method::POST,
            "oauthIdpConfigs?oauthIdpConfigId=oidc.local",
            Some(config.clone()),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["name"],
        format!("projects/{PROJECT}/oauthIdpConfigs/oidc.local")
    );
    assert_eq!(b["clientId"], CLIENT_ID);
    let (st, b) = s
        .admin_v2(
            Method::POST,
            "oauthIdpConfigs?oauthIdpConfigId=oidc.local",
            Some(config.clone()),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "CONFIGURATION_EXISTS"));
    for (id, body, want) in [
        ("saml.nope", config.clone(), "INVALID_PROVIDER_ID"),
        (
            "oidc.a",
            json!({"issuer": "https://idp.example"}),
            "MISSING_OAUTH_CLIENT_ID",
        ),
        ("oidc.b", json!({"clientId": "c"}), "MISSING_ISSUER"),
    ] {
        let (st, b) = s
            .admin_v2(
                Method::POST,
                &format!("oauthIdpConfigs?oauthIdpConfigId={id}"),
                Some(body),
            )
            .await;
        assert_eq!(st, 400, "{id}: {b}");
        assert!(message(&b).starts_with(want), "{id}: {b}");
    }
    s.admin_v2(
        Method::POST,
        "oauthIdpConfigs?oauthIdpConfigId=oidc.second",
        Some(config.clone()),
    )
    .await;
    let (st, b) = s
        .admin_v2(
            Method::PATCH,
            "oauthIdpConfigs/oidc.local?updateMask=displayName,enabled",
            Some(json!({"displayName": "Renamed"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["displayName"], "Renamed");
    assert!(
        b.get("enabled").is_none(),
        "a masked field the body lacks is cleared: {b}"
    );
    assert_eq!(b["issuer"], "https://idp.example");
    let (_, b) = s
        .admin_v2(Method::GET, "oauthIdpConfigs?pageSize=1", None)
        .await;
    assert_eq!(b["oauthIdpConfigs"].as_array().unwrap().len(), 1);
    let token = b["nextPageToken"].as_str().unwrap().to_owned();
    let (_, b) = s
        .admin_v2(
            Method::GET,
            &format!("oauthIdpConfigs?pageSize=1&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(
        b["oauthIdpConfigs"][0]["name"],
        format!("projects/{PROJECT}/oauthIdpConfigs/oidc.second")
    );
    assert!(b.get("nextPageToken").is_none(), "{b}");
    let (st, _) = s
        .admin_v2(Method::DELETE, "oauthIdpConfigs/oidc.second", None)
        .await;
    assert_eq!(st, 200);
    let (st, b) = s
        .admin_v2(Method::GET, "oauthIdpConfigs/oidc.second", None)
        .await;
    assert_eq!((st, message(&b)), (400, "CONFIGURATION_NOT_FOUND"));

    // SAML configurations.
    let saml = json!({"displayName": "Corp", "enabled": true,
        "idpConfig": {"idpEntityId": "corp-idp", "ssoUrl": "https://corp.example/sso",
            "idpCertificates": [{"x509Certificate": include_str!("saml/idp-cert.pem")}]},
        "spConfig": {"spEntityId": "fk", "callbackUri": "https://fk.example/__/auth/handler"}});
    let (st, b) = s
        .admin_v2(
            Method::POST,
            "inboundSamlConfigs?inboundSamlConfigId=saml.corp",
            Some(saml),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, b) = s
        .admin_v2(
            Method::PATCH,
            "inboundSamlConfigs/saml.corp?updateMask=idpConfig.ssoUrl",
            Some(json!({"idpConfig": {"ssoUrl": "https://corp.example/sso2"}})),
        )
        .await;
    assert_eq!(b["idpConfig"]["ssoUrl"], "https://corp.example/sso2");
    assert_eq!(
        b["idpConfig"]["idpEntityId"], "corp-idp",
        "nested fields merge"
    );
    let (st, _) = s
        .admin_v2(Method::DELETE, "inboundSamlConfigs/saml.corp", None)
        .await;
    assert_eq!(st, 200);

    // Admins only.
    let (st, _) = s
        .raw(
            s.http
                .get(format!("{}{V2}/projects/{PROJECT}/oauthIdpConfigs", s.base))
                .query(&[("key", &s.key)]),
        )
        .await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn an_oidc_provider_signs_users_in() {
    use reqwest::Method;
    let s = boot(Mode::Production).await;
    let now_s = s.clock.now_secs();
    let idp = provider(now_s).await;
    let (st, b) = s
        .admin_v2(
            Method::POST,
            "oauthIdpConfigs?oauthIdpConfigId=oidc.local",
            Some(
                json!({"displayName": "Local", "enabled": true, "clientId": CLIENT_ID,
                "issuer": idp.issuer, "clientSecret": CLIENT_SECRET,
                "responseType": {"idToken": true, "code": true}}),
            ),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // The beforeCreate function gets the credentials the project forwards.
    let (hooks, calls) = hook_server().await;
    let (st, b) = s
        .raw(
            s.http
                .patch(format!("{}{V2}/projects/{PROJECT}/config", s.base))
                .bearer_auth(&s.admin)
                .json(&json!({"blockingFunctions": {
                    "triggers": {"beforeCreate": {"functionUri": format!("{hooks}/allow")}},
                    "forwardInboundCredentials": {"idToken": true, "accessToken": true, "refreshToken": true}}})),
        )
        .await;
    assert_eq!(st, 200, "{b}");

    // The token carries the hash of the nonce the client keeps.
    let hashed = firekeeper_core::secrets::hex(&firekeeper_core::secrets::sha256(b"n-123"));
    let token = idp.id_token(
        "alice",
        json!({"email": "Alice@Example.com", "email_verified": true,
        "nonce": hashed}),
    );
    let (st, b) = s
        .idp(&format!(
            "id_token={token}&providerId=oidc.local&nonce=n-123"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["kind"], "identitytoolkit#VerifyAssertionResponse");
    assert_eq!(b["isNewUser"], true);
    assert_eq!(b["providerId"], "oidc.local");
    assert_eq!(b["federatedId"], "alice");
    assert_eq!(b["email"], "alice@example.com");
    let uid = b["localId"].as_str().unwrap().to_owned();
    let c = claims(b["idToken"].as_str().unwrap());
    assert_eq!(c["firebase"]["sign_in_provider"], "oidc.local");
    assert_eq!(c["firebase"]["identities"]["oidc.local"], json!(["alice"]));
    let stored = s.user_by_email("alice@example.com").await.unwrap();
    assert!(
        stored["providerUserInfo"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["providerId"] == "oidc.local" && p["rawId"] == "alice"),
        "{stored}"
    );
    let (name, jwt) = calls.lock().unwrap().pop().unwrap();
    assert_eq!(name, "allow");
    assert_eq!(jwt["sign_in_method"], "oidc.local");
    assert_eq!(jwt["oauth_id_token"], token);
    assert_eq!(jwt["sign_in_attributes"]["sub"], "alice");
    assert!(jwt["raw_user_info"].as_str().unwrap().contains("\"alice\""));

    // The same identity signs the same user in.
    let again = idp.id_token("alice", json!({}));
    let (st, b) = s
        .idp(&format!("id_token={again}&providerId=oidc.local"))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        (b["isNewUser"].as_bool(), b["localId"].as_str()),
        (Some(false), Some(uid.as_str()))
    );

    // Refused credentials: forged, expired, for another client, replayed with another
    // nonce, unsigned.
    let forger = SigningKey::generate().unwrap();
    let forged = sign(
        &forger,
        json!({"iss": idp.issuer, "aud": CLIENT_ID, "sub": "alice",
        "iat": now_s, "exp": now_s + 600}),
    );
    let unsigned = jws::encode_unsigned(
        json!({"iss": idp.issuer, "aud": CLIENT_ID, "sub": "alice", "iat": now_s, "exp": now_s + 600})
            .as_object()
            .unwrap(),
    );
    for (what, body) in [
        ("forged", format!("id_token={forged}&providerId=oidc.local")),
        (
            "expired",
            format!(
                "id_token={}&providerId=oidc.local",
                idp.id_token("alice", json!({"exp": now_s - 3600}))
            ),
        ),
        (
            "audience",
            format!(
                "id_token={}&providerId=oidc.local",
                idp.id_token("alice", json!({"aud": "another-client"}))
            ),
        ),
        (
            "nonce",
            format!("id_token={token}&providerId=oidc.local&nonce=other"),
        ),
        (
            "unsigned",
            format!("id_token={unsigned}&providerId=oidc.local"),
        ),
        ("bad code", "code=stolen&providerId=oidc.local".to_owned()),
    ] {
        let (st, b) = s.idp(&body).await;
        assert_eq!(
            (st, message(&b)),
            (
                400,
                "INVALID_IDP_RESPONSE : The supplied auth credential is malformed or has expired."
            ),
            "{what}"
        );
    }
    let (st, b) = s
        .idp(&format!("id_token={token}&providerId=oidc.unknown"))
        .await;
    assert_eq!(st, 400);
    assert!(message(&b).starts_with("OPERATION_NOT_ALLOWED"), "{b}");

    // The code flow: the code is traded at the token endpoint with the client secret and
    // the redirect URI, and the function gets every token.
    let (st, b) = s.idp("code=good-code&providerId=oidc.local").await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["federatedId"], "code-user");
    assert_eq!(b["oauthAccessToken"], "at-1");
    let form = idp.forms.lock().unwrap().last().cloned().unwrap();
    assert_eq!(form["redirect_uri"], "http://localhost/callback");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["grant_type"], "authorization_code");
    let (_, jwt) = calls.lock().unwrap().pop().unwrap();
    assert_eq!(jwt["oauth_access_token"], "at-1");
    assert_eq!(jwt["oauth_refresh_token"], "rt-1");
    assert_eq!(jwt["oauth_expires_in"], 3600);

    // Request errors.
    for (body, want) in [
        (
            json!({"postBody": "id_token=x&providerId=oidc.local"}),
            "MISSING_REQUEST_URI",
        ),
        (
            json!({"requestUri": "not-a-uri", "postBody": "id_token=x&providerId=oidc.local"}),
            "INVALID_REQUEST_URI",
        ),
    ] {
        let (st, b) = s.post(&format!("{IT}/accounts:signInWithIdp"), body).await;
        assert_eq!((st, message(&b)), (400, want));
    }
}

#[tokio::test]
async fn one_account_per_email_across_providers() {
    use reqwest::Method;
    let s = boot(Mode::Production).await;
    let idp = provider(s.clock.now_secs()).await;
    s.admin_v2(
        Method::POST,
        "oauthIdpConfigs?oauthIdpConfigId=oidc.local",
        Some(json!({"enabled": true, "clientId": CLIENT_ID, "issuer": idp.issuer})),
    )
    .await;
    // An unverified IdP email that matches an account asks for confirmation.
    let owner = s.sign_up("shared@example.com").await;
    let t = idp.id_token(
        "bob",
        json!({"email": "shared@example.com", "email_verified": false}),
    );
    let (st, b) = s.idp(&format!("id_token={t}&providerId=oidc.local")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["needConfirmation"], true);
    assert_eq!(b["localId"], owner["localId"]);
    assert!(b.get("idToken").is_none());
    // Linking by idToken: the signed-in user gets the identity.
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithIdp"),
            json!({"requestUri": "http://localhost/callback", "idToken": owner["idToken"],
                "postBody": format!("id_token={t}&providerId=oidc.local"), "returnSecureToken": true}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["localId"], owner["localId"]);
    // Now the identity belongs to that user; nobody else may link it.
    let other = s.sign_up("other@example.com").await;
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithIdp"),
            json!({"requestUri": "http://localhost/callback", "idToken": other["idToken"],
                "postBody": format!("id_token={}&providerId=oidc.local", idp.id_token("bob", json!({}))),
                "returnSecureToken": true}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "FEDERATED_USER_ID_ALREADY_LINKED"));

    // A verified IdP email takes over an account whose email nobody verified: the
    // registrant's password and sessions go.
    let squatter = s.sign_up("taken-over@example.com").await;
    s.clock.advance_secs(2);
    let t = idp.id_token(
        "carol",
        json!({"email": "taken-over@example.com", "email_verified": true}),
    );
    let (st, b) = s.idp(&format!("id_token={t}&providerId=oidc.local")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["localId"], squatter["localId"]);
    assert_eq!(b["isNewUser"], false);
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "taken-over@example.com", "password": "secret-pw"}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "INVALID_LOGIN_CREDENTIALS"));
    let (st, b) = s.refresh(squatter["refreshToken"].as_str().unwrap()).await;
    assert_eq!((st, message(&b)), (400, "TOKEN_EXPIRED"));
}

#[tokio::test]
async fn emulator_mode_takes_fake_idp_tokens() {
    let s = boot(Mode::Emulator).await;
    let fake = r#"{"sub":"fb-1","email":"fb@example.com","email_verified":false,"name":"Fay"}"#;
    let body =
        serde_urlencoded::to_string([("id_token", fake), ("providerId", "facebook.com")]).unwrap();
    let (st, b) = s.idp(&body).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["isNewUser"], true);
    assert_eq!(b["displayName"], "Fay");
    assert_eq!(
        b["oauthAccessToken"],
        "FirebaseAuthEmulatorFakeAccessToken_facebook.com"
    );
    assert_eq!(
        claims(b["idToken"].as_str().unwrap())["firebase"]["sign_in_provider"],
        "facebook.com"
    );
    let (st, b) = s.idp("access_token=abc&providerId=google.com").await;
    assert_eq!(st, 501, "{b}");
    let (st, b) = s
        .idp("id_token=%7B%22email%22%3A%22x%40y.z%22%7D&providerId=x.com")
        .await;
    assert_eq!(st, 400);
    assert!(message(&b).starts_with("INVALID_IDP_RESPONSE"), "{b}");
}

#[tokio::test]
async fn linking_rules_hold_under_races_and_replays() {
    use reqwest::Method;
    let s = Arc::new(boot(Mode::Production).await);
    let idp = Arc::new(provider(s.clock.now_secs()).await);
    s.admin_v2(
        Method::POST,
        "oauthIdpConfigs?oauthIdpConfigId=oidc.local",
        Some(json!({"enabled": true, "clientId": CLIENT_ID, "issuer": idp.issuer})),
    )
    .await;
    // The token's own (hashed) nonce passed as the raw one proves nothing.
    let hashed = firekeeper_core::secrets::hex(&firekeeper_core::secrets::sha256(b"secret-n"));
    let token = idp.id_token("dave", json!({"nonce": hashed}));
    let (st, _) = s
        .idp(&format!(
            "id_token={token}&providerId=oidc.local&nonce={hashed}"
        ))
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .idp(&format!(
            "id_token={token}&providerId=oidc.local&nonce=secret-n"
        ))
        .await;
    assert_eq!(st, 200);

    // Parallel first sign-ins of one identity end on one account.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (s, idp) = (s.clone(), idp.clone());
        racers.spawn(async move {
            let t = idp.id_token(
                "erin",
                json!({"email": "erin@example.com", "email_verified": true}),
            );
            let (st, b) = s.idp(&format!("id_token={t}&providerId=oidc.local")).await;
            assert_eq!(st, 200, "{b}");
            b["localId"].as_str().unwrap().to_owned()
        });
    }
    let mut uids = std::collections::HashSet::new();
    while let Some(uid) = racers.join_next().await {
        uids.insert(uid.unwrap());
    }
    assert_eq!(uids.len(), 1, "{uids:?}");

    // A user who linked the identity keeps their password when the IdP later vouches for
    // the email: only an account found by that email is taken over.
    let user = s.sign_up("frank@example.com").await;
    let link_body = |t: String, extra: Value| {
        let mut b = json!({"requestUri": "http://localhost/callback", "idToken": user["idToken"],
            "postBody": format!("id_token={t}&providerId=oidc.local"), "returnSecureToken": true});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let t = idp.id_token(
        "frank",
        json!({"email": "frank@example.com", "email_verified": false}),
    );
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithIdp"),
            link_body(t, json!({})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    s.clock.advance_secs(2);
    let t = idp.id_token(
        "frank",
        json!({"email": "frank@example.com", "email_verified": true}),
    );
    let (st, _) = s.idp(&format!("id_token={t}&providerId=oidc.local")).await;
    assert_eq!(st, 200);
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "frank@example.com", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // A second identity of the same provider is not swapped in silently.
    let t = idp.id_token("frank-2", json!({}));
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithIdp"),
            link_body(t.clone(), json!({})),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "PROVIDER_ALREADY_LINKED"));
    // The client SDKs ask for refusals as answers carrying the credential.
    let taken = idp.id_token("erin", json!({}));
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithIdp"),
            link_body(taken, json!({"returnIdpCredential": true})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["errorMessage"], "FEDERATED_USER_ID_ALREADY_LINKED");
    assert_eq!(b["federatedId"], "erin");
    assert!(b.get("idToken").is_none());
}

#[tokio::test]
async fn tenants_have_identity_providers_of_their_own() {
    use firekeeper_core::Store;
    use reqwest::Method;
    let s = boot(Mode::Production).await;
    let idp = provider(s.clock.now_secs()).await;
    let (st, b) = s
        .admin_v2(
            Method::POST,
            "tenants",
            Some(json!({"displayName": "Branch"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let tenant = b["tenantId"].as_str().unwrap().to_owned();
    let config = json!({"enabled": true, "clientId": CLIENT_ID, "issuer": idp.issuer,
        "responseType": {"idToken": true}});
    // Configured for the project only: no tenant sign-in.
    let (st, _) = s
        .admin_v2(
            Method::POST,
            "oauthIdpConfigs?oauthIdpConfigId=oidc.branch",
            Some(config.clone()),
        )
        .await;
    assert_eq!(st, 200);
    let path = format!("{IT}/accounts:signInWithIdp");
    let sign_in = |tenant: Option<&str>| {
        let mut body = json!({"requestUri": "http://localhost/cb", "returnSecureToken": true,
            "postBody": format!("id_token={}&providerId=oidc.branch",
                idp.id_token("branch-user", json!({})))});
        if let Some(t) = tenant {
            body["tenantId"] = t.into();
        }
        s.post(&path, body)
    };
    let (_, b) = sign_in(Some(&tenant)).await;
    assert!(message(&b).starts_with("OPERATION_NOT_ALLOWED"), "{b}");
    // The tenant's own configuration.
    let (st, b) = s
        .admin_v2(
            Method::POST,
            &format!("tenants/{tenant}/oauthIdpConfigs?oauthIdpConfigId=oidc.branch"),
            Some(config),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["name"],
        format!("projects/{PROJECT}/tenants/{tenant}/oauthIdpConfigs/oidc.branch")
    );
    let (_, listed) = s
        .admin_v2(
            Method::GET,
            &format!("tenants/{tenant}/oauthIdpConfigs"),
            None,
        )
        .await;
    assert_eq!(listed["oauthIdpConfigs"].as_array().unwrap().len(), 1);
    let (st, b) = sign_in(Some(&tenant)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        claims(b["idToken"].as_str().unwrap())["firebase"]["tenant"],
        tenant.as_str()
    );
    // The tenant's user is not the project's.
    let (st, p) = sign_in(None).await;
    assert_eq!(st, 200, "{p}");
    assert_ne!(p["localId"], b["localId"]);
    // Deleting the tenant takes its configurations along.
    let (st, _) = s
        .admin_v2(Method::DELETE, &format!("tenants/{tenant}"), None)
        .await;
    assert_eq!(st, 200);
    let doc = s
        .store
        .project_config(PROJECT)
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        doc.get("tenantProviderConfigs")
            .and_then(|t| t.get(&tenant))
            .is_none(),
        "{doc}"
    );
}
