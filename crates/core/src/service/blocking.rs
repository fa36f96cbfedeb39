//! Calling blocking functions and applying their answers (blocking-functions.md §3–5), and
//! the v2 project config that registers them. Every flow reaches the functions through
//! [`Auth::before_create`] and [`Auth::before_sign_in`] (and, for existing accounts,
//! [`Auth::commit_sign_in_hooks`]), so a sign-in method added later is covered by calling
//! them, not by a copy.

use std::time::Instant;

use serde_json::{json, Map, Value};

use super::{Auth, Ctx};
use crate::blocking::{
    interpret, BlockingFunctions, BlockingPolicy, HookReply, HookUpdates, BEFORE_CREATE,
    BEFORE_SEND_EMAIL, BEFORE_SEND_SMS, BEFORE_SIGN_IN,
};
use crate::error::{Error, Result};
use crate::model::{event_kind, Account};
use crate::secrets::random_alnum;
use crate::wire::provider_user_info;

/// Lifetime of the JWT a function receives (the reference emulator's value).
const HOOK_JWT_LIFETIME_SECS: i64 = 600;
const SETTINGS_KEY: &str = "blockingFunctions";
const POLICY_CONFIG_KEY: &str = super::password_policy::SETTINGS_KEY;
/// Sections of the v2 config kept as given, changed by whole section or by their
/// top-level fields (`mfa.state`): the password policy, multi-factor settings, and
/// `signIn` (test phone numbers).
const PLAIN_SECTIONS: &[&str] = &[POLICY_CONFIG_KEY, "mfa", "signIn"];
const POLICY_KEY: &str = "blockingPolicy";

/// What the hooks of one sign-in decided.
#[derive(Debug, Default)]
pub(crate) struct HookOutcome {
    /// beforeSignIn's `sessionClaims`: this session's extra claims.
    pub session_claims: Map<String, Value>,
    /// The record changes, to apply again to a fresh read of the account.
    pub updates: HookUpdates,
    /// Whether a function ran (and time passed in which the account may have changed).
    pub called: bool,
}

/// Whom a function call is about.
#[derive(Clone, Copy)]
enum Subject<'a> {
    /// An account signing up or in, with the sign-in method and what the sign-in adds to
    /// the JWT (an identity provider's profile and credentials).
    User(&'a Account, &'a str, &'a Map<String, Value>),
    /// An email about to be sent.
    Email { email: &'a str, email_type: &'a str },
    /// A text message about to be sent.
    Sms {
        phone_number: &'a str,
        sms_type: &'a str,
    },
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A trigger without a function (`{}`, or an empty `functionUri`): deployment tools send
/// it to unregister an event.
fn is_empty_trigger(t: &Value) -> bool {
    t.get("functionUri")
        .or_else(|| t.get("function_uri"))
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
}

/// `blockingFunctions` with the empty triggers dropped.
fn without_empty_triggers(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(t)) = v.get_mut("triggers") {
        t.retain(|_, trigger| !is_empty_trigger(trigger));
    }
    v
}

/// `user_record` of the JWT (§3.2): snake_case, times in ms, validSince in seconds.
fn user_record(acc: &Account) -> Value {
    let providers: Vec<Value> = provider_user_info(acc)
        .iter()
        .map(|p| {
            let mut m = Map::new();
            for (from, to) in [
                ("providerId", "provider_id"),
                ("rawId", "uid"),
                ("displayName", "display_name"),
                ("email", "email"),
                ("photoUrl", "photo_url"),
                ("phoneNumber", "phone_number"),
            ] {
                if let Some(v) = p.get(from).filter(|v| !v.is_null()) {
                    m.insert(to.into(), v.clone());
                }
            }
            Value::Object(m)
        })
        .collect();
    let mut r = Map::new();
    r.insert("uid".into(), acc.local_id.clone().into());
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            r.insert(k.into(), v);
        }
    };
    put("email", acc.email.clone().map(Value::from));
    put(
        "email_verified",
        acc.email.as_ref().map(|_| acc.email_verified.into()),
    );
    put("display_name", acc.display_name.clone().map(Value::from));
    put("photo_url", acc.photo_url.clone().map(Value::from));
    put("phone_number", acc.phone_number.clone().map(Value::from));
    put("disabled", Some(acc.disabled.into()));
    put("custom_claims", Some(Value::Object(acc.custom_claims())));
    put("provider_data", Some(providers.into()));
    put(
        "metadata",
        Some(json!({
            "creation_time": acc.created_at,
            "last_sign_in_time": acc.last_login_at.unwrap_or(acc.created_at),
        })),
    );
    put("tokens_valid_after_time", acc.valid_since.map(Value::from));
    put("tenant_id", acc.tenant_id.clone().map(Value::from));
    let factors: Vec<Value> = acc
        .mfa_info
        .iter()
        .map(|f| {
            let mut m = Map::new();
            m.insert("uid".into(), f.mfa_enrollment_id.clone().into());
            m.insert("factor_id".into(), f.factor_id().into());
            for (to, v) in [
                ("display_name", &f.display_name),
                ("enrollment_time", &f.enrolled_at),
                ("phone_number", &f.phone_info),
            ] {
                if let Some(v) = v {
                    m.insert(to.into(), v.clone().into());
                }
            }
            Value::Object(m)
        })
        .collect();
    if !factors.is_empty() {
        r.insert(
            "multi_factor".into(),
            json!({ "enrolled_factors": factors }),
        );
    }
    Value::Object(r)
}

/// Applies a function's changes to the record it was shown.
pub(crate) fn apply(acc: &mut Account, u: &HookUpdates) {
    if let Some(n) = &u.display_name {
        acc.display_name = Some(n.clone());
    }
    if let Some(p) = &u.photo_url {
        acc.photo_url = Some(p.clone());
    }
    if let Some(d) = u.disabled {
        acc.disabled = d;
    }
    if let Some(v) = u.email_verified {
        acc.email_verified = v;
    }
    if let Some(c) = &u.custom_claims {
        acc.custom_attributes = Some(Value::Object(c.clone()).to_string());
    }
}

impl Auth {
    /// The project's registered functions; the server's (`firekeeper.toml`) until it
    /// registers its own.
    pub async fn blocking_functions(&self, project: &str) -> Result<BlockingFunctions> {
        let doc = self.project_settings(project).await?;
        match doc.get(SETTINGS_KEY) {
            None | Some(Value::Null) => Ok(self.config().blocking_functions.clone()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| Error::internal(format!("stored blocking functions: {e}"))),
        }
    }

    /// The project's built-in policies: the fields it set over the server's default.
    pub async fn blocking_policy(&self, project: &str) -> Result<BlockingPolicy> {
        self.settings_section(project, POLICY_KEY, &self.config().blocking_policy)
            .await
    }

    /// The project's own policy fields with `fields` laid over them, checked.
    pub(crate) async fn merged_blocking_policy(
        &self,
        project: &str,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        let (own, _checked) = self
            .patched_section::<BlockingPolicy>(
                project,
                POLICY_KEY,
                &self.config().blocking_policy,
                fields,
            )
            .await?;
        Ok(own)
    }

    /// `GET IT/v2/projects/{p}/config`.
    pub async fn v2_config(&self, project: &str) -> Result<Value> {
        let functions = self.blocking_functions(project).await?;
        let mut body = json!({
            "name": format!("projects/{project}/config"),
            "blockingFunctions": functions,
        });
        let doc = self.project_settings(project).await?;
        for key in PLAIN_SECTIONS {
            if let Some(p) = doc.get(*key) {
                body[*key] = p.clone();
            }
        }
        Ok(body)
    }

    /// `PATCH IT/v2/projects/{p}/config?updateMask=...`: the `blockingFunctions` paths of the
    /// mask are taken from the body; a path whose value the body lacks changes nothing; no
    /// mask replaces the registration with the body's.
    pub async fn patch_v2_config(
        &self,
        project: &str,
        update_mask: Option<&str>,
        body: &Value,
    ) -> Result<Value> {
        self.write_settings(project, || {
            self.patch_v2_config_once(project, update_mask, body)
        })
        .await?;
        self.v2_config(project).await
    }

    /// One read-change-write of [`Auth::patch_v2_config`], inside
    /// [`Auth::write_settings`].
    async fn patch_v2_config_once(
        &self,
        project: &str,
        update_mask: Option<&str>,
        body: &Value,
    ) -> Result<()> {
        let given = body.get(SETTINGS_KEY).cloned().unwrap_or(json!({}));
        let parse = |v: Value, at: &str| -> Result<BlockingFunctions> {
            serde_json::from_value(v).map_err(|e| {
                Error::InvalidArgument(format!("Invalid JSON payload received. /{at}: {e}"))
            })
        };
        let before = self.blocking_functions(project).await?;
        let mut next = before.clone();
        let mask: Vec<&str> = update_mask
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let stored = self.project_settings(project).await?;
        let mut plain: Map<String, Value> = PLAIN_SECTIONS
            .iter()
            .filter_map(|k| Some(((*k).to_owned(), stored.get(*k)?.clone())))
            .collect();
        if mask.is_empty() {
            // Without a mask, the sections the body has replace the stored ones.
            let gives_plain = PLAIN_SECTIONS.iter().any(|k| body.get(*k).is_some());
            if body.get(SETTINGS_KEY).is_some() || !gives_plain {
                next = parse(given.clone(), SETTINGS_KEY)?;
            }
            for key in PLAIN_SECTIONS {
                if let Some(p) = body.get(*key) {
                    plain.insert((*key).to_owned(), p.clone());
                }
            }
        }
        for path in mask {
            // Leaf paths (`...triggers.beforeCreate.functionUri`, what deployment tools
            // derive from a body) address their trigger or flag.
            let parts: Vec<&str> = path.split('.').collect();
            match parts.as_slice() {
                [SETTINGS_KEY] => {
                    if body.get(SETTINGS_KEY).is_some() {
                        next = parse(without_empty_triggers(&given), SETTINGS_KEY)?;
                    }
                }
                [SETTINGS_KEY, "triggers"] => {
                    if let Some(t) = given.get("triggers") {
                        let t = without_empty_triggers(&json!({ "triggers": t }));
                        next.triggers = parse(t, path)?.triggers;
                    }
                }
                [SETTINGS_KEY, "triggers", event, ..] => {
                    let one = given.get("triggers").and_then(|t| t.get(*event));
                    match one {
                        None => {}
                        // An empty trigger unregisters the event.
                        Some(t) if is_empty_trigger(t) => {
                            next.triggers.remove(*event);
                        }
                        Some(t) => {
                            let parsed = parse(json!({ "triggers": { *event: t } }), path)?;
                            next.triggers.extend(parsed.triggers);
                        }
                    }
                }
                [SETTINGS_KEY, "forwardInboundCredentials", rest @ ..] => {
                    if let Some(f) = given.get("forwardInboundCredentials") {
                        let mut flags = serde_json::to_value(next.forward_inbound_credentials)
                            .map_err(Error::internal)?;
                        match rest {
                            [] => flags = f.clone(),
                            [flag] => {
                                if let Some(v) = f.get(*flag) {
                                    flags[*flag] = v.clone();
                                }
                            }
                            _ => {}
                        }
                        next.forward_inbound_credentials =
                            parse(json!({ "forwardInboundCredentials": flags }), path)?
                                .forward_inbound_credentials;
                    }
                }
                // The Admin SDKs' `passwordPolicyConfig.<field>`, `mfa.<field>` leaves.
                [section, rest @ ..] if PLAIN_SECTIONS.contains(section) => {
                    let given_section = body.get(*section);
                    let mut p = plain
                        .remove(*section)
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    match rest {
                        [] => p = given_section.cloned().unwrap_or_else(|| json!({})),
                        [field, ..] => match given_section.and_then(|g| g.get(*field)) {
                            Some(v) => p[*field] = v.clone(),
                            None => {
                                if let Some(m) = p.as_object_mut() {
                                    m.remove(*field);
                                }
                            }
                        },
                    }
                    plain.insert((*section).to_owned(), p);
                }
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "Invalid update mask path: {path}. Firekeeper's v2 config holds \
                         blockingFunctions, passwordPolicyConfig, mfa and signIn."
                    )))
                }
            }
        }
        next.validate()?;
        let now = rfc3339(self.clock().now_ms());
        for (event, trigger) in next.triggers.iter_mut() {
            let unchanged = before.triggers.get(event).is_some_and(|b| {
                b.function_uri == trigger.function_uri && b.audience == trigger.audience
            });
            trigger.update_time = if unchanged {
                before
                    .triggers
                    .get(event)
                    .and_then(|b| b.update_time.clone())
            } else {
                Some(now.clone())
            };
        }
        if let Some(p) = plain.get(POLICY_CONFIG_KEY) {
            super::password_policy::PasswordPolicy::from_config(p)?;
        }
        for (key, section) in &plain {
            if !section.is_object() {
                return Err(Error::InvalidArgument(format!(
                    "Invalid JSON payload received. /{key}: expected an object."
                )));
            }
        }
        let mut doc = (*self.project_settings(project).await?).clone();
        doc[SETTINGS_KEY] = serde_json::to_value(&next).map_err(Error::internal)?;
        for (key, section) in plain {
            doc[key.as_str()] = section;
        }
        self.put_project_settings(project, &doc).await
    }

    /// beforeCreate for a record about to be stored; its changes are applied to `pending`.
    /// A refusal is audited and nothing is written.
    pub(crate) async fn before_create(
        &self,
        ctx: &Ctx,
        pending: &mut Account,
        sign_in_method: &str,
    ) -> Result<()> {
        self.before_create_with(ctx, pending, sign_in_method, &Map::new())
            .await
    }

    /// [`Auth::before_create`] with claims the sign-in adds to the JWT.
    pub(crate) async fn before_create_with(
        &self,
        ctx: &Ctx,
        pending: &mut Account,
        sign_in_method: &str,
        extra: &Map<String, Value>,
    ) -> Result<()> {
        self.check_sign_in_address(ctx).await?;
        let policy = self.blocking_policy(&ctx.access.project).await?;
        let checked = policy.before_create(
            pending.email.as_deref(),
            pending.email_verified,
            ctx.ip.as_deref(),
            &mut pending.display_name,
        );
        if let Err(e) = checked {
            self.metrics().policy_refusal(BEFORE_CREATE);
            self.audit_block(ctx, pending, BEFORE_CREATE, sign_in_method, &e)
                .await;
            return Err(e);
        }
        let functions = self.blocking_functions(&ctx.access.project).await?;
        if let Some(u) = self
            .call_hook(
                ctx,
                &functions,
                BEFORE_CREATE,
                Subject::User(pending, sign_in_method, extra),
            )
            .await?
        {
            apply(pending, &u);
        }
        Ok(())
    }

    /// beforeSignIn for `acc` (stored, or about to be with the flow's changes); its changes
    /// are applied to `acc` and its `sessionClaims` returned for the new session. Skipped
    /// for a disabled record, as Firebase does after beforeCreate disabled the user.
    pub(crate) async fn before_sign_in(
        &self,
        ctx: &Ctx,
        acc: &mut Account,
        sign_in_method: &str,
    ) -> Result<HookOutcome> {
        self.before_sign_in_with(ctx, acc, sign_in_method, &Map::new())
            .await
    }

    /// [`Auth::before_sign_in`] with claims the sign-in adds to the JWT.
    pub(crate) async fn before_sign_in_with(
        &self,
        ctx: &Ctx,
        acc: &mut Account,
        sign_in_method: &str,
        extra: &Map<String, Value>,
    ) -> Result<HookOutcome> {
        let mut outcome = HookOutcome::default();
        if acc.disabled {
            return Ok(outcome);
        }
        self.check_sign_in_address(ctx).await?;
        let policy = self.blocking_policy(&ctx.access.project).await?;
        let checked =
            policy.before_sign_in(acc.email.as_deref(), acc.email_verified, ctx.ip.as_deref());
        if let Err(e) = checked {
            self.metrics().policy_refusal(BEFORE_SIGN_IN);
            self.audit_block(ctx, acc, BEFORE_SIGN_IN, sign_in_method, &e)
                .await;
            return Err(e);
        }
        let functions = self.blocking_functions(&ctx.access.project).await?;
        if let Some(u) = self
            .call_hook(
                ctx,
                &functions,
                BEFORE_SIGN_IN,
                Subject::User(acc, sign_in_method, extra),
            )
            .await?
        {
            apply(acc, &u);
            outcome.session_claims = u.session_claims.clone().unwrap_or_default();
            outcome.updates = u;
            outcome.called = true;
        }
        Ok(outcome)
    }

    /// beforeSendEmail for an email about to be sent to `email` (`email_type`
    /// `PASSWORD_RESET` or `EMAIL_SIGN_IN`): a failing function means nothing is sent. Its
    /// answer has nothing else to say (`recaptchaActionOverride` concerns reCAPTCHA, which
    /// Firekeeper does not run).
    pub(crate) async fn before_send_email(
        &self,
        ctx: &Ctx,
        email: &str,
        email_type: &str,
    ) -> Result<()> {
        let functions = self.blocking_functions(&ctx.access.project).await?;
        self.call_hook(
            ctx,
            &functions,
            BEFORE_SEND_EMAIL,
            Subject::Email { email, email_type },
        )
        .await?;
        Ok(())
    }

    /// One call: `None` when the project registered no function for `event`.
    /// beforeSendSms for a code about to be texted to `phone_number`: a failing function
    /// means nothing is sent.
    pub(crate) async fn before_send_sms(
        &self,
        ctx: &Ctx,
        phone_number: &str,
        sms_type: &str,
    ) -> Result<()> {
        let functions = self.blocking_functions(&ctx.access.project).await?;
        self.call_hook(
            ctx,
            &functions,
            BEFORE_SEND_SMS,
            Subject::Sms {
                phone_number,
                sms_type,
            },
        )
        .await?;
        Ok(())
    }

    async fn call_hook(
        &self,
        ctx: &Ctx,
        functions: &BlockingFunctions,
        event: &str,
        subject: Subject<'_>,
    ) -> Result<Option<HookUpdates>> {
        let Some(trigger) = functions.trigger(event) else {
            return Ok(None);
        };
        let now = self.clock().now_secs();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer(&ctx.access.project).into());
        claims.insert(
            "aud".into(),
            trigger
                .audience
                .clone()
                .unwrap_or_else(|| trigger.function_uri.clone())
                .into(),
        );
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + HOOK_JWT_LIFETIME_SECS).into());
        claims.insert("event_id".into(), random_alnum(16)?.into());
        claims.insert("event_type".into(), event.into());
        for (k, v) in [
            ("ip_address", &ctx.ip),
            ("user_agent", &ctx.user_agent),
            ("locale", &ctx.locale),
            ("tenant_id", &ctx.tenant),
        ] {
            if let Some(v) = v {
                claims.insert(k.into(), v.clone().into());
            }
        }
        match subject {
            Subject::User(acc, sign_in_method, extra) => {
                claims.insert("sub".into(), acc.local_id.clone().into());
                claims.insert("sign_in_method".into(), sign_in_method.into());
                claims.insert("user_record".into(), user_record(acc));
                // The sign-in's own claims never replace the ones above.
                for (k, v) in extra {
                    claims.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            Subject::Email { email, email_type } => {
                claims.insert("email".into(), email.into());
                claims.insert("email_type".into(), email_type.into());
            }
            Subject::Sms {
                phone_number,
                sms_type,
            } => {
                claims.insert("phone_number".into(), phone_number.into());
                claims.insert("sms_type".into(), sms_type.into());
            }
        }
        // Signed with the ID-token keys, as production: a function's Admin SDK verifies it
        // with the same certificates as ID tokens.
        let jwt = self.encode(self.id_keys(), &claims)?;
        let body = json!({ "data": { "jwt": jwt } }).to_string().into_bytes();

        let started = Instant::now();
        let reply = match self.hook_client() {
            Some(client) => {
                client
                    .post(&trigger.function_uri, body, self.config().blocking_deadline)
                    .await
            }
            None => HookReply::Unreachable("no HTTP client".into()),
        };
        let kind = match &reply {
            HookReply::Answered { status, .. } if (200..300).contains(status) => "allowed",
            HookReply::Answered { .. } => "refused",
            HookReply::DeadlineExceeded => "deadline_exceeded",
            HookReply::Unreachable(_) => "unreachable",
        };
        let outcome = interpret(event, reply);
        let latency = started.elapsed();
        let kind = if kind == "allowed" && outcome.is_err() {
            "bad_answer"
        } else {
            kind
        };
        self.metrics().hook_call(event, kind, latency);
        let latency_ms = latency.as_millis() as u64;
        match &outcome {
            Ok(_) => tracing::info!(
                event,
                uri = %trigger.function_uri,
                latency_ms,
                outcome = kind,
                "blocking function"
            ),
            Err(e) => {
                tracing::info!(
                    event,
                    uri = %trigger.function_uri,
                    latency_ms,
                    outcome = kind,
                    reason = %e,
                    "blocking function"
                );
                if let Subject::User(acc, sign_in_method, _) = subject {
                    self.audit_block(ctx, acc, event, sign_in_method, e).await;
                }
            }
        }
        outcome.map(Some)
    }

    /// Records a refused sign-up or sign-in with its reason.
    async fn audit_block(
        &self,
        ctx: &Ctx,
        acc: &Account,
        event: &str,
        sign_in_method: &str,
        reason: &Error,
    ) {
        let (local_id, email) = (acc.local_id.as_str(), acc.email.as_deref());
        let mut d = Map::new();
        d.insert("event".into(), event.into());
        d.insert("signInMethod".into(), sign_in_method.into());
        // A refused sign-up's uid never exists: the email says whose it was.
        if let Some(email) = email {
            d.insert("email".into(), email.into());
        }
        d.insert("reason".into(), reason.to_string().into());
        let kind = if event == BEFORE_CREATE {
            event_kind::SIGN_UP_BLOCKED
        } else {
            event_kind::SIGN_IN_BLOCKED
        };
        let audit = self.event(ctx, local_id, None, kind, d);
        if let Err(store_err) = self.store().append_events(&[audit]).await {
            tracing::warn!(error = %store_err, "auditing a blocked sign-in failed");
        }
    }

    /// After beforeSignIn ran for an existing account (which may take seconds): reads the
    /// account again, refuses the sign-in if it was disabled or its credentials or
    /// `validSince` changed meanwhile (`changed` is the error then), and stores the
    /// function's changes over the fresh record (the function wins), audited and on the
    /// revocation feed. A function that disabled the user fails the sign-in with
    /// `USER_DISABLED`, the change kept. Returns the account to mint tokens from.
    pub(crate) async fn commit_sign_in_hooks(
        &self,
        ctx: &Ctx,
        seen: &Account,
        updates: &HookUpdates,
        changed: Error,
    ) -> Result<Account> {
        let scope = ctx.scope();
        let committed = self
            .retry_stale(|| async {
                let fresh = self.require_account(&scope, &seen.local_id).await?;
                if fresh.disabled {
                    return Err(Error::code("USER_DISABLED"));
                }
                if fresh.password_hash != seen.password_hash
                    || fresh.valid_since != seen.valid_since
                    || fresh.email != seen.email
                {
                    return Err(changed.clone());
                }
                let mut next = fresh.clone();
                apply(&mut next, updates);
                if next != fresh {
                    let events = self.update_events(ctx, &fresh, &next, false, None);
                    self.store()
                        .update_account(&scope, &next, None, &events)
                        .await?;
                    if !events.is_empty() {
                        self.feed.notify_waiters();
                    }
                }
                Ok(next)
            })
            .await?;
        if committed.disabled {
            return Err(Error::code("USER_DISABLED"));
        }
        Ok(committed)
    }

    /// The session policy's address rule, checked before any function runs so a refused
    /// sign-in has no side effects.
    async fn check_sign_in_address(&self, ctx: &Ctx) -> Result<()> {
        self.session_policy(&ctx.access.project)
            .await?
            .admits_sign_in(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_records_use_the_wire_names() {
        let acc = Account {
            local_id: "u1".into(),
            email: Some("a@x.io".into()),
            password_hash: Some("h".into()),
            created_at: 1_700_000_000_123,
            valid_since: Some(1_700_000_000),
            custom_attributes: Some("{\"role\":\"admin\"}".into()),
            ..Default::default()
        };
        let r = user_record(&acc);
        assert_eq!(r["uid"], "u1");
        assert_eq!(r["email_verified"], false);
        assert_eq!(r["custom_claims"]["role"], "admin");
        assert_eq!(r["metadata"]["creation_time"], 1_700_000_000_123i64);
        assert_eq!(r["tokens_valid_after_time"], 1_700_000_000);
        assert_eq!(r["provider_data"][0]["provider_id"], "password");
        assert_eq!(r["provider_data"][0]["uid"], "a@x.io");
        assert!(r.get("password_hash").is_none(), "never sent");
    }
}
