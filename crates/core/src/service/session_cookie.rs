//! Session cookies (§4.4): an ID token exchanged, by a trusted back end, for a longer-lived
//! JWT with the same claims, a cookie issuer and keys of its own.

use serde_json::{json, Map, Value};

use super::{Auth, CreateSessionCookieRequest, Ctx};
use crate::error::{Error, Result};
use crate::model::event_kind;

/// Five minutes to two weeks, as Firebase.
pub const SESSION_COOKIE_MIN_SECS: i64 = 300;
pub const SESSION_COOKIE_MAX_SECS: i64 = 14 * 24 * 3600;

impl Auth {
    pub fn cookie_issuer(&self, project: &str) -> String {
        format!("{}{}", self.config().cookie_issuer_prefix, project)
    }

    /// `projects/{p}:createSessionCookie`. The ID token passes every check an idToken call
    /// makes (signature, expiry, revocation, disabled user, ended session) before anything
    /// is signed.
    pub async fn create_session_cookie(
        &self,
        ctx: &Ctx,
        req: CreateSessionCookieRequest,
    ) -> Result<Value> {
        if !ctx.access.privileged {
            return Err(Error::code("INSUFFICIENT_PERMISSION"));
        }
        let id_token = req
            .id_token
            .filter(|t| !t.is_empty())
            .ok_or(Error::code("MISSING_ID_TOKEN"))?;
        // Absent or 0 means the longest, as Firebase.
        let duration = match req.valid_duration {
            None | Some(0) => SESSION_COOKIE_MAX_SECS,
            Some(d) => d,
        };
        if !(SESSION_COOKIE_MIN_SECS..=SESSION_COOKIE_MAX_SECS).contains(&duration) {
            return Err(Error::code("INVALID_DURATION"));
        }
        // In emulator mode, as the reference emulator, the issuer is not checked, so an
        // unsigned cookie passes as an ID token there; production checks both.
        let verified = self.verify_id_token(ctx, Some(&id_token)).await?;
        let now = self.clock().now_secs();
        let mut claims: Map<String, Value> = verified.claims.clone();
        // Replaced in place, so the claims keep the ID token's order.
        claims.insert("iss".into(), self.cookie_issuer(&ctx.access.project).into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + duration).into());
        let cookie = self.encode(self.cookie_keys(), &claims)?;

        let mut detail = Map::new();
        detail.insert("validDuration".into(), duration.into());
        if let Some(p) = verified.sign_in_provider() {
            detail.insert("provider".into(), p.into());
        }
        let event = self.event(
            ctx,
            &verified.account.local_id,
            verified.session_id(),
            event_kind::SESSION_COOKIE_CREATED,
            detail,
        );
        self.store().append_events(&[event]).await?;
        Ok(json!({ "sessionCookie": cookie }))
    }
}
