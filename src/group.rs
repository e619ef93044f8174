//! Services: which changed files go into one pull request, and the branch each gets.
//!
//! A service is named after the folder that holds its files (`services/cart/` gives `cart`);
//! when two folders share a name, the parent's name joins it (`team-a-cart`). Knows paths and
//! app labels only: nothing of YAML, git or GitHub.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How files are grouped into services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// A chart is one service, a Kustomize base with the overlays that include only it is one;
    /// otherwise the folder, split by app label when a folder holds workloads of two or more apps.
    #[default]
    Auto,
    Dir,
    Label,
    File,
}

/// One changed file: its path relative to the repository root, the app labels of its
/// workloads, and the folder of the unit it belongs to, if any: a Helm chart, or a Kustomize
/// service (an overlay with its one base; see the README's Pull requests section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedFile {
    pub path: PathBuf,
    pub apps: Vec<String>,
    pub unit: Option<PathBuf>,
}

/// A service: its name (also its branch suffix) and its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub files: Vec<PathBuf>,
}

impl Service {
    /// The branch the service's pull request comes from.
    pub fn branch(&self) -> String {
        format!("kube-harden/{}", self.name)
    }
}

/// Groups `files` into services, sorted by name.
pub fn group(files: &[ChangedFile], by: GroupBy) -> Vec<Service> {
    let mut groups: BTreeMap<Key, BTreeSet<PathBuf>> = BTreeMap::new();
    let split_dirs = dirs_with_several_apps(files);
    for f in files {
        let dir = f.path.parent().unwrap_or(Path::new("")).to_path_buf();
        let key = match by {
            GroupBy::File => Key {
                dir,
                label: None,
                file: Some(f.path.clone()),
            },
            GroupBy::Dir => Key {
                dir,
                label: None,
                file: None,
            },
            GroupBy::Label => Key {
                dir: PathBuf::new(),
                label: Some(first_app(f)),
                file: None,
            },
            GroupBy::Auto => match &f.unit {
                Some(unit) => Key {
                    dir: unit.clone(),
                    label: None,
                    file: None,
                },
                None if split_dirs.contains(&dir) => Key {
                    dir,
                    label: Some(first_app(f)),
                    file: None,
                },
                None => Key {
                    dir,
                    label: None,
                    file: None,
                },
            },
        };
        groups.entry(key).or_default().insert(f.path.clone());
    }
    let names = names(groups.keys().collect());
    let mut services: Vec<Service> = groups
        .into_iter()
        .zip(names)
        .map(|((_, files), name)| Service {
            name,
            files: files.into_iter().collect(),
        })
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    services
}

/// Groups `files` as [`group`] does, except that a file `named` gives a name to (a service
/// named in the configuration) goes to that service, whatever the rule says. Services that
/// end up with one name are one service.
pub fn group_named(
    files: &[ChangedFile],
    by: GroupBy,
    named: &dyn Fn(&Path) -> Option<String>,
) -> Vec<Service> {
    let mut by_name: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut rest = Vec::new();
    for f in files {
        match named(&f.path) {
            Some(name) => {
                by_name
                    .entry(sanitize(&name))
                    .or_default()
                    .insert(f.path.clone());
            }
            None => rest.push(f.clone()),
        }
    }
    for service in group(&rest, by) {
        by_name
            .entry(service.name)
            .or_default()
            .extend(service.files);
    }
    by_name
        .into_iter()
        .map(|(name, files)| Service {
            name,
            files: files.into_iter().collect(),
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    dir: PathBuf,
    label: Option<String>,
    file: Option<PathBuf>,
}

fn first_app(f: &ChangedFile) -> String {
    f.apps
        .first()
        .cloned()
        .unwrap_or_else(|| "unlabelled".into())
}

/// Folders (outside charts) whose workloads carry two or more different app labels.
fn dirs_with_several_apps(files: &[ChangedFile]) -> BTreeSet<PathBuf> {
    let mut apps: BTreeMap<PathBuf, BTreeSet<&str>> = BTreeMap::new();
    for f in files.iter().filter(|f| f.unit.is_none()) {
        let dir = f.path.parent().unwrap_or(Path::new("")).to_path_buf();
        apps.entry(dir)
            .or_default()
            .extend(f.apps.iter().map(String::as_str));
    }
    apps.into_iter()
        .filter(|(_, a)| a.len() > 1)
        .map(|(d, _)| d)
        .collect()
}

/// A name per key: the folder's name (or label, or file stem), with parent folders joined in
/// front until every name is unique.
fn names(keys: Vec<&Key>) -> Vec<String> {
    let base = |k: &Key, depth: usize| -> String {
        let mut parts: Vec<String> = k
            .dir
            .components()
            .rev()
            .take(depth)
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect();
        parts.reverse();
        if let Some(label) = &k.label {
            parts.push(label.clone());
        }
        if let Some(file) = &k.file {
            parts.push(
                file.file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
            );
        }
        if parts.is_empty() {
            parts.push("root".into());
        }
        sanitize(&parts.join("-"))
    };
    // A file's stem names it alone; a folder (also one split by label) starts with its own name.
    let mut depth: Vec<usize> = keys.iter().map(|k| usize::from(k.file.is_none())).collect();
    for _ in 0..8 {
        let current: Vec<String> = keys.iter().zip(&depth).map(|(k, &d)| base(k, d)).collect();
        let mut clash = false;
        for i in 0..keys.len() {
            if current.iter().filter(|n| **n == current[i]).count() > 1
                && depth[i] < keys[i].dir.components().count()
            {
                depth[i] += 1;
                clash = true;
            }
        }
        if !clash {
            return current;
        }
    }
    keys.iter().zip(&depth).map(|(k, &d)| base(k, d)).collect()
}

/// A valid git branch name component: lower case, `[a-z0-9._-]`, no `..`, no leading or trailing
/// `.`/`-`, not ending in `.lock`, at most 100 characters.
pub fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            c
        } else {
            '-'
        };
        if (c == '-' && out.ends_with('-')) || (c == '.' && out.ends_with('.')) {
            continue;
        }
        out.push(c);
    }
    let mut out: String = out.trim_matches(['-', '.']).chars().take(100).collect();
    out = out.trim_end_matches(['-', '.']).to_string();
    if out.ends_with(".lock") {
        out.truncate(out.len() - ".lock".len());
        out.push_str("-lock");
    }
    if out.is_empty() {
        "service".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, apps: &[&str]) -> ChangedFile {
        ChangedFile {
            path: path.into(),
            apps: apps.iter().map(|a| a.to_string()).collect(),
            unit: None,
        }
    }

    fn names_of(services: &[Service]) -> Vec<&str> {
        services.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn a_folder_is_a_service_named_after_it() {
        let files = [
            file("services/cart/deploy.yaml", &["cart"]),
            file("services/cart/svc.yaml", &[]),
            file("services/auth/deploy.yaml", &["auth"]),
        ];
        let services = group(&files, GroupBy::Auto);
        assert_eq!(names_of(&services), ["auth", "cart"]);
        assert_eq!(services[1].files.len(), 2);
        assert_eq!(services[1].branch(), "kube-harden/cart");
    }

    #[test]
    fn folders_that_share_a_name_take_their_parents_name() {
        let files = [
            file("team-a/cart/d.yaml", &["cart"]),
            file("team-b/cart/d.yaml", &["cart"]),
            file("team-b/web/d.yaml", &["web"]),
        ];
        assert_eq!(
            names_of(&group(&files, GroupBy::Auto)),
            ["team-a-cart", "team-b-cart", "web"]
        );
    }

    #[test]
    fn a_folder_with_several_apps_is_split_by_label() {
        let files = [
            file("k8s/all.yaml", &["cart"]),
            file("k8s/more.yaml", &["auth"]),
            file("other/x.yaml", &["x"]),
        ];
        assert_eq!(
            names_of(&group(&files, GroupBy::Auto)),
            ["k8s-auth", "k8s-cart", "other"]
        );
        assert_eq!(names_of(&group(&files, GroupBy::Dir)), ["k8s", "other"]);
        assert_eq!(
            names_of(&group(&files, GroupBy::Label)),
            ["auth", "cart", "x"]
        );
        assert_eq!(
            names_of(&group(&files, GroupBy::File)),
            ["all", "more", "x"]
        );
    }

    #[test]
    fn a_chart_is_one_service() {
        let mut values = file("charts/shop/values.yaml", &[]);
        values.unit = Some("charts/shop".into());
        let mut extra = file("charts/shop/ci/prod-values.yaml", &[]);
        extra.unit = Some("charts/shop".into());
        let services = group(&[values, extra], GroupBy::Auto);
        assert_eq!(names_of(&services), ["shop"]);
        assert_eq!(services[0].files.len(), 2);
    }

    #[test]
    fn a_service_named_in_the_configuration_takes_its_files() {
        let files = [
            file("services/payments/d.yaml", &["payments"]),
            file("services/ledger/s.yaml", &["ledger"]),
            file("services/cart/d.yaml", &["cart"]),
        ];
        let named = |p: &Path| {
            (p.starts_with("services/payments") || p.starts_with("services/ledger"))
                .then(|| "Money Team".to_string())
        };
        let services = group_named(&files, GroupBy::Auto, &named);
        assert_eq!(names_of(&services), ["cart", "money-team"]);
        assert_eq!(services[1].files.len(), 2);
        assert_eq!(services[1].branch(), "kube-harden/money-team");
    }

    #[test]
    fn names_become_valid_branch_names() {
        assert_eq!(sanitize("Team A/Cart Service"), "team-a-cart-service");
        assert_eq!(sanitize("..weird..name..lock"), "weird.name-lock");
        assert_eq!(sanitize("ü@{}~^:?*[\\"), "service");
        assert_eq!(sanitize("-x-"), "x");
        assert_eq!(sanitize(&"a".repeat(300)).len(), 100);
    }
}
