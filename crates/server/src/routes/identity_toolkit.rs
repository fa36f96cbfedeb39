//! `/identitytoolkit.googleapis.com/...` and the legacy v3 `relyingparty` names (§1.1–1.2).

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::response::Response;
use firekeeper_core::access::Accepts;
use firekeeper_core::service::ProviderKind;
use firekeeper_core::Error;
use serde_json::Value;

use super::{ctx, run};
use crate::request::{typed, Incoming};
use crate::AppState;

/// A parsed Identity Toolkit path.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    version: String,
    project: Option<String>,
    tenant: Option<String>,
    /// `accounts:signUp`, `createSessionCookie`, `accounts`, `projects`, ...
    op: String,
}

/// `{segment}:{op}` at the end of a path (`projects/p:createSessionCookie`).
fn split_op(segment: &str) -> (&str, Option<&str>) {
    match segment.split_once(':') {
        Some((id, op)) => (id, Some(op)),
        None => (segment, None),
    }
}

fn parse_target(rest: &str) -> Option<Target> {
    let segs: Vec<&str> = rest.split('/').collect();
    let (version, tail) = segs.split_first()?;
    let version = (*version).to_owned();
    if tail.first() != Some(&"projects") || tail.len() == 1 {
        let op = tail.join("/");
        return (!op.is_empty()).then_some(Target {
            version,
            project: None,
            tenant: None,
            op,
        });
    }
    let (project, project_op) = split_op(tail.get(1)?);
    if project.is_empty() {
        return None;
    }
    if let Some(op) = project_op {
        return (tail.len() == 2).then(|| Target {
            version,
            project: Some(project.to_owned()),
            tenant: None,
            op: op.to_owned(),
        });
    }
    let mut rest = &tail[2..];
    let mut tenant = None;
    if rest.first() == Some(&"tenants") && rest.len() >= 2 {
        let (t, tenant_op) = split_op(rest[1]);
        if t.is_empty() {
            return None;
        }
        tenant = Some(t.to_owned());
        if let Some(op) = tenant_op {
            return (rest.len() == 2).then(|| Target {
                version: version.clone(),
                project: Some(project.to_owned()),
                tenant,
                op: op.to_owned(),
            });
        }
        rest = &rest[2..];
    }
    let op = rest.join("/");
    // `projects/{p}/tenants/{t}` alone names the tenant itself (v2 tenant management).
    (!op.is_empty() || tenant.is_some()).then_some(Target {
        version,
        project: Some(project.to_owned()),
        tenant,
        op,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    SignUp,
    SignInWithPassword,
    SignInWithCustomToken,
    Lookup,
    Update,
    Delete,
    BatchGet,
    BatchDelete,
    Query,
    GetProjectConfig,
    RecaptchaParams,
    CreateSessionCookie,
    SendOobCode,
    ResetPassword,
    SignInWithIdp,
    SignInWithEmailLink,
    CreateAuthUri,
    SendVerificationCode,
    SignInWithPhoneNumber,
    MfaEnrollmentStart,
    MfaEnrollmentFinalize,
    MfaEnrollmentWithdraw,
    MfaSignInStart,
    MfaSignInFinalize,
    /// In the API, not served yet (its issue is open): 501 with the operation's name.
    Later(&'static str),
}

fn v1_op(method: &Method, op: &str, has_project: bool) -> Option<Op> {
    Some(match (method.as_str(), op) {
        ("POST", "accounts:signUp") => Op::SignUp,
        ("POST", "accounts") if has_project => Op::SignUp,
        ("POST", "accounts:signInWithPassword") => Op::SignInWithPassword,
        ("POST", "accounts:signInWithCustomToken") => Op::SignInWithCustomToken,
        ("POST", "accounts:lookup") => Op::Lookup,
        ("POST", "accounts:update") => Op::Update,
        ("POST", "accounts:delete") => Op::Delete,
        ("GET", "accounts:batchGet") if has_project => Op::BatchGet,
        ("POST", "accounts:batchDelete") if has_project => Op::BatchDelete,
        ("POST", "accounts:query") | ("POST", "queryAccounts") if has_project => Op::Query,
        ("GET", "projects") => Op::GetProjectConfig,
        ("GET", "recaptchaParams") => Op::RecaptchaParams,
        ("POST", "accounts:sendOobCode") => Op::SendOobCode,
        ("POST", "accounts:resetPassword") => Op::ResetPassword,
        ("POST", "accounts:signInWithIdp") => Op::SignInWithIdp,
        ("POST", "accounts:signInWithEmailLink") => Op::SignInWithEmailLink,
        ("POST", "accounts:createAuthUri") => Op::CreateAuthUri,
        ("POST", "accounts:sendVerificationCode") => Op::SendVerificationCode,
        ("POST", "accounts:signInWithPhoneNumber") => Op::SignInWithPhoneNumber,
        (_, "accounts:batchCreate") => Op::Later("accounts:batchCreate"),
        ("POST", "createSessionCookie") if has_project => Op::CreateSessionCookie,
        _ => return None,
    })
}

/// The v2 account operations (second factors); the rest of v2 is configuration.
fn v2_account_op(method: &Method, op: &str) -> Option<Op> {
    Some(match (method.as_str(), op) {
        ("POST", "accounts/mfaEnrollment:start") => Op::MfaEnrollmentStart,
        ("POST", "accounts/mfaEnrollment:finalize") => Op::MfaEnrollmentFinalize,
        ("POST", "accounts/mfaEnrollment:withdraw") => Op::MfaEnrollmentWithdraw,
        ("POST", "accounts/mfaSignIn:start") => Op::MfaSignInStart,
        ("POST", "accounts/mfaSignIn:finalize") => Op::MfaSignInFinalize,
        _ => return None,
    })
}

fn accepts(op: Op) -> Accepts {
    match op {
        Op::BatchGet | Op::BatchDelete | Op::Query | Op::CreateSessionCookie => Accepts::AdminOnly,
        _ => Accepts::KeyOrAdmin,
    }
}

/// `v2/projects/{p}[/tenants/{t}]/oauthIdpConfigs[/{id}]`, `.../inboundSamlConfigs[/{id}]`
/// and `.../defaultSupportedIdpConfigs[/{id}]`.
async fn provider_configs(
    auth: &firekeeper_core::Auth,
    inc: &Incoming,
    scope: &firekeeper_core::Scope,
    kind: ProviderKind,
    id: Option<&str>,
) -> Result<Value, Error> {
    let query = |k: &str| inc.query.get(k).and_then(Value::as_str);
    match (&inc.method, id) {
        (&Method::POST, None) => {
            let body = Value::Object(inc.json_body(false)?);
            auth.create_provider_config(scope, kind, query(kind.id_parameter()), &body)
                .await
        }
        (&Method::GET, None) => {
            auth.list_provider_configs(scope, kind, query("pageSize"), query("pageToken"))
                .await
        }
        (&Method::GET, Some(id)) => auth.get_provider_config(scope, kind, id).await,
        (&Method::PATCH, Some(id)) => {
            let body = Value::Object(inc.json_body(false)?);
            auth.update_provider_config(scope, kind, id, query("updateMask"), &body)
                .await
        }
        (&Method::DELETE, Some(id)) => auth.delete_provider_config(scope, kind, id).await,
        _ => Err(Error::NotFound),
    }
}

/// `GET v2/passwordPolicy` (API key): the policy the client SDKs validate passwords with.
async fn password_policy(state: &AppState, inc: Incoming, target: Target) -> Result<Value, Error> {
    inc.require_some_credential(Accepts::KeyOrAdmin)?;
    let auth = &state.auth;
    let access = auth
        .authorize(
            inc.credentials(),
            target.project.as_deref(),
            Accepts::KeyOrAdmin,
        )
        .await?;
    let tenant = auth
        .resolve_tenant(&access.project, target.tenant.as_deref(), &inc.query)
        .await?;
    let scope = firekeeper_core::Scope {
        project: access.project,
        tenant,
    };
    auth.public_password_policy(&scope).await
}

/// `v2/projects/{p}/tenants[/{t}]`: the tenant managers of the Admin SDKs (admin only).
async fn tenants(
    state: &AppState,
    inc: &Incoming,
    project: &str,
    target: &Target,
) -> Result<Value, Error> {
    inc.require_some_credential(Accepts::AdminOnly)?;
    let auth = &state.auth;
    let access = auth
        .authorize(inc.credentials(), Some(project), Accepts::AdminOnly)
        .await?;
    let project = access.project.as_str();
    let query = |k: &str| inc.query.get(k).and_then(Value::as_str);
    match (&inc.method, target.tenant.as_deref()) {
        (&Method::POST, None) => {
            let body = Value::Object(inc.json_body(false)?);
            auth.create_tenant(project, &body).await
        }
        (&Method::GET, None) => {
            auth.list_tenants(project, query("pageSize"), query("pageToken"))
                .await
        }
        (&Method::GET, Some(t)) => auth.get_tenant(project, t).await,
        (&Method::PATCH, Some(t)) => {
            let body = Value::Object(inc.json_body(false)?);
            auth.update_tenant(project, t, query("updateMask"), &body)
                .await
        }
        (&Method::DELETE, Some(t)) => auth.delete_tenant(project, t).await,
        _ => Err(Error::NotFound),
    }
}

/// `v2/projects/{p}/config` (the blocking-function registration) and the provider
/// configurations; admin only.
async fn v2_config(state: &AppState, inc: Incoming, target: Target) -> Result<Value, Error> {
    let not_yet = || Error::NotImplemented(format!("{} is not implemented yet.", inc.path));
    let Some(project) = &target.project else {
        return Err(not_yet());
    };
    let (collection, id) = match target.op.split_once('/') {
        Some((c, id)) => (c, Some(id)),
        None => (target.op.as_str(), None),
    };
    // `projects/{p}/tenants[/{t}]` parse as a tenant path with an empty operation.
    if target.op.is_empty() || collection == "tenants" {
        return tenants(state, &inc, project, &target).await;
    }
    let kind = match collection {
        "oauthIdpConfigs" => Some(ProviderKind::Oidc),
        "inboundSamlConfigs" => Some(ProviderKind::Saml),
        "defaultSupportedIdpConfigs" => Some(ProviderKind::Default),
        "config" if id.is_none() && target.tenant.is_none() => None,
        _ => return Err(not_yet()),
    };
    if let Some(kind) = kind {
        inc.require_some_credential(Accepts::AdminOnly)?;
        let auth = &state.auth;
        let access = auth
            .authorize(inc.credentials(), Some(project), Accepts::AdminOnly)
            .await?;
        let tenant = auth
            .resolve_tenant(
                &access.project,
                target.tenant.as_deref(),
                &serde_json::Map::new(),
            )
            .await?;
        let scope = firekeeper_core::Scope {
            project: access.project,
            tenant,
        };
        return provider_configs(auth, &inc, &scope, kind, id).await;
    }
    inc.require_some_credential(Accepts::AdminOnly)?;
    let auth = &state.auth;
    let access = auth
        .authorize(inc.credentials(), Some(project), Accepts::AdminOnly)
        .await?;
    match inc.method {
        Method::GET => auth.v2_config(&access.project).await,
        Method::PATCH => {
            let body = Value::Object(inc.json_body(false)?);
            let mask = inc.query.get("updateMask").and_then(Value::as_str);
            auth.patch_v2_config(&access.project, mask, &body).await
        }
        _ => Err(Error::NotFound),
    }
}

async fn dispatch(state: &AppState, inc: Incoming, target: Target) -> Result<Value, Error> {
    if target.version == "v2" && target.op == "passwordPolicy" && inc.method == Method::GET {
        return password_policy(state, inc, target).await;
    }
    let op = match target.version.as_str() {
        "v1" => v1_op(&inc.method, &target.op, target.project.is_some()).ok_or(Error::NotFound)?,
        "v2" => match v2_account_op(&inc.method, &target.op) {
            Some(op) => op,
            None => return v2_config(state, inc, target).await,
        },
        _ => {
            return Err(Error::NotImplemented(format!(
                "{} is not implemented yet.",
                inc.path
            )))
        }
    };
    inc.require_some_credential(accepts(op))?;
    let body = inc.json_body(false)?;
    let body_project = body
        .get("targetProjectId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let project = target.project.clone().or(body_project);
    let auth = &state.auth;
    let access = auth
        .authorize(inc.credentials(), project.as_deref(), accepts(op))
        .await?;
    let tenant = auth
        .resolve_tenant(&access.project, target.tenant.as_deref(), &body)
        .await?;
    let c = ctx(access, tenant, &inc);
    if !c.access.privileged {
        auth.check_tenant_enabled(&c.scope()).await?;
    }
    match op {
        Op::SignUp => auth.sign_up(&c, typed(body)?).await,
        Op::SignInWithPassword => auth.sign_in_with_password(&c, typed(body)?).await,
        Op::SignInWithCustomToken => auth.sign_in_with_custom_token(&c, typed(body)?).await,
        Op::Lookup => auth.lookup(&c, typed(body)?).await,
        Op::Update => auth.update(&c, typed(body)?).await,
        Op::Delete => auth.delete(&c, typed(body)?).await,
        Op::BatchGet => auth.batch_get(&c, typed(body)?).await,
        Op::BatchDelete => auth.batch_delete(&c, typed(body)?).await,
        Op::Query => auth.query(&c, typed(body)?).await,
        Op::GetProjectConfig => auth.project_config(&c),
        Op::RecaptchaParams => Ok(auth.recaptcha_params()),
        Op::CreateSessionCookie => auth.create_session_cookie(&c, typed(body)?).await,
        Op::SendOobCode => auth.send_oob_code(&c, typed(body)?).await,
        Op::ResetPassword => auth.reset_password(&c, typed(body)?).await,
        Op::SignInWithIdp => auth.sign_in_with_idp(&c, typed(body)?).await,
        Op::SignInWithEmailLink => auth.sign_in_with_email_link(&c, typed(body)?).await,
        Op::CreateAuthUri => auth.create_auth_uri(&c, typed(body)?).await,
        Op::SendVerificationCode => auth.send_verification_code(&c, typed(body)?).await,
        Op::SignInWithPhoneNumber => auth.sign_in_with_phone_number(&c, typed(body)?).await,
        Op::MfaEnrollmentStart => auth.mfa_enrollment_start(&c, typed(body)?).await,
        Op::MfaEnrollmentFinalize => auth.mfa_enrollment_finalize(&c, typed(body)?).await,
        Op::MfaEnrollmentWithdraw => auth.mfa_withdraw(&c, typed(body)?).await,
        Op::MfaSignInStart => auth.mfa_sign_in_start(&c, typed(body)?).await,
        Op::MfaSignInFinalize => auth.mfa_sign_in_finalize(&c, typed(body)?).await,
        Op::Later(name) => Err(Error::NotImplemented(format!(
            "{name} is not implemented yet."
        ))),
    }
}

const PREFIX: &str = "/identitytoolkit.googleapis.com/";

pub async fn handle(State(state): State<AppState>, req: Request<Body>) -> Response {
    let s = state.clone();
    run(&state, req, |inc| async move {
        let rest = inc.path.strip_prefix(PREFIX).unwrap_or_default();
        // Identity Platform's reference path for the v2 config.
        let rest = match rest.strip_prefix("admin/") {
            Some(v2) if v2.starts_with("v2/") => v2,
            _ => rest,
        }
        .to_owned();
        let target = parse_target(&rest).ok_or(Error::NotFound)?;
        dispatch(&s, inc, target).await
    })
    .await
}

/// Legacy `relyingparty/<name>` served as the v1 operation (§1.2).
fn legacy_op(name: &str) -> Option<(&'static str, Method)> {
    Some(match name {
        "createAuthUri" => ("accounts:createAuthUri", Method::POST),
        "deleteAccount" => ("accounts:delete", Method::POST),
        "emailLinkSignin" => ("accounts:signInWithEmailLink", Method::POST),
        "getAccountInfo" => ("accounts:lookup", Method::POST),
        "getOobConfirmationCode" => ("accounts:sendOobCode", Method::POST),
        "getProjectConfig" => ("projects", Method::GET),
        "getRecaptchaParam" => ("recaptchaParams", Method::GET),
        "resetPassword" => ("accounts:resetPassword", Method::POST),
        "sendVerificationCode" => ("accounts:sendVerificationCode", Method::POST),
        "setAccountInfo" => ("accounts:update", Method::POST),
        "signupNewUser" => ("accounts:signUp", Method::POST),
        "verifyAssertion" => ("accounts:signInWithIdp", Method::POST),
        "verifyCustomToken" => ("accounts:signInWithCustomToken", Method::POST),
        "verifyPassword" => ("accounts:signInWithPassword", Method::POST),
        "verifyPhoneNumber" => ("accounts:signInWithPhoneNumber", Method::POST),
        _ => return None,
    })
}

const LEGACY_PREFIX: &str = "/www.googleapis.com/identitytoolkit/v3/relyingparty/";

pub async fn legacy(State(state): State<AppState>, req: Request<Body>) -> Response {
    let s = state.clone();
    run(&state, req, |mut inc| async move {
        let name = inc
            .path
            .strip_prefix(LEGACY_PREFIX)
            .unwrap_or_default()
            .to_owned();
        if name == "signOutUser" {
            return Err(Error::NotImplemented(
                "signOutUser is not implemented.".into(),
            ));
        }
        let (op, method) = legacy_op(&name).ok_or(Error::NotFound)?;
        inc.method = method;
        let target = Target {
            version: "v1".into(),
            project: None,
            tenant: None,
            op: op.into(),
        };
        dispatch(&s, inc, target).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &str, p: Option<&str>, tn: Option<&str>, op: &str) -> Option<Target> {
        Some(Target {
            version: v.into(),
            project: p.map(Into::into),
            tenant: tn.map(Into::into),
            op: op.into(),
        })
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_target("v1/accounts:signUp"),
            t("v1", None, None, "accounts:signUp")
        );
        assert_eq!(
            parse_target("v1/projects/p/accounts:lookup"),
            t("v1", Some("p"), None, "accounts:lookup")
        );
        assert_eq!(
            parse_target("v1/projects/p/tenants/t/accounts"),
            t("v1", Some("p"), Some("t"), "accounts")
        );
        assert_eq!(
            parse_target("v1/projects/p:createSessionCookie"),
            t("v1", Some("p"), None, "createSessionCookie")
        );
        assert_eq!(
            parse_target("v1/projects/p/tenants/t:createSessionCookie"),
            t("v1", Some("p"), Some("t"), "createSessionCookie")
        );
        assert_eq!(parse_target("v1/projects"), t("v1", None, None, "projects"));
        assert_eq!(parse_target("v1/projects/p"), None);
        assert_eq!(parse_target("v1"), None);
    }
}
