//! Properties of the engine on generated documents, checked against an independent parser
//! (yaml_serde): after any set of changes, the new text loads as the old data with exactly
//! those changes, and every comment of the old text is still there, in order.

use proptest::prelude::*;
use yaml_serde::{Mapping, Value};
use yaml_splice::{apply_changes, Change, NewValue, Ref, Tree};

/// A generated document node; every mapping key is unique within its mapping.
#[derive(Clone, Debug)]
enum Node {
    Int(i64),
    Bool(bool),
    Word(String),
    /// A mapping, in flow style when `flow` (then holding scalars only).
    Map {
        entries: Vec<(String, Node)>,
        flow: bool,
    },
    /// A list of scalars, in flow style when `flow`.
    Seq {
        items: Vec<Node>,
        flow: bool,
    },
}

/// How the generated text is laid out.
#[derive(Clone, Copy, Debug)]
struct Layout {
    step: usize,
    seq_offset: usize,
    crlf: bool,
}

fn scalar() -> impl Strategy<Value = Node> {
    prop_oneof![
        (-5000i64..5000).prop_map(Node::Int),
        any::<bool>().prop_map(Node::Bool),
        "w[a-z]{0,6}".prop_map(Node::Word),
    ]
}

fn entries(
    value: impl Strategy<Value = Node>,
    max: usize,
) -> impl Strategy<Value = Vec<(String, Node)>> {
    prop::collection::vec(value, 1..max).prop_map(|values| {
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("k{i}"), v))
            .collect()
    })
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => scalar(),
        1 => (entries(scalar(), 4)).prop_map(|entries| Node::Map { entries, flow: true }),
        1 => (prop::collection::vec(scalar(), 0..4), any::<bool>())
            .prop_map(|(items, flow)| Node::Seq { flow: flow || items.is_empty(), items }),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        entries(inner, 5).prop_map(|entries| Node::Map {
            entries,
            flow: false,
        })
    })
}

fn scalar_text(node: &Node) -> String {
    match node {
        Node::Int(i) => i.to_string(),
        Node::Bool(b) => b.to_string(),
        Node::Word(w) => w.clone(),
        _ => unreachable!("a scalar"),
    }
}

fn flow_text(node: &Node) -> String {
    match node {
        Node::Map { entries, .. } => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}: {}", scalar_text(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Node::Seq { items, .. } => {
            let inner: Vec<String> = items.iter().map(scalar_text).collect();
            format!("[{}]", inner.join(", "))
        }
        scalar => scalar_text(scalar),
    }
}

/// Writes a block mapping's entries at `col`; a comment follows some lines (chosen by `comments`).
fn write_block(
    entries: &[(String, Node)],
    col: usize,
    layout: Layout,
    comments: &mut impl Iterator<Item = bool>,
    out: &mut Vec<String>,
) {
    let pad = " ".repeat(col);
    for (key, value) in entries {
        let comment = if comments.next().unwrap_or(false) {
            format!("  # note on {key}")
        } else {
            String::new()
        };
        match value {
            Node::Map {
                entries,
                flow: false,
            } => {
                out.push(format!("{pad}{key}:{comment}"));
                write_block(entries, col + layout.step, layout, comments, out);
            }
            Node::Seq { items, flow: false } => {
                out.push(format!("{pad}{key}:{comment}"));
                let dash = " ".repeat(col + layout.seq_offset);
                for item in items {
                    out.push(format!("{dash}- {}", scalar_text(item)));
                }
            }
            other => out.push(format!("{pad}{key}: {}{comment}", flow_text(other))),
        }
    }
}

fn document(root: &[(String, Node)], layout: Layout, comments: &[bool]) -> String {
    let mut lines = vec!["# generated".to_string()];
    write_block(root, 0, layout, &mut comments.iter().copied(), &mut lines);
    let newline = if layout.crlf { "\r\n" } else { "\n" };
    lines.iter().map(|l| format!("{l}{newline}")).collect()
}

/// One change, addressed by the path of keys (and list indices) from the root.
#[derive(Clone, Debug)]
enum Planned {
    Insert(Vec<String>, String, NewValue),
    Replace(Vec<String>, NewValue),
    Append(Vec<String>, NewValue),
}

fn new_scalar() -> impl Strategy<Value = NewValue> {
    prop_oneof![
        (-9i64..100_000).prop_map(NewValue::Int),
        any::<bool>().prop_map(NewValue::Bool),
        // Strings that a plain scalar would read as something else, or that need quotes.
        prop::sample::select(vec![
            "ALL", "true", "null", "1000", "a: b", "#x", "", "it's", "-", "~", "x y"
        ])
        .prop_map(NewValue::str),
    ]
}

fn new_value() -> impl Strategy<Value = NewValue> {
    prop_oneof![
        3 => new_scalar(),
        1 => prop::collection::vec(new_scalar(), 0..3).prop_map(NewValue::Seq),
        1 => prop::collection::vec(new_scalar(), 1..3).prop_map(|vs| {
            NewValue::Map(vs.into_iter().enumerate().map(|(i, v)| (format!("n{i}"), v)).collect())
        }),
    ]
}

/// Every place a change can go: (path, is it a mapping / a list / a scalar value).
fn places(entries: &[(String, Node)], path: &[String], out: &mut Vec<(Vec<String>, &'static str)>) {
    out.push((path.to_vec(), "map"));
    for (key, value) in entries {
        let mut here = path.to_vec();
        here.push(key.clone());
        match value {
            Node::Map { entries, .. } => places(entries, &here, out),
            Node::Seq { .. } => out.push((here, "seq")),
            _ => out.push((here, "scalar")),
        }
    }
}

fn plan(root: &[(String, Node)], picks: &[(prop::sample::Index, NewValue)]) -> Vec<Planned> {
    let mut all = Vec::new();
    places(root, &[], &mut all);
    let mut used = std::collections::HashSet::new();
    let mut planned = Vec::new();
    for (n, (index, value)) in picks.iter().enumerate() {
        let (path, kind) = index.get(&all).clone();
        if !used.insert(path.clone()) {
            continue;
        }
        planned.push(match kind {
            "map" => Planned::Insert(path, format!("added{n}"), value.clone()),
            "seq" => Planned::Append(path, value.clone()),
            _ => Planned::Replace(path, scalar_of(value)),
        });
    }
    planned
}

/// A scalar stands in a scalar's place.
fn scalar_of(value: &NewValue) -> NewValue {
    match value {
        NewValue::Seq(_) | NewValue::Map(_) => NewValue::Int(7),
        scalar => scalar.clone(),
    }
}

fn to_value(v: &NewValue) -> Value {
    match v {
        NewValue::Bool(b) => Value::Bool(*b),
        NewValue::Int(i) => Value::Number((*i).into()),
        NewValue::Str(s) => Value::String(s.clone()),
        NewValue::Seq(items) => Value::Sequence(items.iter().map(to_value).collect()),
        NewValue::Map(entries) => {
            let mut map = Mapping::new();
            for (k, v) in entries {
                map.insert(Value::String(k.clone()), to_value(v));
            }
            Value::Mapping(map)
        }
    }
}

fn at<'v>(mut value: &'v mut Value, path: &[String]) -> &'v mut Value {
    for key in path {
        value = value.get_mut(key.as_str()).expect("the path exists");
    }
    value
}

/// The old data with the planned changes, computed without the engine.
fn expected(old: &str, planned: &[Planned]) -> Value {
    let mut data: Value = yaml_serde::from_str(old).expect("the generated text loads");
    for change in planned {
        match change {
            Planned::Insert(path, key, value) => {
                let map = at(&mut data, path).as_mapping_mut().expect("a mapping");
                map.insert(Value::String(key.clone()), to_value(value));
            }
            Planned::Replace(path, value) => *at(&mut data, path) = to_value(value),
            Planned::Append(path, value) => {
                let seq = at(&mut data, path).as_sequence_mut().expect("a list");
                seq.push(to_value(value));
            }
        }
    }
    data
}

fn lookup(tree: &Tree, path: &[String]) -> Ref {
    let mut r = Ref::root(tree.docs[0].root.expect("a document"));
    for key in path {
        r = tree.get(r, key).expect("the path exists in the tree");
    }
    r
}

fn changes(tree: &Tree, planned: &[Planned]) -> Vec<Change> {
    planned
        .iter()
        .map(|p| match p {
            Planned::Insert(path, key, value) => Change::Insert {
                map: lookup(tree, path).id,
                entries: vec![(key.clone(), value.clone())],
            },
            Planned::Replace(path, value) => Change::Replace {
                node: lookup(tree, path).id,
                value: value.clone(),
            },
            Planned::Append(path, value) => Change::Append {
                seq: lookup(tree, path).id,
                items: vec![value.clone()],
            },
        })
        .collect()
}

fn comments(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| {
            l.find(" #")
                .map(|i| &l[i..])
                .or_else(|| l.strip_prefix('#'))
        })
        .collect()
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop::sample::select(vec![2usize, 4]),
        prop::sample::select(vec![0usize, 2]),
        any::<bool>(),
    )
        .prop_map(|(step, seq_offset, crlf)| Layout {
            step,
            seq_offset,
            crlf,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn edits_load_as_the_planned_data_and_keep_every_comment(
        root in entries(node(), 5),
        layout in layout(),
        commented in prop::collection::vec(any::<bool>(), 0..40),
        picks in prop::collection::vec((any::<prop::sample::Index>(), new_value()), 1..6),
    ) {
        let old = document(&root, layout, &commented);
        let planned = plan(&root, &picks);
        let tree = Tree::parse(&old).expect("the generated text parses");
        let outcome = apply_changes(&tree, changes(&tree, &planned)).expect("the changes apply");
        let new: Value = yaml_serde::from_str(&outcome.text)
            .unwrap_or_else(|e| panic!("the new text does not load ({e}):\n{}", outcome.text));
        prop_assert_eq!(new, expected(&old, &planned), "old:\n{}\nnew:\n{}", old, outcome.text);
        prop_assert_eq!(comments(&old), comments(&outcome.text));
        // Line endings follow the file's.
        let lone_lf = outcome.text.replace("\r\n", "").contains('\n');
        prop_assert_eq!(layout.crlf, !lone_lf && outcome.text.contains("\r\n"));
        // The splices, applied to the old text, are the new text.
        let mut rebuilt = String::new();
        let mut from = 0;
        for s in &outcome.splices {
            rebuilt.push_str(&old[from..s.start]);
            rebuilt.push_str(&s.text);
            from = s.end;
        }
        rebuilt.push_str(&old[from..]);
        prop_assert_eq!(rebuilt, outcome.text);
    }

    #[test]
    fn a_text_without_changes_is_returned_as_it_was(root in entries(node(), 5), layout in layout()) {
        let old = document(&root, layout, &[true, false, true]);
        let tree = Tree::parse(&old).expect("the generated text parses");
        let outcome = apply_changes(&tree, vec![]).expect("nothing to do");
        prop_assert_eq!(outcome.text, old);
        prop_assert!(outcome.splices.is_empty());
    }
}
