//! The HTTP face of Firekeeper: axum routers per API family. Handlers authenticate, parse
//! and render; the decisions are `firekeeper_core`'s.

mod cors;
mod error;
mod hook_client;
mod mailer;
mod request;
mod routes;
mod sms;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use firekeeper_core::Auth;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use hook_client::HttpHookClient;
pub use mailer::{SmtpConfig, SmtpMailer, SmtpSecurity};
pub use sms::{GatewaySmsSender, SmsConfig, SmsGatewayConfig};

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<Auth>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// The URL clients reach this server at (for discovery documents). Unset: derived
    /// from each request's `Host`, which is only safe when no shared cache sits in front.
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Empty: the peer address is the
    /// client's.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

pub fn router(state: AppState) -> Router {
    routes::router(state).layer(axum::middleware::from_fn(cors::cors))
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
