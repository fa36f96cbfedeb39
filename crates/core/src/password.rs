//! Password hashing: argon2id for every password Firekeeper sets; the reference emulator's
//! `fakeHash:` form is understood only in emulator mode (for imported emulator exports).

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};
use crate::secrets::random_bytes;

/// argon2id cost. The defaults follow OWASP's recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    accept_fake: bool,
}

const FAKE_PREFIX: &str = "fakeHash:";

impl Hasher {
    pub fn new(cost: HashCost, accept_fake: bool) -> Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| Error::internal(format!("invalid password hash cost: {e}")))?;
        Ok(Self {
            params,
            accept_fake,
        })
    }

    /// A PHC string. CPU-heavy: call from a blocking thread.
    pub fn hash(&self, password: &str) -> Result<String> {
        let salt = SaltString::encode_b64(&random_bytes::<16>()?)
            .map_err(|e| Error::internal(e.to_string()))?;
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// CPU-heavy: call from a blocking thread. Unknown or malformed hashes never verify.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        if let Some(rest) = stored.strip_prefix(FAKE_PREFIX) {
            // fakeHash:salt=<salt>:password=<plaintext>
            return self.accept_fake
                && rest
                    .split_once(":password=")
                    .is_some_and(|(_, p)| p == password);
        }
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        // Verify with the parameters recorded in the hash, so a cost change keeps old
        // passwords working.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    /// The salt embedded in a stored hash, for export (`salt` on the wire).
    pub fn salt_of(stored: &str) -> Option<String> {
        if let Some(rest) = stored.strip_prefix(FAKE_PREFIX) {
            return rest
                .strip_prefix("salt=")
                .and_then(|r| r.split_once(':'))
                .map(|(s, _)| s.to_owned());
        }
        PasswordHash::new(stored)
            .ok()
            .and_then(|h| h.salt.map(|s| s.as_str().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashCost {
        HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn argon2_round_trip() {
        let h = Hasher::new(cheap(), false).unwrap();
        let stored = h.hash("hunter22").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(h.verify("hunter22", &stored));
        assert!(!h.verify("hunter23", &stored));
        assert!(Hasher::salt_of(&stored).is_some());
    }

    #[test]
    fn fake_hash_only_in_emulator_mode() {
        let fake = "fakeHash:salt=fakeSaltabc:password=secret1";
        assert!(Hasher::new(cheap(), true).unwrap().verify("secret1", fake));
        assert!(!Hasher::new(cheap(), true).unwrap().verify("secret2", fake));
        assert!(!Hasher::new(cheap(), false).unwrap().verify("secret1", fake));
        assert_eq!(Hasher::salt_of(fake).as_deref(), Some("fakeSaltabc"));
    }

    #[test]
    fn garbage_never_verifies() {
        let h = Hasher::new(cheap(), true).unwrap();
        assert!(!h.verify("x", ""));
        assert!(!h.verify("x", "$argon2id$broken"));
    }
}
