//! The reference emulator's own routes (§7), served in `--emulator` mode only, plus `GET /`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use firekeeper_core::model::Scope;
use firekeeper_core::{Error, Mode};
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
            get(oob_codes),
        )
        .route(
            "/projects/{project}/verificationCodes",
            get(verification_codes),
        )
        .route(
            "/projects/{project}/tenants/{tenant}/verificationCodes",
            get(verification_codes),
        )
}

fn emulator_only(state: &AppState) -> Result<(), Error> {
    match state.auth.config().mode {
        Mode::Emulator => Ok(()),
        Mode::Production => Err(Error::NotFound),
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

async fn delete_accounts(State(state): State<AppState>, Path(project): Path<String>) -> Response {
    reply(
        async {
            emulator_only(&state)?;
            state
                .auth
                .store()
                .delete_all_accounts(&Scope::project(project))
                .await?;
            Ok(json!({}))
        }
        .await,
    )
}

async fn delete_tenant_accounts(
    State(state): State<AppState>,
    Path((project, tenant)): Path<(String, String)>,
) -> Response {
    reply(
        async {
            emulator_only(&state)?;
            let scope = Scope {
                project,
                tenant: Some(tenant),
            };
            state.auth.store().delete_all_accounts(&scope).await?;
            Ok(json!({}))
        }
        .await,
    )
}

/// Firekeeper's addition: wipes everything a project has (accounts, sessions, tenants,
/// config, codes), so a test suite can start clean without restarting the server.
async fn wipe_project(State(state): State<AppState>, Path(project): Path<String>) -> Response {
    reply(
        async {
            emulator_only(&state)?;
            state.auth.store().wipe_project(&project).await?;
            Ok(json!({}))
        }
        .await,
    )
}

async fn get_config(State(state): State<AppState>, Path(project): Path<String>) -> Response {
    reply(
        async {
            emulator_only(&state)?;
            state.auth.emulator_config(&project).await
        }
        .await,
    )
}

async fn patch_config(
    State(state): State<AppState>,
    Path(project): Path<String>,
    req: Request<Body>,
) -> Response {
    let s = state.clone();
    run(&state, req, |inc| async move {
        emulator_only(&s)?;
        let body = serde_json::Value::Object(inc.json_body(false)?);
        s.auth.patch_emulator_config(&project, &body).await
    })
    .await
}

/// Out-of-band and SMS codes are not issued yet (their issue is open): the lists are empty.
async fn oob_codes(State(state): State<AppState>) -> Response {
    reply(emulator_only(&state).map(|()| json!({"oobCodes": []})))
}

async fn verification_codes(State(state): State<AppState>) -> Response {
    reply(emulator_only(&state).map(|()| json!({"verificationCodes": []})))
}
