//! An axum extractor for handlers behind `Authorization: Bearer <ID token>`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{Claims, Verifier, VerifyError};

/// The verified, unrevoked claims of the caller's ID token. When the project binds
/// sessions to their sign-in address (`ipBinding: sameAddress` in the token, with
/// `signInIpAddress`), the request must come from that address. Needs `Verifier: FromRef<State>`; serve with
/// `into_make_service_with_connect_info::<SocketAddr>()` for the address check.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Claims);

pub(crate) fn reject(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": why}))).into_response()
}

/// The caller's address as the server decides it: the peer, or behind trusted proxies the
/// first untrusted `X-Forwarded-For` hop from the nearest one. An entry that does not parse
/// ends the walk (it may hide a spoofed one further left). Canonical form throughout.
fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()?
        .0
        .ip()
        .to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
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
        if !address_allowed(parts, &verifier, &claims) {
            return Err(reject(
                StatusCode::UNAUTHORIZED,
                "this session is bound to another address",
            ));
        }
        Ok(SignedIn(claims))
    }
}

/// False when the claims bind the session to its sign-in address (`ipBinding:
/// sameAddress` with `signInIpAddress`) and the request comes from elsewhere.
pub(crate) fn address_allowed(parts: &Parts, verifier: &Verifier, claims: &Claims) -> bool {
    let same_address = claims.str("ipBinding") == Some("sameAddress");
    let Some(bound) = claims.str("signInIpAddress").filter(|_| same_address) else {
        return true;
    };
    let bound: Option<IpAddr> = bound.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    let from = client_ip(parts, &verifier.config().trusted_proxies);
    from.is_some() && from == bound
}
