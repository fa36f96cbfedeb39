//! RSA-2048 keys: generation and PKCS#8 persistence on aws-lc-rs, a self-signed certificate
//! per key (the Go Admin SDK parses only certificates), and the JWK form.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use serde_json::{json, Value};

use crate::b64;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("key material rejected: {0}")]
    Rejected(String),
    #[error("certificate: {0}")]
    Certificate(String),
}

/// A private signing key with its key id and self-signed certificate.
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
    pkcs8: Vec<u8>,
    cert_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

fn random_kid() -> Result<String, KeyError> {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| KeyError::Generate)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl SigningKey {
    /// A fresh RSA-2048 key with a random 160-bit hex `kid` (Google's shape).
    pub fn generate() -> Result<Self, KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
        let pkcs8 = pair
            .as_der()
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec();
        let kid = random_kid()?;
        let cert_pem = self_signed_certificate(&pkcs8, &kid)?;
        Ok(Self {
            kid,
            pair,
            pkcs8,
            cert_pem,
        })
    }

    /// Restores a key saved with [`SigningKey::pkcs8`] and [`SigningKey::cert_pem`].
    pub fn from_parts(kid: &str, pkcs8: &[u8], cert_pem: &str) -> Result<Self, KeyError> {
        let pair = KeyPair::from_pkcs8(pkcs8).map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self {
            kid: kid.to_owned(),
            pair,
            pkcs8: pkcs8.to_vec(),
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// Restores a key from a PKCS#8 PEM block ("PRIVATE KEY"), as in service-account files.
    pub fn from_pkcs8_pem(kid: &str, pem: &str) -> Result<Self, KeyError> {
        let der = pem_decode(pem, "PRIVATE KEY")
            .ok_or_else(|| KeyError::Rejected("not a PRIVATE KEY PEM block".into()))?;
        let pair = KeyPair::from_pkcs8(&der).map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self {
            kid: kid.to_owned(),
            pair,
            pkcs8: der,
            cert_pem: String::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn pkcs8_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.pkcs8)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| KeyError::Generate)?;
        Ok(sig)
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            kid: self.kid.clone(),
            rsa_der: self.pair.public_key().as_ref().to_vec(),
        }
    }
}

/// An RSA public key (PKCS#1 `RSAPublicKey` DER) with its key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub rsa_der: Vec<u8>,
}

impl PublicKey {
    /// Accepts PKCS#1 or SubjectPublicKeyInfo DER.
    pub fn from_der(kid: &str, der: &[u8]) -> Result<Self, KeyError> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self {
            kid: kid.to_owned(),
            rsa_der: key.as_ref().to_vec(),
        })
    }

    /// From a JWK's base64url `n` and `e`.
    pub fn from_jwk(kid: &str, n: &str, e: &str) -> Result<Self, KeyError> {
        use aws_lc_rs::encoding::AsDer;
        let n = b64::decode(n).ok_or_else(|| KeyError::Rejected("bad n".into()))?;
        let e = b64::decode(e).ok_or_else(|| KeyError::Rejected("bad e".into()))?;
        let spki = aws_lc_rs::rsa::PublicKeyComponents { n, e }
            .as_der()
            .map_err(|_| KeyError::Rejected("not an RSA key".into()))?;
        Self::from_der(kid, spki.as_ref())
    }

    pub fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.rsa_der)
            .verify(message, sig)
            .map_err(|_| KeyError::Rejected("bad signature".into()))
    }

    /// The JWK form used by JWKS endpoints.
    pub fn jwk(&self) -> Result<Value, KeyError> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(&self.rsa_der)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64::encode(key.modulus().big_endian_without_leading_zero()),
            "e": b64::encode(key.exponent().big_endian_without_leading_zero()),
        }))
    }
}

fn self_signed_certificate(pkcs8: &[u8], kid: &str) -> Result<String, KeyError> {
    let key = rcgen::KeyPair::try_from(pkcs8).map_err(|e| KeyError::Certificate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| KeyError::Certificate(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("firekeeper {kid}"));
    let cert = params
        .self_signed(&key)
        .map_err(|e| KeyError::Certificate(e.to_string()))?;
    Ok(cert.pem())
}

/// PEM armour, 64 columns as RFC 7468 asks.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Extracts the first PEM block with the given label.
pub fn pem_decode(pem: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_key_signs_like_the_original() {
        let key = SigningKey::generate().unwrap();
        assert!(key.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let again = SigningKey::from_parts(key.kid(), key.pkcs8(), key.cert_pem()).unwrap();
        let sig = again.sign(b"hello").unwrap();
        key.public_key().verify(b"hello", &sig).unwrap();
        assert!(key.public_key().verify(b"hellp", &sig).is_err());

        let from_pem = SigningKey::from_pkcs8_pem("x", &key.pkcs8_pem()).unwrap();
        key.public_key()
            .verify(b"m", &from_pem.sign(b"m").unwrap())
            .unwrap();
    }

    #[test]
    fn jwk_has_rsa_components() {
        let key = SigningKey::generate().unwrap();
        let jwk = key.public_key().jwk().unwrap();
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["kid"], key.kid());
        // 2048-bit modulus: 256 bytes -> 342 base64url characters.
        assert_eq!(jwk["n"].as_str().unwrap().len(), 342);
        let back = PublicKey::from_jwk(
            key.kid(),
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(back, key.public_key());
    }
}
