//! Settings from `firekeeper.toml`, then `FIREKEEPER_*` variables, then flags — each
//! overriding the one before. Unknown keys and variables are errors that name them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use firekeeper_core::blocking::{BlockingFunctions, BlockingPolicy, MAX_DEADLINE};
use firekeeper_core::password::HashCost;
use firekeeper_core::service::{EmailActions, SessionPolicy};
use firekeeper_server::{SmsConfig, SmtpConfig, SmtpSecurity};
use serde::Deserialize;

/// Everything a file may set. Every field is optional: unset means "default".
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub rtdb_listen: Option<SocketAddr>,
    pub rtdb_rules: Option<PathBuf>,
    pub rtdb_revocation_path: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub project: Option<String>,
    pub emulator: Option<bool>,
    pub issuer_prefix: Option<String>,
    pub cookie_issuer_prefix: Option<String>,
    pub public_url: Option<String>,
    pub trusted_proxies: Option<Vec<ipnet::IpNet>>,
    pub max_body_bytes: Option<usize>,
    pub key_rotation_secs: Option<i64>,
    pub cookie_key_rotation_secs: Option<i64>,
    pub audit_retention_days: Option<u32>,
    pub log: Option<String>,
    pub password_hash: Option<HashCost>,
    pub sessions: Option<SessionPolicy>,
    pub blocking_deadline_ms: Option<u64>,
    pub blocking_functions: Option<BlockingFunctions>,
    pub blocking_policy: Option<BlockingPolicy>,
    pub smtp: Option<SmtpConfig>,
    pub email: Option<EmailActions>,
    pub sms: Option<SmsConfig>,
    pub idp_endpoint_overrides: Option<bool>,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The JSON database's REST port.
    pub rtdb_listen: SocketAddr,
    /// Rules for database namespaces that have none stored; `None`: locked.
    pub rtdb_rules: Option<PathBuf>,
    /// Where revoked users' revocation times are written (`$uid` stands for the user).
    pub rtdb_revocation_path: Option<String>,
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the data directory's SQLite file.
    pub database_url: Option<String>,
    pub project: String,
    pub emulator: bool,
    pub issuer_prefix: String,
    pub cookie_issuer_prefix: String,
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub max_body_bytes: usize,
    pub key_rotation_secs: i64,
    pub cookie_key_rotation_secs: i64,
    pub audit_retention_days: u32,
    pub log: String,
    pub password_hash: HashCost,
    pub sessions: SessionPolicy,
    pub blocking_deadline_ms: u64,
    pub blocking_functions: BlockingFunctions,
    pub blocking_policy: BlockingPolicy,
    /// The mail server action emails go through; `None`: none are sent (emulator mode
    /// logs the links).
    pub smtp: Option<SmtpConfig>,
    pub email_actions: EmailActions,
    /// The gateway sign-in and second-factor codes are texted through; `None`: only test
    /// phone numbers work (emulator mode logs the codes).
    pub sms: Option<SmsConfig>,
    /// Named providers' configurations may point at stand-in endpoints.
    pub idp_endpoint_overrides: bool,
}

pub const DEFAULT_CONFIG_FILE: &str = "firekeeper.toml";
pub const MIN_AUDIT_RETENTION_DAYS: u32 = 15;

/// The `FIREKEEPER_*` variables this program reads.
const ENV_KEYS: &[&str] = &[
    "LISTEN",
    "RTDB_LISTEN",
    "RTDB_RULES",
    "RTDB_REVOCATION_PATH",
    "DATA_DIR",
    "DATABASE_URL",
    "PROJECT",
    "EMULATOR",
    "ISSUER_PREFIX",
    "COOKIE_ISSUER_PREFIX",
    "PUBLIC_URL",
    "TRUSTED_PROXIES",
    "MAX_BODY_BYTES",
    "KEY_ROTATION_SECS",
    "COOKIE_KEY_ROTATION_SECS",
    "AUDIT_RETENTION_DAYS",
    "LOG",
    "BLOCKING_DEADLINE_MS",
    "PASSWORD_HASH_MEMORY_KIB",
    "PASSWORD_HASH_ITERATIONS",
    "PASSWORD_HASH_PARALLELISM",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_SECURITY",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_CA_FILE",
    "IDP_ENDPOINT_OVERRIDES",
    "SMS_WEBHOOK",
    "SMS_WEBHOOK_TOKEN",
    "CONFIG",
];

fn parse_env<T: std::str::FromStr>(name: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse::<T>()
        .map_err(|e| anyhow::anyhow!("FIREKEEPER_{name}={value:?}: {e}"))
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => bail!("FIREKEEPER_{name}={value:?}: expected true or false"),
    }
}

impl FileConfig {
    fn cost(&mut self) -> &mut HashCost {
        self.password_hash.get_or_insert_with(HashCost::default)
    }

    fn smtp(&mut self) -> &mut SmtpConfig {
        self.smtp.get_or_insert_with(SmtpConfig::default)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Applies `FIREKEEPER_*` variables from `vars` over this file's values.
    pub fn apply_env(&mut self, vars: &BTreeMap<String, String>) -> Result<()> {
        for (key, value) in vars {
            let Some(name) = key.strip_prefix("FIREKEEPER_") else {
                continue;
            };
            if !ENV_KEYS.contains(&name) {
                bail!(
                    "unknown environment variable {key} (known: FIREKEEPER_{})",
                    ENV_KEYS.join(", FIREKEEPER_")
                );
            }
            match name {
                "LISTEN" => self.listen = Some(parse_env(name, value)?),
                "RTDB_LISTEN" => self.rtdb_listen = Some(parse_env(name, value)?),
                "RTDB_RULES" => self.rtdb_rules = Some(PathBuf::from(value)),
                "RTDB_REVOCATION_PATH" => {
                    self.rtdb_revocation_path = Some(value.clone()).filter(|v| !v.is_empty())
                }
                "DATA_DIR" => self.data_dir = Some(PathBuf::from(value)),
                "DATABASE_URL" => self.database_url = Some(value.clone()).filter(|v| !v.is_empty()),
                "PROJECT" => self.project = Some(value.clone()),
                "EMULATOR" => self.emulator = Some(parse_bool(name, value)?),
                "ISSUER_PREFIX" => self.issuer_prefix = Some(value.clone()),
                "COOKIE_ISSUER_PREFIX" => self.cookie_issuer_prefix = Some(value.clone()),
                "PUBLIC_URL" => self.public_url = Some(value.clone()),
                "TRUSTED_PROXIES" => {
                    self.trusted_proxies = Some(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|v| !v.is_empty())
                            .map(|v| parse_env(name, v))
                            .collect::<Result<_>>()?,
                    )
                }
                "MAX_BODY_BYTES" => self.max_body_bytes = Some(parse_env(name, value)?),
                "KEY_ROTATION_SECS" => self.key_rotation_secs = Some(parse_env(name, value)?),
                "COOKIE_KEY_ROTATION_SECS" => {
                    self.cookie_key_rotation_secs = Some(parse_env(name, value)?)
                }
                "AUDIT_RETENTION_DAYS" => self.audit_retention_days = Some(parse_env(name, value)?),
                "LOG" => self.log = Some(value.clone()),
                "BLOCKING_DEADLINE_MS" => self.blocking_deadline_ms = Some(parse_env(name, value)?),
                "PASSWORD_HASH_MEMORY_KIB" => self.cost().memory_kib = parse_env(name, value)?,
                "PASSWORD_HASH_ITERATIONS" => self.cost().iterations = parse_env(name, value)?,
                "PASSWORD_HASH_PARALLELISM" => self.cost().parallelism = parse_env(name, value)?,
                "SMTP_HOST" => self.smtp().host = value.clone(),
                "SMTP_PORT" => self.smtp().port = Some(parse_env(name, value)?),
                "SMTP_SECURITY" => {
                    self.smtp().security = match value.to_ascii_lowercase().as_str() {
                        "starttls" => SmtpSecurity::Starttls,
                        "tls" => SmtpSecurity::Tls,
                        "none" => SmtpSecurity::None,
                        _ => bail!("FIREKEEPER_{name}={value:?}: expected starttls, tls or none"),
                    }
                }
                "SMTP_USERNAME" => self.smtp().username = Some(value.clone()),
                "SMTP_PASSWORD" => self.smtp().password = Some(value.clone()),
                "SMTP_FROM" => self.smtp().from = value.clone(),
                "SMTP_CA_FILE" => self.smtp().ca_file = Some(PathBuf::from(value)),
                "IDP_ENDPOINT_OVERRIDES" => {
                    self.idp_endpoint_overrides = Some(parse_bool(name, value)?)
                }
                "SMS_WEBHOOK" => {
                    self.sms.get_or_insert_with(SmsConfig::default).webhook =
                        Some(value.clone()).filter(|v| !v.is_empty())
                }
                "SMS_WEBHOOK_TOKEN" => {
                    self.sms
                        .get_or_insert_with(SmsConfig::default)
                        .webhook_token = Some(value.clone()).filter(|v| !v.is_empty())
                }
                _ => {} // CONFIG names the file, so it is read before the file is loaded.
            }
        }
        Ok(())
    }

    pub fn settings(self) -> Result<Settings> {
        let s = Settings {
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9099))),
            rtdb_listen: self
                .rtdb_listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000))),
            rtdb_rules: self.rtdb_rules,
            rtdb_revocation_path: self.rtdb_revocation_path,
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from("firekeeper-data")),
            database_url: self.database_url,
            project: self.project.unwrap_or_else(|| "demo-firekeeper".to_owned()),
            emulator: self.emulator.unwrap_or(false),
            issuer_prefix: self
                .issuer_prefix
                .unwrap_or_else(|| "https://securetoken.google.com/".to_owned()),
            cookie_issuer_prefix: self
                .cookie_issuer_prefix
                .unwrap_or_else(|| "https://session.firebase.google.com/".to_owned()),
            public_url: self.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            trusted_proxies: self.trusted_proxies.unwrap_or_default(),
            max_body_bytes: self.max_body_bytes.unwrap_or(8 * 1024 * 1024),
            key_rotation_secs: self.key_rotation_secs.unwrap_or(6 * 3600),
            cookie_key_rotation_secs: self.cookie_key_rotation_secs.unwrap_or(24 * 3600),
            audit_retention_days: self.audit_retention_days.unwrap_or(30),
            log: self.log.unwrap_or_else(|| "info".to_owned()),
            password_hash: self.password_hash.unwrap_or_default(),
            sessions: self.sessions.unwrap_or_default(),
            blocking_deadline_ms: self
                .blocking_deadline_ms
                .unwrap_or(MAX_DEADLINE.as_millis() as u64),
            blocking_functions: self.blocking_functions.unwrap_or_default(),
            blocking_policy: self.blocking_policy.unwrap_or_default(),
            smtp: self.smtp.filter(|m| !m.host.is_empty()),
            email_actions: self.email.unwrap_or_default(),
            sms: self.sms.filter(SmsConfig::is_set),
            idp_endpoint_overrides: self.idp_endpoint_overrides.unwrap_or(false),
        };
        let mut s = s;
        // Links in emails open the server's own action page unless another is named, and
        // the server's own host may be a continue URL.
        if let Some(public) = &s.public_url {
            if s.email_actions.action_url.is_none() {
                s.email_actions.action_url = Some(format!("{public}/__/auth/action"));
            }
            if let Some(host) = firekeeper_core::validate::uri_host(public) {
                if !s.email_actions.authorized_domains.contains(&host) {
                    s.email_actions.authorized_domains.push(host);
                }
            }
        }
        if let Some(url) = &s.email_actions.action_url {
            if !firekeeper_core::validate::is_absolute_uri(url) {
                bail!("[email] action_url must be an absolute http(s) URL");
            }
        }
        if s.email_actions.code_lifetime_secs < 60 {
            bail!("[email] code_lifetime_secs must be at least 60");
        }
        if let Some(smtp) = &s.smtp {
            if let Err(e) = firekeeper_server::SmtpMailer::new(smtp) {
                bail!("[smtp]: {e}");
            }
        }
        if let Some(sms) = &s.sms {
            if let Err(e) = firekeeper_server::GatewaySmsSender::new(sms) {
                bail!("[sms]: {e}");
            }
        }
        if !(1..=MAX_DEADLINE.as_millis() as u64).contains(&s.blocking_deadline_ms) {
            bail!("blocking_deadline_ms must be between 1 and 7000 (Firebase's 7 s deadline)");
        }
        if let Err(e) = s.blocking_functions.validate() {
            bail!("[blocking_functions]: {e}");
        }
        if let Some(url) = &s.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("database_url must be a postgres:// URL (SQLite is the data directory's)");
            }
        }
        let database = firekeeper_core::service::DatabasePolicy {
            revocation_path: s.rtdb_revocation_path.clone(),
        };
        if let Err(e) = database.validate() {
            bail!("rtdb_revocation_path: {e}");
        }
        if s.project.is_empty() {
            bail!("project must not be empty");
        }
        if s.key_rotation_secs < 60 {
            bail!("key_rotation_secs must be at least 60");
        }
        if s.cookie_key_rotation_secs < 60 {
            bail!("cookie_key_rotation_secs must be at least 60");
        }
        // The revocation feed must reach back over a whole session cookie's life, or a
        // verifier's snapshot could miss the revocation of a cookie still in use.
        if s.audit_retention_days < MIN_AUDIT_RETENTION_DAYS {
            bail!(
                "audit_retention_days must be at least {MIN_AUDIT_RETENTION_DAYS} \
                 (the longest session cookie lives 14 days)"
            );
        }
        if let Err(e) = s.sessions.validate() {
            bail!("[sessions]: {e}");
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_file_key_is_named() {
        let err = toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nlisten_addr = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_unknown_env_is_named() {
        let mut file: FileConfig =
            toml::from_str("project = \"from-file\"\nemulator = true").unwrap();
        let mut vars = BTreeMap::new();
        vars.insert("FIREKEEPER_PROJECT".to_owned(), "from-env".to_owned());
        file.apply_env(&vars).unwrap();
        let s = file.clone().settings().unwrap();
        assert_eq!(s.project, "from-env");
        assert!(s.emulator);
        vars.insert("FIREKEEPER_PORT".to_owned(), "1".to_owned());
        let err = file.apply_env(&vars).unwrap_err().to_string();
        assert!(err.contains("FIREKEEPER_PORT"), "{err}");
    }

    #[test]
    fn sessions_section() {
        let f: FileConfig =
            toml::from_str("[sessions]\nmax_per_user = 5\nrotate_refresh_tokens = true\n").unwrap();
        let s = f.settings().unwrap();
        assert_eq!(s.sessions.max_per_user, 5);
        assert!(s.sessions.rotate_refresh_tokens);
        assert_eq!(s.sessions.rotation_grace_secs, 30);
    }

    #[test]
    fn hash_cost_section() {
        let f: FileConfig =
            toml::from_str("[password_hash]\nmemory_kib = 1024\niterations = 1\n").unwrap();
        let s = f.settings().unwrap();
        assert_eq!(s.password_hash.memory_kib, 1024);
        assert_eq!(s.password_hash.parallelism, 1);
        assert!(toml::from_str::<FileConfig>("[password_hash]\nmemroy_kib = 1\n").is_err());
    }

    #[test]
    fn cookie_settings_and_retention_floor() {
        let f: FileConfig = toml::from_str(
            "cookie_key_rotation_secs = 3600\ncookie_issuer_prefix = \"https://s.example/\"\n",
        )
        .unwrap();
        let s = f.settings().unwrap();
        assert_eq!(s.cookie_key_rotation_secs, 3600);
        assert_eq!(s.cookie_issuer_prefix, "https://s.example/");
        let short: FileConfig = toml::from_str("audit_retention_days = 14").unwrap();
        let err = short.settings().unwrap_err().to_string();
        assert!(
            err.contains("audit_retention_days must be at least 15"),
            "{err}"
        );
    }

    #[test]
    fn blocking_sections() {
        let f: FileConfig = toml::from_str(
            "blocking_deadline_ms = 3000\n\
             [blocking_functions.triggers.beforeCreate]\n\
             function_uri = \"https://fn.example/before-create\"\n\
             [blocking_policy]\n\
             allowed_email_domains = [\"example.com\"]\n\
             denied_ip_ranges = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let s = f.settings().unwrap();
        assert_eq!(s.blocking_deadline_ms, 3000);
        assert_eq!(
            s.blocking_functions.triggers["beforeCreate"].function_uri,
            "https://fn.example/before-create"
        );
        assert_eq!(s.blocking_policy.allowed_email_domains, ["example.com"]);
        let slow: FileConfig = toml::from_str("blocking_deadline_ms = 8000").unwrap();
        assert!(slow.settings().unwrap_err().to_string().contains("7000"));
        let bad: FileConfig = toml::from_str(
            "[blocking_functions.triggers.beforeDelete]\nfunction_uri = \"https://x.io\"\n",
        )
        .unwrap();
        assert!(bad
            .settings()
            .unwrap_err()
            .to_string()
            .contains("Event type is invalid"));
        assert!(toml::from_str::<FileConfig>("[blocking_policy]\nallow_domains = []\n").is_err());
    }
}
