//! Firekeeper's own API, beside the Identity Toolkit: sessions, the audit log, the
//! revocation feed and session policy (`/firekeeper/v1/...`). Admin routes take the admin
//! Bearer credential; self-service routes take an API key and the caller's `idToken`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use firekeeper_core::access::Accepts;
use firekeeper_core::Error;
use serde_json::Value;

use super::{ctx, run};
use crate::request::Incoming;
use crate::AppState;

const PREFIX: &str = "/firekeeper/v1/";

/// The OpenAPI document of these routes, served at `/firekeeper/v1/openapi.json`.
const OPENAPI: &str = include_str!("firekeeper-openapi.json");

fn query_i64(inc: &Incoming, name: &str) -> Result<Option<i64>, Error> {
    match inc.query.get(name).and_then(Value::as_str) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            Error::InvalidArgument(format!(
                "Invalid JSON payload received. /{name} must be integer"
            ))
        }),
    }
}

fn body_str<'a>(body: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

async fn dispatch(state: &AppState, inc: Incoming) -> Result<Value, Error> {
    let rest = inc.path.strip_prefix(PREFIX).unwrap_or_default().to_owned();
    let segs: Vec<&str> = rest.split('/').collect();
    let auth = &state.auth;
    let method = inc.method.clone();

    // Self-service: `sessions:list`, `sessions:revoke`, `sessions:revokeOthers`.
    if let [op] = segs.as_slice() {
        if !op.starts_with("sessions:") || method != Method::POST {
            return Err(Error::NotFound);
        }
        inc.require_some_credential(Accepts::KeyOrAdmin)?;
        let access = auth
            .authorize(inc.credentials(), None, Accepts::KeyOrAdmin)
            .await?;
        let body = inc.json_body(false)?;
        let tenant = auth.resolve_tenant(&access.project, None, &body).await?;
        let c = ctx(access, tenant, &inc);
        let id_token = body_str(&body, "idToken");
        return match *op {
            "sessions:list" => auth.my_sessions(&c, id_token).await,
            "sessions:revoke" => {
                auth.revoke_my_session(&c, id_token, body_str(&body, "sessionId"))
                    .await
            }
            "sessions:revokeOthers" => auth.revoke_my_other_sessions(&c, id_token).await,
            _ => Err(Error::NotFound),
        };
    }

    // Admin: everything under `projects/{p}/`.
    let ["projects", project, tail @ ..] = segs.as_slice() else {
        return Err(Error::NotFound);
    };
    if project.is_empty() || tail.is_empty() {
        return Err(Error::NotFound);
    }
    inc.require_some_credential(Accepts::AdminOnly)?;
    let access = auth
        .authorize(inc.credentials(), Some(project), Accepts::AdminOnly)
        .await?;
    let body = inc.json_body(false)?;
    // Tenant users are addressed with `?tenantId=`.
    let tenant = auth
        .resolve_tenant(&access.project, None, &inc.query)
        .await?;
    let c = ctx(access, tenant, &inc);
    let project = c.access.project.clone();
    match (method.as_str(), tail) {
        ("GET", ["config"]) => auth.firekeeper_config(&project).await,
        ("PATCH", ["config"]) => auth.patch_firekeeper_config(&project, &body).await,
        ("GET", ["accounts", uid, "sessions"]) => auth.list_sessions(&c, uid).await,
        ("POST", ["accounts", uid_op]) => match uid_op.strip_suffix(":revokeSessions") {
            Some(uid) => {
                auth.revoke_all_sessions(&c, uid, body_str(&body, "exceptSessionId"))
                    .await
            }
            None => Err(Error::NotFound),
        },
        ("POST", ["sessions", sid_op]) => match sid_op.strip_suffix(":revoke") {
            Some(sid) => auth.revoke_session(&c, sid).await,
            None => Err(Error::NotFound),
        },
        ("GET", ["accounts", uid, "events"]) => {
            let after = query_i64(&inc, "after")?.unwrap_or(0);
            let limit = query_i64(&inc, "limit")?.unwrap_or(100);
            auth.account_events(&c, uid, after, limit.clamp(1, 1000) as u32)
                .await
        }
        ("GET", ["revocations"]) => {
            let after = query_i64(&inc, "after")?.unwrap_or(0);
            let limit = query_i64(&inc, "limit")?.unwrap_or(500);
            let wait = query_i64(&inc, "waitSecs")?.unwrap_or(0);
            let since = query_i64(&inc, "sinceMs")?.unwrap_or(0);
            let lookback = query_i64(&inc, "lookbackSecs")?;
            auth.revocation_feed(
                &project,
                after,
                since,
                lookback,
                limit.clamp(1, 1000) as u32,
                wait.max(0) as u64,
            )
            .await
        }
        _ => Err(Error::NotFound),
    }
}

pub async fn handle(State(state): State<AppState>, req: Request<Body>) -> Response {
    if req.uri().path() == "/firekeeper/v1/openapi.json" {
        return match serde_json::from_str::<Value>(OPENAPI) {
            Ok(doc) => crate::error::json_response(StatusCode::OK, &doc),
            Err(e) => crate::error::ApiError(Error::internal(e)).into_response(),
        };
    }
    let s = state.clone();
    run(&state, req, |inc| async move { dispatch(&s, inc).await }).await
}
