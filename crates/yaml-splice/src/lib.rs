//! The lossless YAML edit engine. It knows YAML and bytes, nothing of Kubernetes.
//!
//! - [`tree`]: the span tree built from granit-parser events;
//! - [`view`]: read access for planners (lookups through merge keys and aliases, typed scalars);
//! - [`value`]: the values a planner asks to add, and how they are written in block or flow style;
//! - [`style`]: what the file looks like around an edit (newlines, indent step, sequence style);
//! - [`edit`]: turns requested changes into byte-range splices, plus the semantic operations that
//!   verification checks them against.

pub mod edit;
pub mod style;
pub mod tree;
pub mod value;
pub mod view;

pub use edit::{apply_changes, Change, EditOutcome, PathSeg, SemanticOp, Splice};
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
