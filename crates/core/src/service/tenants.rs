//! Tenants (`IT/v2/projects/{p}/tenants`), as the Admin SDKs' tenant managers use them, and
//! the tenant checks of the account operations (§1.5): a tenant's users never see the
//! project's users; production refuses unknown tenants (`TENANT_NOT_FOUND`) and the sign-in
//! methods a tenant has not enabled (`OPERATION_NOT_ALLOWED`), while emulator mode creates
//! tenants on first use with everything enabled, as the reference emulator does.

use serde_json::{json, Map, Value};

use super::{collections, Auth, Mode};
use crate::error::{Error, Result};
use crate::model::Scope;
use crate::secrets::random_alnum;

const SETTINGS_KEY: &str = "tenants";
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 1000;

/// The fields a tenant holds (production's; the Admin SDKs send a subset).
const FIELDS: &[&str] = &[
    "displayName",
    "allowPasswordSignup",
    "enableEmailLinkSignin",
    "enableAnonymousUser",
    "disableAuth",
    "mfaConfig",
    "emailPrivacyConfig",
    "testPhoneNumbers",
    "passwordPolicyConfig",
    "recaptchaConfig",
    "smsRegionConfig",
    "autodeleteAnonymousUsers",
];

/// A sign-in method a tenant switches on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TenantMethod {
    /// Password sign-up or linking.
    Password,
    /// Signing in with (or resetting) a password.
    PasswordSignIn,
    EmailLink,
    Anonymous,
}

impl TenantMethod {
    fn flag(self) -> &'static str {
        match self {
            TenantMethod::Password | TenantMethod::PasswordSignIn => "allowPasswordSignup",
            TenantMethod::EmailLink => "enableEmailLinkSignin",
            TenantMethod::Anonymous => "enableAnonymousUser",
        }
    }

    /// The error of a switched-off method (§3.1).
    fn refusal(self) -> &'static str {
        match self {
            TenantMethod::PasswordSignIn => "PASSWORD_LOGIN_DISABLED",
            TenantMethod::Anonymous => "ADMIN_ONLY_OPERATION",
            TenantMethod::Password | TenantMethod::EmailLink => "OPERATION_NOT_ALLOWED",
        }
    }
}

fn known_fields(body: &Value) -> Map<String, Value> {
    body.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, v)| FIELDS.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn check(t: &Map<String, Value>) -> Result<()> {
    for (k, v) in t {
        let ok = match k.as_str() {
            "displayName" => v.is_string(),
            "allowPasswordSignup"
            | "enableEmailLinkSignin"
            | "enableAnonymousUser"
            | "disableAuth"
            | "autodeleteAnonymousUsers" => v.is_boolean(),
            _ => v.is_object(),
        };
        if !ok {
            return Err(Error::InvalidArgument(format!(
                "Invalid JSON payload received. /{k} has the wrong type"
            )));
        }
    }
    if let Some(p) = t.get(super::password_policy::SETTINGS_KEY) {
        super::password_policy::PasswordPolicy::from_config(p)?;
    }
    // The Admin SDKs' own rule for names.
    if let Some(name) = t.get("displayName").and_then(Value::as_str) {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && (4..=20).contains(&name.len())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(Error::code("INVALID_DISPLAY_NAME"));
        }
    }
    Ok(())
}

/// A tenant as the API answers it.
fn resource(project: &str, id: &str, t: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert(
        "name".into(),
        format!("projects/{project}/tenants/{id}").into(),
    );
    out.insert("tenantId".into(), id.into());
    // Production defaults: every method off, MFA disabled.
    for flag in [
        "allowPasswordSignup",
        "enableEmailLinkSignin",
        "enableAnonymousUser",
        "disableAuth",
    ] {
        out.insert(flag.into(), false.into());
    }
    out.insert(
        "mfaConfig".into(),
        json!({"state": "DISABLED", "enabledProviders": []}),
    );
    out.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(out)
}

impl Auth {
    async fn tenants(&self, project: &str) -> Result<Map<String, Value>> {
        self.settings_map(project, &[SETTINGS_KEY]).await
    }

    async fn put_tenants(&self, project: &str, tenants: Map<String, Value>) -> Result<()> {
        self.put_settings_map(project, &[SETTINGS_KEY], tenants)
            .await
    }

    /// A stored tenant's settings; `None` if the project has no such tenant.
    pub(crate) async fn tenant(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<Map<String, Value>>> {
        Ok(self
            .tenants(project)
            .await?
            .get(id)
            .and_then(Value::as_object)
            .cloned())
    }

    /// The tenant a request addresses: the path's, else the body's `tenantId`, else the
    /// body's ID token's; path and body must agree. Production knows only created tenants (`TENANT_NOT_FOUND`); emulator mode
    /// takes any, as the reference emulator creates them on first use.
    pub async fn resolve_tenant(
        &self,
        project: &str,
        path: Option<&str>,
        body: &Map<String, Value>,
    ) -> Result<Option<String>> {
        let from_body = body
            .get("tenantId")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let tenant = match (path, from_body) {
            (Some(p), Some(b)) if p != b => return Err(Error::code("TENANT_ID_MISMATCH")),
            (Some(p), _) => Some(p.to_owned()),
            (None, Some(b)) => Some(b.to_owned()),
            // The client SDKs send some calls (`accounts:lookup`) with the ID token alone:
            // its tenant is the request's (§1.5). The token itself is checked later.
            (None, None) => body
                .get("idToken")
                .and_then(Value::as_str)
                .and_then(|t| firekeeper_tokens::jws::decode_payload(t).ok())
                .and_then(|c| {
                    c.get("firebase")?
                        .get("tenant")?
                        .as_str()
                        .map(str::to_owned)
                }),
        };
        if let Some(t) = &tenant {
            if self.config().mode == Mode::Production && self.tenant(project, t).await?.is_none() {
                return Err(Error::code("TENANT_NOT_FOUND"));
            }
        }
        Ok(tenant)
    }

    /// Whether a scope lets end users use a sign-in method: always for the project itself;
    /// for a tenant, as it set (production defaults are off; an emulator tenant nobody
    /// configured has everything on). `disableAuth` stops every method.
    pub(crate) async fn check_tenant_method(
        &self,
        scope: &Scope,
        method: TenantMethod,
    ) -> Result<()> {
        let Some(id) = &scope.tenant else {
            return Ok(());
        };
        let Some(t) = self.tenant(&scope.project, id).await? else {
            return match self.config().mode {
                Mode::Emulator => Ok(()),
                Mode::Production => Err(Error::code("TENANT_NOT_FOUND")),
            };
        };
        if t.get("disableAuth")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return Err(Error::code("PROJECT_DISABLED"));
        }
        if !t
            .get(method.flag())
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return Err(Error::code(method.refusal()));
        }
        Ok(())
    }

    /// `PROJECT_DISABLED` for end users of a tenant with `disableAuth`, on every operation
    /// (the server checks it once per request).
    pub async fn check_tenant_enabled(&self, scope: &Scope) -> Result<()> {
        let Some(id) = &scope.tenant else {
            return Ok(());
        };
        let disabled = self
            .tenant(&scope.project, id)
            .await?
            .and_then(|t| t.get("disableAuth").and_then(Value::as_bool))
            .unwrap_or(false);
        if disabled {
            return Err(Error::code("PROJECT_DISABLED"));
        }
        Ok(())
    }

    /// `POST IT/v2/projects/{p}/tenants`: a new tenant with a generated id.
    pub async fn create_tenant(&self, project: &str, body: &Value) -> Result<Value> {
        let fields = known_fields(body);
        check(&fields)?;
        let name = fields
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or("tenant")
            .to_ascii_lowercase();
        let id = self
            .write_settings(project, || async {
                let mut all = self.tenants(project).await?;
                // Accounts are keyed by tenant id: a new tenant must never take an old one's.
                let mut id = String::new();
                while id.is_empty() || all.contains_key(&id) {
                    id = format!("{name}-{}", random_alnum(8)?.to_ascii_lowercase());
                }
                all.insert(id.clone(), Value::Object(fields.clone()));
                self.put_tenants(project, all).await?;
                Ok(id)
            })
            .await?;
        Ok(resource(project, &id, &fields))
    }

    /// `GET IT/v2/projects/{p}/tenants/{t}`.
    pub async fn get_tenant(&self, project: &str, id: &str) -> Result<Value> {
        let t = self
            .tenant(project, id)
            .await?
            .ok_or(Error::code("TENANT_NOT_FOUND"))?;
        Ok(resource(project, id, &t))
    }

    /// `GET IT/v2/projects/{p}/tenants?pageSize=&pageToken=`: by id; the token is the last
    /// id of the previous page.
    pub async fn list_tenants(
        &self,
        project: &str,
        page_size: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Value> {
        let size = collections::page_size(page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let all = self.tenants(project).await?;
        let (entries, next) = collections::page(&all, size, page_token);
        let items: Vec<Value> = entries
            .into_iter()
            .map(|(id, t)| resource(project, id, t))
            .collect();
        let mut body = json!({ "tenants": items });
        if let Some(token) = next {
            body["nextPageToken"] = token.into();
        }
        Ok(body)
    }

    /// `PATCH IT/v2/projects/{p}/tenants/{t}?updateMask=`: the masked fields from the body
    /// (absent ones cleared); without a mask, every field the body has.
    pub async fn update_tenant(
        &self,
        project: &str,
        id: &str,
        mask: Option<&str>,
        body: &Value,
    ) -> Result<Value> {
        let given = known_fields(body);
        let t = self
            .write_settings(project, || async {
                let mut all = self.tenants(project).await?;
                let mut t = all
                    .get(id)
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or(Error::code("TENANT_NOT_FOUND"))?;
                collections::apply_mask(&mut t, &given, mask, FIELDS, true)?;
                check(&t)?;
                all.insert(id.to_owned(), Value::Object(t.clone()));
                self.put_tenants(project, all).await?;
                Ok(t)
            })
            .await?;
        Ok(resource(project, id, &t))
    }

    /// `DELETE IT/v2/projects/{p}/tenants/{t}`: the tenant and every user in it.
    pub async fn delete_tenant(&self, project: &str, id: &str) -> Result<Value> {
        // The tenant goes first, so no sign-up can land in it while its users go.
        self.write_settings(project, || async {
            let mut all = self.tenants(project).await?;
            if all.remove(id).is_none() {
                return Err(Error::code("TENANT_NOT_FOUND"));
            }
            self.put_tenants(project, all).await?;
            self.drop_tenant_providers(project, id).await
        })
        .await?;
        let scope = Scope {
            project: project.to_owned(),
            tenant: Some(id.to_owned()),
        };
        self.store().delete_all_accounts(&scope).await?;
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_checked_and_answered_with_defaults() {
        let ok = known_fields(
            &json!({"displayName": "Team-A1", "allowPasswordSignup": true,
            "unknown": 1}),
        );
        assert!(check(&ok).is_ok());
        assert!(!ok.contains_key("unknown"));
        for bad in ["1abc", "ab", "has space", "waaaaaaaaaaaaaaaaaaay-too-long"] {
            let t = known_fields(&json!({ "displayName": bad }));
            assert_eq!(
                check(&t).unwrap_err(),
                Error::code("INVALID_DISPLAY_NAME"),
                "{bad}"
            );
        }
        assert!(check(&known_fields(&json!({"allowPasswordSignup": "yes"}))).is_err());
        let r = resource("p", "team-a1-abcde", &ok);
        assert_eq!(r["name"], "projects/p/tenants/team-a1-abcde");
        assert_eq!(r["allowPasswordSignup"], true);
        assert_eq!(r["enableAnonymousUser"], false);
        assert_eq!(r["mfaConfig"]["state"], "DISABLED");
    }
}
