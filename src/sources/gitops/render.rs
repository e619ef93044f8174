//! The render check of a release, with Helm's engine: its chart rendered with the values over
//! its defaults (the values from elsewhere, the inline values, Argo's parameters) before the
//! edits and after them, the inline values read back from the new text of the manifest. The
//! two renders are judged ([`crate::verify::rendered`]): a release that breaks fails the file,
//! one that renders short is reported on it.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::helm::engine::{object_key, sources_by_object, Engine};
use crate::policy::{Note, NoteKind};
use crate::report::{FileError, FileReport, RenderMode, Settings, Status};
use crate::verify::rendered::{judge, ProblemKind};

use super::release::{RenderInput, SitePath};
use super::values::merge;

/// Said once per run when no `helm` is found and the mode is `auto`.
static SKIP_SAID: AtomicBool = AtomicBool::new(false);

/// Renders each release of the file before and after its edits and records the verdict.
pub fn check(inputs: &[RenderInput], report: &mut FileReport, settings: &Settings) {
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
        check_one(&engine, input, new_text.as_deref(), report, settings);
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
) {
    let before = match render(engine, input, &input.before) {
        Ok(stream) => stream,
        Err(e) if crate::helm::engine::timed_out(&e) => {
            // Not proven, so not written.
            let message = format!(
                "its chart ({}): {e}: not render-checked; nothing written for it",
                input.chart.origin
            );
            if matches!(report.status, Status::Changed { .. }) {
                fail(report, &message);
            }
            return note(report, input.workload, input.line, message);
        }
        Err(e) => {
            let message = format!(
                "its chart ({}) does not render, before any edit: not render-checked; {e}",
                input.chart.origin
            );
            return note(report, input.workload, input.line, message);
        }
    };
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
    let after = match render(engine, input, &after_values) {
        Ok(stream) => stream,
        Err(e) => {
            return fail(
                report,
                &format!(
                    "its chart ({}) renders before the edits and fails after: {e}",
                    input.chart.origin
                ),
            );
        }
    };
    let sources = sources_by_object(&after);
    let origin = |o: &yaml_serde::Value| sources.get(&object_key(o)).cloned();
    let problems = match judge(&before, &after, &settings.rules, &origin) {
        Ok(problems) => problems,
        Err(e) => return fail(report, &e),
    };
    let mut short = Vec::new();
    for problem in problems {
        match problem.kind {
            ProblemKind::Broken(why) => {
                return fail(
                    report,
                    &format!(
                        "in the render of its chart ({}), {} {why}",
                        input.chart.origin, problem.object
                    ),
                );
            }
            short_kind => {
                let name = short_kind.short_label().unwrap_or_default();
                let from = problem
                    .origin
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default();
                short.push(format!("{}{from} without {name}", problem.object));
                report
                    .findings
                    .extend(short_kind.short_finding(input.workload, input.line));
            }
        }
    }
    short.dedup();
    if !short.is_empty() {
        let message = format!(
            "renders short of the baseline: `helm template` of its chart ({}) with these values renders {}: the chart's templates do not take those fields from values",
            input.chart.origin,
            short.join("; ")
        );
        note(report, input.workload, input.line, message);
    }
}

/// `helm template` of the release's chart with `values` over its defaults.
fn render(engine: &Engine, input: &RenderInput, values: &Value) -> Result<String, String> {
    let dir = crate::process::scratch_dir("kube-harden-values-")
        .map_err(|e| format!("no temporary folder: {e}"))?;
    let file = dir.path().join("values.yaml");
    let text = serde_json::to_string(values).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    engine.template(&input.chart.dir, &[file])
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
