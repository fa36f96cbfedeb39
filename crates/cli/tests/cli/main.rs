//! The `firekeeper` binary as operators use it: durability across kill -9 and restarts,
//! configuration errors, secrets on stdout, file modes, clean shutdown.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

mod postgres;

const BIN: &str = env!("CARGO_BIN_EXE_firekeeper");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fk-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A cheap password hash keeps the burst fast; it is the storage being tested.
fn cmd(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(data)
        .env("FIREKEEPER_PASSWORD_HASH_MEMORY_KIB", "64")
        .env("FIREKEEPER_PASSWORD_HASH_ITERATIONS", "1")
        .env_remove("FIREKEEPER_CONFIG");
    c
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

struct Running {
    child: Child,
    base: String,
}

fn start(data: &Path, extra: &[&str]) -> Running {
    start_env(data, extra, &[])
}

fn start_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Running {
    start_logged(data, extra, env).0
}

/// Also returns the log lines seen up to the address line.
fn start_logged(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Running, Vec<String>) {
    let mut child = cmd(data)
        .envs(env.iter().copied())
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--rtdb-listen")
        .arg("127.0.0.1:0")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send((url, seen.clone()));
            }
        }
    });
    let (base, lines) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server did not report its address");
    (Running { child, base }, lines)
}

/// The database port's base URL, from a server's start-up log lines.
fn database_base(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| l.split("database REST on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the server logs its database port")
        .to_owned()
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn admin_lookup(base: &str, uids: &[String]) -> usize {
    let res: Value = reqwest::Client::new()
        .post(format!(
            "{base}/identitytoolkit.googleapis.com/v1/projects/demo-firekeeper/accounts:lookup"
        ))
        .bearer_auth("owner")
        .json(&json!({ "localId": uids }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["users"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sign_ups_survive_kill_9() {
    let data = temp_dir("kill9");
    let server = start(&data, &["--emulator"]);
    let base = server.base.clone();
    let (ack_tx, ack_rx) = mpsc::channel::<String>();
    let mut workers = Vec::new();
    for w in 0..8 {
        let base = base.clone();
        let ack_tx = ack_tx.clone();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0.. {
                let sent = http
                    .post(format!(
                        "{base}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=k"
                    ))
                    .json(&json!({"email": format!("w{w}-{i}@burst.io"), "password": "secret-pw"}))
                    .send()
                    .await;
                let Ok(res) = sent else { break };
                let Ok(body) = res.json::<Value>().await else {
                    break;
                };
                if let Some(uid) = body["localId"].as_str() {
                    if ack_tx.send(uid.to_owned()).is_err() {
                        break;
                    }
                }
            }
        }));
    }
    // Let a few hundred sign-ups be acknowledged, then kill mid-burst.
    let mut acked = Vec::new();
    while acked.len() < 300 {
        acked.push(ack_rx.recv_timeout(Duration::from_secs(30)).unwrap());
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for w in workers {
        let _ = w.await;
    }
    acked.extend(ack_rx.try_iter());
    drop(server);

    let again = start(&data, &["--emulator"]);
    let mut found = 0;
    for chunk in acked.chunks(100) {
        found += admin_lookup(&again.base, chunk).await;
    }
    assert_eq!(found, acked.len(), "every acknowledged sign-up is stored");
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_keys_survive_a_restart_and_sigterm_is_clean() {
    let data = temp_dir("restart").join("data");
    let key = String::from_utf8(run(cmd(&data).args(["api-keys", "create"])).stdout).unwrap();
    let key = key.trim().to_owned();
    assert!(key.starts_with("AIza") && key.len() == 39, "{key}");

    let (first, log) = start_logged(&data, &[], &[]);
    // Logs to a pipe are plain text: the address line is parseable, no colour codes.
    assert!(log.iter().all(|l| !l.contains('\u{1b}')), "{log:?}");
    let http = reqwest::Client::new();
    let signed: Value = http
        .post(format!(
            "{}/identitytoolkit.googleapis.com/v1/accounts:signUp?key={key}",
            first.base
        ))
        .json(&json!({"email": "keep@x.io", "password": "secret-pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = signed["refreshToken"].as_str().unwrap().to_owned();
    let mut first = first;
    // SIGTERM: the process exits by itself, successfully.
    let pid = first.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = first.child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let second = start(&data, &[]);
    let res: Value = http
        .post(format!(
            "{}/securetoken.googleapis.com/v1/token?key={key}",
            second.base
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(res["id_token"].is_string(), "{res}");

    // Private files.
    for f in ["firekeeper.db", "master.key"] {
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn configuration_errors_name_the_key() {
    let dir = temp_dir("config");
    let file = dir.join("firekeeper.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nlisten_port = 9\n").unwrap();
    let out = run(cmd(&dir.join("d")).arg("--config").arg(&file).arg("serve"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen_port"), "{err}");

    let out = run(cmd(&dir.join("d"))
        .env("FIREKEEPER_LISTN", "x")
        .arg("keys")
        .arg("list"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FIREKEEPER_LISTN"));

    // Flags beat the environment, which beats the file.
    std::fs::write(&file, "project = \"from-file\"\n").unwrap();
    let out = run(cmd(&dir.join("d"))
        .arg("--config")
        .arg(&file)
        .env("FIREKEEPER_PROJECT", "from-env")
        .args(["users", "create", "--email", "a@b.co"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = run(cmd(&dir.join("d"))
        .arg("--config")
        .arg(&file)
        .env("FIREKEEPER_PROJECT", "from-env")
        .args(["users", "list", "--json"]));
    let users: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    let other = run(cmd(&dir.join("d"))
        .arg("--config")
        .arg(&file)
        .env("FIREKEEPER_PROJECT", "from-env")
        .args(["--project", "from-flag", "users", "list", "--json"]));
    let users: Value = serde_json::from_slice(&other.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn operator_commands() {
    let data = temp_dir("ops");
    // Secrets alone on stdout.
    let token = run(cmd(&data).args(["admin-tokens", "create"]));
    let token = String::from_utf8(token.stdout).unwrap();
    assert_eq!(token.lines().count(), 1);
    assert!(token.starts_with("fkadm_"));
    let listed = run(cmd(&data).args(["admin-tokens", "list", "--json"]));
    let tokens: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = tokens[0]["id"].as_str().unwrap().to_owned();
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(token.trim()));
    assert!(run(cmd(&data).args(["admin-tokens", "revoke", &id]))
        .status
        .success());
    assert!(!run(cmd(&data).args(["admin-tokens", "revoke", &id]))
        .status
        .success());

    let sa = data.join("sa.json");
    assert!(run(cmd(&data)
        .args(["service-accounts", "create", "--out"])
        .arg(&sa))
    .status
    .success());
    assert_eq!(
        std::fs::metadata(&sa).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let file: Value = serde_json::from_slice(&std::fs::read(&sa).unwrap()).unwrap();
    for k in [
        "type",
        "project_id",
        "private_key_id",
        "private_key",
        "client_email",
        "token_uri",
    ] {
        assert!(file[k].is_string(), "{k}");
    }
    assert_eq!(file["type"], "service_account");

    // Users through the CLI, with the server's validation.
    let uid = run(cmd(&data).args([
        "users",
        "create",
        "--uid",
        "u-1",
        "--email",
        "Ops@X.io",
        "--password",
        "secret-pw",
    ]));
    assert_eq!(String::from_utf8(uid.stdout).unwrap().trim(), "u-1");
    let weak = run(cmd(&data).args(["users", "create", "--email", "w@x.io", "--password", "123"]));
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("WEAK_PASSWORD"));
    assert!(
        run(cmd(&data).args(["users", "set-claims", "u-1", "{\"admin\":true}"]))
            .status
            .success()
    );
    assert!(run(cmd(&data).args([
        "users",
        "update",
        "u-1",
        "--display-name",
        "Ops",
        "--disabled",
        "true"
    ]))
    .status
    .success());
    let got = run(cmd(&data).args(["users", "get", "--email", "ops@x.io", "--json"]));
    let user: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(user["customAttributes"], "{\"admin\":true}");
    assert_eq!(user["displayName"], "Ops");
    assert_eq!(user["disabled"], true);
    assert!(run(cmd(&data).args(["users", "delete", "u-1"]))
        .status
        .success());
    assert!(!run(cmd(&data).args(["users", "get", "u-1"]))
        .status
        .success());

    // Keys: rotate makes the queued key active.
    let before: Value =
        serde_json::from_slice(&run(cmd(&data).args(["keys", "list", "--json"])).stdout).unwrap();
    let queued = before
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "queued")
        .unwrap()["kid"]
        .clone();
    let rotated = run(cmd(&data).args(["keys", "rotate"]));
    assert_eq!(
        String::from_utf8(rotated.stdout).unwrap().trim(),
        queued.as_str().unwrap()
    );
    let after: Value =
        serde_json::from_slice(&run(cmd(&data).args(["keys", "list", "--json"])).stdout).unwrap();
    let active = after
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "active")
        .unwrap();
    assert_eq!(active["kid"], queued);
    assert_eq!(
        after.as_array().unwrap().len(),
        3,
        "retired, active, queued"
    );

    // --help explains itself.
    let help = String::from_utf8(run(Command::new(BIN).arg("--help")).stdout).unwrap();
    for word in [
        "serve",
        "users",
        "api-keys",
        "admin-tokens",
        "service-accounts",
        "keys",
        "FIREKEEPER_",
    ] {
        assert!(help.contains(word), "{word}");
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_audit_and_revocation_from_the_cli() {
    let data = temp_dir("sessions").join("data");
    let server = start(&data, &["--emulator"]);
    let http = reqwest::Client::new();
    let it = format!("{}/identitytoolkit.googleapis.com/v1", server.base);
    let mut users = Vec::new();
    for i in 0..3 {
        let v: Value = http
            .post(format!("{it}/accounts:signUp?key=k"))
            .json(&json!({"email": format!("s{i}@cli.io"), "password": "secret-pw"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        users.push(v);
    }
    let uid = users[0]["localId"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let http = http.clone();
        let url = format!("{}/securetoken.googleapis.com/v1/token?key=k", server.base);
        async move {
            let v: Value = http
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };

    let listed = run(cmd(&data).args(["sessions", "list", &uid, "--json"]));
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let sessions: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    let sid = sessions[0]["sessionId"].as_str().unwrap().to_owned();

    let audit = run(cmd(&data).args(["audit", &uid, "--json"]));
    let log: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(log["events"][0]["kind"], "sign_up");

    // Ending the session from the CLI stops its refresh token.
    assert!(run(cmd(&data).args(["sessions", "revoke", &sid]))
        .status
        .success());
    let r = refresh(users[0]["refreshToken"].as_str().unwrap().to_owned()).await;
    assert_eq!(r["error"]["message"], "TOKEN_EXPIRED");

    // revokeRefreshTokens for one user, then for all (validSince is in whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        run(cmd(&data).args(["users", "revoke", users[1]["localId"].as_str().unwrap()]))
            .status
            .success()
    );
    let r = refresh(users[1]["refreshToken"].as_str().unwrap().to_owned()).await;
    assert_eq!(r["error"]["message"], "TOKEN_EXPIRED");
    let r = refresh(users[2]["refreshToken"].as_str().unwrap().to_owned()).await;
    assert!(r["id_token"].is_string());
    let all = run(cmd(&data).args(["users", "revoke", "--all"]));
    assert!(all.status.success());
    assert!(String::from_utf8_lossy(&all.stderr).contains("revoked 3 of about 3 users"));
    let r = refresh(users[2]["refreshToken"].as_str().unwrap().to_owned()).await;
    assert_eq!(r["error"]["message"], "TOKEN_EXPIRED");
    drop(server);
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

/// The Rust SDK against a server in another process: RS256 verification, every error
/// kind, revocation propagation through the feed, and failing closed without the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_verifies_and_follows_revocations_from_another_process() {
    use firekeeper_sdk::{Config, Verifier, VerifyError};
    let data = temp_dir("sdk").join("data");
    let key = String::from_utf8(run(cmd(&data).args(["api-keys", "create"])).stdout).unwrap();
    let key = key.trim().to_owned();
    let admin = String::from_utf8(run(cmd(&data).args(["admin-tokens", "create"])).stdout).unwrap();
    let admin = admin.trim().to_owned();
    let mut server = start(&data, &[]);
    let http = reqwest::Client::new();
    let it = format!("{}/identitytoolkit.googleapis.com/v1", server.base);
    let sign_up = |email: &str| {
        let (http, url) = (http.clone(), format!("{it}/accounts:signUp?key={key}"));
        let body = json!({"email": email, "password": "secret-pw"});
        async move {
            let v: Value = http
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    let a = sign_up("sdk-a@x.io").await;
    let token = a["idToken"].as_str().unwrap().to_owned();
    let uid = a["localId"].as_str().unwrap().to_owned();

    let bound = Duration::from_secs(2);
    let verifier = Verifier::new(
        Config::new(server.base.clone(), "demo-firekeeper")
            .admin_token(admin.clone())
            .max_staleness(bound),
    )
    .unwrap();
    // Without the feed yet, a revocation check asks the server.
    let claims = verifier.verify_id_token(&token, true).await.unwrap();
    assert_eq!(claims.uid(), uid);
    assert!(claims.session_id().is_some());
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(matches!(
        verifier.verify_id_token(&tampered, false).await,
        Err(VerifyError::Invalid(_))
    ));

    let feed = verifier.follow_revocations();
    while verifier.feed_status().since_last_sync.is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // validSince has one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let admin_post = |path: String, body: Value| {
        let (http, admin) = (http.clone(), admin.clone());
        async move {
            let r = http
                .post(path)
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    };
    let revoked_at = std::time::Instant::now();
    admin_post(
        format!("{}/identitytoolkit.googleapis.com/v1/projects/demo-firekeeper/accounts:update", server.base),
        json!({"localId": uid, "validSince": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()}),
    )
    .await;
    loop {
        match verifier.verify_id_token(&token, true).await {
            Err(VerifyError::Revoked) => break,
            Ok(_) => {
                assert!(
                    revoked_at.elapsed() < bound,
                    "not seen within the documented bound"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    eprintln!(
        "revocation seen by the verifier after {:?}",
        revoked_at.elapsed()
    );

    // Disabled, ended session, deleted: each its own error.
    let b = sign_up("sdk-b@x.io").await;
    let b_uid = b["localId"].as_str().unwrap().to_owned();
    let b_token = b["idToken"].as_str().unwrap().to_owned();
    assert!(verifier.verify_id_token(&b_token, true).await.is_ok());
    let sid = verifier
        .verify_id_token(&b_token, false)
        .await
        .unwrap()
        .session_id()
        .unwrap()
        .to_owned();
    admin_post(
        format!(
            "{}/firekeeper/v1/projects/demo-firekeeper/sessions/{sid}:revoke",
            server.base
        ),
        json!({}),
    )
    .await;
    let wait_for = |want: VerifyError, t: String| {
        let v = verifier.clone();
        async move {
            let start = std::time::Instant::now();
            loop {
                match v.verify_id_token(&t, true).await {
                    Err(e) if e == want => return,
                    _ if start.elapsed() > Duration::from_secs(2) => panic!("wanted {want}"),
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }
    };
    wait_for(VerifyError::Revoked, b_token.clone()).await;
    let c = sign_up("sdk-c@x.io").await;
    let c_token = c["idToken"].as_str().unwrap().to_owned();
    admin_post(
        format!(
            "{}/identitytoolkit.googleapis.com/v1/projects/demo-firekeeper/accounts:update",
            server.base
        ),
        json!({"localId": c["localId"], "disableUser": true}),
    )
    .await;
    wait_for(VerifyError::Disabled, c_token.clone()).await;
    admin_post(
        format!(
            "{}/identitytoolkit.googleapis.com/v1/projects/demo-firekeeper/accounts:delete",
            server.base
        ),
        json!({"localId": b_uid}),
    )
    .await;
    wait_for(VerifyError::UserNotFound, b_token).await;

    // The server goes away: once the feed is staler than the bound, checks fail closed.
    let d = sign_up("sdk-d@x.io").await;
    let d_token = d["idToken"].as_str().unwrap().to_owned();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    tokio::time::sleep(bound + Duration::from_millis(500)).await;
    assert!(matches!(
        verifier.verify_id_token(&d_token, true).await,
        Err(VerifyError::Unavailable(_))
    ));
    // Signature checks still work from the cached keys.
    assert!(verifier.verify_id_token(&d_token, false).await.is_ok());
    feed.abort();
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

/// The SDK's axum extractor enforces an IP-bound session's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_extractor_enforces_ip_bound_sessions() {
    use firekeeper_sdk::{Config, SignedIn, Verifier};
    let data = temp_dir("ipbind").join("data");
    let key = String::from_utf8(run(cmd(&data).args(["api-keys", "create"])).stdout).unwrap();
    let key = key.trim().to_owned();
    let admin = String::from_utf8(run(cmd(&data).args(["admin-tokens", "create"])).stdout).unwrap();
    let admin = admin.trim().to_owned();
    let server = start_env(&data, &[], &[("FIREKEEPER_TRUSTED_PROXIES", "127.0.0.0/8")]);
    let http = reqwest::Client::new();
    let r = http
        .patch(format!(
            "{}/firekeeper/v1/projects/demo-firekeeper/config",
            server.base
        ))
        .bearer_auth(&admin)
        .json(&json!({"sessionPolicy": {"ipBinding": "sameAddress"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let sign_up = |email: &str, from: Option<&str>| {
        let mut req = http
            .post(format!(
                "{}/identitytoolkit.googleapis.com/v1/accounts:signUp?key={key}",
                server.base
            ))
            .json(&json!({"email": email, "password": "secret-pw"}));
        if let Some(ip) = from {
            req = req.header("x-forwarded-for", ip);
        }
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["idToken"].as_str().unwrap().to_owned()
        }
    };
    let here = sign_up("here@x.io", None).await;
    let elsewhere = sign_up("elsewhere@x.io", Some("10.5.5.5")).await;

    let verifier =
        Verifier::new(Config::new(server.base.clone(), "demo-firekeeper").admin_token(admin))
            .unwrap();
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|SignedIn(c): SignedIn| async move { c.uid().to_owned() }),
        )
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}/me", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let call = |token: Option<String>| {
        let mut req = http.get(&app_url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call(Some(here)).await, 200, "signed in from this address");
    assert_eq!(call(Some(elsewhere)).await, 401, "bound to 10.5.5.5");
    assert_eq!(call(None).await, 401);
    drop(server);
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

/// Session cookies through the Rust SDK: creation, verification, error kinds, and the
/// axum login / extractor / logout helpers against a server in another process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_session_cookies_end_to_end() {
    use firekeeper_sdk::session::{session_login, session_logout, Session, SessionCookies};
    use firekeeper_sdk::{Config, Verifier, VerifyError, SESSION_COOKIE_MAX};
    let data = temp_dir("cookies").join("data");
    let key = String::from_utf8(run(cmd(&data).args(["api-keys", "create"])).stdout).unwrap();
    let key = key.trim().to_owned();
    let admin = String::from_utf8(run(cmd(&data).args(["admin-tokens", "create"])).stdout).unwrap();
    let admin = admin.trim().to_owned();
    let server = start(&data, &[]);
    let http = reqwest::Client::new();
    let it = format!("{}/identitytoolkit.googleapis.com/v1", server.base);
    let sign_in = |op: &'static str, email: &'static str| {
        let (http, url) = (http.clone(), format!("{it}/accounts:{op}?key={key}"));
        async move {
            let v: Value = http
                .post(url)
                .json(&json!({"email": email, "password": "secret-pw"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (
                v["idToken"].as_str().unwrap().to_owned(),
                v["localId"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (token, uid) = sign_in("signUp", "cookie-sdk@x.io").await;
    let verifier = Verifier::new(
        Config::new(server.base.clone(), "demo-firekeeper")
            .admin_token(admin.clone())
            .lookback(SESSION_COOKIE_MAX + Duration::from_secs(300)),
    )
    .unwrap();
    let feed = verifier.follow_revocations();

    let cookie = verifier
        .create_session_cookie(&token, Duration::from_secs(3600))
        .await
        .unwrap();
    let claims = verifier.verify_session_cookie(&cookie, true).await.unwrap();
    let id_claims = verifier.verify_id_token(&token, true).await.unwrap();
    assert_eq!(claims.uid(), uid);
    assert_eq!(claims.auth_time(), id_claims.auth_time());
    assert_eq!(
        claims.get("exp").and_then(Value::as_i64).unwrap() - claims.issued_at(),
        3600
    );
    // Neither kind passes for the other.
    assert!(matches!(
        verifier.verify_id_token(&cookie, false).await,
        Err(VerifyError::Invalid(_))
    ));
    assert!(matches!(
        verifier.verify_session_cookie(&token, false).await,
        Err(VerifyError::Invalid(_))
    ));
    for bad in [
        Duration::from_secs(299),
        SESSION_COOKIE_MAX + Duration::from_secs(1),
    ] {
        assert!(matches!(
            verifier.create_session_cookie(&token, bad).await,
            Err(VerifyError::Invalid(_))
        ));
    }
    assert!(matches!(
        verifier
            .create_session_cookie("garbage", Duration::from_secs(600))
            .await,
        Err(VerifyError::Invalid(_))
    ));

    // The helpers, mounted as a site would.
    let cookies = SessionCookies::new(verifier.clone());
    let app = axum::Router::new()
        .route("/sessionLogin", axum::routing::post(session_login))
        .route("/sessionLogout", axum::routing::post(session_logout))
        .route(
            "/profile",
            axum::routing::get(|Session(c): Session| async move { c.uid().to_owned() }),
        )
        .with_state(cookies.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let (csrf, _) = cookies.issue_csrf(&axum::http::HeaderMap::new()).unwrap();
    let login = |csrf_body: String, id_token: String| {
        let (http, url, csrf) = (http.clone(), format!("{site}/sessionLogin"), csrf.clone());
        async move {
            let r = http
                .post(url)
                .header("cookie", format!("csrfToken={csrf}"))
                .json(&json!({"idToken": id_token, "csrfToken": csrf_body}))
                .send()
                .await
                .unwrap();
            let set = r
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), set)
        }
    };
    let profile = |cookie: String| {
        let (http, url) = (http.clone(), format!("{site}/profile"));
        async move {
            let r = http
                .get(url)
                .header("cookie", format!("session={cookie}"))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }
    };
    assert_eq!(login("forged".into(), token.clone()).await, (401, None));
    let (status, set) = login(csrf.clone(), token.clone()).await;
    assert_eq!(status, 200);
    let set = set.unwrap();
    for part in ["HttpOnly", "Secure", "Max-Age=432000", "Path=/"] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    let site_cookie = set
        .strip_prefix("session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(profile(site_cookie.clone()).await, 200);
    assert_eq!(
        profile(token.clone()).await,
        401,
        "an ID token is no cookie"
    );
    let (h, p, s) = {
        let mut it = site_cookie.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let forged_payload = p.replacen('e', "f", 1);
    assert_eq!(profile(format!("{h}.{forged_payload}.{s}")).await, 401);

    // Logout ends the cookie's own session: a kept copy stops working.
    let r = http
        .post(format!("{site}/sessionLogout"))
        .header("cookie", format!("session={site_cookie}; csrfToken={csrf}"))
        .form(&[("csrfToken", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while profile(site_cookie.clone()).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "ended session still accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        verifier.verify_session_cookie(&site_cookie, true).await,
        Err(VerifyError::Revoked)
    );

    // Revocation and disabling reach cookies made before them (another sign-in, so the
    // ended session above plays no part).
    let (token, _) = sign_in("signInWithPassword", "cookie-sdk@x.io").await;
    let cookie = verifier
        .create_session_cookie(&token, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(verifier.verify_session_cookie(&cookie, true).await.is_ok());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    verifier.revoke_refresh_tokens(&uid, None).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while verifier.verify_session_cookie(&cookie, true).await != Err(VerifyError::Revoked) {
        assert!(std::time::Instant::now() < deadline, "revocation not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        verifier
            .create_session_cookie(&token, Duration::from_secs(600))
            .await,
        Err(VerifyError::Revoked),
        "a revoked ID token gets no cookie"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (fresh, _) = sign_in("signInWithPassword", "cookie-sdk@x.io").await;
    let fresh_cookie = verifier
        .create_session_cookie(&fresh, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(verifier
        .verify_session_cookie(&fresh_cookie, true)
        .await
        .is_ok());
    let r = http
        .post(format!("{it}/projects/demo-firekeeper/accounts:update"))
        .bearer_auth(&admin)
        .json(&json!({"localId": uid, "disableUser": true}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while verifier.verify_session_cookie(&fresh_cookie, true).await != Err(VerifyError::Disabled) {
        assert!(std::time::Instant::now() < deadline, "disable not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        verifier
            .create_session_cookie(&fresh, Duration::from_secs(600))
            .await,
        Err(VerifyError::Disabled)
    );
    feed.abort();
    drop(server);
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

/// SIGTERM lets requests already in flight finish: sign-ups waiting on a slow blocking
/// function get their answers and are stored, then the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let arrived = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = arrived.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                axum::Json(json!({}))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = temp_dir("drain").join("data");
    let key = String::from_utf8(run(cmd(&data).args(["api-keys", "create"])).stdout).unwrap();
    let key = key.trim().to_owned();
    let set = run(cmd(&data).args(["blocking", "set", "beforeCreate", &hook]));
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let mut server = start(&data, &[]);
    let http = reqwest::Client::new();
    let sign_up = |op: &str, email: String| {
        let url = format!(
            "{}/identitytoolkit.googleapis.com/v1/accounts:{op}?key={key}",
            server.base
        );
        let http = http.clone();
        async move {
            let r = http
                .post(url)
                .json(&json!({"email": email, "password": "secret-pw"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let pending: Vec<_> = (0..4)
        .map(|i| tokio::spawn(sign_up("signUp", format!("drain{i}@x.io"))))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while arrived.load(Ordering::SeqCst) < 4 {
        assert!(std::time::Instant::now() < deadline, "hook not called");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    for p in pending {
        let (status, body) = p.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body["localId"].is_string(), "{body}");
    }
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    drop(server);

    // Stored: each signs in after a restart (no function runs on sign-in).
    let again = start(&data, &[]);
    for i in 0..4 {
        let url = format!(
            "{}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key={key}",
            again.base
        );
        let r = http
            .post(url)
            .json(&json!({"email": format!("drain{i}@x.io"), "password": "secret-pw"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    drop(again);
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

/// The data directory's `database.rules.json` is checked when the server starts (a bad one
/// stops it, naming the line) and then governs namespaces without rules of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_rules_file_is_checked_and_applied() {
    let data = temp_dir("dbrules").join("data");
    std::fs::create_dir_all(&data).unwrap();
    let rules = data.join("database.rules.json");
    std::fs::write(&rules, "{\"rules\": {\n  \".read\": \"auth.uid ==\"\n}}").unwrap();
    let out = run(cmd(&data).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--rtdb-listen",
        "127.0.0.1:0",
    ]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("database.rules.json") && err.contains("line 2"),
        "{err}"
    );

    std::fs::write(
        &rules,
        "{\"rules\": {\"open\": {\".read\": true}, \"closed\": {\".read\": false}}}",
    )
    .unwrap();
    let (server, lines) = start_logged(&data, &["--emulator"], &[]);
    let db = database_base(&lines);
    let status = |path: &str| {
        let url = format!("{db}/{path}.json");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(status("open").await, 200);
    assert_eq!(status("closed").await, 401);
    drop(server);
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}
