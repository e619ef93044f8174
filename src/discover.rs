//! Discovery: walks the given paths and decides which files are candidate manifests.
//!
//! Uses ripgrep's `ignore` walker (honours `.gitignore`, skips `.git` and hidden folders,
//! never follows symlinks). Files inside Helm charts, kustomizations and symlinks are listed as
//! skipped with a reason; only the content checks (not Kubernetes, Helm syntax) happen later.

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

/// Walks `roots` and returns every YAML file, sorted by path.
pub fn discover(roots: &[PathBuf]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut charts = ChartFinder::default();
    for root in roots {
        if !root.exists() {
            found.push(Found::Error(
                root.clone(),
                "no such file or directory".into(),
            ));
            continue;
        }
        let walker = WalkBuilder::new(root)
            .follow_links(false)
            .require_git(false)
            .build();
        for entry in walker {
            match entry {
                Ok(entry) => {
                    if let Some(f) = classify(entry.path(), entry.file_type(), &mut charts) {
                        found.push(f);
                    }
                }
                Err(err) => found.push(walk_error(root, err)),
            }
        }
    }
    found.sort_by(|a, b| path_of(a).cmp(path_of(b)));
    found.dedup_by(|a, b| path_of(a) == path_of(b));
    found
}

pub fn path_of(f: &Found) -> &Path {
    match f {
        Found::Candidate(p) | Found::Skipped(p, _) | Found::Error(p, _) => p,
    }
}

fn walk_error(root: &Path, err: ignore::Error) -> Found {
    let path = match &err {
        ignore::Error::WithPath { path, .. } => path.clone(),
        _ => root.to_path_buf(),
    };
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
        return Some(Found::Skipped(path.to_path_buf(), "kustomization file"));
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

/// The skip reasons of the files that the Helm support ([`crate::chart`]) handles.
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

    /// Why a file inside a Helm chart is left for the Helm support.
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
        Some(match () {
            _ if in_templates => HELM_TEMPLATE,
            _ if name.starts_with("values") || in_ci => HELM_VALUES,
            _ => "Helm chart file",
        })
    }
}
