//! Token primitives for Firekeeper: compact JWS (RS256 and the emulator's unsigned `none`),
//! RSA-2048 signing keys with their self-signed certificates, and the published key formats
//! (x509 PEM maps and JWKS). Knows nothing about users.

mod b64;
pub mod jws;
pub mod keys;

pub use jws::{Decoded, JwsError};
pub use keys::{KeyError, PublicKey, SigningKey};
