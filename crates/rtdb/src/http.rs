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

use crate::db::{plain, Caller, Database, Event, Listener, Written};
use crate::error::{DbError, DbResult};
use crate::query::ReadQuery;
use crate::revocation::Revoked;
use crate::{etag, path};

/// What the REST routes need.
pub struct Rtdb {
    pub db: Database,
    pub auth: Arc<Auth>,
    /// The namespace of a request without `?ns=`.
    pub default_namespace: String,
    /// Users whose tokens changed (see [`crate::revocation`]).
    pub revoked: tokio::sync::broadcast::Sender<Revoked>,
    /// Projects whose revocation feed is followed.
    followed: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Rtdb {
    pub fn new(db: Database, auth: Arc<Auth>, default_namespace: String) -> Self {
        Self {
            db,
            auth,
            default_namespace,
            revoked: tokio::sync::broadcast::channel(1024).0,
            followed: Default::default(),
        }
    }

    /// Follows `project`'s revocations from now on (once per project): its streams end
    /// when their user is revoked, and its revocation bridge writes.
    pub fn follow_project(self: &Arc<Self>, project: &str) {
        let mut followed = match self.followed.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if followed.insert(project.to_owned()) {
            tokio::spawn(crate::revocation::follow(self.clone(), project.to_owned()));
        }
    }
}

pub fn router(state: Arc<Rtdb>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// The project a namespace belongs to: `<project>-default-rtdb` or the project itself.
pub fn project_of(ns: &str) -> &str {
    ns.strip_suffix("-default-rtdb").unwrap_or(ns)
}

/// The request's namespace: `?ns=`, else the default. Names are Firebase's: lowercase
/// letters, digits and hyphens.
fn namespace(rt: &Rtdb, params: &Params) -> DbResult<String> {
    let Some(ns) = params.get("ns").filter(|n| !n.is_empty()) else {
        return Ok(rt.default_namespace.clone());
    };
    let valid = ns.len() <= 63
        && ns.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(DbError {
            status: 404,
            message: format!(
                "No database named '{ns}': names are lowercase letters, digits and hyphens"
            ),
        });
    }
    Ok(ns)
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

/// What a request addresses, read once: its parameters, the decoded path (without
/// `.json`, and whether it had it) and the namespace.
struct Target {
    params: Params,
    path: String,
    json: bool,
    ns: String,
}

fn target(rt: &Rtdb, uri: &Uri) -> DbResult<Target> {
    let params = Params::parse(uri.query());
    let decoded = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .map_err(|_| DbError::bad_request("Invalid path: not UTF-8"))?;
    let (path, json) = match decoded.strip_suffix(".json") {
        Some(p) => (p.to_owned(), true),
        None => (decoded.into_owned(), false),
    };
    let ns = namespace(rt, &params)?;
    Ok(Target {
        params,
        path,
        json,
        ns,
    })
}

async fn handle(State(rt): State<Arc<Rtdb>>, request: Request<Body>) -> Response<Body> {
    let t = match target(&rt, request.uri()) {
        Ok(t) => t,
        Err(e) => return error(e),
    };
    rt.follow_project(project_of(&t.ns));
    let streaming = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if streaming && request.method() == Method::GET {
        return match stream(rt, t, request.headers()).await {
            Ok(res) => res,
            Err(e) => error(e),
        };
    }
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
    match serve(&rt, t, parts.method, &parts.headers, &body).await {
        Ok(res) => res,
        Err(e) => error(e),
    }
}

async fn serve(
    rt: &Rtdb,
    t: Target,
    method: Method,
    headers: &HeaderMap,
    body: &[u8],
) -> DbResult<Response<Body>> {
    let Target {
        params,
        path: raw_path,
        json,
        ns,
    } = t;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let method = match (&method, header("x-http-method-override")) {
        (&Method::POST, Some(m)) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| DbError::bad_request("invalid X-HTTP-Method-Override"))?,
        _ => method,
    };
    if !json {
        return Err(DbError {
            status: 404,
            message: "Not found: database paths end in .json".into(),
        });
    }
    let (caller, _) = caller(rt, &ns, headers, &params).await?;
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
    let at = path::parse(&raw_path)?;
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
            let stored = rt.db.get(&ns, &at, query.as_ref(), &caller).await?;
            // The digest costs a walk of the subtree: only when asked for.
            let if_none_match = header("if-none-match");
            let tag = (wants_etag || if_none_match.is_some()).then(|| etag::of(Some(&stored)));
            if if_none_match.is_some() && if_none_match == tag.as_deref() {
                let mut res = respond(StatusCode::NOT_MODIFIED, String::new(), tag);
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

/// The ID token a request carried, for streams that must end when it stops being valid.
struct Token {
    raw: String,
    uid: String,
    /// Unix seconds.
    exp: Option<i64>,
}

fn user_ctx(project: &str) -> Ctx {
    Ctx {
        access: Access {
            project: project.to_owned(),
            privileged: false,
        },
        tenant: None,
        ip: None,
        user_agent: None,
        locale: None,
        origin: None,
    }
}

/// Admin credentials (a Bearer header or `access_token=`) bypass the rules, unless they
/// ask to act as someone (`auth_variable_override`); `auth=` carries an ID token whose
/// verified claims the rules see; no credential is `auth == null`.
async fn caller(
    rt: &Rtdb,
    ns: &str,
    headers: &HeaderMap,
    params: &Params,
) -> DbResult<(Caller, Option<Token>)> {
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
            None => Ok((Caller::Admin, None)),
            Some(raw) => {
                let auth: Value = serde_json::from_str(&raw)
                    .map_err(|_| DbError::bad_request("auth_variable_override must be JSON"))?;
                Ok((Caller::User(auth), None))
            }
        };
    }
    let Some(token) = params.get("auth").filter(|t| !t.is_empty()) else {
        return Ok((Caller::User(Value::Null), None));
    };
    match rt
        .auth
        .verify_id_token(&user_ctx(project), Some(&token))
        .await
    {
        Ok(verified) => {
            let info = Token {
                raw: token,
                uid: verified.account.local_id.clone(),
                exp: verified.claims.get("exp").and_then(Value::as_i64),
            };
            Ok((Caller::User(auth_object(verified.claims)), Some(info)))
        }
        // Revoked, disabled or deleted: in production Firebase such a token still verifies
        // and the seed's rules (revokeTime) deny the read; Firekeeper knows at once and
        // answers as those rules would.
        Err(firekeeper_core::Error::Code {
            code: "TOKEN_EXPIRED" | "USER_DISABLED" | "USER_NOT_FOUND",
            ..
        }) => Err(DbError::permission_denied()),
        Err(_) => {
            let expired = firekeeper_tokens::jws::decode_payload(&token)
                .ok()
                .and_then(|c| c.get("exp").and_then(Value::as_i64))
                .is_some_and(|exp| exp * 1000 <= rt.auth.clock().now_ms());
            Err(DbError::unauthorized(if expired {
                "Auth token is expired"
            } else {
                "Could not parse auth token."
            }))
        }
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

/// How often an idle stream says it is alive.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(30);

fn frame(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn event_frame(e: &Event) -> Bytes {
    match e {
        Event::Put { path, data } => frame("put", &json!({"path": path, "data": data}).to_string()),
        Event::Cancel(why) => frame("cancel", &Value::String(why.clone()).to_string()),
    }
}

/// `GET` with `Accept: text/event-stream` (spec §5): the whole value first, then a `put`
/// per change, `keep-alive` every 30 s, `cancel` when the rules stop allowing the read,
/// and `auth_revoked` when the token expires or its user is revoked, disabled or deleted.
async fn stream(rt: Arc<Rtdb>, t: Target, headers: &HeaderMap) -> DbResult<Response<Body>> {
    let Target {
        params, path, ns, ..
    } = t;
    let at = path::parse(&path)?;
    let (caller, token) = caller(&rt, &ns, headers, &params).await?;
    let query = ReadQuery::from_params(|n| params.get(n))?;
    let (listener, first) = rt.db.listen(&ns, &at, query, caller).await?;
    let revoked = rt.revoked.subscribe();
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.reset();
    let expires = token.as_ref().and_then(|t| t.exp).map(|exp| {
        let left = (exp * 1000 - rt.auth.clock().now_ms()).max(0) as u64;
        Box::pin(tokio::time::sleep(std::time::Duration::from_millis(left)))
    });
    let state = Stream {
        project: project_of(&ns).to_owned(),
        rt,
        listener,
        queue: std::collections::VecDeque::from([event_frame(&first)]),
        done: false,
        keep_alive,
        expires,
        revoked,
        token,
    };
    let body = futures_util::stream::unfold(state, |mut s| async move {
        s.next_chunk()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), s))
    });
    let mut res = Response::new(Body::from_stream(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

struct Stream {
    rt: Arc<Rtdb>,
    project: String,
    listener: Listener,
    queue: std::collections::VecDeque<Bytes>,
    done: bool,
    keep_alive: tokio::time::Interval,
    expires: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    revoked: tokio::sync::broadcast::Receiver<Revoked>,
    token: Option<Token>,
}

/// The `auth_revoked` data the Admin SDKs compare with, unquoted.
const REVOKED: &str = "credential is no longer valid";

impl Stream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            if let Some(b) = self.queue.pop_front() {
                return Some(b);
            }
            if self.done {
                return None;
            }
            let Self {
                listener,
                keep_alive,
                expires,
                revoked,
                ..
            } = self;
            let expiry = async {
                match expires {
                    Some(s) => s.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            enum Woke {
                Events(Vec<Event>),
                KeepAlive,
                Expired,
                News(Result<Revoked, RecvError>),
            }
            let woke = tokio::select! {
                events = listener.next() => Woke::Events(events),
                _ = keep_alive.tick() => Woke::KeepAlive,
                () = expiry => Woke::Expired,
                news = revoked.recv() => Woke::News(news),
            };
            match woke {
                Woke::Events(events) => {
                    for e in events {
                        self.done |= matches!(e, Event::Cancel(_));
                        self.queue.push_back(event_frame(&e));
                    }
                }
                Woke::KeepAlive => self.queue.push_back(frame("keep-alive", "null")),
                Woke::Expired => self.revoke(),
                Woke::News(Err(RecvError::Closed)) => self.done = true,
                Woke::News(news) => {
                    let concerns_us = match (&news, &self.token) {
                        (Ok(r), Some(t)) => r.project == self.project && r.uid == t.uid,
                        (Err(_), Some(_)) => true,
                        _ => false,
                    };
                    if concerns_us && !self.token_still_valid().await {
                        self.revoke();
                    }
                }
            }
        }
    }

    fn revoke(&mut self) {
        self.queue.push_back(frame("auth_revoked", REVOKED));
        self.done = true;
    }

    async fn token_still_valid(&self) -> bool {
        let Some(t) = &self.token else { return true };
        self.rt
            .auth
            .verify_id_token(&user_ctx(&self.project), Some(&t.raw))
            .await
            .is_ok()
    }
}
