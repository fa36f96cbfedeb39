//! Verification sessions: the `sessionInfo` of an SMS code (phone sign-in, second-factor
//! enrollment and sign-in) or of a TOTP secret being enrolled, and MFA pending
//! credentials. They are one-time secrets kept like email action codes: only a hash is
//! stored, they expire, and redeeming one deletes it in the same transaction as the change
//! it makes.

use serde_json::{json, Value};

use super::{object, Auth, Ctx, Mode};
use crate::error::{Error, Result};
use crate::model::{OobAction, OobCode, Scope};
use crate::ratelimit::RateLimiter;
use crate::secrets::{new_secret, random_bytes, sha256};
use crate::sms::{message, OutgoingSms};

/// How long a code, a TOTP enrollment or a pending credential stays good (production).
pub(crate) const SESSION_LIFETIME_MS: i64 = 10 * 60_000;
/// Wrong codes a session survives; the next wrong one ends it.
const MAX_WRONG_CODES: usize = 5;
const WINDOW_MS: i64 = 10 * 60_000;

/// Per-instance limits on texts and on guessing.
pub(crate) struct SmsLimits {
    per_number: RateLimiter,
    per_client: RateLimiter,
    /// Wrong codes per session (and per account for TOTP sign-ins).
    pub(crate) wrong_codes: RateLimiter,
}

impl Default for SmsLimits {
    fn default() -> Self {
        Self {
            per_number: RateLimiter::new(5, WINDOW_MS),
            per_client: RateLimiter::new(50, WINDOW_MS),
            wrong_codes: RateLimiter::new(MAX_WRONG_CODES, WINDOW_MS),
        }
    }
}

/// A phone number as people type it (`+1 650-555-3434`), in E.164.
pub(crate) fn normalize_phone(given: &str) -> Option<String> {
    let compact: String = given
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    crate::validate::is_valid_phone(&compact).then_some(compact)
}

/// A request field that says something.
pub(crate) fn present(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Six decimal digits, unbiased.
fn new_sms_code() -> Result<String> {
    loop {
        let n = u32::from_be_bytes(random_bytes::<4>()?);
        // 4_294_000_000 is the largest multiple of 10^6 below 2^32.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

impl Auth {
    /// Stores a new session for `action` and returns its secret. Emulator mode keeps the
    /// secret in the clear (its listing shows it) and never expires it, as the reference
    /// emulator.
    pub(crate) async fn start_verification(&self, ctx: &Ctx, action: OobAction) -> Result<String> {
        self.start_verification_for(ctx, action, SESSION_LIFETIME_MS)
            .await
    }

    /// [`Auth::start_verification`] with a lifetime of its own (production).
    pub(crate) async fn start_verification_for(
        &self,
        ctx: &Ctx,
        mut action: OobAction,
        lifetime_ms: i64,
    ) -> Result<String> {
        let secret = new_secret()?;
        let now = self.clock().now_ms();
        let emulator = self.config().mode == Mode::Emulator;
        if emulator {
            action.code = Some(secret.clone());
        }
        let row = OobCode {
            code_hash: sha256(secret.as_bytes()),
            scope: ctx.scope(),
            created_at: now,
            expires_at: if emulator {
                i64::MAX
            } else {
                now + lifetime_ms
            },
            action,
        };
        self.store().insert_oob_code(&row).await?;
        Ok(secret)
    }

    /// The live session of kind `kind` behind `secret` in the caller's scope. Unknown,
    /// used, foreign and emulator-made secrets are `invalid`; expired ones `expired`.
    pub(crate) async fn verification(
        &self,
        ctx: &Ctx,
        secret: &str,
        kind: &str,
        invalid: Error,
        expired: Error,
    ) -> Result<OobCode> {
        let found = self.store().oob_code(&sha256(secret.as_bytes())).await?;
        self.live_verification(ctx, found, kind, invalid, expired)
    }

    /// [`Auth::verification`]'s checks of a session already read.
    pub(crate) fn live_verification(
        &self,
        ctx: &Ctx,
        found: Option<OobCode>,
        kind: &str,
        invalid: Error,
        expired: Error,
    ) -> Result<OobCode> {
        let found = found
            .filter(|c| c.scope == ctx.scope() && c.action.request_type == kind)
            .ok_or_else(|| invalid.clone())?;
        if found.action.code.is_some() && self.config().mode == Mode::Production {
            return Err(invalid);
        }
        if found.expires_at <= self.clock().now_ms() {
            return Err(expired);
        }
        Ok(found)
    }

    /// Checks the code a user typed against the one texted. Every try counts against the
    /// session before the comparison (so a burst of guesses gets no more than its share),
    /// a right one is given back; a session out of tries is deleted.
    pub(crate) async fn check_sms_code(&self, session: &OobCode, typed: &str) -> Result<()> {
        let key = crate::secrets::hex(&session.code_hash);
        let now = self.clock().now_ms();
        let tries = &self.sms_limits.wrong_codes;
        if !tries.allow(&key, now) {
            self.end_verification(&session.scope, &session.code_hash)
                .await;
            return Err(Error::code("INVALID_SESSION_INFO"));
        }
        let expected = session.action.sms_code.as_deref().unwrap_or_default();
        let good = !expected.is_empty()
            && aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                typed.trim().as_bytes(),
            )
            .is_ok();
        if good {
            tries.undo(&key);
            return Ok(());
        }
        if tries.exhausted(&key, now) {
            self.end_verification(&session.scope, &session.code_hash)
                .await;
        }
        Err(Error::code("INVALID_CODE"))
    }

    /// Deletes a session that is no longer needed (best effort: it expires anyway).
    pub(crate) async fn end_verification(&self, scope: &Scope, session_hash: &[u8]) {
        if let Err(e) = self.claim_verification(scope, session_hash).await {
            tracing::warn!(error = %e, "deleting a verification session failed");
        }
    }

    /// Uses a session up: true for the one caller that deleted it.
    pub(crate) async fn claim_verification(
        &self,
        scope: &Scope,
        session_hash: &[u8],
    ) -> Result<bool> {
        Ok(self
            .store()
            .redeem_oob_code(
                session_hash,
                scope,
                crate::store::AccountWrite::None,
                None,
                &[],
            )
            .await?)
    }

    /// The fixed code of a test phone number (the project's
    /// `signIn.phoneNumber.testPhoneNumbers`, a tenant's `testPhoneNumbers`): no text is
    /// sent for it and no limit applies.
    async fn test_phone_code(&self, scope: &Scope, phone: &str) -> Result<Option<String>> {
        let numbers = match &scope.tenant {
            Some(t) => self
                .tenant(&scope.project, t)
                .await?
                .and_then(|t| t.get("testPhoneNumbers").cloned()),
            None => self
                .project_settings(&scope.project)
                .await?
                .pointer("/signIn/phoneNumber/testPhoneNumbers")
                .cloned(),
        };
        let Some(Value::Object(numbers)) = numbers else {
            return Ok(None);
        };
        Ok(numbers.iter().find_map(|(number, code)| {
            (normalize_phone(number).as_deref() == Some(phone))
                .then(|| code.as_str().map(str::to_owned))
                .flatten()
        }))
    }

    /// Texts a new code to `phone` and starts its session (`action` says what the code is
    /// for). Test numbers get their fixed code and no text. Production limits texts per
    /// number and per client, runs beforeSendSms, and refuses when no sender is configured.
    pub(crate) async fn send_sms_code(
        &self,
        ctx: &Ctx,
        phone: &str,
        sms_kind: &'static str,
        mut action: OobAction,
    ) -> Result<String> {
        let scope = ctx.scope();
        let production = self.config().mode == Mode::Production;
        let fixed = self.test_phone_code(&scope, phone).await?;
        let code = match &fixed {
            Some(c) => c.clone(),
            None => new_sms_code()?,
        };
        if production {
            let served = self
                .sms_sender
                .as_ref()
                .is_some_and(|s| s.serves(&scope.project));
            if fixed.is_none() && !served {
                return Err(Error::detail(
                    "OPERATION_NOT_ALLOWED",
                    "SMS delivery is not configured for this project ([sms] in \
                     firekeeper.toml); only test phone numbers work.",
                ));
            }
            // Per project, tenant and purpose, so texts one caller asks for cannot use up
            // another purpose's (a second factor's sign-in codes). Test numbers count too:
            // their code is fixed, so sessions must not be free to guess with.
            let now = self.clock().now_ms();
            let number_key = format!(
                "{}/{}/{sms_kind}/{phone}",
                scope.project,
                scope.tenant_key()
            );
            let client = ctx.ip.as_deref().unwrap_or("unknown");
            if !self.sms_limits.per_number.allow(&number_key, now)
                || (fixed.is_none() && !self.sms_limits.per_client.allow(client, now))
            {
                return Err(Error::code("TOO_MANY_ATTEMPTS_TRY_LATER"));
            }
            if fixed.is_none() {
                self.before_send_sms(ctx, phone, sms_kind).await?;
            }
        }
        action.phone_number = Some(phone.to_owned());
        action.sms_code = Some(code.clone());
        let session = self.start_verification(ctx, action).await?;
        if fixed.is_some() {
            return Ok(session);
        }
        let app = self
            .config()
            .email_actions
            .app_name
            .clone()
            .unwrap_or_else(|| ctx.access.project.clone());
        let (text, language) = message(ctx.locale.as_deref(), &app, &code);
        match &self.sms_sender {
            Some(sender) => {
                let sms = OutgoingSms {
                    to: phone.to_owned(),
                    text,
                    code,
                    kind: sms_kind,
                    project: ctx.access.project.clone(),
                    tenant: ctx.tenant.clone(),
                    language,
                };
                if let Err(reason) = sender.send(&sms).await {
                    tracing::warn!(%reason, "sending a text message failed");
                    self.end_verification(&scope, &sha256(session.as_bytes()))
                        .await;
                    return Err(Error::detail(
                        "INTERNAL_ERROR",
                        "The text message could not be sent.",
                    ));
                }
                self.metrics().sms_sent(sms_kind);
            }
            // Emulator mode without a sender: the log, as the reference emulator.
            None => tracing::info!("To verify the phone number {phone}, use the code {code}."),
        }
        Ok(session)
    }

    /// The emulator's `verificationCodes` listing: pending SMS codes with their sessions.
    pub async fn emulator_verification_codes(&self, scope: &Scope) -> Result<Value> {
        self.emulator_only()?;
        let codes = self.store().oob_codes(scope).await?;
        let listed: Vec<Value> = codes
            .into_iter()
            .filter_map(|c| {
                let a = c.action;
                Some(object(json!({
                    "code": a.sms_code?,
                    "phoneNumber": a.phone_number,
                    "sessionInfo": a.code?,
                })))
            })
            .collect();
        Ok(json!({ "verificationCodes": listed }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised() {
        assert_eq!(
            normalize_phone("+1 (650) 555-3434").as_deref(),
            Some("+16505553434")
        );
        assert_eq!(normalize_phone("650 555 3434"), None);
        assert_eq!(normalize_phone("+1 650 abc"), None);
        for _ in 0..50 {
            let c = new_sms_code().unwrap();
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
