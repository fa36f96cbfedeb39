//! The server's public keys, cached for the `max-age` its key endpoint sends.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use firekeeper_tokens::PublicKey;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::VerifyError;

struct Cached {
    keys: HashMap<String, Arc<PublicKey>>,
    expires: Instant,
}

pub(crate) struct KeyCache {
    url: String,
    cached: RwLock<Option<Cached>>,
    /// One fetch at a time; the others wait for its result.
    fetching: Mutex<()>,
}

/// `max-age` from a Cache-Control header, 0 when absent (refetch next time).
fn max_age(header: Option<&str>) -> u64 {
    header
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

impl KeyCache {
    pub fn new(url: String) -> Self {
        Self {
            url,
            cached: RwLock::new(None),
            fetching: Mutex::new(()),
        }
    }

    /// The hot path: a read lock and an `Arc` clone, no await.
    fn lookup(&self, kid: &str) -> Option<Option<Arc<PublicKey>>> {
        let guard = self.cached.read().ok()?;
        let c = guard.as_ref().filter(|c| c.expires > Instant::now())?;
        Some(c.keys.get(kid).cloned())
    }

    /// The key named `kid`, fetching the key set when the cached one has expired.
    pub async fn key(
        &self,
        http: &reqwest::Client,
        kid: &str,
    ) -> Result<Arc<PublicKey>, VerifyError> {
        if let Some(hit) = self.lookup(kid) {
            return hit.ok_or_else(|| VerifyError::Invalid(format!("unknown key id {kid}")));
        }
        let _one = self.fetching.lock().await;
        if let Some(hit) = self.lookup(kid) {
            return hit.ok_or_else(|| VerifyError::Invalid(format!("unknown key id {kid}")));
        }
        let unavailable = |e: String| VerifyError::Unavailable(format!("fetching keys: {e}"));
        let res = http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unavailable(res.status().to_string()));
        }
        let ttl = max_age(
            res.headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|h| h.to_str().ok()),
        );
        let body: Value = res.json().await.map_err(|e| unavailable(e.to_string()))?;
        let mut keys = HashMap::new();
        for k in body["keys"].as_array().into_iter().flatten() {
            let (Some(kid), Some(n), Some(e)) =
                (k["kid"].as_str(), k["n"].as_str(), k["e"].as_str())
            else {
                continue;
            };
            if let Ok(pk) = PublicKey::from_jwk(kid, n, e) {
                keys.insert(kid.to_owned(), Arc::new(pk));
            }
        }
        let found = keys.get(kid).cloned();
        if let Ok(mut slot) = self.cached.write() {
            *slot = Some(Cached {
                keys,
                expires: Instant::now() + Duration::from_secs(ttl),
            });
        }
        found.ok_or_else(|| VerifyError::Invalid(format!("unknown key id {kid}")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cache_control_max_age() {
        assert_eq!(super::max_age(Some("public, max-age=300")), 300);
        assert_eq!(super::max_age(Some("max-age=7, must-revalidate")), 7);
        assert_eq!(super::max_age(Some("no-store")), 0);
        assert_eq!(super::max_age(None), 0);
    }
}
