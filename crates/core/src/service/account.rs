//! `accounts:lookup`, `accounts:update`, `accounts:delete` (§3.1).

use serde_json::{json, Map, Value};

use super::signup::{check_email, check_password, check_phone};
use super::tokens::IssuedTokens;
use super::{object, Auth, Ctx, DeleteRequest, LookupRequest, Mode, UpdateRequest};
use crate::claims::parse_custom_attributes;
use crate::error::{Error, Result};
use crate::model::{event_kind, Account, Scope};
use crate::validate::canonical_email;
use crate::wire::{provider_user_info, user_info};

/// Most identifiers one lookup may name (the Admin SDKs send at most 100).
const MAX_LOOKUP: usize = 1000;

/// Ways to name an account.
pub(crate) enum Identifier<'a> {
    Uid(&'a str),
    Email(&'a str),
    Phone(&'a str),
    Federated(&'a str, &'a str),
}

impl Auth {
    pub(crate) async fn account_by(
        &self,
        scope: &Scope,
        id: Identifier<'_>,
    ) -> Result<Option<Account>> {
        let store = self.store();
        Ok(match id {
            Identifier::Uid(uid) => store.get_account(scope, uid).await?,
            Identifier::Email(e) => store.account_by_email(scope, &canonical_email(e)).await?,
            Identifier::Phone(p) => store.account_by_phone(scope, p).await?,
            Identifier::Federated(p, r) => store.account_by_federated(scope, p, r).await?,
        })
    }

    pub async fn lookup(&self, ctx: &Ctx, req: LookupRequest) -> Result<Value> {
        let view = self.hash_view(ctx.access.privileged);
        let mut found: Vec<Account> = Vec::new();
        if !ctx.access.privileged || req.id_token.is_some() {
            let v = self.verify_id_token(ctx, req.id_token.as_deref()).await?;
            found.push(v.account);
        } else {
            if !req.initial_email.is_empty() {
                return Err(Error::NotImplemented(
                    "Lookup by initialEmail is not implemented.".into(),
                ));
            }
            let asked = req.local_id.len()
                + req.email.len()
                + req.phone_number.len()
                + req.federated_user_id.len();
            if asked > MAX_LOOKUP {
                return Err(Error::InvalidArgument(format!(
                    "Invalid JSON payload received. At most {MAX_LOOKUP} identifiers per lookup."
                )));
            }
            let scope = ctx.scope();
            let mut wanted: Vec<Identifier<'_>> = Vec::with_capacity(asked);
            wanted.extend(req.local_id.iter().map(|u| Identifier::Uid(u)));
            wanted.extend(req.email.iter().map(|e| Identifier::Email(e)));
            wanted.extend(req.phone_number.iter().map(|p| Identifier::Phone(p)));
            for fed in &req.federated_user_id {
                if let (Some(p), Some(r)) = (&fed.provider_id, &fed.raw_id) {
                    wanted.push(match p.as_str() {
                        "password" | "email" => Identifier::Email(r),
                        "phone" => Identifier::Phone(r),
                        _ => Identifier::Federated(p, r),
                    });
                }
            }
            for id in wanted {
                found.extend(self.account_by(&scope, id).await?);
            }
            let mut seen = std::collections::HashSet::new();
            found.retain(|a| seen.insert(a.local_id.clone()));
        }
        // A miss is a 200 without `users`: the Admin SDKs build their own not-found error.
        let mut body = json!({"kind": "identitytoolkit#GetAccountInfoResponse"});
        if !found.is_empty() {
            body["users"] = found.iter().map(|a| user_info(a, view)).collect();
        }
        Ok(body)
    }

    pub async fn delete(&self, ctx: &Ctx, req: DeleteRequest) -> Result<Value> {
        let scope = ctx.scope();
        let local_id = if ctx.access.privileged && req.id_token.is_none() {
            req.local_id
                .filter(|l| !l.is_empty())
                .ok_or(Error::code("MISSING_LOCAL_ID"))?
        } else {
            self.verify_id_token(ctx, req.id_token.as_deref())
                .await?
                .account
                .local_id
        };
        let event = self.event(ctx, &local_id, None, event_kind::DELETED, Map::new());
        if !self
            .store()
            .delete_account(&scope, &local_id, &[event])
            .await?
        {
            return Err(Error::code("USER_NOT_FOUND"));
        }
        self.feed.notify_waiters();
        Ok(json!({"kind": "identitytoolkit#DeleteAccountResponse"}))
    }

    pub async fn update(&self, ctx: &Ctx, req: UpdateRequest) -> Result<Value> {
        let privileged = ctx.access.privileged;
        if req.provider.is_some() {
            return Err(Error::NotImplemented(
                "provider is not implemented yet.".into(),
            ));
        }
        if req.upgrade_to_federated_login.is_some() {
            return Err(Error::NotImplemented(
                "upgradeToFederatedLogin is not implemented yet.".into(),
            ));
        }
        // A code names its account and action; the other fields play no part.
        if let Some(code) = req.oob_code.as_deref() {
            return self.apply_oob_code(ctx, code).await;
        }
        if req.id_token.is_none() && !privileged {
            return Err(Error::detail(
                "INVALID_REQ_TYPE",
                "Unsupported request parameters.",
            ));
        }
        if !privileged {
            if req.custom_attributes.is_some()
                || req.phone_number.is_some()
                || req.email_verified.is_some()
                || req.created_at.is_some()
                || req.last_login_at.is_some()
            {
                return Err(Error::code("INSUFFICIENT_PERMISSION"));
            }
            if req.disable_user.is_some() {
                return Err(Error::code("OPERATION_NOT_ALLOWED"));
            }
            // Production accepts linked identities from verified sign-ins only.
            if req.link_provider_user_info.is_some() && self.config().mode == Mode::Production {
                return Err(Error::code("INSUFFICIENT_PERMISSION"));
            }
        }
        let new_hash = match &req.password {
            Some(p) => {
                check_password(p)?;
                // Admins set what they set; users meet the policy.
                if !privileged {
                    self.check_password_policy(&ctx.scope(), p).await?;
                }
                Some(self.hash_password(p).await?)
            }
            None => None,
        };
        let (acc, tokens, replaced_email) = self
            .retry_stale(|| self.update_once(ctx, &req, new_hash.as_deref()))
            .await?;
        // The user changed their own sign-in email: the old address can undo it. Admin
        // changes send nothing; the emulator lists a code for every change, as the
        // reference emulator does.
        let emulator = self.config().mode == super::Mode::Emulator;
        if let (Some(old), true) = (replaced_email, !privileged || emulator) {
            self.offer_recovery(ctx, &acc, &old).await;
        }
        if let (true, Some(at)) = (privileged, req.last_login_at) {
            self.store()
                .set_last_login_at(&ctx.scope(), &acc.local_id, at)
                .await?;
        }
        let mut body = object(json!({
            "kind": "identitytoolkit#SetAccountInfoResponse",
            "localId": acc.local_id,
            "email": acc.email,
            "emailVerified": acc.email_verified,
            "displayName": acc.display_name,
            "photoUrl": acc.photo_url,
            "providerUserInfo": provider_user_info(&acc),
        }));
        if acc.password_hash.is_some() {
            body["passwordHash"] = crate::wire::REDACTED_HASH.into();
        }
        if let Some(t) = tokens {
            t.put_into(&mut body);
        }
        Ok(body)
    }

    /// One read-modify-write of `accounts:update`; `Aborted` if the account changed
    /// meanwhile.
    async fn update_once(
        &self,
        ctx: &Ctx,
        req: &UpdateRequest,
        new_hash: Option<&str>,
    ) -> Result<(Account, Option<IssuedTokens>, Option<String>)> {
        let privileged = ctx.access.privileged;
        let scope = ctx.scope();
        let (mut acc, verified) = if let Some(tok) = req.id_token.as_deref() {
            let v = self.verify_id_token(ctx, Some(tok)).await?;
            (v.account.clone(), Some(v))
        } else {
            let id = req
                .local_id
                .as_deref()
                .filter(|l| !l.is_empty())
                .ok_or(Error::code("MISSING_LOCAL_ID"))?;
            (self.require_account(&scope, id).await?, None)
        };
        let before = acc.clone();
        let now = self.clock().now_ms();
        let mut revoke = false;

        for attr in &req.delete_attribute {
            match attr.as_str() {
                "DISPLAY_NAME" => acc.display_name = None,
                "PHOTO_URL" => acc.photo_url = None,
                "PASSWORD" => acc.password_hash = None,
                "EMAIL" => {
                    acc.email = None;
                    acc.email_verified = false;
                    acc.email_link_signin = false;
                }
                other => {
                    return Err(Error::NotImplemented(format!("deleteAttribute: {other}")));
                }
            }
        }
        for provider in &req.delete_provider {
            match provider.as_str() {
                "password" => {
                    acc.email = None;
                    acc.email_verified = false;
                    acc.password_hash = None;
                    acc.email_link_signin = false;
                }
                "phone" => acc.phone_number = None,
                other => acc.providers.retain(|p| p.provider_id != other),
            }
        }
        if let Some(email) = &req.email {
            let email = check_email(email)?;
            if acc.email.as_deref() != Some(email.as_str()) {
                if acc.initial_email.is_none() && !acc.is_anonymous() {
                    acc.initial_email = acc.email.clone();
                }
                acc.email = Some(email);
                acc.email_verified = false;
                revoke = true;
            }
        }
        if let Some(hash) = new_hash {
            acc.password_hash = Some(hash.to_owned());
            acc.password_updated_at = Some(now);
            revoke = true;
        }
        if let Some(name) = &req.display_name {
            acc.display_name = Some(name.clone());
        }
        if let Some(url) = &req.photo_url {
            acc.photo_url = Some(url.clone());
        }
        if let Some(link) = &req.link_provider_user_info {
            if link.provider_id.is_empty() {
                return Err(Error::code("MISSING_PROVIDER_ID"));
            }
            if link.raw_id.is_empty() {
                return Err(Error::code("MISSING_RAW_ID"));
            }
            acc.providers.retain(|p| p.provider_id != link.provider_id);
            acc.providers.push(link.clone());
        }
        if privileged {
            if let Some(phone) = &req.phone_number {
                if phone.is_empty() {
                    acc.phone_number = None;
                } else {
                    check_phone(phone)?;
                    acc.phone_number = Some(phone.clone());
                }
            }
            if let Some(v) = req.email_verified {
                acc.email_verified = v;
            }
            if let Some(d) = req.disable_user {
                acc.disabled = d;
            }
            if let Some(text) = &req.custom_attributes {
                acc.custom_attributes = Some(parse_custom_attributes(text)?);
            }
            if let Some(t) = req.created_at {
                acc.created_at = t;
            }
            if let Some(mfa) = &req.mfa {
                acc.mfa_info =
                    super::mfa::admin_enrollments(&mfa.enrollments, &acc.mfa_info, now, true)?;
            }
        }
        let moved = revoke || req.valid_since.is_some();
        if moved {
            acc.valid_since = Some(now.div_euclid(1000));
        }
        if privileged {
            // The Admin SDKs' revokeRefreshTokens sends the client's clock: store it as given.
            if let Some(v) = req.valid_since {
                acc.valid_since = Some(v);
            }
        }
        // The changing device keeps working: fresh tokens from a new sign-in now, so every
        // Admin SDK's revocation check (iat or auth_time) accepts them.
        let session = match (&verified, moved) {
            (Some(v), true) => {
                let provider = if new_hash.is_some() {
                    "password".to_owned()
                } else {
                    v.sign_in_provider().unwrap_or("password").to_owned()
                };
                let carried = self.carried_claims(v).await?;
                Some(self.new_session(ctx, &acc, &provider, carried).await?)
            }
            _ => None,
        };
        let events =
            self.update_events(ctx, &before, &acc, moved, session.as_ref().map(|(s, _)| s));
        self.store()
            .update_account(&scope, &acc, session.as_ref().map(|(s, _)| s), &events)
            .await?;
        if !events.is_empty() {
            self.feed.notify_waiters();
        }
        let tokens = match session {
            Some((s, refresh)) => {
                self.enforce_session_cap(ctx, &acc.local_id).await;
                Some(self.issue(&acc, &s, refresh)?)
            }
            None => None,
        };
        let replaced_email = before
            .email
            .clone()
            .filter(|old| acc.email.as_ref() != Some(old) && acc.email.is_some());
        Ok((acc, tokens, replaced_email))
    }

    /// The audit events an update amounts to.
    pub(super) fn update_events(
        &self,
        ctx: &Ctx,
        before: &Account,
        after: &Account,
        revoked: bool,
        session: Option<&crate::model::Session>,
    ) -> Vec<crate::model::Event> {
        let uid = &after.local_id;
        let mut out = Vec::new();
        let mut push = |kind: &str, sid: Option<&str>, detail: Map<String, Value>| {
            out.push(self.event(ctx, uid, sid, kind, detail));
        };
        if before.password_hash != after.password_hash && after.password_hash.is_some() {
            push(event_kind::PASSWORD_CHANGED, None, Map::new());
        }
        if before.email != after.email {
            push(event_kind::EMAIL_CHANGED, None, Map::new());
        }
        // An explicit revoke is news even when validSince keeps its value (same second).
        if revoked || before.valid_since != after.valid_since {
            let mut d = Map::new();
            d.insert("validSince".into(), after.valid_since.unwrap_or(0).into());
            push(event_kind::TOKENS_REVOKED, None, d);
        }
        if before.disabled != after.disabled {
            let kind = if after.disabled {
                event_kind::DISABLED
            } else {
                event_kind::ENABLED
            };
            push(kind, None, Map::new());
        }
        if let Some(s) = session {
            out.push(self.session_event(ctx, s, event_kind::SIGN_IN));
        }
        out
    }
}
