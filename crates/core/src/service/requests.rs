//! Request bodies of the operations, after the server's normalisation (camelCase keys).
//! Unknown fields are ignored: the SDKs add fields over time.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::model::ProviderUserInfo;

/// Fields the schema types as int64-as-string: accept a JSON string or number (the Node Admin
/// SDK sends `validSince` as a number).
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Float(f64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Int(i)) => Ok(Some(i)),
        Some(Raw::Float(f)) if f.is_finite() => Ok(Some(f as i64)),
        Some(Raw::Float(_)) => Err(serde::de::Error::custom("must be an integer")),
        Some(Raw::Text(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("must be an integer")),
    }
}

/// `localId` and friends may be one string or a list in lookups.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => Vec::new(),
        Some(Raw::One(s)) => vec![s],
        Some(Raw::Many(v)) => v,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignUpRequest {
    pub email: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub id_token: Option<String>,
    pub tenant_id: Option<String>,
    pub local_id: Option<String>,
    pub photo_url: Option<String>,
    pub email_verified: Option<bool>,
    pub phone_number: Option<String>,
    pub disabled: Option<bool>,
    pub mfa_info: Option<Vec<Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignInWithPasswordRequest {
    pub email: Option<String>,
    pub password: Option<String>,
    pub tenant_id: Option<String>,
    pub captcha_response: Option<String>,
    pub captcha_challenge: Option<String>,
    pub id_token: Option<String>,
    pub pending_id_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignInWithCustomTokenRequest {
    pub token: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", default)]
pub struct FederatedUserId {
    pub provider_id: Option<String>,
    pub raw_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LookupRequest {
    pub id_token: Option<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub local_id: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub email: Vec<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub phone_number: Vec<String>,
    pub federated_user_id: Vec<FederatedUserId>,
    #[serde(deserialize_with = "one_or_many")]
    pub initial_email: Vec<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateRequest {
    pub id_token: Option<String>,
    pub oob_code: Option<String>,
    pub local_id: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub photo_url: Option<String>,
    pub phone_number: Option<String>,
    pub email_verified: Option<bool>,
    pub disable_user: Option<bool>,
    pub custom_attributes: Option<String>,
    #[serde(deserialize_with = "int_or_string")]
    pub valid_since: Option<i64>,
    #[serde(deserialize_with = "int_or_string")]
    pub created_at: Option<i64>,
    #[serde(deserialize_with = "int_or_string")]
    pub last_login_at: Option<i64>,
    pub delete_attribute: Vec<String>,
    pub delete_provider: Vec<String>,
    pub link_provider_user_info: Option<ProviderUserInfo>,
    pub mfa: Option<MfaUpdate>,
    pub tenant_id: Option<String>,
    pub provider: Option<Value>,
    pub upgrade_to_federated_login: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MfaUpdate {
    pub enrollments: Vec<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeleteRequest {
    pub id_token: Option<String>,
    pub local_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchDeleteRequest {
    pub local_ids: Vec<String>,
    pub force: bool,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchGetRequest {
    #[serde(deserialize_with = "int_or_string")]
    pub max_results: Option<i64>,
    pub next_page_token: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryRequest {
    pub return_user_info: Option<bool>,
    #[serde(deserialize_with = "int_or_string")]
    pub limit: Option<i64>,
    #[serde(deserialize_with = "int_or_string")]
    pub offset: Option<i64>,
    pub sort_by: Option<String>,
    pub order: Option<String>,
    pub expression: Vec<QueryExpression>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryExpression {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub phone_number: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RefreshRequest {
    pub grant_type: Option<String>,
    pub refresh_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateSessionCookieRequest {
    pub id_token: Option<String>,
    /// Seconds; the Node Admin SDK sends a number, the REST schema a string.
    #[serde(deserialize_with = "int_or_string")]
    pub valid_duration: Option<i64>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendOobCodeRequest {
    pub request_type: Option<String>,
    pub email: Option<String>,
    pub id_token: Option<String>,
    pub new_email: Option<String>,
    pub return_oob_link: Option<bool>,
    pub continue_url: Option<String>,
    pub can_handle_code_in_app: Option<bool>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResetPasswordRequest {
    pub oob_code: Option<String>,
    pub new_password: Option<String>,
    pub email: Option<String>,
    pub old_password: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EmailLinkSignInRequest {
    pub email: Option<String>,
    pub oob_code: Option<String>,
    pub id_token: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateAuthUriRequest {
    pub identifier: Option<String>,
    pub continue_uri: Option<String>,
    pub provider_id: Option<String>,
    pub session_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignInWithIdpRequest {
    pub request_uri: Option<String>,
    pub post_body: Option<String>,
    pub id_token: Option<String>,
    pub session_id: Option<String>,
    pub return_idp_credential: Option<bool>,
    pub return_secure_token: Option<bool>,
    pub return_refresh_token: Option<bool>,
    pub pending_id_token: Option<String>,
    pub pending_token: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendVerificationCodeRequest {
    pub phone_number: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignInWithPhoneNumberRequest {
    pub session_info: Option<String>,
    pub code: Option<String>,
    pub temporary_proof: Option<String>,
    pub phone_number: Option<String>,
    pub id_token: Option<String>,
    pub tenant_id: Option<String>,
}

/// `phoneEnrollmentInfo` / `phoneSignInInfo` (reCAPTCHA fields are accepted and ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhoneInfo {
    pub phone_number: Option<String>,
}

/// `phoneVerificationInfo` / `totpVerificationInfo`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VerificationInfo {
    pub session_info: Option<String>,
    pub code: Option<String>,
    pub verification_code: Option<String>,
    pub phone_number: Option<String>,
    pub android_verification_proof: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MfaEnrollmentStartRequest {
    pub id_token: Option<String>,
    pub phone_enrollment_info: Option<PhoneInfo>,
    pub totp_enrollment_info: Option<Value>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MfaEnrollmentFinalizeRequest {
    pub id_token: Option<String>,
    pub phone_verification_info: Option<VerificationInfo>,
    pub totp_verification_info: Option<VerificationInfo>,
    pub display_name: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MfaWithdrawRequest {
    pub id_token: Option<String>,
    pub mfa_enrollment_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MfaSignInStartRequest {
    pub mfa_pending_credential: Option<String>,
    pub mfa_enrollment_id: Option<String>,
    pub phone_sign_in_info: Option<PhoneInfo>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MfaSignInFinalizeRequest {
    pub mfa_pending_credential: Option<String>,
    pub mfa_enrollment_id: Option<String>,
    pub phone_verification_info: Option<VerificationInfo>,
    pub totp_verification_info: Option<VerificationInfo>,
    pub tenant_id: Option<String>,
}
