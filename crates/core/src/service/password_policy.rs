//! Password policies: the `passwordPolicyConfig` the Admin SDKs set on the project (v2
//! config) or on a tenant, published at `GET IT/v2/passwordPolicy` for the client SDKs'
//! `validatePassword`, and enforced on sign-up, password change and reset.

use serde_json::{json, Map, Value};

use super::Auth;
use crate::error::{Error, Result};
use crate::model::Scope;

pub(crate) const SETTINGS_KEY: &str = "passwordPolicyConfig";

/// Characters that count as non-alphanumeric (Identity Platform's set).
const NON_ALPHANUMERIC: &str = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+-";
const DEFAULT_MIN: i64 = 6;
const MAX_LENGTH: i64 = 4096;

/// A policy in force: what a password needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub enforce: bool,
    pub min_length: i64,
    pub max_length: Option<i64>,
    pub lowercase: bool,
    pub uppercase: bool,
    pub numeric: bool,
    pub non_alphanumeric: bool,
    pub force_upgrade_on_signin: bool,
}

impl PasswordPolicy {
    /// From the server form `{passwordPolicyEnforcementState, forceUpgradeOnSignin,
    /// passwordPolicyVersions:[{customStrengthOptions:{…}}]}`.
    pub fn from_config(c: &Value) -> Result<Self> {
        let invalid =
            |what: &str| Error::detail("INVALID_CONFIG", format!("passwordPolicyConfig: {what}"));
        if !c.is_object() {
            return Err(invalid("must be an object"));
        }
        let state = c
            .get("passwordPolicyEnforcementState")
            .and_then(Value::as_str)
            .unwrap_or("OFF");
        let enforce = match state {
            "ENFORCE" => true,
            "OFF" | "PASSWORD_POLICY_ENFORCEMENT_STATE_UNSPECIFIED" => false,
            _ => {
                return Err(invalid(
                    "passwordPolicyEnforcementState must be ENFORCE or OFF",
                ))
            }
        };
        let options = c
            .pointer("/passwordPolicyVersions/0/customStrengthOptions")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let flag = |k: &str| options.get(k).and_then(Value::as_bool).unwrap_or(false);
        let number = |k: &str| options.get(k).and_then(Value::as_i64);
        let min_length = number("minPasswordLength").unwrap_or(DEFAULT_MIN);
        let max_length = number("maxPasswordLength");
        if !(DEFAULT_MIN..=30).contains(&min_length) {
            return Err(invalid("minPasswordLength must be between 6 and 30"));
        }
        if max_length.is_some_and(|m| m < min_length || m > MAX_LENGTH) {
            return Err(invalid(
                "maxPasswordLength must be at least minPasswordLength and at most 4096",
            ));
        }
        Ok(Self {
            enforce,
            min_length,
            max_length,
            lowercase: flag("containsLowercaseCharacter"),
            uppercase: flag("containsUppercaseCharacter"),
            numeric: flag("containsNumericCharacter"),
            non_alphanumeric: flag("containsNonAlphanumericCharacter"),
            force_upgrade_on_signin: c
                .get("forceUpgradeOnSignin")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// What `password` lacks, in words; empty when it meets the policy.
    pub fn missing(&self, password: &str) -> Vec<String> {
        let mut out = Vec::new();
        let chars = password.chars().count() as i64;
        if chars < self.min_length {
            out.push(format!(
                "Password must contain at least {} characters",
                self.min_length
            ));
        }
        if let Some(max) = self.max_length.filter(|m| chars > *m) {
            out.push(format!("Password may contain at most {max} characters"));
        }
        let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
        if self.lowercase && !has(char::is_ascii_lowercase) {
            out.push("Password must contain a lower case character".into());
        }
        if self.uppercase && !has(char::is_ascii_uppercase) {
            out.push("Password must contain an upper case character".into());
        }
        if self.numeric && !has(char::is_ascii_digit) {
            out.push("Password must contain a numeric character".into());
        }
        if self.non_alphanumeric && !password.chars().any(|c| NON_ALPHANUMERIC.contains(c)) {
            out.push("Password must contain a non-alphanumeric character".into());
        }
        out
    }

    /// `GET IT/v2/passwordPolicy`, as the client SDKs read it (schema version 1).
    pub fn public(&self) -> Value {
        let mut options = Map::new();
        options.insert("minPasswordLength".into(), self.min_length.into());
        if let Some(max) = self.max_length {
            options.insert("maxPasswordLength".into(), max.into());
        }
        for (k, v) in [
            ("containsLowercaseCharacter", self.lowercase),
            ("containsUppercaseCharacter", self.uppercase),
            ("containsNumericCharacter", self.numeric),
            ("containsNonAlphanumericCharacter", self.non_alphanumeric),
        ] {
            options.insert(k.into(), v.into());
        }
        json!({
            "customStrengthOptions": options,
            "allowedNonAlphanumericCharacters":
                NON_ALPHANUMERIC.chars().map(String::from).collect::<Vec<_>>(),
            "enforcementState": if self.enforce { "ENFORCE" } else { "OFF" },
            "forceUpgradeOnSignin": self.force_upgrade_on_signin,
            "schemaVersion": 1,
        })
    }
}

impl Auth {
    /// The policy of a scope: a tenant's own, else the project's; none set means the
    /// 6-character minimum every password has anyway.
    pub(crate) async fn password_policy(&self, scope: &Scope) -> Result<PasswordPolicy> {
        let doc = self.project_settings(&scope.project).await?;
        let config = match &scope.tenant {
            Some(t) => doc
                .pointer(&format!(
                    "/tenants/{}/{SETTINGS_KEY}",
                    t.replace('~', "~0").replace('/', "~1")
                ))
                .or_else(|| doc.get(SETTINGS_KEY)),
            None => doc.get(SETTINGS_KEY),
        };
        match config {
            Some(c) => PasswordPolicy::from_config(c),
            None => Ok(PasswordPolicy {
                min_length: DEFAULT_MIN,
                ..Default::default()
            }),
        }
    }

    /// Refuses a new password the scope's enforced policy does not admit.
    pub(crate) async fn check_password_policy(&self, scope: &Scope, password: &str) -> Result<()> {
        let policy = self.password_policy(scope).await?;
        if !policy.enforce {
            return Ok(());
        }
        let missing = policy.missing(password);
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::detail(
            "PASSWORD_DOES_NOT_MEET_REQUIREMENTS",
            format!("Missing password requirements: [{}]", missing.join(", ")),
        ))
    }

    /// `GET IT/v2/passwordPolicy`.
    pub async fn public_password_policy(&self, scope: &Scope) -> Result<Value> {
        Ok(self.password_policy(scope).await?.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_read_checked_and_published() {
        let p = PasswordPolicy::from_config(&json!({
            "passwordPolicyEnforcementState": "ENFORCE",
            "passwordPolicyVersions": [{"customStrengthOptions": {"minPasswordLength": 8,
                "containsUppercaseCharacter": true, "containsNumericCharacter": true,
                "containsNonAlphanumericCharacter": true}}]
        }))
        .unwrap();
        assert!(p.enforce);
        assert_eq!(
            p.missing("short"),
            vec![
                "Password must contain at least 8 characters",
                "Password must contain an upper case character",
                "Password must contain a numeric character",
                "Password must contain a non-alphanumeric character",
            ]
        );
        assert!(p.missing("Long-enough-1").is_empty());
        let public = p.public();
        assert_eq!(public["schemaVersion"], 1);
        assert_eq!(public["customStrengthOptions"]["minPasswordLength"], 8);
        assert_eq!(public["enforcementState"], "ENFORCE");
        assert!(
            PasswordPolicy::from_config(&json!({"passwordPolicyEnforcementState": "MAYBE"}))
                .is_err()
        );
        assert!(
            PasswordPolicy::from_config(&json!({"passwordPolicyVersions":
            [{"customStrengthOptions": {"minPasswordLength": 3}}]}))
            .is_err()
        );
    }
}
