//! Route table. Identity Toolkit paths are dispatched by [`identity_toolkit`] itself:
//! segments such as `projects/{p}:createSessionCookie` mix a parameter and a literal.

mod action;
mod emulator;
mod firekeeper;
mod identity_toolkit;
mod keys;
mod secure_token;

use axum::body::Body;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use firekeeper_core::service::Ctx;
use firekeeper_core::Error;

use crate::error::ApiError;
use crate::request::Incoming;
use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(emulator::status))
        .route(
            "/identitytoolkit.googleapis.com/{*rest}",
            any(identity_toolkit::handle),
        )
        .route(
            "/www.googleapis.com/identitytoolkit/v3/relyingparty/{name}",
            any(identity_toolkit::legacy),
        )
        .route(
            "/securetoken.googleapis.com/v1/token",
            any(secure_token::token),
        )
        .route("/firekeeper/v1/{*rest}", any(firekeeper::handle))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(keys::routes())
        .nest("/emulator/v1", emulator::routes())
        .route("/emulator/action", get(action::emulator))
        .route("/__/auth/action", get(action::show).post(action::submit))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(state)
}

/// Counters in Prometheus' text format (no secrets: counts and latencies only).
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.auth.metrics().render(),
    )
        .into_response()
}

/// The process is up.
async fn healthz() -> Response {
    crate::error::json_response(
        axum::http::StatusCode::OK,
        &serde_json::json!({"status": "ok"}),
    )
}

/// The database answers and its schema is this build's: 200, else 503 with the reason.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let (status, body) = match state.auth.store_ready().await {
        Ok(()) => (
            axum::http::StatusCode::OK,
            serde_json::json!({"status": "ready"}),
        ),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "reason": e.to_string()}),
        ),
    };
    crate::error::json_response(status, &body)
}

async fn not_found() -> Response {
    ApiError(Error::NotFound).into_response()
}

/// Reads the request, runs `op` on it, and renders the answer or the error envelope.
pub(crate) async fn run<F, Fut>(state: &AppState, req: Request<Body>, op: F) -> Response
where
    F: FnOnce(Incoming) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, Error>>,
{
    let incoming = match Incoming::read(req, state.max_body_bytes, &state.trusted_proxies).await {
        Ok(i) => i,
        Err(e) => return ApiError(e).into_response(),
    };
    match op(incoming).await {
        Ok(body) => crate::error::json_response(axum::http::StatusCode::OK, &body),
        Err(e) => ApiError(e).into_response(),
    }
}

pub(crate) fn ctx(
    access: firekeeper_core::access::Access,
    tenant: Option<String>,
    inc: &Incoming,
) -> Ctx {
    Ctx {
        access,
        tenant,
        ip: inc.ip(),
        user_agent: inc.user_agent(),
        locale: inc.header("x-firebase-locale").map(str::to_owned),
        origin: Some(inc.origin()),
    }
}
