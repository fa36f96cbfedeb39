//! ETags (spec §4.4): a digest of the node's canonical JSON (keys sorted, so the order
//! writes arrived in does not matter); a missing node's ETag is `null_etag`, which clients
//! send as "create only if absent".

use base64::Engine;
use serde_json::Value;

pub const NULL_ETAG: &str = "null_etag";

pub fn of(node: Option<&Value>) -> String {
    match node {
        None | Some(Value::Null) => NULL_ETAG.into(),
        Some(v) => {
            let mut text = String::new();
            canonical(v, &mut text);
            let digest = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                text.as_bytes(),
            );
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        }
    }
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn order_does_not_matter_and_null_has_its_own() {
        let a = super::of(Some(&json!({"a": 1, "b": {"c": 2, "d": 3}})));
        let b = super::of(Some(&json!({"b": {"d": 3, "c": 2}, "a": 1})));
        assert_eq!(a, b);
        assert_eq!(a.len(), 28);
        assert_ne!(a, super::of(Some(&json!({"a": 2}))));
        assert_eq!(super::of(None), "null_etag");
    }
}
