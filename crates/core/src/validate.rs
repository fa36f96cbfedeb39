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

/// `scheme://host...` with an http(s) scheme and a non-empty host.
pub fn is_absolute_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !host.is_empty()
        && !host.starts_with(':')
        && !uri.chars().any(char::is_whitespace)
}

/// The host of an absolute http(s) URI, lower-cased, without port, for checks against an
/// allow-list. `None` for anything a browser could read as another host: user info
/// (`https://evil@good/`), backslashes (browsers take `\` for `/`, so
/// `https://evil\@good/` goes to `evil`) and control characters. Written by hand: a few
/// checks, stricter than a URL parser, which would normalise such forms instead of refusing.
pub fn uri_host(uri: &str) -> Option<String> {
    if !is_absolute_uri(uri) || uri.contains('\\') || uri.chars().any(char::is_control) {
        return None;
    }
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    Some(host.to_ascii_lowercase())
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
    fn uri_hosts() {
        assert_eq!(
            uri_host("https://App.Example.com:8443/x?y#z").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(uri_host("http://user@localhost/"), None);
        assert_eq!(uri_host("https://evil.tld\\@app.example.com/"), None);
        assert_eq!(uri_host("https://evil.tld\\.app.example.com/"), None);
        assert_eq!(uri_host("http://[::1]:9/").as_deref(), Some("::1"));
        assert_eq!(uri_host("/relative"), None);
        assert_eq!(uri_host("ftp://x.io/f"), None);
    }

    #[test]
    fn phones() {
        assert!(is_valid_phone("+15555550100"));
        for bad in ["15555550100", "+", "+0123", "+1-555", "+1234567890123456"] {
            assert!(!is_valid_phone(bad), "{bad}");
        }
    }
}
