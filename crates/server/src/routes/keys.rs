//! Public keys for ID tokens (the x509 PEM map and JWKS at Google's paths, and OpenID
//! discovery for the issuer) and for session cookies (the x509 PEM map), §4.7. `max-age`
//! never outlives the next key activation.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use firekeeper_core::keyring::{KeyRing, KeySet};
use serde_json::{json, Value};

use super::emulator::ApiPath;
use crate::error::{json_response, ApiError};
use crate::AppState;

const X509_PATH: &str = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com";
const JWKS_PATH: &str = "/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com";
/// Where the Admin SDKs fetch session-cookie keys (`COOKIE_CERT_URI`), also under the
/// emulator-style host prefix.
const COOKIE_X509_PATH: &str = "/identitytoolkit/v3/relyingparty/publicKeys";
/// Session-cookie keys as JWKS. Production asks for an API key here; public keys need no
/// secret, so any verifier may fetch them.
const COOKIE_JWKS_PATH: &str = "/identitytoolkit.googleapis.com/v1/sessionCookiePublicKeys";
const COOKIE_X509_HOST_PATH: &str =
    "/www.googleapis.com/identitytoolkit/v3/relyingparty/publicKeys";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(X509_PATH, get(x509))
        .route(JWKS_PATH, get(jwks))
        .route(COOKIE_X509_PATH, get(cookie_x509))
        .route(COOKIE_X509_HOST_PATH, get(cookie_x509))
        .route(COOKIE_JWKS_PATH, get(cookie_jwks))
        .route(
            "/securetoken.google.com/{project}/.well-known/openid-configuration",
            get(discovery),
        )
        .route(
            "/{project}/.well-known/openid-configuration",
            get(discovery),
        )
}

fn cached(state: &AppState, body: &Value, keys: &KeySet) -> Response {
    let max_age = keys.max_age_secs(state.auth.clock().now_ms());
    let mut res = json_response(StatusCode::OK, body);
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

async fn x509(State(state): State<AppState>) -> Response {
    let keys = state.auth.id_keys().current();
    cached(&state, &keys.x509_map(), &keys)
}

async fn cookie_x509(State(state): State<AppState>) -> Response {
    let keys = state.auth.cookie_keys().current();
    cached(&state, &keys.x509_map(), &keys)
}

async fn jwks(State(state): State<AppState>) -> Response {
    jwks_of(&state, state.auth.id_keys())
}

async fn cookie_jwks(State(state): State<AppState>) -> Response {
    jwks_of(&state, state.auth.cookie_keys())
}

fn jwks_of(state: &AppState, ring: &KeyRing) -> Response {
    let keys = ring.current();
    match keys.jwks() {
        Ok(body) => cached(state, &body, &keys),
        Err(e) => ApiError(e).into_response(),
    }
}

async fn discovery(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    headers: HeaderMap,
) -> Response {
    let base = state
        .public_url
        .clone()
        // Discovery believes a forwarded scheme from anyone, as before: set `public_url`
        // behind a proxy or cache.
        .unwrap_or_else(|| crate::request::base_url(&headers, true));
    let body = json!({
        "issuer": state.auth.issuer(&project),
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    json_response(StatusCode::OK, &body)
}
