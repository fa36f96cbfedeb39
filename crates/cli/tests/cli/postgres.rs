//! Firekeeper on PostgreSQL: several instances on one database, `migrate` and `copy`.
//! Each test runs in a schema of its own and is skipped, with a note, without
//! `FK_TEST_DATABASE_URL`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::{cmd, database_base, run, start, start_env, start_logged, temp_dir, Running};

/// A schema of its own in the test database (reruns start empty), or `None`, with a note,
/// without `FK_TEST_DATABASE_URL`.
struct PgSchema {
    admin: sqlx::PgPool,
    name: String,
    /// The test database's URL with this schema as the search path.
    url: String,
}

impl PgSchema {
    async fn create(prefix: &str) -> Option<Self> {
        let Ok(url) = std::env::var("FK_TEST_DATABASE_URL") else {
            eprintln!("FK_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
            return None;
        };
        let name = format!("{prefix}_{}", std::process::id());
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        for stmt in [
            format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
            format!("CREATE SCHEMA {name}"),
        ] {
            sqlx::query(&stmt).execute(&admin).await.unwrap();
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20search_path%3D{name}");
        Some(Self { admin, name, url })
    }

    async fn drop(self) {
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

/// Instances on one database: the first one's API key and admin token, and the master key
/// copied to every data directory, as a deployment would share it.
struct Cluster {
    pg: PgSchema,
    root: PathBuf,
    url: String,
    key: String,
    admin: String,
    nodes: Vec<Running>,
    /// Each instance's database port.
    dbs: Vec<String>,
    http: reqwest::Client,
}

impl Cluster {
    async fn start(prefix: &str, size: usize) -> Option<Self> {
        let pg = PgSchema::create(prefix).await?;
        let url = pg.url.clone();
        let root = temp_dir(prefix);
        let env = [("FIREKEEPER_DATABASE_URL", url.as_str())];
        let first = root.join("node0");
        let made = run(cmd(&first).envs(env).args(["api-keys", "create"]));
        let key = String::from_utf8(made.stdout).unwrap().trim().to_owned();
        let made = run(cmd(&first).envs(env).args(["admin-tokens", "create"]));
        let admin = String::from_utf8(made.stdout).unwrap().trim().to_owned();
        assert!(key.starts_with("AIza") && admin.starts_with("fkadm_"));
        assert!(
            !first.join("firekeeper.db").exists(),
            "no SQLite file with database_url"
        );
        let mut nodes = Vec::new();
        let mut dbs = Vec::new();
        for n in 0..size {
            let dir = root.join(format!("node{n}"));
            if n > 0 {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::copy(first.join("master.key"), dir.join("master.key")).unwrap();
            }
            let (node, lines) = start_logged(&dir, &[], &env);
            nodes.push(node);
            dbs.push(database_base(&lines));
        }
        Some(Self {
            pg,
            root,
            url,
            key,
            admin,
            nodes,
            dbs,
            http: reqwest::Client::new(),
        })
    }

    fn base(&self, n: usize) -> &str {
        &self.nodes[n].base
    }

    /// A client call through instance `n`: the response's status and body.
    async fn call(&self, n: usize, op: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!(
                "{}/identitytoolkit.googleapis.com/v1/accounts:{op}?key={}",
                self.base(n),
                self.key
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// An admin call through instance `n`.
    async fn admin_call(&self, n: usize, op: &str, body: Value) -> Value {
        self.http
            .post(format!(
                "{}/identitytoolkit.googleapis.com/v1/projects/demo-firekeeper/accounts:{op}",
                self.base(n)
            ))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn refresh(&self, n: usize, token: &str) -> Value {
        self.http
            .post(format!(
                "{}/securetoken.googleapis.com/v1/token?key={}",
                self.base(n),
                self.key
            ))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn jwks(&self, n: usize) -> Value {
        self.http
            .get(format!(
                "{}/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com",
                self.base(n)
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        self.nodes.clear();
        self.pg.drop().await;
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn kid_of(jwt: &str) -> String {
    let header = firekeeper_tokens::jws::decode_header(jwt).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits up to `limit` for `done`, polling.
/// A JSON answer to a GET with an admin credential.
async fn admin_get(http: &reqwest::Client, url: &str, admin: &str) -> Value {
    http.get(url)
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn within<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three instances on one database behave as one server: a user signed up through the
/// first signs in through the second and refreshes through the third; settings, key
/// rotations and revocations made through one reach the others, and an SDK verifier
/// subscribed to the first, at once (their change feed), not when a cache would expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_database_act_as_one() {
    use firekeeper_sdk::{Config, Verifier, VerifyError};
    let Some(c) = Cluster::start("fk_three", 3).await else {
        return;
    };
    let (status, up) = c
        .call(
            0,
            "signUp",
            json!({"email": "pg@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(status, 200, "{up}");
    let uid = up["localId"].as_str().unwrap().to_owned();
    let (_, signed_in) = c
        .call(
            1,
            "signInWithPassword",
            json!({"email": "pg@x.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(signed_in["localId"], uid, "{signed_in}");
    let refresh_token = signed_in["refreshToken"].as_str().unwrap().to_owned();
    let refreshed = c.refresh(2, &refresh_token).await;
    assert_eq!(refreshed["user_id"], uid, "{refreshed}");
    let id_token = refreshed["id_token"].as_str().unwrap().to_owned();
    // Each instance takes the others' tokens: they publish one key set.
    for n in 0..3 {
        let (_, found) = c.call(n, "lookup", json!({"idToken": id_token})).await;
        assert_eq!(found["users"][0]["localId"], uid, "instance {n}: {found}");
    }
    assert_eq!(c.jwks(0).await, c.jwks(1).await);
    assert_eq!(c.jwks(1).await, c.jwks(2).await);

    let verifier = Verifier::new(
        Config::new(c.base(0).to_owned(), "demo-firekeeper").admin_token(c.admin.clone()),
    )
    .unwrap();
    assert_eq!(
        verifier
            .verify_id_token(&id_token, true)
            .await
            .unwrap()
            .uid(),
        uid
    );
    let feed = verifier.follow_revocations();
    while verifier.feed_status().since_last_sync.is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A settings change through the second reaches the first within a fraction of its
    // 2 s settings cache, which a sign-up has just filled.
    let (status, _) = c
        .call(
            0,
            "signUp",
            json!({"email": "warm@evil.io", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(status, 200);
    let patched = c
        .http
        .patch(format!(
            "{}/firekeeper/v1/projects/demo-firekeeper/config",
            c.base(1)
        ))
        .bearer_auth(&c.admin)
        .json(&json!({"blockingPolicy": {"allowedEmailDomains": ["x.io"]}}))
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success());
    let mut attempt = 0;
    within(
        Duration::from_millis(1500),
        "settings change on instance 0",
        || {
            attempt += 1;
            let body = json!({"email": format!("late{attempt}@evil.io"), "password": "secret-pw"});
            let c = &c;
            async move { c.call(0, "signUp", body).await.0 != 200 }
        },
    )
    .await;

    // A key rotated with the third instance's configuration signs on all three, and every
    // instance and the verifier take tokens signed with it.
    let env = [("FIREKEEPER_DATABASE_URL", c.url.as_str())];
    let rotated = run(cmd(&c.root.join("node2"))
        .envs(env)
        .args(["keys", "rotate"]));
    assert!(rotated.status.success());
    let new_kid = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    assert_ne!(kid_of(&id_token), new_kid);
    let mut fresh = String::new();
    for n in 0..3 {
        let start = std::time::Instant::now();
        fresh = loop {
            let r = c.refresh(n, &refresh_token).await;
            let token = r["id_token"].as_str().unwrap().to_owned();
            if kid_of(&token) == new_kid {
                break token;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "instance {n} still signs with the old key"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        for m in 0..3 {
            let (_, found) = c.call(m, "lookup", json!({"idToken": fresh})).await;
            assert_eq!(found["users"][0]["localId"], uid, "{n} → {m}: {found}");
        }
        assert_eq!(
            verifier.verify_id_token(&fresh, true).await.unwrap().uid(),
            uid
        );
    }
    // All three publish one key set (within a moment: each hears of the change), which
    // keeps the old key for the tokens it signed.
    let kids = |v: Value| -> Vec<String> {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let old_kid = kid_of(&id_token);
    within(
        Duration::from_secs(1),
        "one key set on all instances",
        || {
            let c = &c;
            async move {
                let sets = [
                    kids(c.jwks(0).await),
                    kids(c.jwks(1).await),
                    kids(c.jwks(2).await),
                ];
                sets[0] == sets[1] && sets[1] == sets[2]
            }
        },
    )
    .await;
    let published = kids(c.jwks(0).await);
    assert!(published.contains(&new_kid), "{published:?}");
    assert!(published.contains(&old_kid), "{published:?}");
    // The next key is queued once, not by every instance that noticed the rotation.
    assert_eq!(published.len(), 3, "{published:?}");

    // A revocation made through the third is enforced by the other two and reaches the
    // verifier following the first one's feed. validSince has one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let revoked = c
        .admin_call(
            2,
            "update",
            json!({"localId": uid, "validSince": now_secs().to_string()}),
        )
        .await;
    assert_eq!(revoked["localId"], uid, "{revoked}");
    for n in 0..2 {
        let r = c.refresh(n, &refresh_token).await;
        assert_eq!(r["error"]["message"], "TOKEN_EXPIRED", "instance {n}: {r}");
        let (status, r) = c.call(n, "lookup", json!({"idToken": fresh})).await;
        assert_eq!(status, 400, "instance {n}: {r}");
        assert_eq!(r["error"]["message"], "TOKEN_EXPIRED", "instance {n}: {r}");
    }
    within(
        Duration::from_secs(1),
        "revocation reaching the verifier",
        || {
            let (v, t) = (&verifier, &fresh);
            async move { v.verify_id_token(t, true).await == Err(VerifyError::Revoked) }
        },
    )
    .await;
    feed.abort();

    // The JSON database: a write through one instance is read through another at once,
    // and increments through all three at the same time add up.
    let db =
        |n: usize, path: &str| format!("{}/{path}.json?ns=demo-firekeeper-default-rtdb", c.dbs[n]);
    let put = c
        .http
        .put(db(0, "shared/n"))
        .bearer_auth(&c.admin)
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    within(
        Duration::from_secs(1),
        "a write seen through another instance",
        || {
            let (http, url, admin) = (c.http.clone(), db(1, "shared/n"), c.admin.clone());
            async move { admin_get(&http, &url, &admin).await == json!(1) }
        },
    )
    .await;
    let mut increments = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (http, url, admin) = (c.http.clone(), db(i % 3, "shared/n"), c.admin.clone());
        increments.spawn(async move {
            let body = json!({".sv": {"increment": 1}});
            http.put(url)
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = increments.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    // The last commits reach the other instances through NOTIFY, a moment after their
    // answers: every instance must settle on the exact sum (a lost or doubled increment
    // never would).
    for n in 0..3 {
        within(
            Duration::from_secs(2),
            "increments through three instances add up",
            || {
                let (http, url, admin) = (c.http.clone(), db(n, "shared/n"), c.admin.clone());
                async move { admin_get(&http, &url, &admin).await == json!(31) }
            },
        )
        .await;
    }

    // Racing sign-ups with one email, spread over the three, create one user: the
    // database's unique index decides, not a lock in any one process.
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (http, url) = (
            c.http.clone(),
            format!(
                "{}/identitytoolkit.googleapis.com/v1/accounts:signUp?key={}",
                c.base(i % 3),
                c.key
            ),
        );
        racers.spawn(async move {
            let body = json!({"email": "race@x.io", "password": "secret-pw"});
            let res = http.post(url).json(&body).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        });
    }
    let mut created = 0;
    while let Some(r) = racers.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            200 => created += 1,
            _ => assert_eq!(body["error"]["message"], "EMAIL_EXISTS", "{body}"),
        }
    }
    assert_eq!(created, 1);

    // With refresh-token rotation and no grace, concurrent refreshes of one token through
    // the three instances: exactly one rotates it.
    let patched = c
        .http
        .patch(format!(
            "{}/firekeeper/v1/projects/demo-firekeeper/config",
            c.base(0)
        ))
        .bearer_auth(&c.admin)
        .json(&json!({"sessionPolicy": {"rotateRefreshTokens": true, "rotationGraceSecs": 0}}))
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success());
    let (_, racer) = c
        .call(
            2,
            "signInWithPassword",
            json!({"email": "race@x.io", "password": "secret-pw"}),
        )
        .await;
    let token = racer["refreshToken"].as_str().unwrap().to_owned();
    let mut refreshes = tokio::task::JoinSet::new();
    for i in 0..9 {
        let (http, url) = (
            c.http.clone(),
            format!(
                "{}/securetoken.googleapis.com/v1/token?key={}",
                c.base(i % 3),
                c.key
            ),
        );
        let token = token.clone();
        refreshes.spawn(async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            http.post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut rotated = 0;
    while let Some(status) = refreshes.join_next().await {
        if status.unwrap() == 200 {
            rotated += 1;
        }
    }
    assert_eq!(
        rotated, 1,
        "one refresh rotates the token; the others are reuse"
    );
    c.stop().await;
}

/// Sign-ups spread over three instances; one is killed with SIGKILL mid-burst. Every
/// sign-up any instance acknowledged is stored, and the other two never stop serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_instances_loses_no_acknowledged_write() {
    use std::sync::{Arc, Mutex};
    let Some(mut c) = Cluster::start("fk_kill", 3).await else {
        return;
    };
    // (instance, uid, acknowledged after the kill)
    let acked: Arc<Mutex<Vec<(usize, String, bool)>>> = Arc::default();
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..6 {
        let n = w % 3;
        let url = format!(
            "{}/identitytoolkit.googleapis.com/v1/accounts:signUp?key={}",
            c.base(n),
            c.key
        );
        let (acked, killed, stop, http) =
            (acked.clone(), killed.clone(), stop.clone(), c.http.clone());
        workers.push(tokio::spawn(async move {
            let mut failures_before_kill = 0;
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let after = killed.load(std::sync::atomic::Ordering::SeqCst);
                let body = json!({"email": format!("w{w}-{i}@burst.io"), "password": "secret-pw"});
                let sent = http.post(&url).json(&body).send().await;
                let reply = match sent {
                    Ok(res) => res.json::<Value>().await.ok(),
                    Err(_) => None,
                };
                match reply.as_ref().and_then(|v| v["localId"].as_str()) {
                    Some(uid) => acked.lock().unwrap().push((n, uid.to_owned(), after)),
                    // The killed instance's workers stop at their first failure.
                    None if n == 1 => break,
                    None => failures_before_kill += 1,
                }
            }
            failures_before_kill
        }));
    }
    let count = |pred: &dyn Fn(&(usize, String, bool)) -> bool| {
        acked.lock().unwrap().iter().filter(|a| pred(a)).count()
    };
    within(Duration::from_secs(60), "a burst of sign-ups", || {
        let n = count(&|a| a.0 == 1);
        async move { n >= 40 }
    })
    .await;
    killed.store(true, std::sync::atomic::Ordering::SeqCst);
    // `Child::kill` is SIGKILL.
    c.nodes[1].child.kill().unwrap();
    c.nodes[1].child.wait().unwrap();
    within(
        Duration::from_secs(60),
        "the others serving after the kill",
        || {
            let (a, b) = (count(&|a| a.0 == 0 && a.2), count(&|a| a.0 == 2 && a.2));
            async move { a >= 40 && b >= 40 }
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        assert_eq!(
            w.await.unwrap(),
            0,
            "a surviving instance refused a sign-up"
        );
    }
    let acked = acked.lock().unwrap().clone();
    let uids: Vec<&str> = acked.iter().map(|a| a.1.as_str()).collect();
    let mut found = 0;
    for chunk in uids.chunks(100) {
        let r = c.admin_call(0, "lookup", json!({ "localId": chunk })).await;
        found += r["users"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(found, uids.len(), "acknowledged sign-ups lost");
    c.stop().await;
}

/// `migrate` and `copy`: an installation moves from its SQLite file into PostgreSQL with
/// its users, sessions, keys and credentials, and serves from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_moves_an_installation_to_postgres() {
    let Some(pg) = PgSchema::create("fk_copy").await else {
        return;
    };
    let db_url = pg.url.clone();
    let data = temp_dir("copy").join("data");
    let migrated = run(cmd(&data).arg("migrate"));
    assert!(migrated.status.success());
    assert!(String::from_utf8_lossy(&migrated.stderr).contains("up to date"));
    let key = String::from_utf8(run(cmd(&data).args(["api-keys", "create"])).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let made = run(cmd(&data).args([
        "users",
        "create",
        "--email",
        "moved@x.io",
        "--password",
        "secret-pw",
    ]));
    assert!(made.status.success());
    // A session and its events too.
    let server = start(&data, &[]);
    let http = reqwest::Client::new();
    let signed_in: Value = http
        .post(format!(
            "{}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key={key}",
            server.base
        ))
        .json(&json!({"email": "moved@x.io", "password": "secret-pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(server);

    let copied = run(cmd(&data).args([
        "copy",
        "--from",
        data.join("firekeeper.db").to_str().unwrap(),
        "--to",
        &db_url,
    ]));
    let log = String::from_utf8_lossy(&copied.stderr).to_string();
    assert!(copied.status.success(), "{log}");
    assert!(log.contains("accounts") && log.contains("100%"), "{log}");
    // A second copy into the same database is refused: nothing is overwritten.
    let again = run(cmd(&data).args([
        "copy",
        "--from",
        data.join("firekeeper.db").to_str().unwrap(),
        "--to",
        &db_url,
    ]));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let moved = start_env(&data, &[], &[("FIREKEEPER_DATABASE_URL", db_url.as_str())]);
    let r: Value = http
        .post(format!(
            "{}/securetoken.googleapis.com/v1/token?key={key}",
            moved.base
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", signed_in["refreshToken"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["user_id"], signed_in["localId"], "{r}");
    // The ID token signed before the move verifies: the keys moved too.
    let lookup: Value = http
        .post(format!(
            "{}/identitytoolkit.googleapis.com/v1/accounts:lookup?key={key}",
            moved.base
        ))
        .json(&json!({"idToken": signed_in["idToken"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(lookup["users"][0]["email"], "moved@x.io", "{lookup}");
    let ready = http
        .get(format!("{}/readyz", moved.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    drop(moved);
    pg.drop().await;
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}
