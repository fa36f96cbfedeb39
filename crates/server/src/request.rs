//! Request normalisation (§1.6): credentials, client facts, and the body as the operation's
//! typed request — snake_case keys camel-cased, form bodies accepted where the spec says,
//! precise `Invalid JSON payload received.` errors.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request};
use firekeeper_core::access::{Accepts, Credentials};
use firekeeper_core::Error;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// What the handlers need from a raw request.
pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: Map<String, Value>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The client's address: the peer, or what trusted proxies say it forwarded.
    client_ip: Option<std::net::IpAddr>,
    /// The peer is a trusted proxy, so its `X-Forwarded-*` headers are believed.
    via_trusted_proxy: bool,
}

impl Incoming {
    pub async fn read(
        req: Request<Body>,
        max_body: usize,
        trusted_proxies: &[ipnet::IpNet],
    ) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let query = parts
            .uri
            .query()
            .map(|q| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect()
            })
            .unwrap_or_default();
        let body = axum::body::to_bytes(body, max_body).await.map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Error::PayloadTooLarge(max_body)
            } else {
                Error::ParseError(format!("Invalid JSON payload received. {e}"))
            }
        })?;
        let client_ip = peer.map(|p| client_ip(p.ip(), &parts.headers, trusted_proxies));
        let via_trusted_proxy =
            peer.is_some_and(|p| trusted_proxies.iter().any(|n| n.contains(&p.ip())));
        Ok(Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query,
            headers: parts.headers,
            body,
            client_ip,
            via_trusted_proxy,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn credentials(&self) -> Credentials<'_> {
        let api_key = self
            .query
            .get("key")
            .and_then(Value::as_str)
            .or_else(|| self.header("x-goog-api-key"));
        // Only the Bearer scheme counts; others are ignored as if absent.
        let bearer = self
            .header(header::AUTHORIZATION.as_str())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        Credentials { api_key, bearer }
    }

    /// Refuses a request that carries no credential at all before its body is looked at,
    /// so anonymous callers learn nothing from parse errors.
    pub fn require_some_credential(&self, accepts: Accepts) -> Result<(), Error> {
        let c = self.credentials();
        match (c.bearer, c.api_key.filter(|k| !k.is_empty()), accepts) {
            (Some(_), _, _) => Ok(()),
            (None, _, Accepts::AdminOnly) => Err(Error::MissingCredential),
            (None, None, Accepts::KeyOrAdmin) => Err(Error::MissingApiKey),
            (None, Some(_), Accepts::KeyOrAdmin) => Ok(()),
        }
    }

    /// The base URL the caller reached us at; the forwarded scheme counts only from a
    /// trusted proxy.
    pub fn origin(&self) -> String {
        base_url(&self.headers, self.via_trusted_proxy)
    }

    pub fn user_agent(&self) -> Option<String> {
        self.header(header::USER_AGENT.as_str()).map(str::to_owned)
    }

    pub fn ip(&self) -> Option<String> {
        self.client_ip.map(|ip| ip.to_string())
    }

    fn is_form(&self) -> bool {
        self.header(header::CONTENT_TYPE.as_str())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    }

    /// The body as a JSON object with camelCase keys, query parameters merged in for GETs.
    /// DELETE bodies are ignored (the Node Admin SDK sends them).
    pub fn json_body(&self, allow_form: bool) -> Result<Map<String, Value>, Error> {
        let mut map =
            if self.method == Method::DELETE || self.body.iter().all(u8::is_ascii_whitespace) {
                Map::new()
            } else if allow_form && self.is_form() {
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(&self.body)
                    .map_err(|e| Error::ParseError(format!("Invalid JSON payload received. {e}")))?
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect()
            } else {
                match serde_json::from_slice::<Value>(&self.body) {
                    Ok(Value::Object(m)) => m,
                    Ok(_) => {
                        return Err(Error::InvalidArgument(
                            "Invalid JSON payload received. Root element must be a message.".into(),
                        ))
                    }
                    Err(e) => {
                        return Err(Error::ParseError(format!(
                            "Invalid JSON payload received. {e}"
                        )))
                    }
                }
            };
        if self.method == Method::GET {
            for (k, v) in &self.query {
                if k != "key" {
                    map.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        Ok(camel_keys(map))
    }
}

/// The client behind trusted proxies: walking `X-Forwarded-For` from the nearest hop, the
/// first address that is not a trusted proxy. A peer that is not trusted is the client,
/// whatever it claims. Addresses in canonical form (`::ffff:10.0.0.1` is `10.0.0.1`).
fn client_ip(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An entry that does not parse ends the walk: what lies left of it is unvouched.
        let Ok(ip) = hop
            .trim()
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_canonical())
        else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn camel_value(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(camel_keys(m)),
        Value::Array(a) => Value::Array(a.into_iter().map(camel_value).collect()),
        other => other,
    }
}

/// snake_case → camelCase, recursively (`refresh_token` → `refreshToken`).
pub fn camel_keys(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| (camel(&k), camel_value(v)))
        .collect()
}

/// Turns serde's wording into the schema wording Google uses: `/password must be string`.
fn type_problem(message: &str) -> &'static str {
    let expected = message.split("expected").nth(1).unwrap_or("");
    if expected.contains("string") {
        "must be string"
    } else if expected.contains("bool") {
        "must be boolean"
    } else if expected.contains("sequence") || expected.contains("array") {
        "must be array"
    } else if expected.contains("map") || expected.contains("struct") {
        "must be object"
    } else if ["i64", "u64", "u32", "integer"]
        .iter()
        .any(|t| expected.contains(t))
        || message.contains("must be an integer")
    {
        "must be integer"
    } else {
        "is invalid"
    }
}

/// Parses the normalised body into the operation's request type.
pub fn typed<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, Error> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let pointer = e
            .path()
            .iter()
            .map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => "?".to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        let problem = type_problem(&e.inner().to_string());
        Error::InvalidArgument(format!(
            "Invalid JSON payload received. /{pointer} {problem}"
        ))
    })
}

/// The base URL clients used to reach us: the `Host` header, and a reverse proxy's
/// forwarded scheme when `forwarded` (its `https` or `http`, nothing else).
pub fn base_url(headers: &HeaderMap, forwarded: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| forwarded && matches!(*p, "http" | "https"))
        .unwrap_or("http");
    format!("{proto}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_through_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let out: std::net::IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(client_ip(lo, &h, &trusted).to_string(), "10.0.0.1");
        assert_eq!(
            client_ip(out, &h, &trusted),
            out,
            "an untrusted peer cannot claim"
        );
        assert_eq!(client_ip(lo, &HeaderMap::new(), &trusted), lo);
        assert_eq!(client_ip(lo, &h, &[]), lo);
        // A proxy entry that does not parse stops the walk before the spoofable part.
        let mut odd = HeaderMap::new();
        odd.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9:5555".parse().unwrap(),
        );
        assert_eq!(client_ip(lo, &odd, &trusted), lo);
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(client_ip(mapped, &h, &trusted).to_string(), "10.0.0.1");
    }

    #[test]
    fn snake_to_camel() {
        assert_eq!(camel("refresh_token"), "refreshToken");
        assert_eq!(camel("grant_type"), "grantType");
        assert_eq!(camel("alreadyCamel"), "alreadyCamel");
        assert_eq!(camel("_private"), "_private");
    }

    #[test]
    fn type_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct R {
            password: Option<String>,
            flag: Option<bool>,
        }
        let mut m = Map::new();
        m.insert("password".into(), 5.into());
        let e = typed::<R>(m).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid JSON payload received. /password must be string"
        );
        let mut m = Map::new();
        m.insert("flag".into(), "yes".into());
        assert_eq!(
            typed::<R>(m).unwrap_err().to_string(),
            "Invalid JSON payload received. /flag must be boolean"
        );
    }
}
