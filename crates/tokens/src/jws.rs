//! Compact JWS serialisation. Hand-written because the token shapes Firebase clients expect
//! (claim order, the emulator's empty-signature `alg: none`) are easier to guarantee here than
//! through a general JOSE library, and the cryptography itself comes from aws-lc-rs.

use serde_json::{Map, Value};

use crate::b64;
use crate::keys::{PublicKey, SigningKey};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signature does not verify")]
    BadSignature,
    #[error("signing failed")]
    SigningFailed,
}

/// A token split into its parts, signature not yet checked.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    signing_input_len: usize,
    raw: String,
    signature: Vec<u8>,
}

impl Decoded {
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    pub fn signature_is_empty(&self) -> bool {
        self.signature.is_empty()
    }

    /// Checks an RS256 signature with the given key.
    pub fn verify_rs256(&self, key: &PublicKey) -> Result<(), JwsError> {
        if self.alg() != Some("RS256") {
            return Err(JwsError::BadSignature);
        }
        key.verify(
            &self.raw.as_bytes()[..self.signing_input_len],
            &self.signature,
        )
        .map_err(|_| JwsError::BadSignature)
    }
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, JwsError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwsError::Malformed),
    }
}

/// Checks an RS256 token's signature in place, reading only its header: the cheap first
/// step of verification, before the payload is parsed.
pub fn verify_rs256_in_place(token: &str, key: &PublicKey) -> Result<(), JwsError> {
    let (input, sig) = token.rsplit_once('.').ok_or(JwsError::Malformed)?;
    let sig = b64::decode(sig).ok_or(JwsError::Malformed)?;
    key.verify(input.as_bytes(), &sig)
        .map_err(|_| JwsError::BadSignature)
}

/// The header of a compact JWS, undecoded payload left alone.
pub fn decode_header(token: &str) -> Result<Map<String, Value>, JwsError> {
    let h = token.split('.').next().ok_or(JwsError::Malformed)?;
    object(&b64::decode(h).ok_or(JwsError::Malformed)?)
}

/// The payload of a compact JWS (three segments), not verified.
pub fn decode_payload(token: &str) -> Result<Map<String, Value>, JwsError> {
    let mut parts = token.split('.');
    let (Some(_), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    object(&b64::decode(p).ok_or(JwsError::Malformed)?)
}

/// Splits and decodes a compact JWS without verifying it.
pub fn decode(token: &str) -> Result<Decoded, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header = object(&b64::decode(h).ok_or(JwsError::Malformed)?)?;
    let payload = object(&b64::decode(p).ok_or(JwsError::Malformed)?)?;
    let signature = b64::decode(s).ok_or(JwsError::Malformed)?;
    Ok(Decoded {
        header,
        payload,
        signing_input_len: h.len() + 1 + p.len(),
        raw: token.to_owned(),
        signature,
    })
}

fn signing_input(header: &Value, payload: &Map<String, Value>) -> String {
    let h = b64::encode(header.to_string().as_bytes());
    let p = b64::encode(Value::Object(payload.clone()).to_string().as_bytes());
    format!("{h}.{p}")
}

/// Signs `payload` with RS256; the header carries the key's `kid`.
pub fn sign_rs256(key: &SigningKey, payload: &Map<String, Value>) -> Result<String, JwsError> {
    let header = serde_json::json!({"alg": "RS256", "kid": key.kid(), "typ": "JWT"});
    sign_with_header(key, &header, payload)
}

/// Signs with an explicit header (custom tokens carry no `kid` in some SDKs).
pub fn sign_with_header(
    key: &SigningKey,
    header: &Value,
    payload: &Map<String, Value>,
) -> Result<String, JwsError> {
    let input = signing_input(header, payload);
    let sig = key
        .sign(input.as_bytes())
        .map_err(|_| JwsError::SigningFailed)?;
    Ok(format!("{input}.{}", b64::encode(&sig)))
}

/// The reference emulator's unsigned form: `alg: none` and an empty signature.
pub fn encode_unsigned(payload: &Map<String, Value>) -> String {
    let header = serde_json::json!({"alg": "none", "typ": "JWT"});
    format!("{}.", signing_input(&header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("sub".into(), "u1".into());
        m.insert("iat".into(), 1.into());
        m
    }

    #[test]
    fn rs256_round_trip_and_tamper() {
        let key = SigningKey::generate().unwrap();
        let token = sign_rs256(&key, &payload()).unwrap();
        let d = decode(&token).unwrap();
        assert_eq!(d.kid(), Some(key.kid()));
        d.verify_rs256(&key.public_key()).unwrap();

        let other = SigningKey::generate().unwrap();
        assert_eq!(
            d.verify_rs256(&other.public_key()),
            Err(JwsError::BadSignature)
        );
        // Swap the payload for another one: the signature must no longer hold.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64::encode(b"{\"sub\":\"admin\"}"),
            parts[2]
        );
        assert_eq!(
            decode(&forged).unwrap().verify_rs256(&key.public_key()),
            Err(JwsError::BadSignature)
        );
    }

    #[test]
    fn unsigned_tokens_end_with_a_dot() {
        let t = encode_unsigned(&payload());
        assert!(t.ends_with('.'));
        let d = decode(&t).unwrap();
        assert_eq!(d.alg(), Some("none"));
        assert!(d.signature_is_empty());
        assert_eq!(d.payload["sub"], "u1");
    }

    #[test]
    fn malformed_inputs() {
        for t in ["", "a", "a.b", "a.b.c.d", "!!.e30.", "e30.!!.", "W10.e30."] {
            assert_eq!(decode(t).err(), Some(JwsError::Malformed), "{t}");
        }
    }
}
