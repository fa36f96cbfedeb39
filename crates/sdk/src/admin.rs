//! The admin calls a session-cookie site needs: exchanging an ID token for a cookie, and
//! revoking on sign-out. They use [`Config::admin_token`](crate::Config::admin_token).

use std::time::Duration;

use serde_json::{json, Value};

use crate::verifier::{now_secs, SESSION_COOKIE_MAX, SESSION_COOKIE_MIN};
use crate::{Verifier, VerifyError};

/// The server's refusal as the error kind a verification would give.
fn refusal(message: &str) -> VerifyError {
    let code = message.split([' ', ':']).next().unwrap_or_default();
    match code {
        "TOKEN_EXPIRED" => VerifyError::Revoked,
        "USER_DISABLED" => VerifyError::Disabled,
        "USER_NOT_FOUND" => VerifyError::UserNotFound,
        "INVALID_ID_TOKEN" | "MISSING_ID_TOKEN" | "INVALID_DURATION" | "TENANT_ID_MISMATCH" => {
            VerifyError::Invalid(message.to_owned())
        }
        _ => VerifyError::Unavailable(message.to_owned()),
    }
}

impl Verifier {
    /// Sends an admin request; a refusal becomes the matching [`VerifyError`].
    async fn admin_send(&self, req: reqwest::RequestBuilder) -> Result<Value, VerifyError> {
        let res = req
            .bearer_auth(self.admin()?)
            .send()
            .await
            .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .map_err(|e| VerifyError::Unavailable(format!("{status}: {e}")))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]["message"].as_str().unwrap_or_default();
        Err(refusal(message))
    }

    fn identity_toolkit(
        &self,
        tenant: Option<&str>,
        op: &str,
    ) -> Result<reqwest::Url, VerifyError> {
        let project = &self.config().project;
        let mut segments = vec![
            "identitytoolkit.googleapis.com",
            "v1",
            "projects",
            project.as_str(),
        ];
        if let Some(t) = tenant {
            segments.extend(["tenants", t]);
        }
        let mut url = self.url(&segments, None)?;
        // `projects/p:createSessionCookie` joins the operation to the last segment.
        let path = if op.starts_with(':') {
            format!("{}{op}", url.path())
        } else {
            format!("{}/{op}", url.path())
        };
        url.set_path(&path);
        Ok(url)
    }

    /// Exchanges an ID token for a session cookie that lives `duration` (five minutes to two
    /// weeks), as the Admin SDKs' `createSessionCookie`. The server checks the ID token
    /// fully first: a revoked, expired or disabled user's token gets no cookie.
    pub async fn create_session_cookie(
        &self,
        id_token: &str,
        duration: Duration,
    ) -> Result<String, VerifyError> {
        if !(SESSION_COOKIE_MIN..=SESSION_COOKIE_MAX).contains(&duration) {
            return Err(VerifyError::Invalid(
                "a session cookie lives 5 minutes to 2 weeks".into(),
            ));
        }
        // The tenant decides the path; the server verifies the claim it is read from.
        let tenant = firekeeper_tokens::jws::decode_payload(id_token)
            .ok()
            .and_then(|c| {
                c.get("firebase")?
                    .get("tenant")?
                    .as_str()
                    .map(str::to_owned)
            });
        let url = self.identity_toolkit(tenant.as_deref(), ":createSessionCookie")?;
        let body = json!({"idToken": id_token, "validDuration": duration.as_secs()});
        let answer = self.admin_send(self.http().post(url).json(&body)).await?;
        answer["sessionCookie"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| VerifyError::Unavailable("no sessionCookie in the answer".into()))
    }

    /// Revokes every refresh token and session cookie of a user (`validSince = now`), as
    /// the Admin SDKs' `revokeRefreshTokens`.
    pub async fn revoke_refresh_tokens(
        &self,
        uid: &str,
        tenant: Option<&str>,
    ) -> Result<(), VerifyError> {
        let url = self.identity_toolkit(tenant, "accounts:update")?;
        let body = json!({"localId": uid, "validSince": now_secs().to_string()});
        self.admin_send(self.http().post(url).json(&body)).await?;
        Ok(())
    }

    /// Ends one sign-in session: its refresh token, ID tokens and session cookies stop
    /// working, the user's other devices stay signed in.
    pub async fn end_session(
        &self,
        session_id: &str,
        tenant: Option<&str>,
    ) -> Result<(), VerifyError> {
        let project = self.config().project.clone();
        let op = format!("{session_id}:revoke");
        let url = self.url(
            &["firekeeper", "v1", "projects", &project, "sessions", &op],
            tenant,
        )?;
        self.admin_send(self.http().post(url).json(&json!({})))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_verification_errors() {
        assert_eq!(refusal("TOKEN_EXPIRED"), VerifyError::Revoked);
        assert_eq!(refusal("USER_DISABLED"), VerifyError::Disabled);
        assert_eq!(refusal("USER_NOT_FOUND"), VerifyError::UserNotFound);
        assert!(matches!(
            refusal("INVALID_DURATION"),
            VerifyError::Invalid(_)
        ));
        assert!(matches!(
            refusal("INVALID_ID_TOKEN : expired"),
            VerifyError::Invalid(_)
        ));
        assert!(matches!(
            refusal("INSUFFICIENT_PERMISSION"),
            VerifyError::Unavailable(_)
        ));
    }
}
