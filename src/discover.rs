//! Discovery: walks the given paths and decides which files are candidate manifests.
//!
//! Uses ripgrep's `ignore` walker (honours `.gitignore`, skips `.git` and hidden folders,
//! never follows symlinks). Files inside Helm charts, kustomizations and symlinks are listed as
//! skipped with a reason; only the content checks (not Kubernetes, Helm syntax) happen later.

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
                    if let Some(f) = classify(entry.path(), entry.file_type()) {
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
    Found::Error(path, err.to_string())
}

fn classify(path: &Path, file_type: Option<std::fs::FileType>) -> Option<Found> {
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
    if let Some(reason) = helm_chart_reason(path) {
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

/// Why a file inside a Helm chart (a folder with `Chart.yaml`) is left for the Helm support.
fn helm_chart_reason(path: &Path) -> Option<&'static str> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut in_templates = false;
    for dir in path.ancestors().skip(1) {
        if dir.join("Chart.yaml").is_file() {
            let in_ci = path.parent() == Some(dir.join("ci").as_path());
            return Some(match () {
                _ if in_templates => "Helm chart template",
                _ if name.starts_with("values") || in_ci => "Helm values file",
                _ => "Helm chart file",
            });
        }
        in_templates |= dir.file_name().and_then(|n| n.to_str()) == Some("templates");
    }
    None
}
