//! Input formats. Written by hand: the rules are a few lines and no crate matches Firebase's
//! exact acceptance.

/// A practical address check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= 254
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// E.164: `+`, a non-zero digit, then up to 14 more digits.
pub fn is_valid_phone(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Emails are stored lower-cased, as Firebase canonicalises them.
pub fn canonical_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub fn is_valid_local_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= 128 && !id.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.org", "x@localhost"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "", "plain", "@b.co", "a@", "a b@c.d", "a@.com", "a@b.", "a@@b.c",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(is_valid_phone("+15555550100"));
        for bad in ["15555550100", "+", "+0123", "+1-555", "+1234567890123456"] {
            assert!(!is_valid_phone(bad), "{bad}");
        }
    }
}
