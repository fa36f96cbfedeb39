//! The reference emulator's own routes (§7), served in `--emulator` mode only, plus `GET /`.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use firekeeper_core::model::Scope;
use firekeeper_core::{Error, Mode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::run;
use crate::error::{json_response, ApiError};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}", delete(wipe_project))
        .route("/projects/{project}/accounts", delete(delete_accounts))
        .route(
            "/projects/{project}/tenants/{tenant}/accounts",
            delete(delete_tenant_accounts),
        )
        .route(
            "/projects/{project}/config",
            get(get_config).patch(patch_config),
        )
        .route("/projects/{project}/oobCodes", get(oob_codes))
        .route(
            "/projects/{project}/tenants/{tenant}/oobCodes",
            get(tenant_oob_codes),
        )
        .route(
            "/projects/{project}/verificationCodes",
            get(verification_codes),
        )
        .route(
            "/projects/{project}/tenants/{tenant}/verificationCodes",
            get(tenant_verification_codes),
        )
}

/// Path parameters whose rejection (bad percent-encoding) renders Google's envelope.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|_| ApiError(Error::NotFound))
    }
}

fn reply(result: Result<Value, Error>) -> Response {
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn status(State(state): State<AppState>) -> Response {
    let body = match state.auth.config().mode {
        Mode::Emulator => json!({"authEmulator": {
            "ready": true,
            "docs": "https://firebase.google.com/docs/emulator-suite",
            "apiSpec": "/emulator/openapi.json",
        }}),
        Mode::Production => json!({"firekeeper": {"ready": true, "mode": "production"}}),
    };
    json_response(StatusCode::OK, &body)
}

async fn delete_accounts(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
) -> Response {
    reply(
        state
            .auth
            .emulator_delete_accounts(&Scope::project(project))
            .await,
    )
}

async fn delete_tenant_accounts(
    State(state): State<AppState>,
    ApiPath((project, tenant)): ApiPath<(String, String)>,
) -> Response {
    let scope = Scope {
        project,
        tenant: Some(tenant),
    };
    reply(state.auth.emulator_delete_accounts(&scope).await)
}

async fn wipe_project(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
) -> Response {
    reply(state.auth.emulator_wipe_project(&project).await)
}

async fn get_config(State(state): State<AppState>, ApiPath(project): ApiPath<String>) -> Response {
    reply(state.auth.emulator_config(&project).await)
}

async fn patch_config(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    req: Request<Body>,
) -> Response {
    let s = state.clone();
    run(&state, req, |inc| async move {
        let body = Value::Object(inc.json_body(false)?);
        s.auth.patch_emulator_config(&project, &body).await
    })
    .await
}

async fn oob_codes(State(state): State<AppState>, ApiPath(project): ApiPath<String>) -> Response {
    reply(
        state
            .auth
            .emulator_oob_codes(&Scope::project(project))
            .await,
    )
}

async fn tenant_oob_codes(
    State(state): State<AppState>,
    ApiPath((project, tenant)): ApiPath<(String, String)>,
) -> Response {
    let scope = Scope {
        project,
        tenant: Some(tenant),
    };
    reply(state.auth.emulator_oob_codes(&scope).await)
}

async fn verification_codes(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
) -> Response {
    reply(
        state
            .auth
            .emulator_verification_codes(&Scope::project(project))
            .await,
    )
}

async fn tenant_verification_codes(
    State(state): State<AppState>,
    ApiPath((project, tenant)): ApiPath<(String, String)>,
) -> Response {
    let scope = Scope {
        project,
        tenant: Some(tenant),
    };
    reply(state.auth.emulator_verification_codes(&scope).await)
}
