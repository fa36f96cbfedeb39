//! Text messages the server sends (phone sign-in and second-factor codes): the
//! [`SmsSender`] port (the command and webhook senders live in the server crate) and the
//! built-in localised message.

use async_trait::async_trait;

use crate::email::language;

/// Why a message is sent: beforeSendSms's `sms_type`.
pub mod sms_type {
    pub const SIGN_IN_OR_SIGN_UP: &str = "SIGN_IN_OR_SIGN_UP";
    pub const MULTI_FACTOR_ENROLLMENT: &str = "MULTI_FACTOR_ENROLLMENT";
    pub const MULTI_FACTOR_SIGN_IN: &str = "MULTI_FACTOR_SIGN_IN";
}

/// One message, ready to send. The parts are given separately too, so a gateway can use
/// templates of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingSms {
    /// E.164.
    pub to: String,
    pub text: String,
    pub code: String,
    /// One of [`sms_type`].
    pub kind: &'static str,
    pub project: String,
    pub tenant: Option<String>,
    pub language: &'static str,
}

/// Delivers text messages. An error is the gateway's reason, logged but not shown to
/// clients.
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Whether texts of `project` have a way out (gateways may be set per project).
    fn serves(&self, _project: &str) -> bool {
        true
    }
    async fn send(&self, sms: &OutgoingSms) -> Result<(), String>;
}

/// The message text in the language that best matches the client's locale.
pub fn message(locale: Option<&str>, app: &str, code: &str) -> (String, &'static str) {
    let lang = language(locale);
    let text = match lang {
        "de" => format!("{code} ist Ihr Bestätigungscode für {app}."),
        "fr" => format!("{code} est votre code de validation pour {app}."),
        "es" => format!("{code} es tu código de verificación para {app}."),
        _ => format!("{code} is your verification code for {app}."),
    };
    (text, lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_locale() {
        assert_eq!(
            message(Some("de-AT"), "Demo", "123456").0,
            "123456 ist Ihr Bestätigungscode für Demo."
        );
        assert_eq!(message(None, "Demo", "1").1, "en");
    }
}
