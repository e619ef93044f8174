//! GitOps releases: the Helm values that Flux `HelmRelease`s and Argo CD `Application`s and
//! `ApplicationSet`s carry inline, hardened for the chart they install.
//!
//! [`model`] reads the releases of a manifest (the chart each names, where its inline values
//! are); [`chart`] gets the chart (in this repository, or from a chart repository through the
//! cache) and the values Helm merges before the inline ones, with the objects of the run that
//! a release names ([`index`]); [`values`] plans the effective values with the policy and says
//! what the inline values need; [`release`] turns that into edits of the manifest
//! ([`edit`]: the mapping, or the `values: |` string), and [`render`] proves them with Helm's
//! engine. The workloads of the same file are planned as plain manifests are, by the policy.
//! How a chart's templates wire values is the chart source's knowledge: the pipeline hands in
//! a function for it ([`release::ReadChart`]).

pub mod built;
pub mod chart;
pub mod edit;
pub mod images;
pub mod index;
pub mod model;
pub mod post_render;
pub mod release;
pub mod render;
pub mod substitute;
pub mod values;

use std::path::Path;

use yaml_splice::Tree;

use crate::input::tab_indentation;
use crate::policy;
use crate::report::{FileError, FileReport, Settings, Status};

pub use chart::Repository;
pub use release::{ChartFacts, ReadChart};

/// Processes one manifest that declares releases: parse, plan its workloads and its releases,
/// edit, verify, and the render check of each release. Gives the text back when it declares
/// none after all (a plain manifest, for its own source).
pub fn process_text(
    path: &Path,
    text: String,
    settings: &Settings,
    repo: &Repository,
    read_chart: &ReadChart<'_>,
) -> Result<FileReport, String> {
    let declares = Tree::parse(&text).is_ok_and(|tree| !model::releases(&tree).is_empty());
    if !declares {
        return Err(text);
    }
    let mut report = FileReport::new(path, Status::Unchanged);
    let mut renders = Vec::new();
    report.status = match harden(&text, settings, repo, read_chart, &mut report, &mut renders) {
        Ok(status) => status,
        Err(e) => Status::Failed(e),
    };
    report.original = Some(text);
    render::check(&renders, &mut report, settings, repo.apply_patches);
    Ok(report)
}

/// The edits a manifest's releases need: changes of its nodes, splices inside values
/// strings with their meaning, and what each release's render check needs once the new text
/// is known ([`render::check`]).
#[derive(Default)]
pub struct Edits {
    pub changes: Vec<yaml_splice::Change>,
    pub splices: Vec<yaml_splice::Splice>,
    pub ops: Vec<yaml_splice::SemanticOp>,
    pub renders: Vec<release::RenderInput>,
}

/// Plans `releases` of the manifest `tree` into `report`.
pub fn plan_releases(
    tree: &Tree,
    releases: &[model::Release],
    repo: &Repository,
    read_chart: &ReadChart<'_>,
    settings: &Settings,
    report: &mut FileReport,
) -> Result<Edits, FileError> {
    let mut edits = Edits::default();
    for release in releases {
        let planned = release::plan(tree, release, repo, read_chart, settings, report)?;
        edits.changes.extend(planned.changes);
        edits.splices.extend(planned.splices);
        edits.ops.extend(planned.ops);
        edits.renders.extend(planned.render);
    }
    Ok(edits)
}

fn harden(
    text: &str,
    settings: &Settings,
    repo: &Repository,
    read_chart: &ReadChart<'_>,
    report: &mut FileReport,
    renders: &mut Vec<release::RenderInput>,
) -> Result<Status, FileError> {
    if let Some(e) = tab_indentation(text) {
        return Err(e);
    }
    let tree = Tree::parse(text)?;
    let plan = policy::plan(&tree, &settings.rules);
    if let Some(refusal) = plan.refusals.first() {
        return Err(refusal.clone().into());
    }
    let mut changes = plan.changes;
    report.workloads = plan.workloads;
    report.findings = plan.findings;
    report.skipped_pods = plan.skipped;
    report.notes = plan.notes;
    let edits = plan_releases(
        &tree,
        &model::releases(&tree),
        repo,
        read_chart,
        settings,
        report,
    )?;
    changes.extend(edits.changes);
    let (splices, ops) = (edits.splices, edits.ops);
    renders.extend(edits.renders);
    if changes.is_empty() && splices.is_empty() {
        return Ok(Status::Unchanged);
    }
    let outcome = crate::apply::edit(&tree, changes, splices, ops, None)?;
    report.edit_notes = outcome.notes;
    Ok(Status::Changed {
        new_text: outcome.text,
    })
}
