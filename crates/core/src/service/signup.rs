//! `accounts:signUp` (§3.1): password and anonymous sign-up, anonymous upgrade, admin create.

use serde_json::{json, Map, Value};

use super::tenants::TenantMethod;
use super::{object, Auth, Ctx, SignUpRequest};
use crate::error::{Error, Result};
use crate::model::{event_kind, Account};
use crate::secrets::new_local_id;
use crate::validate::{canonical_email, is_valid_email, is_valid_local_id, is_valid_phone};

pub(crate) const MIN_PASSWORD_CHARS: usize = 6;

pub(crate) fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::detail(
            "WEAK_PASSWORD",
            "Password should be at least 6 characters",
        ));
    }
    Ok(())
}

pub(crate) fn check_email(email: &str) -> Result<String> {
    if !is_valid_email(email.trim()) {
        return Err(Error::code("INVALID_EMAIL"));
    }
    Ok(canonical_email(email))
}

pub(crate) fn check_phone(phone: &str) -> Result<()> {
    if !is_valid_phone(phone) {
        return Err(Error::detail("INVALID_PHONE_NUMBER", "Invalid format."));
    }
    Ok(())
}

impl Auth {
    /// `EMAIL_EXISTS` before any hashing, in the spec's check order. The unique index still
    /// decides races.
    pub(crate) async fn check_email_free(&self, ctx: &Ctx, email: &str) -> Result<()> {
        match self.store().account_by_email(&ctx.scope(), email).await? {
            Some(_) => Err(Error::code("EMAIL_EXISTS")),
            None => Ok(()),
        }
    }

    /// Stores a new account signed in nowhere (admin create, or a sign-up a blocking
    /// function refused or disabled after beforeCreate), audited as created.
    pub(crate) async fn store_account_without_session(
        &self,
        ctx: &Ctx,
        acc: &Account,
    ) -> Result<()> {
        let event = self.event(
            ctx,
            &acc.local_id,
            None,
            event_kind::ACCOUNT_CREATED,
            Map::new(),
        );
        self.store()
            .create_account(&ctx.scope(), acc, None, &[event])
            .await?;
        Ok(())
    }

    pub async fn sign_up(&self, ctx: &Ctx, req: SignUpRequest) -> Result<Value> {
        let privileged = ctx.access.privileged;
        if req.local_id.is_some() && (!privileged || req.id_token.is_some()) {
            return Err(Error::detail("UNEXPECTED_PARAMETER", "User ID"));
        }
        if privileged && req.id_token.is_none() {
            return self.admin_create(ctx, req).await;
        }
        if let Some(id_token) = req.id_token.as_deref() {
            self.check_tenant_method(&ctx.scope(), TenantMethod::Password)
                .await?;
            return self.link_password(ctx, id_token, &req).await;
        }
        match (&req.email, &req.password) {
            (Some(_), None) => return Err(Error::code("MISSING_PASSWORD")),
            (None, Some(_)) => return Err(Error::code("MISSING_EMAIL")),
            _ => {}
        }
        let method = match req.email {
            Some(_) => TenantMethod::Password,
            None => TenantMethod::Anonymous,
        };
        self.check_tenant_method(&ctx.scope(), method).await?;
        let now = self.clock().now_ms();
        let mut acc = Account {
            local_id: new_local_id()?,
            display_name: req.display_name.clone(),
            created_at: now,
            last_login_at: Some(now),
            tenant_id: ctx.tenant.clone(),
            ..Default::default()
        };
        let provider = if let (Some(email), Some(password)) = (&req.email, &req.password) {
            let email = check_email(email)?;
            self.check_email_free(ctx, &email).await?;
            check_password(password)?;
            self.check_password_policy(&ctx.scope(), password).await?;
            acc.email = Some(email);
            acc.password_hash = Some(self.hash_password(password).await?);
            acc.password_updated_at = Some(now);
            acc.valid_since = Some(now.div_euclid(1000));
            "password"
        } else {
            "anonymous"
        };
        // Anonymous sign-ups call no blocking function (Firebase documents it so).
        let mut session_claims = Map::new();
        if provider == "password" {
            self.before_create(ctx, &mut acc, provider).await?;
            // beforeSignIn sees the record as it will be stored. The user beforeCreate let
            // through exists even when beforeSignIn refuses or disables it, as in Firebase
            // (the seeds' "verify the email first" flow depends on it); only the session
            // is withheld.
            let refused = match self.before_sign_in(ctx, &mut acc, provider).await {
                Ok(hooks) => {
                    session_claims = hooks.session_claims;
                    acc.disabled.then(|| Error::code("USER_DISABLED"))
                }
                Err(e) => Some(e),
            };
            if let Some(refusal) = refused {
                self.store_account_without_session(ctx, &acc).await?;
                return Err(refusal);
            }
        }
        let (session, refresh_token) = self
            .new_session(ctx, &acc, provider, session_claims)
            .await?;
        let event = self.session_event(ctx, &session, event_kind::SIGN_UP);
        self.store()
            .create_account(&ctx.scope(), &acc, Some(&session), &[event])
            .await?;
        let tokens = self.issue(&acc, &session, refresh_token)?;
        let mut body = object(json!({
            "kind": "identitytoolkit#SignupNewUserResponse",
            "localId": acc.local_id,
            "email": acc.email,
            "displayName": acc.display_name,
        }));
        tokens.put_into(&mut body);
        Ok(body)
    }

    /// Email and password added to the signed-in (usually anonymous) user. Replacing an
    /// existing email or password is a credential change: earlier sessions are revoked.
    async fn link_password(&self, ctx: &Ctx, id_token: &str, req: &SignUpRequest) -> Result<Value> {
        let email = req.email.as_deref().ok_or(Error::code("MISSING_EMAIL"))?;
        let password = req
            .password
            .as_deref()
            .ok_or(Error::code("MISSING_PASSWORD"))?;
        let email = check_email(email)?;
        check_password(password)?;
        self.check_password_policy(&ctx.scope(), password).await?;
        let hash = self.hash_password(password).await?;
        let (acc, tokens) = self
            .retry_stale(|| async {
                let verified = self.verify_id_token(ctx, Some(id_token)).await?;
                let mut acc = verified.account.clone();
                let now = self.clock().now_ms();
                let revokes = acc.email.is_some() || acc.password_hash.is_some();
                if revokes {
                    acc.valid_since = Some(now.div_euclid(1000));
                }
                acc.email = Some(email.clone());
                acc.email_verified = false;
                acc.password_hash = Some(hash.clone());
                acc.password_updated_at = Some(now);
                if let Some(name) = &req.display_name {
                    acc.display_name = Some(name.clone());
                }
                let carried = self.carried_claims(&verified).await?;
                let (session, refresh_token) =
                    self.new_session(ctx, &acc, "password", carried).await?;
                let mut events = vec![self.event(
                    ctx,
                    &acc.local_id,
                    Some(&session.id),
                    event_kind::PASSWORD_CHANGED,
                    Map::new(),
                )];
                if let Some(v) = acc.valid_since.filter(|_| revokes) {
                    let mut d = Map::new();
                    d.insert("validSince".into(), v.into());
                    events.push(self.event(
                        ctx,
                        &acc.local_id,
                        None,
                        event_kind::TOKENS_REVOKED,
                        d,
                    ));
                }
                self.store()
                    .update_account(&ctx.scope(), &acc, Some(&session), &events)
                    .await?;
                self.enforce_session_cap(ctx, &acc.local_id).await;
                let tokens = self.issue(&acc, &session, refresh_token)?;
                Ok((acc, tokens))
            })
            .await?;
        let mut body = object(json!({
            "kind": "identitytoolkit#SignupNewUserResponse",
            "localId": acc.local_id,
            "email": acc.email,
            "displayName": acc.display_name,
        }));
        tokens.put_into(&mut body);
        Ok(body)
    }

    async fn admin_create(&self, ctx: &Ctx, req: SignUpRequest) -> Result<Value> {
        let local_id = match req.local_id {
            Some(id) if !is_valid_local_id(&id) => {
                return Err(Error::detail(
                    "INVALID_LOCAL_ID",
                    "User ID must be 1 to 128 characters.",
                ))
            }
            Some(id) => id,
            None => new_local_id()?,
        };
        if let Some(phone) = &req.phone_number {
            check_phone(phone)?;
        }
        let email = req.email.as_deref().map(check_email).transpose()?;
        if let Some(e) = &email {
            self.check_email_free(ctx, e).await?;
        }
        if let Some(p) = &req.password {
            check_password(p)?;
        }
        let now = self.clock().now_ms();
        let enrollments: Vec<Map<String, Value>> = req
            .mfa_info
            .unwrap_or_default()
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => m,
                // Not an enrollment: refused as one without a phone.
                _ => Map::new(),
            })
            .collect();
        let mut acc = Account {
            local_id,
            email,
            email_verified: req.email_verified.unwrap_or(false),
            display_name: req.display_name,
            photo_url: req.photo_url,
            phone_number: req.phone_number,
            disabled: req.disabled.unwrap_or(false),
            created_at: now,
            valid_since: Some(now.div_euclid(1000)),
            tenant_id: ctx.tenant.clone(),
            mfa_info: super::mfa::admin_enrollments(&enrollments, &[], now, false)?,
            ..Default::default()
        };
        if let Some(p) = &req.password {
            acc.password_hash = Some(self.hash_password(p).await?);
            acc.password_updated_at = Some(now);
        }
        self.store_account_without_session(ctx, &acc).await?;
        Ok(object(json!({
            "kind": "identitytoolkit#SignupNewUserResponse",
            "localId": acc.local_id,
            "email": acc.email,
            "displayName": acc.display_name,
        })))
    }
}
