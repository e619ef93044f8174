//! Helm's values arithmetic, shared by whoever layers values the way Helm does (a chart's
//! override files, a GitOps release's values from elsewhere and inline values).

use serde_json::Value;

/// Helm's merge of a values layer over another: mappings merge key by key, anything else
/// (lists included) replaces, and null deletes the key.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(slot) = b.get_mut(k) {
                    merge(slot, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_lists_replace_and_null_deletes() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        merge(&mut base, &json!({"a": {"c": [3]}, "d": null}));
        assert_eq!(base, json!({"a": {"b": 1, "c": [3]}}));
    }
}
