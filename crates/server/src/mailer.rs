//! Action emails over SMTP (lettre): STARTTLS, implicit TLS or plain, with optional login
//! and an extra trusted root certificate for private relays.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use firekeeper_core::email::{Mailer, OutgoingEmail};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a test sink.
    None,
}

/// `[smtp]` in `firekeeper.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 587 for STARTTLS, 465 for TLS, 25 for none.
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, as `Name <address>` or a bare address.
    pub from: String,
    /// A PEM root certificate trusted besides the public roots (a private relay's CA).
    pub ca_file: Option<PathBuf>,
    /// Seconds before a send gives up (default 10).
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish()
    }
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// Checks the configuration (sender, certificate file) and prepares the connection
    /// pool; nothing connects until the first email.
    pub fn new(config: &SmtpConfig) -> Result<Self, String> {
        if config.host.trim().is_empty() {
            return Err("smtp.host is empty".into());
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("smtp.from {:?}: {e}", config.from))?;
        let tls = || -> Result<TlsParameters, String> {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("smtp.ca_file {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("smtp.ca_file {}: {e}", path.display()))?;
                builder = builder.add_root_certificate(cert);
            }
            builder.build_rustls().map_err(|e| format!("smtp TLS: {e}"))
        };
        let (tls, default_port) = match config.security {
            SmtpSecurity::Starttls => (Tls::Required(tls()?), 587),
            SmtpSecurity::Tls => (Tls::Wrapper(tls()?), 465),
            SmtpSecurity::None => (Tls::None, 25),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port.unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_secs.unwrap_or(10))));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err("smtp.username and smtp.password go together".into()),
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), String> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| format!("recipient {:?}: {e}", email.to))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_name_the_setting() {
        let base = SmtpConfig {
            host: "mail.example.com".into(),
            from: "Example <no-reply@example.com>".into(),
            ..Default::default()
        };
        assert!(SmtpMailer::new(&base).is_ok());
        let bad_from = SmtpConfig {
            from: "not an address".into(),
            ..base.clone()
        };
        assert!(SmtpMailer::new(&bad_from)
            .unwrap_err()
            .contains("smtp.from"));
        let half_login = SmtpConfig {
            username: Some("u".into()),
            ..base.clone()
        };
        assert!(SmtpMailer::new(&half_login)
            .unwrap_err()
            .contains("go together"));
        let missing_ca = SmtpConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..base
        };
        assert!(SmtpMailer::new(&missing_ca)
            .unwrap_err()
            .contains("smtp.ca_file"));
    }
}
