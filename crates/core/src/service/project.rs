//! Project-level answers: tenant resolution (§1.5), the project config the client reads,
//! and the emulator's maintenance operations (§7).

use serde_json::{json, Value};

use super::{Auth, Ctx, Mode};
use crate::error::{Error, Result};
use crate::model::Scope;

impl Auth {
    /// `GET /v1/projects`: what the client SDK reads before some flows.
    pub fn project_config(&self, ctx: &Ctx) -> Result<Value> {
        if ctx.tenant.is_some() {
            return Err(Error::code("UNSUPPORTED_TENANT_OPERATION"));
        }
        Ok(json!({
            "projectId": self.project_number(&ctx.access.project),
            "authorizedDomains": match self.config().mode {
                Mode::Emulator => vec!["localhost".to_owned()],
                Mode::Production => self.config().email_actions.authorized_domains.clone(),
            },
        }))
    }

    /// `GET /v1/recaptchaParams`. Firekeeper runs no reCAPTCHA: the values are placeholders
    /// the client SDK accepts and never verifies against Google.
    pub fn recaptcha_params(&self) -> Value {
        json!({
            "kind": "identitytoolkit#GetRecaptchaParamResponse",
            "recaptchaStoken": "firekeeper-no-recaptcha",
            "recaptchaSiteKey": "firekeeper-no-recaptcha",
        })
    }

    pub(crate) fn emulator_only(&self) -> Result<()> {
        match self.config().mode {
            Mode::Emulator => Ok(()),
            Mode::Production => Err(Error::NotFound),
        }
    }

    /// The emulator's `DELETE .../accounts`.
    pub async fn emulator_delete_accounts(&self, scope: &Scope) -> Result<Value> {
        self.emulator_only()?;
        self.store().delete_all_accounts(scope).await?;
        Ok(json!({}))
    }

    /// Firekeeper's addition to the emulator routes: everything a project has (accounts,
    /// sessions, settings) goes, so a test suite can start clean without a restart.
    pub async fn emulator_wipe_project(&self, project: &str) -> Result<Value> {
        self.emulator_only()?;
        self.store().wipe_project(project).await?;
        self.settings_cache.forget(Some(project));
        Ok(json!({}))
    }
}
