//! Password policies: set through the v2 config as the Admin SDKs send it (or on a tenant),
//! published for the client SDKs, and enforced on sign-up, password change and reset.

use firekeeper_core::Mode;
use serde_json::{json, Value};

use super::{boot, message, Server, IT, PROJECT};

const V2: &str = "/identitytoolkit.googleapis.com/v2";

fn strict_policy() -> Value {
    json!({"passwordPolicyEnforcementState": "ENFORCE", "forceUpgradeOnSignin": false,
        "passwordPolicyVersions": [{"customStrengthOptions": {"minPasswordLength": 10,
            "containsUppercaseCharacter": true, "containsNumericCharacter": true}}]})
}

impl Server {
    async fn published_policy(&self, tenant: Option<&str>) -> Value {
        let mut req = self
            .http
            .get(format!("{}{V2}/passwordPolicy", self.base))
            .query(&[("key", &self.key)]);
        if let Some(t) = tenant {
            req = req.query(&[("tenantId", t)]);
        }
        let (st, b) = self.raw(req).await;
        assert_eq!(st, 200, "{b}");
        b
    }
}

#[tokio::test]
async fn password_policies_are_published_and_enforced() {
    let s = boot(Mode::Production).await;
    let before = s.published_policy(None).await;
    assert_eq!(before["schemaVersion"], 1);
    assert_eq!(before["enforcementState"], "OFF");
    assert_eq!(before["customStrengthOptions"]["minPasswordLength"], 6);
    let weak_signup = s.sign_up("before@example.com").await;

    // As the Node Admin SDK's updateProjectConfig sends it.
    let config = |mask: &str, body: Value| {
        s.raw(
            s.http
                .patch(format!("{}{V2}/projects/{PROJECT}/config", s.base))
                .query(&[("updateMask", mask)])
                .bearer_auth(&s.admin)
                .json(&body),
        )
    };
    let (st, b) = config(
        "passwordPolicyConfig.passwordPolicyEnforcementState,passwordPolicyConfig.passwordPolicyVersions",
        json!({"passwordPolicyConfig": {"passwordPolicyEnforcementState": "ENFORCE",
            "passwordPolicyVersions": [{"customStrengthOptions": {"minPasswordLength": 3}}]}}),
    )
    .await;
    assert_eq!(st, 400);
    assert!(message(&b).starts_with("INVALID_CONFIG"), "{b}");
    let (st, b) = config("", json!({"passwordPolicyConfig": "not an object"})).await;
    assert_eq!(st, 400);
    assert!(message(&b).starts_with("INVALID_CONFIG"), "{b}");
    let (st, b) = config(
        "passwordPolicyConfig.passwordPolicyEnforcementState,passwordPolicyConfig.passwordPolicyVersions",
        json!({"passwordPolicyConfig": strict_policy()}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["passwordPolicyConfig"]["passwordPolicyEnforcementState"],
        "ENFORCE"
    );
    assert!(
        b["blockingFunctions"].is_object(),
        "the other section stays: {b}"
    );
    let published = s.published_policy(None).await;
    assert_eq!(published["enforcementState"], "ENFORCE");
    assert_eq!(published["customStrengthOptions"]["minPasswordLength"], 10);
    assert_eq!(
        published["customStrengthOptions"]["containsUppercaseCharacter"],
        true
    );

    // Sign-up.
    let (st, b) = s
        .post(&format!("{IT}/accounts:signUp"),
            json!({"email": "weak@example.com", "password": "secret-pw", "returnSecureToken": true}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        message(&b),
        "PASSWORD_DOES_NOT_MEET_REQUIREMENTS : Missing password requirements: [Password must \
         contain at least 10 characters, Password must contain an upper case character, \
         Password must contain a numeric character]"
    );
    let (st, _) = s
        .post(&format!("{IT}/accounts:signUp"),
            json!({"email": "strong@example.com", "password": "Strong-pass-1", "returnSecureToken": true}))
        .await;
    assert_eq!(st, 200);
    // Password change by the user; an admin sets what it sets.
    let (st, b) = s
        .post(&format!("{IT}/accounts:update"),
            json!({"idToken": weak_signup["idToken"], "password": "still-weak", "returnSecureToken": true}))
        .await;
    assert_eq!(
        (st, message(&b).split(" : ").next()),
        (400, Some("PASSWORD_DOES_NOT_MEET_REQUIREMENTS"))
    );
    let (st, _) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/accounts:update"),
            json!({"localId": weak_signup["localId"], "password": "admin-set"}),
        )
        .await;
    assert_eq!(st, 200);
    // Reset: a weak password keeps the code usable.
    let (_, b) = s
        .admin_post(&format!("{IT}/projects/{PROJECT}/accounts:sendOobCode"),
            json!({"requestType": "PASSWORD_RESET", "email": "before@example.com", "returnOobLink": true}))
        .await;
    let code = b["oobCode"].as_str().unwrap().to_owned();
    let reset = format!("{IT}/accounts:resetPassword");
    let (st, b) = s
        .post(&reset, json!({"oobCode": code, "newPassword": "weakling"}))
        .await;
    assert_eq!(
        (st, message(&b).split(" : ").next()),
        (400, Some("PASSWORD_DOES_NOT_MEET_REQUIREMENTS"))
    );
    let (st, b) = s
        .post(
            &reset,
            json!({"oobCode": code, "newPassword": "Much-better-2"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");

    // A tenant's own policy wins over the project's for its users.
    let (st, b) = s
        .raw(
            s.http
                .post(format!("{}{V2}/projects/{PROJECT}/tenants", s.base))
                .bearer_auth(&s.admin)
                .json(
                    &json!({"displayName": "Relaxed", "allowPasswordSignup": true,
                    "passwordPolicyConfig": {"passwordPolicyEnforcementState": "OFF"}}),
                ),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let tenant = b["tenantId"].as_str().unwrap().to_owned();
    assert_eq!(
        s.published_policy(Some(&tenant)).await["enforcementState"],
        "OFF"
    );
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signUp"),
            json!({"email": "relaxed@example.com", "password": "secret-pw", "tenantId": tenant}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
}
