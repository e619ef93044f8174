//! Releases as a Kustomize root builds them (the common Flux layout: a `HelmRelease` in a base,
//! overlays per cluster that patch its values, values files turned into ConfigMaps by a
//! `configMapGenerator`). Each release is planned on the object the build produces, so what
//! the overlays set counts; then each value it needs is written where it is supplied: the
//! patch that sets that key (the last applied first), else the base's inline values, else the
//! generated values file that sets it. A base that several roots build gets each edit once.
//! The proof renders the chart with the values each root builds before and after the edits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use yaml_splice::{Ref, Tree};

use crate::policy::{Note, NoteKind, Workload};
use crate::report::{FileError, FileReport, Settings, Status};

use crate::kustomization::{inline_patch_at, is_hashed_name};

use super::chart::{self, Located, Repository};
use super::index::Index;
use super::model::{self, Release, ReleaseKind, ValuesFrom};
use super::release::{self, ReadChart};
use super::substitute;
use super::values::{lookup, merge, Need};

/// A release one root builds, with the files that may supply its values.
pub struct Input<'a> {
    pub root: &'a Path,
    pub object: &'a Value,
    pub stream: &'a str,
    pub base: &'a Path,
    /// Strategic-merge patches that meet it, the last applied first.
    pub patches: &'a [PatchAt],
    /// Other patches that meet it, described (they are not edited).
    pub other_patches: &'a [String],
    /// Generator files of the root: ConfigMap name, key, file.
    pub generated: &'a [(String, String, PathBuf)],
    pub one_of_several: bool,
}

/// A strategic-merge patch: a file, or a string in a kustomization (the line of its entry).
#[derive(Clone, Debug, PartialEq)]
pub enum PatchAt {
    File(PathBuf),
    Inline { kustomization: PathBuf, line: usize },
}

impl PatchAt {
    /// The file the patch is written in.
    fn file(&self) -> &Path {
        match self {
            PatchAt::File(file) => file,
            PatchAt::Inline { kustomization, .. } => kustomization,
        }
    }

    /// The patch's text: the file's, or the inline string's.
    fn text(&self) -> Result<String, String> {
        let text = std::fs::read_to_string(self.file()).map_err(|e| e.to_string())?;
        let PatchAt::Inline { line, .. } = self else {
            return Ok(text);
        };
        let tree = Tree::parse(&text).map_err(|e| e.message)?;
        let node = inline_patch_at(&tree, *line).ok_or("the inline patch is no longer there")?;
        Ok(tree.as_str(Ref::root(node)).unwrap_or_default().to_string())
    }
}

/// Where in a file a value goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Site {
    /// The inline values of the release `kind`/`name` the file declares.
    Release { kind: ReleaseKind, name: String },
    /// The mapping at `path` of document `document` (a patch's `spec.values`, or a values
    /// file's root when `path` is empty).
    Mapping { document: usize, path: Vec<String> },
    /// The mapping at `path` of document `document` of the inline patch whose entry is at
    /// `line` of a kustomization.
    InlinePatch {
        line: usize,
        document: usize,
        path: Vec<String>,
    },
    /// The `spec.postRenderers` of the release `kind`/`name` the file declares (a new key).
    PostRenderers {
        kind: ReleaseKind,
        name: String,
        patches: Vec<super::post_render::Patch>,
    },
}

/// The needs of each place of a file.
pub type Sites = Vec<(Site, Vec<Need>)>;

/// What the releases of an app come to.
#[derive(Default)]
pub struct Planned {
    /// Per file: report items, and what goes where.
    pub files: BTreeMap<PathBuf, (FileReport, Sites)>,
    /// The release files whose values each file supplies.
    pub owners: BTreeMap<PathBuf, Vec<PathBuf>>,
    /// The built objects whose changes the render of their chart proves (kind, name).
    pub proven_elsewhere: Vec<(String, String)>,
    pub renders: Vec<Render>,
}

/// What the render check of a release of a root needs.
pub struct Render {
    pub root: PathBuf,
    pub kind: String,
    pub name: String,
    pub base: PathBuf,
    pub release: Release,
    pub chart: Located,
    pub hardened: Option<Value>,
    /// Flux's post-build variables of the root.
    pub vars: Option<substitute::Vars>,
    /// The post-renderer patches the edits add.
    pub post: Option<release::PostRender>,
    /// The name it is installed under, when known.
    pub install_name: Option<String>,
    pub workload: usize,
    pub line: usize,
}

/// Plans every release the roots build.
pub fn plan(
    inputs: &[Input],
    repo: &Repository,
    read_chart: &ReadChart<'_>,
    settings: &Settings,
) -> Planned {
    let mut planned = Planned::default();
    for input in inputs {
        if let Err(e) = plan_one(input, repo, read_chart, settings, &mut planned) {
            let (report, _) = file_entry(&mut planned, input.base);
            report.status = Status::Failed(e);
        }
    }
    planned
}

fn file_entry<'p>(planned: &'p mut Planned, file: &Path) -> &'p mut (FileReport, Sites) {
    planned
        .files
        .entry(file.to_path_buf())
        .or_insert_with(|| (FileReport::new(file, Status::Unchanged), vec![]))
}

fn plan_one(
    input: &Input,
    repo: &Repository,
    read_chart: &ReadChart<'_>,
    settings: &Settings,
    planned: &mut Planned,
) -> Result<(), FileError> {
    let text =
        yaml_serde::to_string(input.object).map_err(|e| FileError::at_start(e.to_string()))?;
    let base_text = std::fs::read_to_string(input.base)
        .map_err(|e| FileError::at_start(format!("cannot be read: {e}")))?;
    let base_tree = Tree::parse(&base_text)?;
    let base_releases = model::releases(&base_tree);
    let vars = vars_for(input.root, repo);
    let text = match &vars {
        Some(vars) if !substitute::disabled(input.object) => {
            let (text, mut unresolved) = substitute::apply(&text, vars);
            unresolved.extend(substitute::apply(input.stream, vars).1);
            note_unresolved(planned, input, vars, &unresolved);
            text
        }
        _ => text,
    };
    let built_tree = Tree::parse(&text)?;
    let mut index = repo.index.clone();
    index.add(input.root, &substituted(input.stream, vars.as_ref()));
    let repo = Repository {
        index: &index,
        ..*repo
    };
    for mut release in model::releases(&built_tree) {
        let Some(base_release) = base_of(&release, &base_releases) else {
            continue;
        };
        let line = release::site_line(&base_tree, base_release);
        let built_name = release.name.clone();
        if input.one_of_several {
            release.name = format!("{} ({})", release.name, root_label(input.root));
        }
        let inline = release::inline_values(&built_tree, &release)?;
        let (report, _) = file_entry(planned, input.base);
        let object = serde_json::to_value(
            crate::verify::load_all(&text)
                .ok()
                .and_then(|d| d.into_iter().next())
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        let install_name = release::install_name(&release, &object);
        let Some(decided) = release::decide(
            &release,
            (line, install_name.as_deref()),
            inline.clone(),
            &repo,
            read_chart,
            settings,
            report,
        )?
        else {
            continue;
        };
        note_other_patches(report, decided.first, line, input.other_patches);
        let Some(post) = release::post_render_step(&release, &object, &decided, settings, report)
        else {
            continue;
        };
        let (base_inline, _) = (release::inline_values(&base_tree, base_release)?.1, ());
        let suppliers = Suppliers::read(input, &release, &base_inline)?;
        for need in decided.needs.iter().cloned() {
            let (file, site) = suppliers.of(&need, base_release);
            let owners = planned.owners.entry(file.clone()).or_default();
            if !owners.iter().any(|o| o == input.base) {
                owners.push(input.base.to_path_buf());
            }
            let (_, sites) = file_entry(planned, &file);
            add_need(sites, site, need);
        }
        if !decided.needs.is_empty() {
            let (report, _) = file_entry(planned, input.base);
            report.notes.push(Note {
                workload: decided.first,
                container: None,
                kind: NoteKind::Added,
                message: format!(
                    "the {} `{}` as {} builds it gets what its effective values (chart {}) lack at {}{}",
                    release.kind.noun(),
                    built_name,
                    root_label(input.root),
                    decided.located.origin,
                    release::needed_paths(&decided.wired, &decided.needs).join(", "),
                    suppliers.said(&decided.needs, base_release, input.base)
                ),
                line,
            });
        }
        planned
            .proven_elsewhere
            .push((release.kind.name().to_string(), built_name.clone()));
        for from in &release.values_from {
            if let ValuesFrom::Reference { kind, name, .. } = from {
                planned.proven_elsewhere.push((kind.clone(), name.clone()));
            }
        }
        if let Some(post) = &post {
            let site = Site::PostRenderers {
                kind: base_release.kind,
                name: base_release.name.clone(),
                patches: post.patches.clone(),
            };
            let (_, sites) = file_entry(planned, input.base);
            add_post_renderers(sites, site);
        }
        planned.renders.push(Render {
            install_name,
            root: input.root.to_path_buf(),
            kind: release.kind.name().to_string(),
            name: built_name,
            base: input.base.to_path_buf(),
            release,
            chart: decided.located,
            hardened: decided.layers.hardened().cloned(),
            vars: vars.clone(),
            post,
            workload: decided.first,
            line,
        });
    }
    Ok(())
}

/// The post-build variables of the Flux `Kustomization` that builds the root's folder (its
/// `spec.path`, from the repository's root), if one does.
fn vars_for(root: &Path, repo: &Repository) -> Option<substitute::Vars> {
    let folder = std::fs::canonicalize(
        root.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
    .ok()?;
    let repo_root = repo.root.unwrap_or(Path::new("."));
    let lookup =
        |kind: &str, namespace: Option<&str>, name: &str| repo.index.data(kind, namespace, name);
    repo.index
        .flux_kustomizations()
        .iter()
        .find_map(|(file, object)| {
            let object = serde_json::to_value(object).ok()?;
            let path = object
                .pointer("/spec/path")
                .and_then(Value::as_str)
                .unwrap_or("./");
            let builds = std::fs::canonicalize(repo_root.join(path)).ok()? == folder;
            builds
                .then(|| substitute::vars_of(&object, file, &lookup))
                .flatten()
        })
}

/// The stream with the variables replaced (objects that opt out kept as they are).
fn substituted(stream: &str, vars: Option<&substitute::Vars>) -> String {
    let Some(vars) = vars else {
        return stream.to_string();
    };
    let Ok(docs) = crate::verify::load_all(stream) else {
        return substitute::apply(stream, vars).0;
    };
    docs.iter()
        .filter_map(|doc| {
            let text = yaml_serde::to_string(doc).ok()?;
            let json = serde_json::to_value(doc).unwrap_or_default();
            Some(match substitute::disabled(&json) {
                true => text,
                false => substitute::apply(&text, vars).0,
            })
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Risk notes for the variables nothing resolves, on the line of the release's file (base,
/// patch or generated values file) that uses one; and for the variable sources that are not in
/// the repository, on the base.
fn note_unresolved(
    planned: &mut Planned,
    input: &Input,
    vars: &substitute::Vars,
    unresolved: &[String],
) {
    let files: Vec<&Path> = std::iter::once(input.base)
        .chain(input.patches.iter().map(PatchAt::file))
        .chain(input.generated.iter().map(|(_, _, f)| f.as_path()))
        .collect();
    for name in unresolved {
        let used = format!("${{{name}");
        let found = files.iter().find_map(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            let line = text.lines().position(|l| l.contains(&used))?;
            Some((file.to_path_buf(), line + 1))
        });
        let Some((file, line)) = found else { continue };
        let (report, _) = file_entry(planned, &file);
        let message = format!("`${{{name}}}` is set by no variable of the Flux Kustomization in {} (postBuild) and has no default: Flux puts nothing there, and so does the plan", vars.from);
        if !report.notes.iter().any(|n| n.message == message) {
            report.notes.push(risk(Note::FILE, line, message));
        }
    }
    let (report, _) = file_entry(planned, input.base);
    for missing in &vars.missing {
        let message = format!("the Flux Kustomization in {} takes variables from the {missing} (postBuild.substituteFrom), which is not in the files of this run: its variables are planned as unset", vars.from);
        if !report.notes.iter().any(|n| n.message == message) {
            report.notes.push(risk(Note::FILE, 1, message));
        }
    }
}

fn risk(workload: usize, line: usize, message: String) -> Note {
    Note {
        workload,
        container: None,
        kind: NoteKind::Risk,
        message,
        line,
    }
}

/// A root as reports name it: its folder.
fn root_label(root: &Path) -> String {
    match root.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.display().to_string(),
        _ => ".".to_string(),
    }
}

/// The release of the base file that the built one comes from: same kind, and the built
/// name holds the base's (a prefix or suffix may have joined it).
fn base_of<'r>(built: &Release, base: &'r [Release]) -> Option<&'r Release> {
    base.iter()
        .filter(|r| r.kind == built.kind && built.name.contains(&r.name))
        .max_by_key(|r| r.name.len())
}

fn add_need(sites: &mut Vec<(Site, Vec<Need>)>, site: Site, need: Need) {
    let at = match sites.iter().position(|(s, _)| *s == site) {
        Some(at) => at,
        None => {
            sites.push((site, vec![]));
            sites.len() - 1
        }
    };
    let needs = &mut sites[at].1;
    let path = |n: &Need| match n {
        Need::Set(p, _) | Need::Append(p, _) => p.clone(),
    };
    // A base several roots build gets each value once (the first root's wins).
    if !needs.iter().any(|n| *n == need || path(n) == path(&need)) {
        needs.push(need);
    }
}

/// A release's post-renderers, once (several roots of one base plan the same patches; the
/// first root's are kept when they differ, and the render check of each root judges them).
fn add_post_renderers(sites: &mut Sites, site: Site) {
    let same_release = |s: &Site| match (s, &site) {
        (
            Site::PostRenderers { kind, name, .. },
            Site::PostRenderers {
                kind: k2, name: n2, ..
            },
        ) => kind == k2 && name == n2,
        _ => false,
    };
    if !sites.iter().any(|(s, _)| same_release(s)) {
        sites.push((site, vec![]));
    }
}

fn note_other_patches(report: &mut FileReport, workload: usize, line: usize, others: &[String]) {
    for other in others {
        report.notes.push(Note {
            workload,
            container: None,
            kind: NoteKind::Risk,
            message: format!(
                "{other} also changes this release: not edited here; check that it keeps the values the baseline sets"
            ),
            line,
        });
    }
}

/// The layers that may supply a release's values, as read from their files.
struct Suppliers {
    base_file: PathBuf,
    /// Patches (the last applied first): the patch, the document, the values path in it, and
    /// those values.
    patches: Vec<(PatchAt, usize, Vec<String>, Value)>,
    base: Value,
    /// Generated values files the release takes through `valuesFrom`, with their values.
    generated: Vec<(PathBuf, Value)>,
}

impl Suppliers {
    fn read(input: &Input, release: &Release, base: &Value) -> Result<Suppliers, FileError> {
        let mut patches = Vec::new();
        for patch in input.patches {
            let text = patch.text().map_err(|e| {
                let file = patch.file().display();
                FileError::at_start(format!("the patch in {file} cannot be read: {e}"))
            })?;
            let docs = crate::verify::load_all(&text)
                .map_err(|e| FileError::at_start(format!("{}: {e}", patch.file().display())))?;
            for (document, doc) in docs.iter().enumerate() {
                let doc = serde_json::to_value(doc).unwrap_or_default();
                let same_kind =
                    doc.get("kind").and_then(Value::as_str) == Some(release.kind.name());
                let name = doc
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                // An inline patch met the release through its target: its own name is not used.
                let named = release.name.contains(name) || matches!(patch, PatchAt::Inline { .. });
                if !same_kind || !named {
                    continue;
                }
                let path = values_path(release.kind);
                let values = lookup(&doc, &path.iter().map(String::as_str).collect::<Vec<_>>())
                    .cloned()
                    .unwrap_or(Value::Null);
                patches.push((patch.clone(), document, path, values));
            }
        }
        let mut generated = Vec::new();
        for from in &release.values_from {
            let ValuesFrom::Reference {
                kind,
                name,
                key,
                target_path: None,
                ..
            } = from
            else {
                continue;
            };
            if kind != "ConfigMap" {
                continue;
            }
            for (configmap, file_key, file) in input.generated {
                let same = configmap == name || is_hashed_name(name, configmap);
                if same && file_key == key {
                    let text = std::fs::read_to_string(file).unwrap_or_default();
                    let values = chart::parse_values(&text).unwrap_or(Value::Null);
                    generated.push((file.clone(), values));
                }
            }
        }
        Ok(Suppliers {
            base_file: input.base.to_path_buf(),
            patches,
            base: base.clone(),
            generated,
        })
    }

    /// The file and the place a need goes to: the last patch that sets the key, else the
    /// base if it does, else a generated values file that does; a key nobody sets goes to the
    /// base, or to the one generated values file when the release carries no values of its own.
    fn of(&self, need: &Need, base: &Release) -> (PathBuf, Site) {
        let path = match need {
            Need::Set(p, _) | Need::Append(p, _) => p,
        };
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        let base_site = || {
            (
                self.base_file.clone(),
                Site::Release {
                    kind: base.kind,
                    name: base.name.clone(),
                },
            )
        };
        for (patch, document, values_path, values) in &self.patches {
            if lookup(values, &keys).is_none() {
                continue;
            }
            let (document, path) = (*document, values_path.clone());
            let site = match patch {
                PatchAt::File(_) => Site::Mapping { document, path },
                PatchAt::Inline { line, .. } => Site::InlinePatch {
                    line: *line,
                    document,
                    path,
                },
            };
            return (patch.file().to_path_buf(), site);
        }
        if lookup(&self.base, &keys).is_some() {
            return base_site();
        }
        let root = |file: &PathBuf| {
            (
                file.clone(),
                Site::Mapping {
                    document: 0,
                    path: vec![],
                },
            )
        };
        if let Some((file, _)) = self
            .generated
            .iter()
            .find(|(_, v)| lookup(v, &keys).is_some())
        {
            return root(file);
        }
        // The base's own values source: an overlay's patch is not where a shared value goes.
        match self.generated.as_slice() {
            [(file, _)] if is_empty(&self.base) => root(file),
            _ => base_site(),
        }
    }

    /// Where the values go, for the note, when it is not only the base.
    fn said(&self, needs: &[Need], base: &Release, base_file: &Path) -> String {
        let mut files: Vec<PathBuf> = needs.iter().map(|n| self.of(n, base).0).collect();
        files.sort();
        files.dedup();
        if files.as_slice() == [base_file.to_path_buf()] {
            return String::new();
        }
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        format!(" (written in {})", names.join(", "))
    }
}

fn is_empty(values: &Value) -> bool {
    match values {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// The key path of a release's inline values in its object.
fn values_path(kind: ReleaseKind) -> Vec<String> {
    let keys: &[&str] = match kind {
        ReleaseKind::FluxHelmRelease => &["spec", "values"],
        _ => &["spec", "source", "helm", "valuesObject"],
    };
    keys.iter().map(|k| k.to_string()).collect()
}

/// Writes the needs of each site into a file's text.
pub fn write(text: &str, sites: &[(Site, Vec<Need>)]) -> Result<String, FileError> {
    let tree = Tree::parse(text)?;
    let mut changes = Vec::new();
    let mut splices = Vec::new();
    let mut ops = Vec::new();
    for (site, needs) in sites {
        match site {
            Site::Release { kind, name } => {
                let found = model::releases(&tree)
                    .into_iter()
                    .find(|r| r.kind == *kind && r.name == *name)
                    .ok_or_else(|| {
                        FileError::at_start(format!(
                            "the {} `{name}` is no longer here",
                            kind.name()
                        ))
                    })?;
                let line = release::site_line(&tree, &found);
                let written = release::write(&tree, &found, needs, line)?;
                changes.extend(written.changes);
                splices.extend(written.splices);
                ops.extend(written.ops);
            }
            Site::Mapping { document, path } => {
                let node = mapping_at(&tree, *document, path)?;
                let written = super::edit::changes(&tree, node, needs).map_err(|why| {
                    FileError::at_start(format!("the values here cannot take the baseline: {why}"))
                })?;
                changes.extend(written.into_iter().map(|(c, _)| c));
            }
            Site::InlinePatch {
                line,
                document,
                path,
            } => {
                let (op, outer) =
                    edit_inline_patch(&tree, *line, *document, path, needs).map_err(|why| {
                        FileError::at_start(format!(
                            "the inline patch at line {line} cannot take the baseline: {why}"
                        ))
                    })?;
                splices.extend(outer);
                ops.push(op);
            }
            Site::PostRenderers { .. } => {}
        }
    }
    // After the values: the new key joins an insertion into `spec` the values may have made.
    for (site, _) in sites {
        let Site::PostRenderers {
            kind,
            name,
            patches,
        } = site
        else {
            continue;
        };
        let found = model::releases(&tree)
            .into_iter()
            .find(|r| r.kind == *kind && r.name == *name)
            .ok_or_else(|| {
                FileError::at_start(format!("the {} `{name}` is no longer here", kind.name()))
            })?;
        let spec = release::spec_node(&tree, found.document).ok_or_else(|| {
            FileError::at_start("the release has no `spec` mapping for its post-renderers")
        })?;
        release::insert_into(
            &mut changes,
            spec,
            "postRenderers",
            super::post_render::as_post_renderers(patches),
        );
    }
    let outcome = crate::apply::edit(&tree, changes, splices, ops, None)?;
    Ok(outcome.text)
}

/// Edits the document inside an inline patch string (its entry at `line`): the outer splices,
/// and the meaning of the edit as a new value of the string.
fn edit_inline_patch(
    tree: &Tree,
    line: usize,
    document: usize,
    path: &[String],
    needs: &[Need],
) -> Result<(yaml_splice::SemanticOp, Vec<yaml_splice::Splice>), String> {
    let node = inline_patch_at(tree, line).ok_or("it is no longer there")?;
    let embedded = yaml_splice::Embedded::of(tree, node)?;
    let inner = Tree::parse(&embedded.text).map_err(|e| e.message)?;
    let values = mapping_at(&inner, document, path).map_err(|e| e.message)?;
    let changes = super::edit::changes(&inner, values, needs)?;
    let outcome = yaml_splice::apply_changes(&inner, changes.into_iter().map(|(c, _)| c).collect())
        .map_err(|e| e.to_string())?;
    crate::verify::verify_with(&inner, &outcome.text, &outcome.splices, &outcome.ops, None)
        .map_err(|e| format!("the edit does not verify: {e}"))?;
    let op = yaml_splice::SemanticOp::Set {
        doc: tree.document_of(node),
        path: tree.path_of(node),
        value: yaml_splice::NewValue::Str(outcome.text),
    };
    Ok((op, embedded.to_outer(&outcome.splices)))
}

fn mapping_at(tree: &Tree, document: usize, path: &[String]) -> Result<Ref, FileError> {
    let mut at = tree
        .docs
        .get(document)
        .and_then(|d| d.root)
        .map(Ref::root)
        .ok_or_else(|| FileError::at_start(format!("document {} is empty", document + 1)))?;
    for key in path {
        at = tree
            .get(at, key)
            .ok_or_else(|| FileError::at_start(format!("`{}` is not here", path.join("."))))?;
    }
    Ok(at)
}

/// The verdict on one release a root builds: for the file that declares it (its base), an error
/// that stops the app's writes, notes, and the rendered pods that fall short.
pub struct RootVerdict {
    pub base: PathBuf,
    pub broken: Option<String>,
    pub notes: Vec<Note>,
    pub pods: Vec<crate::report::RenderedPod>,
    /// The release's renders before and after, when the run keeps them.
    pub streams: Option<crate::report::RenderedStreams>,
}

impl RootVerdict {
    fn broken(base: &Path, why: String) -> RootVerdict {
        RootVerdict {
            base: base.to_path_buf(),
            broken: Some(why),
            notes: vec![],
            pods: vec![],
            streams: None,
        }
    }

    fn noted(base: &Path, note: Note) -> RootVerdict {
        RootVerdict {
            base: base.to_path_buf(),
            broken: None,
            notes: vec![note],
            pods: vec![],
            streams: None,
        }
    }
}

/// The verdict on each release a root builds, from its builds before and after the edits.
pub fn check(
    renders: &[Render],
    root: &Path,
    before: &str,
    after: &str,
    index: &Index,
    settings: &Settings,
    apply: &super::post_render::ApplyPatches<'_>,
) -> Vec<RootVerdict> {
    use super::render::{compare, Verdict};
    let mut out = Vec::new();
    let ours: Vec<&Render> = renders.iter().filter(|r| r.root == root).collect();
    if ours.is_empty() || settings.render.mode == crate::report::RenderMode::Never {
        return out;
    }
    let Some(engine) = crate::helm::engine::Engine::find(&settings.render) else {
        let why = "the render check of Helm releases could not run: `helm` is not on PATH (install Helm, or use --helm-bin)";
        if settings.render.mode == crate::report::RenderMode::Always {
            out.push(RootVerdict::broken(
                &ours[0].base,
                format!("{why} (--render always)"),
            ));
        }
        return out;
    };
    for render in ours {
        let values = |stream: &str| built_values(render, stream, root, index);
        let (was, now) = match (values(before), values(after)) {
            (Ok(was), Ok(now)) => (was, now),
            (_, Err(e)) | (Err(e), _) => {
                out.push(RootVerdict::broken(
                    &render.base,
                    format!(
                        "the {} `{}` as {} builds it: {e}",
                        render.kind,
                        render.name,
                        root_label(root)
                    ),
                ));
                continue;
            }
        };
        let note = |message: String| Note {
            workload: render.workload,
            container: None,
            kind: NoteKind::Risk,
            message,
            line: render.line,
        };
        let label = format!(
            "the {} `{}` as {} builds it",
            render.kind,
            render.name,
            root_label(root)
        );
        let post = render.post.as_ref().map(|p| (p, apply));
        let super::render::Compared {
            verdict,
            not_compared,
            streams,
        } = compare(
            &engine,
            &render.chart,
            &was,
            &now,
            &settings.rules,
            render.install_name.as_deref(),
            post,
        );
        if let (Some((before, after)), true) = (streams, settings.render.keep_streams) {
            out.push(RootVerdict {
                base: render.base.clone(),
                broken: None,
                notes: vec![],
                pods: vec![],
                streams: Some(crate::report::RenderedStreams {
                    origin: format!("{label} (chart {})", render.chart.origin),
                    files: vec![render.base.clone()],
                    before,
                    after,
                }),
            });
        }
        if let Some(message) = not_compared {
            out.push(RootVerdict::noted(
                &render.base,
                note(format!("{label}: {message}")),
            ));
        }
        match verdict {
            Verdict::Exact => {}
            Verdict::NotChecked(m) => out.push(RootVerdict::noted(
                &render.base,
                note(format!("{label}: {m}")),
            )),
            Verdict::Short(pods) => {
                let release = Workload {
                    kind: render.kind.clone(),
                    name: render.name.clone(),
                    document: 0,
                    line: render.line,
                    app: Some(render.release.name.clone()),
                    images: vec![],
                };
                let pods = pods
                    .into_iter()
                    .map(|pod| {
                        let mut pod =
                            pod.reported(&label, &render.chart, Some(&release), render.line);
                        pod.workload.name = format!("{} ({})", pod.workload.name, root_label(root));
                        pod
                    })
                    .collect();
                out.push(RootVerdict {
                    base: render.base.clone(),
                    broken: None,
                    notes: vec![],
                    pods,
                    streams: None,
                });
            }
            Verdict::Broken(why) => {
                out.push(RootVerdict::broken(&render.base, format!("{label}: {why}")))
            }
        }
    }
    out
}

/// The values a root's build installs the release with: the chart's defaults as this run
/// leaves them, the `valuesFrom` objects of the build, the built inline values.
fn built_values(
    render: &Render,
    stream: &str,
    root: &Path,
    index: &Index,
) -> Result<Value, String> {
    let docs = crate::verify::load_all(stream).map_err(|e| e.to_string())?;
    let object = docs
        .iter()
        .find(|d| {
            d.get("kind").and_then(|k| k.as_str()) == Some(render.kind.as_str())
                && d.get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(|n| n.as_str())
                    == Some(render.name.as_str())
        })
        .ok_or("it is no longer built")?;
    let text = yaml_serde::to_string(object).map_err(|e| e.to_string())?;
    let tree = Tree::parse(&text).map_err(|e| e.message)?;
    let release = model::releases(&tree)
        .into_iter()
        .find(|r| r.kind == render.release.kind && r.name == render.name)
        .ok_or("it no longer declares the release")?;
    let mut index = index.clone();
    index.add(root, stream);
    let below = chart::values_from(&release, &render.chart, &index)?;
    let (_, inline) = release::inline_values(&tree, &release).map_err(|e| e.message)?;
    let mut values = render
        .hardened
        .clone()
        .unwrap_or(Value::Object(Default::default()));
    merge(&mut values, &below);
    merge(&mut values, &inline);
    Ok(values)
}
