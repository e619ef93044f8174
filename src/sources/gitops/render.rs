//! The render check of a release, with Helm's engine: its chart rendered with the values over
//! its defaults (the values from elsewhere, the inline values, Argo's parameters) before the
//! edits and after them, the inline values read back from the new text of the manifest. The
//! two renders are judged ([`crate::verify::rendered`]): a release that breaks fails the file,
//! one that renders short is reported on it.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::helm::engine::{as_documents, object_key, sources_by_object, Engine};
use std::collections::BTreeMap;

use crate::policy::{Note, NoteKind, Workload};
use crate::report::{
    FileError, FileReport, RenderMode, RenderedPod, RenderedStreams, Settings, Status,
};
use crate::verify::rendered::{judge, ObjectName, ProblemKind};

use super::chart::Located;

use super::post_render::{ApplyPatches, Patch};
use super::release::{PostRender, RenderInput, SitePath};
use super::values::merge;

/// Said once per run when no `helm` is found and the mode is `auto`.
static SKIP_SAID: AtomicBool = AtomicBool::new(false);

/// Renders each release of the file before and after its edits and records the verdict.
pub fn check(
    inputs: &[RenderInput],
    report: &mut FileReport,
    settings: &Settings,
    apply: &ApplyPatches<'_>,
) {
    if inputs.is_empty() || settings.render.mode == RenderMode::Never {
        return;
    }
    let Some(engine) = Engine::find(&settings.render) else {
        return no_engine(report, settings);
    };
    let new_text = match &report.status {
        Status::Changed { new_text } => Some(new_text.clone()),
        _ => None,
    };
    for input in inputs {
        check_one(&engine, input, new_text.as_deref(), report, settings, apply);
    }
}

fn no_engine(report: &mut FileReport, settings: &Settings) {
    let why = "the render check of Helm releases could not run: `helm` is not on PATH (install Helm, or use --helm-bin)";
    if settings.render.mode == RenderMode::Always {
        if !matches!(report.status, Status::Failed(_)) {
            report.status = Status::Failed(FileError::at_start(format!("{why} (--render always)")));
        }
    } else if !SKIP_SAID.swap(true, Ordering::Relaxed) {
        note(
            report,
            Note::FILE,
            1,
            format!("render check skipped: {why}; --render always makes this an error"),
        );
    }
}

fn check_one(
    engine: &Engine,
    input: &RenderInput,
    new_text: Option<&str>,
    report: &mut FileReport,
    settings: &Settings,
    apply: &ApplyPatches<'_>,
) {
    let after_values = match new_text {
        Some(text) => match inline_after(text, &input.site) {
            Ok(inline) => {
                let mut values = input.below.clone();
                merge(&mut values, &inline);
                merge(&mut values, &input.above);
                values
            }
            Err(e) => {
                return fail(
                    report,
                    &format!("the edited inline values do not read back: {e}"),
                )
            }
        },
        None => input.before.clone(),
    };
    let post = match (&input.post, new_text) {
        (Some(post), Some(_)) => Some((post, apply)),
        _ => None,
    };
    let Compared {
        verdict,
        not_compared,
        streams,
    } = compare(
        engine,
        &input.chart,
        &input.before,
        &after_values,
        &settings.rules,
        input.install_name.as_deref(),
        post,
    );
    if let (Some((before, after)), Some(_), true) =
        (streams, new_text, settings.render.keep_streams)
    {
        let release = report
            .workloads
            .get(input.workload)
            .map(|w| format!("{}/{}", w.kind, release_name(&w.name)));
        report.rendered.push(RenderedStreams {
            origin: format!(
                "{} (chart {})",
                release.unwrap_or_else(|| "the release".into()),
                input.chart.origin
            ),
            files: vec![report.path.clone()],
            before,
            after,
        });
    }
    if let Some(message) = not_compared {
        note(report, input.workload, input.line, message);
    }
    match verdict {
        Verdict::Exact => {}
        Verdict::NotChecked(message) => note(report, input.workload, input.line, message),
        Verdict::Broken(why) => fail(report, &why),
        Verdict::Short(pods) => {
            let release = report.workloads.get(input.workload).cloned();
            for pod in pods {
                let label = release
                    .as_ref()
                    .map(|w| format!("the {} `{}`", w.kind, release_name(&w.name)))
                    .unwrap_or_else(|| "the release".into());
                report.add_rendered_pod(pod.reported(
                    &label,
                    &input.chart,
                    release.as_ref(),
                    input.line,
                ));
            }
        }
    }
}

/// The release's own name in a workload's name (`web .Values.securityContext` is `web`).
fn release_name(workload: &str) -> &str {
    workload.split(' ').next().unwrap_or(workload)
}

/// What the renders of a chart with the values before and after the edits say.
pub enum Verdict {
    /// Every pod meets the baseline and keeps a writable /tmp, nothing else changed.
    Exact,
    /// The chart does not render before any edit: why.
    NotChecked(String),
    /// The edits break the render, or change it outside securityContexts and /tmp: why.
    Broken(String),
    /// Some pods render short of the baseline, or read-only with no writable /tmp.
    Short(Vec<ShortPod>),
}

/// A rendered pod short of the baseline or at risk after the edits.
pub struct ShortPod {
    pub object: ObjectName,
    /// The rendered object, after the edits (its images, for the report).
    pub rendered: yaml_serde::Value,
    /// Its template, as the render says.
    pub origin: Option<String>,
    /// The controls it falls short of.
    pub kinds: Vec<ProblemKind>,
    /// Its containers that are read-only with nothing mounted at /tmp.
    pub no_tmp: Vec<String>,
}

impl ShortPod {
    /// The pod as a workload of the report of the file that declares its release (`release`
    /// names it in the notes; the workload keeps the release's service for `pr`).
    pub fn reported(
        self,
        release: &str,
        chart: &Located,
        release_workload: Option<&Workload>,
        line: usize,
    ) -> RenderedPod {
        let workload = Workload {
            kind: self.object.kind.clone(),
            name: self.object.name.clone(),
            document: release_workload.map(|w| w.document).unwrap_or_default(),
            line,
            app: release_workload.and_then(|w| w.app.clone()),
            images: images_of(&self.rendered),
        };
        let from = self
            .origin
            .as_ref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default();
        let findings = self
            .kinds
            .iter()
            .filter_map(|k| k.short_finding(0, line))
            .collect();
        let mut notes = Vec::new();
        let mut risk = |message: String| {
            notes.push(Note {
                workload: 0,
                container: None,
                kind: NoteKind::Risk,
                message,
                line,
            })
        };
        let labels: Vec<String> = self.kinds.iter().filter_map(|k| k.short_label()).collect();
        if !labels.is_empty() {
            risk(format!(
                "renders short of the baseline: `helm template` of the chart of {release} ({}) renders {}{from} without {}: the chart's templates do not take those fields from values",
                chart.origin,
                self.object,
                dedup(labels).join(", ")
            ));
        }
        if !self.no_tmp.is_empty() {
            risk(format!(
                "`helm template` of the chart of {release} ({}) renders {}{from} with a read-only root filesystem and no writable /tmp in container{} {}: an app that writes temporary files fails; the release's note says why values cannot mount one",
                chart.origin,
                self.object,
                if self.no_tmp.len() == 1 { "" } else { "s" },
                self.no_tmp
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        RenderedPod {
            workload,
            findings,
            notes,
        }
    }
}

fn dedup(mut items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
    items
}

/// The images of a rendered pod's containers.
fn images_of(object: &yaml_serde::Value) -> Vec<String> {
    let kind = object
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    let spec = crate::policy::pod_spec_path(kind)
        .iter()
        .try_fold(object, |v, k| v.get(*k));
    ["initContainers", "containers"]
        .iter()
        .filter_map(|list| {
            spec.and_then(|s| s.get(*list))
                .and_then(|l| l.as_sequence())
        })
        .flatten()
        .filter_map(|c| c.get("image").and_then(|i| i.as_str()).map(str::to_string))
        .collect()
}

/// What [`compare`] found: the verdict, the note on what was not compared, and the two renders
/// when both were made (the start proof runs what they ship).
pub struct Compared {
    pub verdict: Verdict,
    pub not_compared: Option<String>,
    pub streams: Option<(String, String)>,
}

impl Compared {
    fn before_any_stream(verdict: Verdict) -> Compared {
        Compared {
            verdict,
            not_compared: None,
            streams: None,
        }
    }
}

/// Renders the chart with the values before and after the edits and judges the two, under the
/// release's install name when known (so that reports name what ships). With post-renderers,
/// both go through Kustomize's engine, the render after the edits with the patches.
pub fn compare(
    engine: &Engine,
    chart: &super::chart::Located,
    before_values: &Value,
    after_values: &Value,
    rules: &crate::policy::Rules,
    install_name: Option<&str>,
    post: Option<(&PostRender, &ApplyPatches<'_>)>,
) -> Compared {
    let name = post.map(|(p, _)| p.name.as_str()).or(install_name);
    let before = match render(engine, &chart.dir, before_values, name)
        .and_then(|r| post_rendered(r, post.map(|(_, apply)| (&[][..], apply))))
    {
        Ok(stream) => stream,
        Err(e) if crate::helm::engine::timed_out(&e) => {
            // Not proven, so not written.
            let why = format!(
                "its chart ({}): {e}: not render-checked; nothing written for it",
                chart.origin
            );
            return Compared::before_any_stream(Verdict::Broken(why));
        }
        Err(e) => {
            let why = format!(
                "its chart ({}) does not render, before any edit: not render-checked; {e}",
                chart.origin
            );
            return Compared::before_any_stream(Verdict::NotChecked(why));
        }
    };
    let after = match render(engine, &chart.dir, after_values, name)
        .and_then(|r| post_rendered(r, post.map(|(p, apply)| (&p.patches[..], apply))))
    {
        Ok(stream) => stream,
        Err(e) => {
            let why = format!(
                "its chart ({}) renders before the edits and fails after: {e}",
                chart.origin
            );
            return Compared::before_any_stream(Verdict::Broken(why));
        }
    };
    let again = || {
        render(engine, &chart.dir, before_values, name)
            .and_then(|r| post_rendered(r, post.map(|(_, apply)| (&[][..], apply))))
    };
    let (verdict, not_compared) = judge_renders(&before, &after, chart, rules, &again);
    Compared {
        verdict,
        not_compared,
        streams: Some((before, after)),
    }
}

/// The verdict on two renders of the chart (`again` renders the unedited input once more).
fn judge_renders(
    before: &str,
    after: &str,
    chart: &super::chart::Located,
    rules: &crate::policy::Rules,
    again: crate::verify::rendered::Again,
) -> (Verdict, Option<String>) {
    let sources = sources_by_object(after);
    let origin = |o: &yaml_serde::Value| sources.get(&object_key(o)).cloned();
    let verdict = match judge(before, after, rules, &origin, again) {
        Ok(verdict) => verdict,
        Err(e) => return (Verdict::Broken(e), None),
    };
    let not_compared = verdict
        .not_compared_note("chart")
        .map(|message| format!("its chart ({}): {message}", chart.origin));
    let docs = crate::verify::load_all(after).unwrap_or_default();
    let mut pods: BTreeMap<ObjectName, ShortPod> = BTreeMap::new();
    for problem in verdict.problems {
        let short = match problem.kind {
            ProblemKind::Broken(why) => {
                let why = format!(
                    "in the render of its chart ({}), {} {why}",
                    chart.origin, problem.object
                );
                return (Verdict::Broken(why), not_compared);
            }
            short => short,
        };
        short_pod(&mut pods, &docs, &problem.object, problem.origin)
            .kinds
            .push(short);
    }
    for no_tmp in verdict.no_tmp {
        short_pod(&mut pods, &docs, &no_tmp.object, no_tmp.origin)
            .no_tmp
            .push(no_tmp.container);
    }
    match pods.is_empty() {
        true => (Verdict::Exact, not_compared),
        false => (Verdict::Short(pods.into_values().collect()), not_compared),
    }
}

/// The entry of a rendered object in `pods`, made on first use.
fn short_pod<'p>(
    pods: &'p mut BTreeMap<ObjectName, ShortPod>,
    docs: &[yaml_serde::Value],
    name: &ObjectName,
    origin: Option<String>,
) -> &'p mut ShortPod {
    pods.entry(name.clone()).or_insert_with(|| ShortPod {
        object: name.clone(),
        rendered: docs
            .iter()
            .find(|d| object_key(d) == (name.kind.clone(), name.name.clone()))
            .cloned()
            .unwrap_or_default(),
        origin,
        kinds: vec![],
        no_tmp: vec![],
    })
}

/// `helm template` of the chart folder with `values` over its defaults (under the release's
/// own name, when given), split as Helm splits a template's output.
fn render(
    engine: &Engine,
    chart: &std::path::Path,
    values: &Value,
    name: Option<&str>,
) -> Result<String, String> {
    let dir = crate::process::scratch_dir("kube-harden-values-")
        .map_err(|e| format!("no temporary folder: {e}"))?;
    let file = dir.path().join("values.yaml");
    let text = serde_json::to_string(values).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    match name {
        Some(name) => engine.template_as(chart, &[file], name),
        None => engine.template(chart, &[file]),
    }
    .map(|s| as_documents(&s))
}

/// A render through the post-renderer patches, when there are post-renderers.
fn post_rendered(
    rendered: String,
    post: Option<(&[Patch], &ApplyPatches<'_>)>,
) -> Result<String, String> {
    match post {
        Some((patches, apply)) => {
            apply(&rendered, patches).map_err(|e| format!("the post-renderers do not apply: {e}"))
        }
        None => Ok(rendered),
    }
}

/// The inline values as the new text of the manifest has them.
fn inline_after(text: &str, site: &SitePath) -> Result<Value, String> {
    let docs = crate::verify::load_all(text).map_err(|e| e.to_string())?;
    let doc = docs.get(site.document).cloned().unwrap_or_default();
    let mut at = serde_json::to_value(doc).map_err(|e| e.to_string())?;
    for seg in &site.path {
        at = match seg {
            yaml_splice::PathSeg::Key(k) => at.get(k).cloned(),
            yaml_splice::PathSeg::Index(i) => at.get(i).cloned(),
        }
        .unwrap_or(Value::Null);
    }
    match (at, site.text) {
        (Value::String(s), true) => super::chart::parse_values(&s),
        (Value::Null, _) => Ok(Value::Object(Default::default())),
        (v, _) => Ok(v),
    }
}

fn fail(report: &mut FileReport, why: &str) {
    if matches!(report.status, Status::Changed { .. }) {
        report.status = Status::Failed(FileError::at_start(format!("not written: {why}")));
    } else {
        note(report, Note::FILE, 1, why.to_string());
    }
}

fn note(report: &mut FileReport, workload: usize, line: usize, message: String) {
    report.notes.push(Note {
        workload,
        container: None,
        kind: NoteKind::Risk,
        message,
        line,
    });
}
