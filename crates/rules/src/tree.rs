//! Reading and writing the JSON tree the rules look at. A stored tree has no nulls and no
//! empty objects; a leaf with a priority is `{".value": v, ".priority": p}` and an object
//! keeps its priority under `".priority"` (the export format).

use serde_json::{Map, Value};

/// The node at `path`, if it exists.
pub fn get<'a, S: AsRef<str>>(root: &'a Value, path: &[S]) -> Option<&'a Value> {
    let mut node = root;
    for seg in path {
        node = node.as_object()?.get(seg.as_ref())?;
    }
    (!node.is_null()).then_some(node)
}

/// A node's value without its priority: `{".value": v, …}` gives `v`.
pub fn value_of(node: &Value) -> &Value {
    match node.as_object().and_then(|o| o.get(".value")) {
        Some(v) => v,
        None => node,
    }
}

pub fn priority_of(node: &Value) -> Option<&Value> {
    node.as_object().and_then(|o| o.get(".priority"))
}

/// The node's children (its keys without a leading dot).
pub fn children(node: &Value) -> impl Iterator<Item = (&String, &Value)> {
    node.as_object()
        .into_iter()
        .flat_map(|o| o.iter())
        .filter(|(k, _)| !k.starts_with('.'))
}

/// A written value in stored form: nulls and empty objects dropped, arrays as objects
/// keyed by index.
pub fn normalize(value: Value) -> Value {
    match value {
        Value::Array(items) => normalize(Value::Object(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
        )),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let v = normalize(v);
                if !v.is_null() {
                    out.insert(k, v);
                }
            }
            let has_children = out.keys().any(|k| !k.starts_with('.'));
            match (has_children, out.remove(".value")) {
                (false, Some(v)) if !v.is_null() => match out.remove(".priority") {
                    Some(p) => {
                        let mut leaf = Map::new();
                        leaf.insert(".value".into(), v);
                        leaf.insert(".priority".into(), p);
                        Value::Object(leaf)
                    }
                    None => v,
                },
                (false, _) => Value::Null,
                (true, _) => Value::Object(out),
            }
        }
        other => other,
    }
}

/// `root` with the node at `path` replaced by `value` (already normalized; null deletes).
/// Parents left without children disappear.
pub fn set<S: AsRef<str>>(root: &mut Value, path: &[S], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *root = value;
        return;
    };
    // A leaf (a primitive, or `{".value": v, ".priority": p}`) has no children to delete;
    // writing below it turns it into an object.
    let leaf = !root.is_object() || root.get(".value").is_some();
    if leaf {
        if value.is_null() {
            return;
        }
        *root = Value::Object(Map::new());
    }
    let Value::Object(map) = root else { return };
    let key = first.as_ref();
    let mut child = map.remove(key).unwrap_or(Value::Null);
    set(&mut child, rest, value);
    if !child.is_null() {
        map.insert(key.to_owned(), child);
    }
    if !map.keys().any(|k| !k.starts_with('.')) {
        *root = Value::Null;
    }
}
