//! Planning a release's inline values on its effective values: Helm merges the chart's
//! defaults, then the values from elsewhere, then the inline values, and only the inline ones
//! can be written. So each wired securityContext path is planned by the policy on its
//! effective value, and the inline values get exactly what that plan sets: nothing the
//! defaults already supply, a non-zero id kept wherever it was set, a `runAsUser: 0` corrected
//! where it is (the inline value wins). Lists replace in Helm, so a list the inline values do
//! not have yet is written whole (the effective items plus the new one).

use serde_json::Value;
use yaml_splice::{apply_changes, NewValue, PathSeg, SemanticOp, Tree};

use crate::policy::{self, Control, Finding, Level, Note, NoteKind, Rules, SkippedPod};

/// A values path the chart's templates feed into a securityContext, as the chart source
/// resolves it against a release's effective values.
#[derive(Clone, Debug)]
pub struct Wired {
    pub path: String,
    pub level: Level,
    /// The chart renders it only when `<path>.enabled` is true (Bitnami style).
    pub gated_by_enabled: bool,
    /// The chart renders it only when the `enabled` beside it is true
    /// (`x.securityContext.enabled` beside `x.securityContext.context`).
    pub gated_beside: bool,
    /// The values do not set it, but a helper renders it for a key they set (a container of
    /// a library chart's controller): it gets the whole baseline. A path that is neither set
    /// nor created renders nothing and is left alone.
    pub create: bool,
    /// Add what is missing (false: a helper merges it over another wired path, which gets
    /// the baseline: only explicit values that fall short are corrected).
    pub complete: bool,
    /// An empty value makes the template build the context from values keys field by field
    /// ([`WiredField`]): it is left empty.
    pub falls_back: bool,
    /// A container context of pods that get no pod securityContext: it holds the pod's ids.
    pub holds_pod_ids: bool,
    /// The containers that use it, as the templates name them (container level).
    pub containers: Vec<String>,
    /// The templates that use it (relative to the chart): the pods it feeds.
    pub templates: Vec<std::path::PathBuf>,
    /// The ids the images of every pod it feeds give (`--images`): they replace the
    /// baseline's where the effective values set none.
    pub image_ids: Option<crate::policy::ChosenIds>,
}

impl Wired {
    /// A plain wired path: completed where it falls short, created where it is absent.
    pub fn plain(path: &str, level: Level) -> Wired {
        Wired {
            path: path.into(),
            level,
            gated_by_enabled: false,
            gated_beside: false,
            create: true,
            complete: true,
            falls_back: false,
            holds_pod_ids: false,
            containers: vec![],
            templates: vec![],
            image_ids: None,
        }
    }
}

/// A securityContext field a template writes from one values key, in the context it builds
/// when the whole-context paths `overrides` are empty.
#[derive(Clone, Debug)]
pub struct WiredField {
    /// The values key (`controller.image.runAsUser`).
    pub path: String,
    /// The securityContext field it is written as (`runAsUser`).
    pub field: String,
    pub level: Level,
    /// The container (or `pod`), as the templates name it.
    pub name: String,
    /// Where the chart writes it (`file:line`, a helper's too).
    pub written_at: String,
    pub overrides: Vec<String>,
}

/// One value the inline values must hold: its dotted path as keys, and the value (or an
/// item to append to the list there).
#[derive(Clone, Debug, PartialEq)]
pub enum Need {
    Set(Vec<String>, NewValue),
    Append(Vec<String>, NewValue),
}

/// What the effective values need, for one release.
#[derive(Debug, Default)]
pub struct Needs {
    pub needs: Vec<Need>,
    /// Findings on the effective values; `workload` is the index into `paths`.
    pub findings: Vec<Finding>,
    pub notes: Vec<Note>,
    pub skipped: Vec<SkippedPod>,
    /// The wired paths, in order: one workload each.
    pub paths: Vec<String>,
    /// The wired paths the release's own values turn off on purpose (`""`, `false`).
    pub turned_off: Vec<String>,
}

/// The value at a dotted path, if every step is a mapping.
pub fn lookup<'v>(values: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(values, |v, k| v.as_object()?.get(*k))
}

pub use crate::helm::values::merge;

/// The values with the needs written in (a set value replaces, an item is appended).
pub fn apply_needs(values: &mut Value, needs: &[Need]) {
    for need in needs {
        let (path, value, append) = match need {
            Need::Set(p, v) => (p, v, false),
            Need::Append(p, v) => (p, v, true),
        };
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut at = &mut *values;
        for key in parents {
            if !at.is_object() {
                *at = Value::Object(Default::default());
            }
            at = at
                .as_object_mut()
                .map(|m| m.entry(key.clone()).or_insert(Value::Null))
                .expect("a mapping");
        }
        if !at.is_object() {
            *at = Value::Object(Default::default());
        }
        let Some(map) = at.as_object_mut() else {
            continue;
        };
        let json = json_of(value);
        if append {
            match map.get_mut(last) {
                Some(Value::Array(items)) => items.push(json),
                _ => {
                    map.insert(last.clone(), Value::Array(vec![json]));
                }
            }
        } else {
            map.insert(last.clone(), json);
        }
    }
}

/// A new value as JSON.
fn json_of(value: &NewValue) -> Value {
    match value {
        NewValue::Bool(b) => Value::Bool(*b),
        NewValue::Int(i) => Value::from(*i),
        NewValue::Str(s) => Value::String(s.clone()),
        NewValue::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), json_of(v)))
                .collect(),
        ),
        NewValue::Seq(items) => Value::Array(items.iter().map(json_of).collect()),
    }
}

/// Plans every wired path, then every field written from one values key, on the effective
/// values. `inline`: the release's own inline values (to know whether a list is already there
/// to append to).
pub fn plan(
    effective: &Value,
    inline: &Value,
    (wired, fields): (&[Wired], &[WiredField]),
    left_alone: &std::collections::BTreeMap<String, String>,
    rules: &Rules,
) -> Needs {
    let mut out = Needs::default();
    for (workload, w) in wired.iter().enumerate() {
        out.paths.push(w.path.clone());
        let keys: Vec<&str> = w.path.split('.').collect();
        let found = lookup(effective, &keys);
        let current = found.cloned().unwrap_or(Value::Null);
        let reason = left_alone
            .get(&w.path)
            .cloned()
            .or_else(|| left_to_a_person(&current, w));
        if let Some(reason) = reason {
            out.skipped.push(SkippedPod { workload, reason });
            continue;
        }
        if let Some(off) = lookup(inline, &keys).and_then(turned_off) {
            out.notes.push(Note {
                workload,
                container: None,
                kind: NoteKind::Risk,
                message: format!("`{}: {off}` in the release's values turns the chart's securityContext off (Helm keeps a value other than a mapping as written): the pods it feeds render without it; left as written", w.path),
                line: 0,
            });
            out.turned_off.push(w.path.clone());
            continue;
        }
        // Absent and rendered for no key, nothing renders it; empty where the template then
        // builds the context from its fields, a filled value would replace those.
        if (found.is_none() && !w.create) || (is_empty(&current) && w.falls_back) {
            continue;
        }
        plan_path(&current, inline, w, &keys, workload, rules, &mut out);
        switch_on(effective, &current, w, &keys, workload, &mut out);
    }
    for field in fields {
        plan_field(effective, field, left_alone, rules, &mut out);
    }
    out
}

/// An empty value set on purpose where a securityContext mapping goes (`""` or `false`).
fn turned_off(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(s) if s.is_empty() => Some("\"\""),
        Value::Bool(false) => Some("false"),
        _ => None,
    }
}

/// Null, `{}` or `""`: a value that sets no securityContext field.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The `enabled` that turns a gated context on: its own key (Bitnami), or the key beside it
/// (`x.securityContext.enabled` beside `x.securityContext.context`). `false` becomes `true`
/// with a note; an absent switch of a context that gets the baseline is set.
fn switch_on(
    effective: &Value,
    current: &Value,
    w: &Wired,
    keys: &[&str],
    workload: usize,
    out: &mut Needs,
) {
    let holder = match (w.gated_by_enabled, w.gated_beside) {
        (true, _) if current.is_object() && !is_empty(current) => keys,
        (_, true) => &keys[..keys.len().saturating_sub(1)],
        _ => return,
    };
    let mut path: Vec<String> = holder.iter().map(|k| k.to_string()).collect();
    path.push("enabled".into());
    let at: Vec<&str> = path.iter().map(String::as_str).collect();
    match lookup(effective, &at) {
        Some(Value::Bool(false)) => {
            out.needs.push(Need::Set(path, NewValue::Bool(true)));
            out.notes.push(Note {
                workload,
                container: None,
                kind: NoteKind::Override,
                message: "`enabled: false` becomes `true` in the inline values: the chart renders this securityContext only when it is enabled".into(),
                line: 0,
            });
        }
        None if w.complete => out.needs.push(Need::Set(path, NewValue::Bool(true))),
        _ => {}
    }
}

/// A field the chart writes from one values key (`runAsUser: {{ .Values.image.runAsUser }}`)
/// while the whole-context paths of the same key are empty: an effective value that falls
/// short is corrected in the inline values, with a note that names where the chart writes
/// it. Nothing is added: the template writes the key whatever it holds.
fn plan_field(
    effective: &Value,
    field: &WiredField,
    left_alone: &std::collections::BTreeMap<String, String>,
    rules: &Rules,
    out: &mut Needs,
) {
    let overridden = field.overrides.iter().any(|p| {
        let keys: Vec<&str> = p.split('.').collect();
        left_alone.contains_key(p) || lookup(effective, &keys).is_some_and(|v| !is_empty(v))
    });
    let keys: Vec<&str> = field.path.split('.').collect();
    let Some(value) = lookup(effective, &keys).filter(|_| !overridden) else {
        return;
    };
    let b = &rules.baseline;
    let (control, wanted) = match (field.field.as_str(), value) {
        ("runAsUser", v) if v.as_i64() == Some(0) => (Control::RunAsUser, NewValue::Int(b.uid)),
        ("runAsGroup", v) if v.as_i64() == Some(0) => (Control::RunAsGroup, NewValue::Int(b.gid)),
        ("fsGroup", v) if v.as_i64() == Some(0) => (Control::FsGroup, NewValue::Int(b.fs_group)),
        ("runAsNonRoot", Value::Bool(false)) => (Control::RunAsNonRoot, NewValue::Bool(true)),
        ("allowPrivilegeEscalation", Value::Bool(true)) => {
            (Control::AllowPrivilegeEscalation, NewValue::Bool(false))
        }
        ("readOnlyRootFilesystem", Value::Bool(false)) => {
            (Control::ReadOnlyRootFilesystem, NewValue::Bool(true))
        }
        _ => return,
    };
    if rules.disabled.contains(&control) {
        return;
    }
    let workload = out.paths.len();
    out.paths.push(field.path.clone());
    let container = (field.level == Level::Container).then(|| field.name.clone());
    let (old, new) = (
        value.to_string(),
        yaml_splice::value::flow_text(&wanted, false),
    );
    out.findings.push(Finding {
        workload,
        container: container.clone(),
        control,
        current: old.clone(),
        wanted: new.clone(),
        line: 0,
        col: 0,
        fixable: true,
    });
    let whose = match field.level {
        Level::Pod => "pod's".to_string(),
        Level::Container => format!("container `{}`'s", field.name),
    };
    out.notes.push(Note {
        workload,
        container,
        kind: NoteKind::Override,
        message: format!(
            "overrides the effective `{}: {old}` with `{new}` in the inline values: the chart writes it as the {whose} `{}` ({})",
            field.path, field.field, field.written_at
        ),
        line: 0,
    });
    let path = keys.iter().map(|k| k.to_string()).collect();
    out.needs.push(Need::Set(path, wanted));
}

/// The emptyDir appended to each wired volumes list and its mount at /tmp to each mounts
/// list, unless the effective list has it. Helm replaces lists, so a list the inline values do
/// not have is written whole.
pub fn tmp_needs(effective: &Value, inline: &Value, tmp: &super::release::TmpLists) -> Vec<Need> {
    let volume = NewValue::map(vec![
        ("name", NewValue::str(&tmp.name)),
        ("emptyDir", NewValue::Map(vec![])),
    ]);
    let mount = NewValue::map(vec![
        ("name", NewValue::str(&tmp.name)),
        ("mountPath", NewValue::str("/tmp")),
    ]);
    let has_volume = |item: &Value| item.get("name").and_then(Value::as_str) == Some(&tmp.name);
    let has_mount = |item: &Value| {
        item.get("mountPath")
            .and_then(Value::as_str)
            .is_some_and(|p| p.trim_end_matches('/') == "/tmp")
    };
    let mut out = Vec::new();
    let lists = tmp
        .volumes
        .iter()
        .map(|l| (l, &volume, &has_volume as &dyn Fn(&Value) -> bool))
        .chain(
            tmp.mounts
                .iter()
                .map(|l| (l, &mount, &has_mount as &dyn Fn(&Value) -> bool)),
        );
    for (list, item, present) in lists {
        let keys: Vec<&str> = list.split('.').collect();
        let current = lookup(effective, &keys).and_then(Value::as_array);
        if current.is_some_and(|items| items.iter().any(present)) {
            continue;
        }
        let path: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        if lookup(inline, &keys).is_some_and(Value::is_array) {
            out.push(Need::Append(path, item.clone()));
            continue;
        }
        let mut items: Vec<NewValue> = current
            .into_iter()
            .flatten()
            .filter_map(new_value_of)
            .collect();
        items.push(item.clone());
        out.push(Need::Set(path, NewValue::Seq(items)));
    }
    out
}

/// A container context that is privileged or adds SYS_ADMIN/ALL: allowPrivilegeEscalation:
/// false is refused next to it, as for a manifest.
fn left_to_a_person(current: &Value, w: &Wired) -> Option<String> {
    if w.level != Level::Container {
        return None;
    }
    let privileged = current.get("privileged") == Some(&Value::Bool(true));
    let adds = current
        .get("capabilities")
        .and_then(|c| c.get("add"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|c| matches!(*c, "SYS_ADMIN" | "CAP_SYS_ADMIN" | "ALL"))
        .map(str::to_string);
    let why = match (privileged, adds) {
        (true, _) => "privileged: true".to_string(),
        (_, Some(cap)) => format!("adds capability {cap}"),
        _ => return None,
    };
    Some(format!("`{}` is {why} in the effective values: allowPrivilegeEscalation: false is rejected next to it, and the pod needs a person's decision", w.path))
}

fn plan_path(
    current: &Value,
    inline: &Value,
    w: &Wired,
    keys: &[&str],
    workload: usize,
    rules: &Rules,
    out: &mut Needs,
) {
    // The effective value as a document of its own, planned by the policy as the chart's
    // defaults would be (complete: what is missing is added; else only explicit values that
    // fall short are corrected).
    let body = match current {
        Value::Object(m) if !m.is_empty() => yaml_serde::to_string(current).unwrap_or_default(),
        _ => "{}\n".to_string(),
    };
    let text = format!("target:\n{}", indent(&body));
    let Ok(tree) = Tree::parse(&text) else {
        return;
    };
    let Some(root) = tree.docs.first().and_then(|d| d.root) else {
        return;
    };
    let root = yaml_splice::Ref::root(root);
    let with_ids;
    let rules = match &w.image_ids {
        Some(ids) => {
            with_ids = policy::images::with_image_ids(rules, ids);
            &with_ids
        }
        None => rules,
    };
    let plan = match w.holds_pod_ids && w.level == Level::Container {
        true => policy::plan_container_context_with_pod_ids(
            &tree, root, "target", rules, w.complete, workload,
        ),
        false => policy::plan_context(&tree, root, "target", w.level, rules, w.complete, workload),
    };
    let label = match w.containers.is_empty() {
        true => "(the chart's containers)".to_string(),
        false => w.containers.join(", "),
    };
    out.findings.extend(plan.findings.into_iter().map(|mut f| {
        f.container = f.container.map(|_| label.clone());
        f
    }));
    out.notes.extend(plan.notes);
    if let Ok(outcome) = apply_changes(&tree, plan.changes) {
        for op in outcome.ops {
            out.needs.push(need_of(op, current, inline, keys));
        }
    }
}

fn indent(body: &str) -> String {
    body.lines().map(|l| format!("  {l}\n")).collect::<String>()
}

/// An operation on the planned document, as a need of the inline values at the wired path.
fn need_of(op: SemanticOp, current: &Value, inline: &Value, keys: &[&str]) -> Need {
    let (path, value, append) = match op {
        SemanticOp::Set { path, value, .. } => (path, value, false),
        SemanticOp::Push { path, value, .. } => (path, value, true),
    };
    // The first step is the document's `target` key.
    let rest: Vec<String> = path
        .into_iter()
        .skip(1)
        .filter_map(|s| match s {
            PathSeg::Key(k) => Some(k),
            PathSeg::Index(_) => None,
        })
        .collect();
    let mut full: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    full.extend(rest.iter().cloned());
    if !append {
        return Need::Set(full, value);
    }
    let full_refs: Vec<&str> = full.iter().map(String::as_str).collect();
    if lookup(inline, &full_refs).is_some_and(Value::is_array) {
        return Need::Append(full, value);
    }
    // The list is the chart's (or a values source's): Helm would replace it, so the inline
    // values get all of it.
    let rest_refs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mut items: Vec<NewValue> = lookup(current, &rest_refs)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(new_value_of)
        .collect();
    items.push(value);
    Need::Set(full, NewValue::Seq(items))
}

/// A JSON value as a value to write (scalars, lists and mappings of them).
pub fn new_value_of(v: &Value) -> Option<NewValue> {
    Some(match v {
        Value::Bool(b) => NewValue::Bool(*b),
        Value::Number(n) => NewValue::Int(n.as_i64()?),
        Value::String(s) => NewValue::Str(s.clone()),
        Value::Array(items) => {
            NewValue::Seq(items.iter().map(new_value_of).collect::<Option<_>>()?)
        }
        Value::Object(m) => NewValue::Map(
            m.iter()
                .map(|(k, v)| Some((k.clone(), new_value_of(v)?)))
                .collect::<Option<_>>()?,
        ),
        Value::Null => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wired(path: &str, level: Level) -> Wired {
        Wired::plain(path, level)
    }

    fn sets(needs: &Needs) -> Vec<(String, NewValue)> {
        needs
            .needs
            .iter()
            .map(|n| match n {
                Need::Set(p, v) => (p.join("."), v.clone()),
                Need::Append(p, v) => (format!("{}[+]", p.join(".")), v.clone()),
            })
            .collect()
    }

    #[test]
    fn what_the_defaults_supply_is_not_written_and_an_inline_zero_is_corrected() {
        let defaults = json!({"podSecurityContext": {"fsGroup": 2000, "runAsNonRoot": true}});
        let inline = json!({"podSecurityContext": {"runAsUser": 0}});
        let mut effective = defaults.clone();
        merge(&mut effective, &inline);
        let needs = plan(
            &effective,
            &inline,
            (&[wired("podSecurityContext", Level::Pod)], &[]),
            &Default::default(),
            &Rules::default(),
        );
        let got: Vec<String> = sets(&needs).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            got,
            vec![
                "podSecurityContext.runAsUser",
                "podSecurityContext.runAsGroup",
                "podSecurityContext.seccompProfile"
            ]
        );
        assert_eq!(sets(&needs)[0].1, NewValue::Int(1000));
    }

    #[test]
    fn an_inline_context_emptied_on_purpose_is_a_note_and_the_rest_is_planned() {
        let inline = json!({"securityContext": "", "podSecurityContext": false});
        let mut effective = json!({"securityContext": {}, "podSecurityContext": {}, "sidecar": {"securityContext": {}}});
        merge(&mut effective, &inline);
        let both = [
            wired("podSecurityContext", Level::Pod),
            wired("securityContext", Level::Container),
            wired("sidecar.securityContext", Level::Container),
        ];
        let needs = plan(
            &effective,
            &inline,
            (&both, &[]),
            &Default::default(),
            &Rules::default(),
        );
        let notes: Vec<&str> = needs.notes.iter().map(|n| n.message.as_str()).collect();
        assert!(notes[0].starts_with("`podSecurityContext: false` in the release's values turns"));
        assert!(notes[1].starts_with("`securityContext: \"\"` in the release's values turns"));
        let paths: Vec<String> = sets(&needs).into_iter().map(|(p, _)| p).collect();
        assert!(
            paths
                .iter()
                .all(|p| p.starts_with("sidecar.securityContext")),
            "only the path not turned off gets values: {paths:?}"
        );
        assert!(!paths.is_empty());
    }

    #[test]
    fn a_drop_list_of_the_chart_is_written_whole() {
        let effective = json!({"securityContext": {"capabilities": {"drop": ["NET_RAW"]}, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true}});
        let needs = plan(
            &effective,
            &json!({}),
            (&[wired("securityContext", Level::Container)], &[]),
            &Default::default(),
            &Rules::default(),
        );
        assert_eq!(
            sets(&needs),
            vec![(
                "securityContext.capabilities.drop".to_string(),
                NewValue::Seq(vec![NewValue::str("NET_RAW"), NewValue::str("ALL")])
            )]
        );
    }

    #[test]
    fn a_privileged_effective_context_is_left_to_a_person() {
        let effective = json!({"agent": {"securityContext": {"privileged": true}}});
        let needs = plan(
            &effective,
            &json!({}),
            (&[wired("agent.securityContext", Level::Container)], &[]),
            &Default::default(),
            &Rules::default(),
        );
        assert!(needs.needs.is_empty());
        assert_eq!(needs.skipped.len(), 1);
    }

    #[test]
    fn a_bitnami_context_turned_off_by_the_chart_is_turned_on_inline() {
        let effective = json!({"podSecurityContext": {"enabled": false, "fsGroup": 1001}});
        let mut w = wired("podSecurityContext", Level::Pod);
        w.gated_by_enabled = true;
        let needs = plan(
            &effective,
            &json!({}),
            (&[w], &[]),
            &Default::default(),
            &Rules::default(),
        );
        assert!(
            sets(&needs).contains(&(
                "podSecurityContext.enabled".to_string(),
                NewValue::Bool(true)
            )),
            "{:?}",
            sets(&needs)
        );
        assert!(needs.notes.iter().any(|n| n.kind == NoteKind::Override));
    }

    fn plan_one(effective: &Value, w: Wired) -> Needs {
        plan(
            effective,
            &json!({}),
            (&[w], &[]),
            &Default::default(),
            &Rules::default(),
        )
    }

    /// The keys of the one mapping the needs set whole.
    fn keys_set(needs: &Needs) -> Vec<String> {
        match sets(needs).as_slice() {
            [(_, NewValue::Map(entries))] => entries.iter().map(|(k, _)| k.clone()).collect(),
            other => panic!("one mapping set whole: {other:?}"),
        }
    }

    fn paths(needs: &Needs) -> Vec<String> {
        sets(needs).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn a_context_merged_over_another_has_only_its_explicit_values_corrected() {
        let effective =
            json!({"controllers": {"main": {"pod": {"securityContext": {"runAsUser": 0}}}}});
        let mut w = wired("controllers.main.pod.securityContext", Level::Pod);
        w.complete = false;
        assert_eq!(
            sets(&plan_one(&effective, w)),
            vec![(
                "controllers.main.pod.securityContext.runAsUser".to_string(),
                NewValue::Int(1000)
            )]
        );
    }

    #[test]
    fn a_created_container_context_gets_the_whole_baseline_and_an_absent_one_nothing() {
        let effective = json!({"controllers": {"main": {"containers": {"app": {"image": "x"}}}}});
        let path = "controllers.main.containers.app.securityContext";
        let created = plan_one(&effective, wired(path, Level::Container));
        assert_eq!(paths(&created), vec![path.to_string()]);
        assert_eq!(
            keys_set(&created),
            vec![
                "allowPrivilegeEscalation",
                "readOnlyRootFilesystem",
                "capabilities",
                "runAsNonRoot"
            ]
        );
        let mut w = wired(path, Level::Container);
        w.create = false;
        assert!(plan_one(&effective, w).needs.is_empty());
    }

    #[test]
    fn an_empty_context_the_template_builds_from_fields_stays_empty_and_a_short_field_is_corrected()
    {
        let effective = json!({"image": {"runAsUser": 0, "readOnlyRootFilesystem": true}, "containerSecurityContext": {}});
        let mut w = wired("containerSecurityContext", Level::Container);
        w.falls_back = true;
        let field = |key: &str| WiredField {
            path: format!("image.{key}"),
            field: key.into(),
            level: Level::Container,
            name: "controller".into(),
            written_at: "templates/_helpers.tpl:12".into(),
            overrides: vec!["containerSecurityContext".into()],
        };
        let fields = [field("runAsUser"), field("readOnlyRootFilesystem")];
        let needs = plan(
            &effective,
            &json!({}),
            (&[w.clone()], &fields),
            &Default::default(),
            &Rules::default(),
        );
        assert_eq!(
            sets(&needs),
            vec![("image.runAsUser".to_string(), NewValue::Int(1000))]
        );
        assert_eq!(
            needs.paths,
            vec!["containerSecurityContext", "image.runAsUser"]
        );
        assert!(needs.notes[0]
            .message
            .contains("the container `controller`'s `runAsUser` (templates/_helpers.tpl:12)"));
        // A whole context set over the fields: the fields are not rendered, it is planned.
        let overridden =
            json!({"image": {"runAsUser": 0}, "containerSecurityContext": {"runAsUser": 5}});
        let needs = plan(
            &overridden,
            &json!({}),
            (&[w], &fields),
            &Default::default(),
            &Rules::default(),
        );
        assert!(!paths(&needs).contains(&"image.runAsUser".to_string()));
        assert!(paths(&needs).contains(&"containerSecurityContext.runAsNonRoot".to_string()));
    }

    #[test]
    fn a_container_context_of_a_pod_without_one_holds_the_pod_s_ids() {
        let mut w = wired("securityContext", Level::Container);
        w.holds_pod_ids = true;
        let got = keys_set(&plan_one(&json!({"securityContext": {}}), w));
        for key in [
            "runAsUser",
            "runAsGroup",
            "seccompProfile",
            "readOnlyRootFilesystem",
        ] {
            assert!(got.contains(&key.to_string()), "{key}: {got:?}");
        }
    }

    #[test]
    fn the_enabled_switch_beside_a_context_is_turned_on() {
        let effective =
            json!({"app": {"securityContext": {"enabled": false, "context": {"fsGroup": 2000}}}});
        let mut w = wired("app.securityContext.context", Level::Pod);
        w.gated_beside = true;
        let needs = plan_one(&effective, w.clone());
        assert!(sets(&needs).contains(&(
            "app.securityContext.enabled".to_string(),
            NewValue::Bool(true)
        )));
        assert!(needs.notes.iter().any(|n| n.kind == NoteKind::Override));
        let absent = json!({"app": {"securityContext": {"context": {}}}});
        assert!(sets(&plan_one(&absent, w)).contains(&(
            "app.securityContext.enabled".to_string(),
            NewValue::Bool(true)
        )));
    }

    #[test]
    fn the_writable_tmp_is_appended_to_an_inline_list_and_written_whole_otherwise() {
        let tmp = super::super::release::TmpLists {
            name: "tmp".into(),
            volumes: vec!["volumes".into()],
            mounts: vec!["volumeMounts".into()],
        };
        let effective = json!({"volumes": [{"name": "data", "emptyDir": {}}], "volumeMounts": []});
        let inline = json!({"volumeMounts": []});
        let needs = tmp_needs(&effective, &inline, &tmp);
        assert!(
            matches!(&needs[0], Need::Set(p, NewValue::Seq(items)) if p == &["volumes"] && items.len() == 2)
        );
        assert!(matches!(&needs[1], Need::Append(p, _) if p == &["volumeMounts"]));
        let done = json!({"volumes": [{"name": "tmp", "emptyDir": {}}], "volumeMounts": [{"name": "tmp", "mountPath": "/tmp/"}]});
        assert!(
            tmp_needs(&done, &done, &tmp).is_empty(),
            "a /tmp already there counts"
        );
    }
}
