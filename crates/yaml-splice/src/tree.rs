//! The span tree: every node of every document with its byte range, style, anchor and parent.
//!
//! Built from granit-parser events. Byte ranges are the parser's, corrected for its quirks
//! (block collections have no end of their own, block scalars carry trailing blank lines).

use granit_parser::{Event, Options, Parser, ScalarStyle, StructureStyle};
use std::borrow::Cow;
use std::collections::HashMap;

use super::EngineError;

/// Index of a node in [`Tree::nodes`].
pub type NodeId = usize;

/// Block or flow notation of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Block,
    Flow,
}

/// How a scalar was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quoting {
    Plain,
    Single,
    Double,
    /// `|` or `>` block scalars.
    Block,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind<'s> {
    Map(Vec<(NodeId, NodeId)>),
    Seq(Vec<NodeId>),
    Scalar {
        value: Cow<'s, str>,
        quoting: Quoting,
    },
    /// An alias `*name`, pointing at the anchored node.
    Alias {
        target: Option<NodeId>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node<'s> {
    pub kind: NodeKind<'s>,
    pub style: Style,
    /// Byte offset where the node's own text starts (after any anchor or tag).
    pub start: usize,
    /// Byte offset just after the node's text (for block collections: after the last child).
    pub end: usize,
    /// 1-based line and 0-based column of `start`.
    pub line: usize,
    pub col: usize,
    /// Anchor name, when the node carries `&name`.
    pub anchor: Option<String>,
    pub tagged: bool,
    pub parent: Option<NodeId>,
}

/// One YAML document of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub root: Option<NodeId>,
    /// Byte range of the document's text: from its start (its `---`, or the file's start for
    /// the first document) to the next document's start.
    pub start: usize,
    pub end: usize,
    /// Left as text by [`Tree::parse_where`]: no root, no nodes, its syntax unchecked here.
    pub opaque: bool,
}

/// All documents of one source text.
#[derive(Debug, PartialEq)]
pub struct Tree<'s> {
    pub src: &'s str,
    pub nodes: Vec<Node<'s>>,
    pub docs: Vec<Document>,
    /// Aliases that refer to each anchored node.
    pub aliases_of: HashMap<NodeId, Vec<NodeId>>,
}

/// Collections being built: the node and, for maps, a pending key.
struct Open {
    id: NodeId,
    pending_key: Option<NodeId>,
    /// Keys seen so far, kept only for large mappings (small ones are scanned).
    seen: Option<std::collections::HashSet<String>>,
}

/// Mappings up to this size are checked for duplicate keys by a scan, larger ones by a set.
const SCAN_LIMIT: usize = 16;

/// Where a chunk's tree goes in the whole text's (see [`Tree::shift`]).
struct Shift {
    base: NodeId,
    offset: usize,
    lines: usize,
}

/// Texts from this size on are parsed in chunks of whole documents, in parallel.
pub const PARALLEL_PARSE_MIN: usize = 256 * 1024;
/// The size a chunk grows to before the next document marker may start a new one.
const CHUNK_TARGET: usize = 64 * 1024;

/// Where to cut `src` into chunks of whole documents: offsets of `---` markers at the start of a
/// line, the first chunk starting at 0. YAML forbids a `---` followed by a space or a line end
/// at column 0 anywhere but as a document marker (inside scalars and flow collections too), so
/// each chunk holds whole documents, and a chunk's first document starts at the marker, as in a
/// single pass. Directives (`%YAML`, `%TAG`) belong to the marker after them: a text with any
/// is not cut. None when there is nothing to cut.
fn chunk_starts(src: &str, target: usize) -> Option<Vec<usize>> {
    if src.starts_with('%') || src.contains("\n%") {
        return None;
    }
    let mut starts = vec![0];
    for (newline, _) in src.match_indices("\n---") {
        let at = newline + 1;
        let rest = &src[at + 3..];
        let marker = rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']);
        let start = starts[starts.len() - 1];
        // A chunk must hold a document: comments before the first marker stay with it, since
        // the first document of a text starts at the text's start.
        if marker && at - start >= target && (start > 0 || holds_content(&src[..at])) {
            starts.push(at);
        }
    }
    (starts.len() > 1).then_some(starts)
}

/// Where each document of `src` starts, when the text can be cut at its markers (see
/// `chunk_starts`): lets another parser take the documents one by one.
pub fn document_starts(src: &str) -> Option<Vec<usize>> {
    chunk_starts(src, 0)
}

/// Whether a piece cut at the markers is one document: it is, unless a `...` line ends a
/// document in it (a document may follow without a marker).
fn one_document(piece: &str) -> bool {
    let ends = |line: &str| {
        line.strip_prefix("...")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
    };
    !piece.split_inclusive('\n').any(ends)
}

/// Whether `text` has a line that is neither blank nor a comment.
fn holds_content(text: &str) -> bool {
    text.lines().any(|line| {
        let content = line.trim_start_matches(['\u{feff}', ' ', '\t', '\r']);
        !content.is_empty() && !content.starts_with('#')
    })
}

impl<'s> Tree<'s> {
    /// Parses `src` into a span tree. Fails on the first syntax error or duplicate key.
    ///
    /// A large stream is cut into chunks of whole documents that are parsed in parallel and
    /// stitched together; the result is the same tree a single pass gives (see
    /// `chunk_starts`). Any error sends the whole text through a single pass, so the error
    /// and its position are exactly that pass's.
    pub fn parse(src: &'s str) -> Result<Tree<'s>, EngineError> {
        if src.len() >= PARALLEL_PARSE_MIN {
            if let Some(tree) = Self::parse_chunked(src, CHUNK_TARGET) {
                return Ok(tree);
            }
        }
        Self::parse_whole(src)
    }

    /// The chunked parse of [`Tree::parse`] with any chunk size, and the single pass, for
    /// tests that compare the two on real files. None when the text cannot be cut.
    #[doc(hidden)]
    pub fn parse_both_ways(
        src: &'s str,
        target: usize,
    ) -> Option<(Result<Tree<'s>, EngineError>, Option<Tree<'s>>)> {
        chunk_starts(src, target)?;
        Some((Self::parse_whole(src), Self::parse_chunked(src, target)))
    }

    /// The document spans [`Tree::parse_where`] gives a stream when every document is left
    /// opaque (whatever its size), for tests that compare them with a single pass's.
    #[doc(hidden)]
    pub fn opaque_document_spans(src: &'s str) -> Option<Vec<(usize, usize)>> {
        let tree = Self::parse_ranges(src, &chunk_starts(src, 0)?, &|_| false)?;
        Some(tree.docs.iter().map(|d| (d.start, d.end)).collect())
    }

    /// One pass of the parser over the whole text.
    fn parse_whole(src: &'s str) -> Result<Tree<'s>, EngineError> {
        let mut options = Options::default();
        options.emit_anchor_events = true;
        // Comments are text to the engine (it keeps every byte it does not touch): no events needed.
        options.emit_comments = false;
        let parser = Parser::new_from_str_with_options(src, options);
        let mut builder = Builder {
            tree: Tree {
                src,
                nodes: Vec::new(),
                docs: Vec::new(),
                aliases_of: HashMap::new(),
            },
            stack: Vec::new(),
            anchors: HashMap::new(),
            current_doc: None,
        };
        for event in parser {
            let (event, span) = event.map_err(|e| {
                let m = e.marker();
                EngineError::new(
                    m.line(),
                    m.col() + 1,
                    format!("YAML syntax error: {}", e.info()),
                )
            })?;
            let range = span.byte_range().ok_or_else(|| {
                EngineError::new(
                    span.start.line(),
                    span.start.col() + 1,
                    "parser gave no byte range",
                )
            })?;
            builder.event(event, range, span.start.line(), span.start.col())?;
        }
        builder.tree.finish_block_ends();
        Ok(builder.tree)
    }

    /// Parses the chunks of `src` (about `target` bytes each) in parallel and joins them; None
    /// when the text cannot be cut or a chunk does not parse.
    fn parse_chunked(src: &'s str, target: usize) -> Option<Tree<'s>> {
        let starts = chunk_starts(src, target)?;
        Self::parse_ranges(src, &starts, &|_| true)
    }

    /// [`Tree::parse`], except that in a stream of [`PARALLEL_PARSE_MIN`] bytes or more that can
    /// be cut at its markers, each document for whose text `needs_tree` is false is left
    /// [`Document::opaque`]: the parser never reads it, so its syntax (and any duplicate key) is
    /// left to whoever reads its text. For large streams of which only a few documents matter.
    pub fn parse_where(
        src: &'s str,
        needs_tree: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Tree<'s>, EngineError> {
        if src.len() >= PARALLEL_PARSE_MIN {
            if let Some(tree) =
                chunk_starts(src, 0).and_then(|starts| Self::parse_ranges(src, &starts, needs_tree))
            {
                return Ok(tree);
            }
        }
        Self::parse_whole(src)
    }

    /// Parses the pieces of `src` that start at `starts`, in parallel, and joins them; a piece
    /// that holds one document (no `...` in it) for which `needs_tree` is false stays opaque.
    /// None when a piece does not parse.
    fn parse_ranges(
        src: &'s str,
        starts: &[usize],
        needs_tree: &(dyn Fn(&str) -> bool + Sync),
    ) -> Option<Tree<'s>> {
        use rayon::prelude::*;
        let ends = starts.iter().skip(1).copied().chain([src.len()]);
        let ranges: Vec<(usize, usize)> = starts.iter().copied().zip(ends).collect();
        let mut parts: Vec<(Tree<'s>, usize)> = ranges
            .par_iter()
            .with_max_len(1)
            .map(|&(a, b)| {
                let chunk = &src[a..b];
                let newlines = chunk.bytes().filter(|&b| b == b'\n').count();
                let part = if one_document(chunk) && !needs_tree(chunk) {
                    Self::opaque(chunk)
                } else {
                    Self::parse_whole(chunk).ok()?
                };
                Some((part, newlines))
            })
            .collect::<Option<_>>()?;
        let mut shifts = Vec::with_capacity(parts.len());
        let (mut base, mut lines) = (0, 0);
        for ((part, newlines), &(offset, _)) in parts.iter().zip(&ranges) {
            shifts.push(Shift {
                base,
                offset,
                lines,
            });
            base += part.nodes.len();
            lines += newlines;
        }
        parts
            .par_iter_mut()
            .zip(&shifts)
            .for_each(|((part, _), shift)| part.shift(shift));
        let mut tree = Tree {
            src,
            nodes: Vec::with_capacity(base),
            docs: Vec::new(),
            aliases_of: HashMap::new(),
        };
        for (part, _) in parts {
            tree.nodes.extend(part.nodes);
            tree.docs.extend(part.docs);
            tree.aliases_of.extend(part.aliases_of);
        }
        Some(tree)
    }

    /// The tree of a text left as one opaque document.
    fn opaque(chunk: &'s str) -> Tree<'s> {
        Tree {
            src: chunk,
            nodes: Vec::new(),
            docs: vec![Document {
                root: None,
                start: 0,
                end: chunk.len(),
                opaque: true,
            }],
            aliases_of: HashMap::new(),
        }
    }

    /// Moves the tree of a chunk to where the chunk is in the whole text: node ids after
    /// `base`, byte offsets after `offset`, lines after `lines`.
    fn shift(
        &mut self,
        &Shift {
            base,
            offset,
            lines,
        }: &Shift,
    ) {
        for node in &mut self.nodes {
            node.start += offset;
            node.end += offset;
            node.line += lines;
            node.parent = node.parent.map(|p| p + base);
            match &mut node.kind {
                NodeKind::Map(entries) => {
                    for (k, v) in entries {
                        *k += base;
                        *v += base;
                    }
                }
                NodeKind::Seq(items) => items.iter_mut().for_each(|i| *i += base),
                NodeKind::Alias { target } => *target = target.map(|t| t + base),
                NodeKind::Scalar { .. } => {}
            }
        }
        for doc in &mut self.docs {
            doc.root = doc.root.map(|r| r + base);
            doc.start += offset;
            doc.end += offset;
        }
        self.aliases_of = std::mem::take(&mut self.aliases_of)
            .into_iter()
            .map(|(target, aliases)| {
                (
                    target + base,
                    aliases.into_iter().map(|a| a + base).collect(),
                )
            })
            .collect();
    }

    pub fn node(&self, id: NodeId) -> &Node<'s> {
        &self.nodes[id]
    }

    /// The text of document `doc` (see [`Document::start`]).
    pub fn doc_text(&self, doc: usize) -> &'s str {
        let d = &self.docs[doc];
        &self.src[d.start..d.end]
    }

    /// The text of a node's own range.
    pub fn text(&self, id: NodeId) -> &'s str {
        let n = &self.nodes[id];
        &self.src[n.start..n.end]
    }

    /// Byte offset just after the node's last content character: what an insertion must follow.
    pub fn content_end(&self, id: NodeId) -> usize {
        let n = &self.nodes[id];
        match &n.kind {
            NodeKind::Scalar {
                quoting: Quoting::Block,
                ..
            } => {
                let trimmed = self.src[..n.end]
                    .trim_end_matches([' ', '\t', '\r', '\n'])
                    .len();
                trimmed.max(self.header_end_before(n.start))
            }
            _ => n.end,
        }
    }

    /// For a block scalar: the end of the `|`/`>` header on the line before its content.
    fn header_end_before(&self, content_start: usize) -> usize {
        let before = &self.src[..content_start];
        before.trim_end_matches([' ', '\t', '\r', '\n']).len()
    }

    /// Scalar key text of a map entry, if the key is a scalar.
    pub fn key_str(&self, key: NodeId) -> Option<&str> {
        match &self.nodes[key].kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// A scalar key as the data model sees it (so `~` and `null`, or `1` and `0x1`, are the same
    /// key, as they are to yaml_serde and Kubernetes); None for a collection or alias key.
    fn canonical_key(&self, key: NodeId) -> Option<Cow<'_, str>> {
        use super::view::{resolve_plain, Scalar};
        let NodeKind::Scalar { value, quoting } = &self.nodes[key].kind else {
            return None;
        };
        if *quoting != Quoting::Plain || self.nodes[key].tagged {
            return Some(Cow::Borrowed(value));
        }
        Some(
            match resolve_plain(value, self.nodes[key].start == self.nodes[key].end) {
                Scalar::Null => "\u{0}null".into(),
                Scalar::Bool(b) => format!("\u{0}bool:{b}").into(),
                Scalar::Int(i) => format!("\u{0}int:{i}").into(),
                Scalar::Str(s) => Cow::Borrowed(s),
            },
        )
    }

    /// Sets the end of every block collection to the end of its last child, children first.
    fn finish_block_ends(&mut self) {
        for id in (0..self.nodes.len()).rev() {
            if self.nodes[id].style != Style::Block {
                continue;
            }
            let last = match &self.nodes[id].kind {
                NodeKind::Map(entries) => entries.last().map(|&(_, v)| v),
                NodeKind::Seq(items) => items.last().copied(),
                _ => continue,
            };
            if let Some(last) = last {
                self.nodes[id].end = self.content_end(last);
            }
        }
    }
}

struct Builder<'s> {
    tree: Tree<'s>,
    stack: Vec<Open>,
    /// Anchor id (from the parser) to the anchored node.
    anchors: HashMap<usize, NodeId>,
    current_doc: Option<usize>,
}

impl<'s> Builder<'s> {
    fn event(
        &mut self,
        event: Event<'s>,
        range: std::ops::Range<usize>,
        line: usize,
        col: usize,
    ) -> Result<(), EngineError> {
        match event {
            Event::DocumentStart(..) => {
                let start = if self.tree.docs.is_empty() {
                    0
                } else {
                    range.start
                };
                self.tree.docs.push(Document {
                    root: None,
                    start,
                    end: self.tree.src.len(),
                    opaque: false,
                });
                if let Some(previous) = self.tree.docs.len().checked_sub(2) {
                    self.tree.docs[previous].end = start;
                }
                self.current_doc = Some(self.tree.docs.len() - 1);
            }
            Event::DocumentEnd => self.current_doc = None,
            Event::Scalar(value, style, anchor, tag) => {
                let quoting = match style {
                    ScalarStyle::Plain => Quoting::Plain,
                    ScalarStyle::SingleQuoted => Quoting::Single,
                    ScalarStyle::DoubleQuoted => Quoting::Double,
                    _ => Quoting::Block,
                };
                let kind = NodeKind::Scalar { value, quoting };
                let id = self.attach(kind, Style::Block, range, line, col, tag.is_some())?;
                self.remember_anchor(anchor, id);
            }
            Event::MappingStart(style, anchor, tag) => self.open(
                NodeKind::Map(Vec::new()),
                style,
                anchor,
                tag.is_some(),
                range,
                (line, col),
            )?,
            Event::SequenceStart(style, anchor, tag) => self.open(
                NodeKind::Seq(Vec::new()),
                style,
                anchor,
                tag.is_some(),
                range,
                (line, col),
            )?,
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(open) = self.stack.pop() {
                    let node = &mut self.tree.nodes[open.id];
                    if node.style == Style::Flow {
                        node.end = range.end;
                    }
                }
            }
            Event::Alias(anchor_id) => {
                let target = self.anchors.get(&anchor_id).copied();
                let id = self.attach(
                    NodeKind::Alias { target },
                    Style::Block,
                    range,
                    line,
                    col,
                    false,
                )?;
                if let Some(t) = target {
                    self.tree.aliases_of.entry(t).or_default().push(id);
                }
            }
            Event::Anchor(anchor_id, name) => {
                if let Some(&id) = self.anchors.get(&anchor_id) {
                    self.tree.nodes[id].anchor = Some(name.into_owned());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Starts a collection: attaches it and keeps it open for its children.
    fn open(
        &mut self,
        kind: NodeKind<'s>,
        style: StructureStyle,
        anchor: usize,
        tagged: bool,
        range: std::ops::Range<usize>,
        (line, col): (usize, usize),
    ) -> Result<(), EngineError> {
        let id = self.attach(kind, style.into(), range, line, col, tagged)?;
        self.remember_anchor(anchor, id);
        self.stack.push(Open {
            id,
            pending_key: None,
            seen: None,
        });
        Ok(())
    }

    fn remember_anchor(&mut self, anchor: usize, id: NodeId) {
        if anchor != 0 {
            self.anchors.insert(anchor, id);
            // The name arrives in the next Anchor event; mark it anchored until then.
            self.tree.nodes[id].anchor = Some(String::new());
        }
    }

    /// Creates a node and hangs it under the innermost open collection (or as a document root).
    fn attach(
        &mut self,
        kind: NodeKind<'s>,
        style: Style,
        range: std::ops::Range<usize>,
        line: usize,
        col: usize,
        tagged: bool,
    ) -> Result<NodeId, EngineError> {
        let id = self.tree.nodes.len();
        let parent = self.stack.last().map(|o| o.id);
        self.tree.nodes.push(Node {
            kind,
            style,
            start: range.start,
            end: range.end,
            line,
            col,
            anchor: None,
            tagged,
            parent,
        });
        let Some(open) = self.stack.last_mut() else {
            if let Some(doc) = self.current_doc {
                self.tree.docs[doc].root = Some(id);
            }
            return Ok(id);
        };
        let parent_id = open.id;
        let mut completed_key = None;
        match &mut self.tree.nodes[parent_id].kind {
            NodeKind::Seq(items) => items.push(id),
            NodeKind::Map(entries) => match open.pending_key.take() {
                None => open.pending_key = Some(id),
                Some(key) => {
                    entries.push((key, id));
                    completed_key = Some(key);
                }
            },
            _ => {}
        }
        if let Some(key) = completed_key {
            self.check_duplicate(parent_id, key)?;
        }
        Ok(id)
    }

    fn check_duplicate(&mut self, map: NodeId, key: NodeId) -> Result<(), EngineError> {
        let NodeKind::Map(entries) = &self.tree.nodes[map].kind else {
            return Ok(());
        };
        let Some(name) = self.tree.canonical_key(key) else {
            let k = &self.tree.nodes[key];
            let message =
                "a mapping key that is a mapping, a list or an alias: such keys are not supported";
            return Err(EngineError::new(k.line, k.col + 1, message));
        };
        let duplicate = if entries.len() <= SCAN_LIMIT {
            entries[..entries.len() - 1]
                .iter()
                .any(|&(k, _)| self.tree.canonical_key(k).as_deref() == Some(&*name))
        } else {
            let open = self.stack.last_mut().expect("the mapping is open");
            let seen = open.seen.get_or_insert_with(|| {
                entries[..entries.len() - 1]
                    .iter()
                    .filter_map(|&(k, _)| self.tree.canonical_key(k).map(Cow::into_owned))
                    .collect()
            });
            !seen.insert(name.to_string())
        };
        let name = self.tree.key_str(key).unwrap_or_default();
        if duplicate {
            let k = &self.tree.nodes[key];
            return Err(EngineError::new(
                k.line,
                k.col + 1,
                format!("duplicate key `{name}` in one mapping"),
            ));
        }
        Ok(())
    }
}

impl From<StructureStyle> for Style {
    fn from(s: StructureStyle) -> Self {
        match s {
            StructureStyle::Block => Style::Block,
            StructureStyle::Flow => Style::Flow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams with what could make a chunk differ from the same text in a single pass:
    /// comments and blank lines around markers, `...`, bare documents after `...`, block
    /// scalars ending a document, anchors, empty documents, CRLF, a marker with a comment.
    const STREAMS: &[&str] = &[
        "# licence\n\n---\n# head\napiVersion: v1\nkind: A\n---\n# between\n\nkind: B\nlist:\n- a\n- b\n---\nkind: C\n",
        "a: 1\n...\nb: 2\n---\nc: |\n  text\n\n\n---\nd: >-\n  folded\n---\n",
        "---\nx: &a {k: v}\ny: *a\n--- # comment\nz: [1, 2]\n---\n---\nlast: true",
        "kind: A\r\nspec:\r\n  k: v\r\n---\r\nkind: B\r\n---\r\nkind: C\r\n",
        "s: 'single\n  quoted'\n---\nt: \"double\n  quoted\"\n---\n- seq\n- - nested\n",
    ];

    #[test]
    fn chunks_give_the_tree_of_a_single_pass() {
        for src in STREAMS {
            let whole = Tree::parse_whole(src).unwrap();
            let chunked = Tree::parse_chunked(src, 1).expect("the stream can be cut");
            assert_eq!(chunked, whole, "{src:?}");
        }
    }

    #[test]
    fn opaque_documents_keep_the_single_pass_spans() {
        for src in STREAMS {
            let whole = Tree::parse_whole(src).unwrap();
            let spans: Vec<(usize, usize)> = whole.docs.iter().map(|d| (d.start, d.end)).collect();
            assert_eq!(Tree::opaque_document_spans(src), Some(spans), "{src:?}");
        }
    }

    #[test]
    fn only_the_documents_that_need_a_tree_are_parsed() {
        let big = format!(
            "kind: A\nwith: containers\n---\nkind: B\npad: {}\n",
            "x".repeat(PARALLEL_PARSE_MIN)
        );
        let tree = Tree::parse_where(&big, &|doc| doc.contains("containers")).unwrap();
        assert_eq!(tree.docs.len(), 2);
        assert!(!tree.docs[0].opaque && tree.docs[0].root.is_some());
        assert!(tree.docs[1].opaque && tree.docs[1].root.is_none());
        assert_eq!(tree.docs[1].start, big.find("---").unwrap());
        // A small text is parsed in full.
        let small = Tree::parse_where("a: 1\n---\nb: 2\n", &|_| false).unwrap();
        assert!(small.docs.iter().all(|d| !d.opaque && d.root.is_some()));
    }

    #[test]
    fn texts_with_directives_or_one_document_are_not_cut() {
        assert_eq!(chunk_starts("%YAML 1.2\n---\na: 1\n---\nb: 2\n", 1), None);
        assert_eq!(chunk_starts("a: 1\nb: ---\n", 1), None);
        assert_eq!(chunk_starts("a: 1\n---x: 2\n", 1), None);
        assert_eq!(chunk_starts("a: 1\n---\nb: 2\n", 1), Some(vec![0, 5]));
    }

    #[test]
    fn an_error_in_a_chunk_is_the_single_pass_error() {
        let src = "a: 1\n---\nb: [1, 2\n---\nc: 3\n";
        assert_eq!(Tree::parse_chunked(src, 1), None);
        let err = Tree::parse_whole(src).unwrap_err();
        assert!(err.to_string().contains("syntax"), "{err}");
    }
}
