//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), as authenticator apps
//! compute them: HMAC-SHA1, six digits, 30-second steps. Written by hand: the algorithm is
//! a dozen lines over aws-lc-rs's HMAC, and the crates that wrap it bring clocks and
//! encodings of their own.

use aws_lc_rs::hmac;
use data_encoding::BASE32_NOPAD;

use crate::error::Result;
use crate::secrets::random_bytes;

pub const DIGITS: u32 = 6;
pub const PERIOD_SECS: i64 = 30;
pub const ALGORITHM: &str = "SHA1";

/// A new shared secret: 160 bits, the size RFC 4226 recommends for HMAC-SHA1.
pub fn new_secret() -> Result<[u8; 20]> {
    random_bytes::<20>()
}

/// The secret as users type it into an authenticator app: base32 without padding.
pub fn encode_secret(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// The time step of `unix_secs`.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(PERIOD_SECS)
}

/// The code of one time step.
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    // SHA-1 is what every authenticator app computes for TOTP; its collision weakness does
    // not touch HMAC.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        value % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The step whose code `code` is, looking `window` steps either side of `now_step` (clock
/// drift), and only at steps after `after` (a code is good once). Compared in constant time.
pub fn matching_step(
    secret: &[u8],
    code: &str,
    now_step: i64,
    window: i64,
    after: Option<i64>,
) -> Option<i64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut found = None;
    for step in now_step - window..=now_step + window {
        if after.is_some_and(|a| step <= a) {
            continue;
        }
        let expected = code_at_step(secret, step);
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes())
            .is_ok()
            && found.is_none()
        {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (the 8-digit values' last six digits).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at_step(secret, step_at(t)), code, "t={t}");
        }
    }

    #[test]
    fn window_and_replay() {
        let secret = b"12345678901234567890";
        let now = step_at(1_111_111_111);
        let code = code_at_step(secret, now - 1);
        assert_eq!(matching_step(secret, &code, now, 1, None), Some(now - 1));
        assert_eq!(matching_step(secret, &code, now, 0, None), None);
        assert_eq!(matching_step(secret, &code, now, 1, Some(now - 1)), None);
        assert_eq!(matching_step(secret, "12345", now, 1, None), None);
        assert_eq!(encode_secret(b"foo"), "MZXW6");
    }
}
