//! Small collections kept in a project's settings document (provider configurations,
//! tenants): paging by id and `updateMask` patches, as Google's admin APIs do them.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// `pageSize` as given: `default` when absent, else 1 to `max`.
pub(crate) fn page_size(raw: Option<&str>, default: usize, max: usize) -> Result<usize> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "Invalid JSON payload received. pageSize must be between 1 and {max}."
                ))
            }),
    }
}

/// Entries of one page: each id with its stored object.
pub(crate) type Entries<'a> = Vec<(&'a String, &'a Map<String, Value>)>;

/// One page of `all` in id order, after the id `token`; the next page's token when more
/// follow (the last id of this page).
pub(crate) fn page<'a>(
    all: &'a Map<String, Value>,
    size: usize,
    token: Option<&str>,
) -> (Entries<'a>, Option<String>) {
    let mut ids: Vec<&String> = all.keys().collect();
    ids.sort();
    let after = token.filter(|t| !t.is_empty());
    let mut entries: Entries<'a> = ids
        .into_iter()
        .filter(|id| after.is_none_or(|a| id.as_str() > a))
        .filter_map(|id| all.get(id).and_then(Value::as_object).map(|m| (id, m)))
        .take(size + 1)
        .collect();
    let next = (entries.len() > size).then(|| {
        entries.truncate(size);
        entries.last().map(|(id, _)| (*id).clone())
    });
    (entries, next.flatten())
}

/// Applies a PATCH: the top-level fields the `updateMask` names (`a,b.c` names `a` and `b`)
/// are taken from `given`, and cleared when `given` lacks them; without a mask, every field
/// `given` has. With `merge_objects`, an object merges into the stored one (so
/// `idpConfig.ssoUrl` keeps the certificates).
pub(crate) fn apply_mask(
    current: &mut Map<String, Value>,
    given: &Map<String, Value>,
    mask: Option<&str>,
    allowed: &[&str],
    merge_objects: bool,
) -> Result<()> {
    let fields: Vec<String> = match mask.filter(|m| !m.trim().is_empty()) {
        Some(m) => m
            .split(',')
            .map(|p| p.trim().split('.').next().unwrap_or_default().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        None => given.keys().cloned().collect(),
    };
    for field in fields {
        if !allowed.contains(&field.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "Invalid JSON payload received. Unknown field in updateMask: {field}"
            )));
        }
        match (given.get(&field), current.get_mut(&field)) {
            (Some(Value::Object(part)), Some(Value::Object(existing))) if merge_objects => {
                existing.extend(part.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            (Some(v), _) => {
                current.insert(field, v.clone());
            }
            (None, _) => {
                current.remove(&field);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_and_masks() {
        let all = json!({"b": {}, "a": {}, "c": {}});
        let all = all.as_object().unwrap();
        let (first, next) = page(all, 2, None);
        assert_eq!(
            first.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(next.as_deref(), Some("b"));
        let (rest, next) = page(all, 2, Some("b"));
        assert_eq!(rest.len(), 1);
        assert_eq!(next, None);
        assert!(page_size(Some("0"), 20, 100).is_err());
        assert_eq!(page_size(None, 20, 100).unwrap(), 20);

        let mut cur = json!({"x": 1, "o": {"k": 1, "j": 2}})
            .as_object()
            .unwrap()
            .clone();
        let given = json!({"o": {"k": 5}}).as_object().unwrap().clone();
        apply_mask(&mut cur, &given, Some("o.k,x"), &["x", "o"], true).unwrap();
        assert_eq!(Value::Object(cur.clone()), json!({"o": {"k": 5, "j": 2}}));
        assert!(apply_mask(&mut cur, &given, Some("nope"), &["x"], true).is_err());
    }
}
