//! `accounts:signInWithCustomToken` (§3.1, §4.5).

use firekeeper_tokens::PublicKey;
use serde_json::{json, Map, Value};

use super::{object, Auth, Ctx, IssuedTokens, Mode, SignInWithCustomTokenRequest};
use crate::claims::check_claims_object;
use crate::error::{Error, Result};
use crate::model::{event_kind, Account};
use crate::store::StoreError;
use crate::validate::is_valid_local_id;

pub const CUSTOM_TOKEN_AUDIENCE: &str =
    "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit";

/// Custom tokens may live at most an hour; allow five minutes of clock skew on `iat`.
const MAX_LIFETIME_SECS: i64 = 3600;
const SKEW_SECS: i64 = 300;

fn bad(detail: &str) -> Error {
    Error::detail("INVALID_CUSTOM_TOKEN", detail)
}

impl Auth {
    /// Signs in to (or creates) the custom-auth account `uid`; account and session are
    /// written together.
    async fn custom_sign_in(
        &self,
        ctx: &Ctx,
        uid: &str,
        claims: &Map<String, Value>,
    ) -> Result<(Account, bool, IssuedTokens)> {
        let scope = ctx.scope();
        let now = self.clock().now_ms();
        match self.store().get_account(&scope, uid).await? {
            Some(mut acc) => {
                if acc.disabled {
                    return Err(Error::code("USER_DISABLED"));
                }
                if !acc.custom_auth {
                    acc.custom_auth = true;
                    self.store().update_account(&scope, &acc, None, &[]).await?;
                    acc.version += 1;
                }
                let tokens = self
                    .sign_in_session(ctx, &acc, "custom", claims.clone())
                    .await?;
                Ok((acc, false, tokens))
            }
            None => {
                let acc = Account {
                    local_id: uid.to_owned(),
                    created_at: now,
                    last_login_at: Some(now),
                    custom_auth: true,
                    tenant_id: ctx.tenant.clone(),
                    ..Default::default()
                };
                let (session, refresh) = self
                    .new_session(ctx, &acc, "custom", claims.clone())
                    .await?;
                let event = self.session_event(ctx, &session, event_kind::SIGN_UP);
                match self
                    .store()
                    .create_account(&scope, &acc, Some(&session), &[event])
                    .await
                {
                    Ok(()) => {
                        let tokens = self.issue(&acc, &session, refresh)?;
                        Ok((acc, true, tokens))
                    }
                    // Created meanwhile by someone else: sign in to that account instead.
                    Err(StoreError::Conflict(_)) => Err(Error::Aborted),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The token's payload once it is known to be acceptable.
    async fn custom_token_payload(&self, ctx: &Ctx, token: &str) -> Result<Map<String, Value>> {
        if self.config().mode == Mode::Emulator && token.trim_start().starts_with('{') {
            // The emulator also takes a plain JSON object, unchecked.
            return match serde_json::from_str::<Value>(token) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(bad("Invalid assertion format")),
            };
        }
        let decoded =
            firekeeper_tokens::jws::decode(token).map_err(|_| bad("Invalid assertion format"))?;
        let payload = decoded.payload.clone();
        let aud = payload.get("aud").and_then(Value::as_str).unwrap_or("");
        if aud != CUSTOM_TOKEN_AUDIENCE {
            return Err(bad(&format!(
                "Invalid aud (audience): {aud} Note: Firebase ID Tokens / third-party tokens cannot be used with signInWithCustomToken."
            )));
        }
        if self.config().mode == Mode::Emulator {
            return Ok(payload);
        }
        let iss = payload.get("iss").and_then(Value::as_str).unwrap_or("");
        let sa =
            self.store().service_account(iss).await?.ok_or_else(|| {
                bad("The custom token was not signed by a known service account.")
            })?;
        if sa.project != ctx.access.project {
            return Err(Error::code("CREDENTIAL_MISMATCH"));
        }
        let key =
            PublicKey::from_der(&sa.private_key_id, &sa.public_key).map_err(Error::internal)?;
        decoded
            .verify_rs256(&key)
            .map_err(|_| bad("The custom token signature does not verify."))?;
        let now = self.clock().now_secs();
        let iat = payload.get("iat").and_then(Value::as_i64);
        let exp = payload.get("exp").and_then(Value::as_i64);
        match (iat, exp) {
            (Some(iat), Some(exp))
                if iat <= now + SKEW_SECS && exp > now && exp - iat <= MAX_LIFETIME_SECS => {}
            _ => {
                return Err(bad(
                    "The custom token is expired or its lifetime exceeds one hour.",
                ))
            }
        }
        Ok(payload)
    }

    pub async fn sign_in_with_custom_token(
        &self,
        ctx: &Ctx,
        req: SignInWithCustomTokenRequest,
    ) -> Result<Value> {
        let token = req
            .token
            .filter(|t| !t.is_empty())
            .ok_or(Error::code("MISSING_CUSTOM_TOKEN"))?;
        let payload = self.custom_token_payload(ctx, &token).await?;
        let token_tenant = payload.get("tenant_id").and_then(Value::as_str);
        if token_tenant != ctx.tenant.as_deref() {
            return Err(Error::code("TENANT_ID_MISMATCH"));
        }
        let uid = match payload.get("uid").or_else(|| payload.get("user_id")) {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_)))
                if self.config().mode == Mode::Emulator =>
            {
                v.to_string()
            }
            _ => return Err(Error::code("MISSING_IDENTIFIER")),
        };
        if !is_valid_local_id(&uid) {
            return Err(bad("uid must be 1 to 128 characters."));
        }
        let claims = match payload.get("claims") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(Error::code("INVALID_CLAIMS")),
        };
        check_claims_object(&claims)?;

        let (_, is_new, tokens) = self
            .retry_stale(|| self.custom_sign_in(ctx, &uid, &claims))
            .await?;
        let mut body = object(json!({
            "kind": "identitytoolkit#VerifyCustomTokenResponse",
            "isNewUser": is_new,
        }));
        tokens.put_into(&mut body);
        Ok(body)
    }
}
