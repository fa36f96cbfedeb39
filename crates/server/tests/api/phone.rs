//! Phone sign-in and SMS second factors through a recording SMS sender: codes that are
//! good once and expire, test numbers, temporary proofs, limits, and beforeSendSms.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use firekeeper_core::sms::{OutgoingSms, SmsSender};
use firekeeper_core::Mode;
use serde_json::{json, Value};

use super::mfa::V2;
use super::{boot, boot_full, claims, hook_server, message, Server, IT, PROJECT};

#[derive(Default)]
struct Phone {
    inbox: Mutex<Vec<OutgoingSms>>,
}

#[async_trait]
impl SmsSender for Phone {
    async fn send(&self, sms: &OutgoingSms) -> Result<(), String> {
        self.inbox.lock().unwrap().push(sms.clone());
        Ok(())
    }
}

impl Phone {
    fn last(&self) -> OutgoingSms {
        self.inbox.lock().unwrap().last().cloned().expect("a text")
    }
    fn count(&self) -> usize {
        self.inbox.lock().unwrap().len()
    }
}

async fn texting_server() -> (Server, Arc<Phone>) {
    let phone = Arc::new(Phone::default());
    let s = boot_full(
        Mode::Production,
        1 << 20,
        |_| {},
        None,
        Some(phone.clone() as Arc<dyn SmsSender>),
    )
    .await;
    // Switched off until the project says otherwise.
    let (_, b) = s.send_sms("+16505550100").await;
    assert!(
        message(&b).starts_with("OPERATION_NOT_ALLOWED : Phone sign-in is not enabled"),
        "{b}"
    );
    s.phone_settings(json!({"enabled": true})).await;
    (s, phone)
}

impl Server {
    /// `signIn.phoneNumber` of the v2 config.
    async fn phone_settings(&self, value: Value) {
        let (st, b) = self
            .raw(
                self.http
                    .patch(format!("{}{V2}/projects/{PROJECT}/config", self.base))
                    .query(&[("updateMask", "signIn.phoneNumber")])
                    .bearer_auth(&self.admin)
                    .json(&json!({"signIn": {"phoneNumber": value}})),
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }

    async fn send_sms(&self, phone: &str) -> (u16, Value) {
        self.post(
            &format!("{IT}/accounts:sendVerificationCode"),
            json!({"phoneNumber": phone, "recaptchaToken": "ignored"}),
        )
        .await
    }

    async fn phone_sign_in(&self, body: Value) -> (u16, Value) {
        self.post(&format!("{IT}/accounts:signInWithPhoneNumber"), body)
            .await
    }
}

#[tokio::test]
async fn phone_sign_in_with_texted_codes() {
    let (s, phone) = texting_server().await;
    let (_, b) = s.send_sms("12345").await;
    assert_eq!(message(&b), "INVALID_PHONE_NUMBER : Invalid format.");
    let (st, b) = s.send_sms("+1 650-555-3434").await;
    assert_eq!(st, 200, "{b}");
    let session = b["sessionInfo"].as_str().unwrap().to_owned();
    let text = phone.last();
    assert_eq!(text.to, "+16505553434");
    assert_eq!(text.kind, "SIGN_IN_OR_SIGN_UP");
    assert!(text.text.contains(&text.code), "{}", text.text);

    let (_, b) = s.phone_sign_in(json!({"code": text.code})).await;
    assert_eq!(message(&b), "MISSING_SESSION_INFO");
    let (_, b) = s.phone_sign_in(json!({"sessionInfo": session})).await;
    assert_eq!(message(&b), "MISSING_CODE");
    let wrong = if text.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (st, b) = s
        .phone_sign_in(json!({"sessionInfo": session, "code": wrong}))
        .await;
    assert_eq!((st, message(&b)), (400, "INVALID_CODE"));
    let (st, new_user) = s
        .phone_sign_in(json!({"sessionInfo": session, "code": text.code}))
        .await;
    assert_eq!(st, 200, "{new_user}");
    assert_eq!(new_user["isNewUser"], true);
    assert_eq!(new_user["phoneNumber"], "+16505553434");
    let c = claims(new_user["idToken"].as_str().unwrap());
    assert_eq!(c["firebase"]["sign_in_provider"], "phone");
    assert_eq!(c["phone_number"], "+16505553434");
    // A code is good once.
    let (_, b) = s
        .phone_sign_in(json!({"sessionInfo": session, "code": text.code}))
        .await;
    assert_eq!(message(&b), "INVALID_SESSION_INFO");

    // The same number again: the same user.
    let (_, b) = s.send_sms("+16505553434").await;
    let (st, again) = s
        .phone_sign_in(json!({"sessionInfo": b["sessionInfo"], "code": phone.last().code}))
        .await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["isNewUser"], false);
    assert_eq!(again["localId"], new_user["localId"]);

    // Codes expire.
    let (_, b) = s.send_sms("+16505550000").await;
    s.clock.advance_secs(601);
    let (_, b) = s
        .phone_sign_in(json!({"sessionInfo": b["sessionInfo"], "code": phone.last().code}))
        .await;
    assert_eq!(message(&b), "SESSION_EXPIRED");

    // Five wrong codes end a session: even the right one fails then.
    let (_, b) = s.send_sms("+16505550001").await;
    let right = phone.last().code;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let (_, e) = s
            .phone_sign_in(json!({"sessionInfo": b["sessionInfo"], "code": wrong}))
            .await;
        assert_eq!(message(&e), "INVALID_CODE");
    }
    let (_, e) = s
        .phone_sign_in(json!({"sessionInfo": b["sessionInfo"], "code": right}))
        .await;
    assert_eq!(message(&e), "INVALID_SESSION_INFO");

    // Linking a number another account has gives a proof, which signs in that account
    // but does not link.
    let other = s.sign_up("linker@example.com").await;
    let (_, b) = s.send_sms("+16505553434").await;
    let (st, proof) = s
        .phone_sign_in(
            json!({"sessionInfo": b["sessionInfo"], "code": phone.last().code,
            "idToken": other["idToken"]}),
        )
        .await;
    assert_eq!(st, 200, "{proof}");
    assert!(proof.get("idToken").is_none());
    assert_eq!(proof["temporaryProofExpiresIn"], "3600");
    // A proof lasts an hour, not a code's ten minutes.
    s.clock.advance_secs(660);
    let (_, b) = s
        .phone_sign_in(json!({"temporaryProof": proof["temporaryProof"],
            "phoneNumber": "+16505553434", "idToken": other["idToken"]}))
        .await;
    assert_eq!(message(&b), "PHONE_NUMBER_EXISTS");
    let (_, b) = s
        .phone_sign_in(json!({"temporaryProof": "forged", "phoneNumber": "+16505553434"}))
        .await;
    assert_eq!(message(&b), "INVALID_TEMPORARY_PROOF");
    let (st, owner) = s
        .phone_sign_in(json!({"temporaryProof": proof["temporaryProof"],
            "phoneNumber": "+16505553434"}))
        .await;
    assert_eq!(st, 200, "{owner}");
    assert_eq!(owner["localId"], new_user["localId"]);
    // A free number links to the signed-in user.
    let (_, b) = s.send_sms("+16505559999").await;
    let (st, linked) = s
        .phone_sign_in(
            json!({"sessionInfo": b["sessionInfo"], "code": phone.last().code,
            "idToken": other["idToken"]}),
        )
        .await;
    assert_eq!(st, 200, "{linked}");
    assert_eq!(linked["localId"], other["localId"]);
    let looked = s.user_by_email("linker@example.com").await.unwrap();
    assert_eq!(looked["phoneNumber"], "+16505559999");

    // Texts per number are limited.
    let before = phone.count();
    let mut limited = None;
    for _ in 0..6 {
        let (st, b) = s.send_sms("+16505551111").await;
        if st != 200 {
            limited = Some(message(&b).to_owned());
            break;
        }
    }
    assert_eq!(limited.as_deref(), Some("TOO_MANY_ATTEMPTS_TRY_LATER"));
    assert_eq!(phone.count() - before, 5);
}

#[tokio::test]
async fn test_numbers_senders_and_before_send_sms() {
    // Without a sender, production texts nobody, but test numbers work.
    let s = boot(Mode::Production).await;
    s.phone_settings(json!({"enabled": true})).await;
    let (st, b) = s.send_sms("+16505550100").await;
    assert_eq!(st, 400);
    assert!(
        message(&b).starts_with("OPERATION_NOT_ALLOWED : SMS delivery is not configured"),
        "{b}"
    );
    s.phone_settings(json!({"enabled": true, "testPhoneNumbers": {"+1 650-555-0100": "654321"}}))
        .await;
    let (st, b) = s.send_sms("+16505550100").await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .phone_sign_in(json!({"sessionInfo": b["sessionInfo"], "code": "654321"}))
        .await;
    assert_eq!(st, 200, "{b}");
    // A fixed code is no free guess: sessions for a test number are limited too.
    let mut limited = false;
    for _ in 0..5 {
        let (st, _) = s.send_sms("+16505550100").await;
        limited |= st != 200;
    }
    assert!(limited, "the sixth session in ten minutes is refused");

    // beforeSendSms sees the number and the kind; refusing it sends nothing.
    let (s, phone) = texting_server().await;
    let (hooks, calls) = hook_server().await;
    let (st, _) = s
        .set_hooks(json!({"beforeSendSms": {"functionUri": format!("{hooks}/deny")}}))
        .await;
    assert_eq!(st, 200);
    let (st, b) = s.send_sms("+16505550100").await;
    assert_eq!(st, 400);
    assert!(
        message(&b).starts_with("BLOCKING_FUNCTION_ERROR_RESPONSE"),
        "{b}"
    );
    assert_eq!(phone.count(), 0);
    let seen = calls.lock().unwrap().last().cloned().unwrap().1;
    assert_eq!(seen["event_type"], "beforeSendSms");
    assert_eq!(seen["phone_number"], "+16505550100");
    assert_eq!(seen["sms_type"], "SIGN_IN_OR_SIGN_UP");
}

#[tokio::test]
async fn sms_second_factor_enrollment_and_sign_in() {
    let (s, phone) = texting_server().await;
    s.enable_mfa(true, false).await;
    let (hooks, calls) = hook_server().await;
    let (st, _) = s
        .set_hooks(json!({"beforeSignIn": {"functionUri": format!("{hooks}/signin")}}))
        .await;
    assert_eq!(st, 200);
    let (uid, token) = s.verified_user("sms@example.com").await;
    let (_, b) = s.v2("mfaEnrollment:start", json!({"idToken": token})).await;
    assert_eq!(
        message(&b),
        "INVALID_ARGUMENT : ((Missing phoneEnrollmentInfo.))"
    );
    let (st, b) = s
        .v2(
            "mfaEnrollment:start",
            json!({"idToken": token,
            "phoneEnrollmentInfo": {"phoneNumber": "+15555550100", "recaptchaToken": "x"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(phone.last().kind, "MULTI_FACTOR_ENROLLMENT");
    let session = b["phoneSessionInfo"]["sessionInfo"].clone();
    let (_, e) = s
        .v2("mfaEnrollment:finalize", json!({"idToken": token}))
        .await;
    assert_eq!(
        message(&e),
        "INVALID_ARGUMENT : ((Missing phoneVerificationInfo.))"
    );
    let (st, enrolled) = s
        .v2(
            "mfaEnrollment:finalize",
            json!({"idToken": token,
            "phoneVerificationInfo": {"sessionInfo": session, "code": phone.last().code}}),
        )
        .await;
    assert_eq!(st, 200, "{enrolled}");
    let c = claims(enrolled["idToken"].as_str().unwrap());
    assert_eq!(c["firebase"]["sign_in_second_factor"], "phone");
    let (_, b) = s
        .v2(
            "mfaEnrollment:start",
            json!({"idToken": enrolled["idToken"],
            "phoneEnrollmentInfo": {"phoneNumber": "+15555550100"}}),
        )
        .await;
    assert_eq!(
        message(&b),
        "SECOND_FACTOR_EXISTS : Phone number already enrolled as second factor for this account."
    );

    calls.lock().unwrap().clear();
    let (st, first) = s.password_sign_in("sms@example.com").await;
    assert_eq!(st, 200);
    // beforeSignIn waits for the second factor.
    assert!(calls.lock().unwrap().is_empty());
    let pending = first["mfaPendingCredential"].clone();
    let enrollment = first["mfaInfo"][0]["mfaEnrollmentId"].clone();
    assert_eq!(first["mfaInfo"][0]["phoneInfo"], "+*******0100");
    let (st, b) = s
        .v2(
            "mfaSignIn:start",
            json!({"mfaPendingCredential": pending,
            "mfaEnrollmentId": enrollment, "phoneSignInInfo": {"recaptchaToken": "x"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let text = phone.last();
    assert_eq!(
        (text.kind, text.to.as_str()),
        ("MULTI_FACTOR_SIGN_IN", "+15555550100")
    );
    let sign_in_session = b["phoneResponseInfo"]["sessionInfo"].clone();
    // A session of another pending credential does not fit.
    let (_, other) = s.password_sign_in("sms@example.com").await;
    let (_, b) = s
        .v2(
            "mfaSignIn:finalize",
            json!({"mfaPendingCredential": other["mfaPendingCredential"],
            "phoneVerificationInfo": {"sessionInfo": sign_in_session, "code": text.code}}),
        )
        .await;
    assert_eq!(message(&b), "INVALID_SESSION_INFO");
    let (st, done) = s
        .v2(
            "mfaSignIn:finalize",
            json!({"mfaPendingCredential": pending,
            "phoneVerificationInfo": {"sessionInfo": sign_in_session, "code": text.code}}),
        )
        .await;
    assert_eq!(st, 200, "{done}");
    let c = claims(done["idToken"].as_str().unwrap());
    assert_eq!(c["firebase"]["sign_in_second_factor"], "phone");
    assert_eq!(c["firebase"]["second_factor_identifier"], enrollment);
    // beforeSignIn ran after the second factor, knowing it; its session claims count.
    let seen = calls.lock().unwrap().last().cloned().unwrap().1;
    assert_eq!(seen["sign_in_second_factor"], "phone");
    assert_eq!(seen["sign_in_method"], "password");
    assert_eq!(c["signedInVia"], "hook");
    assert_eq!(c["user_id"], uid.as_str());

    // The number of an account with SMS second factors is no first factor.
    let (st, _) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:update"),
            json!({"localId": uid, "phoneNumber": "+15555550177"}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, b) = s.send_sms("+15555550177").await;
    assert_eq!(
        message(&b),
        "UNSUPPORTED_FIRST_FACTOR : A phone number cannot be set as a first factor on an SMS based MFA user."
    );
}

#[tokio::test]
async fn emulator_lists_verification_codes() {
    let s = boot(Mode::Emulator).await;
    let (st, b) = s.send_sms("+16505550123").await;
    assert_eq!(st, 200, "{b}");
    let (st, listed) = s
        .raw(s.http.get(format!(
            "{}/emulator/v1/projects/{PROJECT}/verificationCodes",
            s.base
        )))
        .await;
    assert_eq!(st, 200);
    let entry = &listed["verificationCodes"][0];
    assert_eq!(entry["phoneNumber"], "+16505550123");
    assert_eq!(entry["sessionInfo"], b["sessionInfo"]);
    let (st, signed) = s
        .phone_sign_in(json!({"sessionInfo": b["sessionInfo"], "code": entry["code"]}))
        .await;
    assert_eq!(st, 200, "{signed}");
    // Pending credentials and SMS sessions are not email codes.
    let (_, oob) = s
        .raw(s.http.get(format!(
            "{}/emulator/v1/projects/{PROJECT}/oobCodes",
            s.base
        )))
        .await;
    assert_eq!(oob["oobCodes"], json!([]));
}
