//! Pages behind out-of-band links. `/__/auth/action` is Firekeeper's own handler page (a
//! person resets a password or confirms an email change in a browser, no JavaScript
//! needed); `/emulator/action` is the reference emulator's landing (§7), emulator mode only.
//! Both act on the code alone: its project and tenant, and the continue URL checked when it
//! was made, come from the stored code; a link's own `continueUrl` is never followed, since
//! anyone can edit it.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use firekeeper_core::email::escape_html;
use firekeeper_core::service::{kind_of_mode, ActionCode, ResetPasswordRequest};
use firekeeper_core::{Auth, Error, Mode};
use serde_json::{json, Map, Value};

use crate::error::json_response;
use crate::request::Incoming;
use crate::AppState;

fn param<'a>(q: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    q.get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// What a mode does, in words (the emulator's messages use them too).
fn describe(mode: &str) -> &'static str {
    match mode {
        "resetPassword" => "reset your password",
        "verifyEmail" => "verify your email",
        "verifyAndChangeEmail" => "change your email",
        "recoverEmail" => "recover your email",
        _ => "sign in",
    }
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"authEmulator": {"error": "Invalid continueUrl"}}),
        ),
    }
}

/// `continueUrl` with the link's other parameters appended (how a sign-in link reaches
/// the app that completes it).
fn continue_with(continue_url: &str, q: &Map<String, Value>) -> String {
    let rest: Vec<(&str, &str)> = q
        .iter()
        .filter(|(k, _)| k.as_str() != "continueUrl")
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .collect();
    let query = serde_urlencoded::to_string(&rest).unwrap_or_default();
    let sep = if continue_url.contains('?') { '&' } else { '?' };
    format!("{continue_url}{sep}{query}")
}

/// The pending code a page was given, if `mode` is what it does.
async fn pending(auth: &Auth, code: &str, mode: &str) -> Option<ActionCode> {
    let found = auth.action_code(code).await.ok().flatten()?;
    (kind_of_mode(mode) == Some(found.request_type.as_str())).then_some(found)
}

/// Runs a code's action for a page; `Ok(email)` of the account it acted on.
async fn act(
    auth: &Auth,
    inc: &Incoming,
    code: &str,
    found: ActionCode,
    new_password: Option<&str>,
) -> Result<String, Error> {
    let mode_reset = found.request_type == "PASSWORD_RESET";
    let ctx = Auth::action_ctx(found.scope, inc.ip(), inc.user_agent(), Some(inc.origin()));
    let answer = if mode_reset {
        let req = ResetPasswordRequest {
            oob_code: Some(code.to_owned()),
            new_password: new_password.map(str::to_owned),
            ..Default::default()
        };
        auth.reset_password(&ctx, req).await?
    } else {
        auth.apply_oob_code(&ctx, code).await?
    };
    Ok(answer
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

/// `GET /emulator/action`.
pub async fn emulator(State(state): State<AppState>, req: Request<Body>) -> Response {
    if state.auth.config().mode != Mode::Emulator {
        return crate::error::ApiError(Error::NotFound).into_response();
    }
    let inc = match Incoming::read(req, state.max_body_bytes, &state.trusted_proxies).await {
        Ok(i) => i,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let q = &inc.query;
    let fail = |error: String, instructions: Option<String>| {
        let mut body = json!({ "authEmulator": { "error": error } });
        if let Some(i) = instructions {
            body["authEmulator"]["instructions"] = i.into();
        }
        json_response(StatusCode::BAD_REQUEST, &body)
    };
    for needed in ["apiKey", "oobCode"] {
        if param(q, needed).is_none() {
            return fail(
                format!("missing {needed} query parameter"),
                Some(
                    "Please modify the URL to specify an apiKey and an oobCode, as in the \
                     links the emulator lists."
                        .into(),
                ),
            );
        }
    }
    let code = param(q, "oobCode").unwrap_or_default();
    let mode = param(q, "mode").unwrap_or_default();
    if kind_of_mode(mode).is_none() {
        return fail("Invalid mode".into(), None);
    }
    let stale = || {
        fail(
            format!(
                "Your request to {} has expired or the link has already been used.",
                describe(mode)
            ),
            Some("Try again, with a new link.".into()),
        )
    };
    let Some(found) = pending(&state.auth, code, mode).await else {
        return stale();
    };
    let continue_url = found.continue_url.clone();
    let continue_url = continue_url.as_deref();
    if mode == "signIn" {
        return match continue_url {
            Some(url) => see_other(&continue_with(url, q)),
            None => fail(
                "Missing continueUrl query parameter".into(),
                Some(
                    "To sign in, append &continueUrl=YOUR_APP_URL to the link and send the \
                     user there."
                        .into(),
                ),
            ),
        };
    }
    let new_password = param(q, "newPassword").filter(|p| *p != "NEW_PASSWORD_HERE");
    if mode == "resetPassword" && new_password.is_none() {
        return fail(
            "missing newPassword query parameter".into(),
            Some(
                "To reset the password for this account, append \
                 &newPassword=NEW_PASSWORD_HERE to the link, with the new password."
                    .into(),
            ),
        );
    }
    match act(&state.auth, &inc, code, found, new_password).await {
        Ok(email) => match continue_url {
            Some(url) => see_other(url),
            None => json_response(
                StatusCode::OK,
                &json!({"authEmulator": {
                    "success": format!("The request to {} has been applied.", describe(mode)),
                    "email": email,
                }}),
            ),
        },
        Err(Error::Code {
            code: "WEAK_PASSWORD",
            detail,
        }) => fail(
            format!("WEAK_PASSWORD : {}", detail.unwrap_or_default()),
            None,
        ),
        Err(_) => stale(),
    }
}

/// A small self-contained page: no scripts, no outside resources, and no referrer, since
/// the code is in the URL.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:28rem;\
         margin:4rem auto;padding:0 1rem;line-height:1.5}}input,button{{font-size:1rem;\
         padding:.5rem;margin:.25rem 0;width:100%;box-sizing:border-box}}</style></head>\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape_html(title),
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    res
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape_html(value)
    )
}

fn continue_link(continue_url: Option<&str>) -> String {
    continue_url
        .map(|u| format!("<p><a href=\"{}\">Continue</a></p>", escape_html(u)))
        .unwrap_or_default()
}

/// `GET /__/auth/action`: the form for the link's action. A GET changes nothing (mail
/// scanners open links); the form posts back.
pub async fn show(State(state): State<AppState>, req: Request<Body>) -> Response {
    let inc = match Incoming::read(req, state.max_body_bytes, &state.trusted_proxies).await {
        Ok(i) => i,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let q = &inc.query;
    let (Some(code), Some(mode)) = (param(q, "oobCode"), param(q, "mode")) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Invalid link",
            "<p>This link is incomplete. Open the link from your email again.</p>",
        );
    };
    let Some(found) = pending(&state.auth, code, mode).await else {
        return expired(mode);
    };
    let continue_url = found.continue_url.as_deref();
    if mode == "signIn" {
        // The app that asked for the link completes the sign-in (its domain was
        // authorised when the link was made).
        return match continue_url {
            Some(url) => see_other(&continue_with(url, q)),
            None => page(
                StatusCode::OK,
                "Sign in",
                "<p>Open this link on the device and in the app where you asked to sign in.</p>",
            ),
        };
    }
    // Posts back to this very URL, wherever a proxy mounted the page.
    let mut form = format!(
        "<form method=\"post\" action=\"\">{}{}",
        hidden("mode", mode),
        hidden("oobCode", code),
    );
    let title = match mode {
        "resetPassword" => {
            form.push_str(
                "<label for=\"p\">New password</label>\
                 <input id=\"p\" name=\"newPassword\" type=\"password\" minlength=\"6\" \
                 autocomplete=\"new-password\" required>\
                 <button type=\"submit\">Save</button></form>",
            );
            "Reset your password"
        }
        "verifyEmail" => {
            form.push_str("<button type=\"submit\">Verify my email</button></form>");
            "Verify your email"
        }
        "verifyAndChangeEmail" => {
            form.push_str("<button type=\"submit\">Use my new email</button></form>");
            "Confirm your new email"
        }
        _ => {
            form.push_str("<button type=\"submit\">Restore my email</button></form>");
            "Restore your email"
        }
    };
    page(StatusCode::OK, title, &form)
}

fn expired(mode: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Try again",
        &format!(
            "<p>Your request to {} has expired or the link has already been used.</p>",
            describe(mode)
        ),
    )
}

/// `POST /__/auth/action`: carries the action out.
pub async fn submit(State(state): State<AppState>, req: Request<Body>) -> Response {
    let inc = match Incoming::read(req, state.max_body_bytes, &state.trusted_proxies).await {
        Ok(i) => i,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let form = match inc.json_body(true) {
        Ok(f) => f,
        Err(_) => return expired(""),
    };
    let (Some(code), Some(mode)) = (param(&form, "oobCode"), param(&form, "mode")) else {
        return expired("");
    };
    let new_password = param(&form, "newPassword");
    if mode == "resetPassword" && new_password.is_none() {
        return page(
            StatusCode::BAD_REQUEST,
            "Reset your password",
            "<p>Enter a new password.</p>",
        );
    }
    let Some(found) = pending(&state.auth, code, mode).await else {
        return expired(mode);
    };
    let continue_url = found.continue_url.clone();
    let continue_url = continue_url.as_deref();
    match act(&state.auth, &inc, code, found, new_password).await {
        Ok(_) => {
            let done = match mode {
                "resetPassword" => "You can now sign in with your new password.",
                "verifyEmail" => "Your email has been verified.",
                "verifyAndChangeEmail" => "Your sign-in email has been changed.",
                _ => "Your sign-in email has been restored. Consider changing your password.",
            };
            page(
                StatusCode::OK,
                "Done",
                &format!("<p>{done}</p>{}", continue_link(continue_url)),
            )
        }
        Err(Error::Code {
            code: "WEAK_PASSWORD",
            ..
        }) => page(
            StatusCode::BAD_REQUEST,
            "Reset your password",
            "<p>The password must have at least 6 characters. Open the link again to \
             choose another.</p>",
        ),
        Err(Error::Code {
            code: "USER_DISABLED",
            ..
        }) => page(
            StatusCode::BAD_REQUEST,
            "Account disabled",
            "<p>This account has been disabled.</p>",
        ),
        Err(Error::Code {
            code: "EMAIL_EXISTS",
            ..
        }) => page(
            StatusCode::BAD_REQUEST,
            "Email in use",
            "<p>Another account uses this email now.</p>",
        ),
        Err(Error::Code { .. }) => expired(mode),
        Err(e) => {
            tracing::warn!(error = %e, "action page failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "<p>Please try again later.</p>",
            )
        }
    }
}
