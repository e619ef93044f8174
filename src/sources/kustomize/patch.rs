//! Planning a patch for the objects it meets: a file (strategic-merge or JSON 6902, told apart
//! by its content) or an inline patch in a kustomization, whose edits are splices of the
//! kustomization file (see [`yaml_splice::Embedded`]), verified as both the inner document and the
//! outer file.

use std::collections::BTreeSet;
use std::path::Path;

use crate::apply::apply_plan;
use crate::input::{read_text, tab_indentation};
use crate::policy::{self, JsonPatchTarget, Note, NoteKind, Plan, Rules};
use crate::report::{FileError, FileReport, Settings, Status};
use crate::verify::verify_with;
use yaml_splice::{apply_changes, NewValue, NodeId, Ref, SemanticOp, Tree};

use super::forest::{selects, BaseObject, Forest, PatchUse};
use super::model::{normalise, Kustomization, PatchSource};
use super::shipped::{PatchKey, Shipped};
use yaml_splice::Embedded;

/// Plans the patch file at `path` for each use of it.
pub fn process_patch_file(
    path: &Path,
    uses: &[PatchUse],
    forest: &Forest,
    settings: &Settings,
    shipped: &Shipped,
) -> FileReport {
    let text = match read_text(path, settings.max_file_bytes) {
        Ok(text) => text,
        Err(status) => return FileReport::new(path, status),
    };
    let mut report = FileReport::new(path, Status::Unchanged);
    let key = PatchKey::File(normalise(path));
    let status = tab_indentation(&text).map_or_else(
        || {
            let tree = Tree::parse(&text)?;
            let plan = plan_patch_tree(&tree, uses, forest, &settings.rules, (shipped, &key));
            apply_plan(&tree, plan, &mut report, None)
        },
        Err,
    );
    report.status = status.unwrap_or_else(Status::Failed);
    report.original = Some(text);
    report
}

/// The plan for a patch's text: JSON 6902 when its first document is a list, else a
/// strategic-merge patch, planned with the images the builds ship in the pods it meets.
fn plan_patch_tree(
    tree: &Tree,
    uses: &[PatchUse],
    forest: &Forest,
    rules: &Rules,
    (shipped, key): (&Shipped, &PatchKey),
) -> Plan {
    let is_json = tree
        .docs
        .first()
        .and_then(|d| d.root)
        .is_some_and(|root| tree.is_seq(Ref::root(root)));
    let objects_met = |kind: &str, name: &str| -> Option<Vec<BaseObject>> {
        let mut met = Vec::new();
        let mut known = false;
        for usage in uses {
            let base = forest.base_objects(&usage.kustomization);
            known |= !base.is_empty();
            met.extend(base.into_iter().filter(|o| match &usage.target {
                Some(target) => selects(target, o),
                None => o.kind == kind && o.name == name,
            }));
        }
        (known && !met.is_empty()).then_some(met)
    };
    if is_json {
        let target = uses
            .iter()
            .find_map(|u| u.target.clone())
            .unwrap_or_default();
        let met = objects_met("", "").unwrap_or_default();
        let container_name = |list: &str, index: usize| {
            let names: BTreeSet<Option<&String>> = met
                .iter()
                .map(|o| match list {
                    "initContainers" => o.init_containers.get(index),
                    _ => o.containers.get(index),
                })
                .collect();
            // Only a name that every object the patch meets agrees on.
            match names.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(name)] => Some((*name).clone()),
                _ => None,
            }
        };
        let described = JsonPatchTarget {
            kind: target.kind.clone().unwrap_or_else(|| "object".into()),
            name: target.name.clone().unwrap_or_else(|| "*".into()),
            container_name: &container_name,
        };
        return policy::plan_json_patch(tree, rules, &described);
    }
    let base = |_: usize, kind: &str, name: &str| {
        objects_met(kind, name).map(|objects| {
            let names: BTreeSet<String> = objects.into_iter().flat_map(|o| o.containers).collect();
            names.into_iter().collect()
        })
    };
    let targeted = uses.iter().any(|u| u.target.is_some());
    let used_in: Vec<std::path::PathBuf> = uses.iter().map(|u| u.kustomization.clone()).collect();
    let ships =
        |_: usize, kind: &str, name: &str| shipped.for_patch(key, &used_in, (kind, name), targeted);
    policy::plan_patch_with_images(tree, rules, &base, &ships)
}

/// Plans the inline patches and the `helmCharts` entries of a kustomization file, and reports
/// what it brings in that cannot be edited (remote resources, missing files).
pub fn process_kustomization(
    path: &Path,
    forest: &Forest,
    settings: &Settings,
    plan_helm_charts: &super::PlanHelmCharts<'_>,
    shipped: &Shipped,
) -> FileReport {
    let text = match read_text(path, settings.max_file_bytes) {
        Ok(text) => text,
        Err(status) => return FileReport::new(path, status),
    };
    let mut report = FileReport::new(path, Status::Unchanged);
    let key = super::model::normalise(path);
    let mut finish = None;
    report.status = match forest.kustomizations.get(&key) {
        Some(k) => {
            let planners = (plan_helm_charts, shipped);
            match plan_kustomization(&text, k, forest, settings, planners, &mut report) {
                Ok((status, then)) => {
                    finish = then;
                    status
                }
                Err(e) => Status::Failed(e),
            }
        }
        None => match forest.unreadable.get(&key) {
            Some((line, col, message)) => Status::Failed(FileError {
                line: *line,
                col: *col,
                message: message.clone(),
            }),
            None => Status::Skipped("kustomization file".into()),
        },
    };
    report.original = Some(text);
    if let Some(finish) = finish {
        finish(&mut report);
    }
    report
}

/// What the kustomization's edits come to, and the step that runs once its new text is known
/// (the `helmCharts` entries' render check).
type Planned<'a> = (Status, Option<super::Finish<'a>>);

fn plan_kustomization<'a>(
    text: &str,
    k: &Kustomization,
    forest: &Forest,
    settings: &Settings,
    (plan_helm_charts, shipped): (&super::PlanHelmCharts<'a>, &Shipped),
    report: &mut FileReport,
) -> Result<Planned<'a>, FileError> {
    if let Some(e) = tab_indentation(text) {
        return Err(e);
    }
    let outer = Tree::parse(text)?;
    let mut splices = Vec::new();
    let mut ops = Vec::new();
    for patch in &k.patches {
        let PatchSource::Inline(node) = patch.source else {
            continue;
        };
        let usage = PatchUse {
            kustomization: k.path.clone(),
            line: patch.line,
            target: patch.target.clone(),
        };
        let key = PatchKey::Inline {
            kustomization: k.path.clone(),
            line: patch.line,
        };
        let inline = Inline {
            outer: &outer,
            node,
            usage: &usage,
            key: &key,
        };
        match plan_one_inline(&inline, forest, &settings.rules, shipped, report)? {
            Some((new_inner, outer_splices)) => {
                splices.extend(outer_splices);
                ops.push(SemanticOp::Set {
                    doc: 0,
                    path: outer.path_of(node),
                    value: NewValue::Str(new_inner),
                });
            }
            None => continue,
        }
    }
    report_unreachable(k, report);
    let charts = plan_helm_charts(&k.path, &outer, report)?;
    splices.extend(charts.splices);
    ops.extend(charts.ops);
    if splices.is_empty() && charts.changes.is_empty() {
        return Ok((Status::Unchanged, Some(charts.finish)));
    }
    let outcome = crate::apply::edit(&outer, charts.changes, splices, ops, None)?;
    let new_text = outcome.text;
    Ok((Status::Changed { new_text }, Some(charts.finish)))
}

/// An inline patch: the kustomization's tree, the scalar's node, its use and its key.
#[derive(Clone, Copy)]
struct Inline<'t, 's> {
    outer: &'t Tree<'s>,
    node: NodeId,
    usage: &'t PatchUse,
    key: &'t PatchKey,
}

/// Plans one inline patch; its findings and notes join the kustomization's report with their
/// lines in the kustomization. Returns the new inner text and the outer splices, if it changes.
fn plan_one_inline(
    inline: &Inline,
    forest: &Forest,
    rules: &Rules,
    shipped: &Shipped,
    report: &mut FileReport,
) -> Result<Option<(String, Vec<yaml_splice::Splice>)>, FileError> {
    let Inline {
        outer,
        node,
        usage,
        key,
    } = *inline;
    // The scalar's node starts at its first content line: inner line 1.
    let shift = outer.node(node).line - 1;
    let embedded = match Embedded::of(outer, node) {
        Ok(e) => e,
        Err(why) => {
            report.notes.push(Note {
                workload: Note::FILE,
                container: None,
                kind: NoteKind::Risk,
                message: format!("the inline patch is {why}: not checked or edited"),
                line: usage.line,
            });
            return Ok(None);
        }
    };
    let inner = Tree::parse(&embedded.text).map_err(|e| FileError {
        line: shift + e.line,
        col: e.col,
        message: format!("in the inline patch: {}", e.message),
    })?;
    let uses = std::slice::from_ref(usage);
    let plan = plan_patch_tree(&inner, uses, forest, rules, (shipped, key));
    // Lines inside the patch, as lines of the kustomization.
    let first_workload = report.workloads.len();
    report
        .workloads
        .extend(plan.workloads.into_iter().map(|mut w| {
            w.line += shift;
            w
        }));
    report
        .findings
        .extend(plan.findings.into_iter().map(|mut f| {
            f.line += shift;
            f.workload += first_workload;
            f
        }));
    report.notes.extend(plan.notes.into_iter().map(|mut n| {
        n.line += shift;
        n.workload += first_workload;
        n
    }));
    report
        .skipped_pods
        .extend(plan.skipped.into_iter().map(|mut s| {
            s.workload += first_workload;
            s
        }));
    if let Some(refusal) = plan.refusals.into_iter().next() {
        let mut e: FileError = refusal.into();
        e.line += shift;
        return Err(e);
    }
    if plan.changes.is_empty() {
        return Ok(None);
    }
    let outcome = apply_changes(&inner, plan.changes)?;
    verify_with(&inner, &outcome.text, &outcome.splices, &outcome.ops, None).map_err(|e| {
        FileError {
            line: e.position.map_or(shift + 1, |p| p.0 + shift),
            col: e.position.map_or(1, |p| p.1),
            message: format!("in the inline patch: {e}"),
        }
    })?;
    report.edit_notes.extend(outcome.notes);
    Ok(Some((outcome.text, embedded.to_outer(&outcome.splices))))
}

/// What the kustomization brings in that the tool cannot edit, each at its line.
fn report_unreachable(k: &Kustomization, report: &mut FileReport) {
    use super::model::Resource;
    let mut note = |line: usize, message: String| {
        report.notes.push(Note {
            workload: Note::FILE,
            container: None,
            kind: NoteKind::Risk,
            message,
            line,
        })
    };
    for entry in k.resources.iter().chain(&k.components) {
        match &entry.item {
            Resource::Remote(url) => note(entry.line, format!("remote resource `{url}` is not in this repository: what it brings in is not hardened here")),
            Resource::Missing(path) => note(entry.line, format!("resource `{}` is not there", path.display())),
            _ => {}
        }
    }
    for patch in &k.patches {
        if let PatchSource::Unreadable(why) = &patch.source {
            note(patch.line, format!("patch not read: {why}"));
        }
    }
}
