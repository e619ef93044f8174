//! Writing what a release's inline values need ([`super::values::Need`]) as engine changes:
//! into the values mapping (keys that exist are walked, the first missing one gets the rest of
//! the path as nested mappings, all new keys of one mapping in one insertion), or as a new
//! values key where the release has none.

use yaml_splice::{Change, NewValue, Ref, Tree};

use super::values::Need;

/// The needs as a tree of keys, in the order they were asked for.
#[derive(Debug, Default)]
struct Trie {
    value: Option<NewValue>,
    append: Vec<NewValue>,
    children: Vec<(String, Trie)>,
}

impl Trie {
    fn of(needs: &[Need]) -> Trie {
        let mut root = Trie::default();
        for need in needs {
            let (path, value, append) = match need {
                Need::Set(p, v) => (p, v, false),
                Need::Append(p, v) => (p, v, true),
            };
            let node = path.iter().fold(&mut root, |node, key| node.child(key));
            if append {
                node.append.push(value.clone());
            } else {
                node.value = Some(value.clone());
            }
        }
        root
    }

    fn child(&mut self, key: &str) -> &mut Trie {
        let at = match self.children.iter().position(|(k, _)| k == key) {
            Some(at) => at,
            None => {
                self.children.push((key.to_string(), Trie::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[at].1
    }

    /// The whole subtree as one value to write.
    fn to_value(&self) -> NewValue {
        match &self.value {
            Some(v) => v.clone(),
            None if !self.append.is_empty() => NewValue::Seq(self.append.clone()),
            None => NewValue::Map(
                self.children
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_value()))
                    .collect(),
            ),
        }
    }
}

/// The needs as a new mapping (for a release that has no values key yet).
pub fn as_mapping(needs: &[Need]) -> NewValue {
    Trie::of(needs).to_value()
}

/// The changes that give the mapping `base` every need. An error names a path whose existing
/// value is not a mapping where one is needed.
pub fn changes(tree: &Tree, base: Ref, needs: &[Need]) -> Result<Vec<(Change, Ref)>, String> {
    let mut out = Vec::new();
    write(tree, base, &Trie::of(needs), &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn write(
    tree: &Tree,
    map: Ref,
    trie: &Trie,
    path: &mut Vec<String>,
    out: &mut Vec<(Change, Ref)>,
) -> Result<(), String> {
    if tree.is_empty(map) && !tree.is_seq(map) {
        out.push((
            Change::Fill {
                node: map.id,
                value: trie.to_value(),
            },
            map,
        ));
        return Ok(());
    }
    if !tree.is_map(map) {
        return Err(format!("`{}` is not a mapping", path.join(".")));
    }
    let mut new_entries = Vec::new();
    for (key, child) in &trie.children {
        path.push(key.clone());
        match tree.get(map, key) {
            None => new_entries.push((key.clone(), child.to_value())),
            Some(node) => write_existing(tree, node, child, path, out)?,
        }
        path.pop();
    }
    if !new_entries.is_empty() {
        out.push((
            Change::Insert {
                map: map.id,
                entries: new_entries,
            },
            map,
        ));
    }
    Ok(())
}

fn write_existing(
    tree: &Tree,
    node: Ref,
    trie: &Trie,
    path: &mut Vec<String>,
    out: &mut Vec<(Change, Ref)>,
) -> Result<(), String> {
    if !trie.append.is_empty() && tree.is_seq(node) {
        out.push((
            Change::Append {
                seq: node.id,
                items: trie.append.clone(),
            },
            node,
        ));
        return Ok(());
    }
    match &trie.value {
        Some(value) if tree.scalar(node).is_some() && !tree.is_empty(node) => {
            out.push((
                Change::Replace {
                    node: node.id,
                    value: value.clone(),
                },
                node,
            ));
            Ok(())
        }
        Some(value) if tree.is_empty(node) => {
            out.push((
                Change::Fill {
                    node: node.id,
                    value: value.clone(),
                },
                node,
            ));
            Ok(())
        }
        Some(_) => Err(format!(
            "`{}` holds a list or mapping where a single value is needed",
            path.join(".")
        )),
        None => write(tree, node, trie, path, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(path: &str, v: NewValue) -> Need {
        Need::Set(path.split('.').map(str::to_string).collect(), v)
    }

    fn edit(src: &str, needs: &[Need]) -> String {
        let tree = Tree::parse(src).unwrap();
        let root = Ref::root(tree.docs[0].root.unwrap());
        let values = tree.get(root, "values").unwrap();
        let changes = changes(&tree, values, needs).unwrap();
        yaml_splice::apply_changes(&tree, changes.into_iter().map(|(c, _)| c).collect())
            .unwrap()
            .text
    }

    #[test]
    fn existing_keys_are_walked_and_missing_ones_inserted_once_per_mapping() {
        let src = "values:\n  # the web tier\n  securityContext:\n    runAsUser: 0 # legacy\n  replicas: 2\n";
        let out = edit(
            src,
            &[
                set("securityContext.runAsUser", NewValue::Int(1000)),
                set("securityContext.runAsNonRoot", NewValue::Bool(true)),
                set("podSecurityContext.fsGroup", NewValue::Int(1000)),
                set(
                    "podSecurityContext.seccompProfile.type",
                    NewValue::str("RuntimeDefault"),
                ),
            ],
        );
        assert_eq!(
            out,
            "values:\n  # the web tier\n  securityContext:\n    runAsUser: 1000 # legacy\n    runAsNonRoot: true\n  replicas: 2\n  podSecurityContext:\n    fsGroup: 1000\n    seccompProfile:\n      type: RuntimeDefault\n"
        );
    }

    #[test]
    fn an_empty_mapping_is_filled_and_a_scalar_in_the_way_is_an_error() {
        assert_eq!(
            edit("values: {}\n", &[set("a.b", NewValue::Int(1))]),
            "values:\n  a:\n    b: 1\n"
        );
        let tree = Tree::parse("values:\n  a: 3\n").unwrap();
        let root = Ref::root(tree.docs[0].root.unwrap());
        let values = tree.get(root, "values").unwrap();
        assert_eq!(
            changes(&tree, values, &[set("a.b", NewValue::Int(1))]).unwrap_err(),
            "`a` is not a mapping"
        );
    }
}
