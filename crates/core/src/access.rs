//! Who is calling: an end user with an API key, or an admin with a Bearer credential
//! (§1.3–1.4 of the wire contract).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::secrets::sha256;
use crate::service::{Auth, Mode};

/// Credentials as they arrived on a request.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    pub api_key: Option<&'a str>,
    /// The token after `Bearer ` (other schemes are ignored as if absent).
    pub bearer: Option<&'a str>,
}

/// What an operation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    /// API key or admin credential (end-user operations).
    KeyOrAdmin,
    /// Admin credential only.
    AdminOnly,
}

/// The resolved caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub project: String,
    pub privileged: bool,
}

impl Auth {
    /// Resolves the caller and its project. `target_project` is the project named by the
    /// path or by `targetProjectId` in the body.
    pub async fn authorize(
        &self,
        creds: Credentials<'_>,
        target_project: Option<&str>,
        accepts: Accepts,
    ) -> Result<Access> {
        if let Some(bearer) = creds.bearer {
            let token_project = self.admin_project(bearer).await?;
            let project = match (target_project, token_project) {
                (Some(t), Some(own)) if t != own => return Err(Error::PermissionDenied),
                (Some(t), _) => t.to_owned(),
                (None, Some(own)) => own,
                (None, None) => self.config().default_project.clone(),
            };
            return Ok(Access {
                project,
                privileged: true,
            });
        }
        if accepts == Accepts::AdminOnly {
            return Err(Error::MissingCredential);
        }
        let key = creds
            .api_key
            .filter(|k| !k.is_empty())
            .ok_or(Error::MissingApiKey)?;
        let project = match self.config().mode {
            Mode::Emulator => self.config().default_project.clone(),
            Mode::Production => self.api_key_project(key).await?,
        };
        if target_project.is_some() {
            return Err(Error::detail(
                "INSUFFICIENT_PERMISSION",
                "Only authenticated requests can specify target_project_id.",
            ));
        }
        Ok(Access {
            project,
            privileged: false,
        })
    }

    /// The project an admin credential is limited to (`None`: all projects).
    async fn admin_project(&self, bearer: &str) -> Result<Option<String>> {
        if self.config().mode == Mode::Emulator {
            // The Admin SDKs send `owner` in emulator mode; the emulator also takes any
            // Google access token (`ya29.` prefix) as an admin.
            if bearer.eq_ignore_ascii_case("owner") || bearer.starts_with("ya29.") {
                return Ok(None);
            }
            return Err(Error::InvalidCredential);
        }
        let token = self
            .store()
            .admin_token_by_hash(&sha256(bearer.as_bytes()))
            .await?
            .filter(|t| t.revoked_at.is_none())
            .ok_or(Error::InvalidCredential)?;
        Ok(token.project)
    }

    /// Known keys are cached for a few seconds: every client call carries one, and a
    /// database read each time would cost more than the rest of a lookup.
    async fn api_key_project(&self, key: &str) -> Result<String> {
        // No key has one; PostgreSQL could not even compare it.
        if key.contains('\0') {
            return Err(Error::InvalidApiKey);
        }
        let now = self.clock().now_ms();
        if let Some(project) = self.key_cache.get(key, now) {
            return Ok(project);
        }
        let project = self
            .store()
            .api_key(key)
            .await?
            .map(|k| k.project)
            .ok_or(Error::InvalidApiKey)?;
        self.key_cache.put(key, &project, now);
        Ok(project)
    }
}

/// API key → project, each entry trusted for [`KeyCache::TTL_MS`].
#[derive(Debug, Default)]
pub(crate) struct KeyCache(Mutex<HashMap<String, (String, i64)>>);

impl KeyCache {
    const TTL_MS: i64 = 5_000;
    /// Beyond this many keys the cache starts over rather than grow without bound.
    const MAX_ENTRIES: usize = 10_000;

    fn get(&self, key: &str, now_ms: i64) -> Option<String> {
        let map = self.0.lock().ok()?;
        map.get(key)
            .filter(|(_, expires)| *expires > now_ms)
            .map(|(project, _)| project.clone())
    }

    fn put(&self, key: &str, project: &str, now_ms: i64) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= Self::MAX_ENTRIES {
                map.clear();
            }
            map.insert(key.to_owned(), (project.to_owned(), now_ms + Self::TTL_MS));
        }
    }
}
