//! The releases a GitOps manifest declares, as data: a Flux `HelmRelease`, an Argo CD
//! `Application` (each of its sources) or `ApplicationSet` template, with the chart it names and
//! where its inline values are. Read from the span tree, so every place has its node and line;
//! nothing here fetches, plans or edits.

use yaml_splice::{NodeId, Ref, Tree};

/// The GitOps tool a release belongs to, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseKind {
    FluxHelmRelease,
    ArgoApplication,
    ArgoApplicationSet,
    /// A `helmCharts` entry of a kustomization.
    KustomizeHelmChart,
}

impl ReleaseKind {
    pub fn name(self) -> &'static str {
        match self {
            ReleaseKind::FluxHelmRelease => "HelmRelease",
            ReleaseKind::ArgoApplication => "Application",
            ReleaseKind::ArgoApplicationSet => "ApplicationSet",
            ReleaseKind::KustomizeHelmChart => "helmCharts",
        }
    }

    /// The kind as a noun in a sentence.
    pub fn noun(self) -> &'static str {
        match self {
            ReleaseKind::KustomizeHelmChart => "helmCharts entry",
            other => other.name(),
        }
    }
}

/// Where a release's chart comes from, as the manifest says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartSource {
    /// An HTTP(S) or OCI chart repository: its URL, the chart's name, the version (exact, a
    /// range, or empty for the latest).
    Repository {
        url: String,
        chart: String,
        version: String,
    },
    /// A Flux `sourceRef` to a `HelmRepository` that must be looked up by name.
    HelmRepositoryRef {
        name: String,
        namespace: Option<String>,
        chart: String,
        version: String,
    },
    /// A chart folder in a git repository (`repo_url`, or the Flux `GitRepository` named): the
    /// path inside it.
    GitPath { repo: GitRepo, path: String },
    /// A Flux `chartRef` to an `OCIRepository` that must be looked up by name (its URL names
    /// the chart's own repository, its `ref` the tag, semver range or digest).
    OciRepositoryRef {
        name: String,
        namespace: Option<String>,
    },
    /// A chart folder next to the manifest (a kustomization's `helmGlobals.chartHome`).
    Local(std::path::PathBuf),
    /// Something this tool does not read (a `HelmChart` chartRef, a `Bucket`,
    /// a templated field of an ApplicationSet), with why.
    Unsupported(String),
}

/// A git repository a chart path is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitRepo {
    /// An Argo CD `repoURL` at its `targetRevision` (as written; empty means `HEAD`).
    Url { url: String, revision: String },
    /// A Flux `GitRepository` by name and namespace.
    FluxRef {
        name: String,
        namespace: Option<String>,
    },
}

/// Where the inline values of a release are, or would go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValuesSite {
    /// A mapping (Flux `spec.values`, Argo `helm.valuesObject`).
    Mapping(NodeId),
    /// A YAML document inside a string (Argo `helm.values: |`).
    Text(NodeId),
    /// None yet: the mapping `parent` gets a new key `key`.
    Absent { parent: NodeId, key: &'static str },
}

/// A value set from elsewhere that Helm merges before the inline values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValuesFrom {
    /// A Flux `valuesFrom` entry: kind (`ConfigMap`/`Secret`), name, the key (default
    /// `values.yaml`), the target path (merged at that path) and whether it is optional.
    Reference {
        kind: String,
        name: String,
        key: String,
        target_path: Option<String>,
        optional: bool,
    },
    /// An Argo `helm.valueFiles` entry (a path relative to the chart, or a URL).
    File(String),
    /// A values file relative to the manifest's folder (a `helmCharts` entry's `valuesFile`).
    Local(std::path::PathBuf),
}

/// One release: a chart and the values it is installed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub kind: ReleaseKind,
    /// `metadata.name` (with `[i]` for the i-th source of a multi-source Application).
    pub name: String,
    pub namespace: Option<String>,
    /// 1-based line of the object (or of the source in `spec.sources`).
    pub line: usize,
    pub document: usize,
    pub chart: ChartSource,
    pub values: ValuesSite,
    /// The other inline site when Argo has both `values` and `valuesObject` (this one loses).
    pub shadowed: Option<ValuesSite>,
    pub values_from: Vec<ValuesFrom>,
    /// Argo `helm.parameters` (`--set name=value`): they win over every values file.
    pub parameters: Vec<(String, String)>,
    /// An Argo `path` source without `helm:`: a release only if the folder is a chart.
    pub implicit: bool,
}

/// The `helmCharts` entries of a kustomization (its folder `dir`): each installs a chart from
/// `repo`, or from `helmGlobals.chartHome` (default `charts`) next to the kustomization, with
/// `valuesFile`, `additionalValuesFiles` and then `valuesInline` over the chart's defaults.
pub fn kustomize_releases(tree: &Tree, dir: &std::path::Path) -> Vec<Release> {
    let Some(root) = tree.docs.first().and_then(|d| d.root).map(Ref::root) else {
        return vec![];
    };
    let Some(list) = tree.get(root, "helmCharts") else {
        return vec![];
    };
    let home =
        text_at(tree, root, &["helmGlobals", "chartHome"]).unwrap_or_else(|| "charts".into());
    tree.items(list)
        .into_iter()
        .map(|entry| {
            let text = |k: &str| text_at(tree, entry, &[k]);
            let name = text("name").unwrap_or_default();
            let version = text("version").unwrap_or_default();
            let chart = match text("repo") {
                Some(url) => ChartSource::Repository {
                    url,
                    chart: name.clone(),
                    version,
                },
                None => ChartSource::Local(lexical(&dir.join(&home).join(&name))),
            };
            let mut values_from: Vec<ValuesFrom> = text("valuesFile")
                .map(|f| ValuesFrom::Local(dir.join(f)))
                .into_iter()
                .collect();
            values_from.extend(
                tree.get(entry, "additionalValuesFiles")
                    .map(|l| tree.items(l))
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|f| tree.as_str(f).map(|f| ValuesFrom::Local(dir.join(f)))),
            );
            let values = match tree.get(entry, "valuesInline") {
                Some(v) => ValuesSite::Mapping(v.id),
                None => ValuesSite::Absent {
                    parent: entry.id,
                    key: "valuesInline",
                },
            };
            Release {
                kind: ReleaseKind::KustomizeHelmChart,
                name: text("releaseName").unwrap_or_else(|| name.clone()),
                namespace: text("namespace"),
                line: tree.position(entry).0,
                document: 0,
                chart,
                values,
                shadowed: None,
                values_from,
                parameters: vec![],
                implicit: false,
            }
        })
        .collect()
}

/// `a/b/../c` as `a/c`, without touching the file system (for names in messages).
fn lexical(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The group of each GitOps API this tool reads.
const FLUX_HELM: &str = "helm.toolkit.fluxcd.io/";
const ARGO: &str = "argoproj.io/";

/// True when `text` may declare a release (a cheap test before parsing): the API group, and a
/// top-level `kind:` line of a release (a CRD that names the kind deeper down does not count).
pub fn may_declare_release(text: &str) -> bool {
    let kind_line = |kinds: &[&str]| {
        text.lines().any(|l| {
            l.strip_prefix("kind:")
                .map(|k| k.trim().trim_matches(['"', '\'']))
                .is_some_and(|k| kinds.contains(&k))
        })
    };
    (text.contains(FLUX_HELM) && kind_line(&["HelmRelease"]))
        || (text.contains(ARGO) && kind_line(&["Application", "ApplicationSet"]))
}

/// Every release declared in the documents of `tree`.
pub fn releases(tree: &Tree) -> Vec<Release> {
    let mut out = Vec::new();
    for (document, doc) in tree.docs.iter().enumerate() {
        let Some(root) = doc.root.map(Ref::root) else {
            continue;
        };
        let field = |k: &str| tree.get(root, k).and_then(|v| tree.as_str(v));
        let (Some(api), Some(kind)) = (field("apiVersion"), field("kind")) else {
            continue;
        };
        let meta = Meta::of(tree, root, document);
        match (api, kind) {
            (a, "HelmRelease") if a.starts_with(FLUX_HELM) => {
                out.extend(flux_release(tree, root, meta));
            }
            (a, "Application") if a.starts_with(ARGO) => {
                let spec = tree.get(root, "spec");
                out.extend(spec.map_or(vec![], |s| argo_sources(tree, s, &meta, false)));
            }
            (a, "ApplicationSet") if a.starts_with(ARGO) => {
                let spec = walk(tree, root, &["spec", "template", "spec"]);
                let mut meta = meta;
                meta.kind = ReleaseKind::ArgoApplicationSet;
                out.extend(spec.map_or(vec![], |s| argo_sources(tree, s, &meta, true)));
            }
            _ => {}
        }
    }
    out
}

/// What every release of one object shares.
#[derive(Clone)]
struct Meta {
    kind: ReleaseKind,
    name: String,
    namespace: Option<String>,
    line: usize,
    document: usize,
}

impl Meta {
    fn of(tree: &Tree, root: Ref, document: usize) -> Meta {
        let meta = tree.get(root, "metadata");
        let text = |k: &str| {
            meta.and_then(|m| tree.get(m, k))
                .and_then(|v| tree.as_str(v))
                .map(str::to_string)
        };
        Meta {
            kind: ReleaseKind::ArgoApplication,
            name: text("name").unwrap_or_else(|| "<unnamed>".into()),
            namespace: text("namespace"),
            line: tree.position(root).0,
            document,
        }
    }
}

fn walk(tree: &Tree, from: Ref, path: &[&str]) -> Option<Ref> {
    path.iter().try_fold(from, |node, key| tree.get(node, key))
}

fn text_at(tree: &Tree, from: Ref, path: &[&str]) -> Option<String> {
    let node = walk(tree, from, path)?;
    match tree.scalar(node)? {
        yaml_splice::Scalar::Str(s) => Some(s.to_string()),
        // A version written as a number (`version: 1.2`) is still a version.
        yaml_splice::Scalar::Int(_) => Some(tree.source_text(node).to_string()),
        _ => None,
    }
}

fn flux_release(tree: &Tree, root: Ref, mut meta: Meta) -> Option<Release> {
    meta.kind = ReleaseKind::FluxHelmRelease;
    let spec = tree.get(root, "spec")?;
    let chart = flux_chart(tree, spec, meta.namespace.as_deref());
    let values = match tree.get(spec, "values") {
        Some(v) if tree.is_map(v) || tree.is_empty(v) => ValuesSite::Mapping(v.id),
        Some(v) => ValuesSite::Text(v.id),
        None => ValuesSite::Absent {
            parent: spec.id,
            key: "values",
        },
    };
    let values_from = tree
        .get(spec, "valuesFrom")
        .map(|l| tree.items(l))
        .unwrap_or_default()
        .into_iter()
        .map(|item| {
            let text = |k: &str| text_at(tree, item, &[k]);
            ValuesFrom::Reference {
                kind: text("kind").unwrap_or_default(),
                name: text("name").unwrap_or_default(),
                key: text("valuesKey").unwrap_or_else(|| "values.yaml".into()),
                target_path: text("targetPath"),
                optional: tree
                    .get(item, "optional")
                    .and_then(|o| tree.scalar(o))
                    .is_some_and(|s| s == yaml_splice::Scalar::Bool(true)),
            }
        })
        .collect();
    Some(Release {
        kind: meta.kind,
        name: meta.name,
        namespace: meta.namespace,
        line: meta.line,
        document: meta.document,
        chart,
        values,
        shadowed: None,
        values_from,
        parameters: vec![],
        implicit: false,
    })
}

fn flux_chart(tree: &Tree, spec: Ref, namespace: Option<&str>) -> ChartSource {
    if let Some(chart_ref) = tree.get(spec, "chartRef") {
        let kind = text_at(tree, chart_ref, &["kind"]).unwrap_or_default();
        if kind == "OCIRepository" {
            return ChartSource::OciRepositoryRef {
                name: text_at(tree, chart_ref, &["name"]).unwrap_or_default(),
                namespace: text_at(tree, chart_ref, &["namespace"])
                    .or_else(|| namespace.map(str::to_string)),
            };
        }
        return ChartSource::Unsupported(format!(
            "`spec.chartRef` to a {kind}: charts from HelmChart objects are not read yet"
        ));
    }
    let Some(chart_spec) = walk(tree, spec, &["chart", "spec"]) else {
        return ChartSource::Unsupported("no `spec.chart.spec`".into());
    };
    let chart = text_at(tree, chart_spec, &["chart"]).unwrap_or_default();
    let version = text_at(tree, chart_spec, &["version"]).unwrap_or_default();
    let source_kind = text_at(tree, chart_spec, &["sourceRef", "kind"]).unwrap_or_default();
    let name = text_at(tree, chart_spec, &["sourceRef", "name"]).unwrap_or_default();
    let ref_namespace = text_at(tree, chart_spec, &["sourceRef", "namespace"])
        .or_else(|| namespace.map(str::to_string));
    match source_kind.as_str() {
        "HelmRepository" => ChartSource::HelmRepositoryRef {
            name,
            namespace: ref_namespace,
            chart,
            version,
        },
        "GitRepository" => ChartSource::GitPath {
            repo: GitRepo::FluxRef {
                name,
                namespace: ref_namespace,
            },
            path: chart,
        },
        other => {
            ChartSource::Unsupported(format!("a chart from a `{other}` source is not read yet"))
        }
    }
}

/// The releases of an Application's (or ApplicationSet template's) `spec`: `source`, or each
/// of `sources` that is a chart (a source with `ref:` only and no chart is a values source).
fn argo_sources(tree: &Tree, spec: Ref, meta: &Meta, templated: bool) -> Vec<Release> {
    if let Some(source) = tree.get(spec, "source") {
        return argo_release(tree, source, meta, None, templated)
            .into_iter()
            .collect();
    }
    let Some(sources) = tree.get(spec, "sources") else {
        return vec![];
    };
    tree.items(sources)
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| argo_release(tree, s, meta, Some(i), templated))
        .collect()
}

fn argo_release(
    tree: &Tree,
    source: Ref,
    meta: &Meta,
    index: Option<usize>,
    templated: bool,
) -> Option<Release> {
    let text = |path: &[&str]| text_at(tree, source, path);
    let repo_url = text(&["repoURL"]).unwrap_or_default();
    let chart_name = text(&["chart"]);
    let path = text(&["path"]);
    let helm = tree.get(source, "helm");
    // A source that only provides `$ref` value files is no release; a `path` without `helm`
    // is one only if that folder is a chart (Argo CD looks for Chart.yaml), which the chart
    // lookup decides.
    if chart_name.is_none() && path.is_none() {
        return None;
    }
    let implicit = chart_name.is_none() && helm.is_none();
    let chart = match (chart_name, path) {
        (Some(c), _) if templated && (c.contains("{{") || repo_url.contains("{{")) => {
            ChartSource::Unsupported(format!(
                "the ApplicationSet's template fills the chart in (`{c}`)"
            ))
        }
        (Some(chart), _) => ChartSource::Repository {
            url: repo_url.clone(),
            chart,
            version: text(&["targetRevision"]).unwrap_or_default(),
        },
        (None, Some(path)) if templated && (path.contains("{{") || repo_url.contains("{{")) => {
            ChartSource::Unsupported(format!(
                "the ApplicationSet's template fills the chart path in (`{path}`)"
            ))
        }
        (None, Some(path)) => ChartSource::GitPath {
            repo: GitRepo::Url {
                url: repo_url.clone(),
                revision: text(&["targetRevision"]).unwrap_or_default(),
            },
            path,
        },
        (None, None) => ChartSource::Unsupported("neither `chart` nor `path`".into()),
    };
    let (values, shadowed) = argo_values(tree, source, helm);
    let values_from = helm
        .and_then(|h| tree.get(h, "valueFiles"))
        .map(|l| tree.items(l))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| tree.as_str(f).map(|s| ValuesFrom::File(s.to_string())))
        .collect();
    let parameters = helm
        .and_then(|h| tree.get(h, "parameters"))
        .map(|l| tree.items(l))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((text_at(tree, p, &["name"])?, text_at(tree, p, &["value"])?)))
        .collect();
    let name = match index {
        Some(i) => format!("{}[{i}]", meta.name),
        None => meta.name.clone(),
    };
    Some(Release {
        kind: meta.kind,
        name,
        namespace: meta.namespace.clone(),
        line: match index {
            Some(_) => tree.position(source).0,
            None => meta.line,
        },
        document: meta.document,
        chart,
        values,
        shadowed,
        values_from,
        parameters,
        implicit,
    })
}

/// Argo's inline values: `valuesObject` wins over `values` when both are set, so it is the one
/// edited; without either, a `valuesObject` is added (under a new `helm:` when needed).
fn argo_values(tree: &Tree, source: Ref, helm: Option<Ref>) -> (ValuesSite, Option<ValuesSite>) {
    let Some(helm) = helm else {
        return (
            ValuesSite::Absent {
                parent: source.id,
                key: "helm",
            },
            None,
        );
    };
    let object = tree.get(helm, "valuesObject");
    let string = tree.get(helm, "values");
    match (object, string) {
        (Some(o), s) => (ValuesSite::Mapping(o.id), s.map(|s| ValuesSite::Text(s.id))),
        (None, Some(s)) if tree.is_map(s) => (ValuesSite::Mapping(s.id), None),
        (None, Some(s)) => (ValuesSite::Text(s.id), None),
        (None, None) => (
            ValuesSite::Absent {
                parent: helm.id,
                key: "valuesObject",
            },
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Vec<Release> {
        let tree = Tree::parse(src).unwrap();
        releases(&tree)
    }

    #[test]
    fn a_flux_release_names_its_helm_repository_and_its_values() {
        let src = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: apps\nspec:\n  chart:\n    spec:\n      chart: podinfo\n      version: '6.x'\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n  valuesFrom:\n  - kind: ConfigMap\n    name: podinfo-values\n  values:\n    replicaCount: 2\n";
        let r = &parse(src)[0];
        assert_eq!(r.kind, ReleaseKind::FluxHelmRelease);
        assert_eq!(
            r.chart,
            ChartSource::HelmRepositoryRef {
                name: "podinfo".into(),
                namespace: Some("apps".into()),
                chart: "podinfo".into(),
                version: "6.x".into()
            }
        );
        assert!(matches!(r.values, ValuesSite::Mapping(_)));
        assert_eq!(
            r.values_from,
            vec![ValuesFrom::Reference {
                kind: "ConfigMap".into(),
                name: "podinfo-values".into(),
                key: "values.yaml".into(),
                target_path: None,
                optional: false
            }]
        );
    }

    #[test]
    fn argo_prefers_values_object_and_reads_every_chart_source() {
        let src = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  sources:\n  - repoURL: https://charts.example.com\n    chart: web\n    targetRevision: 1.2.3\n    helm:\n      values: |\n        a: 1\n      valuesObject:\n        a: 2\n  - repoURL: https://git.example.com/values.git\n    ref: values\n  - repoURL: https://git.example.com/shop.git\n    path: charts/api\n    helm:\n      valueFiles: [values-prod.yaml]\n";
        let rs = parse(src);
        assert_eq!(rs.len(), 2, "the `ref:` source is no release");
        assert_eq!(rs[0].name, "shop[0]");
        assert!(matches!(rs[0].values, ValuesSite::Mapping(_)));
        assert!(matches!(rs[0].shadowed, Some(ValuesSite::Text(_))));
        assert_eq!(
            rs[1].chart,
            ChartSource::GitPath {
                repo: GitRepo::Url {
                    url: "https://git.example.com/shop.git".into(),
                    revision: String::new()
                },
                path: "charts/api".into()
            }
        );
        assert_eq!(
            rs[1].values_from,
            vec![ValuesFrom::File("values-prod.yaml".into())]
        );
        assert!(matches!(
            rs[1].values,
            ValuesSite::Absent {
                key: "valuesObject",
                ..
            }
        ));
    }

    #[test]
    fn a_flux_chart_ref_names_its_oci_repository() {
        let src = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  chartRef:\n    kind: OCIRepository\n    name: web-chart\n  values:\n    replicaCount: 2\n";
        assert_eq!(
            parse(src)[0].chart,
            ChartSource::OciRepositoryRef {
                name: "web-chart".into(),
                namespace: Some("apps".into()),
            }
        );
        let helm_chart = src.replace("OCIRepository", "HelmChart");
        assert!(matches!(
            parse(&helm_chart)[0].chart,
            ChartSource::Unsupported(_)
        ));
    }

    #[test]
    fn an_application_set_template_with_a_templated_chart_is_not_guessed() {
        let src = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: fleet\nspec:\n  template:\n    spec:\n      source:\n        repoURL: https://charts.example.com\n        chart: '{{name}}'\n        targetRevision: 1.0.0\n        helm:\n          values: |\n            x: 1\n";
        let r = &parse(src)[0];
        assert_eq!(r.kind, ReleaseKind::ArgoApplicationSet);
        assert!(matches!(r.chart, ChartSource::Unsupported(_)));
        assert!(matches!(r.values, ValuesSite::Text(_)));
    }

    #[test]
    fn kustomize_helm_charts_name_their_chart_and_values() {
        let src = "helmGlobals:\n  chartHome: vendor\nhelmCharts:\n- name: web\n  repo: https://charts.example.com\n  version: 1.2.0\n  releaseName: shop\n  valuesInline:\n    replicaCount: 2\n- name: api\n  valuesFile: api-values.yaml\n";
        let tree = Tree::parse(src).unwrap();
        let rs = kustomize_releases(&tree, std::path::Path::new("base"));
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].name, "shop");
        assert!(matches!(rs[0].values, ValuesSite::Mapping(_)));
        assert_eq!(
            rs[1].chart,
            ChartSource::Local(std::path::PathBuf::from("base/vendor/api"))
        );
        assert_eq!(
            rs[1].values_from,
            vec![ValuesFrom::Local(std::path::PathBuf::from(
                "base/api-values.yaml"
            ))]
        );
    }

    #[test]
    fn the_cheap_test_sees_both_tools() {
        assert!(may_declare_release(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n"
        ));
        assert!(may_declare_release(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
        ));
        assert!(!may_declare_release(
            "apiVersion: apps/v1\nkind: Deployment\n"
        ));
    }
}
