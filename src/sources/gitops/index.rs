//! The objects of the repository a release refers to by name: Flux `HelmRepository` and
//! `GitRepository` sources, and the `ConfigMap`s and `Secret`s a `valuesFrom` names. Read once
//! per run from the files the walk found (only those whose text mentions such a kind).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_serde::Value;

use crate::helm::repository::git::Revision;

/// A Flux `HelmRepository`: its URL (`oci://` for an OCI registry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmRepository {
    pub url: String,
    /// The name of `spec.secretRef`: a cluster Secret, not read.
    pub secret_ref: Option<String>,
    pub file: PathBuf,
}

/// A Flux `GitRepository`: its URL and the revision its `spec.ref` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRepository {
    pub url: String,
    pub revision: Revision,
}

/// A Flux `OCIRepository`: the chart's repository and the version its `ref` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRepository {
    /// `oci://ghcr.io/acme/charts/web`.
    pub url: String,
    /// `spec.ref.digest`, else `spec.ref.semver`, else `spec.ref.tag`, else `latest` (Flux's
    /// order of precedence).
    pub version: String,
    /// The name of `spec.secretRef`: a cluster Secret, not read.
    pub secret_ref: Option<String>,
    pub file: PathBuf,
}

/// The name of a source's `spec.secretRef`.
fn secret_ref(spec: &Value) -> Option<String> {
    spec.get("secretRef")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// An object by kind, namespace (as written, if written) and name.
type Key = (String, Option<String>, String);

/// The referable objects of the run.
#[derive(Clone, Debug, Default)]
pub struct Index {
    objects: BTreeMap<Key, (PathBuf, Value)>,
    /// Flux `Kustomization`s (kustomize.toolkit.fluxcd.io): what they build and substitute.
    flux_kustomizations: Vec<(PathBuf, Value)>,
}

const KINDS: [&str; 6] = [
    "HelmRepository",
    "OCIRepository",
    "GitRepository",
    "ConfigMap",
    "Secret",
    "Kustomization",
];

impl Index {
    /// Reads the objects of these kinds from `files` (each at most `max_bytes`).
    pub fn read(files: &[PathBuf], max_bytes: u64) -> Index {
        let mut index = Index::default();
        for file in files {
            let small = std::fs::metadata(file).is_ok_and(|m| m.len() <= max_bytes);
            let Some(text) = small.then(|| std::fs::read_to_string(file).ok()).flatten() else {
                continue;
            };
            if KINDS.iter().any(|k| text.contains(k)) {
                index.add(file, &text);
            }
        }
        index
    }

    /// Adds the objects of one file's text.
    pub fn add(&mut self, file: &Path, text: &str) {
        for document in yaml_serde::Deserializer::from_str(text) {
            let Ok(object) = <Value as serde::Deserialize>::deserialize(document) else {
                return; // a file that does not load is reported by its own source
            };
            let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            let Some(kind) = field(&object, "kind").filter(|k| KINDS.contains(&k.as_str())) else {
                continue;
            };
            if kind == "Kustomization" {
                let flux = field(&object, "apiVersion")
                    .is_some_and(|v| v.starts_with("kustomize.toolkit.fluxcd.io/"));
                if flux {
                    self.flux_kustomizations
                        .push((file.to_path_buf(), object.clone()));
                }
                continue;
            }
            let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
            let Some(name) = field(&meta, "name") else {
                continue;
            };
            let key = (kind, field(&meta, "namespace"), name);
            self.objects.insert(key, (file.to_path_buf(), object));
        }
    }

    /// The object `kind`/`name`: in `namespace` when one has it, else the only one by that
    /// name (a namespace set by Kustomize is not in the file).
    fn find(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&(PathBuf, Value)> {
        let exact = (
            kind.to_string(),
            namespace.map(str::to_string),
            name.to_string(),
        );
        if let Some(found) = self.objects.get(&exact) {
            return Some(found);
        }
        let mut by_name = self
            .objects
            .iter()
            .filter(|((k, _, n), _)| k == kind && n == name);
        match (by_name.next(), by_name.next()) {
            (Some((_, found)), None) => Some(found),
            _ => None,
        }
    }

    pub fn helm_repository(&self, namespace: Option<&str>, name: &str) -> Option<HelmRepository> {
        let (file, object) = self.find("HelmRepository", namespace, name)?;
        let spec = object.get("spec")?;
        let mut url = spec.get("url")?.as_str()?.to_string();
        if spec.get("type").and_then(Value::as_str) == Some("oci") && !url.starts_with("oci://") {
            url = format!("oci://{url}");
        }
        Some(HelmRepository {
            url,
            secret_ref: secret_ref(spec),
            file: file.clone(),
        })
    }

    /// A Flux `OCIRepository`'s chart repository and version.
    pub fn oci_repository(&self, namespace: Option<&str>, name: &str) -> Option<OciRepository> {
        let (file, object) = self.find("OCIRepository", namespace, name)?;
        let spec = object.get("spec")?;
        let url = spec.get("url")?.as_str()?.to_string();
        let reference = spec.get("ref");
        let text = |key: &str| {
            reference
                .and_then(|r| r.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let version = text("digest")
            .or_else(|| text("semver"))
            .or_else(|| text("tag"))
            .unwrap_or_else(|| "latest".into());
        Some(OciRepository {
            url,
            version,
            secret_ref: secret_ref(spec),
            file: file.clone(),
        })
    }

    /// A Flux `GitRepository`'s URL and the revision its `spec.ref` names.
    pub fn git_repository(&self, namespace: Option<&str>, name: &str) -> Option<GitRepository> {
        let (_, object) = self.find("GitRepository", namespace, name)?;
        let spec = object.get("spec")?;
        let reference = spec.get("ref");
        let field = |key: &str| {
            let value = reference?.get(key)?;
            value.as_str().map(str::to_string)
        };
        Some(GitRepository {
            url: spec.get("url")?.as_str()?.to_string(),
            revision: Revision::flux(field),
        })
    }

    /// The Flux `Kustomization`s of the run, with their files.
    pub fn flux_kustomizations(&self) -> &[(PathBuf, Value)] {
        &self.flux_kustomizations
    }

    /// Every string of a ConfigMap's `data` (a Secret's `stringData`, or its `data` decoded
    /// from base64).
    pub fn data(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        let (_, object) = self.find(kind, namespace, name)?;
        let strings = |section: &str, decode: bool| -> BTreeMap<String, String> {
            let Some(map) = object.get(section).and_then(Value::as_mapping) else {
                return BTreeMap::new();
            };
            map.iter()
                .filter_map(|(k, v)| {
                    let text = v.as_str()?;
                    let text = match decode {
                        true => String::from_utf8(base64_decode(text)?).ok()?,
                        false => text.to_string(),
                    };
                    Some((k.as_str()?.to_string(), text))
                })
                .collect()
        };
        let mut data = strings("data", kind == "Secret");
        if kind == "Secret" {
            data.extend(strings("stringData", false));
        }
        Some(data)
    }

    /// The text of `key` in the ConfigMap or Secret `kind`/`name` (a Secret's `stringData` or
    /// base64 `data`), with the file it is in. None when the object or the key is not here.
    pub fn values_text(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        key: &str,
    ) -> Option<(PathBuf, String)> {
        let (file, object) = self.find(kind, namespace, name)?;
        let text = |section: &str| object.get(section)?.get(key)?.as_str().map(str::to_string);
        let found = match kind {
            "Secret" => text("stringData"),
            _ => text("data"),
        }?;
        Some((file.clone(), found))
    }
}

/// Standard base64 (a Secret's `data`), or None when it is not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
    {
        let value = ALPHABET.iter().position(|&a| a == byte)? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_value_maps_are_found_by_name() {
        let mut index = Index::default();
        index.add(
            Path::new("infra/sources.yaml"),
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n  url: https://stefanprodan.github.io/podinfo\n---\nkind: HelmRepository\nmetadata: {name: ghcr}\nspec: {type: oci, url: ghcr.io/acme/charts}\n---\nkind: ConfigMap\nmetadata: {name: web-values}\ndata:\n  values.yaml: |\n    replicaCount: 2\n",
        );
        assert_eq!(
            index.helm_repository(Some("apps"), "podinfo").unwrap().url,
            "https://stefanprodan.github.io/podinfo",
            "the only one by that name"
        );
        assert_eq!(
            index.helm_repository(None, "ghcr").unwrap().url,
            "oci://ghcr.io/acme/charts"
        );
        assert_eq!(
            index
                .values_text("ConfigMap", Some("apps"), "web-values", "values.yaml")
                .unwrap()
                .1,
            "replicaCount: 2\n"
        );
        assert!(index
            .values_text("Secret", None, "web-values", "values.yaml")
            .is_none());
    }

    #[test]
    fn a_git_repository_gives_its_url_and_the_revision_its_ref_names() {
        let mut index = Index::default();
        index.add(
            Path::new("infra/sources.yaml"),
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: charts, namespace: flux-system}\nspec:\n  url: https://git.example.com/acme/charts.git\n  ref: {branch: main, semver: '~1.2'}\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: bare}\nspec: {url: https://git.example.com/acme/bare.git}\n",
        );
        let found = index.git_repository(None, "charts").unwrap();
        assert_eq!(found.url, "https://git.example.com/acme/charts.git");
        assert_eq!(found.revision, Revision::Semver("~1.2".into()));
        let bare = index.git_repository(None, "bare").unwrap();
        assert_eq!(
            bare.revision,
            Revision::Branch("master".into()),
            "Flux's default"
        );
    }

    #[test]
    fn oci_repositories_give_their_url_and_version_in_flux_order() {
        let mut index = Index::default();
        index.add(
            Path::new("infra/oci.yaml"),
            "kind: OCIRepository\nmetadata: {name: a, namespace: flux-system}\nspec:\n  url: oci://ghcr.io/acme/charts/web\n  ref: {tag: 1.0.0, semver: '1.x', digest: 'sha256:abc'}\n  secretRef: {name: pull}\n---\nkind: OCIRepository\nmetadata: {name: b}\nspec: {url: oci://ghcr.io/acme/charts/api, ref: {tag: 2.0.0, semver: '>=1'}}\n---\nkind: OCIRepository\nmetadata: {name: c}\nspec: {url: oci://ghcr.io/acme/charts/db}\n",
        );
        let a = index.oci_repository(Some("flux-system"), "a").unwrap();
        assert_eq!(
            (a.url.as_str(), a.version.as_str()),
            ("oci://ghcr.io/acme/charts/web", "sha256:abc")
        );
        assert_eq!(a.secret_ref.as_deref(), Some("pull"));
        assert_eq!(index.oci_repository(None, "b").unwrap().version, ">=1");
        assert_eq!(index.oci_repository(None, "c").unwrap().version, "latest");
        assert!(index.oci_repository(None, "d").is_none());
    }

    #[test]
    fn flux_kustomizations_and_the_data_of_config_maps_and_secrets() {
        let mut index = Index::default();
        index.add(
            Path::new("clusters/prod.yaml"),
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps}\nspec: {path: ./apps/prod}\n---\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n---\nkind: Secret\nmetadata: {name: vars}\ndata: {region: ZXUtd2VzdC0x}\nstringData: {zone: b}\n",
        );
        assert_eq!(index.flux_kustomizations().len(), 1);
        let data = index.data("Secret", None, "vars").unwrap();
        assert_eq!(data["region"], "eu-west-1");
        assert_eq!(data["zone"], "b");
    }
}
