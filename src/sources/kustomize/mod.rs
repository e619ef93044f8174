//! Kustomize trees: what `kustomize build` deploys is hardened, and proven by building.
//!
//! Every kustomization in the walked paths is read ([`model`]); together they form apps
//! ([`forest`]): kustomizations joined by what they include, with the role of every file they
//! bring in. A resource is planned as a plain manifest (by the function the pipeline hands in:
//! this source does not know the others); a patch is planned for the base it meets
//! ([`patch`]): a strategic-merge patch only corrects what it writes, and fully hardens the
//! containers it adds, a JSON 6902 patch is planned by the level its path names, an inline
//! patch is a document embedded in the kustomization ([`yaml_splice::Embedded`]). Then each root is built
//! with Kustomize's own engine before and after the edits ([`build`], [`render`]) and the two
//! renders are judged ([`crate::verify::rendered`]): a root that breaks means nothing of the app is written.

pub mod build;
pub mod forest;
pub mod model;
pub mod patch;
pub mod render;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::report::{FileReport, Settings};
use forest::{App, Forest, Role};
use model::normalise;

/// How a plain manifest is planned (the pipeline hands in the manifest source's function).
pub type PlanResource = dyn Fn(&Path, &Settings) -> FileReport + Sync;

/// What a kustomization's `helmCharts` entries need (planned by the function the pipeline
/// hands in: the GitOps source's release planning): changes of the kustomization's nodes,
/// splices with their meaning, and the step that runs once the new text is known.
pub struct ChartEdits<'a> {
    pub changes: Vec<yaml_splice::Change>,
    pub splices: Vec<yaml_splice::Splice>,
    pub ops: Vec<yaml_splice::SemanticOp>,
    pub finish: Finish<'a>,
}

/// A step on a report once its status is known.
pub type Finish<'a> = Box<dyn FnOnce(&mut FileReport) + 'a>;

/// Plans the `helmCharts` entries of the kustomization at the path, parsed, into its report.
pub type PlanHelmCharts<'a> = dyn Fn(
        &Path,
        &yaml_splice::Tree,
        &mut FileReport,
    ) -> Result<ChartEdits<'a>, crate::report::FileError>
    + Sync
    + 'a;

/// Plans the files of one app that the walk found (`listed`), then runs the render check.
pub fn process_app(
    app: &App,
    listed: &[PathBuf],
    forest: &Forest,
    settings: &Settings,
    plan_resource: &PlanResource,
    plan_helm_charts: &PlanHelmCharts<'_>,
) -> Vec<FileReport> {
    let before = render::before(app, forest, settings);
    let exemptions = match &before {
        Ok(before) => render::left_alone_bases(before, &settings.rules),
        Err(_) => Default::default(),
    };
    let mut reports: Vec<FileReport> = listed
        .par_iter()
        .map(|path| {
            let key = normalise(path);
            let own;
            let settings = match exemptions.get(&std::fs::canonicalize(path).unwrap_or(key.clone()))
            {
                Some(extra) => {
                    let mut s = settings.clone();
                    s.rules.exemptions.extend(extra.iter().cloned());
                    own = s;
                    &own
                }
                None => settings,
            };
            match app.roles.get(&key) {
                Some(Role::Patch(uses)) => patch::process_patch_file(path, uses, forest, settings),
                Some(Role::Kustomization) => {
                    patch::process_kustomization(path, forest, settings, plan_helm_charts)
                }
                Some(Role::Resource) | None => plan_resource(path, settings),
            }
        })
        .collect();
    note_files_not_in_the_run(app, listed, forest, &mut reports);
    match before {
        Ok(before) => render::after(before, app, forest, &mut reports, &settings.rules),
        Err(reason) => render::unchecked(reason, app, &mut reports),
    }
    let services = forest.service_dirs(app);
    for report in &mut reports {
        report.service_dir = services.get(&normalise(&report.path)).cloned();
    }
    reports
}

/// Says, on the kustomization that brings it in, each file of the app that this run does not
/// plan (outside the walked paths, or excluded by the configuration): it is not edited here.
fn note_files_not_in_the_run(
    app: &App,
    listed: &[PathBuf],
    forest: &Forest,
    reports: &mut [FileReport],
) {
    use crate::policy::{Note, NoteKind};
    let planned: std::collections::BTreeSet<PathBuf> =
        listed.iter().map(|p| normalise(p)).collect();
    for file in app.roles.keys().filter(|f| !planned.contains(*f)) {
        let Some((kustomization, line)) = forest.brought_in_by(file) else {
            continue;
        };
        let Some(report) = reports
            .iter_mut()
            .find(|r| normalise(&r.path) == kustomization)
        else {
            continue;
        };
        report.notes.push(Note {
            workload: Note::FILE,
            container: None,
            kind: NoteKind::Risk,
            message: format!(
                "{} is not among the files of this run (outside the walked paths, or excluded): not hardened or checked here",
                file.display()
            ),
            line,
        });
    }
}
