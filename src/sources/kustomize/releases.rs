//! The GitOps releases a Kustomize app builds: each Flux `HelmRelease` or Argo CD
//! `Application` in a root's build, with the files that supply its values (the file that
//! declares it, the strategic-merge patch files of the root that meet it, the root's
//! `configMapGenerator` files). Planning a release is the GitOps source's business: the
//! pipeline hands in a function ([`PlanReleases`]). This module gathers what that function needs
//! from the builds before the edits, and carries its edits back into the app's reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::policy::Note;
use crate::report::{FileError, FileReport, Status};

use super::build::root_dir;
use super::forest::{App, Forest};
use super::model::{GeneratedFile, PatchSource};
use super::render::{origin_of, Before};

/// The kinds a GitOps release is declared as.
const RELEASE_KINDS: [&str; 3] = ["HelmRelease", "Application", "ApplicationSet"];

/// A release as one root builds it.
pub struct BuiltRelease {
    pub root: PathBuf,
    /// The object as built (base, patches, name prefixes and namespaces applied).
    pub object: serde_json::Value,
    /// The root's whole build (the ConfigMaps a release takes values from are in it).
    pub stream: Arc<String>,
    /// The file that declares it.
    pub base: PathBuf,
    /// The strategic-merge patches of the root that meet it, the last applied first.
    pub patches: Vec<PatchRef>,
    /// The other patches that meet it (JSON 6902), as `where (kustomization:line)`.
    pub other_patches: Vec<String>,
    /// The `configMapGenerator` files of the root.
    pub generated: Vec<GeneratedFile>,
    /// Whether the app has other roots (reports then name the root).
    pub one_of_several: bool,
}

/// A strategic-merge patch: a file, or a string in a kustomization (the line of its entry).
#[derive(Clone, Debug, PartialEq)]
pub enum PatchRef {
    File(PathBuf),
    Inline { kustomization: PathBuf, line: usize },
}

/// Plans the releases the app's roots build.
pub type PlanReleases<'a> = dyn Fn(&[BuiltRelease]) -> ReleaseEdits<'a> + Sync + 'a;

/// What the releases of an app come to.
#[derive(Default)]
pub struct ReleaseEdits<'a> {
    pub files: Vec<FileEdit<'a>>,
    /// The built objects whose changes `check` proves (the releases, and the ConfigMaps their
    /// values come from), as kind and name: the Kustomize judge leaves them out.
    pub proven_elsewhere: Vec<(String, String)>,
    pub check: Option<Box<CheckReleases<'a>>>,
}

/// Judges the releases of a root (its path, its builds before and after the edits).
pub type CheckReleases<'a> = dyn Fn(&Path, &str, &str) -> Vec<Verdict> + Sync + 'a;

/// The verdict on one release of a root: broken (nothing of the app is written), or notes and
/// the rendered pods that fall short, for the file that declares it.
pub struct Verdict {
    pub file: PathBuf,
    pub broken: Option<String>,
    pub notes: Vec<Note>,
    pub pods: Vec<crate::report::RenderedPod>,
    /// The release's renders before and after, when the run keeps them.
    pub streams: Option<crate::report::RenderedStreams>,
}

/// Edits a file's current text.
pub type EditText<'a> = dyn Fn(&str) -> Result<String, FileError> + Sync + 'a;

/// What one file of the app gets from its releases.
pub struct FileEdit<'a> {
    pub path: PathBuf,
    /// Workloads, findings, notes and skipped paths for the file's report; a failed status
    /// fails the file.
    pub items: FileReport,
    pub edit: Option<Box<EditText<'a>>>,
    /// The folder whose service the file's changes go with in `pr`: a patch or values file
    /// edited for one release goes with that release's file.
    pub service_dir: Option<PathBuf>,
}

/// The releases each root of the app builds, before the edits.
pub fn built(before: &Before, app: &App, forest: &Forest) -> Vec<BuiltRelease> {
    let mut out = Vec::new();
    for (root, render) in before.renders() {
        let Ok(stream) = render else { continue };
        if !RELEASE_KINDS.iter().any(|k| stream.contains(k)) {
            continue;
        }
        let Ok(docs) = crate::verify::load_all(stream) else {
            continue;
        };
        let stream = Arc::new(stream.clone());
        for doc in docs {
            let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            if !RELEASE_KINDS.contains(&kind) {
                continue;
            }
            let Some(base) = origin_of(&doc)
                .and_then(|origin| before.copy().origin_file(&root_dir(root), &origin))
                .and_then(|file| file_of_app(app, &file))
            else {
                continue;
            };
            let name = doc
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string();
            let (patches, other_patches) = patches_meeting(forest, root, kind, &name);
            out.push(BuiltRelease {
                root: root.clone(),
                object: serde_json::to_value(&doc).unwrap_or_default(),
                stream: stream.clone(),
                base,
                patches,
                other_patches,
                generated: generated_of(forest, root),
                one_of_several: app.roots.len() > 1,
            });
        }
    }
    out
}

/// The app's own name for a file an origin annotation names (the same file, as the
/// kustomizations spell it).
fn file_of_app(app: &App, file: &Path) -> Option<PathBuf> {
    let wanted = std::fs::canonicalize(file).ok()?;
    app.roles
        .keys()
        .find(|f| std::fs::canonicalize(f).is_ok_and(|c| c == wanted))
        .cloned()
}

/// The strategic-merge patches that a build of `root` applies to the object, the last applied
/// first, and the JSON 6902 patches that meet it, described.
fn patches_meeting(
    forest: &Forest,
    root: &Path,
    kind: &str,
    name: &str,
) -> (Vec<PatchRef>, Vec<String>) {
    let mut patches = Vec::new();
    let mut others = Vec::new();
    for (kustomization, patch) in forest.patches_of_object(root, kind, name) {
        let found = match &patch.source {
            PatchSource::File(file) if is_strategic_merge(file) => PatchRef::File(file.clone()),
            PatchSource::Inline(_) if inline_is_strategic_merge(&kustomization, patch.line) => {
                PatchRef::Inline {
                    kustomization: kustomization.clone(),
                    line: patch.line,
                }
            }
            PatchSource::File(file) => {
                others.push(format!(
                    "the JSON patch {} ({}:{})",
                    file.display(),
                    kustomization.display(),
                    patch.line
                ));
                continue;
            }
            _ => {
                others.push(format!(
                    "an inline JSON patch ({}:{})",
                    kustomization.display(),
                    patch.line
                ));
                continue;
            }
        };
        if !patches.contains(&found) {
            patches.push(found);
        }
    }
    (patches, others)
}

/// Whether the inline patch of the entry at `line` of a kustomization holds objects.
fn inline_is_strategic_merge(kustomization: &Path, line: usize) -> bool {
    std::fs::read_to_string(kustomization)
        .ok()
        .and_then(|text| {
            let tree = yaml_splice::Tree::parse(&text).ok()?;
            let node = crate::kustomization::inline_patch_at(&tree, line)?;
            let patch = tree.as_str(yaml_splice::Ref::root(node))?.to_string();
            crate::verify::load_all(&patch).ok()
        })
        .is_some_and(|docs| !docs.is_empty() && docs.iter().all(|d| d.get("kind").is_some()))
}

/// A patch file of objects (a strategic-merge patch), not a JSON 6902 list of operations.
fn is_strategic_merge(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| crate::verify::load_all(&text).ok())
        .is_some_and(|docs| docs.iter().all(|d| d.get("kind").is_some()))
}

/// The generator files of the kustomizations a build of `root` reads.
fn generated_of(forest: &Forest, root: &Path) -> Vec<GeneratedFile> {
    forest
        .closure_of(root)
        .iter()
        .filter_map(|k| forest.kustomizations.get(k))
        .flat_map(|k| k.generated.iter().map(|g| g.item.clone()))
        .collect()
}

/// Says on each release of a file planned alone (the roots were not built) that what the
/// overlays set was not seen.
pub fn note_planned_alone(app: &App, reports: &mut [FileReport]) {
    use crate::policy::NoteKind;
    let resource = |r: &FileReport| {
        app.roles.get(&super::model::normalise(&r.path)) == Some(&super::forest::Role::Resource)
    };
    for report in reports.iter_mut().filter(|r| resource(r)) {
        let first = report
            .workloads
            .iter()
            .position(|w| RELEASE_KINDS.contains(&w.kind.as_str()));
        let Some(first) = first else { continue };
        let line = report.workloads[first].line;
        report.notes.push(Note {
            workload: first,
            container: None,
            kind: NoteKind::Risk,
            message: "planned on this file's own values: the Kustomize roots that include it were not built (the render check is off or has no engine), so what their overlays and generators set is not seen".into(),
            line,
        });
    }
}

/// Puts the releases' edits and report items into the app's reports: a file's edit applies to
/// its text as the other planning left it. Gives the service folder of each file whose
/// changes go with a release's file.
pub fn apply(
    edits: &mut ReleaseEdits<'_>,
    reports: &mut [FileReport],
) -> std::collections::BTreeMap<PathBuf, PathBuf> {
    let mut services = std::collections::BTreeMap::new();
    for file in edits.files.drain(..) {
        if let Some(dir) = &file.service_dir {
            services.insert(super::model::normalise(&file.path), dir.clone());
        }
        let Some(report) = reports
            .iter_mut()
            .find(|r| super::model::normalise(&r.path) == super::model::normalise(&file.path))
        else {
            continue;
        };
        absorb(report, file.items);
        let Some(edit) = file.edit else { continue };
        let current = match &report.status {
            Status::Changed { new_text } => new_text.clone(),
            Status::Unchanged => match &report.original {
                Some(text) => text.clone(),
                None => continue,
            },
            _ => continue,
        };
        report.status = match edit(&current) {
            Ok(new_text) if new_text == current => continue,
            Ok(new_text) => Status::Changed { new_text },
            Err(e) => Status::Failed(e),
        };
    }
    services
}

/// Adds a fragment's workloads, findings, notes and skipped paths to a report (the indices
/// moved past the report's own workloads); a failed fragment fails the report.
fn absorb(report: &mut FileReport, items: FileReport) {
    let offset = report.workloads.len();
    let moved = |w: usize| if w == Note::FILE { w } else { w + offset };
    report.workloads.extend(items.workloads);
    report
        .findings
        .extend(items.findings.into_iter().map(|mut f| {
            f.workload = moved(f.workload);
            f
        }));
    report.notes.extend(items.notes.into_iter().map(|mut n| {
        n.workload = moved(n.workload);
        n
    }));
    report
        .skipped_pods
        .extend(items.skipped_pods.into_iter().map(|mut s| {
            s.workload = moved(s.workload);
            s
        }));
    if let Status::Failed(e) = items.status {
        report.status = Status::Failed(e);
    }
}
