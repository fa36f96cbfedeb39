//! The account services. Each public method is one Identity Toolkit operation; request and
//! response shapes are the wire contract's, so the HTTP layer only authenticates, parses and
//! renders.

mod account;
mod admin;
mod blocking;
mod collections;
mod custom_token;
mod database;
mod idp;
mod idp_configs;
mod idp_named;
mod mfa;
mod oob;
mod password_policy;
mod phone;
mod project;
mod requests;
mod session_cookie;
mod sessions;
mod signin;
mod signup;
mod tenants;
mod tokens;
mod verification;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use database::DatabasePolicy;
pub use idp_configs::ProviderKind;
pub use oob::{kind_of_mode, ActionCode, EmailActions};
pub use password_policy::PasswordPolicy;
pub use requests::*;
pub use session_cookie::{SESSION_COOKIE_MAX_SECS, SESSION_COOKIE_MIN_SECS};
pub use sessions::{IpBinding, SessionPolicy};
pub use tokens::{IssuedTokens, VerifiedIdToken, SIGN_IN_IP_CLAIM};

use crate::access::Access;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::keyring::{KeyPolicy, KeyRing, ID_TOKEN_KEYS, SESSION_COOKIE_KEYS};
use crate::model::{Account, Scope};
use crate::password::{HashCost, Hasher};
use crate::secrets::MasterKey;
use crate::store::Store;
use crate::wire::HashView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// RS256 tokens, API keys and admin tokens checked.
    Production,
    /// A drop-in for the Firebase Auth Emulator: unsigned tokens, any key, `Bearer owner`.
    Emulator,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: Mode,
    pub default_project: String,
    /// ID-token issuer is this prefix plus the project id.
    pub issuer_prefix: String,
    pub hash_cost: HashCost,
    pub key_rotation_secs: i64,
    /// Session-cookie issuer is this prefix plus the project id.
    pub cookie_issuer_prefix: String,
    /// How long a session-cookie key signs. Retired keys stay published for the longest
    /// cookie lifetime, so a longer period keeps the published set small.
    pub cookie_key_rotation_secs: i64,
    /// Session rules for projects that set none of their own.
    pub sessions: SessionPolicy,
    /// How long a blocking function may take: at most 7 s, as production.
    pub blocking_deadline: std::time::Duration,
    /// Functions and built-in policies of projects that registered none of their own.
    pub blocking_functions: crate::blocking::BlockingFunctions,
    pub blocking_policy: crate::blocking::BlockingPolicy,
    /// Database settings for projects that set none of their own.
    pub database_policy: DatabasePolicy,
    /// Out-of-band codes and the emails that carry them.
    pub email_actions: EmailActions,
    /// Whether named providers' configurations may point at other endpoints
    /// (`endpoints`): stand-ins for tests and private deployments. Off, a project admin
    /// could make the server call any address.
    pub idp_endpoint_overrides: bool,
}

impl AuthConfig {
    pub fn new(mode: Mode, default_project: impl Into<String>) -> Self {
        Self {
            mode,
            default_project: default_project.into(),
            issuer_prefix: "https://securetoken.google.com/".to_owned(),
            hash_cost: HashCost::default(),
            key_rotation_secs: 6 * 3600,
            cookie_issuer_prefix: "https://session.firebase.google.com/".to_owned(),
            cookie_key_rotation_secs: 24 * 3600,
            sessions: SessionPolicy::default(),
            blocking_deadline: crate::blocking::MAX_DEADLINE,
            blocking_functions: Default::default(),
            blocking_policy: Default::default(),
            database_policy: Default::default(),
            email_actions: Default::default(),
            idp_endpoint_overrides: false,
        }
    }
}

/// The request context every operation receives.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub access: Access,
    /// Tenant from the path, if any.
    pub tenant: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `X-Firebase-Locale`, passed on to blocking functions and choosing email languages.
    pub locale: Option<String>,
    /// The base URL the caller reached the server at (`http://host:port`): where the
    /// emulator's action links point, as the reference emulator's do.
    pub origin: Option<String>,
}

impl Ctx {
    pub fn scope(&self) -> Scope {
        Scope {
            project: self.access.project.clone(),
            tenant: self.tenant.clone(),
        }
    }
}

pub const ID_TOKEN_LIFETIME_SECS: i64 = 3600;

pub struct Auth {
    pub(crate) key_cache: crate::access::KeyCache,
    /// One argon2 computation per core at a time: more would only share the cores and
    /// thrash their caches (each hash touches megabytes), raising every caller's latency.
    hash_slots: tokio::sync::Semaphore,
    /// A real hash of nothing, verified when an account has none, so a miss costs as much
    /// as a wrong password.
    dummy_hash: String,
    config: AuthConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: Hasher,
    id_keys: KeyRing,
    cookie_keys: KeyRing,
    master: Arc<MasterKey>,
    /// Woken after every committed event, for long-polling feed readers.
    pub(crate) feed: tokio::sync::Notify,
    pub(crate) settings_cache: sessions::SettingsCache,
    /// Calls blocking functions; none means every configured function is unreachable.
    hooks: Option<Arc<dyn crate::blocking::HookClient>>,
    /// Sends out-of-band emails; none means they cannot be delivered (emulator mode logs
    /// the links instead).
    mailer: Option<Arc<dyn crate::email::Mailer>>,
    /// Sends sign-in and second-factor codes; none means only test phone numbers work
    /// (emulator mode logs the codes instead).
    pub(crate) sms_sender: Option<Arc<dyn crate::sms::SmsSender>>,
    pub(crate) sms_limits: verification::SmsLimits,
    /// Refused identity-provider credentials per project and client address.
    pub(crate) idp_refusals: crate::ratelimit::RateLimiter,
    /// Identity providers' discovery documents and keys.
    pub(crate) oidc: crate::idp::OidcCache,
    /// Emails a caller may trigger, per recipient and per client address (production).
    pub(crate) email_limits: oob::EmailLimits,
    metrics: crate::metrics::Metrics,
    /// Settings documents are read, changed and written whole: one writer at a time.
    pub(crate) settings_write: tokio::sync::Mutex<()>,
    /// The document the running settings change started from (project, document).
    pub(crate) settings_base: std::sync::Mutex<Option<(String, Arc<Value>)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("mode", &self.config.mode)
            .finish()
    }
}

impl Auth {
    pub async fn new(
        config: AuthConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: Arc<MasterKey>,
    ) -> Result<Self> {
        let hasher = Hasher::new(config.hash_cost, config.mode == Mode::Emulator)?;
        let dummy_hash = {
            let h = hasher.clone();
            tokio::task::spawn_blocking(move || h.hash("firekeeper: no such password"))
                .await
                .map_err(Error::internal)??
        };
        let id_keys = KeyRing::open(
            ID_TOKEN_KEYS,
            KeyPolicy::id_tokens(config.key_rotation_secs),
            store.clone(),
            clock.clone(),
            master.clone(),
        )
        .await?;
        let cookie_keys = KeyRing::open(
            SESSION_COOKIE_KEYS,
            KeyPolicy::session_cookies(config.cookie_key_rotation_secs),
            store.clone(),
            clock.clone(),
            master.clone(),
        )
        .await?;
        Ok(Self {
            key_cache: crate::access::KeyCache::default(),
            hash_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            config,
            store,
            clock,
            hasher,
            id_keys,
            cookie_keys,
            dummy_hash,
            master,
            feed: tokio::sync::Notify::new(),
            settings_cache: sessions::SettingsCache::default(),
            hooks: None,
            mailer: None,
            sms_sender: None,
            sms_limits: Default::default(),
            idp_refusals: crate::ratelimit::RateLimiter::new(30, 10 * 60_000),
            oidc: Default::default(),
            email_limits: oob::EmailLimits::default(),
            metrics: crate::metrics::Metrics::default(),
            settings_write: tokio::sync::Mutex::new(()),
            settings_base: std::sync::Mutex::new(None),
        })
    }

    /// The HTTP client blocking functions are called with.
    pub fn with_hook_client(mut self, client: Arc<dyn crate::blocking::HookClient>) -> Self {
        self.hooks = Some(client);
        self
    }

    /// How out-of-band emails are delivered.
    pub fn with_mailer(mut self, mailer: Arc<dyn crate::email::Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// How sign-in and second-factor codes are texted.
    pub fn with_sms_sender(mut self, sender: Arc<dyn crate::sms::SmsSender>) -> Self {
        self.sms_sender = Some(sender);
        self
    }

    pub(crate) fn mailer(&self) -> Option<&Arc<dyn crate::email::Mailer>> {
        self.mailer.as_ref()
    }

    pub(crate) fn hook_client(&self) -> Option<&dyn crate::blocking::HookClient> {
        self.hooks.as_deref()
    }

    /// Follows the store's change feed (PostgreSQL: every instance's commits): the
    /// revocation feed wakes, settings and keys are re-read at once instead of after their
    /// cache times. `None` when the store has no feed.
    pub fn watch_store(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        use crate::store::Change;
        use tokio::sync::broadcast::error::RecvError;
        let mut changes = self.store.changes()?;
        let weak = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(c) => c,
                    Err(RecvError::Lagged(_)) => Change::Resync,
                    Err(RecvError::Closed) => return,
                };
                let Some(auth) = weak.upgrade() else { return };
                let (feed, settings, keys) = match &change {
                    Change::Events => (true, None, false),
                    Change::Settings(p) => (false, Some(Some(p.as_str())), false),
                    Change::Keys => (false, None, true),
                    // The database service follows these itself.
                    Change::Rtdb(_) => continue,
                    Change::Resync => (true, Some(None), true),
                };
                if feed {
                    auth.feed.notify_waiters();
                }
                if let Some(project) = settings {
                    auth.settings_cache.forget(project);
                }
                if keys {
                    if let Err(e) = auth.tick_keys().await {
                        tracing::warn!(error = %e, "reloading keys after a change failed");
                    }
                }
            }
        }))
    }

    /// The store's readiness (`/readyz`).
    pub async fn store_ready(&self) -> std::result::Result<(), crate::store::StoreError> {
        self.store.ready().await
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub(crate) fn master(&self) -> &MasterKey {
        &self.master
    }

    /// An audit event about `local_id`, stamped with the caller's address and agent.
    pub(crate) fn event(
        &self,
        ctx: &Ctx,
        local_id: &str,
        session_id: Option<&str>,
        kind: &str,
        detail: Map<String, Value>,
    ) -> crate::model::Event {
        crate::model::Event {
            id: 0,
            scope: ctx.scope(),
            local_id: local_id.to_owned(),
            session_id: session_id.map(str::to_owned),
            kind: kind.to_owned(),
            at: self.clock.now_ms(),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            detail,
        }
    }

    /// An audit event about a session, with its sign-in provider.
    pub(crate) fn session_event(
        &self,
        ctx: &Ctx,
        session: &crate::model::Session,
        kind: &str,
    ) -> crate::model::Event {
        let mut detail = Map::new();
        detail.insert("provider".into(), session.provider.clone().into());
        self.event(ctx, &session.local_id, Some(&session.id), kind, detail)
    }

    pub(crate) fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }

    /// Runs a read-modify-write again while it loses to concurrent writers.
    pub(crate) async fn retry_stale<T, F, Fut>(&self, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(Error::Aborted) if tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    pub fn id_keys(&self) -> &KeyRing {
        &self.id_keys
    }

    pub fn cookie_keys(&self) -> &KeyRing {
        &self.cookie_keys
    }

    /// Both key rings' periodic upkeep; one failing never holds up the other.
    pub async fn tick_keys(&self) -> Result<()> {
        let ids = self.id_keys.tick().await;
        let cookies = self.cookie_keys.tick().await;
        ids.and(cookies)
    }

    pub fn issuer(&self, project: &str) -> String {
        format!("{}{}", self.config.issuer_prefix, project)
    }

    /// A stable 12-digit project number derived from the id (clients echo it only).
    pub fn project_number(&self, project: &str) -> String {
        if self.config.mode == Mode::Emulator {
            return "12345".to_owned();
        }
        let h = crate::secrets::sha256(project.as_bytes());
        let n = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
        format!("{}", 100_000_000_000 + n % 900_000_000_000)
    }

    fn hash_view(&self, privileged: bool) -> HashView {
        if privileged || self.config.mode == Mode::Emulator {
            HashView::Full
        } else {
            HashView::Redacted
        }
    }

    /// Hashes on the blocking pool so argon2 never stalls the async workers.
    pub(crate) async fn hash_password(&self, password: &str) -> Result<String> {
        let _slot = self.hash_slots.acquire().await.map_err(Error::internal)?;
        let hasher = self.hasher.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(Error::internal)?
    }

    pub(crate) async fn verify_password(&self, password: &str, stored: &str) -> Result<bool> {
        let _slot = self.hash_slots.acquire().await.map_err(Error::internal)?;
        let hasher = self.hasher.clone();
        let (password, stored) = (password.to_owned(), stored.to_owned());
        tokio::task::spawn_blocking(move || hasher.verify(&password, &stored))
            .await
            .map_err(Error::internal)
    }

    pub(crate) async fn require_account(&self, scope: &Scope, local_id: &str) -> Result<Account> {
        self.store
            .get_account(scope, local_id)
            .await?
            .ok_or(Error::code("USER_NOT_FOUND"))
    }

    /// Whether unknown emails and wrong passwords share one error (email enumeration
    /// protection): on by default in production, off in emulator mode, as Firebase.
    pub(crate) async fn improved_email_privacy(&self, project: &str) -> Result<bool> {
        let config = self.project_settings(project).await?;
        let set = config
            .pointer("/emailPrivacyConfig/enableImprovedEmailPrivacy")
            .and_then(Value::as_bool);
        Ok(set.unwrap_or(self.config.mode == Mode::Production))
    }
}

/// Drops `null` members, so absent values are omitted rather than sent as null.
pub(crate) fn object(value: Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}
