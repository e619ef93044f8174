//! The engine's layout rules on small texts, byte for byte: where new lines go, how they are
//! indented, what stays (comments, line endings, a missing final newline, a BOM), and the
//! note an edit inside an anchored mapping gets.

use yaml_splice::{apply_changes, Change, NewValue, Ref, Tree};

/// The node at a path of keys from the first document's root.
fn at(tree: &Tree, path: &[&str]) -> Ref {
    let mut r = Ref::root(tree.docs[0].root.expect("a document"));
    for key in path {
        r = tree.get(r, key).expect("the path exists");
    }
    r
}

fn edit(src: &str, change: impl Fn(&Tree) -> Change) -> String {
    let tree = Tree::parse(src).expect("parses");
    let change = change(&tree);
    apply_changes(&tree, vec![change]).expect("applies").text
}

fn insert(
    path: &'static [&'static str],
    key: &'static str,
    value: NewValue,
) -> impl Fn(&Tree) -> Change {
    move |tree| Change::Insert {
        map: at(tree, path).id,
        entries: vec![(key.into(), value.clone())],
    }
}

#[test]
fn new_entries_follow_their_neighbours_indentation_and_the_comments_stay() {
    let src = "a:\n    b: 1  # one\n    # trailing comment\nc: 2\n";
    let out = edit(
        src,
        insert(
            &["a"],
            "d",
            NewValue::map(vec![("e", NewValue::Bool(true))]),
        ),
    );
    assert_eq!(
        out,
        "a:\n    b: 1  # one\n    d:\n        e: true\n    # trailing comment\nc: 2\n"
    );
}

#[test]
fn a_flow_list_stays_flow_and_a_block_list_keeps_its_dash_column() {
    let flow = edit("drop: [NET_RAW]\n", |t| Change::Append {
        seq: at(t, &["drop"]).id,
        items: vec![NewValue::str("ALL")],
    });
    assert_eq!(flow, "drop: [NET_RAW, ALL]\n");
    let block = edit("drop:\n  - NET_RAW\nnext: 1\n", |t| Change::Append {
        seq: at(t, &["drop"]).id,
        items: vec![NewValue::str("ALL")],
    });
    assert_eq!(block, "drop:\n  - NET_RAW\n  - ALL\nnext: 1\n");
}

#[test]
fn an_empty_flow_mapping_becomes_a_block() {
    let out = edit("ctx: {}\nafter: 1\n", |t| Change::Fill {
        node: at(t, &["ctx"]).id,
        value: NewValue::map(vec![("x", NewValue::Int(1))]),
    });
    assert_eq!(out, "ctx:\n  x: 1\nafter: 1\n");
}

#[test]
fn a_replaced_scalar_keeps_its_comment() {
    let out = edit("uid: 0 # root\n", |t| Change::Replace {
        node: at(t, &["uid"]).id,
        value: NewValue::Int(1000),
    });
    assert_eq!(out, "uid: 1000 # root\n");
}

#[test]
fn strings_that_would_read_as_other_types_are_quoted() {
    let out = edit("m:\n  a: 1\n", insert(&["m"], "b", NewValue::str("true")));
    let data: yaml_serde::Value = yaml_serde::from_str(&out).unwrap();
    assert_eq!(
        data["m"]["b"],
        yaml_serde::Value::String("true".into()),
        "{out}"
    );
}

#[test]
fn crlf_a_bom_and_a_missing_final_newline_are_kept() {
    let out = edit(
        "\u{feff}m:\r\n  a: 1",
        insert(&["m"], "b", NewValue::Int(2)),
    );
    assert_eq!(out, "\u{feff}m:\r\n  a: 1\r\n  b: 2");
}

#[test]
fn an_edit_inside_an_anchored_mapping_says_that_every_alias_sees_it() {
    let src = "one: &shared\n  a: 1\ntwo: *shared\n";
    let tree = Tree::parse(src).unwrap();
    let change = Change::Insert {
        map: at(&tree, &["one"]).id,
        entries: vec![("b".into(), NewValue::Int(2))],
    };
    let outcome = apply_changes(&tree, vec![change]).unwrap();
    assert_eq!(outcome.text, "one: &shared\n  a: 1\n  b: 2\ntwo: *shared\n");
    assert_eq!(
        outcome.notes,
        vec!["line 2: edit inside anchored node `&shared`: every alias `*shared` sees it too"]
    );
    // A reader that comes through the alias knows it did.
    assert!(at(&tree, &["two"]).alias.is_some());
}

#[test]
fn a_collection_key_is_refused_with_its_position() {
    let err = Tree::parse("? [a, b]\n: 1\n").unwrap_err();
    assert_eq!(
        (
            err.line,
            err.to_string()
                .contains("mapping key that is a mapping, a list or an alias")
        ),
        (1, true),
        "{err}"
    );
}
