//! Discovery: walks the given paths and decides which files are candidate manifests.
//!
//! Uses ripgrep's `ignore` walker (honours `.gitignore`, skips `.git` and hidden folders,
//! never follows symlinks), in parallel, and reads each candidate's size on the way (the
//! pipeline starts the largest first). Files inside Helm charts, kustomizations and symlinks
//! are listed as skipped with a reason; only the content checks (not Kubernetes, Helm syntax)
//! happen later. The walk also notes every `Dockerfile` it passes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;

/// A file found by the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A `.yaml`/`.yml` file to read.
    Candidate(PathBuf),
    /// A YAML file left alone without reading it, and why.
    Skipped(PathBuf, &'static str),
    /// A path that could not be walked.
    Error(PathBuf, String),
}

/// What one walk of the given paths finds.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Every YAML file, sorted by path, with its size in bytes (0 when unknown).
    pub found: Vec<(Found, u64)>,
    /// Every file named `Dockerfile` (walked with the same rules).
    pub dockerfiles: Vec<PathBuf>,
}

/// Walks `roots` on all cores (folders are listed in parallel) and returns every YAML file,
/// sorted by path, and every Dockerfile.
pub fn discover(roots: &[PathBuf]) -> Discovery {
    let mut found = Vec::new();
    let existing: Vec<&PathBuf> = roots
        .iter()
        .filter(|root| {
            let exists = root.exists();
            if !exists {
                let error = Found::Error(root.to_path_buf(), "no such file or directory".into());
                found.push((error, 0));
            }
            exists
        })
        .collect();
    let Some((first, others)) = existing.split_first() else {
        return Discovery {
            found,
            dockerfiles: vec![],
        };
    };
    let mut builder = WalkBuilder::new(first);
    for root in others {
        builder.add(root);
    }
    let walker = builder
        .follow_links(false)
        .require_git(false)
        .build_parallel();
    let shared = std::sync::Mutex::new(Discovery {
        found,
        dockerfiles: vec![],
    });
    walker.run(|| {
        let mut charts = ChartFinder::default();
        let shared = &shared;
        Box::new(move |entry| {
            let seen = match entry {
                Ok(entry) => see(&entry, &mut charts),
                Err(err) => Some(Seen::Yaml(walk_error(first, err), 0)),
            };
            if let (Some(seen), Ok(mut shared)) = (seen, shared.lock()) {
                match seen {
                    Seen::Yaml(f, size) => shared.found.push((f, size)),
                    Seen::Dockerfile(path) => shared.dockerfiles.push(path),
                }
            }
            ignore::WalkState::Continue
        })
    });
    let mut discovery = shared.into_inner().unwrap_or_default();
    discovery
        .found
        .sort_by(|(a, _), (b, _)| path_of(a).cmp(path_of(b)));
    discovery
        .found
        .dedup_by(|(a, _), (b, _)| path_of(a) == path_of(b));
    discovery.dockerfiles.sort();
    discovery.dockerfiles.dedup();
    discovery
}

/// An entry of the walk worth keeping.
enum Seen {
    Yaml(Found, u64),
    Dockerfile(PathBuf),
}

fn see(entry: &ignore::DirEntry, charts: &mut ChartFinder) -> Option<Seen> {
    let is_file = entry.file_type().is_some_and(|t| t.is_file());
    if is_file && entry.file_name() == "Dockerfile" {
        return Some(Seen::Dockerfile(entry.path().to_path_buf()));
    }
    let found = classify(entry.path(), entry.file_type(), charts)?;
    // The size lets the pipeline start the largest files first; read here, on the walk's
    // threads, while the folder is at hand.
    let size = match found {
        Found::Candidate(_) => entry.metadata().map_or(0, |m| m.len()),
        _ => 0,
    };
    Some(Seen::Yaml(found, size))
}

pub fn path_of(f: &Found) -> &Path {
    match f {
        Found::Candidate(p) | Found::Skipped(p, _) | Found::Error(p, _) => p,
    }
}

fn walk_error(root: &Path, err: ignore::Error) -> Found {
    let path = error_path(&err).unwrap_or(root).to_path_buf();
    // The walker's own text repeats the path; the OS error alone reads better after it.
    let os_error = err.io_error().map(|io| match io.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::from(io.kind()),
    });
    let message = match os_error {
        Some(io) if path.is_dir() => format!("cannot list: {io}"),
        Some(io) => format!("cannot read: {io}"),
        None => err.to_string(),
    };
    Found::Error(path, message)
}

/// The path an error of the walk is about (the parallel walk wraps it in the depth).
fn error_path(err: &ignore::Error) -> Option<&Path> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

fn classify(
    path: &Path,
    file_type: Option<std::fs::FileType>,
    charts: &mut ChartFinder,
) -> Option<Found> {
    if !is_yaml_name(path) {
        return None;
    }
    let file_type = file_type?;
    if file_type.is_symlink() {
        let reason = "symlink (not followed; its target is processed where it lives inside the walked paths)";
        return Some(Found::Skipped(path.to_path_buf(), reason));
    }
    if !file_type.is_file() {
        return None;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if matches!(
        name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    ) {
        return Some(Found::Skipped(path.to_path_buf(), KUSTOMIZATION));
    }
    if let Some(reason) = charts.reason(path) {
        return Some(Found::Skipped(path.to_path_buf(), reason));
    }
    Some(Found::Candidate(path.to_path_buf()))
}

fn is_yaml_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// The skip reason of a kustomization file, which the Kustomize support reads.
pub const KUSTOMIZATION: &str = "kustomization file";

/// The skip reasons of the files that the Helm support ([`crate::sources::chart`]) handles.
pub const HELM_TEMPLATE: &str = "Helm chart template";
pub const HELM_VALUES: &str = "Helm values file";

/// Finds the Helm chart (a folder with `Chart.yaml`) a file belongs to, remembering the answer
/// for every folder it looked at (one `stat` per folder, not per file and ancestor).
#[derive(Default)]
pub struct ChartFinder {
    chart_of_dir: HashMap<PathBuf, Option<PathBuf>>,
}

impl ChartFinder {
    /// The chart folder `dir` is in (or is), if any.
    pub fn chart_of(&mut self, dir: &Path) -> Option<PathBuf> {
        if let Some(known) = self.chart_of_dir.get(dir) {
            return known.clone();
        }
        let chart = if dir.join("Chart.yaml").is_file() {
            Some(dir.to_path_buf())
        } else {
            dir.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .and_then(|p| self.chart_of(p))
        };
        self.chart_of_dir.insert(dir.to_path_buf(), chart.clone());
        chart
    }

    /// Why a file inside a Helm chart is left for the Helm support, if it is.
    fn reason(&mut self, path: &Path) -> Option<&'static str> {
        let chart = self.chart_of(path.parent()?)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let inside = path.strip_prefix(&chart).ok()?;
        let in_templates = inside
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == "templates");
        let in_ci = path.parent() == Some(chart.join("ci").as_path());
        // Anything else in a chart's folder (rendered output committed beside it, examples,
        // CRDs) is what it looks like: a plain manifest, or no Kubernetes object at all.
        match () {
            _ if in_templates => Some(HELM_TEMPLATE),
            _ if name.starts_with("values") || in_ci => Some(HELM_VALUES),
            _ if matches!(name, "Chart.yaml" | "Chart.yml") => Some("Helm chart file"),
            _ => None,
        }
    }
}
