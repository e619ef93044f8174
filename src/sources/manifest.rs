//! Plain manifests: one file through the stages (read, gate, parse, plan, edit, verify), its
//! workloads planned by the policy and its edits checked by [`crate::verify`]. Pure: writes
//! nothing.

use std::path::Path;

use crate::apply::apply_plan;
use crate::input::{read_text, tab_indentation};
use crate::policy::{self, Note};
use crate::report::{FileError, FileReport, Settings, Status};
use crate::verify::{original_documents_load, VerifyError};
use yaml_splice::{Ref, Tree};

/// Runs every stage up to verification for the file at `path`.
pub fn process_file(path: &Path, settings: &Settings) -> FileReport {
    match read_text(path, settings.max_file_bytes) {
        Ok(text) => process_text(path, text, settings),
        Err(status) => FileReport::new(path, status),
    }
}

/// Stages after reading: gate, parse, plan, edit, verify.
pub fn process_text(path: &Path, text: String, settings: &Settings) -> FileReport {
    let mut report = FileReport::new(path, Status::Unchanged);
    report.status = match harden(&text, settings, &mut report) {
        Ok(status) => status,
        Err(e) => Status::Failed(e),
    };
    report.original = Some(text);
    report
}

fn harden(text: &str, settings: &Settings, report: &mut FileReport) -> Result<Status, FileError> {
    // `{{` makes a file a template only when it does not read as YAML without rendering: a
    // `{{PROJECT_ID}}` inside a command string is just text.
    let template = || Ok(Status::Skipped("Helm template syntax (`{{`)".into()));
    let has_braces = text.contains("{{");
    if let Some(e) = tab_indentation(text) {
        return if has_braces { template() } else { Err(e) };
    }
    let (tree, original_loads) = match parse(text) {
        Ok(parsed) => parsed,
        Err(_) if has_braces => return template(),
        Err(e) => return Err(e),
    };
    if has_braces && original_loads.is_none() && original_documents_load(text).is_err() {
        return template();
    }
    let is_object = |d: &yaml_splice::tree::Document| {
        d.root
            .is_some_and(|id| policy::is_kubernetes_object(&tree, Ref::root(id)))
    };
    if !tree.docs.iter().any(is_object) {
        if tree.docs.iter().any(|d| d.opaque) {
            // Large documents without a pod spec, left as text: nothing to change.
            return Ok(Status::Unchanged);
        }
        return Ok(Status::Skipped("not a Kubernetes object".into()));
    }
    let plan = policy::plan(&tree, &settings.rules);
    let status = apply_plan(&tree, plan, report, original_loads);
    note_root_dockerfile(report, &settings.dockerfiles);
    status
}

/// Parses `text` for the policy; for a large stream, also checks that its documents load with
/// yaml_serde (which verification needs), returned beside the tree.
///
/// A large stream is parsed while yaml_serde loads it, so the biggest document's two parses
/// are not one after the other on one core. Its documents that cannot hold a pod spec (see
/// [`policy::may_hold_pod_spec`]) are left as text: a stream of that size is usually CRDs with
/// one or two workloads. yaml_serde still reads them all; when it refuses one, the stream is
/// parsed in full after all, so a syntax error is reported as the engine sees it.
fn parse(text: &str) -> Result<(Tree<'_>, Option<Result<(), VerifyError>>), FileError> {
    if text.len() < yaml_splice::PARALLEL_PARSE_MIN {
        return Ok((Tree::parse(text)?, None));
    }
    let (tree, loads) = rayon::join(
        || Tree::parse_where(text, &policy::may_hold_pod_spec),
        || original_documents_load(text),
    );
    let tree = match loads {
        Ok(()) => tree?,
        Err(_) => Tree::parse(text)?,
    };
    Ok((tree, Some(loads)))
}

/// Notes the service's Dockerfile (beside the manifest, one folder up, or elsewhere in the
/// repository in a folder named like an image) when its final stage runs as root: the pod's
/// runAsUser overrides it, but files in the image still belong to root, and other deployments
/// of the image do not get the fix.
fn note_root_dockerfile(report: &mut FileReport, dockerfiles: &crate::dockerfile::DockerfileIndex) {
    use crate::dockerfile::{final_stage_user, find_for_image};
    if report.workloads.is_empty() {
        return;
    }
    let by_image = || {
        let mut images = report.workloads.iter().flat_map(|w| &w.images);
        images
            .find_map(|i| find_for_image(i, dockerfiles.get()))
            .cloned()
    };
    let Some(dockerfile) = dockerfiles
        .find_for_manifest(&report.path)
        .or_else(by_image)
    else {
        return;
    };
    let runs_as = std::fs::read_to_string(&dockerfile)
        .ok()
        .and_then(|t| final_stage_user(&t));
    if !runs_as.is_some_and(|r| r.is_root()) {
        return;
    }
    report.notes.push(Note {
        workload: 0,
        container: None,
        kind: policy::NoteKind::Risk,
        message: format!(
            "the image built from {} runs as root (no `USER`, or `USER root`, in its final stage): add `USER 1000` to it, or run `fix --fix-dockerfiles`",
            dockerfile.display()
        ),
        line: report.workloads[0].line,
    });
    report.root_dockerfile = Some(dockerfile);
}
