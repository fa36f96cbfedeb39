//! A written value, checked and resolved before anything is stored (spec §4.5, §7): keys,
//! depth, string sizes, `.value` / `.priority`, and server values. Nothing is written when
//! any part is refused.

use firekeeper_rules::tree;
use serde_json::{Map, Number, Value};

use crate::error::{DbError, DbResult};
use crate::path::{self, MAX_DEPTH};

/// Strings above this are refused.
pub const MAX_STRING_BYTES: usize = 10 * 1024 * 1024;

/// `value` written at `at`, checked and with server values resolved (`now_ms` for
/// timestamps; `current` gives today's value at a path, for increments), in stored form.
pub fn prepare(
    at: &[String],
    value: Value,
    now_ms: i64,
    current: &dyn Fn(&[String]) -> Option<Value>,
) -> DbResult<Value> {
    let mut here = at.to_vec();
    let resolved = resolve(&mut here, value, now_ms, current)?;
    Ok(tree::normalize(resolved))
}

fn resolve(
    here: &mut Vec<String>,
    value: Value,
    now_ms: i64,
    current: &dyn Fn(&[String]) -> Option<Value>,
) -> DbResult<Value> {
    match value {
        Value::String(s) if s.len() > MAX_STRING_BYTES => Err(DbError::bad_request(format!(
            "Invalid data at {}: strings are limited to {MAX_STRING_BYTES} bytes",
            path::display(here)
        ))),
        Value::Array(items) => resolve(
            here,
            Value::Object(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v))
                    .collect(),
            ),
            now_ms,
            current,
        ),
        Value::Object(map) if map.contains_key(".sv") => {
            if map.len() != 1 {
                return Err(DbError::bad_request(format!(
                    "Invalid data at {}: a server value may not have siblings",
                    path::display(here)
                )));
            }
            server_value(here, &map[".sv"], now_ms, current)
        }
        Value::Object(map) => {
            let has_children = map.keys().any(|k| !k.starts_with('.'));
            let mut out = Map::new();
            for (k, v) in map {
                match k.as_str() {
                    ".priority" => {
                        let p = resolve(here, v, now_ms, current)?;
                        if !(p.is_null() || p.is_string() || p.is_number()) {
                            return Err(DbError::bad_request(format!(
                                "Invalid priority at {}: it must be a string, a number or null",
                                path::display(here)
                            )));
                        }
                        out.insert(k, p);
                    }
                    ".value" if has_children => {
                        return Err(DbError::bad_request(format!(
                            "Invalid data at {}: .value may not be mixed with children",
                            path::display(here)
                        )))
                    }
                    ".value" => {
                        let v = resolve(here, v, now_ms, current)?;
                        if v.is_object() {
                            return Err(DbError::bad_request(format!(
                                "Invalid data at {}: .value must be a primitive",
                                path::display(here)
                            )));
                        }
                        out.insert(k, v);
                    }
                    key if !path::valid_key(key) => {
                        return Err(DbError::bad_request(format!(
                            "Invalid key \"{key}\" at {}: keys must be non-empty, at most 768 bytes, without . $ # [ ] / or control characters",
                            path::display(here)
                        )))
                    }
                    _ => {
                        here.push(k.clone());
                        if here.len() > MAX_DEPTH {
                            return Err(DbError::bad_request(format!(
                                "Invalid data: it nests deeper than {MAX_DEPTH} levels"
                            )));
                        }
                        let v = resolve(here, v, now_ms, current);
                        here.pop();
                        out.insert(k, v?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        other => Ok(other),
    }
}

fn server_value(
    here: &[String],
    sv: &Value,
    now_ms: i64,
    current: &dyn Fn(&[String]) -> Option<Value>,
) -> DbResult<Value> {
    match sv {
        Value::String(s) if s == "timestamp" => Ok(Value::Number(now_ms.into())),
        Value::Object(o) if o.len() == 1 && o.get("increment").is_some_and(Value::is_number) => {
            let delta = &o["increment"];
            let base = current(here).map(|v| tree::value_of(&v).clone());
            match base.as_ref().and_then(Value::as_number) {
                Some(n) => add(n, delta.as_number().unwrap_or(&Number::from(0))).ok_or_else(|| {
                    DbError::bad_request(format!(
                        "Invalid data at {}: the increment overflows",
                        path::display(here)
                    ))
                }),
                None => Ok(delta.clone()),
            }
        }
        _ => Err(DbError::bad_request(format!(
            "Invalid data at {}: unknown server value {sv}",
            path::display(here)
        ))),
    }
}

/// Integers stay integers while they fit; otherwise the sum is a double. `None` when even
/// a double cannot hold it.
fn add(a: &Number, b: &Number) -> Option<Value> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(sum) = x.checked_add(y) {
            return Some(Value::Number(sum.into()));
        }
    }
    let sum = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
    Number::from_f64(sum).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(p: &str) -> Vec<String> {
        crate::path::parse(p).unwrap()
    }

    #[test]
    fn server_values_resolve() {
        let current = |p: &[String]| (p.join("/") == "c/n").then(|| json!(5));
        let v = prepare(
            &at("/c"),
            json!({"t": {".sv": "timestamp"}, "n": {".sv": {"increment": 2}}, "m": {".sv": {"increment": 1.5}}}),
            77,
            &current,
        )
        .unwrap();
        assert_eq!(v, json!({"t": 77, "n": 7, "m": 1.5}));
        assert!(prepare(&at("/c"), json!({".sv": "bogus"}), 0, &|_| None).is_err());
        assert!(prepare(&at("/c"), json!({".sv": "timestamp", "x": 1}), 0, &|_| None).is_err());
        let huge = |_: &[String]| Some(json!(f64::MAX));
        assert!(prepare(&at("/c"), json!({".sv": {"increment": f64::MAX}}), 0, &huge).is_err());
    }

    #[test]
    fn refusals() {
        let none = |_: &[String]| None;
        assert!(prepare(&at("/a"), json!({"b.c": 1}), 0, &none).is_err());
        assert!(prepare(&at("/a"), json!({"": 1}), 0, &none).is_err());
        assert!(prepare(&at("/a"), json!({".value": 1, "x": 2}), 0, &none).is_err());
        assert!(prepare(&at("/a"), json!({".priority": true}), 0, &none).is_err());
        let mut deep = json!(1);
        for _ in 0..32 {
            deep = json!({ "k": deep });
        }
        assert!(prepare(&at("/a"), deep, 0, &none).is_err());
        assert!(prepare(&[], json!("x".repeat(MAX_STRING_BYTES + 1)), 0, &none).is_err());
        assert_eq!(
            prepare(&at("/a"), json!({"x": [1, null, {"y": null}]}), 0, &none).unwrap(),
            json!({"x": {"0": 1}})
        );
        assert_eq!(
            prepare(&at("/a"), json!({".value": "v", ".priority": 3}), 0, &none).unwrap(),
            json!({".value": "v", ".priority": 3})
        );
    }
}
