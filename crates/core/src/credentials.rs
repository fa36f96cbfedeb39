//! Operator credentials: API keys (end-user calls), admin tokens (admin calls) and
//! service accounts (custom-token signing). Secrets are shown once and stored hashed or,
//! for service accounts, not at all: only the public key is kept.

use firekeeper_tokens::SigningKey;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::secrets::{hex, new_secret, random_alnum, random_bytes, sha256};
use crate::store::{AdminToken, ApiKey, ServiceAccount, Store};

/// A new API key for `project`, in Google's shape (`AIza` + 35 characters).
pub async fn create_api_key(store: &dyn Store, project: &str, now_ms: i64) -> Result<String> {
    let key = format!("AIza{}", random_alnum(35)?);
    store
        .insert_api_key(&ApiKey {
            key: key.clone(),
            project: project.to_owned(),
            created_at: now_ms,
        })
        .await?;
    Ok(key)
}

/// A new admin token; `project: None` reaches every project. Returns (id, secret).
pub async fn create_admin_token(
    store: &dyn Store,
    project: Option<&str>,
    now_ms: i64,
) -> Result<(String, String)> {
    let id = random_alnum(10)?.to_lowercase();
    let secret = format!("fkadm_{id}_{}", new_secret()?);
    store
        .insert_admin_token(&AdminToken {
            id: id.clone(),
            project: project.map(str::to_owned),
            token_hash: sha256(secret.as_bytes()),
            created_at: now_ms,
            revoked_at: None,
        })
        .await?;
    Ok((id, secret))
}

/// A new service account: returns the key file in Google's format. The private key is in
/// the file only.
pub async fn create_service_account(
    store: &dyn Store,
    project: &str,
    now_ms: i64,
) -> Result<Value> {
    let key = tokio::task::spawn_blocking(SigningKey::generate)
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    let private_key_id = hex(&random_bytes::<20>()?);
    let name = format!("firekeeper-{}", random_alnum(6)?.to_lowercase());
    let client_email = format!("{name}@{project}.iam.gserviceaccount.com");
    let client_id: String = random_bytes::<21>()?
        .iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    store
        .insert_service_account(&ServiceAccount {
            project: project.to_owned(),
            client_email: client_email.clone(),
            private_key_id: private_key_id.clone(),
            public_key: key.public_key().rsa_der,
            created_at: now_ms,
        })
        .await?;
    Ok(json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": private_key_id,
        "private_key": key.pkcs8_pem(),
        "client_email": client_email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!(
            "https://www.googleapis.com/robot/v1/metadata/x509/{}",
            client_email.replace('@', "%40")
        ),
        "universe_domain": "googleapis.com",
    }))
}
