//! Planning, editing and checking one values file of a chart: the contract applied to the
//! values paths the templates feed into a securityContext, the `enabled` switch of Bitnami-style
//! charts, the `helm create` hints, what the chart's guardrails ask of this file (the writable
//! /tmp appended to its volume lists, paths left to a person, the /tmp and low-port notes on its
//! lines), verification, and the chart's `values.schema.json`.

use std::path::{Path, PathBuf};

use crate::policy::{self, Note, NoteKind, SkippedPod};
use crate::report::{FileError, FileReport, Settings, Status};
use yaml_splice::tree::NodeKind;
use yaml_splice::{Change, NewValue, PathSeg, Ref, Scalar, SemanticOp, Tree};

use super::guardrails::{TmpAddition, ValuesPort};
use super::pods::PortSource;
use super::{hints, ChartWiring};

/// Reads a values file (size limit, UTF-8), or the status that says why not.
pub fn read(path: &Path, settings: &Settings) -> Result<String, Status> {
    crate::input::read_text(path, settings.max_file_bytes)
}

fn root(tree: &Tree) -> Option<Ref> {
    tree.docs
        .first()
        .and_then(|d| d.root)
        .map(Ref::root)
        .filter(|r| tree.is_map(*r))
}

/// The parent mapping and the node at a dotted path, if the path exists.
pub(super) fn lookup(tree: &Tree, path: &str) -> Option<(Ref, String, Ref)> {
    let mut parent = root(tree)?;
    let segs: Vec<&str> = path.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        let node = tree.get(parent, seg)?;
        if i + 1 == segs.len() {
            return Some((parent, seg.to_string(), node));
        }
        if !tree.is_map(node) {
            return None;
        }
        parent = node;
    }
    None
}

/// What values.yaml holds at `path`: None when absent, `Some(Some(keys))` for a mapping (no keys
/// for `{}` or null), `Some(None)` for anything else.
pub fn shape(tree: &Tree, path: &str) -> Option<Option<Vec<String>>> {
    let (_, _, node) = lookup(tree, path)?;
    if tree.is_empty(node) && !tree.is_seq(node) {
        return Some(Some(vec![]));
    }
    let node = tree.deref(node);
    match &tree.node(node.id).kind {
        NodeKind::Map(entries) => Some(Some(
            entries
                .iter()
                .filter_map(|(k, _)| tree.key_str(*k).map(str::to_string))
                .collect(),
        )),
        _ => Some(None),
    }
}

/// A chart's `values.schema.json`, compiled.
pub struct Schema {
    path: PathBuf,
    validator: jsonschema::Validator,
}

impl Schema {
    /// The chart's schema, if it has one; an error when it cannot be read or compiled.
    pub fn load(chart: &Path) -> Result<Option<Schema>, FileError> {
        let path = chart.join("values.schema.json");
        if !path.is_file() {
            return Ok(None);
        }
        let bad = |m: String| FileError::at_start(format!("{}: {m}", path.display()));
        let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&json)
            .map_err(|e| bad(format!("not a valid schema: {e}")))?;
        Ok(Some(Schema { path, validator }))
    }

    /// The schema's complaints about `values`, as `path: message` lines.
    pub fn errors(&self, values: &serde_json::Value) -> Vec<String> {
        self.validator
            .iter_errors(values)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".into() } else { at };
                format!("{at}: {e}")
            })
            .collect()
    }
}

/// The values a text holds, as JSON (null for an empty file).
pub(super) fn as_json(text: &str) -> Result<serde_json::Value, String> {
    let docs = crate::verify::load_all(text).map_err(|e| e.to_string())?;
    let first = docs.into_iter().next().unwrap_or(yaml_serde::Value::Null);
    serde_json::to_value(first).map_err(|e| e.to_string())
}

pub(super) use crate::helm::values::merge;

/// The line of the key whose value is `node` in the mapping `parent`.
pub(super) fn key_line(tree: &Tree, parent: Ref, node: Ref) -> Option<usize> {
    let NodeKind::Map(entries) = &tree.node(tree.deref(parent).id).kind else {
        return None;
    };
    entries
        .iter()
        .find(|(_, v)| *v == node.id)
        .map(|(k, _)| tree.node(*k).line)
}

/// The path of a node from its document's root.
fn node_path(tree: &Tree, mut id: usize) -> Vec<PathSeg> {
    let mut path = Vec::new();
    while let Some(parent) = tree.node(id).parent {
        match &tree.node(parent).kind {
            NodeKind::Map(entries) => {
                if let Some((k, _)) = entries.iter().find(|(_, v)| *v == id) {
                    path.push(PathSeg::Key(
                        tree.key_str(*k).unwrap_or_default().to_string(),
                    ));
                }
            }
            NodeKind::Seq(items) => {
                if let Some(i) = items.iter().position(|v| *v == id) {
                    path.push(PathSeg::Index(i));
                }
            }
            _ => {}
        }
        id = parent;
    }
    path.reverse();
    path
}

/// Plans, edits and checks one values file. `complete`: the chart's values.yaml (what is
/// missing is added); otherwise an override file (only explicit values that fall short are
/// corrected). `defaults`: values.yaml as it will be, which an override is merged into for the
/// schema check.
pub fn process(
    path: &Path,
    text: String,
    wiring: &ChartWiring,
    complete: bool,
    schema: Option<&Schema>,
    defaults: Option<&str>,
    settings: &Settings,
) -> FileReport {
    let mut report = FileReport::new(path, Status::Unchanged);
    report.status = match plan_and_edit(
        &text,
        wiring,
        complete,
        schema,
        defaults,
        settings,
        &mut report,
    ) {
        Ok(status) => status,
        Err(e) => Status::Failed(e),
    };
    report.original = Some(text);
    report
}

#[allow(clippy::too_many_arguments)]
fn plan_and_edit(
    text: &str,
    wiring: &ChartWiring,
    complete: bool,
    schema: Option<&Schema>,
    defaults: Option<&str>,
    settings: &Settings,
    report: &mut FileReport,
) -> Result<Status, FileError> {
    if let Some(e) = crate::input::tab_indentation(text) {
        return Err(e);
    }
    let tree = Tree::parse(text)?;
    let mut changes = Vec::new();
    let mut refusals = Vec::new();
    let mut left_alone = privileged_targets(&tree, wiring);
    if let Some(defaults) = defaults.and_then(|d| Tree::parse(d).ok()) {
        for (path, reason) in privileged_targets(&defaults, wiring) {
            left_alone.entry(path).or_insert(reason);
        }
    }
    for (path, reason) in &wiring.guardrails.left_alone {
        left_alone
            .entry(path.clone())
            .or_insert_with(|| reason.clone());
    }
    for target in &wiring.targets {
        // A path a helper merges over a default only has its explicit values corrected.
        let complete = complete && target.complete;
        let Some((parent, key, node)) = lookup(&tree, &target.path) else {
            if complete && target.create {
                let created = create_context(&tree, target, &left_alone, settings, report);
                changes.extend(created.changes);
                refusals.extend(created.refusals);
            }
            continue;
        };
        let workload = report.workloads.len();
        let line = key_line(&tree, parent, node).unwrap_or_else(|| tree.position(node).0);
        report.add_workload("values", &target.path, line);
        let empty = tree.is_empty(node) && !tree.is_seq(node);
        let label = (!target.containers.is_empty()).then(|| target.containers.join(", "));
        let relabel = |c: &mut Option<String>| {
            if c.is_some() {
                c.clone_from(&label);
            }
        };
        if let Some(reason) = left_alone.get(&target.path) {
            report.skipped_pods.push(SkippedPod {
                workload,
                reason: reason.clone(),
            });
            // As for a manifest, `check` still lists what falls short, left to a person.
            let plan = plan_target(&tree, parent, &key, target, settings, complete, workload);
            report
                .findings
                .extend(plan.findings.into_iter().map(|mut f| {
                    f.fixable = false;
                    relabel(&mut f.container);
                    f
                }));
            continue;
        }
        if !complete && tree.scalar(node) == Some(Scalar::Null) {
            report.notes.push(Note {
                workload,
                container: None,
                kind: NoteKind::Risk,
                message: format!("null here deletes the chart's `{}` (Helm drops a key set to null): the pod gets no such securityContext; remove the line", target.path),
                line,
            });
            continue;
        }
        if empty && target.falls_back {
            continue; // the template builds the context from its fields (planned below)
        }
        if let Some(off) = turned_off(&tree, node).filter(|_| !complete) {
            report.notes.push(Note {
                workload,
                container: None,
                kind: NoteKind::Risk,
                message: format!("`{}: {off}` turns the chart's securityContext off in this file (Helm keeps a value other than a mapping as written): the pods it feeds render without it from here; left as written (remove the line to get the chart's hardened default)", target.path),
                line,
            });
            continue;
        }
        if complete && empty && target.has_default {
            match default_decision(target, wiring) {
                Err(reason) => {
                    report.skipped_pods.push(SkippedPod { workload, reason });
                    continue;
                }
                Ok(message) => report.notes.push(Note {
                    workload,
                    container: label.clone(),
                    kind: NoteKind::Override,
                    message,
                    line,
                }),
            }
        }
        let plan = plan_target(&tree, parent, &key, target, settings, complete, workload);
        let (mut findings, mut notes) = (plan.findings, plan.notes);
        findings.iter_mut().for_each(|f| relabel(&mut f.container));
        notes.iter_mut().for_each(|n| relabel(&mut n.container));
        report.findings.extend(findings);
        report.notes.extend(notes);
        refusals.extend(plan.refusals);
        changes.extend(plan.changes);
        // The `enabled` that turns the context on: its own key (Bitnami), or a key beside it
        // (`x.securityContext.enabled` beside `x.securityContext.context`).
        let switch = match (target.gated_by_enabled, target.gated_beside) {
            (true, _) if tree.is_map(node) && !empty => Some(node),
            (_, true) => Some(parent),
            _ => None,
        };
        if let Some(holder) = switch {
            match tree.get(holder, "enabled") {
                Some(e) if tree.scalar(e) == Some(Scalar::Bool(false)) && e.alias.is_none() => {
                    changes.push(Change::Replace {
                        node: e.id,
                        value: NewValue::Bool(true),
                    });
                    report.notes.push(Note {
                        workload,
                        container: None,
                        kind: NoteKind::Override,
                        message: "`enabled: false` becomes `true`: the chart renders this securityContext only when it is enabled".into(),
                        line: tree.position(e).0,
                    });
                }
                None if complete && holder.alias.is_none() => changes.push(Change::Insert {
                    map: holder.id,
                    entries: vec![("enabled".into(), NewValue::Bool(true))],
                }),
                _ => {}
            }
        }
    }
    for field in &wiring.fields {
        changes.extend(plan_field(&tree, field, &left_alone, settings, report));
    }
    let guardrails = &wiring.guardrails;
    if let Some(tmp) = &guardrails.tmp {
        changes.extend(writable_tmp(
            &tree,
            tmp,
            wiring,
            complete,
            report,
            &mut refusals,
        ));
    }
    if complete {
        no_tmp_notes(wiring, report);
        image_notes(wiring, settings, report);
        if !wiring.image_errors.is_empty() {
            return Err(FileError::at_start(wiring.image_errors.join("; ")));
        }
    }
    port_notes(&tree, &guardrails.ports, report);
    report.findings.sort_by_key(|f| (f.workload, f.line, f.col));
    report.notes.sort_by_key(|n| (n.workload, n.line));
    if let Some(e) = refusals.into_iter().next() {
        return Err(e.into());
    }
    if changes.is_empty() {
        return Ok(Status::Unchanged);
    }
    let new_text = match edit_with_hints(&tree, &changes) {
        Ok(t) => t,
        Err(_) => edit(&tree, changes, vec![], vec![])?,
    };
    check_schema(text, &new_text, complete, schema, defaults, &tree)?;
    Ok(Status::Changed { new_text })
}

/// An empty value whose template has a default of its own ([`super::defaults`]): the note
/// that it is filled when the renders prove the default untaken, else the reason it is left
/// to a person.
fn default_decision(target: &super::Target, wiring: &ChartWiring) -> Result<String, String> {
    use super::defaults::Probe;
    // Every default applies to an empty value; some only under a condition of their own.
    let empty = format!("`.Values.{}` is empty", target.path);
    let conditions: Vec<&str> = target
        .default_when
        .iter()
        .map(String::as_str)
        .filter(|c| *c != empty)
        .collect();
    let when = match conditions.as_slice() {
        [] => empty,
        conditions => format!("{empty} and {}", conditions.join(", or ")),
    };
    let places: Vec<String> = target
        .used_at
        .iter()
        .map(|(template, line)| wiring.place(template, *line))
        .collect();
    let own = format!(
        "the template ({}) renders a securityContext of its own when {when}",
        places.join(", "),
    );
    match &target.default_probe {
        Probe::NotTaken { sets } => Ok(format!(
            "{own}; `helm template` with {} does not take that branch, so the value is filled: it now replaces the chart's default where that condition would hold",
            and_list(&sets.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>())
        )),
        Probe::Taken { set, at } => Err(format!(
            "{own}, and `helm template` with `{set}` takes that branch ({at} is the chart's own); a filled value would replace it, so it is left to a person"
        )),
        Probe::Unproven => Err(format!(
            "{own}; no render proved that branch untaken (no render check ran, a render failed, or the values in use do not render it), and a filled value would replace it, so it is left to a person"
        )),
    }
}

/// An empty value an override file sets on purpose where the chart has a securityContext
/// mapping (`""` or `false`), as written: the file turns that context off.
fn turned_off(tree: &Tree, node: Ref) -> Option<&'static str> {
    if node.alias.is_some() {
        return None;
    }
    match tree.scalar(node)? {
        Scalar::Str("") => Some("\"\""),
        Scalar::Bool(false) => Some("false"),
        _ => None,
    }
}

/// A field a template writes from one values key (`runAsUser: {{ .Values.image.runAsUser }}`),
/// while the whole-context paths of the same key are empty in this file: an explicit value
/// that falls short is corrected, with a note that names the key, its line and where the
/// chart writes it. Nothing is added: the template writes the key whatever it holds.
fn plan_field(
    tree: &Tree,
    field: &super::FieldTarget,
    left_alone: &std::collections::BTreeMap<String, String>,
    settings: &Settings,
    report: &mut FileReport,
) -> Option<Change> {
    let overridden = field.overrides.iter().any(|p| {
        left_alone.contains_key(p)
            || lookup(tree, p).is_some_and(|(_, _, n)| !tree.is_empty(n) || tree.is_seq(n))
    });
    if overridden {
        return None;
    }
    let (parent, _, node) = lookup(tree, &field.path)?;
    let b = &settings.rules.baseline;
    let (control, wanted) = match (field.field.as_str(), tree.scalar(node)?) {
        ("runAsUser", Scalar::Int(0)) => (policy::Control::RunAsUser, NewValue::Int(b.uid)),
        ("runAsGroup", Scalar::Int(0)) => (policy::Control::RunAsGroup, NewValue::Int(b.gid)),
        ("fsGroup", Scalar::Int(0)) => (policy::Control::FsGroup, NewValue::Int(b.fs_group)),
        ("runAsNonRoot", Scalar::Bool(false)) => {
            (policy::Control::RunAsNonRoot, NewValue::Bool(true))
        }
        ("allowPrivilegeEscalation", Scalar::Bool(true)) => (
            policy::Control::AllowPrivilegeEscalation,
            NewValue::Bool(false),
        ),
        ("readOnlyRootFilesystem", Scalar::Bool(false)) => (
            policy::Control::ReadOnlyRootFilesystem,
            NewValue::Bool(true),
        ),
        _ => return None,
    };
    if settings.rules.disabled.contains(&control) || node.alias.is_some() {
        return None;
    }
    let line = key_line(tree, parent, node).unwrap_or_else(|| tree.position(node).0);
    let workload = push_values_workload(report, &field.path, line);
    let container = (field.level == policy::Level::Container).then(|| field.name.clone());
    let old = tree.source_text(node).to_string();
    let new = yaml_splice::value::flow_text(&wanted, false);
    report.findings.push(policy::Finding {
        workload,
        container: container.clone(),
        control,
        current: old.clone(),
        wanted: new.clone(),
        line,
        col: tree.position(node).1,
        fixable: true,
    });
    let (file, at) = &field.written_at;
    let mut message = format!(
        "overrides the explicit `{}: {old}` with `{new}`: the chart writes it as the {} `{}` ({}:{at})",
        field.path,
        match field.level {
            policy::Level::Pod => "pod's".to_string(),
            policy::Level::Container => format!("container `{}`'s", field.name),
        },
        field.field,
        file.display(),
    );
    if let Some(comment) = tree.comment_for(node) {
        message.push_str(&format!(" (its comment says: \"{comment}\")"));
    }
    report.notes.push(Note {
        workload,
        container,
        kind: NoteKind::Override,
        message,
        line,
    });
    Some(Change::Replace {
        node: node.id,
        value: wanted,
    })
}

/// The policy's plan of one target's context: a container context that is the only one its
/// pods get holds the pod's ids and seccomp profile too.
fn plan_target(
    tree: &Tree,
    parent: Ref,
    key: &str,
    target: &super::Target,
    settings: &Settings,
    complete: bool,
    workload: usize,
) -> policy::Plan {
    let with_ids;
    let rules = match &target.image_ids {
        Some(ids) => {
            with_ids = policy::images::with_image_ids(&settings.rules, ids);
            &with_ids
        }
        None => &settings.rules,
    };
    if target.holds_pod_ids && target.level == policy::Level::Container {
        return policy::plan_container_context_with_pod_ids(
            tree, parent, key, rules, complete, workload,
        );
    }
    policy::plan_context(tree, parent, key, target.level, rules, complete, workload)
}

/// A securityContext a helper renders for a key of a mapping values.yaml sets, which sets no
/// context there (a container of `controllers.main.containers`): added with the whole baseline
/// of its level, unless the path is left to a person.
fn create_context(
    tree: &Tree,
    target: &super::Target,
    left_alone: &std::collections::BTreeMap<String, String>,
    settings: &Settings,
    report: &mut FileReport,
) -> policy::Plan {
    let Some((holder, key)) = target.path.rsplit_once('.') else {
        return policy::Plan::default();
    };
    let Some((grand, _, parent)) = lookup(tree, holder) else {
        return policy::Plan::default();
    };
    if !tree.is_map(parent) || parent.alias.is_some() {
        return policy::Plan::default();
    }
    let workload = report.workloads.len();
    let line = key_line(tree, grand, parent).unwrap_or_else(|| tree.position(parent).0);
    report.add_workload("values", &target.path, line);
    if let Some(reason) = left_alone.get(&target.path) {
        report.skipped_pods.push(SkippedPod {
            workload,
            reason: reason.clone(),
        });
        return policy::Plan::default();
    }
    let mut plan = plan_target(tree, parent, key, target, settings, true, workload);
    let label = (!target.containers.is_empty()).then(|| target.containers.join(", "));
    for f in &mut plan.findings {
        if f.container.is_some() {
            f.container.clone_from(&label);
        }
    }
    report.findings.append(&mut plan.findings);
    report.notes.append(&mut plan.notes);
    plan
}

/// The writable /tmp through values lists: the emptyDir appended to each volumes list and its
/// mount at /tmp to each mounts list this file sets (values.yaml sets them all; an override
/// that sets one replaces the chart's list, so it needs the item too), unless already there.
fn writable_tmp(
    tree: &Tree,
    tmp: &TmpAddition,
    wiring: &ChartWiring,
    complete: bool,
    report: &mut FileReport,
    refusals: &mut Vec<yaml_splice::EngineError>,
) -> Vec<Change> {
    let volume = NewValue::map(vec![
        ("name", NewValue::str(tmp.name)),
        ("emptyDir", NewValue::Map(vec![])),
    ]);
    let mount = NewValue::map(vec![
        ("name", NewValue::str(tmp.name)),
        ("mountPath", NewValue::str("/tmp")),
    ]);
    let has_volume = |item: Ref| item_text(tree, item, "name") == Some(tmp.name);
    let has_mount = |item: Ref| item_text(tree, item, "mountPath").is_some_and(policy::is_tmp_path);
    let mut changes = Vec::new();
    let mut added: Vec<(String, usize)> = Vec::new();
    let lists = [
        (&tmp.volumes, &volume, &has_volume as &dyn Fn(Ref) -> bool),
        (&tmp.mounts, &mount, &has_mount),
    ];
    for (paths, item, present) in lists {
        for path in paths {
            match append_to_list(tree, path, item, present) {
                Some(Ok((change, line))) => {
                    changes.push(change);
                    added.push((path.clone(), line));
                }
                Some(Err(e)) => refusals.push(e),
                None => {}
            }
        }
    }
    if !added.is_empty() {
        note_tmp(tmp, wiring, complete, &added, report);
    }
    changes
}

/// The change that appends `item` to the list at `path` (with the line of its key), unless the
/// file does not set that path as a list or the list has the item already (`present`).
fn append_to_list(
    tree: &Tree,
    path: &str,
    item: &NewValue,
    present: &dyn Fn(Ref) -> bool,
) -> Option<Result<(Change, usize), yaml_splice::EngineError>> {
    let (parent, key, node) = lookup(tree, path)?;
    let is_list = tree.is_seq(node) || tree.scalar(node) == Some(Scalar::Null);
    if !is_list || tree.items(node).into_iter().any(present) {
        return None;
    }
    // An empty list becomes a block list, as an empty securityContext becomes a block mapping
    // (the `helm create` hints below it stay comments).
    let change = if tree.is_empty(node) {
        let value = NewValue::Seq(vec![item.clone()]);
        Ok((
            Change::Fill {
                node: node.id,
                value,
            },
            node,
        ))
    } else {
        policy::append_item(tree, parent, &key, item.clone())
    };
    let line = key_line(tree, parent, node).unwrap_or(tree.position(node).0);
    Some(match change {
        Ok((change, via)) if via.alias.is_none() => Ok((change, line)),
        Ok((_, via)) => {
            let (line, col) = tree.position(Ref::root(via.alias.unwrap_or(via.id)));
            Err(yaml_splice::EngineError::new(line, col, "the writable /tmp would go through an alias or merge key (`*name` / `<<`); add it to the anchored list by hand"))
        }
        Err(e) => Err(e),
    })
}

/// The `added` notes of the writable /tmp: in values.yaml on each securityContext it is for
/// (naming its lists, on the line of its mount list), in an override file on each list it
/// extends.
fn note_tmp(
    tmp: &TmpAddition,
    wiring: &ChartWiring,
    complete: bool,
    added: &[(String, usize)],
    report: &mut FileReport,
) {
    let message = |lists: &[&String]| {
        let lists: Vec<String> = lists.iter().map(|p| format!("`{p}`")).collect();
        format!(
            "{} (an item of {} here)",
            policy::writable_tmp_message(tmp.name),
            and_list(&lists)
        )
    };
    if !complete {
        for (path, line) in added {
            let workload = push_values_workload(report, path, *line);
            report.notes.push(Note {
                workload,
                container: None,
                kind: NoteKind::Added,
                message: message(&[path]),
                line: *line,
            });
        }
        return;
    }
    for context in &tmp.contexts {
        let Some(workload) = values_workload(report, &context.context) else {
            continue;
        };
        let lists: Vec<&String> = context.lists.iter().collect();
        let line = added
            .iter()
            .rev()
            .find(|(p, _)| context.lists.contains(p))
            .map(|(_, line)| *line)
            .unwrap_or(report.workloads[workload].line);
        report.notes.push(Note {
            workload,
            container: Some(containers_label(wiring, &context.context)),
            kind: NoteKind::Added,
            message: message(&lists),
            line,
        });
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The risk notes of container securityContexts that get a read-only root filesystem and no
/// writable /tmp.
fn no_tmp_notes(wiring: &ChartWiring, report: &mut FileReport) {
    for (context, message) in &wiring.guardrails.no_tmp {
        let Some(workload) = values_workload(report, context) else {
            continue;
        };
        let line = report.workloads[workload].line;
        report.notes.push(Note {
            workload,
            container: Some(containers_label(wiring, context)),
            kind: NoteKind::Risk,
            message: message.clone(),
            line,
        });
    }
}

/// What the images of the rendered pods say, on the values path that feeds each pod: the ids
/// a path gets from them, and their other notes (a root user, a volume, a low port).
fn image_notes(wiring: &ChartWiring, settings: &Settings, report: &mut FileReport) {
    let before = settings.rules.baseline.uid;
    for target in &wiring.targets {
        let (Some(ids), Some(workload)) =
            (&target.image_ids, values_workload(report, &target.path))
        else {
            continue;
        };
        let line = report.workloads[workload].line;
        report.notes.push(Note {
            workload,
            container: None,
            kind: NoteKind::Image,
            message: policy::images::values_ids_note(ids, before, target.level),
            line,
        });
    }
    for (path, note) in &wiring.image_notes {
        let workload = match values_workload(report, path) {
            Some(workload) => workload,
            None => push_values_workload(report, path, 1),
        };
        let line = report.workloads[workload].line;
        report.notes.push(Note {
            workload,
            line,
            ..note.clone()
        });
    }
}

/// The low-port notes of the port numbers this file sets.
fn port_notes(tree: &Tree, ports: &[ValuesPort], report: &mut FileReport) {
    for port in ports {
        for (name, line, number) in port_numbers(tree, &port.source) {
            if !policy::is_low_port(number) {
                continue;
            }
            let workload = push_values_workload(report, &name, line);
            report.notes.push(Note {
                workload,
                container: Some(port.containers.join(", ")),
                kind: NoteKind::Risk,
                message: policy::low_port_message(number),
                line,
            });
        }
    }
}

/// The port numbers a source stands for in this file: (dotted name, line, number).
pub(super) fn port_numbers(tree: &Tree, source: &PortSource) -> Vec<(String, usize, i64)> {
    let number = |r: Ref| match tree.scalar(r) {
        Some(Scalar::Int(n)) => Some(n),
        Some(Scalar::Str(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let (path, field, keys) = match source {
        PortSource::Values { path, .. } => {
            let Some((parent, _, node)) = lookup(tree, path) else {
                return vec![];
            };
            let line = key_line(tree, parent, node).unwrap_or(tree.position(node).0);
            return number(node)
                .map(|n| (path.clone(), line, n))
                .into_iter()
                .collect();
        }
        PortSource::Items { path, field } => (path, field.as_deref(), false),
        PortSource::Keys { path } => (path, None, true),
        PortSource::Literal(_) => return vec![],
    };
    let Some((_, _, node)) = lookup(tree, path) else {
        return vec![];
    };
    let mut out = Vec::new();
    for (label, key, item) in members(tree, node) {
        let name = format!("{path}{label}");
        if keys {
            if let Some(n) = key.and_then(|k| k.parse().ok()) {
                out.push((name, tree.position(item).0, n));
            }
            continue;
        }
        let value = match field {
            Some(f) => tree.get(item, f),
            None => Some(item),
        };
        let name = field.map_or(name.clone(), |f| format!("{name}.{f}"));
        if let Some((v, n)) = value.and_then(|v| number(v).map(|n| (v, n))) {
            out.push((name, tree.position(v).0, n));
        }
    }
    out
}

/// The members of a mapping (`.key`, the key, the value) or of a list (`[i]`, None, the item).
fn members(tree: &Tree, node: Ref) -> Vec<(String, Option<String>, Ref)> {
    if tree.is_seq(node) {
        return tree
            .items(node)
            .into_iter()
            .enumerate()
            .map(|(i, item)| (format!("[{i}]"), None, item))
            .collect();
    }
    let resolved = tree.deref(node);
    let NodeKind::Map(entries) = &tree.node(resolved.id).kind else {
        return vec![];
    };
    entries
        .iter()
        .filter_map(|(k, v)| {
            let key = tree.key_str(*k)?.to_string();
            let item = Ref {
                id: *v,
                alias: resolved.alias,
            };
            Some((format!(".{key}"), Some(key), item))
        })
        .collect()
}

/// A string field of a list item.
fn item_text<'t>(tree: &'t Tree, item: Ref, key: &str) -> Option<&'t str> {
    tree.get(item, key).and_then(|v| tree.as_str(v))
}

/// The report's workload for a values path, if it has one.
fn values_workload(report: &FileReport, path: &str) -> Option<usize> {
    report
        .workloads
        .iter()
        .position(|w| w.kind == "values" && w.name == path)
}

/// The report's workload for a values path, added when it has none.
fn push_values_workload(report: &mut FileReport, path: &str, line: usize) -> usize {
    if let Some(w) = values_workload(report, path) {
        return w;
    }
    report.add_workload("values", path, line);
    report.workloads.len() - 1
}

/// The containers a securityContext path is rendered into, as the templates name them.
fn containers_label(wiring: &ChartWiring, path: &str) -> String {
    wiring
        .targets
        .iter()
        .find(|t| t.path == path)
        .map(|t| t.containers.join(", "))
        .unwrap_or_default()
}

/// Paths left to a person, with the reason: a container context that is `privileged: true` or
/// adds SYS_ADMIN/ALL (allowPrivilegeEscalation: false is rejected next to it), and the pod
/// contexts used by the same templates (the whole pod is left alone, as for a manifest).
pub(super) fn privileged_targets(
    tree: &Tree,
    wiring: &ChartWiring,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut templates = Vec::new();
    for t in &wiring.targets {
        let Some((_, _, node)) = lookup(tree, &t.path) else {
            continue;
        };
        if t.level != policy::Level::Container || !tree.is_map(node) {
            continue;
        }
        let privileged =
            tree.get(node, "privileged").and_then(|p| tree.scalar(p)) == Some(Scalar::Bool(true));
        let adds = tree
            .get(node, "capabilities")
            .and_then(|c| tree.get(c, "add"))
            .map(|a| tree.items(a))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| tree.as_str(a).map(str::to_string))
            .find(|c| matches!(c.as_str(), "SYS_ADMIN" | "CAP_SYS_ADMIN" | "ALL"));
        let why = match (privileged, adds) {
            (true, _) => "privileged: true".to_string(),
            (_, Some(cap)) => format!("adds capability {cap}"),
            _ => continue,
        };
        let reason = format!("`{}` is {why}: allowPrivilegeEscalation: false is rejected next to it, and the pod needs a person's decision", t.path);
        templates.extend(t.used_at.iter().map(|(p, _)| p.clone()));
        out.insert(t.path.clone(), reason);
    }
    for t in &wiring.targets {
        if t.level == policy::Level::Pod && t.used_at.iter().any(|(p, _)| templates.contains(p)) {
            let reason = format!(
                "a container of the same template is left alone ({})",
                out.values().next().cloned().unwrap_or_default()
            );
            out.entry(t.path.clone()).or_insert(reason);
        }
    }
    out
}

/// The edit with the `helm create` hints uncommented where they are exactly what is added.
fn edit_with_hints(tree: &Tree, changes: &[Change]) -> Result<String, FileError> {
    let mut changes = changes.to_vec();
    let mut splices = Vec::new();
    let mut ops = Vec::new();
    for change in &mut changes {
        let Change::Fill {
            node,
            value: NewValue::Map(entries),
        } = change
        else {
            continue;
        };
        let found = hints::find(tree, *node, entries);
        let remaining: Vec<(String, NewValue)> = entries
            .iter()
            .filter(|(k, _)| !found.keys.contains(k))
            .cloned()
            .collect();
        if found.keys.is_empty() || remaining.is_empty() {
            continue;
        }
        let path = node_path(tree, *node);
        let doc = tree
            .docs
            .iter()
            .position(|d| {
                d.start <= tree.node(*node).start && tree.node(*node).start < d.end.max(d.start + 1)
            })
            .unwrap_or(0);
        for (k, v) in entries.iter().filter(|(k, _)| found.keys.contains(k)) {
            let mut p = path.clone();
            p.push(PathSeg::Key(k.clone()));
            ops.push(SemanticOp::Set {
                doc,
                path: p,
                value: v.clone(),
            });
        }
        splices.extend(found.splices);
        *entries = remaining;
    }
    if splices.is_empty() {
        return Err(FileError::at_start("no hints"));
    }
    edit(tree, changes, splices, ops)
}

/// Applies the changes (plus extra splices and their meaning), then verifies the result.
fn edit(
    tree: &Tree,
    changes: Vec<Change>,
    extra: Vec<yaml_splice::Splice>,
    extra_ops: Vec<SemanticOp>,
) -> Result<String, FileError> {
    let outcome = crate::apply::edit(tree, changes, extra, extra_ops, None)?;
    Ok(outcome.text)
}

/// With a schema: the patched values (an override merged into the defaults) must not fail a
/// rule that the original values passed.
fn check_schema(
    old: &str,
    new: &str,
    complete: bool,
    schema: Option<&Schema>,
    defaults: Option<&str>,
    tree: &Tree,
) -> Result<(), FileError> {
    let Some(schema) = schema else {
        return Ok(());
    };
    let values = |text: &str| -> Result<serde_json::Value, String> {
        let own = as_json(text)?;
        match (complete, defaults) {
            (false, Some(d)) => {
                let mut base = as_json(d)?;
                merge(&mut base, &own);
                Ok(base)
            }
            _ => Ok(own),
        }
    };
    let before = values(old).map(|v| schema.errors(&v)).unwrap_or_default();
    let after = values(new)
        .map_err(|e| FileError::at_start(format!("the patched values do not load: {e}")))?;
    let new_errors: Vec<String> = schema
        .errors(&after)
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect();
    if let Some(first) = new_errors.first() {
        let line = first
            .split(':')
            .next()
            .and_then(|p| p.rsplit('/').next())
            .and_then(|k| {
                tree.src
                    .lines()
                    .position(|l| l.trim_start().starts_with(&format!("{k}:")))
            })
            .map_or(1, |i| i + 1);
        return Err(FileError {
            line,
            col: 1,
            message: format!(
                "the hardened values would not validate against {} ({first}); not written",
                schema
                    .path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("values.schema.json")
            ),
        });
    }
    Ok(())
}
