//! Stored shapes of the domain.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where an account lives: a project, and optionally a tenant inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub project: String,
    pub tenant: Option<String>,
}

impl Scope {
    pub fn project(project: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            tenant: None,
        }
    }

    /// The tenant as stored: the empty string for the project itself.
    pub fn tenant_key(&self) -> &str {
        self.tenant.as_deref().unwrap_or("")
    }
}

/// A linked federated identity (`providerUserInfo` entries that are not derived).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProviderUserInfo {
    pub provider_id: String,
    pub raw_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_name: Option<String>,
}

/// A user account, serialised as the stored document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Account {
    pub local_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    pub disabled: bool,
    /// PHC string (argon2id), or the reference emulator's `fakeHash:` form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_updated_at: Option<i64>,
    /// Unix seconds; tokens issued before it are revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_since: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Kept in its own column, like `last_refresh_at`: sign-ins do not rewrite the document.
    #[serde(skip)]
    pub last_login_at: Option<i64>,
    #[serde(skip)]
    pub last_refresh_at: Option<i64>,
    /// Serialised JSON object of custom claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_attributes: Option<String>,
    pub custom_auth: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderUserInfo>,
    pub email_link_signin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Entries that do not read as enrollments (written as given by older versions) are
    /// dropped rather than making the account unreadable.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient_enrollments"
    )]
    pub mfa_info: Vec<MfaEnrollment>,
    /// The stored row's version when read: writes succeed only if it is unchanged.
    #[serde(skip)]
    pub version: i64,
}

impl Account {
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Anonymous: no email, phone, password or linked provider.
    pub fn is_anonymous(&self) -> bool {
        self.email.is_none()
            && self.phone_number.is_none()
            && self.password_hash.is_none()
            && self.providers.is_empty()
    }

    pub fn custom_claims(&self) -> Map<String, Value> {
        self.custom_attributes
            .as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default()
    }
}

fn lenient_enrollments<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<MfaEnrollment>, D::Error> {
    let raw = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// An enrolled second factor (`mfaInfo[]`): a phone that receives codes, or a TOTP
/// authenticator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MfaEnrollment {
    pub mfa_enrollment_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// RFC 3339, as the wire has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_info: Option<String>,
    /// Present (an empty object on the wire) for a TOTP authenticator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_info: Option<Map<String, Value>>,
    /// The authenticator's shared secret, sealed with the master key; never on the wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// The last time step whose code was accepted: a code is good once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_last_step: Option<i64>,
}

impl MfaEnrollment {
    /// `phone` or `totp`: the factor's id in claims and SDK objects.
    pub fn factor_id(&self) -> &'static str {
        if self.totp_info.is_some() {
            "totp"
        } else {
            "phone"
        }
    }

    /// The enrollment as clients and admins see it.
    pub fn wire(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "mfaEnrollmentId".into(),
            self.mfa_enrollment_id.clone().into(),
        );
        if let Some(n) = &self.display_name {
            m.insert("displayName".into(), n.clone().into());
        }
        if let Some(t) = &self.enrolled_at {
            m.insert("enrolledAt".into(), t.clone().into());
        }
        if let Some(p) = &self.phone_info {
            m.insert("phoneInfo".into(), p.clone().into());
        }
        if self.totp_info.is_some() {
            m.insert("totpInfo".into(), Value::Object(Map::new()));
        }
        Value::Object(m)
    }
}

/// One sign-in session: the refresh-token family started by one sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: String,
    pub scope: Scope,
    pub local_id: String,
    /// SHA-256 of the session's refresh token; the token itself is never stored.
    pub refresh_hash: Vec<u8>,
    pub provider: String,
    /// Claims added at sign-in (custom-token `claims`, blocking `sessionClaims`).
    pub extra_claims: Map<String, Value>,
    /// Unix seconds of the sign-in (the `auth_time` claim).
    pub auth_time: i64,
    pub created_at: i64,
    pub last_used_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Why the session ended; `None` while it is live.
    pub revoked: Option<String>,
    /// When rotation last replaced the refresh token.
    pub rotated_at: Option<i64>,
    /// The current refresh token sealed with the master key, kept while a parallel
    /// refresh may still present the previous one.
    pub successor: Option<Vec<u8>>,
}

/// Reasons a session ended (`Session::revoked`).
pub mod ended {
    /// The account was deleted.
    pub const USER_DELETED: &str = "user_deleted";
    /// Revoked by an admin or by the user.
    pub const REVOKED: &str = "revoked";
    /// Evicted by the per-user session cap.
    pub const EVICTED: &str = "evicted";
    /// A rotated-out refresh token was presented after the grace window.
    pub const REUSE_DETECTED: &str = "reuse_detected";
    /// Used from an address the project's IP policy does not allow.
    pub const IP_VIOLATION: &str = "ip_violation";
}

/// Kinds of audit events (`Event::kind`).
pub mod event_kind {
    pub const SIGN_UP: &str = "sign_up";
    pub const ACCOUNT_CREATED: &str = "account_created";
    pub const SIGN_IN: &str = "sign_in";
    pub const REFRESH: &str = "refresh";
    pub const ROTATED: &str = "refresh_token_rotated";
    pub const REUSE_DETECTED: &str = "refresh_token_reuse_detected";
    pub const SESSION_ENDED: &str = "session_ended";
    pub const TOKENS_REVOKED: &str = "tokens_revoked";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const EMAIL_CHANGED: &str = "email_changed";
    pub const DISABLED: &str = "disabled";
    pub const ENABLED: &str = "enabled";
    pub const DELETED: &str = "deleted";
    pub const IP_VIOLATION: &str = "ip_violation";
    pub const SESSION_COOKIE_CREATED: &str = "session_cookie_created";
    pub const SIGN_UP_BLOCKED: &str = "sign_up_blocked";
    pub const SIGN_IN_BLOCKED: &str = "sign_in_blocked";
    pub const MFA_ENROLLED: &str = "mfa_enrolled";
    pub const MFA_WITHDRAWN: &str = "mfa_withdrawn";

    /// The kinds a verifier's revocation cache follows.
    pub const REVOCATIONS: &[&str] = &[
        TOKENS_REVOKED,
        SESSION_ENDED,
        REUSE_DETECTED,
        DISABLED,
        ENABLED,
        DELETED,
    ];
}

/// One entry of the audit log and revocation feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Assigned by the store, increasing in commit order; the feed's cursor.
    pub id: i64,
    #[serde(skip)]
    pub scope: Scope,
    pub local_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub kind: String,
    /// Unix milliseconds.
    pub at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub detail: Map<String, Value>,
}

/// Out-of-band action kinds (`requestType`).
pub mod oob_kind {
    pub const PASSWORD_RESET: &str = "PASSWORD_RESET";
    pub const VERIFY_EMAIL: &str = "VERIFY_EMAIL";
    pub const EMAIL_SIGNIN: &str = "EMAIL_SIGNIN";
    pub const VERIFY_AND_CHANGE_EMAIL: &str = "VERIFY_AND_CHANGE_EMAIL";
    pub const RECOVER_EMAIL: &str = "RECOVER_EMAIL";
    /// An SMS code for phone sign-in (`sessionInfo` of `sendVerificationCode`).
    pub const PHONE_SIGN_IN: &str = "PHONE_SIGN_IN";
    /// A second factor being enrolled: an SMS code, or a TOTP secret to confirm.
    pub const MFA_ENROLLMENT: &str = "MFA_ENROLLMENT";
    /// An SMS code for a second-factor sign-in, tied to its pending credential.
    pub const MFA_SIGN_IN: &str = "MFA_SIGN_IN";
    /// A first factor passed, waiting for the second (`mfaPendingCredential`).
    pub const MFA_PENDING: &str = "MFA_PENDING";
    /// Proof that the caller received a code for a number another account has
    /// (`temporaryProof`).
    pub const PHONE_PROOF: &str = "PHONE_PROOF";
    /// A SAML assertion that signed someone in, kept until it expires so it signs in once.
    pub const SAML_ASSERTION: &str = "SAML_ASSERTION";

    /// The kinds sent by email (the emulator's `oobCodes` listing).
    pub fn is_email(kind: &str) -> bool {
        [
            PASSWORD_RESET,
            VERIFY_EMAIL,
            EMAIL_SIGNIN,
            VERIFY_AND_CHANGE_EMAIL,
            RECOVER_EMAIL,
        ]
        .contains(&kind)
    }
}

/// A pending one-time secret: an email action code (one action on one account, or, for a
/// sign-in link, on an email that may have no account yet), an SMS or TOTP verification
/// session, or an MFA pending credential. The secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OobCode {
    /// SHA-256 of the code.
    pub code_hash: Vec<u8>,
    pub scope: Scope,
    pub created_at: i64,
    /// Unix milliseconds; `i64::MAX` for codes that never expire (emulator mode).
    pub expires_at: i64,
    pub action: OobAction,
}

/// What a code does, stored as the row's document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OobAction {
    /// One of [`oob_kind`].
    pub request_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    /// The address the action concerns: the account's email when the code was made (the
    /// address to restore, for `RECOVER_EMAIL`).
    pub email: String,
    /// `VERIFY_AND_CHANGE_EMAIL`: the address to change to; `RECOVER_EMAIL`: the address
    /// being undone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_email: Option<String>,
    /// Where the action page sends the user afterwards; checked when the code was made,
    /// and the only continue URL the pages follow (a link's own parameter could be edited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continue_url: Option<String>,
    /// Emulator mode only: the code and its link, for the emulator's listing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Phone kinds: the number the code went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Phone kinds: the six digits sent (the session's hash is the key, so a copy of the
    /// database alone redeems nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_code: Option<String>,
    /// TOTP enrollment: the secret to confirm, sealed with the master key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// `MFA_SIGN_IN`: the enrollment the code is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_enrollment_id: Option<String>,
    /// `MFA_SIGN_IN`: the pending credential (hex SHA-256) the code belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// `MFA_PENDING`: the first factor's token provider and blocking `sign_in_method`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in_method: Option<String>,
    /// `MFA_PENDING`: a digest of the account's credentials at the first factor; a
    /// password change, an email change or a revocation since voids the credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_stamp: Option<String>,
    /// `MFA_PENDING`: an identity to link once the second factor passes (an IdP sign-in
    /// that found the account by its verified email).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_identity: Option<ProviderUserInfo>,
}
