//! Getting the chart a release installs, and the values Helm merges before the inline ones:
//! a chart folder in this repository is read in place; one in a chart repository comes from
//! the cache or is downloaded ([`crate::helm::repository`]), from an HTTP chart repository or
//! an OCI registry (Flux `OCIRepository`, a `HelmRepository` of `type: oci`, an Argo CD
//! `repoURL` of a registry); one in another git repository is read from a checkout of the
//! revision the release pins ([`crate::helm::repository::git`]); anything else (a templated
//! field) is a reason to leave the release alone.
//! Nothing is guessed about a chart that was not read.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helm::repository::git::{self, Revision};

use super::index::Index;
use super::model::{ChartSource, GitRepo, Release, ValuesFrom};
use super::values::merge;

/// Where the chart was found, for reports.
#[derive(Clone, Debug)]
pub struct Located {
    /// The chart folder to read and render.
    pub dir: PathBuf,
    /// "charts/web in this repository", "web 1.2.3 from https://charts.example.com".
    pub origin: String,
}

/// What the run knows about the repository being fixed.
pub struct Repository<'a> {
    /// Its root folder (in-repository chart paths are relative to it).
    pub root: Option<&'a Path>,
    /// Its `origin` URL, to tell this repository's `repoURL` from another's.
    pub origin: Option<&'a str>,
    pub index: &'a Index,
    /// Fetches a chart from an HTTP chart repository: (url, chart, version) to its folder and
    /// a description, or why not.
    pub fetch: &'a (dyn Fn(&str, &str, &str) -> Result<Located, String> + Sync),
    /// Checks out a revision of another git repository: (url, revision) to the checkout's
    /// root and a description ("git://host/charts.git at tag v1, commit 0123456789ab"), or why not.
    pub fetch_git: &'a (dyn Fn(&str, &Revision) -> Result<Located, String> + Sync),
    /// Unpacks a chart archive vendored in this repository (`charts/web-1.2.0.tgz`).
    pub unpack: &'a (dyn Fn(&Path) -> Result<Located, String> + Sync),
    /// Applies a Flux release's post-renderer patches to a render (Kustomize's engine).
    pub apply_patches: &'a super::post_render::ApplyPatches<'a>,
}

/// Why a release's chart cannot be had.
#[derive(Debug)]
pub enum NotLocated {
    /// A reason to report.
    Because(String),
    /// An Argo path source that is not a chart here: no release at all.
    NotAChart,
}

/// The chart of `release`, or why it cannot be had.
pub fn locate(release: &Release, repo: &Repository) -> Result<Located, NotLocated> {
    let found = locate_reported(release, repo);
    match found {
        Err(_) if release.implicit => Err(NotLocated::NotAChart),
        other => other.map_err(NotLocated::Because),
    }
}

fn locate_reported(release: &Release, repo: &Repository) -> Result<Located, String> {
    match &release.chart {
        ChartSource::Unsupported(why) => Err(why.clone()),
        ChartSource::Local(dir) if dir.with_extension("tgz").is_file() => {
            (repo.unpack)(&dir.with_extension("tgz"))
        }
        ChartSource::Local(dir) => match dir.join("Chart.yaml").is_file() {
            true => Ok(Located {
                dir: dir.clone(),
                origin: format!("{} in this repository", dir.display()),
            }),
            false => Err(format!(
                "its chart is not vendored at {} (Kustomize pulls it at build time; kube-harden reads only a chart it finds)",
                dir.display()
            )),
        },
        ChartSource::Repository {
            url,
            chart,
            version,
        } => fetch(repo, url, chart, version),
        ChartSource::HelmRepositoryRef {
            name,
            namespace,
            chart,
            version,
        } => {
            let found = repo
                .index
                .helm_repository(namespace.as_deref(), name)
                .ok_or_else(|| {
                    format!("its HelmRepository `{name}` is not in the files of this run")
                })?;
            let mut located = fetch(repo, &found.url, chart, version)?;
            if let Some(secret) = found.secret_ref {
                located.origin.push_str(&unread_secret("HelmRepository", &found.url, &secret));
            }
            Ok(located)
        }
        ChartSource::OciRepositoryRef { name, namespace } => {
            let found = repo
                .index
                .oci_repository(namespace.as_deref(), name)
                .ok_or_else(|| format!("its OCIRepository `{name}` is not in the files of this run"))?;
            let (url, chart) = found.url.trim_end_matches('/').rsplit_once('/').ok_or_else(|| {
                format!("its OCIRepository `{name}` has the URL {:?}, which names no chart", found.url)
            })?;
            let mut located = fetch(repo, url, chart, &found.version)?;
            if let Some(secret) = found.secret_ref {
                located.origin.push_str(&unread_secret("OCIRepository", "oci://", &secret));
            }
            Ok(located)
        }
        ChartSource::GitPath { repo: git, path } => {
            let (url, revision) = match git {
                GitRepo::Url { url, revision } => (url.clone(), Revision::argo(revision)),
                GitRepo::FluxRef { name, namespace } => {
                    let found = repo
                        .index
                        .git_repository(namespace.as_deref(), name)
                        .ok_or_else(|| {
                            format!("its GitRepository `{name}` is not in the files of this run")
                        })?;
                    (found.url, found.revision)
                }
            };
            let ours = repo
                .origin
                .is_some_and(|origin| same_repository(origin, &url));
            match ours {
                true => in_this_repository(repo, path),
                false => in_another_repository(repo, &url, &revision, path),
            }
        }
    }
}

/// What the origin of a chart says of its source's `secretRef`: a cluster Secret the tool
/// does not read, so the chart came with this machine's credentials (or none).
fn unread_secret(kind: &str, url: &str, secret: &str) -> String {
    let used = match url.starts_with("oci://") {
        true => "the registry credentials of this machine were used",
        false => "the chart repository was asked without credentials",
    };
    format!(" (the {kind}'s secretRef `{secret}` is a cluster Secret, not read: {used})")
}

/// A chart from a chart repository or a registry; an Argo CD `repoURL` without a scheme
/// names an OCI registry (`ghcr.io/acme/charts`), as Argo CD reads it.
fn fetch(repo: &Repository, url: &str, chart: &str, version: &str) -> Result<Located, String> {
    if !url.contains("://") && !url.trim().is_empty() {
        return (repo.fetch)(&format!("oci://{}", url.trim()), chart, version);
    }
    (repo.fetch)(url, chart, version)
}

/// A chart path of this repository, read in the working tree (whatever revision the release
/// names: the tool fixes this tree).
fn in_this_repository(repo: &Repository, path: &str) -> Result<Located, String> {
    let root = repo.root.ok_or("the repository's root is not known")?;
    let dir = root.join(path.trim_start_matches("./"));
    if path.ends_with(".tgz") && dir.is_file() {
        return (repo.unpack)(&dir);
    }
    chart_at(dir, path, "this repository")
}

/// A chart path of another git repository, read in a checkout of the pinned revision.
fn in_another_repository(
    repo: &Repository,
    url: &str,
    revision: &Revision,
    path: &str,
) -> Result<Located, String> {
    let checkout = (repo.fetch_git)(url, revision).map_err(|e| {
        format!("its chart is in another git repository ({url}, {revision}, path {path}) and cannot be had: {e}")
    })?;
    let dir = git::path_inside(&checkout.dir, path)?;
    if path.ends_with(".tgz") && dir.is_file() {
        let unpacked = (repo.unpack)(&dir)?;
        return Ok(Located {
            origin: format!("{path} in {}", checkout.origin),
            dir: unpacked.dir,
        });
    }
    chart_at(dir, path, &checkout.origin)
}

/// The chart folder `dir` (`path` as the release writes it), found in `place`.
fn chart_at(dir: PathBuf, path: &str, place: &str) -> Result<Located, String> {
    if !dir.join("Chart.yaml").is_file() {
        return Err(format!(
            "its chart path `{path}` has no Chart.yaml in {place}"
        ));
    }
    Ok(Located {
        origin: format!("{} in {place}", path.trim_start_matches("./")),
        dir,
    })
}

/// Two git URLs name the same repository: scheme, user, `.git` and case of the host aside
/// (`git@github.com:acme/shop.git` is `https://github.com/acme/shop`).
pub fn same_repository(a: &str, b: &str) -> bool {
    normal_url(a) == normal_url(b)
}

fn normal_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let without_user = without_scheme
        .split_once('@')
        .map_or(without_scheme, |(_, rest)| rest);
    // scp-like `host:owner/repo`
    let (host, path) = match without_user.split_once(['/', ':']) {
        Some((host, path)) => (host, path),
        None => (without_user, ""),
    };
    format!(
        "{}/{}",
        host.to_ascii_lowercase(),
        path.trim_start_matches('/')
    )
}

/// The values Helm merges between the chart's defaults and the inline values: Flux
/// `valuesFrom` found in the repository, Argo `valueFiles` next to the chart. Err says why
/// the effective values cannot be known (the release is then left alone).
pub fn values_from(release: &Release, chart: &Located, index: &Index) -> Result<Value, String> {
    let mut merged = Value::Object(Default::default());
    for source in &release.values_from {
        match source {
            ValuesFrom::Reference {
                kind,
                name,
                key,
                target_path,
                optional,
            } => {
                let found = index.values_text(kind, release.namespace.as_deref(), name, key);
                let Some((_, text)) = found else {
                    if *optional {
                        continue;
                    }
                    return Err(match kind.as_str() {
                        "Secret" => format!("its values come partly from the Secret `{name}` (valuesFrom), which is not in the repository: the effective values cannot be known"),
                        _ => format!("its values come partly from the {kind} `{name}` (key `{key}`, valuesFrom), which is not in the files of this run"),
                    });
                };
                let layer = match target_path {
                    Some(path) => nest(path, Value::String(text)),
                    None => parse_values(&text).map_err(|e| {
                        format!("the {kind} `{name}` (valuesFrom) does not load: {e}")
                    })?,
                };
                merge(&mut merged, &layer);
            }
            ValuesFrom::Local(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("its values file {} cannot be read: {e}", path.display())
                })?;
                let layer = parse_values(&text).map_err(|e| {
                    format!("its values file {} does not load: {e}", path.display())
                })?;
                merge(&mut merged, &layer);
            }
            ValuesFrom::File(file) => {
                if file.starts_with('$') || file.contains("://") {
                    return Err(format!("its value file `{file}` is in another source: the effective values cannot be known"));
                }
                let path = chart.dir.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!("its value file `{file}` cannot be read next to the chart: {e}")
                })?;
                let layer = parse_values(&text)
                    .map_err(|e| format!("its value file `{file}` does not load: {e}"))?;
                merge(&mut merged, &layer);
            }
        }
    }
    Ok(merged)
}

/// A values document as JSON (an empty document is an empty mapping).
pub fn parse_values(text: &str) -> Result<Value, String> {
    let value: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
    Ok(match json {
        Value::Null => Value::Object(Default::default()),
        other => other,
    })
}

/// `value` at the dotted `path` of an otherwise empty mapping.
fn nest(path: &str, value: Value) -> Value {
    path.rsplit('.').fold(value, |inner, key| {
        let mut map = serde_json::Map::new();
        map.insert(key.to_string(), inner);
        Value::Object(map)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_of_one_repository_compare_equal() {
        assert!(same_repository(
            "git@github.com:acme/shop.git",
            "https://github.com/acme/shop"
        ));
        assert!(same_repository(
            "https://GitHub.com/acme/shop/",
            "ssh://git@github.com/acme/shop.git"
        ));
        assert!(!same_repository(
            "https://github.com/acme/shop",
            "https://github.com/acme/shop-config"
        ));
    }

    #[test]
    fn a_target_path_nests_the_text() {
        assert_eq!(
            nest("a.b", Value::String("x".into())),
            serde_json::json!({"a": {"b": "x"}})
        );
    }
}
