//! The step every source ends a file with: the policy's plan recorded in the file's report,
//! its changes made by the engine, and the result checked by [`crate::verify`]. A refused
//! change or a failed check becomes the file's error, with a position; nothing is written here.

use crate::policy::Plan;
use crate::report::{FileError, FileReport, Status};
use crate::verify::{verify_with, VerifyError};
use yaml_splice::{apply_changes, Change, EditOutcome, SemanticOp, Splice, Tree};

/// Records the plan in `report`, then applies and verifies its changes. `original_loads`: the
/// result of loading the original with yaml_serde, when that ran already.
pub fn apply_plan(
    tree: &Tree,
    plan: Plan,
    report: &mut FileReport,
    original_loads: Option<Result<(), VerifyError>>,
) -> Result<Status, FileError> {
    report.workloads = plan.workloads;
    report.findings = plan.findings;
    report.skipped_pods = plan.skipped;
    report.notes = plan.notes;
    if let Some(refusal) = plan.refusals.into_iter().next() {
        return Err(refusal.into());
    }
    if plan.changes.is_empty() {
        return Ok(Status::Unchanged);
    }
    let outcome = edit(tree, plan.changes, vec![], vec![], original_loads)?;
    report.edit_notes = outcome.notes;
    Ok(Status::Changed {
        new_text: outcome.text,
    })
}

/// Applies the engine's changes, plus splices made elsewhere (inside a block scalar) with
/// their meaning, and verifies the result: the outcome, or the error at the position
/// verification names (else at the first edit). `original_loads`: as for [`apply_plan`].
pub fn edit(
    tree: &Tree,
    changes: Vec<Change>,
    extra: Vec<Splice>,
    extra_ops: Vec<SemanticOp>,
    original_loads: Option<Result<(), VerifyError>>,
) -> Result<EditOutcome, FileError> {
    let mut outcome = apply_changes(tree, changes)?;
    if !extra.is_empty() {
        outcome.splices.extend(extra);
        outcome.splices.sort_by_key(|s| s.start);
        outcome.text = yaml_splice::edit::splice(tree.src, &outcome.splices)?;
        outcome.ops.extend(extra_ops);
    }
    let (new, splices, ops) = (&outcome.text, &outcome.splices, &outcome.ops);
    verify_with(tree, new, splices, ops, original_loads).map_err(|e| {
        let first_edit = splices.first().map_or(0, |s| s.start);
        let (line, col) = e
            .position
            .unwrap_or((tree.src[..first_edit].matches('\n').count() + 1, 1));
        FileError {
            line,
            col,
            message: e.to_string(),
        }
    })?;
    Ok(outcome)
}
