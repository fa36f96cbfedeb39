//! The REST protocol (spec §4): `/<path>.json` with GET, PUT, POST, PATCH and DELETE, the
//! namespace from `?ns=`, credentials from `auth=`, `access_token=` or a Bearer header, and
//! `{"error": "<text>"}` bodies. Served on its own port by `firekeeper serve`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use axum::Router;
use firekeeper_core::access::{Accepts, Access, Credentials};
use firekeeper_core::service::{Auth, Ctx};
use serde_json::{json, Map, Value};

use crate::db::{plain, Caller, Database, Written};
use crate::error::{DbError, DbResult};
use crate::query::ReadQuery;
use crate::{etag, path};

/// What the REST routes need.
pub struct Rtdb {
    pub db: Database,
    pub auth: Arc<Auth>,
    /// The namespace of a request without `?ns=`.
    pub default_namespace: String,
}

pub fn router(state: Arc<Rtdb>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// The project a namespace belongs to: `<project>-default-rtdb` or the project itself.
pub fn project_of(ns: &str) -> &str {
    ns.strip_suffix("-default-rtdb").unwrap_or(ns)
}

struct Params(Vec<(String, String)>);

impl Params {
    /// Percent escapes are decoded; `+` stays a plus (the Admin SDKs send it unescaped).
    fn parse(query: Option<&str>) -> Self {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Self(
            query
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn respond(status: StatusCode, body: String, pretty_etag: Option<String>) -> Response<Body> {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(tag) = pretty_etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        res.headers_mut().insert(header::ETAG, tag);
    }
    res
}

fn error(e: DbError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, json!({ "error": e.message }).to_string(), None)
}

fn render(v: &Value, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into())
    } else {
        v.to_string()
    }
}

/// The largest REST write (spec §7).
pub const MAX_WRITE_BYTES: usize = 16 * 1024 * 1024;

async fn handle(State(rt): State<Arc<Rtdb>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_WRITE_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error(DbError {
                status: 413,
                message: format!(
                    "Request body too large: REST writes are limited to {MAX_WRITE_BYTES} bytes"
                ),
            })
        }
    };
    match serve(&rt, parts.method, &parts.uri, &parts.headers, &body).await {
        Ok(res) => res,
        Err(e) => error(e),
    }
}

async fn serve(
    rt: &Rtdb,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> DbResult<Response<Body>> {
    let params = Params::parse(uri.query());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let method = match (&method, header("x-http-method-override")) {
        (&Method::POST, Some(m)) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| DbError::bad_request("invalid X-HTTP-Method-Override"))?,
        _ => method,
    };
    let raw_path = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .map_err(|_| DbError::bad_request("Invalid path: not UTF-8"))?;
    let Some(raw_path) = raw_path.strip_suffix(".json") else {
        return Err(DbError {
            status: 404,
            message: "Not found: database paths end in .json".into(),
        });
    };
    let ns = params
        .get("ns")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| rt.default_namespace.clone());
    let caller = caller(rt, &ns, headers, &params).await?;
    let pretty = params.get("print").as_deref() == Some("pretty");
    let silent = params.get("print").as_deref() == Some("silent");

    if raw_path == "/.settings/rules" {
        if caller != Caller::Admin {
            return Err(DbError::permission_denied());
        }
        return match method {
            Method::GET => Ok(respond(StatusCode::OK, rt.db.rules(&ns).await?, None)),
            Method::PUT => {
                let source = std::str::from_utf8(body)
                    .map_err(|_| DbError::bad_request("the rules are not UTF-8"))?;
                rt.db.set_rules(&ns, source).await?;
                Ok(respond(
                    StatusCode::OK,
                    json!({"status": "ok"}).to_string(),
                    None,
                ))
            }
            _ => Err(DbError::bad_request(
                "rules are read with GET and written with PUT",
            )),
        };
    }
    if raw_path.starts_with("/.info") && method != Method::GET {
        return Err(DbError::bad_request("/.info is not writable"));
    }
    let at = path::parse(raw_path)?;
    let wants_etag = header("x-firebase-etag") == Some("true");
    let if_match = header("if-match");

    match method {
        Method::GET => {
            if if_match.is_some() {
                return Err(DbError::bad_request("if-match is not allowed on GET"));
            }
            let shallow = params.get("shallow").as_deref() == Some("true");
            let query = ReadQuery::from_params(|n| params.get(n))?;
            if shallow && query.is_some() {
                return Err(DbError::bad_request(
                    "shallow=true cannot be combined with other query parameters",
                ));
            }
            let (stored, tag) = rt.db.get(&ns, &at, query.as_ref(), &caller).await?;
            if header("if-none-match") == Some(tag.as_str()) {
                let mut res = respond(StatusCode::NOT_MODIFIED, String::new(), Some(tag));
                *res.body_mut() = Body::empty();
                return Ok(res);
            }
            let out = if shallow {
                match plain(&stored) {
                    Value::Object(m) => {
                        Value::Object(m.into_iter().map(|(k, v)| (k, shallow_of(v))).collect())
                    }
                    Value::Array(items) => Value::Object(
                        items
                            .into_iter()
                            .enumerate()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(i, v)| (i.to_string(), shallow_of(v)))
                            .collect(),
                    ),
                    other => other,
                }
            } else if params.get("format").as_deref() == Some("export") {
                stored
            } else {
                plain(&stored)
            };
            let tag = (wants_etag || header("if-none-match").is_some()).then_some(tag);
            Ok(respond(StatusCode::OK, render(&out, pretty), tag))
        }
        Method::PUT | Method::DELETE => {
            let value = if method == Method::DELETE {
                Value::Null
            } else {
                parse_body(body)?
            };
            match rt.db.set(&ns, &at, value, &caller, if_match).await? {
                Written::Mismatch(m) => Ok(respond(
                    StatusCode::PRECONDITION_FAILED,
                    render(&plain(&m.current), pretty),
                    Some(m.etag),
                )),
                Written::Done(stored) => {
                    let tag = wants_etag.then(|| etag::of(Some(&stored)));
                    if silent {
                        return Ok(no_content());
                    }
                    Ok(respond(
                        StatusCode::OK,
                        render(&plain(&stored), pretty),
                        tag,
                    ))
                }
            }
        }
        Method::POST => {
            let value = parse_body(body)?;
            let name = rt.db.push(&ns, &at, value, &caller).await?;
            if silent {
                return Ok(no_content());
            }
            Ok(respond(
                StatusCode::OK,
                render(&json!({ "name": name }), pretty),
                None,
            ))
        }
        Method::PATCH => {
            if if_match.is_some() {
                return Err(DbError::bad_request("if-match is not allowed on PATCH"));
            }
            let Value::Object(changes) = parse_body(body)? else {
                return Err(DbError::bad_request(
                    "Invalid data; a PATCH body must be an object",
                ));
            };
            let echo = rt.db.update(&ns, &at, changes, &caller).await?;
            if silent {
                return Ok(no_content());
            }
            Ok(respond(StatusCode::OK, render(&echo, pretty), None))
        }
        _ => Err(DbError {
            status: 405,
            message: "Method not allowed".into(),
        }),
    }
}

fn shallow_of(v: Value) -> Value {
    match v {
        Value::Object(_) | Value::Array(_) => Value::Bool(true),
        other => other,
    }
}

fn no_content() -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    res
}

fn parse_body(body: &[u8]) -> DbResult<Value> {
    serde_json::from_slice(body).map_err(|_| {
        DbError::bad_request("Invalid data; couldn't parse JSON object, array, or value.")
    })
}

/// Admin credentials (a Bearer header or `access_token=`) bypass the rules, unless they
/// ask to act as someone (`auth_variable_override`); `auth=` carries an ID token whose
/// verified claims the rules see; no credential is `auth == null`.
async fn caller(rt: &Rtdb, ns: &str, headers: &HeaderMap, params: &Params) -> DbResult<Caller> {
    let project = project_of(ns);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .or_else(|| params.get("access_token"));
    if let Some(bearer) = bearer {
        let creds = Credentials {
            api_key: None,
            bearer: Some(&bearer),
        };
        rt.auth
            .authorize(creds, Some(project), Accepts::AdminOnly)
            .await
            .map_err(|_| DbError::unauthorized("Unauthorized request."))?;
        return match params.get("auth_variable_override") {
            None => Ok(Caller::Admin),
            Some(raw) => {
                let auth: Value = serde_json::from_str(&raw)
                    .map_err(|_| DbError::bad_request("auth_variable_override must be JSON"))?;
                Ok(Caller::User(auth))
            }
        };
    }
    let Some(token) = params.get("auth").filter(|t| !t.is_empty()) else {
        return Ok(Caller::User(Value::Null));
    };
    let ctx = Ctx {
        access: Access {
            project: project.to_owned(),
            privileged: false,
        },
        tenant: None,
        ip: None,
        user_agent: None,
        locale: None,
    };
    match rt.auth.verify_id_token(&ctx, Some(&token)).await {
        Ok(verified) => Ok(Caller::User(auth_object(verified.claims))),
        Err(firekeeper_core::Error::Code {
            code: "TOKEN_EXPIRED",
            ..
        }) => Err(DbError::unauthorized("Auth token is expired")),
        Err(_) => Err(DbError::unauthorized("Could not parse auth token.")),
    }
}

/// The rules' `auth` for a verified ID token (spec §2.3).
fn auth_object(claims: Map<String, Value>) -> Value {
    let uid = claims
        .get("sub")
        .or_else(|| claims.get("user_id"))
        .cloned()
        .unwrap_or(Value::Null);
    let provider = claims
        .get("firebase")
        .and_then(|f| f.get("sign_in_provider"))
        .and_then(Value::as_str)
        .map(|p| match p {
            "google.com" => "google",
            "facebook.com" => "facebook",
            "github.com" => "github",
            "twitter.com" => "twitter",
            other => other,
        })
        .map_or(Value::Null, |p| Value::String(p.to_owned()));
    json!({"uid": uid, "provider": provider, "token": Value::Object(claims)})
}
