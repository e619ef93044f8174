//! The render check of one chart, with Helm's own engine: `helm template` renders the chart
//! from a temporary copy, with `values.yaml` alone and with each override file (`values*.yaml`,
//! `ci/*.yaml`), before the planned edits and after them, and each pair is judged
//! ([`crate::verify::rendered`]). Dependencies come from what is vendored in `charts/` and are
//! never fetched. A chart that rendered before and fails after, or whose render changes outside
//! securityContexts and the writable `/tmp`, fails every changed values file: nothing is
//! written. What renders short of the baseline is reported on the values file of the set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use yaml_serde::Value;

use crate::helm::engine::{
    as_documents, is_library, object_key, sources_by_object, ChartCopy, Engine, ObjectKey,
};
use crate::policy::{Control, Level, Note, NoteKind};
use crate::report::{
    fail_changed, FileError, FileReport, RenderMode, RenderSettings, Settings, Status,
};
use crate::verify::rendered::{judge, Problem, ProblemKind};

use super::ChartWiring;

/// One chart folder of the render: the chart itself (`rel` empty) or a vendored subchart
/// (`charts/cache`), with what its templates wire and its values.yaml.
pub struct Part {
    pub rel: PathBuf,
    pub wiring: ChartWiring,
    pub main: Option<PathBuf>,
}

impl Part {
    /// The template `origin` (relative to the top chart) relative to this part, if it is one
    /// of this part's own templates.
    fn template<'o>(&self, origin: &'o str) -> Option<&'o str> {
        let rest = Path::new(origin).strip_prefix(&self.rel).ok()?;
        let rest = rest.to_str()?;
        rest.starts_with("templates/")
            .then(|| &origin[origin.len() - rest.len()..])
    }
}

/// Said once per run when no `helm` is found and the mode is `auto`.
static SKIP_SAID: AtomicBool = AtomicBool::new(false);

/// One way the chart is rendered: values.yaml alone, or with an override file over it.
pub(super) struct ValueSet {
    /// The override file, relative to the chart.
    pub(super) file: Option<PathBuf>,
}

impl ValueSet {
    /// The files to pass to `helm template` for the chart folder `chart`.
    pub(super) fn files(&self, chart: &Path) -> Vec<PathBuf> {
        self.file.iter().map(|f| chart.join(f)).collect()
    }

    pub(super) fn describe(&self) -> String {
        match &self.file {
            None => "values.yaml".into(),
            Some(f) => f.display().to_string(),
        }
    }
}

/// values.yaml alone, then each override file of the chart in name order.
pub(super) fn value_sets(chart: &Path) -> Vec<ValueSet> {
    let mut files: Vec<PathBuf> = Vec::new();
    let yaml = |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    let listed = |dir: &Path| -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && yaml(p))
            .collect();
        out.sort();
        out
    };
    for path in listed(chart) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("values") && !matches!(name, "values.yaml" | "values.yml") {
            files.push(PathBuf::from(name));
        }
    }
    for path in listed(&chart.join("ci")) {
        if let Ok(rel) = path.strip_prefix(chart) {
            files.push(rel.to_path_buf());
        }
    }
    std::iter::once(ValueSet { file: None })
        .chain(files.into_iter().map(|f| ValueSet { file: Some(f) }))
        .collect()
}

/// Renders the chart (with its vendored subcharts, `parts`) before and after the edits in
/// `reports` and records what the judge finds. `unedited` is the render with values.yaml
/// alone before the edits, when the run already made it (for the images): not made twice.
pub fn check(
    chart: &Path,
    parts: &[Part],
    reports: &mut [FileReport],
    settings: &Settings,
    unedited: Option<&str>,
) {
    let main = parts.first().and_then(|p| p.main.as_deref());
    let renders_nothing = parts
        .iter()
        .all(|p| !chart.join(&p.rel).join("templates").is_dir());
    if settings.render.mode == RenderMode::Never || is_library(chart) || renders_nothing {
        return;
    }
    let Some(engine) = Engine::find(&settings.render) else {
        return no_engine(main, reports, &settings.render);
    };
    let copy = match ChartCopy::of(chart) {
        Ok(copy) => copy,
        Err(e) => {
            let why = format!("the render check could not copy the chart: {e}");
            return fail_changed(reports, &why);
        }
    };
    let sets = value_sets(chart);
    // Split as Helm splits a template's output, so that the judge loads what Helm ships.
    let render = |dir: &Path, set: &ValueSet| {
        engine
            .template(dir, &set.files(dir))
            .map(|s| as_documents(&s))
    };
    let before: Vec<Result<String, String>> = sets
        .iter()
        .map(|s| match (&s.file, unedited) {
            (None, Some(stream)) => Ok(as_documents(stream)),
            _ => render(&copy.chart, s),
        })
        .collect();
    let mut changed = false;
    for report in reports.iter() {
        if let Status::Changed { new_text } = &report.status {
            if let Err(e) = copy.write(chart, &report.path, new_text) {
                let why = format!("the render check could not write its copy: {e}");
                return fail_changed(reports, &why);
            }
            changed = true;
        }
    }
    // A set that did not render before is not rendered again: there is nothing to judge.
    let after: Vec<Result<String, String>> = if changed {
        sets.iter()
            .zip(&before)
            .map(|(s, was)| match was {
                Ok(_) => render(&copy.chart, s),
                Err(e) => Err(e.clone()),
            })
            .collect()
    } else {
        before.clone()
    };
    let mut judged = Judged::default();
    for ((set, was), now) in sets.iter().zip(&before).zip(after) {
        let file = set.file.as_ref().map(|f| chart.join(f));
        let at = file.as_deref();
        match (was, now) {
            (Err(e), _) => judged.unrenderable(at, main, e, reports),
            (Ok(_), Err(e)) => fail_changed(
                reports,
                &format!(
                    "{} renders with {} before the edits and fails after: {e}",
                    chart.display(),
                    set.describe()
                ),
            ),
            (Ok(was), Ok(now)) => {
                let sources = sources_by_object(&now);
                let origin = |o: &Value| sources.get(&object_key(o)).cloned();
                // The unedited chart once more (a fresh copy), for what varies by itself.
                let again = || {
                    let fresh = ChartCopy::of(chart).map_err(|e| e.to_string())?;
                    render(&fresh.chart, set)
                };
                match judge(was, &now, &settings.rules, &origin, &again) {
                    Ok(verdict) => {
                        if let Some(note) = verdict.not_compared_note("chart") {
                            let on = at.filter(|a| reports.iter().any(|r| r.path == *a));
                            let message =
                                format!("`helm template` with {}: {note}", set.describe());
                            note_on(reports, on.or(main), message);
                        }
                        let set = SetReport {
                            chart,
                            set,
                            at,
                            parts,
                        };
                        judged.record(&set, verdict.problems, reports);
                    }
                    Err(e) => fail_changed(
                        reports,
                        &format!("{} with {}: {e}", chart.display(), set.describe()),
                    ),
                }
            }
        }
    }
}

/// Without `helm`: a note once per run (`auto`), or an error on the chart (`always`).
fn no_engine(main: Option<&Path>, reports: &mut [FileReport], render: &RenderSettings) {
    let missing = match &render.helm_bin {
        Some(bin) => format!("`{}` (--helm-bin) is not an executable", bin.display()),
        None => "`helm` is not on PATH".to_string(),
    };
    if render.mode == RenderMode::Always {
        let why = format!("the render check could not run: {missing} (--render always)");
        fail_changed(reports, &why);
        if let Some(r) = reports.iter_mut().find(|r| Some(r.path.as_path()) == main) {
            if !matches!(r.status, Status::Failed(_)) {
                r.status = Status::Failed(FileError::at_start(why));
            }
        }
        return;
    }
    if !SKIP_SAID.swap(true, Ordering::Relaxed) {
        let message = format!("render check of Helm charts skipped: {missing} (install Helm, or use --helm-bin; --render always makes this an error)");
        note_on(reports, main, message);
    }
}

/// One rendered value set, for recording: where its findings go.
struct SetReport<'a> {
    chart: &'a Path,
    set: &'a ValueSet,
    /// The override file whose report gets the set's findings; None for values.yaml alone
    /// (each part's own values.yaml gets them).
    at: Option<&'a Path>,
    parts: &'a [Part],
}

/// What the sets judged so far reported, so that an override set repeats neither an
/// unrenderable chart nor a shortfall values.yaml already has.
#[derive(Default)]
struct Judged {
    errors: BTreeSet<String>,
    short: BTreeSet<(ObjectKey, Option<String>, Control)>,
}

impl Judged {
    fn unrenderable(
        &mut self,
        at: Option<&Path>,
        main: Option<&Path>,
        error: &str,
        reports: &mut [FileReport],
    ) {
        if !self.errors.insert(error.to_string()) {
            return;
        }
        let missing = error.contains("missing in charts/");
        if crate::helm::engine::timed_out(error) {
            // Not proven, so not written.
            let message = format!("not render-checked; nothing written for it: {error}");
            fail_changed(reports, &message);
            let at = at.filter(|a| reports.iter().any(|r| r.path == *a)).or(main);
            return note_on(reports, at, message);
        }
        let message = if missing {
            format!("does not render: a dependency in Chart.yaml is not vendored in charts/ (kube-harden never fetches one; run `helm dependency build`): not render-checked; {error}")
        } else {
            format!("does not render, before any edit: not render-checked; {error}")
        };
        let at = at.filter(|a| reports.iter().any(|r| r.path == *a)).or(main);
        note_on(reports, at, message);
    }

    fn record(&mut self, set: &SetReport, problems: Vec<Problem>, reports: &mut [FileReport]) {
        let mut short: BTreeMap<ObjectKey, Vec<Problem>> = BTreeMap::new();
        for problem in problems {
            match &problem.kind {
                ProblemKind::Broken(why) => {
                    let message = format!(
                        "in the render of {} with {}, {} {why}",
                        set.chart.display(),
                        set.set.describe(),
                        problem.object
                    );
                    fail_changed(reports, &message);
                }
                ProblemKind::Short {
                    container, control, ..
                } => {
                    let key = (problem.object.kind.clone(), problem.object.name.clone());
                    let seen = (key.clone(), container.clone(), *control);
                    if self.short.insert(seen) {
                        short.entry(key).or_default().push(problem);
                    }
                }
            }
        }
        for (_, problems) in short {
            record_short(set, &problems, reports);
        }
    }
}

/// One rendered object short of the baseline: findings (not fixable by an edit of this file)
/// and one note, on the values path that feeds its template when there is one. Templates the
/// static reading already reported (a pod or container with no context from values), and
/// values paths left to a person, are not reported twice.
fn record_short(set: &SetReport, problems: &[Problem], reports: &mut [FileReport]) {
    let Some(first) = problems.first() else {
        return;
    };
    let origin = first.origin.clone().unwrap_or_default();
    let Some((part, template)) = set
        .parts
        .iter()
        .rev()
        .find_map(|p| p.template(&origin).map(|t| (p, t.to_string())))
    else {
        return;
    };
    if part.wiring.gaps.contains_key(Path::new(&template)) {
        return;
    }
    let feeding: Vec<&super::Target> = part
        .wiring
        .targets
        .iter()
        .filter(|t| t.used_at.iter().any(|(p, _)| p == Path::new(&template)))
        .collect();
    let left_alone = |report: &FileReport| {
        report.skipped_pods.iter().any(|s| {
            let name = &report.workloads[s.workload].name;
            feeding.iter().any(|t| &t.path == name)
        })
    };
    let main = part.main.as_deref();
    if reports
        .iter()
        .filter(|r| Some(r.path.as_path()) == main)
        .any(left_alone)
    {
        return;
    }
    let at = set.at.or(main);
    let Some(index) = reports
        .iter()
        .position(|r| Some(r.path.as_path()) == at)
        .or_else(|| reports.iter().position(|r| Some(r.path.as_path()) == main))
    else {
        return;
    };
    let report = &mut reports[index];
    let object = first.object.to_string();
    let responsible = |level: Level| {
        feeding
            .iter()
            .find(|t| t.level == level)
            .map(|t| t.path.clone())
    };
    let mut controls = Vec::new();
    let mut paths = Vec::new();
    for problem in problems {
        let ProblemKind::Short { container, .. } = &problem.kind else {
            continue;
        };
        let level = if container.is_some() {
            Level::Container
        } else {
            Level::Pod
        };
        let path = responsible(level);
        let workload = workload_for(
            report,
            path.as_deref(),
            &first.object.kind,
            &first.object.name,
        );
        let line = report.workloads[workload].line;
        report
            .findings
            .extend(problem.kind.short_finding(workload, line));
        controls.extend(problem.kind.short_label());
        if let Some(p) = path {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    controls.dedup();
    let path = paths.first().cloned();
    let workload = workload_for(
        report,
        path.as_deref(),
        &first.object.kind,
        &first.object.name,
    );
    let line = report.workloads[workload].line;
    let from = format!(" (from {origin})");
    let responsible = match paths.as_slice() {
        [] => "; no values path feeds those fields: the template writes them".to_string(),
        _ => format!(
            "; the values feeding them: {}",
            paths
                .iter()
                .map(|p| format!("`.Values.{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    report.notes.push(Note {
        workload,
        container: None,
        kind: NoteKind::Risk,
        message: format!(
            "renders short of the baseline: `helm template` with {} renders {object}{from} without {}{responsible}",
            set.set.describe(),
            controls.join(", "),
        ),
        line,
    });
}

/// The report's workload for the values path (its own), else one for the rendered object.
fn workload_for(report: &mut FileReport, path: Option<&str>, kind: &str, name: &str) -> usize {
    let own = path.and_then(|p| {
        report
            .workloads
            .iter()
            .position(|w| w.kind == "values" && w.name == p)
    });
    if let Some(own) = own {
        return own;
    }
    if let Some(found) = report
        .workloads
        .iter()
        .position(|w| w.kind == kind && w.name == name)
    {
        return found;
    }
    report.add_workload(kind, name, 1);
    report.workloads.len() - 1
}

fn note_on(reports: &mut [FileReport], file: Option<&Path>, message: String) {
    let Some(file) = file else { return };
    if let Some(r) = reports.iter_mut().find(|r| r.path == file) {
        r.notes.push(Note {
            workload: Note::FILE,
            container: None,
            kind: NoteKind::Risk,
            message,
            line: 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_sets_are_values_yaml_then_the_overrides_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "values.yaml",
            "values-prod.yaml",
            "values-a.yaml",
            "Chart.yaml",
        ] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("ci")).unwrap();
        std::fs::write(dir.path().join("ci/lint-values.yaml"), "").unwrap();
        let sets: Vec<String> = value_sets(dir.path())
            .iter()
            .map(ValueSet::describe)
            .collect();
        assert_eq!(
            sets,
            vec![
                "values.yaml",
                "values-a.yaml",
                "values-prod.yaml",
                "ci/lint-values.yaml"
            ]
        );
    }
}
