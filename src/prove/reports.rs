//! The seam between a run and the proof: what ships before and after, parsed whole, gives the
//! containers to prove. Rendered streams (a Kustomize root's build, a chart's render, made by the
//! pipeline) are preferred for the files they cover; any other changed file gives its own
//! objects (the file as read, the verified new text). Changed files that give no container
//! (a values file or a patch that was not rendered) are named as not proven.

use std::path::PathBuf;

use serde_json::Value;

use crate::report::{FileReport, Status};

use super::Case;

/// A rendered stream before and after the change, and the changed files it covers (a GitOps
/// release's render check keeps its own in its report).
pub use crate::report::RenderedStreams as Rendered;

/// The containers to prove from `rendered` streams and `reports`, and the changed files that
/// gave none.
pub fn cases_of(reports: &[FileReport], rendered: &[Rendered]) -> (Vec<Case>, Vec<PathBuf>) {
    let mut cases = Vec::new();
    let mut unproven = Vec::new();
    let mut covered: Vec<&PathBuf> = Vec::new();
    for stream in rendered {
        if let (Some(before), Some(after)) = (objects(&stream.before), objects(&stream.after)) {
            let found = super::changed_containers(&stream.origin, &before, &after);
            cases.extend(found.into_iter().map(|case| Case {
                files: stream.files.clone(),
                ..case
            }));
            covered.extend(&stream.files);
        }
    }
    for report in reports {
        let (Status::Changed { new_text }, Some(original)) = (&report.status, &report.original)
        else {
            continue;
        };
        if covered.contains(&&report.path) {
            continue;
        }
        let origin = report.path.display().to_string();
        let found = match (objects(original), objects(new_text)) {
            (Some(before), Some(after)) => super::changed_containers(&origin, &before, &after),
            _ => vec![],
        };
        if found.is_empty() {
            unproven.push(report.path.clone());
        }
        cases.extend(found.into_iter().map(|case| Case {
            files: vec![report.path.clone()],
            ..case
        }));
    }
    (cases, unproven)
}

/// Every document of `text` as plain data; `None` when one does not load.
fn objects(text: &str) -> Option<Vec<Value>> {
    let documents = crate::verify::load_all(text).ok()?;
    Some(
        documents
            .iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_changed_manifest_gives_its_containers_and_a_values_file_is_named() {
        let mut manifest = FileReport::new(
            Path::new("k8s/web.yaml"),
            Status::Changed {
                new_text: "kind: Pod\nmetadata: {name: web}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers: [{name: web, image: 'w:1'}]\n".into(),
            },
        );
        manifest.original = Some(
            "kind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: 'w:1'}]\n"
                .into(),
        );
        let mut values = FileReport::new(
            Path::new("chart/values.yaml"),
            Status::Changed {
                new_text: "securityContext: {runAsNonRoot: true}\n".into(),
            },
        );
        values.original = Some("securityContext: {}\n".into());
        let (cases, unproven) = cases_of(&[manifest, values], &[]);
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].workload, "Pod/web");
        assert_eq!(cases[0].origin, "k8s/web.yaml");
        assert_eq!(unproven, [PathBuf::from("chart/values.yaml")]);
    }
}
