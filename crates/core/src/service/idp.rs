//! `accounts:signInWithIdp` (§3.1): sign-in with an identity provider's credential.
//!
//! Production verifies OpenID Connect providers configured through `oauthIdpConfigs`: an
//! `id_token` against the provider's published keys, or an authorization `code` exchanged
//! at its token endpoint. Emulator mode accepts the reference emulator's fake IdP tokens
//! (strict JSON or an unverified JWT with a `sub`) for any provider id.
//!
//! One account per email, as Firebase by default: a verified IdP email that matches an
//! account signs that account in (taking it over from whoever registered the address if
//! it was unverified); an unverified one asks for confirmation instead.

use serde_json::{json, Map, Value};

use super::blocking::apply;
use super::idp_named::{access_token_profile, Check, Client};
use super::{object, Auth, Ctx, Mode, ProviderKind, SignInWithIdpRequest};
use crate::error::{Error, Result};
use crate::idp::{check_id_token, IdpProfile, IDP_DEADLINE};
use crate::model::{event_kind, Account, ProviderUserInfo};
use crate::secrets::new_local_id;
use crate::validate::is_absolute_uri;

fn idp_refused() -> Error {
    Error::detail(
        "INVALID_IDP_RESPONSE",
        "The supplied auth credential is malformed or has expired.",
    )
}

/// The parameters of a request: the `requestUri` query and fragment, then `postBody`
/// (later wins).
fn parameters(request_uri: &str, post_body: &str) -> Map<String, Value> {
    let (before_fragment, fragment) = request_uri.split_once('#').unwrap_or((request_uri, ""));
    let query = before_fragment
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    let mut out = Map::new();
    for part in [query, fragment, post_body] {
        if let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(part) {
            for (k, v) in pairs {
                out.insert(k, v.into());
            }
        }
    }
    out
}

/// The reference emulator's fake id_token: strict JSON, or a JWT read without checks.
fn fake_claims(id_token: &str) -> Result<Map<String, Value>> {
    let parsed = if id_token.trim_start().starts_with('{') {
        serde_json::from_str::<Map<String, Value>>(id_token).map_err(|_| {
            Error::detail(
                "INVALID_IDP_RESPONSE",
                format!("Unable to parse id_token: {id_token}"),
            )
        })?
    } else {
        firekeeper_tokens::jws::decode_payload(id_token).map_err(|_| {
            Error::detail(
                "INVALID_IDP_RESPONSE",
                format!("Unable to parse id_token: {id_token}"),
            )
        })?
    };
    match parsed.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => Ok(parsed),
        None => Err(Error::detail(
            "INVALID_IDP_RESPONSE",
            "Invalid Idp Response: id_token missing required fields.",
        )),
        _ => Err(Error::detail(
            "INVALID_IDP_RESPONSE",
            "The \"sub\" field must be a string.",
        )),
    }
}

/// A string of a configuration's section ("" when absent).
fn config_text(config: &Map<String, Value>, section: &str, field: &str) -> String {
    config
        .get(section)
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The provider entry an IdP sign-in links.
fn provider_entry(p: &IdpProfile) -> ProviderUserInfo {
    ProviderUserInfo {
        provider_id: p.provider_id.clone(),
        raw_id: p.raw_id.clone(),
        federated_id: Some(p.raw_id.clone()),
        email: p.email.clone(),
        display_name: p.display_name.clone(),
        photo_url: p.photo_url.clone(),
        ..Default::default()
    }
}

/// Links (or refreshes) the profile's provider entry on `acc`.
fn link(acc: &mut Account, p: &IdpProfile) {
    acc.providers.retain(|e| e.provider_id != p.provider_id);
    acc.providers.push(provider_entry(p));
}

/// The account the sign-in lands on.
enum Landing {
    /// A new account, not stored yet.
    New(Account),
    Existing(Account, Arrival),
}

/// The federated id the answers carry: Google's is a URL, as Firebase sends it.
fn federated_id(p: &IdpProfile) -> String {
    match p.provider_id.as_str() {
        "google.com" => format!("https://accounts.google.com/{}", p.raw_id),
        _ => p.raw_id.clone(),
    }
}

impl Auth {
    /// What the IdP says about the user, checked: production verifies the credential with
    /// the configured provider, emulator mode reads fake tokens.
    async fn idp_profile(
        &self,
        ctx: &Ctx,
        params: &Map<String, Value>,
        request_uri: &str,
    ) -> Result<IdpProfile> {
        let text = |k: &str| {
            params
                .get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let provider_id = text("providerId")
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| {
                Error::detail(
                    "INVALID_CREDENTIAL_OR_PROVIDER_ID",
                    format!("Invalid IdP response/credential: {request_uri}"),
                )
            })?;
        if self.config().mode == Mode::Emulator {
            // The emulator's fake SAML: `{assertion:{subject:{nameId}, attributeStatements}}`.
            if let Some(saml) = text("SAMLResponse") {
                let fake: Value = serde_json::from_str(saml).map_err(|_| idp_refused())?;
                let assertion = fake.get("assertion").cloned().unwrap_or_default();
                let name_id = assertion
                    .pointer("/subject/nameId")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(idp_refused)?;
                let mut claims = Map::new();
                claims.insert("sub".into(), name_id.into());
                if let Some(a) = assertion.get("attributeStatements") {
                    claims.insert("attributeStatements".into(), a.clone());
                }
                return IdpProfile::from_claims(&provider_id, claims).ok_or_else(idp_refused);
            }
            let Some(id_token) = text("id_token") else {
                return Err(Error::NotImplemented(format!(
                    "The Auth Emulator only support sign-in with {provider_id} using id_token, \
                     not access_token. Please update your code to use id_token."
                )));
            };
            let claims = fake_claims(id_token)?;
            let mut p = IdpProfile::from_claims(&provider_id, claims).ok_or_else(idp_refused)?;
            p.id_token = Some(id_token.to_owned());
            p.access_token =
                Some(text("access_token").map(str::to_owned).unwrap_or_else(|| {
                    format!("FirebaseAuthEmulatorFakeAccessToken_{provider_id}")
                }));
            return Ok(p);
        }
        let named = super::idp_named::named(&provider_id);
        let kind = match named {
            Some(_) => ProviderKind::Default,
            None if provider_id.starts_with("oidc.") => ProviderKind::Oidc,
            None if provider_id.starts_with("saml.") => ProviderKind::Saml,
            None => {
                return Err(Error::detail(
                    "OPERATION_NOT_ALLOWED",
                    format!("The identity provider configuration is not found: {provider_id}"),
                ))
            }
        };
        let config = self
            // A tenant's own configurations: the project's sign nobody into a tenant.
            .enabled_provider(&ctx.scope(), kind, &provider_id)
            .await?
            .ok_or_else(|| {
                Error::detail(
                    "OPERATION_NOT_ALLOWED",
                    format!("The identity provider configuration is not found or disabled: {provider_id}"),
                )
            })?;
        if kind == ProviderKind::Saml {
            let response = text("SAMLResponse").ok_or_else(|| {
                tracing::info!(provider = %provider_id, "no SAMLResponse");
                idp_refused()
            })?;
            return self
                .saml_profile(ctx, &provider_id, &config, response)
                .await;
        }
        let cfg = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or_default();
        // A stand-in's endpoints (Firekeeper's `endpoints`), else the provider's own.
        let overrides = config.get("endpoints").filter(|_| named.is_some());
        if overrides.is_some() && !self.config().idp_endpoint_overrides {
            return Err(Error::detail(
                "OPERATION_NOT_ALLOWED",
                format!(
                    "{provider_id} is configured with endpoints, which this server does not \
                     allow (idp_endpoint_overrides)."
                ),
            ));
        }
        let endpoint = |k: &str| overrides.and_then(|e| e.get(k)).and_then(Value::as_str);
        let client_id = cfg("clientId");
        let http = self
            .hook_client()
            .ok_or_else(|| Error::internal("no HTTP client"))?;
        let now_ms = self.clock().now_ms();
        let fail = |why: &dyn std::fmt::Display| {
            tracing::info!(provider = %provider_id, reason = %why, "identity provider credential refused");
            idp_refused()
        };
        if let Some(n) = named.filter(|n| n.check != Check::IdToken) {
            let token = text("access_token").ok_or_else(|| fail(&"no access_token"))?;
            let client = Client {
                id: client_id,
                secret: cfg("clientSecret"),
                api: endpoint("apiUri").unwrap_or(n.api),
            };
            let p = access_token_profile(
                http,
                n,
                &client,
                token,
                text("oauth_token_secret"),
                now_ms.div_euclid(1000),
            )
            .await
            .map_err(|e| fail(&e))?;
            return Ok(p);
        }
        let issuer = match named {
            Some(n) => endpoint("issuer").or(n.issuer).ok_or_else(|| {
                Error::detail(
                    "OPERATION_NOT_ALLOWED",
                    format!(
                        "{provider_id} needs endpoints.issuer: the issuer of the app's directory"
                    ),
                )
            })?,
            None => cfg("issuer"),
        };
        let mut tokens = Map::new();
        let id_token = if let Some(t) = text("id_token") {
            t.to_owned()
        } else if let Some(code) = text("code") {
            // Named providers always have a client secret to trade codes with.
            let code_flow = named.is_some()
                || config
                    .get("responseType")
                    .and_then(|r| r.get("code"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            if !code_flow {
                return Err(fail(&"the code flow is not enabled for this provider"));
            }
            let found = self
                .oidc
                .discover(http, issuer, None, now_ms)
                .await
                .map_err(|e| fail(&e))?;
            let endpoint = endpoint("tokenUri")
                .or(found.token_endpoint.as_deref())
                .ok_or_else(|| fail(&"no token endpoint"))?;
            let redirect = request_uri.split(['?', '#']).next().unwrap_or(request_uri);
            let answer = http
                .post_form(
                    endpoint,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", code),
                        ("redirect_uri", redirect),
                        ("client_id", client_id),
                        ("client_secret", cfg("clientSecret")),
                    ],
                    IDP_DEADLINE,
                )
                .await
                .map_err(|e| fail(&e))?;
            tokens = answer.as_object().cloned().unwrap_or_default();
            tokens
                .get("id_token")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| fail(&"the token endpoint sent no id_token"))?
        } else {
            return Err(fail(&"neither id_token nor code"));
        };
        // The issuer as the token spells it, when that is one of the provider's spellings
        // (Google's bare host); the keys come from the canonical one.
        let token_issuer = firekeeper_tokens::jws::decode(&id_token)
            .ok()
            .and_then(|d| {
                d.payload
                    .get("iss")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        // Only for the provider's own issuer: a stand-in's keys vouch for nothing else.
        let accepted = match (named, token_issuer.as_deref()) {
            (Some(n), Some(t)) if n.issuer == Some(issuer) && n.alt_issuers.contains(&t) => t,
            _ => issuer,
        };
        // Cheap checks first: a made-up token costs the provider no request.
        crate::idp::precheck(&id_token, accepted, client_id, now_ms.div_euclid(1000))
            .map_err(|e| fail(&e))?;
        let kid = firekeeper_tokens::jws::decode_header(&id_token)
            .ok()
            .and_then(|h| h.get("kid").and_then(Value::as_str).map(str::to_owned));
        let found = self
            .oidc
            .discover(http, issuer, kid.as_deref(), now_ms)
            .await
            .map_err(|e| fail(&e))?;
        let claims = check_id_token(
            &id_token,
            &found.keys,
            accepted,
            client_id,
            text("nonce"),
            now_ms.div_euclid(1000),
        )
        .map_err(|e| fail(&e))?;
        let mut p = IdpProfile::from_claims(&provider_id, claims).ok_or_else(idp_refused)?;
        p.id_token = Some(id_token);
        let token_text = |k: &str| tokens.get(k).and_then(Value::as_str).map(str::to_owned);
        p.access_token =
            token_text("access_token").or_else(|| text("access_token").map(str::to_owned));
        p.refresh_token = token_text("refresh_token");
        p.expires_in = tokens.get("expires_in").and_then(Value::as_i64);
        Ok(p)
    }

    /// A SAML provider's signed response, checked against its configuration; each
    /// assertion signs in once (its ID is kept until it expires).
    async fn saml_profile(
        &self,
        ctx: &Ctx,
        provider_id: &str,
        config: &Map<String, Value>,
        response: &str,
    ) -> Result<IdpProfile> {
        let fail = |why: &dyn std::fmt::Display| {
            tracing::info!(provider = %provider_id, reason = %why, "SAML response refused");
            idp_refused()
        };
        let certificates: Vec<firekeeper_tokens::PublicKey> = config
            .get("idpConfig")
            .and_then(|c| c.get("idpCertificates"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("x509Certificate").and_then(Value::as_str))
            .filter_map(|c| crate::saml::certificate_key(c).ok())
            .collect();
        let saml = crate::saml::SamlConfig {
            idp_entity_id: config_text(config, "idpConfig", "idpEntityId"),
            certificates,
            sp_entity_id: config_text(config, "spConfig", "spEntityId"),
            callback_uri: config_text(config, "spConfig", "callbackUri"),
        };
        let now_s = self.clock().now_secs();
        // A form-encoded body turns an unencoded '+' into a space; base64 has no spaces.
        let response = response.replace(' ', "+");
        let checked = crate::saml::check_response(&response, &saml, provider_id, now_s)
            .map_err(|e| fail(&e))?;
        // Assertion IDs are unique per issuer: one assertion signs in once, whichever
        // provider configuration names its issuer.
        let seen = crate::secrets::sha256(
            format!("saml-assertion\0{}\0{}", checked.issuer, checked.id).as_bytes(),
        );
        let now_ms = self.clock().now_ms();
        let row = crate::model::OobCode {
            code_hash: seen,
            scope: ctx.scope(),
            created_at: now_ms,
            expires_at: checked.replayable_until.saturating_mul(1000).max(now_ms),
            action: crate::model::OobAction {
                request_type: crate::model::oob_kind::SAML_ASSERTION.to_owned(),
                ..Default::default()
            },
        };
        // The row's key is the assertion's: a replay (or a request racing with the first
        // use) fails to insert it.
        self.store().insert_oob_code(&row).await.map_err(|e| {
            fail(&format!(
                "the assertion was used before, or not recorded: {e}"
            ))
        })?;
        Ok(checked.profile)
    }

    /// The claims an IdP sign-in adds to a blocking function's JWT (blocking-functions.md
    /// §3.2): the profile always, the credentials the project forwards.
    async fn idp_hook_claims(&self, project: &str, p: &IdpProfile) -> Result<Map<String, Value>> {
        let forward = self
            .blocking_functions(project)
            .await?
            .forward_inbound_credentials;
        // What this kind of provider passes at all (the seeds' table).
        let passes = super::idp_named::passes_of(&p.provider_id);
        let mut out = Map::new();
        out.insert(
            "raw_user_info".into(),
            Value::Object(p.claims.clone()).to_string().into(),
        );
        if passes.sign_in_attributes {
            out.insert("sign_in_attributes".into(), Value::Object(p.claims.clone()));
        }
        let text = |v: &Option<String>| v.clone().map(Value::from);
        for (wanted, key, value) in [
            (
                forward.id_token && passes.id_token,
                "oauth_id_token",
                text(&p.id_token),
            ),
            (
                forward.access_token && passes.access_token,
                "oauth_access_token",
                text(&p.access_token),
            ),
            (
                forward.access_token && passes.expires_in,
                "oauth_expires_in",
                p.expires_in.map(Value::from),
            ),
            (
                forward.access_token && passes.token_secret,
                "oauth_token_secret",
                text(&p.token_secret),
            ),
            (
                forward.refresh_token && passes.refresh_token,
                "oauth_refresh_token",
                text(&p.refresh_token),
            ),
        ] {
            if let (true, Some(v)) = (wanted, value) {
                out.insert(key.into(), v);
            }
        }
        Ok(out)
    }

    /// `accounts:signInWithIdp`.
    pub async fn sign_in_with_idp(&self, ctx: &Ctx, req: SignInWithIdpRequest) -> Result<Value> {
        if req.return_refresh_token.is_some() {
            return Err(Error::NotImplemented(
                "returnRefreshToken is not implemented yet.".into(),
            ));
        }
        if req.pending_id_token.is_some() {
            return Err(Error::NotImplemented(
                "pendingIdToken is not implemented yet.".into(),
            ));
        }
        let request_uri = req
            .request_uri
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or(Error::code("MISSING_REQUEST_URI"))?;
        if !is_absolute_uri(request_uri) {
            return Err(Error::code("INVALID_REQUEST_URI"));
        }
        let params = parameters(request_uri, req.post_body.as_deref().unwrap_or_default());
        // Refused credentials are limited per client: each one may cost calls to the
        // provider made with the app's credentials, which have quotas of their own.
        let client = format!(
            "{}/{}",
            ctx.access.project,
            ctx.ip.as_deref().unwrap_or("unknown")
        );
        let now = self.clock().now_ms();
        if self.idp_refusals.exhausted(&client, now) {
            return Err(Error::code("TOO_MANY_ATTEMPTS_TRY_LATER"));
        }
        let profile = match self.idp_profile(ctx, &params, request_uri).await {
            Err(e) if e == idp_refused() => {
                self.idp_refusals.allow(&client, now);
                return Err(e);
            }
            other => other?,
        };
        let extra = self.idp_hook_claims(&ctx.access.project, &profile).await?;
        // Two first sign-ins of one identity race to create it: the loser finds it linked
        // on a second pass and signs that account in.
        let mut answer = self.land_idp_sign_in(ctx, &req, &profile, &extra).await;
        if let Err(Error::Code {
            code: "FEDERATED_USER_ID_ALREADY_LINKED" | "EMAIL_EXISTS",
            ..
        }) = &answer
        {
            answer = self.land_idp_sign_in(ctx, &req, &profile, &extra).await;
        }
        match answer {
            // The client SDKs ask for refusals as answers that still carry the credential
            // (`returnIdpCredential`), to offer linking it instead.
            Err(Error::Code { code, detail }) if req.return_idp_credential == Some(true) => {
                let message = Error::Code { code, detail }.to_string();
                Ok(object(json!({
                    "kind": "identitytoolkit#VerifyAssertionResponse",
                    "errorMessage": message,
                    "providerId": profile.provider_id,
                    "federatedId": federated_id(&profile),
                    "email": profile.email,
                    "oauthIdToken": profile.id_token,
                    "oauthAccessToken": profile.access_token,
                })))
            }
            other => other,
        }
    }

    /// Finds or makes the account an IdP sign-in lands on, runs the functions, and stores
    /// it with the new session.
    async fn land_idp_sign_in(
        &self,
        ctx: &Ctx,
        req: &SignInWithIdpRequest,
        profile: &IdpProfile,
        extra: &Map<String, Value>,
    ) -> Result<Value> {
        let scope = ctx.scope();
        let method = profile.provider_id.clone();
        let linked = self
            .store()
            .account_by_federated(&scope, &profile.provider_id, &profile.raw_id)
            .await?;
        let landing = if let Some(token) = req.id_token.as_deref() {
            let verified = self.verify_id_token(ctx, Some(token)).await?;
            let me = verified.account;
            if linked.as_ref().is_some_and(|l| l.local_id != me.local_id) {
                return Err(Error::code("FEDERATED_USER_ID_ALREADY_LINKED"));
            }
            // One identity per provider: replacing it silently would unlink the first.
            let other_identity = me
                .providers
                .iter()
                .any(|p| p.provider_id == profile.provider_id && p.raw_id != profile.raw_id);
            if other_identity {
                return Err(Error::code("PROVIDER_ALREADY_LINKED"));
            }
            if let Some(email) = &profile.email {
                let owner = self.store().account_by_email(&scope, email).await?;
                if owner.is_some_and(|o| o.local_id != me.local_id) {
                    return Err(Error::code("EMAIL_EXISTS"));
                }
            }
            Landing::Existing(me, Arrival::Linking)
        } else if let Some(acc) = linked {
            Landing::Existing(acc, Arrival::Linked)
        } else if let Some(owner) = match &profile.email {
            Some(e) => self.store().account_by_email(&scope, e).await?,
            None => None,
        } {
            if !profile.email_verified {
                // The IdP does not vouch for the address: the user must prove they own the
                // account first, then link.
                let mut verified_providers: Vec<String> = owner
                    .providers
                    .iter()
                    .map(|p| p.provider_id.clone())
                    .collect();
                if owner.has_password() {
                    verified_providers.insert(0, "password".into());
                }
                return Ok(object(json!({
                    "kind": "identitytoolkit#VerifyAssertionResponse",
                    "needConfirmation": true,
                    "localId": owner.local_id,
                    "email": profile.email,
                    "providerId": profile.provider_id,
                    "federatedId": federated_id(profile),
                    "verifiedProvider": verified_providers,
                })));
            }
            Landing::Existing(owner, Arrival::ByVerifiedEmail)
        } else {
            let now = self.clock().now_ms();
            let mut acc = Account {
                local_id: new_local_id()?,
                email: profile.email.clone(),
                email_verified: profile.email.is_some() && profile.email_verified,
                display_name: profile.display_name.clone(),
                photo_url: profile.photo_url.clone(),
                created_at: now,
                last_login_at: Some(now),
                tenant_id: ctx.tenant.clone(),
                ..Default::default()
            };
            link(&mut acc, profile);
            Landing::New(acc)
        };

        let (acc, session, refresh, is_new, recycled) = match landing {
            Landing::New(mut acc) => {
                self.before_create_with(ctx, &mut acc, &method, extra)
                    .await?;
                let claims = match self
                    .before_sign_in_with(ctx, &mut acc, &method, extra)
                    .await
                {
                    Ok(h) => h.session_claims,
                    Err(refusal) => {
                        self.store_account_without_session(ctx, &acc).await?;
                        return Err(refusal);
                    }
                };
                if acc.disabled {
                    self.store_account_without_session(ctx, &acc).await?;
                    return Err(Error::code("USER_DISABLED"));
                }
                let (session, refresh) = self.new_session(ctx, &acc, &method, claims).await?;
                let event = self.session_event(ctx, &session, event_kind::SIGN_UP);
                self.store()
                    .create_account(&scope, &acc, Some(&session), &[event])
                    .await?;
                (acc, session, refresh, true, false)
            }
            Landing::Existing(seen, arrival) => {
                if seen.disabled {
                    return Err(Error::code("USER_DISABLED"));
                }
                // A sign-in (not a link) to an account with second factors waits for one.
                // An identity met through the account's verified email is linked once the
                // second factor passes; the profile is refreshed at a later sign-in.
                if arrival != Arrival::Linking {
                    let link_later =
                        (arrival == Arrival::ByVerifiedEmail).then(|| provider_entry(profile));
                    if let Some(challenge) = self
                        .mfa_challenge(ctx, &seen, &method, &method, link_later.as_ref())
                        .await?
                    {
                        let mut body = object(json!({
                            "kind": "identitytoolkit#VerifyAssertionResponse",
                            "providerId": profile.provider_id,
                            "federatedId": federated_id(profile),
                            "localId": seen.local_id,
                            "email": profile.email,
                            "emailVerified": profile.email_verified,
                            "displayName": profile.display_name,
                            "photoUrl": profile.photo_url,
                            "isNewUser": false,
                            "tenantId": ctx.tenant,
                        }));
                        if let Value::Object(m) = &mut body {
                            m.extend(challenge);
                        }
                        return Ok(body);
                    }
                }
                let now = self.clock().now_ms();
                let recycled = arrival == Arrival::ByVerifiedEmail
                    && seen.providers.iter().any(|p| {
                        p.provider_id == profile.provider_id && p.raw_id != profile.raw_id
                    });
                let mut preview = lands_on(seen.clone(), profile, arrival, now);
                let hooks = self
                    .before_sign_in_with(ctx, &mut preview, &method, extra)
                    .await?;
                let (acc, session, refresh) = self
                    .retry_stale(|| async {
                        let fresh = self.require_account(&scope, &seen.local_id).await?;
                        if fresh.disabled {
                            return Err(Error::code("USER_DISABLED"));
                        }
                        let before = fresh.clone();
                        let mut acc = lands_on(fresh, profile, arrival, now);
                        apply(&mut acc, &hooks.updates);
                        if acc.disabled {
                            let events = self.update_events(ctx, &before, &acc, false, None);
                            self.store()
                                .update_account(&scope, &acc, None, &events)
                                .await?;
                            return Err(Error::code("USER_DISABLED"));
                        }
                        let (session, refresh) = self
                            .new_session(ctx, &acc, &method, hooks.session_claims.clone())
                            .await?;
                        let revoked = acc.valid_since != before.valid_since;
                        let events =
                            self.update_events(ctx, &before, &acc, revoked, Some(&session));
                        self.store()
                            .update_account(&scope, &acc, Some(&session), &events)
                            .await?;
                        Ok((acc, session, refresh))
                    })
                    .await?;
                // Bookkeeping after the sign-in committed: a failure here must not turn a
                // stored session into an error (or a retry into a second session).
                if let Err(e) = self
                    .store()
                    .set_last_login_at(&scope, &acc.local_id, session.created_at)
                    .await
                {
                    tracing::warn!(error = %e, "recording the sign-in time failed");
                }
                self.feed.notify_waiters();
                (acc, session, refresh, false, recycled)
            }
        };
        self.enforce_session_cap(ctx, &acc.local_id).await;
        let mut acc = acc;
        acc.last_login_at = Some(session.created_at);
        let tokens = self.issue(&acc, &session, refresh)?;
        let claim = |k: &str| profile.claims.get(k).and_then(Value::as_str);
        let mut body = object(json!({
            "kind": "identitytoolkit#VerifyAssertionResponse",
            "providerId": profile.provider_id,
            "federatedId": federated_id(profile),
            "localId": acc.local_id,
            "email": profile.email,
            "emailVerified": profile.email_verified,
            "displayName": profile.display_name,
            "fullName": profile.display_name,
            "firstName": claim("given_name"),
            "lastName": claim("family_name"),
            "screenName": claim("screen_name"),
            "photoUrl": profile.photo_url,
            "rawUserInfo": Value::Object(profile.claims.clone()).to_string(),
            "oauthIdToken": profile.id_token,
            "oauthAccessToken": profile.access_token,
            "oauthTokenSecret": profile.token_secret,
            "oauthExpireIn": profile.expires_in,
            "isNewUser": is_new,
            "emailRecycled": recycled.then_some(true),
            "tenantId": ctx.tenant,
        }));
        tokens.put_into(&mut body);
        Ok(body)
    }
}

/// How an IdP sign-in reached an existing account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// The identity was linked to it before.
    Linked,
    /// The signed-in user (`idToken`) links the identity now.
    Linking,
    /// The IdP vouches for the account's email (one account per email).
    ByVerifiedEmail,
}

/// The account as an IdP sign-in leaves it: the provider linked with its fresh profile.
/// When the account was found by a verified IdP email and nobody had verified that address,
/// whoever registered it may not own the mailbox: their password, phone and other providers
/// go, their sessions end, and the profile becomes the IdP's (§3.1's account rules). A user
/// linking an identity gets its email if they had none.
fn lands_on(mut acc: Account, p: &IdpProfile, arrival: Arrival, now_ms: i64) -> Account {
    match arrival {
        Arrival::ByVerifiedEmail => {
            if !acc.email_verified {
                acc.password_hash = None;
                acc.phone_number = None;
                acc.providers.clear();
                acc.valid_since = Some(now_ms.div_euclid(1000));
                acc.display_name = p.display_name.clone();
                acc.photo_url = p.photo_url.clone();
            }
            acc.email_verified = true;
        }
        Arrival::Linking if acc.email.is_none() => {
            if let Some(e) = &p.email {
                acc.email = Some(e.clone());
                acc.email_verified = p.email_verified;
            }
        }
        Arrival::Linking | Arrival::Linked => {}
    }
    if acc.display_name.is_none() {
        acc.display_name = p.display_name.clone();
    }
    if acc.photo_url.is_none() {
        acc.photo_url = p.photo_url.clone();
    }
    link(&mut acc, p);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_merge_query_and_body() {
        let p = parameters(
            "http://localhost/cb?providerId=oidc.a&state=s#access_token=fa",
            "id_token=t&providerId=oidc.b",
        );
        assert_eq!(p["providerId"], "oidc.b");
        assert_eq!(p["state"], "s");
        assert_eq!(p["access_token"], "fa");
        assert_eq!(p["id_token"], "t");
    }

    #[test]
    fn fake_tokens_need_a_string_subject() {
        assert!(fake_claims(r#"{"sub":"u1","email":"a@b.co"}"#).is_ok());
        assert!(fake_claims(r#"{"email":"a@b.co"}"#).is_err());
        assert!(fake_claims(r#"{"sub":5}"#).is_err());
        assert!(fake_claims("{not json").is_err());
        let jwt =
            firekeeper_tokens::jws::encode_unsigned(json!({"sub": "u2"}).as_object().unwrap());
        assert_eq!(fake_claims(&jwt).unwrap()["sub"], "u2");
    }
}
