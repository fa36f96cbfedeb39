//! Sessions as first-class objects (a Firekeeper extension): listing and revoking them, the
//! per-user cap, per-project session policy, the audit log and the revocation feed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{Auth, Ctx};
use crate::error::{Error, Result};
use crate::model::{ended, event_kind, Account, Event, Session};

/// Where a session's tokens may be used from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IpBinding {
    /// Anywhere (Firebase's behaviour).
    #[default]
    Off,
    /// Only from the address the session signed in from (or a trusted range).
    SameAddress,
    /// Only from the trusted ranges.
    TrustedRanges,
}

/// How a project treats sign-in sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SessionPolicy {
    /// Live sessions a user may hold; the oldest are ended beyond it. 0: no cap.
    #[serde(alias = "max_per_user")]
    pub max_per_user: u32,
    /// Hand out a new refresh token on every refresh and treat a rotated-out token
    /// presented after the grace window as stolen. Off is Firebase's behaviour.
    #[serde(alias = "rotate_refresh_tokens")]
    pub rotate_refresh_tokens: bool,
    /// How long a rotated-out token still works (parallel tabs refreshing at once).
    #[serde(alias = "rotation_grace_secs")]
    pub rotation_grace_secs: i64,
    #[serde(alias = "ip_binding")]
    pub ip_binding: IpBinding,
    /// CIDR ranges always allowed (`10.0.0.0/8`, `2001:db8::/32`).
    #[serde(alias = "trusted_ranges")]
    pub trusted_ranges: Vec<ipnet::IpNet>,
    /// End the session on a use from a disallowed address, not just refuse the use.
    #[serde(alias = "revoke_on_ip_violation")]
    pub revoke_on_ip_violation: bool,
    /// Put the sign-in address in ID tokens (`signInIpAddress`); always on while
    /// `ipBinding` is not `off`, so back ends can enforce it too.
    #[serde(alias = "sign_in_ip_claim")]
    pub sign_in_ip_claim: bool,
}

impl SessionPolicy {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(0..=3600).contains(&self.rotation_grace_secs) {
            return Err("rotationGraceSecs must be between 0 and 3600".into());
        }
        if self.ip_binding == IpBinding::TrustedRanges && self.trusted_ranges.is_empty() {
            return Err("ipBinding trustedRanges needs at least one trusted range".into());
        }
        Ok(())
    }

    /// Refuses a sign-in from outside the trusted ranges when the policy binds sessions to
    /// them (admins sign in for users from anywhere).
    pub(crate) fn admits_sign_in(&self, ctx: &Ctx) -> Result<()> {
        if self.ip_binding == IpBinding::TrustedRanges
            && !ctx.access.privileged
            && !self.allows(None, ctx.ip.as_deref())
        {
            return Err(Error::detail(
                "OPERATION_NOT_ALLOWED",
                "Sign-in from this address is not allowed by the project's IP policy.",
            ));
        }
        Ok(())
    }

    /// Whether a session signed in from `signed_in_from` may be used from `now_from`.
    /// Addresses compare in canonical form (`::ffff:10.0.0.1` is `10.0.0.1`).
    pub fn allows(&self, signed_in_from: Option<&str>, now_from: Option<&str>) -> bool {
        let parse = |a: Option<&str>| {
            a.and_then(|s| s.parse::<std::net::IpAddr>().ok())
                .map(|ip| ip.to_canonical())
        };
        let now = parse(now_from);
        let trusted = now.is_some_and(|ip| self.trusted_ranges.iter().any(|r| r.contains(&ip)));
        match self.ip_binding {
            IpBinding::Off => true,
            IpBinding::SameAddress => trusted || (now.is_some() && now == parse(signed_in_from)),
            IpBinding::TrustedRanges => trusted,
        }
    }

    /// Whether ID tokens carry `signInIpAddress`.
    pub fn ip_claim(&self) -> bool {
        self.sign_in_ip_claim || self.ip_binding != IpBinding::Off
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            max_per_user: 0,
            rotate_refresh_tokens: false,
            rotation_grace_secs: 30,
            ip_binding: IpBinding::Off,
            trusted_ranges: Vec::new(),
            revoke_on_ip_violation: false,
            sign_in_ip_claim: false,
        }
    }
}

/// Project settings documents, each trusted for a couple of seconds: sign-ins and
/// refreshes read them on every call.
#[derive(Debug, Default)]
pub(crate) struct SettingsCache(Mutex<HashMap<String, (Arc<Value>, i64)>>);

const SETTINGS_TTL_MS: i64 = 2_000;

/// `default` with `own`'s fields replacing its own.
fn overlay<T: Serialize + DeserializeOwned>(
    default: &T,
    own: &Map<String, Value>,
) -> std::result::Result<T, serde_json::Error> {
    let mut merged = serde_json::to_value(default)?;
    for (k, v) in own {
        merged[k] = v.clone();
    }
    serde_json::from_value(merged)
}

impl SettingsCache {
    /// Drops one project's document (`None`: all), so the next read goes to the store.
    pub(crate) fn forget(&self, project: Option<&str>) {
        if let Ok(mut map) = self.0.lock() {
            match project {
                Some(p) => {
                    map.remove(p);
                }
                None => map.clear(),
            }
        }
    }
}
/// Longest a feed request may wait for news.
const MAX_WAIT_SECS: u64 = 30;
const MAX_PAGE: u32 = 1000;

/// Why a session no longer works, if it doesn't: ended outright, or overtaken by the
/// account (tokens revoked after it signed in, or the account disabled).
fn ended_reason(s: &Session, acc: &Account) -> Option<String> {
    if let Some(r) = &s.revoked {
        return Some(r.clone());
    }
    if acc.valid_since.is_some_and(|v| s.auth_time < v) {
        return Some("tokens_revoked".to_owned());
    }
    acc.disabled.then(|| "user_disabled".to_owned())
}

fn session_view(s: &Session, acc: &Account, current: Option<&str>) -> Value {
    let mut v = json!({
        "sessionId": s.id,
        "signInProvider": s.provider,
        "createdAt": s.created_at.to_string(),
        "lastUsedAt": s.last_used_at.to_string(),
    });
    if let Some(ip) = &s.ip {
        v["ipAddress"] = ip.clone().into();
    }
    if let Some(ua) = &s.user_agent {
        v["userAgent"] = ua.clone().into();
    }
    if let Some(r) = ended_reason(s, acc) {
        v["endedReason"] = r.into();
    }
    if current == Some(s.id.as_str()) {
        v["current"] = true.into();
    }
    v
}

impl Auth {
    /// The project's stored settings document (`{}` when none). While this instance
    /// changes a project's settings, the document that change started from.
    pub(crate) async fn project_settings(&self, project: &str) -> Result<Arc<Value>> {
        if let Some(base) = self.write_base(project) {
            return Ok(base);
        }
        let now = self.clock().now_ms();
        if let Ok(map) = self.settings_cache.0.lock() {
            if let Some((v, expires)) = map.get(project) {
                if *expires > now {
                    return Ok(v.clone());
                }
            }
        }
        let doc = Arc::new(
            self.store()
                .project_config(project)
                .await?
                .unwrap_or(json!({})),
        );
        if let Ok(mut map) = self.settings_cache.0.lock() {
            map.insert(project.to_owned(), (doc.clone(), now + SETTINGS_TTL_MS));
        }
        Ok(doc)
    }

    /// A map kept in the settings document at `path` (empty when absent).
    pub(crate) async fn settings_map(
        &self,
        project: &str,
        path: &[&str],
    ) -> Result<Map<String, Value>> {
        let doc = self.project_settings(project).await?;
        Ok(path
            .iter()
            .try_fold(&*doc, |v, key| v.get(*key))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default())
    }

    /// Stores `map` at `path` of the settings document, the rest kept. The caller holds
    /// the settings writer's lock.
    pub(crate) async fn put_settings_map(
        &self,
        project: &str,
        path: &[&str],
        map: Map<String, Value>,
    ) -> Result<()> {
        let mut doc = (*self.project_settings(project).await?).clone();
        let mut slot = &mut doc;
        for key in path {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot = slot
                .as_object_mut()
                .ok_or_else(|| Error::internal("settings document"))?
                .entry(key.to_string())
                .or_insert(Value::Null);
        }
        *slot = Value::Object(map);
        self.put_project_settings(project, &doc).await
    }

    fn write_base(&self, project: &str) -> Option<Arc<Value>> {
        let base = self.settings_base.lock().ok()?;
        base.as_ref()
            .filter(|(p, _)| p == project)
            .map(|(_, doc)| doc.clone())
    }

    fn set_write_base(&self, base: Option<(String, Arc<Value>)>) {
        if let Ok(mut slot) = self.settings_base.lock() {
            *slot = base;
        }
    }

    /// Runs a change of a project's settings: one writer per instance; each attempt starts
    /// from the document as stored now (not a cached copy), every read within it sees that
    /// document, and each write lands only over it (compare-and-set). When another
    /// instance wrote first, the attempt runs again from the new document.
    pub(crate) async fn write_settings<T, F, Fut>(&self, project: &str, change: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let _writing = self.settings_write.lock().await;
        let outcome = self
            .retry_stale(|| async {
                let stored = self.store().project_config(project).await?;
                let base = Arc::new(stored.unwrap_or(json!({})));
                self.set_write_base(Some((project.to_owned(), base)));
                change().await
            })
            .await;
        self.set_write_base(None);
        self.settings_cache.forget(Some(project));
        outcome
    }

    /// Stores a changed settings document over the one its change started from (inside
    /// [`Auth::write_settings`]); a later write of the same change builds on this one.
    pub(crate) async fn put_project_settings(&self, project: &str, doc: &Value) -> Result<()> {
        let base = self
            .write_base(project)
            .ok_or_else(|| Error::internal("settings written outside write_settings"))?;
        self.store()
            .put_project_config(project, Some(&base), doc)
            .await?;
        self.set_write_base(Some((project.to_owned(), Arc::new(doc.clone()))));
        Ok(())
    }

    /// The project's session policy: the fields it set over the server's default.
    pub async fn session_policy(&self, project: &str) -> Result<SessionPolicy> {
        self.settings_section(project, "sessionPolicy", &self.config().sessions)
            .await
    }

    /// Settings section `key` of a project: the server's `default` with the fields the
    /// project set laid over it.
    pub(crate) async fn settings_section<T>(
        &self,
        project: &str,
        key: &str,
        default: &T,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        let doc = self.project_settings(project).await?;
        let Some(Value::Object(own)) = doc.get(key) else {
            return Ok(default.clone());
        };
        overlay(default, own).map_err(|e| Error::internal(format!("stored {key}: {e}")))
    }

    /// For a PATCH of section `key`: the project's own fields with `fields` laid over them
    /// (what to store), and the section they make (to check before storing).
    pub(crate) async fn patched_section<T>(
        &self,
        project: &str,
        key: &str,
        default: &T,
        fields: &Map<String, Value>,
    ) -> Result<(Map<String, Value>, T)>
    where
        T: Serialize + DeserializeOwned,
    {
        let doc = self.project_settings(project).await?;
        let mut own = doc
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        own.extend(fields.clone());
        let section = overlay(default, &own).map_err(|e| {
            Error::InvalidArgument(format!("Invalid JSON payload received. /{key} {e}"))
        })?;
        Ok((own, section))
    }

    /// Refuses a use of a session from the caller's address when the policy forbids it:
    /// audited, and with `revokeOnIpViolation` the session ends. Admin callers act for
    /// users from anywhere and are not checked.
    pub(crate) async fn enforce_ip_policy(
        &self,
        ctx: &Ctx,
        policy: &SessionPolicy,
        session_id: &str,
        local_id: &str,
        signed_in_from: Option<&str>,
    ) -> Result<()> {
        if ctx.access.privileged || policy.allows(signed_in_from, ctx.ip.as_deref()) {
            return Ok(());
        }
        let mut d = Map::new();
        d.insert("signedInFrom".into(), signed_in_from.unwrap_or("").into());
        let violation = self.event(ctx, local_id, Some(session_id), event_kind::IP_VIOLATION, d);
        if policy.revoke_on_ip_violation {
            let mut d = Map::new();
            d.insert("reason".into(), ended::IP_VIOLATION.into());
            let ended_ev = self.event(
                ctx,
                local_id,
                Some(session_id),
                event_kind::SESSION_ENDED,
                d,
            );
            self.store()
                .end_sessions(
                    &[session_id.to_owned()],
                    ended::IP_VIOLATION,
                    &[violation, ended_ev],
                )
                .await?;
            self.feed.notify_waiters();
        } else {
            self.store().append_events(&[violation]).await?;
        }
        Err(Error::code("TOKEN_EXPIRED"))
    }

    /// `PATCH /firekeeper/v1/projects/{p}/config`: records the fields given; the others
    /// keep following the server's default.
    /// The project's own session-policy fields with `fields` laid over them, checked.
    async fn merged_session_policy(
        &self,
        project: &str,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        let (own, policy) = self
            .patched_section(project, "sessionPolicy", &self.config().sessions, fields)
            .await?;
        policy.validate().map_err(|e| {
            Error::InvalidArgument(format!("Invalid JSON payload received. /sessionPolicy/{e}"))
        })?;
        Ok(own)
    }

    pub async fn firekeeper_config(&self, project: &str) -> Result<Value> {
        let policy = self.session_policy(project).await?;
        let blocking = self.blocking_policy(project).await?;
        let database = self.database_policy(project).await?;
        Ok(json!({
            "sessionPolicy": policy,
            "blockingPolicy": blocking,
            "databasePolicy": database,
        }))
    }

    /// `PATCH /firekeeper/v1/projects/{p}/config`: `sessionPolicy`, `blockingPolicy` and
    /// `databasePolicy` fields, each kept over the server's default.
    pub async fn patch_firekeeper_config(
        &self,
        project: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        let sections = ["sessionPolicy", "blockingPolicy", "databasePolicy"];
        if let Some(k) = body.keys().find(|k| !sections.contains(&k.as_str())) {
            return Err(Error::InvalidArgument(format!(
                "Invalid JSON payload received. Unknown name \"{k}\": expected sessionPolicy, \
                 blockingPolicy or databasePolicy"
            )));
        }
        if body.is_empty() {
            return Err(Error::InvalidArgument(
                "Invalid JSON payload received. Expected sessionPolicy, blockingPolicy or \
                 databasePolicy"
                    .into(),
            ));
        }
        let section = |name: &str| match body.get(name) {
            None => Ok(None),
            Some(Value::Object(fields)) => Ok(Some(fields)),
            Some(_) => Err(Error::InvalidArgument(format!(
                "Invalid JSON payload received. /{name} must be object"
            ))),
        };
        let (session, blocking) = (section("sessionPolicy")?, section("blockingPolicy")?);
        let database = section("databasePolicy")?;
        // One writer at a time, and both sections checked and stored in one write.
        self.write_settings(project, || async {
            let mut doc = (*self.project_settings(project).await?).clone();
            if let Some(fields) = session {
                doc["sessionPolicy"] =
                    Value::Object(self.merged_session_policy(project, fields).await?);
            }
            if let Some(fields) = blocking {
                doc["blockingPolicy"] =
                    Value::Object(self.merged_blocking_policy(project, fields).await?);
            }
            if let Some(fields) = database {
                doc["databasePolicy"] =
                    Value::Object(self.merged_database_policy(project, fields).await?);
            }
            self.put_project_settings(project, &doc).await
        })
        .await?;
        self.firekeeper_config(project).await
    }

    /// Ends the oldest live sessions beyond the project's cap. Best effort: the new
    /// session is already stored and stays, so a failure here is logged, not returned.
    pub(crate) async fn enforce_session_cap(&self, ctx: &Ctx, local_id: &str) {
        if let Err(e) = self.try_session_cap(ctx, local_id).await {
            tracing::warn!(error = %e, "could not enforce the session cap");
        }
    }

    async fn try_session_cap(&self, ctx: &Ctx, local_id: &str) -> Result<()> {
        let cap = self.session_policy(&ctx.access.project).await?.max_per_user;
        if cap == 0 {
            return Ok(());
        }
        let acc = self.require_account(&ctx.scope(), local_id).await?;
        let live: Vec<Session> = self
            .store()
            .sessions_of(&ctx.scope(), local_id)
            .await?
            .into_iter()
            .filter(|s| ended_reason(s, &acc).is_none())
            .collect();
        // Newest first: everything past the cap goes.
        let evict: Vec<String> = live
            .iter()
            .skip(cap as usize)
            .map(|s| s.id.clone())
            .collect();
        if evict.is_empty() {
            return Ok(());
        }
        self.end_sessions(ctx, local_id, &evict, ended::EVICTED)
            .await?;
        Ok(())
    }

    /// Ends sessions with an audit event for each; returns how many ended.
    pub(crate) async fn end_sessions(
        &self,
        ctx: &Ctx,
        local_id: &str,
        ids: &[String],
        reason: &str,
    ) -> Result<u64> {
        let events: Vec<Event> = ids
            .iter()
            .map(|id| {
                let mut d = Map::new();
                d.insert("reason".into(), reason.into());
                self.event(ctx, local_id, Some(id), event_kind::SESSION_ENDED, d)
            })
            .collect();
        let n = self.store().end_sessions(ids, reason, &events).await?;
        self.feed.notify_waiters();
        Ok(n)
    }

    fn live_ids(sessions: &[Session], acc: &Account, except: Option<&str>) -> Vec<String> {
        sessions
            .iter()
            .filter(|s| ended_reason(s, acc).is_none() && Some(s.id.as_str()) != except)
            .map(|s| s.id.clone())
            .collect()
    }

    /// Admin: a user's sessions, newest first.
    pub async fn list_sessions(&self, ctx: &Ctx, local_id: &str) -> Result<Value> {
        let scope = ctx.scope();
        let acc = self.require_account(&scope, local_id).await?;
        let list = self.store().sessions_of(&scope, local_id).await?;
        Ok(
            json!({"sessions": list.iter().map(|s| session_view(s, &acc, None)).collect::<Vec<_>>()}),
        )
    }

    /// Admin: ends one session.
    pub async fn revoke_session(&self, ctx: &Ctx, session_id: &str) -> Result<Value> {
        let s = self
            .store()
            .session(session_id)
            .await?
            .filter(|s| s.scope == ctx.scope())
            .ok_or(Error::code("SESSION_NOT_FOUND"))?;
        let n = self
            .end_sessions(
                ctx,
                &s.local_id,
                std::slice::from_ref(&s.id),
                ended::REVOKED,
            )
            .await?;
        Ok(json!({"revoked": n}))
    }

    /// Admin: ends every live session of a user, optionally but one.
    pub async fn revoke_all_sessions(
        &self,
        ctx: &Ctx,
        local_id: &str,
        except: Option<&str>,
    ) -> Result<Value> {
        let scope = ctx.scope();
        let acc = self.require_account(&scope, local_id).await?;
        let list = self.store().sessions_of(&scope, local_id).await?;
        let ids = Self::live_ids(&list, &acc, except);
        let n = self
            .end_sessions(ctx, local_id, &ids, ended::REVOKED)
            .await?;
        Ok(json!({"revoked": n}))
    }

    /// Self-service: the caller's sessions, the current one marked.
    pub async fn my_sessions(&self, ctx: &Ctx, id_token: Option<&str>) -> Result<Value> {
        let v = self.verify_id_token(ctx, id_token).await?;
        let list = self
            .store()
            .sessions_of(&ctx.scope(), &v.account.local_id)
            .await?;
        let current = v.session_id();
        Ok(json!({"sessions": list
            .iter()
            .filter(|s| ended_reason(s, &v.account).is_none())
            .map(|s| session_view(s, &v.account, current))
            .collect::<Vec<_>>()}))
    }

    /// Self-service: ends one of the caller's sessions.
    pub async fn revoke_my_session(
        &self,
        ctx: &Ctx,
        id_token: Option<&str>,
        session_id: Option<&str>,
    ) -> Result<Value> {
        let v = self.verify_id_token(ctx, id_token).await?;
        let sid = session_id.ok_or(Error::code("MISSING_SESSION_ID"))?;
        let owned = self
            .store()
            .session(sid)
            .await?
            .filter(|s| s.scope == ctx.scope() && s.local_id == v.account.local_id)
            .ok_or(Error::code("SESSION_NOT_FOUND"))?;
        let n = self
            .end_sessions(ctx, &owned.local_id, &[owned.id], ended::REVOKED)
            .await?;
        Ok(json!({"revoked": n}))
    }

    /// Self-service: "sign out everywhere else".
    pub async fn revoke_my_other_sessions(
        &self,
        ctx: &Ctx,
        id_token: Option<&str>,
    ) -> Result<Value> {
        let v = self.verify_id_token(ctx, id_token).await?;
        let current = v
            .session_id()
            .ok_or(Error::detail(
                "INVALID_ID_TOKEN",
                "the token names no session",
            ))?
            .to_owned();
        let uid = v.account.local_id.clone();
        let list = self.store().sessions_of(&ctx.scope(), &uid).await?;
        let ids = Self::live_ids(&list, &v.account, Some(&current));
        let n = self.end_sessions(ctx, &uid, &ids, ended::REVOKED).await?;
        Ok(json!({"revoked": n}))
    }

    /// Admin: a user's audit log after the cursor `after`.
    pub async fn account_events(
        &self,
        ctx: &Ctx,
        local_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Value> {
        let events = self
            .store()
            .account_events(&ctx.scope(), local_id, after, limit.clamp(1, MAX_PAGE))
            .await?;
        let next = events.last().map_or(after, |e| e.id);
        Ok(json!({"events": events, "nextCursor": next.to_string()}))
    }

    /// The revocation feed: revocation-relevant events after `after` and no older than
    /// `since_ms` (a new reader asks for the last token lifetime to build its state). The
    /// answer also carries the server's clock. With `wait_secs`,
    /// holds the request until news arrives or the wait ends (long polling), re-checking
    /// the database every second so writes by other processes are seen too.
    pub async fn revocation_feed(
        &self,
        project: &str,
        after: i64,
        since_ms: i64,
        lookback_secs: Option<i64>,
        limit: u32,
        wait_secs: u64,
    ) -> Result<Value> {
        // A lookback is measured on the server's clock, so a reader's skew cannot drop
        // events from its snapshot.
        let since_ms = match lookback_secs {
            Some(l) => since_ms.max(self.clock().now_ms() - l.max(0) * 1000),
            None => since_ms,
        };
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(wait_secs.min(MAX_WAIT_SECS));
        loop {
            // Registered before the read, so a commit between the read and the wait still
            // wakes us.
            let notified = self.feed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let events = self
                .store()
                .project_events(
                    project,
                    event_kind::REVOCATIONS,
                    after,
                    since_ms,
                    limit.clamp(1, MAX_PAGE),
                )
                .await?;
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                // An idle reader moves to the head, so its next poll scans only new rows.
                let next = match events.last() {
                    Some(e) => e.id,
                    None => after.max(self.store().head_event_id(project).await?),
                };
                let entries: Vec<Value> = events
                    .iter()
                    .map(|e| {
                        let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                        if let Some(t) = &e.scope.tenant {
                            v["tenantId"] = t.clone().into();
                        }
                        v
                    })
                    .collect();
                return Ok(json!({
                    "events": entries,
                    "nextCursor": next.to_string(),
                    "serverTimeMs": self.clock().now_ms().to_string(),
                }));
            }
            let tick = tokio::time::sleep(Duration::from_secs(1));
            tokio::select! {
                () = notified => {}
                () = tick => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Storage upkeep: drops audit events and superseded refresh-token hashes older than
    /// `retention_days`, and expired out-of-band codes. Returns how many rows went.
    pub async fn prune_history(&self, retention_days: u32) -> Result<u64> {
        let now = self.clock().now_ms();
        let before = now - i64::from(retention_days) * 86_400_000;
        let events = self.store().prune_events(before).await?;
        let tokens = self.store().prune_superseded(before).await?;
        let codes = self.store().prune_oob_codes(now).await?;
        Ok(events + tokens + codes)
    }

    /// Admin: revokes every refresh token of one user (`validSince = now`), as the Admin
    /// SDKs' `revokeRefreshTokens` does.
    pub async fn revoke_user_tokens(&self, ctx: &Ctx, local_id: &str) -> Result<()> {
        let now = self.clock().now_secs();
        self.update(
            ctx,
            super::UpdateRequest {
                local_id: Some(local_id.to_owned()),
                valid_since: Some(now),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }
}
