//! The storage port. Implementations live in the `firekeeper-store` crate; every uniqueness
//! guarantee (email, phone, uid, federated id) is a database constraint, not a check here.

use async_trait::async_trait;

use crate::model::{Account, Scope, Session};

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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Accounts.
    /// Inserts the account and, in the same transaction, its first session.
    async fn create_account(
        &self,
        scope: &Scope,
        account: &Account,
        session: Option<&Session>,
    ) -> StoreResult<()>;
    /// Replaces the stored document if its version is still `account.version` (else
    /// `Stale`), and inserts `session` in the same transaction. `Conflict` on a taken email
    /// or phone. Leaves `lastLoginAt` and `lastRefreshAt` alone.
    async fn update_account(
        &self,
        scope: &Scope,
        account: &Account,
        session: Option<&Session>,
    ) -> StoreResult<()>;
    async fn set_last_login_at(&self, scope: &Scope, local_id: &str, at_ms: i64)
        -> StoreResult<()>;
    async fn get_account(&self, scope: &Scope, local_id: &str) -> StoreResult<Option<Account>>;
    async fn account_by_email(&self, scope: &Scope, email: &str) -> StoreResult<Option<Account>>;
    async fn account_by_phone(&self, scope: &Scope, phone: &str) -> StoreResult<Option<Account>>;
    async fn account_by_federated(
        &self,
        scope: &Scope,
        provider_id: &str,
        raw_id: &str,
    ) -> StoreResult<Option<Account>>;
    /// Deletes the account and marks its sessions revoked (`user_deleted`); false if it did
    /// not exist.
    async fn delete_account(&self, scope: &Scope, local_id: &str) -> StoreResult<bool>;
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
    /// Stores a new session; with `login_at`, also records the account's `lastLoginAt`, in
    /// the same transaction.
    async fn start_session(&self, session: &Session, login_at: Option<i64>) -> StoreResult<()>;
    /// The session of a refresh token together with its account (`None` if deleted), in
    /// one read: this is the refresh hot path.
    async fn refresh_context(&self, hash: &[u8])
        -> StoreResult<Option<(Session, Option<Account>)>>;
    /// Records a refresh: the session's last use and the account's `lastRefreshAt`.
    /// Returns once committed; concurrent calls may share one transaction.
    async fn record_refresh(&self, session: &Session, now_ms: i64) -> StoreResult<()>;

    // Signing keys.
    async fn signing_keys(&self, purpose: &str) -> StoreResult<Vec<StoredKey>>;
    /// A cheap fingerprint of a purpose's key rows, to notice changes by other processes.
    async fn signing_keys_version(&self, purpose: &str) -> StoreResult<String>;
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    async fn update_signing_key_times(
        &self,
        kid: &str,
        activates_at: i64,
        retired_at: Option<i64>,
    ) -> StoreResult<()>;
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;

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

    // Per-project settings as a JSON document.
    async fn project_config(&self, project: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn put_project_config(
        &self,
        project: &str,
        config: &serde_json::Value,
    ) -> StoreResult<()>;
}
