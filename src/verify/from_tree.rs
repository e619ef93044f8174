//! The data of an original document, read from the engine's tree instead of a second
//! yaml_serde load.
//!
//! Verification compares the yaml_serde load of the edited text (the independent check) with
//! the original's data plus the planned operations. The original is already parsed by the
//! engine, and loading it again with yaml_serde was about a fifth of a `fix` run. So its data is
//! built from the tree, resolving plain scalars exactly as yaml_serde does (the YAML 1.2 core
//! schema, as yaml_serde implements it). Anything this module is not sure to read the same way
//! gives `None`, and the caller loads the original with yaml_serde as before: tags, integers
//! beyond 64 bits, keys that are equal as data but written differently, alias chains that grow
//! too large.
//!
//! A disagreement can only make verification refuse a good edit, never pass a bad one: the two
//! sides would differ. Tests check this reading against yaml_serde on every corpus document
//! and on generated scalars.

use std::num::ParseIntError;

use yaml_serde::{Mapping, Number, Value};

use yaml_splice::tree::{NodeKind, Quoting};
use yaml_splice::{NodeId, Tree};

/// At most this many nodes are built for one document (aliases are copied, as yaml_serde
/// copies them): past it, yaml_serde's own limits decide.
const NODE_BUDGET: usize = 1 << 20;

/// The data of document `doc`, as yaml_serde would load it; `None` when not sure.
pub fn document_value(tree: &Tree, doc: usize) -> Option<Value> {
    let root = tree.docs.get(doc)?.root?;
    let mut budget = NODE_BUDGET;
    node_value(tree, root, &mut budget)
}

fn node_value(tree: &Tree, id: NodeId, budget: &mut usize) -> Option<Value> {
    *budget = budget.checked_sub(1)?;
    let node = tree.node(id);
    if node.tagged {
        return None;
    }
    match &node.kind {
        NodeKind::Scalar { value, quoting } => Some(match quoting {
            Quoting::Plain => plain_scalar(value)?,
            Quoting::Block if ends_the_text_without_line_break(tree, node.end) => return None,
            Quoting::Single | Quoting::Double | Quoting::Block => Value::String(value.to_string()),
        }),
        NodeKind::Seq(items) => items
            .iter()
            .map(|&item| node_value(tree, item, budget))
            .collect::<Option<Vec<Value>>>()
            .map(Value::Sequence),
        NodeKind::Map(entries) => {
            let mut mapping = Mapping::with_capacity(entries.len());
            for &(key, value) in entries {
                let key = node_value(tree, key, budget)?;
                match mapping.entry(key) {
                    // yaml_serde refuses the document: let it say so.
                    yaml_serde::mapping::Entry::Occupied(_) => return None,
                    yaml_serde::mapping::Entry::Vacant(slot) => {
                        slot.insert(node_value(tree, value, budget)?);
                    }
                }
            }
            Some(Value::Mapping(mapping))
        }
        NodeKind::Alias { target } => node_value(tree, (*target)?, budget),
    }
}

/// A block scalar on the text's last line, with no line break after it: granit-parser gives it
/// the final line break that `|` keeps, libyaml (rightly) none, since there is none to keep.
fn ends_the_text_without_line_break(tree: &Tree, end: usize) -> bool {
    !tree.src.ends_with('\n') && tree.src[end..].trim().is_empty()
}

/// A plain scalar's data: null, bool, integer, float or string, in yaml_serde's order.
/// Not the engine's reading (`yaml::view`'s, which the policy uses): that one only needs
/// null, bool and small integers, and this one must agree with yaml_serde on every form.
pub fn plain_scalar(v: &str) -> Option<Value> {
    if v.is_empty() || matches!(v, "null" | "Null" | "NULL" | "~") {
        return Some(Value::Null);
    }
    match v {
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    // Only text that starts like a number can be one (Rust's float syntax included).
    if !v.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        return Some(Value::String(v.to_string()));
    }
    if let Some(int) = unsigned_int(v, u64::from_str_radix) {
        return Some(Value::Number(Number::from(int)));
    }
    if let Some(int) = negative_int(v, i64::from_str_radix) {
        return Some(Value::Number(Number::from(int)));
    }
    // yaml_serde reads these as 128-bit integers: left to it.
    if unsigned_int(v, u128::from_str_radix).is_some()
        || negative_int(v, i128::from_str_radix).is_some()
    {
        return None;
    }
    if !digits_but_not_number(v) {
        if let Some(float) = float(v) {
            return Some(Value::Number(Number::from(float)));
        }
    }
    Some(Value::String(v.to_string()))
}

type Radix<T> = fn(&str, u32) -> Result<T, ParseIntError>;

/// Radix prefixes yaml_serde reads, after an optional sign.
const PREFIXES: [(&str, u32); 3] = [("0x", 16), ("0o", 8), ("0b", 2)];

fn unsigned_int<T>(scalar: &str, parse: Radix<T>) -> Option<T> {
    let unsigned = scalar.strip_prefix('+').unwrap_or(scalar);
    for (prefix, radix) in PREFIXES {
        if let Some(rest) = unsigned.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = parse(rest, radix) {
                return Some(int);
            }
        }
    }
    if unsigned.starts_with(['+', '-']) || digits_but_not_number(scalar) {
        return None;
    }
    parse(unsigned, 10).ok()
}

fn negative_int<T>(scalar: &str, parse: Radix<T>) -> Option<T> {
    for (prefix, radix) in PREFIXES {
        if let Some(rest) = scalar
            .strip_prefix('-')
            .and_then(|s| s.strip_prefix(prefix))
        {
            if let Ok(int) = parse(&format!("-{rest}"), radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    parse(scalar, 10).ok()
}

fn float(scalar: &str) -> Option<f64> {
    let unsigned = match scalar.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => scalar,
    };
    match (unsigned, scalar) {
        (".inf" | ".Inf" | ".INF", _) => return Some(f64::INFINITY),
        (_, "-.inf" | "-.Inf" | "-.INF") => return Some(f64::NEG_INFINITY),
        (_, ".nan" | ".NaN" | ".NAN") => return Some(f64::NAN.copysign(1.0)),
        _ => {}
    }
    unsigned.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A leading zero followed by digits is a string in YAML 1.2 (`0755`, `-012`).
fn digits_but_not_number(scalar: &str) -> bool {
    let digits = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    digits.len() > 1 && digits.starts_with('0') && digits[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `k: <sample>` read both ways; None when either parser refuses it.
    fn both_ways(sample: &str) -> Option<(Option<Value>, Result<Value, yaml_serde::Error>)> {
        let src = format!("k: {sample}\n");
        let tree = Tree::parse(&src).ok()?;
        let ours = document_value(&tree, 0);
        let theirs: Result<Value, _> = yaml_serde::from_str(&src);
        if theirs
            .as_ref()
            .is_err_and(|e| !e.to_string().contains("u128"))
        {
            return None;
        }
        Some((ours, theirs))
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_serde_resolves_them() {
        let samples = [
            "",
            "~",
            "null",
            "NULL",
            "Null",
            "nULL",
            "true",
            "True",
            "TRUE",
            "tRue",
            "false",
            "no",
            "yes",
            "on",
            "off",
            "y",
            "0",
            "00",
            "007",
            "-0",
            "+0",
            "-007",
            "+12",
            "-12",
            "12",
            "1_000",
            "0x1F",
            "0X1F",
            "-0x1F",
            "+0x1F",
            "0x-1",
            "0o17",
            "-0o17",
            "0o8",
            "0b101",
            "-0b101",
            "0b2",
            "1.5",
            "-1.5",
            "+1.5",
            ".5",
            "5.",
            "1e3",
            "1E3",
            "-1e-3",
            "1e400",
            ".inf",
            "-.inf",
            "+.inf",
            ".Inf",
            ".NAN",
            "nan",
            "inf",
            "-inf",
            "1.2.3",
            "100m",
            "512Mi",
            "0.5",
            "10.0.0.0/8",
            "08",
            "09.5",
            "0.0",
            "-0.0",
            "+-1",
            "--1",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "0x",
            "0o",
            "0b",
            "+",
            "-",
            ".",
            "1:2",
            "v1",
            "8080",
        ];
        let mut compared = 0;
        for sample in samples {
            let Some((ours, theirs)) = both_ways(sample) else {
                continue;
            };
            compared += 1;
            match ours {
                Some(value) => {
                    assert_eq!(Ok(value), theirs.map_err(|e| e.to_string()), "{sample:?}")
                }
                // 128-bit integers: yaml_serde refuses to make a value of them.
                None => assert!(theirs.is_err(), "{sample:?} read as {theirs:?}"),
            }
        }
        assert!(
            compared >= samples.len() - 3,
            "only {compared} samples compared"
        );
    }

    proptest::proptest! {
        /// Number-like text in every combination: signs, radix prefixes, dots, exponents,
        /// leading zeros, the special floats.
        #[test]
        fn number_like_scalars_resolve_as_yaml_serde_resolves_them(
            sample in "[-+]?(0[xob])?[0-9a-fA-F._eE+-]{0,8}|[-+]?\\.(inf|Inf|INF|nan|NaN|NAN)",
        ) {
            if let Some((ours, theirs)) = both_ways(&sample) {
                match ours {
                    Some(value) => proptest::prop_assert_eq!(Ok(value), theirs.map_err(|e| e.to_string())),
                    None => proptest::prop_assert!(theirs.is_err()),
                }
            }
        }
    }

    #[test]
    fn documents_match_the_yaml_serde_load() {
        let src = "a: &x {b: 1, c: [true, ~, 0x10]}\nd: *x\n'e': \"f\"\ng: |\n  text\nh: [1.5, -.inf, 0o7, 1e3, 012, '5', +3]\n";
        let tree = Tree::parse(src).unwrap();
        let expected: Value = yaml_serde::from_str(src).unwrap();
        assert_eq!(document_value(&tree, 0), Some(expected));
    }

    #[test]
    fn what_yaml_serde_must_decide_is_left_to_it() {
        for src in [
            "a: !!str 1\n",
            "a: !custom x\n",
            "a: |\n  no line break at the end",
            "a: >+\n  folded\n  ",
            "a: 340282366920938463463374607431768211455\n",
        ] {
            let tree = Tree::parse(src).unwrap();
            assert_eq!(document_value(&tree, 0), None, "{src:?}");
        }
    }
}
