//! Lossless YAML edits as byte-range splices. The engine knows YAML and bytes, nothing of
//! the documents' meaning: a planner reads the span tree, asks for changes by node, and gets
//! back the new text, the splices that make it and what each change means as data (for an
//! independent check). Every byte outside the splices stays as it was: comments, quoting,
//! indentation, line endings, a BOM, a missing final newline.
//!
//! ```
//! use yaml_splice::{apply_changes, Change, NewValue, Ref, Tree};
//!
//! let src = "# the web tier\nspec:\n  replicas: 2   # keep\n  ports: [80]\n";
//! let tree = Tree::parse(src)?;
//! let root = Ref::root(tree.docs[0].root.expect("a document"));
//! let spec = tree.get(root, "spec").expect("spec");
//! let ports = tree.get(spec, "ports").expect("ports");
//! let changes = vec![
//!     Change::Insert { map: spec.id, entries: vec![("paused".into(), NewValue::Bool(true))] },
//!     Change::Append { seq: ports.id, items: vec![NewValue::Int(443)] },
//! ];
//! let outcome = apply_changes(&tree, changes)?;
//! assert_eq!(
//!     outcome.text,
//!     "# the web tier\nspec:\n  replicas: 2   # keep\n  ports: [80, 443]\n  paused: true\n"
//! );
//! # Ok::<(), yaml_splice::EngineError>(())
//! ```
//!
//! - [`tree`]: the span tree built from granit-parser events;
//! - [`view`]: read access for planners (lookups through merge keys and aliases, typed scalars);
//! - [`value`]: the values a planner asks to add, and how they are written in block or flow style;
//! - [`style`]: what the file looks like around an edit (newlines, indent step, sequence style);
//! - [`embedded`]: a document inside a literal block scalar, whose edits are splices of the
//!   outer file;
//! - [`edit`]: turns requested changes into byte-range splices, plus the semantic operations that
//!   verification checks them against.

pub mod edit;
pub mod embedded;
pub mod style;
pub mod tree;
pub mod value;
pub mod view;

pub use edit::{apply_changes, Change, EditOutcome, PathSeg, SemanticOp, Splice};
pub use embedded::Embedded;
pub use tree::{document_starts, NodeId, Tree, PARALLEL_PARSE_MIN};
pub use value::NewValue;
pub use view::{Ref, Scalar};

/// An error located in the source text (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct EngineError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl EngineError {
    pub fn new(line: usize, col: usize, message: impl Into<String>) -> Self {
        EngineError {
            line,
            col,
            message: message.into(),
        }
    }
}

/// The README's example is compiled and run as a doc test, so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
