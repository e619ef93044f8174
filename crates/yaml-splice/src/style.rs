//! What the file looks like where an edit goes: line endings, indent step, list style.
//! New text copies the nearest existing example, then the file's habit, then a default.

use std::collections::HashMap;

use super::tree::{NodeId, NodeKind, Style, Tree};
use super::value::BlockLayout;

/// Offset just after the line that holds `pos` (after its newline), or the end of the text.
pub fn line_end_after(src: &str, pos: usize) -> usize {
    src[pos..].find('\n').map_or(src.len(), |i| pos + i + 1)
}

/// Offset of the start of the line that holds `pos`.
pub fn line_start_before(src: &str, pos: usize) -> usize {
    src[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// The newline to use for a line inserted at `offset`: that of the line before it.
pub fn newline_at(src: &str, offset: usize) -> &'static str {
    let before = &src[..offset];
    if before.ends_with("\r\n") {
        "\r\n"
    } else if before.ends_with('\n') {
        "\n"
    } else {
        dominant_newline(src)
    }
}

/// The first line ending of the file, or LF for a one-line file.
pub fn dominant_newline(src: &str) -> &'static str {
    match src.find('\n') {
        Some(i) if i > 0 && src.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Column of the `-` in front of a block-list item, if it is on the item's line.
pub fn dash_col(tree: &Tree, item: NodeId) -> Option<usize> {
    let node = tree.node(item);
    let start = line_start_before(tree.src, node.start);
    let prefix = &tree.src[start..node.start];
    let trimmed = prefix.trim_end_matches([' ', '\t']);
    // An anchor or tag may sit between the dash and the item.
    let dash = if trimmed.ends_with('-') {
        trimmed.len() - 1
    } else {
        trimmed.rfind("- ")?
    };
    Some(prefix[..dash].chars().count())
}

/// Block layout for new lines under the mapping or list `near`.
pub fn layout(tree: &Tree, near: NodeId) -> BlockLayout {
    BlockLayout {
        step: indent_step(tree, near),
        seq_offset: seq_offset(tree, near),
    }
}

/// Nesting step: from the nearest block mapping (this one, then ancestors) that nests another.
fn indent_step(tree: &Tree, near: NodeId) -> usize {
    ancestors(tree, near)
        .find_map(|m| nested_map_steps(tree, m).next())
        .or_else(|| most_common((0..tree.nodes.len()).flat_map(|m| nested_map_steps(tree, m))))
        .unwrap_or(2)
}

/// Dash offset of lists under keys: from the nearest mapping that holds a block list.
fn seq_offset(tree: &Tree, near: NodeId) -> usize {
    ancestors(tree, near)
        .find_map(|m| list_offsets(tree, m).next())
        .or_else(|| most_common((0..tree.nodes.len()).flat_map(|m| list_offsets(tree, m))))
        .unwrap_or(0)
}

fn ancestors<'a>(tree: &'a Tree, from: NodeId) -> impl Iterator<Item = NodeId> + 'a {
    std::iter::successors(Some(from), |&id| tree.node(id).parent)
}

/// For a block mapping: the column difference to each nested block mapping.
fn nested_map_steps<'a>(tree: &'a Tree, map: NodeId) -> impl Iterator<Item = usize> + 'a {
    block_map_values(tree, map)
        .filter(|&v| {
            matches!(tree.node(v).kind, NodeKind::Map(_)) && tree.node(v).style == Style::Block
        })
        .filter_map(move |v| {
            tree.node(v)
                .col
                .checked_sub(tree.node(map).col)
                .filter(|&d| d > 0)
        })
}

/// For a block mapping: how far each nested block list's dash sits right of the mapping's keys.
fn list_offsets<'a>(tree: &'a Tree, map: NodeId) -> impl Iterator<Item = usize> + 'a {
    block_map_values(tree, map)
        .filter(|&v| {
            matches!(tree.node(v).kind, NodeKind::Seq(_)) && tree.node(v).style == Style::Block
        })
        .filter_map(move |v| {
            let NodeKind::Seq(items) = &tree.node(v).kind else {
                return None;
            };
            let dash = dash_col(tree, *items.first()?)?;
            dash.checked_sub(tree.node(map).col)
        })
}

fn block_map_values<'a>(tree: &'a Tree, map: NodeId) -> impl Iterator<Item = NodeId> + 'a {
    let entries: &[(NodeId, NodeId)] = match &tree.node(map).kind {
        NodeKind::Map(e) if tree.node(map).style == Style::Block => e,
        _ => &[],
    };
    entries.iter().map(|&(_, v)| v)
}

fn most_common(values: impl Iterator<Item = usize>) -> Option<usize> {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(v, n)| (n, std::cmp::Reverse(v)))
        .map(|(v, _)| v)
}
