//! Email actions (§3.1): out-of-band codes for password reset, email verification, email
//! change and recovery, and sign-in links. `accounts:sendOobCode`, `accounts:resetPassword`,
//! `accounts:update` with an `oobCode`, `accounts:signInWithEmailLink`,
//! `accounts:createAuthUri`, and what the action pages and the emulator's listing need.
//!
//! A code is 40 random bytes (54 base64url characters, the emulator's length); only its
//! SHA-256 is stored. Every redemption uses the code up in the same transaction as the
//! account change it makes, so a code works once and a failed change leaves it usable.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::signup::{check_email, check_password};
use super::tenants::TenantMethod;
use super::{
    object, Auth, CreateAuthUriRequest, Ctx, EmailLinkSignInRequest, Mode, ResetPasswordRequest,
    SendOobCodeRequest,
};
use crate::access::Access;
use crate::email::{language, render, OutgoingEmail, TemplateValues};
use crate::error::{Error, Result};
use crate::model::{event_kind, oob_kind, Account, OobAction, OobCode, Scope};
use crate::ratelimit::RateLimiter;
use crate::secrets::{new_local_id, random_alnum, random_bytes, sha256};
use crate::store::AccountWrite;
use crate::validate::{canonical_email, is_absolute_uri, uri_host};

/// Where out-of-band links point and how long codes live (`[email]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailActions {
    /// Seconds a code stays usable (emulator mode: forever, as the reference emulator).
    pub code_lifetime_secs: i64,
    /// The page links in emails open: Firekeeper's own `<public_url>/__/auth/action`, or an
    /// app's handler. Unset in production: no email is sent, because a link derived from a
    /// request's `Host` header could be made to point anywhere.
    pub action_url: Option<String>,
    /// Hosts a `continueUrl` may point at (production). A sign-in link's continue URL
    /// receives the code, so an open one would hand accounts to whoever asked.
    pub authorized_domains: Vec<String>,
    /// The name emails use for the app (default: the project id).
    pub app_name: Option<String>,
}

impl Default for EmailActions {
    fn default() -> Self {
        Self {
            code_lifetime_secs: 3600,
            action_url: None,
            authorized_domains: vec!["localhost".to_owned()],
            app_name: None,
        }
    }
}

/// How many action emails callers may trigger (production; admins asking for links are not
/// counted): per recipient, so nobody's mailbox is flooded, and per client address.
#[derive(Debug)]
pub(crate) struct EmailLimits {
    per_recipient: RateLimiter,
    per_client: RateLimiter,
}

impl Default for EmailLimits {
    fn default() -> Self {
        Self {
            per_recipient: RateLimiter::new(5, 10 * 60_000),
            per_client: RateLimiter::new(100, 10 * 60_000),
        }
    }
}

/// The `mode` of an action link for a request type.
fn link_mode(kind: &str) -> &'static str {
    match kind {
        oob_kind::PASSWORD_RESET => "resetPassword",
        oob_kind::VERIFY_EMAIL => "verifyEmail",
        oob_kind::EMAIL_SIGNIN => "signIn",
        oob_kind::VERIFY_AND_CHANGE_EMAIL => "verifyAndChangeEmail",
        _ => "recoverEmail",
    }
}

/// The request type an action link's `mode` stands for.
pub fn kind_of_mode(mode: &str) -> Option<&'static str> {
    Some(match mode {
        "resetPassword" => oob_kind::PASSWORD_RESET,
        "verifyEmail" => oob_kind::VERIFY_EMAIL,
        "signIn" => oob_kind::EMAIL_SIGNIN,
        "verifyAndChangeEmail" => oob_kind::VERIFY_AND_CHANGE_EMAIL,
        "recoverEmail" => oob_kind::RECOVER_EMAIL,
        _ => return None,
    })
}

/// beforeSendEmail's `email_type` for the emails that call it (blocking-functions.md §2).
fn hooked_email_type(kind: &str) -> Option<&'static str> {
    match kind {
        oob_kind::PASSWORD_RESET => Some("PASSWORD_RESET"),
        oob_kind::EMAIL_SIGNIN => Some("EMAIL_SIGN_IN"),
        _ => None,
    }
}

/// The address an action's email goes to.
fn recipient(action: &OobAction) -> &str {
    match action.request_type.as_str() {
        oob_kind::VERIFY_AND_CHANGE_EMAIL => action.new_email.as_deref().unwrap_or_default(),
        _ => &action.email,
    }
}

fn invalid_code() -> Error {
    Error::code("INVALID_OOB_CODE")
}

/// The account an email-link sign-in proves the mailbox of. If its email was unverified,
/// whoever registered it may not own the mailbox: their password, other sign-in methods
/// and sessions go, as Firebase does when a verified IdP sign-in lands on such an account.
fn mailbox_owner(mut acc: Account, now_ms: i64) -> Account {
    if !acc.email_verified {
        acc.password_hash = None;
        acc.providers.clear();
        acc.phone_number = None;
        acc.valid_since = Some(now_ms.div_euclid(1000));
    }
    acc.email_verified = true;
    acc.email_link_signin = true;
    acc
}

/// A pending code as an action page sees it.
#[derive(Debug, Clone)]
pub struct ActionCode {
    /// The project and tenant the code acts in.
    pub scope: Scope,
    pub request_type: String,
    /// Where to send the user afterwards, as checked when the code was made.
    pub continue_url: Option<String>,
}

/// A code made for an action, before it is stored.
struct NewCode {
    code: String,
    row: OobCode,
    link: String,
}

impl Auth {
    /// `accounts:sendOobCode`.
    pub async fn send_oob_code(&self, ctx: &Ctx, req: SendOobCodeRequest) -> Result<Value> {
        let kind = req
            .request_type
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(Error::code("MISSING_REQ_TYPE"))?;
        let privileged = ctx.access.privileged;
        let return_link = req.return_oob_link.unwrap_or(false);
        if return_link && !privileged {
            return Err(Error::code("INSUFFICIENT_PERMISSION"));
        }
        let continue_url = req.continue_url.as_deref().filter(|u| !u.is_empty());
        if let Some(url) = continue_url {
            self.check_continue_url(url)?;
        }
        // Before any account is looked at, so the answer says nothing about the email.
        if !return_link {
            self.check_delivery()?;
        }
        let private = self.improved_email_privacy(&ctx.access.project).await?;
        let scope = ctx.scope();
        // The account named by the idToken, or (admin links only) by the email.
        let named_account = || async {
            if let Some(token) = req.id_token.as_deref() {
                return Ok(self.verify_id_token(ctx, Some(token)).await?.account);
            }
            if !(privileged && return_link) {
                return Err(Error::code("MISSING_ID_TOKEN"));
            }
            let email = check_email(req.email.as_deref().ok_or(Error::code("MISSING_EMAIL"))?)?;
            self.store()
                .account_by_email(&scope, &email)
                .await?
                .ok_or(Error::code("USER_NOT_FOUND"))
        };
        let action = match kind {
            oob_kind::PASSWORD_RESET => {
                let email = check_email(req.email.as_deref().ok_or(Error::code("MISSING_EMAIL"))?)?;
                match self.store().account_by_email(&scope, &email).await? {
                    Some(acc) => OobAction {
                        request_type: kind.to_owned(),
                        local_id: Some(acc.local_id),
                        email,
                        ..Default::default()
                    },
                    // With email enumeration protection the answer does not say whether
                    // the address has an account.
                    None if !return_link && private => {
                        return Ok(json!({
                            "kind": "identitytoolkit#GetOobConfirmationCodeResponse",
                            "email": email,
                        }));
                    }
                    None => return Err(Error::code("EMAIL_NOT_FOUND")),
                }
            }
            oob_kind::VERIFY_EMAIL => {
                let acc = named_account().await?;
                let email = acc.email.clone().ok_or(Error::code("MISSING_EMAIL"))?;
                OobAction {
                    request_type: kind.to_owned(),
                    local_id: Some(acc.local_id),
                    email,
                    ..Default::default()
                }
            }
            oob_kind::EMAIL_SIGNIN => {
                if !privileged {
                    self.check_tenant_method(&scope, TenantMethod::EmailLink)
                        .await?;
                }
                let email = check_email(req.email.as_deref().ok_or(Error::code("MISSING_EMAIL"))?)?;
                // The account is found (or created) when the link is used.
                OobAction {
                    request_type: kind.to_owned(),
                    email,
                    ..Default::default()
                }
            }
            oob_kind::VERIFY_AND_CHANGE_EMAIL => {
                let new_email = check_email(
                    req.new_email
                        .as_deref()
                        .ok_or(Error::code("MISSING_NEW_EMAIL"))?,
                )?;
                let acc = named_account().await?;
                if self
                    .store()
                    .account_by_email(&scope, &new_email)
                    .await?
                    .is_some()
                {
                    return Err(Error::code("EMAIL_EXISTS"));
                }
                OobAction {
                    request_type: kind.to_owned(),
                    local_id: Some(acc.local_id),
                    email: acc.email.unwrap_or_default(),
                    new_email: Some(new_email),
                    ..Default::default()
                }
            }
            other => return Err(Error::NotImplemented(other.to_owned())),
        };
        if !return_link {
            self.check_email_limits(ctx, recipient(&action))?;
        }
        // A refused send stores nothing.
        if let (false, Some(email_type)) = (return_link, hooked_email_type(kind)) {
            self.before_send_email(ctx, recipient(&action), email_type)
                .await?;
        }
        let made = self
            .new_code(ctx, action, continue_url, return_link)
            .await?;
        self.store().insert_oob_code(&made.row).await?;
        let mut body = json!({
            "kind": "identitytoolkit#GetOobConfirmationCodeResponse",
            "email": made.row.action.email,
        });
        if return_link {
            body["oobCode"] = made.code.into();
            body["oobLink"] = made.link.into();
        } else if private && kind == oob_kind::PASSWORD_RESET {
            // An unknown address is answered at once; a known one must not take longer
            // or fail differently, so its email goes out after the answer.
            self.deliver_later(ctx, &made.row.action, &made.link);
        } else {
            self.deliver(ctx, &made.row.action, &made.link).await?;
        }
        Ok(body)
    }

    /// `continueUrl` must be absolute and, in production, on an authorized domain.
    fn check_continue_url(&self, url: &str) -> Result<()> {
        if !is_absolute_uri(url) {
            return Err(Error::detail(
                "INVALID_CONTINUE_URI",
                "((expected an absolute URI with valid scheme and host))",
            ));
        }
        if self.config().mode == Mode::Production {
            let host = uri_host(url).unwrap_or_default();
            let allowed = &self.config().email_actions.authorized_domains;
            if !allowed.iter().any(|d| d.eq_ignore_ascii_case(&host)) {
                return Err(Error::detail(
                    "UNAUTHORIZED_DOMAIN",
                    "Domain not allowlisted by project",
                ));
            }
        }
        Ok(())
    }

    /// The per-recipient and per-client limits on emails (production, as Firebase's quotas;
    /// the reference emulator has none).
    fn check_email_limits(&self, ctx: &Ctx, to: &str) -> Result<()> {
        if self.config().mode == Mode::Emulator {
            return Ok(());
        }
        let now = self.clock().now_ms();
        let limits = &self.email_limits;
        let client = ctx.ip.as_deref().unwrap_or_default();
        if !limits.per_client.allow(client, now)
            || !limits
                .per_recipient
                .allow(&format!("{}/{to}", ctx.access.project), now)
        {
            return Err(Error::code("TOO_MANY_ATTEMPTS_TRY_LATER"));
        }
        Ok(())
    }

    /// Production sends emails only with a mailer and a configured action page.
    fn check_delivery(&self) -> Result<()> {
        if self.config().mode == Mode::Emulator {
            return Ok(());
        }
        if self.mailer().is_none() || self.config().email_actions.action_url.is_none() {
            return Err(Error::detail(
                "OPERATION_NOT_ALLOWED",
                "Email delivery is not configured on this server ([smtp] and public_url in \
                 firekeeper.toml).",
            ));
        }
        Ok(())
    }

    /// A fresh code for `action` and its link. Emulator links point back at the server the
    /// caller reached, as the reference emulator's do; production links at the configured
    /// action page (an admin asking for a link may use the URL it called).
    async fn new_code(
        &self,
        ctx: &Ctx,
        mut action: OobAction,
        continue_url: Option<&str>,
        return_link: bool,
    ) -> Result<NewCode> {
        let code = URL_SAFE_NO_PAD.encode(random_bytes::<40>()?);
        let origin = ctx.origin.as_deref().unwrap_or("http://localhost");
        let emulator = self.config().mode == Mode::Emulator;
        let base = match (&self.config().email_actions.action_url, emulator) {
            (_, true) => format!("{origin}/emulator/action"),
            (Some(url), false) => url.clone(),
            (None, false) if return_link => format!("{origin}/__/auth/action"),
            (None, false) => return Err(Error::internal("no action URL")),
        };
        let api_key = if emulator {
            Some("fake-api-key".to_owned())
        } else {
            self.store()
                .api_keys(Some(&ctx.access.project))
                .await?
                .into_iter()
                .next()
                .map(|k| k.key)
        };
        let mut params: Vec<(&str, String)> = vec![
            ("mode", link_mode(&action.request_type).to_owned()),
            ("oobCode", code.clone()),
        ];
        if let Some(key) = api_key {
            params.push(("apiKey", key));
        }
        params.push(("lang", language(ctx.locale.as_deref()).to_owned()));
        if let Some(url) = continue_url {
            params.push(("continueUrl", url.to_owned()));
        }
        if let Some(t) = &ctx.tenant {
            params.push(("tenantId", t.clone()));
        }
        let query = serde_urlencoded::to_string(&params).map_err(Error::internal)?;
        let link = format!("{base}?{query}");
        let now = self.clock().now_ms();
        action.continue_url = continue_url.map(str::to_owned);
        if emulator {
            action.code = Some(code.clone());
            action.link = Some(link.clone());
        }
        let expires_at = if emulator {
            i64::MAX
        } else {
            now.saturating_add(
                self.config()
                    .email_actions
                    .code_lifetime_secs
                    .saturating_mul(1000),
            )
        };
        Ok(NewCode {
            row: OobCode {
                code_hash: sha256(code.as_bytes()),
                scope: ctx.scope(),
                created_at: now,
                expires_at,
                action,
            },
            code,
            link,
        })
    }

    /// Sends an action's email: through the mailer, or (emulator mode without one) to the
    /// log, as the reference emulator prints its links.
    async fn deliver(&self, ctx: &Ctx, action: &OobAction, link: &str) -> Result<()> {
        let to = recipient(action);
        let (Some(mailer), Some(message)) = (self.mailer(), self.compose(ctx, action, link)) else {
            return Ok(());
        };
        mailer.send(&message).await.map_err(|why| {
            tracing::warn!(to, %why, "sending an email failed");
            Error::internal(format!("email delivery failed: {why}"))
        })?;
        self.metrics().email_sent(&action.request_type);
        Ok(())
    }

    /// [`Auth::deliver`] after the answer: a failure is only logged.
    fn deliver_later(&self, ctx: &Ctx, action: &OobAction, link: &str) {
        let (Some(mailer), Some(message)) = (self.mailer(), self.compose(ctx, action, link)) else {
            return;
        };
        let mailer = mailer.clone();
        self.metrics().email_sent(&action.request_type);
        tokio::spawn(async move {
            if let Err(why) = mailer.send(&message).await {
                tracing::warn!(to = %message.to, %why, "sending an email failed");
            }
        });
    }

    /// The message for an action; `None` (the link logged instead) without a mailer.
    fn compose(&self, ctx: &Ctx, action: &OobAction, link: &str) -> Option<OutgoingEmail> {
        let to = recipient(action);
        if self.mailer().is_none() {
            tracing::info!(
                to,
                request_type = %action.request_type,
                link,
                "email action link (no mailer configured)"
            );
            return None;
        }
        let app = self
            .config()
            .email_actions
            .app_name
            .clone()
            .unwrap_or_else(|| ctx.access.project.clone());
        let values = TemplateValues {
            app: &app,
            email: &action.email,
            new_email: action.new_email.as_deref(),
            link,
        };
        render(
            &action.request_type,
            language(ctx.locale.as_deref()),
            to,
            &values,
        )
    }

    /// The stored code for `code` in the caller's scope: `INVALID_OOB_CODE` when unknown,
    /// used or another scope's, `EXPIRED_OOB_CODE` when past its lifetime.
    async fn pending_code(&self, scope: &Scope, code: &str) -> Result<OobCode> {
        let found = self
            .store()
            .oob_code(&sha256(code.as_bytes()))
            .await?
            .filter(|c| &c.scope == scope && oob_kind::is_email(&c.action.request_type))
            .ok_or_else(invalid_code)?;
        // A code made in emulator mode (stored in the clear, never expiring) is worth
        // nothing should the same data be served in production.
        if found.action.code.is_some() && self.config().mode == Mode::Production {
            return Err(invalid_code());
        }
        if found.expires_at <= self.clock().now_ms() {
            return Err(Error::code("EXPIRED_OOB_CODE"));
        }
        Ok(found)
    }

    /// The account a code acts on, if it still is as it was when the code was made: the
    /// same email, and (for a password reset) no password change since.
    async fn code_account(&self, scope: &Scope, code: &OobCode) -> Result<Account> {
        let uid = code.action.local_id.as_deref().ok_or_else(invalid_code)?;
        let acc = self
            .store()
            .get_account(scope, uid)
            .await?
            .ok_or_else(invalid_code)?;
        let expected = match code.action.request_type.as_str() {
            oob_kind::RECOVER_EMAIL => code.action.new_email.as_deref(),
            _ => Some(code.action.email.as_str()).filter(|e| !e.is_empty()),
        };
        if acc.email.as_deref() != expected {
            return Err(invalid_code());
        }
        if code.action.request_type == oob_kind::PASSWORD_RESET
            && acc.password_updated_at.is_some_and(|t| t > code.created_at)
        {
            return Err(invalid_code());
        }
        // An email change prepared before the account's sessions were last revoked (a
        // reset, a recovered email) dies with them: otherwise a change someone else
        // prepared could be applied again after the owner undid it. (Other kinds are bound
        // to the current email and cannot hand the account to another address.)
        if code.action.request_type == oob_kind::VERIFY_AND_CHANGE_EMAIL
            && acc
                .valid_since
                .is_some_and(|v| code.created_at < v.saturating_mul(1000))
        {
            return Err(invalid_code());
        }
        Ok(acc)
    }

    /// Uses up a code while writing its change; a code used meanwhile is `INVALID_OOB_CODE`.
    async fn redeem(
        &self,
        scope: &Scope,
        code: &OobCode,
        account: AccountWrite<'_>,
        session: Option<&crate::model::Session>,
        events: &[crate::model::Event],
    ) -> Result<()> {
        let redeemed = self
            .store()
            .redeem_oob_code(&code.code_hash, scope, account, session, events)
            .await?;
        if !redeemed {
            return Err(invalid_code());
        }
        if !events.is_empty() {
            self.feed.notify_waiters();
        }
        Ok(())
    }

    /// `accounts:resetPassword`: without `newPassword` it only describes the code (any
    /// kind); with it, a password-reset code sets the password, marks the email verified,
    /// removes every other sign-in method and revokes the user's sessions.
    pub async fn reset_password(&self, ctx: &Ctx, req: ResetPasswordRequest) -> Result<Value> {
        let code = req
            .oob_code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(Error::code("MISSING_OOB_CODE"))?;
        let scope = ctx.scope();
        let found = self.pending_code(&scope, code).await?;
        let kind = found.action.request_type.clone();
        let Some(password) = req.new_password.as_deref() else {
            return Ok(object(json!({
                "kind": "identitytoolkit#ResetPasswordResponse",
                "requestType": kind,
                "email": (kind != oob_kind::EMAIL_SIGNIN).then(|| found.action.email.clone()),
                "newEmail": found.action.new_email,
            })));
        };
        if kind != oob_kind::PASSWORD_RESET {
            return Err(invalid_code());
        }
        self.check_tenant_method(&scope, TenantMethod::PasswordSignIn)
            .await?;
        check_password(password)?;
        self.check_password_policy(&scope, password).await?;
        let hash = self.hash_password(password).await?;
        self.retry_stale(|| async {
            let found = self.pending_code(&scope, code).await?;
            let before = self.code_account(&scope, &found).await?;
            if before.disabled {
                return Err(Error::code("USER_DISABLED"));
            }
            let now = self.clock().now_ms();
            let mut acc = before.clone();
            acc.password_hash = Some(hash.clone());
            acc.password_updated_at = Some(now);
            acc.email_verified = true;
            // Whoever controls the mailbox now owns the account: sign-in methods someone
            // else may have added go, as in Firebase.
            acc.providers.clear();
            acc.phone_number = None;
            acc.valid_since = Some(now.div_euclid(1000));
            let events = self.update_events(ctx, &before, &acc, true, None);
            self.redeem(&scope, &found, AccountWrite::Update(&acc), None, &events)
                .await
        })
        .await?;
        Ok(json!({
            "kind": "identitytoolkit#ResetPasswordResponse",
            "requestType": kind,
            "email": found.action.email,
        }))
    }

    /// `accounts:update` with an `oobCode`: verifies an email, completes an email change, or
    /// undoes one.
    pub async fn apply_oob_code(&self, ctx: &Ctx, code: &str) -> Result<Value> {
        let scope = ctx.scope();
        let production = self.config().mode == Mode::Production;
        let (acc, recovery) = self
            .retry_stale(|| async {
                let found = self.pending_code(&scope, code).await?;
                let before = self.code_account(&scope, &found).await?;
                let mut acc = before.clone();
                let now = self.clock().now_ms();
                let mut recovery = None;
                match found.action.request_type.as_str() {
                    oob_kind::VERIFY_EMAIL => acc.email_verified = true,
                    oob_kind::VERIFY_AND_CHANGE_EMAIL => {
                        let new_email = found.action.new_email.clone().ok_or_else(invalid_code)?;
                        if let (Some(old), false) = (&before.email, before.is_anonymous()) {
                            acc.initial_email.get_or_insert_with(|| old.clone());
                            recovery = Some(old.clone());
                        }
                        acc.email = Some(new_email);
                        acc.email_verified = true;
                        // A new sign-in email is a credential change in production; the
                        // reference emulator keeps the sessions.
                        if production {
                            acc.valid_since = Some(now.div_euclid(1000));
                        }
                    }
                    oob_kind::RECOVER_EMAIL => {
                        acc.email = Some(found.action.email.clone());
                        acc.email_verified = true;
                        // Someone else changed the address: their sessions end.
                        acc.valid_since = Some(now.div_euclid(1000));
                    }
                    _ => return Err(invalid_code()),
                }
                let revoked = acc.valid_since != before.valid_since;
                let events = self.update_events(ctx, &before, &acc, revoked, None);
                self.redeem(&scope, &found, AccountWrite::Update(&acc), None, &events)
                    .await?;
                Ok((acc, recovery))
            })
            .await?;
        if let Some(old) = recovery {
            self.offer_recovery(ctx, &acc, &old).await;
        }
        Ok(object(json!({
            "kind": "identitytoolkit#SetAccountInfoResponse",
            "localId": acc.local_id,
            "email": acc.email,
            "emailVerified": acc.email_verified,
            "providerUserInfo": crate::wire::provider_user_info(&acc),
        })))
    }

    /// After an email change: a `RECOVER_EMAIL` code for the old address, mailed to it
    /// when emails can be sent (listed by the emulator either way). Best effort: the
    /// change has happened, and a failure here is only logged.
    pub(crate) async fn offer_recovery(&self, ctx: &Ctx, acc: &Account, old_email: &str) {
        let action = OobAction {
            request_type: oob_kind::RECOVER_EMAIL.to_owned(),
            local_id: Some(acc.local_id.clone()),
            email: old_email.to_owned(),
            new_email: acc.email.clone(),
            ..Default::default()
        };
        let sendable = self.check_delivery().is_ok();
        if !sendable && self.config().mode == Mode::Production {
            return;
        }
        let attempt = async {
            let made = self.new_code(ctx, action, None, false).await?;
            self.store().insert_oob_code(&made.row).await?;
            self.deliver(ctx, &made.row.action, &made.link).await
        };
        if let Err(e) = attempt.await {
            tracing::warn!(error = %e, "offering email recovery failed");
        }
    }

    /// `accounts:signInWithEmailLink`: signs in (or signs up) the owner of the email the
    /// link was sent to, or, with an `idToken`, adds that email to the signed-in user.
    pub async fn sign_in_with_email_link(
        &self,
        ctx: &Ctx,
        req: EmailLinkSignInRequest,
    ) -> Result<Value> {
        let email = req.email.as_deref().ok_or(Error::code("MISSING_EMAIL"))?;
        let code = req
            .oob_code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(Error::code("MISSING_OOB_CODE"))?;
        let email = check_email(email)?;
        let scope = ctx.scope();
        self.check_tenant_method(&scope, TenantMethod::EmailLink)
            .await?;
        let found = self.pending_code(&scope, code).await?;
        if found.action.request_type != oob_kind::EMAIL_SIGNIN {
            return Err(invalid_code());
        }
        if found.action.email != email {
            return Err(Error::detail(
                "INVALID_EMAIL",
                "The email provided does not match the sign-in email address.",
            ));
        }
        let owner = self.store().account_by_email(&scope, &email).await?;
        let (acc, tokens, is_new) = if let Some(token) = req.id_token.as_deref() {
            let verified = self.verify_id_token(ctx, Some(token)).await?;
            if owner
                .as_ref()
                .is_some_and(|o| o.local_id != verified.account.local_id)
            {
                return Err(Error::code("EMAIL_EXISTS"));
            }
            let mut acc = verified.account.clone();
            acc.email = Some(email.clone());
            acc.email_verified = true;
            acc.email_link_signin = true;
            let hooks = self.before_sign_in(ctx, &mut acc, "emailLink").await?;
            let mut claims = self.carried_claims(&verified).await?;
            claims.extend(hooks.session_claims);
            let (acc, tokens) = self
                .email_link_session(ctx, &found, acc, false, claims)
                .await?;
            (acc, tokens, false)
        } else if let Some(existing) = owner {
            if existing.disabled {
                return Err(Error::code("USER_DISABLED"));
            }
            // A second factor is due first: the link is used up and the mailbox proven (the
            // account's email verified), beforeSignIn runs after the second factor.
            let owned = mailbox_owner(existing.clone(), self.clock().now_ms());
            if let Some(challenge) = self
                .mfa_challenge(ctx, &owned, "password", "emailLink", None)
                .await?
            {
                let revoked = owned.valid_since != existing.valid_since;
                let events = self.update_events(ctx, &existing, &owned, revoked, None);
                let write = if owned == existing {
                    AccountWrite::None
                } else {
                    AccountWrite::Update(&owned)
                };
                self.redeem(&scope, &found, write, None, &events).await?;
                let mut body = json!({
                    "kind": "identitytoolkit#EmailLinkSigninResponse",
                    "email": existing.email,
                    "localId": existing.local_id,
                    "isNewUser": false,
                });
                if let Value::Object(m) = &mut body {
                    m.extend(challenge);
                }
                return Ok(body);
            }
            let now = self.clock().now_ms();
            let mut seen = mailbox_owner(existing, now);
            let hooks = self.before_sign_in(ctx, &mut seen, "emailLink").await?;
            // The function may have taken seconds: its changes go onto a fresh read.
            let (acc, tokens) = self
                .retry_stale(|| async {
                    let fresh = self
                        .store()
                        .account_by_email(&scope, &email)
                        .await?
                        .filter(|a| a.local_id == seen.local_id)
                        .ok_or_else(invalid_code)?;
                    if fresh.disabled {
                        return Err(Error::code("USER_DISABLED"));
                    }
                    let mut acc = mailbox_owner(fresh, now);
                    super::blocking::apply(&mut acc, &hooks.updates);
                    self.email_link_session(ctx, &found, acc, false, hooks.session_claims.clone())
                        .await
                })
                .await?;
            (acc, tokens, false)
        } else {
            let now = self.clock().now_ms();
            let mut acc = Account {
                local_id: new_local_id()?,
                email: Some(email.clone()),
                email_verified: true,
                email_link_signin: true,
                created_at: now,
                last_login_at: Some(now),
                tenant_id: ctx.tenant.clone(),
                ..Default::default()
            };
            self.before_create(ctx, &mut acc, "emailLink").await?;
            let claims = match self.before_sign_in(ctx, &mut acc, "emailLink").await {
                Ok(hooks) => hooks.session_claims,
                Err(refusal) => {
                    // The user beforeCreate let through stays, as with password sign-ups.
                    self.redeem(&scope, &found, AccountWrite::Create(&acc), None, &[])
                        .await?;
                    return Err(refusal);
                }
            };
            let (acc, tokens) = self
                .email_link_session(ctx, &found, acc, true, claims)
                .await?;
            (acc, tokens, true)
        };
        let mut body = object(json!({
            "kind": "identitytoolkit#EmailLinkSigninResponse",
            "email": acc.email,
            "localId": acc.local_id,
            "isNewUser": is_new,
        }));
        tokens.put_into(&mut body);
        Ok(body)
    }

    /// Stores an email-link sign-in: the code used up, the account created or updated and
    /// its new session, in one transaction. A disabled result (a function's doing) is
    /// stored and refused.
    async fn email_link_session(
        &self,
        ctx: &Ctx,
        code: &OobCode,
        acc: Account,
        create: bool,
        claims: Map<String, Value>,
    ) -> Result<(Account, super::IssuedTokens)> {
        let scope = ctx.scope();
        if acc.disabled {
            let write = if create {
                AccountWrite::Create(&acc)
            } else {
                AccountWrite::Update(&acc)
            };
            self.redeem(&scope, code, write, None, &[]).await?;
            return Err(Error::code("USER_DISABLED"));
        }
        // Firebase's tokens for email-link sign-ins name the password provider.
        let (session, refresh_token) = self.new_session(ctx, &acc, "password", claims).await?;
        let kind = if create {
            event_kind::SIGN_UP
        } else {
            event_kind::SIGN_IN
        };
        let mut events = vec![self.session_event(ctx, &session, kind)];
        events[0].detail.insert("method".into(), "emailLink".into());
        let write = if create {
            AccountWrite::Create(&acc)
        } else {
            AccountWrite::Update(&acc)
        };
        self.redeem(&scope, code, write, Some(&session), &events)
            .await?;
        self.enforce_session_cap(ctx, &acc.local_id).await;
        let mut acc = acc;
        acc.last_login_at = Some(session.created_at);
        let tokens = self.issue(&acc, &session, refresh_token)?;
        Ok((acc, tokens))
    }

    /// `accounts:createAuthUri`: how an email can sign in (`fetchSignInMethodsForEmail`).
    pub async fn create_auth_uri(&self, ctx: &Ctx, req: CreateAuthUriRequest) -> Result<Value> {
        if req.provider_id.is_some() {
            return Err(Error::NotImplemented(
                "Sign-in with IDP is not yet supported.".into(),
            ));
        }
        let identifier = req
            .identifier
            .as_deref()
            .filter(|i| !i.is_empty())
            .ok_or(Error::code("MISSING_IDENTIFIER"))?;
        let continue_uri = req
            .continue_uri
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or(Error::code("MISSING_CONTINUE_URI"))?;
        if !is_absolute_uri(continue_uri) {
            return Err(Error::code("INVALID_CONTINUE_URI"));
        }
        let email = check_email(identifier).map_err(|_| Error::code("INVALID_IDENTIFIER"))?;
        let session_id = match req.session_id.filter(|s| !s.is_empty()) {
            Some(s) => s,
            None => random_alnum(27)?,
        };
        let mut body = json!({
            "kind": "identitytoolkit#CreateAuthUriResponse",
            "sessionId": session_id,
        });
        // With email enumeration protection nothing says whether the email has an account.
        if self.improved_email_privacy(&ctx.access.project).await? {
            return Ok(body);
        }
        let found = self
            .store()
            .account_by_email(&ctx.scope(), &canonical_email(&email))
            .await?;
        let Some(acc) = found else {
            body["registered"] = false.into();
            return Ok(body);
        };
        let mut methods: Vec<String> = Vec::new();
        if acc.password_hash.is_some() {
            methods.push("password".into());
        }
        if acc.email_link_signin {
            methods.push("emailLink".into());
        }
        let mut providers: Vec<String> = Vec::new();
        if acc.password_hash.is_some() {
            providers.push("password".into());
        }
        for p in &acc.providers {
            methods.push(p.provider_id.clone());
            providers.push(p.provider_id.clone());
        }
        body["registered"] = true.into();
        body["allProviders"] = providers.into();
        body["signinMethods"] = methods.into();
        Ok(body)
    }

    /// The emulator's `oobCodes` listing: pending codes with their links.
    pub async fn emulator_oob_codes(&self, scope: &Scope) -> Result<Value> {
        self.emulator_only()?;
        let codes = self.store().oob_codes(scope).await?;
        let listed: Vec<Value> = codes
            .into_iter()
            .filter(|c| oob_kind::is_email(&c.action.request_type))
            .filter_map(|c| {
                let a = c.action;
                Some(object(json!({
                    "email": a.email,
                    "newEmail": a.new_email,
                    "oobCode": a.code?,
                    "oobLink": a.link?,
                    "requestType": a.request_type,
                })))
            })
            .collect();
        Ok(json!({ "oobCodes": listed }))
    }

    /// What an action page needs to know of a code it was given: `None` for unknown, used
    /// or expired codes.
    pub async fn action_code(&self, code: &str) -> Result<Option<ActionCode>> {
        let Some(found) = self.store().oob_code(&sha256(code.as_bytes())).await? else {
            return Ok(None);
        };
        let usable = self.pending_code(&found.scope, code).await.is_ok();
        Ok(usable.then_some(ActionCode {
            scope: found.scope,
            request_type: found.action.request_type,
            continue_url: found.action.continue_url,
        }))
    }

    /// The context an action page acts in: the code's project and tenant, an
    /// unprivileged caller.
    pub fn action_ctx(
        scope: Scope,
        ip: Option<String>,
        user_agent: Option<String>,
        origin: Option<String>,
    ) -> Ctx {
        Ctx {
            access: Access {
                project: scope.project,
                privileged: false,
            },
            tenant: scope.tenant,
            ip,
            user_agent,
            locale: None,
            origin,
        }
    }
}
