//! A project's settings for the JSON database that live with its other settings:
//! where the revocation bridge writes a revoked user's revocation time.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Auth;
use crate::error::{Error, Result};

const POLICY_KEY: &str = "databasePolicy";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabasePolicy {
    /// A path in the project's default namespace, with `$uid` for the user (e.g.
    /// `metadata/$uid/revokeTime`); when set, revoking a user's tokens writes the
    /// revocation time there, in seconds. `None`: no bridge.
    #[serde(default, alias = "revocation_path")]
    pub revocation_path: Option<String>,
}

impl DatabasePolicy {
    pub fn validate(&self) -> std::result::Result<(), String> {
        let Some(p) = &self.revocation_path else {
            return Ok(());
        };
        let keys: Vec<&str> = p.split('/').filter(|k| !k.is_empty()).collect();
        let bad_key = |k: &&str| {
            k.len() > 768
                || k.chars().any(|c| {
                    matches!(c, '.' | '#' | '[' | ']') || (c as u32) < 0x20 || c == '\u{7f}'
                })
                || (k.contains('$') && *k != "$uid")
        };
        if !keys.contains(&"$uid") || keys.iter().any(bad_key) || keys.len() > 32 {
            return Err(format!(
                "revocationPath must be a database path with a $uid segment, such as \
                 metadata/$uid/revokeTime; got {p:?}"
            ));
        }
        Ok(())
    }
}

impl Auth {
    /// The project's database settings: the fields it set over the server's default.
    pub async fn database_policy(&self, project: &str) -> Result<DatabasePolicy> {
        self.settings_section(project, POLICY_KEY, &self.config().database_policy)
            .await
    }

    /// The project's own database-policy fields with `fields` laid over them, checked.
    pub(crate) async fn merged_database_policy(
        &self,
        project: &str,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        let (own, policy) = self
            .patched_section(project, POLICY_KEY, &self.config().database_policy, fields)
            .await?;
        policy.validate().map_err(|e| {
            Error::InvalidArgument(format!("Invalid JSON payload received. /{POLICY_KEY}/{e}"))
        })?;
        Ok(own)
    }
}

#[cfg(test)]
mod tests {
    use super::DatabasePolicy;

    #[test]
    fn revocation_paths_need_a_uid_segment_and_valid_keys() {
        let check = |p: &str| {
            DatabasePolicy {
                revocation_path: Some(p.into()),
            }
            .validate()
        };
        assert!(check("metadata/$uid/revokeTime").is_ok());
        assert!(check("/revoked/$uid").is_ok());
        for bad in [
            "metadata/revokeTime",
            "meta.data/$uid",
            "a/$uidx",
            "a/$other/$uid",
            "a#/$uid",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        assert!(DatabasePolicy::default().validate().is_ok());
    }
}
