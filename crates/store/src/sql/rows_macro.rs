//! Row <-> domain conversions, for either backend's row type.

/// Defines the column lists and row decoders for rows of type `$row`.
macro_rules! impl_rows {
    ($row:ty) => {
        use sqlx::Row;

        use firekeeper_core::model::{Account, Event, OobCode, Scope, Session};
        use firekeeper_core::store::{AdminToken, ApiKey, ServiceAccount, StoreError, StoredKey};

        use crate::sql::backend;

        pub const ACCOUNT_COLUMNS: &str = "doc, last_login_at, last_refresh_at, version";

        pub fn account(row: &$row) -> Result<Account, StoreError> {
            let doc: String = row.try_get("doc").map_err(backend)?;
            let mut acc: Account = serde_json::from_str(&doc)
                .map_err(|e| StoreError::Backend(format!("corrupt account document: {e}")))?;
            acc.last_login_at = row.try_get("last_login_at").map_err(backend)?;
            acc.last_refresh_at = row.try_get("last_refresh_at").map_err(backend)?;
            acc.version = row.try_get("version").map_err(backend)?;
            Ok(acc)
        }

        pub fn doc(acc: &Account) -> Result<String, StoreError> {
            serde_json::to_string(acc).map_err(|e| StoreError::Backend(e.to_string()))
        }

        pub const SESSION_COLUMNS: &str = "id, project, tenant, local_id, refresh_hash, provider, \
             extra_claims, auth_time, created_at, last_used_at, ip, user_agent, revoked, rotated_at, successor";

        pub fn session(row: &$row) -> Result<Session, StoreError> {
            let tenant: String = row.try_get("tenant").map_err(backend)?;
            let claims: String = row.try_get("extra_claims").map_err(backend)?;
            Ok(Session {
                id: row.try_get("id").map_err(backend)?,
                scope: Scope {
                    project: row.try_get("project").map_err(backend)?,
                    tenant: (!tenant.is_empty()).then_some(tenant),
                },
                local_id: row.try_get("local_id").map_err(backend)?,
                refresh_hash: row.try_get("refresh_hash").map_err(backend)?,
                provider: row.try_get("provider").map_err(backend)?,
                extra_claims: serde_json::from_str(&claims).unwrap_or_default(),
                auth_time: row.try_get("auth_time").map_err(backend)?,
                created_at: row.try_get("created_at").map_err(backend)?,
                last_used_at: row.try_get("last_used_at").map_err(backend)?,
                ip: row.try_get("ip").map_err(backend)?,
                user_agent: row.try_get("user_agent").map_err(backend)?,
                revoked: row.try_get("revoked").map_err(backend)?,
                rotated_at: row.try_get("rotated_at").map_err(backend)?,
                successor: row.try_get("successor").map_err(backend)?,
            })
        }

        pub const OOB_COLUMNS: &str = "code_hash, project, tenant, created_at, expires_at, doc";

        pub fn oob_code(row: &$row) -> Result<OobCode, StoreError> {
            let tenant: String = row.try_get("tenant").map_err(backend)?;
            let doc: String = row.try_get("doc").map_err(backend)?;
            Ok(OobCode {
                code_hash: row.try_get("code_hash").map_err(backend)?,
                scope: Scope {
                    project: row.try_get("project").map_err(backend)?,
                    tenant: (!tenant.is_empty()).then_some(tenant),
                },
                created_at: row.try_get("created_at").map_err(backend)?,
                expires_at: row.try_get("expires_at").map_err(backend)?,
                action: serde_json::from_str(&doc)
                    .map_err(|e| StoreError::Backend(format!("corrupt code document: {e}")))?,
            })
        }

        pub fn stored_key(row: &$row) -> Result<StoredKey, StoreError> {
            Ok(StoredKey {
                kid: row.try_get("kid").map_err(backend)?,
                purpose: row.try_get("purpose").map_err(backend)?,
                private_key: row.try_get("private_key").map_err(backend)?,
                public_key: row.try_get("public_key").map_err(backend)?,
                cert_pem: row.try_get("cert_pem").map_err(backend)?,
                created_at: row.try_get("created_at").map_err(backend)?,
                activates_at: row.try_get("activates_at").map_err(backend)?,
                retired_at: row.try_get("retired_at").map_err(backend)?,
            })
        }

        pub fn api_key(row: &$row) -> Result<ApiKey, StoreError> {
            Ok(ApiKey {
                key: row.try_get("key").map_err(backend)?,
                project: row.try_get("project").map_err(backend)?,
                created_at: row.try_get("created_at").map_err(backend)?,
            })
        }

        pub fn admin_token(row: &$row) -> Result<AdminToken, StoreError> {
            Ok(AdminToken {
                id: row.try_get("id").map_err(backend)?,
                project: row.try_get("project").map_err(backend)?,
                token_hash: row.try_get("token_hash").map_err(backend)?,
                created_at: row.try_get("created_at").map_err(backend)?,
                revoked_at: row.try_get("revoked_at").map_err(backend)?,
            })
        }

        pub fn service_account(row: &$row) -> Result<ServiceAccount, StoreError> {
            Ok(ServiceAccount {
                project: row.try_get("project").map_err(backend)?,
                client_email: row.try_get("client_email").map_err(backend)?,
                private_key_id: row.try_get("private_key_id").map_err(backend)?,
                public_key: row.try_get("public_key").map_err(backend)?,
                created_at: row.try_get("created_at").map_err(backend)?,
            })
        }

        pub const EVENT_COLUMNS: &str =
            "id, project, tenant, local_id, session_id, kind, at, ip, user_agent, detail";

        pub fn event(row: &$row) -> Result<Event, StoreError> {
            let tenant: String = row.try_get("tenant").map_err(backend)?;
            let detail: String = row.try_get("detail").map_err(backend)?;
            Ok(Event {
                id: row.try_get("id").map_err(backend)?,
                scope: Scope {
                    project: row.try_get("project").map_err(backend)?,
                    tenant: (!tenant.is_empty()).then_some(tenant),
                },
                local_id: row.try_get("local_id").map_err(backend)?,
                session_id: row.try_get("session_id").map_err(backend)?,
                kind: row.try_get("kind").map_err(backend)?,
                at: row.try_get("at").map_err(backend)?,
                ip: row.try_get("ip").map_err(backend)?,
                user_agent: row.try_get("user_agent").map_err(backend)?,
                detail: serde_json::from_str(&detail).unwrap_or_default(),
            })
        }

    };
}

pub(crate) use impl_rows;
