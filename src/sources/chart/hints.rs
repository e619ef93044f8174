//! The `helm create` hints: commented lines right below an empty `key: {}` that show what the
//! mapping could hold (`  # runAsNonRoot: true`). When the mapping is filled, a hint that is
//! exactly an entry being added (same key, same value) is uncommented in place instead of
//! being added a second time; the other hints stay comments.

use yaml_serde::Value;

use yaml_splice::style::line_end_after;
use yaml_splice::tree::NodeKind;
use yaml_splice::{NewValue, NodeId, Splice, Tree};

/// Hints that become entries: the splices that uncomment them and their keys.
#[derive(Debug, Default)]
pub struct Uncommented {
    pub splices: Vec<Splice>,
    pub keys: Vec<String>,
}

/// The column of the key whose value is `node`.
fn key_col(tree: &Tree, node: NodeId) -> Option<usize> {
    let parent = tree.node(node).parent?;
    let NodeKind::Map(entries) = &tree.node(parent).kind else {
        return None;
    };
    entries
        .iter()
        .find(|(_, v)| *v == node)
        .map(|(k, _)| tree.node(*k).col)
}

pub fn to_value(v: &NewValue) -> Value {
    match v {
        NewValue::Bool(b) => Value::Bool(*b),
        NewValue::Int(i) => Value::Number((*i).into()),
        NewValue::Str(s) => Value::String(s.clone()),
        NewValue::Seq(items) => Value::Sequence(items.iter().map(to_value).collect()),
        NewValue::Map(entries) => Value::Mapping(
            entries
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), to_value(v)))
                .collect(),
        ),
    }
}

/// The hint lines below the empty mapping `node` that equal entries of `entries`.
pub fn find(tree: &Tree, node: NodeId, entries: &[(String, NewValue)]) -> Uncommented {
    let mut found = Uncommented::default();
    let Some(key_col) = key_col(tree, node) else {
        return found;
    };
    let src = tree.src;
    // (line start, spaces before `#`, uncommented text)
    let mut hints: Vec<(usize, usize, String)> = Vec::new();
    let mut at = line_end_after(src, tree.node(node).end);
    while at < src.len() {
        let end = line_end_after(src, at);
        let line = src[at..end].trim_end_matches(['\r', '\n']);
        let spaces = line.len() - line.trim_start_matches(' ').len();
        let Some(body) = line[spaces..].strip_prefix("# ") else {
            break;
        };
        if spaces <= key_col {
            break;
        }
        hints.push((at, spaces, format!("{}{}", " ".repeat(spaces), body)));
        at = end;
    }
    let col = |t: &str| t.len() - t.trim_start_matches(' ').len();
    let Some(c0) = hints.first().map(|(_, _, t)| col(t)) else {
        return found;
    };
    let mut i = 0;
    while i < hints.len() {
        if col(&hints[i].2) != c0 {
            break;
        }
        let mut j = i + 1;
        while j < hints.len() && col(&hints[j].2) > c0 && !hints[j].2.trim().is_empty() {
            j += 1;
        }
        let group: Vec<&str> = hints[i..j]
            .iter()
            .map(|(_, _, t)| &t[c0.min(t.len())..])
            .collect();
        let parsed: Option<yaml_serde::Mapping> = yaml_serde::from_str(&group.join("\n")).ok();
        if let Some(map) = parsed.filter(|m| m.len() == 1) {
            let (k, v) = map.iter().next().expect("one entry");
            let wanted = k
                .as_str()
                .and_then(|k| entries.iter().find(|(e, _)| e == k));
            if let Some((key, value)) = wanted {
                if to_value(value) == *v && !found.keys.contains(key) {
                    found.keys.push(key.clone());
                    for (start, spaces, _) in &hints[i..j] {
                        found.splices.push(Splice {
                            start: start + spaces,
                            end: start + spaces + 2,
                            text: String::new(),
                        });
                    }
                }
            }
        }
        i = j;
    }
    found
}
