//! REST queries (spec §4.3): `orderBy` with `startAt` / `endAt` / `equalTo` and
//! `limitToFirst` / `limitToLast`, in Firebase's sort order. Filters apply first, then the
//! limit; the answer is an object, which clients sort again.

use std::cmp::Ordering;

use firekeeper_rules::{tree, Query};
use serde_json::{Map, Value};

use crate::error::{DbError, DbResult};

/// What a query orders by.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderBy {
    Key,
    Value,
    Priority,
    Child(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadQuery {
    pub order_by: Option<OrderBy>,
    pub start_at: Option<Value>,
    pub end_at: Option<Value>,
    pub equal_to: Option<Value>,
    pub limit_to_first: Option<usize>,
    pub limit_to_last: Option<usize>,
}

fn json_param(name: &str, raw: &str) -> DbResult<Value> {
    serde_json::from_str(raw).map_err(|_| {
        DbError::bad_request(format!(
            "{name} must be a JSON value (strings in double quotes)"
        ))
    })
}

fn limit_param(name: &str, raw: &str) -> DbResult<usize> {
    raw.parse::<usize>()
        .map_err(|_| DbError::bad_request(format!("{name} must be a non-negative integer")))
}

impl ReadQuery {
    /// From the request's parameters; `None` when it has none of them.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> DbResult<Option<Self>> {
        let mut q = ReadQuery::default();
        let mut any = false;
        if let Some(raw) = get("orderBy") {
            any = true;
            let Value::String(by) = json_param("orderBy", &raw)? else {
                return Err(DbError::bad_request("orderBy must be a JSON string"));
            };
            q.order_by = Some(match by.as_str() {
                "$key" => OrderBy::Key,
                "$value" => OrderBy::Value,
                "$priority" => OrderBy::Priority,
                child => OrderBy::Child(crate::path::parse(child)?),
            });
        }
        for (name, slot) in [
            ("startAt", &mut q.start_at),
            ("endAt", &mut q.end_at),
            ("equalTo", &mut q.equal_to),
        ] {
            if let Some(raw) = get(name) {
                any = true;
                let v = json_param(name, &raw)?;
                if v.is_object() || v.is_array() {
                    return Err(DbError::bad_request(format!("{name} must be a primitive")));
                }
                *slot = Some(v);
            }
        }
        if let Some(raw) = get("limitToFirst") {
            any = true;
            q.limit_to_first = Some(limit_param("limitToFirst", &raw)?);
        }
        if let Some(raw) = get("limitToLast") {
            any = true;
            q.limit_to_last = Some(limit_param("limitToLast", &raw)?);
        }
        if !any {
            return Ok(None);
        }
        if q.order_by.is_none() {
            return Err(DbError::bad_request(
                "orderBy must be defined when other query parameters are defined",
            ));
        }
        if q.limit_to_first.is_some() && q.limit_to_last.is_some() {
            return Err(DbError::bad_request(
                "limitToFirst and limitToLast cannot both be set",
            ));
        }
        if q.equal_to.is_some() && (q.start_at.is_some() || q.end_at.is_some()) {
            return Err(DbError::bad_request(
                "equalTo cannot be combined with startAt or endAt",
            ));
        }
        Ok(Some(q))
    }

    /// The rules' view of this query (spec §2.7).
    pub fn for_rules(&self) -> Query {
        Query {
            order_by_child: match &self.order_by {
                Some(OrderBy::Child(p)) => Some(p.join("/")),
                _ => None,
            },
            order_by_value: self.order_by == Some(OrderBy::Value),
            order_by_priority: self.order_by == Some(OrderBy::Priority),
            start_at: self.start_at.clone(),
            end_at: self.end_at.clone(),
            equal_to: self.equal_to.clone(),
            limit_to_first: self.limit_to_first.map(|n| n as f64),
            limit_to_last: self.limit_to_last.map(|n| n as f64),
        }
    }

    /// The `.indexOn` entry this query needs, if any (`$key` and `$priority` need none).
    pub fn needed_index(&self) -> Option<String> {
        match &self.order_by {
            Some(OrderBy::Value) => Some(".value".into()),
            Some(OrderBy::Child(p)) => Some(p.join("/")),
            _ => None,
        }
    }

    /// The children of `node` this query selects, as an object (null when none).
    pub fn apply(&self, node: Option<&Value>) -> Value {
        let Some(node) = node else {
            return Value::Null;
        };
        let order = self.order_by.clone().unwrap_or(OrderBy::Key);
        let sort_value = |key: &str, v: &Value| -> Value {
            match &order {
                OrderBy::Key => Value::String(key.to_owned()),
                OrderBy::Value => match tree::value_of(v) {
                    // Objects all sort alike (after primitives): no need to copy them.
                    Value::Object(_) => Value::Object(Map::new()),
                    other => other.clone(),
                },
                OrderBy::Priority => tree::priority_of(v).cloned().unwrap_or(Value::Null),
                OrderBy::Child(p) => match tree::get(v, p).map(tree::value_of) {
                    Some(Value::Object(_)) => Value::Object(Map::new()),
                    other => other.cloned().unwrap_or(Value::Null),
                },
            }
        };
        // Each child's sort value is computed once.
        let mut items: Vec<(Value, &String, &Value)> = tree::children(node)
            .map(|(k, v)| (sort_value(k, v), k, v))
            .collect();
        let cmp_values = |a: &Value, b: &Value| match order {
            OrderBy::Key => compare_keys(a.as_str().unwrap_or(""), b.as_str().unwrap_or("")),
            _ => compare_values(a, b),
        };
        items.sort_by(|(sa, ka, _), (sb, kb, _)| {
            cmp_values(sa, sb).then_with(|| compare_keys(ka, kb))
        });
        let (low, high) = match &self.equal_to {
            Some(e) => (Some(e), Some(e)),
            None => (self.start_at.as_ref(), self.end_at.as_ref()),
        };
        items.retain(|(s, _, _)| {
            low.is_none_or(|l| cmp_bound(&order, s, l) != Ordering::Less)
                && high.is_none_or(|h| cmp_bound(&order, s, h) != Ordering::Greater)
        });
        if let Some(n) = self.limit_to_first {
            items.truncate(n);
        }
        if let Some(n) = self.limit_to_last {
            let skip = items.len().saturating_sub(n);
            items.drain(..skip);
        }
        if items.is_empty() {
            return Value::Null;
        }
        let out: Map<String, Value> = items
            .into_iter()
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(out)
    }
}

/// A child's sort value against a bound. Under `$key` a bound is read as a key.
fn cmp_bound(order: &OrderBy, item: &Value, bound: &Value) -> Ordering {
    match order {
        OrderBy::Key => {
            let b = match bound {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            compare_keys(item.as_str().unwrap_or(""), &b)
        }
        _ => compare_values(item, bound),
    }
}

/// Keys that are 32-bit integers first, numerically; then the rest as strings.
pub fn compare_keys(a: &str, b: &str) -> Ordering {
    let int = |k: &str| -> Option<i64> {
        let digits = k.strip_prefix('-').unwrap_or(k);
        if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        k.parse::<i64>()
            .ok()
            .filter(|n| *n >= i32::MIN as i64 && *n <= i32::MAX as i64)
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// null < false < true < numbers < strings < objects.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(false) => 1,
            Value::Bool(true) => 2,
            Value::Number(_) => 3,
            Value::String(_) => 4,
            _ => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(params: &[(&str, &str)]) -> ReadQuery {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ReadQuery::from_params(|n| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
            .unwrap()
            .unwrap()
    }

    fn keys(v: &Value) -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn orders_filters_and_limits() {
        let dinos = json!({
            "a": {"height": 4}, "b": {"height": 2}, "c": {"height": "x"}, "d": {"w": 1}, "e": {"height": 2}
        });
        let by_height = q(&[("orderBy", "\"height\"")]);
        assert_eq!(
            keys(&by_height.apply(Some(&dinos))),
            ["d", "b", "e", "a", "c"]
        );
        let range = q(&[("orderBy", "\"height\""), ("startAt", "2"), ("endAt", "3")]);
        assert_eq!(keys(&range.apply(Some(&dinos))), ["b", "e"]);
        let last = q(&[("orderBy", "\"height\""), ("limitToLast", "2")]);
        assert_eq!(keys(&last.apply(Some(&dinos))), ["a", "c"]);
        let eq = q(&[("orderBy", "\"height\""), ("equalTo", "4")]);
        assert_eq!(keys(&eq.apply(Some(&dinos))), ["a"]);
        let nums = json!({"10": 1, "9": 1, "a": 1, "-1": 1});
        let by_key = q(&[("orderBy", "\"$key\""), ("limitToFirst", "3")]);
        assert_eq!(keys(&by_key.apply(Some(&nums))), ["-1", "9", "10"]);
        let from_b = q(&[("orderBy", "\"$key\""), ("startAt", "\"b\"")]);
        assert_eq!(from_b.apply(Some(&nums)), Value::Null);
        let vals = json!({"x": true, "y": 3, "z": "s", "w": false});
        let by_value = q(&[("orderBy", "\"$value\"")]);
        assert_eq!(keys(&by_value.apply(Some(&vals))), ["w", "x", "y", "z"]);
    }

    #[test]
    fn parameters_are_checked() {
        let parse = |params: &[(&str, &str)]| {
            let params: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ReadQuery::from_params(|n| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
        };
        assert_eq!(parse(&[]).unwrap(), None);
        assert!(parse(&[("limitToFirst", "1")]).is_err());
        assert!(parse(&[("orderBy", "height")]).is_err());
        assert!(parse(&[("orderBy", "\"h\""), ("limitToFirst", "-1")]).is_err());
        assert!(parse(&[("orderBy", "\"h\""), ("startAt", "{}")]).is_err());
        assert_eq!(
            parse(&[("orderBy", "\"a/b\"")])
                .unwrap()
                .unwrap()
                .needed_index(),
            Some("a/b".into())
        );
    }
}
