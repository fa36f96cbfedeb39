//! `POST /securetoken.googleapis.com/v1/token` (§3.3): JSON or form body, API key only.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::response::Response;
use firekeeper_core::access::Accepts;
use firekeeper_core::service::RefreshRequest;
use firekeeper_core::Error;

use super::{ctx, run};
use crate::request::typed;
use crate::AppState;

pub async fn token(State(state): State<AppState>, req: Request<Body>) -> Response {
    let s = state.clone();
    run(&state, req, |inc| async move {
        if inc.method != Method::POST {
            return Err(Error::NotFound);
        }
        inc.require_some_credential(Accepts::KeyOrAdmin)?;
        let body = inc.json_body(true)?;
        let access = s
            .auth
            .authorize(inc.credentials(), None, Accepts::KeyOrAdmin)
            .await?;
        let tenant = s.auth.resolve_tenant(&access.project, None, &body).await?;
        let request: RefreshRequest = typed(body)?;
        s.auth.refresh(&ctx(access, tenant, &inc), request).await
    })
    .await
}
