//! Structural JSON comparison that cares about what Go clients can observe: key order, null
//! versus `[]`, missing or extra keys, and every value, after masking the values that change on
//! every run (timestamps, ports, memory figures).
//!
//! `serde_json` with `preserve_order` keeps the wire order of keys, but its map equality ignores
//! order, so the comparison walks both trees itself and reports every difference with its path.

use serde_json::Value;

/// Calls `f` on every value in the tree with its path, for example `topics[].channels[].depth`.
///
/// Array elements share the path `name[]`, which keeps masking rules short. Children are visited
/// before their parent, so a rule may replace a whole subtree after its leaves were seen.
pub fn walk_mut(value: &mut Value, f: &mut dyn FnMut(&str, &mut Value)) {
    walk_inner(value, "", f);
}

fn walk_inner(value: &mut Value, path: &str, f: &mut dyn FnMut(&str, &mut Value)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk_inner(v, &child, f);
            }
        }
        Value::Array(items) => {
            let child = format!("{path}[]");
            for v in items.iter_mut() {
                walk_inner(v, &child, f);
            }
        }
        _ => {}
    }
    f(path, value);
}

/// A placeholder that keeps only the JSON type of a masked value, so a masked number still has to
/// be a number.
pub fn type_placeholder(value: &Value) -> Value {
    let name = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    Value::String(format!("<masked {name}>"))
}

/// Replaces every leaf under this value with its type placeholder, keeping keys and their order.
pub fn mask_leaves(value: &mut Value) {
    match value {
        Value::Object(map) => map.values_mut().for_each(mask_leaves),
        Value::Array(items) => items.iter_mut().for_each(mask_leaves),
        leaf => *leaf = type_placeholder(leaf),
    }
}

/// Lists every difference between `expected` and `actual`, each prefixed by its path.
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_inner(expected, actual, "$", &mut out);
    out
}

fn diff_inner(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let e_keys: Vec<&String> = e.keys().collect();
            let a_keys: Vec<&String> = a.keys().collect();
            let missing: Vec<&&String> = e_keys
                .iter()
                .filter(|k| !a.contains_key(k.as_str()))
                .collect();
            let extra: Vec<&&String> = a_keys
                .iter()
                .filter(|k| !e.contains_key(k.as_str()))
                .collect();
            if !missing.is_empty() {
                out.push(format!("{path}: missing keys {missing:?}"));
            }
            if !extra.is_empty() {
                out.push(format!("{path}: unexpected keys {extra:?}"));
            }
            let e_common: Vec<&&String> = e_keys
                .iter()
                .filter(|k| a.contains_key(k.as_str()))
                .collect();
            let a_common: Vec<&&String> = a_keys
                .iter()
                .filter(|k| e.contains_key(k.as_str()))
                .collect();
            if e_common != a_common {
                out.push(format!(
                    "{path}: key order differs: expected {e_common:?}, got {a_common:?}"
                ));
            }
            for (k, ev) in e {
                if let Some(av) = a.get(k) {
                    diff_inner(ev, av, &format!("{path}.{k}"), out);
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} elements, got {}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff_inner(ev, av, &format!("{path}[{i}]"), out);
            }
        }
        (e, a) => {
            if e != a {
                out.push(format!("{path}: expected {}, got {}", short(e), short(a)));
            }
        }
    }
}

/// A value rendered for a message, cut to a readable length.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 160 {
        let cut: String = text.chars().take(160).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_trees_have_no_diff() {
        let v = json!({"a": [1, {"b": null}], "c": "x"});
        assert!(diff(&v, &v.clone()).is_empty());
    }

    #[test]
    fn key_order_null_versus_empty_and_values_are_reported() {
        let expected: Value = serde_json::from_str(r#"{"a":1,"b":null,"c":[1,2]}"#).unwrap();
        let actual: Value = serde_json::from_str(r#"{"b":[],"a":2,"c":[1],"d":0}"#).unwrap();
        let d = diff(&expected, &actual);
        assert!(d.iter().any(|m| m.contains("key order differs")), "{d:?}");
        assert!(
            d.iter().any(|m| m.contains("$.b: expected null, got []")),
            "{d:?}"
        );
        assert!(
            d.iter().any(|m| m.contains("$.a: expected 1, got 2")),
            "{d:?}"
        );
        assert!(
            d.iter()
                .any(|m| m.contains("$.c: expected 2 elements, got 1")),
            "{d:?}"
        );
        assert!(
            d.iter().any(|m| m.contains("unexpected keys [\"d\"]")),
            "{d:?}"
        );
    }

    #[test]
    fn walking_reports_array_paths_and_masking_keeps_types() {
        let mut v = json!({"topics": [{"depth": 3}], "memory": {"x": 1, "y": "s"}});
        let mut paths = Vec::new();
        walk_mut(&mut v, &mut |p, value| {
            paths.push(p.to_string());
            if p == "memory" {
                mask_leaves(value);
            }
        });
        assert!(paths.contains(&"topics[].depth".to_string()), "{paths:?}");
        assert_eq!(
            v["memory"],
            json!({"x": "<masked number>", "y": "<masked string>"})
        );
        assert_eq!(v["topics"][0]["depth"], json!(3));
    }
}
