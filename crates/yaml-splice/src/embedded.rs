//! A YAML document inside a literal block scalar of another file (a Kustomize inline
//! `patch: |`, an Argo CD `values: |`). Its lines are the scalar's content lines less a fixed indentation, so an edit of
//! the inner document is still a byte-range splice of the outer file: each inner offset has
//! its outer offset, and new lines get the indentation back.

use crate::tree::{NodeKind, Quoting};
use crate::{NodeId, Splice, Tree};

/// The inner document of a block scalar, and where its lines are in the outer text.
#[derive(Debug)]
pub struct Embedded {
    /// The scalar's value: the inner document's text.
    pub text: String,
    indent: usize,
    /// Outer offset of the start of each inner line (before its indentation), and one more:
    /// where a line after the last would start (or the last line's end, with no final newline).
    outer_lines: Vec<usize>,
    inner_lines: Vec<usize>,
    /// The outer offset just after the last content character (for a final line with no
    /// newline in the value).
    content_end: usize,
}

impl Embedded {
    /// The inner document of the literal block scalar `node`, or why it cannot be edited here.
    pub fn of(tree: &Tree, node: NodeId) -> Result<Embedded, String> {
        let n = tree.node(node);
        let NodeKind::Scalar { value, quoting } = &n.kind else {
            return Err("not a string".into());
        };
        let header_start = tree.src[..n.start]
            .rfind(['|', '>'])
            .filter(|_| *quoting == Quoting::Block)
            .ok_or("not a block scalar (`|`)")?;
        let header_end = tree.src[header_start..]
            .find('\n')
            .map_or(tree.src.len(), |i| header_start + i);
        let header = tree.src[header_start..header_end]
            .split('#')
            .next()
            .unwrap_or_default()
            .trim_end();
        if !header.starts_with('|') || header.chars().any(|c| c.is_ascii_digit()) {
            return Err(format!(
                "a `{header}` block scalar (only `|`, `|-` and `|+` are edited in place)"
            ));
        }
        let body_start = (header_end + 1).min(tree.src.len());
        let body = &tree.src[body_start..n.end.max(body_start)];
        let indent = body
            .lines()
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| l.len() - l.trim_start_matches(' ').len());
        let embedded = Embedded::from_lines(body_start, body, indent, value);
        if embedded.text != **value {
            return Err("its lines do not read back as its value".into());
        }
        Ok(embedded)
    }

    /// Builds the inner text from the content lines, as many as the value holds.
    fn from_lines(body_start: usize, body: &str, indent: usize, value: &str) -> Embedded {
        let lines_in_value = value.split_inclusive('\n').count();
        let mut text = String::new();
        let mut outer_lines = Vec::new();
        let mut inner_lines = Vec::new();
        let mut offset = body_start;
        let mut content_end = body_start;
        for line in body.split_inclusive('\n').take(lines_in_value) {
            outer_lines.push(offset);
            inner_lines.push(text.len());
            let content = line
                .get(indent..)
                .unwrap_or_else(|| line.trim_start_matches(' '));
            let keep = if value.len() > text.len() + content.trim_end_matches(['\n', '\r']).len()
                || value.ends_with('\n')
            {
                content
            } else {
                content.trim_end_matches(['\n', '\r'])
            };
            text.push_str(keep);
            content_end = offset + line.trim_end_matches(['\n', '\r']).len();
            offset += line.len();
        }
        // A value that ends without a newline ends where the last line's content does.
        text.truncate(value.len().min(text.len()));
        outer_lines.push(if text.ends_with('\n') {
            offset
        } else {
            content_end
        });
        inner_lines.push(text.len());
        Embedded {
            text,
            indent,
            outer_lines,
            inner_lines,
            content_end,
        }
    }

    /// The outer offset of an inner offset: a line start maps to the outer line's start
    /// (before the indentation), any other offset to its column after the indentation.
    fn outer(&self, inner: usize) -> (usize, bool) {
        let line = self.inner_lines.partition_point(|&s| s <= inner) - 1;
        let col = inner - self.inner_lines[line];
        if col == 0 {
            (self.outer_lines[line], true)
        } else {
            (self.outer_lines[line] + self.indent + col, false)
        }
    }

    /// The inner splices as splices of the outer text: offsets mapped, and each line the
    /// splice's text starts indented like the scalar's content.
    pub fn to_outer(&self, splices: &[Splice]) -> Vec<Splice> {
        let pad = " ".repeat(self.indent);
        splices
            .iter()
            .map(|s| {
                let (start, at_line_start) =
                    if s.start == self.text.len() && !self.text.ends_with('\n') {
                        (self.content_end, false)
                    } else {
                        self.outer(s.start)
                    };
                let end = if s.end == s.start {
                    start
                } else if s.end == self.text.len() && !self.text.ends_with('\n') {
                    self.content_end
                } else {
                    self.outer(s.end).0
                };
                let mut text = String::new();
                let mut line_start = at_line_start;
                for ch in s.text.chars() {
                    if line_start && ch != '\n' && ch != '\r' {
                        text.push_str(&pad);
                    }
                    text.push(ch);
                    line_start = ch == '\n';
                }
                Splice { start, end, text }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_changes, Change, NewValue, Ref};

    fn scalar(tree: &Tree, key_path: &[&str]) -> NodeId {
        let root = Ref::root(tree.docs[0].root.unwrap());
        let mut r = root;
        for k in key_path {
            r = match k.parse::<usize>() {
                Ok(i) => tree.items(r)[i],
                Err(_) => tree.get(r, k).unwrap(),
            };
        }
        r.id
    }

    fn splice(src: &str, splices: &[Splice]) -> String {
        let mut out = String::new();
        let mut from = 0;
        for s in splices {
            out.push_str(&src[from..s.start]);
            out.push_str(&s.text);
            from = s.end;
        }
        out + &src[from..]
    }

    /// Edits the inner document (adds `added: true` to its root mapping) and returns the new
    /// outer text.
    fn add_to_inner(src: &str, path: &[&str]) -> String {
        let outer = Tree::parse(src).unwrap();
        let embedded = Embedded::of(&outer, scalar(&outer, path)).unwrap();
        let inner = Tree::parse(&embedded.text).unwrap();
        let root = inner.docs[0].root.unwrap();
        let change = Change::Insert {
            map: root,
            entries: vec![("added".into(), NewValue::Bool(true))],
        };
        let outcome = apply_changes(&inner, vec![change]).unwrap();
        splice(src, &embedded.to_outer(&outcome.splices))
    }

    #[test]
    fn an_inner_edit_is_an_outer_splice_indented_like_the_content() {
        let src = "patches:\n- patch: |\n    kind: A\n    spec:\n      x: 1\n  target: {kind: A}\nnext: 1\n";
        assert_eq!(
            add_to_inner(src, &["patches", "0", "patch"]),
            "patches:\n- patch: |\n    kind: A\n    spec:\n      x: 1\n    added: true\n  target: {kind: A}\nnext: 1\n"
        );
    }

    #[test]
    fn strip_chomping_and_blank_lines_and_comments_are_kept() {
        let src = "p: |-\n  a: 1\n\n  # note\n  b: 2\nq: 3\n";
        assert_eq!(
            add_to_inner(src, &["p"]),
            "p: |-\n  a: 1\n\n  # note\n  b: 2\n  added: true\nq: 3\n"
        );
        let last = "p: |-\n  a: 1";
        assert_eq!(add_to_inner(last, &["p"]), "p: |-\n  a: 1\n  added: true");
    }

    #[test]
    fn trailing_blank_lines_outside_the_value_stay_after_it() {
        let src = "p: |\n  a: 1\n\n\nq: 3\n";
        assert_eq!(
            add_to_inner(src, &["p"]),
            "p: |\n  a: 1\n  added: true\n\n\nq: 3\n"
        );
    }

    #[test]
    fn folded_and_indicated_scalars_are_not_edited_in_place() {
        for src in ["p: >\n  a: 1\n", "p: |2\n    a: 1\n", "p: plain\n"] {
            let outer = Tree::parse(src).unwrap();
            assert!(
                Embedded::of(&outer, scalar(&outer, &["p"])).is_err(),
                "{src}"
            );
        }
    }
}
