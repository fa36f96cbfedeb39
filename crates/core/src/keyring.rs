//! Signing-key rotation. Each key is published *before* it signs (it waits as the "next" key
//! for one rotation period) and stays published after it retires until every token it
//! signed has expired. So a verifier that cached the key set for `max-age` seconds always
//! holds the key of any token it is shown.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use firekeeper_tokens::{PublicKey, SigningKey};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::secrets::MasterKey;
use crate::store::{Store, StoredKey};

pub const ID_TOKEN_KEYS: &str = "id_token";
/// Session cookies are signed by keys of their own, so neither kind of token verifies as
/// the other even before the issuer is compared.
pub const SESSION_COOKIE_KEYS: &str = "session_cookie";

/// The key that signs at `now`: the latest to have activated.
pub fn active_key(keys: &[StoredKey], now: i64) -> Option<&StoredKey> {
    keys.iter()
        .filter(|k| k.activates_at <= now)
        .max_by_key(|k| (k.activates_at, k.created_at))
}

#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// How long a key signs before the next one takes over.
    pub rotation_secs: i64,
    /// How long a retired key stays published: the longest token lifetime plus slack.
    pub retention_secs: i64,
}

impl KeyPolicy {
    pub fn id_tokens(rotation_secs: i64) -> Self {
        Self {
            rotation_secs,
            retention_secs: 3600 + 300,
        }
    }

    /// A retired cookie key stays published as long as the longest cookie it signed lives.
    pub fn session_cookies(rotation_secs: i64) -> Self {
        Self {
            rotation_secs,
            retention_secs: crate::service::SESSION_COOKIE_MAX_SECS + 300,
        }
    }
}

/// An immutable snapshot of one purpose's keys.
#[derive(Debug)]
pub struct KeySet {
    pub active: Arc<SigningKey>,
    published: Vec<(PublicKey, String)>,
    by_kid: HashMap<String, PublicKey>,
    /// When the next queued key starts signing, ms.
    next_activation_ms: i64,
    /// When upkeep is next due: an activation or the end of a retired key's retention.
    next_upkeep_ms: i64,
    version: String,
}

impl KeySet {
    pub fn key(&self, kid: &str) -> Option<&PublicKey> {
        self.by_kid.get(kid)
    }

    /// `{kid: certificate PEM}`, as Google's x509 endpoints.
    pub fn x509_map(&self) -> Value {
        let mut m = Map::new();
        for (pk, cert) in &self.published {
            m.insert(pk.kid.clone(), cert.clone().into());
        }
        Value::Object(m)
    }

    pub fn jwks(&self) -> Result<Value> {
        let keys = self
            .published
            .iter()
            .map(|(pk, _)| pk.jwk().map_err(Error::internal))
            .collect::<Result<Vec<_>>>()?;
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// Seconds a verifier may cache the set: never past the next activation.
    pub fn max_age_secs(&self, now_ms: i64) -> i64 {
        ((self.next_activation_ms - now_ms) / 1000).clamp(0, 6 * 3600)
    }
}

pub struct KeyRing {
    purpose: &'static str,
    policy: KeyPolicy,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    master: Arc<MasterKey>,
    current: RwLock<Arc<KeySet>>,
    /// One upkeep at a time: the timer and the store's change feed both tick, and a slower
    /// tick that read the keys earlier must not replace a newer set with its older one.
    upkeep: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("purpose", &self.purpose)
            .finish()
    }
}

async fn new_key(
    store: &dyn Store,
    master: &MasterKey,
    purpose: &str,
    now: i64,
    activates_at: i64,
    newest_seen: Option<i64>,
) -> Result<bool> {
    let key = tokio::task::spawn_blocking(SigningKey::generate)
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    Ok(store
        .insert_signing_key(
            &StoredKey {
                kid: key.kid().to_owned(),
                purpose: purpose.to_owned(),
                private_key: master.seal(key.pkcs8())?,
                public_key: key.public_key().rsa_der,
                cert_pem: key.cert_pem().to_owned(),
                created_at: now,
                activates_at,
                retired_at: None,
            },
            newest_seen,
        )
        .await?)
}

/// Brings the stored keys in line with the policy at `now`: an active key, a published next
/// key, predecessors retired, long-expired keys deleted.
pub async fn reconcile(
    store: &dyn Store,
    master: &MasterKey,
    purpose: &str,
    policy: KeyPolicy,
    now: i64,
) -> Result<()> {
    let period = policy.rotation_secs * 1000;
    loop {
        let keys = store.signing_keys(purpose).await?;
        let Some(active) = active_key(&keys, now) else {
            match keys.iter().min_by_key(|k| k.activates_at) {
                // A next key exists but nothing is active (clock moved back, or a fresh
                // store): bring the next key forward.
                Some(next) => store.update_signing_key_times(&next.kid, now, None).await?,
                // Another instance may win this race; the next turn then reads its key.
                None => {
                    new_key(store, master, purpose, now, now, None).await?;
                }
            }
            continue;
        };
        for old in keys.iter().filter(|k| k.kid != active.kid) {
            if old.activates_at <= active.activates_at && old.retired_at.is_none() {
                store
                    .update_signing_key_times(&old.kid, old.activates_at, Some(active.activates_at))
                    .await?;
            }
            if old
                .retired_at
                .is_some_and(|r| r + policy.retention_secs * 1000 < now)
            {
                store.delete_signing_key(&old.kid).await?;
            }
        }
        if !keys.iter().any(|k| k.activates_at > now) {
            // Overdue (the server was down): the next key starts now and another is queued.
            let at = (active.activates_at + period).max(now);
            let newest = Some(active.activates_at);
            if !new_key(store, master, purpose, now, at, newest).await? || at <= now {
                // Another instance queued one first (read it), or the new key already signs.
                continue;
            }
        }
        return Ok(());
    }
}

/// Makes the queued next key sign from now on (it is already published) and queues another.
pub async fn rotate_now(
    store: &dyn Store,
    master: &MasterKey,
    purpose: &str,
    policy: KeyPolicy,
    now: i64,
) -> Result<String> {
    reconcile(store, master, purpose, policy, now).await?;
    let keys = store.signing_keys(purpose).await?;
    let next = keys
        .iter()
        .filter(|k| k.activates_at > now)
        .min_by_key(|k| k.activates_at)
        .ok_or_else(|| Error::internal("no queued key"))?;
    // The successor is queued before the next key takes over, so no instance ever reads a
    // set without a queued key (each would then make one, only for all but one to lose).
    let successor_at = now + policy.rotation_secs * 1000;
    let newest = keys.iter().map(|k| k.activates_at).max();
    new_key(store, master, purpose, now, successor_at, newest).await?;
    store.update_signing_key_times(&next.kid, now, None).await?;
    let kid = next.kid.clone();
    // Keys queued between the two would otherwise fire before a full period has passed.
    for early in store
        .signing_keys(purpose)
        .await?
        .iter()
        .filter(|k| k.activates_at > now && k.activates_at < successor_at && k.kid != kid)
    {
        store.delete_signing_key(&early.kid).await?;
    }
    reconcile(store, master, purpose, policy, now + 1).await?;
    Ok(kid)
}

async fn load(
    store: &dyn Store,
    master: &MasterKey,
    purpose: &str,
    policy: KeyPolicy,
    now: i64,
) -> Result<KeySet> {
    let version = store.signing_keys_version(purpose).await?;
    let keys = store.signing_keys(purpose).await?;
    let active = active_key(&keys, now).ok_or_else(|| Error::internal("no active signing key"))?;
    let pkcs8 = master.open(&active.private_key)?;
    let signing =
        SigningKey::from_parts(&active.kid, &pkcs8, &active.cert_pem).map_err(Error::internal)?;
    let mut published = Vec::new();
    let mut by_kid = HashMap::new();
    for k in &keys {
        let pk = PublicKey::from_der(&k.kid, &k.public_key).map_err(Error::internal)?;
        by_kid.insert(k.kid.clone(), pk.clone());
        published.push((pk, k.cert_pem.clone()));
    }
    let next_activation = keys
        .iter()
        .map(|k| k.activates_at)
        .filter(|&a| a > now)
        .min()
        .unwrap_or(now);
    // Upkeep is also due when a retired key's retention ends (it is then deleted).
    let next_expiry = keys
        .iter()
        .filter_map(|k| k.retired_at)
        .map(|r| r + policy.retention_secs * 1000 + 1)
        .filter(|&e| e > now)
        .min()
        .unwrap_or(i64::MAX);
    Ok(KeySet {
        active: Arc::new(signing),
        published,
        by_kid,
        next_activation_ms: next_activation,
        next_upkeep_ms: next_activation.min(next_expiry),
        version,
    })
}

impl KeyRing {
    pub async fn open(
        purpose: &'static str,
        policy: KeyPolicy,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: Arc<MasterKey>,
    ) -> Result<Self> {
        let now = clock.now_ms();
        reconcile(&*store, &master, purpose, policy, now).await?;
        let set = load(&*store, &master, purpose, policy, now).await?;
        Ok(Self {
            purpose,
            policy,
            store,
            clock,
            master,
            current: RwLock::new(Arc::new(set)),
            upkeep: tokio::sync::Mutex::new(()),
        })
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Periodic upkeep: rotate when due, and reload when another process (the CLI, another
    /// instance) changed the keys.
    pub async fn tick(&self) -> Result<()> {
        let _one_at_a_time = self.upkeep.lock().await;
        let now = self.clock.now_ms();
        let cur = self.current();
        let due = cur.next_upkeep_ms <= now;
        if due {
            reconcile(&*self.store, &self.master, self.purpose, self.policy, now).await?;
        }
        let version = self.store.signing_keys_version(self.purpose).await?;
        if due || version != cur.version {
            let set = load(&*self.store, &self.master, self.purpose, self.policy, now).await?;
            let mut guard = match self.current.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            *guard = Arc::new(set);
        }
        Ok(())
    }
}
