//! End to end with Helm's real template engine: every fixture chart is rendered (with its
//! values.yaml, and with each override file) before and after `fix`. After the fix every wired
//! pod and container meets the contract (typed with k8s-openapi), and the rendered output is
//! the same as before once every securityContext is removed and the writable /tmp the fix
//! adds through values lists (an emptyDir `tmp`/`kube-harden-tmp` and its mount at /tmp) is
//! taken out: nothing else changed. Each container the fix gives a read-only root filesystem
//! has a writable /tmp mount, unless the case says that the chart cannot have one (the fix
//! then says so in a risk note). A pod with host access (judged on the rendered pod, not on
//! the tool's reading of the templates) renders exactly as before.
//!
//! The engine is the PyPI package `helm-python-sdk` (Helm's Go engine behind a C ABI; no `helm`
//! binary). `scripts/helm-engine.sh` installs it into `target/helm-venv` (`.ci/run` calls it
//! and sets `KUBE_HARDEN_HELM_PYTHON`; without that variable the test calls the script
//! itself). It fails, never skips, when the engine cannot be had.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::copy_dir;
use common::{
    contract_gaps, pod_left_alone, pod_specs_mut, run_in, strip_security_contexts, tmp_gaps,
    typed_pod_specs,
};
use yaml_serde::Value;

fn python() -> PathBuf {
    common::helm::python()
}

/// template path -> YAML documents, as Helm renders them.
fn render(
    python: &Path,
    chart: &Path,
    values: Option<&Path>,
) -> BTreeMap<String, Vec<yaml_serde::Value>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm_render.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(chart);
    if let Some(v) = values {
        cmd.arg(v);
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "helm render of {} with {values:?} failed: {}",
        chart.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    rendered
        .into_iter()
        .filter(|(name, _)| name.ends_with(".yaml") || name.ends_with(".yml"))
        .map(|(name, text)| {
            let docs: Vec<yaml_serde::Value> = yaml_serde::Deserializer::from_str(&text)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .filter(|v: &yaml_serde::Value| !v.is_null())
                .collect();
            (name, docs)
        })
        .collect()
}

/// The override files of a chart: `values-*.yaml` and `ci/*.yaml`.
fn overrides(chart: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(chart)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("values-") && n.ends_with(".yaml"))
        })
        .collect();
    if let Ok(ci) = fs::read_dir(chart.join("ci")) {
        files.extend(ci.map(|e| e.unwrap().path()));
    }
    files.sort();
    files
}

/// One fixture chart: which rendered templates hold pods the chart does not wire (they must
/// render exactly as before), which hold hardened containers the chart cannot give a writable
/// /tmp, how many /tmp mounts the fix adds over all the value sets rendered, and whether the fix
/// is expected to be refused.
struct Case {
    chart: &'static str,
    unwired: &'static [&'static str],
    without_tmp: &'static [&'static str],
    tmp_mounts: usize,
    refused: bool,
}

const CASES: &[Case] = &[
    Case {
        chart: "scaffold-current",
        unwired: &["templates/tests/test-connection.yaml"],
        without_tmp: &[],
        tmp_mounts: 1,
        refused: false,
    },
    Case {
        chart: "scaffold-old",
        unwired: &[],
        without_tmp: &["templates/deployment.yaml"],
        tmp_mounts: 0,
        refused: false,
    },
    Case {
        chart: "bitnami-style",
        unwired: &[],
        without_tmp: &["templates/deployment.yaml"],
        tmp_mounts: 0,
        refused: false,
    },
    Case {
        chart: "bitnami-empty-dir",
        unwired: &[],
        without_tmp: &[],
        tmp_mounts: 0,
        refused: false,
    },
    Case {
        chart: "extra-volumes",
        unwired: &[],
        without_tmp: &[],
        // The server and its config reloader, with values.yaml and with values-prod.yaml.
        tmp_mounts: 4,
        refused: false,
    },
    Case {
        chart: "multi-component",
        unwired: &[],
        without_tmp: &[
            "templates/server.yaml",
            "templates/worker.yaml",
            "templates/hooks/migrate-job.yaml",
            "templates/agent.yaml",
        ],
        tmp_mounts: 0,
        refused: false,
    },
    Case {
        chart: "node-agent",
        unwired: &[],
        without_tmp: &["templates/aggregator.yaml"],
        tmp_mounts: 0,
        refused: false,
    },
    Case {
        chart: "host-pid",
        unwired: &[],
        without_tmp: &[],
        tmp_mounts: 0,
        refused: false,
    },
    Case {
        chart: "unwired",
        unwired: &["templates/deployment.yaml"],
        without_tmp: &[],
        tmp_mounts: 0,
        refused: false,
    },
    Case {
        chart: "schema-forbids",
        unwired: &["templates/deployment.yaml"],
        without_tmp: &[],
        tmp_mounts: 0,
        refused: true,
    },
];

/// The /tmp additions found in one rendered template after the fix.
#[derive(Default)]
struct TmpAdditions {
    mounts: usize,
    problems: Vec<String>,
}

/// `after` with the writable-/tmp items the fix added taken out: a volume `{name: N,
/// emptyDir: {}}` and mounts `{name: N, mountPath: /tmp}` (N is `tmp` or `kube-harden-tmp`)
/// that `before` does not have, in the same pod. Each added mount must name an added or
/// existing emptyDir volume of its pod.
fn without_added_tmp(before: &[Value], after: &[Value], found: &mut TmpAdditions) -> Vec<Value> {
    let mut after = after.to_vec();
    for (doc_before, doc_after) in before.iter().zip(after.iter_mut()) {
        let mut doc_before = doc_before.clone();
        let pods_before = pod_specs_mut(&mut doc_before);
        for (pod_before, pod_after) in pods_before.into_iter().zip(pod_specs_mut(doc_after)) {
            take_tmp_out(pod_before, pod_after, found);
        }
    }
    after
}

fn take_tmp_out(before: &Value, after: &mut Value, found: &mut TmpAdditions) {
    let is_tmp_volume = |v: &Value| {
        matches!(
            v.get("name").and_then(Value::as_str),
            Some("tmp" | "kube-harden-tmp")
        ) && v
            .get("emptyDir")
            .is_some_and(|e| e.as_mapping().is_some_and(|m| m.is_empty()))
            && v.as_mapping().is_some_and(|m| m.len() == 2)
    };
    let added_volumes = take_new_items(before.get("volumes"), after, "volumes", is_tmp_volume);
    let emptydirs: Vec<String> = after
        .get("volumes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .chain(&added_volumes)
        .filter(|v| v.get("emptyDir").is_some())
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    for key in ["initContainers", "containers"] {
        let containers_before = before.get(key).and_then(Value::as_sequence);
        let Some(Value::Sequence(containers)) = after.get_mut(key) else {
            continue;
        };
        for (i, c) in containers.iter_mut().enumerate() {
            let c_before = containers_before.and_then(|cs| cs.get(i));
            let is_tmp_mount = |m: &Value| {
                m.get("mountPath").and_then(Value::as_str) == Some("/tmp")
                    && matches!(
                        m.get("name").and_then(Value::as_str),
                        Some("tmp" | "kube-harden-tmp")
                    )
                    && m.as_mapping().is_some_and(|m| m.len() == 2)
            };
            let mounts = c_before.and_then(|c| c.get("volumeMounts"));
            for m in take_new_items(mounts, c, "volumeMounts", is_tmp_mount) {
                found.mounts += 1;
                let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                if !emptydirs.iter().any(|v| v == name) {
                    found.problems.push(format!(
                        "a /tmp mount of `{name}`, which is no emptyDir of the pod"
                    ));
                }
            }
        }
    }
}

/// Takes out of `map.key` the items that `before` does not have and that `added` accepts;
/// drops the key when it is left empty and `before` had none. Returns the items taken.
fn take_new_items(
    before: Option<&Value>,
    map: &mut Value,
    key: &str,
    added: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let old: Vec<Value> = before
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    let Value::Mapping(map) = map else {
        return vec![];
    };
    let Some(Value::Sequence(items)) = map.get_mut(key) else {
        return vec![];
    };
    let (taken, kept): (Vec<Value>, Vec<Value>) = std::mem::take(items)
        .into_iter()
        .partition(|item| added(item) && !old.contains(item));
    *items = kept;
    if items.is_empty() && before.is_none() {
        map.remove(key);
    }
    taken
}

/// The containers whose root filesystem the fix made read-only and that have no /tmp mount.
fn read_only_without_tmp(before: &Value, after: &Value) -> Vec<String> {
    let read_only = |c: &Value| {
        c.get("securityContext")
            .and_then(|s| s.get("readOnlyRootFilesystem"))
            == Some(&Value::Bool(true))
    };
    let mounts_tmp = |c: &Value| {
        c.get("volumeMounts")
            .and_then(Value::as_sequence)
            .is_some_and(|ms| {
                ms.iter().any(|m| {
                    m.get("mountPath")
                        .and_then(Value::as_str)
                        .is_some_and(|p| p.trim_end_matches('/') == "/tmp")
                })
            })
    };
    let (mut before, mut after) = (before.clone(), after.clone());
    let mut out = Vec::new();
    for (pod_before, pod_after) in pod_specs_mut(&mut before)
        .into_iter()
        .zip(pod_specs_mut(&mut after))
    {
        for key in ["initContainers", "containers"] {
            let old = pod_before
                .get(key)
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            let new = pod_after
                .get(key)
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            for (o, n) in old.iter().zip(&new) {
                if !read_only(o) && read_only(n) && !mounts_tmp(n) {
                    let name = n.get("name").and_then(Value::as_str).unwrap_or("?");
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

/// Whether a rendered document holds a pod that the contract leaves to a person.
fn holds_a_pod_left_alone(doc: &Value) -> bool {
    let mut doc = doc.clone();
    pod_specs_mut(&mut doc)
        .into_iter()
        .any(|p| pod_left_alone(p, false))
}

#[test]
fn rendered_pods_meet_the_contract_after_fix_and_nothing_else_changes() {
    let python = python();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts");
    let mut problems = Vec::new();
    let mut hardened_pods = 0;
    let mut pods_left_alone = 0;
    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let chart = tmp.path().join(case.chart);
        copy_dir(&fixtures.join(case.chart), &chart);
        let sets: Vec<Option<PathBuf>> = std::iter::once(None)
            .chain(overrides(&chart).into_iter().map(Some))
            .collect();
        let before: Vec<_> = sets
            .iter()
            .map(|v| render(&python, &chart, v.as_deref()))
            .collect();
        let out = run_in(tmp.path(), &["fix", case.chart]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected_code = if case.refused { 2 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected_code),
            "{}: {stderr}",
            case.chart
        );
        let mut tmp_mounts = 0;
        for (set, before) in sets.iter().zip(before) {
            let after = render(&python, &chart, set.as_deref());
            let label = format!(
                "{} with {:?}",
                case.chart,
                set.as_ref().map(|p| p.file_name().unwrap())
            );
            assert_eq!(
                before.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>(),
                "{label}: the same templates render"
            );
            for (name, docs) in &after {
                let old = &before[name];
                let mut found = TmpAdditions::default();
                let without_tmp = without_added_tmp(old, docs, &mut found);
                tmp_mounts += found.mounts;
                problems.extend(
                    found
                        .problems
                        .iter()
                        .map(|p| format!("{label}: {name}: {p}")),
                );
                if strip_security_contexts(old.clone()) != strip_security_contexts(without_tmp) {
                    problems.push(format!(
                        "{label}: {name}: changed beyond securityContext and the writable /tmp"
                    ));
                }
                let unwired = case.refused || case.unwired.iter().any(|u| name.ends_with(u));
                if unwired {
                    if old != docs {
                        problems.push(format!(
                            "{label}: {name}: an unwired template rendered differently"
                        ));
                    }
                    continue;
                }
                for (doc_before, doc) in old.iter().zip(docs) {
                    if holds_a_pod_left_alone(doc_before) {
                        pods_left_alone += 1;
                        if doc_before != doc {
                            problems.push(format!(
                                "{label}: {name}: a pod with host access rendered differently"
                            ));
                        }
                        continue;
                    }
                    let missing_tmp = read_only_without_tmp(doc_before, doc);
                    let may_lack_tmp = case.without_tmp.iter().any(|t| name.ends_with(t));
                    if !missing_tmp.is_empty() && !may_lack_tmp {
                        problems.push(format!(
                            "{label}: {name}: read-only root filesystem without a writable /tmp: {missing_tmp:?}"
                        ));
                    }
                    if !missing_tmp.is_empty() && !stderr.contains("no writable /tmp") {
                        problems.push(format!(
                            "{label}: {name}: {missing_tmp:?} lack a writable /tmp and the fix said nothing"
                        ));
                    }
                    let Some(specs) = typed_pod_specs(doc) else {
                        continue;
                    };
                    for spec in specs {
                        hardened_pods += 1;
                        problems.extend(
                            contract_gaps(&spec)
                                .into_iter()
                                .chain(tmp_gaps(&spec))
                                .map(|g| format!("{label}: {name}: {g}")),
                        );
                    }
                }
            }
        }
        assert_eq!(
            tmp_mounts, case.tmp_mounts,
            "{}: /tmp mounts added over every value set",
            case.chart
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // scaffold-current 1, scaffold-old 1, bitnami-style 1, bitnami-empty-dir 1, extra-volumes
    // 1 x 2 value sets, multi-component 4 pods x 4 value sets, node-agent's aggregator 1.
    assert_eq!(
        hardened_pods,
        1 + 1 + 1 + 1 + 2 + 4 * 4 + 1,
        "every wired pod was rendered and checked"
    );
    // node-agent's DaemonSet (hostNetwork and hostPath in the template), host-pid's DaemonSet
    // (hostPID and a hostPath from values).
    assert_eq!(
        pods_left_alone, 2,
        "the pods with host access were rendered"
    );
}
