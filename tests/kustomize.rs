//! Kustomize trees, end to end.
//!
//! - Golden cases (`fixtures/kustomize/<case>/`): `fix` on a copy of `input/` must give
//!   `expected/` byte for byte and print `report.txt` (the engine's own error text, which names
//!   the machine's resolver, is compared as `<the engine's message>`); a second `fix` changes
//!   nothing.
//! - Every kustomization of every case and of the shared corpus's Kustomize trees is built with
//!   the real engine (`kubectl kustomize`) before and after `fix`, and judged here, apart from
//!   the tool's own render check: a root that built before builds after; every rendered pod
//!   meets the contract (typed with k8s-openapi), or is one left to a person whose contexts are
//!   unchanged, or is named by the tool as rendering short of the baseline; outside
//!   securityContexts and the writable `/tmp` the rendered objects are unchanged.
//!
//! `kubectl` is on every machine of this project: these tests fail, never skip, without it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

mod common;
use common::{
    contract_gaps, copy_dir, left_alone, run_in, snapshot, strip_security_contexts, tmp_gaps,
    typed_pod_specs,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kustomize")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 16, "the golden cases are there");
    cases
}

/// The engine's message after "not render-checked;" names the machine: left out.
fn normalised(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| match l.find("not render-checked;") {
            Some(i) => format!(
                "{} <the engine's message>",
                &l[..i + "not render-checked;".len()]
            ),
            None => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect()
}

#[test]
fn golden_cases_give_the_expected_tree_and_report() {
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let work = tempfile::tempdir().unwrap();
        copy_dir(&case.join("input"), work.path());
        let out = run_in(work.path(), &["fix", "."]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        let expected = fs::read_to_string(case.join("report.txt")).unwrap();
        assert_eq!(normalised(&stderr), expected, "{name}: the report");
        let got = snapshot(work.path());
        let want = snapshot(&case.join("expected"));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{name}: the files"
        );
        for (path, bytes) in &want {
            assert!(
                got[path] == *bytes,
                "{name}: {} differs:\n{}",
                path.display(),
                String::from_utf8_lossy(&got[path])
            );
        }
        let again = run_in(work.path(), &["fix", "."]);
        let again = String::from_utf8_lossy(&again.stderr);
        assert!(
            again.contains(" 0 changed,"),
            "{name}: a second fix changes nothing: {again}"
        );
        assert_eq!(
            snapshot(work.path()),
            want,
            "{name}: the second fix wrote nothing"
        );
    }
}

#[test]
fn every_case_renders_hardened_or_reported_with_the_real_engine() {
    let mut checked = 0;
    for case in cases() {
        let reported = fs::read_to_string(case.join("report.txt")).unwrap();
        let outcome = judge_builds(&case.join("input"), &case.join("expected"), &reported);
        assert!(
            outcome.problems.is_empty(),
            "{}:\n{}",
            case.display(),
            outcome.problems.join("\n")
        );
        checked += outcome.pods;
    }
    assert!(checked >= 20, "rendered pods were checked: {checked}");
}

/// Kustomize trees of the shared corpus: `fix` over a copy, then every kustomization built
/// before and after and judged. Prints a table of the roots.
#[test]
#[ignore = "needs the shared corpus: ../shared/corpus or KUBE_HARDEN_CORPUS; run with -- --include-ignored"]
fn the_corpus_kustomize_trees_render_hardened_or_reported_after_fix() {
    let corpus = std::env::var_os("KUBE_HARDEN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(
        corpus.is_dir(),
        "corpus not found at {} (set KUBE_HARDEN_CORPUS)",
        corpus.display()
    );
    let before = tempfile::tempdir().unwrap();
    let after = tempfile::tempdir().unwrap();
    let mut repositories = BTreeSet::new();
    for k in kustomizations(&corpus) {
        let repository = k
            .strip_prefix(&corpus)
            .unwrap()
            .components()
            .next()
            .unwrap();
        repositories.insert(repository.as_os_str().to_os_string());
    }
    for repository in &repositories {
        copy_dir(&corpus.join(repository), &before.path().join(repository));
        copy_dir(&corpus.join(repository), &after.path().join(repository));
    }
    make_writable(after.path());
    let out = run_in(after.path(), &["fix", "."]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let outcome = judge_builds(before.path(), after.path(), &stderr);
    eprintln!("{}", outcome.table.join("\n"));
    assert!(
        outcome.problems.is_empty(),
        "{}",
        outcome.problems.join("\n")
    );
    assert!(
        outcome.built >= 50,
        "most corpus kustomizations build: {}",
        outcome.built
    );
    assert!(
        outcome.pods >= 200,
        "rendered pods were checked: {}",
        outcome.pods
    );
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mut perms = fs::metadata(&path).unwrap().permissions();
        perms.set_mode(perms.mode() | 0o200);
        fs::set_permissions(&path, perms).unwrap();
        if path.is_dir() {
            make_writable(&path);
        }
    }
}

/// Every kustomization file below `dir` that is not a Component.
fn kustomizations(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() && name != ".git" {
                stack.push(path);
            } else if matches!(
                name.as_str(),
                "kustomization.yaml" | "kustomization.yml" | "Kustomization"
            ) {
                let text = fs::read_to_string(&path).unwrap_or_default();
                if !text.contains("kind: Component") {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    out
}

fn build(dir: &Path) -> Result<String, String> {
    let out = Command::new("kubectl")
        .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
        .arg(dir)
        .output()
        .expect("kubectl is installed on this project's machines (it carries Kustomize)");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[derive(Default)]
struct Outcome {
    problems: Vec<String>,
    table: Vec<String>,
    built: usize,
    pods: usize,
}

/// Builds every kustomization of `before` and the same one in `after`, and judges each pair.
fn judge_builds(before: &Path, after: &Path, reported: &str) -> Outcome {
    let mut outcome = Outcome::default();
    for k in kustomizations(before) {
        let dir = k.parent().unwrap();
        let relative = dir.strip_prefix(before).unwrap();
        let Ok(old) = build(dir) else {
            outcome
                .table
                .push(format!("{:<70} does not build before", relative.display()));
            continue;
        };
        outcome.built += 1;
        let new = match build(&after.join(relative)) {
            Ok(new) => new,
            Err(e) => {
                outcome.problems.push(format!(
                    "{}: built before the fix, fails after: {e}",
                    relative.display()
                ));
                continue;
            }
        };
        let (pods, short) = judge_render(relative, &old, &new, reported, &mut outcome.problems);
        outcome.pods += pods;
        outcome.table.push(format!(
            "{:<70} {pods:>3} pods, {short} reported short",
            relative.display()
        ));
    }
    outcome
}

/// Judges one root's renders; returns the pods checked and those reported short.
fn judge_render(
    root: &Path,
    old: &str,
    new: &str,
    reported: &str,
    problems: &mut Vec<String>,
) -> (usize, usize) {
    let load = |s: &str| kube_harden::verify::load_all(s).unwrap();
    let (old_docs, new_docs) = (load(old), load(new));
    let key = |d: &Value| {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let meta = d.get("metadata");
        (
            text(d.get("kind")),
            text(meta.and_then(|m| m.get("namespace"))),
            text(meta.and_then(|m| m.get("name"))),
        )
    };
    let old_by: BTreeMap<_, _> = old_docs.iter().map(|d| (key(d), d)).collect();
    let new_by: BTreeMap<_, _> = new_docs.iter().map(|d| (key(d), d)).collect();
    if old_by.keys().collect::<Vec<_>>() != new_by.keys().collect::<Vec<_>>() {
        problems.push(format!(
            "{}: the fix changed which objects render",
            root.display()
        ));
        return (0, 0);
    }
    let (mut pods, mut short) = (0, 0);
    for (k, new_doc) in &new_by {
        let old_doc = old_by[k];
        let without_contexts = |d: &Value, added: &[String]| {
            strip_tmp(strip_security_contexts(vec![d.clone()]).remove(0), added)
        };
        let added = added_tmp_volumes(old_doc, new_doc);
        if without_contexts(old_doc, &[]) != without_contexts(new_doc, &added) {
            problems.push(format!(
                "{}: {}/{} changed outside securityContexts and /tmp",
                root.display(),
                k.0,
                k.2
            ));
        }
        let (Some(old_specs), Some(new_specs)) =
            (typed_pod_specs(old_doc), typed_pod_specs(new_doc))
        else {
            continue;
        };
        for (old_spec, new_spec) in old_specs.iter().zip(&new_specs) {
            pods += 1;
            problems.extend(
                tmp_gaps(new_spec)
                    .into_iter()
                    .map(|g| format!("{}: {}/{}: {g}", root.display(), k.0, k.2)),
            );
            if left_alone(old_spec) || left_alone(new_spec) {
                let contexts = |s: &k8s_openapi::api::core::v1::PodSpec| {
                    let containers: Vec<_> = s
                        .containers
                        .iter()
                        .map(|c| c.security_context.clone())
                        .collect();
                    (s.security_context.clone(), containers)
                };
                if contexts(old_spec) != contexts(new_spec) {
                    problems.push(format!(
                        "{}: {}/{} is left to a person but its contexts changed",
                        root.display(),
                        k.0,
                        k.2
                    ));
                }
                continue;
            }
            let gaps = contract_gaps(new_spec);
            if gaps.is_empty() {
                continue;
            }
            // The tool must have said so: a "renders short" note naming the object, or the
            // base left to a person because an overlay renders it as a pod to leave alone.
            let object = format!("{}/{}", k.0, k.2);
            let named = reported.lines().any(|l| {
                (l.contains("renders short of the baseline")
                    && l.contains(&format!("builds {object}")))
                    || (l.contains(&format!(" {object}"))
                        && l.contains("exempted: not applied")
                        && l.contains("left to a person"))
            });
            if named {
                short += 1;
            } else {
                problems.push(format!(
                    "{}: {}/{} renders short without a word from the tool: {gaps:?}",
                    root.display(),
                    k.0,
                    k.2
                ));
            }
        }
    }
    (pods, short)
}

/// The writable-/tmp volumes the fix added to the rendered pod (an emptyDir `tmp` or
/// `kube-harden-tmp` that the render before did not have).
fn added_tmp_volumes(old: &Value, new: &Value) -> Vec<String> {
    let names = |d: &Value| -> Vec<(String, bool)> {
        pod_specs(d)
            .into_iter()
            .flat_map(|p| {
                p.get("volumes")
                    .and_then(Value::as_sequence)
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|v| {
                let name = v
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let empty_dir = v
                    .get("emptyDir")
                    .and_then(Value::as_mapping)
                    .is_some_and(|m| m.is_empty());
                (name, empty_dir)
            })
            .collect()
    };
    let before: Vec<String> = names(old).into_iter().map(|(n, _)| n).collect();
    names(new)
        .into_iter()
        .filter(|(n, empty)| {
            *empty && matches!(n.as_str(), "tmp" | "kube-harden-tmp") && !before.contains(n)
        })
        .map(|(n, _)| n)
        .collect()
}

fn pod_specs(d: &Value) -> Vec<&Value> {
    let paths: [&[&str]; 3] = [
        &["spec", "template", "spec"],
        &["spec", "jobTemplate", "spec", "template", "spec"],
        &["spec"],
    ];
    paths
        .iter()
        .filter_map(|p| p.iter().try_fold(d, |v, k| v.get(*k)))
        .filter(|s| s.get("containers").is_some())
        .take(1)
        .collect()
}

/// The object without the `added` volumes and their mounts at /tmp.
fn strip_tmp(mut doc: Value, added: &[String]) -> Value {
    let is_added = |v: &Value| {
        v.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| added.iter().any(|a| a == n))
    };
    for pod in common::pod_specs_mut(&mut doc) {
        let Value::Mapping(pod) = pod else { continue };
        if let Some(Value::Sequence(volumes)) = pod.get_mut("volumes") {
            volumes.retain(|v| !is_added(v));
            if volumes.is_empty() {
                pod.remove("volumes");
            }
        }
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            let Some(Value::Sequence(containers)) = pod.get_mut(list) else {
                continue;
            };
            for c in containers.iter_mut() {
                let Value::Mapping(c) = c else { continue };
                if let Some(Value::Sequence(mounts)) = c.get_mut("volumeMounts") {
                    mounts.retain(|m| {
                        !(is_added(m) && m.get("mountPath").and_then(Value::as_str) == Some("/tmp"))
                    });
                    if mounts.is_empty() {
                        c.remove("volumeMounts");
                    }
                }
            }
        }
    }
    doc
}

/// A base and an overlay whose JSON patch removes the container's `readOnlyRootFilesystem`:
/// after `fix` the overlay renders short of the baseline.
fn tree_that_renders_short() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("10-json-remove-field/input"), dir.path());
    dir
}

#[test]
fn check_exits_1_for_a_root_that_renders_short_and_sarif_points_at_the_origin() {
    let dir = tree_that_renders_short();
    assert_eq!(run_in(dir.path(), &["fix", "."]).status.code(), Some(0));
    let text = run_in(dir.path(), &["check", "."]);
    assert_eq!(
        text.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("Deployment/search container search: readOnlyRootFilesystem is absent"),
        "{stdout}"
    );
    let sarif = run_in(dir.path(), &["check", "--format", "sarif", "."]);
    let log: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    let uri = |r: &serde_json::Value| {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        results
            .iter()
            .any(|r| uri(r).ends_with("base/deployment.yaml")),
        "{results:#?}"
    );
    let json = run_in(dir.path(), &["check", "--format", "json", "."]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let notes = json["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n["message"]
            .as_str()
            .unwrap()
            .contains("renders short of the baseline")),
        "{notes:#?}"
    );
}

#[test]
fn render_never_skips_the_check_and_always_needs_an_engine() {
    let dir = tree_that_renders_short();
    let never = run_in(dir.path(), &["check", "--render", "never", "."]);
    let stdout = String::from_utf8_lossy(&never.stdout);
    assert!(!stdout.contains("renders short"), "{stdout}");
    let missing = dir.path().join("no-such-kustomize");
    let missing = missing.to_str().unwrap();
    let auto = run_in(dir.path(), &["check", "--kustomize-bin", missing, "."]);
    let stdout = String::from_utf8_lossy(&auto.stdout);
    assert_eq!(auto.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.matches("render check skipped").count(),
        1,
        "said once: {stdout}"
    );
    let before = snapshot(dir.path());
    let always = run_in(
        dir.path(),
        &["fix", "--render", "always", "--kustomize-bin", missing, "."],
    );
    let stderr = String::from_utf8_lossy(&always.stderr);
    assert_eq!(always.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not written: the render check could not run"),
        "{stderr}"
    );
    assert_eq!(snapshot(dir.path()), before, "nothing is written");
}

#[test]
fn a_root_that_fails_to_build_after_the_edits_means_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("01-resource/input"),
        &dir.path().join("app"),
    );
    // A JSON patch `test` that holds for the base as it is, and fails once it is hardened.
    fs::create_dir_all(dir.path().join("overlay")).unwrap();
    fs::write(
        dir.path().join("overlay/kustomization.yaml"),
        "resources:\n- ../app/base\npatches:\n- target: {kind: Deployment, name: web}\n  patch: |-\n    - op: test\n      path: /spec/template/spec/containers/0\n      value: {name: web, image: example/web:1.0}\n",
    )
    .unwrap();
    let before = snapshot(dir.path());
    let out = run_in(dir.path(), &["fix", "."]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "not written: overlay/kustomization.yaml built before the edits and fails after"
        ),
        "{stderr}"
    );
    assert_eq!(snapshot(dir.path()), before, "nothing is written");
}

#[test]
fn a_base_outside_the_walked_paths_is_named_on_the_line_that_brings_it_in() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("02-smp-node-selector-keeps-ids/input"),
        dir.path(),
    );
    let before = snapshot(dir.path());
    let out = run_in(dir.path(), &["fix", "overlay"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("overlay/kustomization.yaml:2: risk: base/kustomization.yaml is not among the files of this run"),
        "{stderr}"
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the base is not edited, and the overlay's patch needs nothing"
    );
}

#[test]
fn pr_puts_an_overlay_of_one_base_in_the_base_s_pull_request() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixtures().join("04-smp-adds-sidecar/input");
    let (work, _bare) = common::git_remote::repository_with(dir.path(), &fixture, None);
    let out = assert_cmd::Command::cargo_bin("kube-harden")
        .unwrap()
        .current_dir(&work)
        .env_remove("GITHUB_TOKEN")
        .env("NO_COLOR", "1")
        .args(["pr", "--dry-run", "--format", "json", "--repo", "acme/shop"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = json["services"].as_array().unwrap();
    let files: Vec<Vec<&str>> = services
        .iter()
        .map(|s| {
            s["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        files,
        vec![vec!["base/deployment.yaml", "overlay/sidecar.yaml"]],
        "one pull request for the base and its overlay: {json:#}"
    );
    assert_eq!(services[0]["service"].as_str(), Some("base"), "{json:#}");
}
