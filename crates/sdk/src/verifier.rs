use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::keys::KeyCache;
use crate::revocations::RevocationState;
use crate::{Claims, VerifyError};

const JWKS_PATH: &str = "/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com";
const COOKIE_JWKS_PATH: &str = "/identitytoolkit.googleapis.com/v1/sessionCookiePublicKeys";
/// Session cookies live five minutes to two weeks.
pub const SESSION_COOKIE_MIN: Duration = Duration::from_secs(300);
pub const SESSION_COOKIE_MAX: Duration = Duration::from_secs(14 * 24 * 3600);
/// How long the server holds a feed poll open when nothing happens.
const POLL_WAIT_SECS: u64 = 25;
/// Feed events per request.
const FEED_PAGE: usize = 1000;
/// Tokens may be used a little before `iat` (clock skew), as the Go Admin SDK allows.
const SKEW_SECS: i64 = 300;

/// Slack for clock differences between this process and the server when deciding whether
/// a token is young enough for the snapshot.
const LOOKBACK_MARGIN_SECS: i64 = 60;

#[derive(Debug, Clone, Copy)]
enum Kind {
    IdToken,
    SessionCookie,
}

/// Where the server is and how to trust it.
#[derive(Clone)]
pub struct Config {
    base_url: String,
    pub(crate) project: String,
    issuer: String,
    cookie_issuer: String,
    admin_token: Option<String>,
    max_staleness: Duration,
    pub(crate) lookback: Duration,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
}

/// Never prints the admin token.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("project", &self.project)
            .field("issuer", &self.issuer)
            .field("cookie_issuer", &self.cookie_issuer)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("max_staleness", &self.max_staleness)
            .field("lookback", &self.lookback)
            .finish()
    }
}

impl Config {
    pub fn new(base_url: impl Into<String>, project: impl Into<String>) -> Self {
        let project = project.into();
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            issuer: format!("https://securetoken.google.com/{project}"),
            cookie_issuer: format!("https://session.firebase.google.com/{project}"),
            project,
            admin_token: None,
            max_staleness: Duration::from_secs(60),
            // The longest an ID token lives, plus skew: older revocations cannot matter.
            lookback: Duration::from_secs(3600 + 300),
            trusted_proxies: Vec::new(),
        }
    }

    /// Behind reverse proxies: their `X-Forwarded-For` is believed when checking
    /// IP-bound sessions, walked from the nearest hop as the server does.
    pub fn trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The admin token that reads the revocation feed and answers fallback lookups.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// When the server's `issuer_prefix` is not Google's.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// When the server's `cookie_issuer_prefix` is not Google's.
    pub fn cookie_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.cookie_issuer = issuer.into();
        self
    }

    /// How far back the revocation snapshot reaches (default: an ID token's life plus
    /// skew). A token issued before it is checked with the server instead, so a site
    /// that verifies long-lived session cookies sets [`SESSION_COOKIE_MAX`] plus a little
    /// here to answer every check from memory.
    pub fn lookback(mut self, d: Duration) -> Self {
        self.lookback = d;
        self
    }

    /// How long the feed may be silent before revocation checks ask the server instead.
    pub fn max_staleness(mut self, d: Duration) -> Self {
        self.max_staleness = d;
        self
    }
}

/// How current the local revocation state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStatus {
    /// The last feed event applied.
    pub cursor: i64,
    /// Time since the feed last answered; `None` before its first answer.
    pub since_last_sync: Option<Duration>,
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    keys: KeyCache,
    cookie_keys: KeyCache,
    revocations: RwLock<RevocationState>,
}

/// Verifies ID tokens; cheap to clone and share.
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("base_url", &self.0.config.base_url)
            .field("project", &self.0.config.project)
            .finish()
    }
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Verifier {
    pub fn new(config: Config) -> Result<Self, VerifyError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(POLL_WAIT_SECS + 10))
            .build()
            .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        let keys = KeyCache::new(format!("{}{JWKS_PATH}", config.base_url));
        let cookie_keys = KeyCache::new(format!("{}{COOKIE_JWKS_PATH}", config.base_url));
        Ok(Self(Arc::new(Inner {
            config,
            http,
            keys,
            cookie_keys,
            revocations: RwLock::new(RevocationState::default()),
        })))
    }

    /// Checks signature, issuer, audience, subject and lifetime; with `check_revoked`, also
    /// that the user is not deleted or disabled, its tokens not revoked and the token's
    /// session not ended.
    pub async fn verify_id_token(
        &self,
        token: &str,
        check_revoked: bool,
    ) -> Result<Claims, VerifyError> {
        let claims = self.verify_signed(token, Kind::IdToken).await?;
        if check_revoked {
            self.check_revoked(&claims).await?;
        }
        Ok(claims)
    }

    /// [`verify_id_token`](Self::verify_id_token) for session cookies: the cookie keys and
    /// issuer, so an ID token is never accepted as a cookie nor the reverse.
    pub async fn verify_session_cookie(
        &self,
        cookie: &str,
        check_revoked: bool,
    ) -> Result<Claims, VerifyError> {
        let claims = self.verify_signed(cookie, Kind::SessionCookie).await?;
        if check_revoked {
            self.check_revoked(&claims).await?;
        }
        Ok(claims)
    }

    async fn verify_signed(&self, token: &str, kind: Kind) -> Result<Claims, VerifyError> {
        let invalid = |why: &str| VerifyError::Invalid(why.to_owned());
        use firekeeper_tokens::jws;
        // Header, then signature over the token as given, and only then the payload.
        let header = jws::decode_header(token).map_err(|_| invalid("not a compact JWS"))?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(invalid("alg must be RS256"));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no kid"))?;
        let (keys, issuer) = match kind {
            Kind::IdToken => (&self.0.keys, &self.0.config.issuer),
            Kind::SessionCookie => (&self.0.cookie_keys, &self.0.config.cookie_issuer),
        };
        let key = keys.key(&self.0.http, kid).await?;
        jws::verify_rs256_in_place(token, &key).map_err(|_| invalid("bad signature"))?;
        let claims = Claims(jws::decode_payload(token).map_err(|_| invalid("not a compact JWS"))?);
        let cfg = &self.0.config;
        if claims.str("aud") != Some(cfg.project.as_str()) {
            return Err(invalid("wrong audience"));
        }
        if claims.str("iss") != Some(issuer.as_str()) {
            return Err(invalid("wrong issuer"));
        }
        let sub_ok = claims
            .str("sub")
            .is_some_and(|s| !s.is_empty() && s.chars().count() <= 128);
        if !sub_ok {
            return Err(invalid("bad subject"));
        }
        let now = now_secs();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid("no exp"))?;
        if exp <= now {
            return Err(VerifyError::Expired);
        }
        if claims.issued_at() > now + SKEW_SECS {
            return Err(invalid("used before it was issued"));
        }
        Ok(claims)
    }

    /// Memory when the feed is fresh; otherwise the server, and an error if it cannot say.
    async fn check_revoked(&self, claims: &Claims) -> Result<(), VerifyError> {
        {
            let state = self
                .0
                .revocations
                .read()
                .map_err(|_| VerifyError::Unavailable("revocation state poisoned".into()))?;
            // The snapshot holds the events of the last `lookback`; an older token may have
            // been revoked before it.
            if state.covers(claims, LOOKBACK_MARGIN_SECS * 1000)
                && state
                    .synced_at
                    .is_some_and(|t| t.elapsed() <= self.0.config.max_staleness)
            {
                return state.check(claims);
            }
        }
        self.check_with_server(claims).await
    }

    pub(crate) fn admin(&self) -> Result<&str, VerifyError> {
        self.0.config.admin_token.as_deref().ok_or_else(|| {
            VerifyError::Unavailable("check_revoked needs Config::admin_token".into())
        })
    }

    pub(crate) async fn admin_call(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<Value, VerifyError> {
        let unavailable = |e: String| VerifyError::Unavailable(format!("revocation lookup: {e}"));
        let res = req
            .bearer_auth(self.admin()?)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unavailable(res.status().to_string()));
        }
        res.json().await.map_err(|e| unavailable(e.to_string()))
    }

    /// `base/segments...` with each segment percent-encoded, plus `?tenantId=` for tenants.
    pub(crate) fn url(
        &self,
        segments: &[&str],
        tenant: Option<&str>,
    ) -> Result<reqwest::Url, VerifyError> {
        let mut url = reqwest::Url::parse(&self.0.config.base_url)
            .map_err(|e| VerifyError::Unavailable(format!("base url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| VerifyError::Unavailable("base url cannot have a path".into()))?
            .extend(segments);
        if let Some(t) = tenant {
            url.query_pairs_mut().append_pair("tenantId", t);
        }
        Ok(url)
    }

    /// The fallback: the account and, for a token with a session, the session's state.
    async fn check_with_server(&self, claims: &Claims) -> Result<(), VerifyError> {
        let project = self.0.config.project.as_str();
        let lookup = match claims.tenant() {
            Some(t) => format!("projects/{project}/tenants/{t}/accounts:lookup"),
            None => format!("projects/{project}/accounts:lookup"),
        };
        let mut segments = vec!["identitytoolkit.googleapis.com", "v1"];
        segments.extend(lookup.split('/'));
        let found = self
            .admin_call(
                self.0
                    .http
                    .post(self.url(&segments, None)?)
                    .json(&json!({"localId": [claims.uid()]})),
            )
            .await?;
        let Some(user) = found["users"].get(0) else {
            return Err(VerifyError::UserNotFound);
        };
        if user["disabled"] == true {
            return Err(VerifyError::Disabled);
        }
        let valid_since = user["validSince"]
            .as_str()
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if claims.revocation_time() < valid_since {
            return Err(VerifyError::Revoked);
        }
        if let Some(sid) = claims.session_id() {
            let url = self.url(
                &[
                    "firekeeper",
                    "v1",
                    "projects",
                    project,
                    "accounts",
                    claims.uid(),
                    "sessions",
                ],
                claims.tenant(),
            )?;
            let sessions = self.admin_call(self.0.http.get(url)).await?;
            let live = sessions["sessions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["sessionId"] == sid && s.get("endedReason").is_none());
            if !live {
                return Err(VerifyError::Revoked);
            }
        }
        Ok(())
    }

    /// Reads the feed once (waiting up to `wait_secs` for news) and applies it. The first
    /// call loads the last token lifetime of events, page after page, and only then counts
    /// as synced, so checks never answer from a partial snapshot.
    pub async fn sync_revocations(&self, wait_secs: u64) -> Result<usize, VerifyError> {
        let cfg = &self.0.config;
        let first = self.lock_state()?.synced_at.is_none();
        let mut applied = 0;
        loop {
            let cursor = self.lock_state()?.cursor;
            let mut query = vec![
                ("after", cursor.to_string()),
                ("limit", FEED_PAGE.to_string()),
                (
                    "waitSecs",
                    if first {
                        "0".to_owned()
                    } else {
                        wait_secs.to_string()
                    },
                ),
            ];
            if first {
                query.push(("lookbackSecs", cfg.lookback.as_secs().to_string()));
            }
            let url = self.url(
                &["firekeeper", "v1", "projects", &cfg.project, "revocations"],
                None,
            )?;
            let page = self.admin_call(self.0.http.get(url).query(&query)).await?;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            let next = page["nextCursor"]
                .as_str()
                .and_then(|c| c.parse::<i64>().ok());
            let full = events.len() >= FEED_PAGE;
            applied += events.len();
            let mut s = self
                .0
                .revocations
                .write()
                .map_err(|_| VerifyError::Unavailable("revocation state poisoned".into()))?;
            s.apply(&events);
            if let Some(n) = next {
                s.cursor = s.cursor.max(n);
            }
            // The server's clock decides what the snapshot holds, as it did for the first
            // page, so a skewed local clock cannot widen what memory vouches for.
            let server_now = page["serverTimeMs"]
                .as_str()
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or_else(|| now_secs() * 1000);
            s.prune(server_now - cfg.lookback.as_millis() as i64);
            if !(first && full) {
                s.synced_at = Some(Instant::now());
                return Ok(applied);
            }
        }
    }

    fn lock_state(&self) -> Result<std::sync::RwLockReadGuard<'_, RevocationState>, VerifyError> {
        self.0
            .revocations
            .read()
            .map_err(|_| VerifyError::Unavailable("revocation state poisoned".into()))
    }

    /// Follows the revocation feed in the background until the returned task is aborted
    /// or the verifier's last clone is dropped. Needs [`Config::admin_token`].
    pub fn follow_revocations(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let verifier = Verifier(inner);
                match verifier.sync_revocations(POLL_WAIT_SECS).await {
                    Ok(_) => backoff = Duration::from_millis(250),
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation feed unavailable; retrying");
                        drop(verifier);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    pub(crate) fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn feed_status(&self) -> FeedStatus {
        match self.0.revocations.read() {
            Ok(s) => FeedStatus {
                cursor: s.cursor,
                since_last_sync: s.synced_at.map(|t| t.elapsed()),
            },
            Err(_) => FeedStatus {
                cursor: 0,
                since_last_sync: None,
            },
        }
    }
}
