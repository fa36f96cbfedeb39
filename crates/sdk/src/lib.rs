//! The Firekeeper SDK for back ends: verify ID tokens the way the Firebase Admin SDKs do,
//! and answer `check_revoked` from memory.
//!
//! A [`Verifier`] fetches the server's public keys and caches them for the `max-age` the
//! server sends. With an admin token it also follows the server's revocation feed (a
//! long-polled stream of revokes, ended sessions, disables and deletions with a resumable
//! cursor), so a revocation check costs a hash-map lookup instead of a network round trip.
//!
//! Staleness: while the feed is healthy, a revocation is seen as soon as the server's
//! answer to the waiting poll arrives (milliseconds after the commit in the same server
//! process; within about a second for writes made by another process on the same
//! database). If the feed has not answered for longer than [`Config::max_staleness`]
//! (default 60 s), every `check_revoked` falls back to asking the server and fails with
//! [`VerifyError::Unavailable`] if it cannot: never silently stale.
//!
//! ```no_run
//! # async fn demo() -> Result<(), firekeeper_sdk::VerifyError> {
//! use firekeeper_sdk::{Config, Verifier};
//! let verifier = Verifier::new(
//!     Config::new("http://127.0.0.1:9099", "my-project").admin_token("fkadm_..."),
//! )?;
//! verifier.follow_revocations(); // background task
//! let claims = verifier.verify_id_token("eyJ...", true).await?;
//! println!("signed in as {}", claims.uid());
//! # Ok(()) }
//! ```

mod admin;
mod claims;
mod error;
mod extract;
mod keys;
mod revocations;
pub mod session;
mod verifier;

pub use claims::Claims;
pub use error::VerifyError;
pub use extract::SignedIn;
pub use verifier::{Config, FeedStatus, Verifier, SESSION_COOKIE_MAX, SESSION_COOKIE_MIN};
