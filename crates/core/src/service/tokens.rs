//! ID tokens, sign-in sessions and refresh (§4.1–4.3).

use serde_json::{json, Map, Value};

use super::{object, Auth, Ctx, IpBinding, Mode, ID_TOKEN_LIFETIME_SECS};
use crate::error::{Error, Result};
use crate::keyring::KeyRing;
use crate::model::{ended, event_kind, Account, Scope, Session};
use crate::secrets::{new_secret, random_alnum, sha256};
use crate::service::RefreshRequest;
use crate::store::{RefreshContext, SessionState};

/// What a sign-in hands back to the client.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub id_token: String,
    pub refresh_token: String,
}

impl IssuedTokens {
    /// Adds `idToken`, `refreshToken`, `expiresIn` to a response object.
    pub fn put_into(&self, body: &mut Value) {
        if let Value::Object(m) = body {
            m.insert("idToken".into(), self.id_token.clone().into());
            m.insert("refreshToken".into(), self.refresh_token.clone().into());
            m.insert(
                "expiresIn".into(),
                ID_TOKEN_LIFETIME_SECS.to_string().into(),
            );
        }
    }
}

/// A checked ID token and the account it names.
#[derive(Debug, Clone)]
pub struct VerifiedIdToken {
    pub claims: Map<String, Value>,
    pub account: Account,
}

/// Minimum spacing of `refresh` audit events for one session.
const REFRESH_AUDIT_EVERY_MS: i64 = 60_000;

/// Claims the server sets on every ID token; custom and extra claims never override them.
const SERVER_CLAIMS: &[&str] = &[
    "sid",
    "email",
    "email_verified",
    "phone_number",
    "provider_id",
    "auth_time",
    "user_id",
    "firebase",
    "iat",
    "exp",
    "aud",
    "iss",
    "sub",
];

/// The sign-in address, when the project's session policy asks for it.
pub const SIGN_IN_IP_CLAIM: &str = "signInIpAddress";
/// `sameAddress` when tokens may be used only from `signInIpAddress`.
pub const IP_BINDING_CLAIM: &str = "ipBinding";

/// A token's own claims: the server's, the profile's `name` and `picture`, and the
/// session's sign-in address (each new session sets its own).
fn is_standard_claim(name: &str) -> bool {
    name == "name"
        || name == "picture"
        || name == SIGN_IN_IP_CLAIM
        || name == IP_BINDING_CLAIM
        || SERVER_CLAIMS.contains(&name)
}

impl VerifiedIdToken {
    /// The sign-in extras (custom-token `claims`) this token carries, so a session that
    /// replaces it keeps them.
    pub fn extra_claims(&self) -> Map<String, Value> {
        let custom = self.account.custom_claims();
        self.claims
            .iter()
            .filter(|(k, _)| !is_standard_claim(k) && !custom.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The sign-in session this token belongs to (Firekeeper's `sid` claim).
    pub fn session_id(&self) -> Option<&str> {
        self.claims.get("sid").and_then(Value::as_str)
    }

    pub fn sign_in_provider(&self) -> Option<&str> {
        self.claims
            .get("firebase")
            .and_then(|f| f.get("sign_in_provider"))
            .and_then(Value::as_str)
    }
}

fn identities(acc: &Account) -> Map<String, Value> {
    let mut ids = Map::new();
    if let Some(email) = &acc.email {
        ids.insert("email".into(), json!([email]));
    }
    if let Some(phone) = &acc.phone_number {
        ids.insert("phone".into(), json!([phone]));
    }
    for p in &acc.providers {
        let entry = ids
            .entry(p.provider_id.clone())
            .or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.push(p.raw_id.clone().into());
        }
    }
    ids
}

impl Auth {
    /// The claims of an ID token, in the emulator's order so custom and extra claims can
    /// never override reserved ones.
    fn id_token_claims(
        &self,
        scope: &Scope,
        acc: &Account,
        session: &Session,
        now_s: i64,
    ) -> Map<String, Value> {
        let mut c = Map::new();
        if let Some(n) = &acc.display_name {
            c.insert("name".into(), n.clone().into());
        }
        if let Some(p) = &acc.photo_url {
            c.insert("picture".into(), p.clone().into());
        }
        c.extend(acc.custom_claims());
        c.extend(session.extra_claims.clone());
        for reserved in SERVER_CLAIMS {
            c.shift_remove(*reserved);
        }
        if let Some(e) = &acc.email {
            c.insert("email".into(), e.clone().into());
            c.insert("email_verified".into(), acc.email_verified.into());
        }
        if let Some(p) = &acc.phone_number {
            c.insert("phone_number".into(), p.clone().into());
        }
        if session.provider == "anonymous" {
            c.insert("provider_id".into(), "anonymous".into());
        }
        c.insert("auth_time".into(), session.auth_time.into());
        c.insert("user_id".into(), acc.local_id.clone().into());
        let mut firebase = Map::new();
        firebase.insert("identities".into(), Value::Object(identities(acc)));
        firebase.insert("sign_in_provider".into(), session.provider.clone().into());
        if let Some(t) = &scope.tenant {
            firebase.insert("tenant".into(), t.clone().into());
        }
        // The session's second factor, kept with its extra claims.
        if let Some(Value::Object(f)) = session.extra_claims.get(super::mfa::SECOND_FACTOR_KEY) {
            for k in ["sign_in_second_factor", "second_factor_identifier"] {
                if let Some(v) = f.get(k) {
                    firebase.insert(k.into(), v.clone());
                }
            }
        }
        c.insert("firebase".into(), Value::Object(firebase));
        // The sign-in session (OpenID's session-id claim), so a back end can tell devices
        // apart and a revoked session's tokens can be refused.
        c.insert("sid".into(), session.id.clone().into());
        c.insert("iat".into(), now_s.into());
        c.insert("exp".into(), (now_s + ID_TOKEN_LIFETIME_SECS).into());
        c.insert("aud".into(), scope.project.clone().into());
        c.insert("iss".into(), self.issuer(&scope.project).into());
        c.insert("sub".into(), acc.local_id.clone().into());
        c
    }

    /// Signs with `ring`'s active key; unsigned in emulator mode, as the Admin SDKs expect.
    pub(crate) fn encode(&self, ring: &KeyRing, claims: &Map<String, Value>) -> Result<String> {
        match self.config().mode {
            Mode::Emulator => Ok(firekeeper_tokens::jws::encode_unsigned(claims)),
            Mode::Production => {
                let keys = ring.current();
                firekeeper_tokens::jws::sign_rs256(&keys.active, claims).map_err(Error::internal)
            }
        }
    }

    pub(crate) fn mint_id_token(
        &self,
        scope: &Scope,
        acc: &Account,
        session: &Session,
    ) -> Result<String> {
        let now_s = self.clock().now_secs();
        self.encode(
            self.id_keys(),
            &self.id_token_claims(scope, acc, session, now_s),
        )
    }

    /// The extra claims a session that replaces the token's own keeps: the stored
    /// session's (custom-token `claims`, blocking `sessionClaims`), never re-read from the
    /// token, where a custom claim removed since would pass for an extra one.
    pub(crate) async fn carried_claims(&self, v: &VerifiedIdToken) -> Result<Map<String, Value>> {
        let Some(sid) = v.session_id() else {
            return Ok(v.extra_claims());
        };
        let mut claims = self
            .store()
            .session(sid)
            .await?
            .map(|s| s.extra_claims)
            .unwrap_or_default();
        // Recomputed for the new session from its own address and the policy.
        claims.remove(SIGN_IN_IP_CLAIM);
        claims.remove(IP_BINDING_CLAIM);
        Ok(claims)
    }

    /// A new sign-in session (not yet stored) and its refresh token.
    pub(crate) async fn new_session(
        &self,
        ctx: &Ctx,
        acc: &Account,
        provider: &str,
        mut extra_claims: Map<String, Value>,
    ) -> Result<(Session, String)> {
        let policy = self.session_policy(&ctx.access.project).await?;
        policy.admits_sign_in(ctx)?;
        // The binding travels in the tokens, so back ends can enforce it without asking.
        if policy.ip_claim() {
            // The server's record of the address wins over a claim of that name carried in.
            extra_claims.remove(SIGN_IN_IP_CLAIM);
            if let Some(ip) = &ctx.ip {
                extra_claims.insert(SIGN_IN_IP_CLAIM.into(), ip.clone().into());
            }
        }
        if policy.ip_binding == IpBinding::SameAddress {
            extra_claims.insert(IP_BINDING_CLAIM.into(), "sameAddress".into());
        }
        let now = self.clock().now_ms();
        let refresh_token = new_secret()?;
        let session = Session {
            id: random_alnum(20)?,
            scope: ctx.scope(),
            local_id: acc.local_id.clone(),
            refresh_hash: sha256(refresh_token.as_bytes()),
            provider: provider.to_owned(),
            extra_claims,
            auth_time: now.div_euclid(1000),
            created_at: now,
            last_used_at: now,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            revoked: None,
            rotated_at: None,
            successor: None,
        };
        Ok((session, refresh_token))
    }

    /// The tokens of a session that has been stored.
    pub(crate) fn issue(
        &self,
        acc: &Account,
        session: &Session,
        refresh_token: String,
    ) -> Result<IssuedTokens> {
        Ok(IssuedTokens {
            id_token: self.mint_id_token(&session.scope, acc, session)?,
            refresh_token,
        })
    }

    /// Signs in to an existing account: stores a new session, records the sign-in time,
    /// and mints the session's first ID token.
    pub(crate) async fn sign_in_session(
        &self,
        ctx: &Ctx,
        acc: &Account,
        provider: &str,
        extra_claims: Map<String, Value>,
    ) -> Result<IssuedTokens> {
        let (session, refresh_token) = self.new_session(ctx, acc, provider, extra_claims).await?;
        let event = self.session_event(ctx, &session, event_kind::SIGN_IN);
        self.store()
            .start_session(&session, Some(session.created_at), &[event])
            .await?;
        self.enforce_session_cap(ctx, &acc.local_id).await;
        let mut acc = acc.clone();
        acc.last_login_at = Some(session.created_at);
        self.issue(&acc, &session, refresh_token)
    }

    /// `POST /v1/token` (grant_type=refresh_token).
    pub async fn refresh(&self, ctx: &Ctx, req: RefreshRequest) -> Result<Value> {
        let grant = req.grant_type.ok_or(Error::code("MISSING_GRANT_TYPE"))?;
        if grant != "refresh_token" {
            return Err(Error::code("INVALID_GRANT_TYPE"));
        }
        let token = req
            .refresh_token
            .filter(|t| !t.is_empty())
            .ok_or(Error::code("MISSING_REFRESH_TOKEN"))?;
        let hash = sha256(token.as_bytes());
        // Two passes at most: a parallel refresh may rotate the token between our read and
        // our write, and the second read then sees it as just superseded.
        for _ in 0..2 {
            let found = self
                .store()
                .refresh_context(&hash)
                .await?
                .ok_or(Error::code("INVALID_REFRESH_TOKEN"))?;
            if let Some(answer) = self.refresh_once(ctx, &token, &hash, found).await? {
                return Ok(answer);
            }
        }
        Err(Error::Aborted)
    }

    /// One refresh attempt; `None` when a parallel rotation won and it must be re-read.
    async fn refresh_once(
        &self,
        ctx: &Ctx,
        token: &str,
        hash: &[u8],
        found: RefreshContext,
    ) -> Result<Option<Value>> {
        let RefreshContext {
            session,
            account,
            superseded_at,
        } = found;
        if session.scope.project != ctx.access.project {
            return Err(Error::code("PROJECT_NUMBER_MISMATCH"));
        }
        // A tenant switched off ends its users' refreshes too (the request names no tenant).
        self.check_tenant_enabled(&session.scope).await?;
        if let Some(t) = &ctx.tenant {
            if session.scope.tenant.as_ref() != Some(t) {
                return Err(Error::code("TENANT_ID_MISMATCH"));
            }
        }
        match session.revoked.as_deref() {
            Some(ended::USER_DELETED) => return Err(Error::code("USER_NOT_FOUND")),
            // An ended session signs its device out, as a revocation does in Firebase.
            Some(_) => return Err(Error::code("TOKEN_EXPIRED")),
            None => {}
        }
        let acc = account.ok_or(Error::code("USER_NOT_FOUND"))?;
        if acc.disabled {
            return Err(Error::code("USER_DISABLED"));
        }
        // A credential change or an admin revoke moved validSince past this sign-in.
        if acc.valid_since.is_some_and(|v| session.auth_time < v) {
            return Err(Error::code("TOKEN_EXPIRED"));
        }
        let policy = self.session_policy(&session.scope.project).await?;
        let now = self.clock().now_ms();
        let refresh_event =
            |kind: &str| self.event(ctx, &acc.local_id, Some(&session.id), kind, Map::new());
        let within_grace =
            |at: i64| now - at <= policy.rotation_grace_secs * 1000 && session.successor.is_some();

        // A rotated-out token replayed after the window: the family may be stolen. Checked
        // before anything else, so no other refusal can hide the theft signal.
        if let Some(at) = superseded_at.filter(|&at| !within_grace(at)) {
            let mut d = Map::new();
            d.insert("supersededAt".into(), at.into());
            let ev = self.event(
                ctx,
                &acc.local_id,
                Some(&session.id),
                event_kind::REUSE_DETECTED,
                d,
            );
            let mut ended_ev = refresh_event(event_kind::SESSION_ENDED);
            ended_ev
                .detail
                .insert("reason".into(), ended::REUSE_DETECTED.into());
            self.store()
                .end_sessions(
                    std::slice::from_ref(&session.id),
                    ended::REUSE_DETECTED,
                    &[ev, ended_ev],
                )
                .await?;
            self.feed.notify_waiters();
            return Err(Error::code("TOKEN_EXPIRED"));
        }
        self.enforce_ip_policy(
            ctx,
            &policy,
            &session.id,
            &acc.local_id,
            session.ip.as_deref(),
        )
        .await?;

        let answer_token = if let (Some(_), Some(sealed)) = (superseded_at, &session.successor) {
            // A parallel tab within the window: hand it the current token.
            let current = self.master().open_for(sealed, session.id.as_bytes())?;
            self.store()
                .record_refresh(&session, now, Some(&refresh_event(event_kind::REFRESH)))
                .await?;
            String::from_utf8(current).map_err(Error::internal)?
        } else if policy.rotate_refresh_tokens {
            let next = new_secret()?;
            let rotated = self
                .store()
                .rotate_refresh_token(
                    &session,
                    hash,
                    &sha256(next.as_bytes()),
                    &self
                        .master()
                        .seal_for(next.as_bytes(), session.id.as_bytes())?,
                    now,
                    &refresh_event(event_kind::ROTATED),
                )
                .await?;
            if !rotated {
                return Ok(None);
            }
            next
        } else {
            // Plain refreshes are audited at most once a minute per session; lastUsedAt
            // stays exact. A client refreshes hourly, so this loses nothing real and keeps
            // a refresh storm from becoming a write storm.
            let event = (now - session.last_used_at >= REFRESH_AUDIT_EVERY_MS)
                .then(|| refresh_event(event_kind::REFRESH));
            self.store()
                .record_refresh(&session, now, event.as_ref())
                .await?;
            token.to_owned()
        };
        let id_token = self.mint_id_token(&session.scope, &acc, &session)?;
        Ok(Some(object(json!({
            "access_token": id_token,
            "expires_in": ID_TOKEN_LIFETIME_SECS.to_string(),
            "token_type": "Bearer",
            "refresh_token": answer_token,
            "id_token": id_token,
            "user_id": acc.local_id,
            "project_id": self.project_number(&session.scope.project),
        }))))
    }

    /// The checks every idToken-bearing call makes (§4.2).
    pub async fn verify_id_token(&self, ctx: &Ctx, token: Option<&str>) -> Result<VerifiedIdToken> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(Error::code("MISSING_ID_TOKEN"))?;
        let invalid = || Error::code("INVALID_ID_TOKEN");
        let decoded = firekeeper_tokens::jws::decode(token).map_err(|_| invalid())?;
        let claims = decoded.payload.clone();
        let project = &ctx.access.project;
        if self.config().mode == Mode::Production {
            let keys = self.id_keys().current();
            let key = decoded
                .kid()
                .and_then(|k| keys.key(k))
                .ok_or_else(invalid)?;
            decoded.verify_rs256(key).map_err(|_| invalid())?;
            let now = self.clock().now_secs();
            let claim_str = |k: &str| claims.get(k).and_then(Value::as_str);
            let unexpired = claims
                .get("exp")
                .and_then(Value::as_i64)
                .is_some_and(|e| e > now);
            let issued_for_us = claim_str("aud") == Some(project.as_str())
                && claim_str("iss") == Some(self.issuer(project).as_str());
            if !(unexpired && issued_for_us) {
                return Err(invalid());
            }
        }
        let token_tenant = claims
            .get("firebase")
            .and_then(|f| f.get("tenant"))
            .and_then(Value::as_str);
        match (token_tenant, ctx.tenant.as_deref()) {
            (Some(_), None) => {
                return Err(Error::detail(
                    "INVALID_ID_TOKEN",
                    "Parsed token that belongs to tenant in a non-tenant project.",
                ))
            }
            (a, Some(b)) if a != Some(b) => return Err(Error::code("TENANT_ID_MISMATCH")),
            _ => {}
        }
        let uid = claims
            .get("user_id")
            .or_else(|| claims.get("sub"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(invalid)?;
        let sid = claims.get("sid").and_then(Value::as_str);
        let (account, session) = match sid {
            Some(sid) => self
                .store()
                .account_with_session(&ctx.scope(), uid, sid)
                .await?
                .ok_or(Error::code("USER_NOT_FOUND"))?,
            None => (
                self.require_account(&ctx.scope(), uid).await?,
                SessionState {
                    live: true,
                    ip: None,
                },
            ),
        };
        let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
        if account.valid_since.is_some_and(|v| iat < v) {
            return Err(Error::code("TOKEN_EXPIRED"));
        }
        if account.disabled {
            return Err(Error::code("USER_DISABLED"));
        }
        // An ended session's ID tokens end with it.
        if !session.live {
            return Err(Error::code("TOKEN_EXPIRED"));
        }
        // The binding follows the project's policy now and the session's recorded address,
        // not whatever the token says.
        if let (Some(sid), false) = (sid, ctx.access.privileged) {
            let policy = self.session_policy(&ctx.access.project).await?;
            if policy.ip_binding != IpBinding::Off {
                self.enforce_ip_policy(ctx, &policy, sid, &account.local_id, session.ip.as_deref())
                    .await?;
            }
        }
        Ok(VerifiedIdToken { claims, account })
    }
}
