//! Random identifiers, opaque secrets, hashing, and the master key that seals private keys
//! at rest.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{Error, Result};

pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::internal("system random failed"))?;
    Ok(b)
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` characters of `[A-Za-z0-9]`, unbiased (rejection sampling).
pub fn random_alnum(len: usize) -> Result<String> {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes::<64>()? {
            // 248 = 62 * 4: values above it would bias the modulo.
            if b < 248 && out.len() < len {
                out.push(ALNUM[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// A uid as the emulator and production make them: 28 alphanumerics.
pub fn new_local_id() -> Result<String> {
    random_alnum(28)
}

/// An opaque secret of 384 random bits, base64url.
pub fn new_secret() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<48>()?))
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// AES-256-GCM key that seals signing keys before they reach the store, so a copy of the
/// database alone does not leak them.
pub struct MasterKey(LessSafeKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::internal("master key must be 32 bytes"))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    pub fn generate_bytes() -> Result<[u8; 32]> {
        random_bytes::<32>()
    }

    /// nonce || ciphertext || tag
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>> {
        self.seal_for(plain, b"")
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        self.open_for(sealed, b"")
    }

    /// Sealed for one context (`aad`): it opens only for the same context, so a sealed
    /// value cannot be moved to another row.
    pub fn seal_for(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut buf = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| Error::internal("sealing failed"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open_for(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::internal("sealed value too short"));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::internal("bad nonce"))?;
        let mut buf = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| {
                Error::internal("cannot open a sealed key: wrong master key for this database?")
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_wrong_key() {
        let k = MasterKey::from_bytes(&MasterKey::generate_bytes().unwrap()).unwrap();
        let sealed = k.seal(b"secret").unwrap();
        assert_eq!(k.open(&sealed).unwrap(), b"secret");
        let other = MasterKey::from_bytes(&MasterKey::generate_bytes().unwrap()).unwrap();
        assert!(other.open(&sealed).is_err());
        let bound = k.seal_for(b"token", b"session-1").unwrap();
        assert_eq!(k.open_for(&bound, b"session-1").unwrap(), b"token");
        assert!(k.open_for(&bound, b"session-2").is_err());
    }

    #[test]
    fn ids_have_the_right_shape() {
        let id = new_local_id().unwrap();
        assert_eq!(id.len(), 28);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, new_local_id().unwrap());
        assert!(new_secret().unwrap().len() >= 64);
    }
}
