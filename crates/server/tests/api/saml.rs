//! SAML sign-in through `accounts:signInWithIdp`: responses signed by an independent XML
//! signature implementation (fixtures made by `saml/make.py`), checked against the
//! configured certificate, issuer, audience, callback and clock; tampered, wrapped,
//! expired and replayed responses are refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use firekeeper_core::Mode;
use serde_json::{json, Value};

use super::{boot, claims, hook_server, message, Server, PROJECT};

const ASSERTION_SIGNED: &str = include_str!("saml/assertion-signed.b64");
const RESPONSE_SIGNED: &str = include_str!("saml/response-signed.b64");
const EXPIRED: &str = include_str!("saml/expired.b64");
const TWO_AUDIENCES: &str = include_str!("saml/two-audiences.b64");
const IDP_CERT: &str = include_str!("saml/idp-cert.pem");
const OTHER_CERT: &str = include_str!("saml/other-cert.pem");
const ACS: &str = "https://fk.example/__/auth/handler";

fn xml_of(b64: &str) -> String {
    String::from_utf8(STANDARD.decode(b64.trim()).unwrap()).unwrap()
}

fn b64_of(xml: &str) -> String {
    STANDARD.encode(xml)
}

impl Server {
    async fn saml_config(&self, method: reqwest::Method, cert: &str) {
        let path = if method == reqwest::Method::POST {
            "inboundSamlConfigs?inboundSamlConfigId=saml.corp".to_owned()
        } else {
            "inboundSamlConfigs/saml.corp?updateMask=idpConfig.idpCertificates".to_owned()
        };
        let (st, b) = self
            .admin_v2(
                method,
                &path,
                Some(json!({"displayName": "Corp", "enabled": true,
                    "idpConfig": {"idpEntityId": "https://idp.corp.example",
                        "ssoUrl": "https://idp.corp.example/sso",
                        "idpCertificates": [{"x509Certificate": cert}]},
                    "spConfig": {"spEntityId": "firekeeper-sp", "callbackUri": ACS}})),
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }

    async fn saml(&self, response_b64: &str) -> (u16, Value) {
        let body = serde_urlencoded::to_string([
            ("SAMLResponse", response_b64.trim()),
            ("providerId", "saml.corp"),
        ])
        .unwrap();
        self.post(
            &format!("{}/accounts:signInWithIdp", super::IT),
            json!({"requestUri": ACS, "postBody": body, "returnSecureToken": true}),
        )
        .await
    }
}

fn refused(b: &Value) -> bool {
    message(b).starts_with("INVALID_IDP_RESPONSE")
}

#[tokio::test]
async fn saml_responses_sign_in_once_and_only_as_signed() {
    let s = boot(Mode::Production).await;
    // Another certificate: nothing verifies.
    s.saml_config(reqwest::Method::POST, OTHER_CERT).await;
    let (_, b) = s.saml(ASSERTION_SIGNED).await;
    assert!(refused(&b), "signed by another key: {b}");
    s.saml_config(reqwest::Method::PATCH, IDP_CERT).await;

    // A changed value breaks the digest.
    let tampered = xml_of(ASSERTION_SIGNED).replace("Alice Corp", "Mallory");
    let (_, b) = s.saml(&b64_of(&tampered)).await;
    assert!(refused(&b), "tampered: {b}");
    // An unsigned assertion slipped in beside the signed one.
    let xml = xml_of(ASSERTION_SIGNED);
    let at = xml.find("<saml:Assertion").unwrap();
    let evil = "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_evil\">\
        <saml:Issuer>https://idp.corp.example</saml:Issuer><saml:Subject>\
        <saml:NameID>mallory@corp.example</saml:NameID></saml:Subject></saml:Assertion>";
    let wrapped = format!("{}{evil}{}", &xml[..at], &xml[at..]);
    let (_, b) = s.saml(&b64_of(&wrapped)).await;
    assert!(refused(&b), "wrapped: {b}");
    // The signed assertion moved where a careless reader would not look, an unsigned
    // one in its place.
    let signed_part = &xml[at..xml.find("</samlp:Response>").unwrap()];
    let moved = format!(
        "{}<samlp:Extensions>{signed_part}</samlp:Extensions>{evil}</samlp:Response>",
        &xml[..at]
    );
    let (_, b) = s.saml(&b64_of(&moved)).await;
    assert!(refused(&b), "moved: {b}");
    let (_, b) = s.saml(EXPIRED).await;
    assert!(refused(&b), "expired: {b}");
    let (_, b) = s.saml(TWO_AUDIENCES).await;
    assert!(refused(&b), "also restricted to another audience: {b}");
    let (_, b) = s.saml("bm90IHhtbA==").await;
    assert!(refused(&b), "not XML: {b}");
    let doctype = format!("<!DOCTYPE r [<!ENTITY x \"y\">]>{xml}");
    let (_, b) = s.saml(&b64_of(&doctype)).await;
    assert!(refused(&b), "a DOCTYPE: {b}");

    // The functions see the assertion's attributes and no OAuth credentials.
    let (hooks, calls) = hook_server().await;
    s.set_hooks(json!({"beforeCreate": {"functionUri": format!("{hooks}/ok")}}))
        .await;

    // A signed assertion in an unsigned response.
    let (st, b) = s.saml(ASSERTION_SIGNED).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["providerId"], "saml.corp");
    assert_eq!(b["email"], "alice@corp.example");
    assert_eq!(b["emailVerified"], false);
    assert_eq!(b["displayName"], "Alice Corp");
    assert_eq!(b["isNewUser"], true);
    let c = claims(b["idToken"].as_str().unwrap());
    assert_eq!(c["firebase"]["sign_in_provider"], "saml.corp");
    assert_eq!(
        c["firebase"]["identities"]["saml.corp"][0],
        "alice@corp.example"
    );
    let seen = calls.lock().unwrap().last().cloned().unwrap().1;
    assert_eq!(
        seen["sign_in_attributes"]["groups"],
        json!(["eng", "admins & co"])
    );
    assert!(seen.get("oauth_id_token").is_none() && seen.get("oauth_access_token").is_none());
    // Each assertion signs in once.
    let (_, b) = s.saml(ASSERTION_SIGNED).await;
    assert!(refused(&b), "replayed: {b}");

    // A signed response around an unsigned assertion.
    let (st, b) = s.saml(RESPONSE_SIGNED).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["email"], "bob@corp.example");
    assert_eq!(b["federatedId"], "bob");
    let _ = PROJECT;
}
