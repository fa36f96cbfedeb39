//! Database paths and keys, with the spec's limits (§7).

use crate::error::{DbError, DbResult};

pub const MAX_KEY_BYTES: usize = 768;
pub const MAX_DEPTH: usize = 32;

/// A key may not be empty, longer than 768 bytes, or hold `. $ # [ ] /` or ASCII control
/// characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && !key.chars().any(|c| {
            matches!(c, '.' | '$' | '#' | '[' | ']' | '/') || (c as u32) < 0x20 || c == '\u{7f}'
        })
}

/// A decoded URL path (`/a/b`) as its keys; empty segments are dropped.
pub fn parse(raw: &str) -> DbResult<Vec<String>> {
    let keys: Vec<String> = raw
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for k in &keys {
        if !valid_key(k) {
            return Err(DbError::bad_request(format!(
                "Invalid path: key '{k}' is empty, too long, or contains one of . $ # [ ] / or a control character"
            )));
        }
    }
    check_depth(&keys, 0)?;
    Ok(keys)
}

/// A path of `keys` plus `below` more levels must stay within the depth and length limits.
pub fn check_depth(keys: &[String], below: usize) -> DbResult<()> {
    if keys.len() + below > MAX_DEPTH {
        return Err(DbError::bad_request(format!(
            "Path specified exceeds the maximum depth that can be written ({MAX_DEPTH})"
        )));
    }
    let bytes: usize = keys.iter().map(|k| k.len() + 1).sum();
    if bytes > MAX_KEY_BYTES {
        return Err(DbError::bad_request(format!(
            "Path specified exceeds the maximum length that can be written ({MAX_KEY_BYTES} bytes)"
        )));
    }
    Ok(())
}

pub fn display(keys: &[String]) -> String {
    format!("/{}", keys.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_paths() {
        assert!(valid_key("users") && valid_key("é ü") && valid_key(&"k".repeat(768)));
        for bad in ["", "a.b", "a$", "a#", "a[", "a]", "a\u{1}", "a\u{7f}"] {
            assert!(!valid_key(bad), "{bad:?}");
        }
        assert!(!valid_key(&"k".repeat(769)));
        assert_eq!(parse("/a//b/").unwrap(), vec!["a", "b"]);
        assert!(parse("/").unwrap().is_empty());
        assert!(parse("/a.b").is_err());
        let deep = "/k".repeat(33);
        assert!(parse(&deep).is_err());
        assert!(parse(&"/k".repeat(32)).is_ok());
    }
}
