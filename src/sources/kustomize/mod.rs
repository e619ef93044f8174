//! Kustomize trees: what `kustomize build` deploys is hardened, and proven by building.
//!
//! Every kustomization in the walked paths is read ([`model`]); together they form apps
//! ([`forest`]): kustomizations joined by what they include, with the role of every file they
//! bring in. A resource is planned as a plain manifest (by the function the pipeline hands in:
//! this source does not know the others); a patch is planned for the base it meets
//! ([`patch`]): a strategic-merge patch only corrects what it writes, and fully hardens the
//! containers it adds, a JSON 6902 patch is planned by the level its path names, an inline
//! patch is a document embedded in the kustomization ([`yaml_splice::Embedded`]). Image facts are
//! those of the images the builds ship, which a kustomization's `images:` or a patch may set
//! ([`shipped`]). Then each root is built
//! with Kustomize's own engine before and after the edits ([`build`], [`render`]) and the two
//! renders are judged ([`crate::verify::rendered`]): a root that breaks means nothing of the app is written.

pub mod build;
pub mod forest;
pub mod model;
pub mod patch;
pub mod releases;
pub mod render;
pub mod shipped;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::report::{FileReport, Settings};
use forest::{App, Forest, Role};
use model::normalise;

/// How a plain manifest is planned (the pipeline hands in the manifest source's function).
pub type PlanResource<'a> = dyn Fn(&Path, &Settings) -> FileReport + Sync + 'a;

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

/// What the other sources do for a Kustomize app (functions the pipeline hands in: this
/// source does not know them).
pub struct Planners<'p, 'a> {
    /// A plain manifest.
    pub resource: &'p PlanResource<'a>,
    /// A resource file with its GitOps releases, planned on the file alone: when the app's
    /// roots cannot be built, so that releases are not planned on what they build.
    pub resource_with_releases: &'p PlanResource<'a>,
    pub helm_charts: &'p PlanHelmCharts<'a>,
    /// The GitOps releases the roots build.
    pub releases: &'p releases::PlanReleases<'a>,
}

/// Plans the files of one app that the walk found (`listed`), then runs the render check.
pub fn process_app(
    app: &App,
    listed: &[PathBuf],
    forest: &Forest,
    settings: &Settings,
    planners: &Planners<'_, '_>,
) -> Vec<FileReport> {
    let before = render::before(app, forest, settings);
    let exemptions = match &before {
        Ok(before) => render::left_alone_bases(before, &settings.rules),
        Err(_) => Default::default(),
    };
    let built = match &before {
        Ok(before) => releases::built(before, app, forest),
        Err(_) => vec![],
    };
    let mut release_edits = match built.is_empty() {
        true => releases::ReleaseEdits::default(),
        false => (planners.releases)(&built),
    };
    let plan_resource = match &before {
        Ok(_) => planners.resource,
        Err(_) => planners.resource_with_releases,
    };
    let shipped = match &before {
        Ok(before) if settings.rules.images.is_on() => shipped::Shipped::of(before, forest),
        _ => shipped::Shipped::default(),
    };
    let mut reports: Vec<FileReport> = listed
        .par_iter()
        .map(|path| {
            let key = normalise(path);
            let extra = exemptions.get(&std::fs::canonicalize(path).unwrap_or(key.clone()));
            let role = app.roles.get(&key);
            let lookup = match role {
                Some(Role::Resource) | None => shipped.lookup_for(path, &settings.rules.images),
                _ => None,
            };
            let own;
            let settings = match (extra, lookup) {
                (None, None) => settings,
                (extra, lookup) => {
                    let mut s = settings.clone();
                    s.rules
                        .exemptions
                        .extend(extra.into_iter().flatten().cloned());
                    if let Some(lookup) = lookup {
                        s.rules.images = lookup;
                    }
                    own = s;
                    &own
                }
            };
            match role {
                Some(Role::Patch(uses)) => {
                    patch::process_patch_file(path, uses, forest, settings, &shipped)
                }
                Some(Role::Kustomization) => patch::process_kustomization(
                    path,
                    forest,
                    settings,
                    planners.helm_charts,
                    &shipped,
                ),
                Some(Role::Generated) => generated_file(path, settings),
                Some(Role::Resource) | None => {
                    let mut report = plan_resource(path, settings);
                    shipped.name_shipped_images(&mut report);
                    report
                }
            }
        })
        .collect();
    let release_services = releases::apply(&mut release_edits, &mut reports);
    if before.is_err() {
        releases::note_planned_alone(app, &mut reports);
    }
    note_files_not_in_the_run(app, listed, forest, &mut reports);
    match before {
        Ok(before) => render::after(
            before,
            app,
            forest,
            &mut reports,
            &settings.rules,
            &release_edits,
        ),
        Err(reason) => render::unchecked(reason, app, &mut reports),
    }
    let mut services = forest.service_dirs(app);
    services.extend(release_services);
    for report in &mut reports {
        report.service_dir = services.get(&normalise(&report.path)).cloned();
    }
    reports
}

/// A file a `configMapGenerator` reads, as read: only a GitOps release that takes its values
/// from that ConfigMap edits it.
fn generated_file(path: &Path, settings: &Settings) -> FileReport {
    match crate::input::read_text(path, settings.max_file_bytes) {
        Ok(text) => {
            let mut report = FileReport::new(path, crate::report::Status::Unchanged);
            report.original = Some(text);
            report
        }
        Err(status) => FileReport::new(path, status),
    }
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
