//! The run over a set of paths: discovery, then each source turns its files into reports in
//! parallel (a plain manifest alone, a Helm chart's files together, a Kustomize app's files
//! together), each report handed to the caller's delivery as soon as it is ready. This is the
//! only module that knows every source. For the start proof it also renders what ships before
//! and after a change ([`rendered_changes`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::discover::Found;
use crate::report::{FileError, FileReport, Settings, Status};
use crate::sources::kustomize::{self, forest::Forest, model::normalise};
use crate::sources::{chart, gitops, manifest};

/// Plans one plain manifest from `text`, its content somewhere other than the work tree (on the
/// base branch, for `pr`). A chart's values are planned with its templates, never alone.
pub fn process_text(path: &Path, text: String, settings: &Settings) -> FileReport {
    manifest::process_text(path, text, settings)
}

/// Whether a manifest's text is planned only with the rest of the checkout (it declares
/// GitOps releases, whose charts and named objects are read from the run), so that
/// [`process_text`] alone cannot plan it.
pub fn planned_with_the_checkout(text: &str) -> bool {
    gitops::model::may_declare_release(text)
}

/// Discovers the files under `roots` and processes them in parallel; reports sorted by path.
/// `deliver` sees each report as soon as it is ready, on the worker that made it (so writes
/// overlap with the processing of other files); it may turn a report into a failure.
pub fn scan(
    roots: &[PathBuf],
    settings: &Settings,
    deliver: &(dyn Fn(&mut FileReport) + Sync),
) -> Vec<FileReport> {
    use crate::discover::{HELM_TEMPLATE, HELM_VALUES};
    use rayon::prelude::*;
    let mut found = discover_with_dockerfiles(roots, &settings.dockerfiles);
    if let Some((root, matcher)) = &settings.exclude {
        for (f, _) in &mut found {
            if let Found::Candidate(path) | Found::Skipped(path, HELM_VALUES | HELM_TEMPLATE) = f {
                let absolute = std::fs::canonicalize(&*path).unwrap_or_else(|_| path.clone());
                if absolute
                    .strip_prefix(root)
                    .is_ok_and(|rel| matcher.is_excluded(rel))
                {
                    *f = Found::Skipped(path.clone(), "excluded by the configuration");
                }
            }
        }
    }
    // Largest files first, so that one big stream does not start last and finish alone.
    found.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
    let found: Vec<Found> = found.into_iter().map(|(f, _)| f).collect();
    let gitops = GitOps::new(&found, settings);
    let (kustomize_jobs, found, forest) = kustomize_jobs(found, settings);
    let mut jobs = kustomize_jobs;
    jobs.extend(chart_jobs(found));
    let mut reports: Vec<FileReport> = jobs
        .into_par_iter()
        // One job per task: a worker that runs out of work can then take any job not started
        // (rayon would otherwise hand out runs of jobs, and the last run ends on one core).
        .with_max_len(1)
        .flat_map_iter(|job| {
            let mut reports = match job {
                Job::Kustomize(app, listed) => kustomize::process_app(
                    &app,
                    &listed,
                    &forest,
                    settings,
                    &kustomize::Planners {
                        resource: &manifest::process_file,
                        resource_with_releases: &|path, settings| {
                            gitops.process_file(path, settings)
                        },
                        helm_charts: &|path, tree, report| {
                            gitops.plan_helm_charts(path, tree, report, settings)
                        },
                        releases: &|built| gitops.plan_built_releases(built, settings),
                    },
                ),
                Job::Chart(chart, listed) => chart_reports(&chart, &listed, settings),
                Job::File(found) => vec![match found {
                    Found::Candidate(path) => gitops.process_file(&path, settings),
                    Found::Skipped(path, reason) => {
                        FileReport::new(&path, Status::Skipped(reason.to_string()))
                    }
                    Found::Error(path, message) => {
                        FileReport::new(&path, Status::Failed(FileError::at_start(message)))
                    }
                }],
            };
            for report in &mut reports {
                deliver(report);
            }
            reports
        })
        .collect();
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    reports
}

/// Walks `roots`; the repository's Dockerfiles (images are matched by name) come from the same
/// walk when it covers the repository, else they are listed on another core meanwhile (a
/// worker that asked for them later would hold up the others waiting for the same list).
fn discover_with_dockerfiles(
    roots: &[PathBuf],
    index: &crate::dockerfile::DockerfileIndex,
) -> Vec<(Found, u64)> {
    use crate::discover::discover;
    match roots {
        [root] if index.is_rooted_at(root) => {
            let discovery = discover(roots);
            index.set_from_walk(root, discovery.dockerfiles);
            discovery.found
        }
        _ => rayon::join(|| discover(roots), || index.get()).0.found,
    }
}

/// The token offered when a chart's git repository asks for one: `pr`'s (`--token-env`, else
/// `GITHUB_TOKEN`), to https://github.com and to the server of this repository's `origin` only.
fn git_credentials(
    repository: &crate::report::RepositoryInfo,
) -> crate::helm::repository::git::Credentials {
    let mut servers = vec!["https://github.com"];
    servers.extend(repository.origin.as_deref());
    let variable = repository.token_env.as_deref().unwrap_or("GITHUB_TOKEN");
    crate::helm::repository::git::Credentials::new(std::env::var(variable).ok(), &servers)
        .named(variable)
}

/// What GitOps releases need from the run: the files it found (to look up the objects a
/// release names, read once and only when a file declares a release), and the chart source's
/// reading of a chart folder.
struct GitOps {
    candidates: Vec<PathBuf>,
    index: std::sync::OnceLock<gitops::index::Index>,
    /// The values.yaml files of the charts this run hardens (canonical paths): a release of
    /// such a chart is planned on the chart's defaults as the run leaves them.
    chart_values: Vec<PathBuf>,
    /// Where charts from chart repositories are kept (`--chart-cache`).
    cache: crate::helm::repository::ChartCache,
    /// Checkouts of other git repositories that hold charts (under the same cache).
    git: crate::helm::repository::git::GitCharts,
}

impl GitOps {
    fn new(found: &[Found], settings: &Settings) -> GitOps {
        use crate::discover::HELM_VALUES;
        let candidates = found
            .iter()
            .filter_map(|f| match f {
                Found::Candidate(path) => Some(path.clone()),
                _ => None,
            })
            .collect();
        let chart_values = found
            .iter()
            .filter_map(|f| match f {
                Found::Skipped(path, HELM_VALUES) => std::fs::canonicalize(path).ok(),
                _ => None,
            })
            .collect();
        let cache_root = settings
            .repository
            .chart_cache
            .clone()
            .unwrap_or_else(crate::helm::repository::ChartCache::default_root);
        let timeouts = crate::helm::repository::Timeouts::within(settings.render.timeout);
        let git = crate::helm::repository::git::GitCharts::new(&cache_root)
            .offline(settings.render.offline)
            .timeouts(timeouts)
            .credentials(git_credentials(&settings.repository));
        GitOps {
            git,
            candidates,
            index: std::sync::OnceLock::new(),
            chart_values,
            // `--offline`: the cache alone answers; each download is bounded by --engine-timeout.
            cache: crate::helm::repository::ChartCache::new(cache_root)
                .offline(settings.render.offline)
                .insecure_registries(settings.repository.insecure_registries.clone())
                .timeouts(crate::helm::repository::Timeouts::within(
                    settings.render.timeout,
                )),
        }
    }

    /// A plain manifest, or one that declares releases (planned by the GitOps source, which
    /// plans its workloads too).
    fn process_file(&self, path: &Path, settings: &Settings) -> FileReport {
        let text = match crate::input::read_text(path, settings.max_file_bytes) {
            Ok(text) => text,
            Err(status) => return FileReport::new(path, status),
        };
        if !gitops::model::may_declare_release(&text) {
            return manifest::process_text(path, text, settings);
        }
        let index = self.index(settings);
        let repo = gitops::Repository {
            root: settings.repository.root.as_deref(),
            origin: settings.repository.origin.as_deref(),
            index,
            fetch: &|url, chart, version| self.fetch(url, chart, version),
            fetch_git: &|url, revision| self.fetch_git(url, revision),
            unpack: &|archive| self.unpack(archive, settings),
            apply_patches: &|stream, patches| apply_patches(stream, patches, settings),
        };
        let read_chart = |dir: &Path| self.read_chart(dir, settings);
        gitops::process_text(path, text, settings, &repo, &read_chart)
            .unwrap_or_else(|text| manifest::process_text(path, text, settings))
    }

    /// The `helmCharts` entries of a kustomization, planned as releases.
    fn plan_helm_charts<'a>(
        &'a self,
        path: &Path,
        tree: &yaml_splice::Tree,
        report: &mut FileReport,
        settings: &'a Settings,
    ) -> Result<kustomize::ChartEdits<'a>, FileError> {
        let dir = path.parent().unwrap_or(Path::new(""));
        let releases = gitops::model::kustomize_releases(tree, dir);
        let edits = if releases.is_empty() {
            gitops::Edits::default()
        } else {
            let index = self.index(settings);
            let fetch = |url: &str, chart: &str, version: &str| self.fetch(url, chart, version);
            let repo = gitops::Repository {
                root: settings.repository.root.as_deref(),
                origin: settings.repository.origin.as_deref(),
                index,
                fetch: &fetch,
                fetch_git: &|url, revision| self.fetch_git(url, revision),
                unpack: &|archive: &Path| self.unpack(archive, settings),
                apply_patches: &|stream, patches| apply_patches(stream, patches, settings),
            };
            let read_chart = |dir: &Path| self.read_chart(dir, settings);
            gitops::plan_releases(tree, &releases, &repo, &read_chart, settings, report)?
        };
        let renders = edits.renders;
        Ok(kustomize::ChartEdits {
            changes: edits.changes,
            splices: edits.splices,
            ops: edits.ops,
            finish: Box::new(move |report: &mut FileReport| {
                gitops::render::check(&renders, report, settings, &|stream, patches| {
                    apply_patches(stream, patches, settings)
                })
            }),
        })
    }

    /// The releases the roots of a Kustomize app build, planned on what they build.
    fn plan_built_releases<'a>(
        &'a self,
        built: &[kustomize::releases::BuiltRelease],
        settings: &'a Settings,
    ) -> kustomize::releases::ReleaseEdits<'a> {
        use kustomize::releases::{FileEdit, ReleaseEdits, Verdict};
        let index = self.index(settings);
        let fetch = |url: &str, chart: &str, version: &str| self.fetch(url, chart, version);
        let unpack = |archive: &Path| self.unpack(archive, settings);
        let repo = gitops::Repository {
            root: settings.repository.root.as_deref(),
            origin: settings.repository.origin.as_deref(),
            index,
            fetch: &fetch,
            fetch_git: &|url, revision| self.fetch_git(url, revision),
            unpack: &unpack,
            apply_patches: &|stream, patches| apply_patches(stream, patches, settings),
        };
        let read_chart = |dir: &Path| self.read_chart(dir, settings);
        let generated: Vec<Vec<(String, String, PathBuf)>> = built
            .iter()
            .map(|b| {
                b.generated
                    .iter()
                    .map(|g| (g.configmap.clone(), g.key.clone(), g.file.clone()))
                    .collect()
            })
            .collect();
        let patches: Vec<Vec<gitops::built::PatchAt>> = built
            .iter()
            .map(|b| {
                use kustomize::releases::PatchRef;
                b.patches
                    .iter()
                    .map(|p| match p {
                        PatchRef::File(file) => gitops::built::PatchAt::File(file.clone()),
                        PatchRef::Inline {
                            kustomization,
                            line,
                        } => gitops::built::PatchAt::Inline {
                            kustomization: kustomization.clone(),
                            line: *line,
                        },
                    })
                    .collect()
            })
            .collect();
        let inputs: Vec<gitops::built::Input> = built
            .iter()
            .zip(&generated)
            .zip(&patches)
            .map(|((b, generated), patches)| gitops::built::Input {
                root: &b.root,
                object: &b.object,
                stream: &b.stream,
                base: &b.base,
                patches,
                other_patches: &b.other_patches,
                generated,
                one_of_several: b.one_of_several,
            })
            .collect();
        let planned = gitops::built::plan(&inputs, &repo, &read_chart, settings);
        let owners = planned.owners;
        let files = planned
            .files
            .into_iter()
            .map(|(path, (items, sites))| FileEdit {
                service_dir: match owners.get(&path).map(Vec::as_slice) {
                    Some([owner]) if *owner != path => owner.parent().map(Path::to_path_buf),
                    _ => None,
                },
                path,
                items,
                edit: (!sites.is_empty()).then(|| {
                    Box::new(move |text: &str| gitops::built::write(text, &sites))
                        as Box<kustomize::releases::EditText>
                }),
            })
            .collect();
        let renders = planned.renders;
        ReleaseEdits {
            files,
            proven_elsewhere: planned.proven_elsewhere,
            check: Some(Box::new(move |root: &Path, before: &str, after: &str| {
                let apply = |stream: &str, patches: &[gitops::post_render::Patch]| {
                    apply_patches(stream, patches, settings)
                };
                gitops::built::check(&renders, root, before, after, index, settings, &apply)
                    .into_iter()
                    .map(|v| Verdict {
                        file: v.base,
                        broken: v.broken,
                        notes: v.notes,
                        pods: v.pods,
                        streams: v.streams,
                    })
                    .collect()
            })),
        }
    }

    fn index(&self, settings: &Settings) -> &gitops::index::Index {
        self.index
            .get_or_init(|| gitops::index::Index::read(&self.candidates, settings.max_file_bytes))
    }

    /// A chart from an HTTP chart repository or an OCI registry, through the cache.
    fn fetch(
        &self,
        url: &str,
        chart: &str,
        version: &str,
    ) -> Result<gitops::chart::Located, String> {
        use crate::helm::repository::ChartRef;
        let fetched = self
            .cache
            .fetch(&ChartRef::new(url, chart, version))
            .map_err(|e| format!("its chart cannot be had: {e}"))?;
        // Offline, a range is answered by the cache alone: a newer match may exist.
        let offline_note = match self.cache.is_offline() && fetched.version != version.trim() {
            true => format!(" (--offline: the highest cached version that matches `{version}`)"),
            false => String::new(),
        };
        Ok(gitops::chart::Located {
            origin: format!(
                "`{}` {} from {} (sha256 {}){offline_note}",
                fetched.name,
                fetched.version,
                url.trim_end_matches('/'),
                &fetched.digest[..fetched.digest.len().min(12)]
            ),
            dir: fetched.dir,
        })
    }

    /// A revision of another git repository, checked out in the cache.
    fn fetch_git(
        &self,
        url: &str,
        revision: &crate::helm::repository::git::Revision,
    ) -> Result<gitops::chart::Located, String> {
        let checkout = self.git.checkout(url, revision)?;
        let shown = url.trim_end_matches('/');
        let origin = match &checkout.note {
            Some(note) => format!("{shown} at {}; {note}", checkout.resolved),
            None => format!("{shown} at {}", checkout.resolved),
        };
        Ok(gitops::chart::Located {
            dir: checkout.dir,
            origin,
        })
    }

    /// A chart archive vendored in the repository, unpacked into the cache.
    fn unpack(
        &self,
        archive: &Path,
        settings: &Settings,
    ) -> Result<gitops::chart::Located, String> {
        let shown = settings
            .repository
            .root
            .as_deref()
            .and_then(|root| archive.strip_prefix(root).ok())
            .unwrap_or(archive);
        let chart = self
            .cache
            .unpack_local(archive)
            .map_err(|e| format!("its chart cannot be had: {e}"))?;
        Ok(gitops::chart::Located {
            origin: format!(
                "`{}` {} from {} in this repository (sha256 {})",
                chart.name,
                chart.version,
                shown.display(),
                &chart.digest[..chart.digest.len().min(12)]
            ),
            dir: chart.dir,
        })
    }

    /// The chart source's reading of a chart folder, as the GitOps source needs it: the
    /// wiring of its templates (and of the helpers they include, a library chart's too) is
    /// resolved against each release's effective values.
    fn read_chart(&self, dir: &Path, settings: &Settings) -> Result<gitops::ChartFacts, String> {
        let (by_defaults, defaults) = chart::read_wiring(dir)?;
        let (chart_dir, rules) = (dir.to_path_buf(), settings.rules.clone());
        let wiring_for = move |effective: &serde_json::Value| {
            let mut wiring = chart::read_wiring_with(&chart_dir, effective);
            // A path the release turns off on purpose (`""`, `false`) is wired by the chart's
            // defaults, not by the effective values: kept, so the release is told.
            let turned_off = |path: &str| {
                let keys: Vec<&str> = path.split('.').collect();
                matches!(gitops::values::lookup(effective, &keys), Some(serde_json::Value::String(s)) if s.is_empty())
                    || gitops::values::lookup(effective, &keys)
                        == Some(&serde_json::Value::Bool(false))
            };
            for target in &by_defaults.targets {
                let known = wiring.targets.iter().any(|t| t.path == target.path);
                if !known && turned_off(&target.path) {
                    wiring.targets.push(target.clone());
                }
            }
            release_wiring(&chart_dir, &wiring, effective, &rules)
        };
        Ok(gitops::ChartFacts {
            defaults,
            hardened_defaults: self.hardened_defaults(dir, settings),
            wiring_for: Box::new(wiring_for),
        })
    }

    /// The chart's values.yaml as this run leaves it, when the run hardens it too.
    fn hardened_defaults(&self, dir: &Path, settings: &Settings) -> Option<String> {
        let values = dir.join("values.yaml");
        let canonical = std::fs::canonicalize(&values).ok()?;
        if !self.chart_values.contains(&canonical) {
            return None;
        }
        // As the chart source writes it: with the ids its images give (from a render).
        chart::plan_values_only(dir, std::slice::from_ref(&values), settings)
            .into_iter()
            .find_map(|r| match r.status {
                Status::Changed { new_text } => Some(new_text),
                _ => None,
            })
    }
}

/// The chart source's wiring of a chart for a release's effective values, in the GitOps
/// source's terms (the Target fields that decide how a path is planned, the per-field keys,
/// the guardrails).
fn release_wiring(
    chart_dir: &Path,
    wiring: &chart::ChartWiring,
    effective: &serde_json::Value,
    rules: &crate::policy::Rules,
) -> gitops::release::ReleaseWiring {
    use gitops::values::{Wired, WiredField};
    let wired = wiring
        .targets
        .iter()
        .map(|t| Wired {
            path: t.path.clone(),
            level: t.level,
            gated_by_enabled: t.gated_by_enabled,
            gated_beside: t.gated_beside,
            create: t.create,
            complete: t.complete,
            falls_back: t.falls_back,
            holds_pod_ids: t.holds_pod_ids,
            containers: t.containers.clone(),
            templates: t
                .used_at
                .iter()
                .map(|(template, _)| template.clone())
                .collect(),
            image_ids: None,
        })
        .collect();
    let fields = wiring
        .fields
        .iter()
        .map(|f| WiredField {
            path: f.path.clone(),
            field: f.field.clone(),
            level: f.level,
            name: f.name.clone(),
            written_at: format!("{}:{}", f.written_at.0.display(), f.written_at.1),
            overrides: f.overrides.clone(),
        })
        .collect();
    let g = chart::release_guardrails(chart_dir, wiring, effective, rules);
    let low_ports = chart::release_low_ports(&g, effective);
    gitops::release::ReleaseWiring {
        wired,
        fields,
        guards: gitops::release::Guards {
            low_ports,
            left_alone: g.left_alone,
            tmp: g.tmp.map(|t| gitops::release::TmpLists {
                name: t.name.to_string(),
                volumes: t.volumes,
                mounts: t.mounts,
            }),
            no_tmp: g.no_tmp,
        },
    }
}

/// A Flux release's post-renderer patches applied to a render with Kustomize's engine.
fn apply_patches(
    stream: &str,
    patches: &[gitops::post_render::Patch],
    settings: &Settings,
) -> Result<String, String> {
    let engine = kustomize::build::Engine::find(&settings.render).ok_or(
        "neither `kustomize` nor `kubectl` is on PATH to apply the post-renderers (install one, or use --kustomize-bin)",
    )?;
    let patches: Vec<(String, String, String)> = patches
        .iter()
        .map(|p| (p.kind.clone(), p.name.clone(), p.text.clone()))
        .collect();
    kustomize::build::apply_patches(&engine, stream, &patches)
}

/// A unit of work for [`scan`]: one file, one Helm chart or one Kustomize app, each with the
/// files of it that were found.
enum Job {
    File(Found),
    Chart(PathBuf, Vec<PathBuf>),
    Kustomize(kustomize::forest::App, Vec<PathBuf>),
}

/// Reads every kustomization found and takes the files of each Kustomize app out of `found`
/// into one job per app. Without kustomizations, `found` is returned as it was.
fn kustomize_jobs(found: Vec<Found>, settings: &Settings) -> (Vec<Job>, Vec<Found>, Forest) {
    use crate::discover::KUSTOMIZATION;
    let kustomizations: Vec<PathBuf> = found
        .iter()
        .filter_map(|f| match f {
            Found::Skipped(path, KUSTOMIZATION) => Some(normalise(path)),
            _ => None,
        })
        .collect();
    if kustomizations.is_empty() {
        return (vec![], found, Forest::default());
    }
    let limit = settings.max_file_bytes;
    let read = |path: &Path| {
        crate::input::read_text(path, limit).map_err(|status| match status {
            Status::Failed(e) => e.message,
            Status::TooLarge { bytes, .. } => format!("larger than the size limit ({bytes} bytes)"),
            _ => "cannot be read".to_string(),
        })
    };
    let forest = Forest::read(&kustomizations, &read);
    let apps = forest.apps();
    let mut app_of: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (i, app) in apps.iter().enumerate() {
        for path in app.roles.keys() {
            app_of.entry(path.clone()).or_insert(i);
        }
    }
    let mut listed: Vec<Vec<PathBuf>> = vec![vec![]; apps.len()];
    let mut rest = Vec::new();
    for f in found {
        let app = match &f {
            Found::Candidate(path)
            | Found::Skipped(path, KUSTOMIZATION)
            | Found::Skipped(path, crate::discover::HELM_VALUES) => {
                app_of.get(&normalise(path)).copied()
            }
            _ => None,
        };
        match app {
            Some(i) => listed[i].push(crate::discover::path_of(&f).to_path_buf()),
            None => rest.push(f),
        }
    }
    let jobs = apps
        .into_iter()
        .zip(listed)
        .map(|(app, listed)| Job::Kustomize(app, listed))
        .collect();
    (jobs, rest, forest)
}

/// Gathers the values files and templates of each Helm chart, with those of the charts it
/// vendors, into one job per chart.
fn chart_jobs(found: Vec<Found>) -> Vec<Job> {
    use crate::discover::{ChartFinder, HELM_TEMPLATE, HELM_VALUES};
    let mut finder = ChartFinder::default();
    let mut charts: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
    let mut jobs = Vec::new();
    for f in found {
        let chart = match &f {
            Found::Skipped(path, HELM_VALUES | HELM_TEMPLATE) => path
                .parent()
                .and_then(|d| finder.chart_of(d))
                .map(vendoring_chart),
            _ => None,
        };
        match chart {
            Some(chart) => charts
                .entry(chart)
                .or_default()
                .push(crate::discover::path_of(&f).to_path_buf()),
            None => jobs.push(Job::File(f)),
        }
    }
    let mut chart_jobs: Vec<Job> = charts
        .into_iter()
        .map(|(chart, listed)| Job::Chart(chart, listed))
        .collect();
    chart_jobs.append(&mut jobs);
    chart_jobs
}

/// The outermost chart that vendors `chart` (`<parent>/charts/<chart>`), or `chart` itself: a
/// subchart is planned and rendered with the chart that ships it.
fn vendoring_chart(mut chart: PathBuf) -> PathBuf {
    loop {
        // A repository's own `charts/` folder of charts is not a chart's: the folder above
        // must itself be a chart.
        let parent = chart
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == "charts"))
            .and_then(Path::parent)
            .filter(|p| p.join("Chart.yaml").is_file());
        match parent {
            Some(parent) => chart = parent.to_path_buf(),
            None => return chart,
        }
    }
}

/// The reports of one chart's files; a listed file the chart support does not handle keeps
/// its reason for being skipped.
fn chart_reports(chart: &Path, listed: &[PathBuf], settings: &Settings) -> Vec<FileReport> {
    let mut reports = chart::process_chart(chart, listed, settings);
    for path in listed {
        if !reports.iter().any(|r| &r.path == path) {
            let reason = if path.starts_with(chart.join("templates")) {
                crate::discover::HELM_TEMPLATE
            } else {
                crate::discover::HELM_VALUES
            };
            reports.push(FileReport::new(path, Status::Skipped(reason.into())));
        }
    }
    reports
}

/// What ships before and after the change, for the start proof: each Kustomize root whose app
/// has a changed file, and each Helm chart with a changed file, rendered by its engine from the
/// tree as it is and from a scratch copy with the new texts. A root or chart that does not
/// render both times, or has no engine, is left out (its files stay "not proven").
pub fn rendered_changes(
    roots: &[PathBuf],
    reports: &[FileReport],
    settings: &Settings,
) -> Vec<crate::prove::reports::Rendered> {
    // By normalised path: the new text, and the path as the report names it.
    let changed: Changed = reports
        .iter()
        .filter_map(|r| match &r.status {
            Status::Changed { new_text } => {
                Some((normalise(&r.path), (new_text.as_str(), r.path.clone())))
            }
            _ => None,
        })
        .collect();
    if changed.is_empty() {
        return vec![];
    }
    let mut rendered = kustomize_rendered(roots, &changed, settings);
    let taken: Vec<PathBuf> = rendered.iter().flat_map(|r| r.files.clone()).collect();
    let rest: Changed = changed
        .into_iter()
        .filter(|(_, (_, named))| !taken.contains(named))
        .collect();
    rendered.extend(chart_rendered(&rest, settings));
    rendered
}

type Changed<'a> = BTreeMap<PathBuf, (&'a str, PathBuf)>;

fn kustomize_rendered(
    roots: &[PathBuf],
    changed: &Changed,
    settings: &Settings,
) -> Vec<crate::prove::reports::Rendered> {
    use kustomize::build::{root_dir, Copy, Engine};
    let kustomizations: Vec<PathBuf> = crate::discover::discover(roots)
        .found
        .into_iter()
        .filter_map(|(f, _)| match f {
            Found::Skipped(path, crate::discover::KUSTOMIZATION) => Some(normalise(&path)),
            _ => None,
        })
        .collect();
    let Some(engine) = Engine::find(&settings.render).filter(|_| !kustomizations.is_empty()) else {
        return vec![];
    };
    let limit = settings.max_file_bytes;
    let read = |path: &Path| {
        crate::input::read_text(path, limit).map_err(|_| "cannot be read".to_string())
    };
    let forest = Forest::read(&kustomizations, &read);
    let mut rendered = Vec::new();
    for app in forest.apps() {
        let files: Vec<PathBuf> = app
            .roles
            .keys()
            .filter(|p| changed.contains_key(*p))
            .cloned()
            .collect();
        if files.is_empty() {
            continue;
        }
        let (Ok(before), Ok(after)) = (Copy::of(&app, &forest), Copy::of(&app, &forest)) else {
            continue;
        };
        if files.iter().any(|f| after.write(f, changed[f].0).is_err()) {
            continue;
        }
        let files: Vec<PathBuf> = files.iter().map(|f| changed[f].1.clone()).collect();
        for root in &app.roots {
            let build = |copy: &Copy| {
                let dir = copy.path_of(&root_dir(root)).ok()?;
                engine.build(&dir, &copy.engine_tmp()).ok()
            };
            if let (Some(old), Some(new)) = (build(&before), build(&after)) {
                rendered.push(crate::prove::reports::Rendered {
                    origin: root.display().to_string(),
                    files: files.clone(),
                    before: old,
                    after: new,
                });
            }
        }
    }
    rendered
}

fn chart_rendered(changed: &Changed, settings: &Settings) -> Vec<crate::prove::reports::Rendered> {
    let mut charts: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for path in changed.keys() {
        if let Some(chart) = path
            .ancestors()
            .skip(1)
            .find(|d| d.join("Chart.yaml").is_file())
        {
            charts
                .entry(chart.to_path_buf())
                .or_default()
                .push(path.clone());
        }
    }
    let Some(engine) = crate::helm::engine::Engine::find(&settings.render) else {
        return vec![];
    };
    let mut rendered = Vec::new();
    for (chart, files) in charts {
        let Ok(copy) = crate::helm::engine::ChartCopy::of(&chart) else {
            continue;
        };
        if files
            .iter()
            .any(|f| copy.write(&chart, f, changed[f].0).is_err())
        {
            continue;
        }
        let files: Vec<PathBuf> = files.iter().map(|f| changed[f].1.clone()).collect();
        if let (Ok(old), Ok(new)) = (
            engine.template(&chart, &[]),
            engine.template(&copy.chart, &[]),
        ) {
            rendered.push(crate::prove::reports::Rendered {
                origin: chart.display().to_string(),
                files,
                before: old,
                after: new,
            });
        }
    }
    rendered
}
