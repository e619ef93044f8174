//! A Flux fleet as public fleets write it, end to end (`fixtures/gitops-fleet/`): six
//! `HelmRelease`s in Kustomize bases, two clusters' overlays that patch their values
//! (`patches:` files, an inline strategic-merge patch, an inline JSON patch), a release whose values come from a
//! `configMapGenerator` file, one with no values at all, a privileged node agent and a chart
//! that is hardened already; the charts are in the fleet repository (`./charts`, through a
//! Flux `GitRepository` whose URL is the repository's `origin`).
//!
//! `fix` (render check on, with Kustomize's and Helm's engines) must change exactly the files
//! of `expected/` into them, byte for byte, and print `report.txt`; a second `fix` changes
//! nothing. Then the test is its own oracle: each cluster's overlay is built with `kubectl
//! kustomize` before and after, and every `HelmRelease` of the build is rendered with Helm's
//! engine and the values the build gives it (its `valuesFrom` ConfigMaps, then `spec.values`).
//! Every pod of a release the report does not leave alone meets the contract (typed with
//! k8s-openapi), nothing changed outside securityContexts and the writable /tmp, and no pod
//! falls short without the report naming its release.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

mod common;
use common::helm::run_with_helm;
use common::{
    contract_gaps, copy_dir, snapshot, strip_security_contexts, typed_pod_specs, with_tmp_additions,
};

const ORIGIN: &str = "https://github.com/acme/fleet.git";
/// Each cluster's overlay, and the Flux `Kustomization` that builds it (its post-build
/// variables).
const CLUSTERS: [(&str, &str); 2] = [
    ("apps/production", "clusters/production"),
    ("apps/staging", "clusters/staging"),
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops-fleet")
}

/// A git repository with the fleet and the shared GitOps fixture charts, `origin` set.
fn work_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops/charts"),
        &dir.path().join("charts"),
    );
    copy_dir(&fixture_dir().join("input"), dir.path());
    common::init_with_origin(dir.path(), ORIGIN);
    dir
}

#[test]
fn a_flux_fleet_with_overlays_is_hardened_where_each_value_is_supplied() {
    let work = work_tree();
    let before = common::without_git(snapshot(work.path()));
    let cache = tempfile::tempdir().unwrap();
    let args = [
        "fix",
        "--chart-cache",
        cache.path().to_str().unwrap(),
        "apps",
        "clusters",
        "infrastructure",
    ];
    let out = run_with_helm(work.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    if std::env::var_os("KUBE_HARDEN_BLESS").is_some() {
        bless(&before, work.path(), &stderr);
    }
    assert_eq!(
        stderr,
        fs::read_to_string(fixture_dir().join("report.txt")).unwrap(),
        "the report"
    );
    let after = common::without_git(snapshot(work.path()));
    let expected = snapshot(&fixture_dir().join("expected"));
    assert!(!expected.is_empty(), "the fleet has expected files");
    for (path, bytes) in &after {
        let want = expected.get(path).unwrap_or(&before[path]);
        assert!(
            bytes == want,
            "{} differs:\n{}",
            path.display(),
            String::from_utf8_lossy(bytes)
        );
    }
    let again = run_with_helm(work.path(), &args);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        common::without_git(snapshot(work.path())),
        after,
        "a second fix changes nothing"
    );
    let old_tree = tempfile::tempdir().unwrap();
    for (path, bytes) in &before {
        fs::create_dir_all(old_tree.path().join(path).parent().unwrap()).unwrap();
        fs::write(old_tree.path().join(path), bytes).unwrap();
    }
    // The pod a release leaves short is a finding of its own in `check`'s JSON: fsGroup has
    // no home in the container-only chart of `feeds`, whose post-renderers are its team's.
    let check = run_with_helm(
        work.path(),
        &[&["check", "--format", "json"], &args[1..]].concat(),
    );
    let json: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let of_the_pod: Vec<(&str, bool)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "Deployment" && f["name"] == "feeds-feeds (apps/production)")
        .map(|f| (f["control"].as_str().unwrap(), f["fixable"] == true))
        .collect();
    assert_eq!(of_the_pod, vec![("fsGroup", false)], "{json:#}");
    let counts = check_clusters(old_tree.path(), work.path(), &stderr);
    eprintln!("pods after fix: {counts:?}");
    assert_eq!(counts.silent, 0, "no pod falls short unnamed: {counts:?}");
    assert!(counts.exact >= 8, "the hardened pods: {counts:?}");
    assert!(counts.left_alone >= 1, "the node agent: {counts:?}");
}

/// `KUBE_HARDEN_BLESS=1`: writes report.txt and expected/ from this run (to be read in review
/// before they are committed); the assertions then run against them.
fn bless(before: &BTreeMap<PathBuf, Vec<u8>>, work: &Path, stderr: &str) {
    fs::write(fixture_dir().join("report.txt"), stderr).unwrap();
    let expected = fixture_dir().join("expected");
    let _ = fs::remove_dir_all(&expected);
    for (path, bytes) in common::without_git(snapshot(work)) {
        if before.get(&path) != Some(&bytes) {
            let to = expected.join(&path);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::write(to, bytes).unwrap();
        }
    }
}

/// How the pods of the clusters' releases come out.
#[derive(Debug, Default)]
struct Counts {
    /// Meet the contract.
    exact: usize,
    /// Of a release the report leaves alone.
    left_alone: usize,
    /// Short of the contract, and the report names the pod with a risk.
    reported: usize,
    /// Short of the contract, and nothing says so.
    silent: usize,
}

/// Builds each cluster before and after, renders every release of the builds, and judges.
fn check_clusters(old: &Path, new: &Path, report: &str) -> Counts {
    let mut counts = Counts::default();
    for (cluster, flux) in CLUSTERS {
        let was = releases(&substitute(&build(old, cluster), &variables(old, flux)));
        let now = releases(&substitute(&build(new, cluster), &variables(new, flux)));
        assert_eq!(
            was.keys().collect::<Vec<_>>(),
            now.keys().collect::<Vec<_>>(),
            "{cluster}: the same releases"
        );
        for (name, release) in &now {
            let old_release = &was[name];
            let label = format!("{cluster}: {name}");
            let left_alone = report
                .lines()
                .any(|l| l.contains(&format!("/{name} (")) && l.contains("left unchanged"));
            // With post-renderers, both renders go through Kustomize's engine (the one before
            // with the patches it had: none here).
            let through_kustomize = !release.patches.is_empty();
            let old_render = docs(&render(old, old_release, through_kustomize));
            let new_render = render(new, release, through_kustomize);
            let with_tmp = new_render.contains("mountPath: /tmp");
            let new_render = docs(&new_render);
            let expected = match with_tmp {
                true => strip_security_contexts(with_tmp_additions(old_render.clone())),
                false => strip_security_contexts(old_render.clone()),
            };
            assert_eq!(
                expected,
                strip_security_contexts(new_render.clone()),
                "{label}: nothing but securityContexts and the writable /tmp changed"
            );
            if left_alone {
                assert_eq!(old_render, new_render, "{label}: left alone, unchanged");
            }
            for doc in &new_render {
                for spec in typed_pod_specs(doc).unwrap_or_default() {
                    let mut gaps = contract_gaps(&spec);
                    gaps.extend(common::tmp_gaps(&spec));
                    // The baseline's writable /tmp: every container mounts one.
                    let without_tmp = spec.containers.iter().any(|c| {
                        !c.volume_mounts
                            .iter()
                            .flatten()
                            .any(|m| m.mount_path == "/tmp")
                    });
                    if without_tmp {
                        gaps.push("a container has no writable /tmp".into());
                    }
                    // Each short pod is named itself (a workload of the report, with its
                    // risk), not only its release.
                    let pod = format!(
                        "{}/{} ({cluster})",
                        doc["kind"].as_str().unwrap_or_default(),
                        doc["metadata"]["name"].as_str().unwrap_or_default()
                    );
                    let named = report
                        .lines()
                        .any(|l| l.contains(&format!(": {pod}: risk: ")));
                    match (gaps.is_empty(), left_alone, named) {
                        (true, _, _) => counts.exact += 1,
                        (false, true, _) => counts.left_alone += 1,
                        (false, false, true) => counts.reported += 1,
                        (false, false, false) => {
                            eprintln!("{label}: silent gaps {gaps:?}");
                            counts.silent += 1
                        }
                    }
                }
            }
        }
    }
    counts
}

fn build(tree: &Path, root: &str) -> String {
    let out = Command::new("kubectl")
        .args(["kustomize", root])
        .current_dir(tree)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{root}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The post-build variables of the cluster's Flux `Kustomization` (`apps.yaml`): the data of
/// the ConfigMaps of `substituteFrom` (in the cluster's folder), then `substitute`.
fn variables(tree: &Path, cluster: &str) -> BTreeMap<String, String> {
    let folder = tree.join(cluster);
    let objects: Vec<Value> = fs::read_dir(&folder)
        .unwrap()
        .flat_map(|e| docs(&fs::read_to_string(e.unwrap().path()).unwrap()))
        .collect();
    let flux = objects
        .iter()
        .find(|o| o["kind"] == "Kustomization")
        .expect("the cluster's Flux Kustomization");
    let strings = |map: &Value| -> Vec<(String, String)> {
        map.as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => yaml_serde::to_string(other).unwrap().trim().to_string(),
                };
                (k.as_str().unwrap().to_string(), v)
            })
            .collect()
    };
    let mut vars = BTreeMap::new();
    let post = &flux["spec"]["postBuild"];
    for from in post["substituteFrom"].as_sequence().into_iter().flatten() {
        let config_map = objects
            .iter()
            .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == from["name"])
            .expect("the substituteFrom ConfigMap is in the cluster's folder");
        vars.extend(strings(&config_map["data"]));
    }
    vars.extend(strings(&post["substitute"]));
    vars
}

/// Flux's substitution as its documentation gives it: `${var}`, `${var:=default}`, an unset
/// variable without a default is nothing.
fn substitute(stream: &str, vars: &BTreeMap<String, String>) -> String {
    let reference = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\}").unwrap();
    reference
        .replace_all(stream, |c: &regex::Captures| {
            vars.get(&c[1])
                .cloned()
                .or_else(|| c.get(2).map(|d| d.as_str().to_string()))
                .unwrap_or_default()
        })
        .into_owned()
}

/// A release of a build as Flux installs it: the chart, the values, the release name, the
/// post-renderer patches (target kind, name, patch).
struct Release {
    chart: String,
    values: Value,
    name: String,
    patches: Vec<common::helm::Patch>,
}

/// The release rendered by Helm's engine under its own name; with `through_kustomize`, its
/// post-renderer patches applied with `kubectl kustomize` (also when it has none, to compare
/// like with like).
fn render(tree: &Path, release: &Release, through_kustomize: bool) -> String {
    common::helm::render_release(
        &tree.join(&release.chart),
        &release.values,
        &release.name,
        through_kustomize.then_some(&release.patches[..]),
    )
}

fn docs(stream: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(stream)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The `HelmRelease`s of a build, read by this test itself: name -> the chart path in the
/// repository, the values Flux gives it (its `valuesFrom` ConfigMaps of the build, then
/// `spec.values`), its release name and its post-renderer patches.
fn releases(stream: &str) -> BTreeMap<String, Release> {
    let all = docs(stream);
    let config_map = |name: &str| {
        all.iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
            .and_then(|d| d["data"]["values.yaml"].as_str())
            .map(|t| yaml_serde::from_str::<Value>(t).unwrap())
    };
    let mut out = BTreeMap::new();
    for doc in all.iter().filter(|d| d["kind"] == "HelmRelease") {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let chart = doc["spec"]["chart"]["spec"]["chart"]
            .as_str()
            .unwrap()
            .trim_start_matches("./")
            .to_string();
        let mut values = Value::Mapping(Default::default());
        for from in doc["spec"]["valuesFrom"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let found = config_map(from["name"].as_str().unwrap());
            merge(
                &mut values,
                &found.expect("the valuesFrom ConfigMap is built"),
            );
        }
        if !doc["spec"]["values"].is_null() {
            merge(&mut values, &doc["spec"]["values"]);
        }
        let (release_name, patches) = common::helm::flux_post_renderers(doc);
        let release = Release {
            chart,
            values,
            name: release_name,
            patches,
        };
        out.insert(name, release);
    }
    out
}

/// Helm's values merge: mappings merge key by key, anything else replaces.
fn merge(into: &mut Value, over: &Value) {
    match (into, over) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// A release in a Kustomize base whose chart fails to render with the baseline (its template
/// `fail`s on a read-only root filesystem without persistence): the render check of the
/// release as the overlay builds it stops every write of the app, and says why.
#[test]
fn a_release_whose_chart_breaks_after_the_edits_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts/fails-after"),
        &root.join("charts/ledger"),
    );
    let files = [
        ("infrastructure/sources.yaml", "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: fleet\n  namespace: flux-system\nspec:\n  url: https://github.com/acme/fleet\n"),
        ("apps/base/ledger/kustomization.yaml", "resources:\n  - release.yaml\n"),
        ("apps/base/ledger/release.yaml", "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: ledger\nspec:\n  chart:\n    spec:\n      chart: ./charts/ledger\n      sourceRef:\n        kind: GitRepository\n        name: fleet\n        namespace: flux-system\n  values:\n    image:\n      tag: \"5.2\"\n"),
        ("apps/production/kustomization.yaml", "resources:\n  - ../base/ledger\n"),
    ];
    for (path, text) in files {
        fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
        fs::write(root.join(path), text).unwrap();
    }
    common::init_with_origin(root, ORIGIN);
    let before = common::without_git(snapshot(root));
    let out = run_with_helm(root, &["fix", "apps", "infrastructure"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("apps/base/ledger/release.yaml:1:1: not written: the HelmRelease `ledger` as apps/production builds it: its chart (charts/ledger in this repository) renders before the edits and fails after"),
        "{stderr}"
    );
    assert!(stderr.contains("the ledger writes its journal"), "{stderr}");
    assert_eq!(
        common::without_git(snapshot(root)),
        before,
        "nothing is written"
    );
}

/// Without the render check the roots are not built: each release file is planned on its own
/// values, as outside a tree, and says that the overlays were not seen.
#[test]
fn without_builds_each_release_is_planned_alone_and_says_so() {
    let work = work_tree();
    let out = common::run_in(
        work.path(),
        &["check", "--render", "never", "apps", "infrastructure"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("apps/base/worker/release.yaml:1: HelmRelease/worker .Values.podSecurityContext: risk: planned on this file's own values: the Kustomize roots that include it were not built"),
        "{stdout}"
    );
    assert!(
        stdout.contains("HelmRelease/worker .Values.securityContext"),
        "the release is still planned: {stdout}"
    );
}

/// `pr`: each release is one service, and an overlay's patch or a values file edited for one
/// release goes with that release's file.
#[test]
fn pr_puts_each_release_with_the_files_that_supply_its_values() {
    let fixture = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops/charts"),
        &fixture.path().join("charts"),
    );
    copy_dir(&fixture_dir().join("input"), fixture.path());
    let dir = tempfile::tempdir().unwrap();
    // The fleet's GitRepository names the remote the test starts: its charts are this
    // repository's.
    let sources = fixture.path().join("infrastructure/sources.yaml");
    let remote = format!("file://{}", dir.path().join("remote.git").display());
    let text = fs::read_to_string(&sources).unwrap();
    fs::write(
        &sources,
        text.replace("https://github.com/acme/fleet", &remote),
    )
    .unwrap();
    let (work, _bare) = common::git_remote::repository_with(dir.path(), fixture.path(), None);
    let cache = tempfile::tempdir().unwrap();
    let out = run_with_helm(
        &work,
        &[
            "pr",
            "--dry-run",
            "--format",
            "json",
            "--repo",
            "acme/fleet",
            "--chart-cache",
            cache.path().to_str().unwrap(),
            "apps",
            "clusters",
            "infrastructure",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: BTreeMap<String, Vec<String>> = common::pr_services(&json).into_iter().collect();
    let expected: BTreeMap<String, Vec<String>> = [
        (
            "api",
            vec![
                "apps/base/api/api-values.yaml",
                "apps/staging/kustomization.yaml",
            ],
        ),
        ("cache", vec!["apps/base/cache/release.yaml"]),
        ("feeds", vec!["apps/base/feeds/release.yaml"]),
        ("proxy", vec!["apps/base/proxy/release.yaml"]),
        (
            "web",
            vec![
                "apps/base/web/release.yaml",
                "apps/production/web-values.yaml",
            ],
        ),
        (
            "worker",
            vec![
                "apps/base/worker/release.yaml",
                "apps/staging/worker-values.yaml",
            ],
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(services, expected, "{json:#}");
}
