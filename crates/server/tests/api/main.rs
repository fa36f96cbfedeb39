//! The HTTP API end to end: a real server on 127.0.0.1:0 over real SQLite, with an injected
//! clock so expiry and rotation are tested without sleeping.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use firekeeper_core::password::HashCost;
use firekeeper_core::secrets::MasterKey;
use firekeeper_core::{Auth, AuthConfig, Clock, ManualClock, Mode};
use firekeeper_server::AppState;
use firekeeper_store::SqliteStore;
use serde_json::{json, Value};

mod email_actions;
mod idp;
mod mfa;
mod named_idp;
mod password_policy;
mod phone;
mod saml;
mod tenants;

const PROJECT: &str = "demo-test";
const IT: &str = "/identitytoolkit.googleapis.com/v1";

struct Server {
    base: String,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    auth: Arc<Auth>,
    store: Arc<SqliteStore>,
    key: String,
    admin: String,
}

async fn boot(mode: Mode) -> Server {
    boot_with(mode, 1 << 20).await
}

async fn boot_with(mode: Mode, max_body_bytes: usize) -> Server {
    boot_custom(mode, max_body_bytes, |_| {}).await
}

async fn boot_custom(
    mode: Mode,
    max_body_bytes: usize,
    adjust: impl FnOnce(&mut AuthConfig),
) -> Server {
    boot_mailing(mode, max_body_bytes, adjust, None).await
}

async fn boot_mailing(
    mode: Mode,
    max_body_bytes: usize,
    adjust: impl FnOnce(&mut AuthConfig),
    mailer: Option<Arc<dyn firekeeper_core::email::Mailer>>,
) -> Server {
    boot_full(mode, max_body_bytes, adjust, mailer, None).await
}

async fn boot_full(
    mode: Mode,
    max_body_bytes: usize,
    adjust: impl FnOnce(&mut AuthConfig),
    mailer: Option<Arc<dyn firekeeper_core::email::Mailer>>,
    sms: Option<Arc<dyn firekeeper_core::sms::SmsSender>>,
) -> Server {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let mut cfg = AuthConfig::new(mode, PROJECT);
    cfg.hash_cost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    adjust(&mut cfg);
    let master = Arc::new(MasterKey::from_bytes(&[7u8; 32]).unwrap());
    let mut auth = Auth::new(cfg, store.clone(), clock.clone(), master)
        .await
        .unwrap()
        .with_hook_client(Arc::new(firekeeper_server::HttpHookClient::new().unwrap()));
    if let Some(m) = mailer {
        auth = auth.with_mailer(m);
    }
    if let Some(t) = sms {
        auth = auth.with_sms_sender(t);
    }
    let auth = Arc::new(auth);
    let now = clock.now_ms();
    let key = firekeeper_core::credentials::create_api_key(&*store, PROJECT, now)
        .await
        .unwrap();
    let (_, admin) = firekeeper_core::credentials::create_admin_token(&*store, Some(PROJECT), now)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState {
        auth: auth.clone(),
        max_body_bytes,
        public_url: None,
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
    };
    tokio::spawn(firekeeper_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Server {
        base,
        http: reqwest::Client::new(),
        clock,
        auth,
        store,
        key,
        admin: if mode == Mode::Emulator {
            "owner".into()
        } else {
            admin
        },
    }
}

impl Server {
    /// An admin call to `IT/v2/projects/{PROJECT}/<path>`.
    async fn admin_v2(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(
                method,
                format!(
                    "{}/identitytoolkit.googleapis.com/v2/projects/{PROJECT}/{path}",
                    self.base
                ),
            )
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.raw(req).await
    }

    /// POST with the API key.
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .query(&[("key", &self.key)])
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    async fn raw(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON answer ({status}): {text}"));
        (status, body)
    }

    async fn sign_up(&self, email: &str) -> Value {
        let (s, b) = self
            .post(
                &format!("{IT}/accounts:signUp"),
                json!({"email": email, "password": "secret-pw", "returnSecureToken": true}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b
    }

    async fn refresh(&self, token: &str) -> (u16, Value) {
        self.raw(
            self.http
                .post(format!("{}/securetoken.googleapis.com/v1/token", self.base))
                .query(&[("key", &self.key)])
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]),
        )
        .await
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

/// The envelope every error must have; returns the message.
fn assert_envelope(status: u16, body: &Value) -> String {
    let e = &body["error"];
    assert_eq!(e["code"], status, "{body}");
    assert!(e["message"].is_string(), "{body}");
    assert!(e["errors"][0]["message"].is_string(), "{body}");
    e["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn credential_errors_are_exact() {
    let s = boot(Mode::Production).await;
    let url = format!("{}{IT}/accounts:signUp", s.base);

    let (st, b) = s.raw(s.http.post(&url).json(&json!({}))).await;
    assert_eq!(st, 403);
    assert_eq!(message(&b), "The request is missing a valid API key.");
    assert_eq!(b["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(b["error"]["errors"][0]["reason"], "forbidden");

    let (st, b) = s
        .raw(
            s.http
                .post(&url)
                .query(&[("key", "AIzaWrong")])
                .json(&json!({})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(b["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(b["error"]["details"][0]["reason"], "API_KEY_INVALID");

    // The key also works from the header.
    let (st, _) = s
        .raw(
            s.http
                .post(&url)
                .header("x-goog-api-key", &s.key)
                .json(&json!({})),
        )
        .await;
    assert_eq!(st, 200);

    let (st, b) = s
        .raw(s.http.post(&url).bearer_auth("owner").json(&json!({})))
        .await;
    assert_eq!(st, 401);
    assert!(message(&b).starts_with("Request had invalid authentication credentials."));
    assert_eq!(b["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(b["error"]["errors"][0]["reason"], "authError");
    assert_eq!(b["error"]["errors"][0]["location"], "Authorization");

    // Admin-only operation with only an API key.
    let list = format!("{}{IT}/projects/{PROJECT}/accounts:batchGet", s.base);
    let (st, b) = s.raw(s.http.get(&list).query(&[("key", &s.key)])).await;
    assert_eq!(st, 401);
    assert!(message(&b).starts_with("Request is missing required authentication credential."));
    assert_eq!(b["error"]["errors"][0]["reason"], "required");

    // A project path with only an API key.
    let (st, b) = s
        .post(
            &format!("/identitytoolkit.googleapis.com/v1/projects/{PROJECT}/accounts:lookup"),
            json!({"localId": ["x"]}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "INSUFFICIENT_PERMISSION : Only authenticated requests can specify target_project_id."
    );

    // An admin token of this project used on another project's path.
    let other = format!("{}{IT}/projects/other-project/accounts:batchGet", s.base);
    let (st, b) = s.raw(s.http.get(&other).bearer_auth(&s.admin)).await;
    assert_eq!(st, 403);
    assert_eq!(message(&b), "The caller does not have permission");

    // Unknown path.
    let (st, b) = s.raw(s.http.get(format!("{}/nope", s.base))).await;
    assert_eq!(st, 404);
    assert_eq!(
        b,
        json!({"error":{"code":404,"message":"Not Found","errors":[{"message":"Not Found","reason":"notFound"}],"status":"NOT_FOUND"}})
    );
}

#[tokio::test]
async fn body_errors_are_exact() {
    let s = boot_with(Mode::Emulator, 4096).await;
    let url = format!("{}{IT}/accounts:signInWithPassword?key=k", s.base);
    let (st, b) = s
        .raw(
            s.http
                .post(&url)
                .header("content-type", "application/json")
                .body("{\"email\": "),
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        message(&b).starts_with("Invalid JSON payload received. "),
        "{b}"
    );
    assert_eq!(b["error"]["errors"][0]["reason"], "parseError");
    assert_eq!(b["error"]["status"], "INVALID_ARGUMENT");

    let (st, b) = s.raw(s.http.post(&url).json(&json!({"email": 5}))).await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "Invalid JSON payload received. /email must be string"
    );

    let (st, b) = s.raw(s.http.post(&url).json(&json!([1, 2]))).await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "Invalid JSON payload received. Root element must be a message."
    );

    let (_, b) = s.raw(s.http.post(&url).json(&json!({}))).await;
    assert_eq!(message(&b), "MISSING_EMAIL");
    assert!(
        b["error"].get("status").is_none(),
        "domain errors carry no status"
    );
    assert_eq!(
        b["error"]["errors"][0],
        json!({"message":"MISSING_EMAIL","reason":"invalid","domain":"global"})
    );
    let (_, b) = s
        .raw(s.http.post(&url).json(&json!({"email": "a@b.co"})))
        .await;
    assert_eq!(message(&b), "MISSING_PASSWORD");
    let (_, b) = s
        .raw(
            s.http
                .post(&url)
                .json(&json!({"email": "not-an-email", "password": "x"})),
        )
        .await;
    assert_eq!(message(&b), "INVALID_EMAIL");

    let big = "x".repeat(5000);
    let (st, b) = s.raw(s.http.post(&url).json(&json!({"email": big}))).await;
    assert_eq!(st, 413);
    assert_envelope(st, &b);

    // snake_case keys are accepted.
    let signup = format!("{}{IT}/accounts:signUp?key=k", s.base);
    let (st, b) = s
        .raw(s.http.post(&signup).json(
            &json!({"email": "snake@x.io", "password": "secret-pw", "return_secure_token": true}),
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, b) = s
        .raw(
            s.http
                .post(&signup)
                .json(&json!({"email": "weak@x.io", "password": "123"})),
        )
        .await;
    assert_eq!(
        message(&b),
        "WEAK_PASSWORD : Password should be at least 6 characters"
    );
    let (_, b) = s
        .raw(
            s.http
                .post(&signup)
                .json(&json!({"email": "snake@x.io", "password": "secret-pw"})),
        )
        .await;
    assert_eq!(message(&b), "EMAIL_EXISTS");
}

/// Every operation, fed values of every wrong type for every field, answers with an
/// envelope below 500.
#[tokio::test]
async fn garbage_never_causes_a_500() {
    for mode in [Mode::Emulator, Mode::Production] {
        let s = boot(mode).await;
        let user = s.sign_up("fuzz@x.io").await;
        let id_token = user["idToken"].as_str().unwrap().to_owned();
        let ops = [
            "accounts:signUp",
            "accounts:signInWithPassword",
            "accounts:signInWithCustomToken",
            "accounts:lookup",
            "accounts:update",
            "accounts:delete",
            "accounts:sendOobCode",
        ];
        let fields = [
            "email",
            "password",
            "idToken",
            "localId",
            "token",
            "displayName",
            "validSince",
            "customAttributes",
            "deleteAttribute",
            "deleteProvider",
            "phoneNumber",
            "tenantId",
            "targetProjectId",
            "federatedUserId",
            "mfa",
            "linkProviderUserInfo",
            "disableUser",
            "emailVerified",
            "createdAt",
        ];
        let values = [
            json!(null),
            json!(1),
            json!(-1.5),
            json!(true),
            json!("x"),
            json!(""),
            json!([]),
            json!(["a", 1]),
            json!({}),
            json!({"a": [null]}),
            json!("\u{0000}"),
            json!(1e308),
            json!(id_token.clone()),
        ];
        for op in ops {
            for field in fields {
                for v in &values {
                    for admin in [false, true] {
                        let body = json!({ field: v });
                        let path = if admin {
                            format!("{IT}/projects/{PROJECT}/{op}")
                        } else {
                            format!("{IT}/{op}")
                        };
                        let (st, b) = if admin {
                            s.admin_post(&path, body.clone()).await
                        } else {
                            s.post(&path, body.clone()).await
                        };
                        assert!(st < 500 || st == 501, "{op} {body} -> {st} {b}");
                        if st != 200 {
                            assert_envelope(st, &b);
                        }
                    }
                }
            }
        }
        let cookie_url = format!("{IT}/projects/{PROJECT}:createSessionCookie");
        for field in ["idToken", "validDuration", "tenantId"] {
            for v in &values {
                for base in [json!({}), json!({"idToken": id_token})] {
                    let mut body = base;
                    body[field] = v.clone();
                    let (st, b) = s.admin_post(&cookie_url, body.clone()).await;
                    assert!(st < 500, "createSessionCookie {body} -> {st} {b}");
                    if st != 200 {
                        assert_envelope(st, &b);
                    }
                }
            }
        }
        for garbage in ["", "x", "a.b.c", "e30.e30.", "...", &id_token] {
            let (st, b) = s.refresh(garbage).await;
            assert_eq!(st, 400, "{b}");
        }
    }
}

#[tokio::test]
async fn id_token_has_exactly_firebases_claims() {
    let s = boot(Mode::Production).await;
    let b = s.sign_up("Claims@Example.com").await;
    assert_eq!(b["kind"], "identitytoolkit#SignupNewUserResponse");
    assert_eq!(b["expiresIn"], "3600");
    assert_eq!(b["email"], "claims@example.com");
    let t = b["idToken"].as_str().unwrap();
    let h = header(t);
    assert_eq!(h["alg"], "RS256");
    assert!(h["kid"].is_string());
    let c = claims(t);
    let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "email",
            "email_verified",
            "auth_time",
            "user_id",
            "firebase",
            "sid",
            "iat",
            "exp",
            "aud",
            "iss",
            "sub"
        ]
    );
    assert_eq!(
        c["iss"],
        format!("https://securetoken.google.com/{PROJECT}")
    );
    assert_eq!(c["aud"], PROJECT);
    assert_eq!(c["sub"], b["localId"]);
    assert_eq!(c["user_id"], b["localId"]);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(c["firebase"]["sign_in_provider"], "password");
    assert_eq!(
        c["firebase"]["identities"]["email"],
        json!(["claims@example.com"])
    );

    // Custom claims reach the token on refresh; reserved ones are refused.
    let uid = b["localId"].as_str().unwrap();
    let upd = format!("{IT}/projects/{PROJECT}/accounts:update");
    let (st, r) = s
        .admin_post(
            &upd,
            json!({"localId": uid, "customAttributes": "{\"admin\":true,\"name\":\"Boss\"}"}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    let (_, r) = s
        .admin_post(
            &upd,
            json!({"localId": uid, "customAttributes": "{\"sub\":\"x\"}"}),
        )
        .await;
    assert_eq!(message(&r), "FORBIDDEN_CLAIM : sub");
    let big = format!("{{\"k\":\"{}\"}}", "v".repeat(1000));
    let (_, r) = s
        .admin_post(&upd, json!({"localId": uid, "customAttributes": big}))
        .await;
    assert_eq!(message(&r), "CLAIMS_TOO_LARGE");
    let (_, r) = s
        .admin_post(&upd, json!({"localId": uid, "customAttributes": "[1]"}))
        .await;
    assert_eq!(message(&r), "INVALID_CLAIMS");
    let (st, r) = s.refresh(b["refreshToken"].as_str().unwrap()).await;
    assert_eq!(st, 200, "{r}");
    let c = claims(r["id_token"].as_str().unwrap());
    assert_eq!(c["admin"], true);
    assert_eq!(c["name"], "Boss");
    assert_eq!(r["access_token"], r["id_token"]);
    assert_eq!(r["token_type"], "Bearer");
    assert_eq!(r["user_id"], uid);

    // End users see a redacted hash; admins the real one.
    let (_, me) = s
        .post(&format!("{IT}/accounts:lookup"), json!({"idToken": t}))
        .await;
    assert_eq!(me["users"][0]["passwordHash"], "UkVEQUNURUQ=");
    assert!(me["users"][0].get("salt").is_none());
    let (_, adm) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:lookup"),
            json!({"localId": [uid]}),
        )
        .await;
    assert_ne!(adm["users"][0]["passwordHash"], "UkVEQUNURUQ=");
    assert!(adm["users"][0]["salt"].is_string());
    assert!(adm["users"][0]["lastRefreshAt"].is_string());
    // A miss is 200 without users.
    let (st, miss) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:lookup"),
            json!({"localId": ["nobody"]}),
        )
        .await;
    assert_eq!(st, 200);
    assert!(miss.get("users").is_none());
}

#[tokio::test]
async fn refresh_follows_production_semantics() {
    let s = boot(Mode::Production).await;
    let upd = format!("{IT}/projects/{PROJECT}/accounts:update");

    // Admin revoke (validSince) → TOKEN_EXPIRED on refresh and on idToken calls.
    let a = s.sign_up("revoke@x.io").await;
    s.clock.advance_secs(10);
    let now = s.clock.now_secs();
    let (st, _) = s
        .admin_post(&upd, json!({"localId": a["localId"], "validSince": now}))
        .await;
    assert_eq!(st, 200);
    let (_, r) = s.refresh(a["refreshToken"].as_str().unwrap()).await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    let (_, r) = s
        .post(
            &format!("{IT}/accounts:lookup"),
            json!({"idToken": a["idToken"]}),
        )
        .await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");

    // Disabled → USER_DISABLED for refresh, sign-in and idToken calls.
    let b = s.sign_up("disable@x.io").await;
    s.admin_post(&upd, json!({"localId": b["localId"], "disableUser": true}))
        .await;
    let (_, r) = s.refresh(b["refreshToken"].as_str().unwrap()).await;
    assert_eq!(message(&r), "USER_DISABLED");
    let (_, r) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "disable@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(message(&r), "USER_DISABLED");

    // Deleted → USER_NOT_FOUND.
    let c = s.sign_up("delete@x.io").await;
    let (st, d) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:delete"),
            json!({"localId": c["localId"]}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(d["kind"], "identitytoolkit#DeleteAccountResponse");
    let (_, r) = s.refresh(c["refreshToken"].as_str().unwrap()).await;
    assert_eq!(message(&r), "USER_NOT_FOUND");

    // A password change by the user revokes other sessions but hands this device fresh
    // tokens with a new auth_time.
    let d = s.sign_up("change@x.io").await;
    s.clock.advance_secs(5);
    let (st, r) = s
        .post(
            &format!("{IT}/accounts:update"),
            json!({"idToken": d["idToken"], "password": "new-secret", "returnSecureToken": true}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    let fresh = r["idToken"].as_str().unwrap();
    assert!(r["refreshToken"].is_string());
    assert_eq!(claims(fresh)["auth_time"], s.clock.now_secs());
    let (_, old) = s.refresh(d["refreshToken"].as_str().unwrap()).await;
    assert_eq!(message(&old), "TOKEN_EXPIRED");
    let (st, _) = s.refresh(r["refreshToken"].as_str().unwrap()).await;
    assert_eq!(st, 200);

    // An expired ID token is refused.
    let e = s.sign_up("expire@x.io").await;
    s.clock.advance_secs(3601);
    let (_, r) = s
        .post(
            &format!("{IT}/accounts:lookup"),
            json!({"idToken": e["idToken"]}),
        )
        .await;
    assert_eq!(message(&r), "INVALID_ID_TOKEN");
    // An unsigned token is refused in production mode.
    let forged = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        e["idToken"].as_str().unwrap().split('.').nth(1).unwrap()
    );
    let (_, r) = s
        .post(&format!("{IT}/accounts:lookup"), json!({"idToken": forged}))
        .await;
    assert_eq!(message(&r), "INVALID_ID_TOKEN");
}

#[tokio::test]
async fn sign_in_errors_depend_on_email_privacy() {
    let prod = boot(Mode::Production).await;
    prod.sign_up("who@x.io").await;
    let path = format!("{IT}/accounts:signInWithPassword");
    for body in [
        json!({"email": "nobody@x.io", "password": "secret-pw"}),
        json!({"email": "who@x.io", "password": "wrong-pw"}),
    ] {
        let (_, r) = prod.post(&path, body).await;
        assert_eq!(message(&r), "INVALID_LOGIN_CREDENTIALS");
    }
    let emu = boot(Mode::Emulator).await;
    emu.sign_up("who@x.io").await;
    let (_, r) = emu
        .post(
            &path,
            json!({"email": "nobody@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(message(&r), "EMAIL_NOT_FOUND");
    let (_, r) = emu
        .post(&path, json!({"email": "WHO@x.io", "password": "wrong-pw"}))
        .await;
    assert_eq!(message(&r), "INVALID_PASSWORD");
    let (st, r) = emu
        .post(&path, json!({"email": "WHO@x.io", "password": "secret-pw"}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(r["registered"], true);
    assert_eq!(header(r["idToken"].as_str().unwrap())["alg"], "none");
    assert!(r["idToken"].as_str().unwrap().ends_with('.'));
}

#[tokio::test]
async fn keys_rotate_and_stay_published_until_tokens_expire() {
    let s = boot(Mode::Production).await;
    let jwks_url = format!(
        "{}/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com",
        s.base
    );
    let x509_url = format!(
        "{}/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com",
        s.base
    );
    let res = s.http.get(&x509_url).send().await.unwrap();
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    let certs: Value = res.json().await.unwrap();
    // The active key and the queued next one are both published.
    assert_eq!(certs.as_object().unwrap().len(), 2);
    assert!(certs.as_object().unwrap().values().all(|c| c
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----")));
    let max_age: i64 = cache
        .strip_prefix("public, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age > 0 && max_age <= 6 * 3600, "{cache}");

    // A token signed a minute before the scheduled rotation.
    s.clock.advance_secs(6 * 3600 - 60);
    s.auth.id_keys().tick().await.unwrap();
    let a = s.sign_up("rot-a@x.io").await;
    let kid_a = header(a["idToken"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(certs.get(&kid_a).is_some());

    // At six hours the queued key signs; the old one stays published for the lifetime
    // of its tokens, and the server still accepts them.
    s.clock.advance_secs(61);
    s.auth.id_keys().tick().await.unwrap();
    let b = s.sign_up("rot-b@x.io").await;
    let kid_b = header(b["idToken"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(kid_a, kid_b);
    assert!(
        certs.get(&kid_b).is_some(),
        "the new signing key was published before it signed"
    );
    let lookup = format!("{IT}/accounts:lookup");
    let (st, r) = s.post(&lookup, json!({"idToken": a["idToken"]})).await;
    assert_eq!(st, 200, "a token of the retired key still verifies: {r}");
    let jwks: Value = s
        .http
        .get(&jwks_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&kid_a.as_str()) && kids.contains(&kid_b.as_str()));
    assert_eq!(jwks["keys"][0]["alg"], "RS256");

    // Once expired, its token is refused; past the retention the key is gone.
    s.clock.advance_secs(3600);
    let (_, r) = s.post(&lookup, json!({"idToken": a["idToken"]})).await;
    assert_eq!(message(&r), "INVALID_ID_TOKEN");
    s.clock.advance_secs(301);
    s.auth.id_keys().tick().await.unwrap();
    let jwks: Value = s
        .http
        .get(&jwks_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(!kids.contains(&kid_a.as_str()));
    assert!(kids.contains(&kid_b.as_str()));
}

#[tokio::test]
async fn admin_listing_paging_and_batch_delete() {
    let s = boot(Mode::Emulator).await;
    let create = format!("{IT}/projects/{PROJECT}/accounts");
    for i in 0..5 {
        let (st, b) = s
            .admin_post(
                &create,
                json!({"localId": format!("u{i}"), "email": format!("u{i}@x.io")}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        assert!(b.get("idToken").is_none(), "admin create issues no tokens");
    }
    let (_, dup) = s.admin_post(&create, json!({"localId": "u1"})).await;
    assert_eq!(message(&dup), "DUPLICATE_LOCAL_ID");
    let (_, bad) = s
        .post(&format!("{IT}/accounts:signUp"), json!({"localId": "zz"}))
        .await;
    assert_eq!(message(&bad), "UNEXPECTED_PARAMETER : User ID");

    let list = format!("{}{IT}/projects/{PROJECT}/accounts:batchGet", s.base);
    let (_, p1) = s
        .raw(
            s.http
                .get(&list)
                .bearer_auth("owner")
                .query(&[("maxResults", "2")]),
        )
        .await;
    assert_eq!(p1["users"].as_array().unwrap().len(), 2);
    assert_eq!(p1["nextPageToken"], "u1");
    let (_, p3) = s
        .raw(
            s.http
                .get(&list)
                .bearer_auth("owner")
                .query(&[("maxResults", "2"), ("nextPageToken", "u3")]),
        )
        .await;
    assert_eq!(p3["users"].as_array().unwrap().len(), 1);
    assert!(p3.get("nextPageToken").is_none());

    let del = format!("{IT}/projects/{PROJECT}/accounts:batchDelete");
    let (_, r) = s
        .admin_post(&del, json!({"localIds": ["u0", "ghost"]}))
        .await;
    assert_eq!(r["errors"][0]["localId"], "u0");
    assert_eq!(r["errors"][0]["index"], 0);
    assert_eq!(
        r["errors"][0]["message"],
        "NOT_DISABLED : Disable the account before batch deletion."
    );
    let (_, r) = s
        .admin_post(&del, json!({"localIds": ["u0", "ghost"], "force": true}))
        .await;
    assert!(r.get("errors").is_none());
    let (_, r) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:query"),
            json!({}),
        )
        .await;
    assert_eq!(r["recordsCount"], "4");

    // Emulator maintenance routes.
    let (st, _) = s
        .raw(s.http.delete(format!(
            "{}/emulator/v1/projects/{PROJECT}/accounts",
            s.base
        )))
        .await;
    assert_eq!(st, 200);
    let (_, r) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:query"),
            json!({}),
        )
        .await;
    assert_eq!(r["recordsCount"], "0");
    let (_, root) = s.raw(s.http.get(format!("{}/", s.base))).await;
    assert_eq!(root["authEmulator"]["ready"], true);
}

#[tokio::test]
async fn legacy_routes_and_cors() {
    let s = boot(Mode::Emulator).await;
    let (st, b) = s
        .post(
            "/www.googleapis.com/identitytoolkit/v3/relyingparty/signupNewUser",
            json!({"email": "old@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .post(
            "/www.googleapis.com/identitytoolkit/v3/relyingparty/verifyPassword",
            json!({"email": "old@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");

    let res = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}{IT}/accounts:signUp", s.base),
        )
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-client-version",
        )
        .header("access-control-request-private-network", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "http://app.example");
    assert_eq!(
        h["access-control-allow-headers"],
        "content-type,x-client-version"
    );
    assert_eq!(
        h["access-control-allow-methods"],
        "GET,HEAD,PUT,PATCH,POST,DELETE"
    );
    assert_eq!(h["access-control-allow-private-network"], "true");
}

#[tokio::test]
async fn custom_tokens_in_production_need_a_known_service_account() {
    let s = boot(Mode::Production).await;
    let store: &dyn firekeeper_core::Store = &*s.store;
    let now = s.clock.now_ms();
    let sa = firekeeper_core::credentials::create_service_account(store, PROJECT, now)
        .await
        .unwrap();
    let other = firekeeper_core::credentials::create_service_account(store, "other-project", now)
        .await
        .unwrap();
    let key =
        firekeeper_tokens::SigningKey::from_pkcs8_pem("k", sa["private_key"].as_str().unwrap())
            .unwrap();
    let other_key =
        firekeeper_tokens::SigningKey::from_pkcs8_pem("k", other["private_key"].as_str().unwrap())
            .unwrap();
    let aud =
        "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit";
    let iat = s.clock.now_secs();
    let make = |key: &firekeeper_tokens::SigningKey, iss: &Value, payload: Value| {
        let mut p = payload.as_object().unwrap().clone();
        p.insert("iss".into(), iss.clone());
        p.insert("sub".into(), iss.clone());
        firekeeper_tokens::jws::sign_with_header(key, &json!({"alg": "RS256", "typ": "JWT"}), &p)
            .unwrap()
    };
    let path = format!("{IT}/accounts:signInWithCustomToken");
    let good = make(
        &key,
        &sa["client_email"],
        json!({"aud": aud, "iat": iat, "exp": iat + 3600, "uid": "cu1", "claims": {"tier": "gold"}}),
    );
    let (st, r) = s.post(&path, json!({"token": good})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["isNewUser"], true);
    let c = claims(r["idToken"].as_str().unwrap());
    assert_eq!(c["tier"], "gold");
    assert_eq!(c["firebase"]["sign_in_provider"], "custom");

    let cases = [
        (
            make(
                &key,
                &sa["client_email"],
                json!({"aud": aud, "iat": iat - 7200, "exp": iat - 3600, "uid": "x"}),
            ),
            "INVALID_CUSTOM_TOKEN",
        ),
        (
            make(
                &key,
                &sa["client_email"],
                json!({"aud": aud, "iat": iat, "exp": iat + 7200, "uid": "x"}),
            ),
            "INVALID_CUSTOM_TOKEN",
        ),
        (
            make(
                &key,
                &sa["client_email"],
                json!({"aud": "x", "iat": iat, "exp": iat + 60, "uid": "x"}),
            ),
            "INVALID_CUSTOM_TOKEN",
        ),
        (
            make(
                &other_key,
                &sa["client_email"],
                json!({"aud": aud, "iat": iat, "exp": iat + 60, "uid": "x"}),
            ),
            "INVALID_CUSTOM_TOKEN",
        ),
        (
            make(
                &other_key,
                &other["client_email"],
                json!({"aud": aud, "iat": iat, "exp": iat + 60, "uid": "x"}),
            ),
            "CREDENTIAL_MISMATCH",
        ),
        (
            make(
                &key,
                &sa["client_email"],
                json!({"aud": aud, "iat": iat, "exp": iat + 60}),
            ),
            "MISSING_IDENTIFIER",
        ),
        (
            make(
                &key,
                &sa["client_email"],
                json!({"aud": aud, "iat": iat, "exp": iat + 60, "uid": "x", "claims": {"firebase": 1}}),
            ),
            "FORBIDDEN_CLAIM",
        ),
        ("not a token".to_owned(), "INVALID_CUSTOM_TOKEN"),
    ];
    for (token, want) in cases {
        let (st, r) = s.post(&path, json!({"token": token})).await;
        assert_eq!(st, 400);
        assert!(message(&r).starts_with(want), "{want}: {r}");
    }
    let (_, r) = s.post(&path, json!({})).await;
    assert_eq!(message(&r), "MISSING_CUSTOM_TOKEN");
}

/// Each of these was a bug once.
#[tokio::test]
async fn hardening_regressions() {
    let s = boot(Mode::Production).await;
    let signup = format!("{IT}/accounts:signUp");

    // Linking a new email and password over existing ones is a credential change: other
    // sessions end.
    let a = s.sign_up("link@x.io").await;
    let other_device = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "link@x.io", "password": "secret-pw"}),
        )
        .await
        .1;
    s.clock.advance_secs(5);
    let (st, linked) = s
        .post(
            &signup,
            json!({"idToken": a["idToken"], "email": "link2@x.io", "password": "other-pw"}),
        )
        .await;
    assert_eq!(st, 200, "{linked}");
    let (_, r) = s
        .refresh(other_device["refreshToken"].as_str().unwrap())
        .await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    let (st, _) = s.refresh(linked["refreshToken"].as_str().unwrap()).await;
    assert_eq!(st, 200);

    // End users cannot attach a federated identity in production.
    let (_, r) = s
        .post(
            &format!("{IT}/accounts:update"),
            json!({"idToken": linked["idToken"], "linkProviderUserInfo": {"providerId": "google.com", "rawId": "victim"}}),
        )
        .await;
    assert_eq!(message(&r), "INSUFFICIENT_PERMISSION");

    // EMAIL_EXISTS is reported before WEAK_PASSWORD.
    let (_, r) = s
        .post(&signup, json!({"email": "link2@x.io", "password": "1"}))
        .await;
    assert_eq!(message(&r), "EMAIL_EXISTS");

    // No credential: 403 even when the body is garbage.
    let (st, r) = s
        .raw(
            s.http
                .post(format!("{}{IT}/accounts:signUp", s.base))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(st, 403, "{r}");

    // An empty tenantId is no tenant.
    let (st, r) = s
        .raw(
            s.http
                .post(format!("{}/securetoken.googleapis.com/v1/token", s.base))
                .query(&[("key", &s.key)])
                .json(&json!({"grant_type": "refresh_token", "refresh_token": linked["refreshToken"], "tenantId": ""})),
        )
        .await;
    assert_eq!(st, 200, "{r}");

    // The emulator's "all users" page size is the emulator's only.
    let list = format!("{}{IT}/projects/{PROJECT}/accounts:batchGet", s.base);
    let (st, _) = s
        .raw(
            s.http
                .get(&list)
                .bearer_auth(&s.admin)
                .query(&[("maxResults", "-1")]),
        )
        .await;
    assert_eq!(st, 400);

    // Lookups are bounded.
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let (st, _) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:lookup"),
            json!({"localId": many}),
        )
        .await;
    assert_eq!(st, 400);

    // Empty tenant segments and wrong methods get the envelope, not a bare 404/405.
    let (st, b) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/tenants//accounts:lookup"),
            json!({}),
        )
        .await;
    assert_eq!(st, 404);
    assert_envelope(st, &b);
    let (st, b) = s
        .raw(
            s.http
                .get(format!("{}/securetoken.googleapis.com/v1/token", s.base)),
        )
        .await;
    assert_eq!(st, 404);
    assert_envelope(st, &b);

    // Query pages in the store.
    for i in 0..3 {
        s.admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts"),
            json!({"localId": format!("q{i}")}),
        )
        .await;
    }
    let (_, r) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:query"),
            json!({"limit": 2, "offset": 1, "order": "DESC"}),
        )
        .await;
    let (_, all) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:query"),
            json!({}),
        )
        .await;
    let mut ids: Vec<&str> = all["userInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["localId"].as_str().unwrap())
        .collect();
    ids.reverse();
    let page: Vec<&str> = r["userInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["localId"].as_str().unwrap())
        .collect();
    assert_eq!(page, ids[1..3]);
    assert_eq!(r["recordsCount"], all["recordsCount"]);
}

#[tokio::test]
async fn emulator_hardening_regressions() {
    let s = boot(Mode::Emulator).await;
    // A custom-token user keeps the token's claims across a credential change.
    let token = r#"{"uid": "cu", "claims": {"tier": "gold"}}"#;
    let (st, c) = s
        .post(
            &format!("{IT}/accounts:signInWithCustomToken"),
            json!({"token": token}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    s.clock.advance_secs(2);
    let (st, r) = s
        .post(
            &format!("{IT}/accounts:update"),
            json!({"idToken": c["idToken"], "email": "cu@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(claims(r["idToken"].as_str().unwrap())["tier"], "gold");

    // After the emulator's delete-all, a refresh says USER_NOT_FOUND.
    let u = s.sign_up("gone@x.io").await;
    let (st, _) = s
        .raw(s.http.delete(format!(
            "{}/emulator/v1/projects/{PROJECT}/accounts",
            s.base
        )))
        .await;
    assert_eq!(st, 200);
    let (_, r) = s.refresh(u["refreshToken"].as_str().unwrap()).await;
    assert_eq!(message(&r), "USER_NOT_FOUND");
}

const FK: &str = "/firekeeper/v1";

impl Server {
    async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.raw(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.admin),
        )
        .await
    }

    async fn sign_in(&self, email: &str) -> Value {
        let (st, b) = self
            .post(
                &format!("{IT}/accounts:signInWithPassword"),
                json!({"email": email, "password": "secret-pw"}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        b
    }
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_by_one() {
    let s = boot(Mode::Production).await;
    let phone = s.sign_up("devices@x.io").await;
    let uid = phone["localId"].as_str().unwrap().to_owned();
    let laptop = s.sign_in("devices@x.io").await;
    let tablet = s.sign_in("devices@x.io").await;
    let sid = |t: &Value| {
        claims(t["idToken"].as_str().unwrap())["sid"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let (st, list) = s
        .admin_get(&format!("{FK}/projects/{PROJECT}/accounts/{uid}/sessions"))
        .await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["sessions"].as_array().unwrap().len(), 3);
    assert_eq!(list["sessions"][0]["signInProvider"], "password");
    assert_eq!(list["sessions"][0]["ipAddress"], "127.0.0.1");

    // Admin ends the laptop's session: its refresh token and ID token stop working; the
    // other devices keep going.
    let (st, r) = s
        .admin_post(
            &format!("{FK}/projects/{PROJECT}/sessions/{}:revoke", sid(&laptop)),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["revoked"], 1);
    let (_, r) = s.refresh(laptop["refreshToken"].as_str().unwrap()).await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    let (_, r) = s
        .post(
            &format!("{IT}/accounts:lookup"),
            json!({"idToken": laptop["idToken"]}),
        )
        .await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    // Refreshes are audited at most once a minute per session.
    s.clock.advance_secs(61);
    let (st, _) = s.refresh(phone["refreshToken"].as_str().unwrap()).await;
    assert_eq!(st, 200);

    // The user signs out everywhere else, from the tablet.
    let (st, mine) = s
        .post(
            &format!("{FK}/sessions:list"),
            json!({"idToken": tablet["idToken"]}),
        )
        .await;
    assert_eq!(st, 200, "{mine}");
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 2);
    let current: Vec<&Value> = mine["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["sessionId"], sid(&tablet));
    let (st, r) = s
        .post(
            &format!("{FK}/sessions:revokeOthers"),
            json!({"idToken": tablet["idToken"]}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["revoked"], 1);
    let (_, r) = s.refresh(phone["refreshToken"].as_str().unwrap()).await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    let (st, _) = s.refresh(tablet["refreshToken"].as_str().unwrap()).await;
    assert_eq!(st, 200);

    // Another user's session cannot be revoked through one's own token.
    let other = s.sign_up("other@x.io").await;
    let (_, r) = s
        .post(
            &format!("{FK}/sessions:revoke"),
            json!({"idToken": other["idToken"], "sessionId": sid(&tablet)}),
        )
        .await;
    assert_eq!(message(&r), "SESSION_NOT_FOUND");

    // The audit log tells the story.
    let (_, log) = s
        .admin_get(&format!("{FK}/projects/{PROJECT}/accounts/{uid}/events"))
        .await;
    let kinds: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in ["sign_up", "sign_in", "refresh", "session_ended"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    // Admin routes need the admin credential.
    let (st, _) = s
        .raw(
            s.http
                .get(format!(
                    "{}{FK}/projects/{PROJECT}/accounts/{uid}/sessions",
                    s.base
                ))
                .query(&[("key", &s.key)]),
        )
        .await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn the_session_cap_evicts_the_oldest() {
    let s = boot(Mode::Emulator).await;
    let (st, cfg) = s
        .raw(
            s.http
                .patch(format!("{}{FK}/projects/{PROJECT}/config", s.base))
                .bearer_auth("owner")
                .json(&json!({"sessionPolicy": {"maxPerUser": 2}})),
        )
        .await;
    assert_eq!(st, 200, "{cfg}");
    assert_eq!(cfg["sessionPolicy"]["maxPerUser"], 2);
    let first = s.sign_up("cap@x.io").await;
    s.clock.advance_secs(1);
    let second = s.sign_in("cap@x.io").await;
    s.clock.advance_secs(1);
    let third = s.sign_in("cap@x.io").await;
    let (_, r) = s.refresh(first["refreshToken"].as_str().unwrap()).await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    for t in [&second, &third] {
        let (st, _) = s.refresh(t["refreshToken"].as_str().unwrap()).await;
        assert_eq!(st, 200);
    }
    let (_, bad) = s
        .raw(
            s.http
                .patch(format!("{}{FK}/projects/{PROJECT}/config", s.base))
                .bearer_auth("owner")
                .json(&json!({"sessionPolicy": {"maxPerUsr": 2}})),
        )
        .await;
    assert!(message(&bad).contains("maxPerUsr"), "{bad}");
}

#[tokio::test]
async fn rotation_tolerates_parallel_tabs_and_detects_replay() {
    let s = boot(Mode::Production).await;
    let cfg = format!("{FK}/projects/{PROJECT}/config");
    let (st, _) = s
        .raw(
            s.http
                .patch(format!("{}{cfg}", s.base))
                .bearer_auth(&s.admin)
                .json(&json!({"sessionPolicy": {"rotateRefreshTokens": true, "rotationGraceSecs": 30}})),
        )
        .await;
    assert_eq!(st, 200);
    let a = s.sign_up("rotate@x.io").await;
    let t0 = a["refreshToken"].as_str().unwrap().to_owned();

    // Two tabs refresh with the same token at once: both succeed, and both end up holding
    // the same current token.
    let (r1, r2) = tokio::join!(s.refresh(&t0), s.refresh(&t0));
    assert_eq!(r1.0, 200, "{}", r1.1);
    assert_eq!(r2.0, 200, "{}", r2.1);
    let t1 = r1.1["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(t1, t0);
    assert_eq!(r2.1["refresh_token"], t1.as_str());

    // The current token rotates on; within the window the old one still answers.
    let (st, r) = s.refresh(&t1).await;
    assert_eq!(st, 200);
    let t2 = r["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(t2, t1);
    let (st, r) = s.refresh(&t1).await;
    assert_eq!(st, 200, "within the grace window: {r}");
    assert_eq!(r["refresh_token"], t2.as_str());

    // After the window, presenting a rotated-out token ends the whole session.
    s.clock.advance_secs(31);
    let (_, r) = s.refresh(&t0).await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    let (_, r) = s.refresh(&t2).await;
    assert_eq!(
        message(&r),
        "TOKEN_EXPIRED",
        "the thief's and the owner's tokens both die"
    );

    let uid = a["localId"].as_str().unwrap();
    let (_, log) = s
        .admin_get(&format!("{FK}/projects/{PROJECT}/accounts/{uid}/events"))
        .await;
    let kinds: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"refresh_token_rotated"), "{kinds:?}");
    assert!(kinds.contains(&"refresh_token_reuse_detected"), "{kinds:?}");

    // Off (the default) is Firebase's behaviour: the same token comes back.
    let (st, _) = s
        .raw(
            s.http
                .patch(format!("{}{cfg}", s.base))
                .bearer_auth(&s.admin)
                .json(&json!({"sessionPolicy": {"rotateRefreshTokens": false}})),
        )
        .await;
    assert_eq!(st, 200);
    let b = s.sign_up("steady@x.io").await;
    let (_, r) = s.refresh(b["refreshToken"].as_str().unwrap()).await;
    assert_eq!(r["refresh_token"], b["refreshToken"]);
}

#[tokio::test]
async fn the_revocation_feed_resumes_and_long_polls() {
    let s = boot(Mode::Production).await;
    let a = s.sign_up("feed@x.io").await;
    let uid = a["localId"].as_str().unwrap().to_owned();
    let feed = format!("{FK}/projects/{PROJECT}/revocations");
    let (st, first) = s.admin_get(&feed).await;
    assert_eq!(st, 200, "{first}");
    assert!(
        first["events"].as_array().unwrap().is_empty(),
        "sign-ups are not revocations"
    );
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    assert_ne!(cursor, "0", "an idle reader moves to the head of the log");

    // A waiting reader is answered as soon as a revocation commits.
    let waiting = {
        let http = s.http.clone();
        let url = format!("{}{feed}?after={cursor}&waitSecs=20", s.base);
        let admin = s.admin.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let body: Value = http
                .get(url)
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body, started.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let now = s.clock.now_secs();
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": uid, "validSince": now}),
    )
    .await;
    let (body, took) = waiting.await.unwrap();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["kind"], "tokens_revoked");
    assert_eq!(events[0]["localId"], uid.as_str());
    assert_eq!(events[0]["detail"]["validSince"], now);

    // Resuming from the returned cursor skips what was seen.
    let next = body["nextCursor"].as_str().unwrap();
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": uid, "disableUser": true}),
    )
    .await;
    let (_, more) = s.admin_get(&format!("{feed}?after={next}")).await;
    let kinds: Vec<&str> = more["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["disabled"]);

    let (st, doc) = s
        .raw(s.http.get(format!("{}{FK}/openapi.json", s.base)))
        .await;
    assert_eq!(st, 200);
    assert!(doc["paths"][format!("{FK}/projects/{{project}}/revocations")].is_object());
}

impl Server {
    /// A call as if from `ip` (the test server trusts the loopback proxy's X-Forwarded-For).
    async fn post_from(&self, ip: &str, path: &str, body: Value) -> (u16, Value) {
        self.raw(
            self.http
                .post(format!("{}{path}", self.base))
                .query(&[("key", &self.key)])
                .header("x-forwarded-for", ip)
                .json(&body),
        )
        .await
    }

    async fn refresh_from(&self, ip: &str, token: &str) -> (u16, Value) {
        self.raw(
            self.http
                .post(format!("{}/securetoken.googleapis.com/v1/token", self.base))
                .query(&[("key", &self.key)])
                .header("x-forwarded-for", ip)
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]),
        )
        .await
    }

    async fn set_policy(&self, policy: Value) {
        let (st, r) = self
            .raw(
                self.http
                    .patch(format!("{}{FK}/projects/{PROJECT}/config", self.base))
                    .bearer_auth(&self.admin)
                    .json(&json!({ "sessionPolicy": policy })),
            )
            .await;
        assert_eq!(st, 200, "{r}");
    }
}

#[tokio::test]
async fn ip_bound_sessions() {
    let s = boot(Mode::Production).await;
    let signup = format!("{IT}/accounts:signUp");
    let lookup = format!("{IT}/accounts:lookup");

    // Off (the default): any address, and no address claim.
    let (_, free) = s
        .post_from(
            "10.1.1.1",
            &signup,
            json!({"email": "free@x.io", "password": "secret-pw"}),
        )
        .await;
    assert!(claims(free["idToken"].as_str().unwrap())
        .get("signInIpAddress")
        .is_none());
    let (st, _) = s
        .refresh_from("10.9.9.9", free["refreshToken"].as_str().unwrap())
        .await;
    assert_eq!(st, 200);

    // Strict: only the sign-in address.
    s.set_policy(json!({"ipBinding": "sameAddress"})).await;
    let (_, a) = s
        .post_from(
            "10.1.1.1",
            &signup,
            json!({"email": "bound@x.io", "password": "secret-pw"}),
        )
        .await;
    let token = a["idToken"].as_str().unwrap();
    assert_eq!(claims(token)["signInIpAddress"], "10.1.1.1");
    let refresh = a["refreshToken"].as_str().unwrap();
    let (st, _) = s.refresh_from("10.1.1.1", refresh).await;
    assert_eq!(st, 200);
    let (_, r) = s.refresh_from("10.2.2.2", refresh).await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    let (_, r) = s
        .post_from("10.2.2.2", &lookup, json!({"idToken": token}))
        .await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    // Refused, not ended: the rightful device goes on.
    let (st, _) = s
        .post_from("10.1.1.1", &lookup, json!({"idToken": token}))
        .await;
    assert_eq!(st, 200);
    let uid = a["localId"].as_str().unwrap();
    let (_, log) = s
        .admin_get(&format!("{FK}/projects/{PROJECT}/accounts/{uid}/events"))
        .await;
    let kinds: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"ip_violation"), "{kinds:?}");

    // A violation can end the session.
    s.set_policy(json!({"revokeOnIpViolation": true})).await;
    let (_, r) = s.refresh_from("10.3.3.3", refresh).await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    let (_, r) = s.refresh_from("10.1.1.1", refresh).await;
    assert_eq!(message(&r), "TOKEN_EXPIRED", "the session ended");

    // Trusted ranges only.
    s.set_policy(json!({"ipBinding": "trustedRanges", "trustedRanges": ["10.0.0.0/8"], "revokeOnIpViolation": false})).await;
    let (_, b) = s
        .post_from(
            "10.4.4.4",
            &signup,
            json!({"email": "office@x.io", "password": "secret-pw"}),
        )
        .await;
    let (st, _) = s
        .refresh_from("10.200.0.1", b["refreshToken"].as_str().unwrap())
        .await;
    assert_eq!(st, 200, "anywhere inside the trusted range");
    let (_, r) = s
        .refresh_from("192.0.2.1", b["refreshToken"].as_str().unwrap())
        .await;
    assert_eq!(message(&r), "TOKEN_EXPIRED");
    // Outside the ranges there is no sign-in at all.
    let (_, r) = s
        .post_from(
            "192.0.2.1",
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "office@x.io", "password": "secret-pw"}),
        )
        .await;
    assert!(message(&r).starts_with("OPERATION_NOT_ALLOWED"), "{r}");
    // Admin callers act for users from anywhere.
    let (st, r) = s
        .raw(
            s.http
                .post(format!("{}{IT}/projects/{PROJECT}/accounts:lookup", s.base))
                .bearer_auth(&s.admin)
                .header("x-forwarded-for", "192.0.2.1")
                .json(&json!({"idToken": b["idToken"]})),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    // A ranges-only policy without ranges would lock everyone out: refused.
    let (st, _) = s
        .raw(
            s.http
                .patch(format!("{}{FK}/projects/{PROJECT}/config", s.base))
                .bearer_auth(&s.admin)
                .json(&json!({"sessionPolicy": {"trustedRanges": []}})),
        )
        .await;
    assert_eq!(st, 400);

    // Bad ranges are refused precisely.
    let (st, r) = s
        .raw(
            s.http
                .patch(format!("{}{FK}/projects/{PROJECT}/config", s.base))
                .bearer_auth(&s.admin)
                .json(&json!({"sessionPolicy": {"trustedRanges": ["not-a-cidr"]}})),
        )
        .await;
    assert_eq!(st, 400, "{r}");
}

/// Sessions overtaken by the account (tokens revoked after they signed in, or the account
/// disabled) list as ended and leave the cap's count; old history is pruned.
#[tokio::test]
async fn session_state_follows_the_account_and_history_is_pruned() {
    let s = boot(Mode::Production).await;
    let a = s.sign_up("overtaken@x.io").await;
    let uid = a["localId"].as_str().unwrap().to_owned();
    s.clock.advance_secs(5);
    let now = s.clock.now_secs();
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": uid, "validSince": now}),
    )
    .await;
    let (_, list) = s
        .admin_get(&format!("{FK}/projects/{PROJECT}/accounts/{uid}/sessions"))
        .await;
    assert_eq!(
        list["sessions"][0]["endedReason"], "tokens_revoked",
        "{list}"
    );
    // A new sign-in is the only live session the user sees.
    let b = s.sign_in("overtaken@x.io").await;
    let (_, mine) = s
        .post(
            &format!("{FK}/sessions:list"),
            json!({"idToken": b["idToken"]}),
        )
        .await;
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 1, "{mine}");
    let (_, r) = s
        .post(
            &format!("{FK}/sessions:revokeOthers"),
            json!({"idToken": b["idToken"]}),
        )
        .await;
    assert_eq!(r["revoked"], 0, "nothing else was live");

    // History past the retention goes; recent history stays.
    let (_, before) = s
        .admin_get(&format!("{FK}/projects/{PROJECT}/accounts/{uid}/events"))
        .await;
    assert!(!before["events"].as_array().unwrap().is_empty());
    assert_eq!(s.auth.prune_history(30).await.unwrap(), 0);
    s.clock.advance_secs(31 * 86_400);
    assert!(s.auth.prune_history(30).await.unwrap() > 0);
    let (_, after) = s
        .admin_get(&format!("{FK}/projects/{PROJECT}/accounts/{uid}/events"))
        .await;
    assert!(after["events"].as_array().unwrap().is_empty(), "{after}");
}

/// The verifying key of a session cookie, from the session-cookie JWKS only.
async fn cookie_key(s: &Server, kid: &str) -> Option<firekeeper_tokens::PublicKey> {
    let (st, jwks) = s
        .raw(
            // Public: no API key needed.
            s.http
                .get(format!("{}{IT}/sessionCookiePublicKeys", s.base)),
        )
        .await;
    assert_eq!(st, 200, "{jwks}");
    jwks["keys"].as_array().unwrap().iter().find_map(|k| {
        (k["kid"] == kid).then(|| {
            firekeeper_tokens::PublicKey::from_jwk(
                kid,
                k["n"].as_str().unwrap(),
                k["e"].as_str().unwrap(),
            )
            .unwrap()
        })
    })
}

#[tokio::test]
async fn session_cookies_follow_firebase() {
    let s = boot(Mode::Production).await;
    let cookie_url = format!("{IT}/projects/{PROJECT}:createSessionCookie");
    let user = s.sign_up("cookie@x.io").await;
    let uid = user["localId"].as_str().unwrap().to_owned();
    let id_token = user["idToken"].as_str().unwrap().to_owned();
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": uid, "customAttributes": "{\"admin\":true}"}),
    )
    .await;
    // A token minted after the claim was set carries it.
    let (_, signed_in) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "cookie@x.io", "password": "secret-pw", "returnSecureToken": true}),
        )
        .await;
    let id_token_with_claim = signed_in["idToken"].as_str().unwrap().to_owned();
    s.clock.advance_secs(30);

    let (st, b) = s
        .admin_post(
            &cookie_url,
            json!({"idToken": id_token_with_claim, "validDuration": "3600"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let cookie = b["sessionCookie"].as_str().unwrap().to_owned();
    let (h, c, t) = (
        header(&cookie),
        claims(&cookie),
        claims(&id_token_with_claim),
    );
    assert_eq!(h["alg"], "RS256");
    let now = s.clock.now_ms() / 1000;
    assert_eq!(
        c["iss"],
        format!("https://session.firebase.google.com/{PROJECT}")
    );
    assert_eq!(c["iat"], now);
    assert_eq!(c["exp"], now + 3600);
    assert_eq!(c["admin"], true);
    // Every other claim is the ID token's, in its order.
    let strip = |v: &Value| {
        let mut m = v.as_object().unwrap().clone();
        for k in ["iss", "iat", "exp"] {
            m.shift_remove(k);
        }
        m
    };
    assert_eq!(strip(&c), strip(&t));
    assert_eq!(
        strip(&c).keys().collect::<Vec<_>>(),
        strip(&t).keys().collect::<Vec<_>>()
    );

    // Signed by a cookie key: published in the cookie sets, never among the ID-token keys.
    let kid = h["kid"].as_str().unwrap();
    let key = cookie_key(&s, kid).await.expect("kid in the cookie JWKS");
    firekeeper_tokens::jws::verify_rs256_in_place(&cookie, &key).unwrap();
    let res = s
        .http
        .get(format!(
            "{}/identitytoolkit/v3/relyingparty/publicKeys",
            s.base
        ))
        .send()
        .await
        .unwrap();
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let pems: Value = res.json().await.unwrap();
    assert!(pems[kid]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let (_, id_pems) = s
        .raw(s.http.get(format!(
            "{}/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com",
            s.base
        )))
        .await;
    assert!(id_pems.get(kid).is_none());
    assert!(cookie_key(&s, header(&id_token)["kid"].as_str().unwrap())
        .await
        .is_none());
    // ...so a cookie is no ID token.
    let (st, b) = s.admin_post(&cookie_url, json!({"idToken": cookie})).await;
    assert_eq!((st, message(&b)), (400, "INVALID_ID_TOKEN"));
    let (st, b) = s
        .post(&format!("{IT}/accounts:lookup"), json!({"idToken": cookie}))
        .await;
    assert_eq!((st, message(&b)), (400, "INVALID_ID_TOKEN"));

    // Durations: absent or 0 is two weeks; 300 and 1209600 are the bounds.
    for (given, want) in [
        (json!(null), 1_209_600),
        (json!(0), 1_209_600),
        (json!(300), 300),
    ] {
        let (st, b) = s
            .admin_post(
                &cookie_url,
                json!({"idToken": id_token, "validDuration": given}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(
            claims(b["sessionCookie"].as_str().unwrap())["exp"],
            now + want
        );
    }
    for bad in [json!(299), json!(1_209_601), json!(-5)] {
        let (st, b) = s
            .admin_post(
                &cookie_url,
                json!({"idToken": id_token, "validDuration": bad}),
            )
            .await;
        assert_eq!((st, message(&b)), (400, "INVALID_DURATION"), "{bad}");
    }
    let (st, b) = s
        .admin_post(
            &cookie_url,
            json!({"idToken": id_token, "validDuration": "soon"}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_envelope(st, &b);

    // Admin only, own project only, an ID token required and checked.
    let (st, b) = s.post(&cookie_url, json!({"idToken": id_token})).await;
    assert_eq!(st, 401, "{b}");
    assert_eq!(b["error"]["status"], "UNAUTHENTICATED");
    let (st, _) = s
        .admin_post(
            &format!("{IT}/projects/other-project:createSessionCookie"),
            json!({"idToken": id_token}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, b) = s
        .admin_post(&cookie_url, json!({"validDuration": 600}))
        .await;
    assert_eq!((st, message(&b)), (400, "MISSING_ID_TOKEN"));
    for garbage in [
        "x",
        "a.b.c",
        "e30.e30.",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ] {
        let (st, b) = s.admin_post(&cookie_url, json!({"idToken": garbage})).await;
        assert_eq!((st, message(&b)), (400, "INVALID_ID_TOKEN"), "{garbage}");
    }
    // Revoked, disabled, expired, deleted.
    s.clock.advance_secs(1);
    let (_, fresh) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "cookie@x.io", "password": "secret-pw", "returnSecureToken": true}),
        )
        .await;
    let fresh = fresh["idToken"].as_str().unwrap().to_owned();
    s.clock.advance_secs(1);
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": uid, "validSince": (s.clock.now_ms() / 1000).to_string()}),
    )
    .await;
    let (st, b) = s.admin_post(&cookie_url, json!({"idToken": fresh})).await;
    assert_eq!((st, message(&b)), (400, "TOKEN_EXPIRED"));
    s.clock.advance_secs(1);
    let (_, again) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "cookie@x.io", "password": "secret-pw", "returnSecureToken": true}),
        )
        .await;
    let again = again["idToken"].as_str().unwrap().to_owned();
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": uid, "disableUser": true}),
    )
    .await;
    let (st, b) = s.admin_post(&cookie_url, json!({"idToken": again})).await;
    assert_eq!((st, message(&b)), (400, "USER_DISABLED"));
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": uid, "disableUser": false}),
    )
    .await;
    let (st, _) = s.admin_post(&cookie_url, json!({"idToken": again})).await;
    assert_eq!(st, 200);
    s.clock.advance_secs(3601);
    let (st, b) = s.admin_post(&cookie_url, json!({"idToken": again})).await;
    assert_eq!((st, message(&b)), (400, "INVALID_ID_TOKEN"), "expired");
    let other = s.sign_up("gone@x.io").await;
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:delete"),
        json!({"localId": other["localId"]}),
    )
    .await;
    let (st, b) = s
        .admin_post(&cookie_url, json!({"idToken": other["idToken"]}))
        .await;
    assert_eq!((st, message(&b)), (400, "USER_NOT_FOUND"));

    // The audit log records each cookie with its session.
    let events = firekeeper_core::Store::account_events(
        &*s.store,
        &firekeeper_core::model::Scope {
            project: PROJECT.into(),
            tenant: None,
        },
        &uid,
        0,
        100,
    )
    .await
    .unwrap();
    let made = events
        .iter()
        .filter(|e| e.kind == "session_cookie_created")
        .count();
    assert_eq!(made, 5);

    // Cookie keys rotate on their own; a retired key stays published.
    let old_kid = kid.to_owned();
    let old = s.auth.cookie_keys().current().active.kid().to_owned();
    assert_eq!(old, old_kid);
    s.clock.advance_secs(24 * 3600 + 1);
    s.auth.tick_keys().await.unwrap();
    let newer = s.auth.cookie_keys().current().active.kid().to_owned();
    assert_ne!(newer, old_kid);
    assert!(cookie_key(&s, &old_kid).await.is_some());
}

#[tokio::test]
async fn emulator_session_cookies_are_unsigned() {
    let s = boot(Mode::Emulator).await;
    let user = s.sign_up("emu-cookie@x.io").await;
    let (st, b) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}:createSessionCookie"),
            json!({"idToken": user["idToken"], "validDuration": 600}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let cookie = b["sessionCookie"].as_str().unwrap();
    assert!(cookie.ends_with('.'), "empty signature");
    assert_eq!(header(cookie)["alg"], "none");
    let c = claims(cookie);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    assert_eq!(c["sub"], user["localId"]);
    // The tenant form answers too.
    let (st, b) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/tenants/t1:createSessionCookie"),
            json!({"idToken": user["idToken"]}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "TENANT_ID_MISMATCH"), "{b}");
}

/// A loopback function server: records every call's JWT claims by path and answers as the
/// path says.
async fn hook_server() -> (String, Arc<std::sync::Mutex<Vec<(String, Value)>>>) {
    use axum::extract::{Path, State};
    type Calls = Arc<std::sync::Mutex<Vec<(String, Value)>>>;
    let calls: Calls = Arc::default();
    async fn answer(
        State(calls): State<Calls>,
        Path(name): Path<String>,
        body: axum::Json<Value>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let jwt = body["data"]["jwt"].as_str().unwrap_or_default().to_owned();
        let mut seen = claims(&jwt);
        seen["_header"] = header(&jwt);
        calls.lock().unwrap().push((name.clone(), seen));
        let json = |status: u16, v: Value| {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                v.to_string(),
            )
                .into_response()
        };
        match name.as_str() {
            "create" => json(
                200,
                json!({"userRecord": {"updateMask": "displayName,customClaims",
                    "displayName": "Set by hook", "customClaims": {"role": "stored", "tier": 1}}}),
            ),
            "signin" => json(
                200,
                json!({"userRecord": {"updateMask": "sessionClaims,photoURL",
                    "photoURL": "https://img.example/p.png",
                    "sessionClaims": {"role": "session", "signedInVia": "hook"}}}),
            ),
            "deny" => json(
                403,
                json!({"error": {"message": "Unauthorized email", "status": "PERMISSION_DENIED"}}),
            ),
            "disable" => json(
                200,
                json!({"userRecord": {"updateMask": "disabled", "disabled": true}}),
            ),
            "slow" => {
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                json(200, json!({}))
            }
            "nonjson" => (axum::http::StatusCode::OK, "<html>").into_response(),
            "pause" => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                json(200, json!({}))
            }
            _ => json(200, json!({})),
        }
    }
    let app = axum::Router::new()
        .route("/{name}", axum::routing::post(answer))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, calls)
}

impl Server {
    async fn set_hooks(&self, triggers: Value) -> (u16, Value) {
        self.raw(
            self.http
                .patch(format!(
                    "{}/identitytoolkit.googleapis.com/v2/projects/{PROJECT}/config",
                    self.base
                ))
                .query(&[("updateMask", "blockingFunctions.triggers")])
                .bearer_auth(&self.admin)
                .json(&json!({"blockingFunctions": {"triggers": triggers}})),
        )
        .await
    }

    async fn user_by_email(&self, email: &str) -> Option<Value> {
        let (_, b) = self
            .admin_post(
                &format!("{IT}/projects/{PROJECT}/accounts:lookup"),
                json!({"email": [email]}),
            )
            .await;
        b["users"].get(0).cloned()
    }
}

#[tokio::test]
async fn blocking_functions_are_called_and_obeyed() {
    let s = boot_custom(Mode::Production, 1 << 20, |c| {
        c.blocking_deadline = std::time::Duration::from_secs(1)
    })
    .await;
    let (hooks, calls) = hook_server().await;
    let take = || std::mem::take(&mut *calls.lock().unwrap());

    // Registration: the emulator's validation, admin only, GET shows it.
    let (st, b) = s
        .set_hooks(json!({"beforeDelete": {"functionUri": format!("{hooks}/x")}}))
        .await;
    assert_eq!(
        (st, message(&b)),
        (
            400,
            "INVALID_BLOCKING_FUNCTION : ((Event type is invalid.))"
        )
    );
    let (st, b) = s
        .set_hooks(json!({"beforeCreate": {"functionUri": "/x"}}))
        .await;
    assert_eq!(
        (st, message(&b)),
        (
            400,
            "INVALID_BLOCKING_FUNCTION : ((Expected an absolute URI with valid scheme and host.))"
        )
    );
    let (st, _) = s
        .raw(
            s.http
                .get(format!(
                    "{}/identitytoolkit.googleapis.com/v2/projects/{PROJECT}/config",
                    s.base
                ))
                .query(&[("key", &s.key)]),
        )
        .await;
    assert_eq!(st, 401, "admin only");
    let (st, b) = s
        .set_hooks(json!({
            "beforeCreate": {"functionUri": format!("{hooks}/create")},
            "beforeSignIn": {"functionUri": format!("{hooks}/signin"), "audience": "https://us-central1-demo-test.cloudfunctions.net/beforeSignIn"},
        }))
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(b["blockingFunctions"]["triggers"]["beforeCreate"]["updateTime"].is_string());
    let (_, got) = s
        .raw(
            s.http
                .get(format!(
                    "{}/identitytoolkit.googleapis.com/admin/v2/projects/{PROJECT}/config",
                    s.base
                ))
                .bearer_auth(&s.admin),
        )
        .await;
    assert_eq!(got["blockingFunctions"], b["blockingFunctions"]);

    // Sign-up: beforeCreate, then beforeSignIn; their changes and session claims land.
    let res = s
        .http
        .post(format!("{}{IT}/accounts:signUp", s.base))
        .query(&[("key", &s.key)])
        .header("x-firebase-locale", "fr")
        .header("user-agent", "hook-test/1")
        .json(&json!({"email": "hooked@x.io", "password": "secret-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let up: Value = res.json().await.unwrap();
    let seen = take();
    assert_eq!(
        seen.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["create", "signin"]
    );
    let (_, create) = &seen[0];
    assert_eq!(create["event_type"], "beforeCreate");
    assert_eq!(create["sign_in_method"], "password");
    assert_eq!(create["aud"], format!("{hooks}/create"));
    assert_eq!(
        create["iss"],
        format!("https://securetoken.google.com/{PROJECT}")
    );
    assert_eq!(create["locale"], "fr");
    assert_eq!(create["user_agent"], "hook-test/1");
    assert_eq!(create["ip_address"], "127.0.0.1");
    assert_eq!(create["sub"], up["localId"]);
    assert_eq!(create["user_record"]["email"], "hooked@x.io");
    assert_eq!(create["user_record"]["custom_claims"], json!({}));
    let (_, signin) = &seen[1];
    assert_eq!(
        signin["aud"],
        "https://us-central1-demo-test.cloudfunctions.net/beforeSignIn"
    );
    assert_eq!(signin["user_record"]["display_name"], "Set by hook");
    assert_eq!(signin["user_record"]["custom_claims"]["role"], "stored");
    let t = claims(up["idToken"].as_str().unwrap());
    assert_eq!(t["name"], "Set by hook");
    assert_eq!(t["picture"], "https://img.example/p.png");
    assert_eq!(t["tier"], 1);
    assert_eq!(t["role"], "session", "a session claim wins in the token");
    assert_eq!(t["signedInVia"], "hook");
    let stored = s.user_by_email("hooked@x.io").await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(stored["customAttributes"].as_str().unwrap()).unwrap(),
        json!({"role": "stored", "tier": 1}),
        "session claims are never stored"
    );
    // The JWT is signed with the published ID-token keys.
    assert_eq!(create["_header"]["alg"], "RS256");
    let (_, id_pems) = s
        .raw(s.http.get(format!(
            "{}/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com",
            s.base
        )))
        .await;
    assert!(id_pems[create["_header"]["kid"].as_str().unwrap()].is_string());
    let (_, raw) = s
        .raw(
            s.http
                .post(format!("{}{IT}/accounts:signInWithPassword", s.base))
                .query(&[("key", &s.key)])
                .json(&json!({"email": "hooked@x.io", "password": "secret-pw"})),
        )
        .await;
    assert_eq!(take().len(), 1, "a sign-in calls beforeSignIn only");
    assert_eq!(
        claims(raw["idToken"].as_str().unwrap())["signedInVia"],
        "hook"
    );
    let (r, _) = s.refresh(raw["refreshToken"].as_str().unwrap()).await;
    assert_eq!(r, 200);

    // A refusal reaches the client with the function's status and message; nothing stored.
    s.set_hooks(json!({"beforeCreate": {"functionUri": format!("{hooks}/deny")}}))
        .await;
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signUp"),
            json!({"email": "denied@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "BLOCKING_FUNCTION_ERROR_RESPONSE : HTTP Cloud Function returned an error: \
         {\"error\":{\"message\":\"Unauthorized email\",\"status\":\"PERMISSION_DENIED\"}}"
    );
    assert!(s.user_by_email("denied@x.io").await.is_none());
    let denied_uid = take()[0].1["sub"].as_str().unwrap().to_owned();
    let events = firekeeper_core::Store::account_events(
        &*s.store,
        &firekeeper_core::model::Scope {
            project: PROJECT.into(),
            tenant: None,
        },
        &denied_uid,
        0,
        10,
    )
    .await
    .unwrap();
    assert_eq!(events[0].kind, "sign_up_blocked");

    // Past the deadline, unreachable, not JSON: 500 INTERNAL, no user.
    for (path, detail) in [
        (
            "slow",
            "((Deadline exceeded making request to the blocking function.))",
        ),
        ("nonjson", "((Response body is not valid JSON.))"),
    ] {
        s.set_hooks(json!({"beforeCreate": {"functionUri": format!("{hooks}/{path}")}}))
            .await;
        let started = std::time::Instant::now();
        let email = format!("{path}@x.io");
        let (st, b) = s
            .post(
                &format!("{IT}/accounts:signUp"),
                json!({"email": email, "password": "secret-pw"}),
            )
            .await;
        // Answered before the slow function (3 s) would have: the 1 s deadline held.
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        assert_eq!(
            (st, b["error"]["status"].as_str()),
            (500, Some("INTERNAL")),
            "{b}"
        );
        assert_eq!(
            message(&b),
            format!("BLOCKING_FUNCTION_ERROR_RESPONSE : {detail}")
        );
        assert!(s.user_by_email(&email).await.is_none());
    }
    s.set_hooks(json!({"beforeCreate": {"functionUri": "http://127.0.0.1:9/closed"}}))
        .await;
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signUp"),
            json!({"email": "closed@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(
        (st, message(&b)),
        (
            500,
            "BLOCKING_FUNCTION_ERROR_RESPONSE : ((Failed to make request to the blocking function.))"
        )
    );

    // A function that disables the user: stored, disabled, USER_DISABLED.
    s.set_hooks(json!({"beforeSignIn": {"functionUri": format!("{hooks}/disable")}}))
        .await;
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "hooked@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "USER_DISABLED"));
    let hooked = s.user_by_email("hooked@x.io").await.unwrap();
    assert_eq!(hooked["disabled"], true);
    // ...audited, so it reaches the revocation feed.
    let events = firekeeper_core::Store::account_events(
        &*s.store,
        &firekeeper_core::model::Scope {
            project: PROJECT.into(),
            tenant: None,
        },
        hooked["localId"].as_str().unwrap(),
        0,
        100,
    )
    .await
    .unwrap();
    assert!(events.iter().any(|e| e.kind == "disabled"));
    take();

    // An admin disabling the user while beforeSignIn runs wins over the sign-in.
    s.set_hooks(json!({"beforeSignIn": {"functionUri": format!("{hooks}/pause")}}))
        .await;
    let racer = s.sign_up("racer@x.io").await;
    let sign_in_url = format!("{IT}/accounts:signInWithPassword");
    let sign_in = s.post(
        &sign_in_url,
        json!({"email": "racer@x.io", "password": "secret-pw"}),
    );
    let disable = async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        s.admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:update"),
            json!({"localId": racer["localId"], "disableUser": true}),
        )
        .await
    };
    let ((st, b), _) = tokio::join!(sign_in, disable);
    assert_eq!((st, message(&b)), (400, "USER_DISABLED"), "{b}");
    take();

    // Deployment tools' forms: leaf mask paths, string flags, an empty trigger to remove.
    let v2 = format!(
        "{}/identitytoolkit.googleapis.com/v2/projects/{PROJECT}/config",
        s.base
    );
    let (st, b) = s
        .raw(
            s.http
                .patch(&v2)
                .query(&[(
                    "updateMask",
                    "blockingFunctions.triggers.beforeCreate.functionUri,\
                     blockingFunctions.forwardInboundCredentials.idToken",
                )])
                .bearer_auth(&s.admin)
                .json(&json!({"blockingFunctions": {
                    "triggers": {"beforeCreate": {"functionUri": format!("{hooks}/create")}},
                    "forwardInboundCredentials": {"idToken": "true"}
                }})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let triggers = &b["blockingFunctions"]["triggers"];
    assert_eq!(
        triggers["beforeCreate"]["functionUri"],
        format!("{hooks}/create")
    );
    assert_eq!(
        triggers["beforeSignIn"]["functionUri"],
        format!("{hooks}/pause")
    );
    assert_eq!(
        b["blockingFunctions"]["forwardInboundCredentials"]["idToken"],
        true
    );
    let (st, b) = s
        .raw(
            s.http
                .patch(&v2)
                .query(&[("updateMask", "blockingFunctions.triggers.beforeSignIn")])
                .bearer_auth(&s.admin)
                .json(&json!({"blockingFunctions": {"triggers": {"beforeSignIn": {}}}})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(b["blockingFunctions"]["triggers"]
        .get("beforeSignIn")
        .is_none());
    let (st, _) = s
        .raw(
            s.http
                .patch(&v2)
                .query(&[("updateMask", "quota.signUpQuotaConfig")])
                .bearer_auth(&s.admin)
                .json(&json!({})),
        )
        .await;
    assert_eq!(st, 400);

    // beforeSignIn refusing a sign-up: the user beforeCreate let through exists (as in
    // Firebase), without a session.
    s.set_hooks(json!({"beforeSignIn": {"functionUri": format!("{hooks}/deny")}}))
        .await;
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signUp"),
            json!({"email": "verify-first@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    let stored = s.user_by_email("verify-first@x.io").await.unwrap();
    assert_eq!(stored["disabled"], false);
    let (_, sessions) = s
        .raw(
            s.http
                .get(format!(
                    "{}/firekeeper/v1/projects/{PROJECT}/accounts/{}/sessions",
                    s.base,
                    stored["localId"].as_str().unwrap()
                ))
                .bearer_auth(&s.admin),
        )
        .await;
    assert_eq!(sessions["sessions"], json!([]));
    take();

    // Anonymous and custom-token sign-ins call nothing.
    s.set_hooks(json!({
        "beforeCreate": {"functionUri": format!("{hooks}/create")},
        "beforeSignIn": {"functionUri": format!("{hooks}/signin")},
    }))
    .await;
    let (st, _) = s
        .post(
            &format!("{IT}/accounts:signUp"),
            json!({"returnSecureToken": true}),
        )
        .await;
    assert_eq!(st, 200);
    assert!(take().is_empty(), "anonymous sign-up called a function");

    // Every call is counted by outcome.
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "firekeeper_blocking_calls_total{event=\"beforeCreate\",outcome=\"allowed\"} 1",
        "firekeeper_blocking_calls_total{event=\"beforeCreate\",outcome=\"refused\"} 1",
        "firekeeper_blocking_calls_total{event=\"beforeCreate\",outcome=\"deadline_exceeded\"} 1",
        "firekeeper_blocking_calls_total{event=\"beforeCreate\",outcome=\"bad_answer\"} 1",
        "firekeeper_blocking_calls_total{event=\"beforeCreate\",outcome=\"unreachable\"} 1",
        "firekeeper_blocking_calls_total{event=\"beforeSignIn\",outcome=\"allowed\"} 5",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

#[tokio::test]
async fn built_in_policies_need_no_handler() {
    let server = boot(Mode::Production).await;
    let s = &server;
    let config_url = format!("{}/firekeeper/v1/projects/{PROJECT}/config", s.base);
    let set = |fields: Value| {
        let req = s
            .http
            .patch(&config_url)
            .bearer_auth(&s.admin)
            .json(&json!({ "blockingPolicy": fields }));
        async move { s.raw(req).await }
    };
    let sign_up = |email: &str, from: Option<&str>| {
        let mut req = s
            .http
            .post(format!("{}{IT}/accounts:signUp", s.base))
            .query(&[("key", &s.key)])
            .json(&json!({"email": email, "password": "secret-pw"}));
        if let Some(ip) = from {
            req = req.header("x-forwarded-for", ip);
        }
        async move { s.raw(req).await }
    };
    let refused = |b: &Value, status: &str, text: &str| {
        let m = message(b).to_owned();
        assert!(
            m.starts_with(
                "BLOCKING_FUNCTION_ERROR_RESPONSE : HTTP Cloud Function returned an error: "
            ),
            "{m}"
        );
        assert!(m.contains(&format!("\"status\":\"{status}\"")), "{m}");
        assert!(m.contains(text), "{m}");
    };

    // Allowed email domains.
    let (st, b) = set(json!({"allowedEmailDomains": ["example.com"]})).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["blockingPolicy"]["allowedEmailDomains"],
        json!(["example.com"])
    );
    let (st, b) = sign_up("eve@evil.io", None).await;
    assert_eq!(st, 400);
    refused(
        &b,
        "INVALID_ARGUMENT",
        "Unauthorized email \\\"eve@evil.io\\\"",
    );
    assert!(s.user_by_email("eve@evil.io").await.is_none());
    let (st, _) = sign_up("ann@example.com", None).await;
    assert_eq!(st, 200);

    // A default display name.
    set(json!({"defaultDisplayName": "Guest"})).await;
    let (_, b) = sign_up("bob@example.com", None).await;
    assert_eq!(b["displayName"], "Guest");
    assert_eq!(claims(b["idToken"].as_str().unwrap())["name"], "Guest");

    // Verified email required at sign-in.
    set(json!({"requireVerifiedEmail": true})).await;
    let sign_in = |from: Option<&str>| {
        let mut req = s
            .http
            .post(format!("{}{IT}/accounts:signInWithPassword", s.base))
            .query(&[("key", &s.key)])
            .json(&json!({"email": "ann@example.com", "password": "secret-pw"}));
        if let Some(ip) = from {
            req = req.header("x-forwarded-for", ip);
        }
        async move { s.raw(req).await }
    };
    let (st, b) = sign_in(None).await;
    assert_eq!(st, 400);
    refused(&b, "INVALID_ARGUMENT", "Unverified email");
    let uid = s.user_by_email("ann@example.com").await.unwrap()["localId"].clone();
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": uid, "emailVerified": true}),
    )
    .await;
    let (st, _) = sign_in(None).await;
    assert_eq!(st, 200);

    // Denied address ranges, for sign-ins and sign-ups.
    set(json!({"deniedIpRanges": ["203.0.113.0/24"]})).await;
    let (st, b) = sign_in(Some("203.0.113.9")).await;
    assert_eq!(st, 400);
    refused(&b, "PERMISSION_DENIED", "IP banned");
    let (st, _) = sign_in(Some("198.51.100.1")).await;
    assert_eq!(st, 200);
    let (st, _) = sign_up("carl@example.com", Some("203.0.113.10")).await;
    assert_eq!(st, 400);

    // Unverified sign-ups blocked (a password sign-up's email is never verified yet).
    set(json!({"deniedIpRanges": [], "blockUnverifiedSignUp": true})).await;
    let (st, b) = sign_up("dan@example.com", None).await;
    assert_eq!(st, 400);
    refused(&b, "INVALID_ARGUMENT", "Unverified email");

    // Bad fields are refused, and nothing of a bad request is stored.
    let (st, _) = set(json!({"allowDomains": ["x"]})).await;
    assert_eq!(st, 400);
    let (st, _) = s
        .raw(
            s.http
                .patch(&config_url)
                .bearer_auth(&s.admin)
                .json(&json!({
                    "blockingPolicy": {"defaultDisplayName": "Changed"},
                    "sessionPolicy": {"rotationGraceSecs": -1},
                })),
        )
        .await;
    assert_eq!(st, 400);
    let (_, now) = s.raw(s.http.get(&config_url).bearer_auth(&s.admin)).await;
    assert_eq!(now["blockingPolicy"]["defaultDisplayName"], "Guest");

    // Refusals are audited.
    let events = firekeeper_core::Store::account_events(
        &*s.store,
        &firekeeper_core::model::Scope {
            project: PROJECT.into(),
            tenant: None,
        },
        uid.as_str().unwrap(),
        0,
        100,
    )
    .await
    .unwrap();
    assert!(events.iter().any(|e| e.kind == "sign_in_blocked"
        && e.detail["reason"].as_str().unwrap().contains("IP banned")));
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("firekeeper_blocking_policy_refusals_total{event=\"beforeCreate\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("firekeeper_blocking_policy_refusals_total{event=\"beforeSignIn\"} 2"),
        "{text}"
    );
}

/// A custom claim removed by an admin never comes back through a session that replaces
/// the token that still carried it.
#[tokio::test]
async fn removed_custom_claims_stay_removed() {
    let s = boot(Mode::Production).await;
    let user = s.sign_up("demoted@x.io").await;
    let update = format!("{IT}/projects/{PROJECT}/accounts:update");
    s.admin_post(
        &update,
        json!({"localId": user["localId"], "customAttributes": "{\"admin\":true}"}),
    )
    .await;
    let (_, signed_in) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "demoted@x.io", "password": "secret-pw"}),
        )
        .await;
    let token = signed_in["idToken"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["admin"], true);
    s.admin_post(
        &update,
        json!({"localId": user["localId"], "customAttributes": "{}"}),
    )
    .await;
    let (st, changed) = s
        .post(
            &format!("{IT}/accounts:update"),
            json!({"idToken": token, "password": "another-pw", "returnSecureToken": true}),
        )
        .await;
    assert_eq!(st, 200, "{changed}");
    let fresh = claims(changed["idToken"].as_str().unwrap());
    assert!(fresh.get("admin").is_none(), "{fresh}");
}

#[tokio::test]
async fn health_and_readiness() {
    let s = boot(Mode::Production).await;
    let (st, b) = s.raw(s.http.get(format!("{}/healthz", s.base))).await;
    assert_eq!((st, b["status"].as_str()), (200, Some("ok")));
    let (st, b) = s.raw(s.http.get(format!("{}/readyz", s.base))).await;
    assert_eq!((st, b["status"].as_str()), (200, Some("ready")));
}
