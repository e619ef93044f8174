//! One release through the stages: its chart located and read, its effective values planned
//! ([`super::values`]), and what they need written into its inline values as edits of the
//! manifest ([`super::edit`]): changes of the mapping, or splices inside Argo's `values: |`
//! string. Findings and notes go to the file's report, one workload per wired values path.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use yaml_splice::{apply_changes, Change, NewValue, NodeId, Ref, SemanticOp, Splice, Tree};

use crate::policy::{Note, NoteKind, SkippedPod, Workload};
use crate::report::{FileError, FileReport, Settings};

use super::chart::{self, Located, Repository};
use super::model::{Release, ValuesSite};
use super::values::{self, merge, Need, Wired, WiredField};

/// What the pipeline hands in about a chart folder (read by the chart source, which this
/// source does not import): its default values, and how its templates wire a release's
/// effective values.
pub struct ChartFacts {
    pub defaults: Value,
    /// The chart's values.yaml as this run leaves it, when the run hardens the chart too (a
    /// chart in this repository): the release is planned on those defaults.
    pub hardened_defaults: Option<String>,
    pub wiring_for: Box<WiringFor>,
}

/// The chart's wiring resolved against a release's effective values: the values paths its
/// templates (and the helpers they include, a library chart's too) feed into
/// securityContexts, the fields written from single values keys, and the guardrails. The
/// effective values decide which keys a helper's `range` renders (the controllers and
/// containers of an app-template-like chart are the release's).
#[derive(Debug, Default)]
pub struct ReleaseWiring {
    pub wired: Vec<Wired>,
    pub fields: Vec<WiredField>,
    pub guards: Guards,
}

/// What the chart's pod specs ask of a release installed with some effective values.
#[derive(Debug, Default)]
pub struct Guards {
    /// securityContext values paths left to a person (their pod has access to its node).
    pub left_alone: BTreeMap<String, String>,
    /// The writable /tmp: the emptyDir's name, the values lists of the pod's volumes and of
    /// the containers' mounts it goes into.
    pub tmp: Option<TmpLists>,
    /// Container paths that get a read-only root filesystem and no /tmp, with the note.
    pub no_tmp: BTreeMap<String, String>,
    /// The low-port notes of the chart's containers with these values.
    pub low_ports: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct TmpLists {
    pub name: String,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
}

/// The chart's wiring for given effective values.
pub type WiringFor = dyn Fn(&Value) -> ReleaseWiring + Send + Sync;

/// Reads a chart folder's facts, or says why not.
pub type ReadChart<'a> = dyn Fn(&Path) -> Result<ChartFacts, String> + Sync + 'a;

/// A release planned: the edits of the manifest, and what its render check needs.
#[derive(Default)]
pub struct Planned {
    /// Changes of the manifest's own nodes.
    pub changes: Vec<Change>,
    /// Splices of the manifest inside a values string, with the meaning of each string's edit.
    pub splices: Vec<Splice>,
    pub ops: Vec<SemanticOp>,
    /// The chart and the values over its defaults, before the edits; None when the release
    /// is left alone or its chart was not read.
    pub render: Option<RenderInput>,
}

/// What the render check of a release needs.
pub struct RenderInput {
    pub chart: Located,
    /// Every values layer over the chart's defaults, merged, as they are before the edits.
    pub before: Value,
    /// Where the edited inline values are, to read them back from the new text.
    pub site: SitePath,
    /// The layers below the inline values and those above them (Argo parameters).
    pub below: Value,
    pub above: Value,
    /// The workload of the release's first values path, for findings.
    pub workload: usize,
    pub line: usize,
    /// The name it is installed under, when known (its rendered objects carry it).
    pub install_name: Option<String>,
    /// The post-renderer patches the edits add, with the release's name.
    pub post: Option<PostRender>,
}

/// The key path of the inline values in the manifest, and whether they are a string.
#[derive(Clone, Debug)]
pub struct SitePath {
    pub document: usize,
    pub path: Vec<yaml_splice::PathSeg>,
    pub text: bool,
}

/// Plans one release into the file's report.
pub fn plan(
    tree: &Tree,
    release: &Release,
    repo: &Repository,
    read_chart: &ReadChart<'_>,
    settings: &Settings,
    report: &mut FileReport,
) -> Result<Planned, FileError> {
    let line = site_line(tree, release);
    let inline = inline_values(tree, release)?;
    let object = object_of(tree, release.document)?;
    let name = install_name(release, &object);
    let at = (line, name.as_deref());
    let Some(decided) = decide(release, at, inline, repo, read_chart, settings, report)? else {
        return Ok(Planned::default());
    };
    let mut planned = write(tree, release, &decided.needs, line)?;
    note_what_it_gets(report, &decided, release, &decided.needs);
    let Some(post) = post_render_step(release, &object, &decided, settings, report) else {
        return Ok(Planned::default());
    };
    if let Some(post) = &post {
        let spec = spec_node(tree, release.document).ok_or_else(|| {
            FileError::at_start("the release has no `spec` mapping for its post-renderers")
        })?;
        insert_into(
            &mut planned.changes,
            spec,
            "postRenderers",
            super::post_render::as_post_renderers(&post.patches),
        );
    }
    planned.render = Some(RenderInput {
        chart: decided.located,
        before: decided.layers.before(),
        site: site_path(tree, release),
        below: decided.layers.below_on_disk(),
        above: decided.layers.above,
        workload: decided.first,
        line,
        install_name: install_name(release, &object),
        post,
    });
    Ok(planned)
}

/// The release's object (its document) as JSON.
fn object_of(tree: &Tree, document: usize) -> Result<Value, FileError> {
    let docs = crate::verify::load_all(tree.src).map_err(|e| FileError::at_start(e.to_string()))?;
    Ok(docs
        .get(document)
        .map(|d| serde_json::to_value(d).unwrap_or_default())
        .unwrap_or_default())
}

pub fn spec_node(tree: &Tree, document: usize) -> Option<NodeId> {
    let root = tree.docs.get(document)?.root?;
    let spec = tree.get(Ref::root(root), "spec")?;
    tree.is_map(spec).then_some(spec.id)
}

/// Adds a new key to a mapping: into the insertion of that mapping the changes hold, if any
/// (one insertion per mapping), else as one of its own.
pub fn insert_into(changes: &mut Vec<Change>, map: NodeId, key: &str, value: NewValue) {
    for change in changes.iter_mut() {
        if let Change::Insert { map: m, entries } = change {
            if *m == map {
                entries.push((key.to_string(), value));
                return;
            }
        }
    }
    changes.push(Change::Insert {
        map,
        entries: vec![(key.to_string(), value)],
    });
}

/// Plans a Flux release's post-renderers with its notes: Some(the patches, if any), or None
/// when the release is left alone after all (its chart takes no securityContext from values and
/// it cannot have post-renderers; said in the report).
pub fn post_render_step(
    release: &Release,
    object: &Value,
    decided: &Decided,
    settings: &Settings,
    report: &mut FileReport,
) -> Option<Option<PostRender>> {
    let note = |report: &mut FileReport, kind: NoteKind, message: String| {
        report.notes.push(Note {
            workload: decided.first,
            container: None,
            kind,
            message,
            line: decided.line,
        })
    };
    let unwired = decided.wired.is_empty();
    if is_argo(release) {
        note_argo_patches(release, object, decided, settings, report);
        return Some(None);
    }
    let why_not = match post_renderer_patches(release, object, decided, settings) {
        Ok(Some(post)) => {
            let targets: Vec<String> = post
                .patches
                .iter()
                .map(|p| format!("{}/{}", p.kind, p.name))
                .collect();
            let adds_tmp = post
                .patches
                .iter()
                .any(|p| p.text.contains("mountPath: /tmp"));
            if adds_tmp {
                report
                    .notes
                    .retain(|n| !decided.no_tmp.contains(&n.message));
            }
            note(report, NoteKind::Added, format!(
                "its chart's values cannot give {} the whole baseline: the HelmRelease gets `spec.postRenderers` patches (Kustomize strategic merge, applied by Flux to what Helm renders) for what remains{}",
                targets.join(", "),
                if adds_tmp { ", the writable /tmp included" } else { "" }
            ));
            return Some(Some(post));
        }
        Ok(None) if !unwired => return Some(None),
        Ok(None) => String::new(),
        Err(why) if !unwired => {
            note(report, NoteKind::Risk, format!("its chart's values may not express the whole baseline and no post-renderers are added: {why}"));
            return Some(None);
        }
        Err(why) => format!(", and no post-renderers are added: {why}"),
    };
    report.skipped_pods.push(SkippedPod {
        workload: decided.first,
        reason: format!(
            "its chart ({}) takes no securityContext from values: nothing to set in the release{why_not}",
            decided.located.origin
        ),
    });
    None
}

/// A release whose chart was read and whose effective values were planned: what its values
/// need, and what its render check needs.
pub struct Decided {
    pub needs: Vec<Need>,
    pub located: Located,
    pub layers: Layers,
    pub wired: Vec<Wired>,
    /// Its first workload in the report, and the line its findings and notes are on.
    pub first: usize,
    pub line: usize,
    /// The effective values once the needs are written (read-only root filesystems left as
    /// they were where values give no writable /tmp): what post-renderers are planned on.
    pub effective_after: Value,
    /// The notes that a container gets no writable /tmp through values.
    pub no_tmp: Vec<String>,
    /// The release's values turn a securityContext off on purpose: no post-renderer puts it
    /// back.
    pub turned_off: bool,
}

/// Locates and reads a release's chart, plans its effective values (`inline`: the values that
/// lose, then those that win, as the release carries them), and records findings and notes
/// (on `line`) in the report. None when the release is left alone (said in the report) or is
/// no release after all.
pub fn decide(
    release: &Release,
    (line, name): (usize, Option<&str>),
    (shadowed, inline): (Value, Value),
    repo: &Repository,
    read_chart: &ReadChart<'_>,
    settings: &Settings,
    report: &mut FileReport,
) -> Result<Option<Decided>, FileError> {
    let first = report.workloads.len();
    let leave_alone = |report: &mut FileReport, reason: String| {
        push_workload(report, release, None, line);
        report.skipped_pods.push(SkippedPod {
            workload: first,
            reason,
        });
        Ok(None)
    };
    let located = match chart::locate(release, repo) {
        Ok(located) => located,
        Err(chart::NotLocated::NotAChart) => return Ok(None),
        Err(chart::NotLocated::Because(why)) => {
            return leave_alone(report, format!("{why}; the release is left alone"))
        }
    };
    let facts = match read_chart(&located.dir) {
        Ok(facts) => facts,
        Err(why) => {
            return leave_alone(
                report,
                format!("its chart ({}) cannot be read: {why}", located.origin),
            )
        }
    };
    let post_renders = post_renders(release, settings);
    let below = match chart::values_from(release, &located, repo.index) {
        Ok(values) => values,
        Err(why) => return leave_alone(report, format!("{why}; the release is left alone")),
    };
    let layers = Layers::of(&facts, below, shadowed, inline, &release.parameters)?;
    let effective = layers.effective(&facts.defaults);
    let ReleaseWiring {
        mut wired,
        fields,
        guards,
    } = (facts.wiring_for)(&effective);
    let images = super::images::read(&located.dir, &effective, name, settings);
    let image_notes = super::images::apply(&mut wired, &images, &settings.rules);
    if !images.errors().is_empty() {
        return Err(FileError {
            line,
            col: 1,
            message: images.errors().join("; "),
        });
    }
    if wired.is_empty() && fields.is_empty() && !post_renders {
        return leave_alone(
            report,
            format!("its chart ({}) takes no securityContext from values: nothing to set in the release", located.origin),
        );
    }
    let mut needs = values::plan(
        &effective,
        &layers.inline,
        (&wired, &fields),
        &guards.left_alone,
        &settings.rules,
    );
    needs.notes.extend(image_notes);
    if let Some(tmp) = &guards.tmp {
        let tmp_needs = values::tmp_needs(&effective, &layers.inline, tmp);
        needs.needs.extend(tmp_needs);
    }
    if needs.paths.is_empty() {
        push_workload(report, release, None, line);
    }
    record(report, release, &needs, line);
    note_tmp(report, first, line, &guards, &needs);
    let turned_off = !needs.turned_off.is_empty();
    let (needs, blocked) = split_parameters(needs.needs, &release.parameters);
    note_blocked(report, first, line, blocked);
    // The render the post-renderer patches are planned on. A container that values cannot
    // give a writable /tmp keeps its old root filesystem there, so that the patch makes it
    // read-only together with the /tmp (the policy adds /tmp where it sets read-only).
    let mut effective_after = effective;
    let no_tmp: Vec<String> = guards.no_tmp.into_values().collect();
    let for_patches: Vec<Need> = match no_tmp.is_empty() {
        true => needs.clone(),
        false => needs.iter().filter_map(without_read_only).collect(),
    };
    values::apply_needs(&mut effective_after, &for_patches);
    Ok(Some(Decided {
        needs,
        located,
        layers,
        wired,
        first,
        line,
        effective_after,
        no_tmp,
        turned_off,
    }))
}

/// A need without the read-only root filesystem it sets (None when that is all it sets).
fn without_read_only(need: &Need) -> Option<Need> {
    const KEY: &str = "readOnlyRootFilesystem";
    fn strip(value: &NewValue) -> NewValue {
        match value {
            NewValue::Map(entries) => NewValue::Map(
                entries
                    .iter()
                    .filter(|(k, _)| k != KEY)
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    match need {
        Need::Set(path, _) if path.last().is_some_and(|k| k == KEY) => None,
        Need::Set(path, value) => Some(Need::Set(path.clone(), strip(value))),
        other => Some(other.clone()),
    }
}

/// Whether a release may get post-renderer patches: a Flux `HelmRelease`, unless turned off.
fn post_renders(release: &Release, settings: &Settings) -> bool {
    release.kind == super::model::ReleaseKind::FluxHelmRelease
        && !settings.repository.no_post_renderers
}

fn is_argo(release: &Release) -> bool {
    use super::model::ReleaseKind::{ArgoApplication, ArgoApplicationSet};
    matches!(release.kind, ArgoApplication | ArgoApplicationSet)
}

/// The name the release is installed under, which names what its chart renders: Flux's
/// (`spec.releaseName`, else `[targetNamespace-]name`), Argo's (`helm.releaseName` of its
/// source, else the Application's name); None where the tool cannot know it (an
/// ApplicationSet's template, a kustomization's `helmCharts`).
pub fn install_name(release: &Release, object: &Value) -> Option<String> {
    use super::model::ReleaseKind::{ArgoApplication, FluxHelmRelease};
    match release.kind {
        FluxHelmRelease => super::post_render::release_name(object),
        ArgoApplication => {
            // `web[1]` (or `web[1] (apps/prod)`) is the second of `spec.sources`.
            let index = release.name.split_once('[').map(|(_, rest)| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            });
            let source = match index {
                Some(index) => format!("/spec/sources/{index}"),
                None => "/spec/source".to_string(),
            };
            object
                .pointer(&format!("{source}/helm/releaseName"))
                .or_else(|| object.pointer("/metadata/name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        _ => None,
    }
}

/// Argo CD has no post-renderers: where its values leave workloads short, a risk note names
/// the strategic-merge patches that would bring them to the baseline (for a Kustomize wrapper
/// or a config management plugin), one line each.
fn note_argo_patches(
    release: &Release,
    object: &Value,
    decided: &Decided,
    settings: &Settings,
    report: &mut FileReport,
) {
    if settings.repository.no_post_renderers {
        return;
    }
    let name = install_name(release, object)
        .or_else(|| {
            object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "release".into());
    let Ok(Some(patches)) = patches_for(decided, &name, settings) else {
        return;
    };
    for patch in patches {
        let body = yaml_serde::from_str::<yaml_serde::Value>(&patch.text)
            .ok()
            .and_then(|v| serde_json::to_string(&v).ok())
            .unwrap_or_default();
        report.notes.push(Note {
            workload: decided.first,
            container: None,
            kind: NoteKind::Risk,
            message: format!(
                "its chart's values cannot give {}/{} the whole baseline, and Argo CD has no post-renderers: apply this strategic-merge patch after Helm (a Kustomize wrapper with `helmCharts`, or a config management plugin): {body}",
                patch.kind, patch.name
            ),
            line: decided.line,
        });
    }
}

/// The post-renderer patches a Flux release needs once its values are edited: its chart
/// rendered under the release's own name with those values, and planned by the policy. None
/// when it gets none (not a Flux release, turned off, nothing short); Err says why it cannot
/// have them.
pub fn post_renderer_patches(
    release: &Release,
    object: &Value,
    decided: &Decided,
    settings: &Settings,
) -> Result<Option<PostRender>, String> {
    use super::post_render;
    if !post_renders(release, settings) || decided.turned_off {
        return Ok(None);
    }
    if !post_render::existing(object)?.is_empty() {
        return Err(
            "it has post-renderers of its own: add the baseline's patches to them by hand".into(),
        );
    }
    let name = post_render::release_name(object).ok_or("it has no name")?;
    Ok(patches_for(decided, &name, settings)?.map(|patches| PostRender { name, patches }))
}

/// The patches that bring the chart's workloads to the baseline, rendered under `name` with
/// the edited values; None when nothing falls short or there is no render to plan on.
fn patches_for(
    decided: &Decided,
    name: &str,
    settings: &Settings,
) -> Result<Option<Vec<super::post_render::Patch>>, String> {
    use super::post_render;
    // Without a render there is nothing to plan the patches on (said once by the render check).
    let Some(engine) = crate::helm::engine::Engine::find(&settings.render)
        .filter(|_| settings.render.mode != crate::report::RenderMode::Never)
    else {
        return Ok(None);
    };
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    let file = dir.path().join("values.yaml");
    let text = serde_json::to_string(&decided.effective_after).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    // A chart that does not render is reported by the render check.
    let Ok(rendered) = engine.template_as(&decided.located.dir, &[file], name) else {
        return Ok(None);
    };
    let patches = post_render::patches(&rendered, &settings.rules)?;
    Ok((!patches.is_empty()).then_some(patches))
}

/// A release's post-renderer patches, and the name it is rendered under.
#[derive(Clone, Debug)]
pub struct PostRender {
    pub name: String,
    pub patches: Vec<super::post_render::Patch>,
}

/// The values layers over a chart's defaults, in Helm's order: the values from elsewhere
/// (and Argo's losing `values` string), the inline values, Argo's parameters; and the chart's
/// defaults as this run hardens them, when it does.
pub struct Layers {
    hardened: Option<Value>,
    below: Value,
    inline: Value,
    above: Value,
}

impl Layers {
    fn of(
        facts: &ChartFacts,
        mut below: Value,
        shadowed: Value,
        inline: Value,
        params: &[(String, String)],
    ) -> Result<Layers, FileError> {
        merge(&mut below, &shadowed);
        let hardened = match &facts.hardened_defaults {
            Some(text) => Some(chart::parse_values(text).map_err(|e| {
                FileError::at_start(format!(
                    "the hardened values.yaml of its chart does not load: {e}"
                ))
            })?),
            None => None,
        };
        Ok(Layers {
            hardened,
            below,
            inline,
            above: parameters(params),
        })
    }

    /// What the release is installed with.
    fn effective(&self, defaults: &Value) -> Value {
        let mut effective = self.hardened.clone().unwrap_or_else(|| defaults.clone());
        merge(&mut effective, &self.below);
        merge(&mut effective, &self.inline);
        merge(&mut effective, &self.above);
        effective
    }

    /// The layers below the inline values for a render of the chart as it is on disk: this
    /// run's edits of its values.yaml go in first.
    pub fn below_on_disk(&self) -> Value {
        let mut layered = self
            .hardened
            .clone()
            .unwrap_or(Value::Object(Default::default()));
        merge(&mut layered, &self.below);
        layered
    }

    /// Every layer over the chart's defaults on disk, before the edits.
    /// The chart's defaults as this run hardens them, when it does.
    pub fn hardened(&self) -> Option<&Value> {
        self.hardened.as_ref()
    }

    pub fn before(&self) -> Value {
        let mut before = self.below_on_disk();
        merge(&mut before, &self.inline);
        merge(&mut before, &self.above);
        before
    }
}

/// A risk note for each parameter that sets what the baseline changes.
fn note_blocked(report: &mut FileReport, first: usize, line: usize, blocked: Vec<String>) {
    for path in blocked {
        report.notes.push(Note {
            workload: first,
            container: None,
            kind: NoteKind::Risk,
            message: format!("the parameter `{path}` (helm.parameters, which win over every values file) sets a value the baseline changes: change the parameter by hand"),
            line,
        });
    }
}

/// The note that names the release, its chart and where it came from, and the values paths
/// its inline values get something at.
fn note_what_it_gets(
    report: &mut FileReport,
    decided: &Decided,
    release: &Release,
    needs: &[Need],
) {
    if needs.is_empty() {
        return;
    }
    report.notes.push(Note {
        workload: decided.first,
        container: None,
        kind: NoteKind::Added,
        message: format!(
            "the {} `{}` gets in its inline values what its effective values (chart {}) lack at {}",
            release.kind.noun(),
            release.name,
            decided.located.origin,
            needed_paths(&decided.wired, needs).join(", ")
        ),
        line: decided.line,
    });
}

/// The wired values paths (as `.Values.x`) that some of `needs` fall under.
pub fn needed_paths(wired: &[Wired], needs: &[Need]) -> Vec<String> {
    let needed = |w: &&Wired| {
        needs.iter().any(|n| match n {
            Need::Set(p, _) | Need::Append(p, _) => p.join(".").starts_with(&w.path),
        })
    };
    wired
        .iter()
        .filter(needed)
        .map(|w| format!("`.Values.{}`", w.path))
        .collect()
}

/// The writable /tmp notes: added through the chart's lists, or why the chart cannot have it.
fn note_tmp(
    report: &mut FileReport,
    first: usize,
    line: usize,
    guards: &Guards,
    needs: &values::Needs,
) {
    let adds_tmp = needs.needs.iter().any(|n| match n {
        Need::Set(p, _) | Need::Append(p, _) => guards
            .tmp
            .as_ref()
            .is_some_and(|t| t.volumes.contains(&p.join("."))),
    });
    if let (true, Some(tmp)) = (adds_tmp, &guards.tmp) {
        report.notes.push(Note {
            workload: first,
            container: None,
            kind: NoteKind::Added,
            message: format!(
                "{} (through the chart's values lists {})",
                crate::policy::writable_tmp_message(&tmp.name),
                tmp.volumes
                    .iter()
                    .chain(&tmp.mounts)
                    .map(|l| format!("`.Values.{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            line,
        });
    }
    let skipped = |path: &String| {
        needs
            .skipped
            .iter()
            .any(|s| needs.paths.get(s.workload) == Some(path))
    };
    let no_tmp = guards
        .no_tmp
        .iter()
        .filter(|(path, _)| !skipped(path))
        .map(|(_, m)| m);
    for message in guards.low_ports.iter().chain(no_tmp) {
        report.notes.push(Note {
            workload: first,
            container: None,
            kind: NoteKind::Risk,
            message: message.clone(),
            line,
        });
    }
}

/// The line of the inline values' key, else the release's.
pub fn site_line(tree: &Tree, release: &Release) -> usize {
    match &release.values {
        ValuesSite::Mapping(node) | ValuesSite::Text(node) => {
            key_line(tree, *node).unwrap_or(release.line)
        }
        ValuesSite::Absent { .. } => release.line,
    }
}

fn key_line(tree: &Tree, node: NodeId) -> Option<usize> {
    let parent = tree.node(node).parent?;
    match &tree.node(parent).kind {
        yaml_splice::tree::NodeKind::Map(entries) => entries
            .iter()
            .find(|(_, v)| *v == node)
            .map(|(k, _)| tree.node(*k).line),
        _ => None,
    }
}

fn push_workload(report: &mut FileReport, release: &Release, path: Option<&str>, line: usize) {
    let name = match path {
        Some(path) => format!("{} .Values.{path}", release.name),
        None => release.name.clone(),
    };
    // The release is its own service in `pr` (a folder of releases splits by this label);
    // `[i]` names a source of several, ` (root)` the Kustomize root that builds it.
    let app = release
        .name
        .split(['[', ' '])
        .next()
        .unwrap_or(&release.name)
        .to_string();
    report.workloads.push(Workload {
        kind: release.kind.name().to_string(),
        name,
        document: release.document,
        line,
        app: Some(app),
        images: vec![],
    });
}

/// The findings, notes and skipped paths of the plan, one workload per wired path.
fn record(report: &mut FileReport, release: &Release, needs: &values::Needs, line: usize) {
    let first = report.workloads.len();
    for path in &needs.paths {
        push_workload(report, release, Some(path), line);
    }
    report
        .findings
        .extend(needs.findings.iter().cloned().map(|mut f| {
            f.workload += first;
            f.line = line;
            f.col = 1;
            f
        }));
    report
        .notes
        .extend(needs.notes.iter().cloned().map(|mut n| {
            n.workload += first;
            n.line = line;
            n.container = None;
            n
        }));
    report
        .skipped_pods
        .extend(needs.skipped.iter().cloned().map(|mut s| {
            s.workload += first;
            s
        }));
}

/// The inline values that lose (Argo's `values` string next to `valuesObject`) and those the
/// tool edits, as JSON.
pub fn inline_values(tree: &Tree, release: &Release) -> Result<(Value, Value), FileError> {
    let read = |site: &ValuesSite| -> Result<Value, FileError> {
        match site {
            ValuesSite::Absent { .. } => Ok(Value::Object(Default::default())),
            ValuesSite::Text(node) => {
                let text = tree.as_str(Ref::root(*node)).unwrap_or_default();
                chart::parse_values(text)
                    .map_err(|e| at(tree, *node, format!("the values string does not load: {e}")))
            }
            ValuesSite::Mapping(node) => {
                let docs = crate::verify::load_all(tree.src)
                    .map_err(|e| FileError::at_start(e.to_string()))?;
                let doc = docs
                    .get(tree.document_of(*node))
                    .cloned()
                    .unwrap_or_default();
                let value = walk_json(
                    &serde_json::to_value(doc).unwrap_or_default(),
                    &tree.path_of(*node),
                );
                Ok(match value {
                    Value::Null => Value::Object(Default::default()),
                    v => v,
                })
            }
        }
    };
    let shadowed = match &release.shadowed {
        Some(site) => read(site)?,
        None => Value::Object(Default::default()),
    };
    Ok((shadowed, read(&release.values)?))
}

fn walk_json(value: &Value, path: &[yaml_splice::PathSeg]) -> Value {
    use yaml_splice::PathSeg;
    let mut at = value;
    for seg in path {
        let next = match seg {
            PathSeg::Key(k) => at.get(k),
            PathSeg::Index(i) => at.get(i),
        };
        match next {
            Some(v) => at = v,
            None => return Value::Null,
        }
    }
    at.clone()
}

fn at(tree: &Tree, node: NodeId, message: String) -> FileError {
    let (line, col) = tree.position(Ref::root(node));
    FileError { line, col, message }
}

/// Argo `helm.parameters` as a values layer (`a.b=true` sets `a.b` to a bool, as `--set` does).
fn parameters(params: &[(String, String)]) -> Value {
    let mut out = Value::Object(Default::default());
    for (name, value) in params {
        let typed = match value.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            v => v
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(v.to_string())),
        };
        let layer = name.rsplit('.').fold(typed, |inner, key| {
            let mut map = serde_json::Map::new();
            map.insert(key.to_string(), inner);
            Value::Object(map)
        });
        merge(&mut out, &layer);
    }
    out
}

/// The needs a parameter overrides (they cannot be written in the values), apart.
fn split_parameters(needs: Vec<Need>, params: &[(String, String)]) -> (Vec<Need>, Vec<String>) {
    let mut kept = Vec::new();
    let mut blocked = Vec::new();
    for need in needs {
        let path = match &need {
            Need::Set(p, _) | Need::Append(p, _) => p.join("."),
        };
        let hit = params.iter().find(|(name, _)| {
            path == *name
                || path.starts_with(&format!("{name}."))
                || name.starts_with(&format!("{path}."))
        });
        match hit {
            Some((name, _)) => {
                if !blocked.contains(name) {
                    blocked.push(name.clone());
                }
            }
            None => kept.push(need),
        }
    }
    (kept, blocked)
}

fn site_path(tree: &Tree, release: &Release) -> SitePath {
    use yaml_splice::PathSeg;
    match &release.values {
        ValuesSite::Mapping(node) => SitePath {
            document: tree.document_of(*node),
            path: tree.path_of(*node),
            text: false,
        },
        ValuesSite::Text(node) => SitePath {
            document: tree.document_of(*node),
            path: tree.path_of(*node),
            text: true,
        },
        ValuesSite::Absent { parent, key } => {
            let mut path = tree.path_of(*parent);
            path.push(PathSeg::Key(key.to_string()));
            if *key == "helm" {
                path.push(PathSeg::Key("valuesObject".into()));
            }
            SitePath {
                document: tree.document_of(*parent),
                path,
                text: false,
            }
        }
    }
}

/// The edits that write `needs` into the release's inline values.
pub fn write(
    tree: &Tree,
    release: &Release,
    needs: &[Need],
    line: usize,
) -> Result<Planned, FileError> {
    let mut planned = Planned::default();
    if needs.is_empty() {
        return Ok(planned);
    }
    let refused = |why: String| FileError {
        line,
        col: 1,
        message: format!(
            "the inline values of {} `{}` cannot take the baseline: {why}",
            release.kind.name(),
            release.name
        ),
    };
    match &release.values {
        ValuesSite::Mapping(node) => {
            let changes = super::edit::changes(tree, Ref::root(*node), needs).map_err(refused)?;
            planned.changes = changes.into_iter().map(|(c, _)| c).collect();
        }
        ValuesSite::Absent { parent, key } => {
            let values = super::edit::as_mapping(needs);
            let value = match *key {
                "helm" => NewValue::map(vec![("valuesObject", values)]),
                _ => values,
            };
            planned.changes.push(Change::Insert {
                map: *parent,
                entries: vec![(key.to_string(), value)],
            });
        }
        ValuesSite::Text(node) => {
            let (new_inner, splices) = edit_string(tree, *node, needs).map_err(refused)?;
            planned.splices = splices;
            planned.ops.push(SemanticOp::Set {
                doc: tree.document_of(*node),
                path: tree.path_of(*node),
                value: NewValue::Str(new_inner),
            });
        }
    }
    Ok(planned)
}

/// Edits the values document inside Argo's `values: |` string, as splices of the manifest.
fn edit_string(tree: &Tree, node: NodeId, needs: &[Need]) -> Result<(String, Vec<Splice>), String> {
    let embedded = yaml_splice::Embedded::of(tree, node)
        .map_err(|why| format!("the values string is {why}"))?;
    let inner = Tree::parse(&embedded.text)
        .map_err(|e| format!("the values string does not parse: {}", e.message))?;
    let root = inner
        .docs
        .first()
        .and_then(|d| d.root)
        .map(Ref::root)
        .ok_or("the values string is empty: write the values as `valuesObject` instead")?;
    let changes = super::edit::changes(&inner, root, needs)?;
    let outcome = apply_changes(&inner, changes.into_iter().map(|(c, _)| c).collect())
        .map_err(|e| e.to_string())?;
    crate::verify::verify_with(&inner, &outcome.text, &outcome.splices, &outcome.ops, None)
        .map_err(|e| format!("the edit of the values string does not verify: {e}"))?;
    Ok((outcome.text, embedded.to_outer(&outcome.splices)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argo_parameters_are_typed_like_set_and_block_what_they_set() {
        let params = vec![
            ("securityContext.runAsUser".to_string(), "0".to_string()),
            ("debug".to_string(), "true".to_string()),
        ];
        assert_eq!(
            parameters(&params),
            serde_json::json!({"securityContext": {"runAsUser": 0}, "debug": true})
        );
        let needs = vec![
            Need::Set(
                vec!["securityContext".into(), "runAsUser".into()],
                NewValue::Int(1000),
            ),
            Need::Set(
                vec!["podSecurityContext".into(), "fsGroup".into()],
                NewValue::Int(1000),
            ),
        ];
        let (kept, blocked) = split_parameters(needs, &params);
        assert_eq!(kept.len(), 1);
        assert_eq!(blocked, vec!["securityContext.runAsUser".to_string()]);
    }
}
