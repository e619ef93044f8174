//! Read access to the span tree for planners: typed scalars, lookups that follow merge keys
//! and aliases, and a flag that says whether a node was reached through an alias (and so must
//! not be edited from here).

use super::tree::{NodeId, NodeKind, Quoting, Style, Tree};

/// A node as reached from a document root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ref {
    pub id: NodeId,
    /// The first alias (`*name`, also in a `<<` merge) that the path from the root to this node
    /// went through, if any: a node reached that way must not be edited from here.
    pub alias: Option<NodeId>,
}

/// A scalar resolved with the YAML 1.2 core schema (the reading that YAML 1.2 decoders agree
/// on for booleans, integers and null).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
}

impl Ref {
    /// A document root (reached through no alias).
    pub fn root(id: NodeId) -> Ref {
        Ref { id, alias: None }
    }
}

impl<'s> Tree<'s> {
    /// Follows an alias to its anchored node; anything else is returned as is.
    pub fn deref(&self, r: Ref) -> Ref {
        match self.nodes[r.id].kind {
            NodeKind::Alias { target: Some(t) } => Ref {
                id: t,
                alias: r.alias.or(Some(r.id)),
            },
            _ => r,
        }
    }

    pub fn is_map(&self, r: Ref) -> bool {
        matches!(self.nodes[self.deref(r).id].kind, NodeKind::Map(_))
    }

    pub fn is_seq(&self, r: Ref) -> bool {
        matches!(self.nodes[self.deref(r).id].kind, NodeKind::Seq(_))
    }

    pub fn is_flow(&self, r: Ref) -> bool {
        self.nodes[self.deref(r).id].style == Style::Flow
    }

    /// True for `~`, `null`, an implicit null, `{}` and `[]`: a value with nothing in it.
    pub fn is_empty(&self, r: Ref) -> bool {
        let r = self.deref(r);
        match &self.nodes[r.id].kind {
            NodeKind::Map(e) => e.is_empty(),
            NodeKind::Seq(i) => i.is_empty(),
            NodeKind::Scalar { .. } => self.scalar(r) == Some(Scalar::Null),
            NodeKind::Alias { .. } => false,
        }
    }

    /// The resolved scalar, or None for collections.
    pub fn scalar(&self, r: Ref) -> Option<Scalar<'_>> {
        let r = self.deref(r);
        let NodeKind::Scalar { value, quoting } = &self.nodes[r.id].kind else {
            return None;
        };
        if *quoting != Quoting::Plain || self.nodes[r.id].tagged {
            return Some(Scalar::Str(value));
        }
        Some(resolve_plain(
            value,
            self.nodes[r.id].start == self.nodes[r.id].end,
        ))
    }

    pub fn as_str(&self, r: Ref) -> Option<&str> {
        match self.scalar(r)? {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Looks `key` up in the mapping `map`: its own entries first, then the mappings merged
    /// in with `<<`. None when `map` is not a mapping or has no such key. A value that is an
    /// alias comes back as its anchored node, marked with the alias.
    pub fn get(&self, map: Ref, key: &str) -> Option<Ref> {
        let map = self.deref(map);
        let NodeKind::Map(entries) = &self.nodes[map.id].kind else {
            return None;
        };
        let own = entries.iter().find(|&&(k, _)| self.key_str(k) == Some(key));
        if let Some(&(_, v)) = own {
            return Some(self.deref(Ref {
                id: v,
                alias: map.alias,
            }));
        }
        let merged = entries.iter().find(|&&(k, _)| self.is_merge_key(k))?;
        let sources = match &self.nodes[merged.1].kind {
            NodeKind::Seq(items) => items.clone(),
            _ => vec![merged.1],
        };
        sources.into_iter().find_map(|s| {
            self.get(
                Ref {
                    id: s,
                    alias: map.alias.or(Some(s)),
                },
                key,
            )
        })
    }

    fn is_merge_key(&self, key: NodeId) -> bool {
        matches!(&self.nodes[key].kind, NodeKind::Scalar { value, quoting: Quoting::Plain } if value == "<<")
    }

    /// Items of a sequence (empty when `seq` is not a sequence).
    pub fn items(&self, seq: Ref) -> Vec<Ref> {
        let seq = self.deref(seq);
        match &self.nodes[seq.id].kind {
            NodeKind::Seq(items) => items
                .iter()
                .map(|&id| {
                    self.deref(Ref {
                        id,
                        alias: seq.alias,
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// 1-based line and column of a node, for reports.
    pub fn position(&self, r: Ref) -> (usize, usize) {
        let n = &self.nodes[r.id];
        (n.line, n.col + 1)
    }

    /// The node's source text, for reports.
    pub fn source_text(&self, r: Ref) -> &str {
        self.text(self.deref(r).id)
    }

    /// The comment that explains a mapping value: the `# ...` after it on its line, else the
    /// comment lines right above its key. Without the `#` and surrounding spaces.
    pub fn comment_for(&self, value: Ref) -> Option<String> {
        let node = &self.nodes[value.id];
        let line_end = self.src[node.end..]
            .find('\n')
            .map_or(self.src.len(), |i| node.end + i);
        let after = self.src[node.end..line_end].trim();
        if let Some(comment) = after.strip_prefix('#') {
            return Some(comment.trim().to_string());
        }
        let key_start = self
            .entry_key(value.id)
            .map_or(node.start, |k| self.nodes[k].start);
        let line_start = self.src[..key_start].rfind('\n').map_or(0, |i| i + 1);
        let above: Vec<&str> = self.src[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .take_while(|l| l.starts_with('#'))
            .collect();
        let text: Vec<&str> = above
            .iter()
            .rev()
            .map(|l| l.trim_start_matches('#').trim())
            .collect();
        (!text.is_empty()).then(|| text.join(" "))
    }

    /// The key path from its document's root to the node `id` (for semantic operations).
    pub fn path_of(&self, id: NodeId) -> Vec<crate::PathSeg> {
        let mut path = Vec::new();
        let mut child = id;
        while let Some(parent) = self.nodes[child].parent {
            match &self.nodes[parent].kind {
                NodeKind::Map(entries) => {
                    if let Some(key) = entries
                        .iter()
                        .find(|(_, v)| *v == child)
                        .and_then(|(k, _)| self.key_str(*k))
                    {
                        path.push(crate::PathSeg::Key(key.to_string()));
                    }
                }
                NodeKind::Seq(items) => {
                    if let Some(i) = items.iter().position(|&i| i == child) {
                        path.push(crate::PathSeg::Index(i));
                    }
                }
                _ => {}
            }
            child = parent;
        }
        path.reverse();
        path
    }

    /// The index of the document that holds the node `id`.
    pub fn document_of(&self, id: NodeId) -> usize {
        let mut root = id;
        while let Some(parent) = self.nodes[root].parent {
            root = parent;
        }
        self.docs
            .iter()
            .position(|d| d.root == Some(root))
            .unwrap_or(0)
    }

    /// The key of the mapping entry whose value is `value`.
    fn entry_key(&self, value: NodeId) -> Option<NodeId> {
        let parent = self.nodes[value].parent?;
        match &self.nodes[parent].kind {
            NodeKind::Map(entries) => entries.iter().find(|&&(_, v)| v == value).map(|&(k, _)| k),
            _ => None,
        }
    }

    /// Name of the anchor on this node or its nearest anchored ancestor that aliases refer to.
    pub fn aliased_anchor_around(&self, id: NodeId) -> Option<&str> {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if self.aliases_of.contains_key(&c) {
                return self.nodes[c].anchor.as_deref();
            }
            cur = self.nodes[c].parent;
        }
        None
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub(super) fn resolve_plain(value: &str, implicit: bool) -> Scalar<'_> {
    if implicit {
        return Scalar::Null;
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
        "true" | "True" | "TRUE" => Scalar::Bool(true),
        "false" | "False" | "FALSE" => Scalar::Bool(false),
        _ => parse_int(value)
            .map(Scalar::Int)
            .unwrap_or(Scalar::Str(value)),
    }
}

fn parse_int(v: &str) -> Option<i64> {
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let n = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}
