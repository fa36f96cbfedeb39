//! A server-rendered site with session cookies on Firekeeper, as Firebase's "Manage session
//! cookies" page builds it: the login page signs in with the Firebase JS client (no
//! client-side persistence) and posts the ID token with a CSRF token to `/sessionLogin`;
//! every protected page verifies the HttpOnly session cookie, revocation included.
//!
//! Pages: `/login`, `/profile` (any signed-in user), `/admin` (custom claim `admin`),
//! `POST /sessionLogout` (clear; with `revoke=true` also revoke all the user's sessions).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use firekeeper_sdk::session::{
    session_login, session_logout, CookiePolicy, Session, SessionCookies,
};
use firekeeper_sdk::{Config, Verifier, SESSION_COOKIE_MAX};
use serde_json::{json, Value};

/// Environment variables are `SITE_*`, so they never collide with the server's
/// `FIREKEEPER_*` ones (which the server rejects when unknown).
#[derive(Debug, Parser)]
#[command(
    about = "Example site: Firebase-style session cookies on a Firekeeper server",
    long_about = "Serves /login, /profile, /admin and /sessionLogin, /sessionLogout. \
                  The login page's script is bundled from the npm firebase package: \
                  run `npm ci && npm run build` in examples/session-site/web first."
)]
struct Args {
    /// Address this site listens on.
    #[arg(long, env = "SITE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base URL of the Firekeeper server (the browser talks to it too).
    #[arg(
        long,
        env = "SITE_FIREKEEPER_URL",
        default_value = "http://127.0.0.1:9099"
    )]
    firekeeper: String,
    /// Firekeeper project id.
    #[arg(long, env = "SITE_PROJECT", default_value = "demo-firekeeper")]
    project: String,
    /// API key handed to the browser's Firebase client.
    #[arg(long, env = "SITE_API_KEY")]
    api_key: String,
    /// Admin token the site's back end uses to create cookies and follow revocations.
    #[arg(long, env = "SITE_ADMIN_TOKEN")]
    admin_token: String,
    /// Folder with the bundled login.js.
    #[arg(
        long,
        env = "SITE_STATIC_DIR",
        default_value = "examples/session-site/static"
    )]
    static_dir: PathBuf,
    /// Drop the cookies' Secure attribute (plain-http hosts other than localhost).
    #[arg(long)]
    insecure_cookies: bool,
}

#[derive(Clone)]
struct Site {
    cookies: SessionCookies,
    /// The page's Firebase client configuration, as JSON.
    client_config: String,
    static_dir: PathBuf,
}

impl FromRef<Site> for SessionCookies {
    fn from_ref(site: &Site) -> Self {
        site.cookies.clone()
    }
}

/// Text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title></head><body><h1>{title}</h1>\n{body}\n</body></html>\n"
    )
}

async fn login_page(State(site): State<Site>, headers: HeaderMap) -> Response {
    // The page's script reads the token from its cookie.
    let (_, set_cookie) = match site.cookies.issue_csrf(&headers) {
        Ok(pair) => pair,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    // JSON inside <script>: `<` escaped so the config can never close the element.
    let config = site.client_config.replace('<', "\\u003c");
    let body = format!(
        "<form id=\"login\">\
         <label>Email <input id=\"email\" type=\"email\" autocomplete=\"username\"></label>\
         <label>Password <input id=\"password\" type=\"password\" \
         autocomplete=\"current-password\"></label>\
         <button id=\"signin\" type=\"submit\">Sign in</button></form>\
         <p id=\"error\"></p>\
         <script id=\"config\" type=\"application/json\">{config}</script>\
         <script type=\"module\" src=\"/static/login.js\"></script>"
    );
    let mut res = Html(page("Sign in", &body)).into_response();
    res.headers_mut().append(header::SET_COOKIE, set_cookie);
    res
}

/// The logout forms carry the CSRF token of the page that shows them.
fn logout_forms(csrf: &str) -> String {
    let csrf = escape(csrf);
    format!(
        "<form id=\"logout\" method=\"post\" action=\"/sessionLogout\">\
         <input type=\"hidden\" name=\"csrfToken\" value=\"{csrf}\">\
         <button type=\"submit\">Sign out</button></form>\
         <form id=\"logout-revoke\" method=\"post\" action=\"/sessionLogout\">\
         <input type=\"hidden\" name=\"csrfToken\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"revoke\" value=\"true\">\
         <button type=\"submit\">Sign out everywhere</button></form>"
    )
}

async fn profile(
    State(site): State<Site>,
    headers: HeaderMap,
    Session(claims): Session,
) -> Response {
    let (csrf, set_cookie) = match site.cookies.issue_csrf(&headers) {
        Ok(pair) => pair,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let email = claims.str("email").unwrap_or("(no email)");
    let body = format!(
        "<p>Signed in as <span id=\"email\">{}</span> (uid <code id=\"uid\">{}</code>).</p>\
         <p><a href=\"/admin\">Admin area</a></p>{}",
        escape(email),
        escape(claims.uid()),
        logout_forms(&csrf)
    );
    let mut res = Html(page("Profile", &body)).into_response();
    res.headers_mut().append(header::SET_COOKIE, set_cookie);
    res
}

/// Custom-claim permission checks are plain code over the verified claims.
async fn admin(Session(claims): Session) -> Response {
    if claims.get("admin") != Some(&Value::Bool(true)) {
        let body = "<p>This page needs the <code>admin</code> claim. Ask an administrator, \
                    then sign in again.</p><p><a href=\"/profile\">Back</a></p>";
        return (StatusCode::FORBIDDEN, Html(page("Forbidden", body))).into_response();
    }
    let body = format!(
        "<p>Admin area for <span id=\"email\">{}</span>.</p>",
        escape(claims.str("email").unwrap_or_default())
    );
    Html(page("Admin area", &body)).into_response()
}

async fn login_script(State(site): State<Site>) -> Response {
    match tokio::fs::read(site.static_dir.join("login.js")).await {
        Ok(js) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            )],
            js,
        )
            .into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            "login.js is not built: run `npm ci && npm run build` in examples/session-site/web",
        )
            .into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let base = args.firekeeper.trim_end_matches('/').to_owned();
    // The snapshot reaches back over a whole cookie's life, so every check is answered
    // from memory.
    let verifier = Verifier::new(
        Config::new(base.clone(), args.project.clone())
            .admin_token(args.admin_token.clone())
            .lookback(SESSION_COOKIE_MAX + Duration::from_secs(300)),
    )
    .context("building the verifier")?;
    verifier.follow_revocations();
    let cookies = SessionCookies::new(verifier)
        .policy(CookiePolicy {
            secure: !args.insecure_cookies,
            ..CookiePolicy::default()
        })
        .redirect_to("/login")
        .after_logout("/login");
    let site = Site {
        cookies,
        client_config: json!({
            "apiKey": args.api_key,
            "projectId": args.project,
            "authUrl": base,
        })
        .to_string(),
        static_dir: args.static_dir,
    };
    let app = Router::new()
        .route("/", get(|| async { Redirect::to("/profile") }))
        .route("/login", get(login_page))
        .route("/profile", get(profile))
        .route("/admin", get(admin))
        .route("/sessionLogin", post(session_login))
        .route("/sessionLogout", post(session_logout))
        .route("/static/login.js", get(login_script))
        .with_state(site);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        "session-site listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
