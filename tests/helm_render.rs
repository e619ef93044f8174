//! End to end with Helm's real template engine: every fixture chart is rendered (with its
//! values.yaml, and with each override file) before and after `fix`. After the fix every wired
//! pod and container meets the contract (typed with k8s-openapi), and the rendered output is
//! the same as before once every securityContext is removed: nothing else changed.
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
use common::{contract_gaps, run_in, strip_security_contexts, typed_pod_specs};

fn python() -> PathBuf {
    let python = match std::env::var_os("KUBE_HARDEN_HELM_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => install_engine(),
    };
    let ok = Command::new(&python)
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Helm's template engine (helm-python-sdk) not found at {}: scripts/helm-engine.sh installs it into target/helm-venv, or set KUBE_HARDEN_HELM_PYTHON to a Python that has it",
        python.display()
    );
    python
}

/// Installs the engine into `target/helm-venv` when it is not there yet (PyPI), and returns
/// that environment's Python. An install that fails fails the test.
fn install_engine() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/helm-engine.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "installing Helm's template engine failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
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
/// render exactly as before), and whether the fix is expected to be refused.
struct Case {
    chart: &'static str,
    unwired: &'static [&'static str],
    refused: bool,
}

const CASES: &[Case] = &[
    Case {
        chart: "scaffold-current",
        unwired: &["templates/tests/test-connection.yaml"],
        refused: false,
    },
    Case {
        chart: "scaffold-old",
        unwired: &[],
        refused: false,
    },
    Case {
        chart: "bitnami-style",
        unwired: &[],
        refused: false,
    },
    Case {
        chart: "multi-component",
        unwired: &[],
        refused: false,
    },
    Case {
        chart: "unwired",
        unwired: &["templates/deployment.yaml"],
        refused: false,
    },
    Case {
        chart: "schema-forbids",
        unwired: &["templates/deployment.yaml"],
        refused: true,
    },
];

#[test]
fn rendered_pods_meet_the_contract_after_fix_and_nothing_else_changes() {
    let python = python();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts");
    let mut problems = Vec::new();
    let mut hardened_pods = 0;
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
        let expected_code = if case.refused { 2 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected_code),
            "{}: {}",
            case.chart,
            String::from_utf8_lossy(&out.stderr)
        );
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
                if strip_security_contexts(old.clone()) != strip_security_contexts(docs.clone()) {
                    problems.push(format!("{label}: {name}: changed beyond securityContext"));
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
                for doc in docs {
                    let Some(specs) = typed_pod_specs(doc) else {
                        continue;
                    };
                    for spec in specs {
                        hardened_pods += 1;
                        problems.extend(
                            contract_gaps(&spec)
                                .into_iter()
                                .map(|g| format!("{label}: {name}: {g}")),
                        );
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // scaffold-current 1, scaffold-old 1, bitnami 1, multi-component 4 pods x 4 value sets.
    assert_eq!(
        hardened_pods,
        1 + 1 + 1 + 4 * 4,
        "every wired pod was rendered and checked"
    );
}
