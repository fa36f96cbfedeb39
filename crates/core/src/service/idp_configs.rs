//! Identity-provider configurations, as the Admin SDKs manage them through
//! `IT/v2/projects/{p}/oauthIdpConfigs` (OIDC) and `.../inboundSamlConfigs` (SAML): create
//! (`?oauthIdpConfigId=`), get, list (`?pageSize=&pageToken=`), patch (`?updateMask=`) and
//! delete. Kept in the project's settings document, one map per collection.

use serde_json::{json, Map, Value};

use super::{collections, Auth};
use crate::error::{Error, Result};
use crate::model::Scope;
use crate::validate::is_absolute_uri;

const SETTINGS_KEY: &str = "providerConfigs";
/// Tenants' configurations, by tenant id, each holding the collections.
const TENANT_KEY: &str = "tenantProviderConfigs";

/// Where a scope's collection of one kind lives in the settings document.
fn collection_path(scope: &Scope, kind: ProviderKind) -> Vec<&str> {
    match &scope.tenant {
        Some(t) => vec![TENANT_KEY, t.as_str(), kind.collection()],
        None => vec![SETTINGS_KEY, kind.collection()],
    }
}
const MAX_PAGE: usize = 100;

/// The two collections of provider configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `oauthIdpConfigs`: OpenID Connect providers, ids `oidc.*`.
    Oidc,
    /// `inboundSamlConfigs`: SAML providers, ids `saml.*`.
    Saml,
    /// `defaultSupportedIdpConfigs`: the named providers (`google.com`, `github.com`, …).
    Default,
}

impl ProviderKind {
    /// The collection's name in paths and answers.
    pub fn collection(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oauthIdpConfigs",
            ProviderKind::Saml => "inboundSamlConfigs",
            ProviderKind::Default => "defaultSupportedIdpConfigs",
        }
    }

    /// The query parameter naming a new configuration's id.
    pub fn id_parameter(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oauthIdpConfigId",
            ProviderKind::Saml => "inboundSamlConfigId",
            ProviderKind::Default => "idpId",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oidc.",
            ProviderKind::Saml => "saml.",
            ProviderKind::Default => "",
        }
    }

    /// The fields a configuration may hold.
    fn fields(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Oidc => &[
                "displayName",
                "enabled",
                "clientId",
                "issuer",
                "clientSecret",
                "responseType",
            ],
            ProviderKind::Saml => &["displayName", "enabled", "idpConfig", "spConfig"],
            // `endpoints` (Firekeeper's): where a stand-in for the provider answers, for
            // tests and private deployments (`issuer`, `tokenUri`, `apiUri`).
            ProviderKind::Default => &[
                "enabled",
                "clientId",
                "clientSecret",
                "appleSignInConfig",
                "endpoints",
            ],
        }
    }
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::detail("INVALID_CONFIG", detail)
}

/// The id a provider's path or parameter names, checked.
fn check_id(kind: ProviderKind, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::code("MISSING_PROVIDER_ID"));
    }
    if kind == ProviderKind::Default {
        if super::idp_named::named(id).is_none() {
            return Err(Error::detail(
                "INVALID_PROVIDER_ID",
                format!(
                    "Supported providers: {}.",
                    super::idp_named::named_ids().join(", ")
                ),
            ));
        }
        return Ok(());
    }
    let rest = id.strip_prefix(kind.prefix()).unwrap_or_default();
    // Lower case only: sign-in requests name providers case-insensitively.
    let ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Error::detail(
            "INVALID_PROVIDER_ID",
            format!(
                "Provider ids start with \"{}\" and use lower-case letters, digits, '-', '_' and '.'.",
                kind.prefix()
            ),
        ));
    }
    Ok(())
}

/// Whether a stored configuration is complete and well-formed.
fn check_config(kind: ProviderKind, c: &Map<String, Value>) -> Result<()> {
    let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
    for (k, v) in c {
        let ok = match k.as_str() {
            "displayName" | "clientId" | "issuer" | "clientSecret" => v.is_string(),
            "endpoints" => v.as_object().is_some_and(|m| {
                m.iter().all(|(k, u)| {
                    ["issuer", "tokenUri", "apiUri"].contains(&k.as_str())
                        && u.as_str().is_some_and(|u| {
                            crate::idp::is_trusted_url(u) && !u.contains(['?', '#', '@'])
                        })
                })
            }),
            "enabled" => v.is_boolean(),
            _ => v.is_object(),
        };
        if !ok {
            return Err(invalid(format!("{k} has the wrong type")));
        }
    }
    match kind {
        ProviderKind::Oidc => {
            if text("clientId").is_empty() {
                return Err(Error::code("MISSING_OAUTH_CLIENT_ID"));
            }
            if text("issuer").is_empty() {
                return Err(Error::code("MISSING_ISSUER"));
            }
            if !crate::idp::is_trusted_url(text("issuer")) {
                return Err(invalid(
                    "issuer must be an https URL (plain http only on this machine)",
                ));
            }
            let code_flow = c
                .get("responseType")
                .and_then(|r| r.get("code"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if code_flow && text("clientSecret").is_empty() {
                return Err(Error::code("MISSING_OAUTH_CLIENT_SECRET"));
            }
        }
        ProviderKind::Default => {
            if text("clientId").is_empty() {
                return Err(Error::code("MISSING_OAUTH_CLIENT_ID"));
            }
            if text("clientSecret").is_empty() {
                return Err(Error::code("MISSING_OAUTH_CLIENT_SECRET"));
            }
        }
        ProviderKind::Saml => {
            let idp = c.get("idpConfig");
            let idp_text = |k: &str| {
                idp.and_then(|i| i.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            if idp_text("idpEntityId").is_empty() || !is_absolute_uri(idp_text("ssoUrl")) {
                return Err(invalid(
                    "idpConfig needs idpEntityId and an absolute ssoUrl",
                ));
            }
            let certs = idp
                .and_then(|i| i.get("idpCertificates"))
                .and_then(Value::as_array)
                .map_or(0, |a| {
                    a.iter()
                        .filter(|x| x.get("x509Certificate").is_some_and(Value::is_string))
                        .count()
                });
            if certs == 0 {
                return Err(invalid("idpConfig needs at least one x509Certificate"));
            }
            for cert in idp
                .and_then(|i| i.get("idpCertificates"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|x| x.get("x509Certificate").and_then(Value::as_str))
            {
                crate::saml::certificate_key(cert)
                    .map_err(|e| invalid(format!("idpConfig.idpCertificates: {e}")))?;
            }
            let sp = c.get("spConfig");
            let sp_text = |k: &str| {
                sp.and_then(|s| s.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            if sp_text("spEntityId").is_empty() || !is_absolute_uri(sp_text("callbackUri")) {
                return Err(Error::code("MISSING_SAML_RELYING_PARTY_CONFIG"));
            }
        }
    }
    Ok(())
}

/// Only the fields a configuration holds.
fn known_fields(kind: ProviderKind, body: &Value) -> Map<String, Value> {
    body.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, v)| kind.fields().contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

impl Auth {
    /// A project's or tenant's configurations of one kind, by id.
    async fn provider_configs(
        &self,
        scope: &Scope,
        kind: ProviderKind,
    ) -> Result<Map<String, Value>> {
        self.settings_map(&scope.project, &collection_path(scope, kind))
            .await
    }

    /// Stores `configs` as the collection, under the settings writer's lock (held by the
    /// caller).
    async fn put_provider_configs(
        &self,
        scope: &Scope,
        kind: ProviderKind,
        configs: Map<String, Value>,
    ) -> Result<()> {
        self.put_settings_map(&scope.project, &collection_path(scope, kind), configs)
            .await
    }

    /// Forgets a deleted tenant's configurations (inside the caller's settings write).
    pub(crate) async fn drop_tenant_providers(&self, project: &str, tenant: &str) -> Result<()> {
        let mut all = self.settings_map(project, &[TENANT_KEY]).await?;
        if all.remove(tenant).is_some() {
            self.put_settings_map(project, &[TENANT_KEY], all).await?;
        }
        Ok(())
    }

    fn provider_resource(
        scope: &Scope,
        kind: ProviderKind,
        id: &str,
        c: &Map<String, Value>,
    ) -> Value {
        let mut out = c.clone();
        let parent = match &scope.tenant {
            Some(t) => format!("projects/{}/tenants/{t}", scope.project),
            None => format!("projects/{}", scope.project),
        };
        out.insert(
            "name".into(),
            format!("{parent}/{}/{id}", kind.collection()).into(),
        );
        Value::Object(out)
    }

    /// One enabled configuration, for sign-in: `None` when unknown or disabled.
    pub(crate) async fn enabled_provider(
        &self,
        scope: &Scope,
        kind: ProviderKind,
        id: &str,
    ) -> Result<Option<Map<String, Value>>> {
        let configs = self.provider_configs(scope, kind).await?;
        Ok(configs
            .get(id)
            .and_then(Value::as_object)
            .filter(|c| c.get("enabled").and_then(Value::as_bool).unwrap_or(false))
            .cloned())
    }

    /// `POST .../{collection}?{idParameter}=<id>`.
    pub async fn create_provider_config(
        &self,
        scope: &Scope,
        kind: ProviderKind,
        id: Option<&str>,
        body: &Value,
    ) -> Result<Value> {
        let id = id.unwrap_or_default();
        check_id(kind, id)?;
        let config = known_fields(kind, body);
        check_config(kind, &config)?;
        self.write_settings(&scope.project, || async {
            let mut configs = self.provider_configs(scope, kind).await?;
            if configs.contains_key(id) {
                return Err(Error::code("CONFIGURATION_EXISTS"));
            }
            configs.insert(id.to_owned(), Value::Object(config.clone()));
            self.put_provider_configs(scope, kind, configs).await
        })
        .await?;
        Ok(Self::provider_resource(scope, kind, id, &config))
    }

    /// `GET .../{collection}/{id}`.
    pub async fn get_provider_config(
        &self,
        scope: &Scope,
        kind: ProviderKind,
        id: &str,
    ) -> Result<Value> {
        check_id(kind, id)?;
        let configs = self.provider_configs(scope, kind).await?;
        let c = configs
            .get(id)
            .and_then(Value::as_object)
            .ok_or(Error::code("CONFIGURATION_NOT_FOUND"))?;
        Ok(Self::provider_resource(scope, kind, id, c))
    }

    /// `GET .../{collection}?pageSize=&pageToken=`: in id order; the token is the last id
    /// of the previous page.
    pub async fn list_provider_configs(
        &self,
        scope: &Scope,
        kind: ProviderKind,
        page_size: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Value> {
        let size = collections::page_size(page_size, MAX_PAGE, MAX_PAGE)?;
        let configs = self.provider_configs(scope, kind).await?;
        let (entries, next) = collections::page(&configs, size, page_token);
        let items: Vec<Value> = entries
            .into_iter()
            .map(|(id, c)| Self::provider_resource(scope, kind, id, c))
            .collect();
        let mut body = json!({ kind.collection(): items });
        if let Some(token) = next {
            body["nextPageToken"] = token.into();
        }
        Ok(body)
    }

    /// `PATCH .../{collection}/{id}?updateMask=a,b.c`: the named fields from the body (a
    /// field the body lacks is cleared; nested objects merge); without a mask, every field
    /// the body has.
    pub async fn update_provider_config(
        &self,
        scope: &Scope,
        kind: ProviderKind,
        id: &str,
        mask: Option<&str>,
        body: &Value,
    ) -> Result<Value> {
        check_id(kind, id)?;
        let given = known_fields(kind, body);
        let config = self
            .write_settings(&scope.project, || async {
                let mut configs = self.provider_configs(scope, kind).await?;
                let mut config = configs
                    .get(id)
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or(Error::code("CONFIGURATION_NOT_FOUND"))?;
                collections::apply_mask(&mut config, &given, mask, kind.fields(), true)?;
                check_config(kind, &config)?;
                configs.insert(id.to_owned(), Value::Object(config.clone()));
                self.put_provider_configs(scope, kind, configs).await?;
                Ok(config)
            })
            .await?;
        Ok(Self::provider_resource(scope, kind, id, &config))
    }

    /// `DELETE .../{collection}/{id}`.
    pub async fn delete_provider_config(
        &self,
        scope: &Scope,
        kind: ProviderKind,
        id: &str,
    ) -> Result<Value> {
        check_id(kind, id)?;
        self.write_settings(&scope.project, || async {
            let mut configs = self.provider_configs(scope, kind).await?;
            if configs.remove(id).is_none() {
                return Err(Error::code("CONFIGURATION_NOT_FOUND"));
            }
            self.put_provider_configs(scope, kind, configs).await
        })
        .await?;
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_configs_are_checked() {
        assert!(check_id(ProviderKind::Oidc, "oidc.my-provider").is_ok());
        assert_eq!(
            check_id(ProviderKind::Oidc, "").unwrap_err(),
            Error::code("MISSING_PROVIDER_ID")
        );
        for bad in ["saml.x", "oidc.", "oidc.a b", "google.com", "oidc.Corp"] {
            assert!(check_id(ProviderKind::Oidc, bad).is_err(), "{bad}");
        }
        let oidc = |v: Value| check_config(ProviderKind::Oidc, v.as_object().unwrap());
        assert!(oidc(json!({"clientId": "c", "issuer": "https://idp.example"})).is_ok());
        assert_eq!(
            oidc(json!({"issuer": "https://idp.example"})).unwrap_err(),
            Error::code("MISSING_OAUTH_CLIENT_ID")
        );
        assert_eq!(
            oidc(json!({"clientId": "c"})).unwrap_err(),
            Error::code("MISSING_ISSUER")
        );
        assert_eq!(
            oidc(json!({"clientId": "c", "issuer": "https://i.example",
                "responseType": {"code": true}}))
            .unwrap_err(),
            Error::code("MISSING_OAUTH_CLIENT_SECRET")
        );
        assert!(oidc(json!({"clientId": 3, "issuer": "https://i.example"})).is_err());
        assert!(oidc(json!({"clientId": "c", "issuer": "http://idp.example"})).is_err());
        let saml = |v: Value| check_config(ProviderKind::Saml, v.as_object().unwrap());
        let cert = firekeeper_tokens::SigningKey::generate()
            .unwrap()
            .cert_pem()
            .to_owned();
        let not_a_cert = json!({
            "idpConfig": {"idpEntityId": "idp", "ssoUrl": "https://idp.example/sso",
                "idpCertificates": [{"x509Certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n"}]},
            "spConfig": {"spEntityId": "sp", "callbackUri": "https://app.example/__/auth/handler"}
        });
        assert!(saml(not_a_cert)
            .unwrap_err()
            .to_string()
            .starts_with("INVALID_CONFIG"));
        let good = json!({
            "idpConfig": {"idpEntityId": "idp", "ssoUrl": "https://idp.example/sso",
                "idpCertificates": [{"x509Certificate": cert}]},
            "spConfig": {"spEntityId": "sp", "callbackUri": "https://app.example/__/auth/handler"}
        });
        assert!(saml(good.clone()).is_ok());
        let mut no_sp = good;
        no_sp.as_object_mut().unwrap().remove("spConfig");
        assert_eq!(
            saml(no_sp).unwrap_err(),
            Error::code("MISSING_SAML_RELYING_PARTY_CONFIG")
        );
    }
}
