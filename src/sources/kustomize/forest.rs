//! All the kustomizations of a run, read together: which includes which, the apps they form
//! (kustomizations joined by what they include, with every file they bring in), the roots
//! that `kustomize build` is run on, the role of each file, and the base objects a patch meets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use yaml_splice::Tree;

use super::model::{file_in, Kustomization, PatchSource, Resource, Target};

/// What a file brought in by a kustomization is to the tool.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    /// A whole object (or several): planned as a plain manifest.
    Resource,
    /// A patch file, with each use of it (the kustomization and the target it is applied to).
    Patch(Vec<PatchUse>),
    /// A kustomization file (its inline patches are planned in place).
    Kustomization,
    /// A file a `configMapGenerator` reads: edited only for a GitOps release whose values
    /// come from that ConfigMap.
    Generated,
}

/// One use of a patch: where, and on which objects.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchUse {
    pub kustomization: PathBuf,
    pub line: usize,
    pub target: Option<Target>,
}

/// An object of a base, as far as a patch needs to know it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaseObject {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Container names of every container list, in order: `containers` first (JSON patch
    /// paths index that list), then `initContainers` and `ephemeralContainers`.
    pub containers: Vec<String>,
    pub init_containers: Vec<String>,
}

/// The kustomizations of a run.
#[derive(Debug, Default)]
pub struct Forest {
    pub kustomizations: BTreeMap<PathBuf, Kustomization>,
    /// Kustomization files that could not be read or parsed, and why (line, column, message).
    pub unreadable: BTreeMap<PathBuf, (usize, usize, String)>,
    /// The objects of each resource file read so far: every patch of an app asks for its
    /// bases' objects, and a base can be a 1.4 MB stream of CRDs.
    objects: std::sync::Mutex<BTreeMap<PathBuf, std::sync::Arc<Vec<BaseObject>>>>,
}

/// Kustomizations joined by inclusion, with every file they bring in.
#[derive(Clone, Debug, Default)]
pub struct App {
    /// The kustomization files, sorted.
    pub kustomizations: Vec<PathBuf>,
    /// Those that no other kustomization includes and that are not components: what
    /// `kustomize build` is run on.
    pub roots: Vec<PathBuf>,
    /// Every file of the app and its role (kustomization files included).
    pub roles: BTreeMap<PathBuf, Role>,
}

impl Forest {
    /// Reads the kustomizations at `paths`, and every kustomization they include that is not
    /// among them (a base outside the walked paths is read, never edited).
    pub fn read(paths: &[PathBuf], read: &dyn Fn(&Path) -> Result<String, String>) -> Forest {
        let mut forest = Forest::default();
        let mut pending: Vec<PathBuf> = paths.to_vec();
        while let Some(path) = pending.pop() {
            if forest.kustomizations.contains_key(&path) || forest.unreadable.contains_key(&path) {
                continue;
            }
            let text = match read(&path) {
                Ok(text) => text,
                Err(message) => {
                    forest.unreadable.insert(path, (1, 1, message));
                    continue;
                }
            };
            let k = match Tree::parse(&text) {
                Ok(tree) => Kustomization::read(&path, &tree),
                Err(e) => {
                    forest.unreadable.insert(path, (e.line, e.col, e.message));
                    continue;
                }
            };
            pending.extend(k.included().filter_map(file_in));
            forest.kustomizations.insert(path, k);
        }
        forest
    }

    /// The apps: kustomizations joined by inclusion or by a file they share.
    pub fn apps(&self) -> Vec<App> {
        let files: Vec<&PathBuf> = self.kustomizations.keys().collect();
        let mut sets = UnionFind::new(files.len());
        let index_of = |p: &Path| files.iter().position(|f| f.as_path() == p);
        let mut owner_of_file: BTreeMap<PathBuf, usize> = BTreeMap::new();
        for (i, k) in self.kustomizations.values().enumerate() {
            for folder in k.included() {
                if let Some(j) = file_in(folder).and_then(|f| index_of(&f)) {
                    sets.join(i, j);
                }
            }
            for file in k.brought_in_files() {
                match owner_of_file.get(&file) {
                    Some(&j) => sets.join(i, j),
                    None => {
                        owner_of_file.insert(file, i);
                    }
                }
            }
        }
        let mut apps: BTreeMap<usize, App> = BTreeMap::new();
        for (i, path) in files.iter().enumerate() {
            let app = apps.entry(sets.find(i)).or_default();
            app.kustomizations.push((*path).clone());
        }
        let included: BTreeSet<PathBuf> = self
            .kustomizations
            .values()
            .flat_map(|k| k.included().filter_map(file_in).collect::<Vec<_>>())
            .collect();
        for app in apps.values_mut() {
            app.roots = app
                .kustomizations
                .iter()
                .filter(|k| !included.contains(*k) && !self.kustomizations[*k].is_component)
                .cloned()
                .collect();
            app.roles = self.roles(&app.kustomizations);
        }
        apps.into_values().collect()
    }

    /// The role of every file the given kustomizations bring in.
    fn roles(&self, kustomizations: &[PathBuf]) -> BTreeMap<PathBuf, Role> {
        let mut roles = BTreeMap::new();
        for path in kustomizations {
            let k = &self.kustomizations[path];
            roles.insert(path.clone(), Role::Kustomization);
            for resource in &k.resources {
                if let Resource::File(file) = &resource.item {
                    roles.entry(file.clone()).or_insert(Role::Resource);
                }
            }
            for generated in &k.generated {
                roles
                    .entry(generated.item.file.clone())
                    .or_insert(Role::Generated);
            }
        }
        for path in kustomizations {
            for patch in &self.kustomizations[path].patches {
                let PatchSource::File(file) = &patch.source else {
                    continue;
                };
                let usage = PatchUse {
                    kustomization: path.clone(),
                    line: patch.line,
                    target: patch.target.clone(),
                };
                // A file used as a patch anywhere is a patch: as a resource it would be planned
                // as a whole object, and get what its bases already supply.
                match roles.entry(file.clone()).or_insert(Role::Patch(vec![])) {
                    Role::Patch(uses) => uses.push(usage),
                    other => *other = Role::Patch(vec![usage]),
                }
            }
        }
        roles
    }

    /// The folder whose service each file of the app goes with in `pr`: an overlay that
    /// includes exactly one base goes with that base (so that one pull request carries the
    /// base's fix and the overlay corrections it needs); one that includes several bases, and
    /// a base, go with their own folder. A component goes with what includes it first; a file,
    /// with the first kustomization that names it.
    pub fn service_dirs(&self, app: &App) -> BTreeMap<PathBuf, PathBuf> {
        let mut out = BTreeMap::new();
        for path in &app.kustomizations {
            let service = self.service_of(path, &mut BTreeSet::new());
            let k = &self.kustomizations[path];
            out.entry(path.clone()).or_insert_with(|| service.clone());
            for file in k.brought_in_files() {
                out.entry(file).or_insert_with(|| service.clone());
            }
            for component in k.components.iter().filter_map(|c| match &c.item {
                Resource::Folder(f) => file_in(f),
                _ => None,
            }) {
                out.entry(component.clone())
                    .or_insert_with(|| service.clone());
                if let Some(c) = self.kustomizations.get(&component) {
                    for file in c.brought_in_files() {
                        out.entry(file).or_insert_with(|| service.clone());
                    }
                }
            }
        }
        out
    }

    fn service_of(&self, path: &Path, seen: &mut BTreeSet<PathBuf>) -> PathBuf {
        let Some(k) = self.kustomizations.get(path) else {
            return path.parent().unwrap_or(Path::new(".")).to_path_buf();
        };
        let bases: Vec<PathBuf> = k
            .resources
            .iter()
            .filter_map(|e| match &e.item {
                Resource::Folder(f) => file_in(f),
                _ => None,
            })
            .collect();
        match bases.as_slice() {
            [base] if seen.insert(path.to_path_buf()) => self.service_of(base, seen),
            _ => k.dir().to_path_buf(),
        }
    }

    /// The kustomization entry that brings `file` in (a resource, a patch, or the folder of a
    /// kustomization file): the kustomization and the entry's line.
    pub fn brought_in_by(&self, file: &Path) -> Option<(PathBuf, usize)> {
        self.kustomizations.iter().find_map(|(path, k)| {
            let by_resource = k
                .resources
                .iter()
                .chain(&k.components)
                .find(|e| match &e.item {
                    Resource::File(f) => f == file,
                    Resource::Folder(f) => file.parent() == Some(f.as_path()),
                    _ => false,
                });
            let line = by_resource.map(|e| e.line).or_else(|| {
                k.patches
                    .iter()
                    .find(|p| matches!(&p.source, PatchSource::File(f) if f == file))
                    .map(|p| p.line)
            })?;
            Some((path.clone(), line))
        })
    }

    /// The patches that a build of `root` applies to its object `kind`/`name` (the rendered
    /// name: a prefix or suffix may have joined the base's), as `file (kustomization:line)`:
    /// where to look when the render falls short.
    pub fn patches_meeting(&self, root: &Path, kind: &str, name: &str) -> Vec<String> {
        self.meeting(root, kind, name)
            .into_iter()
            .map(|(path, patch)| {
                let what = match &patch.source {
                    PatchSource::File(file) => format!("{} ", file.display()),
                    _ => "an inline patch ".to_string(),
                };
                format!("{what}({}:{})", path.display(), patch.line)
            })
            .collect()
    }

    /// The patches that a build of `root` applies to its object `kind`/`name` (the rendered
    /// name), with the kustomization of each, the last applied first: the root's own last
    /// patch first, a base's patches after its overlay's.
    pub fn patches_of_object(
        &self,
        root: &Path,
        kind: &str,
        name: &str,
    ) -> Vec<(PathBuf, super::model::Patch)> {
        let mut out: Vec<(PathBuf, super::model::Patch)> = Vec::new();
        let mut run_start = 0;
        for (path, patch) in self.meeting(root, kind, name) {
            if out.last().is_some_and(|(last, _)| *last != path) {
                out[run_start..].reverse();
                run_start = out.len();
            }
            out.push((path, patch));
        }
        out[run_start..].reverse();
        out
    }

    /// The patches that a build of `root` applies to its object, with the kustomization of
    /// each: the root's first, each kustomization's in the order it lists them.
    fn meeting(&self, root: &Path, kind: &str, name: &str) -> Vec<(PathBuf, super::model::Patch)> {
        let bases: Vec<BaseObject> = self
            .objects_of(root, &mut BTreeSet::new())
            .into_iter()
            .filter(|o| o.kind == kind && name.contains(&o.name))
            .collect();
        let mut out = Vec::new();
        for path in self.closure(root) {
            let Some(k) = self.kustomizations.get(&path) else {
                continue;
            };
            for patch in &k.patches {
                let meets = bases
                    .iter()
                    .any(|base| match (&patch.target, &patch.source) {
                        (Some(target), _) => selects(target, base),
                        (None, PatchSource::File(file)) => self
                            .objects_in(file)
                            .iter()
                            .any(|o| o.kind == base.kind && o.name == base.name),
                        (None, _) => false,
                    });
                if meets {
                    out.push((path.clone(), patch.clone()));
                }
            }
        }
        out
    }

    /// The remote resources and components a build of `root` reads, each as `URL
    /// (kustomization:line)`.
    pub fn remotes_of(&self, root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for path in self.closure(root) {
            let Some(k) = self.kustomizations.get(&path) else {
                continue;
            };
            for entry in k.resources.iter().chain(&k.components) {
                if let Resource::Remote(url) = &entry.item {
                    out.push(format!("{url} ({}:{})", path.display(), entry.line));
                }
            }
        }
        out
    }

    /// The kustomization `root` and every one it includes, once each, the root first.
    pub fn closure_of(&self, root: &Path) -> Vec<PathBuf> {
        self.closure(root)
    }

    /// The kustomization `root` and every one it includes, once each.
    fn closure(&self, root: &Path) -> Vec<PathBuf> {
        let mut seen: Vec<PathBuf> = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(path) = pending.pop() {
            if seen.contains(&path) {
                continue;
            }
            if let Some(k) = self.kustomizations.get(&path) {
                pending.extend(k.included().filter_map(file_in));
            }
            seen.push(path);
        }
        seen
    }

    /// The objects of a resource file, read once per run.
    pub fn objects_in(&self, file: &Path) -> std::sync::Arc<Vec<BaseObject>> {
        if let Some(known) = self.objects.lock().ok().and_then(|m| m.get(file).cloned()) {
            return known;
        }
        let objects = std::sync::Arc::new(objects_in_file(file));
        if let Ok(mut known) = self.objects.lock() {
            known.insert(file.to_path_buf(), objects.clone());
        }
        objects
    }

    /// The objects that the patches of kustomization `path` meet: what its resources build
    /// (for a component, what the kustomizations that include it build).
    pub fn base_objects(&self, path: &Path) -> Vec<BaseObject> {
        let mut seen = BTreeSet::new();
        let Some(k) = self.kustomizations.get(path) else {
            return vec![];
        };
        if !k.is_component {
            return self.objects_of(path, &mut seen);
        }
        let dir = k.dir().to_path_buf();
        let includers: Vec<&PathBuf> = self
            .kustomizations
            .iter()
            .filter(|(_, other)| {
                other
                    .components
                    .iter()
                    .any(|c| c.item == Resource::Folder(dir.clone()))
            })
            .map(|(p, _)| p)
            .collect();
        includers
            .into_iter()
            .flat_map(|p| self.objects_of(p, &mut seen))
            .collect()
    }

    /// Every object kustomization `path` builds from its resources and components (patches are
    /// not applied: names and containers are the bases').
    fn objects_of(&self, path: &Path, seen: &mut BTreeSet<PathBuf>) -> Vec<BaseObject> {
        if !seen.insert(path.to_path_buf()) {
            return vec![];
        }
        let Some(k) = self.kustomizations.get(path) else {
            return vec![];
        };
        let mut out = Vec::new();
        for entry in k.resources.iter().chain(&k.components) {
            match &entry.item {
                Resource::File(file) => out.extend(self.objects_in(file).iter().cloned()),
                Resource::Folder(folder) => {
                    if let Some(inner) = file_in(folder) {
                        out.extend(self.objects_of(&inner, seen));
                    }
                }
                Resource::Remote(_) | Resource::Missing(_) => {}
            }
        }
        out
    }
}

impl Kustomization {
    /// The folders it includes: kustomization resources and components.
    pub fn included(&self) -> impl Iterator<Item = &Path> {
        self.resources
            .iter()
            .chain(&self.components)
            .filter_map(|e| match &e.item {
                Resource::Folder(f) => Some(f.as_path()),
                _ => None,
            })
    }

    /// The files it names: resource files, patch files and generator files.
    pub fn brought_in_files(&self) -> Vec<PathBuf> {
        let resources = self.resources.iter().filter_map(|e| match &e.item {
            Resource::File(f) => Some(f.clone()),
            _ => None,
        });
        let patches = self.patches.iter().filter_map(|p| match &p.source {
            PatchSource::File(f) => Some(f.clone()),
            _ => None,
        });
        let generated = self.generated.iter().map(|g| g.item.file.clone());
        resources.chain(patches).chain(generated).collect()
    }
}

/// The objects of a resource file, read with yaml_serde (a file that does not load has none
/// here; it is reported where it is planned).
pub fn objects_in_file(path: &Path) -> Vec<BaseObject> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    objects_in_text(&text)
}

pub fn objects_in_text(text: &str) -> Vec<BaseObject> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let Ok(value) = yaml_serde::Value::deserialize(doc) else {
            return out;
        };
        collect_objects(&value, &mut out);
    }
    out
}

fn collect_objects(value: &yaml_serde::Value, out: &mut Vec<BaseObject>) {
    let text = |v: &yaml_serde::Value| v.as_str().map(str::to_string);
    let Some(kind) = value.get("kind").and_then(text) else {
        return;
    };
    if kind.ends_with("List") {
        if let Some(items) = value.get("items").and_then(|i| i.as_sequence()) {
            items.iter().for_each(|item| collect_objects(item, out));
        }
        return;
    }
    let metadata = value.get("metadata");
    let map_of = |key: &str| -> BTreeMap<String, String> {
        metadata
            .and_then(|m| m.get(key))
            .and_then(|l| l.as_mapping())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let pod = crate::policy::pod_spec_path(&kind)
        .iter()
        .try_fold(value, |v, key| v.get(*key));
    let names = |list: &str| -> Vec<String> {
        pod.and_then(|p| p.get(list))
            .and_then(|l| l.as_sequence())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|c| c.get("name").and_then(text))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut containers = names("containers");
    let init_containers = names("initContainers");
    containers.extend(init_containers.iter().cloned());
    containers.extend(names("ephemeralContainers"));
    out.push(BaseObject {
        name: metadata
            .and_then(|m| m.get("name"))
            .and_then(text)
            .unwrap_or_default(),
        namespace: metadata.and_then(|m| m.get("namespace")).and_then(text),
        labels: map_of("labels"),
        annotations: map_of("annotations"),
        containers,
        init_containers,
        kind,
    });
}

/// Does `target` select `object`? Kind and name are regular expressions matched whole, as
/// Kustomize does; a label or annotation selector is `key=value` or `key` pairs, comma-separated.
pub fn selects(target: &Target, object: &BaseObject) -> bool {
    let matches = |pattern: &Option<String>, value: &str| {
        pattern.as_ref().is_none_or(|p| {
            regex::Regex::new(&format!("^(?:{p})$")).map_or(p == value, |re| re.is_match(value))
        })
    };
    let selector = |sel: &Option<String>, map: &BTreeMap<String, String>| {
        sel.as_ref().is_none_or(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .all(|term| match term.split_once("!=") {
                    Some((k, v)) => map.get(k.trim()).is_none_or(|x| x != v.trim()),
                    None => match term.split_once('=') {
                        Some((k, v)) => {
                            map.get(k.trim()).map(String::as_str)
                                == Some(v.trim_start_matches('=').trim())
                        }
                        None => map.contains_key(term),
                    },
                })
        })
    };
    matches(&target.kind, &object.kind)
        && matches(&target.name, &object.name)
        && target.namespace.as_ref().is_none_or(|ns| {
            object.namespace.as_deref().unwrap_or("default") == ns || object.namespace.is_none()
        })
        && selector(&target.label_selector, &object.labels)
        && selector(&target.annotation_selector, &object.annotations)
}

/// Disjoint sets of indices.
struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, i: usize) -> usize {
        let mut root = i;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        self.parent[i] = root;
        root
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        self.parent[a.max(b)] = a.min(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, labels: &[(&str, &str)]) -> BaseObject {
        BaseObject {
            kind: kind.into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..BaseObject::default()
        }
    }

    #[test]
    fn targets_select_by_regex_and_labels() {
        let web = object("Deployment", "web-frontend", &[("tier", "web")]);
        let target = |kind: Option<&str>, name: Option<&str>, labels: Option<&str>| Target {
            kind: kind.map(String::from),
            name: name.map(String::from),
            label_selector: labels.map(String::from),
            ..Target::default()
        };
        assert!(selects(
            &target(Some("Deployment"), Some("web-.*"), None),
            &web
        ));
        assert!(!selects(
            &target(Some("Deployment"), Some("web"), None),
            &web
        ));
        assert!(selects(&target(None, None, Some("tier=web")), &web));
        assert!(!selects(&target(None, None, Some("tier=db")), &web));
        assert!(selects(
            &target(Some("Deployment|StatefulSet"), None, Some("tier")),
            &web
        ));
    }

    #[test]
    fn an_overlay_of_one_base_goes_with_it_and_one_of_two_with_its_own_folder() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("a/kustomization.yaml", "resources: [d.yaml]\n");
        write("a/d.yaml", "kind: Deployment\n");
        write("b/kustomization.yaml", "resources: [d.yaml]\n");
        write("b/d.yaml", "kind: Deployment\n");
        write(
            "prod/kustomization.yaml",
            "resources: [../a]\npatches: [{path: p.yaml}]\n",
        );
        write("prod/p.yaml", "kind: Deployment\n");
        write("all/kustomization.yaml", "resources: [../a, ../b]\n");
        let k = |p: &str| dir.path().join(p).join("kustomization.yaml");
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| e.to_string());
        let forest = Forest::read(&[k("prod"), k("all")], &read);
        let apps = forest.apps();
        assert_eq!(apps.len(), 1, "one app: the overlays share base a");
        let services = forest.service_dirs(&apps[0]);
        let service = |p: &str| {
            services[&dir.path().join(p)]
                .strip_prefix(dir.path())
                .unwrap()
                .to_path_buf()
        };
        assert_eq!(service("prod/p.yaml"), PathBuf::from("a"));
        assert_eq!(service("prod/kustomization.yaml"), PathBuf::from("a"));
        assert_eq!(service("a/d.yaml"), PathBuf::from("a"));
        assert_eq!(service("all/kustomization.yaml"), PathBuf::from("all"));
        assert_eq!(service("b/d.yaml"), PathBuf::from("b"));
        let mut roots = apps[0].roots.clone();
        roots.sort();
        assert_eq!(roots, vec![k("all"), k("prod")]);
    }

    #[test]
    fn objects_of_a_stream_name_their_containers() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      initContainers: [{name: init}]\n      containers: [{name: app}, {name: side}]\n---\nkind: Service\nmetadata: {name: s}\n";
        let objects = objects_in_text(text);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].containers, vec!["app", "side", "init"]);
        assert_eq!(objects[0].init_containers, vec!["init"]);
        assert!(objects[1].containers.is_empty());
    }
}
