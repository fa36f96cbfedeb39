//! The HTTP load: seeded users, and the client calls driven at a fixed concurrency against
//! one or several instances (requests go round the instances in turn).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// A user made before the scenarios run.
#[derive(Clone)]
pub struct Seeded {
    pub email: String,
    /// Shared, so a scenario's per-call copy costs a reference count, not the bytes.
    pub id_token: Arc<str>,
    pub refresh_token: String,
}

pub async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let res = http.post(url).json(body).send().await?;
    let status = res.status();
    let v: Value = res.json().await?;
    if !status.is_success() {
        bail!("{status}: {v}");
    }
    Ok(v)
}

/// p-th percentile of sorted latencies, in milliseconds with two decimals.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted
        .get(i)
        .map_or(0.0, |d| (d.as_secs_f64() * 1e5).round() / 100.0)
}

/// Runs `op(i)` from `concurrency` tasks for `secs`; returns the scenario's JSON.
pub async fn scenario<F, Fut>(concurrency: usize, secs: u64, op: F) -> Value
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, counter) = (op.clone(), counter.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    match op(i).await {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    json!({
        "concurrency": concurrency,
        "requests": all.len(),
        "errors": errors,
        "throughput_per_sec": (all.len() as f64 / elapsed).round(),
        "p50_ms": percentile_ms(&all, 0.50),
        "p99_ms": percentile_ms(&all, 0.99),
    })
}

/// The instances a load goes to, and the API key it uses.
#[derive(Clone)]
pub struct Target {
    pub http: reqwest::Client,
    pub bases: Arc<Vec<String>>,
    pub key: String,
}

impl Target {
    pub fn new(bases: Vec<String>, key: String, concurrency: usize) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(concurrency * 2)
                .build()?,
            bases: Arc::new(bases),
            key,
        })
    }

    /// The identity toolkit URL of `op` on the instance whose turn `i` is.
    fn accounts(&self, i: u64, op: &str) -> String {
        let base = &self.bases[i as usize % self.bases.len()];
        format!(
            "{base}/identitytoolkit.googleapis.com/v1/accounts:{op}?key={}",
            self.key
        )
    }

    pub async fn sign_up(&self, i: u64, email: &str) -> Result<Value> {
        post(
            &self.http,
            &self.accounts(i, "signUp"),
            &json!({"email": email, "password": "bench-password", "returnSecureToken": true}),
        )
        .await
    }

    /// `users` accounts, each with a session.
    pub async fn seed(&self, prefix: &str, users: usize) -> Result<Arc<Vec<Seeded>>> {
        let mut seeded = Vec::new();
        for i in 0..users {
            let email = format!("{prefix}{i}@bench.io");
            let v = self.sign_up(i as u64, &email).await?;
            seeded.push(Seeded {
                email,
                id_token: Arc::from(v["idToken"].as_str().unwrap_or_default()),
                refresh_token: v["refreshToken"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(Arc::new(seeded))
    }

    pub async fn sign_up_scenario(&self, c: usize, secs: u64, prefix: &str) -> Value {
        let (t, prefix) = (self.clone(), prefix.to_owned());
        scenario(c, secs, move |i| {
            let (t, email) = (t.clone(), format!("{prefix}{i}@bench.io"));
            async move { t.sign_up(i, &email).await.map(|_| ()) }
        })
        .await
    }

    pub async fn sign_in_scenario(&self, c: usize, secs: u64, s: &Arc<Vec<Seeded>>) -> Value {
        let (t, s) = (self.clone(), s.clone());
        scenario(c, secs, move |i| {
            let t = t.clone();
            let email = s[i as usize % s.len()].email.clone();
            async move {
                post(
                    &t.http,
                    &t.accounts(i, "signInWithPassword"),
                    &json!({"email": email, "password": "bench-password", "returnSecureToken": true}),
                )
                .await
                .map(|_| ())
            }
        })
        .await
    }

    pub async fn refresh_scenario(&self, c: usize, secs: u64, s: &Arc<Vec<Seeded>>) -> Value {
        let (t, s) = (self.clone(), s.clone());
        scenario(c, secs, move |i| {
            let t = t.clone();
            let token = s[i as usize % s.len()].refresh_token.clone();
            async move { t.refresh(i, &token).await.map(|_| ()) }
        })
        .await
    }

    /// A token refresh through the instance whose turn `i` is.
    pub async fn refresh(&self, i: u64, token: &str) -> Result<Value> {
        let base = &self.bases[i as usize % self.bases.len()];
        let res = self
            .http
            .post(format!(
                "{base}/securetoken.googleapis.com/v1/token?key={}",
                self.key
            ))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
            .await?;
        let status = res.status();
        let v: Value = res.json().await?;
        if !status.is_success() {
            bail!("refresh: {status}: {v}");
        }
        Ok(v)
    }

    pub async fn lookup_scenario(&self, c: usize, secs: u64, s: &Arc<Vec<Seeded>>) -> Value {
        let (t, s) = (self.clone(), s.clone());
        scenario(c, secs, move |i| {
            let t = t.clone();
            let token = s[i as usize % s.len()].id_token.clone();
            async move { t.lookup(i, &token).await.map(|_| ()) }
        })
        .await
    }

    /// `accounts:lookup` of an ID token through the instance whose turn `i` is.
    pub async fn lookup(&self, i: u64, id_token: &str) -> Result<Value> {
        post(
            &self.http,
            &self.accounts(i, "lookup"),
            &json!({ "idToken": id_token }),
        )
        .await
    }
}

impl Target {
    /// Revocation latency: signs up `samples` users (emails from the prefix given with it), then revokes each through instance
    /// `revoke_on` (an admin `validSince` update) and times how long until `refused(id
    /// token)` holds. Sorted.
    pub async fn revocation_latencies<F, Fut>(
        &self,
        admin: &str,
        revoke_on: usize,
        samples: (&str, usize),
        refused: F,
    ) -> Result<Vec<Duration>>
    where
        F: Fn(Arc<str>) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let (prefix, samples) = samples;
        let mut victims = Vec::new();
        for i in 0..samples {
            let v = self
                .sign_up(i as u64, &format!("{prefix}{i}@bench.io"))
                .await?;
            victims.push((
                v["localId"].as_str().unwrap_or_default().to_owned(),
                Arc::<str>::from(v["idToken"].as_str().unwrap_or_default()),
            ));
        }
        // validSince has one-second resolution: the tokens must be older than the revoke.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let base = &self.bases[revoke_on % self.bases.len()];
        let mut lat = Vec::new();
        for (uid, token) in victims {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let start = Instant::now();
            let res = self
                .http
                .post(format!(
                    "{base}/identitytoolkit.googleapis.com/v1/projects/demo-firekeeper/accounts:update"
                ))
                .bearer_auth(admin)
                .json(&json!({"localId": uid, "validSince": now}))
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("revoke failed: {}", res.status());
            }
            while !refused(token.clone()).await {
                if start.elapsed() > Duration::from_secs(30) {
                    bail!("revocation never seen");
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            lat.push(start.elapsed());
        }
        lat.sort();
        Ok(lat)
    }
}
