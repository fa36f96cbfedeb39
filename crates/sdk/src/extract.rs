//! An axum extractor for handlers behind `Authorization: Bearer <ID token>`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{Claims, Verifier, VerifyError};

/// The verified, unrevoked claims of the caller's ID token. When the token names the
/// address its session is bound to (`signInIpAddress`, set by the project's IP policy), the
/// request must come from that address. Needs `Verifier: FromRef<State>`; serve with
/// `into_make_service_with_connect_info::<SocketAddr>()` for the address check.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Claims);

fn reject(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": why}))).into_response()
}

fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let nearest = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .next_back();
        if nearest.is_some() {
            return nearest;
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

impl<S> FromRequestParts<S> for SignedIn
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned())
            .ok_or_else(|| reject(StatusCode::UNAUTHORIZED, "missing bearer token"))?;
        let claims = match verifier.verify_id_token(&token, true).await {
            Ok(c) => c,
            Err(VerifyError::Unavailable(_)) => {
                return Err(reject(StatusCode::SERVICE_UNAVAILABLE, "cannot verify now"))
            }
            Err(e) => return Err(reject(StatusCode::UNAUTHORIZED, &e.to_string())),
        };
        if let Some(bound) = claims.str("signInIpAddress") {
            let from = client_ip(parts, verifier.config().trust_forwarded_for);
            if from.map(|ip| ip.to_string()).as_deref() != Some(bound) {
                return Err(reject(
                    StatusCode::UNAUTHORIZED,
                    "this session is bound to another address",
                ));
            }
        }
        Ok(SignedIn(claims))
    }
}
