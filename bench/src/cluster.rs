//! `--postgres URL`: the scale-out benchmark. One instance, then several, on one
//! PostgreSQL database (in a schema of the run's own): sign-in, refresh and lookup
//! throughput with requests spread round the instances, and how long a revocation made
//! through the last instance takes to be enforced by the first and to reach an SDK
//! verifier following the first one's feed.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::load::{percentile_ms, Target};
use crate::server::{Binary, TempDir};
use crate::Args;

/// A schema of the run's own, dropped at the end.
struct Schema {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

impl Schema {
    async fn create(url: &str) -> Result<Self> {
        let name = format!("fk_bench_{}", std::process::id());
        let admin = sqlx::PgPool::connect(url)
            .await
            .context("cannot connect to --postgres")?;
        for stmt in [
            format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
            format!("CREATE SCHEMA {name}"),
        ] {
            sqlx::query(&stmt).execute(&admin).await?;
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20search_path%3D{name}");
        Ok(Self { admin, name, url })
    }

    async fn drop(self) -> Result<()> {
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&self.admin)
            .await?;
        Ok(())
    }
}

/// Sign-in, refresh and lookup against `target`.
async fn scenarios(target: &Target, a: &Args, users: &str) -> Result<Value> {
    let seeded = target.seed(users, a.users).await?;
    let (c, secs) = (a.concurrency, a.seconds);
    Ok(json!({
        "instances": target.bases.len(),
        "signInWithPassword": target.sign_in_scenario(c, secs, &seeded).await,
        "token_refresh": target.refresh_scenario(c, secs, &seeded).await,
        "accounts_lookup": target.lookup_scenario(c, secs, &seeded).await,
    }))
}

fn latencies(lat: &[Duration], measured: &str) -> Value {
    json!({
        "samples": lat.len(),
        "measured": measured,
        "p50_ms": percentile_ms(lat, 0.5),
        "p99_ms": percentile_ms(lat, 0.99),
    })
}

pub async fn run(a: &Args, url: &str) -> Result<Value> {
    let schema = Schema::create(url).await?;
    let result = measure(a, &schema.url).await;
    schema.drop().await?;
    result
}

async fn measure(a: &Args, url: &str) -> Result<Value> {
    let bin = Binary {
        path: a.bin.clone(),
        env: vec![("FIREKEEPER_DATABASE_URL".into(), url.into())],
    };
    let root = TempDir::new("cluster");
    let dirs: Vec<_> = (0..a.instances)
        .map(|n| root.0.join(format!("node{n}")))
        .collect();
    let (key, admin) = bin.provision(&dirs[0])?;
    // The instances share the first one's master key, as a deployment would.
    for dir in &dirs[1..] {
        std::fs::create_dir_all(dir)?;
        std::fs::copy(dirs[0].join("master.key"), dir.join("master.key"))?;
    }
    let mut servers = vec![bin.serve(&dirs[0])?];
    let one = Target::new(vec![servers[0].base.clone()], key.clone(), a.concurrency)?;
    let one_instance = scenarios(&one, a, "one").await?;
    for dir in &dirs[1..] {
        servers.push(bin.serve(dir)?);
    }
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let all = Target::new(bases, key, a.concurrency)?;
    let several = scenarios(&all, a, "all").await?;

    let mut scaling = Map::new();
    for name in ["signInWithPassword", "token_refresh", "accounts_lookup"] {
        let rate = |v: &Value| v[name]["throughput_per_sec"].as_f64().unwrap_or(0.0);
        let ratio = if rate(&one_instance) > 0.0 {
            (rate(&several) / rate(&one_instance) * 100.0).round() / 100.0
        } else {
            0.0
        };
        scaling.insert(name.into(), json!(ratio));
    }

    // Revocations made through the last instance, seen by the first.
    let last = a.instances - 1;
    let first = Target::new(vec![all.bases[0].clone()], all.key.clone(), 1)?;
    let enforced = all
        .revocation_latencies(&admin, last, ("enforced", 40), |token| {
            let first = first.clone();
            async move { first.lookup(0, &token).await.is_err() }
        })
        .await?;
    use firekeeper_sdk::{Config, Verifier, VerifyError};
    let verifier = Verifier::new(
        Config::new(all.bases[0].clone(), "demo-firekeeper").admin_token(admin.clone()),
    )?;
    let feed = verifier.follow_revocations();
    while verifier.feed_status().since_last_sync.is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pushed = all
        .revocation_latencies(&admin, last, ("pushed", 40), |token| {
            let v = verifier.clone();
            async move { v.verify_id_token(&token, true).await == Err(VerifyError::Revoked) }
        })
        .await?;
    feed.abort();
    drop(servers);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(json!({
        "machine": {"cores": cores},
        "backend": "postgresql",
        "note": "the instances, PostgreSQL and the load generator share the machine's cores, so more instances add no CPU here: the comparison shows what spreading the load costs, not what more machines would add",
        "one_instance": one_instance,
        "several_instances": several,
        "throughput_several_per_one": scaling,
        "revocation_propagation_between_instances": {
            "revoked_through": format!("instance {}", last + 1),
            "enforced_by_instance_1": latencies(&enforced, "from sending the admin revoke to instance 1 refusing the ID token at accounts:lookup"),
            "sdk_verifier_following_instance_1": latencies(&pushed, "from sending the admin revoke to a verifier following instance 1's revocation feed refusing the token"),
        },
    }))
}
