//! Google's error envelope (§6.1): `{"error":{"code","message","errors":[...],"status"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use firekeeper_core::Error;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

fn first_error(e: &Error, message: &str) -> Value {
    match e {
        Error::Blocking { status, .. } if *status >= 500 => {
            json!({"message": message, "domain": "global", "reason": "backendError"})
        }
        Error::Code { .. }
        | Error::InvalidArgument(_)
        | Error::PayloadTooLarge(_)
        | Error::Blocking { .. } => {
            json!({"message": message, "reason": "invalid", "domain": "global"})
        }
        Error::ParseError(_) => {
            json!({"message": message, "reason": "parseError", "domain": "global"})
        }
        Error::InvalidApiKey => {
            json!({"message": message, "domain": "global", "reason": "badRequest"})
        }
        Error::MissingApiKey | Error::PermissionDenied => {
            json!({"message": message, "domain": "global", "reason": "forbidden"})
        }
        Error::MissingCredential => json!({
            "message": "Login Required.", "domain": "global", "reason": "required",
            "location": "Authorization", "locationType": "header",
        }),
        Error::InvalidCredential => json!({
            "message": "Invalid Credentials", "domain": "global", "reason": "authError",
            "location": "Authorization", "locationType": "header",
        }),
        Error::NotFound => json!({"message": message, "reason": "notFound"}),
        Error::Aborted => json!({"message": message, "domain": "global", "reason": "aborted"}),
        Error::NotImplemented(_) => json!({"message": message, "reason": "unimplemented"}),
        Error::Internal(_) => {
            json!({"message": message, "domain": "global", "reason": "backendError"})
        }
    }
}

pub fn envelope(e: &Error) -> Value {
    let message = e.public_message();
    let mut body = json!({
        "code": e.http_status(),
        "message": message,
        "errors": [first_error(e, &message)],
    });
    if let Some(status) = e.status() {
        body["status"] = status.into();
    }
    if matches!(e, Error::InvalidApiKey) {
        body["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "identitytoolkit.googleapis.com"},
        }]);
    }
    json!({ "error": body })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Error::Internal(detail) = &self.0 {
            tracing::error!(%detail, "internal error");
        }
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &envelope(&self.0))
    }
}

/// JSON with Google's content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}
