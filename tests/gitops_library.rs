//! A release of an app-template-like chart inside a Kustomize tree (`fixtures/gitops-library/`):
//! the chart (`charts/app-template` of golden case 18) renders every workload through the
//! helpers of the `common` library chart it vendors, per controller and per container, from
//! the release's values; the base `HelmRelease` defines the controllers and containers, the
//! cluster's overlay patches its values (one controller runs as root there).
//!
//! `fix` (render check on, with Kustomize's and Helm's engines) must change exactly the files
//! of `expected/` into them, byte for byte, and print `report.txt`; a second `fix` changes
//! nothing. Then the test is its own oracle: the overlay is built with `kubectl kustomize`
//! before and after, and its `HelmRelease` is rendered with Helm's engine and the values the
//! build gives it, under its own name with its post-renderer patches (through Kustomize's
//! engine). Every pod meets the contract, with a writable /tmp, and nothing changed outside
//! securityContexts and the writable /tmp.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

mod common;
use common::helm::{flux_post_renderers, render_release, run_with_helm};
use common::{
    contract_gaps, copy_dir, snapshot, strip_security_contexts, tmp_gaps, typed_pod_specs,
    with_tmp_additions,
};

const ORIGIN: &str = "https://github.com/acme/fleet.git";
const OVERLAY: &str = "apps/home";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops-library")
}

/// A git repository with the fleet and the library chart, `origin` set.
fn work_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/gitops/18-library-chart/input/charts"),
        &dir.path().join("charts"),
    );
    copy_dir(&fixture_dir().join("input"), dir.path());
    common::init_with_origin(dir.path(), ORIGIN);
    dir
}

#[test]
fn a_library_chart_release_in_a_kustomize_tree_is_hardened_per_controller_and_container() {
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
    assert!(
        expected.contains_key(Path::new("apps/home/photos-values.yaml")),
        "the overlay's patch is corrected where it sets the root user"
    );
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
    let pods = check_overlay(old_tree.path(), work.path());
    assert_eq!(pods, 2, "both controllers render a hardened pod");
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

/// Builds the overlay before and after, renders its release each time, judges the pods after;
/// the number of pods.
fn check_overlay(old: &Path, new: &Path) -> usize {
    let (was, now) = (release(&build(old)), release(&build(new)));
    assert!(was.patches.is_empty(), "no post-renderers before");
    let old_render = docs(&render_release(
        &old.join(&was.chart),
        &was.values,
        &was.name,
        Some(&[]),
    ));
    let new_render = docs(&render_release(
        &new.join(&now.chart),
        &now.values,
        &now.name,
        Some(&now.patches),
    ));
    assert_eq!(
        strip_security_contexts(with_tmp_additions(old_render)),
        strip_security_contexts(new_render.clone()),
        "nothing but securityContexts and the writable /tmp changed"
    );
    let mut pods = 0;
    for doc in &new_render {
        for spec in typed_pod_specs(doc).unwrap_or_default() {
            pods += 1;
            let mut gaps = contract_gaps(&spec);
            gaps.extend(tmp_gaps(&spec));
            for c in &spec.containers {
                let mounts = c.volume_mounts.iter().flatten();
                if !mounts.into_iter().any(|m| m.mount_path == "/tmp") {
                    gaps.push(format!("container {} has no writable /tmp", c.name));
                }
            }
            assert_eq!(
                gaps,
                Vec::<String>::new(),
                "{}",
                yaml_serde::to_string(doc).unwrap()
            );
            assert_ne!(
                spec.security_context.as_ref().and_then(|s| s.run_as_user),
                Some(0),
                "the overlay's root user is corrected"
            );
        }
    }
    pods
}

fn build(tree: &Path) -> String {
    let out = Command::new("kubectl")
        .args(["kustomize", OVERLAY])
        .current_dir(tree)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn docs(stream: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(stream)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The one `HelmRelease` of the build, read by this test itself.
struct Release {
    chart: String,
    values: Value,
    name: String,
    patches: Vec<common::helm::Patch>,
}

fn release(stream: &str) -> Release {
    let all = docs(stream);
    let releases: Vec<&Value> = all.iter().filter(|d| d["kind"] == "HelmRelease").collect();
    let [doc] = releases.as_slice() else {
        panic!("one HelmRelease in the build: {stream}");
    };
    let (name, patches) = flux_post_renderers(doc);
    Release {
        chart: doc["spec"]["chart"]["spec"]["chart"]
            .as_str()
            .unwrap()
            .trim_start_matches("./")
            .to_string(),
        values: doc["spec"]["values"].clone(),
        name,
        patches,
    }
}
