//! Text messages through an operator's gateway: a webhook (POST of a JSON document) or a
//! command run once per message. Firekeeper speaks no SMS provider's API itself; a few
//! lines of glue in either form reach any of them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use firekeeper_core::sms::{OutgoingSms, SmsSender};
use serde::Deserialize;
use serde_json::json;

/// One gateway: exactly one of `webhook` and `command`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsGatewayConfig {
    /// An https (or loopback http) URL that receives
    /// `{"to","text","code","type","project","tenant","language"}`; any 2xx is success.
    pub webhook: Option<String>,
    /// Sent as `Authorization: Bearer <token>` to the webhook.
    pub webhook_token: Option<String>,
    /// A program and its arguments, run per message with `FIREKEEPER_SMS_TO`,
    /// `FIREKEEPER_SMS_TEXT`, `FIREKEEPER_SMS_CODE`, `FIREKEEPER_SMS_TYPE`,
    /// `FIREKEEPER_SMS_PROJECT`, `FIREKEEPER_SMS_TENANT` and `FIREKEEPER_SMS_LANGUAGE` set
    /// (and `PATH`; nothing else of the server's environment); exit status 0 is success.
    pub command: Option<Vec<PathBuf>>,
    /// Seconds before a send gives up (default 10).
    pub timeout_secs: Option<u64>,
}

impl SmsGatewayConfig {
    pub fn is_set(&self) -> bool {
        self.webhook.is_some() || self.command.is_some()
    }
}

/// `[sms]` in `firekeeper.toml`: the gateway of every project, and `[sms.projects.<id>]`
/// gateways of their own for some.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub webhook: Option<String>,
    pub webhook_token: Option<String>,
    pub command: Option<Vec<PathBuf>>,
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub projects: BTreeMap<String, SmsGatewayConfig>,
}

impl SmsConfig {
    fn default_gateway(&self) -> SmsGatewayConfig {
        SmsGatewayConfig {
            webhook: self.webhook.clone(),
            webhook_token: self.webhook_token.clone(),
            command: self.command.clone(),
            timeout_secs: self.timeout_secs,
        }
    }

    pub fn is_set(&self) -> bool {
        self.default_gateway().is_set() || self.projects.values().any(SmsGatewayConfig::is_set)
    }
}

enum Route {
    Webhook {
        http: reqwest::Client,
        url: String,
        token: Option<String>,
    },
    Command(Vec<PathBuf>),
}

struct Gateway {
    route: Route,
    timeout: Duration,
}

pub struct GatewaySmsSender {
    default: Option<Gateway>,
    projects: BTreeMap<String, Gateway>,
}

impl std::fmt::Debug for GatewaySmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySmsSender")
            .field("default", &self.default.is_some())
            .field("projects", &self.projects.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// https, or plain http to this machine: codes are secrets.
fn is_acceptable_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    match u.scheme() {
        "https" => u.host().is_some(),
        "http" => matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        _ => false,
    }
}

impl Gateway {
    fn new(config: &SmsGatewayConfig, at: &str) -> Result<Self, String> {
        let timeout = Duration::from_secs(config.timeout_secs.unwrap_or(10).max(1));
        let route = match (&config.webhook, &config.command) {
            (Some(url), None) => {
                if !is_acceptable_url(url) {
                    return Err(format!(
                        "{at}.webhook {url:?}: must be an https URL (plain http only to this \
                         machine)"
                    ));
                }
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("firekeeper/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("{at}.webhook: {e}"))?;
                Route::Webhook {
                    http,
                    url: url.clone(),
                    token: config.webhook_token.clone(),
                }
            }
            (None, Some(cmd)) if !cmd.is_empty() => Route::Command(cmd.clone()),
            (None, Some(_)) => return Err(format!("{at}.command is empty")),
            (Some(_), Some(_)) => return Err(format!("[{at}] takes webhook or command, not both")),
            (None, None) => return Err(format!("[{at}] needs webhook or command")),
        };
        Ok(Self { route, timeout })
    }
}

impl GatewaySmsSender {
    pub fn new(config: &SmsConfig) -> Result<Self, String> {
        let default_config = config.default_gateway();
        let default = if default_config.is_set() || config.projects.is_empty() {
            Some(Gateway::new(&default_config, "sms")?)
        } else {
            None
        };
        let mut projects = BTreeMap::new();
        for (project, c) in &config.projects {
            projects.insert(
                project.clone(),
                Gateway::new(c, &format!("sms.projects.{project}"))?,
            );
        }
        Ok(Self { default, projects })
    }

    fn gateway(&self, project: &str) -> Option<&Gateway> {
        self.projects.get(project).or(self.default.as_ref())
    }
}

#[async_trait]
impl SmsSender for GatewaySmsSender {
    fn serves(&self, project: &str) -> bool {
        self.gateway(project).is_some()
    }

    async fn send(&self, sms: &OutgoingSms) -> Result<(), String> {
        let gateway = self
            .gateway(&sms.project)
            .ok_or_else(|| format!("no SMS gateway for project {}", sms.project))?;
        let timeout = gateway.timeout;
        match &gateway.route {
            Route::Webhook { http, url, token } => {
                let body = json!({
                    "to": sms.to,
                    "text": sms.text,
                    "code": sms.code,
                    "type": sms.kind,
                    "project": sms.project,
                    "tenant": sms.tenant,
                    "language": sms.language,
                });
                let mut req = http.post(url).json(&body).timeout(timeout);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let res = req.send().await.map_err(|e| e.to_string())?;
                if res.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("the SMS webhook answered {}", res.status()))
                }
            }
            Route::Command(argv) => {
                let mut cmd = tokio::process::Command::new(&argv[0]);
                // Only what the message needs: the server's environment holds its secrets.
                cmd.env_clear();
                if let Some(path) = std::env::var_os("PATH") {
                    cmd.env("PATH", path);
                }
                cmd.args(&argv[1..])
                    .env("FIREKEEPER_SMS_TO", &sms.to)
                    .env("FIREKEEPER_SMS_TEXT", &sms.text)
                    .env("FIREKEEPER_SMS_CODE", &sms.code)
                    .env("FIREKEEPER_SMS_TYPE", sms.kind)
                    .env("FIREKEEPER_SMS_PROJECT", &sms.project)
                    .env("FIREKEEPER_SMS_TENANT", sms.tenant.as_deref().unwrap_or(""))
                    .env("FIREKEEPER_SMS_LANGUAGE", sms.language)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .kill_on_drop(true);
                let run = async {
                    let status = cmd.status().await.map_err(|e| e.to_string())?;
                    if status.success() {
                        Ok(())
                    } else {
                        Err(format!("the SMS command exited with {status}"))
                    }
                };
                tokio::time::timeout(timeout, run)
                    .await
                    .map_err(|_| "the SMS command timed out".to_owned())?
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_must_be_private() {
        assert!(is_acceptable_url("https://sms.example/send"));
        assert!(is_acceptable_url("http://127.0.0.1:9000/x"));
        assert!(!is_acceptable_url("http://sms.example/send"));
        let both = SmsConfig {
            webhook: Some("https://a.example".into()),
            command: Some(vec!["true".into()]),
            ..Default::default()
        };
        assert!(GatewaySmsSender::new(&both).is_err());
        assert!(GatewaySmsSender::new(&SmsConfig::default()).is_err());
        // One project's own gateway; the others have none.
        let mut per_project = SmsConfig::default();
        per_project.projects.insert(
            "shop".into(),
            SmsGatewayConfig {
                command: Some(vec!["true".into()]),
                ..Default::default()
            },
        );
        let sender = GatewaySmsSender::new(&per_project).unwrap();
        assert!(sender.serves("shop") && !sender.serves("blog"));
    }
}
