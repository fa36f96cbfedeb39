//! `--rtdb`: the JSON database. Rule-checked reads and writes per second on a realistic
//! rule set, first in the engine alone (this process), then over REST against a real
//! server (each request also verifies its ID token); and the fan-out latency from a write
//! to many open streams (p50/p99 over every stream and write).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use firekeeper_rules::{tree, Context, Query, Ruleset};
use serde_json::{json, Value};

use crate::load::{percentile_ms, scenario, Target};
use crate::server::{Binary, TempDir};
use crate::Args;

/// Profiles each user owns, a public feed that only admins write.
const RULES: &str = r#"{
  "rules": {
    "users": {
      "$uid": {
        ".read": "auth != null && (auth.uid == $uid || root.child('admins').child(auth.uid).exists())",
        ".write": "auth != null && auth.uid == $uid",
        ".validate": "newData.hasChildren(['name'])",
        "name": { ".validate": "newData.isString() && newData.val().length > 0 && newData.val().length <= 50" },
        "email": { ".validate": "newData.isString() && newData.val().matches(/^[^@]+@[^@]+$/)" },
        "score": { ".validate": "newData.isNumber() && newData.val() >= 0" },
        "updatedAt": { ".validate": "newData.isNumber() && newData.val() <= now" },
        "$other": { ".validate": false }
      }
    },
    "feed": {
      ".read": true,
      ".write": "auth != null && root.child('admins').child(auth.uid).exists()"
    },
    "admins": { ".read": false, ".write": false }
  }
}"#;

/// How many streams the fan-out opens, and how many writes it times.
const STREAMS: usize = 1000;
const FAN_OUT_WRITES: usize = 20;

fn segs(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The engine alone: decisions per second on one core.
fn engine(secs: u64) -> Result<Value> {
    let rules = Ruleset::parse(RULES).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut root = Value::Null;
    for i in 0..10_000 {
        tree::set(
            &mut root,
            &segs(&format!("/users/u{i}")),
            json!({"name": format!("User {i}"), "email": format!("u{i}@example.com"), "score": i}),
        );
    }
    tree::set(&mut root, &segs("/admins/boss"), json!(true));
    let auth =
        json!({"uid": "u42", "provider": "password", "token": {"sub": "u42", "auth_time": 1}});
    let ctx = Context {
        auth: &auth,
        now_ms: 1_800_000_000_000,
    };
    let path = segs("/users/u42");
    let q = Query::default();
    let time = |f: &mut dyn FnMut() -> bool| {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(secs) {
            for _ in 0..1000 {
                if !f() {
                    return Err(anyhow::anyhow!("the benchmark's decision was a denial"));
                }
            }
            n += 1000;
        }
        Ok((n as f64 / start.elapsed().as_secs_f64()).round())
    };
    let reads = time(&mut || rules.read(&root, &path, &q, &ctx).allowed)?;
    let write_path = segs("/users/u42/score");
    let mut new_root = root.clone();
    tree::set(&mut new_root, &write_path, json!(43));
    let writes = time(&mut || {
        rules
            .write(&root, &new_root, std::slice::from_ref(&write_path), &ctx)
            .allowed
    })?;
    Ok(json!({
        "users_in_tree": 10_000,
        "read_decisions_per_sec_one_core": reads,
        "write_decisions_per_sec_one_core": writes,
        "note": "a write decision is .write on the way down plus every .validate on the path and below; building the new tree is not counted",
    }))
}

fn db_url(base: &str, path: &str, query: &str) -> String {
    // The database port sits next to the auth port; `base` is the database's.
    format!("{base}/{path}.json?ns=demo-firekeeper-default-rtdb{query}")
}

pub async fn run(a: &Args) -> Result<Value> {
    let engine = tokio::task::spawn_blocking({
        let secs = a.seconds.min(3);
        move || engine(secs)
    })
    .await??;

    let dir = TempDir::new("rtdb");
    std::fs::create_dir_all(&dir.0)?;
    let rules_file = dir.0.join("database.rules.json");
    std::fs::write(&rules_file, RULES)?;
    let bin = Binary {
        path: a.bin.clone(),
        env: vec![(
            "FIREKEEPER_RTDB_RULES".into(),
            rules_file.display().to_string(),
        )],
    };
    let data = dir.0.join("data");
    let (key, admin) = bin.provision(&data)?;
    let server = bin.serve(&data)?;
    let db = server
        .db_base
        .clone()
        .context("the server did not report its database port")?;
    let target = Target::new(vec![server.base.clone()], key, a.concurrency)?;
    let http = target.http.clone();
    let seeded = target.seed("rtdb", a.users).await?;
    // Each user's profile, written as the user (rule-checked).
    let mut users = Vec::new();
    for (i, s) in seeded.iter().enumerate() {
        let lookup = target.lookup(0, &s.id_token).await?;
        let uid = lookup["users"][0]["localId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let res = http
            .put(db_url(
                &db,
                &format!("users/{uid}"),
                &format!("&auth={}", s.id_token),
            ))
            .json(&json!({"name": format!("User {i}"), "email": s.email, "score": 0}))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("profile write: {} {}", res.status(), res.text().await?);
        }
        users.push((uid, s.id_token.clone()));
    }
    let users = Arc::new(users);
    let (c, secs) = (a.concurrency, a.seconds);

    let (h, d, u) = (http.clone(), db.clone(), users.clone());
    let reads = scenario(c, secs, move |i| {
        let (h, d) = (h.clone(), d.clone());
        let (uid, token) = u[i as usize % u.len()].clone();
        async move {
            let res = h
                .get(db_url(
                    &d,
                    &format!("users/{uid}"),
                    &format!("&auth={token}"),
                ))
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("read: {}", res.status());
            }
            res.bytes().await?;
            Ok(())
        }
    })
    .await;
    let (h, d, u) = (http.clone(), db.clone(), users.clone());
    let writes = scenario(c, secs, move |i| {
        let (h, d) = (h.clone(), d.clone());
        let (uid, token) = u[i as usize % u.len()].clone();
        async move {
            let res = h
                .put(db_url(
                    &d,
                    &format!("users/{uid}/score"),
                    &format!("&auth={token}&print=silent"),
                ))
                .body(i.to_string())
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("write: {}", res.status());
            }
            Ok(())
        }
    })
    .await;

    let fan_out = fan_out(&http, &db, &admin).await?;
    drop(server);
    Ok(json!({
        "engine": engine,
        "rest": {
            "note": "each request verifies its ID token (signature, expiry, revocation: one account read) before the rules run",
            "rule_checked_reads": reads,
            "rule_checked_writes": writes,
        },
        "fan_out": fan_out,
    }))
}

/// Opens `STREAMS` streams on `/feed`, then times `FAN_OUT_WRITES` admin writes from the
/// moment each is sent to the moment each stream has it.
async fn fan_out(http: &reqwest::Client, db: &str, admin: &str) -> Result<Value> {
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; FAN_OUT_WRITES]));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let opened = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut tasks = Vec::new();
    for _ in 0..STREAMS {
        let (client, url) = (client.clone(), db_url(db, "feed", ""));
        let (sent, latencies, opened) = (sent.clone(), latencies.clone(), opened.clone());
        tasks.push(tokio::spawn(async move {
            let mut res = client
                .get(url)
                .header("accept", "text/event-stream")
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("stream: {}", res.status());
            }
            opened.fetch_add(1, Ordering::SeqCst);
            let mut buffer = String::new();
            let mut seen = 0;
            while seen < FAN_OUT_WRITES {
                let Some(chunk) = res.chunk().await? else {
                    bail!("the stream ended early");
                };
                let arrived = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(cut) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..cut + 2).collect();
                    let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                        continue;
                    };
                    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                    // Writes put {"i": n} at /feed/latest.
                    let Some(i) = v["data"]["i"]
                        .as_u64()
                        .or(v["data"]["latest"]["i"].as_u64())
                    else {
                        continue;
                    };
                    let at = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[i as usize];
                    if let Some(at) = at {
                        latencies
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .push(arrived.duration_since(at));
                        seen += 1;
                    }
                }
            }
            Ok(())
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while opened.load(Ordering::SeqCst) < STREAMS as u64 {
        if Instant::now() > deadline {
            bail!("only {} streams opened", opened.load(Ordering::SeqCst));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let every stream take its first event before the timed writes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..FAN_OUT_WRITES {
        sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[i] = Some(Instant::now());
        let res = http
            .put(db_url(db, "feed/latest", "&print=silent"))
            .bearer_auth(admin)
            .json(&json!({"i": i}))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("feed write: {}", res.status());
        }
        // Each write fans out before the next, so the figures are per write.
        let want = (i + 1) * STREAMS;
        let wait_until = Instant::now() + Duration::from_secs(30);
        while latencies
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .len()
            < want
        {
            if Instant::now() > wait_until {
                bail!("write {i} did not reach every stream");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    for t in tasks {
        t.await??;
    }
    let mut lat = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    lat.sort();
    Ok(json!({
        "streams": STREAMS,
        "writes": FAN_OUT_WRITES,
        "samples": lat.len(),
        "measured": "from sending an admin write to each stream receiving its put",
        "p50_ms": percentile_ms(&lat, 0.5),
        "p99_ms": percentile_ms(&lat, 0.99),
        "max_ms": percentile_ms(&lat, 1.0),
    }))
}
