//! Second factors (§3.2): TOTP authenticators and phones that receive codes.
//! `v2/accounts/mfaEnrollment:start|finalize|withdraw`, `v2/accounts/mfaSignIn:start|finalize`,
//! and the pending credential a first factor gets when a second one is due.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::blocking::apply;
use super::verification::{normalize_phone, present, SESSION_LIFETIME_MS};
use super::{
    object, Auth, Ctx, MfaEnrollmentFinalizeRequest, MfaEnrollmentStartRequest,
    MfaSignInFinalizeRequest, MfaSignInStartRequest, MfaWithdrawRequest, Mode, VerifiedIdToken,
};
use crate::error::{Error, Result};
use crate::model::{event_kind, oob_kind, Account, MfaEnrollment, OobAction, OobCode, Scope};
use crate::secrets::{hex, random_alnum};
use crate::sms::sms_type;
use crate::store::AccountWrite;
use crate::totp;
use crate::wire::rfc3339_ms;

/// Most second factors one account may have, as Firebase.
const MAX_ENROLLMENTS: usize = 5;
/// First factors a second factor cannot be added to.
const NO_SECOND_FACTOR: &[&str] = &["anonymous", "phone", "custom", "gc.apple.com"];
/// The key of a session's extra claims that holds its second factor; it becomes part of
/// the token's `firebase` claim (`sign_in_second_factor`, `second_factor_identifier`).
pub(crate) const SECOND_FACTOR_KEY: &str = "firebase";
/// Sealing context of TOTP secrets: a secret opens only as one.
const TOTP_AAD: &[u8] = b"firekeeper totp secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MfaState {
    Disabled,
    /// Second factors may be enrolled, and enrolled ones are asked for.
    Enabled,
}

/// A project's or tenant's multi-factor settings (`mfa` of the v2 config, `mfaConfig` of a
/// tenant).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MfaSettings {
    state: MfaState,
    sms: bool,
    totp: bool,
    /// Time steps accepted either side of now, for authenticators with a drifting clock.
    adjacent_intervals: i64,
}

impl MfaSettings {
    fn from_config(cfg: &Value) -> Self {
        let state = match cfg.get("state").and_then(Value::as_str) {
            Some("ENABLED") | Some("MANDATORY") => MfaState::Enabled,
            _ => MfaState::Disabled,
        };
        let sms = cfg
            .get("enabledProviders")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|v| v == "PHONE_SMS"));
        let totp_config = cfg
            .get("providerConfigs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("state") == Some(&json!("ENABLED")))
            .and_then(|p| p.get("totpProviderConfig"));
        Self {
            state,
            sms,
            totp: totp_config.is_some(),
            adjacent_intervals: totp_config
                .and_then(|t| t.get("adjacentIntervals"))
                .and_then(Value::as_i64)
                .unwrap_or(5)
                .clamp(0, 10),
        }
    }
}

/// `+*******0100`: every digit but the last four hidden, as sign-in hints show phones.
pub(crate) fn obfuscate_phone(phone: &str) -> String {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    phone
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen + 4 > digits {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// A digest of what a pending credential must find unchanged: the password, the email and
/// the revocation time.
fn credential_stamp(acc: &Account) -> String {
    let seen = json!([acc.password_hash, acc.email, acc.valid_since]).to_string();
    hex(&crate::secrets::sha256(seen.as_bytes()))
}

fn second_factor(factor: &str, enrollment_id: &str) -> Value {
    json!({
        "sign_in_second_factor": factor,
        "second_factor_identifier": enrollment_id,
    })
}

/// Admin-given enrollments (`signUp`'s `mfaInfo`, `accounts:update`'s `mfa.enrollments`):
/// phones only, as the Admin SDKs send them. An enrollment named by the id of one the
/// account has keeps that one's secret (TOTP enrollments survive an admin's rewrite of the
/// list). `require_ids`: updates must name every enrollment.
pub(crate) fn admin_enrollments(
    given: &[Map<String, Value>],
    existing: &[MfaEnrollment],
    now_ms: i64,
    require_ids: bool,
) -> Result<Vec<MfaEnrollment>> {
    let mut out: Vec<MfaEnrollment> = Vec::with_capacity(given.len());
    for entry in given {
        let id = entry
            .get("mfaEnrollmentId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        if let Some(kept) = id.and_then(|id| {
            existing
                .iter()
                .find(|e| e.mfa_enrollment_id == id && e.totp_info.is_some())
        }) {
            let mut kept = kept.clone();
            if let Some(n) = entry.get("displayName").and_then(Value::as_str) {
                kept.display_name = Some(n.to_owned());
            }
            out.push(kept);
            continue;
        }
        let phone = entry
            .get("phoneInfo")
            .and_then(Value::as_str)
            .and_then(normalize_phone)
            .ok_or_else(|| Error::detail("INVALID_MFA_PHONE_NUMBER", "Invalid format."))?;
        let id = match id {
            Some(id) => id.to_owned(),
            None if require_ids => {
                return Err(Error::detail(
                    "INVALID_MFA_ENROLLMENT_ID",
                    "mfaEnrollmentId must be defined.",
                ))
            }
            None => random_alnum(28)?,
        };
        let enrolled_at = entry
            .get("enrolledAt")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| rfc3339_ms(now_ms));
        out.push(MfaEnrollment {
            mfa_enrollment_id: id,
            display_name: entry
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            enrolled_at: Some(enrolled_at),
            phone_info: Some(phone),
            ..Default::default()
        });
    }
    for (i, e) in out.iter().enumerate() {
        if out[..i]
            .iter()
            .any(|o| o.mfa_enrollment_id == e.mfa_enrollment_id)
        {
            return Err(Error::code("DUPLICATE_MFA_ENROLLMENT_ID"));
        }
        if e.phone_info.is_some() && out[..i].iter().any(|o| o.phone_info == e.phone_info) {
            return Err(Error::detail(
                "INTERNAL_ERROR",
                "MFA Enrollment Phone Numbers must be unique.",
            ));
        }
    }
    Ok(out)
}

impl Auth {
    /// The multi-factor settings of a project or tenant. Emulator projects without
    /// settings have SMS and TOTP on (the reference emulator has SMS only); production
    /// ones have them off until configured.
    pub(crate) async fn mfa_settings(&self, scope: &Scope) -> Result<MfaSettings> {
        let cfg = match &scope.tenant {
            Some(t) => self
                .tenant(&scope.project, t)
                .await?
                .and_then(|t| t.get("mfaConfig").cloned()),
            None => self
                .project_settings(&scope.project)
                .await?
                .get("mfa")
                .cloned(),
        };
        Ok(match cfg {
            Some(c) => MfaSettings::from_config(&c),
            None if self.config().mode == Mode::Emulator && scope.tenant.is_none() => MfaSettings {
                state: MfaState::Enabled,
                sms: true,
                totp: true,
                adjacent_intervals: 5,
            },
            None => MfaSettings::from_config(&Value::Null),
        })
    }

    /// After a first factor passed: when the account has second factors and they are
    /// asked for, the answer's `mfaPendingCredential` and `mfaInfo` (phones obfuscated)
    /// instead of tokens. `provider` and `method` are the first factor's, kept for the
    /// tokens and beforeSignIn after the second.
    pub(crate) async fn mfa_challenge(
        &self,
        ctx: &Ctx,
        acc: &Account,
        provider: &str,
        method: &str,
        link: Option<&crate::model::ProviderUserInfo>,
    ) -> Result<Option<Map<String, Value>>> {
        if acc.mfa_info.is_empty() {
            return Ok(None);
        }
        if self.mfa_settings(&ctx.scope()).await?.state == MfaState::Disabled {
            return Ok(None);
        }
        let action = OobAction {
            request_type: oob_kind::MFA_PENDING.to_owned(),
            local_id: Some(acc.local_id.clone()),
            provider: Some(provider.to_owned()),
            sign_in_method: Some(method.to_owned()),
            credential_stamp: Some(credential_stamp(acc)),
            link_identity: link.cloned(),
            ..Default::default()
        };
        let pending = self.start_verification(ctx, action).await?;
        let hints: Vec<Value> = acc
            .mfa_info
            .iter()
            .map(|e| {
                let mut w = e.wire();
                if let Some(p) = &e.phone_info {
                    w["phoneInfo"] = obfuscate_phone(p).into();
                }
                w
            })
            .collect();
        let mut m = Map::new();
        m.insert("mfaPendingCredential".into(), pending.into());
        m.insert("mfaInfo".into(), hints.into());
        Ok(Some(m))
    }

    /// The live pending credential `secret`.
    async fn pending_credential(&self, ctx: &Ctx, secret: &str) -> Result<OobCode> {
        let invalid = || Error::code("INVALID_MFA_PENDING_CREDENTIAL");
        let found = self
            .store()
            .oob_code(&crate::secrets::sha256(secret.as_bytes()))
            .await?;
        let of_another_project = found.as_ref().is_some_and(|c| {
            c.action.request_type == oob_kind::MFA_PENDING && c.scope.project != ctx.access.project
        });
        if of_another_project {
            return Err(Error::detail(
                "INVALID_PROJECT_ID",
                "Project ID does not match MFA pending credential.",
            ));
        }
        self.live_verification(ctx, found, oob_kind::MFA_PENDING, invalid(), invalid())
    }

    fn seal_totp_secret(&self, secret: &[u8]) -> Result<String> {
        Ok(URL_SAFE_NO_PAD.encode(self.master().seal_for(secret, TOTP_AAD)?))
    }

    fn open_totp_secret(&self, sealed: &str) -> Result<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(Error::internal)?;
        self.master().open_for(&bytes, TOTP_AAD)
    }

    /// The time step of a TOTP code, checked against a sealed secret within the configured
    /// window and after `after` (a code is good once). Every try counts against `tries`
    /// before the comparison, so a burst of guesses gets no more than its share; a right
    /// one is given back.
    async fn check_totp(
        &self,
        scope: &Scope,
        tries: &str,
        sealed: &str,
        code: &str,
        after: Option<i64>,
    ) -> Result<i64> {
        let now = self.clock().now_ms();
        let limit = &self.sms_limits.wrong_codes;
        if !limit.allow(tries, now) {
            return Err(Error::code("TOO_MANY_ATTEMPTS_TRY_LATER"));
        }
        let settings = self.mfa_settings(scope).await?;
        let key = self.open_totp_secret(sealed)?;
        let step = totp::matching_step(
            &key,
            code.trim(),
            totp::step_at(now.div_euclid(1000)),
            settings.adjacent_intervals,
            after,
        )
        .ok_or(Error::code("INVALID_CODE"))?;
        limit.undo(tries);
        Ok(step)
    }

    /// Who may enroll: a first factor that can carry a second, and a verified email.
    fn check_enrollable(&self, v: &VerifiedIdToken) -> Result<()> {
        let first = v.sign_in_provider().unwrap_or_default();
        if NO_SECOND_FACTOR.contains(&first) {
            return Err(Error::detail(
                "UNSUPPORTED_FIRST_FACTOR",
                "MFA is not available for the given first factor.",
            ));
        }
        if !v.account.email_verified {
            return Err(Error::detail(
                "UNVERIFIED_EMAIL",
                "Need to verify email first before enrolling second factors.",
            ));
        }
        if v.account.mfa_info.len() >= MAX_ENROLLMENTS {
            return Err(Error::code("SECOND_FACTOR_LIMIT_EXCEEDED"));
        }
        Ok(())
    }

    /// `v2/accounts/mfaEnrollment:start`: a TOTP secret to confirm, or a code texted to
    /// the phone being enrolled.
    pub async fn mfa_enrollment_start(
        &self,
        ctx: &Ctx,
        req: MfaEnrollmentStartRequest,
    ) -> Result<Value> {
        let settings = self.mfa_settings(&ctx.scope()).await?;
        let totp_wanted = req.totp_enrollment_info.is_some();
        if settings.state == MfaState::Disabled
            || (totp_wanted && !settings.totp)
            || (!totp_wanted && !settings.sms)
        {
            let which = if totp_wanted { "TOTP" } else { "SMS" };
            return Err(Error::detail(
                "OPERATION_NOT_ALLOWED",
                format!("{which} based MFA not enabled."),
            ));
        }
        let v = self.verify_id_token(ctx, req.id_token.as_deref()).await?;
        self.check_enrollable(&v)?;
        let uid = v.account.local_id.clone();
        if totp_wanted {
            let secret = totp::new_secret()?;
            let action = OobAction {
                request_type: oob_kind::MFA_ENROLLMENT.to_owned(),
                local_id: Some(uid),
                totp_secret: Some(self.seal_totp_secret(&secret)?),
                ..Default::default()
            };
            let session = self.start_verification(ctx, action).await?;
            let deadline = self.clock().now_ms() + SESSION_LIFETIME_MS;
            return Ok(json!({
                "totpSessionInfo": {
                    "sharedSecretKey": totp::encode_secret(&secret),
                    "verificationCodeLength": totp::DIGITS,
                    "hashingAlgorithm": totp::ALGORITHM,
                    "periodSec": totp::PERIOD_SECS,
                    "sessionInfo": session,
                    "finalizeEnrollmentTime": rfc3339_ms(deadline),
                }
            }));
        }
        let info = req
            .phone_enrollment_info
            .ok_or_else(|| Error::detail("INVALID_ARGUMENT", "((Missing phoneEnrollmentInfo.))"))?;
        let phone = info
            .phone_number
            .as_deref()
            .and_then(normalize_phone)
            .ok_or_else(|| Error::detail("INVALID_PHONE_NUMBER", "Invalid format."))?;
        if v.account
            .mfa_info
            .iter()
            .any(|e| e.phone_info.as_deref() == Some(phone.as_str()))
        {
            return Err(Error::detail(
                "SECOND_FACTOR_EXISTS",
                "Phone number already enrolled as second factor for this account.",
            ));
        }
        let action = OobAction {
            request_type: oob_kind::MFA_ENROLLMENT.to_owned(),
            local_id: Some(uid),
            ..Default::default()
        };
        let session = self
            .send_sms_code(ctx, &phone, sms_type::MULTI_FACTOR_ENROLLMENT, action)
            .await?;
        Ok(json!({ "phoneSessionInfo": { "sessionInfo": session } }))
    }

    /// `v2/accounts/mfaEnrollment:finalize`: the code proves the factor; it is added and
    /// the caller gets tokens of a session that passed it.
    pub async fn mfa_enrollment_finalize(
        &self,
        ctx: &Ctx,
        req: MfaEnrollmentFinalizeRequest,
    ) -> Result<Value> {
        let v = self.verify_id_token(ctx, req.id_token.as_deref()).await?;
        let (info, totp_wanted) = match (req.totp_verification_info, req.phone_verification_info) {
            (Some(t), _) => (t, true),
            (None, Some(p)) => (p, false),
            (None, None) => {
                return Err(Error::detail(
                    "INVALID_ARGUMENT",
                    "((Missing phoneVerificationInfo.))",
                ))
            }
        };
        if info.android_verification_proof.is_some() {
            return Err(Error::NotImplemented(
                "androidVerificationProof is not supported.".into(),
            ));
        }
        let code = present(if totp_wanted {
            info.verification_code
        } else {
            info.code
        })
        .ok_or(Error::code("MISSING_CODE"))?;
        let secret = present(info.session_info).ok_or(Error::code("MISSING_SESSION_INFO"))?;
        let session = self
            .verification(
                ctx,
                &secret,
                oob_kind::MFA_ENROLLMENT,
                Error::code("INVALID_SESSION_INFO"),
                Error::code("SESSION_EXPIRED"),
            )
            .await?;
        let uid = v.account.local_id.clone();
        if session.action.local_id.as_deref() != Some(uid.as_str()) {
            return Err(Error::code("INVALID_SESSION_INFO"));
        }
        let now = self.clock().now_ms();
        let mut enrollment = MfaEnrollment {
            mfa_enrollment_id: random_alnum(28)?,
            display_name: present(req.display_name),
            enrolled_at: Some(rfc3339_ms(now)),
            ..Default::default()
        };
        match (totp_wanted, &session.action.totp_secret) {
            (true, Some(sealed)) => {
                let tries = hex(&session.code_hash);
                let step = self
                    .check_totp(&ctx.scope(), &tries, sealed, &code, None)
                    .await
                    .map_err(|e| {
                        if e == Error::code("TOO_MANY_ATTEMPTS_TRY_LATER") {
                            Error::code("INVALID_SESSION_INFO")
                        } else {
                            e
                        }
                    })?;
                enrollment.totp_info = Some(Map::new());
                enrollment.totp_secret = Some(sealed.clone());
                enrollment.totp_last_step = Some(step);
            }
            (false, None) => {
                self.check_sms_code(&session, &code).await?;
                enrollment.phone_info = session.action.phone_number.clone();
            }
            _ => return Err(Error::code("INVALID_SESSION_INFO")),
        }
        let scope = ctx.scope();
        let carried = self.carried_claims(&v).await?;
        let provider = v.sign_in_provider().unwrap_or("password").to_owned();
        let (acc, tokens) = self
            .retry_stale(|| async {
                let mut next = self.require_account(&scope, &uid).await?;
                if next.mfa_info.len() >= MAX_ENROLLMENTS {
                    return Err(Error::code("SECOND_FACTOR_LIMIT_EXCEEDED"));
                }
                if enrollment.phone_info.is_some()
                    && next
                        .mfa_info
                        .iter()
                        .any(|e| e.phone_info == enrollment.phone_info)
                {
                    return Err(Error::detail(
                        "SECOND_FACTOR_EXISTS",
                        "Phone number already enrolled as second factor for this account.",
                    ));
                }
                next.mfa_info.push(enrollment.clone());
                let mut claims = carried.clone();
                claims.insert(
                    SECOND_FACTOR_KEY.into(),
                    second_factor(enrollment.factor_id(), &enrollment.mfa_enrollment_id),
                );
                let (s, refresh) = self.new_session(ctx, &next, &provider, claims).await?;
                let mut detail = Map::new();
                detail.insert("factorId".into(), enrollment.factor_id().into());
                detail.insert(
                    "mfaEnrollmentId".into(),
                    enrollment.mfa_enrollment_id.clone().into(),
                );
                let events = [self.event(ctx, &uid, Some(&s.id), event_kind::MFA_ENROLLED, detail)];
                let redeemed = self
                    .store()
                    .redeem_oob_code(
                        &session.code_hash,
                        &scope,
                        AccountWrite::Update(&next),
                        Some(&s),
                        &events,
                    )
                    .await?;
                if !redeemed {
                    return Err(Error::code("INVALID_SESSION_INFO"));
                }
                let tokens = self.issue(&next, &s, refresh)?;
                Ok((next, tokens))
            })
            .await?;
        self.enforce_session_cap(ctx, &acc.local_id).await;
        let mut body = object(json!({ "localId": acc.local_id }));
        tokens.put_into(&mut body);
        Ok(body)
    }

    /// `v2/accounts/mfaEnrollment:withdraw`: removes a factor. The caller's new tokens
    /// keep the session's second factor unless it was the one removed.
    pub async fn mfa_withdraw(&self, ctx: &Ctx, req: MfaWithdrawRequest) -> Result<Value> {
        let v = self.verify_id_token(ctx, req.id_token.as_deref()).await?;
        let id = present(req.mfa_enrollment_id).ok_or(Error::code("MFA_ENROLLMENT_NOT_FOUND"))?;
        let scope = ctx.scope();
        let uid = v.account.local_id.clone();
        let mut carried = self.carried_claims(&v).await?;
        let used_the_factor = carried
            .get(SECOND_FACTOR_KEY)
            .and_then(|f| f.get("second_factor_identifier"))
            .is_some_and(|i| i == id.as_str());
        if used_the_factor {
            carried.remove(SECOND_FACTOR_KEY);
        }
        let provider = v.sign_in_provider().unwrap_or("password").to_owned();
        let tokens = self
            .retry_stale(|| async {
                let before = self.require_account(&scope, &uid).await?;
                if !before.mfa_info.iter().any(|e| e.mfa_enrollment_id == id) {
                    return Err(Error::code("MFA_ENROLLMENT_NOT_FOUND"));
                }
                let mut next = before.clone();
                next.mfa_info.retain(|e| e.mfa_enrollment_id != id);
                let (s, refresh) = self
                    .new_session(ctx, &next, &provider, carried.clone())
                    .await?;
                let mut detail = Map::new();
                detail.insert("mfaEnrollmentId".into(), id.clone().into());
                let events =
                    [self.event(ctx, &uid, Some(&s.id), event_kind::MFA_WITHDRAWN, detail)];
                self.store()
                    .update_account(&scope, &next, Some(&s), &events)
                    .await?;
                self.issue(&next, &s, refresh)
            })
            .await?;
        self.enforce_session_cap(ctx, &uid).await;
        let mut body = json!({});
        tokens.put_into(&mut body);
        Ok(body)
    }

    /// `v2/accounts/mfaSignIn:start`: texts a code to an enrolled phone. TOTP needs no
    /// start: the client computes its code.
    pub async fn mfa_sign_in_start(&self, ctx: &Ctx, req: MfaSignInStartRequest) -> Result<Value> {
        let secret = present(req.mfa_pending_credential).ok_or_else(|| {
            Error::detail(
                "MISSING_MFA_PENDING_CREDENTIAL",
                "Request does not have MFA pending credential.",
            )
        })?;
        let id = present(req.mfa_enrollment_id).ok_or_else(|| {
            Error::detail(
                "MISSING_MFA_ENROLLMENT_ID",
                "No second factor identifier is provided.",
            )
        })?;
        let pending = self.pending_credential(ctx, &secret).await?;
        let uid = pending.action.local_id.clone().unwrap_or_default();
        let acc = self.require_account(&ctx.scope(), &uid).await?;
        if acc.disabled {
            return Err(Error::code("USER_DISABLED"));
        }
        let enrollment = acc
            .mfa_info
            .iter()
            .find(|e| e.mfa_enrollment_id == id)
            .ok_or(Error::code("MFA_ENROLLMENT_NOT_FOUND"))?;
        let (Some(phone), Some(_)) = (&enrollment.phone_info, &req.phone_sign_in_info) else {
            return Err(Error::detail(
                "INVALID_ARGUMENT",
                "MFA provider not supported!",
            ));
        };
        let action = OobAction {
            request_type: oob_kind::MFA_SIGN_IN.to_owned(),
            local_id: Some(uid),
            mfa_enrollment_id: Some(id),
            pending: Some(hex(&pending.code_hash)),
            ..Default::default()
        };
        let session = self
            .send_sms_code(ctx, phone, sms_type::MULTI_FACTOR_SIGN_IN, action)
            .await?;
        Ok(json!({ "phoneResponseInfo": { "sessionInfo": session } }))
    }

    /// `v2/accounts/mfaSignIn:finalize`: the second factor's code completes the sign-in
    /// the pending credential started; beforeSignIn runs now, with
    /// `sign_in_second_factor`. The pending credential is good once.
    pub async fn mfa_sign_in_finalize(
        &self,
        ctx: &Ctx,
        req: MfaSignInFinalizeRequest,
    ) -> Result<Value> {
        let secret = present(req.mfa_pending_credential).ok_or_else(|| {
            Error::detail("MISSING_CREDENTIAL", "Please set MFA Pending Credential.")
        })?;
        let pending = self.pending_credential(ctx, &secret).await?;
        let scope = ctx.scope();
        let uid = pending.action.local_id.clone().unwrap_or_default();
        let seen = self.require_account(&scope, &uid).await?;
        if seen.disabled {
            return Err(Error::code("USER_DISABLED"));
        }
        // Credentials changed or sessions revoked since the first factor: start over.
        let stamp = pending.action.credential_stamp.clone();
        if stamp.as_deref() != Some(credential_stamp(&seen).as_str()) {
            return Err(Error::code("INVALID_MFA_PENDING_CREDENTIAL"));
        }
        let (factor, enrollment_id, step) = if let Some(info) = req.totp_verification_info {
            let id = present(req.mfa_enrollment_id).ok_or_else(|| {
                Error::detail(
                    "MISSING_MFA_ENROLLMENT_ID",
                    "No second factor identifier is provided.",
                )
            })?;
            let enrollment = seen
                .mfa_info
                .iter()
                .find(|e| e.mfa_enrollment_id == id && e.totp_info.is_some())
                .ok_or(Error::code("MFA_ENROLLMENT_NOT_FOUND"))?;
            let code = present(info.verification_code).ok_or(Error::code("MISSING_CODE"))?;
            // An authenticator enrolled by an admin's list without its secret is no factor.
            let sealed = enrollment
                .totp_secret
                .as_deref()
                .ok_or(Error::code("MFA_ENROLLMENT_NOT_FOUND"))?;
            // Guessing is limited per account, whatever pending credential it comes with.
            let tries = format!("totp:{}:{}:{uid}", scope.project, scope.tenant_key());
            let step = self
                .check_totp(&scope, &tries, sealed, &code, enrollment.totp_last_step)
                .await?;
            ("totp", id, Some(step))
        } else if let Some(info) = req.phone_verification_info {
            let session_secret =
                present(info.session_info).ok_or(Error::code("MISSING_SESSION_INFO"))?;
            let code = present(info.code).ok_or(Error::code("MISSING_CODE"))?;
            let sms = self
                .verification(
                    ctx,
                    &session_secret,
                    oob_kind::MFA_SIGN_IN,
                    Error::code("INVALID_SESSION_INFO"),
                    Error::code("SESSION_EXPIRED"),
                )
                .await?;
            if sms.action.pending.as_deref() != Some(hex(&pending.code_hash).as_str()) {
                return Err(Error::code("INVALID_SESSION_INFO"));
            }
            self.check_sms_code(&sms, &code).await?;
            // One sign-in per texted code, even for requests racing with it.
            if !self.claim_verification(&scope, &sms.code_hash).await? {
                return Err(Error::code("INVALID_SESSION_INFO"));
            }
            let id = sms.action.mfa_enrollment_id.clone().unwrap_or_default();
            ("phone", id, None)
        } else {
            return Err(Error::detail(
                "INVALID_ARGUMENT",
                "MFA provider not supported!",
            ));
        };
        let method = pending
            .action
            .sign_in_method
            .clone()
            .unwrap_or_else(|| "password".into());
        let provider = pending
            .action
            .provider
            .clone()
            .unwrap_or_else(|| "password".into());
        let mut extra = Map::new();
        extra.insert("sign_in_second_factor".into(), factor.into());
        let mut previewed = seen.clone();
        let hooks = self
            .before_sign_in_with(ctx, &mut previewed, &method, &extra)
            .await?;
        let invalid = || Error::code("INVALID_MFA_PENDING_CREDENTIAL");
        let (acc, tokens) = self
            .retry_stale(|| async {
                let fresh = self.require_account(&scope, &uid).await?;
                if fresh.disabled {
                    return Err(Error::code("USER_DISABLED"));
                }
                if stamp.as_deref() != Some(credential_stamp(&fresh).as_str()) {
                    return Err(invalid());
                }
                let mut next = fresh.clone();
                if let Some(p) = &pending.action.link_identity {
                    if !next
                        .providers
                        .iter()
                        .any(|e| e.provider_id == p.provider_id)
                    {
                        next.providers.push(p.clone());
                    }
                }
                let Some(enrollment) = next
                    .mfa_info
                    .iter_mut()
                    .find(|e| e.mfa_enrollment_id == enrollment_id)
                else {
                    return Err(Error::code("MFA_ENROLLMENT_NOT_FOUND"));
                };
                if let Some(step) = step {
                    // A code is good once, even for two sign-ins racing with it.
                    if enrollment.totp_last_step.is_some_and(|last| last >= step) {
                        return Err(Error::code("INVALID_CODE"));
                    }
                    enrollment.totp_last_step = Some(step);
                }
                apply(&mut next, &hooks.updates);
                if next.disabled {
                    let events = self.update_events(ctx, &fresh, &next, false, None);
                    self.store()
                        .update_account(&scope, &next, None, &events)
                        .await?;
                    return Err(Error::code("USER_DISABLED"));
                }
                let mut claims = hooks.session_claims.clone();
                claims.insert(
                    SECOND_FACTOR_KEY.into(),
                    second_factor(factor, &enrollment_id),
                );
                let (s, refresh) = self.new_session(ctx, &next, &provider, claims).await?;
                let events = self.update_events(ctx, &fresh, &next, false, Some(&s));
                let redeemed = self
                    .store()
                    .redeem_oob_code(
                        &pending.code_hash,
                        &scope,
                        AccountWrite::Update(&next),
                        Some(&s),
                        &events,
                    )
                    .await?;
                if !redeemed {
                    return Err(invalid());
                }
                let mut next = next;
                next.last_login_at = Some(s.created_at);
                let tokens = self.issue(&next, &s, refresh)?;
                Ok((next, tokens))
            })
            .await?;
        self.enforce_session_cap(ctx, &acc.local_id).await;
        let mut body = object(json!({ "localId": acc.local_id }));
        tokens.put_into(&mut body);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_hidden_but_their_last_four_digits() {
        assert_eq!(obfuscate_phone("+15555550100"), "+*******0100");
        assert_eq!(obfuscate_phone("+123"), "+123");
    }

    #[test]
    fn settings_read_the_admin_sdks_shape() {
        let s = MfaSettings::from_config(&json!({
            "state": "ENABLED",
            "enabledProviders": ["PHONE_SMS"],
            "providerConfigs": [{"state": "ENABLED", "totpProviderConfig": {"adjacentIntervals": 2}}],
        }));
        assert!(s.sms && s.totp && s.state == MfaState::Enabled);
        assert_eq!(s.adjacent_intervals, 2);
        let off = MfaSettings::from_config(&json!({"state": "DISABLED"}));
        assert!(off.state == MfaState::Disabled && !off.sms && !off.totp);
    }

    #[test]
    fn admin_enrollments_are_checked() {
        let e = |v: Value| v.as_object().cloned().unwrap();
        let got = admin_enrollments(&[e(json!({"phoneInfo": "+1 650 555 0100"}))], &[], 0, false)
            .unwrap();
        assert_eq!(got[0].phone_info.as_deref(), Some("+16505550100"));
        assert_eq!(got[0].mfa_enrollment_id.len(), 28);
        let bad = admin_enrollments(&[e(json!({"phoneInfo": "nope"}))], &[], 0, false);
        assert_eq!(
            bad.unwrap_err().to_string(),
            "INVALID_MFA_PHONE_NUMBER : Invalid format."
        );
        let no_id = admin_enrollments(&[e(json!({"phoneInfo": "+16505550100"}))], &[], 0, true);
        assert!(no_id
            .unwrap_err()
            .to_string()
            .starts_with("INVALID_MFA_ENROLLMENT_ID"));
        let twice = admin_enrollments(
            &[
                e(json!({"mfaEnrollmentId": "a", "phoneInfo": "+16505550100"})),
                e(json!({"mfaEnrollmentId": "b", "phoneInfo": "+16505550100"})),
            ],
            &[],
            0,
            true,
        );
        assert!(twice.unwrap_err().to_string().contains("must be unique"));
        let kept = MfaEnrollment {
            mfa_enrollment_id: "t".into(),
            totp_info: Some(Map::new()),
            totp_secret: Some("sealed".into()),
            ..Default::default()
        };
        let got = admin_enrollments(
            &[e(json!({"mfaEnrollmentId": "t"}))],
            std::slice::from_ref(&kept),
            0,
            true,
        )
        .unwrap();
        assert_eq!(got, vec![kept]);
    }
}
