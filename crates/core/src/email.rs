//! Emails the server sends for out-of-band actions: the [`Mailer`] port (SMTP lives in the
//! server crate) and the built-in localised templates.

use async_trait::async_trait;

use crate::model::oob_kind;

/// One message, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `Content-Language` of the message.
    pub language: &'static str,
}

/// Delivers emails. An error is the transport's reason, logged but not shown to clients.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), String>;
}

/// What a template is filled with.
#[derive(Debug, Clone)]
pub struct TemplateValues<'a> {
    /// The project's display name (the project id unless configured).
    pub app: &'a str,
    /// The recipient's account email (for an email change: the address being replaced).
    pub email: &'a str,
    pub new_email: Option<&'a str>,
    pub link: &'a str,
}

struct Template {
    subject: &'static str,
    /// Paragraphs before the link; `{app}`, `{email}` and `{new_email}` are replaced.
    before: &'static [&'static str],
    /// The link's label in the HTML part.
    button: &'static str,
    /// Paragraphs after the link.
    after: &'static [&'static str],
}

/// Languages with built-in templates; anything else falls back to English.
pub const LANGUAGES: &[&str] = &["en", "de", "fr", "es"];

/// The built-in language that best matches a `X-Firebase-Locale` value (`de`, `de-AT`,
/// `fr_FR`); English when none does.
pub fn language(locale: Option<&str>) -> &'static str {
    let wanted = locale
        .unwrap_or_default()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|l| **l == wanted)
        .copied()
        .unwrap_or("en")
}

fn template(kind: &str, lang: &str) -> Option<Template> {
    use oob_kind::*;
    let t = match (kind, lang) {
        (PASSWORD_RESET, "de") => Template {
            subject: "Passwort für {app} zurücksetzen",
            before: &["Hallo,", "über diesen Link können Sie das Passwort für Ihr {app}-Konto {email} zurücksetzen:"],
            button: "Passwort zurücksetzen",
            after: &["Wenn Sie das nicht angefordert haben, können Sie diese E-Mail ignorieren."],
        },
        (PASSWORD_RESET, "fr") => Template {
            subject: "Réinitialisez votre mot de passe pour {app}",
            before: &["Bonjour,", "Cliquez sur ce lien pour réinitialiser le mot de passe de votre compte {app} {email} :"],
            button: "Réinitialiser le mot de passe",
            after: &["Si vous n'avez pas demandé cette réinitialisation, vous pouvez ignorer cet e-mail."],
        },
        (PASSWORD_RESET, "es") => Template {
            subject: "Restablece tu contraseña de {app}",
            before: &["Hola:", "Sigue este enlace para restablecer la contraseña de tu cuenta de {app} {email}:"],
            button: "Restablecer contraseña",
            after: &["Si no has solicitado este cambio, puedes ignorar este correo."],
        },
        (PASSWORD_RESET, _) => Template {
            subject: "Reset your password for {app}",
            before: &["Hello,", "Follow this link to reset the password of your {app} account {email}:"],
            button: "Reset password",
            after: &["If you didn't ask to reset your password, you can ignore this email."],
        },
        (VERIFY_EMAIL, "de") => Template {
            subject: "E-Mail-Adresse für {app} bestätigen",
            before: &["Hallo,", "bitte bestätigen Sie über diesen Link Ihre E-Mail-Adresse {email}:"],
            button: "E-Mail-Adresse bestätigen",
            after: &["Wenn Sie diese Bestätigung nicht angefordert haben, können Sie diese E-Mail ignorieren."],
        },
        (VERIFY_EMAIL, "fr") => Template {
            subject: "Validez votre adresse e-mail pour {app}",
            before: &["Bonjour,", "Cliquez sur ce lien pour valider votre adresse e-mail {email} :"],
            button: "Valider l'adresse e-mail",
            after: &["Si vous n'avez pas demandé cette validation, vous pouvez ignorer cet e-mail."],
        },
        (VERIFY_EMAIL, "es") => Template {
            subject: "Verifica tu correo electrónico de {app}",
            before: &["Hola:", "Sigue este enlace para verificar tu dirección de correo electrónico {email}:"],
            button: "Verificar correo electrónico",
            after: &["Si no has solicitado esta verificación, puedes ignorar este correo."],
        },
        (VERIFY_EMAIL, _) => Template {
            subject: "Verify your email for {app}",
            before: &["Hello,", "Follow this link to verify your email address {email}:"],
            button: "Verify email",
            after: &["If you didn't ask to verify this address, you can ignore this email."],
        },
        (EMAIL_SIGNIN, "de") => Template {
            subject: "Bei {app} anmelden",
            before: &["Hallo,", "Sie haben einen Anmeldelink für {email} angefordert. Über diesen Link melden Sie sich bei {app} an:"],
            button: "Anmelden",
            after: &["Wenn Sie diesen Link nicht angefordert haben, können Sie diese E-Mail ignorieren."],
        },
        (EMAIL_SIGNIN, "fr") => Template {
            subject: "Connexion à {app}",
            before: &["Bonjour,", "Vous avez demandé un lien de connexion pour {email}. Cliquez sur ce lien pour vous connecter à {app} :"],
            button: "Se connecter",
            after: &["Si vous n'avez pas demandé ce lien, vous pouvez ignorer cet e-mail."],
        },
        (EMAIL_SIGNIN, "es") => Template {
            subject: "Inicia sesión en {app}",
            before: &["Hola:", "Has solicitado un enlace de inicio de sesión para {email}. Sigue este enlace para acceder a {app}:"],
            button: "Iniciar sesión",
            after: &["Si no has solicitado este enlace, puedes ignorar este correo."],
        },
        (EMAIL_SIGNIN, _) => Template {
            subject: "Sign in to {app}",
            before: &["Hello,", "We received a request to sign in to {app} using {email}. Follow this link to sign in:"],
            button: "Sign in",
            after: &["If you didn't request this link, you can ignore this email."],
        },
        (VERIFY_AND_CHANGE_EMAIL, "de") => Template {
            subject: "Neue E-Mail-Adresse für {app} bestätigen",
            before: &["Hallo,", "bitte bestätigen Sie über diesen Link, dass Ihr {app}-Konto künftig {new_email} statt {email} verwendet:"],
            button: "Neue Adresse bestätigen",
            after: &["Wenn Sie diese Änderung nicht angefordert haben, können Sie diese E-Mail ignorieren."],
        },
        (VERIFY_AND_CHANGE_EMAIL, "fr") => Template {
            subject: "Validez votre nouvelle adresse e-mail pour {app}",
            before: &["Bonjour,", "Cliquez sur ce lien pour que votre compte {app} utilise {new_email} au lieu de {email} :"],
            button: "Valider la nouvelle adresse",
            after: &["Si vous n'avez pas demandé ce changement, vous pouvez ignorer cet e-mail."],
        },
        (VERIFY_AND_CHANGE_EMAIL, "es") => Template {
            subject: "Verifica tu nuevo correo electrónico de {app}",
            before: &["Hola:", "Sigue este enlace para que tu cuenta de {app} use {new_email} en lugar de {email}:"],
            button: "Verificar la nueva dirección",
            after: &["Si no has solicitado este cambio, puedes ignorar este correo."],
        },
        (VERIFY_AND_CHANGE_EMAIL, _) => Template {
            subject: "Verify your new email for {app}",
            before: &["Hello,", "Follow this link to change the email of your {app} account from {email} to {new_email}:"],
            button: "Verify new email",
            after: &["If you didn't ask for this change, you can ignore this email."],
        },
        (RECOVER_EMAIL, "de") => Template {
            subject: "Ihre E-Mail-Adresse für {app} wurde geändert",
            before: &["Hallo,", "die E-Mail-Adresse Ihres {app}-Kontos wurde zu {new_email} geändert.", "Wenn Sie das nicht waren, stellen Sie {email} über diesen Link wieder her:"],
            button: "Adresse wiederherstellen",
            after: &["Ändern Sie danach am besten auch Ihr Passwort."],
        },
        (RECOVER_EMAIL, "fr") => Template {
            subject: "L'adresse e-mail de votre compte {app} a été modifiée",
            before: &["Bonjour,", "L'adresse e-mail de votre compte {app} est désormais {new_email}.", "Si vous n'êtes pas à l'origine de ce changement, rétablissez {email} avec ce lien :"],
            button: "Rétablir l'adresse",
            after: &["Pensez aussi à changer votre mot de passe."],
        },
        (RECOVER_EMAIL, "es") => Template {
            subject: "Se ha cambiado el correo electrónico de tu cuenta de {app}",
            before: &["Hola:", "El correo electrónico de tu cuenta de {app} ahora es {new_email}.", "Si no has sido tú, recupera {email} con este enlace:"],
            button: "Recuperar la dirección",
            after: &["Te recomendamos cambiar también tu contraseña."],
        },
        (RECOVER_EMAIL, _) => Template {
            subject: "Your sign-in email for {app} was changed",
            before: &["Hello,", "The email of your {app} account was changed to {new_email}.", "If you didn't make this change, follow this link to restore {email}:"],
            button: "Restore email",
            after: &["You may also want to change your password."],
        },
        _ => return None,
    };
    Some(t)
}

fn fill(text: &str, v: &TemplateValues<'_>) -> String {
    text.replace("{app}", v.app)
        .replace("{new_email}", v.new_email.unwrap_or_default())
        .replace("{email}", v.email)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The message for an action of `kind` (an [`oob_kind`]) in `lang` (one of [`LANGUAGES`]);
/// `None` for kinds that send no email.
pub fn render(
    kind: &str,
    lang: &'static str,
    to: &str,
    v: &TemplateValues<'_>,
) -> Option<OutgoingEmail> {
    let t = template(kind, lang)?;
    let before: Vec<String> = t.before.iter().map(|p| fill(p, v)).collect();
    let after: Vec<String> = t.after.iter().map(|p| fill(p, v)).collect();
    let mut text = before.join("\n\n");
    text.push_str("\n\n");
    text.push_str(v.link);
    text.push_str("\n\n");
    text.push_str(&after.join("\n\n"));
    text.push_str(&format!("\n\n-- \n{}\n", v.app));

    let paragraph = |p: &String| format!("<p>{}</p>\n", escape_html(p));
    let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
    html.extend(before.iter().map(paragraph));
    html.push_str(&format!(
        "<p><a href=\"{}\">{}</a></p>\n",
        escape_html(v.link),
        escape_html(t.button)
    ));
    html.extend(after.iter().map(paragraph));
    html.push_str("</body></html>\n");
    Some(OutgoingEmail {
        to: to.to_owned(),
        subject: fill(t.subject, v),
        text,
        html,
        language: lang,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> TemplateValues<'static> {
        TemplateValues {
            app: "Demo <App>",
            email: "old@example.com",
            new_email: Some("new@example.com"),
            link: "https://auth.example.com/__/auth/action?mode=x&oobCode=c&lang=en",
        }
    }

    #[test]
    fn locales_pick_a_built_in_language() {
        assert_eq!(language(Some("de-AT")), "de");
        assert_eq!(language(Some("fr_FR")), "fr");
        assert_eq!(language(Some("ES")), "es");
        assert_eq!(language(Some("ja")), "en");
        assert_eq!(language(None), "en");
    }

    #[test]
    fn every_kind_and_language_has_a_template_with_the_link() {
        for kind in [
            oob_kind::PASSWORD_RESET,
            oob_kind::VERIFY_EMAIL,
            oob_kind::EMAIL_SIGNIN,
            oob_kind::VERIFY_AND_CHANGE_EMAIL,
            oob_kind::RECOVER_EMAIL,
        ] {
            for lang in LANGUAGES {
                let m = render(kind, lang, "to@example.com", &values()).unwrap();
                assert!(m.text.contains(values().link), "{kind} {lang}");
                assert!(m.html.contains("oobCode=c&amp;lang=en"), "{kind} {lang}");
                assert!(!m.subject.contains('{'), "{kind} {lang}: {}", m.subject);
                assert!(!m.text.contains("{email}") && !m.text.contains("{new_email}"));
                assert_eq!(m.language, *lang);
            }
        }
        let m = render(oob_kind::VERIFY_AND_CHANGE_EMAIL, "en", "x", &values()).unwrap();
        assert!(m.text.contains("new@example.com") && m.text.contains("old@example.com"));
        // Names are escaped in HTML, kept in text.
        assert!(m.html.contains("Demo &lt;App&gt;") && m.text.contains("Demo <App>"));
        assert!(render("UNKNOWN", "en", "x", &values()).is_none());
    }
}
