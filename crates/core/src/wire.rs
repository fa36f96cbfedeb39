//! The `UserInfo` shape of the Identity Toolkit wire contract (§2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::model::Account;
use crate::password::Hasher;

/// How much of the password hash a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashView {
    /// `UkVEQUNURUQ=` ("REDACTED"), no salt: what end users get in production.
    Redacted,
    /// The stored hash and salt, base64 (admins; everyone in emulator mode, as the emulator).
    Full,
}

pub const REDACTED_HASH: &str = "UkVEQUNURUQ=";

pub fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v);
    }
}

/// Provider entries: the linked ones plus the derived `password` and `phone` entries.
pub fn provider_user_info(acc: &Account) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(email) = &acc.email {
        if acc.has_password() || acc.email_link_signin {
            let mut m = Map::new();
            m.insert("providerId".into(), "password".into());
            m.insert("email".into(), email.clone().into());
            m.insert("federatedId".into(), email.clone().into());
            m.insert("rawId".into(), email.clone().into());
            put(
                &mut m,
                "displayName",
                acc.display_name.clone().map(Value::from),
            );
            put(&mut m, "photoUrl", acc.photo_url.clone().map(Value::from));
            out.push(Value::Object(m));
        }
    }
    if let Some(phone) = &acc.phone_number {
        out.push(json!({"providerId": "phone", "phoneNumber": phone, "rawId": phone}));
    }
    for p in &acc.providers {
        out.push(serde_json::to_value(p).unwrap_or(Value::Null));
    }
    out
}

fn password_fields(acc: &Account, view: HashView, m: &mut Map<String, Value>) {
    let Some(stored) = &acc.password_hash else {
        return;
    };
    match view {
        HashView::Redacted => {
            m.insert("passwordHash".into(), REDACTED_HASH.into());
        }
        HashView::Full => {
            let hash = if stored.starts_with("fakeHash:") {
                stored.clone()
            } else {
                STANDARD.encode(stored.as_bytes())
            };
            m.insert("passwordHash".into(), hash.into());
            put(m, "salt", Hasher::salt_of(stored).map(Value::from));
        }
    }
}

pub fn user_info(acc: &Account, view: HashView) -> Value {
    let mut m = Map::new();
    m.insert("localId".into(), acc.local_id.clone().into());
    put(&mut m, "email", acc.email.clone().map(Value::from));
    m.insert("emailVerified".into(), acc.email_verified.into());
    put(
        &mut m,
        "displayName",
        acc.display_name.clone().map(Value::from),
    );
    put(&mut m, "photoUrl", acc.photo_url.clone().map(Value::from));
    put(
        &mut m,
        "phoneNumber",
        acc.phone_number.clone().map(Value::from),
    );
    m.insert("disabled".into(), acc.disabled.into());
    password_fields(acc, view, &mut m);
    put(
        &mut m,
        "passwordUpdatedAt",
        acc.password_updated_at.map(Value::from),
    );
    put(
        &mut m,
        "validSince",
        acc.valid_since.map(|s| Value::from(s.to_string())),
    );
    m.insert("createdAt".into(), acc.created_at.to_string().into());
    put(
        &mut m,
        "lastLoginAt",
        acc.last_login_at.map(|t| Value::from(t.to_string())),
    );
    put(
        &mut m,
        "lastRefreshAt",
        acc.last_refresh_at.map(|t| Value::from(rfc3339_ms(t))),
    );
    put(
        &mut m,
        "customAttributes",
        acc.custom_attributes.clone().map(Value::from),
    );
    if acc.custom_auth {
        m.insert("customAuth".into(), true.into());
    }
    m.insert("providerUserInfo".into(), provider_user_info(acc).into());
    if !acc.mfa_info.is_empty() {
        let enrollments: Vec<Value> = acc.mfa_info.iter().map(|e| e.wire()).collect();
        m.insert("mfaInfo".into(), enrollments.into());
    }
    if acc.email_link_signin {
        m.insert("emailLinkSignin".into(), true.into());
    }
    put(
        &mut m,
        "initialEmail",
        acc.initial_email.clone().map(Value::from),
    );
    put(&mut m, "tenantId", acc.tenant_id.clone().map(Value::from));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_providers_and_redaction() {
        let acc = Account {
            local_id: "u".into(),
            email: Some("a@b.co".into()),
            password_hash: Some(
                "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
            ),
            phone_number: Some("+15555550100".into()),
            created_at: 5,
            valid_since: Some(7),
            last_refresh_at: Some(0),
            ..Default::default()
        };
        let v = user_info(&acc, HashView::Redacted);
        assert_eq!(v["passwordHash"], REDACTED_HASH);
        assert!(v.get("salt").is_none());
        assert_eq!(v["validSince"], "7");
        assert_eq!(v["createdAt"], "5");
        assert_eq!(v["lastRefreshAt"], "1970-01-01T00:00:00Z");
        let ids: Vec<&str> = v["providerUserInfo"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["providerId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["password", "phone"]);
        let full = user_info(&acc, HashView::Full);
        assert_ne!(full["passwordHash"], REDACTED_HASH);
        assert_eq!(full["salt"], "c2FsdHNhbHQ");
    }
}
