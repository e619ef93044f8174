//! Independent verification of an edit before anything is written.
//!
//! The new text must load with yaml_serde (a parser that shares no code with the engine's
//! granit-parser), its data must equal the old data plus exactly the planned operations, and
//! every byte outside the splices must be unchanged, as must the BOM, the final newline and the
//! line ending style. Any failure means the file is not written. The old data is read from the
//! engine's tree with yaml_serde's scalar rules ([`from_tree`]); where that reading cannot be
//! sure, the original is loaded with yaml_serde.
//! (The engine's own parser does not re-read the new text here: the independent load is the
//! check that counts, and leaving the second granit pass out saves a tenth of a `fix` run;
//! the corpus, conformance and property tests run every output through a second `fix`.)

pub mod from_tree;
pub mod programs;
pub mod rendered;
pub mod scratch;

use yaml_serde::{Mapping, Value};

use yaml_splice::NewValue;
use yaml_splice::{PathSeg, SemanticOp, Splice, Tree};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verification failed: {message}")]
pub struct VerifyError {
    pub message: String,
    /// 1-based line and column of the problem in the original, when it is known.
    pub position: Option<(usize, usize)>,
}

fn fail(msg: impl Into<String>) -> VerifyError {
    VerifyError {
        message: msg.into(),
        position: None,
    }
}

/// Checks that `new` is the text of `old` with exactly `splices` applied and exactly `ops` in
/// meaning.
pub fn verify(
    old: &Tree,
    new: &str,
    splices: &[Splice],
    ops: &[SemanticOp],
) -> Result<(), VerifyError> {
    verify_with(old, new, splices, ops, None)
}

/// [`verify`], given the result of [`original_documents_load`] on `old` when it was run
/// already (while the engine parsed).
pub fn verify_with(
    old: &Tree,
    new: &str,
    splices: &[Splice],
    ops: &[SemanticOp],
    original_loads: Option<Result<(), VerifyError>>,
) -> Result<(), VerifyError> {
    untouched_bytes(old.src, new, splices)?;
    same_framing(old.src, new, splices)?;
    // The documents left as they are must load with yaml_serde too (a file Kubernetes' parser
    // rejects is reported, not edited); that check runs beside the edited documents' checks.
    // A single document is not loaded here: its data comes from the engine's tree, and it is
    // loaded only to say why when the edited text does not load.
    let single = old.docs.len() < 2;
    let (by_document, others_load) = rayon::join(
        || verify_by_document(old, new, splices, ops),
        || match original_loads {
            Some(checked) => checked,
            None if single => Ok(()),
            None => {
                // The edited documents are loaded by the per-document check (or, when it
                // gives up, with the whole stream below): loading them here too is waste.
                let edited: Vec<usize> = ops.iter().map(op_doc).collect();
                check_loads_by_document(old, &edited).map_err(not_loading)
            }
        },
    );
    others_load?;
    if by_document? {
        return Ok(());
    }
    verify_whole(old, new, ops)
}

/// The original's data, one value per document: read from the engine's tree (see
/// [`from_tree`]), or loaded with yaml_serde when the tree cannot say for sure.
fn original_values(old: &Tree) -> Result<Vec<Value>, VerifyError> {
    let from_tree: Option<Vec<Value>> = (0..old.docs.len())
        .map(|doc| from_tree::document_value(old, doc))
        .collect();
    match from_tree {
        Some(values) => Ok(values),
        None => load_all(old.src).map_err(not_loading),
    }
}

/// The fast path for multi-document streams: since the bytes outside the splices are known to
/// be unchanged, only the documents that hold a splice are re-parsed (granit-parser and
/// yaml_serde, each must still be exactly one document). Returns false when the documents
/// cannot be checked one by one; then the whole stream is.
fn verify_by_document(
    old: &Tree,
    new: &str,
    splices: &[Splice],
    ops: &[SemanticOp],
) -> Result<bool, VerifyError> {
    if old.docs.len() < 2 {
        return Ok(false);
    }
    let Some(owners) = splices
        .iter()
        .map(|s| owning_document(old, s))
        .collect::<Option<Vec<usize>>>()
    else {
        return Ok(false);
    };
    let mut ops_by_doc: std::collections::BTreeMap<usize, Vec<SemanticOp>> = Default::default();
    for op in ops {
        ops_by_doc
            .entry(op_doc(op))
            .or_default()
            .push(with_doc(op, 0));
    }
    let edited: Vec<usize> = ops_by_doc.keys().copied().collect();
    let mut touched = owners.clone();
    touched.sort_unstable();
    touched.dedup();
    if touched != edited {
        return Ok(false);
    }
    let starts = new_document_starts(old, splices, &owners);
    for &doc in &edited {
        let old_text = old.doc_text(doc);
        let end = starts.get(doc + 1).copied().unwrap_or(new.len());
        let new_text = &new[starts[doc]..end];
        let before = from_tree::document_value(old, doc)
            .map(|value| Ok(vec![value]))
            .unwrap_or_else(|| load_all(old_text));
        let (Ok(mut before), Ok(after)) = (before, load_all(new_text)) else {
            return Ok(false);
        };
        if before.len() != 1 || after.len() != 1 {
            return Ok(false);
        }
        for op in &ops_by_doc[&doc] {
            apply_op(&mut before, op)?;
        }
        if before != after {
            let line = old.src[..old.docs[doc].start].matches('\n').count() + 1;
            return Err(VerifyError {
                position: Some((line, 1)),
                ..fail(format!(
                    "document {} does not equal the original plus the planned changes",
                    doc + 1
                ))
            });
        }
    }
    Ok(true)
}

/// The document a splice edits: the one whose text holds it (an insertion at a boundary
/// extends the document before it).
fn owning_document(old: &Tree, s: &Splice) -> Option<usize> {
    let doc = old
        .docs
        .partition_point(|d| d.start < s.start)
        .saturating_sub(1);
    let d = old.docs.get(doc)?;
    (s.start <= d.end && s.end <= d.end).then_some(doc)
}

/// Where each document starts in the new stream: its old start shifted by the splices of the
/// documents before it.
fn new_document_starts(old: &Tree, splices: &[Splice], owners: &[usize]) -> Vec<usize> {
    let mut growth = vec![0isize; old.docs.len()];
    for (s, &owner) in splices.iter().zip(owners) {
        growth[owner] += s.text.len() as isize - (s.end - s.start) as isize;
    }
    let mut shift = 0isize;
    old.docs
        .iter()
        .zip(&growth)
        .map(|(d, g)| {
            let start = (d.start as isize + shift) as usize;
            shift += g;
            start
        })
        .collect()
}

fn verify_whole(old: &Tree, new: &str, ops: &[SemanticOp]) -> Result<(), VerifyError> {
    let after = match load_all(new) {
        Ok(after) => after,
        Err(e) => {
            // When the original does not load either, that is the news.
            load_all(old.src).map_err(not_loading)?;
            return Err(fail(format!(
                "the edited text does not load with yaml_serde: {e}"
            )));
        }
    };
    let mut expected = original_values(old)?;
    for op in ops {
        apply_op(&mut expected, op)?;
    }
    if expected != after {
        return Err(fail(first_difference(&expected, &after)));
    }
    Ok(())
}

fn op_doc(op: &SemanticOp) -> usize {
    match op {
        SemanticOp::Set { doc, .. } | SemanticOp::Push { doc, .. } => *doc,
    }
}

fn with_doc(op: &SemanticOp, doc: usize) -> SemanticOp {
    match op.clone() {
        SemanticOp::Set { path, value, .. } => SemanticOp::Set { doc, path, value },
        SemanticOp::Push { path, value, .. } => SemanticOp::Push { doc, path, value },
    }
}

fn not_loading(e: yaml_serde::Error) -> VerifyError {
    let position = e.location().map(|l| (l.line(), l.column()));
    VerifyError {
        position,
        ..fail(format!("the original does not load with yaml_serde: {e}"))
    }
}

/// Checks that every document of `src` loads with yaml_serde, each alone and in parallel when
/// the text can be cut at its `---` markers, else (or when one fails alone) as a whole. Needs
/// no tree: for a large stream it runs while the engine parses (see [`verify_with`]).
pub fn original_documents_load(src: &str) -> Result<(), VerifyError> {
    use rayon::prelude::*;
    let Some(starts) = yaml_splice::document_starts(src) else {
        return check_loads(src).map_err(not_loading);
    };
    let ends = starts.iter().skip(1).copied().chain([src.len()]);
    let ranges: Vec<(usize, usize)> = starts.iter().copied().zip(ends).collect();
    let alone = ranges
        .par_iter()
        .try_for_each(|&(a, b)| check_loads(&src[a..b]));
    alone.or_else(|_| check_loads(src)).map_err(not_loading)
}

/// [`check_loads`] document by document, in parallel (a large stream is then not one long
/// task), leaving out the documents in `skip`. A document that fails alone is checked again in
/// its stream before it counts.
fn check_loads_by_document(old: &Tree, skip: &[usize]) -> Result<(), yaml_serde::Error> {
    use rayon::prelude::*;
    let alone = (0..old.docs.len())
        .into_par_iter()
        .filter(|doc| !skip.contains(doc))
        .try_for_each(|doc| check_loads(old.doc_text(doc)));
    alone.or_else(|_| check_loads(old.src))
}

/// Checks that every document loads with yaml_serde, without building the values.
fn check_loads(src: &str) -> Result<(), yaml_serde::Error> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    for doc in yaml_serde::Deserializer::from_str(src) {
        <serde::de::IgnoredAny as serde::Deserialize>::deserialize(doc)?;
    }
    Ok(())
}

/// Loads every document with yaml_serde.
pub fn load_all(src: &str) -> Result<Vec<Value>, yaml_serde::Error> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    yaml_serde::Deserializer::from_str(src)
        .map(serde::Deserialize::deserialize)
        .collect()
}

/// Every byte outside the splices is the same, in the same order.
fn untouched_bytes(old: &str, new: &str, splices: &[Splice]) -> Result<(), VerifyError> {
    let (mut o, mut n) = (0usize, 0usize);
    for s in splices {
        let keep = old
            .get(o..s.start)
            .ok_or_else(|| fail("splices out of order"))?;
        if new.get(n..n + keep.len()) != Some(keep) {
            return Err(fail(format!(
                "bytes changed outside the edits near offset {o}"
            )));
        }
        n += keep.len();
        if new.get(n..n + s.text.len()) != Some(s.text.as_str()) {
            return Err(fail(format!("inserted text not found at offset {n}")));
        }
        n += s.text.len();
        o = s.end;
    }
    if new.get(n..) != old.get(o..) {
        return Err(fail("bytes changed after the last edit"));
    }
    Ok(())
}

/// BOM, final newline and line endings are as before; inserted text adds no new kind of newline.
fn same_framing(old: &str, new: &str, splices: &[Splice]) -> Result<(), VerifyError> {
    if old.starts_with('\u{feff}') != new.starts_with('\u{feff}') {
        return Err(fail("the byte order mark changed"));
    }
    if old.ends_with('\n') != new.ends_with('\n') {
        return Err(fail("the final newline changed"));
    }
    let crlf_file = old.contains("\r\n");
    let lf_file = has_bare_lf(old);
    for s in splices {
        let has_crlf = s.text.contains("\r\n");
        let has_lf = has_bare_lf(&s.text);
        if (has_crlf && !crlf_file) || (has_lf && !lf_file && crlf_file) {
            return Err(fail(
                "inserted lines use a line ending the file does not use",
            ));
        }
    }
    Ok(())
}

/// Whether `text` has a line feed not preceded by a carriage return.
fn has_bare_lf(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

fn apply_op(docs: &mut [Value], op: &SemanticOp) -> Result<(), VerifyError> {
    let (doc, path, value, push) = match op {
        SemanticOp::Set { doc, path, value } => (*doc, path, value, false),
        SemanticOp::Push { doc, path, value } => (*doc, path, value, true),
    };
    let root = docs
        .get_mut(doc)
        .ok_or_else(|| fail(format!("document {doc} is missing in the original")))?;
    if push {
        let target = walk_mut(root, path)?;
        let Value::Sequence(items) = target else {
            return Err(fail(format!("{} is not a list", show(path))));
        };
        items.push(to_value(value));
        return Ok(());
    }
    let (last, parent_path) = path.split_last().ok_or_else(|| fail("empty path"))?;
    let parent = walk_mut(root, parent_path)?;
    match (parent, last) {
        (Value::Mapping(m), PathSeg::Key(k)) => {
            m.insert(Value::String(k.clone()), to_value(value));
        }
        (Value::Sequence(items), PathSeg::Index(i)) if *i < items.len() => {
            items[*i] = to_value(value)
        }
        (parent @ Value::Null, PathSeg::Key(k)) => {
            let mut m = Mapping::new();
            m.insert(Value::String(k.clone()), to_value(value));
            *parent = Value::Mapping(m);
        }
        _ => return Err(fail(format!("cannot set {}", show(path)))),
    }
    Ok(())
}

fn walk_mut<'v>(mut node: &'v mut Value, path: &[PathSeg]) -> Result<&'v mut Value, VerifyError> {
    for seg in path {
        node = match (node, seg) {
            (Value::Mapping(m), PathSeg::Key(k)) => m
                .get_mut(k.as_str())
                .ok_or_else(|| fail(format!("no key {k}")))?,
            (Value::Sequence(s), PathSeg::Index(i)) => {
                s.get_mut(*i).ok_or_else(|| fail(format!("no item {i}")))?
            }
            (Value::Tagged(t), seg) => walk_mut(&mut t.value, std::slice::from_ref(seg))?,
            _ => return Err(fail(format!("cannot follow {}", show(path)))),
        };
    }
    Ok(node)
}

/// The data value a [`NewValue`] stands for.
pub fn to_value(v: &NewValue) -> Value {
    match v {
        NewValue::Bool(b) => Value::Bool(*b),
        NewValue::Int(i) => Value::Number((*i).into()),
        NewValue::Str(s) => Value::String(s.clone()),
        NewValue::Map(entries) => Value::Mapping(
            entries
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), to_value(v)))
                .collect(),
        ),
        NewValue::Seq(items) => Value::Sequence(items.iter().map(to_value).collect()),
    }
}

fn show(path: &[PathSeg]) -> String {
    path.iter()
        .map(|s| match s {
            PathSeg::Key(k) => k.clone(),
            PathSeg::Index(i) => format!("[{i}]"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn first_difference(expected: &[Value], actual: &[Value]) -> String {
    if expected.len() != actual.len() {
        return format!(
            "document count changed: expected {}, found {}",
            expected.len(),
            actual.len()
        );
    }
    let doc = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e != a)
        .unwrap_or(0);
    format!(
        "document {} does not equal the original plus the planned changes",
        doc + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_line_feeds_are_told_from_crlf() {
        assert!(has_bare_lf("a\nb"));
        assert!(has_bare_lf("\n"));
        assert!(has_bare_lf("a\r\nb\n"));
        assert!(!has_bare_lf("a\r\nb\r\n"));
        assert!(!has_bare_lf("no line ends"));
    }

    #[test]
    fn an_inserted_lf_line_in_a_crlf_file_is_refused() {
        let splice = |text: &str| Splice {
            start: 6,
            end: 6,
            text: text.into(),
        };
        let old = "a: 1\r\nb: 2\r\n";
        assert!(same_framing(old, "a: 1\r\nc: 3\r\nb: 2\r\n", &[splice("c: 3\r\n")]).is_ok());
        assert!(same_framing(old, "a: 1\r\nc: 3\nb: 2\r\n", &[splice("c: 3\n")]).is_err());
    }
}
