//! GitOps releases end to end: the golden cases under `fixtures/gitops/` (a Flux
//! `HelmRelease`, Argo CD `Application`s with `valuesObject`, a `values: |` string, both, several
//! sources, an `ApplicationSet`, values from a ConfigMap or a Secret, a privileged chart, a chart
//! this run hardens too, a chart in another repository), each in a git repository whose
//! `origin` is the one the manifests name, with the charts of `fixtures/gitops/charts/`.
//!
//! `fix` (with the render check on, through Helm's engine) must change exactly the files of
//! `expected/` into them, byte for byte, and print `report.txt`; a second `fix` changes nothing.
//! Then the test renders each release itself, before and after, with Helm's engine and the
//! release's own values: every pod of a release the report does not leave alone meets the
//! contract (typed with k8s-openapi), and nothing changed outside securityContexts and the
//! writable /tmp (which goes in through the volume lists a chart wires).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

mod common;
use common::helm::{run_with_helm, template};
use common::{
    contract_gaps, copy_dir, snapshot, strip_security_contexts, typed_pod_specs, with_tmp_additions,
};

const ORIGIN: &str = "https://github.com/acme/fleet.git";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input").is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "the golden cases are there");
    cases
}

/// A git repository with the case's input and the shared charts, `origin` set.
fn work_tree(case: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("charts"), &dir.path().join("charts"));
    copy_dir(&case.join("input"), dir.path());
    for args in [vec!["init", "-q"], vec!["remote", "add", "origin", ORIGIN]] {
        let ok = Command::new("git")
            .args(&args)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    dir
}

fn args(case: &Path) -> Vec<String> {
    fs::read_to_string(case.join("args.txt"))
        .unwrap_or_else(|_| "apps".into())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn without_git(files: BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<PathBuf, Vec<u8>> {
    files
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".git"))
        .collect()
}

#[test]
fn golden_cases_give_the_expected_files_and_report_and_render_hardened() {
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let work = work_tree(&case);
        let before = without_git(snapshot(work.path()));
        let mut fix = vec!["fix".to_string()];
        fix.extend(args(&case));
        let fix: Vec<&str> = fix.iter().map(String::as_str).collect();
        let out = run_with_helm(work.path(), &fix);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        let report = fs::read_to_string(case.join("report.txt")).unwrap();
        assert_eq!(stderr, report, "{name}: the report");
        let after = without_git(snapshot(work.path()));
        let expected = snapshot(&case.join("expected"));
        for (path, bytes) in &after {
            let want = expected.get(path).or_else(|| before.get(path)).unwrap();
            assert!(
                bytes == want,
                "{name}: {} differs:\n{}",
                path.display(),
                String::from_utf8_lossy(bytes)
            );
        }
        assert!(
            expected.keys().all(|p| after.contains_key(p)),
            "{name}: every expected file is there"
        );
        let again = run_with_helm(work.path(), &fix);
        assert_eq!(again.status.code(), Some(0), "{name}");
        assert_eq!(
            without_git(snapshot(work.path())),
            after,
            "{name}: a second fix changes nothing"
        );
        let left_alone: Vec<&str> = report
            .lines()
            .filter(|l| l.contains("left unchanged"))
            .collect();
        check_renders(&name, work.path(), &before, &after, &left_alone);
    }
}

/// Renders every release of the case before and after, with its own values.
fn check_renders(
    name: &str,
    work: &Path,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    left_alone: &[&str],
) {
    for (path, bytes) in after.iter().filter(|(p, _)| p.starts_with("apps")) {
        let new = releases(&String::from_utf8_lossy(bytes));
        let old = releases(&String::from_utf8_lossy(&before[path]));
        for (release, (chart, values)) in &new {
            if left_alone
                .iter()
                .any(|l| l.contains(&format!("/{release} ")))
                || !work.join(chart).join("Chart.yaml").is_file()
            {
                continue;
            }
            let label = format!("{name}: {release}");
            let render = |values: &Value| {
                let file = tempfile::NamedTempFile::new().unwrap();
                fs::write(file.path(), yaml_serde::to_string(values).unwrap()).unwrap();
                template(&work.join(chart), Some(file.path())).unwrap()
            };
            let was = docs(&render(&old[release].1));
            let now = docs(&render(values));
            // The writable /tmp goes in only through lists the chart wires (and then exactly
            // as for a manifest); otherwise nothing but securityContexts changes.
            let with_tmp = render(values).contains("mountPath: /tmp");
            let expected = match with_tmp {
                true => strip_security_contexts(with_tmp_additions(was)),
                false => strip_security_contexts(was),
            };
            assert_eq!(
                expected,
                strip_security_contexts(now.clone()),
                "{label}: nothing but securityContexts and the writable /tmp changed in the render"
            );
            let mut pods = 0;
            for doc in &now {
                for spec in typed_pod_specs(doc).unwrap_or_default() {
                    pods += 1;
                    assert_eq!(contract_gaps(&spec), Vec::<String>::new(), "{label}");
                }
            }
            assert!(pods > 0, "{label}: the chart renders pods");
        }
    }
}

fn docs(stream: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(stream)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The releases of a manifest this test reads itself: name -> (chart path in the
/// repository, values over the chart's defaults). Flux: `spec.values` over the ConfigMaps of
/// `valuesFrom` in the same file; Argo: `helm.values` then `helm.valuesObject`.
fn releases(text: &str) -> BTreeMap<String, (String, Value)> {
    let all = docs(text);
    let config_map = |name: &str| {
        all.iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
            .and_then(|d| d["data"]["values.yaml"].as_str())
            .map(|t| yaml_serde::from_str::<Value>(t).unwrap())
    };
    let mut out = BTreeMap::new();
    for doc in &all {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match doc["kind"].as_str() {
            Some("HelmRelease") => {
                let chart = doc["spec"]["chart"]["spec"]["chart"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("./")
                    .to_string();
                let mut values = Value::Mapping(Default::default());
                for from in doc["spec"]["valuesFrom"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = config_map(from["name"].as_str().unwrap_or_default()) {
                        merge(&mut values, &v);
                    }
                }
                if !doc["spec"]["values"].is_null() {
                    merge(&mut values, &doc["spec"]["values"]);
                }
                out.insert(name, (chart, values));
            }
            Some("Application") | Some("ApplicationSet") => {
                let spec = match doc["kind"].as_str() {
                    Some("ApplicationSet") => &doc["spec"]["template"]["spec"],
                    _ => &doc["spec"],
                };
                let sources: Vec<&Value> = match spec["sources"].as_sequence() {
                    Some(list) => list.iter().collect(),
                    None => vec![&spec["source"]],
                };
                let many = sources.len() > 1;
                for (i, source) in sources.into_iter().enumerate() {
                    let Some(path) = source["path"].as_str() else {
                        continue;
                    };
                    let mut values = Value::Mapping(Default::default());
                    if let Some(text) = source["helm"]["values"].as_str() {
                        merge(&mut values, &yaml_serde::from_str(text).unwrap());
                    }
                    if !source["helm"]["valuesObject"].is_null() {
                        merge(&mut values, &source["helm"]["valuesObject"]);
                    }
                    let key = if many {
                        format!("{name}[{i}]")
                    } else {
                        name.clone()
                    };
                    out.insert(key, (path.to_string(), values));
                }
            }
            _ => {}
        }
    }
    out
}

/// Helm's merge of one values layer over another.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if !v.is_null() => merge(slot, v),
                    _ if v.is_null() => {
                        b.remove(k);
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}
