//! Turns requested changes into byte-range splices, and says what each means semantically.
//!
//! Every change becomes one or two splices (an insertion after a line, a replaced token, a
//! removed `{}`); nothing else in the file is rewritten. The semantic operations returned with
//! the splices are what verification checks the re-parsed result against.

use std::collections::HashMap;

use super::style::{dash_col, layout, line_end_after, newline_at};
use super::tree::{NodeId, NodeKind, Quoting, Style, Tree};
use super::value::{
    block_entries, block_items, flow_entries, flow_text, scalar_text_like, NewValue,
};
use super::EngineError;

/// A change a planner asks for, addressed by node.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Add entries at the end of the mapping `map` (their keys are absent from it).
    Insert {
        map: NodeId,
        entries: Vec<(String, NewValue)>,
    },
    /// Give an empty value (null, `{}`, `[]`) the content `value` (a mapping or a list).
    Fill { node: NodeId, value: NewValue },
    /// Replace the scalar `node` with `value`.
    Replace { node: NodeId, value: NewValue },
    /// Append items to the list `seq`.
    Append { seq: NodeId, items: Vec<NewValue> },
}

/// Replace `start..end` of the old text with `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splice {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// One step of a key path from a document root.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// What a change does to the data, independent of the text.
#[derive(Clone, Debug, PartialEq)]
pub enum SemanticOp {
    /// Set the value at `path` of document `doc` (creating the last key).
    Set {
        doc: usize,
        path: Vec<PathSeg>,
        value: NewValue,
    },
    /// Append to the list at `path`.
    Push {
        doc: usize,
        path: Vec<PathSeg>,
        value: NewValue,
    },
}

/// The result of applying changes to a text.
#[derive(Debug, Default)]
pub struct EditOutcome {
    pub text: String,
    pub splices: Vec<Splice>,
    pub ops: Vec<SemanticOp>,
    /// Things a reader of the diff should know (edits that aliases see).
    pub notes: Vec<String>,
}

/// Applies `changes` to the tree's text. Fails, changing nothing, when a change cannot be made
/// losslessly.
pub fn apply_changes(tree: &Tree, changes: Vec<Change>) -> Result<EditOutcome, EngineError> {
    let changes = merge_same_target(changes);
    let mut planned: Vec<(usize, Splice)> = Vec::new();
    let mut outcome = EditOutcome::default();
    for change in &changes {
        let target = change_target(change);
        for splice in splices_for(tree, change)? {
            planned.push((depth(tree, target), splice));
        }
        outcome.ops.extend(semantic_ops(tree, change)?);
        if let Some(anchor) = tree.aliased_anchor_around(target) {
            let (line, _) = tree.position(super::Ref::root(target));
            let note = format!("line {line}: edit inside anchored node `&{anchor}`: every alias `*{anchor}` sees it too");
            if !outcome.notes.contains(&note) {
                outcome.notes.push(note);
            }
        }
    }
    // Same offset: the deeper node's lines come first, so that an outer mapping's new keys
    // follow the inner mapping's.
    let appends_at_unterminated_end =
        planned.iter().any(|(_, s)| s.start == tree.src.len()) && !tree.src.ends_with('\n');
    if appends_at_unterminated_end {
        planned.extend(strip_final_block_scalar(tree).map(|s| (0, s)));
    }
    planned.sort_by_key(|(depth, s)| (s.start, std::cmp::Reverse(*depth)));
    outcome.splices = planned.into_iter().map(|(_, s)| s).collect();
    outcome.text = splice(tree.src, &outcome.splices)?;
    Ok(outcome)
}

/// A block scalar that ends the file without a final newline has no line break in its value;
/// lines added after it give it one. Writing its header with strip chomping (`|` to `|-`)
/// keeps the value as it was. Only clip chomping is changed; `|+` is left for verification to
/// refuse, and `|-` needs nothing.
fn strip_final_block_scalar(tree: &Tree) -> Option<Splice> {
    let last = tree
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.kind,
                NodeKind::Scalar {
                    quoting: Quoting::Block,
                    ..
                }
            )
        })
        .max_by_key(|n| n.end)?;
    if tree.src[last.end..].trim().is_empty() && last.end <= tree.src.len() {
        let header_line_end = tree.src[..last.start]
            .trim_end_matches([' ', '\t', '\r', '\n'])
            .len();
        let line_start = super::style::line_start_before(tree.src, header_line_end);
        let line = &tree.src[line_start..header_line_end];
        let code = line.split(" #").next().unwrap_or(line);
        let indicator = code.rfind(['|', '>'])?;
        let flags = code[indicator + 1..].trim_end();
        if flags.contains(['-', '+']) || !flags.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let at = line_start + indicator + 1;
        return Some(Splice {
            start: at,
            end: at,
            text: "-".into(),
        });
    }
    None
}

/// Applies non-overlapping splices, sorted by start, to `src`.
pub fn splice(src: &str, splices: &[Splice]) -> Result<String, EngineError> {
    let mut out =
        String::with_capacity(src.len() + splices.iter().map(|s| s.text.len()).sum::<usize>());
    let mut cursor = 0;
    for s in splices {
        if s.start < cursor {
            return Err(EngineError::new(0, 0, "internal error: overlapping edits"));
        }
        out.push_str(&src[cursor..s.start]);
        out.push_str(&s.text);
        cursor = s.end;
    }
    out.push_str(&src[cursor..]);
    Ok(out)
}

/// Several inserts into one mapping (or appends to one list) become one, in request order.
fn merge_same_target(changes: Vec<Change>) -> Vec<Change> {
    let mut merged: Vec<Change> = Vec::new();
    let mut index: HashMap<(u8, NodeId), usize> = HashMap::new();
    for change in changes {
        match change {
            Change::Insert { map, entries } => match index.get(&(0, map)) {
                Some(&i) => {
                    if let Change::Insert { entries: e, .. } = &mut merged[i] {
                        e.extend(entries)
                    }
                }
                None => {
                    index.insert((0, map), merged.len());
                    merged.push(Change::Insert { map, entries });
                }
            },
            Change::Append { seq, items } => match index.get(&(1, seq)) {
                Some(&i) => {
                    if let Change::Append { items: e, .. } = &mut merged[i] {
                        e.extend(items)
                    }
                }
                None => {
                    index.insert((1, seq), merged.len());
                    merged.push(Change::Append { seq, items });
                }
            },
            other => merged.push(other),
        }
    }
    merged
}

fn change_target(change: &Change) -> NodeId {
    match change {
        Change::Insert { map, .. } => *map,
        Change::Fill { node, .. } | Change::Replace { node, .. } => *node,
        Change::Append { seq, .. } => *seq,
    }
}

fn depth(tree: &Tree, id: NodeId) -> usize {
    std::iter::successors(Some(id), |&i| tree.node(i).parent).count()
}

fn refuse(tree: &Tree, id: NodeId, message: impl Into<String>) -> EngineError {
    let n = tree.node(id);
    EngineError::new(n.line, n.col + 1, message)
}

fn splices_for(tree: &Tree, change: &Change) -> Result<Vec<Splice>, EngineError> {
    match change {
        Change::Insert { map, entries } => insert_entries(tree, *map, entries).map(|s| vec![s]),
        Change::Fill { node, value } => fill(tree, *node, value),
        Change::Replace { node, value } => replace_scalar(tree, *node, value).map(|s| vec![s]),
        Change::Append { seq, items } => append_items(tree, *seq, items).map(|s| vec![s]),
    }
}

/// New block lines inserted after the line that holds `after`.
fn lines_after(src: &str, after: usize, lines: &[String]) -> Splice {
    let at = line_end_after(src, after);
    let nl = newline_at(src, at);
    let text = if at == src.len() && !src.is_empty() && !src.ends_with('\n') {
        // No final newline: keep it that way.
        format!("{nl}{}", lines.join(nl))
    } else {
        lines.iter().map(|l| format!("{l}{nl}")).collect()
    };
    Splice {
        start: at,
        end: at,
        text,
    }
}

fn insert_entries(
    tree: &Tree,
    map: NodeId,
    entries: &[(String, NewValue)],
) -> Result<Splice, EngineError> {
    let node = tree.node(map);
    let NodeKind::Map(existing) = &node.kind else {
        return Err(refuse(tree, map, "not a mapping"));
    };
    if node.style == Style::Block {
        let mut lines = Vec::new();
        block_entries(entries, node.col, layout(tree, map), &mut lines);
        return Ok(lines_after(tree.src, node.end, &lines));
    }
    let json = existing.iter().any(|&(k, _)| is_double_quoted(tree, k));
    let new = flow_entries(entries, json);
    Ok(match existing.last() {
        None => Splice {
            start: node.start + 1,
            end: node.start + 1,
            text: new.join(", "),
        },
        Some(&(last_key, last_value)) => {
            let at = tree.content_end(last_value).max(tree.node(last_key).end);
            flow_append(tree, map, at, tree.node(last_key).col, &new)
        }
    })
}

/// Text added after the last entry of a flow collection: same line, or one line each.
fn flow_append(tree: &Tree, coll: NodeId, at: usize, col: usize, new: &[String]) -> Splice {
    let node = tree.node(coll);
    let multi_line = tree.src[node.start..node.end].contains('\n');
    let text = if multi_line {
        let nl = newline_at(tree.src, line_end_after(tree.src, at));
        new.iter()
            .map(|e| format!(",{nl}{}{e}", " ".repeat(col)))
            .collect()
    } else {
        new.iter().map(|e| format!(", {e}")).collect()
    };
    Splice {
        start: at,
        end: at,
        text,
    }
}

fn is_double_quoted(tree: &Tree, id: NodeId) -> bool {
    matches!(
        tree.node(id).kind,
        NodeKind::Scalar {
            quoting: Quoting::Double,
            ..
        }
    )
}

fn fill(tree: &Tree, node: NodeId, value: &NewValue) -> Result<Vec<Splice>, EngineError> {
    let n = tree.node(node);
    let Some(parent) = n.parent else {
        return Err(refuse(tree, node, "cannot fill a document root"));
    };
    let p = tree.node(parent);
    let empty_collection = matches!(&n.kind, NodeKind::Map(e) if e.is_empty())
        || matches!(&n.kind, NodeKind::Seq(i) if i.is_empty());
    if p.style == Style::Flow {
        let json = flow_keys_double_quoted(tree, parent);
        return Ok(vec![if empty_collection {
            let inner = match value {
                NewValue::Map(entries) => flow_entries(entries, json).join(", "),
                NewValue::Seq(items) => items
                    .iter()
                    .map(|i| flow_text(i, json))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => flow_text(other, json),
            };
            Splice {
                start: n.start + 1,
                end: n.start + 1,
                text: inner,
            }
        } else if n.start < n.end {
            Splice {
                start: n.start,
                end: n.end,
                text: flow_text(value, json),
            }
        } else {
            return Err(refuse(
                tree,
                node,
                "cannot fill an implicit null inside a flow collection",
            ));
        }]);
    }
    let NodeKind::Map(entries) = &p.kind else {
        return Err(refuse(
            tree,
            node,
            "cannot fill an empty item of a block list",
        ));
    };
    let Some(&(key, _)) = entries.iter().find(|&&(_, v)| v == node) else {
        return Err(refuse(tree, node, "cannot fill a mapping key"));
    };
    let key_col = tree.node(key).col;
    let mut lines = Vec::new();
    let lay = layout(tree, parent);
    match value {
        NewValue::Map(e) => block_entries(e, key_col + lay.step, lay, &mut lines),
        NewValue::Seq(items) => block_items(items, key_col + lay.seq_offset, lay, &mut lines),
        _ => return Err(refuse(tree, node, "internal error: fill with a scalar")),
    }
    let mut splices = Vec::new();
    if n.start < n.end {
        // Remove ` {}` / ` ~` (and the spaces before it), keeping an anchor, a tag and a comment.
        let before = &tree.src[..n.start];
        let from = before.trim_end_matches([' ', '\t']).len();
        let from = if tree.src[from..n.start].contains('\n') {
            n.start
        } else {
            from
        };
        splices.push(Splice {
            start: from,
            end: n.end,
            text: String::new(),
        });
    }
    splices.push(lines_after(tree.src, n.end.max(tree.node(key).end), &lines));
    Ok(splices)
}

fn flow_keys_double_quoted(tree: &Tree, map: NodeId) -> bool {
    match &tree.node(map).kind {
        NodeKind::Map(entries) => entries.iter().any(|&(k, _)| is_double_quoted(tree, k)),
        _ => false,
    }
}

fn replace_scalar(tree: &Tree, node: NodeId, value: &NewValue) -> Result<Splice, EngineError> {
    let n = tree.node(node);
    let NodeKind::Scalar { quoting, .. } = &n.kind else {
        return Err(refuse(tree, node, "not a scalar"));
    };
    if *quoting == Quoting::Block || n.start == n.end {
        return Err(refuse(
            tree,
            node,
            "cannot replace a block or empty scalar in place",
        ));
    }
    Ok(Splice {
        start: n.start,
        end: n.end,
        text: scalar_text_like(value, *quoting),
    })
}

fn append_items(tree: &Tree, seq: NodeId, items: &[NewValue]) -> Result<Splice, EngineError> {
    let node = tree.node(seq);
    let NodeKind::Seq(existing) = &node.kind else {
        return Err(refuse(tree, seq, "not a list"));
    };
    if node.style == Style::Flow {
        let json = existing.iter().any(|&i| is_double_quoted(tree, i));
        let new: Vec<String> = items.iter().map(|i| flow_text(i, json)).collect();
        return Ok(match existing.last() {
            None => Splice {
                start: node.start + 1,
                end: node.start + 1,
                text: new.join(", "),
            },
            Some(&last) => {
                flow_append(tree, seq, tree.content_end(last), tree.node(last).col, &new)
            }
        });
    }
    let first = *existing
        .first()
        .ok_or_else(|| refuse(tree, seq, "empty block list"))?;
    let dash = dash_col(tree, first)
        .ok_or_else(|| refuse(tree, first, "cannot find the `-` of this list item"))?;
    let mut lines = Vec::new();
    block_items(items, dash, layout(tree, seq), &mut lines);
    Ok(lines_after(tree.src, node.end, &lines))
}

/// Semantic meaning of a change, at every path that reaches the target (aliases included).
fn semantic_ops(tree: &Tree, change: &Change) -> Result<Vec<SemanticOp>, EngineError> {
    let target = change_target(change);
    let paths = paths_to(tree, target, 0)
        .ok_or_else(|| refuse(tree, target, "too many aliases lead to this node"))?;
    let mut ops = Vec::new();
    for (doc, path) in paths {
        match change {
            Change::Insert { entries, .. } => {
                for (k, v) in entries {
                    let mut p = path.clone();
                    p.push(PathSeg::Key(k.clone()));
                    ops.push(SemanticOp::Set {
                        doc,
                        path: p,
                        value: v.clone(),
                    });
                }
            }
            Change::Fill { value, .. } | Change::Replace { value, .. } => {
                ops.push(SemanticOp::Set {
                    doc,
                    path: path.clone(),
                    value: value.clone(),
                })
            }
            Change::Append { items, .. } => {
                for v in items {
                    ops.push(SemanticOp::Push {
                        doc,
                        path: path.clone(),
                        value: v.clone(),
                    });
                }
            }
        }
    }
    Ok(ops)
}

/// All (document, path) pairs that reach `id`: its own place plus every alias of it or of an
/// anchored ancestor. None past a sanity limit.
fn paths_to(tree: &Tree, id: NodeId, level: usize) -> Option<Vec<(usize, Vec<PathSeg>)>> {
    if level > 16 {
        return None;
    }
    let mut paths = match tree.node(id).parent {
        None => {
            let doc = tree
                .docs
                .partition_point(|d| d.start <= tree.node(id).start)
                .checked_sub(1)?;
            if tree.docs[doc].root != Some(id) {
                return None;
            }
            vec![(doc, Vec::new())]
        }
        Some(parent) => {
            let seg = segment(tree, parent, id)?;
            let mut ps = paths_to(tree, parent, level + 1)?;
            ps.iter_mut().for_each(|(_, p)| p.push(seg.clone()));
            ps
        }
    };
    for &alias in tree.aliases_of.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
        paths.extend(paths_to(tree, alias, level + 1)?);
        if paths.len() > 256 {
            return None;
        }
    }
    Some(paths)
}

fn segment(tree: &Tree, parent: NodeId, child: NodeId) -> Option<PathSeg> {
    match &tree.node(parent).kind {
        NodeKind::Seq(items) => items.iter().position(|&i| i == child).map(PathSeg::Index),
        NodeKind::Map(entries) => {
            let &(k, _) = entries.iter().find(|&&(_, v)| v == child)?;
            tree.key_str(k).map(|s| PathSeg::Key(s.to_string()))
        }
        _ => None,
    }
}
