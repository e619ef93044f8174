//! Whether a chart's own default for an empty securityContext value is what it ships (issue
//! 27.3). A template may render a context of its own when the value is empty (`{{- else if
//! (or .Values.service.hostPort .Values.tls.hostPort) }}` after `{{- if .Values.x }}`, or
//! `default (dict ...) .Values.x`); a filled value replaces that default. Helm's engine
//! decides, not a reading of the template: each value set of the chart is rendered as it is,
//! and once more with the path set to a marker mapping. Where the marker lands is where the
//! value renders. If the unedited render has no securityContext there in any set, the default
//! branch is not taken and the value may be filled (the render check of [`super::render`] then
//! proves that nothing else changed); if it has one, the chart's default is what ships and the
//! value is left to a person. Without a render (no `helm`, `--render never`, a render that
//! fails) nothing is proven and the value is left to a person, as before.

use std::path::Path;

use yaml_serde::Value;

use crate::helm::engine::{is_library, object_key, split_documents, ChartCopy, Engine};
use crate::report::{RenderMode, RenderSettings};
use yaml_splice::Tree;

use super::render::{value_sets, ValueSet};
use super::{values, ChartWiring, Target};

/// What the renders say about a target's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Probe {
    /// Not rendered, or no render shows where the value goes: the default may apply.
    #[default]
    Unproven,
    /// Rendered with each of these value sets, no render takes the default branch.
    NotTaken { sets: Vec<String> },
    /// The render with `set` takes it: `at` has the chart's own context.
    Taken { set: String, at: String },
}

/// A `runAsUser` no chart writes: where it renders is where the probed value goes.
const MARKER: i64 = 1_999_999_937;

/// The targets whose default a render can decide: wired into a template with a default, and
/// empty in values.yaml (`tree`).
fn candidates<'w>(wiring: &'w mut ChartWiring, tree: &Tree) -> Vec<&'w mut Target> {
    wiring
        .targets
        .iter_mut()
        .filter(|t| t.has_default && t.complete && !t.falls_back && !t.create)
        .filter(|t| values::shape(tree, &t.path) == Some(Some(vec![])))
        .collect()
}

/// Renders the chart to decide each candidate target's [`Probe`]. `tree`: its values.yaml.
pub fn probe(chart: &Path, wiring: &mut ChartWiring, tree: &Tree, render: &RenderSettings) {
    if render.mode == RenderMode::Never || is_library(chart) {
        return;
    }
    let targets = candidates(wiring, tree);
    if targets.is_empty() {
        return;
    }
    let Some(engine) = Engine::find(render) else {
        return;
    };
    let (Ok(copy), Ok(scratch)) = (
        ChartCopy::of(chart),
        crate::process::scratch_dir("kube-harden-probe"),
    ) else {
        return;
    };
    let sets = value_sets(chart);
    let renders: Vec<(&ValueSet, Vec<Value>)> = sets
        .iter()
        .filter_map(|set| {
            let stream = engine.template(&copy.chart, &set.files(&copy.chart)).ok()?;
            Some((set, documents(&stream)))
        })
        .collect();
    for target in targets {
        let marker = scratch.path().join("marker.yaml");
        if std::fs::write(&marker, marker_values(&target.path)).is_err() {
            continue;
        }
        target.default_probe = decide(&renders, |set| {
            let mut files = set.files(&copy.chart);
            files.push(marker.clone());
            engine
                .template(&copy.chart, &files)
                .ok()
                .map(|s| documents(&s))
        });
    }
}

/// The probe of one target over the unedited renders; `marked` renders a set with the
/// target's path set to the marker (None when that fails).
fn decide(
    renders: &[(&ValueSet, Vec<Value>)],
    marked: impl Fn(&ValueSet) -> Option<Vec<Value>>,
) -> Probe {
    let mut sets = Vec::new();
    for (set, unedited) in renders {
        let Some(marked) = marked(set) else {
            return Probe::Unproven;
        };
        let places = marked.iter().flat_map(|doc| {
            let mut found = Vec::new();
            find_marker(doc, &mut Vec::new(), &mut found);
            found.into_iter().map(move |path| (object_key(doc), path))
        });
        let mut rendered = false;
        for (key, path) in places.collect::<Vec<_>>() {
            rendered = true;
            let there = unedited
                .iter()
                .find(|d| object_key(d) == key)
                .and_then(|d| at(d, &path));
            if there.is_some_and(|v| !empty(v)) {
                let at = format!("{}/{} {}", key.0, key.1, describe(&path));
                return Probe::Taken {
                    set: set.describe(),
                    at,
                };
            }
        }
        if rendered {
            sets.push(set.describe());
        }
    }
    match sets.is_empty() {
        true => Probe::Unproven,
        false => Probe::NotTaken { sets },
    }
}

/// Values that set the dotted `path` to the marker mapping, as JSON (which is YAML).
fn marker_values(path: &str) -> String {
    let mut value = serde_json::json!({ "runAsUser": MARKER });
    for seg in path.rsplit('.') {
        value = serde_json::json!({ seg: value });
    }
    value.to_string()
}

/// One step into a rendered object: a key, or an item of a list.
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The paths of the mappings in `value` that hold the marker.
fn find_marker(value: &Value, path: &mut Vec<Seg>, found: &mut Vec<Vec<Seg>>) {
    match value {
        Value::Mapping(m) => {
            if m.get("runAsUser").and_then(Value::as_i64) == Some(MARKER) {
                found.push(path.clone());
            }
            for (k, v) in m {
                let Some(k) = k.as_str() else { continue };
                path.push(Seg::Key(k.to_string()));
                find_marker(v, path, found);
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                find_marker(v, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'v>(mut value: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    for seg in path {
        value = match seg {
            Seg::Key(k) => value.get(k.as_str())?,
            Seg::Index(i) => value.get(*i)?,
        };
    }
    Some(value)
}

/// Null, `{}` or `[]`: no context.
fn empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        Value::Sequence(s) => s.is_empty(),
        _ => false,
    }
}

/// `spec.template.spec.containers[0].securityContext`.
fn describe(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => out.push_str(&format!(".{k}")),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The objects of a rendered stream, split as Helm splits it (documents that do not load are
/// left out: the render check names them).
fn documents(stream: &str) -> Vec<Value> {
    split_documents(stream)
        .iter()
        .filter_map(|d| yaml_serde::from_str::<Value>(d).ok())
        .filter(|d| !d.is_null())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<Value> {
        documents(text)
    }

    const MARKED: &str = "---\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          securityContext: {runAsUser: 1999999937}\n";

    #[test]
    fn an_empty_place_in_the_unedited_render_is_a_default_not_taken() {
        let set = ValueSet { file: None };
        let unedited = docs("---\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n");
        let renders = vec![(&set, unedited)];
        assert_eq!(
            decide(&renders, |_| Some(docs(MARKED))),
            Probe::NotTaken {
                sets: vec!["values.yaml".into()]
            }
        );
    }

    #[test]
    fn the_chart_s_context_in_the_unedited_render_is_a_default_taken() {
        let set = ValueSet { file: None };
        let unedited = docs("---\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          securityContext: {runAsUser: 101}\n");
        let renders = vec![(&set, unedited)];
        assert_eq!(
            decide(&renders, |_| Some(docs(MARKED))),
            Probe::Taken {
                set: "values.yaml".into(),
                at: "Deployment/web spec.template.spec.containers[0].securityContext".into()
            }
        );
    }

    #[test]
    fn a_value_that_renders_nowhere_or_a_failed_render_proves_nothing() {
        let set = ValueSet { file: None };
        let renders = vec![(&set, docs(MARKED))];
        assert_eq!(
            decide(&renders, |_| Some(docs("---\nkind: Service\n"))),
            Probe::Unproven
        );
        assert_eq!(decide(&renders, |_| None), Probe::Unproven);
    }

    #[test]
    fn the_marker_is_set_at_the_dotted_path() {
        assert_eq!(
            marker_values("proxy.securityContext"),
            r#"{"proxy":{"securityContext":{"runAsUser":1999999937}}}"#
        );
    }
}
