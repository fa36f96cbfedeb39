//! Email actions end to end: codes, their emails, the action pages, and the emulator's
//! listing and landing. The mailer here records messages; the SMTP path is tested against
//! a real mail server in the interop suite.

use std::sync::{Arc, Mutex};

use firekeeper_core::email::{Mailer, OutgoingEmail};
use firekeeper_core::Mode;
use serde_json::{json, Value};

use super::{assert_envelope, boot_mailing, claims, hook_server, message, Server, IT, PROJECT};

#[derive(Default)]
struct Outbox(Mutex<Vec<OutgoingEmail>>);

#[async_trait::async_trait]
impl Mailer for Outbox {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), String> {
        if email.to.starts_with("bounce@") {
            return Err("550 mailbox unavailable".into());
        }
        self.0.lock().unwrap().push(email.clone());
        Ok(())
    }
}

impl Outbox {
    fn take(&self) -> Vec<OutgoingEmail> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The oldest message, waiting for it: reset emails go out after the answer.
    async fn next(&self) -> OutgoingEmail {
        for _ in 0..250 {
            {
                let mut mails = self.0.lock().unwrap();
                if !mails.is_empty() {
                    return mails.remove(0);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no email within 5 s");
    }
}

const ACTION_URL: &str = "https://auth.example.test/__/auth/action";

/// The link in an email's text part.
fn link_in(mail: &OutgoingEmail) -> String {
    mail.text
        .lines()
        .find(|l| l.starts_with("http"))
        .unwrap_or_else(|| panic!("no link in {}", mail.text))
        .to_owned()
}

/// A query parameter of a link.
fn param(link: &str, name: &str) -> Option<String> {
    let query = link.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn mailing_server(mode: Mode) -> (Server, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::default());
    let s = boot_mailing(
        mode,
        1 << 20,
        |c| c.email_actions.action_url = Some(ACTION_URL.to_owned()),
        Some(outbox.clone()),
    )
    .await;
    (s, outbox)
}

impl Server {
    async fn send_code(&self, body: Value) -> (u16, Value) {
        self.post(&format!("{IT}/accounts:sendOobCode"), body).await
    }

    /// A password-reset code an admin asked for (no email is sent).
    async fn reset_code(&self, email: &str) -> String {
        let (st, b) = self
            .admin_post(
                &format!("{IT}/projects/{PROJECT}/accounts:sendOobCode"),
                json!({"requestType": "PASSWORD_RESET", "email": email, "returnOobLink": true}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        b["oobCode"].as_str().unwrap().to_owned()
    }

    async fn sign_in_with(&self, email: &str, password: &str) -> (u16, Value) {
        self.post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": email, "password": password, "returnSecureToken": true}),
        )
        .await
    }
}

#[tokio::test]
async fn password_reset_by_email_revokes_and_is_single_use() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    let user = s.sign_up("reset@example.com").await;
    let old_refresh = user["refreshToken"].as_str().unwrap().to_owned();
    s.clock.advance_secs(5);

    // The reset email, in the caller's language, with a link to the action page.
    let res = s
        .http
        .post(format!("{}{IT}/accounts:sendOobCode", s.base))
        .query(&[("key", &s.key)])
        .header("X-Firebase-Locale", "de-DE")
        .json(&json!({"requestType": "PASSWORD_RESET", "email": "Reset@Example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], "reset@example.com");
    assert!(body.get("oobCode").is_none(), "{body}");
    let mail = outbox.next().await;
    assert_eq!(mail.to, "reset@example.com");
    assert!(mail.subject.contains("Passwort"), "{}", mail.subject);
    let mails = [mail];
    let link = link_in(&mails[0]);
    assert!(link.starts_with(&format!("{ACTION_URL}?mode=resetPassword&oobCode=")));
    assert_eq!(param(&link, "apiKey").as_deref(), Some(s.key.as_str()));
    assert_eq!(param(&link, "lang").as_deref(), Some("de"));
    let code = param(&link, "oobCode").unwrap();
    assert_eq!(code.len(), 54);

    // Inspecting does not use the code up.
    let reset = format!("{IT}/accounts:resetPassword");
    for _ in 0..2 {
        let (st, b) = s.post(&reset, json!({"oobCode": code})).await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["requestType"], "PASSWORD_RESET");
        assert_eq!(b["email"], "reset@example.com");
    }
    // A weak password changes nothing and leaves the code usable.
    let (st, b) = s
        .post(&reset, json!({"oobCode": code, "newPassword": "short"}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "WEAK_PASSWORD : Password should be at least 6 characters"
    );
    let (st, b) = s
        .post(
            &reset,
            json!({"oobCode": code, "newPassword": "brand-new-pw"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["kind"], "identitytoolkit#ResetPasswordResponse");
    assert_eq!(b["email"], "reset@example.com");

    // The old password and the old session are gone; the new password works.
    let (st, b) = s.sign_in_with("reset@example.com", "secret-pw").await;
    assert_eq!(st, 400);
    assert_eq!(message(&b), "INVALID_LOGIN_CREDENTIALS");
    let (st, _) = s.sign_in_with("reset@example.com", "brand-new-pw").await;
    assert_eq!(st, 200);
    let (st, b) = s.refresh(&old_refresh).await;
    assert_eq!(st, 400);
    assert_eq!(message(&b), "TOKEN_EXPIRED");
    let stored = s.user_by_email("reset@example.com").await.unwrap();
    assert_eq!(stored["emailVerified"], true);

    // Used once: refused for good, and a code made before the change too.
    let (st, b) = s
        .post(
            &reset,
            json!({"oobCode": code, "newPassword": "another-pw"}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(message(&b), "INVALID_OOB_CODE");
    let first = s.reset_code("reset@example.com").await;
    s.clock.advance_secs(1);
    let second = s.reset_code("reset@example.com").await;
    assert!(outbox.take().is_empty(), "admin links are not mailed");
    let (st, _) = s
        .post(
            &reset,
            json!({"oobCode": second, "newPassword": "second-pw"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, b) = s
        .post(&reset, json!({"oobCode": first, "newPassword": "first-pw"}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(message(&b), "INVALID_OOB_CODE");

    // Codes expire after an hour.
    let late = s.reset_code("reset@example.com").await;
    s.clock.advance_secs(3601);
    let (st, b) = s
        .post(&reset, json!({"oobCode": late, "newPassword": "late-pw-1"}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(message(&b), "EXPIRED_OOB_CODE");
    // Expired codes are pruned.
    assert!(s.auth.prune_history(30).await.unwrap() >= 1);
    let (_, b) = s.post(&reset, json!({"oobCode": late})).await;
    assert_eq!(message(&b), "INVALID_OOB_CODE");
}

#[tokio::test]
async fn verification_change_and_recovery_of_emails() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    let user = s.sign_up("verify@example.com").await;
    let id_token = user["idToken"].as_str().unwrap().to_owned();
    let update = format!("{IT}/accounts:update");

    let (st, b) = s
        .send_code(json!({"requestType": "VERIFY_EMAIL", "idToken": id_token}))
        .await;
    assert_eq!(st, 200, "{b}");
    let mail = outbox.next().await;
    assert_eq!(mail.to, "verify@example.com");
    assert!(mail.subject.starts_with("Verify your email"));
    let code = param(&link_in(&mail), "oobCode").unwrap();
    assert_eq!(
        param(&link_in(&mail), "mode").as_deref(),
        Some("verifyEmail")
    );
    let (st, b) = s.post(&update, json!({"oobCode": code})).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["emailVerified"], true);
    assert_eq!(
        s.user_by_email("verify@example.com").await.unwrap()["emailVerified"],
        true
    );
    let (st, b) = s.post(&update, json!({"oobCode": code})).await;
    assert_eq!(st, 400);
    assert_eq!(message(&b), "INVALID_OOB_CODE");

    // Changing the email: a taken address is refused before anything is sent.
    s.sign_up("taken@example.com").await;
    let (st, b) = s
        .send_code(
            json!({"requestType": "VERIFY_AND_CHANGE_EMAIL", "idToken": id_token,
            "newEmail": "taken@example.com"}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "EMAIL_EXISTS"));
    let (st, b) = s
        .send_code(json!({"requestType": "VERIFY_AND_CHANGE_EMAIL", "idToken": id_token}))
        .await;
    assert_eq!((st, message(&b)), (400, "MISSING_NEW_EMAIL"));
    let (st, b) = s
        .send_code(
            json!({"requestType": "VERIFY_AND_CHANGE_EMAIL", "idToken": id_token,
            "newEmail": "moved@example.com"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let mail = outbox.next().await;
    assert_eq!(
        mail.to, "moved@example.com",
        "the new address proves itself"
    );
    let code = param(&link_in(&mail), "oobCode").unwrap();
    let (_, b) = s
        .post(
            &format!("{IT}/accounts:resetPassword"),
            json!({"oobCode": code}),
        )
        .await;
    assert_eq!(b["requestType"], "VERIFY_AND_CHANGE_EMAIL");
    assert_eq!(b["email"], "verify@example.com");
    assert_eq!(b["newEmail"], "moved@example.com");
    s.clock.advance_secs(2);
    let (st, b) = s.post(&update, json!({"oobCode": code})).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["email"], "moved@example.com");
    let moved = s.user_by_email("moved@example.com").await.unwrap();
    assert_eq!(moved["emailVerified"], true);
    assert!(s.user_by_email("verify@example.com").await.is_none());
    // A new sign-in email ends the other sessions (production).
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:lookup"),
            json!({"idToken": id_token}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "TOKEN_EXPIRED"));

    // The old address is told, and can undo the change.
    let mail = outbox.next().await;
    assert_eq!(mail.to, "verify@example.com");
    assert!(mail.text.contains("moved@example.com"), "{}", mail.text);
    let link = link_in(&mail);
    assert_eq!(param(&link, "mode").as_deref(), Some("recoverEmail"));
    let recover = param(&link, "oobCode").unwrap();
    let (st, b) = s.post(&update, json!({"oobCode": recover})).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["email"], "verify@example.com");
    assert!(s.user_by_email("verify@example.com").await.is_some());
    assert!(s.user_by_email("moved@example.com").await.is_none());
}

#[tokio::test]
async fn sign_in_links_create_or_sign_in_the_owner() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    let link_sign_in = format!("{IT}/accounts:signInWithEmailLink");
    let (st, b) = s
        .send_code(
            json!({"requestType": "EMAIL_SIGNIN", "email": "link@example.com",
            "continueUrl": "https://evil.example/steal"}),
        )
        .await;
    assert_eq!(
        (st, message(&b)),
        (
            400,
            "UNAUTHORIZED_DOMAIN : Domain not allowlisted by project"
        )
    );
    let (st, b) = s
        .send_code(
            json!({"requestType": "EMAIL_SIGNIN", "email": "link@example.com",
            "continueUrl": "not a url"}),
        )
        .await;
    assert_eq!(
        (st, message(&b)),
        (
            400,
            "INVALID_CONTINUE_URI : ((expected an absolute URI with valid scheme and host))"
        )
    );
    assert!(outbox.take().is_empty());
    let send = || {
        s.send_code(
            json!({"requestType": "EMAIL_SIGNIN", "email": "link@example.com",
            "continueUrl": "http://localhost:5000/finish", "canHandleCodeInApp": true}),
        )
    };
    let (st, b) = send().await;
    assert_eq!(st, 200, "{b}");
    let link = link_in(&outbox.next().await);
    assert_eq!(param(&link, "mode").as_deref(), Some("signIn"));
    assert_eq!(
        param(&link, "continueUrl").as_deref(),
        Some("http://localhost:5000/finish")
    );
    let code = param(&link, "oobCode").unwrap();

    let (st, b) = s
        .post(
            &link_sign_in,
            json!({"email": "other@example.com", "oobCode": code}),
        )
        .await;
    assert_eq!(
        (st, message(&b)),
        (
            400,
            "INVALID_EMAIL : The email provided does not match the sign-in email address."
        )
    );
    let (st, b) = s
        .post(
            &link_sign_in,
            json!({"email": "link@example.com", "oobCode": code}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["kind"], "identitytoolkit#EmailLinkSigninResponse");
    assert_eq!(b["isNewUser"], true);
    let uid = b["localId"].as_str().unwrap().to_owned();
    let c = claims(b["idToken"].as_str().unwrap());
    assert_eq!(c["email_verified"], true);
    assert_eq!(c["firebase"]["sign_in_provider"], "password");
    let (st, b) = s
        .post(
            &link_sign_in,
            json!({"email": "link@example.com", "oobCode": code}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "INVALID_OOB_CODE"));

    // A second link signs the same user in.
    send().await;
    let code = param(&link_in(&outbox.next().await), "oobCode").unwrap();
    let (st, b) = s
        .post(
            &link_sign_in,
            json!({"email": "link@example.com", "oobCode": code}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["isNewUser"], false);
    assert_eq!(b["localId"], uid);

    // How the email signs in.
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:createAuthUri"),
            json!({"identifier": "link@example.com", "continueUri": "http://localhost/"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // Production protects against email enumeration by default: no answer about the email.
    assert!(
        b.get("registered").is_none() && b["sessionId"].is_string(),
        "{b}"
    );
}

#[tokio::test]
async fn request_errors_are_precise() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    let user = s.sign_up("errors@example.com").await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "MISSING_REQ_TYPE"),
        (json!({"requestType": "PASSWORD_RESET"}), "MISSING_EMAIL"),
        (
            json!({"requestType": "PASSWORD_RESET", "email": "not-an-email"}),
            "INVALID_EMAIL",
        ),
        (json!({"requestType": "VERIFY_EMAIL"}), "MISSING_ID_TOKEN"),
        (
            json!({"requestType": "VERIFY_EMAIL", "idToken": "garbage"}),
            "INVALID_ID_TOKEN",
        ),
        (
            json!({"requestType": "PASSWORD_RESET", "email": "errors@example.com", "returnOobLink": true}),
            "INSUFFICIENT_PERMISSION",
        ),
    ];
    for (body, want) in cases {
        let (st, b) = s.send_code(body.clone()).await;
        assert_eq!(st, 400, "{body} -> {b}");
        assert_eq!(message(&b), want, "{body}");
        assert_envelope(st, &b);
    }
    // Unknown emails get the same answer as known ones (enumeration protection), and no mail.
    let (st, b) = s
        .send_code(json!({"requestType": "PASSWORD_RESET", "email": "nobody@example.com"}))
        .await;
    assert_eq!((st, b["email"].as_str()), (200, Some("nobody@example.com")));
    assert!(outbox.take().is_empty());
    // A mail server refusing the message is a 500 with nothing leaked...
    let bounce = s.sign_up("bounce@example.com").await;
    let (st, b) = s
        .send_code(json!({"requestType": "VERIFY_EMAIL", "idToken": bounce["idToken"]}))
        .await;
    assert_eq!((st, message(&b)), (500, "INTERNAL_ERROR"));
    // ...except where the answer must not tell known addresses from unknown ones: a reset
    // email goes out after the answer.
    let (st, b) = s
        .send_code(json!({"requestType": "PASSWORD_RESET", "email": "bounce@example.com"}))
        .await;
    assert_eq!((st, b["email"].as_str()), (200, Some("bounce@example.com")));
    for (body, want) in [
        (json!({}), "MISSING_OOB_CODE"),
        (json!({"oobCode": "nope"}), "INVALID_OOB_CODE"),
    ] {
        let (st, b) = s.post(&format!("{IT}/accounts:resetPassword"), body).await;
        assert_eq!((st, message(&b)), (400, want));
    }
    for (body, want) in [
        (json!({"oobCode": "x"}), "MISSING_EMAIL"),
        (json!({"email": "a@b.co"}), "MISSING_OOB_CODE"),
        (
            json!({"email": "a@b.co", "oobCode": "x"}),
            "INVALID_OOB_CODE",
        ),
    ] {
        let (st, b) = s
            .post(&format!("{IT}/accounts:signInWithEmailLink"), body)
            .await;
        assert_eq!((st, message(&b)), (400, want));
    }
    // A verification code is not a sign-in link, nor a reset code.
    let (_, b) = s
        .send_code(json!({"requestType": "VERIFY_EMAIL", "idToken": user["idToken"]}))
        .await;
    assert_eq!(b["email"], "errors@example.com");
    let code = param(&link_in(&outbox.next().await), "oobCode").unwrap();
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithEmailLink"),
            json!({"email": "errors@example.com", "oobCode": code}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "INVALID_OOB_CODE"));
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:resetPassword"),
            json!({"oobCode": code, "newPassword": "whatever-1"}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "INVALID_OOB_CODE"));

    // Without a mail server, production refuses to send (and says why).
    let bare = super::boot(Mode::Production).await;
    bare.sign_up("bare@example.com").await;
    let (st, b) = bare
        .send_code(json!({"requestType": "PASSWORD_RESET", "email": "bare@example.com"}))
        .await;
    assert_eq!(st, 400);
    assert!(message(&b).starts_with("OPERATION_NOT_ALLOWED : Email delivery is not configured"));
    // An admin may still ask for the link, which points at the server it called.
    let (st, b) = bare
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:sendOobCode"),
            json!({"requestType": "PASSWORD_RESET", "email": "bare@example.com", "returnOobLink": true}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(b["oobLink"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/__/auth/action?mode=resetPassword", bare.base)));
}

#[tokio::test]
async fn before_send_email_can_stop_an_email() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    let (hooks, calls) = hook_server().await;
    s.sign_up("hooked@example.com").await;
    let (st, b) = s
        .set_hooks(json!({"beforeSendEmail": {"functionUri": format!("{hooks}/deny")}}))
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .send_code(json!({"requestType": "PASSWORD_RESET", "email": "hooked@example.com"}))
        .await;
    assert_eq!(st, 400);
    assert!(message(&b).starts_with("BLOCKING_FUNCTION_ERROR_RESPONSE : HTTP Cloud Function"));
    assert!(outbox.take().is_empty(), "a refused email is not sent");
    let (name, jwt) = calls.lock().unwrap().pop().unwrap();
    assert_eq!(name, "deny");
    assert_eq!(jwt["event_type"], "beforeSendEmail");
    assert_eq!(jwt["email"], "hooked@example.com");
    assert_eq!(jwt["email_type"], "PASSWORD_RESET");
    assert!(jwt.get("sub").is_none() && jwt.get("user_record").is_none());

    s.set_hooks(json!({"beforeSendEmail": {"functionUri": format!("{hooks}/allow")}}))
        .await;
    let (st, _) = s
        .send_code(json!({"requestType": "EMAIL_SIGNIN", "email": "new@example.com"}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(outbox.take().len(), 1);
    let (_, jwt) = calls.lock().unwrap().pop().unwrap();
    assert_eq!(jwt["email_type"], "EMAIL_SIGN_IN");
    // Verification emails do not call it (blocking-functions.md §2).
    let user = s.sign_up("plain@example.com").await;
    s.send_code(json!({"requestType": "VERIFY_EMAIL", "idToken": user["idToken"]}))
        .await;
    assert_eq!(outbox.take().len(), 1);
    assert!(calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_action_page_resets_a_password_in_a_browser() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    s.sign_up("page@example.com").await;
    s.send_code(
        json!({"requestType": "PASSWORD_RESET", "email": "page@example.com",
        "continueUrl": "http://localhost/app"}),
    )
    .await;
    let link = link_in(&outbox.next().await);
    // The emailed link opens the same page on this server.
    let local = link.replace("https://auth.example.test", &s.base);
    let res = s.http.get(&local).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"newPassword\""), "{html}");
    assert!(!html.contains("<script"), "{html}");
    // Opening the page changes nothing: the password is still the old one.
    assert_eq!(s.sign_in_with("page@example.com", "secret-pw").await.0, 200);

    let code = param(&link, "oobCode").unwrap();
    let submit = |password: &'static str| {
        s.http
            .post(format!("{}/__/auth/action", s.base))
            .form(&[
                ("mode", "resetPassword"),
                ("oobCode", code.as_str()),
                ("continueUrl", "http://localhost/app"),
                ("newPassword", password),
            ])
            .send()
    };
    let res = submit("tiny").await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("at least 6 characters"));
    let res = submit("page-new-pw").await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("href=\"http://localhost/app\""), "{html}");
    assert_eq!(
        s.sign_in_with("page@example.com", "page-new-pw").await.0,
        200
    );
    let res = submit("page-newer-pw").await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("already been used"));
    let res = s.http.get(&local).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn emulator_lists_codes_and_lands_links() {
    let s = super::boot(Mode::Emulator).await;
    let user = s.sign_up("emu@example.com").await;
    let (st, b) = s
        .send_code(
            json!({"requestType": "PASSWORD_RESET", "email": "emu@example.com",
            "continueUrl": "http://localhost/done"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // The listing is in creation order.
    s.clock.advance_secs(1);
    s.send_code(json!({"requestType": "VERIFY_EMAIL", "idToken": user["idToken"]}))
        .await;
    s.clock.advance_secs(1);
    s.send_code(
        json!({"requestType": "EMAIL_SIGNIN", "email": "emu-link@example.com",
        "continueUrl": "http://localhost/finish?x=1"}),
    )
    .await;
    let listing = format!("{}/emulator/v1/projects/{PROJECT}/oobCodes", s.base);
    let (_, b) = s.raw(s.http.get(&listing)).await;
    let codes = b["oobCodes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 3, "{b}");
    assert_eq!(codes[0]["requestType"], "PASSWORD_RESET");
    assert_eq!(codes[0]["email"], "emu@example.com");
    let link = codes[0]["oobLink"].as_str().unwrap();
    assert!(
        link.starts_with(&format!(
            "{}/emulator/action?mode=resetPassword&oobCode=",
            s.base
        )),
        "{link}"
    );
    assert_eq!(param(link, "apiKey").as_deref(), Some("fake-api-key"));
    assert_eq!(
        param(link, "oobCode"),
        codes[0]["oobCode"].as_str().map(str::to_owned)
    );

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The landing needs the new password in the link.
    let (st, b) = s.raw(no_redirects.get(link)).await;
    assert_eq!(st, 400);
    assert_eq!(
        b["authEmulator"]["error"],
        "missing newPassword query parameter"
    );
    let res = no_redirects
        .get(format!("{link}&newPassword=emu-new-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "http://localhost/done");
    assert_eq!(s.sign_in_with("emu@example.com", "emu-new-pw").await.0, 200);
    let (st, b) = s
        .raw(no_redirects.get(format!("{link}&newPassword=emu-newer-pw")))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        b["authEmulator"]["error"],
        "Your request to reset your password has expired or the link has already been used."
    );
    // Verification without a continue URL answers in JSON.
    let verify = codes[1]["oobLink"].as_str().unwrap();
    let (st, b) = s.raw(no_redirects.get(verify)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["authEmulator"]["email"], "emu@example.com");
    assert_eq!(
        s.user_by_email("emu@example.com").await.unwrap()["emailVerified"],
        true
    );
    // A sign-in link sends the browser on to the app, parameters and all.
    let sign_in = codes[2]["oobLink"].as_str().unwrap();
    let res = no_redirects.get(sign_in).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://localhost/finish?x=1&"),
        "{location}"
    );
    assert_eq!(
        param(&location, "oobCode"),
        codes[2]["oobCode"].as_str().map(str::to_owned)
    );
    // Redeemed codes leave the listing; the sign-in link is still pending.
    let (_, b) = s.raw(s.http.get(&listing)).await;
    let left = b["oobCodes"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{b}");
    assert_eq!(left[0]["requestType"], "EMAIL_SIGNIN");
    // Errors of the landing.
    let (st, b) = s
        .raw(no_redirects.get(format!(
            "{}/emulator/action?mode=verifyEmail&oobCode=x",
            s.base
        )))
        .await;
    assert_eq!(
        (st, b["authEmulator"]["error"].as_str()),
        (400, Some("missing apiKey query parameter"))
    );
    let (st, b) = s
        .raw(no_redirects.get(format!(
            "{}/emulator/action?mode=dance&oobCode=x&apiKey=k",
            s.base
        )))
        .await;
    assert_eq!(
        (st, b["authEmulator"]["error"].as_str()),
        (400, Some("Invalid mode"))
    );

    // Emulator mode answers createAuthUri in full (no enumeration protection).
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:createAuthUri"),
            json!({"identifier": "emu@example.com", "continueUri": "http://localhost/"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["registered"], true);
    assert_eq!(b["signinMethods"], json!(["password"]));
    assert_eq!(b["sessionId"].as_str().unwrap().len(), 27);
    let (_, b) = s
        .post(
            &format!("{IT}/accounts:createAuthUri"),
            json!({"identifier": "nobody@example.com", "continueUri": "http://localhost/"}),
        )
        .await;
    assert_eq!(b["registered"], false);
    for (body, want) in [
        (
            json!({"continueUri": "http://localhost/"}),
            "MISSING_IDENTIFIER",
        ),
        (json!({"identifier": "a@b.co"}), "MISSING_CONTINUE_URI"),
        (
            json!({"identifier": "nope", "continueUri": "http://localhost/"}),
            "INVALID_IDENTIFIER",
        ),
    ] {
        let (st, b) = s.post(&format!("{IT}/accounts:createAuthUri"), body).await;
        assert_eq!((st, message(&b)), (400, want));
    }
}

#[tokio::test]
async fn links_cannot_be_bent_to_other_hosts_or_replayed_after_recovery() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    // Forms a browser reads as another host than the authorized one.
    for sneaky in [
        "https://evil.example\\@localhost/",
        "https://evil.example@localhost/",
        "https://evil.example\\.localhost/",
    ] {
        let (st, b) = s
            .send_code(
                json!({"requestType": "EMAIL_SIGNIN", "email": "own@example.com",
                "continueUrl": sneaky}),
            )
            .await;
        assert_eq!(
            (st, message(&b)),
            (
                400,
                "UNAUTHORIZED_DOMAIN : Domain not allowlisted by project"
            ),
            "{sneaky}"
        );
    }
    // A link's own continueUrl is not followed, only the one checked when it was made.
    s.send_code(
        json!({"requestType": "EMAIL_SIGNIN", "email": "own@example.com",
        "continueUrl": "http://localhost/finish"}),
    )
    .await;
    let code = param(&link_in(&outbox.next().await), "oobCode").unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects
        .get(format!("{}/__/auth/action", s.base))
        .query(&[
            ("mode", "signIn"),
            ("oobCode", code.as_str()),
            ("continueUrl", "https://phish.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("http://localhost/finish?"),
        "{location}"
    );

    // Someone holding the victim's session prepares two email changes to their address.
    let victim = s.sign_up("victim@example.com").await;
    let id_token = victim["idToken"].as_str().unwrap().to_owned();
    let mut change_codes = Vec::new();
    for to in ["thief1@example.com", "thief2@example.com"] {
        let (st, b) = s
            .send_code(
                json!({"requestType": "VERIFY_AND_CHANGE_EMAIL", "idToken": id_token,
                "newEmail": to}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        change_codes.push(param(&link_in(&outbox.next().await), "oobCode").unwrap());
    }
    let update = format!("{IT}/accounts:update");
    let (st, _) = s.post(&update, json!({"oobCode": change_codes[0]})).await;
    assert_eq!(st, 200);
    // The owner undoes it from the recovery email...
    let recover = param(&link_in(&outbox.next().await), "oobCode").unwrap();
    s.clock.advance_secs(2);
    let (st, b) = s.post(&update, json!({"oobCode": recover})).await;
    assert_eq!((st, b["email"].as_str()), (200, Some("victim@example.com")));
    // ...and the second prepared change is dead.
    let (st, b) = s.post(&update, json!({"oobCode": change_codes[1]})).await;
    assert_eq!((st, message(&b)), (400, "INVALID_OOB_CODE"));
    assert!(s.user_by_email("victim@example.com").await.is_some());
}

#[tokio::test]
async fn an_email_link_takes_the_account_from_whoever_registered_the_address() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    let link_sign_in = format!("{IT}/accounts:signInWithEmailLink");
    // Someone registers the address first, with a password; it stays unverified.
    let squatter = s.sign_up("owner@example.com").await;
    s.clock.advance_secs(2);
    s.send_code(json!({"requestType": "EMAIL_SIGNIN", "email": "owner@example.com"}))
        .await;
    let code = param(&link_in(&outbox.next().await), "oobCode").unwrap();
    let (st, b) = s
        .post(
            &link_sign_in,
            json!({"email": "owner@example.com", "oobCode": code}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["localId"], squatter["localId"]);
    // The mailbox's owner holds the account now: the squatter's password and session are gone.
    let (st, b) = s.sign_in_with("owner@example.com", "secret-pw").await;
    assert_eq!((st, message(&b)), (400, "INVALID_LOGIN_CREDENTIALS"));
    let (st, b) = s.refresh(squatter["refreshToken"].as_str().unwrap()).await;
    assert_eq!((st, message(&b)), (400, "TOKEN_EXPIRED"));
    let (st, b) = s
        .refresh(
            link_sign_in_refresh_token(&s, &link_sign_in, &outbox)
                .await
                .as_str(),
        )
        .await;
    assert_eq!(st, 200, "{b}");

    // A verified account keeps its password.
    let kept = s.sign_up("kept@example.com").await;
    s.admin_post(
        &format!("{IT}/projects/{PROJECT}/accounts:update"),
        json!({"localId": kept["localId"], "emailVerified": true}),
    )
    .await;
    s.send_code(json!({"requestType": "EMAIL_SIGNIN", "email": "kept@example.com"}))
        .await;
    let code = param(&link_in(&outbox.next().await), "oobCode").unwrap();
    let (st, _) = s
        .post(
            &link_sign_in,
            json!({"email": "kept@example.com", "oobCode": code}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(s.sign_in_with("kept@example.com", "secret-pw").await.0, 200);
}

/// A fresh email-link sign-in of owner@example.com; its refresh token.
async fn link_sign_in_refresh_token(s: &Server, link_sign_in: &str, outbox: &Outbox) -> String {
    s.send_code(json!({"requestType": "EMAIL_SIGNIN", "email": "owner@example.com"}))
        .await;
    let code = param(&link_in(&outbox.next().await), "oobCode").unwrap();
    let (st, b) = s
        .post(
            link_sign_in,
            json!({"email": "owner@example.com", "oobCode": code}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    b["refreshToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn emails_are_limited_per_recipient() {
    let (s, outbox) = mailing_server(Mode::Production).await;
    s.sign_up("busy@example.com").await;
    let reset =
        |email: &'static str| s.send_code(json!({"requestType": "PASSWORD_RESET", "email": email}));
    for _ in 0..5 {
        assert_eq!(reset("busy@example.com").await.0, 200);
    }
    let (st, b) = reset("busy@example.com").await;
    assert_eq!((st, message(&b)), (400, "TOO_MANY_ATTEMPTS_TRY_LATER"));
    // Admin links are not emails; other recipients are not held up.
    s.reset_code("busy@example.com").await;
    s.sign_up("calm@example.com").await;
    assert_eq!(reset("calm@example.com").await.0, 200);
    // The window slides.
    s.clock.advance_secs(601);
    assert_eq!(reset("busy@example.com").await.0, 200);
    // Sent in the background (email enumeration protection), but sent.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while outbox.0.lock().unwrap().len() < 7 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(outbox.take().len(), 7);
}
