//! The storage port. Implementations live in the `firekeeper-store` crate; every uniqueness
//! guarantee (email, phone, uid, federated id) is a database constraint, not a check here.

use async_trait::async_trait;

use crate::model::{Account, Event, OobCode, Scope, Session};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    LocalId,
    Email,
    Phone,
    Federated,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("unique constraint on {0:?}")]
    Conflict(UniqueField),
    /// The row to update is gone (deleted concurrently).
    #[error("not found")]
    NotFound,
    /// The row changed since it was read (a concurrent write won): read again and retry.
    #[error("stale write")]
    Stale,
    #[error("storage: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A stored signing key. `private_key` is sealed with the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub purpose: String,
    pub private_key: Vec<u8>,
    /// RSA public key, PKCS#1 DER, so publishing needs no decryption.
    pub public_key: Vec<u8>,
    pub cert_pem: String,
    pub created_at: i64,
    /// When the key starts signing (keys are published before they sign).
    pub activates_at: i64,
    /// When a newer key took over; the key stays published for a while after.
    pub retired_at: Option<i64>,
}

/// A session as an idToken-bearing call needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// The session exists, belongs to the account, and has not ended.
    pub live: bool,
    /// Where it signed in from.
    pub ip: Option<String>,
}

/// What a refresh needs, read in one go: the session, its account (`None` if deleted) and,
/// when the token presented was rotated out, when that happened.
#[derive(Debug, Clone)]
pub struct RefreshContext {
    pub session: Session,
    pub account: Option<Account>,
    pub superseded_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub project: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub id: String,
    /// `None`: every project.
    pub project: Option<String>,
    pub token_hash: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub project: String,
    pub client_email: String,
    pub private_key_id: String,
    /// RSA public key, PKCS#1 DER.
    pub public_key: Vec<u8>,
    pub created_at: i64,
}

/// One subtree replaced in a Realtime Database namespace: the rows at `path` and below it
/// make way for `rows` (path, JSON text), and when there are rows, so do leaf rows at its
/// ancestors. Paths are keys joined by `/`; the root is `""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtdbWrite {
    pub path: String,
    pub rows: Vec<(String, String)>,
}

/// A change made through the database, possibly by another instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// New audit events: the revocation feed has news.
    Events,
    /// A project's settings document changed.
    Settings(String),
    /// Signing keys changed.
    Keys,
    /// A Realtime Database namespace's data or rules changed.
    Rtdb(String),
    /// The change feed was interrupted: anything may have changed meanwhile.
    Resync,
}

/// How a redeemed code changes its account.
#[derive(Debug, Clone, Copy)]
pub enum AccountWrite<'a> {
    /// Nothing (the code is only used up).
    None,
    Create(&'a Account),
    Update(&'a Account),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Accounts.
    /// Inserts the account and, in the same transaction, its first session and `events`.
    async fn create_account(
        &self,
        scope: &Scope,
        account: &Account,
        session: Option<&Session>,
        events: &[Event],
    ) -> StoreResult<()>;
    /// Replaces the stored document if its version is still `account.version` (else
    /// `Stale`), and inserts `session` in the same transaction. `Conflict` on a taken email
    /// or phone. Leaves `lastLoginAt` and `lastRefreshAt` alone.
    async fn update_account(
        &self,
        scope: &Scope,
        account: &Account,
        session: Option<&Session>,
        events: &[Event],
    ) -> StoreResult<()>;
    async fn set_last_login_at(&self, scope: &Scope, local_id: &str, at_ms: i64)
        -> StoreResult<()>;
    async fn get_account(&self, scope: &Scope, local_id: &str) -> StoreResult<Option<Account>>;
    /// The account and the state of its session `session_id`, in one read: every
    /// idToken-bearing call asks both.
    async fn account_with_session(
        &self,
        scope: &Scope,
        local_id: &str,
        session_id: &str,
    ) -> StoreResult<Option<(Account, SessionState)>>;
    async fn account_by_email(&self, scope: &Scope, email: &str) -> StoreResult<Option<Account>>;
    async fn account_by_phone(&self, scope: &Scope, phone: &str) -> StoreResult<Option<Account>>;
    async fn account_by_federated(
        &self,
        scope: &Scope,
        provider_id: &str,
        raw_id: &str,
    ) -> StoreResult<Option<Account>>;
    /// Deletes the account, marks its sessions ended (`user_deleted`) and appends `events`;
    /// false (and nothing written) if it did not exist.
    async fn delete_account(
        &self,
        scope: &Scope,
        local_id: &str,
        events: &[Event],
    ) -> StoreResult<bool>;
    /// Accounts ordered by `local_id`, skipping `offset`; newest uid first if `descending`.
    async fn page_accounts(
        &self,
        scope: &Scope,
        offset: u64,
        limit: u32,
        descending: bool,
    ) -> StoreResult<Vec<Account>>;
    /// Accounts ordered by `local_id`, strictly after `after`.
    async fn list_accounts(
        &self,
        scope: &Scope,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Account>>;
    async fn count_accounts(&self, scope: &Scope) -> StoreResult<u64>;
    /// Deletes every account of a scope; their sessions are marked `user_deleted`.
    async fn delete_all_accounts(&self, scope: &Scope) -> StoreResult<()>;
    /// Deletes everything a project owns (accounts, sessions, settings), atomically.
    async fn wipe_project(&self, project: &str) -> StoreResult<()>;

    // Sessions.
    /// Stores a new session and `events`; with `login_at`, also records the account's
    /// `lastLoginAt`, all in one transaction.
    async fn start_session(
        &self,
        session: &Session,
        login_at: Option<i64>,
        events: &[Event],
    ) -> StoreResult<()>;
    async fn session(&self, id: &str) -> StoreResult<Option<Session>>;
    /// A user's sessions, newest first (ended ones included).
    async fn sessions_of(&self, scope: &Scope, local_id: &str) -> StoreResult<Vec<Session>>;
    /// Ends the named live sessions with `reason`; of `events`, those naming a session are
    /// appended only if that session ended now (the others always). Returns how many ended.
    async fn end_sessions(
        &self,
        ids: &[String],
        reason: &str,
        events: &[Event],
    ) -> StoreResult<u64>;
    /// The session of a refresh token together with its account (`None` if deleted), in
    /// one read: this is the refresh hot path.
    async fn refresh_context(&self, hash: &[u8]) -> StoreResult<Option<RefreshContext>>;
    /// Records a refresh: the session's last use, the account's `lastRefreshAt` and the
    /// audit `event` if given. Returns once committed; concurrent calls may share one transaction.
    async fn record_refresh(
        &self,
        session: &Session,
        now_ms: i64,
        event: Option<&Event>,
    ) -> StoreResult<()>;
    /// Replaces a session's refresh token: `old_hash` moves to the superseded list,
    /// `new_hash` becomes current with its sealed copy. False if `old_hash` was no longer
    /// current (a parallel refresh rotated first); nothing is written then.
    async fn rotate_refresh_token(
        &self,
        session: &Session,
        old_hash: &[u8],
        new_hash: &[u8],
        sealed_new: &[u8],
        now_ms: i64,
        event: &Event,
    ) -> StoreResult<bool>;

    // Audit log and revocation feed.
    async fn append_events(&self, events: &[Event]) -> StoreResult<()>;
    /// The newest event id of a project (0 when none): where an idle feed reader resumes.
    async fn head_event_id(&self, project: &str) -> StoreResult<i64>;
    /// A user's events after `after_id`, oldest first.
    async fn account_events(
        &self,
        scope: &Scope,
        local_id: &str,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>>;
    /// A project's events of the given kinds after `after_id` and no older than
    /// `since_ms`, oldest first.
    async fn project_events(
        &self,
        project: &str,
        kinds: &[&str],
        after_id: i64,
        since_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>>;
    /// Deletes events older than `before_ms`; returns how many.
    async fn prune_events(&self, before_ms: i64) -> StoreResult<u64>;
    /// Deletes superseded refresh-token hashes older than `before_ms` (a replay of one is
    /// then just an unknown token); returns how many.
    async fn prune_superseded(&self, before_ms: i64) -> StoreResult<u64>;

    // Signing keys.
    async fn signing_keys(&self, purpose: &str) -> StoreResult<Vec<StoredKey>>;
    /// A cheap fingerprint of a purpose's key rows, to notice changes by other processes.
    async fn signing_keys_version(&self, purpose: &str) -> StoreResult<String>;
    /// Adds `key` unless another process added one first: only when no key of its purpose
    /// activates after `newest_seen`, the latest activation among the keys the caller read
    /// (`None`: it read none). Instances reconcile keys without a leader; this check, made
    /// atomically, keeps them from queueing one key each. Returns whether it was added.
    async fn insert_signing_key(
        &self,
        key: &StoredKey,
        newest_seen: Option<i64>,
    ) -> StoreResult<bool>;
    async fn update_signing_key_times(
        &self,
        kid: &str,
        activates_at: i64,
        retired_at: Option<i64>,
    ) -> StoreResult<()>;
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;

    // Realtime Database.
    /// A namespace's version (0 before its first write). Read it before the rows: rows
    /// newer than the version only make the next write `Stale`.
    async fn rtdb_version(&self, ns: &str) -> StoreResult<i64>;
    /// Every row of a namespace, in path order.
    async fn rtdb_nodes(&self, ns: &str) -> StoreResult<Vec<(String, String)>>;
    /// Applies `writes` in order, in one transaction, if the namespace is still at
    /// `version` (else `Stale`: another process wrote it first). Returns the new version.
    async fn rtdb_write(&self, ns: &str, version: i64, writes: &[RtdbWrite]) -> StoreResult<i64>;
    async fn rtdb_rules(&self, ns: &str) -> StoreResult<Option<String>>;
    async fn put_rtdb_rules(&self, ns: &str, source: &str) -> StoreResult<()>;

    // Credentials.
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn api_key(&self, key: &str) -> StoreResult<Option<ApiKey>>;
    async fn api_keys(&self, project: Option<&str>) -> StoreResult<Vec<ApiKey>>;
    async fn insert_admin_token(&self, token: &AdminToken) -> StoreResult<()>;
    async fn admin_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<AdminToken>>;
    async fn admin_tokens(&self) -> StoreResult<Vec<AdminToken>>;
    async fn revoke_admin_token(&self, id: &str, now_ms: i64) -> StoreResult<bool>;
    async fn insert_service_account(&self, sa: &ServiceAccount) -> StoreResult<()>;
    async fn service_account(&self, client_email: &str) -> StoreResult<Option<ServiceAccount>>;
    async fn service_accounts(&self, project: Option<&str>) -> StoreResult<Vec<ServiceAccount>>;
    async fn delete_service_account(&self, client_email: &str) -> StoreResult<bool>;

    // Out-of-band codes.
    async fn insert_oob_code(&self, code: &OobCode) -> StoreResult<()>;
    async fn oob_code(&self, code_hash: &[u8]) -> StoreResult<Option<OobCode>>;
    /// A scope's pending codes, oldest first (the emulator's listing).
    async fn oob_codes(&self, scope: &Scope) -> StoreResult<Vec<OobCode>>;
    /// Uses up a code and, in the same transaction, writes what it does: the account
    /// (created, or updated under its version check as [`Store::update_account`]), its new
    /// session (an updated account's `lastLoginAt` becomes the session's start) and
    /// `events`. False, with nothing written, if the code was already used.
    async fn redeem_oob_code(
        &self,
        code_hash: &[u8],
        scope: &Scope,
        account: AccountWrite<'_>,
        session: Option<&Session>,
        events: &[Event],
    ) -> StoreResult<bool>;
    /// Deletes codes that expired before `before_ms`; returns how many.
    async fn prune_oob_codes(&self, before_ms: i64) -> StoreResult<u64>;

    // Per-project settings as a JSON document.
    async fn project_config(&self, project: &str) -> StoreResult<Option<serde_json::Value>>;
    /// Stores the document. With `expected`, only if the stored one is still that (`{}`
    /// for none): otherwise `Stale`, so instances sharing the database never overwrite
    /// each other's changes.
    async fn put_project_config(
        &self,
        project: &str,
        expected: Option<&serde_json::Value>,
        config: &serde_json::Value,
    ) -> StoreResult<()>;

    /// Waits for queued writes and closes the connections (at shutdown).
    async fn close(&self) {}

    /// Changes committed by any instance sharing the database, as they commit; `None` when
    /// the backend has no such feed (SQLite: one process writes, others poll).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    /// Whether the database answers and its schema is the one this build expects
    /// (`/readyz`).
    async fn ready(&self) -> StoreResult<()> {
        Ok(())
    }
}
