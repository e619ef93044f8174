//! Helm charts: finding them, reading their templates as text to learn which `.Values` paths
//! feed a pod or a container securityContext, and planning the edits of the values files.
//!
//! A chart is a folder with `Chart.yaml`. Its templates are never parsed as YAML and never
//! edited ([`templates`] reads their securityContexts as text, [`pods`] the rest of their pod
//! specs, [`actions`] the blocks around both). The values files are edited with the YAML engine
//! and checked by [`crate::verify`] like any manifest, then against `values.schema.json` when
//! the chart has one. Pods and containers whose securityContext the templates do not take from
//! values are reported on their template, and no value is invented for them. The guardrails a
//! manifest gets (host-access pods left alone, a writable /tmp, low-port notes) come from
//! [`guardrails`]. What the chart renders with Helm's engine, before and after the edits, is
//! the last word ([`render`]).

mod actions;
mod defaults;
mod guardrails;
mod helpers;
mod hints;
mod images;
mod pods;
mod render;
pub mod templates;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::policy::{Control, Finding, Level, Note, Rules, SkippedPod};
use crate::report::{FileReport, Settings, Status};

pub use guardrails::{Guardrails, TmpAddition};
pub use templates::{Gap, Use, Wiring};

/// Why template files are listed but never read as YAML.
pub const TEMPLATE_REASON: &str = "Helm chart template (read as text, never edited)";

/// A values path that a template writes into a securityContext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Dotted path below `.Values` (`controller.podSecurityContext`).
    pub path: String,
    pub level: Level,
    /// The template has a default for an empty value (an `else` branch or `default`).
    pub has_default: bool,
    /// When the template's own default applies, as its templates say it (see
    /// [`templates::Use::default_when`]).
    pub default_when: Vec<String>,
    /// Whether the render with the values in use takes that default ([`defaults`]).
    pub default_probe: defaults::Probe,
    /// The template renders it only when `<path>.enabled` is true (Bitnami style).
    pub gated_by_enabled: bool,
    /// The template renders it only when the `enabled` beside it is true
    /// (`x.securityContext.enabled` beside `x.securityContext.context`).
    pub gated_beside: bool,
    /// Where it is used: template (relative to the chart) and line.
    pub used_at: Vec<(PathBuf, usize)>,
    /// The containers that use it, as the templates name them (container level only).
    pub containers: Vec<String>,
    /// values.yaml does not set it, but sets the mapping it belongs to, and a helper renders
    /// it for every key there (`controllers.main.containers.app.securityContext` from a
    /// `range` over `controllers` and their `containers`): it is added.
    pub create: bool,
    /// Add what is missing (false: a helper merges it over another wired path that values.yaml
    /// sets, which supplies the baseline: only explicit values that fall short are corrected).
    pub complete: bool,
    /// The template builds the context from values keys field by field ([`FieldTarget`]) when
    /// this path is empty: an empty value selects that, and is left empty.
    pub falls_back: bool,
    /// A container context rendered only into pods that get no pod securityContext: it holds
    /// the pod's `runAsUser`, `runAsGroup` and `seccompProfile` too.
    pub holds_pod_ids: bool,
    /// The ids the images of every pod it feeds give (`--images`, from a render of the
    /// chart): they replace the baseline's where the path sets none.
    pub image_ids: Option<crate::policy::ChosenIds>,
}

impl Target {
    /// The template's own default for an empty value may be what ships: it has one, and no
    /// render proved it untaken ([`defaults`]).
    pub fn keeps_default(&self) -> bool {
        self.has_default && !matches!(self.default_probe, defaults::Probe::NotTaken { .. })
    }
}

/// A securityContext field a template (or its helper) writes from one values key, in the
/// context built when the whole-context paths of the same key (`overrides`) are empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTarget {
    /// The values key (`controller.image.runAsUser`).
    pub path: String,
    /// The securityContext field it is written as (`runAsUser`).
    pub field: String,
    pub level: Level,
    /// The container (or `pod`), as the templates name it.
    pub name: String,
    /// Where the field is written: the file (a helper's, relative to the chart) and line.
    pub written_at: (PathBuf, usize),
    pub overrides: Vec<String>,
}

/// What a chart's templates say, resolved against its values.yaml.
#[derive(Debug, Default)]
pub struct ChartWiring {
    pub targets: Vec<Target>,
    /// Fields written from single values keys.
    pub fields: Vec<FieldTarget>,
    /// Fields written literally short of the baseline: (template, the context's use, the
    /// field), made gaps once where they are written is known ([`locate_fields`]).
    literals: Vec<(PathBuf, templates::Use, templates::Field)>,
    /// Per template (relative to the chart): what a person must look at.
    pub gaps: BTreeMap<PathBuf, Vec<Gap>>,
    /// What the pod specs of the templates come to with the values (empty from [`resolve`]).
    pub(crate) guardrails: guardrails::Guardrails,
    /// Per template: the template's line for each line of its expanded text (the lines of
    /// `Use`s, gaps and guardrails are lines of the expanded text).
    pub(crate) line_of: BTreeMap<PathBuf, Vec<usize>>,
    /// Per template: where each line of its expanded text that a helper wrote is written.
    pub(crate) written_at: BTreeMap<PathBuf, Vec<Option<(PathBuf, usize)>>>,
    /// The notes of the rendered pods' images, each on the values path that feeds its pod
    /// ([`images`]), and the images `--images always` cannot read.
    pub(crate) image_notes: Vec<(String, Note)>,
    pub(crate) image_errors: Vec<String>,
    /// The notes of the images of pods no values path feeds, by template: on the template.
    pub(crate) template_image_notes: Vec<(PathBuf, Note)>,
}

impl ChartWiring {
    /// The template's own line for a (1-based) line of its expanded text.
    pub fn template_line(&self, template: &Path, line: usize) -> usize {
        self.line_of
            .get(template)
            .and_then(|lines| lines.get(line.wrapping_sub(1)))
            .copied()
            .unwrap_or(line)
    }

    /// `file:line` where a (1-based) line of a template's expanded text is written: in a
    /// helper (a dependency's too), or in the template itself.
    pub fn place(&self, template: &Path, line: usize) -> String {
        let helper = self
            .written_at
            .get(template)
            .and_then(|lines| lines.get(line.wrapping_sub(1)))
            .and_then(Option::as_ref);
        match helper {
            Some((file, at)) => format!("{}:{at}", file.display()),
            None => format!(
                "{}:{}",
                template.display(),
                self.template_line(template, line)
            ),
        }
    }
}

/// A template of a chart with the helpers it includes expanded ([`helpers`]).
pub struct ExpandedTemplate {
    pub path: PathBuf,
    pub expanded: helpers::Expanded,
}

/// Every template of the chart, its includes expanded with the named templates of the chart and
/// of the charts vendored below it. A helper that a template includes is read there, in the
/// context the include gives it; one that none includes is read where it is written.
pub fn expanded_templates(chart: &Path) -> Vec<ExpandedTemplate> {
    let texts = read_templates(chart);
    let defines = helpers::Defines::read(chart);
    let none = std::collections::BTreeSet::new();
    let followed: std::collections::BTreeSet<String> = texts
        .iter()
        .flat_map(|(_, t)| helpers::expand(t, &defines, &none).followed)
        .collect();
    texts
        .iter()
        .map(|(path, text)| ExpandedTemplate {
            path: path.clone(),
            expanded: helpers::expand(text, &defines, &followed),
        })
        .collect()
}

/// What each template wires (its lines are those of the expanded text).
fn analyse_all(texts: &[ExpandedTemplate]) -> Vec<(PathBuf, Wiring)> {
    texts
        .iter()
        .map(|t| {
            let mut w = templates::analyse_expanded(&t.expanded.text, &t.expanded.unfollowed);
            w.layers.clone_from(&t.expanded.layers);
            (t.path.clone(), w)
        })
        .collect()
}

/// Marks the container targets rendered only into pods with no pod securityContext
/// ([`Target::holds_pod_ids`]).
fn mark_pod_ids(wiring: &mut ChartWiring, pods: &[(PathBuf, Vec<pods::PodText>)]) {
    let mut bare: BTreeMap<(PathBuf, usize), bool> = BTreeMap::new();
    for (template, list) in pods {
        for pod in list {
            for line in pod.containers.iter().filter_map(|c| c.context_line) {
                bare.insert((template.clone(), line), pod.context_line.is_none());
            }
        }
    }
    for t in &mut wiring.targets {
        t.holds_pod_ids = t.level == Level::Container
            && !t.used_at.is_empty()
            && t.used_at.iter().all(|at| bare.get(at) == Some(&true));
    }
}

/// A pod with no securityContext whose containers' contexts all hold its ids: only `fsGroup`
/// has no home (a pod-only field). The pod is the first below the gap's `spec:` line.
fn ids_held_by_containers(
    wiring: &ChartWiring,
    pods: &[(PathBuf, Vec<pods::PodText>)],
    template: &Path,
    gap_line: usize,
) -> bool {
    let Some(pod) = pods
        .iter()
        .filter(|(t, _)| t == template)
        .flat_map(|(_, list)| list)
        .filter(|p| p.line > gap_line && p.context_line.is_none())
        .min_by_key(|p| p.line)
    else {
        return false;
    };
    !pod.containers.is_empty()
        && pod.containers.iter().all(|c| {
            c.context_line.is_some_and(|line| {
                wiring
                    .targets
                    .iter()
                    .any(|t| t.holds_pod_ids && t.used_at.contains(&(template.to_path_buf(), line)))
            })
        })
}

/// Where each field target is written: the helper's file and line for an included line, else
/// the template's own line. A field written literally short of the baseline becomes a gap on
/// the template, naming the key and the line that writes it.
fn locate_fields(wiring: &mut ChartWiring, texts: &[ExpandedTemplate]) {
    let written_at = |template: &Path, line: usize| -> (PathBuf, usize) {
        let t = texts.iter().find(|t| t.path == template);
        match t.and_then(|t| t.expanded.written_at.get(line.wrapping_sub(1))) {
            Some(Some(at)) => at.clone(),
            _ => (
                template.to_path_buf(),
                t.map_or(line, |t| t.expanded.template_line(line)),
            ),
        }
    };
    for (template, u, f) in std::mem::take(&mut wiring.literals) {
        let (file, at) = written_at(&template, f.line);
        let what = match u.level {
            Level::Pod => "the pod".to_string(),
            Level::Container => format!("container `{}`", u.name),
        };
        wiring.gaps.entry(template).or_default().push(Gap {
            line: u.line,
            kind: u.kind.clone(),
            name: u.name.clone(),
            message: format!("{what} gets `{}: {}` written at {}:{at}, which no values key changes: it stays short of the baseline; change it there by hand", f.key, f.path, file.display()),
            missing: None,
        });
    }
    for f in &mut wiring.fields {
        let (template, line) = f.written_at.clone();
        let Some(t) = texts.iter().find(|t| t.path == template) else {
            continue;
        };
        f.written_at = match t.expanded.written_at.get(line.wrapping_sub(1)) {
            Some(Some(at)) => at.clone(),
            _ => (template, t.expanded.template_line(line)),
        };
    }
}

fn line_maps(texts: &[ExpandedTemplate]) -> BTreeMap<PathBuf, Vec<usize>> {
    texts
        .iter()
        .map(|t| (t.path.clone(), t.expanded.line_of.clone()))
        .collect()
}

fn written_maps(texts: &[ExpandedTemplate]) -> BTreeMap<PathBuf, Vec<Option<(PathBuf, usize)>>> {
    texts
        .iter()
        .map(|t| (t.path.clone(), t.expanded.written_at.clone()))
        .collect()
}

/// Every template of the chart (`templates/**/*.yaml|yml|tpl`: helpers may write a pod spec),
/// relative to the chart, with its text.
pub fn read_templates(chart: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![chart.join("templates")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "tpl")
                )
            {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    let rel = path.strip_prefix(chart).unwrap_or(&path).to_path_buf();
                    out.push((rel, text));
                }
            }
        }
    }
    out.sort();
    out
}

/// Does a values node look like a securityContext (by its name or its keys)?
fn looks_like_context(path: &str, keys: &[String]) -> bool {
    const FIELDS: &[&str] = &[
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "fsGroup",
        "seccompProfile",
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "capabilities",
        "privileged",
        "seLinuxOptions",
    ];
    let mut names = path.rsplit('.').map(str::to_ascii_lowercase);
    let last = names.next().unwrap_or_default();
    // `x.securityContext.context`: the context itself, beside its `enabled` switch.
    let inside = last == "context" && names.next().is_some_and(|n| n.contains("securitycontext"));
    last.contains("securitycontext") || inside || keys.iter().any(|k| FIELDS.contains(&k.as_str()))
}

/// Resolves the templates' `securityContext:` keys against the chart's values. `shape` says
/// what values.yaml holds at a dotted path: None when absent, else the keys of the mapping
/// (empty for `{}` or null), or `Some(None)` for a scalar or list.
pub fn resolve(
    templates: &[(PathBuf, Wiring)],
    shape: &dyn Fn(&str) -> Option<Option<Vec<String>>>,
) -> ChartWiring {
    let mut wiring = ChartWiring::default();
    let mut by_path: BTreeMap<String, Target> = BTreeMap::new();
    let mut conflicts: Vec<(PathBuf, String, Gap)> = Vec::new();
    let mut wired: Vec<(PathBuf, Level, String, String)> = Vec::new();
    for (template, w) in templates {
        if !w.gaps.is_empty() {
            wiring
                .gaps
                .entry(template.clone())
                .or_default()
                .extend(w.gaps.iter().cloned());
        }
        for u in &w.uses {
            let mut found = Vec::new();
            let mut created = Vec::new();
            let mut ranged = Vec::new();
            let mut missing = Vec::new();
            for (r, from_range) in u.refs.iter().flat_map(|r| expand_wildcards(r, shape)) {
                if from_range {
                    ranged.push(r.clone());
                }
                match shape(&r) {
                    Some(Some(keys)) if looks_like_context(&r, &keys) => found.push(r),
                    Some(_) => {}
                    // A helper renders it for each key of a mapping values.yaml sets.
                    None if from_range
                        && looks_like_context(&r, &[])
                        && parent_is_map(&r, shape) =>
                    {
                        created.push(r.clone());
                        found.push(r);
                    }
                    None if looks_like_context(&r, &[]) => missing.push(r),
                    None => {}
                }
            }
            // `x.enabled` read next to `x`: the chart renders x only when enabled.
            let gated = |p: &str| u.refs.iter().any(|r| r == &format!("{p}.enabled"));
            for path in &found {
                let t = by_path.entry(path.clone()).or_insert_with(|| Target {
                    path: path.clone(),
                    level: u.level,
                    has_default: false,
                    default_when: vec![],
                    default_probe: defaults::Probe::Unproven,
                    gated_by_enabled: false,
                    gated_beside: false,
                    used_at: vec![],
                    containers: vec![],
                    create: created.contains(path),
                    complete: true,
                    falls_back: false,
                    holds_pod_ids: false,
                    image_ids: None,
                });
                t.falls_back |= !u.fields.is_empty();
                let name = match ranged.contains(path) {
                    true => ranged_name(path, &u.name),
                    false => u.name.clone(),
                };
                if u.level == Level::Container && !t.containers.contains(&name) {
                    t.containers.push(name);
                }
                if t.level != u.level {
                    conflicts.push((
                        template.clone(),
                        path.clone(),
                        Gap {
                            line: u.line,
                            kind: u.kind.clone(),
                            name: u.name.clone(),
                            message: format!("`.Values.{path}` is used both as a pod and as a container securityContext; left unchanged"),
                            missing: None,
                        },
                    ));
                }
                t.has_default |= u.has_default;
                if let Some(when) = u.default_when.as_ref().filter(|_| u.has_default) {
                    if !t.default_when.contains(when) {
                        t.default_when.push(when.clone());
                    }
                }
                t.gated_by_enabled |= gated(path);
                t.gated_beside |= path.rsplit_once('.').is_some_and(|(holder, last)| {
                    last == "context"
                        && holder.to_ascii_lowercase().ends_with("securitycontext")
                        && gated(holder)
                });
                t.used_at.push((template.clone(), u.line));
            }
            // A literal beside wired values stops them reaching the baseline (one in a context
            // with nothing wired is the gap below).
            if !found.is_empty() || !u.fields.is_empty() {
                for f in &u.literals {
                    wiring
                        .literals
                        .push((template.clone(), u.clone(), f.clone()));
                }
            }
            for f in &u.fields {
                if shape(&f.path) == Some(None) {
                    wiring.fields.push(FieldTarget {
                        path: f.path.clone(),
                        field: f.key.clone(),
                        level: u.level,
                        name: u.name.clone(),
                        written_at: (template.clone(), f.line),
                        overrides: found.clone(),
                    });
                }
            }
            if found.is_empty() && !u.fields.is_empty() {
                continue; // built from its fields: nothing else to wire
            }
            let key = (template.clone(), u.level, u.name.clone(), u.kind.clone());
            if !found.is_empty() {
                wired.push(key);
            } else if u.in_else && wired.contains(&key) {
                // The template's own default for the wired key above it, in its `else`
                // branch: the values path's report says when it applies.
                continue;
            }
            if found.is_empty() {
                let what = match u.level {
                    Level::Pod => "the pod's securityContext".to_string(),
                    Level::Container => format!("the securityContext of container `{}`", u.name),
                };
                let message = match missing.first() {
                    Some(m) => format!("{what} comes from `.Values.{m}`, which values.yaml does not set: add it there by hand"),
                    None => format!("{what} is not taken from a values path (written in the template or by a helper): check it by hand"),
                };
                wiring.gaps.entry(template.clone()).or_default().push(Gap {
                    line: u.line,
                    kind: u.kind.clone(),
                    name: u.name.clone(),
                    message,
                    missing: None,
                });
            }
        }
    }
    for (template, path, gap) in conflicts {
        by_path.remove(&path);
        wiring.gaps.entry(template).or_default().push(gap);
    }
    let layers: Vec<&(String, String)> = templates.iter().flat_map(|(_, w)| &w.layers).collect();
    apply_layers(&mut by_path, &layers);
    wiring.targets = by_path.into_values().collect();
    wiring
}

/// A path with `*` (any key, from a helper's `range`) as the paths values.yaml has for it, each
/// with whether it came from a `*`.
fn expand_wildcards(
    path: &str,
    shape: &dyn Fn(&str) -> Option<Option<Vec<String>>>,
) -> Vec<(String, bool)> {
    let Some((head, tail)) = path.split_once('*') else {
        return vec![(path.to_string(), false)];
    };
    let head = head.trim_end_matches('.');
    let tail = tail.trim_start_matches('.');
    let keys = match shape(head) {
        Some(Some(keys)) => keys,
        _ => return vec![],
    };
    keys.iter()
        .flat_map(|k| {
            let next = match tail {
                "" => format!("{head}.{k}"),
                _ => format!("{head}.{k}.{tail}"),
            };
            expand_wildcards(&next, shape)
        })
        .map(|(p, _)| (p, true))
        .collect()
}

/// A container rendered once per key of a mapping (`controllers.main.containers.app`) is named
/// by a template expression (`{{ $name }}`): its key names it better.
fn ranged_name(path: &str, written: &str) -> String {
    let mut segs = path.rsplit('.');
    match (written.contains("{{"), segs.nth(1)) {
        (true, Some(key)) => key.to_string(),
        _ => written.to_string(),
    }
}

fn parent_is_map(path: &str, shape: &dyn Fn(&str) -> Option<Option<Vec<String>>>) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(parent, _)| matches!(shape(parent), Some(Some(_))))
}

/// Does a dotted path match a pattern whose `*` segments match any key?
fn matches_pattern(path: &str, pattern: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (path.split('.').collect(), pattern.split('.').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| *y == "*" || x == y)
}

/// A path a helper merges over another wired path that values.yaml sets (a controller's own
/// `pod.securityContext` over `defaultPodOptions.securityContext`): the path under it gets the
/// baseline, this one only has its explicit values corrected, and it is not added where
/// values.yaml does not set it.
fn apply_layers(by_path: &mut BTreeMap<String, Target>, layers: &[&(String, String)]) {
    let set_under = |over: &Target, by_path: &BTreeMap<String, Target>| {
        layers.iter().any(|(o, u)| {
            matches_pattern(&over.path, o)
                && by_path
                    .values()
                    .any(|t| !t.create && t.level == over.level && matches_pattern(&t.path, u))
        })
    };
    let layered: Vec<String> = by_path
        .values()
        .filter(|t| set_under(t, by_path))
        .map(|t| t.path.clone())
        .collect();
    for path in layered {
        let Some(t) = by_path.get_mut(&path) else {
            continue;
        };
        if t.create {
            by_path.remove(&path);
        } else {
            t.complete = false;
        }
    }
}

/// Processes one chart and the charts vendored in its `charts/` folder: their values files
/// are checked and edited (verified, not written), their templates reported, and the whole
/// rendered with Helm's engine ([`render`]): a subchart ships inside its parent's render.
/// Only reports for paths in `listed` (the files discovery found) are returned, so a run on
/// one values file reports that file alone.
pub fn process_chart(chart: &Path, listed: &[PathBuf], settings: &Settings) -> Vec<FileReport> {
    plan_chart(chart, listed, settings, true)
}

/// [`process_chart`] without the render check: the values files as the run leaves them (the
/// images still read from a render when the run renders), for a consumer that only needs
/// the edited values (a GitOps release of the chart).
pub fn plan_values_only(chart: &Path, listed: &[PathBuf], settings: &Settings) -> Vec<FileReport> {
    plan_chart(chart, listed, settings, false)
}

fn plan_chart(
    chart: &Path,
    listed: &[PathBuf],
    settings: &Settings,
    check: bool,
) -> Vec<FileReport> {
    let mut reports = Vec::new();
    let mut parts = Vec::new();
    let (rendered_images, unedited) = images::read(chart, settings);
    for dir in with_vendored(chart) {
        let rel = dir
            .strip_prefix(chart)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let (own, wiring, main) = plan_one(
            &dir,
            (dir == chart, &rel),
            &rendered_images,
            listed,
            settings,
        );
        reports.extend(own);
        parts.push(render::Part { rel, wiring, main });
    }
    if check {
        render::check(chart, &parts, &mut reports, settings, unedited.as_deref());
    }
    reports.retain(|r| listed.contains(&r.path));
    reports
}

/// The chart, then every chart vendored below it (`charts/<name>/Chart.yaml`, at any depth).
pub fn with_vendored(chart: &Path) -> Vec<PathBuf> {
    let mut out = vec![chart.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let mut nested: Vec<PathBuf> = std::fs::read_dir(out[i].join("charts"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("Chart.yaml").is_file())
            .collect();
        nested.sort();
        out.extend(nested);
        i += 1;
    }
    out
}

/// Plans one chart folder (its own templates and values files, not its subcharts'): every
/// report, the wiring its templates give, and its values.yaml.
fn plan_one(
    chart: &Path,
    (top, rel): (bool, &Path),
    rendered_images: &crate::helm::images::RenderedImages,
    listed: &[PathBuf],
    settings: &Settings,
) -> (Vec<FileReport>, ChartWiring, Option<PathBuf>) {
    // A library chart renders nothing of its own: its helpers are read where a chart that
    // depends on it includes them.
    let texts = if crate::helm::engine::is_library(chart) {
        vec![]
    } else {
        expanded_templates(chart)
    };
    let templates = analyse_all(&texts);
    let pods: Vec<(PathBuf, Vec<pods::PodText>)> = texts
        .iter()
        .map(|t| (t.path.clone(), pods::read(&t.expanded.text)))
        .collect();
    let main = ["values.yaml", "values.yml"]
        .iter()
        .map(|n| chart.join(n))
        .find(|p| p.is_file());
    let mut reports = Vec::new();
    let main_text = main.as_ref().map(|p| values::read(p, settings));
    let main_tree = match &main_text {
        Some(Ok(text)) => yaml_splice::Tree::parse(text).ok(),
        _ => None,
    };
    let mut wiring = match &main_tree {
        Some(tree) => resolve(&templates, &|path| values::shape(tree, path)),
        None => resolve(&templates, &|_| None),
    };
    let privileged = main_tree
        .as_ref()
        .map(|tree| values::privileged_targets(tree, &wiring))
        .unwrap_or_default();
    let defaults = match &main_text {
        Some(Ok(text)) => text.as_str(),
        _ => "",
    };
    wiring.line_of = line_maps(&texts);
    wiring.written_at = written_maps(&texts);
    locate_fields(&mut wiring, &texts);
    // A vendored subchart renders inside its parent, with the parent's values: only the chart
    // itself is probed.
    if let Some(tree) = main_tree.as_ref().filter(|_| top) {
        defaults::probe(chart, &mut wiring, tree, &settings.render);
    }
    let sets = value_sets(chart, main.as_deref(), defaults, settings);
    mark_pod_ids(&mut wiring, &pods);
    images::apply(&mut wiring, rendered_images, rel, &settings.rules);
    wiring.guardrails = guardrails::plan(&pods, &wiring, &sets, &privileged, &settings.rules);
    let schema = values::Schema::load(chart);
    let mut main_new: Option<String> = None;
    if let (Some(path), Some(text)) = (&main, main_text) {
        let report = match (text, &schema) {
            (Err(status), _) => FileReport::new(path, status),
            (Ok(_), Err(e)) => {
                let mut r = FileReport::new(path, Status::Failed(e.clone()));
                r.original = None;
                r
            }
            (Ok(text), Ok(schema)) => {
                values::process(path, text, &wiring, true, schema.as_ref(), None, settings)
            }
        };
        main_new = match (&report.status, &report.original) {
            (Status::Changed { new_text }, _) => Some(new_text.clone()),
            (_, Some(old)) => Some(old.clone()),
            _ => None,
        };
        reports.push(report);
    }
    for path in listed {
        let is_main = main.as_deref() == Some(path.as_path());
        if is_main || !is_values_file(chart, path) {
            continue;
        }
        let report = match (values::read(path, settings), &schema) {
            (Err(status), _) => FileReport::new(path, status),
            (Ok(_), Err(e)) => FileReport::new(path, Status::Failed(e.clone())),
            (Ok(text), Ok(schema)) => values::process(
                path,
                text,
                &wiring,
                false,
                schema.as_ref(),
                main_new.as_deref(),
                settings,
            ),
        };
        reports.push(report);
    }
    for rel in read_templates(chart).into_iter().map(|(rel, _)| rel) {
        let path = chart.join(&rel);
        let mut report = FileReport::new(&path, Status::Skipped(TEMPLATE_REASON.into()));
        for gap in wiring.gaps.get(&rel).into_iter().flatten() {
            let line = wiring.template_line(&rel, gap.line);
            report.add_workload(&gap.kind, &gap.name, line);
            let workload = report.workloads.len() - 1;
            let held = gap.missing == Some(Level::Pod)
                && ids_held_by_containers(&wiring, &pods, &rel, gap.line);
            let reason = match held {
                true => format!("the pod has no securityContext: its containers' contexts get runAsUser, runAsGroup and seccompProfile from values, but fsGroup has no home there (a pod-only field): for it, {}", gap.message.trim_start_matches("the pod has no securityContext; ")),
                false => gap.message.clone(),
            };
            report.skipped_pods.push(SkippedPod { workload, reason });
            if let Some(level) = gap.missing {
                report.findings.extend(
                    absent(level, &settings.rules)
                        .into_iter()
                        .filter(|(c, _)| !held || *c == Control::FsGroup)
                        .map(|(control, wanted)| Finding {
                            workload,
                            container: (level == Level::Container).then(|| gap.name.clone()),
                            control,
                            current: "absent".into(),
                            wanted,
                            line,
                            col: 1,
                            fixable: false,
                        }),
                );
            }
        }
        let notes = wiring.guardrails.template_notes.get(&rel);
        add_template_notes(&mut report, notes, |l| wiring.template_line(&rel, l));
        for (_, note) in wiring
            .template_image_notes
            .iter()
            .filter(|(t, _)| *t == rel)
        {
            if report.workloads.is_empty() {
                report.add_workload("template", &rel.display().to_string(), 1);
            }
            let line = report.workloads[0].line;
            report.notes.push(Note {
                workload: 0,
                line,
                ..note.clone()
            });
        }
        reports.push(report);
    }
    if wiring.targets.is_empty() {
        for r in &mut reports {
            if main.as_deref() == Some(r.path.as_path()) && matches!(r.status, Status::Unchanged) {
                r.status = Status::Skipped(
                    "Helm chart whose templates take no securityContext from values".into(),
                );
            }
        }
    }
    (reports, wiring, main)
}

/// What a chart folder's templates wire, resolved against its values.yaml, and those default
/// values: for a consumer of the chart that is not this source (a GitOps release installs it
/// with values of its own).
pub fn read_wiring(chart: &Path) -> Result<(ChartWiring, serde_json::Value), String> {
    let texts = expanded_templates(chart);
    let templates = analyse_all(&texts);
    let path = ["values.yaml", "values.yml"]
        .iter()
        .map(|n| chart.join(n))
        .find(|p| p.is_file());
    let text = match &path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => String::new(),
    };
    let tree = yaml_splice::Tree::parse(&text).map_err(|e| format!("values.yaml: {e}"))?;
    let mut wiring = resolve(&templates, &|p| values::shape(&tree, p));
    wiring.line_of = line_maps(&texts);
    wiring.written_at = written_maps(&texts);
    locate_fields(&mut wiring, &texts);
    let docs = crate::verify::load_all(&text).map_err(|e| format!("values.yaml: {e}"))?;
    let defaults = serde_json::to_value(docs.into_iter().next().unwrap_or_default())
        .map_err(|e| format!("values.yaml: {e}"))?;
    let defaults = match defaults {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other,
    };
    Ok((wiring, defaults))
}

/// What a chart folder's templates wire, resolved against `values` rather than the chart's
/// values.yaml: for a release, whose effective values decide which keys a helper's `range`
/// renders (the controllers and containers of a library chart such as app-template's `common`
/// are the release's). A container target of pods with no pod securityContext
/// `holds_pod_ids`. A target with `create` is a path the values do not set that a helper
/// renders for a key they do (set it whole); one not `complete` is merged over another target,
/// which supplies the baseline.
pub fn read_wiring_with(chart: &Path, values: &serde_json::Value) -> ChartWiring {
    let texts = expanded_templates(chart);
    let templates = analyse_all(&texts);
    let shape = |path: &str| match actions::lookup(values, path)? {
        serde_json::Value::Object(m) => Some(Some(m.keys().cloned().collect())),
        serde_json::Value::Null => Some(Some(vec![])),
        _ => Some(None),
    };
    let mut wiring = resolve(&templates, &shape);
    wiring.line_of = line_maps(&texts);
    wiring.written_at = written_maps(&texts);
    locate_fields(&mut wiring, &texts);
    let pods: Vec<(PathBuf, Vec<pods::PodText>)> = texts
        .iter()
        .map(|t| (t.path.clone(), pods::read(&t.expanded.text)))
        .collect();
    mark_pod_ids(&mut wiring, &pods);
    wiring
}

/// The guardrails of a chart installed with `values` (the effective values of a release that
/// is not this source's): the securityContext paths left to a person because their pod has
/// access to its node, the values lists a writable /tmp goes into, and the container paths
/// that get a read-only root filesystem with no /tmp, with the note that says why.
pub fn release_guardrails(
    chart: &Path,
    wiring: &ChartWiring,
    values: &serde_json::Value,
    rules: &crate::policy::Rules,
) -> Guardrails {
    let pods: Vec<(PathBuf, Vec<pods::PodText>)> = expanded_templates(chart)
        .iter()
        .map(|t| (t.path.clone(), pods::read(&t.expanded.text)))
        .collect();
    let sets = [guardrails::ValueSet {
        values: values.clone(),
    }];
    guardrails::plan(&pods, wiring, &sets, &BTreeMap::new(), rules)
}

/// The low ports a chart installed with `values` listens on (the guardrails planned with
/// those values): a note each, naming the container and, for a port from values, the path.
pub fn release_low_ports(g: &Guardrails, values: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = g
        .template_notes
        .iter()
        .flat_map(|(template, notes)| notes.iter().map(move |n| (template, n)))
        .filter(|(_, n)| n.message.starts_with("listens on port"))
        .map(|(template, n)| {
            format!(
                "container `{}` ({}:{}) {}",
                n.name,
                template.display(),
                n.line,
                n.message
            )
        })
        .collect();
    let text = yaml_serde::to_string(values).unwrap_or_default();
    let Ok(tree) = yaml_splice::Tree::parse(&text) else {
        return out;
    };
    for port in &g.ports {
        for (name, _, number) in values::port_numbers(&tree, &port.source) {
            if crate::policy::is_low_port(number) {
                out.push(format!(
                    "container `{}` (`.Values.{name}`) {}",
                    port.containers.join("`, `"),
                    crate::policy::low_port_message(number)
                ));
            }
        }
    }
    out
}

/// The guardrails' notes on a template, each with the pod or container it is about.
fn add_template_notes(
    report: &mut FileReport,
    notes: Option<&Vec<guardrails::TemplateNote>>,
    line_of: impl Fn(usize) -> usize,
) {
    for n in notes.into_iter().flatten() {
        let line = line_of(n.line);
        report.add_workload(&n.kind, &n.name, line);
        report.notes.push(Note {
            workload: report.workloads.len() - 1,
            container: n.container.clone(),
            kind: n.note,
            message: n.message.clone(),
            line,
        });
    }
}

/// The values each release may render with: values.yaml alone (`defaults`), then merged with
/// each override file of the chart (`values*.yaml`, `ci/*.yaml`). A file that cannot be read
/// is left out (its own report says why).
fn value_sets(
    chart: &Path,
    main: Option<&Path>,
    defaults: &str,
    settings: &Settings,
) -> Vec<guardrails::ValueSet> {
    let base = values::as_json(defaults).unwrap_or(serde_json::Value::Null);
    let base = if base.is_object() {
        base
    } else {
        serde_json::Value::Object(Default::default())
    };
    let mut sets = vec![guardrails::ValueSet {
        values: base.clone(),
    }];
    for path in override_files(chart) {
        if Some(path.as_path()) == main {
            continue;
        }
        let Ok(text) = values::read(&path, settings) else {
            continue;
        };
        let Ok(over) = values::as_json(&text) else {
            continue;
        };
        let mut merged = base.clone();
        values::merge(&mut merged, &over);
        sets.push(guardrails::ValueSet { values: merged });
    }
    sets
}

/// The chart's values files other than values.yaml, sorted.
fn override_files(chart: &Path) -> Vec<PathBuf> {
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_values_file(chart, p))
            .collect()
    };
    let mut files = list(chart);
    files.extend(list(&chart.join("ci")));
    files.sort();
    files
}

/// The controls a pod or container without any securityContext falls short of, with the value
/// the contract wants (the container level never adds the ids, as in a manifest).
fn absent(level: Level, rules: &Rules) -> Vec<(Control, String)> {
    let b = &rules.baseline;
    let all = match level {
        Level::Pod => vec![
            (Control::RunAsNonRoot, "true".to_string()),
            (Control::RunAsUser, b.uid.to_string()),
            (Control::RunAsGroup, b.gid.to_string()),
            (Control::FsGroup, b.fs_group.to_string()),
            (
                Control::SeccompProfile,
                "{type: RuntimeDefault}".to_string(),
            ),
        ],
        Level::Container => vec![
            (Control::AllowPrivilegeEscalation, "false".to_string()),
            (Control::ReadOnlyRootFilesystem, "true".to_string()),
            (Control::CapabilitiesDrop, "[ALL]".to_string()),
        ],
    };
    all.into_iter()
        .filter(|(c, _)| !rules.disabled.contains(c))
        .collect()
}

/// Values files besides values.yaml: `values*.yaml` in the chart folder and `ci/*.yaml`.
fn is_values_file(chart: &Path, path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
    let parent = path.parent();
    yaml && ((parent == Some(chart) && name.starts_with("values"))
        || parent == Some(chart.join("ci").as_path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(level: Level, refs: &[&str]) -> Wiring {
        Wiring {
            uses: vec![Use {
                line: 7,
                level,
                refs: refs.iter().map(|r| r.to_string()).collect(),
                has_default: false,
                default_when: None,
                in_else: false,
                kind: "Deployment".into(),
                name: "app".into(),
                fields: vec![],
                literals: vec![],
            }],
            gaps: vec![],
            layers: vec![],
        }
    }

    #[test]
    fn a_literal_short_value_beside_wired_fields_is_named_where_the_helper_writes_it() {
        let mut defines = helpers::Defines::default();
        defines.add(
            Path::new("templates/_helpers.tpl"),
            "{{/* one */}}\n{{- define \"x.sc\" -}}\nrunAsUser: {{ .Values.image.uid }}\nreadOnlyRootFilesystem: false\n{{- end }}\n",
        );
        let text = "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          securityContext:\n            {{- include \"x.sc\" . | nindent 12 }}\n";
        let texts = vec![ExpandedTemplate {
            path: PathBuf::from("templates/deploy.yaml"),
            expanded: helpers::expand(text, &defines, &Default::default()),
        }];
        let shape = |p: &str| (p == "image.uid").then_some(None);
        let mut w = resolve(&analyse_all(&texts), &shape);
        locate_fields(&mut w, &texts);
        assert_eq!(
            w.fields[0].written_at,
            (PathBuf::from("templates/_helpers.tpl"), 3)
        );
        let gaps: Vec<(usize, &str)> = w
            .gaps
            .values()
            .flatten()
            .map(|g| {
                (
                    w.template_line(Path::new("templates/deploy.yaml"), g.line),
                    g.message.as_str(),
                )
            })
            .collect();
        assert_eq!(gaps, vec![(4, "the pod has no securityContext; add `securityContext: {{- toYaml .Values.podSecurityContext | nindent 8 }}` under `spec:`"), (7, "container `app` gets `readOnlyRootFilesystem: false` written at templates/_helpers.tpl:4, which no values key changes: it stays short of the baseline; change it there by hand")]);
    }

    #[test]
    fn a_release_s_own_controllers_are_wired_through_the_library_chart() {
        let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts/homelab-app");
        let values = serde_json::json!({
            "defaultPodOptions": {"securityContext": {"runAsUser": 2000}},
            "controllers": {"backup": {"containers": {"restic": {"image": {"tag": "0.17"}}}}},
        });
        let w = read_wiring_with(&chart, &values);
        let got: Vec<(&str, Level, bool)> = w
            .targets
            .iter()
            .map(|t| (t.path.as_str(), t.level, t.create))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "controllers.backup.containers.restic.securityContext",
                    Level::Container,
                    true
                ),
                ("defaultPodOptions.securityContext", Level::Pod, false),
            ]
        );
        assert_eq!(w.targets[0].containers, vec!["restic".to_string()]);
        assert_eq!(
            w.targets[1].used_at,
            vec![(PathBuf::from("templates/common.yaml"), 33)],
            "a line of the expanded text; the template's own line is the include's"
        );
        assert_eq!(w.template_line(Path::new("templates/common.yaml"), 33), 2);
    }

    #[test]
    fn range_items_become_each_key_s_path_and_a_merge_layer_is_only_corrected() {
        let mut pod = uses(
            Level::Pod,
            &["c.*.pod.securityContext", "defaults.securityContext"],
        );
        pod.layers = vec![(
            "c.*.pod.securityContext".into(),
            "defaults.securityContext".into(),
        )];
        let mut container = uses(Level::Container, &["c.*.containers.*.securityContext"]);
        container.uses[0].name = "{{ $name }}".into();
        let templates = vec![
            (PathBuf::from("templates/a.yaml"), pod),
            (PathBuf::from("templates/b.yaml"), container),
        ];
        let shape = |p: &str| match p {
            "c" => Some(Some(vec!["main".to_string(), "worker".to_string()])),
            "c.main.containers" => Some(Some(vec!["app".to_string()])),
            "c.worker.containers" => Some(Some(vec!["jobs".to_string()])),
            "c.main" | "c.worker" | "c.main.pod" | "c.main.containers.app" => Some(Some(vec![])),
            "c.worker.containers.jobs" => Some(Some(vec!["image".to_string()])),
            "c.main.pod.securityContext" | "defaults.securityContext" => Some(Some(vec![])),
            "c.main.containers.app.securityContext" => Some(Some(vec!["runAsUser".into()])),
            _ => None,
        };
        let w = resolve(&templates, &shape);
        let got: Vec<(&str, bool, bool, Vec<String>)> = w
            .targets
            .iter()
            .map(|t| (t.path.as_str(), t.create, t.complete, t.containers.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "c.main.containers.app.securityContext",
                    false,
                    true,
                    vec!["app".into()]
                ),
                ("c.main.pod.securityContext", false, false, vec![]),
                (
                    "c.worker.containers.jobs.securityContext",
                    true,
                    true,
                    vec!["jobs".into()]
                ),
                ("defaults.securityContext", false, true, vec![]),
            ],
            "c.worker has no pod: the default gives it its context"
        );
    }

    #[test]
    fn resolve_keeps_context_mappings_and_reports_the_rest() {
        let templates = vec![
            (
                PathBuf::from("templates/a.yaml"),
                uses(
                    Level::Pod,
                    &[
                        "shared",
                        "a.podSecurityContext",
                        "a.podSecurityContext.enabled",
                        "image.runAsUser",
                    ],
                ),
            ),
            (
                PathBuf::from("templates/b.yaml"),
                uses(Level::Container, &["shared"]),
            ),
            (
                PathBuf::from("templates/c.yaml"),
                uses(Level::Container, &["c.securityContext"]),
            ),
        ];
        let shape = |p: &str| match p {
            "shared" => Some(Some(vec!["runAsUser".to_string()])),
            "a.podSecurityContext" => Some(Some(vec!["enabled".to_string()])),
            "a.podSecurityContext.enabled" | "image.runAsUser" => Some(None),
            _ => None,
        };
        let w = resolve(&templates, &shape);
        let paths: Vec<(&str, Level, bool)> = w
            .targets
            .iter()
            .map(|t| (t.path.as_str(), t.level, t.gated_by_enabled))
            .collect();
        assert_eq!(paths, vec![("a.podSecurityContext", Level::Pod, true)]);
        let messages: Vec<&str> = w
            .gaps
            .values()
            .flatten()
            .map(|g| g.message.as_str())
            .collect();
        assert_eq!(
            messages,
            vec![
                "`.Values.shared` is used both as a pod and as a container securityContext; left unchanged",
                "the securityContext of container `app` comes from `.Values.c.securityContext`, which values.yaml does not set: add it there by hand",
            ]
        );
    }
}
