//! Second factors: TOTP enrollment and sign-in with codes computed here from the shared
//! secret, pending credentials that expire and are good once, the second factor in the
//! tokens, and the settings that switch it on.

use firekeeper_core::{totp, Clock, Mode};
use serde_json::{json, Value};

use super::{boot, claims, message, Server, IT, PROJECT};

pub(super) const V2: &str = "/identitytoolkit.googleapis.com/v2";

impl Server {
    /// Multi-factor settings as the Node Admin SDK's `updateProjectConfig` sends them.
    pub(super) async fn enable_mfa(&self, sms: bool, totp: bool) {
        let providers: Vec<&str> = if sms { vec!["PHONE_SMS"] } else { vec![] };
        let configs = if totp {
            json!([{"state": "ENABLED", "totpProviderConfig": {"adjacentIntervals": 1}}])
        } else {
            json!([])
        };
        let (st, b) = self
            .raw(
                self.http
                    .patch(format!("{}{V2}/projects/{PROJECT}/config", self.base))
                    .query(&[(
                        "updateMask",
                        "mfa.state,mfa.enabledProviders,mfa.providerConfigs",
                    )])
                    .bearer_auth(&self.admin)
                    .json(
                        &json!({"mfa": {"state": "ENABLED", "enabledProviders": providers,
                        "providerConfigs": configs}}),
                    ),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["mfa"]["state"], "ENABLED");
    }

    pub(super) async fn v2(&self, op: &str, body: Value) -> (u16, Value) {
        self.post(&format!("{V2}/accounts/{op}"), body).await
    }

    /// A signed-up user with a verified email: `(uid, idToken)`.
    pub(super) async fn verified_user(&self, email: &str) -> (String, String) {
        let b = self.sign_up(email).await;
        let uid = b["localId"].as_str().unwrap().to_owned();
        let (st, _) = self
            .admin_post(
                &format!("{IT}/projects/{PROJECT}/accounts:update"),
                json!({"localId": uid, "emailVerified": true}),
            )
            .await;
        assert_eq!(st, 200);
        let (st, b) = self.password_sign_in(email).await;
        assert_eq!(st, 200, "{b}");
        (uid, b["idToken"].as_str().unwrap().to_owned())
    }

    pub(super) async fn password_sign_in(&self, email: &str) -> (u16, Value) {
        self.post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": email, "password": "secret-pw", "returnSecureToken": true}),
        )
        .await
    }

    fn totp_now(&self, secret: &[u8]) -> String {
        let now = self.clock.now_ms() / 1000;
        totp::code_at_step(secret, totp::step_at(now))
    }
}

fn secret_of(start: &Value) -> Vec<u8> {
    let key = start["totpSessionInfo"]["sharedSecretKey"]
        .as_str()
        .unwrap();
    data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap()
}

fn second_factor(token: &str) -> (Value, Value) {
    let c = claims(token);
    (
        c["firebase"]["sign_in_second_factor"].clone(),
        c["firebase"]["second_factor_identifier"].clone(),
    )
}

#[tokio::test]
async fn totp_enrollment_and_second_factor_sign_in() {
    let s = boot(Mode::Production).await;
    let (uid, token) = s.verified_user("totp@example.com").await;

    // Production has second factors off until configured.
    let (st, b) = s
        .v2(
            "mfaEnrollment:start",
            json!({"idToken": token, "totpEnrollmentInfo": {}}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "OPERATION_NOT_ALLOWED : TOTP based MFA not enabled."
    );
    s.enable_mfa(false, true).await;
    let (_, b) = s
        .v2(
            "mfaEnrollment:start",
            json!({"idToken": token, "phoneEnrollmentInfo": {"phoneNumber": "+15555550100"}}),
        )
        .await;
    assert_eq!(
        message(&b),
        "OPERATION_NOT_ALLOWED : SMS based MFA not enabled."
    );

    // An unverified email may not enroll.
    let unverified = s.sign_up("unverified@example.com").await;
    let (st, b) = s
        .v2(
            "mfaEnrollment:start",
            json!({"idToken": unverified["idToken"], "totpEnrollmentInfo": {}}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "UNVERIFIED_EMAIL : Need to verify email first before enrolling second factors."
    );
    let (_, b) = s
        .v2("mfaEnrollment:start", json!({"totpEnrollmentInfo": {}}))
        .await;
    assert_eq!(message(&b), "MISSING_ID_TOKEN");

    // Enrollment: the secret as authenticator apps take it.
    let (st, start) = s
        .v2(
            "mfaEnrollment:start",
            json!({"idToken": token, "totpEnrollmentInfo": {}}),
        )
        .await;
    assert_eq!(st, 200, "{start}");
    let info = &start["totpSessionInfo"];
    assert_eq!(info["verificationCodeLength"], 6);
    assert_eq!(info["hashingAlgorithm"], "SHA1");
    assert_eq!(info["periodSec"], 30);
    assert!(info["finalizeEnrollmentTime"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let secret = secret_of(&start);
    assert_eq!(secret.len(), 20);
    let session = info["sessionInfo"].as_str().unwrap();
    let finalize = |code: String, session: &str| {
        s.v2(
            "mfaEnrollment:finalize",
            json!({"idToken": token, "displayName": "phone app",
                "totpVerificationInfo": {"sessionInfo": session, "verificationCode": code}}),
        )
    };
    let bad = if s.totp_now(&secret) == "000000" {
        "999999"
    } else {
        "000000"
    };
    let (st, b) = finalize(bad.into(), session).await;
    assert_eq!((st, message(&b)), (400, "INVALID_CODE"));
    let (_, b) = finalize(String::new(), session).await;
    assert_eq!(message(&b), "MISSING_CODE");
    let (_, b) = finalize("123456".into(), "").await;
    assert_eq!(message(&b), "MISSING_SESSION_INFO");
    let (_, b) = finalize("123456".into(), "no-such-session").await;
    assert_eq!(message(&b), "INVALID_SESSION_INFO");
    let (st, enrolled) = finalize(s.totp_now(&secret), session).await;
    assert_eq!(st, 200, "{enrolled}");
    let new_token = enrolled["idToken"].as_str().unwrap();
    assert!(enrolled["refreshToken"].is_string());
    let (factor, id) = second_factor(new_token);
    assert_eq!(factor, "totp");
    // The enrollment session is spent.
    let (_, b) = finalize(s.totp_now(&secret), session).await;
    assert_eq!(message(&b), "INVALID_SESSION_INFO");

    // Clients and admins see the factor, never its secret.
    let (_, looked) = s
        .post(
            &format!("{IT}/accounts:lookup"),
            json!({"idToken": new_token}),
        )
        .await;
    let mfa = &looked["users"][0]["mfaInfo"];
    assert_eq!(mfa.as_array().unwrap().len(), 1, "{looked}");
    assert_eq!(mfa[0]["mfaEnrollmentId"], id);
    assert_eq!(mfa[0]["displayName"], "phone app");
    assert_eq!(mfa[0]["totpInfo"], json!({}));
    assert!(!looked.to_string().contains("totpSecret"), "{looked}");
    // An admin rewriting the list by ids keeps the authenticator.
    let (st, b) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:update"),
            json!({"localId": uid, "mfa": {"enrollments": [{"mfaEnrollmentId": id, "displayName": "renamed"}]}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");

    // A password alone no longer signs in: a pending credential and hints instead.
    let (st, first) = s.password_sign_in("totp@example.com").await;
    assert_eq!(st, 200, "{first}");
    assert!(first.get("idToken").is_none(), "{first}");
    assert_eq!(first["mfaInfo"][0]["mfaEnrollmentId"], id);
    assert_eq!(first["mfaInfo"][0]["displayName"], "renamed");
    let pending = first["mfaPendingCredential"].as_str().unwrap().to_owned();
    let second = |code: String, pending: &str| {
        s.v2(
            "mfaSignIn:finalize",
            json!({"mfaPendingCredential": pending, "mfaEnrollmentId": id,
                "totpVerificationInfo": {"verificationCode": code}}),
        )
    };
    // The code that enrolled is spent; the next period's works.
    let (st, b) = second(s.totp_now(&secret), &pending).await;
    assert_eq!((st, message(&b)), (400, "INVALID_CODE"));
    s.clock.advance_secs(30);
    let (st, done) = second(s.totp_now(&secret), &pending).await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["localId"], uid.as_str());
    let signed_in = done["idToken"].as_str().unwrap();
    assert_eq!(second_factor(signed_in), (json!("totp"), id.clone()));
    assert_eq!(
        claims(signed_in)["firebase"]["sign_in_provider"],
        "password"
    );
    // Refreshed tokens keep the second factor.
    let (st, refreshed) = s.refresh(done["refreshToken"].as_str().unwrap()).await;
    assert_eq!(st, 200);
    assert_eq!(
        second_factor(refreshed["id_token"].as_str().unwrap()),
        (json!("totp"), id.clone())
    );
    // A pending credential is good once.
    s.clock.advance_secs(30);
    let (_, b) = second(s.totp_now(&secret), &pending).await;
    assert_eq!(message(&b), "INVALID_MFA_PENDING_CREDENTIAL");

    // Request errors.
    let (_, first) = s.password_sign_in("totp@example.com").await;
    let pending = first["mfaPendingCredential"].as_str().unwrap().to_owned();
    let (_, b) = s
        .v2(
            "mfaSignIn:finalize",
            json!({"totpVerificationInfo": {"verificationCode": "1"}}),
        )
        .await;
    assert_eq!(
        message(&b),
        "MISSING_CREDENTIAL : Please set MFA Pending Credential."
    );
    let (_, b) = s
        .v2("mfaSignIn:finalize", json!({"mfaPendingCredential": pending, "totpVerificationInfo": {"verificationCode": "1"}}))
        .await;
    assert_eq!(
        message(&b),
        "MISSING_MFA_ENROLLMENT_ID : No second factor identifier is provided."
    );
    let (_, b) = s
        .v2(
            "mfaSignIn:finalize",
            json!({"mfaPendingCredential": pending}),
        )
        .await;
    assert_eq!(
        message(&b),
        "INVALID_ARGUMENT : MFA provider not supported!"
    );
    let (_, b) = s
        .v2(
            "mfaSignIn:finalize",
            json!({"mfaPendingCredential": pending, "mfaEnrollmentId": "nope",
            "totpVerificationInfo": {"verificationCode": "123456"}}),
        )
        .await;
    assert_eq!(message(&b), "MFA_ENROLLMENT_NOT_FOUND");
    let (_, b) = s
        .v2(
            "mfaSignIn:start",
            json!({"mfaPendingCredential": pending, "mfaEnrollmentId": id,
            "phoneSignInInfo": {}}),
        )
        .await;
    assert_eq!(
        message(&b),
        "INVALID_ARGUMENT : MFA provider not supported!"
    );
    let (_, b) = s
        .v2("mfaSignIn:start", json!({"mfaEnrollmentId": id}))
        .await;
    assert_eq!(
        message(&b),
        "MISSING_MFA_PENDING_CREDENTIAL : Request does not have MFA pending credential."
    );

    // Pending credentials expire (10 minutes).
    s.clock.advance_secs(601);
    let (st, b) = second(s.totp_now(&secret), &pending).await;
    assert_eq!((st, message(&b)), (400, "INVALID_MFA_PENDING_CREDENTIAL"));

    // Guessing is cut off per account, whatever the pending credential.
    let (_, first) = s.password_sign_in("totp@example.com").await;
    let pending = first["mfaPendingCredential"].as_str().unwrap().to_owned();
    let good = s.totp_now(&secret);
    let bad = if good == "111111" { "222222" } else { "111111" };
    for _ in 0..5 {
        let (_, b) = second(bad.into(), &pending).await;
        assert_eq!(message(&b), "INVALID_CODE");
    }
    let (st, b) = second(good, &pending).await;
    assert_eq!((st, message(&b)), (400, "TOO_MANY_ATTEMPTS_TRY_LATER"));

    // Withdrawing: tokens without the factor, and a password signs in again.
    let (st, w) = s
        .v2(
            "mfaEnrollment:withdraw",
            json!({"idToken": signed_in, "mfaEnrollmentId": id}),
        )
        .await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(second_factor(w["idToken"].as_str().unwrap()).0, Value::Null);
    assert!(w["refreshToken"].is_string() && w["expiresIn"] == "3600");
    let (_, b) = s
        .v2(
            "mfaEnrollment:withdraw",
            json!({"idToken": w["idToken"], "mfaEnrollmentId": id}),
        )
        .await;
    assert_eq!(message(&b), "MFA_ENROLLMENT_NOT_FOUND");
    let (st, b) = s.password_sign_in("totp@example.com").await;
    assert_eq!(st, 200);
    assert!(b["idToken"].is_string() && b.get("mfaPendingCredential").is_none());
}

#[tokio::test]
async fn second_factors_gate_every_first_factor_and_admin_lists_are_checked() {
    let s = boot(Mode::Emulator).await;
    // Emulator projects have second factors on, as the reference emulator.
    let (uid, _) = s.verified_user("gate@example.com").await;
    let path = format!("{IT}/projects/{PROJECT}/accounts:update");
    let update = |body: Value| s.admin_post(&path, body);
    let (_, b) =
        update(json!({"localId": uid, "mfa": {"enrollments": [{"phoneInfo": "+15555550100"}]}}))
            .await;
    assert_eq!(
        message(&b),
        "INVALID_MFA_ENROLLMENT_ID : mfaEnrollmentId must be defined."
    );
    let (_, b) = update(json!({"localId": uid, "mfa": {"enrollments": [{"mfaEnrollmentId": "a", "phoneInfo": "555"}]}})).await;
    assert_eq!(message(&b), "INVALID_MFA_PHONE_NUMBER : Invalid format.");
    let (_, b) = update(json!({"localId": uid, "mfa": {"enrollments": [
        {"mfaEnrollmentId": "a", "phoneInfo": "+15555550100"},
        {"mfaEnrollmentId": "a", "phoneInfo": "+15555550101"}]}}))
    .await;
    assert_eq!(message(&b), "DUPLICATE_MFA_ENROLLMENT_ID");
    let (st, b) = update(json!({"localId": uid, "mfa": {"enrollments": [
        {"mfaEnrollmentId": "enr1", "phoneInfo": "+15555550100", "displayName": "work"}]}}))
    .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s.password_sign_in("gate@example.com").await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["mfaInfo"][0]["phoneInfo"], "+*******0100");
    assert!(b["mfaPendingCredential"].is_string() && b.get("idToken").is_none());
    // The pending credential of one project is not another's.
    let (st, b) = s
        .post(
            &format!("{V2}/accounts/mfaSignIn:finalize"),
            json!({"mfaPendingCredential": "forged", "phoneVerificationInfo": {"sessionInfo": "x", "code": "1"}}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "INVALID_MFA_PENDING_CREDENTIAL"));

    // A texted code (the emulator lists it) completes the sign-in, unless the account's
    // sessions were revoked since the first factor.
    let sms_round = || async {
        let (_, first) = s.password_sign_in("gate@example.com").await;
        let pending = first["mfaPendingCredential"].clone();
        let (st, b) = s
            .v2(
                "mfaSignIn:start",
                json!({"mfaPendingCredential": pending,
                "mfaEnrollmentId": "enr1", "phoneSignInInfo": {}}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        let session = b["phoneResponseInfo"]["sessionInfo"].clone();
        let (_, listed) = s
            .raw(s.http.get(format!(
                "{}/emulator/v1/projects/{PROJECT}/verificationCodes",
                s.base
            )))
            .await;
        let code = listed["verificationCodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["sessionInfo"] == session)
            .unwrap()["code"]
            .clone();
        (pending, session, code)
    };
    let (pending, session, code) = sms_round().await;
    let (st, _) = update(json!({"localId": uid, "validSince": "2000000000"})).await;
    assert_eq!(st, 200);
    let (_, b) = s
        .v2(
            "mfaSignIn:finalize",
            json!({"mfaPendingCredential": pending,
            "phoneVerificationInfo": {"sessionInfo": session, "code": code}}),
        )
        .await;
    assert_eq!(message(&b), "INVALID_MFA_PENDING_CREDENTIAL");
    let (pending, session, code) = sms_round().await;
    let (st, done) = s
        .v2(
            "mfaSignIn:finalize",
            json!({"mfaPendingCredential": pending,
            "phoneVerificationInfo": {"sessionInfo": session, "code": code}}),
        )
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(
        second_factor(done["idToken"].as_str().unwrap()),
        (json!("phone"), json!("enr1"))
    );

    // Admin-created users' enrollments are checked and get ids.
    let (st, b) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts"),
            json!({"email": "made@example.com", "mfaInfo": [{"phoneInfo": "+15555550102"}]}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let made = s.user_by_email("made@example.com").await.unwrap();
    assert_eq!(
        made["mfaInfo"][0]["mfaEnrollmentId"]
            .as_str()
            .unwrap()
            .len(),
        28
    );
    let (_, b) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts"),
            json!({"email": "bad@example.com", "mfaInfo": [{"phoneInfo": "12"}]}),
        )
        .await;
    assert_eq!(message(&b), "INVALID_MFA_PHONE_NUMBER : Invalid format.");
}
