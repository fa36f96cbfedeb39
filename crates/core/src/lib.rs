//! Firekeeper's domain: accounts, sign-in sessions, claims, signing-key rotation, access
//! control and the error codes of the Identity Toolkit API. No HTTP and no SQL here: storage
//! is reached through the [`store::Store`] port and time through the injected [`Clock`].

pub mod access;
pub mod blocking;
pub mod claims;
pub mod clock;
pub mod credentials;
pub mod email;
pub mod error;
pub mod idp;
pub mod keyring;
pub mod metrics;
pub mod model;
pub mod password;
pub mod ratelimit;
pub mod saml;
pub mod secrets;
pub mod service;
pub mod sms;
pub mod store;
pub mod totp;
pub mod validate;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use model::{Account, Scope, Session};
pub use service::{Auth, AuthConfig, Mode};
pub use store::{Store, StoreError};
