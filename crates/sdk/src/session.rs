//! Session cookies for server-rendered sites, as Firebase's "Manage session cookies" page
//! describes them, made one-liners for axum:
//!
//! - [`session_login`]: `POST {idToken, csrfToken}` (JSON or form). Checks the CSRF
//!   double-submit cookie, optionally that the sign-in is recent, exchanges the ID token for
//!   a session cookie and sets it with the configured [`CookiePolicy`].
//! - [`Session`]: an extractor that verifies the cookie (with or without the revocation
//!   check) and hands the claims to the handler, or answers 401 / redirects to the login
//!   page as configured.
//! - [`session_logout`]: clears the cookie and ends the cookie's sign-in session on the
//!   server; with `revoke=true` it revokes all the user's sessions.
//!
//! ```no_run
//! # async fn demo(verifier: firekeeper_sdk::Verifier) {
//! use axum::{routing::{get, post}, Router};
//! use firekeeper_sdk::session::{session_login, session_logout, Session, SessionCookies};
//!
//! async fn profile(Session(claims): Session) -> String {
//!     format!("hello {}", claims.uid())
//! }
//! let cookies = SessionCookies::new(verifier).redirect_to("/login");
//! let app: Router = Router::new()
//!     .route("/sessionLogin", post(session_login))
//!     .route("/sessionLogout", post(session_logout))
//!     .route("/profile", get(profile))
//!     .with_state(cookies);
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
pub use cookie::SameSite;
use cookie::{Cookie, CookieBuilder};
use serde::Deserialize;
use serde_json::json;

use crate::extract::{address_allowed, reject};
use crate::verifier::{now_secs, SESSION_COOKIE_MAX, SESSION_COOKIE_MIN};
use crate::{Claims, Verifier, VerifyError};

/// How the session cookie is set. On a site that shares its registrable domain with hosts
/// it does not trust, prefer `__Host-` names (with `secure`, no `domain`, path `/`), so a
/// sibling host cannot plant a cookie of the same name.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub name: String,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: SameSite,
    pub path: String,
    pub domain: Option<String>,
    /// The cookie's life, both its `Max-Age` and its `exp`: five minutes to two weeks.
    pub duration: Duration,
}

impl Default for CookiePolicy {
    /// `session`, HttpOnly, Secure, SameSite=Lax, Path=/, five days (the page's example).
    fn default() -> Self {
        Self {
            name: "session".into(),
            http_only: true,
            secure: true,
            same_site: SameSite::Lax,
            path: "/".into(),
            domain: None,
            duration: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// What a request without a valid session gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 401 with a JSON error.
    Unauthorized,
    /// 303 to this path (a login page).
    Redirect(String),
}

#[derive(Debug, Clone)]
struct Settings {
    verifier: Verifier,
    policy: CookiePolicy,
    csrf_cookie: String,
    recent_sign_in: Option<Duration>,
    check_revoked: bool,
    rejection: Rejection,
    end_session_on_logout: bool,
    after_logout: Option<String>,
}

/// The session-cookie configuration the handlers and the extractor share; put it in the
/// router's state (or make it `FromRef` of your state). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionCookies(Arc<Settings>);

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("the CSRF token does not match its cookie")]
    Csrf,
    #[error("recent sign-in required")]
    NotRecent,
    #[error(transparent)]
    Token(#[from] VerifyError),
}

impl SessionCookies {
    /// Defaults: [`CookiePolicy::default`], CSRF cookie `csrfToken`, sign-in within the last
    /// 5 minutes, revocation checked, 401 for missing or bad cookies, logout ends the
    /// cookie's session.
    pub fn new(verifier: Verifier) -> Self {
        Self::warn_if_short_lookback(&verifier, CookiePolicy::default().duration);
        Self(Arc::new(Settings {
            verifier,
            policy: CookiePolicy::default(),
            csrf_cookie: "csrfToken".into(),
            recent_sign_in: Some(Duration::from_secs(5 * 60)),
            check_revoked: true,
            rejection: Rejection::Unauthorized,
            end_session_on_logout: true,
            after_logout: None,
        }))
    }

    fn with(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.0));
        self
    }

    /// A duration outside five minutes to two weeks is brought to the nearest bound.
    pub fn policy(self, mut policy: CookiePolicy) -> Self {
        let bounded = policy
            .duration
            .clamp(SESSION_COOKIE_MIN, SESSION_COOKIE_MAX);
        if bounded != policy.duration {
            tracing::warn!(
                "session cookie duration {:?} is outside 5 min to 2 weeks; using {bounded:?}",
                policy.duration
            );
            policy.duration = bounded;
        }
        Self::warn_if_short_lookback(&self.0.verifier, policy.duration);
        self.with(|s| s.policy = policy)
    }

    /// Cookies older than the verifier's revocation snapshot are checked with the server
    /// on every request: correct, but a round trip per page view.
    fn warn_if_short_lookback(verifier: &Verifier, duration: Duration) {
        let lookback = verifier.config().lookback;
        if lookback < duration {
            tracing::warn!(
                "the verifier's lookback ({lookback:?}) is shorter than the session cookie's \
                 life ({duration:?}): older cookies are checked with the server on every \
                 request; set Config::lookback(SESSION_COOKIE_MAX + 5 min)"
            );
        }
    }

    /// Refuse logins whose ID token's `auth_time` is older than this (`None`: any age).
    pub fn recent_sign_in(self, within: Option<Duration>) -> Self {
        self.with(|s| s.recent_sign_in = within)
    }

    /// Whether [`Session`] checks revocation, disabled users and ended sessions.
    pub fn check_revoked(self, check: bool) -> Self {
        self.with(|s| s.check_revoked = check)
    }

    /// Requests without a valid session are redirected here instead of getting 401.
    pub fn redirect_to(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.with(|s| s.rejection = Rejection::Redirect(path))
    }

    /// Where [`session_logout`] sends the browser (303); without it, it answers JSON.
    pub fn after_logout(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.with(|s| s.after_logout = Some(path))
    }

    /// Whether a plain logout also ends the cookie's sign-in session on the server, so a
    /// copy of the cookie stops working too (default: yes).
    pub fn end_session_on_logout(self, end: bool) -> Self {
        self.with(|s| s.end_session_on_logout = end)
    }

    pub fn csrf_cookie_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(|s| s.csrf_cookie = name)
    }

    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    pub fn cookie_policy(&self) -> &CookiePolicy {
        &self.0.policy
    }

    /// The browser's CSRF token (a fresh one if it has none) and the `Set-Cookie` value
    /// that stores it. The login page's script reads it from the cookie and posts it back
    /// with the ID token; forms embed it. Reusing the browser's token keeps every open tab's
    /// forms valid.
    pub fn issue_csrf(&self, request: &HeaderMap) -> Result<(String, HeaderValue), VerifyError> {
        let token = match cookie_value(request, &self.0.csrf_cookie).filter(|t| t.len() >= 32) {
            Some(t) => t,
            None => {
                let mut bytes = [0u8; 24];
                aws_lc_rs::rand::fill(&mut bytes)
                    .map_err(|_| VerifyError::Unavailable("no randomness".into()))?;
                URL_SAFE_NO_PAD.encode(bytes)
            }
        };
        let cookie = Cookie::build((self.0.csrf_cookie.clone(), token.clone()))
            .path("/")
            .same_site(SameSite::Strict)
            .secure(self.0.policy.secure)
            .build();
        Ok((token, header_value(&cookie)?))
    }

    fn base_cookie(&self, value: String) -> CookieBuilder<'static> {
        let p = &self.0.policy;
        let mut b = Cookie::build((p.name.clone(), value))
            .http_only(p.http_only)
            .secure(p.secure)
            .same_site(p.same_site)
            .path(p.path.clone());
        if let Some(d) = &p.domain {
            b = b.domain(d.clone());
        }
        b
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie(&self) -> Result<HeaderValue, VerifyError> {
        let c = self
            .base_cookie(String::new())
            .max_age(cookie::time::Duration::ZERO)
            .build();
        header_value(&c)
    }

    /// Checks the double-submitted CSRF token and the sign-in's age, exchanges the ID token
    /// for a session cookie, and returns the `Set-Cookie` value.
    pub async fn login(
        &self,
        headers: &HeaderMap,
        id_token: &str,
        csrf_token: &str,
    ) -> Result<HeaderValue, LoginError> {
        let stored = cookie_value(headers, &self.0.csrf_cookie).unwrap_or_default();
        let same = aws_lc_rs::constant_time::verify_slices_are_equal(
            stored.as_bytes(),
            csrf_token.as_bytes(),
        )
        .is_ok();
        if stored.is_empty() || !same {
            return Err(LoginError::Csrf);
        }
        if let Some(within) = self.0.recent_sign_in {
            let claims = self.0.verifier.verify_id_token(id_token, false).await?;
            if now_secs() - claims.auth_time() > within.as_secs() as i64 {
                return Err(LoginError::NotRecent);
            }
        }
        let duration = self.0.policy.duration;
        let cookie = self
            .0
            .verifier
            .create_session_cookie(id_token, duration)
            .await?;
        let max_age = cookie::time::Duration::seconds(duration.as_secs() as i64);
        Ok(header_value(
            &self.base_cookie(cookie).max_age(max_age).build(),
        )?)
    }

    /// The verified claims of the request's session cookie.
    pub async fn verify(&self, headers: &HeaderMap) -> Result<Claims, VerifyError> {
        let cookie = cookie_value(headers, &self.0.policy.name)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| VerifyError::Invalid("no session cookie".into()))?;
        self.0
            .verifier
            .verify_session_cookie(&cookie, self.0.check_revoked)
            .await
    }

    /// The configured answer, clearing the refused cookie so the browser stops sending it.
    fn rejection(&self, why: &str) -> Response {
        let res = match &self.0.rejection {
            Rejection::Unauthorized => reject(StatusCode::UNAUTHORIZED, why),
            Rejection::Redirect(to) => Redirect::to(to).into_response(),
        };
        match self.clear_cookie() {
            Ok(clear) => with_cookie(res, clear),
            Err(_) => res,
        }
    }
}

fn header_value(c: &Cookie<'_>) -> Result<HeaderValue, VerifyError> {
    HeaderValue::from_str(&c.encoded().to_string())
        .map_err(|_| VerifyError::Invalid("cookie value not sendable".into()))
}

/// The value of cookie `name` from the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse_encoded(v.to_owned()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FormBody {
    id_token: Option<String>,
    csrf_token: Option<String>,
    revoke: Option<serde_json::Value>,
}

/// JSON or `application/x-www-form-urlencoded`, by the request's content type.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Option<FormBody> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if json {
        serde_json::from_slice(body).ok()
    } else {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Some(FormBody {
            id_token: get("idToken"),
            csrf_token: get("csrfToken"),
            revoke: get("revoke").map(serde_json::Value::String),
        })
    }
}

fn truthy(v: Option<&serde_json::Value>) -> bool {
    match v {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => matches!(s.as_str(), "true" | "1" | "on" | "yes"),
        _ => false,
    }
}

fn with_cookie(mut res: Response, set_cookie: HeaderValue) -> Response {
    res.headers_mut().append(header::SET_COOKIE, set_cookie);
    res
}

/// `POST /sessionLogin` with `{idToken, csrfToken}`: 200 `{"status":"success"}` and the
/// session cookie, 401 when the CSRF token, the sign-in's age or the ID token is refused,
/// 503 when the server cannot be reached.
pub async fn session_login(
    State(sc): State<SessionCookies>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = parse_body(&headers, &body) else {
        return reject(StatusCode::BAD_REQUEST, "expected {idToken, csrfToken}");
    };
    let (Some(id_token), Some(csrf)) = (form.id_token, form.csrf_token) else {
        return reject(StatusCode::BAD_REQUEST, "expected {idToken, csrfToken}");
    };
    match sc.login(&headers, &id_token, &csrf).await {
        Ok(set_cookie) => with_cookie(
            axum::Json(json!({"status": "success"})).into_response(),
            set_cookie,
        ),
        Err(LoginError::Token(VerifyError::Unavailable(_))) => reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot create a session now",
        ),
        Err(e) => reject(StatusCode::UNAUTHORIZED, &e.to_string()),
    }
}

/// `POST /sessionLogout` with `{csrfToken, revoke?}`: clears the cookie; ends the cookie's
/// session on the server (unless configured off), or with `revoke=true` revokes all the
/// user's sessions, as the page's "revoke on sign-out" example.
pub async fn session_logout(
    State(sc): State<SessionCookies>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_body(&headers, &body).unwrap_or_default();
    let stored = cookie_value(&headers, &sc.0.csrf_cookie).unwrap_or_default();
    let csrf = form.csrf_token.unwrap_or_default();
    let same =
        aws_lc_rs::constant_time::verify_slices_are_equal(stored.as_bytes(), csrf.as_bytes())
            .is_ok();
    if stored.is_empty() || !same {
        return reject(StatusCode::UNAUTHORIZED, &LoginError::Csrf.to_string());
    }
    // The cookie's own claims say whose sessions to end; a forged one is refused here.
    if let Some(cookie) = cookie_value(&headers, &sc.0.policy.name).filter(|c| !c.is_empty()) {
        let verified = sc.0.verifier.verify_session_cookie(&cookie, false).await;
        if let Err(e) = &verified {
            tracing::warn!(error = %e, "logout: the cookie did not verify; no session ended");
        }
        if let Ok(claims) = verified {
            let ended = if truthy(form.revoke.as_ref()) {
                sc.0.verifier
                    .revoke_refresh_tokens(claims.uid(), claims.tenant())
                    .await
            } else if let (true, Some(sid)) = (sc.0.end_session_on_logout, claims.session_id()) {
                sc.0.verifier.end_session(sid, claims.tenant()).await
            } else {
                Ok(())
            };
            if let Err(e) = ended {
                tracing::warn!(error = %e, "ending the session at logout failed");
            }
        }
    }
    let res = match &sc.0.after_logout {
        Some(to) => Redirect::to(to).into_response(),
        None => axum::Json(json!({"status": "success"})).into_response(),
    };
    match sc.clear_cookie() {
        Ok(clear) => with_cookie(res, clear),
        Err(e) => reject(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The verified claims of the request's session cookie. Custom-claim checks are plain
/// code over them (`claims.get("admin") == Some(&true.into())`). Without a valid cookie the
/// request gets what [`SessionCookies::redirect_to`] configured (401 by default); 503 when
/// revocation cannot be checked. Sessions bound to their sign-in address are enforced as
/// [`SignedIn`](crate::SignedIn) does.
#[derive(Debug, Clone)]
pub struct Session(pub Claims);

impl<S> FromRequestParts<S> for Session
where
    SessionCookies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let sc = SessionCookies::from_ref(state);
        match sc.verify(&parts.headers).await {
            Ok(claims) if address_allowed(parts, &sc.0.verifier, &claims) => Ok(Session(claims)),
            Ok(_) => Err(sc.rejection("this session is bound to another address")),
            Err(VerifyError::Unavailable(_)) => Err(reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot verify the session now",
            )),
            Err(e) => Err(sc.rejection(&e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    #[test]
    fn cookies_are_read_by_name() {
        let h = headers("a=1; session=abc.def.ghi; csrfToken=x%2By");
        assert_eq!(cookie_value(&h, "session").as_deref(), Some("abc.def.ghi"));
        assert_eq!(cookie_value(&h, "csrfToken").as_deref(), Some("x+y"));
        assert_eq!(cookie_value(&h, "missing"), None);
    }

    #[test]
    fn bodies_parse_as_json_or_form() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let b = parse_body(&h, br#"{"idToken":"t","csrfToken":"c","revoke":true}"#).unwrap();
        assert_eq!(b.id_token.as_deref(), Some("t"));
        assert!(truthy(b.revoke.as_ref()));
        let b = parse_body(&HeaderMap::new(), b"csrfToken=c&revoke=true").unwrap();
        assert_eq!(b.csrf_token.as_deref(), Some("c"));
        assert!(truthy(b.revoke.as_ref()));
        assert!(!truthy(None));
    }

    #[tokio::test]
    async fn set_cookie_follows_the_policy() {
        let v = Verifier::new(crate::Config::new("http://127.0.0.1:9", "p")).unwrap();
        let sc = SessionCookies::new(v).policy(CookiePolicy {
            domain: Some("example.com".into()),
            same_site: SameSite::Strict,
            ..CookiePolicy::default()
        });
        let clear = sc.clear_cookie().unwrap();
        let clear = clear.to_str().unwrap();
        for part in [
            "session=",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Domain=example.com",
            "Max-Age=0",
        ] {
            assert!(clear.contains(part), "{clear} lacks {part}");
        }
        let (token, csrf) = sc.issue_csrf(&HeaderMap::new()).unwrap();
        assert!(token.len() >= 32);
        let csrf = csrf.to_str().unwrap();
        assert!(csrf.starts_with(&format!("csrfToken={token}")), "{csrf}");
        assert!(!csrf.contains("HttpOnly"), "the page's script reads it");
        let again = sc
            .issue_csrf(&headers(&format!("csrfToken={token}")))
            .unwrap();
        assert_eq!(again.0, token, "open tabs keep a working token");
        // A login with a mismatching double-submit token never reaches the server.
        let h = headers(&format!("csrfToken={token}"));
        assert_eq!(sc.login(&h, "id", "forged").await, Err(LoginError::Csrf));
        assert_eq!(
            sc.login(&HeaderMap::new(), "id", "").await,
            Err(LoginError::Csrf)
        );
    }
}
