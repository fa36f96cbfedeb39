//! Revocation state built from the server's feed: per user the latest `validSince`, the
//! disabled flag and the deletion time; per session whether it ended.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;

use crate::{Claims, VerifyError};

#[derive(Debug, Default, Clone, Copy)]
struct UserState {
    /// Unix seconds; tokens issued before it are revoked.
    valid_since: i64,
    /// When the latest revocation happened (ms, server clock): a backdated `validSince`
    /// must stay as long as the event itself.
    revoked_at: i64,
    disabled: bool,
    /// Unix ms; tokens issued before it name a deleted user.
    deleted_at: Option<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct RevocationState {
    /// (tenant or "", uid) -> state.
    users: HashMap<(String, String), UserState>,
    /// Ended sessions and when they ended (ms).
    ended: HashMap<String, i64>,
    pub cursor: i64,
    pub synced_at: Option<Instant>,
    /// The snapshot holds every event from here on (ms, server clock): older tokens must
    /// be checked with the server.
    pub floor_ms: i64,
}

fn key(tenant: Option<&str>, uid: &str) -> (String, String) {
    (tenant.unwrap_or("").to_owned(), uid.to_owned())
}

impl RevocationState {
    /// Applies feed events in order.
    pub fn apply(&mut self, events: &[Value]) {
        for e in events {
            let uid = e["localId"].as_str().unwrap_or_default();
            let at = e["at"].as_i64().unwrap_or(0);
            let k = key(e["tenantId"].as_str(), uid);
            match e["kind"].as_str().unwrap_or_default() {
                "tokens_revoked" => {
                    let v = e["detail"]["validSince"].as_i64().unwrap_or(at / 1000);
                    let u = self.users.entry(k).or_default();
                    u.valid_since = u.valid_since.max(v);
                    u.revoked_at = u.revoked_at.max(at);
                }
                "session_ended" | "refresh_token_reuse_detected" => {
                    if let Some(sid) = e["sessionId"].as_str() {
                        self.ended.insert(sid.to_owned(), at);
                    }
                }
                "disabled" => self.users.entry(k).or_default().disabled = true,
                "enabled" => self.users.entry(k).or_default().disabled = false,
                "deleted" => {
                    let u = self.users.entry(k).or_default();
                    u.deleted_at = Some(at);
                    u.disabled = false;
                }
                _ => {}
            }
            if let Some(id) = e["id"].as_i64() {
                self.cursor = self.cursor.max(id);
            }
        }
    }

    /// Forgets events from before `before_ms` (server clock) and moves the snapshot's
    /// floor there: tokens older than the floor are checked with the server instead.
    /// Disabled users stay until enabled.
    pub fn prune(&mut self, before_ms: i64) {
        self.floor_ms = self.floor_ms.max(before_ms);
        self.ended.retain(|_, at| *at >= before_ms);
        self.users.retain(|_, u| {
            u.disabled || u.revoked_at >= before_ms || u.deleted_at.is_some_and(|d| d >= before_ms)
        });
    }

    /// Whether the snapshot holds every event since the token was minted (with `margin_ms`
    /// to spare). Earlier events cannot touch it: the server applied them before minting.
    pub fn covers(&self, claims: &Claims, margin_ms: i64) -> bool {
        claims.issued_at() * 1000 >= self.floor_ms + margin_ms
    }

    /// The memory-only revocation check.
    pub fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        let iat = claims.issued_at();
        if let Some(u) = self.users.get(&key(claims.tenant(), claims.uid())) {
            if u.deleted_at.is_some_and(|d| iat * 1000 <= d) {
                return Err(VerifyError::UserNotFound);
            }
            if u.disabled {
                return Err(VerifyError::Disabled);
            }
            if claims.revocation_time() < u.valid_since {
                return Err(VerifyError::Revoked);
            }
        }
        if claims
            .session_id()
            .is_some_and(|s| self.ended.contains_key(s))
        {
            return Err(VerifyError::Revoked);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        Claims(v.as_object().unwrap().clone())
    }

    #[test]
    fn events_decide_checks() {
        let mut s = RevocationState::default();
        let c = claims(json!({"sub": "u", "iat": 100, "sid": "s1"}));
        assert!(s.check(&c).is_ok());
        s.apply(&[json!({"id": 1, "localId": "u", "kind": "tokens_revoked", "at": 101_000, "detail": {"validSince": 101}})]);
        assert_eq!(s.check(&c), Err(VerifyError::Revoked));
        assert!(s.check(&claims(json!({"sub": "u", "iat": 101}))).is_ok());
        // A token minted after the revocation from an older sign-in is revoked too.
        assert_eq!(
            s.check(&claims(json!({"sub": "u", "iat": 101, "auth_time": 99}))),
            Err(VerifyError::Revoked)
        );
        s.apply(&[json!({"id": 2, "localId": "u", "kind": "disabled", "at": 1})]);
        assert_eq!(
            s.check(&claims(json!({"sub": "u", "iat": 200}))),
            Err(VerifyError::Disabled)
        );
        s.apply(&[json!({"id": 3, "localId": "u", "kind": "enabled", "at": 1})]);
        s.apply(&[
            json!({"id": 4, "localId": "v", "kind": "session_ended", "sessionId": "s9", "at": 5}),
        ]);
        assert_eq!(
            s.check(&claims(json!({"sub": "v", "iat": 1, "sid": "s9"}))),
            Err(VerifyError::Revoked)
        );
        s.apply(&[json!({"id": 5, "localId": "w", "kind": "deleted", "at": 300_000})]);
        assert_eq!(
            s.check(&claims(json!({"sub": "w", "iat": 299}))),
            Err(VerifyError::UserNotFound)
        );
        assert!(
            s.check(&claims(json!({"sub": "w", "iat": 301}))).is_ok(),
            "a re-created uid"
        );
        assert_eq!(s.cursor, 5);
        // A backdated validSince stays as long as its event does.
        s.apply(&[json!({"id": 6, "localId": "b", "kind": "tokens_revoked", "at": 900_000, "detail": {"validSince": 10}})]);
        s.prune(800_000);
        assert_eq!(
            s.check(&claims(json!({"sub": "b", "iat": 850, "auth_time": 5}))),
            Err(VerifyError::Revoked)
        );
        assert!(!s.covers(&claims(json!({"sub": "b", "iat": 799})), 0));
        assert!(s.covers(&claims(json!({"sub": "b", "iat": 800})), 0));
        // Tenants are separate namespaces.
        assert!(s
            .check(&claims(
                json!({"sub": "u", "iat": 100, "firebase": {"tenant": "t"}})
            ))
            .is_ok());
    }
}
