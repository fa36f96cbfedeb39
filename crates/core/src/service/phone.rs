//! Phone sign-in (§3.1): `accounts:sendVerificationCode` texts a code,
//! `accounts:signInWithPhoneNumber` signs in (or up, or links) with it.

use serde_json::{json, Map, Value};

use super::verification::{normalize_phone, present};
use super::{object, Auth, Ctx, SendVerificationCodeRequest, SignInWithPhoneNumberRequest};
use crate::error::{Error, Result};
use crate::model::{event_kind, oob_kind, Account, OobAction, OobCode};
use crate::secrets::new_local_id;
use crate::sms::sms_type;
use crate::store::AccountWrite;

/// How long a `temporaryProof` is good for, as the wire says it.
const PROOF_LIFETIME: &str = "3600";
const PROOF_LIFETIME_MS: i64 = 3_600_000;

fn phone_first_factor_refused() -> Error {
    Error::detail(
        "UNSUPPORTED_FIRST_FACTOR",
        "A phone number cannot be set as a first factor on an SMS based MFA user.",
    )
}

impl Auth {
    /// `accounts:sendVerificationCode`: texts a six-digit code and answers the session it
    /// belongs to.
    pub async fn send_verification_code(
        &self,
        ctx: &Ctx,
        req: SendVerificationCodeRequest,
    ) -> Result<Value> {
        self.check_phone_enabled(ctx).await?;
        let phone = req
            .phone_number
            .as_deref()
            .and_then(normalize_phone)
            .ok_or_else(|| Error::detail("INVALID_PHONE_NUMBER", "Invalid format."))?;
        if let Some(owner) = self.store().account_by_phone(&ctx.scope(), &phone).await? {
            if !owner.mfa_info.is_empty() {
                return Err(phone_first_factor_refused());
            }
        }
        let action = OobAction {
            request_type: oob_kind::PHONE_SIGN_IN.to_owned(),
            ..Default::default()
        };
        let session = self
            .send_sms_code(ctx, &phone, sms_type::SIGN_IN_OR_SIGN_UP, action)
            .await?;
        Ok(json!({ "sessionInfo": session }))
    }

    /// `accounts:signInWithPhoneNumber` with a code (`sessionInfo`, `code`) or a
    /// `temporaryProof`. With `idToken` the number is linked to that user; a number another
    /// account has gives a temporary proof instead (code) or `PHONE_NUMBER_EXISTS` (proof).
    pub async fn sign_in_with_phone_number(
        &self,
        ctx: &Ctx,
        req: SignInWithPhoneNumberRequest,
    ) -> Result<Value> {
        self.check_phone_enabled(ctx).await?;
        let scope = ctx.scope();
        let (proven, by_proof) = match present(req.temporary_proof.clone()) {
            Some(proof) => {
                let phone = req
                    .phone_number
                    .as_deref()
                    .and_then(normalize_phone)
                    .ok_or(Error::code("MISSING_PHONE_NUMBER"))?;
                let invalid = || Error::code("INVALID_TEMPORARY_PROOF");
                let row = self
                    .verification(ctx, &proof, oob_kind::PHONE_PROOF, invalid(), invalid())
                    .await?;
                if row.action.phone_number.as_deref() != Some(phone.as_str()) {
                    return Err(invalid());
                }
                (row, true)
            }
            None => {
                let secret =
                    present(req.session_info.clone()).ok_or(Error::code("MISSING_SESSION_INFO"))?;
                let code = present(req.code.clone()).ok_or(Error::code("MISSING_CODE"))?;
                let row = self
                    .verification(
                        ctx,
                        &secret,
                        oob_kind::PHONE_SIGN_IN,
                        Error::code("INVALID_SESSION_INFO"),
                        Error::code("SESSION_EXPIRED"),
                    )
                    .await?;
                self.check_sms_code(&row, &code).await?;
                (row, false)
            }
        };
        let phone = proven.action.phone_number.clone().unwrap_or_default();
        let owner = self.store().account_by_phone(&scope, &phone).await?;
        let linking = match req.id_token.as_deref() {
            Some(token) => Some(self.verify_id_token(ctx, Some(token)).await?),
            None => None,
        };
        if let Some(v) = &linking {
            if owner
                .as_ref()
                .is_some_and(|o| o.local_id != v.account.local_id)
            {
                if by_proof {
                    return Err(Error::code("PHONE_NUMBER_EXISTS"));
                }
                return self.phone_proof(ctx, &proven, &phone).await;
            }
        }
        let (acc, tokens, is_new) = match (linking, owner) {
            (Some(v), _) => {
                let (acc, tokens) = self.link_phone(ctx, &proven, v, &phone).await?;
                (acc, tokens, false)
            }
            (None, Some(existing)) => {
                if existing.disabled {
                    return Err(Error::code("USER_DISABLED"));
                }
                if !existing.mfa_info.is_empty() {
                    return Err(phone_first_factor_refused());
                }
                self.claim(&proven).await?;
                let mut seen = existing.clone();
                let hooks = self.before_sign_in(ctx, &mut seen, "phone").await?;
                let acc = if hooks.called {
                    self.commit_sign_in_hooks(
                        ctx,
                        &existing,
                        &hooks.updates,
                        Error::code("INVALID_SESSION_INFO"),
                    )
                    .await?
                } else {
                    existing
                };
                let tokens = self
                    .sign_in_session(ctx, &acc, "phone", hooks.session_claims)
                    .await?;
                (acc, tokens, false)
            }
            (None, None) => {
                let now = self.clock().now_ms();
                let mut acc = Account {
                    local_id: new_local_id()?,
                    phone_number: Some(phone.clone()),
                    created_at: now,
                    last_login_at: Some(now),
                    valid_since: Some(now.div_euclid(1000)),
                    tenant_id: ctx.tenant.clone(),
                    ..Default::default()
                };
                self.before_create(ctx, &mut acc, "phone").await?;
                let mut session_claims = Map::new();
                let refused = match self.before_sign_in(ctx, &mut acc, "phone").await {
                    Ok(hooks) => {
                        session_claims = hooks.session_claims;
                        acc.disabled.then(|| Error::code("USER_DISABLED"))
                    }
                    Err(e) => Some(e),
                };
                if let Some(refusal) = refused {
                    // The user beforeCreate let through exists, as in Firebase.
                    let created = self
                        .store()
                        .redeem_oob_code(
                            &proven.code_hash,
                            &scope,
                            AccountWrite::Create(&acc),
                            None,
                            &[self.event(
                                ctx,
                                &acc.local_id,
                                None,
                                event_kind::ACCOUNT_CREATED,
                                Map::new(),
                            )],
                        )
                        .await?;
                    if !created {
                        return Err(Error::code("INVALID_SESSION_INFO"));
                    }
                    return Err(refusal);
                }
                let (session, refresh) =
                    self.new_session(ctx, &acc, "phone", session_claims).await?;
                let event = self.session_event(ctx, &session, event_kind::SIGN_UP);
                let created = self
                    .store()
                    .redeem_oob_code(
                        &proven.code_hash,
                        &scope,
                        AccountWrite::Create(&acc),
                        Some(&session),
                        &[event],
                    )
                    .await?;
                if !created {
                    return Err(Error::code("INVALID_SESSION_INFO"));
                }
                let tokens = self.issue(&acc, &session, refresh)?;
                (acc, tokens, true)
            }
        };
        let mut body = object(json!({
            "localId": acc.local_id,
            "phoneNumber": phone,
            "isNewUser": is_new,
        }));
        tokens.put_into(&mut body);
        Ok(body)
    }

    /// Phone numbers sign in only where switched on: a production project's
    /// `signIn.phoneNumber.enabled` (as Firebase's console switch). Tenants and emulator
    /// mode take them as they come.
    async fn check_phone_enabled(&self, ctx: &Ctx) -> Result<()> {
        if self.config().mode != super::Mode::Production || ctx.tenant.is_some() {
            return Ok(());
        }
        let settings = self.project_settings(&ctx.access.project).await?;
        let on = settings
            .pointer("/signIn/phoneNumber/enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if on {
            Ok(())
        } else {
            Err(Error::detail(
                "OPERATION_NOT_ALLOWED",
                "Phone sign-in is not enabled for this project (signIn.phoneNumber.enabled).",
            ))
        }
    }

    /// Uses up a code or proof; a second use finds it gone.
    async fn claim(&self, row: &OobCode) -> Result<()> {
        if self.claim_verification(&row.scope, &row.code_hash).await? {
            Ok(())
        } else if row.action.request_type == oob_kind::PHONE_PROOF {
            Err(Error::code("INVALID_TEMPORARY_PROOF"))
        } else {
            Err(Error::code("INVALID_SESSION_INFO"))
        }
    }

    /// The code was right but the number is another account's: the caller gets proof of
    /// it, to sign in to that account instead.
    async fn phone_proof(&self, ctx: &Ctx, row: &OobCode, phone: &str) -> Result<Value> {
        self.claim(row).await?;
        let action = OobAction {
            request_type: oob_kind::PHONE_PROOF.to_owned(),
            phone_number: Some(phone.to_owned()),
            ..Default::default()
        };
        let proof = self
            .start_verification_for(ctx, action, PROOF_LIFETIME_MS)
            .await?;
        Ok(json!({
            "temporaryProof": proof,
            "phoneNumber": phone,
            "temporaryProofExpiresIn": PROOF_LIFETIME,
        }))
    }

    /// Adds the proven number to the signed-in user (no blocking function runs, as for
    /// other links in the emulator).
    async fn link_phone(
        &self,
        ctx: &Ctx,
        row: &OobCode,
        v: super::VerifiedIdToken,
        phone: &str,
    ) -> Result<(Account, super::IssuedTokens)> {
        let scope = ctx.scope();
        let uid = v.account.local_id.clone();
        let carried = self.carried_claims(&v).await?;
        self.retry_stale(|| async {
            let before = self.require_account(&scope, &uid).await?;
            let mut next = before.clone();
            next.phone_number = Some(phone.to_owned());
            let (s, refresh) = self
                .new_session(ctx, &next, "phone", carried.clone())
                .await?;
            let events = self.update_events(ctx, &before, &next, false, Some(&s));
            let used = self
                .store()
                .redeem_oob_code(
                    &row.code_hash,
                    &scope,
                    AccountWrite::Update(&next),
                    Some(&s),
                    &events,
                )
                .await?;
            if !used {
                return Err(Error::code("INVALID_SESSION_INFO"));
            }
            let tokens = self.issue(&next, &s, refresh)?;
            Ok((next, tokens))
        })
        .await
    }
}
