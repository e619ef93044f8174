//! The render check of one Kustomize app, with Kustomize's own engine: its roots are built from
//! a temporary copy before the edits (which also says which base workloads ship as pods left
//! to a person) and after them, and the two renders are judged ([`crate::verify::rendered`]). Findings
//! go to the report of the file an object came from (its origin annotation), else to the
//! root's; a root that breaks fails every changed file of the app, so nothing is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::policy::{ControlSet, Exemption, Note, NoteKind, Rules};
use crate::report::{fail_changed, FileError, FileReport, RenderMode, Settings, Status};

use super::build::{root_dir, BuildError, Copy, Engine};
use super::forest::{objects_in_file, App, Forest};
use super::model::normalise;
use crate::verify::rendered::{judge, Problem, ProblemKind};

/// The origin annotation Kustomize writes with `buildMetadata: [originAnnotations]`.
pub const ORIGIN: &str = "config.kubernetes.io/origin";

/// The `path` an object's origin annotation names.
pub fn origin_of(object: &yaml_serde::Value) -> Option<String> {
    let annotation = object
        .get("metadata")?
        .get("annotations")?
        .get(ORIGIN)?
        .as_str()?;
    annotation
        .lines()
        .find_map(|l| l.strip_prefix("path:"))
        .map(|p| p.trim().to_string())
}

/// Said once per run when no engine is found and the mode is `auto`.
static SKIP_SAID: AtomicBool = AtomicBool::new(false);

/// The renders of each root before the edits, from a copy of the app.
pub struct Before {
    engine: Engine,
    copy: Copy,
    renders: Vec<(PathBuf, Result<String, BuildError>)>,
}

/// What stops the check before it starts: said on the app's first root.
pub enum Unchecked {
    /// `--render never`, or nothing to build.
    Off,
    /// No engine, with `auto`: said once per run.
    NoEngine,
    /// No engine with `always`: an error for the root and the app's changed files.
    Error(String),
    /// The copy could not be made: an error for the app's changed files.
    CopyFailed(String),
}

impl Before {
    /// Each root and its build (or why it does not build).
    pub fn renders(&self) -> &[(PathBuf, Result<String, BuildError>)] {
        &self.renders
    }

    /// The copy the builds ran on.
    pub fn copy(&self) -> &Copy {
        &self.copy
    }
}

/// Builds every root of the app before the edits.
pub fn before(app: &App, forest: &Forest, settings: &Settings) -> Result<Before, Unchecked> {
    if settings.render.mode == RenderMode::Never || app.roots.is_empty() {
        return Err(Unchecked::Off);
    }
    let Some(engine) = Engine::find(&settings.render) else {
        return Err(match settings.render.mode {
            RenderMode::Always => Unchecked::Error(
                "the render check could not run: neither `kustomize` nor `kubectl` is on PATH (--render always)".into(),
            ),
            _ => Unchecked::NoEngine,
        });
    };
    let copy = Copy::of(app, forest).map_err(|e| {
        Unchecked::CopyFailed(format!("the render check could not copy the tree: {e}"))
    })?;
    for root in &app.roots {
        let has_metadata = forest
            .kustomizations
            .get(root)
            .is_some_and(|k| k.has_build_metadata);
        copy.annotate_origins(root, has_metadata).map_err(|e| {
            Unchecked::Error(format!("the render check could not prepare its copy: {e}"))
        })?;
    }
    // `--offline`: a root that reads a remote resource is not built (the build would fetch it).
    let offline = |root: &Path| {
        let remotes = forest.remotes_of(root);
        (settings.render.offline && !remotes.is_empty()).then_some(BuildError::Offline(remotes))
    };
    let renders = build_all(&engine, &copy, &app.roots, &offline);
    Ok(Before {
        engine,
        copy,
        renders,
    })
}

/// Builds each root but those `not_built` gives a reason for.
fn build_all(
    engine: &Engine,
    copy: &Copy,
    roots: &[PathBuf],
    not_built: &(dyn Fn(&Path) -> Option<BuildError> + Sync),
) -> Vec<(PathBuf, Result<String, BuildError>)> {
    roots
        .par_iter()
        .map(|root| {
            if let Some(why) = not_built(root) {
                return (root.clone(), Err(why));
            }
            let dir = copy
                .path_of(&root_dir(root))
                .map_err(|e| BuildError::Failed(e.to_string()));
            let built = dir.and_then(|d| engine.build(&d, &copy.engine_tmp()));
            let in_user_terms = |e| match e {
                BuildError::Failed(m) => BuildError::Failed(copy.in_user_terms(&m)),
                other => other,
            };
            (root.clone(), built.map_err(in_user_terms))
        })
        .collect()
}

/// Exemptions for the base workloads that some root renders as a pod left to a person
/// (privileged, host access, Windows): the base is left to a person, naming the root.
pub fn left_alone_bases(before: &Before, rules: &Rules) -> BTreeMap<PathBuf, Vec<Exemption>> {
    let mut out: BTreeMap<PathBuf, Vec<Exemption>> = BTreeMap::new();
    for (root, render) in &before.renders {
        let Ok(stream) = render else { continue };
        let Ok(tree) = yaml_splice::Tree::parse(stream) else {
            continue;
        };
        let plan = crate::policy::plan(&tree, rules);
        let origins = origins_by_object(stream);
        for skipped in &plan.skipped {
            let workload = &plan.workloads[skipped.workload];
            let Some(origin) = origins.get(&(workload.kind.clone(), workload.name.clone())) else {
                continue;
            };
            let Some(file) = before.copy.origin_file(&root_dir(root), origin) else {
                continue;
            };
            // The base's own name: the rendered one may carry a prefix or suffix.
            let base_name = objects_in_file(&file)
                .into_iter()
                .filter(|o| o.kind == workload.kind && workload.name.contains(&o.name))
                .max_by_key(|o| o.name.len())
                .map_or(workload.name.clone(), |o| o.name);
            out.entry(file).or_default().push(Exemption {
                kind: workload.kind.clone(),
                name: base_name,
                namespace: None,
                container: None,
                controls: ControlSet::All,
                reason: format!(
                    "left to a person, as {} renders it as a pod to leave alone: {}",
                    root.display(),
                    skipped.reason
                ),
            });
        }
    }
    out
}

/// The origin annotation's path of each rendered object, by kind and name.
fn origins_by_object(stream: &str) -> BTreeMap<(String, String), String> {
    let Ok(docs) = crate::verify::load_all(stream) else {
        return BTreeMap::new();
    };
    docs.iter()
        .filter_map(|d| {
            let kind = d.get("kind")?.as_str()?.to_string();
            let name = d.get("metadata")?.get("name")?.as_str()?.to_string();
            Some(((kind, name), origin_of(d)?))
        })
        .collect()
}

/// Builds every root after the edits and judges each against its render before.
pub fn after(
    before: Before,
    app: &App,
    forest: &Forest,
    reports: &mut [FileReport],
    rules: &Rules,
    releases: &super::releases::ReleaseEdits<'_>,
) {
    let mut changed_root = false;
    for report in reports.iter() {
        if let Status::Changed { new_text } = &report.status {
            if let Err(e) = before.copy.write(&report.path, new_text) {
                return fail_changed(
                    reports,
                    &format!("the render check could not write its copy: {e}"),
                );
            }
            changed_root |= app.roots.iter().any(|r| *r == normalise(&report.path));
        }
    }
    if changed_root {
        for root in &app.roots {
            let _ = before.copy.annotate_origins(root, false);
        }
    }
    let any_change = reports
        .iter()
        .any(|r| matches!(r.status, Status::Changed { .. }));
    // A root without a render before is not built again: there is nothing to judge against.
    let failed_before = |root: &Path| {
        before
            .renders
            .iter()
            .find(|(r, _)| r == root)
            .and_then(|(_, render)| render.as_ref().err().cloned())
    };
    let afters = if any_change {
        build_all(&before.engine, &before.copy, &app.roots, &failed_before)
    } else {
        before.renders.clone()
    };
    for ((root, was), (_, now)) in before.renders.iter().zip(afters) {
        match (was, now) {
            (Err(BuildError::TimedOut(limit)), _) => {
                // Not proven, so not written: the same build may well hang in the pipeline.
                let message = format!(
                    "{}: kustomize build did not finish in {} (--engine-timeout): not render-checked; nothing written for it",
                    root.display(),
                    crate::process::seconds(*limit)
                );
                fail_changed(reports, &message);
                note_on(reports, root, message);
            }
            (Err(e), _) => note_on(reports, root, unbuildable(root, e)),
            (Ok(_), Err(e)) => fail_changed(
                reports,
                &format!(
                    "{} built before the edits and fails after: {e}",
                    root.display()
                ),
            ),
            (Ok(was), Ok(now)) => {
                let (was_judged, now_judged) = (
                    without(was, &releases.proven_elsewhere),
                    without(&now, &releases.proven_elsewhere),
                );
                let again = || {
                    build_unedited(&before.engine, app, forest, root)
                        .map(|s| without(&s, &releases.proven_elsewhere))
                };
                match judge(&was_judged, &now_judged, rules, &origin_of, &again) {
                    Ok(verdict) => {
                        if let Some(note) = verdict.not_compared_note("build") {
                            note_on(reports, root, format!("{}: {note}", root.display()));
                        }
                        record(reports, &before.copy, forest, root, verdict.problems)
                    }
                    Err(e) => fail_changed(reports, &format!("{}: {e}", root.display())),
                }
                if let Some(check) = &releases.check {
                    record_verdicts(reports, check(root, was, &now));
                }
            }
        }
    }
}

/// The stream without the objects (kind, name) whose changes another check proves: a
/// release's values are judged by rendering its chart, and a ConfigMap of values (generated
/// with a hash suffix) with it.
fn without(stream: &str, objects: &[(String, String)]) -> String {
    if objects.is_empty() {
        return stream.to_string();
    }
    let Ok(docs) = crate::verify::load_all(stream) else {
        return stream.to_string();
    };
    fn field(v: Option<&yaml_serde::Value>) -> &str {
        v.and_then(|v| v.as_str()).unwrap_or("")
    }
    let proven = |doc: &yaml_serde::Value| {
        let kind = field(doc.get("kind"));
        let name = field(doc.get("metadata").and_then(|m| m.get("name")));
        objects.iter().any(|(k, n)| {
            k == kind
                && (n == name
                    || (kind == "ConfigMap" && crate::kustomization::is_hashed_name(name, n)))
        })
    };
    docs.iter()
        .filter(|d| !proven(d))
        .filter_map(|d| yaml_serde::to_string(d).ok())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The releases' verdicts: a broken one fails every changed file of the app.
fn record_verdicts(reports: &mut [FileReport], verdicts: Vec<super::releases::Verdict>) {
    for verdict in verdicts {
        if let Some(why) = &verdict.broken {
            fail_changed(reports, why);
        }
        let file = normalise(&verdict.file);
        if let Some(report) = reports.iter_mut().find(|r| normalise(&r.path) == file) {
            report.notes.extend(verdict.notes);
            for pod in verdict.pods {
                report.add_rendered_pod(pod);
            }
            report.rendered.extend(verdict.streams);
        }
    }
}

/// The root built once more from a fresh copy of the unedited app (the judge asks for it only
/// when the build after the edits differs outside the securityContexts).
fn build_unedited(
    engine: &Engine,
    app: &App,
    forest: &Forest,
    root: &Path,
) -> Result<String, String> {
    let copy = Copy::of(app, forest).map_err(|e| e.to_string())?;
    let has_metadata = forest
        .kustomizations
        .get(root)
        .is_some_and(|k| k.has_build_metadata);
    copy.annotate_origins(root, has_metadata)
        .map_err(|e| e.to_string())?;
    let dir = copy.path_of(&root_dir(root)).map_err(|e| e.to_string())?;
    engine
        .build(&dir, &copy.engine_tmp())
        .map_err(|e| copy.in_user_terms(&e.to_string()))
}

/// Says on the app's first root why the check did not run, or fails its changed files.
pub fn unchecked(reason: Unchecked, app: &App, reports: &mut [FileReport]) {
    let Some(root) = app.roots.first() else {
        return;
    };
    match reason {
        Unchecked::Off => {}
        Unchecked::NoEngine => {
            if !SKIP_SAID.swap(true, Ordering::Relaxed) {
                let message = "render check skipped: neither `kustomize` nor `kubectl` is on PATH (install one, or use --kustomize-bin; --render always makes this an error)".to_string();
                note_on(reports, root, message);
            }
        }
        Unchecked::CopyFailed(message) => {
            fail_changed(reports, &message);
            note_on(reports, root, message);
        }
        Unchecked::Error(message) => {
            fail_changed(reports, &message);
            if let Some(r) = reports.iter_mut().find(|r| normalise(&r.path) == *root) {
                if !matches!(r.status, Status::Failed(_)) {
                    r.status = Status::Failed(FileError::at_start(message));
                }
            }
        }
    }
}

fn unbuildable(root: &Path, error: &BuildError) -> String {
    if let BuildError::Offline(remotes) = error {
        return format!(
            "{} is not built with --offline: it reads remote resources ({}): not render-checked",
            root.display(),
            remotes.join(", ")
        );
    }
    let error = error.to_string();
    if error.contains("--enable-helm") {
        return format!("{} inflates `helmCharts`, which Kustomize builds only with --enable-helm and a helm binary: not render-checked with Kustomize (each entry's chart is render-checked with Helm's engine)", root.display());
    }
    let offline = ["github.com", "https://", "git@", "dial tcp", "fetch"]
        .iter()
        .any(|w| error.contains(w));
    if offline {
        format!("{} does not build here (remote resources need the network): not render-checked; {error}", root.display())
    } else {
        format!(
            "{} does not build, before any edit: not render-checked; {error}",
            root.display()
        )
    }
}

fn note_on(reports: &mut [FileReport], file: &Path, message: String) {
    if let Some(r) = reports.iter_mut().find(|r| normalise(&r.path) == *file) {
        r.notes.push(Note {
            workload: Note::FILE,
            container: None,
            kind: NoteKind::Risk,
            message,
            line: 1,
        });
    }
}

/// Puts each problem in the report of the file the object came from, else the root's.
fn record(
    reports: &mut [FileReport],
    copy: &Copy,
    forest: &Forest,
    root: &Path,
    problems: Vec<Problem>,
) {
    let broken: Vec<String> = problems
        .iter()
        .filter_map(|p| match &p.kind {
            ProblemKind::Broken(why) => Some(format!(
                "in the render of {}, {} {why}",
                root.display(),
                p.object
            )),
            ProblemKind::Short { .. } => None,
        })
        .collect();
    if let Some(first) = broken.first() {
        fail_changed(reports, first);
    }
    let mut short: BTreeMap<(Option<PathBuf>, String), Vec<Problem>> = BTreeMap::new();
    for p in problems {
        if matches!(p.kind, ProblemKind::Short { .. }) {
            let origin = p
                .origin
                .as_deref()
                .and_then(|o| copy.origin_file(&root_dir(root), o));
            short
                .entry((origin, p.object.to_string()))
                .or_default()
                .push(p);
        }
    }
    for ((origin, object), problems) in short {
        let (kind, name) = object.split_once('/').unwrap_or((&object, ""));
        let patches = forest.patches_meeting(root, kind, name);
        record_short(
            reports,
            root,
            origin.as_deref(),
            &object,
            &problems,
            &patches,
        );
    }
}

/// One rendered object that falls short: a workload with its findings (not fixable by an edit
/// of this file) and one note, in the origin file's report when it is part of the run.
fn record_short(
    reports: &mut [FileReport],
    root: &Path,
    origin: Option<&Path>,
    object: &str,
    problems: &[Problem],
    patches: &[String],
) {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let in_origin = origin.and_then(|o| {
        let o = canonical(o)?;
        reports
            .iter()
            .position(|r| canonical(&r.path).as_deref() == Some(o.as_path()))
    });
    let at_root = reports.iter().position(|r| normalise(&r.path) == root);
    let Some(index) = in_origin.or(at_root) else {
        return;
    };
    let report = &mut reports[index];
    let (kind, name) = object.split_once('/').unwrap_or((object, ""));
    // The file's own workload when it has it (the rendered name may carry a prefix).
    let own = report
        .workloads
        .iter()
        .position(|w| w.kind == kind && name.contains(&w.name));
    let workload = own.unwrap_or_else(|| {
        report.add_workload(kind, name, 1);
        report.workloads.len() - 1
    });
    let line = report.workloads[workload].line;
    let mut controls: Vec<String> = Vec::new();
    for p in problems {
        controls.extend(p.kind.short_label());
        report.findings.extend(p.kind.short_finding(workload, line));
    }
    controls.dedup();
    report.notes.push(Note {
        workload,
        container: None,
        kind: NoteKind::Risk,
        message: format!(
            "renders short of the baseline: {} builds {object} without {}{}",
            root.display(),
            controls.join(", "),
            match patches {
                [] => " (something in this build undoes the fix; look at what it changes)".to_string(),
                _ => format!("; the patches this build applies to it: {}", patches.join(", ")),
            }
        ),
        line,
    });
}
