//! `accounts:signInWithPassword` (§3.1).

use serde_json::{json, Value};

use super::signup::check_email;
use super::tenants::TenantMethod;
use super::{object, Auth, Ctx, SignInWithPasswordRequest};
use crate::error::{Error, Result};

impl Auth {
    pub async fn sign_in_with_password(
        &self,
        ctx: &Ctx,
        req: SignInWithPasswordRequest,
    ) -> Result<Value> {
        if req.captcha_response.is_some() || req.captcha_challenge.is_some() {
            return Err(Error::NotImplemented("captcha unimplemented".into()));
        }
        if req.id_token.is_some() || req.pending_id_token.is_some() {
            return Err(Error::NotImplemented(
                "idToken / pendingIdToken is no longer in use and unsupported.".into(),
            ));
        }
        self.check_tenant_method(&ctx.scope(), TenantMethod::PasswordSignIn)
            .await?;
        let email = req.email.as_deref().ok_or(Error::code("MISSING_EMAIL"))?;
        let email = check_email(email)?;
        let password = req
            .password
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or(Error::code("MISSING_PASSWORD"))?;
        let private = self.improved_email_privacy(&ctx.access.project).await?;
        let wrong = |code| {
            if private {
                Error::code("INVALID_LOGIN_CREDENTIALS")
            } else {
                Error::code(code)
            }
        };
        let found = self.store().account_by_email(&ctx.scope(), &email).await?;
        // Unknown accounts and accounts without a password cost a hash too, so timing does
        // not tell which emails exist.
        let stored = found
            .as_ref()
            .and_then(|a| a.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash().to_owned());
        let ok = self.verify_password(password, &stored).await?;
        let acc = found.ok_or_else(|| wrong("EMAIL_NOT_FOUND"))?;
        if acc.disabled {
            return Err(Error::code("USER_DISABLED"));
        }
        if !ok || acc.password_hash.is_none() {
            return Err(wrong("INVALID_PASSWORD"));
        }
        // A second factor is due first; beforeSignIn runs after it.
        if let Some(challenge) = self
            .mfa_challenge(ctx, &acc, "password", "password", None)
            .await?
        {
            let mut body = json!({
                "kind": "identitytoolkit#VerifyPasswordResponse",
                "registered": true,
                "localId": acc.local_id,
                "email": acc.email,
                "displayName": acc.display_name.clone().unwrap_or_default(),
            });
            if let Value::Object(m) = &mut body {
                m.extend(challenge);
            }
            return Ok(body);
        }
        let mut hooked = acc.clone();
        let hooks = self.before_sign_in(ctx, &mut hooked, "password").await?;
        // Without a function nothing ran in between: the account just read is current.
        let acc = if hooks.called {
            self.commit_sign_in_hooks(ctx, &acc, &hooks.updates, wrong("INVALID_PASSWORD"))
                .await?
        } else {
            acc
        };
        let tokens = self
            .sign_in_session(ctx, &acc, "password", hooks.session_claims)
            .await?;
        let mut body = object(json!({
            "kind": "identitytoolkit#VerifyPasswordResponse",
            "registered": true,
            "localId": acc.local_id,
            "email": acc.email,
            "displayName": acc.display_name.clone().unwrap_or_default(),
        }));
        tokens.put_into(&mut body);
        Ok(body)
    }
}
