//! Reading one kustomization file: what it brings in (resources, components, remote targets,
//! `helmCharts`), and its patches (files or inline strings, strategic-merge or JSON 6902, with
//! their targets), each with the line that says so. Knows nothing of what the patches do.

use std::path::{Path, PathBuf};

use yaml_splice::{NodeId, Ref, Tree};

/// The file names Kustomize looks for in a folder, in its order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// One kustomization, read.
#[derive(Clone, Debug, Default)]
pub struct Kustomization {
    /// The kustomization file.
    pub path: PathBuf,
    /// `kind: Component`: included through `components:`, it does not build alone.
    pub is_component: bool,
    /// Files and folders from `resources:` (and the older `bases:`), with their lines.
    pub resources: Vec<Entry<Resource>>,
    /// Folders from `components:`.
    pub components: Vec<Entry<Resource>>,
    pub patches: Vec<Patch>,
    /// What cannot be edited from here: `helmCharts` entries, with their lines.
    pub helm_charts: Vec<Entry<String>>,
    /// `buildMetadata` is set already (the render check adds `originAnnotations` to a copy).
    pub has_build_metadata: bool,
    /// The files of `configMapGenerator` entries (a GitOps release may take its values from
    /// such a ConfigMap).
    pub generated: Vec<Entry<GeneratedFile>>,
}

/// A file a `configMapGenerator` entry turns into one key of its ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The ConfigMap's `name` as the entry gives it (before any hash suffix or prefix).
    pub configmap: String,
    /// The key (`key=path`, else the file's name).
    pub key: String,
    pub file: PathBuf,
}

/// Something a kustomization names, and the line it names it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<T> {
    pub line: usize,
    pub item: T,
}

/// A resource or component, resolved against the kustomization's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    File(PathBuf),
    /// A folder that holds a kustomization.
    Folder(PathBuf),
    /// A remote target (a URL, `github.com/...`, `git@...`): never fetched.
    Remote(String),
    /// A path that is not there.
    Missing(PathBuf),
}

/// A patch, from `patches`, `patchesStrategicMerge` or `patchesJson6902`.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    /// The line of the entry in the kustomization.
    pub line: usize,
    pub source: PatchSource,
    pub target: Option<Target>,
}

/// Where a patch's text is.
#[derive(Clone, Debug, PartialEq)]
pub enum PatchSource {
    File(PathBuf),
    /// A block scalar in the kustomization (`patch: |`): the scalar's node.
    Inline(NodeId),
    /// A patch file that is not there, or an inline patch that is not a string.
    Unreadable(String),
}

/// A patch's `target:` selector (any field may be absent; `name` and `kind` may be regexes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

/// Is this file name one Kustomize reads?
pub fn is_kustomization_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| FILE_NAMES.contains(&n))
}

/// The kustomization file of a folder, if it has one.
pub fn file_in(folder: &Path) -> Option<PathBuf> {
    FILE_NAMES
        .iter()
        .map(|n| folder.join(n))
        .find(|p| p.is_file())
}

impl Kustomization {
    /// Reads the kustomization at `path` from its parsed text. Unknown fields are ignored: only
    /// what brings in objects or patches them matters here.
    pub fn read(path: &Path, tree: &Tree) -> Kustomization {
        let mut k = Kustomization {
            path: path.to_path_buf(),
            ..Kustomization::default()
        };
        let Some(root) = tree.docs.first().and_then(|d| d.root).map(Ref::root) else {
            return k;
        };
        let dir = k.dir().to_path_buf();
        k.is_component = string_at(tree, root, "kind").as_deref() == Some("Component");
        k.has_build_metadata = tree.get(root, "buildMetadata").is_some();
        for key in ["resources", "bases"] {
            k.resources
                .extend(strings(tree, root, key).map(|(line, s)| Entry {
                    line,
                    item: resolve(&dir, &s),
                }));
        }
        k.components = strings(tree, root, "components")
            .map(|(line, s)| Entry {
                line,
                item: resolve(&dir, &s),
            })
            .collect();
        for entry in items(tree, root, "patches") {
            k.patches.push(patch_entry(tree, &dir, entry));
        }
        for entry in items(tree, root, "patchesJson6902") {
            k.patches.push(patch_entry(tree, &dir, entry));
        }
        for item in items(tree, root, "patchesStrategicMerge") {
            k.patches.push(strategic_merge_entry(tree, &dir, item));
        }
        k.generated = items(tree, root, "configMapGenerator")
            .flat_map(|entry| generated_files(tree, &dir, entry))
            .collect();
        k.helm_charts = items(tree, root, "helmCharts")
            .map(|chart| Entry {
                line: tree.position(chart).0,
                item: string_at(tree, chart, "name").unwrap_or_else(|| "<unnamed>".into()),
            })
            .collect();
        k
    }

    /// The folder the kustomization is in.
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }
}

fn items<'t>(tree: &'t Tree, root: Ref, key: &str) -> impl Iterator<Item = Ref> + 't {
    tree.get(root, key)
        .map(|list| tree.items(list))
        .unwrap_or_default()
        .into_iter()
}

fn strings<'t>(tree: &'t Tree, root: Ref, key: &str) -> impl Iterator<Item = (usize, String)> + 't {
    items(tree, root, key).filter_map(|item| {
        let s = tree.as_str(item)?;
        Some((tree.position(item).0, s.to_string()))
    })
}

fn string_at(tree: &Tree, map: Ref, key: &str) -> Option<String> {
    tree.get(map, key)
        .and_then(|v| tree.as_str(v))
        .map(str::to_string)
}

/// The files of one `configMapGenerator` entry that are there (`files: [key=path]`).
fn generated_files(tree: &Tree, dir: &Path, entry: Ref) -> Vec<Entry<GeneratedFile>> {
    let Some(configmap) = string_at(tree, entry, "name") else {
        return vec![];
    };
    strings(tree, entry, "files")
        .filter_map(|(line, item)| {
            let (key, file) = match item.split_once('=') {
                Some((key, file)) => (key.trim().to_string(), file.trim().to_string()),
                None => {
                    let name = Path::new(&item).file_name()?.to_string_lossy().to_string();
                    (name, item.clone())
                }
            };
            let file = normalise(&dir.join(file));
            file.is_file().then(|| Entry {
                line,
                item: GeneratedFile {
                    configmap: configmap.clone(),
                    key,
                    file,
                },
            })
        })
        .collect()
}

/// A `patches`/`patchesJson6902` entry: `path:` or inline `patch:`, and `target:`.
fn patch_entry(tree: &Tree, dir: &Path, entry: Ref) -> Patch {
    let line = tree.position(entry).0;
    let target = tree.get(entry, "target").map(|t| Target {
        group: string_at(tree, t, "group"),
        version: string_at(tree, t, "version"),
        kind: string_at(tree, t, "kind"),
        name: string_at(tree, t, "name"),
        namespace: string_at(tree, t, "namespace"),
        label_selector: string_at(tree, t, "labelSelector"),
        annotation_selector: string_at(tree, t, "annotationSelector"),
    });
    let source = match (string_at(tree, entry, "path"), tree.get(entry, "patch")) {
        (Some(file), _) => file_source(dir, &file),
        (None, Some(inline)) if tree.as_str(inline).is_some() => PatchSource::Inline(inline.id),
        (None, Some(_)) => PatchSource::Unreadable("an inline patch that is not a string".into()),
        (None, None) => {
            PatchSource::Unreadable("a patch entry with neither `path` nor `patch`".into())
        }
    };
    Patch {
        line,
        source,
        target,
    }
}

/// A `patchesStrategicMerge` item: a file name, or the patch itself as a string.
fn strategic_merge_entry(tree: &Tree, dir: &Path, item: Ref) -> Patch {
    let line = tree.position(item).0;
    let source = match tree.as_str(item) {
        Some(s) if s.contains('\n') => PatchSource::Inline(item.id),
        Some(s) => file_source(dir, s),
        None => PatchSource::Unreadable("a patchesStrategicMerge item that is not a string".into()),
    };
    Patch {
        line,
        source,
        target: None,
    }
}

fn file_source(dir: &Path, file: &str) -> PatchSource {
    let path = normalise(&dir.join(file));
    if path.is_file() {
        PatchSource::File(path)
    } else {
        PatchSource::Unreadable(format!("patch file {file} not found"))
    }
}

/// A `resources:`/`components:` item, resolved against the kustomization's folder.
fn resolve(dir: &Path, item: &str) -> Resource {
    if is_remote(item) {
        return Resource::Remote(item.to_string());
    }
    let path = normalise(&dir.join(item));
    if path.is_dir() {
        Resource::Folder(path)
    } else if path.is_file() {
        Resource::File(path)
    } else {
        Resource::Missing(path)
    }
}

/// Kustomize's remote targets: URLs, `git@` addresses, and `host.tld/org/repo` paths.
fn is_remote(item: &str) -> bool {
    item.contains("://")
        || item.starts_with("git@")
        || item.starts_with("github.com/")
        || item.starts_with("gitlab.com/")
        || item.starts_with("bitbucket.org/")
}

/// `a/b/../c` as `a/c`, without touching the file system (symlinks are never followed here).
pub fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                let popped =
                    matches!(out.components().next_back(), Some(Component::Normal(_))) && out.pop();
                if !popped {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_without_the_file_system() {
        assert_eq!(normalise(Path::new("a/b/../c/./d")), PathBuf::from("a/c/d"));
        assert_eq!(normalise(Path::new("../x/../y")), PathBuf::from("../y"));
        assert_eq!(normalise(Path::new("/r/a/../../b")), PathBuf::from("/b"));
    }

    #[test]
    fn remote_targets_are_told_from_paths() {
        assert!(is_remote("https://github.com/org/repo//deploy?ref=v1"));
        assert!(is_remote("github.com/org/repo/deploy?ref=v1"));
        assert!(is_remote("git@github.com:org/repo.git"));
        assert!(!is_remote("../base"));
        assert!(!is_remote("deployment.yaml"));
    }
}
